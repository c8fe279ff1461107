//! `matrix` and `matrix-run`.

use super::matrix_id;
use super::shared::{JobsArgs, MachineArgs, OwnKernelArgs};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct MatrixArgs {
    /// The matrix directory.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// A kernel series the matrix ran: its cells are under
    /// DIR/<series>/<variant>/<config>/, a row per variant and series.
    /// Repeat for each, in the order to show; without it, one series:
    /// DIR/<variant>/<config>/.
    #[arg(long = "series", value_name = "SERIES")]
    pub series: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct MatrixRunArgs {
    /// The mmrace tree: its scripts, kernel/variants, build/results.
    #[arg(long, value_name = "DIR")]
    pub mmrace_root: PathBuf,
    /// The matrix's name: results in build/results/matrix-ID [default: UTC
    /// time].
    #[arg(long, value_name = "MATRIX_ID", value_parser = matrix_id)]
    pub id: Option<String>,
    /// A row: `clean` or a kernel/variants/ patch's name; repeat for each
    /// [default: clean and every patch].
    #[arg(long = "variant", value_name = "MATRIX_VARIANTS")]
    pub variants: Vec<String>,
    /// A configuration: shell-baseline, thp-race, thp-race-amplified,
    /// oom-stall, smoke, pairs, best (each variant's patch's Best: line,
    /// as best-VARIANT) or NAME=WORDS (scenario words joined by commas);
    /// repeat for each [default: shell-baseline thp-race
    /// thp-race-amplified].
    #[arg(long = "config", value_name = "MATRIX_CONFIGS")]
    pub configs: Vec<String>,
    /// Seeded runs per cell.
    #[arg(long, value_name = "MATRIX_SEEDS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub seeds: u32,
    /// Each run's cap, seconds (a catch ends a run early).
    #[arg(long, value_name = "MATRIX_CAP", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub cap: u64,
    /// Seconds a guest gets after a finding that leaves it running, to
    /// print the rest of the report [default: run's, 20].
    #[arg(long, value_name = "AFTER_FINDING")]
    pub after_finding: Option<u64>,
    /// thp-race-amplified's --amplify.
    #[arg(
        long,
        value_name = "MATRIX_AMPLIFY",
        default_value = "delay_us=1000,every_nth=1"
    )]
    pub amplify: String,
    /// The first run's seed (run i: SEED + i).
    #[arg(long, value_name = "SEED", default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub jobs: JobsArgs,
    // The guests (oom-stall's get 1024 MiB of memory whatever MEM_MIB).
    #[command(flatten)]
    pub machine: MachineArgs,
    /// oom-stall's and pairs' XFS image, MiB.
    #[arg(long, value_name = "DISK_MIB", default_value_t = 4096)]
    pub disk_mib: u64,
    /// A kernel series; repeat for several (a row per variant and series)
    /// [default: 7.3].
    #[arg(long = "series", value_name = "KERNEL_SERIES")]
    pub series: Vec<String>,
    // A kernel of your own (KDIR: for the clean row), the profile.
    #[command(flatten)]
    pub own: OwnKernelArgs,
    /// Only check the settings (each configuration as its batches will
    /// get it): exit 0, or 2 with the reason; nothing is built.
    #[arg(long)]
    pub check_only: bool,
}
