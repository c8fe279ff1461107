//! `mmrace-host coverage REPORT...`: the coverage figures of issue 17 and
//! the kind x operation table of issue 18.3, from runs' report.json.
//!
//! Per run: the module-operation pairs that met at least once and at least
//! [`COVERED_MEETS`] times (unordered, every kind); the catalogue pairs of
//! `pairs` whose module ops met at least [`COVERED_MEETS`] times on the
//! pair's memory kind anywhere in the run's meets (`pairs`' own kinds and
//! ops for a `pairs` run, its defaults for any other scenario, so
//! `thp-race` gets a figure too); and, for `pairs`, its own figure, which
//! credits a pair only with the meets of its own slices. `--by-kind` adds
//! the meets each module operation took part in, per memory kind, summed
//! over the runs given.

use crate::out::report::Report;
use mmrace_proto::meets::{all_pairs, Meets, RunMeets};
use mmrace_proto::pairs::catalogue::meets_between;
use mmrace_proto::pairs::{ObjKind, ObjState, UserOp};
use mmrace_proto::results::pairs::{
    catalogue_pairs, pairs_that_cannot_meet, Coverage, PairsResult, Unmet, UnmetBreakdown,
    COVERED_MEETS,
};
use mmrace_proto::spec::{pairs::Args as PairsArgs, Scenario};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// How the run's whole meets matrix covers module-op and catalogue pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixCoverage {
    /// Unordered module-op pairs with at least one meet, and with at least
    /// [`COVERED_MEETS`].
    pub op_pairs_met: usize,
    pub op_pairs_met_10: usize,
    /// Unordered pairs of the operations whose probes were armed.
    pub op_pairs: usize,
    /// Catalogue pairs whose module ops met [`COVERED_MEETS`] times on
    /// the kind's memory kind, of `catalogue_pairs`.
    pub catalogue_met_10: u64,
    pub catalogue_pairs: u64,
}

