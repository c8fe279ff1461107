//! Which pair (and kind) the next slice races.
//!
//! Candidates are every pair `a <= b` of ops that apply to a kind and may
//! run together. With the module's `meets` readable and steering on
//! (`--steer-by need`, the default), the
//! next slice takes the candidate that needs the fewest rounds to reach
//! [`COVERED_MEETS`] meets, estimated from its metered rounds
//! ([`score`]): a pair that met but not yet often enough comes first, then
//! the pairs not yet metered (least run first: round-robin), then the
//! pairs metered without a meet, backed off the longer they ran without
//! one (retried once the others need more), and last the covered pairs,
//! least met first. Without `meets` (or with `--no-steer`) the score is
//! the rounds alone: round-robin over the least run. `--steer-by
//! least-met` scores as before issue 17's never-met
//! measurement (`least_met_score`). Ties are broken by
//! the seeded generator, and now and then a random third op joins the
//! pair. With `--slice-by need`, while the probes are armed, the slice's
//! length comes from the same estimate ([`need_rounds`]): short for a pair
//! not yet met, so every pair is metered early, as long as a met pair
//! needs to be covered.

use super::tally::{Tally, F};
use crate::shared::rng::Rng;
use mmrace_proto::meets::COVERED_MEETS;
use mmrace_proto::pairs::{catalogue, Combo, ObjKind, UserOp};
use mmrace_proto::spec::pairs::{SliceBy, SteerBy, SLICE_CAP_SLICES};

/// How many rounds a slice runs (`--slice-by`, `--rounds`,
/// `--first-rounds`).
#[derive(Clone, Copy, Debug)]
pub struct Sizing {
    pub by: SliceBy,
    /// `--rounds`: every slice's with `fixed`, a covered pair's with `need`.
    pub rounds: u64,
    /// `--first-rounds`: a slice of a pair not yet met, with `need`.
    pub first: u64,
}

/// The next slice: its combo, kind and rounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    pub combo: Combo,
    pub kind: ObjKind,
    pub rounds: u64,
}

pub struct Steer {
    /// The ops that can run, per kind.
    by_kind: Vec<(ObjKind, Vec<UserOp>)>,
    forced: Option<Combo>,
    /// How meets steer (`--steer-by`); `None` with `--no-steer`.
    by: Option<SteerBy>,
    triple_pct: u8,
    sizing: Sizing,
    rng: Rng,
}

/// The score of `--steer-by least-met` (the steering before issue 17's
/// never-met measurement): its meets, scaled from its metered rounds to
/// all its rounds, times the rounds of a slice, plus its rounds. A pair
/// never metered scores its rounds. It sends a pair that met a few times
/// behind every pair that never met, so in a 10-minute run a met pair
/// rarely runs again before it reaches [`COVERED_MEETS`].
fn least_met_score(meets: u64, rounds: u64, metered: u64, per_slice: u64, use_meets: bool) -> u64 {
    if use_meets && metered > 0 {
        meets * rounds / metered * per_slice + rounds
    } else {
        rounds
    }
}

/// The rounds of a slice of a candidate with these sums (`--slice-by
/// need`): `first` while it has not met (never metered, or metered
/// without a meet: a short look, steering backs it off after); once it
/// met, the rounds its own measured rate (no prior: a prior of one in
/// ten would size a pair met twice in two rounds at 32 rounds, not 8)
/// says it still needs to reach [`COVERED_MEETS`], its unmetered rounds'
/// meets estimated at that rate, at least one and at most
/// [`SLICE_CAP_SLICES`] times `per_slice`; a covered pair `per_slice`.
fn need_rounds(meets: u64, rounds: u64, metered: u64, per_slice: u64, first: u64) -> u64 {
    if metered == 0 || meets == 0 {
        return first;
    }
    let rate = meets as f64 / metered as f64;
    match rounds_to_cover(expected_meets(meets, rounds, metered, rate), rate) {
        None => per_slice,
        Some(need) => need.clamp(1, per_slice.saturating_mul(SLICE_CAP_SLICES)),
    }
}

/// A candidate's meets: those of its metered rounds, and its unmetered
/// rounds' estimated at `rate` a round.
fn expected_meets(meets: u64, rounds: u64, metered: u64, rate: f64) -> f64 {
    meets as f64 + rate * rounds.saturating_sub(metered) as f64
}

