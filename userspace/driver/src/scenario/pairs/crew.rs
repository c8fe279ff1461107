//! The racing threads, started and pinned once for the worker's life (or,
//! with `--crew-per-slice`, once per slice: spawning and pinning threads
//! every round cost more than the round's operations, every slice 3 to
//! 10 ms a round). A thread's slot is fixed; its op comes with each
//! round's orders, so one crew races every slice's combo, a pair on the
//! first two slots and a triple on all three. Between rounds they sleep
//! on a condition variable of their own; in a round the slots of its ops
//! are woken and released together (the last one ready releases the
//! others), run their op once (or, with `--overlap-ms`, again and again
//! while the others' run), and hand back their effects and timing.
//! Sequential (`--sequential`, the race-only check), they take turns in
//! slot order instead: each starts when the one before it has returned,
//! with ksmd stopped during each op and given a turn after it (`ksmd.rs`).

use super::ksmd::{self, Gate};
use super::model::{Effects, Layout, Seq};
use super::object::Object;
use super::op::{Hold, Op, Resources, RoundEnv, Timing};
use super::tally::Tally;
use super::windows::{self, RoundPlan, Windows};
use crate::shared::cpu::pin;
use crate::shared::offsets::busy;
use mmrace_proto::pairs::catalogue::repeats;
use mmrace_proto::spec::pairs::MAX_REPS;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The most ops of a round (a triple), so the slots of a crew that races
/// every combo.
pub const MAX_SLOTS: usize = 3;

/// What a round tells every thread.
#[derive(Clone)]
pub struct Orders {
    /// The round's ops, in slot order (slot `i` runs `ops[i]`; the slots
    /// past them sit the round out).
    pub ops: Vec<&'static dyn Op>,
    pub obj: Arc<dyn Object>,
    pub round: u64,
    pub target: u32,
    pub moving: bool,
    pub context: u64,
    /// Busy loops before the op, per slot.
    pub loops: [u64; 3],
    /// The preemption and hold the round arms (`windows.rs`).
    pub plan: RoundPlan,
}

#[derive(Default)]
struct Stage {
    /// Rounds published so far; threads run each once.
    generation: u64,
    quit: bool,
    orders: Option<Orders>,
}

/// The state the threads share with the worker.
pub struct Crew {
    stage: Mutex<Stage>,
    /// One per slot: a round wakes only the slots of its ops.
    start: Vec<Condvar>,
    results: Mutex<Vec<Option<(Effects, Timing)>>>,
    done: Condvar,
    ready: AtomicUsize,
    go: AtomicBool,
    /// Sequential rounds: the slot whose turn it is.
    turn: AtomicUsize,
    sequential: bool,
    /// Sequential rounds: ksmd is stopped, and takes a turn after each op.
    ksmd_turns: AtomicBool,
    /// `--overlap-ms`: how long each op repeats in a round (zero: once).
    overlap: Duration,
    /// Threads that finished their op's first run this round.
    first_done: AtomicUsize,
    seq: Mutex<Arc<Seq>>,
    /// The threads (slots) of the crew.
    slots: usize,
    /// The ops of the round under way (the slots that race it).
    n: AtomicUsize,
}

/// Spins until `flag` is set, yielding the CPU now and then (a third
/// thread shares a CPU with the first).
fn wait_for(flag: &AtomicBool) {
    wait_until(|| flag.load(Ordering::Acquire));
}

/// Spins until `ready()` holds, yielding the CPU now and then.
fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        spins += 1;
        if spins.is_multiple_of(1024) {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// What a thread needs besides the shared crew (its op comes with each
/// round's [`Orders`]).
pub struct Hand<'a> {
    pub slot: usize,
    pub layout: Layout,
    pub burst: u32,
    pub res: &'a Resources,
    pub tally: &'a Tally,
    pub windows: Option<&'a Windows>,
}

/// The hold thread `h` makes this round, if its op holds and the round
/// arms one; the trap is armed with the hold's time.
fn hold<'a>(h: &Hand<'a>, o: &Orders) -> Option<Hold<'a>> {
    let (time, index) = o.plan.hold?;
    if !windows::holds(o.ops[h.slot].op()) {
        return None;
    }
    let trap = h.windows?.trap(h.slot)?;
    trap.arm(time);
    Some(Hold { trap, index })
}

/// Fires the preemption shot when thread `h` is this round's victim; its
/// number.
fn fire(h: &Hand, o: &Orders) -> Option<u64> {
    let (victim, shot) = o.plan.preempt?;
    if victim != h.slot {
        return None;
    }
    Some(h.windows?.waker(h.slot % h.res.cpus.max(1))?.fire(shot))
}

impl Crew {
    /// A crew of `slots` threads (at most [`MAX_SLOTS`]).
    pub fn new(slots: usize, sequential: bool, overlap: Duration) -> Crew {
        assert!((1..=MAX_SLOTS).contains(&slots), "{slots} slots");
        Crew {
            stage: Mutex::new(Stage::default()),
            start: (0..slots).map(|_| Condvar::new()).collect(),
            results: Mutex::new((0..slots).map(|_| None).collect()),
            done: Condvar::new(),
            ready: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            turn: AtomicUsize::new(0),
            sequential,
            ksmd_turns: AtomicBool::new(false),
            overlap,
            first_done: AtomicUsize::new(0),
            seq: Mutex::new(Arc::new(Seq::default())),
            slots,
            n: AtomicUsize::new(0),
        }
    }