/// [`MatrixCoverage`] of `meets`, with `armed` the operations whose probes
/// were armed, over the catalogue pairs of `ops` on `kinds`.
pub fn of_matrix(
    meets: &Meets,
    armed: &[&'static str],
    ops: &[UserOp],
    kinds: &[ObjKind],
) -> MatrixCoverage {
    let by_pair = meets.by_pair(None);
    let met = |n: u64| by_pair.values().filter(|c| c.meets >= n).count();
    let (mut cat_met, mut cat_all) = (0, 0);
    for &k in kinds {
        for pair in catalogue_pairs(ops, k) {
            let [a, b] = pair.0[..] else { continue };
            cat_all += 1;
            cat_met += u64::from(meets_between(meets, a, b, k).meets >= COVERED_MEETS);
        }
    }
    MatrixCoverage {
        op_pairs_met: met(1),
        op_pairs_met_10: met(COVERED_MEETS),
        op_pairs: all_pairs(armed).len(),
        catalogue_met_10: cat_met,
        catalogue_pairs: cat_all,
    }
}

/// Meets each module operation took part in (entering or holding; a cell
/// of an operation with itself counts once), per memory kind: kind ->
/// operation -> meets.
pub type KindTable = BTreeMap<&'static str, BTreeMap<&'static str, u64>>;

/// Adds `meets` to `table`.
pub fn add_by_kind(table: &mut KindTable, meets: &Meets) {
    for (c, n) in &meets.cells {
        if n.meets == 0 {
            continue;
        }
        let row = table.entry(c.kind).or_default();
        *row.entry(c.entering).or_default() += n.meets;
        if c.holding != c.entering {
            *row.entry(c.holding).or_default() += n.meets;
        }
    }
}

/// The table in markdown: one row per operation, one column per kind.
pub fn kind_table_markdown(table: &KindTable) -> String {
    let kinds: Vec<_> = table.keys().copied().collect();
    let mut ops: Vec<_> = table.values().flat_map(|r| r.keys().copied()).collect();
    ops.sort();
    ops.dedup();
    let mut out = format!("| operation | {} |\n", kinds.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(kinds.len()));
    for op in ops {
        let cells: Vec<_> = kinds
            .iter()
            .map(|k| match table[k].get(op) {
                Some(n) => n.to_string(),
                None => "-".into(),
            })
            .collect();
        let _ = writeln!(out, "| {op} | {} |", cells.join(" | "));
    }
    out
}

/// The ops and kinds whose catalogue a run is measured against: a `pairs`
/// run's own, less those it skipped (as its own figure counts them), and
/// `pairs`' defaults for any other scenario.
fn catalogue_of(
    scenario: Option<&Scenario>,
    result: Option<&PairsResult>,
) -> (Vec<UserOp>, Vec<ObjKind>) {
    let args = match scenario {
        Some(Scenario::Pairs(a)) => a.clone(),
        _ => PairsArgs::default(),
    };
    let skipped = |word: &str| result.is_some_and(|r| r.skipped.iter().any(|s| s.what == word));
    let ops = args
        .ops()
        .into_iter()
        .filter(|o| !skipped(o.word()))
        .collect();
    let kinds = args
        .kinds()
        .into_iter()
        .filter(|k| !skipped(k.word()))
        .collect();
    (ops, kinds)
}

/// One run's line.
fn line(path: &Path, r: &Report, table: &mut KindTable) -> String {
    let name = r.scenario().map_or("?", Scenario::name);
    let head = format!(
        "{}: {name}, {:.0} s",
        path.display(),
        r.guest_elapsed_s.unwrap_or(0.0)
    );
    let Some(
        m @ RunMeets::Counted {
            meets, sampling, ..
        },
    ) = &r.meets
    else {
        return format!("{head}: no meets counted");
    };
    let armed = m.summary().map(|s| s.attached).unwrap_or_default();
    add_by_kind(table, meets);
    let (ops, kinds) = catalogue_of(r.scenario(), r.pairs());
    let c = of_matrix(meets, &armed, &ops, &kinds);
    let mut s = format!(
        "{head}{}: module-op pairs met >= 1: {}, >= {COVERED_MEETS}: {} (of {}); catalogue pairs met >= {COVERED_MEETS} in the run's meets: {} of {}",
        if sampling.is_some() { " (meets SAMPLED)" } else { "" },
        c.op_pairs_met,
        c.op_pairs_met_10,
        c.op_pairs,
        c.catalogue_met_10,
        c.catalogue_pairs
    );
    if let Some(p) = r.pairs() {
        let states = p.settings.states();
        // Recomputed from the rows, so a report from before the second
        // denominator was kept gets it too.
        let cov = PairsResult::coverage_of(&p.rows, &ops, &kinds, &states, true);
        let Coverage {
            pairs, met, ran, ..
        } = cov;
        let met1 = PairsResult::coverage_met_at_least(&p.rows, &ops, &kinds, 1);
        let _ = write!(
            s,
            "; pairs' own (its slices' meets): {met} of {pairs} met ({:.1} %), {}, {met1} met >= 1, {ran} ran, {} rounds",
            100.0 * met as f64 / pairs.max(1) as f64,
            cov.of_meetable(),
            p.rounds
        );
        s += &unmet_lines(p, &ops, &kinds, &states);
    }
    let mut over = String::new();
    crate::out::meets::render_progress(&mut over, &r.meets_progress);
    if !over.is_empty() {
        let _ = write!(s, "\n  {}", over.trim_end());
    }
    s
}

/// Why the run's metered pair rows never met (`Row::why_unmet`), the
/// ops whose module ops were never called (per kind and start state), and
/// the catalogue pairs that cannot meet by construction.
fn unmet_lines(p: &PairsResult, ops: &[UserOp], kinds: &[ObjKind], states: &[ObjState]) -> String {
    let b = UnmetBreakdown::of(&p.rows);
    if b.metered == 0 {
        return String::new();
    }
    let mut s = String::from("\n  metered pair rows (combo, kind, start state) by outcome:\n");
    s += "  | outcome | rows | share |\n  | --- | --- | --- |\n";
    for l in b.lines() {
        let _ = writeln!(s, "  {l}");
    }
    let mut uncalled: BTreeMap<String, u64> = BTreeMap::new();
    for r in p
        .rows
        .iter()
        .filter(|r| r.why_unmet() == Some(Unmet::Uncalled))
    {
        let state = r.state.map_or("-", |x| x.word());
        let kind = r.kind.map_or("-", |x| x.word());
        for (op, calls) in [(r.ops[0], r.calls_a), (r.ops[1], r.calls_b)] {
            if calls == 0 {
                *uncalled
                    .entry(format!("{op} on {state} {kind}"))
                    .or_default() += 1;
            }
        }
    }
    let mut top: Vec<_> = uncalled.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let list: Vec<String> = top
        .iter()
        .take(12)
        .map(|(w, n)| format!("{w} {n}"))
        .collect();
    let _ = writeln!(
        s,
        "  (a) uncalled, by op (rows): {}{}",
        list.join(", "),
        if top.len() > 12 {
            format!(", ... ({} in all)", top.len())
        } else {
            String::new()
        }
    );
    let cannot = pairs_that_cannot_meet(ops, kinds, states);
    let _ = write!(
        s,
        "  catalogue pairs: {}, of which {} cannot meet by construction (docs/pairs.md lists them)",
        catalogue_count(ops, kinds),
        cannot.len()
    );
    s
}

/// The catalogue pairs of `ops` over `kinds`.
fn catalogue_count(ops: &[UserOp], kinds: &[ObjKind]) -> u64 {
    kinds
        .iter()
        .map(|k| catalogue_pairs(ops, *k).len() as u64)
        .sum()
}

/// The command: a line per report, then the kind table if asked; exit 2
/// if a report cannot be read.
pub fn main(reports: &[PathBuf], by_kind: bool) -> i32 {
    let mut table = KindTable::new();
    for path in reports {
        let r: Report = match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mmrace: cannot read {} as a report: {e}", path.display());
                return 2;
            }
        };
        println!("{}", line(path, &r, &mut table));
    }
    if by_kind {
        println!(
            "\nmeets per memory kind and module operation, over the {} runs:\n",
            reports.len()
        );
        print!("{}", kind_table_markdown(&table));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::ops::{kind, op};
    use mmrace_proto::results::pairs::Skipped;
    use UserOp::*;

    fn meets(text: &str) -> Meets {
        Meets::parse(text).unwrap()
    }

    #[test]
    fn matrix_coverage_counts_op_pairs_and_catalogue_pairs() {
        // store on anon drives anon_huge_fault, huge_pmd_wp, gup;
        // migrate-pages mempolicy, migrate_unmap, migrate_remove,
        // folio_split; dontneed zap_huge_pmd.
        let m = meets(
            "huge_pmd_wp migrate_unmap anon 6 0\n\
             migrate_remove anon_huge_fault anon 4 0\n\
             zap_huge_pmd migrate_unmap shmem 30 0\n\
             gup gup unknown 1 0\n",
        );
        let armed = [op("gup").unwrap(), op("zap_huge_pmd").unwrap()];
        let ops = [Store, MigratePages, Dontneed];
        let c = of_matrix(&m, &armed, &ops, &[ObjKind::Anon]);
        // Four op pairs met, one of them 10 times or more.
        assert_eq!((c.op_pairs_met, c.op_pairs_met_10, c.op_pairs), (4, 1, 3));
        // Catalogue on anon: the 6 pairs a <= b of the three ops; only
        // store+migrate-pages met 10 times (6 + 4, across two cells);
        // dontneed+migrate-pages met on shmem, not anon.
        assert_eq!((c.catalogue_met_10, c.catalogue_pairs), (1, 6));
        let shmem = of_matrix(&m, &armed, &ops, &[ObjKind::Memfd]);
        assert_eq!(shmem.catalogue_met_10, 1);
        let below = meets("huge_pmd_wp migrate_unmap anon 9 50\n");
        assert_eq!(
            of_matrix(&below, &armed, &ops, &[ObjKind::Anon]).catalogue_met_10,
            0,
            "near meets do not count"
        );
    }

    #[test]
    fn kind_table_counts_each_side_once_and_sums_runs() {
        let mut t = KindTable::new();
        add_by_kind(
            &mut t,
            &meets("swap_in swap_in anon 3 0\npmd_split migrate_unmap anon 2 0\n"),
        );
        add_by_kind(&mut t, &meets("pmd_split zap_huge_pmd shmem 5 0\n"));
        add_by_kind(&mut t, &meets("pmd_split migrate_unmap anon 1 9\n"));
        assert_eq!(t[kind::ANON]["swap_in"], 3);
        assert_eq!(t[kind::ANON]["pmd_split"], 3);
        assert_eq!(t[kind::ANON]["migrate_unmap"], 3);
        assert_eq!(t[kind::SHMEM]["zap_huge_pmd"], 5);
        let md = kind_table_markdown(&t);
        assert!(
            md.starts_with("| operation | anon | shmem |\n|---|---|---|\n"),
            "{md}"
        );
        assert!(md.contains("| pmd_split | 3 | 5 |\n"), "{md}");
        assert!(md.contains("| swap_in | 3 | - |\n"), "{md}");
    }

    #[test]
    fn catalogue_is_the_runs_less_what_it_skipped() {
        let (ops, kinds) = catalogue_of(None, None);
        assert_eq!(ops, PairsArgs::default().ops());
        assert_eq!(ops.len(), UserOp::ALL.len());
        assert_eq!(kinds, PairsArgs::default().kinds());
        let a = PairsArgs {
            kinds: vec![ObjKind::Anon, ObjKind::Hugetlb],
            ..PairsArgs::default()
        };
        let skipped = PairsResult {
            skipped: vec![
                Skipped {
                    what: "odirect".into(),
                    why: "no disk".into(),
                },
                Skipped {
                    what: "hugetlb".into(),
                    why: "no pages".into(),
                },
            ],
            ..PairsResult::default()
        };
        let (ops, kinds) = catalogue_of(Some(&Scenario::Pairs(a)), Some(&skipped));
        assert_eq!(kinds, [ObjKind::Anon]);
        assert_eq!(ops.len(), UserOp::ALL.len() - 1);
        assert!(!ops.contains(&Odirect));
    }
}
