//! The options of many runs: `batch`, `export-lava`, `merge`, `series`.

use super::shared::JobsArgs;
use super::RunArgs;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// How many runs; run i gets seed `--seed` + i.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    // Each guest needs --cpus host CPUs and --mem-mib plus 512 MiB.
    #[command(flatten)]
    jobs: JobsArgs,
    /// Start no new run once K runs caught something (runs already going
    /// finish); the runs not started are not an error.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    stop_after_catches: Option<u32>,
    /// Only a finding whose title matches this pattern (regex) is a catch
    /// (and counts for --stop-after-catches); others are listed as other
    /// findings.
    #[arg(long, value_name = "REGEX", value_parser = crate::judge::expect::Expect::parse)]
    pub expect: Option<crate::judge::expect::Expect>,
    /// The runs' options; --run-id names the batch's directory.
    #[command(flatten)]
    pub run: RunArgs,
}

impl BatchArgs {
    pub fn runs(&self) -> usize {
        self.runs as usize
    }

    pub fn jobs(&self) -> Option<usize> {
        self.jobs.get()
    }

    pub fn stop_after_catches(&self) -> Option<usize> {
        self.stop_after_catches.map(|k| k as usize)
    }
}

#[derive(Args, Debug, Clone)]
pub struct ExportLavaArgs {
    /// Jobs to write, one per seed: `--seed`, `--seed` + 1...
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Where the lab serves the kernel and initramfs (`URL/<file name>`)
    /// [default: file:// URLs of the local files].
    #[arg(long, value_name = "URL")]
    pub artifact_url: Option<String>,
    /// Directory for job-s<SEED>.yaml and device-qemu-local.yaml.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The runs' options (--accel tcg sets the job's `no_kvm`).
    #[command(flatten)]
    pub run: RunArgs,
}

impl ExportLavaArgs {
    pub fn runs(&self) -> usize {
        self.runs as usize
    }
}

#[derive(Args, Debug, Clone)]
pub struct SeriesArgs {
    /// The directory holding a directory per series.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The series, in the order to show [default: every directory in DIR,
    /// by name].
    #[arg(value_name = "SERIES")]
    pub series: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// report.json files, LAVA job logs (lava.log, output.yaml), run
    /// directories, or directories holding them (searched three levels
    /// deep).
    #[arg(required = true, value_name = "PATH")]
    pub sources: Vec<PathBuf>,
    /// Write merged.json, results.ktap and summary.txt here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print merged.json instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Only a finding whose title matches this pattern (regex) is a catch;
    /// others are listed as other findings.
    #[arg(long, value_name = "REGEX", value_parser = crate::judge::expect::Expect::parse)]
    pub expect: Option<crate::judge::expect::Expect>,
}
