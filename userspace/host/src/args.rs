//! The command line, and the checks that turn bad values into a clear
//! message and exit code 2 before anything is started.

use crate::vm::accel::AccelChoice;
use clap::{Args, Parser, Subcommand};
use mmrace_proto::spec::{CrashTest, GuestSpec, KernelProfile, KernelSpec, RunSpec, Scenario};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Guests at once [default: what the host's CPUs and memory hold].
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
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
    /// The XFS image oom-stall runs get (each run a private copy).
    #[arg(long, value_name = "PATH")]
    pub oom_disk: Option<PathBuf>,
    /// The runs' options (--seed is the campaign's seed, --duration each
    /// run's); no scenario here: they come from --mix.
    #[command(flatten)]
    pub run: RunArgs,
}

impl HuntArgs {
    pub fn jobs(&self) -> Option<usize> {
        self.jobs.map(|j| j as usize)
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
    /// oom-stall's XFS image, MiB.
    #[arg(long, value_name = "DISK_MIB", default_value_t = 4096,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub disk_mib: u64,
    #[arg(long, value_name = "HOURS", value_parser = positive_hours)]
    pub hours: Option<f64>,
    #[arg(long, value_name = "JOBS", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
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
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<u32>,
    #[arg(long, value_name = "MEM_MIB")]
    pub mem_mib: Option<u64>,
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

#[derive(Args, Debug, Clone)]
pub struct VariantExpectArgs {
    /// kernel/variants/NAME.patch
    #[arg(value_name = "PATCH")]
    pub patch: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct NeedsDiskArgs {
    /// The scenario's name and options.
    #[arg(
        value_name = "SCENARIO",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub words: Vec<String>,
}

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
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    #[arg(long, value_name = "CPUS", default_value_t = 2)]
    pub cpus: u32,
    #[arg(long, value_name = "MEM_MIB", default_value_t = 2048)]
    pub mem_mib: u64,
    #[arg(long, value_enum, value_name = "KERNEL_PROFILE")]
    pub kernel_profile: Option<KernelProfile>,
    #[arg(long, value_name = "KERNEL_SERIES", default_value = "7.3")]
    pub kernel_series: String,
    /// A kernel build of your own for the clean boots.
    #[arg(long, value_name = "KDIR")]
    pub kdir: Option<PathBuf>,
    /// A kernel source tree of your own.
    #[arg(long, value_name = "KERNEL_SRC")]
    pub kernel_src: Option<PathBuf>,
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
pub struct BatchArgs {
    /// How many runs; run i gets seed `--seed` + i.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Guests at once [default: what the host's CPUs and memory hold, each
    /// guest needing --cpus host CPUs and --mem-mib plus 512 MiB].
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
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
        self.jobs.map(|j| j as usize)
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
    /// Guests at once.
    #[arg(long, value_name = "JOBS", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    #[arg(long, value_name = "CPUS", default_value_t = 2)]
    pub cpus: u32,
    #[arg(long, value_name = "MEM_MIB", default_value_t = 2048)]
    pub mem_mib: u64,
    #[arg(long, value_name = "NODE0_PCT", default_value_t = 50)]
    pub node0_pct: u32,
    /// KERNEL_SERIES, for the toolchain.
    #[arg(long, value_name = "KERNEL_SERIES", default_value = "7.3")]
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
    /// The scenario and its options (SCENARIO, then ARGS).
    #[arg(
        value_name = "SCENARIO",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub words: Vec<String>,
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(p),
        _ => Err(format!("{s:?} is not a probability between 0 and 1")),
    }
}

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

fn matrix_id(s: &str) -> Result<String, String> {
    if valid_run_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?}: letters, digits and ._-+ only"))
    }
}

