//! Cross-checks: does each mmrace.ko counter count what the kernel's own
//! /proc/vmstat says happened? One mechanism for every scenario; each brings
//! its own [`Rule`] table.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a module counter's delta must relate to its vmstat side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// Exactly equal.
    Equal,
    /// Equal within max(2, 2 % of the larger): the slack for events that
    /// land between the counters read and the vmstat read of a busy run.
    About,
    /// The module counts a subset of what vmstat counts.
    AtMost,
}

impl Relation {
    pub fn holds(self, module: u64, vmstat: u64) -> bool {
        match self {
            Relation::Equal => module == vmstat,
            Relation::About => within_tolerance(module, vmstat),
            Relation::AtMost => module <= vmstat,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Relation::Equal => "==",
            Relation::About => "~=",
            Relation::AtMost => "<=",
        }
    }
}

/// Whether two deltas agree within max(2, 2 % of the larger).
pub fn within_tolerance(a: u64, b: u64) -> bool {
    let diff = a.abs_diff(b);
    diff <= 2 || u128::from(diff) * 100 <= u128::from(a.max(b)) * 2
}

/// A module counter against the sum of vmstat keys. A key ending in `_*`
/// stands for every key with that prefix (`allocstall_*`).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub module: &'static str,
    pub vmstat: &'static [&'static str],
    pub relation: Relation,
}

/// One cross-check's outcome, as it goes in a scenario's results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossCheck {
    pub module: String,
    /// The vmstat side, `a+b` when it is a sum.
    pub vmstat: String,
    pub relation: Relation,
    pub module_delta: Option<u64>,
    pub vmstat_delta: Option<u64>,
    /// False when the relation does not hold, and when either side is
    /// missing (the kernel lacks the event, or the module the counter).
    pub ok: bool,
}

impl CrossCheck {
    /// `crosscheck ok: thp_split 10 ~= thp_split_page+thp_split_page_failed 10`.
    pub fn line(&self) -> String {
        let show = |v: Option<u64>| v.map_or_else(|| "missing".to_string(), |v| v.to_string());
        format!(
            "crosscheck {}: {} {} {} {} {}",
            if self.ok { "ok" } else { "MISMATCH" },
            self.module,
            show(self.module_delta),
            self.relation.symbol(),
            self.vmstat,
            show(self.vmstat_delta)
        )
    }
}

/// The value of one vmstat key, or the sum over a `prefix_*` pattern (None
/// when nothing matches).
fn vmstat_value(vmstat: &BTreeMap<String, u64>, key: &str) -> Option<u64> {
    match key.strip_suffix('*') {
        Some(prefix) => {
            let mut it = vmstat
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .peekable();
            it.peek()?;
            Some(it.map(|(_, v)| v).sum())
        }
        None => vmstat.get(key).copied(),
    }
}

/// Evaluates `rules` on the deltas of a run (`counters` None: the module's
/// counters could not be read, so every check fails).
pub fn evaluate(
    rules: &[Rule],
    counters: Option<&BTreeMap<String, u64>>,
    vmstat: &BTreeMap<String, u64>,
) -> Vec<CrossCheck> {
    rules
        .iter()
        .map(|r| {
            let module_delta = counters.and_then(|c| c.get(r.module).copied());
            let vmstat_delta = r
                .vmstat
                .iter()
                .map(|k| vmstat_value(vmstat, k))
                .sum::<Option<u64>>();
            let ok = matches!((module_delta, vmstat_delta), (Some(a), Some(b)) if r.relation.holds(a, b));
            CrossCheck {
                module: r.module.to_string(),
                vmstat: r.vmstat.join("+"),
                relation: r.relation,
                module_delta,
                vmstat_delta,
                ok,
            }
        })
        .collect()
}

/// Every check passed.
pub fn all_ok(checks: &[CrossCheck]) -> bool {
    checks.iter().all(|c| c.ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn tolerance_is_max_of_2_and_2_percent() {
        assert!(within_tolerance(0, 0));
        assert!(within_tolerance(0, 2));
        assert!(!within_tolerance(0, 3));
        assert!(within_tolerance(100, 102));
        assert!(!within_tolerance(100, 103));
        assert!(within_tolerance(1000, 1020));
        assert!(!within_tolerance(1000, 1021));
        assert!(within_tolerance(1020, 1000)); // 2% of the larger
        assert!(!within_tolerance(1021, 1000)); // 21 > 20.42
        assert!(within_tolerance(u64::MAX, u64::MAX - 2));
    }

    const RULES: &[Rule] = &[
        Rule {
            module: "thp_split",
            vmstat: &["thp_split_page", "thp_split_page_failed"],
            relation: Relation::About,
        },
        Rule {
            module: "oom_kill",
            vmstat: &["oom_kill"],
            relation: Relation::Equal,
        },
        Rule {
            module: "direct_reclaim",
            vmstat: &["allocstall_*"],
            relation: Relation::AtMost,
        },
        Rule {
            module: "pmd_split_done",
            vmstat: &["thp_split_pmd"],
            relation: Relation::About,
        },
    ];

    #[test]
    fn sums_prefixes_relations_and_missing_sides() {
        let counters = map(&[
            ("thp_split", 10),
            ("oom_kill", 3),
            ("direct_reclaim", 10),
            ("pmd_split_done", 7),
        ]);
        let vmstat = map(&[
            ("thp_split_page", 7),
            ("thp_split_page_failed", 3),
            ("oom_kill", 3),
            ("allocstall_dma32", 4),
            ("allocstall_movable", 5),
            ("pgscan_direct", 99),
        ]);
        let c = evaluate(RULES, Some(&counters), &vmstat);
        let by = |m: &str| c.iter().find(|x| x.module == m).unwrap().clone();
        assert_eq!(
            by("thp_split").vmstat,
            "thp_split_page+thp_split_page_failed"
        );
        assert_eq!(by("thp_split").vmstat_delta, Some(10));
        assert!(by("thp_split").ok && by("oom_kill").ok);
        let d = by("direct_reclaim");
        assert_eq!(
            (d.module_delta, d.vmstat_delta, d.ok),
            (Some(10), Some(9), false)
        );
        assert_eq!(
            d.line(),
            "crosscheck MISMATCH: direct_reclaim 10 <= allocstall_* 9"
        );
        let pmd = by("pmd_split_done");
        assert_eq!(
            (pmd.vmstat_delta, pmd.ok),
            (None, false),
            "vmstat side missing"
        );
        assert!(!all_ok(&c));
        // No module counters at all: every check fails, none panics.
        assert!(evaluate(RULES, None, &vmstat)
            .iter()
            .all(|c| !c.ok && c.module_delta.is_none()));
    }
}
