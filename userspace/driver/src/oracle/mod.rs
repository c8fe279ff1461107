//! The oracles on the driver side: the data oracle's stamping and checking
//! of memory and file records ([`mem`]), the place where any party, in the
//! driver or in a forked child, reports a mismatch ([`Oracle`]), and the
//! taint reading ([`taint`]).
//!
//! The stamp format and its decoding are in [`mmrace_proto::oracle`]; this
//! module only reads and writes them.
//!
//! # Reporting from forked children
//!
//! The thp-race writer and racers run in a forked child that must not touch
//! the driver's locks (stdout, the op registry). So an [`Oracle`] lives in a
//! `MAP_SHARED` mapping made before any fork: every party records its
//! recent operations in its own ring there ([`Party::record`]), and a check
//! that fails fills one mismatch slot (with a copy of every ring at that
//! moment) using atomics only. The driver's streamer [`Oracle::drain`]s the
//! filled slots into `Corruption` messages at every snapshot and at the end.
//! The first [`MAX_REPORTED`] mismatches are sent in full, the rest only
//! counted; the parties keep running either way.

pub mod mem;
pub mod taint;

use crate::shared::slots::SharedSlots;
use anyhow::Result;
use mmrace_proto::oracle::{
    region, Corruption, DataSummary, Expected, Found, RecentOp, Stamp, MAX_REPORTED, STAMP_WORDS,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Parties an oracle can hold rings for.
pub const MAX_PARTIES: usize = 32;
/// Operations kept per party.
pub const RING: usize = 8;
const ENTRY_WORDS: usize = 3;
/// Per party: a head counter, then the ring.
const PARTY_WORDS: usize = 1 + RING * ENTRY_WORDS;
const RINGS_WORDS: usize = MAX_PARTIES * PARTY_WORDS;

/// Mismatch slot layout (words).
const M_READY: usize = 0;
const M_T_MS: usize = 1;
const M_CHECK: usize = 2;
const M_REGION: usize = 3;
const M_VADDR: usize = 4;
const M_PAGE: usize = 5;
const M_EXP_KIND: usize = 6; // 0 zero, 1 stamp
const M_EXP_REGION: usize = 7;
const M_EXP_PAGE: usize = 8;
const M_EXP_GEN: usize = 9;
const M_FOUND: usize = 10; // STAMP_WORDS words, then the last word
const M_LAST: usize = M_FOUND + STAMP_WORDS;
const M_CONTEXT: usize = M_LAST + 1;
const M_RINGS: usize = M_CONTEXT + 1;
const SLOT_WORDS: usize = M_RINGS + RINGS_WORDS;

/// Global words: mismatch count, units verified.
const G_COUNT: usize = 0;
const G_VERIFIED: usize = 1;
const G_WORDS: usize = 2;

/// What a party did, as recorded in its ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    WritePass = 1,
    Verify,
    Dontneed,
    Mprotect,
    Remap,
    Mremap,
    ZapChunk,
    Prepare,
    Stamp,
    Migrate,
    ClearRefs,
    Split,
    Kill,
    Munmap,
    Write,
    Fdatasync,
    Read,
    Free,
    Mlock,
}

impl Op {
    const ALL: [Op; 19] = [
        Op::WritePass,
        Op::Verify,
        Op::Dontneed,
        Op::Mprotect,
        Op::Remap,
        Op::Mremap,
        Op::ZapChunk,
        Op::Prepare,
        Op::Stamp,
        Op::Migrate,
        Op::ClearRefs,
        Op::Split,
        Op::Kill,
        Op::Munmap,
        Op::Write,
        Op::Fdatasync,
        Op::Read,
        Op::Free,
        Op::Mlock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::WritePass => "write-pass",
            Op::Verify => "verify",
            Op::Dontneed => "dontneed",
            Op::Mprotect => "mprotect",
            Op::Remap => "remap",
            Op::Mremap => "mremap",
            Op::ZapChunk => "zap-chunk",
            Op::Prepare => "prepare",
            Op::Stamp => "stamp",
            Op::Migrate => "migrate",
            Op::ClearRefs => "clear_refs",
            Op::Split => "split",
            Op::Kill => "kill",
            Op::Munmap => "munmap",
            Op::Write => "write",
            Op::Fdatasync => "fdatasync",
            Op::Read => "read",
            Op::Free => "free",
            Op::Mlock => "mlock",
        }
    }

    fn from_code(v: u64) -> Option<Op> {
        Op::ALL.into_iter().find(|o| *o as u64 == v)
    }
}

