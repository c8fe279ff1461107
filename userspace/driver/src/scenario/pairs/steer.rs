//! Which pair (and kind) the next slice races.
//!
//! Candidates are every pair `a <= b` of ops that apply to a kind and may
//! run together. With the module's `meets` readable and steering on, the
//! next slice takes a candidate with the lowest score `meets * rounds per
//! slice + rounds`: pairs whose module ops met least so far, and among
//! those the least run (a meet weighs as much as a slice of rounds, so a
//! pair that never meets still gives way to the others once it ran
//! enough). Without `meets` (or with `--no-steer`) the score is the rounds
//! alone: round-robin over the least run. Ties are broken by the seeded
//! generator, and now and then a random third op joins the pair.

use super::tally::{Tally, F};
use crate::shared::rng::Rng;
use mmrace_proto::pairs::{catalogue, Combo, ObjKind, UserOp};

pub struct Steer {
    /// The ops that can run, per kind.
    by_kind: Vec<(ObjKind, Vec<UserOp>)>,
    forced: Option<Combo>,
    steer: bool,
    triple_pct: u8,
    rounds: u64,
    rng: Rng,
}

/// A candidate's score from its row: its meets, scaled from its metered
/// rounds to all its rounds (the run may sample meets), times the rounds
/// of a slice, plus its rounds. A pair never metered scores its rounds.
fn score(meets: u64, rounds: u64, metered: u64, per_slice: u64, use_meets: bool) -> u64 {
    if use_meets && metered > 0 {
        meets * rounds / metered * per_slice + rounds
    } else {
        rounds
    }
}

impl Steer {
    pub fn new(
        by_kind: Vec<(ObjKind, Vec<UserOp>)>,
        forced: Option<Combo>,
        steer: bool,
        triple_pct: u8,
        rounds: u64,
        rng: Rng,
    ) -> Steer {
        Steer {
            by_kind,
            forced,
            steer,
            triple_pct,
            rounds,
            rng,
        }
    }

