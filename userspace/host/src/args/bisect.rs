//! `bisect-plan`, `bisect-report` and `bisect-run`.

use super::shared::{JobsArgs, MachineArgs, ScenarioWords};
use clap::Args;
use mmrace_proto::spec::KernelProfile;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct BisectPlanArgs {
    /// BAD's batch directory (its merged.json).
    #[arg(value_name = "DIR")]
    pub estimate: PathBuf,
    /// The chance of passing a bad commit the runs must stay under.
    #[arg(long, value_name = "P", default_value_t = 0.01)]
    pub miss: f64,
    /// The title pattern of the finding to bisect [default: exactly the
    /// title BAD's runs caught most often].
    #[arg(long, value_name = "REGEX", value_parser = crate::judge::expect::Expect::parse)]
    pub expect: Option<crate::judge::expect::Expect>,
}

#[derive(Args, Debug, Clone)]
pub struct BisectReportArgs {
    /// The bisection directory (estimate/, steps/, first-bad).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct BisectRunArgs {
    /// The mmrace tree: its scripts, build/results.
    #[arg(long, value_name = "DIR")]
    pub mmrace_root: PathBuf,
    /// The kernel git tree to bisect (no local changes; its HEAD is
    /// restored at the end).
    #[arg(long, value_name = "KERNEL_SRC")]
    pub kernel_src: PathBuf,
    #[arg(long, value_name = "GOOD")]
    pub good: String,
    #[arg(long, value_name = "BAD")]
    pub bad: String,
    /// Seconds per run.
    #[arg(long, value_name = "DURATION", default_value_t = 30)]
    pub duration: u64,
    /// The first run's seed [default: random, logged].
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// Runs on BAD at most, for its catch probability.
    #[arg(long, value_name = "ESTIMATE_RUNS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub estimate_runs: u32,
    /// Catches on BAD that end its runs.
    #[arg(long, value_name = "ESTIMATE_CATCHES", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub estimate_catches: u32,
    /// The chance of passing a bad commit the runs per commit stay under.
    #[arg(long, value_name = "BISECT_MISS", default_value_t = 0.01, value_parser = probability)]
    pub miss: f64,
    /// The title pattern of the finding to bisect [default: exactly the
    /// title BAD's runs caught most often].
    #[arg(long, value_name = "EXPECT", value_parser = crate::judge::expect::Expect::parse)]
    pub expect: Option<crate::judge::expect::Expect>,
    #[command(flatten)]
    pub jobs: JobsArgs,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// KERNEL_SERIES, for the toolchain.
    #[arg(long, value_name = "KERNEL_SERIES", default_value = crate::fleet::settings::DEFAULT_SERIES)]
    pub kernel_series: String,
    /// A kernel variant patch applied over each commit.
    #[arg(long, value_name = "KERNEL_VARIANT")]
    pub kernel_variant: Option<String>,
    #[arg(long, value_enum, value_name = "KERNEL_PROFILE")]
    pub kernel_profile: Option<KernelProfile>,
    #[arg(long, value_name = "CRASH_TEST")]
    pub crash_test: Option<String>,
    /// A raw disk image the runs attach.
    #[arg(long, value_name = "QEMU_DISK")]
    pub disk: Option<PathBuf>,
    #[command(flatten)]
    pub scenario: ScenarioWords,
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err(format!("{s:?} is not a probability between 0 and 1")),
    }
}
