//! How soon a run caught what it caught: the figures a batch of runs turns
//! into medians, and a race-only bug's "time to catch".

use crate::judge::scan::{kernel_time, ConsoleFinding, ConsoleScan};
use crate::judge::verdict::Verdict;
use crate::vm::messages::Messages;
use mmrace_proto::wire::{Msg, EVENT_FIRST_RACE};
use serde::{Deserialize, Serialize};

/// Which clock measured the time to catch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatchClock {
    /// Kernel clock: the finding's console line minus mmrace.ko's load line.
    Kernel,
    /// The driver's clock: its last message before the guest stopped talking
    /// (a hang, a guest that died without a console finding, or a console
    /// without time stamps). Up to a snapshot interval (1 s) late.
    DriverLastMessage,
    /// The driver's clock when an oracle found it, with no console finding:
    /// the first data-oracle mismatch, else the first stall the driver saw,
    /// else the first snapshot with a new taint bit (up to 1 s late).
    Oracle,
}

/// Times of one run, in seconds from the driver's start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CatchTimes {
    /// Until the kernel problem or hang that decided the verdict; None for
    /// a run that caught nothing.
    pub to_catch_s: Option<f64>,
    pub to_catch_clock: Option<CatchClock>,
    /// Until `pmd_race` first rose (the driver's event); None if it never did.
    pub to_first_race_s: Option<f64>,
}

impl CatchTimes {
    pub fn measure(
        verdict: Verdict,
        finding: Option<&ConsoleFinding>,
        scan: &ConsoleScan,
        msgs: &Messages,
    ) -> Self {
        let to_first_race_s = msgs.events.iter().find_map(|m| match m {
            Msg::Event { t_ms, what, .. } if what == EVENT_FIRST_RACE => {
                Some(*t_ms as f64 / 1000.0)
            }
            _ => None,
        });
        let caught = matches!(verdict, Verdict::KernelProblem | Verdict::Hang);
        let kernel = finding
            .and_then(|f| kernel_time(&f.first_line().text))
            .zip(scan.module_loaded_at())
            .map(|(at, zero)| at - zero)
            .filter(|t| *t >= 0.0);
        let driver = msgs.guest_elapsed_ms().map(|ms| ms as f64 / 1000.0);
        // In the order the verdict takes them (verdict::oracle_judgement).
        let oracle = finding
            .is_none()
            .then(|| {
                msgs.corruptions
                    .first()
                    .map(|c| c.t_ms)
                    .or_else(|| {
                        msgs.stalls.iter().find_map(|m| match m {
                            Msg::Stall { t_ms, .. } => Some(*t_ms),
                            _ => None,
                        })
                    })
                    .or_else(|| msgs.taint().first_t_ms)
            })
            .flatten()
            .map(|ms| ms as f64 / 1000.0);
        let (to_catch_s, to_catch_clock) = match (caught, kernel, oracle, driver) {
            (false, ..) => (None, None),
            (true, Some(t), _, _) => (Some(round_ms(t)), Some(CatchClock::Kernel)),
            (true, None, Some(t), _) => (Some(t), Some(CatchClock::Oracle)),
            (true, None, None, Some(t)) => (Some(t), Some(CatchClock::DriverLastMessage)),
            (true, None, None, None) => (None, None),
        };
        CatchTimes {
            to_catch_s,
            to_catch_clock,
            to_first_race_s,
        }
    }
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::wire::encode;

    fn msgs(events: &[(u64, &str)], last_ms: u64) -> Messages {
        let mut m = Messages::new();
        for (t_ms, what) in events {
            m.feed(&encode(&Msg::Event {
                t_ms: *t_ms,
                what: what.to_string(),
                detail: String::new(),
            }));
        }
        m.feed(&encode(&Msg::Snapshot {
            t_ms: last_ms,
            counters: Default::default(),
            ops: Default::default(),
            tainted: None,
            mismatches: 0,
        }));
        m
    }

    fn scan(lines: &str) -> ConsoleScan {
        let mut s = ConsoleScan::new();
        s.feed_text(lines);
        s
    }

    #[test]
    fn kernel_clock_from_module_load_to_finding() {
        let s = scan(
            "[    0.000000] Linux version 7.3.4\n\
             [    3.250000] mmrace: mmrace 0.1.0 debugfs 1 loaded\n\
             [   10.000000] kernel BUG at mm/huge_memory.c:3050!\n",
        );
        let m = msgs(
            &[(400, "first_thp_split_failed"), (1200, EVENT_FIRST_RACE)],
            6000,
        );
        let t = CatchTimes::measure(Verdict::KernelProblem, s.first_finding(), &s, &m);
        assert_eq!(t.to_catch_s, Some(6.75));
        assert_eq!(t.to_catch_clock, Some(CatchClock::Kernel));
        assert_eq!(t.to_first_race_s, Some(1.2));
    }

    #[test]
    fn hang_uses_the_driver_clock_and_clean_catches_nothing() {
        let s = scan("[    3.0] mmrace: mmrace 0.1.0 debugfs 1 loaded\n");
        let m = msgs(&[], 41_000);
        let t = CatchTimes::measure(Verdict::Hang, None, &s, &m);
        assert_eq!(t.to_catch_s, Some(41.0));
        assert_eq!(t.to_catch_clock, Some(CatchClock::DriverLastMessage));
        assert_eq!(t.to_first_race_s, None);
        let t = CatchTimes::measure(Verdict::Clean, None, &s, &m);
        assert_eq!((t.to_catch_s, t.to_catch_clock), (None, None));
    }

    #[test]
    fn a_data_corruption_is_caught_when_the_oracle_found_it() {
        use mmrace_proto::oracle::{Corruption, Expected, Found};
        let s = scan("[    3.0] mmrace: mmrace 0.1.0 debugfs 1 loaded\n");
        // The run went on to 60 s; the mismatch was at 2.1 s.
        let mut m = msgs(&[], 60_000);
        m.feed(&encode(&Msg::Corruption(Box::new(Corruption {
            t_ms: 2100,
            check: "writer-pass".into(),
            region: "thp-race writer".into(),
            vaddr: 0x7000_0000_3000,
            page: 3,
            expected: Expected::Zero,
            found: Found::Garbage {
                words: [1, 2, 3, 4],
                last: 5,
            },
            recent_ops: Default::default(),
            context: None,
        }))));
        let t = CatchTimes::measure(Verdict::KernelProblem, None, &s, &m);
        assert_eq!(t.to_catch_s, Some(2.1));
        assert_eq!(t.to_catch_clock, Some(CatchClock::Oracle));
    }
}
