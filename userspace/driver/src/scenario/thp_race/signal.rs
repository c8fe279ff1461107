//! A counter threads can wait on: spin briefly, then sleep on a futex.
//!
//! The racers must not wait with sched_yield: a yield hands the CPU to any
//! runnable thread (the seed's memset writer always is) for a whole time
//! slice, milliseconds, whatever its nice value, and the rounds crawl. A
//! futex sleeper, woken, preempts a niced CPU hog at once.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Spins before sleeping: covers the usual wait (a partner a few
/// microseconds behind) without a syscall.
const SPINS: u32 = 2000;
/// Longest single sleep: a safety net, a wake is never needed to make
/// progress after this.
const MAX_SLEEP: Duration = Duration::from_millis(10);

/// A monotonically growing value with futex wake-ups.
pub struct Signal {
    value: AtomicU64,
    /// Bumped on every change: the futex word sleepers wait on.
    seq: AtomicU32,
    sleepers: AtomicU32,
    max_sleep: Duration,
}

impl Default for Signal {
    fn default() -> Self {
        Signal::with_max_sleep(MAX_SLEEP)
    }
}

fn futex(word: &AtomicU32, op: libc::c_int, val: u32, timeout: Option<&libc::timespec>) {
    let ts = timeout.map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 for the duration of the call;
    // the timeout pointer is null or points at a live timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            val,
            ts,
            0usize,
            0u32,
        );
    }
}

impl Signal {
    /// A signal whose sleepers re-check at least every `max_sleep`.
    pub fn with_max_sleep(max_sleep: Duration) -> Self {
        Signal {
            value: AtomicU64::new(0),
            seq: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            max_sleep,
        }
    }

    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Acquire)
    }

    /// Sets the value (never lower) and wakes sleepers.
    pub fn set(&self, v: u64) {
        self.value.fetch_max(v, Ordering::AcqRel);
        self.changed();
    }

    /// Adds 1 and wakes sleepers.
    pub fn bump(&self) {
        self.value.fetch_add(1, Ordering::AcqRel);
        self.changed();
    }

    fn changed(&self) {
        self.seq.fetch_add(1, Ordering::AcqRel);
        if self.sleepers.load(Ordering::Acquire) > 0 {
            futex(&self.seq, libc::FUTEX_WAKE, u32::MAX >> 1, None);
        }
    }

    /// Returns once the value is at least `target`.
    pub fn wait_for(&self, target: u64) {
        for _ in 0..SPINS {
            if self.get() >= target {
                return;
            }
            std::hint::spin_loop();
        }
        let ts = libc::timespec {
            tv_sec: self.max_sleep.as_secs() as libc::time_t,
            tv_nsec: self.max_sleep.subsec_nanos() as libc::c_long,
        };
        loop {
            let seq = self.seq.load(Ordering::Acquire);
            self.sleepers.fetch_add(1, Ordering::AcqRel);
            // Re-checked after announcing the sleep: a change from here on
            // either moves `seq` (the futex call returns at once) or wakes.
            if self.get() >= target {
                self.sleepers.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            futex(&self.seq, libc::FUTEX_WAIT, seq, Some(&ts));
            self.sleepers.fetch_sub(1, Ordering::AcqRel);
            if self.get() >= target {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn wakes_a_sleeping_waiter_promptly() {
        // A long safety-net sleep: only a working wake ends the wait soon.
        let s = Arc::new(Signal::with_max_sleep(Duration::from_secs(30)));
        let waiter = {
            let s = s.clone();
            std::thread::spawn(move || {
                s.wait_for(1);
                Instant::now()
            })
        };
        std::thread::sleep(Duration::from_millis(50)); // long past the spin
        let set_at = Instant::now();
        s.bump();
        let woke_at = waiter.join().unwrap();
        assert!(
            woke_at.duration_since(set_at) < Duration::from_secs(10),
            "slept through the wake"
        );
    }

    #[test]
    fn ping_pong_never_loses_a_wake() {
        let long = || Arc::new(Signal::with_max_sleep(Duration::from_secs(30)));
        let (a, b) = (long(), long());
        let t = {
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                for i in 1..=20_000 {
                    a.wait_for(i);
                    b.set(i);
                }
            })
        };
        let start = Instant::now();
        for i in 1..=20_000 {
            a.bump();
            b.wait_for(i);
        }
        t.join().unwrap();
        // One lost wake would cost 30 s.
        assert!(start.elapsed() < Duration::from_secs(25));
        assert_eq!(a.get(), 20_000);
    }

    #[test]
    fn set_never_lowers() {
        let s = Signal::default();
        s.set(5);
        s.set(3);
        assert_eq!(s.get(), 5);
        s.wait_for(5); // returns at once
    }
}
