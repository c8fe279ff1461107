//! What `pairs` returns: per pair (or triple) and kind, the rounds run,
//! the module's meets and near meets of the pair's module ops during them,
//! and the rounds whose verification failed (catches); the coverage of the
//! catalogue; the findings.

use crate::oracle::{DataSummary, Expected, Found};
pub use crate::pairs::catalogue::catalogue_pairs;
use crate::pairs::meetable::{self, Cannot};
use crate::pairs::{catalogue, Combo, ObjKind, ObjState, UserOp};
use crate::spec::pairs::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A catalogue pair counts as covered once its module ops met this often.
pub use crate::meets::COVERED_MEETS;

/// One (combo, kind, start state) cell of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// `store+migrate-pages` (or a triple).
    pub combo: String,
    pub ops: Vec<UserOp>,
    pub kind: Option<ObjKind>,
    /// The state its objects started in (`None`: a result from before
    /// states, all populated).
    #[serde(default)]
    pub state: Option<ObjState>,
    pub slices: u64,
    pub rounds: u64,
    /// A pair's rounds inside triples (the pair raced with a third op).
    pub triple_rounds: u64,
    /// Meets (and near meets) in the module between the module ops of the
    /// combo's ops, on the kind's module memory kind, during its slices
    /// (a pair's row includes what its triples met between its two ops).
    pub meets: u64,
    pub near: u64,
    /// Rounds (its own and in triples) of slices that ran with the meets
    /// probes armed throughout: `meets` and `near` are theirs (all rounds
    /// unless the run sampled meets, `--meets-duty`).
    #[serde(default)]
    pub metered_rounds: u64,
    /// Over its metered slices without a third op: the module's calls of
    /// the first and the second op's module ops on the kind (calls of
    /// any task: the module counts them per operation), the alias
    /// overlaps between them (at once in one mm or file, no object in
    /// common) and their meets counted on another memory kind. Zero in a
    /// result from before they were kept. What [`Row::why_unmet`] reads.
    #[serde(default)]
    pub calls_a: u64,
    #[serde(default)]
    pub calls_b: u64,
    #[serde(default)]
    pub alias: u64,
    #[serde(default)]
    pub meets_elsewhere: u64,
    /// Rounds whose verification found a page that did not hold what the
    /// ops must leave.
    pub catches: u64,
    /// Op calls that failed with an error the op does not expect.
    pub op_errors: u64,
}

/// Why a metered row never met (issue 17): what its counters tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unmet {
    /// (a) One op's module ops were never called in its metered slices:
    /// the op does not enter what the catalogue says it drives there.
    Uncalled,
    /// (b) Both called, and one left an object the other then entered
    /// within the near window: the same object, never at the same time.
    Near,
    /// (c) Both in flight at once in the same mm or file, with no object
    /// key in common (another pmd or THP of the object, or a folio against
    /// a pmd).
    Alias,
    /// (c) They met, but the module counted the meets on another memory
    /// kind than the row's.
    OtherKind,
    /// (b) Both called, never near nor at once on the object's mm: apart
    /// in time (or in other mms).
    Apart,
}

impl Unmet {
    pub const ALL: [Unmet; 5] = [
        Unmet::Uncalled,
        Unmet::Near,
        Unmet::Alias,
        Unmet::OtherKind,
        Unmet::Apart,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Unmet::Uncalled => "(a) an op's module ops never called",
            Unmet::Near => "(b) same object, never at once (near > 0)",
            Unmet::Alias => "(c) at once in one mm, different keys (alias > 0)",
            Unmet::OtherKind => "(c) met, counted on another memory kind",
            Unmet::Apart => "(b) both called, never near nor at once",
        }
    }
}

impl Row {
    /// Whether the row is a catalogue pair's: two ops that both drive
    /// module ops on its kind (the others are never metered).
    pub fn is_catalogue_pair(&self) -> bool {
        let Some(k) = self.kind else {
            return false;
        };
        self.ops.len() == 2
            && self
                .ops
                .iter()
                .all(|o| !catalogue::module_ops(*o, k).is_empty())
    }

