//! The data oracle for oom-stall's file: read back every record the
//! writers' write() calls returned success for, after each round.
//!
//! The seed's consumer unlinks the file three seconds into the round, and
//! the victim's death would free it. So before forking the victim the driver
//! creates the file and gives it a second name (a hard link, `.verify`):
//! the consumer's unlink removes only the first, the inode and its data stay,
//! and once the victim is gone the driver reads the file through the second
//! name, checks it, and unlinks it. Both writers append (`O_APPEND`) to the
//! one file, so their records interleave, but each writer's records appear
//! in the order it wrote them: record `i` of writer `w` carries stamp
//! (`OOM_FILE + w`, `i`, round). Every 4 KiB of the file must be such a
//! stamp, the next one of its writer; each writer must have at least as
//! many records as its write() calls returned success (one more is fine: a
//! write the kill cut off between its return and its count). The reads go
//! through the page cache, or the disk for what was reclaimed under the
//! pressure; records made durable by the writers' fdatasync are reported.

use crate::oracle::{mem, Check, Oracle};
use anyhow::{Context, Result};
use mmrace_proto::oracle::{region, Expected, Found, Stamp, UNIT};
pub use mmrace_proto::results::oom_stall::RecordCheck;
use std::io::Read;
use std::path::Path;

/// Checks the file at `path` of round `round`.
pub fn verify(
    oracle: &Oracle,
    path: &Path,
    round: u64,
    counted: [u64; 2],
    synced: [u64; 2],
) -> Result<RecordCheck> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot open {} to check it", path.display()))?;
    let mut c = RecordCheck {
        counted,
        synced,
        ..Default::default()
    };
    // 1 MiB of u64s: aligned for the stamp reader.
    let mut buf = vec![0u64; (1 << 20) / 8];
    let mut next = [0u64; 2];
    let mut offset = 0u64;
    let bad = |c: &mut RecordCheck, off: u64, expected: Expected, found: &Found| {
        c.mismatches += 1;
        let page = off / UNIT as u64;
        oracle.mismatch(
            Check::OomFile,
            expected_region(&expected),
            off as usize,
            page,
            expected,
            found,
        );
    };
    loop {
        // SAFETY: viewing our own u64 buffer as bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * 8) };
        let n = read_full(&mut f, bytes)?;
        let whole = n / UNIT;
        for u in 0..whole {
            // SAFETY: unit `u` of our buffer, inside the `n` bytes read.
            let found = unsafe { mem::read(buf.as_ptr() as usize + u * UNIT) };
            let off = offset + (u * UNIT) as u64;
            c.records += 1;
            match found {
                Found::Stamp(s)
                    if (s.region == region::OOM_FILE || s.region == region::OOM_FILE + 1)
                        && s.generation == round =>
                {
                    let w = usize::from(s.region - region::OOM_FILE);
                    if u64::from(s.page) != next[w] {
                        bad(
                            &mut c,
                            off,
                            Expected::Stamp(record(w, next[w], round)),
                            &found,
                        );
                    }
                    next[w] = u64::from(s.page) + 1;
                }
                _ => bad(
                    &mut c,
                    off,
                    Expected::Stamp(record(0, next[0], round)),
                    &found,
                ),
            }
        }
        offset += (whole * UNIT) as u64;
        if n < bytes.len() {
            c.tail_bytes = (n - whole * UNIT) as u64;
            break;
        }
    }
    oracle.verified(c.records);
    c.found = next;
    for w in 0..2 {
        if next[w] < counted[w] {
            // Records whose write() returned success are missing.
            bad(
                &mut c,
                offset,
                Expected::Stamp(record(w, next[w], round)),
                &Found::Zero,
            );
        }
    }
    Ok(c)
}

fn expected_region(e: &Expected) -> u16 {
    match e {
        Expected::Stamp(s) => s.region,
        Expected::Zero => region::OOM_FILE,
    }
}

fn record(w: usize, i: u64, round: u64) -> Stamp {
    Stamp {
        region: region::OOM_FILE + w as u16,
        page: i as u32,
        generation: round,
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    fn unit(s: &Stamp) -> Vec<u8> {
        let mut b = vec![0u64; UNIT / 8];
        // SAFETY: our own 8-aligned buffer of UNIT bytes.
        unsafe { mem::fill(b.as_mut_ptr() as usize, s) };
        b.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    #[test]
    fn interleaved_writers_pass_and_a_lost_or_stale_record_fails() {
        let dir = std::env::temp_dir().join(format!("mmrace-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let write = |recs: &[(usize, u64, u64)]| {
            let mut f = std::fs::File::create(&path).unwrap();
            for &(w, i, g) in recs {
                f.write_all(&unit(&record(w, i, g))).unwrap();
            }
        };
        let o = Oracle::new(Instant::now()).unwrap();
        write(&[(0, 0, 5), (1, 0, 5), (0, 1, 5), (0, 2, 5), (1, 1, 5)]);
        let c = verify(&o, &path, 5, [3, 2], [0, 0]).unwrap();
        assert_eq!((c.records, c.found, c.mismatches), (5, [3, 2], 0));
        // One more than counted: a write the kill cut off after it landed.
        let c = verify(&o, &path, 5, [2, 2], [0, 0]).unwrap();
        assert_eq!(c.mismatches, 0);
        assert_eq!(o.mismatches(), 0);
        // A record from an older round, then a missing one.
        write(&[(0, 0, 5), (1, 0, 4), (0, 1, 5)]);
        let c = verify(&o, &path, 5, [2, 2], [0, 0]).unwrap();
        assert_eq!(c.mismatches, 2, "{c:?}");
        let sent = o.take_new();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].vaddr, UNIT as u64);
        assert!(matches!(sent[0].found, Found::Stamp(s) if s.generation == 4));
        assert_eq!(sent[1].found, Found::Zero);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
