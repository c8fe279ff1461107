//! What each scenario returns: one typed result per scenario, sent in the
//! driver's Result message and read back by the host, `make bench` and the
//! tests as these same types.

pub mod bench;
pub mod inject;
pub mod ksmd;
pub mod oom_stall;
pub mod pairs;
pub mod round_time;
pub mod suite;
pub mod thp_race;
pub mod windows;

use crate::crosscheck::CrossCheck;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counter or event counts by name.
pub type Counts = BTreeMap<String, u64>;

/// Rates per second by name.
pub type Rates = BTreeMap<String, f64>;

/// A scenario's results, tagged with its name (`"scenario": "thp-race"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "kebab-case")]
pub enum ScenarioResult {
    Smoke(Box<SmokeResult>),
    ThpRace(Box<thp_race::ThpRaceResult>),
    OomStall(Box<oom_stall::OomStallResult>),
    ShellBaseline(Box<thp_race::ShellBaselineResult>),
    Bench(Box<bench::BenchResult>),
    Exec(Box<suite::SuiteResult>),
    SelftestsMm(Box<suite::SuiteResult>),
    Pairs(Box<pairs::PairsResult>),
}

impl ScenarioResult {
    /// The programs `exec` and `selftests-mm` ran.
    pub fn suite(&self) -> Option<&suite::SuiteResult> {
        match self {
            ScenarioResult::Exec(r) | ScenarioResult::SelftestsMm(r) => Some(r),
            _ => None,
        }
    }

    /// What `pairs` returned.
    pub fn pairs(&self) -> Option<&pairs::PairsResult> {
        match self {
            ScenarioResult::Pairs(r) => Some(r),
            _ => None,
        }
    }

    /// The module-vs-vmstat measurement, for the scenarios that make one.
    pub fn measurement(&self) -> Option<&Measurement> {
        match self {
            ScenarioResult::ThpRace(r) => Some(&r.measurement),
            ScenarioResult::ShellBaseline(r) => Some(&r.measurement),
            _ => None,
        }
    }

    /// Module counter deltas and vmstat deltas over the run, where the
    /// scenario reports them.
    pub fn deltas(&self) -> Option<(&Counts, &Counts)> {
        match self {
            ScenarioResult::Smoke(r) => Some((&r.counters, &r.vmstat)),
            ScenarioResult::OomStall(r) => Some((&r.counters, &r.vmstat)),
            _ => self
                .measurement()
                .map(|m| (&m.counters_delta, &m.vmstat_delta)),
        }
    }

    /// What `--amplify` armed and got, for a thp-race run that had it.
    pub fn amplify(&self) -> Option<&inject::AmplifyReport> {
        match self {
            ScenarioResult::ThpRace(r) => r.amplify.as_ref(),
            ScenarioResult::Pairs(r) => r.amplify.as_ref(),
            _ => None,
        }
    }

    /// The cross-checks, where the scenario makes them.
    pub fn crosscheck_ok(&self) -> Option<bool> {
        match self {
            ScenarioResult::OomStall(r) => Some(r.crosscheck_ok),
            _ => self.measurement().map(|m| m.crosscheck_ok),
        }
    }
}

/// mmrace.ko counter deltas next to /proc/vmstat deltas over a run, and the
/// cross-checks between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    pub counters_available: bool,
    /// The first error reading the counters (module not loaded...).
    pub counters_error: Option<String>,
    pub counters_delta: Counts,
    pub vmstat_delta: Counts,
    pub crosscheck: Vec<CrossCheck>,
    pub crosscheck_ok: bool,
}

/// What `smoke` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmokeResult {
    pub iterations: u64,
    pub nodes: Vec<u32>,
    /// Whether the iterations migrated between two nodes.
    pub migrate: bool,
    pub counters: Counts,
    pub vmstat: Counts,
    /// The data oracle's checks of the pages after every step.
    /// (Absent in results of drivers older than the data oracle.)
    #[serde(default)]
    pub data_oracle: crate::oracle::DataSummary,
    /// The injection point smoke adds (`zap_huge_pmd`), as `inject/points`
    /// listed it at the end.
    pub inject_point: Option<inject::PointRow>,
    /// The one it adds at an operation's entry (`op=anon_huge_fault`,
    /// listed as `do_huge_pmd_anonymous_page`). (Absent in results of
    /// drivers older than `op=`.)
    #[serde(default)]
    pub op_point: Option<inject::PointRow>,
    /// Nonzero meet cells between attached operations after smoke's meets
    /// race; None when the module has no meets (the check was skipped).
    #[serde(default)]
    pub meets_cells: Option<usize>,
}
