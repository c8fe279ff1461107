//! What the window-holding mechanisms of `pairs` did in a run
//! (docs/pairs.md, "Holding windows open"): the preemption waker
//! (`--preempt`) and the userfaultfd-held read (`--held`).

use serde::{Deserialize, Serialize};

/// The preemption waker's rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preempted {
    /// Rounds in which the waker was armed against a racer.
    pub rounds: u64,
    /// Of those, rounds in which it woke before the round was judged.
    pub wakeups: u64,
    /// Of those, wake-ups that came while the racer's op was running:
    /// the racer was preempted mid-operation.
    pub inside: u64,
    /// Whether the waker ran as SCHED_FIFO (without it the wake-ups do
    /// not preempt).
    pub realtime: bool,
}

/// The userfaultfd-held rounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Held {
    /// Rounds in which an op read into the object through a trap.
    pub rounds: u64,
    /// Faults the trap's handler received (the kernel blocked mid-read).
    pub holds: u64,
    /// Of those, the ones it resolved with UFFDIO_COPY.
    pub resolved: u64,
    /// Holds during which another op of the round was running.
    pub inside: u64,
}

/// Both mechanisms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Windows {
    pub preempt: Preempted,
    pub held: Held,
}

impl Windows {
    /// The console line; `None` when neither mechanism was armed.
    pub fn line(&self) -> Option<String> {
        let (p, h) = (&self.preempt, &self.held);
        if p.rounds == 0 && h.rounds == 0 {
            return None;
        }
        Some(format!(
            "pairs windows: preempted {} rounds armed, {} woke, {} inside the op{}; \
             held {} rounds, {} holds, {} resolved, {} overlapping another op",
            p.rounds,
            p.wakeups,
            p.inside,
            if p.realtime || p.rounds == 0 {
                ""
            } else {
                " (not SCHED_FIFO)"
            },
            h.rounds,
            h.holds,
            h.resolved,
            h.inside
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_only_when_armed_and_json_defaults() {
        assert_eq!(Windows::default().line(), None);
        let w = Windows {
            preempt: Preempted {
                rounds: 3,
                wakeups: 2,
                inside: 1,
                realtime: true,
            },
            ..Windows::default()
        };
        assert!(w
            .line()
            .unwrap()
            .contains("3 rounds armed, 2 woke, 1 inside"));
        assert_eq!(
            serde_json::from_str::<Windows>("{}").unwrap(),
            Windows::default()
        );
    }
}
