//! The command line of a test machine. It builds the same
//! [`RunSpec`](mmrace_proto::spec::RunSpec) the host hands the guest, so a
//! run can be reproduced on either: with the same words, or with the spec
//! itself (`run-spec FILE`, e.g. the `spec` of a report.json).

use clap::{Parser, Subcommand};
use mmrace_proto::spec::{CrashTest, RunSpec, Scenario, DEFAULT_INTERVAL_MS};
use std::path::PathBuf;

/// The options are global so they may stand before or after the scenario
/// name (`--duration 3 smoke` and `smoke --duration 3` mean the same).
#[derive(Parser, Debug, Clone)]
#[command(
    name = "mmrace-driver",
    version,
    about = "mmrace's in-guest driver: runs an mm race scenario and streams mmrace.ko's counters",
    long_about = "mmrace's in-guest driver: runs an mm race scenario and streams mmrace.ko's \
counters. As PID 1 (the /init of the mmrace guest) it reads its run description from \
mmrace.spec=BASE64 on the kernel command line, loads /mmrace.ko, writes the protocol \
to /dev/hvc0 and powers off at the end."
)]
pub struct Cli {
    /// How long the scenario runs, in seconds.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECS")]
    pub duration: u64,

    /// Seed of the scenario's choices (default: from the clock; always printed).
    #[arg(long, global = true, value_name = "N")]
    pub seed: Option<u64>,

    /// Milliseconds between two counter snapshots.
    #[arg(long, global = true, default_value_t = DEFAULT_INTERVAL_MS, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,

    /// Load this mmrace.ko first (finit_module; already loaded is fine).
    /// Default as PID 1: /mmrace.ko.
    #[arg(long, global = true, value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// Write protocol lines here (default: /dev/hvc0 as PID 1, else stdout).
    #[arg(long, global = true, value_name = "PATH")]
    pub wire: Option<PathBuf>,

    /// Unload and reload mmrace.ko this many times while the scenario runs
    /// (module life cycle under load: probes must unregister cleanly); the
    /// scenario ends when they are done, --duration caps it. Needs --module
    /// (the default as PID 1). Counters restart at 0 on each reload, so the
    /// run's counter rates mean nothing with this option.
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub reload_module: u32,

    /// Crash the kernel on purpose once the module is loaded and the first
    /// snapshot is out: proves the host catches a crash.
    #[arg(long, global = true, value_enum, value_name = "HOW")]
    pub crash_test: Option<CrashTest>,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the scenario variant's size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    #[command(flatten)]
    Scenario(Scenario),
    /// Run the RunSpec in FILE (JSON: a report.json's `spec`, or the
    /// decoded `mmrace.spec` of a guest): the same run on this machine. The
    /// global options other than --module and --wire are ignored.
    RunSpec {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print mmrace.ko's counters once, with what each counts.
    Counters,
    /// Reset mmrace.ko's counters to zero.
    Reset,
}

impl Cli {
    /// The run these options describe (for a scenario command).
    pub fn spec(&self, scenario: &Scenario) -> RunSpec {
        RunSpec {
            interval_ms: self.interval_ms,
            reload_module: self.reload_module,
            crash_test: self.crash_test,
            ..RunSpec::new(scenario.clone(), self.seed_or_clock(), self.duration)
        }
    }

    /// The seed to use: the given one, or one from the clock.
    pub fn seed_or_clock(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            // Seconds and nanoseconds mixed, so two boots in the same second
            // still differ; kept below 2^53 so JSON readers keep it exact.
            (now.as_secs() ^ (u64::from(now.subsec_nanos()) << 20)) & ((1 << 53) - 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mmrace-driver").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let cli = parse(&["smoke"]).unwrap();
        assert_eq!(cli.duration, 30);
        assert_eq!(cli.seed, None);
        assert_eq!(cli.interval_ms, 1000);
        assert_eq!(cli.module, None);
        assert_eq!(cli.crash_test, None);
        assert!(matches!(cli.command, Command::Scenario(Scenario::Smoke(_))));
    }

    #[test]
    fn options_before_and_after_the_scenario() {
        for args in [
            &["--duration", "5", "--seed", "7", "smoke"][..],
            &["smoke", "--duration", "5", "--seed", "7"][..],
        ] {
            let cli = parse(args).unwrap();
            assert_eq!((cli.duration, cli.seed), (5, Some(7)), "{args:?}");
        }
    }

    #[test]
    fn all_global_options() {
        let cli = parse(&[
            "--interval-ms",
            "250",
            "--module",
            "/mmrace.ko",
            "--wire",
            "/dev/hvc1",
            "--crash-test",
            "sysrq",
            "smoke",
        ])
        .unwrap();
        assert_eq!(cli.interval_ms, 250);
        assert_eq!(cli.module.unwrap().to_str(), Some("/mmrace.ko"));
        assert_eq!(cli.wire.unwrap().to_str(), Some("/dev/hvc1"));
        assert_eq!(cli.crash_test, Some(CrashTest::Sysrq));
    }

    #[test]
    fn spec_from_options() {
        let cli = parse(&[
            "--seed",
            "4",
            "--duration",
            "9",
            "--crash-test",
            "hang",
            "smoke",
        ])
        .unwrap();
        let Command::Scenario(s) = &cli.command else {
            panic!()
        };
        let spec = cli.spec(s);
        assert_eq!(
            (spec.seed, spec.duration_s, spec.scenario.name()),
            (4, 9, "smoke")
        );
        assert_eq!(spec.crash_test, Some(CrashTest::Hang));
        assert!(matches!(
            parse(&["run-spec", "/tmp/x.json"]).unwrap().command,
            Command::RunSpec { .. }
        ));
    }

    #[test]
    fn utility_subcommands() {
        assert!(matches!(
            parse(&["counters"]).unwrap().command,
            Command::Counters
        ));
        assert!(matches!(parse(&["reset"]).unwrap().command, Command::Reset));
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for args in [
            &[][..],
            &["no-such-scenario"][..],
            &["--duration", "soon", "smoke"][..],
            &["--interval-ms", "0", "smoke"][..],
            &["--crash-test", "panic", "smoke"][..],
            &["smoke", "--no-such-option"][..],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}: {err}");
        }
    }

    #[test]
    fn clock_seed_is_json_safe_and_given_seed_wins() {
        let cli = parse(&["smoke"]).unwrap();
        assert!(cli.seed_or_clock() < (1 << 53));
        assert_eq!(parse(&["--seed", "9", "smoke"]).unwrap().seed_or_clock(), 9);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
