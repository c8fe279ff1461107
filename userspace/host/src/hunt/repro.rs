//! A new finding's reproduction probability and its minimisation.
//!
//! 1. Measure: the run that found it is run again `n` times, the same
//!    RunSpec (same seed): the share of reruns that find the same signature
//!    is its reproduction probability, with its 95 % Wilson interval.
//! 2. Minimise (thp-race and pairs): from the run's resolved options
//!    (swarm mode replaced by what it drew), each part still in the run (a
//!    thp-race party; a pairs op, kind or start state) is taken out in turn
//!    and the reduced run is run `n` times; the part stays out when the
//!    reduced run still reproduces within the measured interval (its
//!    estimate at or above the interval's low end), else it is needed. What
//!    is left must still run (one party; two ops, one kind, one state).
//!    Scenarios without parts are not minimised.
//!
//! The state is plain data, kept in campaign.json, so an interrupted
//! campaign resumes a measurement or a minimisation where it stopped.

use crate::fleet::stats::Proportion;
use mmrace_proto::spec::{RunSpec, Scenario};
use serde::{Deserialize, Serialize};

/// Which run of the state machine a rerun is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", content = "party", rename_all = "kebab-case")]
pub enum Which {
    /// The run that found it, again.
    Base,
    /// The best run so far without this party.
    Without(String),
}

/// A party tried off and what the reduced run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub party: String,
    pub spec: RunSpec,
    pub outcomes: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproState {
    /// Reruns per measurement.
    pub n: u32,
    pub base: RunSpec,
    /// Whether each rerun of `base` found the same signature.
    pub base_outcomes: Vec<bool>,
    /// The reproduction probability, once measured.
    pub estimate: Option<Proportion>,
    /// The smallest run found so far that still reproduces.
    pub best: RunSpec,
    /// The best run's reproduction, measured (the base's until a party is
    /// dropped).
    pub best_estimate: Option<Proportion>,
    pub removed: Vec<String>,
    pub needed: Vec<String>,
    pub trying: Option<Trial>,
    pub done: bool,
    /// Why it was not minimised, if it was not.
    pub note: Option<String>,
}

/// What the minimisation may drop from the run, one at a time: thp-race's
/// parties that run, pairs' ops, kinds and start states
/// ([`mmrace_proto::spec::pairs::Args::parts`]); None for a scenario without
/// such parts.
fn parties_on(spec: &RunSpec) -> Option<Vec<String>> {
    match &spec.scenario {
        Scenario::ThpRace(a) => Some(
            a.parties()
                .into_iter()
                .filter(|(_, on)| *on)
                .map(|(n, _)| n.to_string())
                .collect(),
        ),
        Scenario::Pairs(a) => Some(a.parts()),
        _ => None,
    }
}

/// `spec` with its swarm choice made explicit (the same run).
fn resolved(spec: &RunSpec) -> RunSpec {
    let mut s = spec.clone();
    match &spec.scenario {
        Scenario::ThpRace(a) => s.scenario = Scenario::ThpRace(a.resolve(spec.seed)),
        Scenario::Pairs(a) => s.scenario = Scenario::Pairs(a.resolve(spec.seed)),
        _ => {}
    }
    s
}

/// `spec` without `party`; None when it cannot run without it.
fn without(spec: &RunSpec, party: &str) -> Option<RunSpec> {
    let mut s = spec.clone();
    match &spec.scenario {
        Scenario::ThpRace(a) => s.scenario = Scenario::ThpRace(a.clone().without_party(party)?),
        Scenario::Pairs(a) => s.scenario = Scenario::Pairs(a.without_part(party)?),
        _ => return None,
    }
    Some(s)
}

fn proportion(outcomes: &[bool]) -> Proportion {
    Proportion::new(
        outcomes.iter().filter(|x| **x).count() as u32,
        outcomes.len() as u32,
    )
}

