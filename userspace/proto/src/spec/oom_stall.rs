//! `oom-stall`'s options.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// Block device with the XFS filesystem [default: the disk with serial
    /// mmrace-disk, which the host attaches].
    #[arg(long, value_name = "PATH", conflicts_with = "dir")]
    pub device: Option<PathBuf>,
    /// Use this directory on a mounted XFS filesystem instead of mounting a
    /// device (on a test machine).
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// Where the device is mounted.
    #[arg(long, value_name = "PATH", default_value = "/mnt/xfs")]
    pub mount_point: PathBuf,
    /// Stop after this many rounds that ended in an OOM kill, even before
    /// the duration is over (0: run until the duration ends).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub rounds: u32,
    /// Milliseconds the writers wait after opening the file (seed: 2 s).
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub writer_delay_ms: u64,
    /// Milliseconds the memory consumer waits before it unlinks the file and
    /// allocates (seed: 3 s).
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub consumer_delay_ms: u64,
    /// A writer that completes no write for this long while memory runs out
    /// (before the kill) is stuck.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub stuck_ms: u64,
    /// Milliseconds between two observations of a round.
    #[arg(long, value_name = "MS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_ms: u64,
    /// Seconds a round may go without an OOM kill before the driver kills
    /// the victim itself.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub round_timeout: u64,
    /// Seconds a killed victim may take to be gone; past that the victim is
    /// left alone and the run stops.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub exit_timeout: u64,
    /// kernel.hung_task_timeout_secs during the run, so a task blocked that
    /// long is a kernel report (a finding); 0 keeps the kernel's. Longer
    /// than a round's memory pressure lasts under TCG (up to a minute on a
    /// loaded host): with the lock dependency the victim's blocker thread
    /// sleeps on the inode lock for all of it, by design.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub hung_task_secs: u64,
    /// Do not build the seed's dependency (the victim's blocker thread
    /// waiting for an inode lock held by a task that waits for memory):
    /// then no victim needs the OOM reaper to exit.
    #[arg(long)]
    pub no_lock_dependency: bool,
    /// MiB the lock holder reads per read() (the memory it must allocate
    /// while it holds the inode lock).
    #[arg(long, value_name = "MIB", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub hold_mib: u64,
    /// Leave about this many MiB of the guest's available memory to the
    /// rounds and take the rest into the hugetlb pool for the run (a
    /// smaller machine: the OOM comes after filling that much); 0: off.
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    pub leave_mib: u64,
    /// The memory consumer fills its buffers with MADV_POPULATE_WRITE
    /// instead of the seed's read() of /dev/zero: the same pages, sooner.
    #[arg(long)]
    pub populate: bool,
    /// Each file writer calls fdatasync after this many records (0: never).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub fsync_every: u64,
    /// Leave the victim at oom_score_adj -1000: nothing is killable and the
    /// kernel panics "System is deadlocked on memory". Harness test only;
    /// refused outside the mmrace guest.
    #[arg(long)]
    pub unkillable: bool,
}

crate::spec::clap_default!(Args);
