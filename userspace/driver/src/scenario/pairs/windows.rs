//! Holding a race window open (docs/pairs.md, "Holding windows open").
//! Under TCG an op's window is often too narrow for the start offsets
//! alone; two mechanisms stretch it, each armed per round with its own
//! odds and drawn from the run's seed (a stream of its own, so the offsets
//! draw the same values with or without them):
//!
//! - `--preempt PCT`: the preemption waker ([`crate::shared::preempt`])
//!   of one racer's CPU is fired by that racer just before its op, sleeps
//!   a random part of the op's measured time and spins a few to tens of
//!   µs: the racer is preempted mid-operation while the other op runs.
//! - `--held PCT`: an op that can ([`holds`]: `odirect`) ends one of its
//!   reads on its thread's userfaultfd trap ([`crate::shared::hold`]): the
//!   kernel blocks with the object's page pinned for a random part of the
//!   other op's measured time, then completes the read.
//!
//! Neither changes what an op does to the object, so the model's
//! expectations stay exact. [`Windows::score`] counts, per round, whether
//! the waker woke inside the racer's op and whether a hold overlapped
//! another op, into the tallies the result reports.

use super::op::Timing;
use super::tally::{Tally, H};
use crate::shared::hold::Trap;
use crate::shared::offsets::KindState;
use crate::shared::preempt::{Shot, Waker};
use crate::shared::rng::Rng;
use anyhow::{Context, Result};
use mmrace_proto::pairs::UserOp;
use mmrace_proto::results::windows::{Held, Preempted, Windows as Report};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest preemption sleep or hold (a whole op of the other side,
/// as the offsets, but no more than this).
pub const MAX_SPAN: Duration = Duration::from_millis(20);
/// The span drawn from before an op has been timed.
const UNTIMED_SPAN: Duration = Duration::from_millis(1);
/// The waker's spin, in µs: a few to tens.
const SPIN_US: (u64, u64) = (2, 80);
/// The racing threads (and traps): a pair and a third op.
const SLOTS: usize = 3;

/// Whether `op` can end a read on a trap.
pub fn holds(op: UserOp) -> bool {
    op == UserOp::Odirect
}

/// What a round arms.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundPlan {
    /// The victim slot and its shot.
    pub preempt: Option<(usize, Shot)>,
    /// How long a hold lasts, and the index of the held transfer.
    pub hold: Option<(Duration, usize)>,
}

/// The mechanisms of a worker.
pub struct Windows {
    preempt_pct: u8,
    held_pct: u8,
    /// One waker per CPU (racer `slot` runs on CPU `slot % cpus`).
    wakers: Vec<Waker>,
    /// One trap per racing thread.
    traps: Vec<Trap>,
    rng: Mutex<Rng>,
}

impl Windows {
    /// The wakers and traps the odds ask for; an error when they cannot
    /// be made (no userfaultfd, no threads).
    pub fn new(preempt_pct: u8, held_pct: u8, cpus: usize, rng: Rng) -> Result<Windows> {
        let wakers = if preempt_pct > 0 {
            (0..cpus.max(1))
                .map(Waker::start)
                .collect::<std::io::Result<_>>()
                .context("pairs --preempt: the waker threads")?
        } else {
            Vec::new()
        };
        let traps = if held_pct > 0 {
            (0..SLOTS)
                .map(|_| Trap::new())
                .collect::<std::io::Result<_>>()
                .context("pairs --held: the userfaultfd traps")?
        } else {
            Vec::new()
        };
        Ok(Windows {
            preempt_pct,
            held_pct,
            wakers,
            traps,
            rng: Mutex::new(rng),
        })
    }

    /// The waker of racer `slot`'s CPU.
    pub fn waker(&self, slot: usize) -> Option<&Waker> {
        (!self.wakers.is_empty()).then(|| &self.wakers[slot % self.wakers.len()])
    }

    /// Racer `slot`'s trap.
    pub fn trap(&self, slot: usize) -> Option<&Trap> {
        self.traps.get(slot)
    }

    /// What the next round of `ops` arms, from the kind's measured times.
    /// A hold is on the op's first transfer (the page is pinned from the
    /// op's start) and lasts a uniform part of both ops' times: the other
    /// op may start up to a whole op of ours later (the offsets) and must
    /// be able to run its whole course inside the hold.
    pub fn plan(&self, ops: &[UserOp], st: &KindState) -> RoundPlan {
        let mut rng = self.rng.lock().unwrap();
        let mut plan = RoundPlan::default();
        if self.preempt_pct > 0 && chance(&mut rng, self.preempt_pct) {
            let slot = rng.below(ops.len() as u64) as usize;
            let sleep = part_of(&mut rng, op_time(st, slot));
            let spin = Duration::from_micros(rng.range_inclusive(SPIN_US.0, SPIN_US.1));
            plan.preempt = Some((slot, Shot { sleep, spin }));
        }
        if let Some(s) = ops.iter().position(|o| holds(*o)) {
            if self.held_pct > 0 && chance(&mut rng, self.held_pct) {
                let other = if ops.len() > 1 && s == 0 { 1 } else { 0 };
                let span = (op_time(st, other) + op_time(st, s)).min(MAX_SPAN);
                plan.hold = Some((part_of(&mut rng, span), 0));
            }
        }
        plan
    }