/// Which check found a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Check {
    /// The thp-race writer, before it overwrote a page of its last pass.
    WriterPass = 1,
    /// The racers' leader after a round on a chunk.
    RacerRound,
    /// smoke, after its clear_refs, split and migrations.
    Smoke,
    /// oom-stall: a file record read back after the round.
    OomFile,
    /// pairs: the object after a round (context: the pair, kind, round).
    PairsRound,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::WriterPass => "writer-pass",
            Check::RacerRound => "racer-round",
            Check::Smoke => "smoke",
            Check::OomFile => "oom-file",
            Check::PairsRound => "pairs-round",
        }
    }

    fn from_code(v: u64) -> Option<Check> {
        [
            Check::WriterPass,
            Check::RacerRound,
            Check::Smoke,
            Check::OomFile,
            Check::PairsRound,
        ]
        .into_iter()
        .find(|c| *c as u64 == v)
    }
}

/// A party's handle: its ring index. Plain data, valid in forked children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Party(usize);

/// The shared mismatch mailbox and op rings; see the module docs.
pub struct Oracle {
    t0: Instant,
    global: SharedSlots,
    rings: SharedSlots,
    slots: SharedSlots,
    /// Driver side only: party names by index, mismatch slots sent.
    names: Mutex<Vec<String>>,
    sent: AtomicU64,
}

