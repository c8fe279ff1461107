//! The monitor thread: every 100 ms it folds the children's shared op
//! counts into `ctx.op(..)` and reads mmrace.ko's counters, to timestamp the
//! first `pmd_race` and the first `thp_split_failed` of the run (how fast a
//! scenario reaches the race is the figure of merit of an amplifier).

use crate::ctx::Ctx;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const POLL: Duration = Duration::from_millis(100);

/// The first time a counter rose above its value at the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub counter: &'static str,
    /// The event sent when it first rises.
    pub event: &'static str,
    start: u64,
    pub first_ms: Option<u64>,
}

impl Watch {
    pub fn new(counter: &'static str, event: &'static str, start: &BTreeMap<String, u64>) -> Self {
        Watch {
            counter,
            event,
            start: start.get(counter).copied().unwrap_or(0),
            first_ms: None,
        }
    }

    /// Looks at a new reading taken `t_ms` after the start; true the one
    /// time the counter is first seen above its start value.
    pub fn observe(&mut self, now: &BTreeMap<String, u64>, t_ms: u64) -> bool {
        if self.first_ms.is_some() {
            return false;
        }
        match now.get(self.counter) {
            Some(&v) if v > self.start => {
                self.first_ms = Some(t_ms);
                true
            }
            _ => false,
        }
    }
}

/// Every [`POLL`] until `done()` (or the run's end): folds ops with `fold`,
/// and if `read` gives counters, feeds `watches`, sending each watch's event
/// with its milliseconds since `t0` as the detail (`who` names the scenario
/// in the human line). thp-race and shell-baseline both watch this way.
pub fn run(
    ctx: &Ctx,
    who: &str,
    t0: Instant,
    fold: impl Fn(),
    read: impl Fn() -> Option<BTreeMap<String, u64>>,
    watches: &mut [Watch],
    mut done: impl FnMut() -> bool,
) {
    while !ctx.should_stop() {
        std::thread::sleep(POLL);
        fold();
        if let Some(now) = read() {
            let t_ms = t0.elapsed().as_millis() as u64;
            for w in watches.iter_mut() {
                if w.observe(&now, t_ms) {
                    ctx.event(w.event, t_ms.to_string());
                    ctx.say(format!("{who}: first {} after {t_ms} ms", w.counter));
                }
            }
        }
        if done() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: u64) -> BTreeMap<String, u64> {
        [("pmd_race".to_string(), v)].into()
    }

    #[test]
    fn fires_once_on_first_rise() {
        let mut w = Watch::new("pmd_race", "first_pmd_race", &m(5));
        assert!(!w.observe(&m(5), 100));
        assert!(!w.observe(&BTreeMap::new(), 150));
        assert!(w.observe(&m(6), 200));
        assert!(!w.observe(&m(9), 300));
        assert_eq!(w.first_ms, Some(200));
    }

    #[test]
    fn missing_start_counts_from_zero() {
        let mut w = Watch::new("pmd_race", "first_pmd_race", &BTreeMap::new());
        assert!(!w.observe(&m(0), 1));
        assert!(w.observe(&m(1), 2));
    }
}
