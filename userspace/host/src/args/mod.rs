//! The command line, and the checks that turn bad values into a clear
//! message and exit code 2 before anything is started: [`Cli`] and its
//! [`Command`]s here, each subcommand's options in a part of its own.

mod bisect;
mod build;
mod hunt;
mod inspect;
mod many;
mod matrix;
mod run;
mod shared;

pub use bisect::{BisectPlanArgs, BisectReportArgs, BisectRunArgs};
pub use build::{BenchRunArgs, BenchSummaryArgs, BuildArgs, QemuRunArgs};
pub use hunt::{HuntArgs, HuntReportArgs, HuntRunArgs};
pub use inspect::{CheckArgs, CoverageArgs, JudgeArgs, NeedsDiskArgs, VariantExpectArgs};
pub use many::{BatchArgs, ExportLavaArgs, MergeArgs, SeriesArgs};
pub use matrix::{MatrixArgs, MatrixRunArgs};
pub use run::{RunArgs, BOOT_TIMEOUT_KVM, BOOT_TIMEOUT_TCG};
pub use shared::{JobsArgs, MachineArgs, OwnKernelArgs, ScenarioWords};

use clap::{Parser, Subcommand};
use mmrace_proto::spec::Scenario;

#[derive(Parser, Debug)]
#[command(
    name = "mmrace-host",
    version,
    about = "Boots the mmrace test kernel in QEMU, watches the guest, judges the run",
    after_help = "Exit codes: 0 clean, 1 kernel problem or hang (in any run of a batch), 2 harness or usage error, 3 a program run by exec or selftests-mm failed, 125 (series) a kernel series did not build."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Boot the guest, run a scenario, write the results and judge the run.
    Run(Box<RunArgs>),
    /// Run the guest RUNS times with seeds SEED, SEED+1..., JOBS at once,
    /// and merge the results (see `merge`).
    Batch(Box<BatchArgs>),
    /// Re-judge an existing console log (from a run or a real machine's
    /// serial console) with the same rules as `run`.
    Judge(JudgeArgs),
    /// Assert things about a run's report.json (exit 1 if any check fails).
    #[command(after_help = crate::out::check::HELP)]
    Check(CheckArgs),
    /// Pair coverage of runs' report.json: module-op pairs met once and 10
    /// times, catalogue pairs met 10 times (pairs' catalogue, also for
    /// other scenarios), pairs' own figure; --by-kind adds the meets per
    /// memory kind and module operation, summed over the runs.
    Coverage(CoverageArgs),
    /// Print the tools/testing/selftests/mm programs selftests-mm runs, one
    /// a line (for scripts/build-selftests.sh).
    #[command(hide = true)]
    SelftestsMmBinaries,
    /// Exit 0 if the scenario (SCENARIO [OPTION...], as SCENARIO and ARGS
    /// give it) needs the XFS disk attached, 1 if not, 2 if the words are
    /// not a scenario (for scripts/qemu-run.sh).
    #[command(hide = true)]
    NeedsDisk(NeedsDiskArgs),
    /// Write LAVA job definitions for a run or a batch of seeds (and a
    /// device dictionary to run them here with lava-run).
    ExportLava(Box<ExportLavaArgs>),
    /// Runs per commit for a race-aware bisection, from BAD's batch
    /// (prints RUNS=<n>; `bisect-run` plans the same way).
    BisectPlan(BisectPlanArgs),
    /// The table and confidence of a race-aware bisection directory.
    BisectReport(BisectReportArgs),
    /// Run a race-aware bisection (`make bisect`): BAD's catch probability,
    /// then git bisect with that many runs per commit, then the report.
    /// Exit 0 a first bad commit was named, 1 none, 2 a harness or usage
    /// error (BAD never caught included).
    BisectRun(Box<BisectRunArgs>),
    /// The detection matrix of `make matrix`: table, goal, matrix.json and
    /// an SVG heat map from DIR/<variant>/<config>/merged.json.
    Matrix(MatrixArgs),
    /// Run the detection matrix (`make matrix`): build each row's kernel,
    /// run each cell's batch into build/results/matrix-ID/, then the
    /// table (as `matrix`). Exit 0 once it is complete, 2 a harness or
    /// usage error, 125 a single series' own kernel did not build.
    MatrixRun(Box<MatrixRunArgs>),
    /// Build what is missing for one kernel (the toolchain, the static
    /// driver, the kernel, mmrace.ko and the initramfs) and print, a line
    /// each, its build directory, bzImage, mmrace.ko and initramfs (for
    /// scripts/test.sh). Exit 2 a harness or usage error, 125 the kernel
    /// or mmrace.ko did not build.
    Build(BuildArgs),
    /// Build what is missing and run one scenario (`./mmrace run`, `make
    /// qemu-run`): once, RUNS seeded runs, or RUNS runs on each of several
    /// series side by side. Every setting is checked before anything is
    /// built. Exit: the run's verdict (0, 1, 2, 3), 125 the kernel or
    /// mmrace.ko did not build; with several series, as `series`.
    QemuRun(Box<QemuRunArgs>),
    /// Batches of the same runs on several kernel series side by side
    /// (`RUNS` with a list in `KERNEL_SERIES`): reads DIR/<series>/ (a
    /// batch's merged.json, or a `not-built` mark), writes series.json,
    /// results.ktap and summary.txt into DIR. Exit 1 if any run of any
    /// series caught something, else 3 (a test program failed), else 2 (a
    /// harness error), else 125 (a series did not build), else 0.
    Series(SeriesArgs),
    /// Merge the report.json files of many runs (a batch, runs copied from
    /// other machines, a lab's result directories) into one result: the
    /// catch probability with its 95 % interval, times to catch and to the
    /// first race, counters, KTAP with one subtest per run.
    Merge(MergeArgs),
    /// Hunt for new findings: runs drawn from a mix of scenarios and
    /// kernels for --hours (or until interrupted), deduplicated by
    /// signature; each new finding is rerun, minimised and gets a
    /// reproducer. A campaign directory resumes where it stopped.
    Hunt(Box<HuntArgs>),
    /// Build the campaign's kernels and hunt (`make hunt`, `./mmrace
    /// hunt`): every setting checked first, then each kernel of
    /// KERNEL_SERIES x KERNEL_PROFILE x HUNT_VARIANTS built (one that does
    /// not build is left out), then `hunt` on them. Exit as `hunt`.
    HuntRun(Box<HuntRunArgs>),
    /// Write a hunt campaign's report again (report.html,
    /// campaign-report.json) from its campaign.json and run reports,
    /// without running anything: for a campaign still running or one an
    /// older mmrace wrote.
    HuntReport(HuntReportArgs),
    /// Print the `Expect:` title pattern of a kernel variant patch's header
    /// (exit 2 without one).
    #[command(hide = true)]
    VariantExpect(VariantExpectArgs),
    /// Run `make bench` (`./mmrace bench`): every setting checked first,
    /// then the clean kernel's bench boots (one per seed), the race-only
    /// variant's three boots, and the summary (as `bench-summary`). Exit
    /// 0 every clean run clean, 1 not, 2 a harness error, 125 not built.
    BenchRun(Box<BenchRunArgs>),
    /// The summary of a `make bench` directory: prints the table, writes
    /// bench.json and pmd_race.svg there (exit 1 if a run or phase failed).
    BenchSummary(BenchSummaryArgs),
}