impl ReproState {
    pub fn new(base: RunSpec, n: u32) -> ReproState {
        ReproState {
            n,
            best: resolved(&base),
            base,
            base_outcomes: Vec::new(),
            estimate: None,
            best_estimate: None,
            removed: Vec::new(),
            needed: Vec::new(),
            trying: None,
            done: n == 0,
            note: (n == 0).then(|| "no reruns asked for (--repro-runs 0)".to_string()),
        }
    }

    /// The run still wanted and how many more results of it: None when
    /// done.
    pub fn want(&self) -> Option<(Which, RunSpec, u32)> {
        if self.done {
            return None;
        }
        if self.estimate.is_none() {
            let left = self.n - self.base_outcomes.len() as u32;
            return Some((Which::Base, self.base.clone(), left));
        }
        let t = self.trying.as_ref()?;
        Some((
            Which::Without(t.party.clone()),
            t.spec.clone(),
            self.n - t.outcomes.len() as u32,
        ))
    }

    /// Takes one rerun's outcome (`same`: it found the same signature).
    pub fn record(&mut self, which: &Which, same: bool) {
        match which {
            Which::Base if self.estimate.is_none() => self.base_outcomes.push(same),
            Which::Without(p) => match &mut self.trying {
                Some(t) if t.party == *p && (t.outcomes.len() as u32) < self.n => {
                    t.outcomes.push(same)
                }
                _ => return,
            },
            Which::Base => return,
        }
        self.advance();
    }

    fn advance(&mut self) {
        if self.estimate.is_none() {
            if (self.base_outcomes.len() as u32) < self.n {
                return;
            }
            let p = proportion(&self.base_outcomes);
            self.estimate = Some(p);
            self.best_estimate = Some(p);
            if p.k == 0 {
                self.done = true;
                self.note = Some(format!(
                    "did not reproduce in {} reruns of the same run: not minimised",
                    p.n
                ));
                return;
            }
        }
        let low = self.estimate.map_or(0.0, |p| p.lo);
        if let Some(t) = &self.trying {
            if (t.outcomes.len() as u32) < self.n {
                return;
            }
            let p = proportion(&t.outcomes);
            let t = self.trying.take().expect("checked above");
            if p.p.unwrap_or(0.0) >= low {
                self.best = t.spec;
                self.best_estimate = Some(p);
                self.removed.push(t.party);
            } else {
                self.needed.push(t.party);
            }
        }
        self.next_trial();
    }