    /// Why the row never met, when it was metered and did not; `None`
    /// when it met, was never metered, or is no catalogue pair's (a
    /// triple, an op without module ops). A result from before the calls
    /// were kept (both zero) reads as uncalled.
    pub fn why_unmet(&self) -> Option<Unmet> {
        if self.meets > 0 || self.metered_rounds == 0 || !self.is_catalogue_pair() {
            return None;
        }
        Some(if self.calls_a == 0 || self.calls_b == 0 {
            Unmet::Uncalled
        } else if self.near > 0 {
            Unmet::Near
        } else if self.alias > 0 {
            Unmet::Alias
        } else if self.meets_elsewhere > 0 {
            Unmet::OtherKind
        } else {
            Unmet::Apart
        })
    }
}

/// The metered rows of catalogue pairs in a run by outcome: met, or never
/// met by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnmetBreakdown {
    pub metered: u64,
    pub met: u64,
    pub unmet: std::collections::BTreeMap<Unmet, u64>,
}

impl UnmetBreakdown {
    pub fn of(rows: &[Row]) -> UnmetBreakdown {
        let mut b = UnmetBreakdown::default();
        for r in rows
            .iter()
            .filter(|r| r.is_catalogue_pair() && r.metered_rounds > 0)
        {
            b.metered += 1;
            match r.why_unmet() {
                Some(w) => *b.unmet.entry(w).or_default() += 1,
                None => b.met += 1,
            }
        }
        b
    }

    /// Markdown lines: one per outcome, rows and their share.
    pub fn lines(&self) -> Vec<String> {
        let pct = |n: u64| 100.0 * n as f64 / self.metered.max(1) as f64;
        let mut v = vec![format!("| metered pair rows | {} | 100 % |", self.metered)];
        v.push(format!(
            "| met >= 1 | {} | {:.0} % |",
            self.met,
            pct(self.met)
        ));
        for u in Unmet::ALL {
            let n = self.unmet.get(&u).copied().unwrap_or(0);
            v.push(format!(
                "| never met: {} | {n} | {:.0} % |",
                u.describe(),
                pct(n)
            ));
        }
        v
    }
}

/// The catalogue pairs of `ops` over `kinds` that cannot meet by
/// construction in `states` ([`meetable::can_meet`]), with why: each a
/// pair, its kind and the reason.
pub fn pairs_that_cannot_meet(
    ops: &[UserOp],
    kinds: &[ObjKind],
    states: &[ObjState],
) -> Vec<(Combo, ObjKind, Cannot)> {
    let mut out = Vec::new();
    for &k in kinds {
        for pair in catalogue_pairs(ops, k) {
            let [a, b] = pair.0[..] else { continue };
            if let Err(why) = meetable::can_meet(a, b, k, states) {
                out.push((pair, k, why));
            }
        }
    }
    out
}

/// A page that did not hold what the round's ops must leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub combo: String,
    pub kind: ObjKind,
    /// The state the round's object started in.
    #[serde(default)]
    pub state: Option<ObjState>,
    /// The round (counted over the whole run) that left it.
    pub round: u64,
    /// Page index in the object, and its address at the check.
    pub page: u64,
    pub vaddr: u64,
    pub expected: Expected,
    pub found: Found,
}

impl Finding {
    pub fn line(&self) -> String {
        format!(
            "{} on {}{}, round {}: page {} at {:#x}: expected {}, found {}",
            self.combo,
            self.state.map_or(String::new(), |s| format!("{s} ")),
            self.kind,
            self.round,
            self.page,
            self.vaddr,
            self.expected.describe(),
            self.found.describe()
        )
    }
}

/// How the catalogue was covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Catalogue pairs (a <= b, both applicable to the kind, both with
    /// module ops, allowed together), over the kinds that ran.
    pub pairs: u64,
    /// Of those, pairs whose module ops met at least [`COVERED_MEETS`]
    /// times (in their own slices and in triples).
    pub met: u64,
    /// Pairs that ran at least one round (alone or in a triple).
    pub ran: u64,
    /// `met / pairs`.
    pub fraction: f64,
    /// Of `pairs`, those that can meet by construction in the run's
    /// states ([`meetable`]): the second denominator, shown beside the
    /// first, never instead. 0 in a result from before it was kept.
    #[serde(default)]
    pub can_meet: u64,
    /// Pairs that met at least once although [`meetable`] says they
    /// cannot: the key model is wrong if this is not 0.
    #[serde(default)]
    pub met_but_cannot: u64,
    /// Whether the module's `meets` could be read (without it nothing is
    /// ever met and steering is round-robin).
    pub meets_available: bool,
}