    /// The crew's threads.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// A thread's life: pinned, then one op per published round that has
    /// an op for its slot, until told to quit.
    pub fn serve(&self, h: Hand) {
        pin(h.slot % h.res.cpus.max(1));
        let mut seen = 0;
        loop {
            let (orders, seq) = {
                let mut st = self.stage.lock().unwrap();
                loop {
                    if st.quit {
                        return;
                    }
                    let mine = st.orders.as_ref().is_some_and(|o| h.slot < o.ops.len());
                    if st.generation != seen && mine {
                        break;
                    }
                    st = self.start[h.slot].wait(st).unwrap();
                }
                seen = st.generation;
                let o = st.orders.clone().expect("a published round has orders");
                (o, self.seq.lock().unwrap().clone())
            };
            let r = self.once(&h, &orders, &seq, Instant::now());
            drop(orders);
            self.results.lock().unwrap()[h.slot] = Some(r);
            self.done.notify_all();
        }
    }

    fn once(&self, h: &Hand, o: &Orders, seq: &Seq, woke: Instant) -> (Effects, Timing) {
        let mut env = RoundEnv {
            obj: o.obj.as_ref(),
            layout: h.layout,
            slot: h.slot,
            round: o.round,
            burst: h.burst,
            rep: 0,
            seq,
            target: o.target,
            moving: o.moving,
            context: o.context,
            res: h.res,
            hold: hold(h, o),
        };
        let mut fx = Effects::default();
        let op = o.ops[h.slot];
        let n = self.n.load(Ordering::Acquire);
        let released;
        if self.sequential {
            wait_until(|| self.turn.load(Ordering::Acquire) == h.slot);
            released = Instant::now();
        } else {
            if self.ready.fetch_add(1, Ordering::AcqRel) + 1 == n {
                self.go.store(true, Ordering::Release);
            }
            wait_for(&self.go);
            released = Instant::now();
            busy(o.loops[h.slot.min(2)]);
        }
        let shot = fire(h, o);
        let start = Instant::now();
        op.run(&env, &mut fx);
        let first_end = Instant::now();
        self.first_done.fetch_add(1, Ordering::AcqRel);
        let mut runs = 1;
        while self.again(op, n, runs, start) {
            env.rep = runs;
            env.hold = None;
            // The migrating ops move the object back and forth.
            env.target = if runs % 2 == 1 {
                env.source()
            } else {
                o.target
            };
            op.run(&env, &mut fx);
            runs += 1;
        }
        let end = Instant::now();
        if self.sequential {
            if self.ksmd_turns.load(Ordering::Acquire) {
                ksmd::turn(h.tally);
            }
            self.turn.fetch_add(1, Ordering::AcqRel);
        }
        h.tally.called(op.op());
        (
            fx,
            Timing {
                woke,
                released,
                start,
                first_end,
                end,
                runs,
                shot,
            },
        )
    }

    /// Whether a thread of `op`, which began its first run at `start` and
    /// has made `runs`, runs it again (`--overlap-ms`): while the budget
    /// lasts, and past it while another of the round's `n` threads has not
    /// finished its first run (not in sequential rounds, where the others
    /// wait for this one); never past [`MAX_REPS`] runs, nor for an op the
    /// catalogue runs once.
    fn again(&self, op: &dyn Op, n: usize, runs: u32, start: Instant) -> bool {
        if self.overlap.is_zero() || runs >= MAX_REPS || repeats(op.op()).is_err() {
            return false;
        }
        start.elapsed() < self.overlap
            || (!self.sequential && self.first_done.load(Ordering::Acquire) < n)
    }

    /// Publishes a round and waits for the effects of the threads of its
    /// ops, in slot order. A sequential round stops ksmd until its ops are
    /// done.
    pub fn round(&self, orders: Orders, tally: &Tally) -> Vec<(Effects, Timing)> {
        let n = orders.ops.len();
        assert!(
            (1..=self.slots).contains(&n),
            "{n} ops for {} slots",
            self.slots
        );
        let gate = self.sequential.then(|| Gate::close(tally)).flatten();
        self.n.store(n, Ordering::Release);
        self.ksmd_turns.store(gate.is_some(), Ordering::Release);
        self.ready.store(0, Ordering::Release);
        self.go.store(false, Ordering::Release);
        self.turn.store(0, Ordering::Release);
        self.first_done.store(0, Ordering::Release);
        *self.seq.lock().unwrap() = Arc::new(Seq::default());
        {
            let mut st = self.stage.lock().unwrap();
            st.orders = Some(orders);
            st.generation += 1;
        }
        for c in &self.start[..n] {
            c.notify_one();
        }
        let mut r = self.results.lock().unwrap();
        while r[..n].iter().any(Option::is_none) {
            r = self.done.wait(r).unwrap();
        }
        let out = r[..n]
            .iter_mut()
            .map(|x| x.take().expect("checked"))
            .collect();
        self.stage.lock().unwrap().orders = None;
        drop(gate);
        out
    }

    /// Tells the threads to leave.
    pub fn quit(&self) {
        self.stage.lock().unwrap().quit = true;
        for c in &self.start {
            c.notify_all();
        }
    }
}
