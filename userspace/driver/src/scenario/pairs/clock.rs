//! Where the worker's time goes: the phases of its rounds and slices,
//! summed into the tallies ([`T`]) and reported as
//! [`mmrace_proto::results::round_time::RoundTime`] (issue 17.4).

use super::op::Timing;
use super::tally::{Tally, T};
use mmrace_proto::results::round_time::RoundTime;
use std::time::Instant;

fn ns(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_nanos() as u64
}

/// A stopwatch whose laps go to the tallies' phases.
pub struct Lap<'a> {
    tally: &'a Tally,
    at: Instant,
}

impl<'a> Lap<'a> {
    pub fn start(tally: &'a Tally) -> Lap<'a> {
        Lap {
            tally,
            at: Instant::now(),
        }
    }

    /// Adds the time since the last mark to phase `t`.
    pub fn mark(&mut self, t: T) {
        let now = Instant::now();
        self.tally.add_time(t, ns(self.at, now));
        self.at = now;
    }

    /// Forgets the time since the last mark (another clock counted it).
    pub fn skip(&mut self) {
        self.at = Instant::now();
    }
}

/// The race's phases from the worker's publishing of the orders
/// (`published`) to its seeing every result (`joined`), by the threads'
/// timings: release until the last thread had its orders, ops until the
/// last op ended (of which the time past the longest op is the start
/// offsets' stagger), join until the worker saw them.
pub fn race(tally: &Tally, published: Instant, joined: Instant, t: &[Timing]) {
    let (Some(woke), Some(end)) = (
        t.iter().map(|x| x.woke).max(),
        t.iter().map(|x| x.end).max(),
    ) else {
        return;
    };
    let longest = t.iter().map(|x| ns(x.start, x.end)).max().unwrap_or(0);
    let spun = t.iter().map(|x| ns(x.released, x.start)).max().unwrap_or(0);
    tally.add_time(T::Spun, spun);
    let ops = ns(woke, end);
    tally.add_time(T::Release, ns(published, woke));
    tally.add_time(T::Ops, ops);
    tally.add_time(T::Stagger, ops.saturating_sub(longest));
    tally.add_time(T::Join, ns(end, joined));
    tally.add_time(T::Runs, t.iter().map(|x| u64::from(x.runs)).sum());
    tally.add_time(T::Together, together(t));
}

/// The time every op ran at once: the latest first start to the earliest
/// last end (zero when they never did).
fn together(t: &[Timing]) -> u64 {
    match (
        t.iter().map(|x| x.start).max(),
        t.iter().map(|x| x.end).min(),
    ) {
        (Some(a), Some(b)) => ns(a, b),
        _ => 0,
    }
}

/// The run's time per phase.
pub fn report(tally: &Tally) -> RoundTime {
    RoundTime {
        rounds: tally.time(T::Rounds),
        wall_ns: tally.time(T::Wall),
        create_ns: tally.time(T::Create),
        stamp_ns: tally.time(T::Stamp),
        plan_ns: tally.time(T::Plan),
        release_ns: tally.time(T::Release),
        ops_ns: tally.time(T::Ops),
        stagger_ns: tally.time(T::Stagger),
        join_ns: tally.time(T::Join),
        record_ns: tally.time(T::Record),
        verify_ns: tally.time(T::Verify),
        drop_ns: tally.time(T::Drop),
        crew_ns: tally.time(T::Crew),
        meets_ns: tally.time(T::Meets),
        steer_ns: tally.time(T::Steer),
        planned_ns: tally.time(T::Planned),
        spun_ns: tally.time(T::Spun),
        runs: tally.time(T::Runs),
        together_ns: tally.time(T::Together),
        meets_read_ns: tally.time(T::MeetsRead),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_race_splits_at_the_last_release_and_the_last_end() {
        let tally = Tally::new().unwrap();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let t = [
            Timing {
                woke: at(1),
                released: at(2),
                start: at(3),
                first_end: at(10),
                end: at(10),
                runs: 1,
                shot: None,
            },
            Timing {
                woke: at(2),
                released: at(2),
                start: at(6),
                first_end: at(12),
                end: at(12),
                runs: 1,
                shot: None,
            },
        ];
        race(&tally, t0, at(13), &t);
        let ms = |x: T| tally.time(x) / 1_000_000;
        assert_eq!(
            (ms(T::Release), ms(T::Ops), ms(T::Stagger), ms(T::Join)),
            (2, 10, 3, 1)
        );
        assert_eq!(ms(T::Spun), 4);
        let mut lap = Lap::start(&tally);
        std::thread::sleep(Duration::from_millis(2));
        lap.mark(T::Verify);
        assert!(tally.time(T::Verify) >= 2_000_000);
        assert_eq!(report(&tally).ops_ns, tally.time(T::Ops));
    }
}
