//! The run description: one [`RunSpec`] says everything a run is. The host
//! builds it once (from `make` variables or its own command line), hands it
//! to the guest as one kernel command-line parameter ([`CMDLINE_KEY`],
//! base64 of its JSON), the driver runs exactly that and echoes it in its
//! Hello, and report.json, the summary and KTAP take the run's identity from
//! it alone. On a test machine the driver builds the same type from its own
//! command line.
//!
//! Each scenario's options are a clap `Args` struct here, so the host can
//! check them before it boots anything, and serde, so they travel typed.

pub mod amplify;
pub mod bench;
pub mod exec;
pub mod meets_args;
pub mod oom_stall;
pub mod pairs;
pub mod selftests_mm;
pub mod shell_baseline;
pub mod smoke;
pub mod thp_race;
pub mod words;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// The kernel command-line parameter that carries the spec.
pub const CMDLINE_KEY: &str = "mmrace.spec";

/// Where the guest's initramfs keeps the module.
pub const MODULE_IN_INITRAMFS: &str = "/mmrace.ko";

/// Seconds a scenario runs when no duration is given (see
/// [`Scenario::default_duration_s`]).
pub const DEFAULT_DURATION_S: u64 = 30;

/// Default milliseconds between two counter snapshots.
pub const DEFAULT_INTERVAL_MS: u64 = 1000;

/// The scenario and its typed options. Serialized adjacently tagged:
/// `{"name": "thp-race", "options": {...}}`.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", content = "options", rename_all = "kebab-case")]
pub enum Scenario {
    /// Proves the module's counters move: a THP is faulted, split, soft-dirty
    /// cleared and migrated, and the matching counters must rise.
    Smoke(smoke::Args),
    /// Seed 000: THP writer vs clear_refs vs migrate_pages vs splitters.
    ThpRace(thp_race::Args),
    /// Seed 003: XFS file writers vs a memory consumer, OOM kill after OOM
    /// kill; times the kill, the victim's exit and direct reclaim.
    OomStall(oom_stall::Args),
    /// Seed 000's own reproducer under busybox sh (the baseline of `make bench`).
    ShellBaseline(shell_baseline::Args),
    /// `make bench`'s phases in one boot: memcpy/migrate limits, shell
    /// baseline, thp-race, probe overhead, thp-race amplified.
    Bench(bench::Args),
    /// Any program in the guest (`exec [OPTION...] PROGRAM [ARG...]`),
    /// under the counters and the console oracles; its exit status is a
    /// test result (scripts/qemu-run.sh packs `EXEC`'s program).
    Exec(exec::Args),
    /// The kernel's own THP, migration, soft-dirty and split selftests
    /// (tools/testing/selftests/mm), each under the counters.
    SelftestsMm(selftests_mm::Args),
    /// Every pair of mm operations on one fresh object per round (anon,
    /// shmem, memfd...), the object's data verified after every round.
    Pairs(pairs::Args),
}

impl Scenario {
    /// The name used on command lines and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Smoke(_) => "smoke",
            Scenario::ThpRace(_) => "thp-race",
            Scenario::OomStall(_) => "oom-stall",
            Scenario::ShellBaseline(_) => "shell-baseline",
            Scenario::Bench(_) => "bench",
            Scenario::Exec(_) => "exec",
            Scenario::SelftestsMm(_) => "selftests-mm",
            Scenario::Pairs(_) => "pairs",
        }
    }

    /// How the module counts meets during the run (`meets_enable`):
    /// thp-race and pairs as their `--no-meets` and `--meets-duty` say;
    /// bench's phases arm and disarm them themselves (off between them);
    /// the other scenarios have them armed the whole run.
    pub fn meets_plan(&self) -> crate::meets::MeetsPlan {
        use crate::meets::MeetsPlan;
        match self {
            Scenario::ThpRace(a) => a.meets.plan(),
            Scenario::Pairs(a) => a.meets.plan(),
            Scenario::Bench(_) => MeetsPlan::Off,
            _ => MeetsPlan::Always,
        }
    }

    /// Whether the module counts alias overlaps in this run (off only with
    /// `--meets-no-alias`).
    pub fn meets_alias(&self) -> bool {
        match self {
            Scenario::ThpRace(a) => !a.meets.meets_no_alias,
            Scenario::Pairs(a) => !a.meets.meets_no_alias,
            _ => true,
        }
    }

    /// The guest the scenario needs by default: `selftests-mm` gets 4 vCPUs
    /// (`migration` runs numa_num_task_cpus() - 2 threads and SKIPs on 2).
    pub fn default_guest(&self) -> GuestSpec {
        match self {
            Scenario::SelftestsMm(_) => GuestSpec {
                cpus: 4,
                ..GuestSpec::default()
            },
            _ => GuestSpec::default(),
        }
    }

    /// Whether the host must attach the XFS disk (scripts/make-xfs-disk.sh;
    /// the driver's `memenv::disk` finds it by serial): oom-stall's writers
    /// selftests-mm's file cases, pairs' O_DIRECT op and its XFS kinds use
    /// it.
    pub fn needs_disk(&self) -> bool {
        matches!(
            self,
            Scenario::OomStall(_) | Scenario::SelftestsMm(_) | Scenario::Pairs(_)
        )
    }

    /// Seconds the scenario runs when no duration is given. For the
    /// scenarios that run programs it is a cap: they end when the programs
    /// do.
    pub fn default_duration_s(&self) -> u64 {
        match self {
            Scenario::SelftestsMm(_) => 1800,
            Scenario::Exec(_) => 600,
            _ => DEFAULT_DURATION_S,
        }
    }

    /// Parses `NAME [OPTION...]` with the scenarios' own clap definitions,
    /// as the driver's command line would: the host uses it for `SCENARIO`
    /// and `ARGS`, so a bad option fails before anything boots.
    pub fn parse(words: &[String]) -> Result<Scenario, clap::Error> {
        #[derive(clap::Parser)]
        #[command(name = "mmrace", no_binary_name = true)]
        struct Words {
            #[command(subcommand)]
            scenario: Scenario,
        }
        <Words as clap::Parser>::try_parse_from(words).map(|w| w.scenario)
    }
}