    /// Counts what the round's plan did, from its threads' timings.
    pub fn score(&self, plan: &RoundPlan, ops: &[UserOp], t: &[Timing], tally: &Tally) {
        if let Some((slot, _)) = plan.preempt {
            tally.add(H::PreemptRounds, 1);
            let woke = t[slot]
                .shot
                .and_then(|n| self.waker(slot).and_then(|w| w.woke(n)));
            if let Some(w) = woke {
                tally.add(H::PreemptWoke, 1);
                tally.add(H::PreemptInside, u64::from(inside(w, &t[slot])));
            }
            if let Some(w) = self.waker(slot) {
                tally.set(H::PreemptRt, if w.realtime() { 1 } else { 2 });
            }
        }
        if plan.hold.is_none() {
            return;
        }
        tally.add(H::HeldRounds, 1);
        for (slot, _) in ops.iter().enumerate().filter(|(_, o)| holds(**o)) {
            let Some((came, done)) = self.trap(slot).and_then(Trap::last) else {
                continue;
            };
            tally.add(H::Holds, 1);
            let Some(done) = done else { continue };
            tally.add(H::HeldResolved, 1);
            let overlaps = t
                .iter()
                .enumerate()
                .any(|(o, x)| o != slot && x.start < done && came < x.end);
            tally.add(H::HeldInside, u64::from(overlaps));
        }
    }
}

/// Whether `at` falls inside the op timed by `t`.
fn inside(at: Instant, t: &Timing) -> bool {
    t.start <= at && at <= t.end
}

/// True with `pct` percent odds.
fn chance(rng: &mut Rng, pct: u8) -> bool {
    rng.below(100) < u64::from(pct)
}

/// Racer `slot`'s measured op time (slot 0 leads; the third op is timed
/// as neither, the leader's time stands for it).
fn op_time(st: &KindState, slot: usize) -> Duration {
    let ns = if slot == 1 {
        st.follower.avg
    } else {
        st.leader.avg
    };
    if st.rounds == 0 || ns <= 0.0 {
        return UNTIMED_SPAN;
    }
    Duration::from_nanos((1.1 * ns) as u64).min(MAX_SPAN)
}

/// Uniform in `[0, span)`.
fn part_of(rng: &mut Rng, span: Duration) -> Duration {
    let ns = span.as_nanos().max(1) as u64;
    Duration::from_nanos(rng.below(ns))
}

/// The report from the tallies.
pub fn report(tally: &Tally) -> Report {
    Report {
        preempt: Preempted {
            rounds: tally.get(H::PreemptRounds),
            wakeups: tally.get(H::PreemptWoke),
            inside: tally.get(H::PreemptInside),
            realtime: tally.get(H::PreemptRt) == 1,
        },
        held: Held {
            rounds: tally.get(H::HeldRounds),
            holds: tally.get(H::Holds),
            resolved: tally.get(H::HeldResolved),
            inside: tally.get(H::HeldInside),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_odds_and_the_measured_times() {
        let w = Windows::new(0, 0, 2, Rng::new(1)).unwrap();
        let ops = [UserOp::Odirect, UserOp::MigratePages];
        let st = KindState::default();
        let p = w.plan(&ops, &st);
        assert!(p.preempt.is_none() && p.hold.is_none());
        let w = Windows {
            preempt_pct: 100,
            held_pct: 100,
            ..w
        };
        let mut st = KindState::default();
        st.record(2e6, 4e6, 0.0, 0.0);
        for _ in 0..200 {
            let p = w.plan(&ops, &st);
            let (slot, shot) = p.preempt.unwrap();
            let cap = Duration::from_nanos(if slot == 0 { 2_200_000 } else { 4_400_000 });
            assert!(slot < 2 && shot.sleep < cap, "{p:?}");
            assert!(
                shot.spin >= Duration::from_micros(2) && shot.spin <= Duration::from_micros(80)
            );
            let (hold, index) = p.hold.unwrap();
            // odirect is slot 0: held for part of both ops' times.
            assert!(
                hold < Duration::from_nanos(6_600_000) && index == 0,
                "{p:?}"
            );
        }
        let p = w.plan(&[UserOp::Store, UserOp::MigratePages], &st);
        assert!(p.hold.is_none(), "store does not hold");
    }

    #[test]
    fn inside_means_within_the_op() {
        let t0 = Instant::now();
        let t = Timing {
            woke: t0,
            released: t0,
            start: t0,
            first_end: t0 + Duration::from_millis(2),
            end: t0 + Duration::from_millis(2),
            runs: 1,
            shot: None,
        };
        assert!(inside(t0 + Duration::from_millis(1), &t));
        assert!(!inside(t0 + Duration::from_millis(3), &t));
    }
}
