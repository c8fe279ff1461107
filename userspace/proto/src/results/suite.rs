//! The typed results of the scenarios that run other programs (`exec`, and
//! `selftests-mm`'s kernel selftests): how each program ended, its output's
//! tail, the KTAP results it printed, and mmrace's counter deltas over it.
//! The driver sends a [`SuiteResult`] as its Result's `data`; the host reads
//! it back to judge the run (a failed program is a test failure, not a
//! kernel finding) and to nest the programs' KTAP in results.ktap.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Pass, skip or fail: of a program, or of one KTAP result it printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Skip,
    Fail,
}

/// One top-level KTAP/TAP result line a program printed
/// (`ok 3 name # SKIP why`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KtapResult {
    pub number: u32,
    pub name: String,
    pub status: Status,
    /// The directive's text after SKIP/XFAIL..., or a failure's comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl KtapResult {
    /// The result in `line`, if it is a top-level KTAP/TAP result line.
    /// `ok` is a pass, `ok ... # SKIP` a skip, `ok ... # XFAIL` (an
    /// expected failure, as kselftest counts it) a pass, `not ok` a fail.
    pub fn parse(line: &str) -> Option<KtapResult> {
        let line = line.trim_end();
        let (ok, rest) = if let Some(r) = line.strip_prefix("ok ") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("not ok ") {
            (false, r)
        } else {
            return None;
        };
        let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        let number = num.parse().ok()?;
        let (name, directive) = match rest.split_once('#') {
            Some((n, d)) => (n.trim(), d.trim()),
            None => (rest.trim(), ""),
        };
        let word = directive.split_whitespace().next().unwrap_or("");
        let after_word = directive[word.len()..].trim();
        let (status, reason) = match (ok, word.to_ascii_uppercase().as_str()) {
            (true, "SKIP") => (Status::Skip, after_word),
            (true, _) => (Status::Pass, directive),
            (false, _) => (Status::Fail, directive),
        };
        Some(KtapResult {
            number,
            name: name.to_string(),
            status,
            reason: reason.to_string(),
        })
    }
}

/// How a program ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Exit {
    /// It exited with this status.
    Code { code: i32 },
    /// A signal killed it (not mmrace's).
    Signal { signal: i32 },
    /// It was still running when the run's duration ended (or the run was
    /// stopped), and mmrace killed it (SIGTERM, then SIGKILL after a grace
    /// period).
    Killed { after_s: f64 },
    /// It could not be started.
    SpawnFailed { error: String },
    /// It was not run: the duration was over, or its prerequisite is missing.
    NotRun { why: String },
}

impl Exit {
    pub fn describe(&self) -> String {
        match self {
            Exit::Code { code } => format!("exit {code}"),
            Exit::Signal { signal } => format!("killed by signal {signal}"),
            Exit::Killed { after_s } => {
                format!("still running after {after_s:.0} s: killed at the end of the duration")
            }
            Exit::SpawnFailed { error } => format!("could not start: {error}"),
            Exit::NotRun { why } => format!("not run: {why}"),
        }
    }
}

/// One program's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramRun {
    /// The name in results.ktap (`khugepaged -s 2`).
    pub name: String,
    /// Exactly what was started (guest paths).
    pub argv: Vec<String>,
    pub exit: Exit,
    /// The verdict on the program, from its exit (and, for kselftests,
    /// KSFT_SKIP), never better than its own KTAP results say.
    pub status: Status,
    pub duration_s: f64,
    /// Lines of output (stdout and stderr merged), all on the wire channel.
    pub output_lines: u64,
    /// The last lines of output.
    pub output_tail: Vec<String>,
    /// The top-level KTAP results the program printed, if any.
    #[serde(default)]
    pub ktap: Vec<KtapResult>,
    /// How much each mmrace counter rose while it ran (only those that did).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// How much the kernel's own THP, migration and compaction events in
    /// /proc/vmstat ([`VMSTAT_PREFIXES`]) rose while it ran (only those that
    /// did): what else the kernel did meanwhile, khugepaged's collapses
    /// (`thp_collapse_alloc`) for one.
    #[serde(default)]
    pub vmstat: BTreeMap<String, u64>,
    /// Set when this is a second run, after the first failed by a known race
    /// of the test itself (`spec::selftests_mm::KNOWN_RACES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<Rerun>,
}