impl Coverage {
    /// The figure over the pairs that can meet by construction, and the
    /// pairs that met although the key model says they cannot.
    pub fn of_meetable(&self) -> String {
        let mut s = format!(
            "{}/{} of those that can meet ({:.1} %)",
            self.met,
            self.can_meet,
            100.0 * self.met as f64 / self.can_meet.max(1) as f64
        );
        if self.met_but_cannot > 0 {
            s += &format!(
                " (and {} met that the key model says cannot: the model is wrong)",
                self.met_but_cannot
            );
        }
        s
    }
}

/// Why a kind or op did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub what: String,
    pub why: String,
}

/// `pairs`' typed result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairsResult {
    pub settings: Args,
    pub rows: Vec<Row>,
    pub coverage: Coverage,
    pub findings: Vec<Finding>,
    pub slices: u64,
    pub rounds: u64,
    /// Pages verified, all rounds.
    pub pages_verified: u64,
    /// Worker processes started (more than one: a worker died and was
    /// restarted).
    pub workers: u64,
    pub skipped: Vec<Skipped>,
    pub data_oracle: DataSummary,
    /// What `--preempt` and `--held` did.
    #[serde(default)]
    pub windows: super::windows::Windows,
    /// Where the worker's time went, per phase of its rounds.
    #[serde(default)]
    pub time: super::round_time::RoundTime,
    /// ksmd's turns in `--sequential` rounds.
    #[serde(default)]
    pub ksmd: super::ksmd::KsmdTurns,
    /// The kernel's own /proc/vmstat events over the run that say whether
    /// the ops reached the kernel paths they are meant for (NUMA hinting
    /// faults, lazyfree discards, migrations, swap; [`VMSTAT_PREFIXES`]),
    /// those that moved. (Absent in results of older drivers.)
    #[serde(default)]
    pub vmstat: BTreeMap<String, u64>,
    /// What `--amplify` armed and got. (Absent in results of older
    /// drivers.)
    #[serde(default)]
    pub amplify: Option<super::inject::AmplifyReport>,
}

/// The /proc/vmstat events [`PairsResult::vmstat`] keeps.
pub const VMSTAT_PREFIXES: &[&str] = &[
    "numa_",
    "pglazyfree",
    "pgmigrate_success",
    "pswp",
    "thp_split",
    "pgmajfault",
];

/// The pairs inside a combo (a triple has three).
pub fn pairs_in(c: &Combo) -> Vec<Combo> {
    let o = &c.0;
    let mut out = Vec::new();
    for i in 0..o.len() {
        for j in i + 1..o.len() {
            out.push(Combo::new(vec![o[i], o[j]]));
        }
    }
    out
}

impl PairsResult {
    /// Coverage of the catalogue pairs of `ops` over `kinds` by `rows`.
    pub fn coverage_of(
        rows: &[Row],
        ops: &[UserOp],
        kinds: &[ObjKind],
        states: &[ObjState],
        meets_available: bool,
    ) -> Coverage {
        let mut cov = Coverage {
            meets_available,
            ..Coverage::default()
        };
        for &k in kinds {
            for pair in catalogue_pairs(ops, k) {
                // Summed over the states the pair ran in.
                let (meets, rounds) = rows
                    .iter()
                    .filter(|r| r.kind == Some(k) && r.ops == pair.0)
                    .fold((0, 0), |(m, n), r| {
                        (m + r.meets, n + r.rounds + r.triple_rounds)
                    });
                let [a, b] = pair.0[..] else { continue };
                let can = meetable::can_meet(a, b, k, states).is_ok();
                cov.pairs += 1;
                cov.met += u64::from(meets >= COVERED_MEETS);
                cov.ran += u64::from(rounds > 0);
                cov.can_meet += u64::from(can);
                cov.met_but_cannot += u64::from(!can && meets > 0);
            }
        }
        cov.fraction = if cov.pairs == 0 {
            0.0
        } else {
            cov.met as f64 / cov.pairs as f64
        };
        cov
    }

    /// Catalogue pairs of `ops` over `kinds` whose rows met at least `n`
    /// times (summed over start states).
    pub fn coverage_met_at_least(rows: &[Row], ops: &[UserOp], kinds: &[ObjKind], n: u64) -> u64 {
        let mut met = 0;
        for &k in kinds {
            for pair in catalogue_pairs(ops, k) {
                let m: u64 = rows
                    .iter()
                    .filter(|r| r.kind == Some(k) && r.ops == pair.0)
                    .map(|r| r.meets)
                    .sum();
                met += u64::from(m >= n);
            }
        }
        met
    }

