//! The end-of-run measurements: mmrace.ko counter deltas next to the
//! kernel's own /proc/vmstat deltas, and the cross-checks between the two
//! (does each probe count what vmstat says the kernel did?).

use crate::ctx::Ctx;
use mmrace_proto::counters::name;
use mmrace_proto::crosscheck::{self, CrossCheck, Relation, Rule};
use mmrace_proto::results::Measurement;
use std::collections::BTreeMap;

/// What a run measured between its start and its end.
pub struct Deltas {
    /// Module counter deltas; `None` when a reading failed.
    pub counters: Option<BTreeMap<String, u64>>,
    /// The first error reading the counters, at the start or the end.
    pub counters_error: Option<String>,
    /// The [`VMSTAT_KEYS`] deltas.
    pub vmstat: BTreeMap<String, u64>,
    pub checks: Vec<CrossCheck>,
}

impl Deltas {
    /// Reads the counters and vmstat again, computes the deltas and the
    /// cross-checks against the start readings, and prints the side-by-side
    /// table and the cross-check lines, each behind `prefix`.
    pub fn measure(
        ctx: &Ctx,
        prefix: &str,
        counters_start: &Result<BTreeMap<String, u64>, String>,
        vmstat_start: &BTreeMap<String, u64>,
    ) -> anyhow::Result<Deltas> {
        let counters_end = crate::counters::read_reported();
        let vmstat_end = crate::vmstat::read()?;
        let counters = match (counters_start, &counters_end) {
            (Ok(a), Ok(b)) => Some(crate::counters::delta(a, b)),
            _ => None,
        };
        let counters_error = counters_start
            .as_ref()
            .err()
            .or(counters_end.as_ref().err())
            .cloned();
        let vmstat = pick(
            &crate::vmstat::delta(vmstat_start, &vmstat_end),
            &VMSTAT_KEYS,
        );
        let checks = crosscheck::evaluate(CROSSCHECKS, counters.as_ref(), &vmstat);
        for line in table(counters.as_ref(), &vmstat)
            .into_iter()
            .chain(checks.iter().map(CrossCheck::line))
        {
            ctx.say(format!("{prefix}: {line}"));
        }
        Ok(Deltas {
            counters,
            counters_error,
            vmstat,
            checks,
        })
    }

    /// What every scenario that measures this way returns.
    pub fn record(&self) -> Measurement {
        Measurement {
            counters_available: self.counters.is_some(),
            counters_error: self.counters_error.clone(),
            counters_delta: self.counters.clone().unwrap_or_default(),
            vmstat_delta: self.vmstat.clone(),
            crosscheck: self.checks.clone(),
            crosscheck_ok: crosscheck::all_ok(&self.checks),
        }
    }
}

/// mmrace.ko counters shown in the table (all counters go in the JSON).
pub const MODULE_KEYS: [&str; 11] = [
    name::PMD_SPLIT,
    name::PMD_SPLIT_FREEZE,
    name::PMD_SPLIT_DONE,
    name::PMD_RACE,
    name::THP_SPLIT,
    name::THP_SPLIT_FAILED,
    name::THP_SPLIT_EAGAIN,
    name::THP_MIGRATE,
    name::THP_MIGRATE_FAILED,
    name::MIGRATE_PAGES,
    name::SOFTDIRTY_CLEAR,
];

/// /proc/vmstat events shown in the table and returned in the JSON.
pub const VMSTAT_KEYS: [&str; 9] = [
    "thp_split_page",
    "thp_split_page_failed",
    "thp_split_pmd",
    "thp_migration_success",
    "thp_migration_fail",
    "thp_migration_split",
    "pgmigrate_success",
    "pgmigrate_fail",
    "thp_fault_alloc",
];

/// Module counter vs the sum of vmstat events that should equal it. Still
/// being settled with the module's probes: adjust here, nowhere else.
///
/// The pmd pair uses `pmd_split_done`, not `pmd_split`: `pmd_split` counts
/// every split_huge_pmd_locked() call, including those that found nothing
/// to split (the races themselves), so it exceeds thp_split_pmd exactly in
/// the runs that matter; mmrace_counters.h names thp_split_pmd as
/// `pmd_split_done`'s vmstat twin.
pub const CROSSCHECKS: &[Rule] = &[
    about(
        name::THP_SPLIT,
        &["thp_split_page", "thp_split_page_failed"],
    ),
    about(name::THP_SPLIT_FAILED, &["thp_split_page_failed"]),
    about(name::THP_MIGRATE, &["thp_migration_success"]),
    about(name::MIGRATE_PAGES, &["pgmigrate_success"]),
    about(name::PMD_SPLIT_DONE, &["thp_split_pmd"]),
];