#[derive(Args, Debug, Clone)]
pub struct BuildArgs {
    /// The mmrace tree: its scripts, kernel/variants, build/.
    #[arg(long, value_name = "DIR")]
    pub mmrace_root: PathBuf,
    #[arg(long, value_name = "KERNEL_SERIES", default_value = crate::fleet::settings::DEFAULT_SERIES)]
    pub series: String,
    /// A Rust-enabled kernel build of your own: only mmrace.ko and the
    /// initramfs are built.
    #[arg(long, value_name = "KDIR")]
    pub kdir: Option<PathBuf>,
    #[arg(long, value_name = "KERNEL_SRC")]
    pub kernel_src: Option<PathBuf>,
    #[arg(long, value_name = "KERNEL_VARIANT")]
    pub kernel_variant: Option<String>,
    #[arg(long, value_enum, value_name = "KERNEL_PROFILE")]
    pub kernel_profile: Option<KernelProfile>,
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
    /// A Rust-enabled kernel build of your own (one series only).
    #[arg(long, value_name = "KDIR")]
    pub kdir: Option<PathBuf>,
    /// A kernel source tree of your own (one series only).
    #[arg(long, value_name = "KERNEL_SRC")]
    pub kernel_src: Option<PathBuf>,
    /// A kernel/variants/ patch over the test kernel.
    #[arg(long, value_name = "KERNEL_VARIANT")]
    pub kernel_variant: Option<String>,
    #[arg(long, value_enum, value_name = "KERNEL_PROFILE")]
    pub kernel_profile: Option<KernelProfile>,
    /// SCENARIO=exec's program and its arguments ("PROGRAM ARG..."), a
    /// file on this machine packed into the initramfs.
    #[arg(long, value_name = "EXEC")]
    pub exec: Option<String>,
    /// Seeded runs (seeds SEED, SEED+1...), merged.
    #[arg(long, value_name = "RUNS", value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: Option<u32>,
    /// Guests at once [default: what the CPUs and memory hold].
    #[arg(long, value_name = "JOBS", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
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
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Guest CPUs [default: the scenario's].
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<u32>,
    #[arg(long, value_name = "MEM_MIB", default_value_t = 2048)]
    pub mem_mib: u64,
    #[arg(long, value_name = "NODE0_PCT", default_value_t = 50)]
    pub node0_pct: u32,
    /// Crash or hang the guest on purpose (the harness's own self-test).
    #[arg(long, value_enum, value_name = "CRASH_TEST")]
    pub crash_test: Option<CrashTest>,
    /// Where run directories go [default: build/results in the tree].
    #[arg(long, value_name = "RESULTS_DIR")]
    pub results_dir: Option<PathBuf>,
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// The scenario and its options (SCENARIO, then ARGS).
    #[arg(
        value_name = "SCENARIO",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    pub words: Vec<String>,
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

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// The run's report.json.
    pub report: PathBuf,
    /// The checks (see below).
    pub checks: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The kernel image (bzImage).
    #[arg(long, value_name = "PATH", required_unless_present = "check_only")]
    kernel: Option<PathBuf>,
    /// The initramfs holding the driver as /init.
    #[arg(long, value_name = "PATH", required_unless_present = "check_only")]
    initrd: Option<PathBuf>,
    /// Only check the options and the scenario words: build the run's spec
    /// as the run would, print it (JSON) and exit 0, or 2 with the reason.
    /// Nothing is booted; --kernel and --initrd may be left out (the
    /// scripts check the settings this way before building anything).
    #[arg(long)]
    pub check_only: bool,
    /// The scenario and its options, after every option of `run`
    /// (`... --seed 7 thp-race --no-splitter`). See `mmrace-driver help`.
    #[command(subcommand)]
    pub scenario: Option<Scenario>,
    /// Run this RunSpec (JSON, e.g. a report.json's `spec`) instead of a
    /// scenario named here. Options given here override its values.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Seed of the scenario's choices [default: random; always recorded].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Seconds the scenario runs [default: 30; caps exec (600) and
    /// selftests-mm (1800), which end when their programs do]; sizes the
    /// overall timeout.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Milliseconds between two counter snapshots [default: 1000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: Option<u64>,
    /// Unload and reload mmrace.ko this many times during the run.
    #[arg(long, value_name = "N")]
    pub reload_module: Option<u32>,
    /// Crash or hang the guest on purpose (proves the host catches it).
    #[arg(long, value_enum, value_name = "HOW")]
    pub crash_test: Option<CrashTest>,
    /// The kernel's series (KERNEL_SERIES), recorded in the spec.
    #[arg(long, value_name = "NAME")]
    pub kernel_series: Option<String>,
    /// The kernel variant (KERNEL_VARIANT), recorded in the spec.
    #[arg(long, value_name = "NAME")]
    pub kernel_variant: Option<String>,
    /// The kernel's sanitizer profile (KERNEL_PROFILE), recorded in the spec.
    #[arg(long, value_enum, value_name = "NAME")]
    pub kernel_profile: Option<KernelProfile>,
    /// Accelerator; auto tries KVM and falls back to TCG.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Guest CPUs, split evenly between the two NUMA nodes (even, >= 2)
    /// [default: 2; selftests-mm: 4].
    #[arg(long, value_name = "N")]
    pub cpus: Option<u32>,
    /// Guest memory in MiB, split between the two NUMA nodes [default: 2048].
    #[arg(long, value_name = "N")]
    pub mem_mib: Option<u64>,
    /// Node 0's share of the guest memory in percent (10..=90); node 1 gets
    /// the rest [default: 50].
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u32).range(10..=90))]
    pub node0_pct: Option<u32>,
    /// Extra raw disk image, attached as a virtio-blk device.
    #[arg(long, value_name = "PATH")]
    pub disk: Option<PathBuf>,
    /// Where run directories are created.
    #[arg(long, value_name = "DIR", default_value = "build/results")]
    pub results_dir: PathBuf,
    /// Name of this run's directory [default: UTC time, scenario and seed].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Seconds both console channels may stay silent before the run is a hang.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub hang_timeout: u64,
    /// Seconds the guest gets, once the verdict is decided (a kernel
    /// finding on the console, or an oracle's), to print the rest before
    /// QEMU is stopped.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub after_finding: u64,
    /// Seconds the guest may take to start the driver [default: 300 under
    /// TCG, 60 under KVM].
    #[arg(long, value_name = "SECS")]
    pub boot_timeout: Option<u64>,
    /// Extra kernel command line parameters.
    #[arg(long, value_name = "STRING", allow_hyphen_values = true)]
    pub extra_append: Option<String>,
    /// Do not echo the guest console to the terminal (console.log has it).
    #[arg(long)]
    pub quiet: bool,

    // For tests and unusual hosts; hidden from --help.
    /// The QEMU binary.
    #[arg(long, hide = true, default_value = "qemu-system-x86_64")]
    pub qemu_binary: String,
    /// The KVM device `auto` checks.
    #[arg(long, hide = true, default_value = "/dev/kvm")]
    pub kvm_device: PathBuf,
    /// Seconds KVM gets to reach the kernel banner before `auto` gives up on it.
    #[arg(long, hide = true, default_value_t = 30)]
    pub kvm_probe_timeout: u64,
    /// Seconds added to boot timeout + duration for the overall deadline.
    #[arg(long, hide = true, default_value_t = 120)]
    pub deadline_slack: u64,
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