/// A deliberate failure, to prove the host catches one.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrashTest {
    /// echo c > /proc/sysrq-trigger: a deterministic kernel crash.
    Sysrq,
    /// Go silent forever after the first snapshot: the host must call it a
    /// hang, kill QEMU and still report the last counters.
    Hang,
}

/// A test kernel profile (`KERNEL_PROFILE`): kernel/profiles/NAME.config
/// merged over kernel/mmrace.config by scripts/build-kernel.sh, or the base
/// fragment alone.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelProfile {
    /// kernel/mmrace.config alone.
    Default,
    /// Generic KASAN (outline) and KFENCE, built with clang.
    Kasan,
    /// KCSAN, the data race detector (C code only).
    Kcsan,
    /// PROVE_LOCKING (with PROVE_RCU), DEBUG_ATOMIC_SLEEP, hung tasks.
    Lockdep,
    /// DEBUG_PAGEALLOC, PAGE_OWNER, page poisoning, DEBUG_VM_PGTABLE.
    Pagealloc,
}

impl KernelProfile {
    /// The name KERNEL_PROFILE, `--kernel-profile` and report.json use.
    pub fn name(self) -> &'static str {
        match self {
            KernelProfile::Default => "default",
            KernelProfile::Kasan => "kasan",
            KernelProfile::Kcsan => "kcsan",
            KernelProfile::Lockdep => "lockdep",
            KernelProfile::Pagealloc => "pagealloc",
        }
    }

    /// Boot parameters the guest needs with this profile, before any the
    /// user adds. `kasan`: `no5lvl`. Under 5-level paging (TCG's `-cpu
    /// max` has LA57) `pgtable_l5_enabled()` is `X86_FEATURE_LA57`, and
    /// `identify_cpu()` clears the boot CPU's feature words before it
    /// reads them again: an interrupt in that window makes KASAN judge a
    /// direct-map address (ff11...) as outside the kernel's and report
    /// "wild-memory-access in __common_interrupt" at 0.003 s, before
    /// anything of mmrace runs. The decompressor picks the paging mode from
    /// the boot loader's command line only, so CONFIG_CMDLINE cannot carry
    /// it.
    pub fn boot_params(self) -> &'static str {
        match self {
            KernelProfile::Kasan => "no5lvl",
            _ => "",
        }
    }
}

impl std::fmt::Display for KernelProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which kernel the run boots, as built by scripts/build-kernel.sh. Recorded
/// for the reader of a report; the driver does not act on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KernelSpec {
    /// `KERNEL_SERIES` (7.3, 7.2...), `src` for a `KERNEL_SRC` tree, or
    /// empty for a `KDIR` of the user's.
    pub series: String,
    /// `KERNEL_VARIANT`: the patch under kernel/variants/, if any.
    pub variant: Option<String>,
    /// `KERNEL_PROFILE`: the sanitizer profile; None for a kernel of the
    /// user's own (or a run that did not say).
    pub profile: Option<KernelProfile>,
}

