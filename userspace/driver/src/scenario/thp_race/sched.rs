//! Who gets the vCPUs. The guest has two, and the racers need both at the
//! same moment for a round to be a race; the other parties (the seed's
//! memset writer, the refault thread, clear_refs, migrate, splitter) are
//! busy loops that would otherwise take half the time slices. They run at a
//! higher nice value (`--party-nice`), which only weights the scheduler:
//! unlike a real-time policy it cannot starve anything, so no soft lockup
//! or RCU stall is provoked by the harness itself.

/// Raises the nice value of the calling thread only to at least `nice`
/// (Linux keeps nice per thread; threads created afterwards by this thread
/// inherit it). Never lowers it: a driver started under `nice` must not
/// boost its parties above its racers. Raising nice is always allowed;
/// failure is harmless and ignored.
pub fn nice_this_thread(nice: i32) {
    set_this_thread_nice(nice.max(this_thread_nice()));
}

/// Sets the calling thread's nice value (lowering it needs CAP_SYS_NICE;
/// failure is ignored).
fn set_this_thread_nice(nice: i32) {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority with integer arguments; `tid` is this thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
}

/// The calling thread's nice value.
pub fn this_thread_nice() -> i32 {
    // SAFETY: as above.
    let tid = unsafe { libc::gettid() };
    // SAFETY: getpriority with integer arguments (errno is not checked:
    // -1 is a valid answer and the callers only compare values).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) }
}

/// The monotonic clock in milliseconds: the same in the driver and the
/// writer child, so their flips agree without shared state.
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// `--nice-flip-ms`: a racer thread that gives up its lead in every other
/// period of `flip_ms`, running at its own nice plus `party_nice` (the
/// parties' level) then. [`NiceFlip::apply`] in each round sets it; the
/// system call only runs when the period changes. Lowering the value again
/// needs CAP_SYS_NICE (the driver runs as root); without it the thread
/// simply stays demoted.
pub struct NiceFlip {
    base: i32,
    demoted: i32,
    flip_ms: u64,
    current: i32,
}

impl NiceFlip {
    pub fn new(party_nice: i32, flip_ms: u64) -> NiceFlip {
        let base = this_thread_nice();
        NiceFlip {
            base,
            demoted: base.max(party_nice).min(19),
            flip_ms,
            current: base,
        }
    }

    /// Whether the racers run at the parties' level at monotonic time `ms`.
    pub fn demoted_at(flip_ms: u64, ms: u64) -> bool {
        flip_ms > 0 && (ms / flip_ms) % 2 == 1
    }

    pub fn apply(&mut self) {
        if self.flip_ms == 0 {
            return;
        }
        let want = if Self::demoted_at(self.flip_ms, monotonic_ms()) {
            self.demoted
        } else {
            self.base
        };
        if want != self.current {
            set_this_thread_nice(want);
            self.current = want;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_is_per_thread() {
        let mine = this_thread_nice();
        let other = std::thread::spawn(|| {
            nice_this_thread(15);
            let raised = this_thread_nice();
            nice_this_thread(0); // never lowered
            (raised, this_thread_nice())
        })
        .join()
        .unwrap();
        assert_eq!(other, (mine.max(15), mine.max(15)));
        assert_eq!(this_thread_nice(), mine);
    }

    #[test]
    fn nice_flips_every_other_period() {
        assert!(!NiceFlip::demoted_at(0, 5000));
        assert!(!NiceFlip::demoted_at(4000, 3999));
        assert!(NiceFlip::demoted_at(4000, 4000));
        assert!(!NiceFlip::demoted_at(4000, 8000));
        // Demoting is always allowed: a thread that flips is at its base
        // or at the parties' level, never above its base.
        let seen = std::thread::spawn(|| {
            let base = this_thread_nice();
            let mut f = NiceFlip::new(base + 3, 1);
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..50 {
                f.apply();
                seen.insert(this_thread_nice() - base);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            seen
        })
        .join()
        .unwrap();
        assert!(seen.iter().all(|d| *d == 0 || *d == 3), "{seen:?}");
        assert!(seen.contains(&3), "{seen:?}");
    }
}
