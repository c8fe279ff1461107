//! `bench`'s options: the phases of `make bench` in one boot.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// memcpy bandwidth and idle migrate_pages throughput.
    Mem,
    /// The shell baseline (seed 000's reproducer).
    A,
    /// thp-race, default parties.
    B,
    /// thp-race segments with mmrace.ko loaded and unloaded (probe overhead).
    Overhead,
    /// thp-race with --amplify.
    C,
    /// thp-race segments with mmrace.ko's meets probes disarmed, armed
    /// throughout, and sampled at the default duty: what meets cost.
    Meets,
    /// A few pairs, each as a minimal standalone two-thread loop and as
    /// `pairs --pair A,B --kind K`: pairs' rounds/s against the best case.
    Loops,
}

impl Phase {
    pub fn word(self) -> &'static str {
        match self {
            Phase::Mem => "mem",
            Phase::A => "a",
            Phase::B => "b",
            Phase::Overhead => "overhead",
            Phase::C => "c",
            Phase::Meets => "meets",
            Phase::Loops => "loops",
        }
    }
}

/// The bench phases in one boot.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// The phases, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "mem,a,b,overhead,c,loops",
        value_name = "LIST"
    )]
    pub phases: Vec<Phase>,

    /// Seconds each of a, b, overhead, c and loops runs.
    #[arg(long, default_value_t = 45, value_name = "SECS")]
    pub phase_secs: u64,

    /// L U U L rounds in `overhead` (4 segments each, of phase-secs /
    /// (4 x N)), and D E S S E D rounds in `meets` (6 segments each).
    #[arg(long, default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=16))]
    pub overhead_rounds: u64,

    /// Size of each memcpy buffer and of the idle migration region, MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub mem_mib: usize,

    /// Seconds of memcpy, and seconds of idle migration, in `mem`.
    #[arg(long, default_value_t = 3, value_name = "SECS")]
    pub mem_secs: u64,

    /// thp-race options for b, overhead and c, as one string
    /// (`--thp-args "--racer-ops dontneed"`).
    #[arg(
        long,
        value_name = "OPTIONS",
        allow_hyphen_values = true,
        default_value = ""
    )]
    pub thp_args: String,

    /// shell-baseline options for a, as one string.
    #[arg(
        long,
        value_name = "OPTIONS",
        allow_hyphen_values = true,
        default_value = ""
    )]
    pub baseline_args: String,

    /// The amplification c asks thp-race for (its --amplify value).
    #[arg(long, default_value = "delay_us=1000,every_nth=1", value_name = "SPEC")]
    pub amplify: String,

    /// mmrace.ko, unloaded and loaded again in `overhead`.
    #[arg(long, default_value = crate::spec::MODULE_IN_INITRAMFS, value_name = "PATH")]
    pub module_path: PathBuf,
}

crate::spec::clap_default!(Args);
