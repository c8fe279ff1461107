//! `selftests-mm`'s options, and the kernel selftests it runs: the programs
//! of tools/testing/selftests/mm that touch THP, migration, soft-dirty and
//! splitting, with the arguments run_vmtests.sh gives them.

use crate::results::suite::{KtapResult, Status};
use serde::{Deserialize, Serialize};

/// Where the host's scripts put the built selftests in the guest
/// (scripts/prepare.sh prepare_selftests).
pub const GUEST_DIR: &str = "/selftests/mm";

/// kselftest's exit code for "skipped" (KSFT_SKIP).
pub const KSFT_SKIP: i32 = 4;

/// What a test does with the XFS directory (run_vmtests.sh's
/// `SPLIT_HUGE_PAGE_TEST_XFS_PATH`), which exists when the host attached
/// an XFS disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Xfs {
    /// Not used.
    No,
    /// Appended to the arguments when there is one (more cases run).
    Optional,
    /// Needed: without it the test is skipped, as run_vmtests.sh does.
    Required,
}

/// One run of one program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Test {
    /// The program, a make target of tools/testing/selftests/mm.
    pub binary: &'static str,
    pub args: &'static [&'static str],
    pub xfs: Xfs,
}

impl Test {
    /// `khugepaged -s 2`: how run_vmtests.sh names it.
    pub fn name(&self) -> String {
        std::iter::once(self.binary)
            .chain(self.args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

const fn t(binary: &'static str, args: &'static [&'static str], xfs: Xfs) -> Test {
    Test { binary, args, xfs }
}

/// The runs, in run_vmtests.sh's order (categories soft_dirty, thp,
/// migration). transhuge-stress's `-d` comes from `--stress-secs`.
pub const TESTS: &[Test] = &[
    t("soft-dirty", &[], Xfs::No),
    t("khugepaged", &[], Xfs::No),
    t("khugepaged", &["-s", "2"], Xfs::No),
    t("khugepaged", &["all:shmem"], Xfs::No),
    t("khugepaged", &["-s", "4", "all:shmem"], Xfs::No),
    t("khugepaged", &["-c", "4", "mthp_khugepaged:anon"], Xfs::No),
    t("khugepaged", &["all:file"], Xfs::Required),
    t("split_huge_page_test", &[], Xfs::Optional),
    t("transhuge-stress", &[], Xfs::No),
    t("folio_split_race_test", &[], Xfs::No),
    t("migration", &[], Xfs::No),
];

/// A failure a program can meet by racing the kernel's background work
/// itself, with nothing wrong in the kernel: when a failed run shows
/// [`KnownRace::sign`], the program is run once more and the report keeps
/// both runs ([`crate::results::suite::Rerun`]). Only these, by program and
/// sign: any other failure stands, since an intermittent failure is what
/// mmrace looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownRace {
    pub binary: &'static str,
    pub sign: Sign,
    pub why: &'static str,
}

/// How a failed run shows a known race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// A line of the output contains this.
    Line(&'static str),
    /// Every KTAP case that failed is this one.
    OnlyFailing(&'static str),
}

impl Sign {
    fn shown(&self, output: &[String], ktap: &[KtapResult]) -> bool {
        match self {
            Sign::Line(m) => output.iter().any(|l| l.contains(m)),
            Sign::OnlyFailing(case) => {
                let mut failed = ktap.iter().filter(|k| k.status == Status::Fail);
                let first = failed.next();
                first.is_some_and(|k| k.name == *case) && failed.all(|k| k.name == *case)
            }
        }
    }

    /// What the run showed, for the report.
    pub fn describe(&self) -> String {
        match self {
            Sign::Line(m) => format!("\"{m}\""),
            Sign::OnlyFailing(case) => format!("only {case} failed"),
        }
    }
}

/// khugepaged's test sets khugepaged to scan every 10 ms and leaves its
/// ranges MADV_HUGEPAGE: between its own faulting or paging out and its
/// next look at smaps, khugepaged may collapse the range (or fault the
/// swapped pages back in), which a slow (TCG) guest makes likely.
const KHUGEPAGED_OWN_RACE: &str = "the test's own race with khugepaged, which it set to \
     scan every 10 ms: the range was collapsed between the test's fault or \
     MADV_PAGEOUT and its look at smaps (collapse_max_ptes_swap in a slow guest)";

pub const KNOWN_RACES: &[KnownRace] = &[
    KnownRace {
        binary: "khugepaged",
        sign: Sign::Line("Unexpected huge page"),
        why: KHUGEPAGED_OWN_RACE,
    },
    KnownRace {
        binary: "khugepaged",
        sign: Sign::OnlyFailing("collapse_max_ptes_swap"),
        why: KHUGEPAGED_OWN_RACE,
    },
];

/// The known race a failed run of `t` shows, if any.
pub fn known_race(t: &Test, output: &[String], ktap: &[KtapResult]) -> Option<&'static KnownRace> {
    KNOWN_RACES
        .iter()
        .find(|k| k.binary == t.binary && k.sign.shown(output, ktap))
}

/// The programs to build: every binary of [`TESTS`], once.
pub fn binaries() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for t in TESTS {
        if !out.contains(&t.binary) {
            out.push(t.binary);
        }
    }
    out
}

fn known_binary(s: &str) -> Result<String, String> {
    match binaries().contains(&s) {
        true => Ok(s.to_string()),
        false => Err(format!("not one of {}", binaries().join(", "))),
    }
}

#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// Run only these programs (comma-separated binary names, e.g.
    /// soft-dirty,split_huge_page_test) [default: all].
    #[arg(long, value_name = "BINARY,...", value_delimiter = ',', value_parser = known_binary)]
    pub only: Vec<String>,
    /// Seconds transhuge-stress runs (run_vmtests.sh: 20).
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub stress_secs: u64,
    /// Lines of each program's output the report keeps (the last ones);
    /// the whole output goes to the wire channel.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub tail_lines: usize,
    /// The XFS directory for the tests that take one [default: the disk
    /// with serial mmrace-disk mounted at /mnt/xfs, when the host attached
    /// one; else none].
    #[arg(long, value_name = "DIR")]
    pub xfs_dir: Option<String>,
    /// khugepaged's scan interval (ms) while the programs run, restored
    /// after [default: the kernel's, 10000]. khugepaged's own test sets its
    /// own.
    #[arg(long, value_name = "MS")]
    pub khugepaged_scan_ms: Option<u64>,
}

crate::spec::clap_default!(Args);

impl Args {
    /// The arguments `t` gets after its program, as run_vmtests.sh gives
    /// them: transhuge-stress `-d` [`Args::stress_secs`], and the XFS
    /// directory for the tests that take one.
    pub fn args_of(&self, t: &Test, xfs_dir: Option<&str>) -> Vec<String> {
        let mut v: Vec<String> = t.args.iter().map(|s| s.to_string()).collect();
        if t.binary == "transhuge-stress" {
            v.extend(["-d".to_string(), self.stress_secs.to_string()]);
        }
        if let (Xfs::Optional | Xfs::Required, Some(dir)) = (t.xfs, xfs_dir) {
            v.push(dir.to_string());
        }
        v
    }

