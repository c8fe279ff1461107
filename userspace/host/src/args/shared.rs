//! The option blocks several subcommands take alike, each declared once and
//! flattened (`#[command(flatten)]`) where it is used: the guest machine,
//! a kernel of your own, the number of guests at once, and the scenario's
//! words. A default that differs between commands is the run's (the
//! scenario's [`mmrace_proto::spec::GuestSpec`]), never a second literal.

use crate::vm::accel::AccelChoice;
use clap::{Args, ValueEnum as _};
use mmrace_proto::spec::KernelProfile;
use std::path::PathBuf;

/// The guest machine: what `run` gets, and what every command that starts
/// runs passes on to them.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct MachineArgs {
    /// Accelerator; auto tries KVM and falls back to TCG.
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Guest CPUs, split evenly between the two NUMA nodes (even, >= 2)
    /// [default: the scenario's: 2; selftests-mm: 4].
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<u32>,
    /// Guest memory in MiB, split between the two NUMA nodes [default:
    /// 2048].
    #[arg(long, value_name = "MEM_MIB")]
    pub mem_mib: Option<u64>,
    /// Node 0's share of the guest memory in percent (10..=90); node 1 gets
    /// the rest [default: 50].
    #[arg(long, value_name = "NODE0_PCT", value_parser = clap::value_parser!(u32).range(10..=90))]
    pub node0_pct: Option<u32>,
}

impl MachineArgs {
    /// The options a run gets for this machine: `--accel`, and each value
    /// given (the run's defaults stand for the others).
    pub fn words(&self) -> Vec<String> {
        let accel = self.accel.to_possible_value().expect("a value");
        let mut v = vec!["--accel".to_string(), accel.get_name().to_string()];
        let numbers = [
            ("--cpus", self.cpus.map(u64::from)),
            ("--mem-mib", self.mem_mib),
            ("--node0-pct", self.node0_pct.map(u64::from)),
        ];
        for (flag, n) in numbers {
            if let Some(n) = n {
                v.extend([flag.to_string(), n.to_string()]);
            }
        }
        v
    }
}

/// A kernel of your own instead of the series' test kernel, and the
/// kernels' sanitizer profile.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnKernelArgs {
    /// A Rust-enabled kernel build of your own: only mmrace.ko and the
    /// initramfs are built for it (one series only).
    #[arg(long, value_name = "KDIR")]
    pub kdir: Option<PathBuf>,
    /// A kernel source tree of your own (one series only).
    #[arg(long, value_name = "KERNEL_SRC")]
    pub kernel_src: Option<PathBuf>,
    /// The kernels' sanitizer profile (KERNEL_PROFILE) [default: default].
    #[arg(long, value_enum, value_name = "KERNEL_PROFILE")]
    pub kernel_profile: Option<KernelProfile>,
}

/// How many guests run at once.
#[derive(Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobsArgs {
    /// Guests at once [default: what the host's CPUs and memory hold].
    #[arg(long, value_name = "JOBS", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
}

impl JobsArgs {
    pub fn get(&self) -> Option<usize> {
        self.jobs.map(|j| j as usize)
    }
}

/// The scenario and its options, after every option of the command
/// (SCENARIO, then ARGS).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct ScenarioWords {
    /// The scenario and its options (SCENARIO, then ARGS).
    #[arg(
        value_name = "SCENARIO",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub words: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Outer {
        #[command(flatten)]
        machine: MachineArgs,
        #[command(flatten)]
        own: OwnKernelArgs,
        #[command(flatten)]
        jobs: JobsArgs,
        #[command(flatten)]
        scenario: ScenarioWords,
    }

    #[test]
    fn a_machine_passes_on_only_what_was_given() {
        let o = Outer::parse_from(["x", "smoke"]);
        assert_eq!(o.machine.words(), ["--accel", "auto"]);
        assert_eq!(
            (o.jobs.get(), o.own, o.scenario.words),
            (None, OwnKernelArgs::default(), vec!["smoke".to_string()])
        );
        let o = Outer::parse_from([
            "x",
            "--accel",
            "tcg",
            "--cpus",
            "4",
            "--node0-pct",
            "30",
            "--jobs",
            "2",
            "--kdir",
            "/k",
            "thp-race",
            "--no-splitter",
        ]);
        assert_eq!(
            o.machine.words(),
            ["--accel", "tcg", "--cpus", "4", "--node0-pct", "30"]
        );
        assert_eq!(
            (o.jobs.get(), o.own.kdir),
            (Some(2), Some(PathBuf::from("/k")))
        );
        assert_eq!(o.scenario.words, ["thp-race", "--no-splitter"]);
        assert!(Outer::try_parse_from(["x", "--node0-pct", "95", "smoke"]).is_err());
        assert!(Outer::try_parse_from(["x", "--jobs", "0", "smoke"]).is_err());
    }
}