const fn about(module: &'static str, vmstat: &'static [&'static str]) -> Rule {
    Rule {
        module,
        vmstat,
        relation: Relation::About,
    }
}

/// The entries of `m` named in `keys`, in `keys` order (missing ones left
/// out: a kernel without some event simply has no line for it).
pub fn pick(m: &BTreeMap<String, u64>, keys: &[&str]) -> BTreeMap<String, u64> {
    keys.iter()
        .filter_map(|k| m.get(*k).map(|v| (k.to_string(), *v)))
        .collect()
}

/// The side-by-side table: module counter deltas | vmstat deltas.
pub fn table(
    counters: Option<&BTreeMap<String, u64>>,
    vmstat: &BTreeMap<String, u64>,
) -> Vec<String> {
    let cell = |m: Option<&BTreeMap<String, u64>>, k: &str| {
        m.and_then(|m| m.get(k))
            .map_or_else(|| "-".to_string(), u64::to_string)
    };
    let mut lines = vec![format!(
        "{:<20} {:>10} | {:<22} {:>10}",
        "module counter", "delta", "vmstat", "delta"
    )];
    for i in 0..MODULE_KEYS.len().max(VMSTAT_KEYS.len()) {
        let left = MODULE_KEYS.get(i).map_or_else(
            || format!("{:31}", ""),
            |k| format!("{k:<20} {:>10}", cell(counters, k)),
        );
        let right = VMSTAT_KEYS.get(i).map_or_else(String::new, |k| {
            format!("{k:<22} {:>10}", cell(Some(vmstat), k))
        });
        lines.push(format!("{left} | {right}").trim_end().to_string());
    }
    lines
}

/// Operations per second, one decimal.
pub fn rates(ops: &BTreeMap<String, u64>, elapsed_ms: u64) -> BTreeMap<String, f64> {
    let secs = (elapsed_ms.max(1)) as f64 / 1000.0;
    ops.iter()
        .map(|(k, &v)| (k.clone(), (v as f64 / secs * 10.0).round() / 10.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn crosscheck_names_known_counters() {
        let defs = mmrace_proto::counters::counter_defs();
        for r in CROSSCHECKS {
            assert!(
                defs.iter().any(|d| d.name == r.module),
                "{} not in mmrace_counters.h",
                r.module
            );
        }
        for k in MODULE_KEYS {
            assert!(
                defs.iter().any(|d| d.name == k),
                "{k} not in mmrace_counters.h"
            );
        }
    }

    #[test]
    fn table_has_both_columns() {
        let t = table(
            Some(&map(&[("pmd_race", 4)])),
            &map(&[("thp_split_pmd", 9)]),
        );
        assert_eq!(t.len(), 1 + MODULE_KEYS.len());
        let row = t.iter().find(|l| l.starts_with("pmd_race")).unwrap();
        assert!(row.contains(" 4 |"), "{row}");
        let row = t.iter().find(|l| l.contains("| thp_split_pmd ")).unwrap();
        assert!(row.ends_with(" 9"), "{row}");
        assert!(t
            .iter()
            .any(|l| l.starts_with("softdirty_clear") && l.contains(" - ")));
        let no_module = table(None, &BTreeMap::new());
        assert!(no_module[1].contains(" - |"));
    }

    #[test]
    fn rates_per_second() {
        let r = rates(&map(&[("writer", 30)]), 2000);
        assert_eq!(r["writer"], 15.0);
        assert_eq!(rates(&map(&[("x", 1)]), 0)["x"], 1000.0);
    }

    #[test]
    fn pick_keeps_listed_present_keys() {
        let m = map(&[("thp_fault_alloc", 3), ("nr_free_pages", 9)]);
        assert_eq!(pick(&m, &VMSTAT_KEYS), map(&[("thp_fault_alloc", 3)]));
    }
}
