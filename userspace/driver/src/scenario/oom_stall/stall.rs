//! When a round's victim is stalled: the driver's two rules after an OOM
//! kill. Pure logic, so the tests feed made-up observations.
//!
//! - **Not gone** (`--exit-timeout`, 60 s): the victim is still there that
//!   long after the kill, whatever held it up.
//! - **Not taken up by the OOM reaper** (`--reap-timeout`, 4 s): the victim
//!   is still there, still holds memory, and the OOM reaper was never woken
//!   for it. The kernel hands every OOM victim that has not exited (its mm
//!   is not torn down yet, MMF_OOM_SKIP unset) to the reaper
//!   `OOM_REAPER_DELAY` (2 s) after the kill, from a timer (mm/oom_kill.c
//!   `queue_oom_reaper()`); until the victim exits or the reaper has dealt
//!   with it, the OOM killer kills nothing else (it waits for the victim),
//!   so a victim that cannot exit by itself keeps the system out of memory.
//!   Twice the delay with no wake-up, the victim alive and its memory held,
//!   is that stall: the hand-off the kernel promises did not happen. A
//!   victim that exits by itself is gone (or has released its mm: no thread
//!   with memory left) and never stalls here; a reaper that was woken but
//!   frees nothing is left to the exit timeout.

/// What the driver knows at one sample after the kill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfterKill {
    /// Milliseconds since the OOM kill was seen.
    pub since_kill_ms: u64,
    /// `oom_reaper_wake` rose since the round started (None: the counters
    /// could not be read, so the reaper rule does not judge).
    pub reaper_woken: Option<bool>,
    /// KiB resident in the victim's mm, from a thread that still has it (0:
    /// no thread has its mm any more: it is being torn down, or gone).
    pub resident_kib: u64,
}

/// Why a victim counts as stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stalled {
    /// Not gone `exit_timeout` s after the kill.
    NotGone,
    /// Not gone, memory held, and no reaper wake-up `reap_timeout` s after
    /// the kill.
    NotReaped,
}

/// The limits, in seconds (`reap_timeout` 0: that rule is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub exit_timeout: u64,
    pub reap_timeout: u64,
}

/// Whether a victim that is not gone counts as stalled now.
pub fn judge(l: Limits, s: AfterKill) -> Option<Stalled> {
    if s.since_kill_ms >= l.exit_timeout * 1000 {
        return Some(Stalled::NotGone);
    }
    let reap_due = l.reap_timeout > 0 && s.since_kill_ms >= l.reap_timeout * 1000;
    (reap_due && s.reaper_woken == Some(false) && s.resident_kib > 0).then_some(Stalled::NotReaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        exit_timeout: 60,
        reap_timeout: 4,
    };

    fn at(ms: u64, woken: Option<bool>, kib: u64) -> AfterKill {
        AfterKill {
            since_kill_ms: ms,
            reaper_woken: woken,
            resident_kib: kib,
        }
    }

    #[test]
    fn unreaped_victim_with_memory_stalls_after_the_reap_timeout() {
        assert_eq!(judge(L, at(3999, Some(false), 500_000)), None);
        assert_eq!(
            judge(L, at(4000, Some(false), 500_000)),
            Some(Stalled::NotReaped)
        );
    }

    #[test]
    fn a_woken_reaper_or_released_memory_leaves_it_to_the_exit_timeout() {
        // The reaper took it up (its pass may take long under TCG).
        assert_eq!(judge(L, at(30_000, Some(true), 500_000)), None);
        // The victim's mm is being torn down by its own exit.
        assert_eq!(judge(L, at(30_000, Some(false), 0)), None);
        // Unknown counters: no judgement from them.
        assert_eq!(judge(L, at(30_000, None, 500_000)), None);
        assert_eq!(
            judge(L, at(60_000, Some(true), 500_000)),
            Some(Stalled::NotGone)
        );
    }

    #[test]
    fn zero_turns_the_reaper_rule_off() {
        let l = Limits {
            reap_timeout: 0,
            ..L
        };
        assert_eq!(judge(l, at(59_000, Some(false), 500_000)), None);
        assert_eq!(
            judge(l, at(60_000, Some(false), 500_000)),
            Some(Stalled::NotGone)
        );
    }
}
