//! The commands that read what runs left: `judge`, `check`, `coverage`, and the
//! scripts' helpers `needs-disk` and `variant-expect`.

use super::shared::ScenarioWords;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct VariantExpectArgs {
    /// kernel/variants/NAME.patch
    #[arg(value_name = "PATCH")]
    pub patch: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct NeedsDiskArgs {
    #[command(flatten)]
    pub scenario: ScenarioWords,
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// The run's report.json.
    pub report: PathBuf,
    /// The checks (see below).
    pub checks: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct CoverageArgs {
    /// Runs' report.json files.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Also print the meets per memory kind and module operation (a
    /// markdown table), summed over the runs.
    #[arg(long)]
    pub by_kind: bool,
}

#[derive(Args, Debug, Clone)]
pub struct JudgeArgs {
    /// The console log to judge.
    pub console_log: PathBuf,
    /// The driver's protocol log (wire.log) of the same run, if separate.
    #[arg(long, value_name = "PATH")]
    pub wire: Option<PathBuf>,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}