    /// The runs these options select, in order.
    pub fn selected(&self) -> Vec<Test> {
        TESTS
            .iter()
            .filter(|t| self.only.is_empty() || self.only.iter().any(|b| b == t.binary))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_selection() {
        assert_eq!(TESTS[2].name(), "khugepaged -s 2");
    }

    #[test]
    fn known_races() {
        let out = |l: &str| vec!["ok 1 a".to_string(), l.to_string()];
        let k = known_race(&TESTS[2], &out("# Unexpected huge page"), &[]);
        assert_eq!(k.map(|k| k.binary), Some("khugepaged"));
        assert!(known_race(&TESTS[2], &out("# Bail out!"), &[]).is_none());
        assert!(known_race(&TESTS[0], &out("Unexpected huge page"), &[]).is_none());
        let ktap = |lines: &[&str]| -> Vec<KtapResult> {
            lines
                .iter()
                .map(|l| KtapResult::parse(l).unwrap())
                .collect()
        };
        let only = ktap(&["ok 1 a", "not ok 2 collapse_max_ptes_swap"]);
        assert!(known_race(&TESTS[2], &[], &only).is_some());
        let more = ktap(&["not ok 1 a", "not ok 2 collapse_max_ptes_swap"]);
        assert!(known_race(&TESTS[2], &[], &more).is_none());
        assert!(known_race(&TESTS[2], &[], &ktap(&["ok 1 a"])).is_none());
        assert_eq!(binaries().len(), 6);
        let a = Args {
            only: vec!["soft-dirty".into(), "migration".into()],
            ..Args::default()
        };
        let names: Vec<_> = a.selected().iter().map(Test::name).collect();
        assert_eq!(names, ["soft-dirty", "migration"]);
        assert_eq!(Args::default().selected().len(), TESTS.len());
        assert!(known_binary("cow").is_err());
        let stress = TESTS
            .iter()
            .find(|t| t.binary == "transhuge-stress")
            .unwrap();
        assert_eq!(Args::default().args_of(stress, Some("/x")), ["-d", "20"]);
        let split = TESTS
            .iter()
            .find(|t| t.binary == "split_huge_page_test")
            .unwrap();
        assert_eq!(Args::default().args_of(split, Some("/x")), ["/x"]);
        assert!(Args::default().args_of(split, None).is_empty());
    }
}
