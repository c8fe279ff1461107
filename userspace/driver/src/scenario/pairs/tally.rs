//! The run's tallies in a shared page: the worker (a forked child) writes
//! them, the driver reads them (op counts while it runs, the whole result
//! at the end), and a restarted worker continues from them.
//!
//! Layout (words): a header; [`MAX_ROWS`] rows keyed by a context word
//! (combo, kind and start state, round 0); [`MAX_FINDINGS`] findings; a skip text per
//! user op and per kind; the worker's fatal error text; per-op call counts;
//! the time per phase of the rounds ([`T`]).

use crate::shared::slots::SharedSlots;
use mmrace_proto::oracle::{Expected, Found, STAMP_WORDS};
use mmrace_proto::pairs::{pack_context, unpack_context, Combo, ObjKind, ObjState, UserOp};
use mmrace_proto::results::pairs::{Finding, Row, Skipped};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

pub const MAX_ROWS: usize = 4096;
pub const MAX_FINDINGS: usize = 8;
const TEXT_WORDS: usize = 24;

/// Header words.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub enum H {
    Stop,
    Slices,
    Rounds,
    Verified,
    Workers,
    /// 0: not known yet, 1: the module's meets file was read, 2: absent.
    Meets,
    Rows,
    Findings,
    /// The window mechanisms (`windows.rs`): rounds the preemption waker
    /// was armed, woke, woke inside the racer's op; whether it ran
    /// SCHED_FIFO (1) or not (2).
    PreemptRounds,
    PreemptWoke,
    PreemptInside,
    PreemptRt,
    /// Rounds with a userfaultfd hold armed, holds, resolved holds,
    /// resolved holds that overlapped another op.
    HeldRounds,
    Holds,
    HeldResolved,
    HeldInside,
    /// ksmd in sequential rounds (`ksmd.rs`): rounds that stopped it,
    /// its turns, the full scans in them, turns cut short; 1 while a
    /// round has it stopped.
    KsmdRounds,
    KsmdTurns,
    KsmdScans,
    KsmdShort,
    KsmdStopped,
}
const HEADER: usize = 21;

/// Row fields.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub enum F {
    Key,
    Slices,
    Rounds,
    TripleRounds,
    Meets,
    Near,
    Catches,
    Errors,
    Metered,
    /// Over the metered slices of the pair alone (no third op): the calls
    /// of each op's module ops (the module counts calls per operation, any
    /// task), alias overlaps between them on the kind, and their meets
    /// counted on another memory kind (`catalogue::meets_elsewhere`).
    CallsA,
    CallsB,
    Alias,
    Elsewhere,
}
const ROW_WORDS: usize = 13;

/// Nanoseconds per phase of the worker's rounds and slices (`clock.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum T {
    Rounds,
    Wall,
    Create,
    Stamp,
    Plan,
    Release,
    Ops,
    Stagger,
    Join,
    Record,
    Verify,
    Drop,
    Crew,
    Meets,
    Steer,
    /// The start offsets' delays: as planned, and as spun.
    Planned,
    Spun,
    /// Op runs (a count), and the time all ops of a round ran at once.
    Runs,
    Together,
    /// Of `Meets`: reading the debugfs files (the module's rendering and
    /// the copy), parsing apart.
    MeetsRead,
}
const TIME_WORDS: usize = 20;

const FIND_WORDS: usize = 6 + STAMP_WORDS + 1;
const ROWS_AT: usize = HEADER;
const FIND_AT: usize = ROWS_AT + MAX_ROWS * ROW_WORDS;
const SKIP_OPS_AT: usize = FIND_AT + MAX_FINDINGS * FIND_WORDS;
const SKIP_KINDS_AT: usize = SKIP_OPS_AT + UserOp::ALL.len() * TEXT_WORDS;
const FATAL_AT: usize = SKIP_KINDS_AT + ObjKind::ALL.len() * TEXT_WORDS;
const CALLS_AT: usize = FATAL_AT + TEXT_WORDS;
const TIMES_AT: usize = CALLS_AT + UserOp::ALL.len();
const WORDS: usize = TIMES_AT + TIME_WORDS;

pub struct Tally(SharedSlots);

impl Tally {
    pub fn new() -> anyhow::Result<Tally> {
        Ok(Tally(SharedSlots::new(WORDS)?))
    }

    fn w(&self, i: usize) -> &std::sync::atomic::AtomicU64 {
        self.0.get(i)
    }