/// Why a program ran twice, and its first run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rerun {
    /// What the first run showed of a known race, and why it is the
    /// test's and not the kernel's.
    pub sign: String,
    pub why: String,
    pub first: Box<ProgramRun>,
}

/// The /proc/vmstat events kept for each program ([`ProgramRun::vmstat`]).
pub const VMSTAT_PREFIXES: &[&str] = &["thp_", "pgmigrate_", "compact_"];

/// Pass, skip and fail counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub pass: u32,
    pub skip: u32,
    pub fail: u32,
}

impl Tally {
    pub fn of(statuses: impl IntoIterator<Item = Status>) -> Tally {
        let mut t = Tally::default();
        for s in statuses {
            match s {
                Status::Pass => t.pass += 1,
                Status::Skip => t.skip += 1,
                Status::Fail => t.fail += 1,
            }
        }
        t
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pass, {} skip, {} fail",
            self.pass, self.skip, self.fail
        )
    }
}

/// `exec`'s and `selftests-mm`'s result: the programs, in the order run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteResult {
    pub programs: Vec<ProgramRun>,
    /// CPUs online in the guest (some selftests size themselves from it).
    pub cpus: u32,
    /// NUMA nodes online.
    pub nodes: Vec<u32>,
}

impl SuiteResult {
    /// The programs' own verdicts.
    pub fn programs_tally(&self) -> Tally {
        Tally::of(self.programs.iter().map(|p| p.status))
    }

    /// The KTAP results the programs printed, all together.
    pub fn cases_tally(&self) -> Tally {
        Tally::of(self.programs.iter().flat_map(|p| &p.ktap).map(|k| k.status))
    }

    /// The programs that failed.
    pub fn failed(&self) -> impl Iterator<Item = &ProgramRun> {
        self.programs.iter().filter(|p| p.status == Status::Fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(number: u32, name: &str, status: Status, reason: &str) -> Option<KtapResult> {
        Some(KtapResult {
            number,
            name: name.into(),
            status,
            reason: reason.into(),
        })
    }

    #[test]
    fn parses_kselftest_result_lines() {
        assert_eq!(
            KtapResult::parse("ok 1 Test soft-dirty bit on anonymous memory\n"),
            r(
                1,
                "Test soft-dirty bit on anonymous memory",
                Status::Pass,
                ""
            )
        );
        assert_eq!(
            KtapResult::parse("ok 4 # SKIP Unable to split huge page: no XFS"),
            r(4, "", Status::Skip, "Unable to split huge page: no XFS")
        );
        assert_eq!(
            KtapResult::parse("ok 5 split shmem # skip not supported"),
            r(5, "split shmem", Status::Skip, "not supported")
        );
        assert_eq!(
            KtapResult::parse("not ok 2 migration.shared_anon # exit=1"),
            r(2, "migration.shared_anon", Status::Fail, "exit=1")
        );
        assert_eq!(
            KtapResult::parse("ok 3 foo # XFAIL known"),
            r(3, "foo", Status::Pass, "XFAIL known")
        );
        for not in [
            "# ok 1 nested in a diagnostic",
            "    ok 1 a subtest",
            "1..19",
            "TAP version 13",
            "ok x bad number",
            "okay 1",
        ] {
            assert_eq!(KtapResult::parse(not), None, "{not}");
        }
    }

    #[test]
    fn tallies() {
        let t = Tally::of([Status::Pass, Status::Skip, Status::Pass, Status::Fail]);
        assert_eq!((t.pass, t.skip, t.fail), (2, 1, 1));
        assert_eq!(t.to_string(), "2 pass, 1 skip, 1 fail");
    }
}