    /// Stops choosing `kind` (it failed at run time).
    pub fn drop_kind(&mut self, kind: ObjKind) {
        self.by_kind.retain(|(k, _)| *k != kind);
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    /// Every candidate (pair, kind).
    fn candidates(&self) -> Vec<(Combo, ObjKind)> {
        let mut out = Vec::new();
        for (k, ops) in &self.by_kind {
            if let Some(f) = &self.forced {
                if f.0.iter().all(|o| ops.contains(o)) {
                    out.push((f.clone(), *k));
                }
                continue;
            }
            for (i, a) in ops.iter().enumerate() {
                for b in &ops[i..] {
                    let c = Combo::new(vec![*a, *b]);
                    if c.compatible() {
                        out.push((c, *k));
                    }
                }
            }
        }
        out
    }

    /// The next slice's combo and kind (`None`: nothing can run).
    pub fn next(&mut self, tally: &Tally, use_meets: bool) -> Option<(Combo, ObjKind)> {
        let cands = self.candidates();
        let use_meets = use_meets && self.steer;
        let scored: Vec<(u64, &(Combo, ObjKind))> = cands
            .iter()
            .map(|c| {
                // Summed over the start states the candidate ran in.
                let sum = |f| tally.sum(&c.0, c.1, f);
                let (m, r, metered) = (
                    sum(F::Meets),
                    sum(F::Rounds) + sum(F::TripleRounds),
                    sum(F::Metered),
                );
                (score(m, r, metered, self.rounds, use_meets), c)
            })
            .collect();
        let best = scored.iter().map(|s| s.0).min()?;
        let ties: Vec<_> = scored.iter().filter(|s| s.0 == best).map(|s| s.1).collect();
        let (combo, kind) = (*self.rng.pick(&ties)).clone();
        Some((self.maybe_triple(combo, kind), kind))
    }

    /// With `--triple-pct` odds, a third op that applies to `kind` and may
    /// run with the pair.
    fn maybe_triple(&mut self, pair: Combo, kind: ObjKind) -> Combo {
        if self.forced.is_some() || self.rng.below(100) >= u64::from(self.triple_pct) {
            return pair;
        }
        let ops = &self
            .by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("a candidate's kind")
            .1;
        let thirds: Vec<Combo> = ops
            .iter()
            .map(|o| Combo::new(pair.0.iter().copied().chain([*o]).collect()))
            .filter(Combo::compatible)
            .collect();
        if thirds.is_empty() {
            return pair;
        }
        self.rng.pick(&thirds).clone()
    }
}

/// The ops of `ops` that apply to `kind`.
pub fn ops_of(kind: ObjKind, ops: &[UserOp]) -> Vec<UserOp> {
    catalogue::ops_for(kind, ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::pairs::ObjState;
    use UserOp::*;

    fn steer(forced: Option<Combo>, triple: u8) -> Steer {
        let ops = vec![Store, MigratePages, Split, Mremap, Touch];
        Steer::new(
            vec![(ObjKind::Anon, ops.clone()), (ObjKind::Memfd, ops)],
            forced,
            true,
            triple,
            10,
            Rng::new(7),
        )
    }

    #[test]
    fn round_robin_visits_every_candidate_before_repeating() {
        let t = Tally::new().unwrap();
        let mut s = steer(None, 0);
        let n = s.candidates().len();
        // 5 ops: 15 pairs minus mremap+mremap and mremap+touch, per kind.
        assert_eq!(n, 26);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..n {
            let (c, k) = s.next(&t, false).unwrap();
            assert!(c.compatible());
            let r = t.row(&c, k, ObjState::Populated).unwrap();
            t.bump(r, F::Rounds, 10);
            assert!(seen.insert((c, k)), "a candidate repeated before all ran");
        }
    }

    #[test]
    fn steering_prefers_pairs_that_met_least() {
        let t = Tally::new().unwrap();
        let mut s = steer(None, 0);
        let quiet = (Combo::new(vec![Touch, Split]), ObjKind::Anon);
        for (c, k) in s.candidates() {
            let r = t.row(&c, k, ObjState::Populated).unwrap();
            if (c.clone(), k) == quiet {
                // Ran 30 times as much, never met: score 300.
                t.bump(r, F::Rounds, 300);
            } else {
                // Score 50 * 10 + 10 = 510.
                t.bump(r, F::Rounds, 10);
                t.bump(r, F::Metered, 10);
                t.bump(r, F::Meets, 50);
            }
        }
        assert_eq!(s.next(&t, true).unwrap(), quiet);
        // Without meets the least run wins instead.
        assert_ne!(s.next(&t, false).unwrap(), quiet);
        // --no-steer ignores meets even when they are there.
        let mut ns = Steer::new(s.by_kind.clone(), None, false, 0, 10, Rng::new(1));
        assert_ne!(ns.next(&t, true).unwrap(), quiet);
    }

    #[test]
    fn sampled_meets_are_scaled_to_all_rounds() {
        // 2 meets in 5 metered rounds of 50: about 20 in all.
        assert_eq!(score(2, 50, 5, 10, true), 20 * 10 + 50);
        // Every round metered: the meets as counted.
        assert_eq!(score(2, 50, 50, 10, true), 2 * 10 + 50);
        // Never metered, or steering without meets: the rounds.
        assert_eq!(score(2, 50, 0, 10, true), 50);
        assert_eq!(score(2, 50, 50, 10, false), 50);
    }

    #[test]
    fn forced_pairs_and_triples() {
        let t = Tally::new().unwrap();
        let f = Combo::new(vec![Store, MigratePages]);
        let mut s = steer(Some(f.clone()), 100);
        for _ in 0..4 {
            assert_eq!(s.next(&t, true).unwrap().0, f);
        }
        let mut s = steer(None, 100);
        let (c, _) = s.next(&t, false).unwrap();
        assert_eq!(c.0.len(), 3);
        assert!(c.compatible());
        s.drop_kind(ObjKind::Anon);
        s.drop_kind(ObjKind::Memfd);
        assert!(s.is_empty() && s.next(&t, false).is_none());
    }
}