    pub fn get(&self, h: H) -> u64 {
        self.w(h as usize).load(Ordering::Acquire)
    }

    pub fn set(&self, h: H, v: u64) {
        self.w(h as usize).store(v, Ordering::Release)
    }

    pub fn add(&self, h: H, v: u64) {
        self.w(h as usize).fetch_add(v, Ordering::AcqRel);
    }

    /// Counts a call of `op`.
    pub fn called(&self, op: UserOp) {
        self.w(CALLS_AT + op.index())
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn calls(&self, op: UserOp) -> u64 {
        self.w(CALLS_AT + op.index()).load(Ordering::Relaxed)
    }

    /// Adds `ns` to phase `t`'s time.
    pub fn add_time(&self, t: T, ns: u64) {
        self.w(TIMES_AT + t as usize)
            .fetch_add(ns, Ordering::Relaxed);
    }

    pub fn time(&self, t: T) -> u64 {
        self.w(TIMES_AT + t as usize).load(Ordering::Relaxed)
    }

    /// The row of (`combo`, `kind`, `state`) if it has one.
    pub fn row_if_any(&self, combo: &Combo, kind: ObjKind, state: ObjState) -> Option<usize> {
        let key = pack_context(combo, kind, state, 0);
        let n = self.get(H::Rows) as usize;
        (0..n).find(|&i| self.field(i, F::Key) == key)
    }

    /// The rows of (`combo`, `kind`) in every state.
    pub fn rows_of(&self, combo: &Combo, kind: ObjKind) -> Vec<usize> {
        ObjState::ALL
            .iter()
            .filter_map(|s| self.row_if_any(combo, kind, *s))
            .collect()
    }

    /// Field `f` summed over the rows of (`combo`, `kind`) in every state.
    pub fn sum(&self, combo: &Combo, kind: ObjKind, f: F) -> u64 {
        self.rows_of(combo, kind)
            .into_iter()
            .map(|i| self.field(i, f))
            .sum()
    }

    /// Fields `fs` of every (combo, kind) that has a row, each summed over
    /// its start states ([`Tally::sum`] for all of them in one pass over
    /// the rows: steering reads every candidate's sums before each slice,
    /// and a scan of the rows per candidate and field cost it 50 to 80 ms
    /// a slice under TCG).
    pub fn sums_by_pair<const N: usize>(&self, fs: [F; N]) -> HashMap<(Combo, ObjKind), [u64; N]> {
        let mut out: HashMap<(Combo, ObjKind), [u64; N]> = HashMap::new();
        for i in 0..self.get(H::Rows) as usize {
            let Some(c) = unpack_context(self.field(i, F::Key)) else {
                continue;
            };
            let sums = out.entry((c.combo, c.kind)).or_insert([0; N]);
            for (sum, f) in sums.iter_mut().zip(fs) {
                *sum += self.field(i, f);
            }
        }
        out
    }

    /// The row of (`combo`, `kind`, `state`), made on first use; `None`
    /// when the table is full.
    pub fn row(&self, combo: &Combo, kind: ObjKind, state: ObjState) -> Option<usize> {
        if let Some(i) = self.row_if_any(combo, kind, state) {
            return Some(i);
        }
        let key = pack_context(combo, kind, state, 0);
        let n = self.get(H::Rows) as usize;
        if n == MAX_ROWS {
            return None;
        }
        self.w(ROWS_AT + n * ROW_WORDS)
            .store(key, Ordering::Release);
        self.set(H::Rows, n as u64 + 1);
        Some(n)
    }

    pub fn field(&self, row: usize, f: F) -> u64 {
        self.w(ROWS_AT + row * ROW_WORDS + f as usize)
            .load(Ordering::Acquire)
    }

    pub fn bump(&self, row: usize, f: F, v: u64) {
        self.w(ROWS_AT + row * ROW_WORDS + f as usize)
            .fetch_add(v, Ordering::AcqRel);
    }

    /// Every row, typed.
    pub fn rows(&self) -> Vec<Row> {
        (0..self.get(H::Rows) as usize)
            .filter_map(|i| {
                let c = unpack_context(self.field(i, F::Key))?;
                Some(Row {
                    combo: c.combo.name(),
                    ops: c.combo.0,
                    kind: Some(c.kind),
                    state: Some(c.state),
                    slices: self.field(i, F::Slices),
                    rounds: self.field(i, F::Rounds),
                    triple_rounds: self.field(i, F::TripleRounds),
                    meets: self.field(i, F::Meets),
                    near: self.field(i, F::Near),
                    metered_rounds: self.field(i, F::Metered),
                    calls_a: self.field(i, F::CallsA),
                    calls_b: self.field(i, F::CallsB),
                    alias: self.field(i, F::Alias),
                    meets_elsewhere: self.field(i, F::Elsewhere),
                    catches: self.field(i, F::Catches),
                    op_errors: self.field(i, F::Errors),
                })
            })
            .collect()
    }

    /// Keeps a finding (the first [`MAX_FINDINGS`]).
    pub fn finding(&self, context: u64, page: usize, vaddr: usize, exp: Expected, found: &Found) {
        let i = self.w(H::Findings as usize).fetch_add(1, Ordering::AcqRel) as usize;
        if i >= MAX_FINDINGS {
            return;
        }
        let base = FIND_AT + i * FIND_WORDS;
        let (ek, eg) = match exp {
            Expected::Zero => (0, 0),
            Expected::Stamp(s) => (1, s.generation),
        };
        let (words, last) = super::model::found_raw(found);
        let vals = [context, page as u64, vaddr as u64, ek, eg, 1];
        for (k, v) in vals.into_iter().chain(words).chain([last]).enumerate() {
            self.w(base + k).store(v, Ordering::Release);
        }
    }

    pub fn findings(&self) -> Vec<Finding> {
        let n = (self.get(H::Findings) as usize).min(MAX_FINDINGS);
        (0..n)
            .filter_map(|i| {
                let r = |k: usize| self.w(FIND_AT + i * FIND_WORDS + k).load(Ordering::Acquire);
                if r(5) != 1 {
                    return None; // being written when the worker died
                }
                let c = unpack_context(r(0))?;
                let page = r(1);
                let expected = match r(3) {
                    0 => Expected::Zero,
                    _ => Expected::Stamp(super::model::stamp(page as usize, r(4))),
                };
                let mut words = [0; STAMP_WORDS];
                for (k, w) in words.iter_mut().enumerate() {
                    *w = r(6 + k);
                }
                Some(Finding {
                    combo: c.combo.name(),
                    kind: c.kind,
                    state: Some(c.state),
                    round: c.round,
                    page,
                    vaddr: r(2),
                    expected,
                    found: Found::decode(words, r(6 + STAMP_WORDS)),
                })
            })
            .collect()
    }

    fn put_text(&self, at: usize, text: &str) {
        let bytes = text.as_bytes();
        let n = bytes.len().min((TEXT_WORDS - 1) * 8);
        for (k, chunk) in bytes[..n].chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.w(at + 1 + k)
                .store(u64::from_le_bytes(b), Ordering::Relaxed);
        }
        self.w(at).store(n as u64 + 1, Ordering::Release);
    }

