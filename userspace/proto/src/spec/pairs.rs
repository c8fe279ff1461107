//! `pairs`' options: which user ops and object kinds race, how many rounds
//! a slice runs, and whether coverage steers the choice of the next pair.

use crate::pairs::{catalogue, Combo, ObjKind, ObjState, UserOp};
use serde::{Deserialize, Serialize};

/// The kinds a run takes by default: anonymous and shmem memory. The
/// file, hugetlb and ksm kinds (docs/kinds.md) are asked for with
/// `--kinds`; they need the guest environment the run then prepares.
pub const DEFAULT_KINDS: &str = "anon,shared-anon,memfd";

/// The start states a run takes by default (docs/pairs.md, "Start
/// states": chosen by measurement on the variant library).
pub const DEFAULT_STATES: &str = "populated,fresh,pte-mapped,small,mthp";

/// The most runs of one op in a round with `--overlap-ms` (the store
/// generations of a round have 4094 passes: `--burst` times this must fit).
pub const MAX_REPS: u32 = 256;

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
    /// Race only this pair (`--pair store,migrate-pages`), or this triple
    /// (`--pair free,pageout,odirect`): every slice.
    #[arg(long, value_delimiter = ',', value_name = "A,B[,C]")]
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
    /// Overlap budget (ms): in a round each thread repeats its op until
    /// it has run this long and every other thread has finished its first
    /// run (at most [`MAX_REPS`] runs), so the ops' kernel calls overlap
    /// for most of the round; 0 runs each op once. Ops the catalogue says
    /// cannot repeat ([`crate::pairs::catalogue::repeats`]) run once. 30
    /// by default since session 14: 10 minutes of `pairs` met 20 and 54 %
    /// more catalogue pairs 10 times with it than without (docs/pairs.md).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=1000), value_name = "MS")]
    pub overlap_ms: u32,
    /// Pick the next pair round-robin over the least run, not towards the
    /// catalogue pairs whose module ops met least.
    #[arg(long)]
    pub no_steer: bool,
    /// How meets steer the next pair (docs/pairs.md, "How a run goes"):
    /// `least-met`, towards the pairs whose module ops met least (a meet
    /// weighs a slice of rounds, the steering before issue 17's never-met
    /// measurement); `need` (the default), towards the pairs that need the
    /// fewest rounds to be met `COVERED_MEETS` times at their measured
    /// rate (a pair that met runs again, a pair metered without a meet is
    /// backed off).
    #[arg(long, value_enum, default_value_t = SteerBy::Need, value_name = "MODE")]
    #[serde(default = "SteerBy::before_the_option")]
    pub steer_by: SteerBy,
    /// How many rounds a slice runs (docs/pairs.md, "How a run goes"):
    /// `fixed`, `--rounds` every slice (the slices before issue 17's
    /// coverage work); `need` (the default), while the meets probes are armed and
    /// steering uses them, a pair not yet met runs `--first-rounds`, a
    /// pair that met runs the rounds its measured rate says it still
    /// needs to be met `COVERED_MEETS` times (at most
    /// `SLICE_CAP_SLICES` times `--rounds`), a covered pair `--rounds`;
    /// a forced `--pair` always runs `--rounds` (no other pair to make
    /// room for).
    #[arg(long, value_enum, default_value_t = SliceBy::Need, value_name = "MODE")]
    #[serde(default = "SliceBy::before_the_option")]
    pub slice_by: SliceBy,
    /// With `--slice-by need`: the rounds of a slice of a pair not yet met.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub first_rounds: u32,
    /// No fuzzy start offsets: all threads of a round start at once.
    #[arg(long)]
    pub no_offsets: bool,
    /// Start and join the racing threads for every slice, as before
    /// session 11 (by default one crew of three pinned threads races
    /// every slice of the worker's life): kept to measure the two side
    /// by side (docs/pairs.md, "Where a round's time goes").
    #[arg(long)]
    pub crew_per_slice: bool,
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
    /// Race-window amplification inside the kernel, as `thp-race
    /// --amplify` (docs/amplification.md): mmrace.ko busy-waits at
    /// injection points, `at=SYMBOL[+OFFSET],...` any kernel function or
    /// instruction, `op=OP,...` the entry of an operation of the module's
    /// table, `random` the curated list. Armed for the whole run, for
    /// every pair, and disarmed when it ends.
    #[arg(long, value_name = "ITEM;...")]
    pub amplify: Option<crate::spec::amplify::Spec>,
    /// The two NUMA nodes the migrating ops move the object between.
    #[arg(long, value_delimiter = ',', default_value = "0,1", value_name = "A,B")]
    pub nodes: Vec<u32>,
    /// Swarm: the run's seed keeps each kind, start state and op of these
    /// options with probability 1/2 ([`Args::resolve`]): a campaign of
    /// such runs races each thing in many different company.
    #[arg(long)]
    pub swarm: bool,
}