/// Default boot timeouts: TCG boots a 2-node guest in well under a minute
/// on a loaded host; the margin is for much slower CI machines.
pub const BOOT_TIMEOUT_TCG: u64 = 300;
pub const BOOT_TIMEOUT_KVM: u64 = 60;

const MIN_MEM_MIB: u64 = 256;

/// A usage error: printed as is, exit code 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn need_file(what: &str, p: &Path) -> Result<(), UsageError> {
    if p.is_file() {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{what} {} is not a readable file",
            p.display()
        )))
    }
}

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

impl RunArgs {
    /// The run these options describe: `--spec`'s, or a new one for the
    /// scenario named here, with every option given here applied.
    /// `random_seed` is the seed when neither names one.
    pub fn run_spec(&self, random_seed: u64) -> Result<RunSpec, UsageError> {
        let mut spec = match (&self.spec, &self.scenario) {
            (Some(_), Some(s)) => {
                return Err(UsageError(format!(
                    "--spec and the scenario {} both name the run: give one",
                    s.name()
                )))
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| UsageError(format!("--spec {}: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(|e| {
                    UsageError(format!("--spec {}: not a RunSpec: {e}", path.display()))
                })?
            }
            (None, Some(scenario)) => {
                RunSpec::new(scenario.clone(), random_seed, scenario.default_duration_s())
            }
            (None, None) => {
                return Err(UsageError(format!(
                    "name a scenario ({}; e.g. `mmrace-host run ... smoke`) or give --spec FILE",
                    scenario_names().join(", ")
                )))
            }
        };
        let set = |field: &mut u64, v: Option<u64>| *field = v.unwrap_or(*field);
        set(&mut spec.seed, self.seed);
        set(&mut spec.duration_s, self.duration);
        set(&mut spec.interval_ms, self.interval_ms);
        spec.reload_module = self.reload_module.unwrap_or(spec.reload_module);
        spec.crash_test = self.crash_test.or(spec.crash_test);
        let k = &mut spec.kernel;
        *k = KernelSpec {
            series: self.kernel_series.clone().unwrap_or(k.series.clone()),
            variant: self.kernel_variant.clone().or(k.variant.clone()),
            profile: self.kernel_profile.or(k.profile),
        };
        let g = &mut spec.guest;
        *g = GuestSpec {
            cpus: self.cpus.unwrap_or(g.cpus),
            mem_mib: self.mem_mib.unwrap_or(g.mem_mib),
            node0_pct: self.node0_pct.unwrap_or(g.node0_pct),
        };
        validate_guest(&spec.guest)?;
        Ok(spec)
    }

