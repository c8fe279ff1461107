//! `thp-race`'s and `shell-baseline`'s results (the same race, driven by
//! mmrace's parties or by seed 000's own shell script).

use super::{Counts, Measurement, Rates};
use crate::spec::amplify;
use crate::spec::thp_race::{Args, OffsetMode, RacerOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which parties ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    pub writer: bool,
    pub clear_refs: bool,
    pub migrate: bool,
    pub splitter: bool,
    pub racers: bool,
    pub refault: bool,
    pub kill: bool,
    /// thp-race's parties beyond the seed's (false in shell-baseline).
    #[serde(default)]
    pub proc_walk: bool,
    #[serde(default)]
    pub move_pages: bool,
    #[serde(default)]
    pub madvise: bool,
    #[serde(default)]
    pub churn: bool,
    #[serde(default)]
    pub fork: bool,
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
    /// Every option in force (after `--swarm`).
    pub options: Args,
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
    /// `--amplify`: the points armed and skipped, and mmrace.ko's
    /// `inject/points` at the end of the run.
    pub amplify: Option<super::inject::AmplifyReport>,
    /// The racers' measured windows and start offsets.
    pub offsets: Option<Offsets>,
    /// What `--swarm` resolved to.
    pub swarm: Option<SwarmChoice>,
    /// `--sequential`'s turn order and turns.
    pub sequential: Option<Sequential>,
    /// `--khugepaged-scan-ms`.
    pub khugepaged: Option<Khugepaged>,
    /// `--phase-ms`: the active parties of every phase.
    pub phases: Option<Vec<Phase>>,
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

/// A running mean and deviation, as LTP's fuzzy sync keeps them
/// (tst_fzsync_stat): exponential moving averages of the value and of its
/// absolute distance from the mean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub avg: f64,
    pub dev: f64,
}

impl Stat {
    /// The weight of a new sample (LTP's default avg_alpha).
    pub const ALPHA: f64 = 0.25;

    /// Folds in one sample; the first sample sets the mean.
    pub fn update(&mut self, x: f64, first: bool) {
        if first {
            *self = Stat { avg: x, dev: 0.0 };
            return;
        }
        self.avg += Self::ALPHA * (x - self.avg);
        self.dev += Self::ALPHA * ((x - self.avg).abs() - self.dev);
    }

    /// `dev / avg`, LTP's measure of whether the statistic has settled.
    pub fn dev_ratio(&self) -> f64 {
        if self.avg.abs() < 1.0 {
            0.0
        } else {
            (self.dev / self.avg).abs()
        }
    }
}

/// One racer round kind (a racer op, or `refault`) under `--offsets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OffsetKind {
    /// The round kind: a `--racer-ops` word or `refault`.
    pub kind: String,
    /// Completed rounds of this kind (all writer generations).
    pub rounds: u64,
    /// Of those, rounds that only measured (no delay yet: the statistics
    /// were settling).
    pub sampling_rounds: u64,
    /// The leader's operation (its syscalls), in ns.
    pub leader_ns: Stat,
    /// A follower's operation, in ns.
    pub follower_ns: Stat,
    /// Follower start minus leader start, in ns (delay included).
    pub start_skew_ns: Stat,
    /// The delay window the next round draws from: [-follower_ns.avg,
    /// +leader_ns.avg], times 1.1 as in LTP. Negative delays hold the
    /// leader back, positive ones a follower.
    pub delay_range_ns: [i64; 2],
    /// The smallest and largest delay applied so far.
    pub delay_min_ns: i64,
    pub delay_max_ns: i64,
    /// Rounds in which the leader, or a follower, was held back.
    pub leader_delayed: u64,
    pub follower_delayed: u64,
}

/// The racers' start offsets over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offsets {
    pub mode: OffsetMode,
    /// Nanoseconds per busy-loop iteration: calibrated against the clock
    /// at start, then from every measured delay.
    pub ns_per_loop: f64,
    /// Rounds a kind measures before its first delay.
    pub sampling: u64,
    pub kinds: Vec<OffsetKind>,
}

/// What `--swarm` resolved to for this seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmChoice {
    /// `thp-race` followed by these words replays the run without
    /// `--swarm` (with the same seed).
    pub words: Vec<String>,
    pub options: Args,
}

/// khugepaged's scan interval during the run (`--khugepaged-scan-ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Khugepaged {
    pub scan_sleep_ms: u64,
    /// What it was before (restored at the end).
    pub scan_sleep_ms_before: u64,
}

/// One `--phase-ms` phase: from `t_ms` after the start, only these
/// parties ran (besides the writer and the kills).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub t_ms: u64,
    pub active: Vec<String>,
}

/// The sequential mode's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequential {
    /// The parties in their turn order.
    pub order: Vec<String>,
    /// Turns taken (one operation each), all parties together.
    pub turns: u64,
}
