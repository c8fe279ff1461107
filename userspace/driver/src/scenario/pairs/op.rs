//! The op trait: what one racing thread does in a round.
//!
//! An [`Op`] runs once (or a short burst) on the round's object, from its
//! own thread pinned to its own CPU, released with the others by the fuzzy
//! start offsets, and records in its [`Effects`] what it did to the data:
//! the stamps it stored (only into its own pages, [`Layout::owned`]), the
//! pages it zapped or unmapped, a fork child's stores. It never checks the
//! data itself (the engine verifies after the join), except where only it
//! can see (a fork child checks its own view and reports through the
//! oracle). Errors a call may legitimately return (EAGAIN from a busy
//! page, EFAULT in a round whose object moved) are not counted; others go
//! to [`Effects::error`].
//!
//! Ops are stateless unit structs; [`op`] gives each [`UserOp`]'s. Worker
//! resources every op may need (open files, the oracle) are in
//! [`Resources`].

use super::dio::Dio;
use super::model::{Effects, Layout, Seq, StoreFx};
use super::object::Object;
use crate::oracle::{Check, Oracle, Party};
use mmrace_proto::oracle::{region, Expected, Found};
use mmrace_proto::pairs::UserOp;
use std::fs::{File, OpenOptions};
use std::sync::Arc;
use std::time::Instant;

/// What the worker opened once for every round.
pub struct Resources {
    /// /proc/self/mem, read-write: stores in rounds where the object moves.
    pub mem: Option<File>,
    /// /proc/self/pagemap.
    pub pagemap: Option<File>,
    /// A file on XFS opened O_DIRECT whose page `p` holds
    /// `stamp(p, DIO_GEN)`, and the raw disk under it; `None` without the
    /// scratch disk.
    pub dio: Option<Dio>,
    /// The two NUMA nodes.
    pub nodes: (u32, u32),
    /// Online CPUs (the threads are pinned to `slot % cpus`).
    pub cpus: usize,
    pub oracle: std::sync::Arc<Oracle>,
    /// The oracle party fork children report as.
    pub party: Party,
}

impl Resources {
    /// Opens this process's /proc/self/mem (read-write) and pagemap, each
    /// `None` when it cannot be opened, with the rest as given.
    pub fn open(
        dio: Option<Dio>,
        nodes: (u32, u32),
        oracle: &Arc<Oracle>,
        party: Party,
    ) -> Resources {
        Resources {
            mem: OpenOptions::new()
                .read(true)
                .write(true)
                .open("/proc/self/mem")
                .ok(),
            pagemap: File::open("/proc/self/pagemap").ok(),
            dio,
            nodes,
            cpus: crate::sysinfo::online_cpus() as usize,
            oracle: oracle.clone(),
            party,
        }
    }

    /// The host tests' resources: no O_DIRECT file, nodes (0, 0), the
    /// `pairs` party of `oracle`.
    #[cfg(test)]
    pub fn for_tests(oracle: &Arc<Oracle>) -> Resources {
        Resources::open(None, (0, 0), oracle, oracle.party("pairs"))
    }
}

/// One thread's timing: when it had the round's orders, when it was
/// released (before its start offset's busy loop), its op's first start,
/// the end of its first run and of its last (`--overlap-ms` repeats the
/// op), how many runs it made, and the number of the preemption shot it
/// fired, if it did.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub woke: Instant,
    pub released: Instant,
    pub start: Instant,
    /// The end of the first run: one op's time, which the start offsets
    /// and the windows are drawn from.
    pub first_end: Instant,
    pub end: Instant,
    pub runs: u32,
    pub shot: Option<u64>,
}

/// A hold an op makes this round (`windows.rs`): its thread's trap, and
/// which of its transfers ends on it.
#[derive(Clone, Copy)]
pub struct Hold<'a> {
    pub trap: &'a crate::shared::hold::Trap,
    pub index: usize,
}

/// One thread's view of the round.
pub struct RoundEnv<'a> {
    pub obj: &'a dyn Object,
    pub layout: Layout,
    /// This thread's page residue (0, 1 or 2).
    pub slot: usize,
    /// The round number over the whole run (store generations use it).
    pub round: u64,
    /// Passes a storing op makes.
    pub burst: u32,
    /// This run's number in the round (`--overlap-ms` repeats the op):
    /// its store passes follow the earlier runs' ([`RoundEnv::pass`]).
    pub rep: u32,
    pub seq: &'a Seq,
    /// The node migrating ops move the object to this round.
    pub target: u32,
    /// Another op of the round moves the object: store through
    /// /proc/self/mem, never by a user access.
    pub moving: bool,
    /// The oracle context word naming the combo, kind and round.
    pub context: u64,
    pub res: &'a Resources,
    /// An op that can hold its window open ([`super::windows::holds`])
    /// ends this transfer on the trap this round.
    pub hold: Option<Hold<'a>>,
}