    fn text(&self, at: usize) -> Option<String> {
        let n = self.w(at).load(Ordering::Acquire) as usize;
        if n == 0 {
            return None;
        }
        let mut bytes = Vec::with_capacity(n);
        for k in 0..(n - 1).div_ceil(8) {
            bytes.extend(self.w(at + 1 + k).load(Ordering::Relaxed).to_le_bytes());
        }
        bytes.truncate(n - 1);
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn skip_op(&self, op: UserOp, why: &str) {
        self.put_text(SKIP_OPS_AT + op.index() * TEXT_WORDS, why);
    }

    pub fn skip_kind(&self, kind: ObjKind, why: &str) {
        let k = ObjKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
        self.put_text(SKIP_KINDS_AT + k * TEXT_WORDS, why);
    }

    pub fn op_skipped(&self, op: UserOp) -> Option<String> {
        self.text(SKIP_OPS_AT + op.index() * TEXT_WORDS)
    }

    pub fn kind_skipped(&self, kind: ObjKind) -> Option<String> {
        let k = ObjKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
        self.text(SKIP_KINDS_AT + k * TEXT_WORDS)
    }

    /// Every skip, typed.
    pub fn skipped(&self) -> Vec<Skipped> {
        let ops = UserOp::ALL
            .iter()
            .filter_map(|o| self.op_skipped(*o).map(|why| (o.word(), why)));
        let kinds = ObjKind::ALL
            .iter()
            .filter_map(|k| self.kind_skipped(*k).map(|why| (k.word(), why)));
        ops.chain(kinds)
            .map(|(w, why)| Skipped {
                what: w.to_string(),
                why,
            })
            .collect()
    }

    pub fn fatal(&self, why: &str) {
        self.put_text(FATAL_AT, why);
    }

    pub fn fatal_text(&self) -> Option<String> {
        self.text(FATAL_AT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::oracle::Stamp;
    use UserOp::*;

    #[test]
    fn rows_findings_and_texts_round_trip() {
        let t = Tally::new().unwrap();
        let c = Combo::new(vec![Store, MigratePages]);
        let r = t.row(&c, ObjKind::Anon, ObjState::Populated).unwrap();
        assert_eq!(t.row(&c, ObjKind::Anon, ObjState::Populated), Some(r));
        let r2 = t.row(&c, ObjKind::Memfd, ObjState::Populated).unwrap();
        assert_ne!(r, r2);
        t.bump(r, F::Rounds, 5);
        t.bump(r, F::Meets, 11);
        let rows = t.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].combo.as_str(), rows[0].rounds, rows[0].meets),
            ("store+migrate-pages", 5, 11)
        );
        let ctx = pack_context(&c, ObjKind::Anon, ObjState::Small, 42);
        let old = Stamp {
            region: mmrace_proto::oracle::region::PAIRS,
            page: 9,
            generation: 3,
        };
        t.finding(
            ctx,
            9,
            0x1000,
            Expected::Stamp(super::super::model::stamp(9, 4)),
            &Found::Stamp(old),
        );
        let f = &t.findings()[0];
        assert_eq!((f.round, f.page, f.kind), (42, 9, ObjKind::Anon));
        assert_eq!(f.found, Found::Stamp(old));
        assert_eq!(f.state, Some(ObjState::Small));
        assert!(
            f.line()
                .contains("store+migrate-pages on small anon, round 42"),
            "{}",
            f.line()
        );
        t.skip_op(Odirect, "no XFS scratch disk for its O_DIRECT file, which is a long reason indeed, longer than the room");
        t.skip_kind(ObjKind::Memfd, "off");
        assert!(t
            .op_skipped(Odirect)
            .unwrap()
            .starts_with("no XFS scratch disk"));
        assert_eq!(t.kind_skipped(ObjKind::Memfd).as_deref(), Some("off"));
        assert_eq!(t.op_skipped(Store), None);
        assert_eq!(t.skipped().len(), 2);
        t.called(Store);
        assert_eq!(t.calls(Store), 1);
        // A pair's rows in two states: summed for steering.
        let r3 = t.row(&c, ObjKind::Anon, ObjState::Mthp).unwrap();
        t.bump(r3, F::Rounds, 2);
        assert_eq!(t.sum(&c, ObjKind::Anon, F::Rounds), 7);
        assert_eq!(t.rows_of(&c, ObjKind::Anon), [r, r3]);
    }