/// `--steer-by`: how meets steer the next pair.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SteerBy {
    /// The pairs whose module ops met least, least run first.
    LeastMet,
    /// The pairs that need the fewest rounds to be met often enough.
    Need,
}

impl SteerBy {
    /// What a run description written before `--steer-by` existed ran:
    /// the least-met steering, not today's default.
    pub fn before_the_option() -> Self {
        SteerBy::LeastMet
    }
}

/// `--slice-by`: how many rounds a slice runs.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SliceBy {
    /// `--rounds` every slice.
    Fixed,
    /// Short for a pair not yet met, as long as a met pair needs.
    Need,
}

impl SliceBy {
    /// What a run description written before `--slice-by` existed ran.
    pub fn before_the_option() -> Self {
        SliceBy::Fixed
    }
}

/// With `--slice-by need`, a met pair's slice runs at most this many
/// times `--rounds`.
pub const SLICE_CAP_SLICES: u64 = 5;

/// Every kind, as `--kinds` words: what `make hunt`'s pairs runs draw
/// their kind from.
pub const ALL_KINDS: &str = "anon,shared-anon,memfd,tmpfs,xfs-shared,xfs-private,hugetlb,ksm";

/// Swarm draws until one runs (a few at most: a draw fails when it keeps
/// no kind, no state its kinds take, or fewer than two ops).
const SWARM_TRIES: u32 = 1000;

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

    /// `--pair`, checked: two or three ops that may run together.
    pub fn forced(&self) -> Result<Option<Combo>, String> {
        if self.pair.is_empty() {
            return Ok(None);
        }
        if !(2..=3).contains(&self.pair.len()) {
            return Err(format!(
                "--pair takes two or three ops (A,B[,C]), got {}",
                self.pair.len()
            ));
        }
        let c = Combo::new(self.pair.clone());
        if !c.compatible() {
            return Err(format!(
                "--pair {c}: these ops cannot run together (one moves the object while another \
                 needs it in place, or the model cannot predict them: docs/pairs.md)"
            ));
        }
        Ok(Some(c))
    }

    /// The options the run really uses: `self` without `--swarm`, or, with
    /// it, the seed's swarm draw (Groce et al., "Swarm testing", ISSTA
    /// 2012, as thp-race's `--swarm`): each kind, start state and op in
    /// play stays in with probability 1/2, drawn again until what is left
    /// runs (a kind with a state, two ops of the kinds that may race, each
    /// op applying to a kind left). A run then races fewer things more
    /// often, and some ops never meddle with others' windows. Swarm only
    /// narrows what was given, never widens it; a `--pair` keeps its ops.
    /// The same seed always resolves the same way, and the result, as
    /// [`Args::to_words`], replays the run without `--swarm`.
    pub fn resolve(&self, seed: u64) -> Args {
        let mut a = self.clone();
        if !a.swarm {
            return a;
        }
        a.swarm = false;
        let mut rng = crate::rng::Rng::stream(seed, "pairs-swarm", 0);
        for _ in 0..SWARM_TRIES {
            let mut b = a.clone();
            b.kind = None;
            b.kinds = subset(&mut rng, &self.kinds());
            b.states = subset(&mut rng, &self.states());
            if b.pair.is_empty() {
                b.ops = subset(&mut rng, &self.ops())
                    .into_iter()
                    .filter(|o| b.kinds.iter().any(|k| catalogue::applies(*o, *k)))
                    .collect();
            }
            if b.check().is_ok() && (!b.pair.is_empty() || has_pair(&b.ops)) {
                return b;
            }
        }
        a
    }

    /// The option words that give these options on a command line (only
    /// those that differ from the defaults): `pairs WORDS...` parses back
    /// to `self`.
    pub fn to_words(&self) -> Vec<String> {
        super::words::differing(self, &Args::default())
    }

    /// What a finding's minimisation may take away, one at a time: each
    /// op in play (`op:store`; not a `--pair`'s), each kind (`kind:memfd`)
    /// and each start state (`state:mthp`), when more than one is given.
    pub fn parts(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.pair.is_empty() {
            v.extend(self.ops().iter().map(|o| format!("op:{o}")));
        }
        if self.kinds().len() > 1 {
            v.extend(self.kinds().iter().map(|k| format!("kind:{k}")));
        }
        if self.states().len() > 1 {
            v.extend(self.states().iter().map(|s| format!("state:{s}")));
        }
        v
    }

    /// These options without part `part` (of [`Args::parts`]); None when
    /// it is not a part or what is left could not run.
    pub fn without_part(&self, part: &str) -> Option<Args> {
        let mut a = self.clone();
        let (what, word) = part.split_once(':')?;
        match what {
            "op" if self.pair.is_empty() => a.ops = without(self.ops(), word, UserOp::word)?,
            "kind" => {
                a.kind = None;
                a.kinds = without(self.kinds(), word, ObjKind::word)?;
            }
            "state" => a.states = without(self.states(), word, ObjState::word)?,
            _ => return None,
        }
        a.check().ok().map(|()| a)
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
        if self.overlap_ms > 0 && self.burst.saturating_mul(MAX_REPS) > 4094 {
            return Err(format!(
                "--overlap-ms (30 by default) repeats an op up to {MAX_REPS} times: --burst {} must be at most {} (or --overlap-ms 0)",
                self.burst,
                4094 / MAX_REPS
            ));
        }
        if self.ops().len() < 2 && self.pair.is_empty() {
            return Err("--ops needs at least two ops to make a pair".into());
        }
        Ok(())
    }
}