    /// The table for the console and the host summary.
    pub fn table(&self) -> Vec<String> {
        let mut v = vec![format!(
            "{:<36} {:<12} {:<10} {:>7} {:>9} {:>9} {:>7}",
            "pair", "kind", "state", "rounds", "meets", "near", "catches"
        )];
        for r in &self.rows {
            v.push(format!(
                "{:<36} {:<12} {:<10} {:>7} {:>9} {:>9} {:>7}",
                r.combo,
                r.kind.map_or("-", |k| k.word()),
                r.state.map_or("-", |s| s.word()),
                r.rounds,
                r.meets,
                r.near,
                r.catches
            ));
        }
        v
    }

    /// One line: the start states asked for, and the rounds and catches
    /// each ran (its own rows' rounds; a row without a state counts as
    /// populated).
    pub fn states_line(&self) -> String {
        let per: Vec<String> = ObjState::ALL
            .iter()
            .map(|s| {
                let rows = self
                    .rows
                    .iter()
                    .filter(|r| r.state.unwrap_or(ObjState::Populated) == *s);
                let (rounds, catches) =
                    rows.fold((0, 0), |(n, c), r| (n + r.rounds, c + r.catches));
                format!("{s} {rounds} ({catches} caught)")
            })
            .collect();
        let asked: Vec<&str> = self.settings.states().iter().map(|s| s.word()).collect();
        format!(
            "pairs states: {}; rounds per state: {}",
            asked.join(","),
            per.join(", ")
        )
    }

