//! debugfs `meets`: which module operations met on the same object, and on
//! which memory kind.
//!
//! The file's format (module and userspace agree on it here):
//!
//! ```text
//! # entering holding kind meets near alias
//! pmd_split migrate_unmap anon 12 40 3
//! ```
//!
//! One line per (entering, holding, kind) cell with a nonzero count; lines
//! starting with `#` are comments. A *meet*: `entering` started on an object
//! (a page-table slot, a folio, or a whole mm) while another task's
//! `holding` was inside its operation on the same object. A *near meet*:
//! `holding` had left the object within the module's near window. An
//! *alias* overlap: `holding` was in flight in the same mm (or file) with no
//! object in common (a module without the column reads as 0). The
//! operations and kinds are those of `module/mmrace_ops.h` ([`crate::ops`]).
//!
//! Next to it: `ops` ([`parse_ops`]: each operation's probe and calls),
//! `meets_enable` (`0`/`1`) and `meets_dropped` (one number). What a run
//! made of them travels as [`RunMeets`].

use serde::{de::Error as _, Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The file under [`crate::counters::DEBUGFS_DIR`].
pub const MEETS_FILE: &str = "meets";
/// Each operation's probe and calls, under [`crate::counters::DEBUGFS_DIR`].
pub const OPS_FILE: &str = "ops";
/// `1` while the operations' probes are attached; write `0`/`1`.
pub const ENABLE_FILE: &str = "meets_enable";
/// Operations not tracked because every in-flight slot was taken.
pub const DROPPED_FILE: &str = "meets_dropped";

/// An operation name of the header, deserialized by looking it up.
fn op_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    crate::ops::op(&s).ok_or_else(|| D::Error::custom(format!("unknown operation {s:?}")))
}

/// A memory kind of the header, deserialized by looking it up.
fn kind_name<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = String::deserialize(d)?;
    crate::ops::kind_of(&s).ok_or_else(|| D::Error::custom(format!("unknown memory kind {s:?}")))
}

/// A name from the header. An alias, so serde's derive does not take the
/// `&'static str` fields for borrowed ones: they deserialize through
/// [`op_name`] and [`kind_name`].
type Name = &'static str;

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cell {
    #[serde(deserialize_with = "op_name")]
    pub entering: Name,
    #[serde(deserialize_with = "op_name")]
    pub holding: Name,
    #[serde(deserialize_with = "kind_name")]
    pub kind: Name,
}

/// Meets and near meets of one cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub meets: u64,
    pub near: u64,
    /// At once on the same mm or file, no object shared (`mmrace_meets.c`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alias: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The whole matrix, as read at one moment. In JSON: a list of
/// `{entering, holding, kind, meets, near}` rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "Vec<Row>", from = "Vec<Row>")]
pub struct Meets {
    pub cells: BTreeMap<Cell, Count>,
}

/// One cell and its counts: how [`Meets`] is serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    #[serde(flatten)]
    pub cell: Cell,
    #[serde(flatten)]
    pub count: Count,
}

impl From<Meets> for Vec<Row> {
    fn from(m: Meets) -> Self {
        m.cells
            .into_iter()
            .map(|(cell, count)| Row { cell, count })
            .collect()
    }
}

impl From<Vec<Row>> for Meets {
    fn from(rows: Vec<Row>) -> Self {
        Meets {
            cells: rows.into_iter().map(|r| (r.cell, r.count)).collect(),
        }
    }
}

/// How an operation's probe stands (debugfs `ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    Attached,
    /// Not attached on this kernel: the register error (negative errno).
    Failed(i32),
    /// `meets_enable` was 0.
    Off,
}

/// One line of debugfs `ops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpState {
    #[serde(deserialize_with = "op_name")]
    pub op: Name,
    /// The kernel function the module probes for it.
    pub symbol: String,
    pub status: ProbeStatus,
    /// Entries the module tracked since the last reset.
    pub calls: u64,
}

fn parse_op_line(line: &str) -> Option<OpState> {
    let w: Vec<_> = line.split_whitespace().collect();
    let (status, calls) = match w[..] {
        [_, _, "attached", calls] => (ProbeStatus::Attached, calls),
        [_, _, "off", calls] => (ProbeStatus::Off, calls),
        [_, _, "failed", errno, calls] => (ProbeStatus::Failed(errno.parse().ok()?), calls),
        _ => return None,
    };
    Some(OpState {
        op: crate::ops::op(w[0])?,
        symbol: w[1].to_string(),
        status,
        calls: calls.parse().ok()?,
    })
}

