//! ksmd in `--sequential` rounds. ksmd scans whatever a round's ops do: in
//! a racing round it is a third party, and a bug between ksmd and one op
//! (a merge under an O_DIRECT read in flight, say) shows up whether or not
//! the two ops overlap, so a sequential round that leaves ksmd running
//! does not show that a catch needed the pair's own concurrency.
//!
//! So a sequential round stops ksmd for its ops ([`Gate::close`]: `run` 0,
//! which waits for the batch ksmd may be scanning) and gives it turns of
//! its own, one after each op ([`turn`]): `run` 1 until `full_scans` has
//! moved on by two (the least in which a page goes through the unstable
//! tree and merges) or [`TURN_WAIT`], then `run` 0 again. Nothing of ksmd
//! overlaps an op, and whatever it would merge between the ops it still
//! merges. The gate opens when the round's ops are done (the next object
//! is made with ksmd running). A worker that died with ksmd stopped leaves
//! a mark in the tallies, and the next worker starts ksmd again
//! ([`recover`]).

use super::tally::{Tally, H};
use crate::memenv::ksm::Ksm;
use std::time::{Duration, Instant};

/// The longest turn ksmd gets (the `ksm-merge` op's own wait).
pub const TURN_WAIT: Duration = super::ops::ksm::KSM_WAIT;

/// ksmd stopped for a sequential round's ops; started again on drop.
pub struct Gate<'t> {
    tally: &'t Tally,
}

impl<'t> Gate<'t> {
    /// Stops ksmd when it runs; `None` when it does not (no kind or op of
    /// the run needs it) or cannot be stopped.
    pub fn close(tally: &'t Tally) -> Option<Gate<'t>> {
        if !Ksm::running() {
            return None;
        }
        tally.set(H::KsmdStopped, 1);
        if Ksm::set_running(false).is_err() {
            tally.set(H::KsmdStopped, 0);
            return None;
        }
        tally.add(H::KsmdRounds, 1);
        Some(Gate { tally })
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        if Ksm::set_running(true).is_ok() {
            self.tally.set(H::KsmdStopped, 0);
        }
    }
}

/// Whether this process has memory ksmd may merge (`ksm_mergeable` of
/// `/proc/self/ksm_stat`; a kernel without the line: assume so). With
/// none, ksmd has nothing of the round to scan: its full scans do not
/// even move on while no process is registered with it.
fn mergeable() -> bool {
    match std::fs::read_to_string("/proc/self/ksm_stat") {
        Ok(t) => t
            .lines()
            .find_map(|l| l.strip_prefix("ksm_mergeable:"))
            .is_none_or(|v| v.trim() == "yes"),
        Err(_) => true,
    }
}

/// ksmd's turn after an op: it runs until two more full scans or
/// [`TURN_WAIT`], and is stopped again. No turn while nothing of this
/// process is mergeable (a run whose ops include `ksm-merge` starts ksmd
/// for every kind).
pub fn turn(tally: &Tally) {
    if !mergeable() {
        return;
    }
    let start = Ksm::counter("full_scans");
    if Ksm::set_running(true).is_err() {
        return;
    }
    let t = Instant::now();
    let scans = || Ksm::counter("full_scans").zip(start).map(|(n, s)| n - s);
    while scans().is_some_and(|n| n < 2) && t.elapsed() < TURN_WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Errors leave ksmd running; the round's gate tries again at its end.
    let _ = Ksm::set_running(false);
    let n = scans().unwrap_or(0);
    tally.add(H::KsmdTurns, 1);
    tally.add(H::KsmdScans, n);
    if n < 2 {
        tally.add(H::KsmdShort, 1);
    }
}

/// Starts ksmd again if a worker died while it was stopped.
pub fn recover(tally: &Tally) {
    if tally.get(H::KsmdStopped) == 1 && Ksm::set_running(true).is_ok() {
        tally.set(H::KsmdStopped, 0);
    }
}

/// The report from the tallies.
pub fn report(tally: &Tally) -> mmrace_proto::results::ksmd::KsmdTurns {
    mmrace_proto::results::ksmd::KsmdTurns {
        rounds: tally.get(H::KsmdRounds),
        turns: tally.get(H::KsmdTurns),
        full_scans: tally.get(H::KsmdScans),
        short: tally.get(H::KsmdShort),
    }
}