/// Each of `items` with probability 1/2 (all of them when there is one).
fn subset<T: Copy>(rng: &mut crate::rng::Rng, items: &[T]) -> Vec<T> {
    if items.len() <= 1 {
        return items.to_vec();
    }
    items
        .iter()
        .copied()
        .filter(|_| rng.below(2) == 0)
        .collect()
}

/// `items` without the one named `word`; None when none is.
fn without<T: Copy>(items: Vec<T>, word: &str, name: fn(T) -> &'static str) -> Option<Vec<T>> {
    let n = items.len();
    let left: Vec<T> = items.into_iter().filter(|x| name(*x) != word).collect();
    (left.len() < n).then_some(left)
}

/// Whether two of `ops` (or one with itself) may race in one round.
fn has_pair(ops: &[UserOp]) -> bool {
    ops.iter().enumerate().any(|(i, a)| {
        ops[i..]
            .iter()
            .any(|b| Combo::new(vec![*a, *b]).compatible())
    })
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
        assert_eq!(a.states(), ObjState::ALL[..5]);
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
        let a = parse("--pair odirect,free,pageout --kind anon");
        assert_eq!(
            a.forced().unwrap().unwrap().0,
            [UserOp::Free, UserOp::Pageout, UserOp::Odirect]
        );
        assert!(parse("--pair store,free,pageout,odirect").check().is_err());
        assert_eq!((a.preempt, a.held, a.overlap_ms), (0, 0, 30));
        assert_eq!(parse("--overlap-ms 0").overlap_ms, 0);
        assert!(parse("--burst 16").check().is_err());
        parse("--burst 16 --overlap-ms 0").check().unwrap();
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
    fn words_parse_back() {
        for words in [
            "",
            "--pair store,split --kind memfd --rounds 7 --no-steer --sequential",
            "--ops store,touch,split --kinds anon,ksm --states fresh,mthp --triple-pct 0 --burst 4",
            "--no-offsets --meets-duty 100 --meets-period-s 5 --preempt 20 --held 30 --nodes 1,0",
            "--swarm --kinds tmpfs,hugetlb --no-meets",
            "--pair populate,punch-hole --kind tmpfs --amplify at=next_uptodate_folio+0x123,delay_us=20,probability_pct=50",
        ] {
            let a = parse(words);
            let back = parse(&a.to_words().join(" "));
            assert_eq!(back, a, "{words:?} gave {:?}", a.to_words());
        }
    }

    #[test]
    fn swarm_draws_a_replayable_subset() {
        let wide = parse(&format!("--swarm --kinds {ALL_KINDS}"));
        assert_eq!(parse(&format!("--kinds {ALL_KINDS}")).kinds(), ObjKind::ALL);
        let (mut kinds, mut ops, mut states) = (0, 0, 0);
        for seed in 0..200 {
            let a = wide.resolve(seed);
            assert_eq!(a, wide.resolve(seed), "seed {seed}");
            assert!(!a.swarm);
            a.check().unwrap();
            assert!(has_pair(&a.ops()));
            assert!(a
                .ops()
                .iter()
                .all(|o| a.kinds().iter().any(|k| catalogue::applies(*o, *k))));
            (kinds, ops, states) = (
                kinds + a.kinds().len(),
                ops + a.ops().len(),
                states + a.states().len(),
            );
            // The printed words replay it without --swarm.
            assert_eq!(parse(&a.to_words().join(" ")), a);
        }
        // About half of each, on average.
        assert!((600..1000).contains(&kinds), "{kinds}");
        assert!((2800..4200).contains(&ops), "{ops}");
        assert!((350..650).contains(&states), "{states}");
        // It only narrows: a forced pair and kind stay.
        let a = parse("--swarm --pair store,migrate-pages --kind anon").resolve(3);
        assert_eq!(a.forced().unwrap().unwrap().name(), "store+migrate-pages");
        assert_eq!(a.kinds(), [ObjKind::Anon]);
        assert!(a.ops.is_empty());
        // Without --swarm nothing changes.
        assert_eq!(Args::default().resolve(5), Args::default());
    }

    #[test]
    fn parts_drop_one_at_a_time_and_keep_a_runnable_run() {
        let a = parse("--ops store,touch,split --kinds anon,memfd --states fresh,populated");
        assert_eq!(
            a.parts(),
            [
                "op:store",
                "op:touch",
                "op:split",
                "kind:anon",
                "kind:memfd",
                "state:populated",
                "state:fresh"
            ]
        );
        let b = a.without_part("op:split").unwrap();
        assert_eq!(b.ops(), [UserOp::Store, UserOp::Touch]);
        assert_eq!(
            b.without_part("kind:anon").unwrap().kinds(),
            [ObjKind::Memfd]
        );
        let c = b.without_part("state:fresh").unwrap();
        assert_eq!(c.states(), [ObjState::Populated]);
        assert!(c.without_part("state:populated").is_none());
        // Two ops are the least a run races.
        assert!(b.without_part("op:store").is_none());
        assert!(a.without_part("op:mremap").is_none());
        assert!(a.without_part("bogus").is_none());
        // A forced pair's ops are not parts.
        let f = parse("--pair store,split --kind anon --states fresh,mthp");
        assert_eq!(f.parts(), ["state:fresh", "state:mthp"]);
    }

    #[test]
    fn round_trips_through_json() {
        let a = parse("--pair store,split --kinds anon,memfd");
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Args>(&j).unwrap(), a);
        // A description written before `--steer-by` ran the least-met
        // steering, and before `--slice-by` fixed slices; everything else
        // it lacks is the default.
        let old = Args {
            steer_by: SteerBy::LeastMet,
            slice_by: SliceBy::Fixed,
            ..Args::default()
        };
        assert_eq!(Args::default().slice_by, SliceBy::Need);
        assert_eq!(serde_json::from_str::<Args>("{}").unwrap(), old);
    }
}