/// Parses debugfs `ops`: after a `#` comment line, one
/// `name symbol attached CALLS`, `name symbol failed ERRNO CALLS` or
/// `name symbol off CALLS` line per operation.
pub fn parse_ops(text: &str) -> Result<Vec<OpState>, BadMeetsLine> {
    text.lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.starts_with('#'))
        .map(|t| parse_op_line(t).ok_or_else(|| BadMeetsLine(t.to_string())))
        .collect()
}

/// The percent of a run thp-race and pairs arm the meets probes by default
/// (`--meets-duty`): armed probes cost about a quarter of thp-race's op
/// rate under TCG (docs/meets.md, Cost), sampled ones a few percent.
pub const DEFAULT_DUTY_PCT: u8 = 10;

/// A sampled run arms the probes for the duty's share of every period
/// (`--meets-period-s`, in seconds; by default 0: the period is the whole
/// run, so the probes are armed once, for the first PCT % of it). Every
/// arm and disarm costs seconds of the guest's throughput under TCG
/// (docs/meets.md, Cost), so the fewer periods the better.
pub const SAMPLE_PERIOD_MS: u64 = 0;

/// How a run counts meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetsPlan {
    /// `meets_enable` 0 for the run (`--no-meets`, `--meets-duty 0`).
    Off,
    /// Armed the whole run.
    Always,
    /// Armed `duty_pct` percent of every `period_ms` (0: of the whole
    /// run), from its start: the counts are a sample.
    Sampled { duty_pct: u8, period_ms: u64 },
}

impl MeetsPlan {
    /// From a scenario's `--no-meets`, `--meets-duty PCT` and
    /// `--meets-period-s S`.
    pub fn of(no_meets: bool, duty_pct: u8, period_s: u64) -> MeetsPlan {
        match duty_pct {
            _ if no_meets => MeetsPlan::Off,
            0 => MeetsPlan::Off,
            100.. => MeetsPlan::Always,
            d => MeetsPlan::Sampled {
                duty_pct: d,
                period_ms: period_s * 1000,
            },
        }
    }

    /// A sampled plan's armed and disarmed milliseconds of one period, in
    /// a run of `run_ms` (the period of a plan without one).
    pub fn period_ms(self, run_ms: u64) -> Option<(u64, u64)> {
        let MeetsPlan::Sampled {
            duty_pct,
            period_ms,
        } = self
        else {
            return None;
        };
        let period = if period_ms == 0 { run_ms } else { period_ms }.max(1);
        let on = period * u64::from(duty_pct) / 100;
        Some((on, period - on))
    }
}

/// What sampling did in a run (report.json: `meets.sampling`): the counts
/// of a sampled run cover `armed_ms` of `total_ms` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sampling {
    pub duty_pct: u8,
    pub period_ms: u64,
    /// Time the probes were armed, and the sampler's whole time.
    pub armed_ms: u64,
    pub total_ms: u64,
    /// Writes to `meets_enable`, and the time they took together.
    pub toggles: u64,
    pub toggle_ms: u64,
}

/// What the driver tells the host about meets at the end of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunMeets {
    /// Counted during the scenario.
    Counted {
        /// The meets since the scenario started ([`Meets::since`]).
        meets: Meets,
        /// Each operation's probe at the end, and its calls in the run.
        ops: Vec<OpState>,
        /// Operations the module could not track in the run (no free slot).
        dropped: u64,
        /// How the probes were sampled; `None`: armed the whole run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sampling: Option<Sampling>,
    },
    /// Not counted: `meets_enable` was 0 (`--no-meets`, `--meets-duty 0`).
    Off,
    /// Not counted: the module has no meets (an older mmrace.ko), or they
    /// could not be read; `why` says which.
    Absent { why: String },
}

/// [`RunMeets::summary`]: the shape of a run's meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetsSummary {
    /// Operations whose probes attached (and were armed, or sampled).
    pub attached: Vec<&'static str>,
    /// Unordered pairs with at least one meet, most meets first.
    pub met: Vec<(Pair, Count)>,
    /// Pairs of attached operations that never met.
    pub never_met: usize,
}