impl<'a> RoundEnv<'a> {
    /// A test's environment: slot 0 of round 1, one pass, nothing moving
    /// or held.
    #[cfg(test)]
    pub fn for_tests(
        obj: &'a dyn Object,
        layout: Layout,
        seq: &'a Seq,
        res: &'a Resources,
    ) -> RoundEnv<'a> {
        RoundEnv {
            obj,
            layout,
            slot: 0,
            round: 1,
            burst: 1,
            rep: 0,
            seq,
            target: 0,
            moving: false,
            context: 0,
            res,
            hold: None,
        }
    }

    /// The address of page `p` now.
    pub fn page_addr(&self, p: usize) -> usize {
        self.obj.addr() + p * mmrace_proto::oracle::UNIT
    }

    /// What page `p` holds before the round: the model's base for the
    /// object's kind and the round's start state (from the context word).
    pub fn base(&self, p: usize) -> Expected {
        let state = mmrace_proto::pairs::unpack_context(self.context)
            .map_or(mmrace_proto::pairs::ObjState::Populated, |c| c.state);
        super::model::Model::new(self.layout, self.obj.kind(), state).base(p)
    }

    /// The thread's first `n` pages of the populated THP (the file ops'
    /// and vmsplice's pages).
    pub fn own_hot(&self, n: usize) -> Vec<usize> {
        self.layout
            .owned(self.slot, self.layout.hot())
            .take(n)
            .collect()
    }

    /// The round's number of pass `pass` of this run: the passes of the
    /// earlier runs come first, so every store generation of the round is
    /// new ([`super::model::store_gen`]).
    pub fn pass(&self, pass: u32) -> u32 {
        self.rep * self.burst + pass
    }

    /// The other node than [`RoundEnv::target`].
    pub fn source(&self) -> u32 {
        let (a, b) = self.res.nodes;
        if self.target == a {
            b
        } else {
            a
        }
    }

    /// Whether `found`, read from page `p`, matches `want`; a mismatch is
    /// reported to the oracle as the round's, at the page's address now.
    pub fn expect(&self, p: usize, want: Expected, found: &Found) -> bool {
        if want.matches(found) {
            return true;
        }
        self.res.oracle.mismatch_in(
            Check::PairsRound,
            region::PAIRS,
            self.page_addr(p),
            p as u64,
            want,
            found,
            self.context,
        );
        false
    }
}

/// A user-level operation.
pub trait Op: Send + Sync {
    fn op(&self) -> UserOp;
    /// Whether it can run in this worker; `Err(reason)` skips it for the
    /// run (reported as skipped).
    fn available(&self, _res: &Resources) -> Result<(), String> {
        Ok(())
    }
    /// Does it once (or a burst) and records the effects.
    fn run(&self, env: &RoundEnv, fx: &mut Effects);
}

/// The op of `u`.
pub fn op(u: UserOp) -> &'static dyn Op {
    use super::ops::*;
    match u {
        UserOp::Store => &data::Store,
        UserOp::Touch => &data::Touch,
        UserOp::Odirect => &data::Odirect,
        UserOp::Fork => &fork::Fork,
        UserOp::MigratePages => &migrate::MigratePages,
        UserOp::MovePages => &migrate::MovePages,
        UserOp::Mbind => &migrate::Mbind,
        UserOp::Split => &mapping::Split,
        UserOp::MunmapPart => &mapping::MunmapPart,
        UserOp::MprotectPart => &mapping::MprotectPart,
        UserOp::MprotectExec => &mapping::MprotectExec,
        UserOp::Mlock => &mapping::Mlock,
        UserOp::Mremap => &mapping::Mremap,
        UserOp::Collapse => &advice::Advice(UserOp::Collapse),
        UserOp::Dontneed => &advice::Advice(UserOp::Dontneed),
        UserOp::Free => &advice::Advice(UserOp::Free),
        UserOp::Pageout => &advice::Advice(UserOp::Pageout),
        UserOp::Cold => &advice::Advice(UserOp::Cold),
        UserOp::ClearRefs => &walk::ClearRefs,
        UserOp::Smaps => &walk::Smaps,
        UserOp::Pagemap => &walk::Pagemap,
        UserOp::Pwrite => &file::Pwrite,
        UserOp::Pread => &file::Pread,
        UserOp::PunchHole => &file::PunchHole,
        UserOp::Truncate => &file::Truncate,
        UserOp::Fallocate => &file::Fallocate,
        UserOp::Writeback => &file::Writeback,
        UserOp::Swapin => &swap::Swapin,
        UserOp::KsmMerge => &ksm::KsmMerge,
        UserOp::Uffd => &uffd::Uffd,
        UserOp::NumaHint => &numa::NumaHint,
        UserOp::Populate => &advice::Advice(UserOp::Populate),
        UserOp::Vmsplice => &pipe::Vmsplice,
        UserOp::Mincore => &walk::Mincore,
        UserOp::Willneed => &advice::Advice(UserOp::Willneed),
        UserOp::Invalidate => &file::Invalidate,
        UserOp::Compact => &migrate::Compact,
        UserOp::ProcMem => &data::ProcMem,
        UserOp::Refault => &refault::Refault,
    }
}

/// The errno of a failed call.
pub fn last_errno() -> i32 {
    crate::mm::errno()
}

/// Runs `io`, a whole-unit transfer that stores into page `p` (a pread
/// into the page, a pwrite of it to the file), between two ticks of the
/// round's sequence, and records a store of `generation` when it moved the
/// whole unit; otherwise what landed is unknown: the page is not checked,
/// and the failure is [`check`]ed as `what` against `expected`.
pub fn unit_store(
    env: &RoundEnv,
    fx: &mut Effects,
    p: usize,
    generation: u64,
    what: &str,
    expected: &[i32],
    io: impl FnOnce() -> isize,
) {
    let begin = env.seq.next();
    let n = io();
    let end = env.seq.next();
    if n == mmrace_proto::oracle::UNIT as isize {
        fx.stores.push(StoreFx {
            page: p,
            generation,
            begin,
            end,
        });
    } else {
        check(fx, what, false, expected);
        fx.gone.push(p..p + 1);
    }
}

/// Records a failed call in `fx` unless its errno is in `expected`.
pub fn check(fx: &mut Effects, what: &str, ok: bool, expected: &[i32]) {
    if ok {
        return;
    }
    let e = last_errno();
    if !expected.contains(&e) {
        fx.error(format!("{what}: {}", std::io::Error::from_raw_os_error(e)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_user_op_has_its_op() {
        for u in UserOp::ALL {
            assert_eq!(op(u).op(), u);
        }
    }
}
