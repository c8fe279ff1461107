//! `thp-race`'s and `shell-baseline`'s results (the same race, driven by
//! mmrace's parties or by seed 000's own shell script).

use super::{Counts, Measurement, Rates};
use crate::spec::amplify;
use crate::spec::thp_race::RacerOp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which parties ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    pub writer: bool,
    pub clear_refs: bool,
    pub migrate: bool,
    pub splitter: bool,
    pub racers: bool,
    pub refault: bool,
    pub kill: bool,
}

/// A mapping: its address (hex) and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionInfo {
    pub addr: String,
    pub bytes: usize,
}

/// thp-race's settings as the run resolved them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThpRaceSettings {
    pub seed: u64,
    pub parties: Parties,
    pub writer: RegionInfo,
    pub racer_region: Option<RegionInfo>,
    pub racer_threads: Option<usize>,
    pub racer_ops: Option<Vec<RacerOp>>,
    pub nodes: Option<[u32; 2]>,
    pub kill_ms: Option<[u64; 2]>,
    pub party_pause_us: u64,
    pub party_nice: i32,
    /// How the writer stored: stamped (checked by the data oracle) or memset.
    pub writer_mode: crate::spec::thp_race::WriterMode,
    /// The ranges the splitter writes to split_huge_pages.
    pub split_ranges: Vec<String>,
    pub page_size: usize,
    pub pmd_size: usize,
    pub thp_mode: Option<String>,
    pub amplify: Option<amplify::Spec>,
}

/// A driver-side party's failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyErrors {
    /// Failures while the writer was alive and well.
    pub errors: u64,
    /// Failures because the writer was being killed or restarted: expected.
    pub transient: u64,
    pub first_error: Option<String>,
}

/// The writer's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterLife {
    pub generations: u64,
    pub kills: u64,
    pub unexpected_exits: u64,
    pub first_unexpected_exit: Option<String>,
}

/// What `thp-race` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThpRaceResult {
    pub settings: ThpRaceSettings,
    pub elapsed_ms: u64,
    /// Operations per party over the run.
    pub ops: Counts,
    pub rates: Rates,
    /// Failures of the driver-side parties that ran.
    pub parties: BTreeMap<String, PartyErrors>,
    pub writer: WriterLife,
    pub migrate_pages_not_moved: u64,
    /// The racers' diagnostic counts (rounds without a THP, remap fallbacks...).
    pub racer_diag: Counts,
    /// The data oracle over the run (writer passes and racer rounds).
    /// (Absent in results of drivers older than the data oracle.)
    #[serde(default)]
    pub data_oracle: crate::oracle::DataSummary,
    pub first_pmd_race_ms: Option<u64>,
    pub first_thp_split_failed_ms: Option<u64>,
    /// mmrace.ko's `inject/points` at the end of an amplified run.
    pub inject_points: Option<String>,
    #[serde(flatten)]
    pub measurement: Measurement,
}

/// shell-baseline's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellBaselineSettings {
    pub seed: u64,
    /// The shell's $RANDOM seed (the run's seed modulo 32768).
    pub shell_random_seed: u64,
    pub script: PathBuf,
    pub shell: PathBuf,
    pub writer: PathBuf,
    pub nodes: [u32; 2],
    pub parties: Parties,
    pub split_range: String,
    pub thp_mode: Option<String>,
}

/// What `shell-baseline` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShellBaselineResult {
    pub settings: ShellBaselineSettings,
    pub elapsed_ms: u64,
    pub ops: Counts,
    pub rates: Rates,
    /// How the script ended.
    pub script_exit: String,
    /// Whether it had to be SIGKILLed after the grace period.
    pub script_killed: bool,
    pub script_stderr_lines: u64,
    /// Up to 10 distinct stderr lines with their counts.
    pub script_stderr: Counts,
    pub first_pmd_race_ms: Option<u64>,
    pub first_thp_split_failed_ms: Option<u64>,
    #[serde(flatten)]
    pub measurement: Measurement,
}