impl RunMeets {
    /// None unless counted.
    pub fn summary(&self) -> Option<MeetsSummary> {
        let RunMeets::Counted {
            meets,
            ops,
            sampling,
            ..
        } = self
        else {
            return None;
        };
        // A sampled run ends with its probes disarmed (`off`): they were
        // armed in its samples.
        let armed = |s: ProbeStatus| {
            s == ProbeStatus::Attached || (sampling.is_some() && s == ProbeStatus::Off)
        };
        let attached: Vec<_> = ops
            .iter()
            .filter(|o| armed(o.status))
            .map(|o| o.op)
            .collect();
        let pairs = meets.by_pair(None);
        let mut met: Vec<_> = pairs
            .iter()
            .filter(|(_, c)| c.meets > 0)
            .map(|(p, c)| (*p, *c))
            .collect();
        met.sort_by(|a, b| b.1.meets.cmp(&a.1.meets).then(a.0.cmp(&b.0)));
        let never_met = all_pairs(&attached)
            .iter()
            .filter(|p| pairs.get(p).is_none_or(|c| c.meets == 0))
            .count();
        Some(MeetsSummary {
            attached,
            met,
            never_met,
        })
    }
}

/// An unordered pair of operations, `a <= b`.
pub type Pair = (&'static str, &'static str);

/// A malformed `meets` line, or one naming an operation or kind the header
/// does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMeetsLine(pub String);

impl std::fmt::Display for BadMeetsLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed meets line {:?} (want 'entering holding kind meets near' with names from module/mmrace_ops.h)",
            self.0
        )
    }
}

impl std::error::Error for BadMeetsLine {}

fn parse_line(line: &str) -> Option<(Cell, Count)> {
    let w: Vec<_> = line.split_whitespace().collect();
    let (entering, holding, kind, meets, near, alias) = match w[..] {
        [e, h, k, m, n] => (e, h, k, m, n, "0"),
        [e, h, k, m, n, a] => (e, h, k, m, n, a),
        _ => return None,
    };
    let cell = Cell {
        entering: crate::ops::op(entering)?,
        holding: crate::ops::op(holding)?,
        kind: crate::ops::kind_of(kind)?,
    };
    Some((
        cell,
        Count {
            meets: meets.parse().ok()?,
            near: near.parse().ok()?,
            alias: alias.parse().ok()?,
        },
    ))
}

impl Meets {
    /// Parses the debugfs file.
    pub fn parse(text: &str) -> Result<Meets, BadMeetsLine> {
        let mut cells = BTreeMap::new();
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (c, n) = parse_line(t).ok_or_else(|| BadMeetsLine(line.to_string()))?;
            cells.insert(c, n);
        }
        Ok(Meets { cells })
    }

    /// What happened between `earlier` and `self` (counts only grow
    /// between resets; a cell that shrank counts from zero).
    pub fn since(&self, earlier: &Meets) -> Meets {
        let cells = self
            .cells
            .iter()
            .filter_map(|(c, n)| {
                let e = earlier.cells.get(c).copied().unwrap_or_default();
                let d = if n.meets >= e.meets && n.near >= e.near && n.alias >= e.alias {
                    Count {
                        meets: n.meets - e.meets,
                        near: n.near - e.near,
                        alias: n.alias - e.alias,
                    }
                } else {
                    *n
                };
                (d != Count::default()).then_some((*c, d))
            })
            .collect();
        Meets { cells }
    }

    /// Meets and near meets per unordered pair, over every kind (or over
    /// `kind` only).
    pub fn by_pair(&self, kind: Option<&str>) -> BTreeMap<Pair, Count> {
        let mut out: BTreeMap<Pair, Count> = BTreeMap::new();
        for (c, n) in &self.cells {
            if kind.is_some_and(|k| k != c.kind) {
                continue;
            }
            let key = if c.entering <= c.holding {
                (c.entering, c.holding)
            } else {
                (c.holding, c.entering)
            };
            let e = out.entry(key).or_default();
            e.meets += n.meets;
            e.near += n.near;
            e.alias += n.alias;
        }
        out
    }

    /// The kinds each operation met another on.
    pub fn kinds_by_op(&self) -> BTreeMap<&'static str, BTreeSet<&'static str>> {
        let mut out: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
        // A cell of alias overlaps alone is no meet.
        for c in self
            .cells
            .iter()
            .filter(|(_, n)| n.meets + n.near > 0)
            .map(|(c, _)| c)
        {
            out.entry(c.entering).or_default().insert(c.kind);
            out.entry(c.holding).or_default().insert(c.kind);
        }
        out
    }
}

