//! `pairs`' options: which user ops and object kinds race, how many rounds
//! a slice runs, and whether coverage steers the choice of the next pair.

use crate::pairs::{Combo, ObjKind, ObjState, UserOp};
use serde::{Deserialize, Serialize};

/// The kinds a run takes by default: anonymous and shmem memory. The
/// file, hugetlb and ksm kinds (docs/kinds.md) are asked for with
/// `--kinds`; they need the guest environment the run then prepares.
pub const DEFAULT_KINDS: &str = "anon,shared-anon,memfd";

/// The start states a run takes by default (docs/pairs.md, "Start
/// states": chosen by measurement on the variant library).
pub const DEFAULT_STATES: &str = "populated,fresh,pte-mapped,small,mthp";

#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// The user ops that race (default: all of them).
    #[arg(long, value_delimiter = ',', value_name = "OP,...")]
    pub ops: Vec<UserOp>,
    /// The object kinds rounds run on.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_KINDS, value_name = "KIND,...")]
    pub kinds: Vec<ObjKind>,
    /// The states a round's object starts in (each slice draws one of
    /// those its kind can start in).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_STATES, value_name = "STATE,...")]
    pub states: Vec<ObjState>,
    /// Race only this pair (`--pair store,migrate-pages`): every slice.
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub pair: Vec<UserOp>,
    /// Run only on this kind.
    #[arg(long, value_name = "KIND")]
    pub kind: Option<ObjKind>,
    /// Rounds (fresh objects) per slice.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rounds: u32,
    /// Percent of slices that race a third op with the pair (swarm).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub triple_pct: u8,
    /// Passes a storing op makes over its pages in one round.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub burst: u32,
    /// Pick the next pair round-robin over the least run, not towards the
    /// catalogue pairs whose module ops met least.
    #[arg(long)]
    pub no_steer: bool,
    /// No fuzzy start offsets: all threads of a round start at once.
    #[arg(long)]
    pub no_offsets: bool,
    /// The race-only check: each round's ops run one after the other, in
    /// the combo's order, on the same pinned threads, never at once. A
    /// kernel bug that needs two ops at the same time stays silent here,
    /// so a variant caught by `pairs` must run clean with this.
    #[arg(long)]
    pub sequential: bool,
    /// The meets probes: off, or armed a share of the run (steering uses
    /// the slices that ran wholly armed; without meets it is round-robin
    /// over the least run).
    #[command(flatten)]
    #[serde(flatten)]
    pub meets: super::meets_args::MeetsArgs,
    /// Percent of rounds in which a SCHED_FIFO waker pinned to one
    /// racer's CPU wakes at a random moment inside that racer's op (drawn
    /// from its measured time) and spins a few to tens of µs: the racer is
    /// preempted mid-operation while the other op runs (docs/pairs.md).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100), value_name = "PCT")]
    pub preempt: u8,
    /// Percent of rounds in which an op that moves data into the object
    /// through the kernel (`odirect`) holds its window open: one of its
    /// reads ends on a userfaultfd trap page, so the kernel blocks with
    /// the object's page pinned while a handler waits a random time
    /// (drawn from the other op's measured time) before resolving it.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100), value_name = "PCT")]
    pub held: u8,
    /// The two NUMA nodes the migrating ops move the object between.
    #[arg(long, value_delimiter = ',', default_value = "0,1", value_name = "A,B")]
    pub nodes: Vec<u32>,
}

crate::spec::clap_default!(Args);

impl Args {
    /// The ops in play: `--ops`, or all.
    pub fn ops(&self) -> Vec<UserOp> {
        let mut v = if self.ops.is_empty() {
            UserOp::ALL.to_vec()
        } else {
            self.ops.clone()
        };
        v.sort();
        v.dedup();
        v
    }

    /// The kinds in play: `--kind`, or `--kinds`.
    pub fn kinds(&self) -> Vec<ObjKind> {
        let mut v = match self.kind {
            Some(k) => vec![k],
            None => self.kinds.clone(),
        };
        v.sort();
        v.dedup();
        v
    }