    /// The one-pass sums steering reads equal each pair's [`Tally::sum`]
    /// over its states, for every field asked, with pairs and kinds apart.
    #[test]
    fn sums_by_pair_equal_the_sums_of_each_pairs_rows() {
        use UserOp::*;
        let t = Tally::new().unwrap();
        let combos = [
            Combo::new(vec![Store, MigratePages]),
            Combo::new(vec![Touch, Split]),
            Combo::new(vec![Store, Touch, Dontneed]),
        ];
        let mut v = 1;
        for (i, c) in combos.iter().enumerate() {
            for kind in [ObjKind::Anon, ObjKind::Memfd] {
                for state in &ObjState::ALL[..=i + 1] {
                    let r = t.row(c, kind, *state).unwrap();
                    for f in [F::Meets, F::Rounds, F::Metered] {
                        t.bump(r, f, v);
                        v += 3;
                    }
                }
            }
        }
        let fs = [F::Meets, F::Rounds, F::TripleRounds, F::Metered];
        let sums = t.sums_by_pair(fs);
        assert_eq!(sums.len(), combos.len() * 2);
        for c in &combos {
            for kind in [ObjKind::Anon, ObjKind::Memfd] {
                let want = fs.map(|f| t.sum(c, kind, f));
                assert_eq!(sums[&(c.clone(), kind)], want, "{c} on {kind}");
                assert!(want[0] > 0 && want[2] == 0);
            }
        }
        assert!(!sums.contains_key(&(Combo::new(vec![Store, Split]), ObjKind::Anon)));
    }
}