/// The guest's shape (the rest of the machine is qemu/mmrace-guest.cfg).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuestSpec {
    /// vCPUs, split evenly between the two NUMA nodes.
    pub cpus: u32,
    /// Memory in MiB.
    pub mem_mib: u64,
    /// Node 0's share of the memory in percent; node 1 gets the rest.
    pub node0_pct: u32,
}

impl Default for GuestSpec {
    fn default() -> Self {
        GuestSpec {
            cpus: 2,
            mem_mib: 2048,
            node0_pct: 50,
        }
    }
}

/// One run, whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub scenario: Scenario,
    /// Seeds every random choice of the scenario.
    pub seed: u64,
    /// Seconds the scenario runs.
    pub duration_s: u64,
    /// Milliseconds between two counter snapshots.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Unload and reload mmrace.ko this many times during the run.
    #[serde(default)]
    pub reload_module: u32,
    /// Crash or hang the guest on purpose (harness tests).
    #[serde(default)]
    pub crash_test: Option<CrashTest>,
    #[serde(default)]
    pub kernel: KernelSpec,
    #[serde(default)]
    pub guest: GuestSpec,
}

fn default_interval_ms() -> u64 {
    DEFAULT_INTERVAL_MS
}

impl RunSpec {
    /// A spec with the driver's defaults for everything but these.
    pub fn new(scenario: Scenario, seed: u64, duration_s: u64) -> RunSpec {
        RunSpec {
            seed,
            duration_s,
            interval_ms: DEFAULT_INTERVAL_MS,
            reload_module: 0,
            crash_test: None,
            kernel: KernelSpec::default(),
            guest: scenario.default_guest(),
            scenario,
        }
    }

    /// The value of [`CMDLINE_KEY`]: URL-safe base64 of the JSON, without
    /// padding, so it is one word the kernel passes through untouched.
    pub fn to_cmdline_value(&self) -> String {
        let json = serde_json::to_vec(self).expect("a RunSpec always serializes");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// The `mmrace.spec=...` parameter.
    pub fn to_cmdline_param(&self) -> String {
        format!("{CMDLINE_KEY}={}", self.to_cmdline_value())
    }

    /// Decodes [`RunSpec::to_cmdline_value`]'s output.
    pub fn from_cmdline_value(value: &str) -> Result<RunSpec, String> {
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.trim())
            .map_err(|e| format!("{CMDLINE_KEY} is not base64: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("{CMDLINE_KEY} is not a RunSpec: {e}"))
    }

    /// A short identity for logs and run ids: `thp-race seed 7, 30 s`.
    pub fn identity(&self) -> String {
        format!(
            "{} seed {}, {} s",
            self.scenario.name(),
            self.seed,
            self.duration_s
        )
    }
}

/// The value clap gives `T` with no arguments: every documented default.
pub fn clap_defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let cmd = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    let matches = cmd.get_matches_from(std::iter::empty::<String>());
    T::from_arg_matches(&matches).expect("every option of a scenario has a default")
}

/// `impl Default` for a scenario's `Args` from its clap defaults, so a spec
/// file may leave options out and the two never disagree.
macro_rules! clap_default {
    ($t:ty) => {
        impl Default for $t {
            fn default() -> Self {
                $crate::spec::clap_defaults()
            }
        }
    };
}
pub(crate) use clap_default;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_scenarios_need_the_disk() {
        let needs = |w: &[&str]| {
            let words: Vec<String> = w.iter().map(|s| s.to_string()).collect();
            Scenario::parse(&words).unwrap().needs_disk()
        };
        assert!(needs(&["oom-stall"]));
        assert!(needs(&["selftests-mm", "--only", "khugepaged"]));
        assert!(needs(&["pairs", "--kind", "xfs-shared"]));
        assert!(!needs(&["smoke"]));
        assert!(!needs(&["thp-race"]));
    }

