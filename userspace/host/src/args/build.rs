//! The commands that build what they run: `build`, `qemu-run`,
//! `bench-run` (and `bench-summary`, its table).

use super::matrix_id;
use super::shared::{JobsArgs, MachineArgs, OwnKernelArgs, ScenarioWords};
use clap::Args;
use mmrace_proto::spec::CrashTest;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct BenchRunArgs {
    /// The mmrace tree: its scripts, kernel/variants, build/results.
    #[arg(long, value_name = "DIR")]
    pub mmrace_root: PathBuf,
    /// Results in build/results/bench-ID [default: UTC time].
    #[arg(long, value_name = "BENCH_ID", value_parser = matrix_id)]
    pub id: Option<String>,
    /// Seconds per phase.
    #[arg(long, value_name = "BENCH_DURATION", default_value_t = 45,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: u64,
    /// A seed: one boot of the clean kernel each; repeat for more
    /// [default: 1 2 3].
    #[arg(long = "seed", value_name = "BENCH_SEEDS")]
    pub seeds: Vec<u64>,
    /// The race-only variant's boots' cap, seconds.
    #[arg(long, value_name = "BENCH_VARIANT_CAP", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub variant_cap: u64,
    /// The race-only kernel variant of step 2.
    #[arg(
        long,
        value_name = "BENCH_VARIANT",
        default_value = "pmd-trust-unlocked-check"
    )]
    pub variant: String,
    /// Skip step 2 (BENCH_VARIANT set empty).
    #[arg(long)]
    pub no_variant: bool,
    /// The driver's --amplify value for (c).
    #[arg(
        long,
        value_name = "BENCH_AMPLIFY",
        default_value = "delay_us=1000,every_nth=1"
    )]
    pub amplify: String,
    /// Extra thp-race options for (b) and (c), as words.
    #[arg(
        long,
        value_name = "BENCH_THP_ARGS",
        default_value = "",
        allow_hyphen_values = true
    )]
    pub thp_args: String,
    #[command(flatten)]
    pub machine: MachineArgs,
    #[arg(long, value_name = "KERNEL_SERIES", default_value = crate::fleet::settings::DEFAULT_SERIES)]
    pub kernel_series: String,
    // A kernel of your own (KDIR: for the clean boots), the profile.
    #[command(flatten)]
    pub own: OwnKernelArgs,
}

#[derive(Args, Debug, Clone)]
pub struct BenchSummaryArgs {
    /// The bench directory (build/results/bench-ID): clean-s*/ and
    /// variant-{a,b,c}/ run directories.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The race-only kernel variant the variant-* runs booted.
    #[arg(long, default_value = "pmd-trust-unlocked-check")]
    pub variant: String,
    /// The variant runs' cap, seconds.
    #[arg(long, value_name = "SECS")]
    pub cap: Option<f64>,
}

#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The mmrace tree: its scripts, kernel/variants, build/.
    #[arg(long, value_name = "DIR")]
    pub mmrace_root: PathBuf,
    #[arg(long, value_name = "KERNEL_SERIES", default_value = crate::fleet::settings::DEFAULT_SERIES)]
    pub series: String,
    #[command(flatten)]
    pub own: OwnKernelArgs,
    /// A kernel/variants/ patch over the test kernel.
    #[arg(long, value_name = "KERNEL_VARIANT")]
    pub kernel_variant: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct QemuRunArgs {
    /// The mmrace tree: its scripts, kernel/variants, build/.
    #[arg(long, value_name = "DIR")]
    pub mmrace_root: PathBuf,
    /// A kernel series; repeat for several: RUNS runs on each, side by
    /// side [default: 7.3].
    #[arg(long = "series", value_name = "KERNEL_SERIES")]
    pub series: Vec<String>,
    #[command(flatten)]
    pub own: OwnKernelArgs,
    /// A kernel/variants/ patch over the test kernel.
    #[arg(long, value_name = "KERNEL_VARIANT")]
    pub kernel_variant: Option<String>,
    /// SCENARIO=exec's program and its arguments ("PROGRAM ARG..."), a
    /// file on this machine packed into the initramfs.
    #[arg(long, value_name = "EXEC")]
    pub exec: Option<String>,
    /// Seeded runs (seeds SEED, SEED+1...), merged.
    #[arg(long, value_name = "RUNS", value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: Option<u32>,
    #[command(flatten)]
    pub jobs: JobsArgs,
    /// The XFS image's size, MiB, for a scenario that needs a disk.
    #[arg(long, value_name = "DISK_MIB", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub disk_mib: u64,
    /// A raw disk image to attach instead of a fresh XFS image.
    #[arg(long, value_name = "QEMU_DISK")]
    pub disk: Option<PathBuf>,
    /// The (first) run's seed [default: random, always printed].
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// Seconds [default: the scenario's].
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<u64>,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Crash or hang the guest on purpose (the harness's own self-test).
    #[arg(long, value_enum, value_name = "CRASH_TEST")]
    pub crash_test: Option<CrashTest>,
    /// Where run directories go [default: build/results in the tree].
    #[arg(long, value_name = "RESULTS_DIR")]
    pub results_dir: Option<PathBuf>,
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub scenario: ScenarioWords,
}
