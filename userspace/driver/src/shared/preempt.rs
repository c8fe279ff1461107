//! A preemption waker (issue 17.3): a SCHED_FIFO thread pinned to one
//! racer's CPU that, once fired, sleeps a given interval and then spins a
//! given few µs. Fired by the racer just before its operation, it wakes
//! in the middle of it and, being real-time on the same CPU, preempts the
//! racer wherever the kernel allows (the test kernel is PREEMPT_LAZY: an
//! RT wake-up preempts at once, also in the kernel outside spinlocks):
//! one side of a race is stalled mid-operation while the other runs on.
//! No kernel change is needed.
//!
//! The waker blocks (park) between shots, so it never takes the CPU from
//! the racer except while it spins. Each shot has a number; the waker
//! records the number and time of its last wake-up, so the caller can
//! tell whether this round's shot woke inside the racer's op.

use super::cpu;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The waker's SCHED_FIFO priority (any RT priority preempts the racers,
/// which are SCHED_OTHER).
pub const PRIORITY: i32 = 10;
/// A shot whose wake-up time passed longer ago than this is dropped (the
/// waker was still busy with an earlier one).
const STALE: Duration = Duration::from_millis(2);

/// One preemption: sleep this long after the shot is fired, then spin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shot {
    pub sleep: Duration,
    pub spin: Duration,
}

#[derive(Default)]
struct State {
    /// The pending shot: its number, when it was fired, what it does.
    pending: Mutex<Option<(u64, Instant, Shot)>>,
    /// The last shot that woke, and when.
    woke: Mutex<Option<(u64, Instant)>>,
    fired: AtomicU64,
    quit: AtomicBool,
    realtime: AtomicBool,
}

/// A waker thread pinned to one CPU; stopped on drop.
pub struct Waker {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Waker {
    /// Starts a waker on `cpu`.
    pub fn start(cpu: usize) -> std::io::Result<Waker> {
        let state = Arc::new(State::default());
        let s = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("waker{cpu}"))
            .spawn(move || serve(&s, cpu))?;
        Ok(Waker {
            state,
            thread: Some(thread),
        })
    }

    /// Fires a shot from the racer about to start its op; its number.
    pub fn fire(&self, shot: Shot) -> u64 {
        let n = self.state.fired.fetch_add(1, Ordering::AcqRel) + 1;
        *self.state.pending.lock().unwrap() = Some((n, Instant::now(), shot));
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
        n
    }

    /// When shot `n` woke, if it did.
    pub fn woke(&self, n: u64) -> Option<Instant> {
        match *self.state.woke.lock().unwrap() {
            Some((m, t)) if m == n => Some(t),
            _ => None,
        }
    }

    /// Whether the waker runs SCHED_FIFO (known once it has started).
    pub fn realtime(&self) -> bool {
        self.state.realtime.load(Ordering::Acquire)
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.state.quit.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn serve(s: &State, cpu: usize) {
    cpu::pin(cpu);
    s.realtime.store(cpu::realtime(PRIORITY), Ordering::Release);
    loop {
        std::thread::park();
        if s.quit.load(Ordering::Acquire) {
            return;
        }
        let Some((n, fired, shot)) = s.pending.lock().unwrap().take() else {
            continue;
        };
        let due = fired + shot.sleep;
        let now = Instant::now();
        if now > due + STALE {
            continue;
        }
        std::thread::sleep(due.saturating_duration_since(now));
        let woke = Instant::now();
        *s.woke.lock().unwrap() = Some((n, woke));
        while woke.elapsed() < shot.spin {
            std::hint::black_box(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The waker wakes about when told, on the build host too (without
    /// SCHED_FIFO when not root: it still wakes, it only does not
    /// preempt; then, pinned to CPU 0 beside other tests' busy threads
    /// under `nice`, it may wait seconds for the CPU: a long deadline).
    #[test]
    fn a_shot_wakes_after_its_sleep() {
        let w = Waker::start(0).unwrap();
        let t = Instant::now();
        let n = w.fire(Shot {
            sleep: Duration::from_millis(5),
            spin: Duration::from_micros(20),
        });
        let deadline = t + Duration::from_secs(60);
        let woke = loop {
            if let Some(x) = w.woke(n) {
                break x;
            }
            assert!(Instant::now() < deadline, "the waker never woke");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(woke.duration_since(t) >= Duration::from_millis(5));
        assert_eq!(w.woke(n + 1), None);
    }
}