    #[test]
    fn every_profile_fragment_is_a_kernel_profile_and_back() {
        use clap::ValueEnum;
        use std::collections::BTreeSet;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel/profiles");
        let fragments: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().to_string_lossy().into_owned();
                n.strip_suffix(".config").map(str::to_owned)
            })
            .collect();
        let named: BTreeSet<String> = KernelProfile::value_variants()
            .iter()
            .filter(|p| **p != KernelProfile::Default)
            .map(|p| p.name().to_owned())
            .collect();
        assert_eq!(fragments, named);
        for p in KernelProfile::value_variants() {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
            assert_eq!(p.to_possible_value().unwrap().get_name(), p.name());
        }
    }

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_scenario_words_like_the_driver() {
        let s = Scenario::parse(&words("thp-race --no-splitter --racer-ops dontneed")).unwrap();
        let Scenario::ThpRace(a) = &s else {
            panic!("{s:?}")
        };
        assert!(a.no_splitter);
        assert_eq!(a.racer_ops, [thp_race::RacerOp::Dontneed]);
        assert_eq!(s.name(), "thp-race");
        for bad in [
            "",
            "nope",
            "smoke --no-such-option",
            "thp-race --amplify delay_us=0",
        ] {
            assert!(Scenario::parse(&words(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn exec_takes_the_program_and_its_arguments_verbatim() {
        let s = Scenario::parse(&words("exec --tail-lines 5 /exec/t --duration 3 -x")).unwrap();
        let Scenario::Exec(a) = &s else {
            panic!("{s:?}")
        };
        assert_eq!(a.argv, ["/exec/t", "--duration", "3", "-x"]);
        assert_eq!((a.tail_lines, a.cwd.as_str()), (5, "/tmp"));
        assert!(Scenario::parse(&words("exec")).is_err());
        // scripts/prepare.sh's form: ARGS, then `--`, then EXEC's words.
        let s2 = Scenario::parse(&words("exec --tail-lines 5 -- /exec/t -x --y")).unwrap();
        let Scenario::Exec(a2) = &s2 else {
            panic!("{s2:?}")
        };
        assert_eq!(
            (a2.tail_lines, &a2.argv[..]),
            (5, &["/exec/t", "-x", "--y"].map(String::from)[..])
        );
        assert_eq!(s.default_guest(), GuestSpec::default());
        assert_eq!(s.default_duration_s(), 600);
    }

    #[test]
    fn selftests_get_four_cpus_and_a_long_cap() {
        let s = Scenario::parse(&words("selftests-mm --only soft-dirty,migration")).unwrap();
        let spec = RunSpec::new(s, 1, 10);
        assert_eq!(spec.guest.cpus, 4);
        assert_eq!(spec.scenario.default_duration_s(), 1800);
        assert!(Scenario::parse(&words("selftests-mm --only cow")).is_err());
    }

    #[test]
    fn defaults_equal_clap_defaults() {
        assert_eq!(
            Scenario::parse(&words("thp-race")).unwrap(),
            Scenario::ThpRace(thp_race::Args::default())
        );
        assert_eq!(
            Scenario::parse(&words("oom-stall")).unwrap(),
            Scenario::OomStall(oom_stall::Args::default())
        );
        assert_eq!(thp_race::Args::default().racer_ops.len(), 4);
    }

    #[test]
    fn cmdline_round_trip_is_one_word() {
        let mut spec = RunSpec::new(
            Scenario::parse(&words("thp-race --amplify delay_us=1000,every_nth=1")).unwrap(),
            7,
            30,
        );
        spec.crash_test = Some(CrashTest::Hang);
        spec.kernel.variant = Some("pmd-trust-unlocked-check".into());
        let param = spec.to_cmdline_param();
        assert!(param.starts_with("mmrace.spec="));
        assert!(!param.contains(char::is_whitespace) && !param.contains('"'));
        let back = RunSpec::from_cmdline_value(param.split_once('=').unwrap().1).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn every_default_spec_fits_the_kernel_command_line() {
        // x86's COMMAND_LINE_SIZE is 2048, and the rest of the line takes
        // about 300 bytes.
        for name in [
            "smoke",
            "thp-race",
            "oom-stall",
            "shell-baseline",
            "bench",
            "selftests-mm",
            "exec /exec/prog --flag arg",
        ] {
            let spec = RunSpec::new(Scenario::parse(&words(name)).unwrap(), u64::MAX >> 11, 3600);
            let n = spec.to_cmdline_param().len();
            assert!(n < 1500, "{name}: {n} bytes");
        }
    }

    #[test]
    fn spec_files_may_leave_defaults_out() {
        let spec: RunSpec = serde_json::from_str(
            r#"{"scenario": {"name": "thp-race", "options": {"no_kill": true}},
                "seed": 3, "duration_s": 10}"#,
        )
        .unwrap();
        let Scenario::ThpRace(a) = &spec.scenario else {
            panic!()
        };
        assert!(a.no_kill && !a.no_migrate);
        assert_eq!(a.writer_mib, 20);
        assert_eq!(spec.interval_ms, DEFAULT_INTERVAL_MS);
        assert_eq!(spec.guest, GuestSpec::default());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(RunSpec::from_cmdline_value("!!!").is_err());
        let bad = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"{\"seed\": 1}");
        assert!(RunSpec::from_cmdline_value(&bad).is_err());
        let typo = r#"{"scenario": {"name": "smoke", "options": {"no_migrat": true}},
                       "seed": 3, "duration_s": 10}"#;
        assert!(serde_json::from_str::<RunSpec>(typo).is_err());
    }
}
