//! `bench`'s results: the phases of `make bench` in one boot.

use super::thp_race::{ShellBaselineResult, ThpRaceResult};
use super::{Counts, Rates};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// memcpy of one buffer into another, over and over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memcpy {
    pub buffer_mib: usize,
    pub copies: u64,
    pub secs: f64,
    pub bytes: u64,
    pub bytes_per_s: f64,
}

/// migrate_pages(2) of an idle THP region between the nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleMigrate {
    pub region_mib: usize,
    pub calls: u64,
    pub secs: f64,
    /// vmstat pgmigrate_success.
    pub pages: u64,
    pub pages_not_moved: u64,
    pub thp_migrated: u64,
    pub bytes_per_s: f64,
}

/// The thp-race writer's store rate on a THP region: the seed's plain
/// memset against the stamped writer (which also checks every page's stamp
/// first), alternating in equal slices so host load hits both alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterCost {
    pub region_mib: usize,
    pub memset_bytes_per_s: f64,
    pub stamped_bytes_per_s: f64,
    /// `stamped / memset - 1` in percent (negative: the stamped writer is
    /// slower). The target is within 20 %.
    pub stamped_vs_memset_pct: f64,
}

/// The `mem` phase: the physical limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemPhase {
    pub memcpy: Memcpy,
    pub idle_migrate: IdleMigrate,
    /// (Absent in results of drivers older than the data oracle.)
    #[serde(default)]
    pub writer_cost: Option<WriterCost>,
}

/// thp-race segments added up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segments {
    pub segments: usize,
    pub elapsed_ms: u64,
    pub rates: Rates,
    pub ops: Counts,
}

/// The `overhead` phase: thp-race with mmrace.ko loaded (L) and unloaded (U).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverheadPhase {
    pub segment_secs: u64,
    /// `L` and `U`, in the order the segments ran.
    pub order: Vec<String>,
    pub loaded: Segments,
    pub unloaded: Segments,
}

/// The `meets` phase: thp-race with the meets probes armed throughout (E),
/// disarmed (D), and sampled at the default duty (S).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetsPhase {
    pub segment_secs: u64,
    /// `D`, `E` and `S`, in the order the segments ran.
    pub order: Vec<String>,
    pub enabled: Segments,
    pub disabled: Segments,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled: Option<Segments>,
    /// What the S segments' samplers did, added up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<crate::meets::Sampling>,
    /// `/sys/kernel/debug/kprobes/list` at the end of the last E segment:
    /// kretprobes, and how many of them are optimized (a jump, not int3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kretprobes: Option<(u64, u64)>,
}

/// The `loops` phase: for each pair, a minimal two-thread loop of it
/// (fresh 2 MiB object per round, a barrier between rounds, no check, no
/// steering), then `pairs --pair A,B --kind K` for as long, in one boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopsPhase {
    pub segment_secs: u64,
    pub pairs: Vec<LoopPair>,
}

/// One pair of the `loops` phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoopPair {
    /// `store+migrate-pages on anon`.
    pub name: String,
    pub loop_rounds: u64,
    pub loop_secs: f64,
    pub pairs_rounds: u64,
    pub pairs_secs: f64,
    /// pairs' rounds/s over the loop's (`None` when the loop ran none).
    pub ratio: Option<f64>,
}

/// One phase's own results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "lowercase")]
pub enum PhaseResult {
    Mem(MemPhase),
    A(Box<ShellBaselineResult>),
    B(Box<ThpRaceResult>),
    Overhead(OverheadPhase),
    C(Box<ThpRaceResult>),
    Meets(MeetsPhase),
    Loops(LoopsPhase),
}

/// One phase: when it ran, and its result or why it has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_start_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_end_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<PhaseResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it did not run (out of time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// What `bench` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    pub phase_secs: u64,
    /// The phases that ran, in order.
    pub order: Vec<String>,
    pub phases: BTreeMap<String, PhaseRun>,
    pub phase_errors: u64,
    pub amplify: String,
    pub thp_args: String,
    pub baseline_args: String,
    pub module_path: PathBuf,
}
