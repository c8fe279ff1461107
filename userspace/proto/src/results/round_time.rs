//! Where `pairs`' time goes (issue 17.4): the worker's wall time split
//! into the phases of its rounds and slices, measured in the driver
//! (docs/pairs.md, "Where a round's time goes").
//!
//! A round is: make the object (`create`), stamp its hot THP (`stamp`),
//! draw the start offsets and the windows' plan (`plan`), hand the orders
//! to the slice's threads until the last one has them (`release`), the
//! ops from then to the last op's end (`ops`; of it, `stagger` is what
//! the start offsets add beyond the longest op; `planned` and `spun` are
//! the offsets' delays as drawn and as the delayed thread spun them), the
//! worker seeing every thread's result (`join`), the offsets book and the
//! windows' score (`record`), the check of every page (`verify`), the
//! object's release (`drop`). A slice adds its threads' start and stop
//! (`crew`), the module's `meets` read around it (`meets`; of it,
//! `meets_read` the files' reading, their parsing apart) and the choice
//! of the next slice with its tally rows (`steer`). `other` is the rest of
//! the worker's wall time.

use serde::{Deserialize, Serialize};

/// Nanoseconds per phase, summed over the run's rounds and slices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoundTime {
    /// Rounds timed (every round that ran, a failed create included).
    pub rounds: u64,
    /// The workers' wall time from their first slice to their end.
    pub wall_ns: u64,
    pub create_ns: u64,
    pub stamp_ns: u64,
    pub plan_ns: u64,
    pub release_ns: u64,
    pub ops_ns: u64,
    /// Of `ops_ns`: the time past the longest op (the start offsets).
    pub stagger_ns: u64,
    pub join_ns: u64,
    pub record_ns: u64,
    pub verify_ns: u64,
    pub drop_ns: u64,
    pub crew_ns: u64,
    pub meets_ns: u64,
    pub steer_ns: u64,
    /// The start offsets' delays as planned, and as the delayed thread
    /// spun them (its release to its op's start; the longest per round).
    pub planned_ns: u64,
    pub spun_ns: u64,
    /// Op runs, summed over the rounds' threads: two per round of a pair
    /// without `--overlap-ms`, more when its ops repeat.
    pub runs: u64,
    /// Of `ops_ns`: the time every op of the round was running at once
    /// (the latest first start to the earliest last end).
    pub together_ns: u64,
    /// Of `meets_ns`: reading debugfs `meets` and `ops` (the module's
    /// rendering and the copy to the worker), their parsing apart.
    pub meets_read_ns: u64,
}

impl RoundTime {
    /// The phases by name, in a round's order (`other` last).
    pub fn phases(&self) -> Vec<(&'static str, u64)> {
        let named = [
            ("create", self.create_ns),
            ("stamp", self.stamp_ns),
            ("plan", self.plan_ns),
            ("release", self.release_ns),
            ("ops", self.ops_ns),
            ("join", self.join_ns),
            ("record", self.record_ns),
            ("verify", self.verify_ns),
            ("drop", self.drop_ns),
            ("crew", self.crew_ns),
            ("meets", self.meets_ns),
            ("steer", self.steer_ns),
        ];
        let sum: u64 = named.iter().map(|(_, v)| v).sum();
        let mut v = named.to_vec();
        v.push(("other", self.wall_ns.saturating_sub(sum)));
        v
    }

    /// Op runs per round (all threads together).
    pub fn runs_per_round(&self) -> f64 {
        self.runs as f64 / self.rounds.max(1) as f64
    }

    /// The console line: milliseconds per round of each phase; `None`
    /// when no round was timed.
    pub fn line(&self) -> Option<String> {
        if self.rounds == 0 {
            return None;
        }
        let ms = |ns: u64| ns as f64 / 1e6 / self.rounds as f64;
        let parts: Vec<String> = self
            .phases()
            .into_iter()
            .map(|(name, ns)| match name {
                "ops" => format!(
                    "ops {:.1} (past the longest op {:.1}; delays planned {:.1}, spun {:.1}; all at once {:.1}; {:.1} op runs per round)",
                    ms(ns),
                    ms(self.stagger_ns),
                    ms(self.planned_ns),
                    ms(self.spun_ns),
                    ms(self.together_ns),
                    self.runs_per_round()
                ),
                "meets" => format!(
                    "meets {:.1} (reading the files {:.1})",
                    ms(ns),
                    ms(self.meets_read_ns)
                ),
                _ => format!("{name} {:.1}", ms(ns)),
            })
            .collect();
        Some(format!(
            "pairs time per round (ms, {} rounds, {:.1} ms each): {}",
            self.rounds,
            ms(self.wall_ns),
            parts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_is_the_rest_and_the_line_is_per_round() {
        assert_eq!(RoundTime::default().line(), None);
        let t = RoundTime {
            rounds: 2,
            wall_ns: 100_000_000,
            create_ns: 10_000_000,
            ops_ns: 60_000_000,
            stagger_ns: 20_000_000,
            verify_ns: 4_000_000,
            ..RoundTime::default()
        };
        let other = t.phases().last().copied();
        assert_eq!(other, Some(("other", 26_000_000)));
        let line = t.line().unwrap();
        assert!(line.contains("2 rounds, 50.0 ms each"), "{line}");
        assert!(line.contains("create 5.0,"), "{line}");
        assert!(
            line.contains("ops 30.0 (past the longest op 10.0;"),
            "{line}"
        );
        let t = RoundTime {
            runs: 9,
            together_ns: 4_000_000,
            ..t
        };
        let line = t.line().unwrap();
        assert!(
            line.contains("all at once 2.0; 4.5 op runs per round)"),
            "{line}"
        );
        assert!(line.ends_with("other 13.0"), "{line}");
        let t = RoundTime {
            meets_ns: 6_000_000,
            meets_read_ns: 4_000_000,
            ..t
        };
        let line = t.line().unwrap();
        assert!(line.contains("meets 3.0 (reading the files 2.0)"), "{line}");
        let back: RoundTime = serde_json::from_str("{\"rounds\":3}").unwrap();
        assert_eq!(back.rounds, 3);
    }
}
