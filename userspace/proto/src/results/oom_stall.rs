//! `oom-stall`'s results: a round per victim process, the run's totals,
//! and mmrace.ko's direct-reclaim latency per task class.

use super::Counts;
use crate::crosscheck::CrossCheck;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `oom-stall` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OomStallResult {
    pub fs: FsInfo,
    pub mem_total_kib: u64,
    pub nodes: Vec<u32>,
    pub plan: Plan,
    /// The data oracle over the run (the file records of every round).
    /// (Absent in results of drivers older than the data oracle.)
    #[serde(default)]
    pub data_oracle: crate::oracle::DataSummary,
    pub rounds: Vec<RoundResult>,
    pub summary: Summary,
    /// mmrace counter deltas over the run.
    pub counters: Counts,
    /// /proc/vmstat deltas of the keys the scenario is about.
    pub vmstat: Counts,
    /// /sys/fs/xfs/stats/stats deltas.
    pub xfs: Counts,
    pub reclaim_latency: ReclaimLatency,
    pub crosscheck: Vec<CrossCheck>,
    pub crosscheck_ok: bool,
}

/// The filesystem the writers write to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsInfo {
    pub dir: PathBuf,
    pub device: Option<PathBuf>,
    pub block_stat: PathBuf,
}

/// The run's timing settings, as used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub writer_delay_ms: u64,
    pub consumer_delay_ms: u64,
    pub stuck_ms: u64,
    pub poll_ms: u64,
    pub oom_rounds_wanted: u32,
    pub hung_task_secs: u64,
    pub unkillable: bool,
    /// The seed's dependency: a blocker thread of the victim waits for an
    /// inode lock that a -1000 task holds while it waits for memory.
    pub lock_dependency: bool,
    /// MiB the lock holder reads (allocates) per read().
    pub hold_mib: u64,
    /// fdatasync every this many records per writer (0: never).
    pub fsync_every: u64,
    /// `--leave-mib` (0: off) and the MiB the hugetlb pool took for it.
    #[serde(default)]
    pub leave_mib: u64,
    #[serde(default)]
    pub reserved_mib: u64,
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The OOM killer killed the victim: the expected end.
    OomKill,
    /// The victim died of SIGKILL but /proc/vmstat oom_kill did not move.
    KilledOther,
    /// The victim exited by itself (a setup failure in the child).
    Exited,
    /// No OOM kill within the round timeout; the driver killed the victim.
    NoOom,
    /// The run's duration ended first; the driver killed the victim.
    Stopped,
    /// Killed, but not gone within the exit timeout: the run stops there.
    NotGone,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::OomKill => "oom-kill",
            Outcome::KilledOther => "killed-other",
            Outcome::Exited => "exited",
            Outcome::NoOom => "no-oom",
            Outcome::Stopped => "stopped",
            Outcome::NotGone => "not-gone",
        }
    }
}

/// A finished round: one row of the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    pub round: u32,
    pub outcome: Outcome,
    /// Round length: fork until gone (or until the driver gave up).
    pub duration_ms: u64,
    /// Fork until the consumer began reading /dev/zero.
    pub pressure_ms: Option<u64>,
    /// Fork until the OOM kill was seen.
    pub kill_ms: Option<u64>,
    /// Consumer's read start until the OOM kill.
    pub pressure_to_kill_ms: Option<u64>,
    /// OOM kill until the victim was gone: exit plus OOM reaper latency.
    pub kill_to_gone_ms: Option<u64>,
    /// The OOM reaper finished a pass over the victim's mm this round.
    pub reaped: bool,
    /// OOM kill until the reaper's pass was seen (`oom_reaper_reaped`).
    pub kill_to_reap_ms: Option<u64>,
    /// That pass until the lock holder next completed a read: how long
    /// the lock's holder still waited for memory after the reaper freed it.
    pub reap_to_holder_ms: Option<u64>,
    /// At the kill: whether the holder was inside its read (holding the
    /// lock), and the blocker thread's state (`D`: the dependency formed).
    pub holder_in_read_at_kill: Option<bool>,
    pub blocker_state_at_kill: Option<char>,
    /// The data oracle's check of the round's file (None: not checked).
    pub records: Option<RecordCheck>,
    /// Bytes the writers' write() calls completed, whole round.
    pub written_bytes: u64,
    /// ...of which inside the OOM window.
    pub written_window_bytes: u64,
    /// Bytes the block device wrote, whole round.
    pub disk_bytes: u64,
    /// ...of which inside the OOM window.
    pub disk_window_bytes: u64,
    /// Longest time a writer went without a completed write inside the OOM
    /// window, before the kill.
    pub writer_gap_ms: u64,
    /// `writer_gap_ms >= stuck_ms`.
    pub stuck: bool,
    /// Buffer bytes the consumer got from realloc doubling.
    pub buffer_bytes: u64,
    /// Failed write() calls (errno in `writer_errno`).
    pub writer_errors: u64,
    pub writer_errno: i32,
    /// How the victim ended, as waitpid told it.
    pub exit: String,
}

/// What the data oracle's check of one round's file found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    /// Whole records in the file.
    pub records: u64,
    /// Per writer: write() calls that returned success.
    pub counted: [u64; 2],
    /// Per writer: its records found in order.
    pub found: [u64; 2],
    /// Per writer: records fdatasync made durable.
    pub synced: [u64; 2],
    /// Records that were not what they should be (or missing).
    pub mismatches: u64,
    /// Bytes after the last whole record (a write cut off by the kill).
    pub tail_bytes: u64,
}

/// Run totals over the rounds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub rounds: usize,
    pub oom_kills: usize,
    pub stuck_rounds: usize,
    pub not_gone: usize,
    /// Over the OOM-kill rounds: median and longest fork-to-kill time.
    pub kill_ms_median: Option<u64>,
    pub kill_ms_max: Option<u64>,
    /// Over the OOM-kill rounds: median and longest kill-to-gone time.
    pub kill_to_gone_ms_median: Option<u64>,
    pub kill_to_gone_ms_max: Option<u64>,
    pub written_bytes: u64,
    pub written_window_bytes: u64,
    pub disk_bytes: u64,
    pub disk_window_bytes: u64,
}

/// mmrace.ko's `reclaim_latency`: per task class, direct reclaim calls,
/// their total and longest time, and a log2 histogram of microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReclaimLatency {
    pub classes: BTreeMap<String, ReclaimClass>,
    /// Calls the module could not time.
    pub missed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReclaimClass {
    pub calls: u64,
    pub sum_us: u64,
    /// The longest call since the module was loaded (or reset): a maximum
    /// has no delta.
    pub max_us: u64,
    /// `buckets[0]`: calls under 1 us; `buckets[b]`: `2^(b-1) <= us < 2^b`;
    /// the last bucket is open-ended.
    pub buckets: Vec<u64>,
}

impl ReclaimClass {
    pub fn mean_us(&self) -> Option<u64> {
        self.sum_us.checked_div(self.calls)
    }

    /// An upper bound of the `q` quantile (0..=1): the upper edge of the
    /// bucket that holds it (`None` for no calls, `u64::MAX` for the open
    /// last bucket).
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(if b + 1 == self.buckets.len() {
                    u64::MAX
                } else {
                    1u64 << b
                });
            }
        }
        None
    }
}
