//! `hunt`, `hunt-run` and `hunt-report`.

use super::shared::{JobsArgs, MachineArgs};
use super::RunArgs;
use clap::Args;
use mmrace_proto::spec::KernelProfile;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct HuntArgs {
    /// The campaign directory: created, or resumed when it holds a
    /// campaign.json.
    #[arg(long, value_name = "DIR")]
    pub campaign: PathBuf,
    /// Hours to hunt in this session [default: until interrupted].
    #[arg(long, value_name = "H", value_parser = positive_hours)]
    pub hours: Option<f64>,
    /// Start no more than N exploring runs in this session (reruns of the
    /// findings still run).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_runs: Option<u64>,
    #[command(flatten)]
    jobs: JobsArgs,
    /// A scenario of the mix, as words ("thp-race --swarm", "oom-stall",
    /// "pairs"); repeat for more [default: thp-race --swarm].
    #[arg(long = "mix", value_name = "WORDS")]
    pub mix: Vec<String>,
    /// The kernels: a JSON list of {series, profile, variant, kernel,
    /// initrd} [default: --kernel and --initrd, with --kernel-series,
    /// --kernel-variant, --kernel-profile].
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Reruns of a new finding's run, for its reproduction probability and
    /// each minimisation step (0: neither).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub repro_runs: u32,
    /// The campaign's XFS image, given to every run whose scenario needs
    /// the disk (oom-stall, pairs; each run a private copy; pairs without
    /// it skips its XFS kinds and O_DIRECT op). `--oom-disk` is its old
    /// name.
    #[arg(long, value_name = "PATH", alias = "oom-disk")]
    pub disk_image: Option<PathBuf>,
    /// The runs' options (--seed is the campaign's seed, --duration each
    /// run's); no scenario here: they come from --mix.
    #[command(flatten)]
    pub run: RunArgs,
}

impl HuntArgs {
    pub fn jobs(&self) -> Option<usize> {
        self.jobs.get()
    }
}

#[derive(Args, Debug, Clone)]
pub struct HuntRunArgs {
    /// The mmrace tree: its scripts, kernel/variants, build/results.
    #[arg(long, value_name = "DIR")]
    pub mmrace_root: PathBuf,
    /// The campaign directory; an existing one resumes [default:
    /// build/results/hunt-<UTC time>].
    #[arg(long, value_name = "CAMPAIGN")]
    pub campaign: Option<PathBuf>,
    /// A kernel series; repeat for several [default: 7.3].
    #[arg(long = "series", value_name = "KERNEL_SERIES")]
    pub series: Vec<String>,
    /// A kernel profile; repeat for several [default: default].
    #[arg(long = "profile", value_enum, value_name = "KERNEL_PROFILE")]
    pub profiles: Vec<KernelProfile>,
    /// A kernel variant, `clean` the unpatched kernel; repeat for several
    /// [default: clean].
    #[arg(long = "variant", value_name = "HUNT_VARIANTS")]
    pub variants: Vec<String>,
    /// A scenario of the mix, as words; repeat for more [default:
    /// "thp-race --swarm", "oom-stall", "pairs"].
    #[arg(long = "mix", value_name = "HUNT_MIX")]
    pub mix: Vec<String>,
    /// The campaign's XFS image (`--disk-image`), MiB.
    #[arg(long, value_name = "DISK_MIB", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub disk_mib: u64,
    #[arg(long, value_name = "HOURS", value_parser = positive_hours)]
    pub hours: Option<f64>,
    #[command(flatten)]
    pub jobs: JobsArgs,
    /// Seconds per run.
    #[arg(long, value_name = "DURATION", default_value_t = 60)]
    pub duration: u64,
    /// The campaign's seed [default: random, recorded].
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    #[arg(long, value_name = "REPRO_RUNS", default_value_t = 8)]
    pub repro_runs: u32,
    #[arg(long, value_name = "MAX_RUNS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_runs: Option<u64>,
    #[arg(long, value_name = "AFTER_FINDING")]
    pub after_finding: Option<u64>,
    #[command(flatten)]
    pub machine: MachineArgs,
}

fn positive_hours(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(h) if h > 0.0 && h.is_finite() => Ok(h),
        _ => Err(format!("{s:?} is not a positive number of hours")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct HuntReportArgs {
    /// The campaign directory.
    #[arg(long, value_name = "DIR")]
    pub campaign: PathBuf,
}
