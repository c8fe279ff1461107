//! Stamping and checking memory in units of [`UNIT`] bytes (see
//! [`mmrace_proto::oracle`] for the format). The callers own the memory;
//! these functions only take its address, because the regions they check
//! live at fixed addresses in forked children and change under them.

use super::{Check, Oracle};
use mmrace_proto::oracle::{fill_byte, Expected, Found, Stamp, STAMP_WORDS, UNIT};

/// The unit at `addr`: its stamp words and its last word.
///
/// # Safety
/// `addr..addr + UNIT` must be mapped readable and 8-byte aligned.
pub unsafe fn read(addr: usize) -> Found {
    let p = addr as *const u64;
    let mut words = [0u64; STAMP_WORDS];
    for (i, w) in words.iter_mut().enumerate() {
        // SAFETY: inside the unit (caller's contract); volatile because
        // another CPU, or the kernel, may change it behind our back.
        *w = unsafe { p.add(i).read_volatile() };
    }
    // SAFETY: the unit's last word.
    let last = unsafe { p.add(UNIT / 8 - 1).read_volatile() };
    Found::decode(words, last)
}

/// Fills the whole unit for `stamp`: a memset of its fill byte, then the
/// stamp words (the seed writer's store pattern, plus 24 bytes).
///
/// # Safety
/// `addr..addr + UNIT` must be mapped writable, 8-byte aligned, and not
/// referenced by any Rust reference.
pub unsafe fn fill(addr: usize, stamp: &Stamp) {
    // SAFETY: the unit (caller's contract).
    unsafe {
        std::ptr::write_bytes(addr as *mut u8, fill_byte(stamp.generation), UNIT);
        write_head(addr, stamp);
    }
}

/// Writes only the stamp words and the last word: enough for [`read`] to
/// decode it, for regions where a full fill would cost more than the
/// operation being checked (the racers' chunks).
///
/// # Safety
/// As for [`fill`].
pub unsafe fn stamp(addr: usize, stamp: &Stamp) {
    // SAFETY: the unit (caller's contract).
    unsafe {
        write_head(addr, stamp);
        let w = stamp.words();
        (addr as *mut u64)
            .add(UNIT / 8 - 1)
            .write_volatile(w[STAMP_WORDS - 1]);
    }
}

/// # Safety
/// As for [`fill`].
unsafe fn write_head(addr: usize, stamp: &Stamp) {
    let p = addr as *mut u64;
    for (i, w) in stamp.words().into_iter().enumerate() {
        // SAFETY: inside the unit (caller's contract).
        unsafe { p.add(i).write_volatile(w) };
    }
}

/// Checks the unit at `addr` against `expected`; reports a mismatch to
/// `oracle`. Returns whether it matched.
///
/// # Safety
/// As for [`read`].
pub unsafe fn check(
    oracle: &Oracle,
    check: Check,
    region: u16,
    addr: usize,
    page: u64,
    expected: Expected,
) -> bool {
    // SAFETY: caller's contract.
    let found = unsafe { read(addr) };
    let ok = expected.matches(&found);
    if !ok {
        oracle.mismatch(check, region, addr, page, expected, &found);
    }
    ok
}

/// The writer's rechecks within a pass read every 8th unit: a migration
/// or split that loses writes loses those of the whole THP it copied in its
/// window, and each read is a TLB fill under TCG (a recheck of every unit
/// cost the writer 15 to 24 % of its store rate in the guest). The next pass
/// still checks every unit.
const RECHECK_STRIDE: usize = 8;

