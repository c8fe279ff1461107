//! `matrix` and `matrix-run`.

use super::matrix_id;
use crate::vm::accel::AccelChoice;
use clap::Args;
use mmrace_proto::spec::KernelProfile;
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
    /// oom-stall, smoke, pairs or NAME=WORDS (scenario words joined by
    /// commas); repeat for each [default: shell-baseline thp-race
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
    /// Guests at once [default: what the host's CPUs and memory hold].
    #[arg(long, value_name = "JOBS", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    #[arg(long, value_name = "CPUS", default_value_t = 2)]
    pub cpus: u32,
    /// Guest memory, MiB (oom-stall's guests get 1024).
    #[arg(long, value_name = "MEM_MIB", default_value_t = 2048)]
    pub mem_mib: u64,
    /// oom-stall's and pairs' XFS image, MiB.
    #[arg(long, value_name = "DISK_MIB", default_value_t = 4096)]
    pub disk_mib: u64,
    /// A kernel series; repeat for several (a row per variant and series)
    /// [default: 7.3].
    #[arg(long = "series", value_name = "KERNEL_SERIES")]
    pub series: Vec<String>,
    /// The kernels' profile (KERNEL_PROFILE) [default: default].
    #[arg(long, value_enum, value_name = "KERNEL_PROFILE")]
    pub kernel_profile: Option<KernelProfile>,
    /// A kernel build of your own for the clean row (one series only).
    #[arg(long, value_name = "KDIR")]
    pub kdir: Option<PathBuf>,
    /// A kernel source tree of your own (one series only).
    #[arg(long, value_name = "KERNEL_SRC")]
    pub kernel_src: Option<PathBuf>,
    /// Only check the settings (each configuration as its batches will
    /// get it): exit 0, or 2 with the reason; nothing is built.
    #[arg(long)]
    pub check_only: bool,
}