/// The rounds still needed at `rate` a round to go from `expected` meets
/// to [`COVERED_MEETS`]; `None` once there.
fn rounds_to_cover(expected: f64, rate: f64) -> Option<u64> {
    (expected < COVERED_MEETS as f64)
        .then(|| ((COVERED_MEETS as f64 - expected) / rate).ceil() as u64)
}

/// The prior of a candidate's meets per round, as meets in rounds: one
/// meet in ten rounds (about the median rate of the rows that met at all,
/// 0.4, times the share of rows that met, 15 to 20 %, in the 10-minute
/// runs of docs/pairs.md). Its weight is ten rounds, so a pair metered
/// without a meet for a slice or two already ranks behind one not yet
/// metered.
const PRIOR_MEETS: f64 = 1.0;
const PRIOR_ROUNDS: f64 = 10.0;
/// Scores at and above this are covered pairs.
const COVERED_BASE: u64 = 1 << 62;
/// The rounds' share of a score (the tie-break within a need).
const ROUNDS_BITS: u32 = 20;

/// A candidate's score from its rows summed over states (lowest runs
/// next): its meets and metered rounds give its meets per round
/// (`(meets + PRIOR_MEETS) / (metered + PRIOR_ROUNDS)`); the meets of its
/// unmetered rounds (the run may sample meets) are estimated at that
/// rate; the rounds it still needs to reach [`COVERED_MEETS`] at that rate
/// are the score's high part, its rounds the low part. A candidate never
/// metered needs what the prior says, so those go round-robin. A covered
/// candidate scores above every other one, by its meets scaled to all its
/// rounds times the rounds of a slice, plus its rounds (least met first).
/// Without meets the score is the rounds.
fn score(meets: u64, rounds: u64, metered: u64, per_slice: u64, use_meets: bool) -> u64 {
    if !use_meets {
        return rounds;
    }
    // Meets are counted in metered rounds only: without one, the prior.
    let (rate, expected) = if metered == 0 {
        (PRIOR_MEETS / PRIOR_ROUNDS, 0.0)
    } else {
        let rate = (meets as f64 + PRIOR_MEETS) / (metered as f64 + PRIOR_ROUNDS);
        (rate, expected_meets(meets, rounds, metered, rate))
    };
    let Some(need) = rounds_to_cover(expected, rate) else {
        let scaled = meets.saturating_mul(rounds) / metered.max(1);
        return COVERED_BASE
            .saturating_add(scaled.saturating_mul(per_slice).saturating_add(rounds));
    };
    let low = rounds.min((1 << ROUNDS_BITS) - 1);
    (need.min(COVERED_BASE >> ROUNDS_BITS) << ROUNDS_BITS) | low
}

