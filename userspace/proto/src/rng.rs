//! thp-race's only source of randomness: SplitMix64 seeded from the run's
//! seed, so a run's choices (kill intervals, racer chunks, op kinds,
//! offsets, the swarm's subset of parties) replay exactly from `--seed`.
//! Here in proto so the host and the driver resolve `--swarm` alike. No
//! `rand` crate: the driver is a static /init and keeps its dependency list
//! short, and SplitMix64 is statistically more than good enough for picking
//! intervals and offsets.

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit counter run through a
/// strong mixer. Every seed, including 0, gives a full-period stream.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 output function, also used to derive stream seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a of a stream name: stable across builds and platforms (unlike
/// `std::hash`), so stream seeds never change under a replay.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// An independent stream for one party (`name`) and one instance of it
    /// (`index`, e.g. the writer's generation). Separate streams mean that
    /// turning a party off, or a child living longer, does not shift the
    /// choices every other party makes from the same seed.
    pub fn stream(seed: u64, name: &str, index: u64) -> Self {
        let s = mix(seed ^ mix(name_hash(name)) ^ mix(index.wrapping_add(GOLDEN_GAMMA)));
        Rng::new(s)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias: Lemire's
    /// multiply-shift with rejection of the short last interval.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "Rng::range_inclusive({lo}, {hi})");
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(), // the whole u64 range
        }
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let a: Vec<u64> = (0..100)
            .scan(Rng::new(42), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..100)
            .scan(Rng::new(42), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..100)
            .scan(Rng::new(43), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn reference_values() {
        // SplitMix64 from seed 0, as published with the algorithm: pins the
        // implementation so a replay of an old seed stays a replay.
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let first = |name, index| Rng::stream(7, name, index).next_u64();
        assert_eq!(first("racers", 1), first("racers", 1));
        assert_ne!(first("racers", 1), first("racers", 2));
        assert_ne!(first("racers", 1), first("kill", 1));
        assert_ne!(first("racers", 1), Rng::stream(8, "racers", 1).next_u64());
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let v = r.below(7);
            assert!(v < 7);
            seen[v as usize] += 1;
        }
        // Each bucket expects 1000; 800 is > 6 sigma away.
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn range_inclusive_hits_both_ends() {
        let mut r = Rng::new(3);
        let vals: Vec<u64> = (0..2000).map(|_| r.range_inclusive(5, 9)).collect();
        assert!(vals.iter().all(|v| (5..=9).contains(v)));
        assert!(vals.contains(&5) && vals.contains(&9));
        assert_eq!(r.range_inclusive(4, 4), 4);
        r.range_inclusive(0, u64::MAX); // must not overflow
    }

    #[test]
    fn pick_returns_members() {
        let mut r = Rng::new(5);
        let items = ["a", "b", "c"];
        for _ in 0..100 {
            assert!(items.contains(r.pick(&items)));
        }
    }
}