impl Oracle {
    /// `t0` is the driver's time base (`Ctx::start`).
    pub fn new(t0: Instant) -> Result<Oracle> {
        Ok(Oracle {
            t0,
            global: SharedSlots::new(G_WORDS)?,
            rings: SharedSlots::new(RINGS_WORDS)?,
            slots: SharedSlots::new(MAX_REPORTED * SLOT_WORDS)?,
            names: Mutex::new(Vec::new()),
            sent: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }

    /// The ring of party `name`, created on first use. Call it in the driver
    /// before forking the process the party runs in. Past [`MAX_PARTIES`]
    /// parties share the last ring.
    pub fn party(&self, name: &str) -> Party {
        let mut names = self.names.lock().unwrap();
        if let Some(i) = names.iter().position(|n| n == name) {
            return Party(i);
        }
        if names.len() == MAX_PARTIES {
            return Party(MAX_PARTIES - 1);
        }
        names.push(name.to_string());
        Party(names.len() - 1)
    }

    /// Records that `party` starts `op` on `addr`. Atomics only: fork-safe.
    pub fn record(&self, party: Party, op: Op, addr: usize) {
        let base = party.0 * PARTY_WORDS;
        let head = self.rings.get(base).fetch_add(1, Ordering::Relaxed) as usize;
        let e = base + 1 + (head % RING) * ENTRY_WORDS;
        self.rings.get(e).store(self.now_ms(), Ordering::Relaxed);
        self.rings.get(e + 1).store(op as u64, Ordering::Relaxed);
        self.rings.get(e + 2).store(addr as u64, Ordering::Relaxed);
    }

    /// Counts `n` units checked.
    pub fn verified(&self, n: u64) {
        self.global.get(G_VERIFIED).fetch_add(n, Ordering::Relaxed);
    }

    /// Mismatches found so far.
    pub fn mismatches(&self) -> u64 {
        self.global.get(G_COUNT).load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> DataSummary {
        DataSummary {
            verified: self.global.get(G_VERIFIED).load(Ordering::Relaxed),
            mismatches: self.mismatches(),
            reported: self.sent.load(Ordering::Relaxed),
        }
    }

    /// Reports a unit that did not hold what it should. Atomics only:
    /// fork-safe, callable from any party in any process.
    pub fn mismatch(
        &self,
        check: Check,
        region: u16,
        vaddr: usize,
        page: u64,
        expected: Expected,
        found: &Found,
    ) {
        self.mismatch_in(check, region, vaddr, page, expected, found, 0)
    }

    /// [`Oracle::mismatch`] with a context word the check decodes for the
    /// report ([`Check::PairsRound`]: `mmrace_proto::pairs::pack_context`;
    /// 0: none).
    #[allow(clippy::too_many_arguments)]
    pub fn mismatch_in(
        &self,
        check: Check,
        region: u16,
        vaddr: usize,
        page: u64,
        expected: Expected,
        found: &Found,
        context: u64,
    ) {
        let i = self.global.get(G_COUNT).fetch_add(1, Ordering::Relaxed) as usize;
        if i >= MAX_REPORTED {
            return;
        }
        let w = |k: usize, v: u64| {
            self.slots
                .get(i * SLOT_WORDS + k)
                .store(v, Ordering::Relaxed)
        };
        w(M_T_MS, self.now_ms());
        w(M_CHECK, check as u64);
        w(M_REGION, u64::from(region));
        w(M_VADDR, vaddr as u64);
        w(M_PAGE, page);
        match expected {
            Expected::Zero => w(M_EXP_KIND, 0),
            Expected::Stamp(s) => {
                w(M_EXP_KIND, 1);
                w(M_EXP_REGION, u64::from(s.region));
                w(M_EXP_PAGE, u64::from(s.page));
                w(M_EXP_GEN, s.generation);
            }
        }
        let (words, last) = match *found {
            Found::Stamp(s) => {
                let words = s.words();
                (words, words[STAMP_WORDS - 1])
            }
            Found::Zero => ([0; STAMP_WORDS], 0),
            Found::Garbage { words, last } => (words, last),
        };
        for (k, v) in words.into_iter().enumerate() {
            w(M_FOUND + k, v);
        }
        w(M_LAST, last);
        w(M_CONTEXT, context);
        for k in 0..RINGS_WORDS {
            w(M_RINGS + k, self.rings.get(k).load(Ordering::Relaxed));
        }
        self.slots
            .get(i * SLOT_WORDS + M_READY)
            .store(1, Ordering::Release);
    }

    /// The filled mismatch slots not sent yet, as reports. Driver side only.
    pub fn take_new(&self) -> Vec<Corruption> {
        let names = self.names.lock().unwrap().clone();
        let mut out = Vec::new();
        loop {
            let i = self.sent.load(Ordering::Relaxed) as usize;
            if i >= MAX_REPORTED {
                break;
            }
            let r = |k: usize| self.slots.get(i * SLOT_WORDS + k).load(Ordering::Relaxed);
            if self
                .slots
                .get(i * SLOT_WORDS + M_READY)
                .load(Ordering::Acquire)
                == 0
            {
                break;
            }
            let expected = match r(M_EXP_KIND) {
                0 => Expected::Zero,
                _ => Expected::Stamp(Stamp {
                    region: r(M_EXP_REGION) as u16,
                    page: r(M_EXP_PAGE) as u32,
                    generation: r(M_EXP_GEN),
                }),
            };
            let mut words = [0; STAMP_WORDS];
            for (k, w) in words.iter_mut().enumerate() {
                *w = r(M_FOUND + k);
            }
            let mut recent_ops = BTreeMap::new();
            for (p, name) in names.iter().enumerate() {
                let base = M_RINGS + p * PARTY_WORDS;
                let head = r(base) as usize;
                let ops: Vec<RecentOp> = (head.saturating_sub(RING)..head)
                    .filter_map(|n| {
                        let e = base + 1 + (n % RING) * ENTRY_WORDS;
                        Some(RecentOp {
                            t_ms: r(e),
                            op: Op::from_code(r(e + 1))?.name().to_string(),
                            addr: r(e + 2),
                        })
                    })
                    .collect();
                if !ops.is_empty() {
                    recent_ops.insert(name.clone(), ops);
                }
            }
            let check = Check::from_code(r(M_CHECK));
            let context = match (check, r(M_CONTEXT)) {
                (Some(Check::PairsRound), w) => mmrace_proto::pairs::describe_context(w),
                _ => None,
            };
            out.push(Corruption {
                t_ms: r(M_T_MS),
                check: check.map_or("unknown", Check::name).to_string(),
                region: region::name(r(M_REGION) as u16),
                vaddr: r(M_VADDR),
                page: r(M_PAGE),
                expected,
                found: Found::decode(words, r(M_LAST)),
                recent_ops,
                context,
            });
            self.sent.fetch_add(1, Ordering::Relaxed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_in_a_child_reaches_the_driver_with_every_ring() {
        let o = Oracle::new(Instant::now()).unwrap();
        let (w, m) = (o.party("writer"), o.party("migrate"));
        assert_eq!(o.party("writer"), w);
        for i in 0..(RING + 3) {
            o.record(m, Op::Migrate, i);
        }
        let s = Stamp {
            region: region::WRITER,
            page: 5,
            generation: 9,
        };
        // SAFETY: the child only uses atomics on shared memory and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            o.record(w, Op::WritePass, 0x7000_0000_0000);
            let old = Stamp { generation: 8, ..s };
            o.mismatch(
                Check::WriterPass,
                region::WRITER,
                0x7000_0000_5000,
                5,
                Expected::Stamp(s),
                &Found::Stamp(old),
            );
            // SAFETY: leaves the forked test child at once.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child made above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let c = o.take_new();
        assert_eq!(c.len(), 1);
        let c = &c[0];
        assert_eq!(
            (c.vaddr, c.page, c.check.as_str()),
            (0x7000_0000_5000, 5, "writer-pass")
        );
        assert_eq!(c.expected, Expected::Stamp(s));
        assert!(matches!(c.found, Found::Stamp(f) if f.generation == 8));
        assert_eq!(c.recent_ops["writer"].len(), 1);
        let mig = &c.recent_ops["migrate"];
        assert_eq!(mig.len(), RING);
        assert_eq!(mig.last().unwrap().addr, RING as u64 + 2);
        assert!(o.take_new().is_empty());
        // Past MAX_REPORTED: counted, not sent.
        for _ in 0..(MAX_REPORTED + 5) {
            o.mismatch(
                Check::Smoke,
                region::SMOKE,
                0,
                0,
                Expected::Zero,
                &Found::Zero,
            );
        }
        assert_eq!(o.take_new().len(), MAX_REPORTED - 1);
        let sum = o.summary();
        assert_eq!(
            (sum.mismatches, sum.reported),
            (MAX_REPORTED as u64 + 6, MAX_REPORTED as u64)
        );
    }
}