impl Steer {
    pub fn new(
        by_kind: Vec<(ObjKind, Vec<UserOp>)>,
        forced: Option<Combo>,
        by: Option<SteerBy>,
        triple_pct: u8,
        sizing: Sizing,
        rng: Rng,
    ) -> Steer {
        Steer {
            by_kind,
            forced,
            by,
            triple_pct,
            sizing,
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

    /// The next slice's combo, kind and rounds (`None`: nothing can run).
    /// `armed`: the meets probes are armed now, so this slice is metered
    /// (its length follows `--slice-by` only then).
    pub fn next(&mut self, tally: &Tally, use_meets: bool, armed: bool) -> Option<Pick> {
        let cands = self.candidates();
        let use_meets = use_meets && self.by.is_some();
        let score = if self.by == Some(SteerBy::LeastMet) {
            least_met_score
        } else {
            score
        };
        // Summed over the start states each candidate ran in.
        let sums = tally.sums_by_pair([F::Meets, F::Rounds, F::TripleRounds, F::Metered]);
        let per_slice = self.sizing.rounds;
        let sums_of = |c: &(Combo, ObjKind)| {
            let [m, r, triple, metered] = sums.get(c).copied().unwrap_or_default();
            (m, r + triple, metered)
        };
        let scored: Vec<(u64, &(Combo, ObjKind))> = cands
            .iter()
            .map(|c| {
                let (m, r, metered) = sums_of(c);
                (score(m, r, metered, per_slice, use_meets), c)
            })
            .collect();
        let best = scored.iter().map(|s| s.0).min()?;
        let ties: Vec<_> = scored.iter().filter(|s| s.0 == best).map(|s| s.1).collect();
        let chosen = (*self.rng.pick(&ties)).clone();
        // A forced combo has no other candidate to make room for: its
        // slices keep `--rounds` (and one meets read a slice), as the
        // variants' forced lines were measured.
        let rounds = match self.sizing.by {
            SliceBy::Need if use_meets && armed && self.forced.is_none() => {
                let (m, r, metered) = sums_of(&chosen);
                need_rounds(m, r, metered, per_slice, self.sizing.first)
            }
            _ => per_slice,
        };
        let (combo, kind) = chosen;
        Some(Pick {
            combo: self.maybe_triple(combo, kind),
            kind,
            rounds,
        })
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
            Some(SteerBy::Need),
            triple,
            sizing(SliceBy::Fixed),
            Rng::new(7),
        )
    }

    /// Slices of 10 rounds, or by need with 2 first.
    fn sizing(by: SliceBy) -> Sizing {
        Sizing {
            by,
            rounds: 10,
            first: 2,
        }
    }

    /// The next slice's pair and kind, the probes not armed.
    fn pick(s: &mut Steer, t: &Tally, use_meets: bool) -> (Combo, ObjKind) {
        let p = s.next(t, use_meets, false).unwrap();
        (p.combo, p.kind)
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
            let (c, k) = pick(&mut s, &t, false);
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
                // Ran 30 times as much, never metered: the prior's need.
                t.bump(r, F::Rounds, 300);
            } else {
                // Covered.
                t.bump(r, F::Rounds, 10);
                t.bump(r, F::Metered, 10);
                t.bump(r, F::Meets, 50);
            }
        }
        assert_eq!(pick(&mut s, &t, true), quiet);
        // Without meets the least run wins instead.
        assert_ne!(pick(&mut s, &t, false), quiet);
        // --no-steer ignores meets even when they are there.
        let mut ns = steered_as(&s, None);
        assert_ne!(pick(&mut ns, &t, true), quiet);
        // --steer-by least-met: 300 against 50 * 10 + 10 = 510.
        let mut lm = steered_as(&s, Some(SteerBy::LeastMet));
        assert_eq!(pick(&mut lm, &t, true), quiet);
    }

    /// A steering over `s`'s kinds and ops, steered by `by` (`None`:
    /// `--no-steer`).
    fn steered_as(s: &Steer, by: Option<SteerBy>) -> Steer {
        Steer::new(
            s.by_kind.clone(),
            None,
            by,
            0,
            sizing(SliceBy::Fixed),
            Rng::new(1),
        )
    }

    #[test]
    fn a_pair_that_met_runs_again_before_the_unmetered() {
        let t = Tally::new().unwrap();
        let mut s = steer(None, 0);
        let met = (Combo::new(vec![Store, Split]), ObjKind::Memfd);
        let r = t.row(&met.0, met.1, ObjState::Small).unwrap();
        t.bump(r, F::Rounds, 10);
        t.bump(r, F::Metered, 10);
        t.bump(r, F::Meets, 3);
        assert_eq!(pick(&mut s, &t, true), met);
        // The least-met steering sends it behind every pair not yet run.
        let mut lm = steered_as(&s, Some(SteerBy::LeastMet));
        assert_ne!(pick(&mut lm, &t, true), met);
    }

    #[test]
    fn scores_rank_near_covered_unmetered_backed_off_covered() {
        let s = |m, r, metered| score(m, r, metered, 5, true);
        // Met twice in 5 rounds: needs (10 - 2) / (3 / 15) = 40 rounds.
        let near = s(2, 5, 5);
        assert_eq!(near >> ROUNDS_BITS, 40);
        // Never metered: the prior's 100 rounds; least run first.
        let fresh = s(0, 0, 0);
        assert!(near < fresh && fresh < s(0, 5, 0));
        // Metered without a meet: behind the unmetered, further back the
        // longer it ran (5 rounds: 150; 50: 600).
        let quiet = s(0, 5, 5);
        assert!(s(0, 50, 0) < quiet && quiet < s(0, 50, 50));
        // But a long-unmet pair comes back before a covered one.
        let covered = s(10, 5, 5);
        assert!(covered >= COVERED_BASE && s(0, 5000, 5000) < covered);
        // Covered pairs: least met first, as before.
        assert!(covered < s(50, 5, 5));
    }

    #[test]
    fn sampled_meets_are_scaled_to_all_rounds() {
        // 2 meets in 5 metered rounds of 50: about 9 more expected in the
        // 45 unmetered ones at 3 / 15 a round: covered.
        assert!(score(2, 50, 5, 10, true) >= COVERED_BASE);
        // The same with every round metered: not covered.
        assert!(score(2, 50, 50, 10, true) < COVERED_BASE);
        // Never metered: the prior and the rounds; without meets the rounds.
        assert_eq!(score(2, 50, 0, 10, true), (100 << ROUNDS_BITS) | 50);
        assert_eq!(score(2, 50, 50, 10, false), 50);
        // The least-met score scales as before.
        assert_eq!(least_met_score(2, 50, 5, 10, true), 20 * 10 + 50);
        assert_eq!(least_met_score(2, 50, 0, 10, true), 50);
    }

    #[test]
    fn need_sizes_a_slice_by_the_pairs_own_rate() {
        let n = |m, r, metered| need_rounds(m, r, metered, 5, 2);
        // Not met yet (never metered, or metered without a meet): a short look.
        assert_eq!(n(0, 0, 0), 2);
        assert_eq!(n(0, 40, 40), 2);
        // Met twice in 2 rounds: 8 more at its rate of 1 a round.
        assert_eq!(n(2, 2, 2), 8);
        // Met once in 4 rounds: 36 at its rate, capped at 5 slices of 5.
        assert_eq!(n(1, 4, 4), 25);
        // 9 meets in 3 metered of 3 rounds: one more round.
        assert_eq!(n(9, 3, 3), 1);
        // Unmetered rounds count at its rate: 4 in 2 metered of 4 is 8.
        assert_eq!(n(4, 4, 2), 1);
        // Covered: a fixed slice.
        assert_eq!(n(10, 5, 5), 5);
        assert_eq!(n(3, 20, 5), 5);
    }

    #[test]
    fn slices_follow_need_only_while_metered() {
        let t = Tally::new().unwrap();
        let met = (Combo::new(vec![Store, Split]), ObjKind::Memfd);
        let r = t.row(&met.0, met.1, ObjState::Populated).unwrap();
        t.bump(r, F::Rounds, 2);
        t.bump(r, F::Metered, 2);
        t.bump(r, F::Meets, 2);
        let mut s = steered_as(&steer(None, 0), Some(SteerBy::Need));
        s.sizing = sizing(SliceBy::Need);
        // The met pair comes first, sized by its rate: 8 more rounds.
        let p = s.next(&t, true, true).unwrap();
        assert_eq!(((p.combo.clone(), p.kind), p.rounds), (met.clone(), 8));
        // The probes disarmed (sampled meets), or no meets: `--rounds`.
        assert_eq!(s.next(&t, true, false).unwrap().rounds, 10);
        assert_eq!(s.next(&t, false, true).unwrap().rounds, 10);
        // A pair not yet met: `--first-rounds`.
        t.bump(r, F::Meets, 20);
        let p = s.next(&t, true, true).unwrap();
        assert_ne!((p.combo, p.kind), met);
        assert_eq!(p.rounds, 2);
        // `--slice-by fixed` keeps `--rounds` whatever the meets.
        s.sizing = sizing(SliceBy::Fixed);
        assert_eq!(s.next(&t, true, true).unwrap().rounds, 10);
    }

    #[test]
    fn forced_pairs_and_triples() {
        let t = Tally::new().unwrap();
        let f = Combo::new(vec![Store, MigratePages]);
        let mut s = steer(Some(f.clone()), 100);
        for _ in 0..4 {
            assert_eq!(pick(&mut s, &t, true).0, f);
        }
        // Sized by need, a forced pair not yet met still runs --rounds.
        s.sizing = sizing(SliceBy::Need);
        assert_eq!(s.next(&t, true, true).unwrap().rounds, 10);
        let mut s = steer(None, 100);
        let (c, _) = pick(&mut s, &t, false);
        assert_eq!(c.0.len(), 3);
        assert!(c.compatible());
        s.drop_kind(ObjKind::Anon);
        s.drop_kind(ObjKind::Memfd);
        assert!(s.is_empty() && s.next(&t, false, false).is_none());
    }
}