    /// Starts trying the next party off, or ends the minimisation.
    fn next_trial(&mut self) {
        let Some(on) = parties_on(&self.best) else {
            self.done = true;
            self.note = Some(format!(
                "{} has no parties to drop: not minimised",
                self.best.scenario.name()
            ));
            return;
        };
        if on.len() <= 1 {
            self.done = true;
            return;
        }
        // The next part not yet found needed whose removal leaves a run.
        let next = on
            .into_iter()
            .filter(|p| !self.needed.contains(p))
            .find_map(|p| without(&self.best, &p).map(|s| (p, s)));
        match next {
            Some((party, spec)) => {
                self.trying = Some(Trial {
                    party,
                    spec,
                    outcomes: Vec::new(),
                })
            }
            None => self.done = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        let s = Scenario::parse(&["thp-race".into(), "--swarm".into()]).unwrap();
        RunSpec::new(s, 21, 30)
    }

    /// Drives the state machine with `reproduces(spec)` as the outcome of
    /// every rerun.
    fn drive(st: &mut ReproState, reproduces: impl Fn(&RunSpec) -> bool) -> u32 {
        let mut runs = 0;
        while let Some((which, spec, left)) = st.want() {
            assert!(left > 0);
            st.record(&which, reproduces(&spec));
            runs += 1;
            assert!(runs < 1000, "does not end");
        }
        runs
    }

    #[test]
    fn minimises_to_the_parties_the_bug_needs() {
        // The bug needs the racers and migrate; everything else can go.
        let needs = |s: &RunSpec| match &s.scenario {
            Scenario::ThpRace(a) => {
                let on: Vec<_> = a
                    .parties()
                    .into_iter()
                    .filter(|(_, on)| *on)
                    .map(|(n, _)| n)
                    .collect();
                on.contains(&"racers") && on.contains(&"migrate")
            }
            _ => false,
        };
        // A spec where both are on after the swarm draw.
        let base = (0..200)
            .map(|seed| {
                let mut s = spec();
                s.seed = seed;
                s
            })
            .find(|s| needs(&resolved(s)))
            .expect("some seed keeps both");
        let mut st = ReproState::new(base.clone(), 4);
        drive(&mut st, needs);
        assert!(st.done);
        let p = st.estimate.unwrap();
        assert_eq!((p.k, p.n), (4, 4));
        let on = parties_on(&st.best).unwrap();
        assert_eq!(on, ["migrate", "racers"]);
        assert!(st.needed.contains(&"migrate".to_string()));
        assert!(st.needed.contains(&"racers".to_string()));
        // The minimal run is the same run, without swarm.
        assert_eq!(st.best.seed, base.seed);
        assert!(matches!(&st.best.scenario, Scenario::ThpRace(a) if !a.swarm));
    }

    #[test]
    fn a_pairs_finding_minimises_to_its_pair() {
        use mmrace_proto::pairs::UserOp;
        // The bug needs store and migrate-pages in the run, on anon.
        let needs = |s: &RunSpec| match &s.scenario {
            Scenario::Pairs(a) => {
                let ops = a.ops();
                ops.contains(&UserOp::Store) && ops.contains(&UserOp::MigratePages)
            }
            _ => false,
        };
        let base = RunSpec::new(
            Scenario::parse(&[
                "pairs".into(),
                "--swarm".into(),
                "--ops".into(),
                "store,migrate-pages,touch,split,mremap,dontneed".into(),
                "--kind".into(),
                "anon".into(),
            ])
            .unwrap(),
            0,
            30,
        );
        let base = (0..200)
            .map(|seed| RunSpec {
                seed,
                ..base.clone()
            })
            .find(|s| needs(&resolved(s)) && parties_on(&resolved(s)).unwrap().len() > 3)
            .expect("some seed draws both");
        let mut st = ReproState::new(base, 2);
        drive(&mut st, needs);
        assert!(st.done);
        let Scenario::Pairs(a) = &st.best.scenario else {
            panic!()
        };
        assert_eq!(a.ops(), [UserOp::Store, UserOp::MigratePages]);
        assert_eq!(a.states().len(), 1);
        assert!(!a.swarm);
        // The minimal run is given as words a person can rerun.
        assert!(a.to_words().join(" ").contains("--ops store,migrate-pages"));
    }

    #[test]
    fn a_finding_that_does_not_reproduce_is_not_minimised() {
        let mut st = ReproState::new(spec(), 3);
        assert_eq!(drive(&mut st, |_| false), 3);
        assert_eq!(st.estimate.map(|p| p.k), Some(0));
        assert!(st.note.as_deref().unwrap().contains("did not reproduce"));
        let st = ReproState::new(spec(), 0);
        assert!(st.done && st.want().is_none());
        // A scenario without parts: measured, not minimised.
        let oom = RunSpec::new(Scenario::parse(&["oom-stall".into()]).unwrap(), 1, 30);
        let mut st = ReproState::new(oom, 2);
        assert_eq!(drive(&mut st, |_| true), 2);
        assert!(st.note.as_deref().unwrap().contains("no parties"));
    }

    #[test]
    fn stray_results_are_ignored() {
        let mut st = ReproState::new(spec(), 2);
        st.record(&Which::Without("racers".into()), true);
        assert!(st.base_outcomes.is_empty());
        st.record(&Which::Base, true);
        st.record(&Which::Base, true);
        st.record(&Which::Base, false);
        assert_eq!(st.base_outcomes.len(), 2);
    }
}