    /// The states in play, sorted, without repeats.
    pub fn states(&self) -> Vec<ObjState> {
        let mut v = self.states.clone();
        v.sort();
        v.dedup();
        v
    }

    /// `--pair`, checked: two ops that may run together.
    pub fn forced(&self) -> Result<Option<Combo>, String> {
        if self.pair.is_empty() {
            return Ok(None);
        }
        let [a, b] = self.pair[..] else {
            return Err(format!(
                "--pair takes two ops (A,B), got {}",
                self.pair.len()
            ));
        };
        let c = Combo::new(vec![a, b]);
        if !c.compatible() {
            return Err(format!(
                "--pair {a},{b}: {} moves the object and the other op cannot run while it does",
                UserOp::Mremap
            ));
        }
        Ok(Some(c))
    }

    /// Every problem with the options, before anything starts.
    pub fn check(&self) -> Result<(), String> {
        self.forced()?;
        if self.kinds().is_empty() {
            return Err("--kinds is empty".into());
        }
        if !self
            .kinds()
            .iter()
            .any(|k| !crate::pairs::catalogue::states_for(*k, &self.states()).is_empty())
        {
            return Err("no kind of --kinds can start in a state of --states".into());
        }
        if self.ops().len() < 2 && self.pair.is_empty() {
            return Err("--ops needs at least two ops to make a pair".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Scenario;

    fn parse(words: &str) -> Args {
        let w: Vec<String> = std::iter::once("pairs")
            .chain(words.split_whitespace())
            .map(str::to_owned)
            .collect();
        match Scenario::parse(&w).unwrap() {
            Scenario::Pairs(a) => a,
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn defaults_and_options() {
        let a = parse("");
        assert_eq!(a, Args::default());
        assert_eq!(a.ops().len(), UserOp::ALL.len());
        assert_eq!(
            a.kinds(),
            [ObjKind::Anon, ObjKind::SharedAnon, ObjKind::Memfd]
        );
        assert_eq!(a.forced(), Ok(None));
        assert_eq!(a.states(), ObjState::ALL);
        let a = parse("--states small,fresh,small --kind anon");
        assert_eq!(a.states(), [ObjState::Fresh, ObjState::Small]);
        assert!(parse("--states mthp --kind memfd").check().is_err());
        let a = parse("--pair migrate-pages,store --kind memfd --rounds 5 --no-steer");
        assert_eq!(
            a.forced().unwrap().unwrap().0,
            [UserOp::Store, UserOp::MigratePages]
        );
        assert_eq!(a.kinds(), [ObjKind::Memfd]);
        assert!(a.no_steer && a.rounds == 5);
        assert_eq!((a.preempt, a.held), (0, 0));
        let a = parse("--preempt 50 --held 100");
        assert_eq!((a.preempt, a.held), (50, 100));
        a.check().unwrap();
    }

    #[test]
    fn bad_options_are_refused() {
        let w = |s: &str| -> Vec<String> {
            std::iter::once("pairs")
                .chain(s.split_whitespace())
                .map(str::to_owned)
                .collect()
        };
        assert!(Scenario::parse(&w("--pair store,bogus")).is_err());
        assert!(Scenario::parse(&w("--triple-pct 101")).is_err());
        assert!(Scenario::parse(&w("--rounds 0")).is_err());
        assert!(Scenario::parse(&w("--preempt 101")).is_err());
        assert!(Scenario::parse(&w("--held 101")).is_err());
        assert!(parse("--pair store").check().is_err());
        assert!(parse("--pair touch,mremap").check().is_err());
        assert!(parse("--ops store").check().is_err());
    }

    #[test]
    fn round_trips_through_json() {
        let a = parse("--pair store,split --kinds anon,memfd");
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Args>(&j).unwrap(), a);
        assert_eq!(serde_json::from_str::<Args>("{}").unwrap(), Args::default());
    }
}