/// How often the driver sends the run's meets so far
/// ([`crate::wire::Msg::MeetsProgress`]).
pub const PROGRESS_PERIOD_MS: u64 = 10_000;

/// A pair met this often is covered (as pairs' catalogue coverage counts).
pub const COVERED_MEETS: u64 = 10;

/// The run's meets so far, at guest time `t_ms`: unordered module-op pairs
/// that met at least once and at least [`COVERED_MEETS`] times since the
/// scenario started, and all meets. The host keeps them as the run's
/// coverage over time (report.json `meets_progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetsPoint {
    pub t_ms: u64,
    pub met: u64,
    pub covered: u64,
    pub meets: u64,
}

impl Meets {
    /// These meets as a point of the run's progress at `t_ms`.
    pub fn point(&self, t_ms: u64) -> MeetsPoint {
        let pairs = self.by_pair(None);
        let at_least = |n: u64| pairs.values().filter(|c| c.meets >= n).count() as u64;
        MeetsPoint {
            t_ms,
            met: at_least(1),
            covered: at_least(COVERED_MEETS),
            meets: pairs.values().map(|c| c.meets).sum(),
        }
    }
}

/// Every unordered pair of `ops` (each with itself too), `a <= b`.
pub fn all_pairs(ops: &[&'static str]) -> Vec<Pair> {
    let mut v: Vec<_> = ops.to_vec();
    v.sort();
    v.dedup();
    let mut out = Vec::new();
    for (i, a) in v.iter().enumerate() {
        for b in &v[i..] {
            out.push((*a, *b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{kind, name};

    const TEXT: &str = "# entering holding kind meets near\n\
        pmd_split migrate_unmap anon 12 40\n\
        migrate_unmap pmd_split anon 3 0\n\
        zap_huge_pmd pmd_split shmem 1 2\n";

    #[test]
    fn plans_from_options() {
        let s = SAMPLE_PERIOD_MS / 1000;
        assert_eq!(MeetsPlan::of(true, 50, s), MeetsPlan::Off);
        assert_eq!(MeetsPlan::of(false, 0, s), MeetsPlan::Off);
        assert_eq!(MeetsPlan::of(false, 100, s), MeetsPlan::Always);
        let p = MeetsPlan::of(false, DEFAULT_DUTY_PCT, s);
        assert_eq!(
            p,
            MeetsPlan::Sampled {
                duty_pct: DEFAULT_DUTY_PCT,
                period_ms: SAMPLE_PERIOD_MS
            }
        );
        // By default one window: the first PCT % of the run.
        let (on, off) = p.period_ms(45_000).unwrap();
        assert_eq!(on + off, 45_000);
        assert_eq!(on, 45_000 * u64::from(DEFAULT_DUTY_PCT) / 100);
        // With a period: PCT % of each.
        assert_eq!(
            MeetsPlan::of(false, 10, 20).period_ms(45_000),
            Some((2000, 18000))
        );
        assert_eq!(MeetsPlan::Always.period_ms(45_000), None);
    }

    #[test]
    fn parses_and_folds_pairs() {
        let m = Meets::parse(TEXT).unwrap();
        assert_eq!(m.cells.len(), 3);
        let p = m.by_pair(Some(kind::ANON));
        assert_eq!(
            p[&(name::MIGRATE_UNMAP, name::PMD_SPLIT)],
            Count {
                meets: 15,
                near: 40,
                alias: 0
            }
        );
        assert_eq!(m.by_pair(None).len(), 2);
        assert!(m.kinds_by_op()[name::PMD_SPLIT].contains(kind::SHMEM));
    }

    #[test]
    fn rejects_unknown_names_and_malformed_lines() {
        for bad in [
            "pmd_split bogus anon 1 1",
            "pmd_split migrate_unmap nokind 1 1",
            "pmd_split migrate_unmap anon 1",
            "pmd_split migrate_unmap anon x 1",
        ] {
            assert!(Meets::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_subtracts_and_drops_unchanged_cells() {
        let a = Meets::parse("pmd_split migrate_unmap anon 2 5").unwrap();
        let b = Meets::parse(TEXT).unwrap();
        let d = b.since(&a);
        let c = Cell {
            entering: name::PMD_SPLIT,
            holding: name::MIGRATE_UNMAP,
            kind: kind::ANON,
        };
        assert_eq!(
            d.cells[&c],
            Count {
                meets: 10,
                near: 35,
                alias: 0
            }
        );
        assert_eq!(b.since(&b).cells.len(), 0);
        // The alias column: optional, subtracted like the others.
        let x = Meets::parse("pmd_split migrate_unmap anon 2 5 7").unwrap();
        let y = Meets::parse("pmd_split migrate_unmap anon 3 5 9").unwrap();
        assert_eq!(y.since(&x).cells[&c].alias, 2);
        assert_eq!(y.since(&x).cells[&c].meets, 1);
    }

    #[test]
    fn serializes_as_rows_and_back() {
        let m = Meets::parse(TEXT).unwrap();
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v[0]["entering"], "migrate_unmap");
        assert_eq!(v[0]["meets"], 3);
        let back: Meets = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        let bad = r#"[{"entering":"bogus","holding":"gup","kind":"anon","meets":1,"near":0}]"#;
        let e = serde_json::from_str::<Meets>(bad).unwrap_err().to_string();
        assert!(e.contains("unknown operation \"bogus\""), "{e}");
    }

    const OPS: &str = "# name symbol state calls\n\
        pmd_split __split_huge_pmd attached 12\n\
        uffd_move move_pages_huge_pmd failed -2 0\n\
        gup __get_user_pages off 0\n";

    #[test]
    fn parses_ops() {
        let ops = parse_ops(OPS).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].op, name::PMD_SPLIT);
        assert_eq!((ops[0].status, ops[0].calls), (ProbeStatus::Attached, 12));
        assert_eq!(ops[1].status, ProbeStatus::Failed(-2));
        assert_eq!(ops[2].status, ProbeStatus::Off);
        for bad in [
            "pmd_split __split_huge_pmd attached",
            "pmd_split __split_huge_pmd failed 0",
            "pmd_split __split_huge_pmd maybe 1",
            "bogus x attached 1",
            "pmd_split __split_huge_pmd attached -1",
        ] {
            assert!(parse_ops(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn summary_counts_met_and_never_met_pairs() {
        let run = RunMeets::Counted {
            meets: Meets::parse(TEXT).unwrap(),
            ops: parse_ops(OPS).unwrap(),
            dropped: 0,
            sampling: None,
        };
        let back: RunMeets = serde_json::from_str(&serde_json::to_string(&run).unwrap()).unwrap();
        assert_eq!(back, run);
        let s = run.summary().unwrap();
        assert_eq!(s.attached, [name::PMD_SPLIT]);
        // migrate_unmap-pmd_split (15) before pmd_split-zap_huge_pmd (1).
        assert_eq!(s.met[0].0, (name::MIGRATE_UNMAP, name::PMD_SPLIT));
        assert_eq!(s.met[0].1.meets, 15);
        assert_eq!(s.met.len(), 2);
        // One attached op: the one pair (pmd_split, pmd_split), never met.
        assert_eq!(s.never_met, 1);
        assert_eq!(RunMeets::Off.summary(), None);
        // A sampled run ends disarmed: its `off` probes were armed in its
        // samples, a failed one never was.
        let sampled = RunMeets::Counted {
            meets: Meets::parse(TEXT).unwrap(),
            ops: parse_ops(OPS).unwrap(),
            dropped: 0,
            sampling: Some(Sampling {
                duty_pct: 10,
                period_ms: SAMPLE_PERIOD_MS,
                armed_ms: 500,
                total_ms: 5000,
                toggles: 2,
                toggle_ms: 3,
            }),
        };
        let back: RunMeets =
            serde_json::from_str(&serde_json::to_string(&sampled).unwrap()).unwrap();
        assert_eq!(back, sampled);
        assert_eq!(
            sampled.summary().unwrap().attached,
            [name::PMD_SPLIT, name::GUP]
        );
    }

    #[test]
    fn all_pairs_counts_n_choose_2_plus_n() {
        let p = all_pairs(&[
            name::PMD_SPLIT,
            name::GUP,
            name::PMD_SPLIT,
            name::CLEAR_REFS,
        ]);
        assert_eq!(p.len(), 6);
    }
}