fn matrix_id(s: &str) -> Result<String, String> {
    if valid_run_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?}: letters, digits and ._-+ only"))
    }
}

/// A usage error: printed as is, exit code 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Whether `id` can name a directory under the results dir (and is not the
/// `latest` link).
fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id != "latest"
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
}

/// The scenario names, as the command line takes them.
pub fn scenario_names() -> Vec<String> {
    use clap::Subcommand;
    Scenario::augment_subcommands(clap::Command::new("scenario"))
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The commands whose subcommand is the scenario.
const SCENARIO_COMMANDS: [&str; 3] = ["run", "batch", "export-lava"];

/// What to add to clap's `error` for a command line whose first word is
/// `command`: the valid scenario names when the error is an unknown
/// scenario.
pub fn error_note(error: &clap::Error, command: Option<&str>) -> Option<String> {
    (error.kind() == clap::error::ErrorKind::InvalidSubcommand
        && command.is_some_and(|c| SCENARIO_COMMANDS.contains(&c)))
    .then(|| format!("the scenarios: {}", scenario_names().join(", ")))
}

/// `YYYYmmdd-HHMMSS` in UTC, from the Unix time (no calendar crate needed:
/// the civil-from-days algorithm of Howard Hinnant).
pub fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::accel::AccelChoice;
    use mmrace_proto::spec::{GuestSpec, RunSpec};
    use std::path::Path;

    /// Parses `run` with valid kernel and initrd, then `words` (options of
    /// `run`, then the scenario and its options).
    fn parse(words: &[&str]) -> RunArgs {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let mut argv = vec!["mmrace-host", "run"];
        for flag in ["--kernel", "--initrd"] {
            if !words.contains(&flag) {
                argv.extend([flag, exe]);
            }
        }
        match Cli::try_parse_from(argv.iter().chain(words))
            .unwrap()
            .command
        {
            Command::Run(r) => *r,
            _ => unreachable!(),
        }
    }

    fn spec(words: &[&str]) -> Result<RunSpec, UsageError> {
        parse(words).run_spec(99)
    }

    #[test]
    fn defaults_validate() {
        let a = parse(&["smoke"]);
        assert_eq!(a.hang_timeout, 120);
        assert_eq!(a.machine.accel, AccelChoice::Auto);
        assert_eq!(a.validate(), Ok(()));
        assert_eq!(a.boot_timeout_for(crate::vm::accel::Accel::Tcg), 300);
        let s = a.run_spec(99).unwrap();
        assert_eq!((s.seed, s.duration_s), (99, 30));
        assert_eq!(s.guest, GuestSpec::default());
    }

    #[test]
    fn options_and_scenario_words_make_the_spec() {
        let s = spec(&[
            "--seed",
            "7",
            "--duration",
            "5",
            "--cpus",
            "4",
            "--kernel-variant",
            "v",
            "thp-race",
            "--no-splitter",
            "--amplify",
            "delay_us=10,every_nth=2",
        ])
        .unwrap();
        assert_eq!((s.seed, s.duration_s, s.guest.cpus), (7, 5, 4));
        assert_eq!(s.kernel.variant.as_deref(), Some("v"));
        let Scenario::ThpRace(t) = &s.scenario else {
            panic!("{s:?}")
        };
        assert!(t.no_splitter);
        assert_eq!(
            t.amplify.as_ref().unwrap().to_string(),
            "delay_us=10,every_nth=2"
        );
    }

    #[test]
    fn scenario_defaults_for_guest_and_duration() {
        let s = spec(&["selftests-mm", "--only", "soft-dirty"]).unwrap();
        assert_eq!((s.guest.cpus, s.duration_s), (4, 1800));
        let s = spec(&["--cpus", "2", "--duration", "60", "selftests-mm"]).unwrap();
        assert_eq!((s.guest.cpus, s.duration_s), (2, 60));
        let s = spec(&["exec", "/exec/t", "-v"]).unwrap();
        assert_eq!((s.guest.cpus, s.duration_s), (2, 600));
    }

    #[test]
    fn spec_file_with_overrides() {
        let dir = std::env::temp_dir().join(format!("mmrace-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("spec.json");
        let base = RunSpec::new(Scenario::Smoke(Default::default()), 3, 8);
        std::fs::write(&file, serde_json::to_string(&base).unwrap()).unwrap();
        let f = file.to_str().unwrap();
        assert_eq!(spec(&["--spec", f]).unwrap(), base);
        let s = spec(&["--spec", f, "--seed", "4"]).unwrap();
        assert_eq!((s.seed, s.duration_s), (4, 8));
        std::fs::write(&file, "{}").unwrap();
        assert!(spec(&["--spec", f])
            .unwrap_err()
            .0
            .contains("not a RunSpec"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_bad_values() {
        for (words, needle) in [
            (&["--cpus", "3", "smoke"][..], "--cpus 3"),
            (&["--cpus", "0", "smoke"][..], "--cpus 0"),
            (&["--mem-mib", "0", "smoke"][..], "--mem-mib 0"),
            (&["--mem-mib", "1025", "smoke"][..], "--mem-mib 1025"),
            (&[][..], "name a scenario"),
            (&["--spec", "x.json", "smoke"][..], "give one"),
        ] {
            let err = spec(words).unwrap_err();
            assert!(err.0.contains(needle), "{words:?}: {err}");
        }
        for (words, needle) in [
            (&["--hang-timeout", "0", "smoke"][..], "--hang-timeout"),
            (&["--boot-timeout", "0", "smoke"][..], "--boot-timeout"),
            (&["--run-id", "../x", "smoke"][..], "--run-id"),
            (&["--run-id", "latest", "smoke"][..], "--run-id"),
            (
                &["--kernel", "/nonexistent/bzImage", "smoke"][..],
                "--kernel /nonexistent/bzImage",
            ),
            (
                &["--initrd", "/nonexistent/initrd", "smoke"][..],
                "--initrd",
            ),
            (&["--disk", "/nonexistent/disk", "smoke"][..], "--disk"),
        ] {
            let err = parse(words).validate().unwrap_err();
            assert!(err.0.contains(needle), "{words:?}: {err}");
        }
    }

    #[test]
    fn clap_rejects_unknown_values_with_usage_code() {
        for argv in [
            &["mmrace-host", "run", "--accel", "xen"][..],
            &[
                "mmrace-host",
                "run",
                "--kernel",
                "k",
                "--initrd",
                "i",
                "smoke",
                "--bogus",
            ][..],
            &[
                "mmrace-host",
                "run",
                "--kernel",
                "k",
                "--initrd",
                "i",
                "no-such-scenario",
            ][..],
        ] {
            let err = Cli::try_parse_from(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}");
        }
    }

    fn try_cli(argv: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once(&"mmrace-host").chain(argv))
    }

    #[test]
    fn check_only_needs_no_kernel_and_builds_the_spec() {
        let Command::Run(a) = try_cli(&["run", "--check-only", "--seed", "3", "thp-race"])
            .unwrap()
            .command
        else {
            unreachable!()
        };
        assert!(a.check_only);
        assert_eq!(a.validate(), Ok(()));
        assert_eq!(a.kernel(), Path::new(""));
        assert_eq!(a.run_spec(1).unwrap().scenario.name(), "thp-race");
        // Given ones are still checked; without --check-only they are needed.
        let a = parse(&["--check-only", "--kernel", "/nonexistent/bz", "smoke"]);
        assert!(a
            .validate()
            .unwrap_err()
            .0
            .contains("--kernel /nonexistent/bz"));
        let e = try_cli(&["run", "--initrd", "i", "smoke"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        // batch: its own values too (--runs 1..).
        assert!(try_cli(&["batch", "--check-only", "--runs", "2", "smoke"]).is_ok());
        let e = try_cli(&["batch", "--check-only", "--runs", "0", "smoke"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn an_unknown_scenario_is_told_the_scenarios() {
        let names = scenario_names();
        for n in ["smoke", "thp-race", "oom-stall", "selftests-mm", "pairs"] {
            assert!(names.iter().any(|m| m == n), "{n} not in {names:?}");
        }
        for argv in [
            &["run", "--check-only", "bogus"][..],
            &["batch", "--check-only", "--runs", "1", "bogus"][..],
        ] {
            let e = try_cli(argv).unwrap_err();
            let note = error_note(&e, Some(argv[0])).unwrap();
            assert!(note.contains("smoke, thp-race"), "{note}");
        }
        let e = try_cli(&["bogus"]).unwrap_err();
        assert_eq!(error_note(&e, Some("bogus")), None);
        let e = try_cli(&["run", "--check-only", "smoke", "--bogus"]).unwrap_err();
        assert_eq!(error_note(&e, Some("run")), None);
        assert!(spec(&[]).unwrap_err().0.contains("smoke, thp-race"));
    }

    #[test]
    fn default_run_id_is_utc_scenario_seed() {
        let a = parse(&["--seed", "7", "thp-race"]);
        let s = a.run_spec(1).unwrap();
        // 2026-11-22 02:58:07 UTC
        assert_eq!(
            a.run_id_at(&s, 1_795_316_287),
            "20261122-025807-thp-race-s7"
        );
        assert_eq!(
            parse(&["--run-id", "mine", "smoke"]).run_id_at(&s, 0),
            "mine"
        );
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
    }
}