    /// Checks every value that does not need QEMU to check.
    pub fn validate(&self) -> Result<(), UsageError> {
        let bad = |m: String| Err(UsageError(m));
        if self.hang_timeout == 0 {
            return bad("--hang-timeout must be at least 1 second".into());
        }
        if self.boot_timeout == Some(0) {
            return bad("--boot-timeout must be at least 1 second".into());
        }
        if self
            .extra_append
            .as_deref()
            .is_some_and(|e| e.contains('\n'))
        {
            return bad("--extra-append cannot contain newlines".into());
        }
        if let Some(id) = &self.run_id {
            if !valid_run_id(id) {
                return bad(format!(
                    "--run-id {id:?}: use letters, digits and ._-+ (and not 'latest')"
                ));
            }
        }
        for (flag, file) in [("--kernel", &self.kernel), ("--initrd", &self.initrd)] {
            match file {
                Some(f) => need_file(flag, f)?,
                None if self.check_only => {}
                None => return bad(format!("{flag} is needed")),
            }
        }
        if let Some(d) = &self.disk {
            need_file("--disk", d)?;
        }
        Ok(())
    }

    /// The kernel image (empty with `--check-only` and no `--kernel`).
    pub fn kernel(&self) -> &Path {
        self.kernel.as_deref().unwrap_or(Path::new(""))
    }

    /// The initramfs (empty with `--check-only` and no `--initrd`).
    pub fn initrd(&self) -> &Path {
        self.initrd.as_deref().unwrap_or(Path::new(""))
    }

    /// Points the run at another kernel image and initramfs (a campaign's
    /// target).
    pub fn set_images(&mut self, kernel: &Path, initrd: &Path) {
        self.kernel = Some(kernel.to_path_buf());
        self.initrd = Some(initrd.to_path_buf());
    }

    pub fn hang_timeout(&self) -> Duration {
        Duration::from_secs(self.hang_timeout)
    }

    pub fn boot_timeout_for(&self, accel: crate::vm::accel::Accel) -> u64 {
        self.boot_timeout.unwrap_or(match accel {
            crate::vm::accel::Accel::Kvm => BOOT_TIMEOUT_KVM,
            crate::vm::accel::Accel::Tcg => BOOT_TIMEOUT_TCG,
        })
    }

    /// The run id: the given one, or `YYYYmmdd-HHMMSS-<scenario>-s<seed>`.
    pub fn run_id_at(&self, spec: &RunSpec, unix_secs: u64) -> String {
        match &self.run_id {
            Some(id) => id.clone(),
            None => format!(
                "{}-{}-s{}",
                utc_stamp(unix_secs),
                spec.scenario.name(),
                spec.seed
            ),
        }
    }
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

/// The guest shape QEMU and the two-node layout can take.
fn validate_guest(g: &GuestSpec) -> Result<(), UsageError> {
    if g.cpus < 2 || !g.cpus.is_multiple_of(2) {
        return Err(UsageError(format!(
            "--cpus {}: need an even number >= 2 (half the CPUs go to each NUMA node)",
            g.cpus
        )));
    }
    if g.mem_mib < MIN_MEM_MIB || !g.mem_mib.is_multiple_of(2) {
        return Err(UsageError(format!(
            "--mem-mib {}: need an even number >= {MIN_MEM_MIB} (half goes to each NUMA node)",
            g.mem_mib
        )));
    }
    if !(10..=90).contains(&g.node0_pct) {
        return Err(UsageError(format!(
            "node0_pct {}: need 10..=90",
            g.node0_pct
        )));
    }
    Ok(())
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
        assert_eq!(a.accel, AccelChoice::Auto);
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
