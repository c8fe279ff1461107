//! The slice's racing threads, started once per slice and pinned once
//! (spawning and pinning threads every round cost more than the round's
//! operations). Between rounds they sleep on a condition variable; in a
//! round they are released together (the last one ready releases the
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

/// What a round tells every thread.
#[derive(Clone)]
pub struct Orders {
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

/// The state the threads share with the slice.
pub struct Crew {
    stage: Mutex<Stage>,
    start: Condvar,
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
    n: usize,
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

/// What a thread needs besides the shared crew.
pub struct Hand<'a> {
    pub slot: usize,
    pub op: &'static dyn Op,
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
    if !windows::holds(h.op.op()) {
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
    pub fn new(n: usize, sequential: bool, overlap: Duration) -> Crew {
        Crew {
            stage: Mutex::new(Stage::default()),
            start: Condvar::new(),
            results: Mutex::new((0..n).map(|_| None).collect()),
            done: Condvar::new(),
            ready: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            turn: AtomicUsize::new(0),
            sequential,
            ksmd_turns: AtomicBool::new(false),
            overlap,
            first_done: AtomicUsize::new(0),
            seq: Mutex::new(Arc::new(Seq::default())),
            n,
        }
    }

    /// A thread's life: pinned, then one op per published round until
    /// told to quit.
    pub fn serve(&self, h: Hand) {
        pin(h.slot % h.res.cpus.max(1));
        let mut seen = 0;
        loop {
            let (orders, seq) = {
                let mut st = self.stage.lock().unwrap();
                while st.generation == seen && !st.quit {
                    st = self.start.wait(st).unwrap();
                }
                if st.quit {
                    return;
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
        let released;
        if self.sequential {
            wait_until(|| self.turn.load(Ordering::Acquire) == h.slot);
            released = Instant::now();
        } else {
            if self.ready.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
                self.go.store(true, Ordering::Release);
            }
            wait_for(&self.go);
            released = Instant::now();
            busy(o.loops[h.slot.min(2)]);
        }
        let shot = fire(h, o);
        let start = Instant::now();
        h.op.run(&env, &mut fx);
        let first_end = Instant::now();
        self.first_done.fetch_add(1, Ordering::AcqRel);
        let mut runs = 1;
        while self.again(h, runs, start) {
            env.rep = runs;
            env.hold = None;
            // The migrating ops move the object back and forth.
            env.target = if runs % 2 == 1 {
                env.source()
            } else {
                o.target
            };
            h.op.run(&env, &mut fx);
            runs += 1;
        }
        let end = Instant::now();
        if self.sequential {
            if self.ksmd_turns.load(Ordering::Acquire) {
                ksmd::turn(h.tally);
            }
            self.turn.fetch_add(1, Ordering::AcqRel);
        }
        h.tally.called(h.op.op());
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

    /// Whether thread `h`, which began its first run at `start` and has
    /// made `runs`, runs its op again (`--overlap-ms`): while the budget
    /// lasts, and past it while another thread of the round has not
    /// finished its first run (not in sequential rounds, where the others
    /// wait for this one); never past [`MAX_REPS`] runs, nor for an op the
    /// catalogue runs once.
    fn again(&self, h: &Hand, runs: u32, start: Instant) -> bool {
        if self.overlap.is_zero() || runs >= MAX_REPS || repeats(h.op.op()).is_err() {
            return false;
        }
        start.elapsed() < self.overlap
            || (!self.sequential && self.first_done.load(Ordering::Acquire) < self.n)
    }

    /// Publishes a round and waits for every thread's effects, in slot
    /// order. A sequential round stops ksmd until its ops are done.
    pub fn round(&self, orders: Orders, tally: &Tally) -> Vec<(Effects, Timing)> {
        let gate = self.sequential.then(|| Gate::close(tally)).flatten();
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
        self.start.notify_all();
        let mut r = self.results.lock().unwrap();
        while r.iter().any(Option::is_none) {
            r = self.done.wait(r).unwrap();
        }
        let out = r.iter_mut().map(|x| x.take().expect("checked")).collect();
        self.stage.lock().unwrap().orders = None;
        drop(gate);
        out
    }

    /// Tells the threads to leave.
    pub fn quit(&self) {
        self.stage.lock().unwrap().quit = true;
        self.start.notify_all();
    }
}