    /// One line: coverage (over every catalogue pair, and beside it over
    /// those that can meet) and catches.
    pub fn coverage_line(&self) -> String {
        let c = &self.coverage;
        format!(
            "pairs coverage: {}/{} catalogue pairs met >= {COVERED_MEETS} times ({:.1} %); {}, {} ran{}; {} slices, {} rounds, {} pages verified, {} findings",
            c.met,
            c.pairs,
            100.0 * c.fraction,
            c.of_meetable(),
            c.ran,
            if c.meets_available { "" } else { " (no meets file: coverage unmeasured)" },
            self.slices,
            self.rounds,
            self.pages_verified,
            self.findings.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use UserOp::*;

    fn row(ops: &[UserOp], kind: ObjKind, rounds: u64, meets: u64) -> Row {
        let c = Combo::new(ops.to_vec());
        Row {
            combo: c.name(),
            ops: c.0,
            kind: Some(kind),
            rounds,
            meets,
            ..Row::default()
        }
    }

    #[test]
    fn catalogue_pairs_leave_out_unmetered_and_incompatible() {
        let p = catalogue_pairs(&[Store, Cold, Mremap, Touch], ObjKind::Anon);
        let names: Vec<_> = p.iter().map(Combo::name).collect();
        assert_eq!(
            names,
            ["store+store", "store+mremap", "store+touch", "touch+touch"]
        );
        let free = catalogue_pairs(&[Store, Free], ObjKind::Memfd);
        assert_eq!(free.len(), 1);
    }

    #[test]
    fn coverage_counts_pair_rows_with_their_triple_credit() {
        let ops = [Store, MigratePages, Split];
        let mut credited = row(&[Store, Split], ObjKind::Anon, 0, 10);
        credited.triple_rounds = 5;
        let rows = vec![
            row(&[Store, MigratePages], ObjKind::Anon, 5, 12),
            row(&[Store, MigratePages, Split], ObjKind::Anon, 5, 30),
            credited,
            row(&[Split, Split], ObjKind::Anon, 3, 0),
            row(&[MigratePages, Split], ObjKind::Memfd, 3, 50),
        ];
        let c = PairsResult::coverage_of(&rows, &ops, &[ObjKind::Anon], &ObjState::ALL, true);
        // 6 pairs: store+store, store+migrate, store+split, migrate+migrate,
        // migrate+split, split+split; the triple's own row and the memfd
        // row do not count.
        assert_eq!(c.pairs, 6);
        assert_eq!(c.met, 2);
        assert_eq!(c.ran, 3);
        assert!((c.fraction - 2.0 / 6.0).abs() < 1e-9);
        // The same pair in two states: its meets add up.
        let mut small = row(&[Split, Split], ObjKind::Anon, 2, 6);
        small.state = Some(ObjState::Small);
        let mut mthp = row(&[Split, Split], ObjKind::Anon, 2, 4);
        mthp.state = Some(ObjState::Mthp);
        let c =
            PairsResult::coverage_of(&[small, mthp], &ops, &[ObjKind::Anon], &ObjState::ALL, true);
        assert_eq!((c.met, c.ran), (1, 1));
    }

    #[test]
    fn round_trips_and_prints() {
        let mut r = PairsResult {
            rows: vec![row(&[Store, Dontneed], ObjKind::Anon, 4, 2)],
            ..PairsResult::default()
        };
        r.coverage = PairsResult::coverage_of(
            &r.rows,
            &[Store, Dontneed],
            &[ObjKind::Anon],
            &ObjState::ALL,
            false,
        );
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<PairsResult>(&j).unwrap(), r);
        assert!(r.table()[1].starts_with("store+dontneed"));
        r.rows[0].state = Some(ObjState::Mthp);
        r.rows[0].catches = 1;
        assert!(
            r.states_line().contains("populated 0 (0 caught), ")
                && r.states_line().contains("mthp 4 (1 caught)"),
            "{}",
            r.states_line()
        );
        assert!(
            r.coverage_line().contains("unmeasured"),
            "{}",
            r.coverage_line()
        );
    }

    #[test]
    fn unmet_rows_are_told_apart_by_their_counters() {
        let r = |calls_a, calls_b, near, alias, elsewhere| Row {
            metered_rounds: 5,
            calls_a,
            calls_b,
            near,
            alias,
            meets_elsewhere: elsewhere,
            ..row(&[Store, MigratePages], ObjKind::Anon, 5, 0)
        };
        assert_eq!(r(0, 9, 3, 3, 3).why_unmet(), Some(Unmet::Uncalled));
        assert_eq!(r(9, 9, 3, 3, 3).why_unmet(), Some(Unmet::Near));
        assert_eq!(r(9, 9, 0, 3, 3).why_unmet(), Some(Unmet::Alias));
        assert_eq!(r(9, 9, 0, 0, 3).why_unmet(), Some(Unmet::OtherKind));
        assert_eq!(r(9, 9, 0, 0, 0).why_unmet(), Some(Unmet::Apart));
        // Met, unmetered, or a triple: no cause.
        let met = Row {
            meets: 1,
            ..r(9, 9, 0, 0, 0)
        };
        let unmetered = Row {
            metered_rounds: 0,
            ..r(9, 9, 0, 0, 0)
        };
        let triple = Row {
            metered_rounds: 5,
            ..row(&[Store, MigratePages, Split], ObjKind::Anon, 5, 0)
        };
        for x in [&met, &unmetered, &triple] {
            assert_eq!(x.why_unmet(), None);
        }
        let rows = vec![met, unmetered, triple, r(0, 9, 0, 0, 0), r(9, 9, 1, 0, 0)];
        let b = UnmetBreakdown::of(&rows);
        assert_eq!((b.metered, b.met), (3, 1));
        assert_eq!(b.unmet[&Unmet::Uncalled], 1);
        assert_eq!(b.lines().len(), 2 + Unmet::ALL.len());
        // By construction: store+migrate-pages can meet on anon;
        // odirect+vmsplice (gup against gup) cannot, on any kind.
        let ops = [Store, MigratePages, Odirect, Vmsplice];
        let cannot = pairs_that_cannot_meet(&ops, &[ObjKind::Anon], &ObjState::ALL);
        assert!(cannot
            .iter()
            .any(|(c, _, why)| c.0 == [Odirect, Vmsplice] && *why == Cannot::OtherKind));
        assert!(!cannot.iter().any(|(c, _, _)| c.0 == [Store, MigratePages]));
        let c = PairsResult::coverage_of(&rows, &ops, &[ObjKind::Anon], &ObjState::ALL, true);
        assert_eq!(c.can_meet + cannot.len() as u64, c.pairs);
        assert_eq!(c.met_but_cannot, 0);
        assert_eq!(
            PairsResult::coverage_met_at_least(&rows, &[Store, MigratePages], &[ObjKind::Anon], 1),
            1
        );
    }
}