/// One pass of a stamped writer over `pages` units at `base`: each unit
/// must still hold what the previous pass wrote (`prev` generation; `None`
/// for the first pass over fresh memory: zero), then gets generation `gen`.
/// A lost write must not wait for the next pass (the writer may be killed
/// first, and a pass of a big region is slow under TCG): each time a THP's
/// worth of units is written, the THP written before it is checked again
/// for `gen`, and so are the last two at the end of the pass (one more
/// stamp read per unit, next to the unit's whole fill: each read is a TLB
/// fill under TCG, so a second sweep of the whole region cost the writer
/// 15 %). Returns the mismatches of this pass.
///
/// # Safety
/// `base..base + pages * UNIT` must be this process's own writable mapping,
/// which no Rust reference points into.
pub unsafe fn writer_pass(
    oracle: &Oracle,
    region: u16,
    base: usize,
    pages: usize,
    prev: Option<u64>,
    gen: u64,
) -> u64 {
    let mut bad = 0;
    let per_thp = (crate::mm::pmd_size() / UNIT).max(1);
    let recheck = |from: usize, to: usize| {
        let mut bad = 0;
        for j in (from..to).step_by(RECHECK_STRIDE) {
            let expected = Expected::Stamp(Stamp {
                region,
                page: j as u32,
                generation: gen,
            });
            // SAFETY: a unit of the region (caller's contract).
            if !unsafe {
                check(
                    oracle,
                    Check::WriterPass,
                    region,
                    base + j * UNIT,
                    j as u64,
                    expected,
                )
            } {
                bad += 1;
            }
        }
        bad
    };
    for i in 0..pages {
        let addr = base + i * UNIT;
        if i % per_thp == 0 && i >= 2 * per_thp {
            bad += recheck(i - 2 * per_thp, i - per_thp);
        }
        let expected = match prev {
            None => Expected::Zero,
            Some(g) => Expected::Stamp(Stamp {
                region,
                page: i as u32,
                generation: g,
            }),
        };
        // SAFETY: a unit of the region (caller's contract).
        unsafe {
            if !check(oracle, Check::WriterPass, region, addr, i as u64, expected) {
                bad += 1;
            }
            fill(
                addr,
                &Stamp {
                    region,
                    page: i as u32,
                    generation: gen,
                },
            );
        }
    }
    // The last THPs, which no recheck inside the pass reached.
    bad += recheck(pages.saturating_sub(2 * per_thp), pages);
    oracle.verified(pages as u64);
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::oracle::region;
    use std::time::Instant;

    #[test]
    fn rechecks_inside_a_pass_raise_no_false_alarm() {
        let o = Oracle::new(Instant::now()).unwrap();
        let pmd = crate::mm::pmd_size();
        let map = crate::mm::AlignedMap::new(3 * pmd, pmd).unwrap();
        let (base, units) = (map.as_ptr() as usize, 3 * pmd / UNIT);
        // SAFETY: our own mapping, no references into it.
        unsafe {
            assert_eq!(writer_pass(&o, region::WRITER, base, units, None, 1), 0);
            assert_eq!(writer_pass(&o, region::WRITER, base, units, Some(1), 2), 0);
        }
    }

    #[test]
    fn a_pass_finds_a_page_that_went_back_and_one_that_was_zapped() {
        let o = Oracle::new(Instant::now()).unwrap();
        let map = crate::mm::AlignedMap::new(8 * UNIT, UNIT).unwrap();
        let base = map.as_ptr() as usize;
        // SAFETY: our own mapping, no references into it.
        unsafe {
            assert_eq!(writer_pass(&o, region::WRITER, base, 8, None, 1), 0);
            assert_eq!(writer_pass(&o, region::WRITER, base, 8, Some(1), 2), 0);
            // Page 3 loses the last pass (an old copy comes back), page 5
            // is zapped.
            fill(
                base + 3 * UNIT,
                &Stamp {
                    region: region::WRITER,
                    page: 3,
                    generation: 1,
                },
            );
            libc::madvise(
                (base + 5 * UNIT) as *mut libc::c_void,
                UNIT,
                libc::MADV_DONTNEED,
            );
            assert_eq!(writer_pass(&o, region::WRITER, base, 8, Some(2), 3), 2);
            assert_eq!(writer_pass(&o, region::WRITER, base, 8, Some(3), 4), 0);
            // stamp() alone decodes too.
            let s = Stamp {
                region: region::RACERS,
                page: 1,
                generation: 7,
            };
            stamp(base, &s);
            assert_eq!(read(base), Found::Stamp(s));
        }
        let c = o.take_new();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].page, 3);
        assert!(matches!(c[0].found, Found::Stamp(f) if f.generation == 1));
        assert_eq!(c[1].page, 5);
        assert_eq!(c[1].found, Found::Zero);
        assert_eq!(o.summary().verified, 32);
    }
}
