//! The scenario's randomness: [`Rng`] (SplitMix64, in proto so host and
//! driver resolve `--swarm` alike) and the writer's kill intervals.

pub use mmrace_proto::rng::Rng;
use std::time::Duration;

/// The time until the next SIGKILL of the writer: uniform in
/// `[min_ms, max_ms]` milliseconds, as the seed's shell loop did with
/// random sleeps.
pub fn kill_interval(rng: &mut Rng, min_ms: u64, max_ms: u64) -> Duration {
    Duration::from_millis(rng.range_inclusive(min_ms, max_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_intervals_within_bounds_and_replayable() {
        let mut a = Rng::stream(99, "kill", 0);
        let mut b = Rng::stream(99, "kill", 0);
        for _ in 0..1000 {
            let d = kill_interval(&mut a, 200, 2000);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(2000));
            assert_eq!(d, kill_interval(&mut b, 200, 2000));
        }
        assert_eq!(kill_interval(&mut a, 300, 300), Duration::from_millis(300));
    }
}
