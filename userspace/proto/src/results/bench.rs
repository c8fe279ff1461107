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

/// The `meets` phase: thp-race with the meets probes enabled (E) and
/// disabled (D).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeetsPhase {
    pub segment_secs: u64,
    /// `E` and `D`, in the order the segments ran.
    pub order: Vec<String>,
    pub enabled: Segments,
    pub disabled: Segments,
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
