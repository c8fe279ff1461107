//! One result from many runs: `mmrace-host merge DIR...` and the end of a
//! `RUNS=N` batch. It reads the runs' report.json files, wherever they were
//! written (a local batch, runs copied back from other machines, a lab's
//! result directories), and writes `merged.json`, `results.ktap` (one
//! subtest per run) and `summary.txt`.
//!
//! A race is a probability: the merged result is the catch probability with
//! its 95 % interval, how soon the runs caught it, and how soon they saw the
//! first race. A run that ended in a harness error says nothing about the
//! kernel, so it is listed but left out of the probability.

use crate::fleet::stats::{Proportion, Spread};
use crate::judge::catch::CatchTimes;
use crate::judge::expect::Expect;
use crate::judge::finding::{Finding, InRow};
use crate::judge::verdict::Verdict;
use crate::out::ktap;
use crate::out::report::Report;
use crate::vm::messages::snapshot_view;
use anyhow::{bail, Context};
use mmrace_proto::spec::RunSpec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const MERGED_JSON: &str = "merged.json";
pub const MERGED_KTAP: &str = "results.ktap";
pub const SUMMARY: &str = "summary.txt";

/// A LAVA job log, as `lava-run`'s stderr saved by the test, and as a
/// LAVA server serves it.
pub const LAVA_LOG: &str = "lava.log";
pub const LAVA_SERVER_LOG: &str = "output.yaml";

/// How deep `collect` looks for report.json under a directory: a batch
/// (`batch/run/report.json`) or a lab's job directory one level more.
const SEARCH_DEPTH: usize = 3;

/// One run as the merged result lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    /// The report it came from.
    pub report: String,
    pub scenario: String,
    pub seed: u64,
    /// The run's whole description (None for a log without the driver's
    /// Hello): `mmrace-host run --spec` replays it.
    pub spec: Option<RunSpec>,
    pub kernel: String,
    pub verdict: Verdict,
    pub exit_code: i32,
    /// What decided the verdict: `class`, `title`, `frame` and `signature`
    /// (null when clean; the last three absent for reports written before
    /// titles existed).
    #[serde(flatten)]
    pub found: InRow,
    /// It found something, but not what the batch expected (`--expect`):
    /// an other finding, not a catch.
    #[serde(default)]
    pub other: bool,
    pub reason: String,
    /// The console line that decided the verdict.
    pub finding: Option<String>,
    #[serde(flatten)]
    pub catch: CatchTimes,
    pub guest_elapsed_s: Option<f64>,
    pub host_wall_s: f64,
}

impl RunRow {
    /// The title of what decided the verdict.
    pub fn title(&self) -> Option<&str> {
        self.found.0.as_ref().and_then(Finding::title)
    }

    /// The run found something: a kernel problem, a hang, or a failed test
    /// program (`exec`, selftests-mm), and (with an expectation) the one
    /// expected.
    pub fn caught(&self) -> bool {
        self.found() && !self.other
    }

    /// The run found something, expected or not.
    pub fn found(&self) -> bool {
        matches!(
            self.verdict,
            Verdict::KernelProblem | Verdict::Hang | Verdict::TestFailed
        )
    }

    /// Marks the run an other finding when its title does not match.
    fn judge_against(&mut self, expect: Option<&Expect>) {
        self.other = match expect {
            Some(e) => self.found() && !self.title().is_some_and(|t| e.matches(t)),
            None => false,
        };
    }
}

/// Runs whose finding was not the expected one, by title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherFinding {
    /// Its class, title, frame and signature.
    #[serde(flatten)]
    pub finding: Finding,
    /// How many runs found it.
    pub runs: u32,
}

impl OtherFinding {
    pub fn title(&self) -> &str {
        &self.finding.identity.title
    }
}

/// One counter over the runs: its last streamed value in each run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterTotal {
    pub total: u64,
    pub median: f64,
    pub max: u64,
    /// Runs that streamed this counter.
    pub runs: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// The title pattern a finding must match to be a catch (`--expect`);
    /// None: any finding is one.
    #[serde(default)]
    pub expect: Option<String>,
    pub runs: Vec<RunRow>,
    pub caught: u32,
    pub missed: u32,
    pub harness_errors: u32,
    /// Caught among the runs that tested the kernel (caught + missed).
    pub catch_probability: Proportion,
    pub time_to_catch: Spread,
    pub time_to_first_race: Spread,
    pub counters: BTreeMap<String, CounterTotal>,
    /// Findings that did not match `expect`: never catches, counted as
    /// missed in the catch probability.
    #[serde(default)]
    pub other_findings: Vec<OtherFinding>,
    /// 1 if any run caught a kernel problem or hang, else 3 if a test
    /// program failed, else 2 if any run was a harness error, else 0.
    pub exit_code: i32,
    /// Scenarios, or kernels, when the runs did not all share one.
    pub warnings: Vec<String>,
    /// Runs of a batch that left no report: an error before the run could
    /// write one, or not started (interrupted). With nothing caught they
    /// make the result a harness error (exit 2): a missing run cannot hide
    /// behind a clean merge.
    #[serde(default)]
    pub unreported: Vec<String>,
}

impl Merged {
    /// `reports` in the order they should be listed; with `expect`, only a
    /// finding whose title matches it is a catch.
    pub fn from_reports(reports: &[(PathBuf, Report)], expect: Option<&Expect>) -> Merged {
        let runs: Vec<RunRow> = reports
            .iter()
            .map(|(path, r)| RunRow {
                run_id: r.meta.run_id.clone(),
                report: path.display().to_string(),
                scenario: r
                    .meta
                    .spec
                    .as_ref()
                    .map_or("unknown", |s| s.scenario.name())
                    .to_string(),
                seed: r.meta.spec.as_ref().map_or(0, |s| s.seed),
                spec: r.meta.spec.clone(),
                kernel: r.meta.kernel.clone(),
                verdict: r.verdict,
                exit_code: r.exit_code,
                found: InRow(r.found().cloned()),
                other: false,
                reason: r.reason.clone(),
                finding: r.finding.as_ref().map(|f| f.first_line().text.clone()),
                catch: r.catch,
                guest_elapsed_s: r.guest_elapsed_s,
                host_wall_s: r.host_wall_s,
            })
            .collect();
        let mut warnings = Vec::new();
        for (what, values) in [
            (
                "scenarios",
                runs.iter()
                    .map(|r| r.scenario.as_str())
                    .collect::<BTreeSet<_>>(),
            ),
            (
                "kernels",
                runs.iter()
                    .map(|r| r.kernel.as_str())
                    .collect::<BTreeSet<_>>(),
            ),
        ] {
            if values.len() > 1 {
                let list: Vec<_> = values.into_iter().collect();
                warnings.push(format!("the runs mix {what}: {}", list.join(", ")));
            }
        }
        let mut m = Merged {
            expect: None,
            runs,
            caught: 0,
            missed: 0,
            harness_errors: 0,
            catch_probability: Proportion::new(0, 0),
            time_to_catch: Spread::of([]),
            time_to_first_race: Spread::of([]),
            counters: counter_totals(reports.iter().map(|(_, r)| r)),
            other_findings: Vec::new(),
            exit_code: 0,
            warnings,
            unreported: Vec::new(),
        };
        m.recount(expect);
        m
    }

    /// Counts the runs again against `expect` (a bisection's title, read
    /// back from a batch merged without one).
    pub fn recount(&mut self, expect: Option<&Expect>) {
        self.expect = expect.map(|e| e.pattern().to_string());
        for r in &mut self.runs {
            r.judge_against(expect);
        }
        let runs = &self.runs;
        let count = |f: &dyn Fn(&RunRow) -> bool| runs.iter().filter(|r| f(r)).count() as u32;
        self.caught = count(&RunRow::caught);
        self.missed = count(&|r| r.verdict == Verdict::Clean || r.other);
        self.harness_errors = count(&|r| r.verdict == Verdict::HarnessError);
        let kernel =
            count(&|r| r.caught() && matches!(r.verdict, Verdict::KernelProblem | Verdict::Hang));
        self.exit_code = if kernel > 0 {
            1
        } else if self.caught > 0 {
            3
        } else if self.harness_errors > 0 || !self.unreported.is_empty() {
            2
        } else {
            0
        };
        self.catch_probability = Proportion::new(self.caught, self.caught + self.missed);
        let caught = || runs.iter().filter(|r| r.caught());
        self.time_to_catch = Spread::of(caught().filter_map(|r| r.catch.to_catch_s));
        self.time_to_first_race = Spread::of(runs.iter().filter_map(|r| r.catch.to_first_race_s));
        self.other_findings = other_findings(runs);
    }

    /// Records runs that left no report (see [`Merged::unreported`]).
    pub fn add_unreported(&mut self, what: impl IntoIterator<Item = String>) {
        self.unreported.extend(what);
        if !self.unreported.is_empty() && self.exit_code == 0 {
            self.exit_code = 2;
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("merged results always serialize");
        s.push('\n');
        s
    }

    /// The verdict line: what the batch says about the kernel.
    pub fn verdict_line(&self) -> String {
        let n = self.runs.len();
        match self.exit_code {
            1 => format!(
                "mmrace: verdict KERNEL PROBLEM: caught in {} of {n} runs (exit 1)",
                self.caught
            ),
            3 => format!(
                "mmrace: verdict TEST FAILED: a test program failed in {} of {n} runs (exit 3)",
                self.caught
            ),
            2 if !self.unreported.is_empty() => format!(
                "mmrace: verdict HARNESS ERROR: nothing caught, {} of {n} runs were harness errors, {} more left no report (exit 2)",
                self.harness_errors,
                self.unreported.len()
            ),
            2 => format!(
                "mmrace: verdict HARNESS ERROR: nothing caught, {} of {n} runs were harness errors (exit 2)",
                self.harness_errors
            ),
            _ if !self.other_findings.is_empty() => format!(
                "mmrace: verdict CLEAN for /{}/: not caught in {n} runs, other findings in {} (exit 0)",
                self.expect.as_deref().unwrap_or(""),
                self.other_findings.iter().map(|o| o.runs).sum::<u32>()
            ),
            _ => format!("mmrace: verdict CLEAN: {n} of {n} runs clean (exit 0)"),
        }
    }

    pub fn summary(&self) -> String {
        let mut out = String::new();
        let scenario = self
            .runs
            .first()
            .map(|r| r.scenario.as_str())
            .unwrap_or("-");
        let _ = writeln!(
            out,
            "mmrace: {} runs of {scenario}: caught {}, missed {}, harness errors {}",
            self.runs.len(),
            self.caught,
            self.missed,
            self.harness_errors
        );
        for w in &self.warnings {
            let _ = writeln!(out, "mmrace: warning: {w}");
        }
        for u in &self.unreported {
            let _ = writeln!(out, "mmrace: no report: {u}");
        }
        if let Some(e) = &self.expect {
            let _ = writeln!(out, "mmrace: a catch is a finding titled /{e}/");
        }
        for o in &self.other_findings {
            let _ = writeln!(
                out,
                "mmrace: other finding in {} run(s), not a catch: {}",
                o.runs,
                o.title()
            );
        }
        let _ = writeln!(
            out,
            "mmrace: catch probability {} (95 % Wilson interval)",
            self.catch_probability.describe()
        );
        let _ = writeln!(
            out,
            "mmrace: time to catch {}; to the first race {}",
            self.time_to_catch.describe(),
            self.time_to_first_race.describe()
        );
        let _ = writeln!(
            out,
            "  {:<36} {:>10} {:<14} {:>8} {:>7}  title",
            "run", "seed", "verdict", "catch_s", "race_s"
        );
        let secs = |v: Option<f64>| v.map(|s| format!("{s:.2}")).unwrap_or_else(|| "-".into());
        for r in &self.runs {
            let what = match (r.title(), &r.finding) {
                (Some(t), _) => t,
                (None, Some(f)) => f.trim(),
                (None, None) if r.verdict == Verdict::Clean => "",
                (None, None) => r.reason.as_str(),
            };
            let _ = writeln!(
                out,
                "  {:<36} {:>10} {:<14} {:>8} {:>7}  {}",
                r.run_id,
                r.seed,
                r.verdict.label(),
                secs(r.catch.to_catch_s),
                secs(r.catch.to_first_race_s),
                crate::vm::monitor::printable(what)
            );
        }
        if !self.counters.is_empty() {
            let _ = writeln!(
                out,
                "  {:<22} {:>14} {:>12} {:>12}",
                "counter (last value)", "sum", "median", "max"
            );
            for (name, c) in ordered_counters(&self.counters) {
                let _ = writeln!(
                    out,
                    "  {name:<22} {:>14} {:>12.1} {:>12}",
                    c.total, c.median, c.max
                );
            }
        }
        let _ = writeln!(out, "{}", self.verdict_line());
        out
    }

    /// KTAP with one subtest per run: the run's own five tests, indented,
    /// then the run's line (`not ok` when it caught something, `# SKIP` for
    /// a harness error) with its times as diagnostic lines.
    pub fn ktap(&self, reports: &[(PathBuf, Report)]) -> String {
        let mut s = format!("KTAP version 1\n1..{}\n", reports.len());
        for (i, ((_, r), row)) in reports.iter().zip(&self.runs).enumerate() {
            for line in ktap::render(&ktap::cases(r)).lines() {
                let _ = writeln!(s, "  {line}");
            }
            let found = row.found.0.as_ref();
            for (name, v) in [
                ("title", found.and_then(Finding::title)),
                ("signature", found.and_then(Finding::signature)),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(s, "  # {name}: {}", ktap::one_line(v));
                }
            }
            for (name, v) in [
                ("time_to_catch_s", row.catch.to_catch_s),
                ("time_to_first_race_s", row.catch.to_first_race_s),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(s, "  # {name}: {v:.3}");
                }
            }
            let name = format!("seed_{}", row.seed);
            let n = i + 1;
            let _ = match row.verdict {
                Verdict::Clean => writeln!(s, "ok {n} {name}"),
                Verdict::HarnessError => {
                    writeln!(s, "ok {n} {name} # SKIP {}", ktap::one_line(&row.reason))
                }
                Verdict::KernelProblem | Verdict::Hang | Verdict::TestFailed => {
                    writeln!(s, "not ok {n} {name} # {}", ktap::one_line(&row.reason))
                }
            };
        }
        s
    }

    /// Writes merged.json, results.ktap and summary.txt into `dir`.
    pub fn write(&self, reports: &[(PathBuf, Report)], dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join(MERGED_JSON), self.to_json())?;
        std::fs::write(dir.join(MERGED_KTAP), self.ktap(reports))?;
        std::fs::write(dir.join(SUMMARY), self.summary())?;
        Ok(())
    }
}

/// The runs' other findings, by title, most runs first.
fn other_findings(runs: &[RunRow]) -> Vec<OtherFinding> {
    let mut by: BTreeMap<String, OtherFinding> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.other) {
        let title = r.title().unwrap_or(&r.reason).to_string();
        let mut finding = r.found.0.clone().unwrap_or_default();
        finding.identity.title.clone_from(&title);
        by.entry(title)
            .or_insert(OtherFinding { finding, runs: 0 })
            .runs += 1;
    }
    let mut v: Vec<OtherFinding> = by.into_values().collect();
    v.sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.title().cmp(b.title())));
    v
}

/// Counters in the module's order, then any others.
fn ordered_counters(c: &BTreeMap<String, CounterTotal>) -> Vec<(&str, &CounterTotal)> {
    let defs = mmrace_proto::counters::counter_defs();
    let mut out: Vec<_> = defs
        .iter()
        .filter_map(|d| c.get_key_value(d.name))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    for (k, v) in c {
        if !defs.iter().any(|d| d.name == k) {
            out.push((k, v));
        }
    }
    out
}

/// Sum, median and maximum of each counter's last streamed value.
fn counter_totals<'a>(reports: impl Iterator<Item = &'a Report>) -> BTreeMap<String, CounterTotal> {
    let mut values: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in reports {
        if let Some(s) = r.last_snapshot.as_ref().and_then(snapshot_view) {
            for (k, v) in s.counters {
                values.entry(k.clone()).or_default().push(*v);
            }
        }
    }
    values
        .into_iter()
        .map(|(k, v)| {
            let total = CounterTotal {
                total: v.iter().sum(),
                median: Spread::of(v.iter().map(|x| *x as f64))
                    .median
                    .unwrap_or(0.0),
                max: v.iter().copied().max().unwrap_or(0),
                runs: v.len(),
            };
            (k, total)
        })
        .collect()
}

/// The report.json files under `sources`: a report file itself, a run
/// directory, or any directory holding run directories (up to
/// [`SEARCH_DEPTH`] levels; symlinks such as `latest` are not followed, so
/// no run counts twice). Sorted by path within each source.
pub fn collect(sources: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for name in [crate::vm::run::REPORT, LAVA_LOG, LAVA_SERVER_LOG] {
            let f = dir.join(name);
            if f.is_file() {
                out.push(f);
                return Ok(());
            }
        }
        if depth == 0 {
            return Ok(());
        }
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        subdirs.sort();
        for d in subdirs {
            walk(&d, depth - 1, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    for s in sources {
        let before = out.len();
        if s.is_file() {
            out.push(s.clone());
        } else {
            walk(s, SEARCH_DEPTH, &mut out).with_context(|| format!("reading {}", s.display()))?;
        }
        if out.len() == before {
            bail!("{}: no report.json there", s.display());
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

/// Reads the reports; a LAVA job log is judged from its console lines by
/// the same rules as a run (its report has no host side: no wall time, and
/// the log's end is the ending).
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Report)>> {
    paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            // A report.json is one JSON object; a LAVA log is one record
            // per line.
            let as_report = serde_json::from_str::<Report>(&text);
            if let Ok(r) = as_report {
                return Ok((p.clone(), r));
            }
            let console = crate::fleet::lava_log::console_lines(&text);
            if console.is_empty() {
                as_report.with_context(|| {
                    format!(
                        "{} is neither an mmrace report.json nor a LAVA job log",
                        p.display()
                    )
                })?;
            }
            Ok((
                p.clone(),
                crate::judge::saved::judge_lines(&p.display().to_string(), &console, &[]),
            ))
        })
        .collect()
}

/// The `merge` subcommand; returns the exit code.
pub fn merge(args: &crate::args::MergeArgs) -> i32 {
    let merged = collect(&args.sources).and_then(|paths| {
        let reports = load(&paths)?;
        let m = Merged::from_reports(&reports, args.expect.as_ref());
        if let Some(out) = &args.out {
            m.write(&reports, out)?;
        }
        Ok(m)
    });
    match merged {
        Ok(m) => {
            crate::out::summary::emit(&if args.json { m.to_json() } else { m.summary() });
            if let Some(out) = &args.out {
                eprintln!("mmrace: merged results in {}", out.display());
            }
            m.exit_code
        }
        Err(e) => {
            eprintln!("mmrace: merge: {e:#}");
            2
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::judge::catch::CatchClock;
    use crate::out::report::tests::sample;

    fn run(seed: u64, verdict: Verdict, catch_s: Option<f64>, race_s: Option<f64>) -> Report {
        let mut r = sample();
        r.meta.spec = Some(crate::out::report::tests::smoke_spec(seed));
        r.meta.run_id = format!("b-s{seed}");
        r.verdict = verdict;
        r.exit_code = verdict.exit_code();
        r.catch = CatchTimes {
            to_catch_s: catch_s,
            to_catch_clock: catch_s.map(|_| CatchClock::Kernel),
            to_first_race_s: race_s,
        };
        if verdict != Verdict::KernelProblem {
            r.finding = None;
            r.found.0 = (verdict == Verdict::HarnessError).then(|| {
                Finding::new(
                    "driver-failed",
                    crate::judge::title::Identity::plain("driver-failed"),
                )
            });
            r.reason = match verdict {
                Verdict::HarnessError => "the driver failed: mount".into(),
                _ => "the scenario completed and the guest powered off".into(),
            };
        }
        r
    }

    /// A merged result of `caught` caught, `missed` clean and `harness`
    /// harness-error runs.
    pub(crate) fn merged(caught: u32, missed: u32, harness: u32) -> Merged {
        let verdicts = std::iter::repeat_n(Verdict::KernelProblem, caught as usize)
            .chain(std::iter::repeat_n(Verdict::Clean, missed as usize))
            .chain(std::iter::repeat_n(Verdict::HarnessError, harness as usize));
        let reports: Vec<_> = verdicts
            .enumerate()
            .map(|(i, v)| {
                let t = (v == Verdict::KernelProblem).then_some(1.0 + i as f64);
                (PathBuf::from(format!("/r/{i}")), run(i as u64, v, t, None))
            })
            .collect();
        Merged::from_reports(&reports, None)
    }

    fn batch() -> Vec<(PathBuf, Report)> {
        [
            run(1, Verdict::KernelProblem, Some(4.0), Some(0.5)),
            run(2, Verdict::Clean, None, Some(1.5)),
            run(3, Verdict::KernelProblem, Some(10.0), Some(0.25)),
            run(4, Verdict::HarnessError, None, None),
            run(5, Verdict::Clean, None, None),
        ]
        .into_iter()
        .map(|r| {
            (
                PathBuf::from(format!("/r/{}/report.json", r.meta.run_id)),
                r,
            )
        })
        .collect()
    }

    /// `batch()` with run 3's finding retitled.
    pub(crate) fn with_title(
        mut reports: Vec<(PathBuf, Report)>,
        i: usize,
        title: &str,
    ) -> Vec<(PathBuf, Report)> {
        reports[i].1.found.0.as_mut().expect("a finding").identity =
            crate::judge::title::Identity::plain(title);
        reports
    }

    #[test]
    fn only_the_expected_title_is_a_catch() {
        let b = with_title(batch(), 2, "WARNING in __split_huge_pmd");
        let e = Expect::new("^kernel BUG").unwrap();
        let m = Merged::from_reports(&b, Some(&e));
        // Run 1 caught the kernel BUG at 4 s; run 3's WARNING is another
        // finding: missed, not caught, and not in the time to catch.
        assert_eq!((m.caught, m.missed, m.harness_errors), (1, 3, 1));
        assert_eq!((m.catch_probability.k, m.catch_probability.n), (1, 4));
        assert_eq!(m.time_to_catch.max, Some(4.0));
        assert_eq!(m.exit_code, 1);
        assert_eq!(m.expect.as_deref(), Some("^kernel BUG"));
        assert_eq!(m.other_findings.len(), 1);
        assert_eq!(
            (m.other_findings[0].title(), m.other_findings[0].runs),
            ("WARNING in __split_huge_pmd", 1)
        );
        assert!(m.runs[2].other && !m.runs[2].caught() && m.runs[2].found());
        let text = m.summary();
        assert!(
            text.contains("other finding in 1 run(s), not a catch: WARNING in __split_huge_pmd"),
            "{text}"
        );
        // Nothing matches: no catch, and the exit code says so.
        let none = Merged::from_reports(&b, Some(&Expect::new("^KASAN").unwrap()));
        assert_eq!((none.caught, none.exit_code), (0, 2));
        // Recounting a merged result without one gives the same counts.
        let mut again = Merged::from_reports(&b, None);
        assert_eq!(again.caught, 2);
        again.recount(Some(&e));
        assert_eq!(again, m);
    }

    #[test]
    fn counts_probability_and_times() {
        let m = Merged::from_reports(&batch(), None);
        assert_eq!((m.caught, m.missed, m.harness_errors), (2, 2, 1));
        assert_eq!((m.catch_probability.k, m.catch_probability.n), (2, 4));
        assert_eq!(m.time_to_catch.median, Some(7.0));
        assert_eq!(m.time_to_catch.max, Some(10.0));
        assert_eq!(m.time_to_first_race.median, Some(0.5));
        assert_eq!(m.time_to_first_race.n, 3);
        // sample()'s last snapshot: pmd_split 50, thp_split 3, in every run.
        assert_eq!(
            m.counters["pmd_split"],
            CounterTotal {
                total: 250,
                median: 50.0,
                max: 50,
                runs: 5
            }
        );
        assert_eq!(m.exit_code, 1);
        assert!(m.warnings.is_empty());
        let back: Merged = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn exit_code_follows_the_worst_kernel_verdict() {
        let clean: Vec<_> = batch()
            .into_iter()
            .filter(|(_, r)| r.verdict == Verdict::Clean)
            .collect();
        assert_eq!(Merged::from_reports(&clean, None).exit_code, 0);
        let harness: Vec<_> = batch()
            .into_iter()
            .filter(|(_, r)| r.verdict != Verdict::KernelProblem)
            .collect();
        let m = Merged::from_reports(&harness, None);
        assert_eq!(m.exit_code, 2);
        assert!(m.verdict_line().contains("HARNESS ERROR"));
    }

    #[test]
    fn ktap_has_one_subtest_per_run() {
        let b = batch();
        let k = Merged::from_reports(&b, None).ktap(&b);
        let top: Vec<&str> = k.lines().filter(|l| !l.starts_with(' ')).collect();
        assert_eq!(top[0], "KTAP version 1");
        assert_eq!(top[1], "1..5");
        assert!(top[2].starts_with("not ok 1 seed_1 # BUG at console.log:2"));
        assert_eq!(top[3], "ok 2 seed_2");
        assert_eq!(top[5], "ok 4 seed_4 # SKIP the driver failed: mount");
        assert_eq!(top.len(), 7);
        assert_eq!(k.matches("\n  KTAP version 1\n  1..7\n").count(), 5);
        assert!(k.contains(
            "\n  # time_to_catch_s: 4.000\n  # time_to_first_race_s: 0.500\nnot ok 1 seed_1"
        ));
    }

    #[test]
    fn summary_lists_every_run_and_the_interval() {
        let mut b = batch();
        b[1].1.meta.kernel = "/other/bzImage".into();
        let s = Merged::from_reports(&b, None).summary();
        assert!(
            s.contains("5 runs of smoke: caught 2, missed 2, harness errors 1"),
            "{s}"
        );
        assert!(
            s.contains("catch probability 2/4 = 0.50 [0.15, 0.85]"),
            "{s}"
        );
        assert!(s.contains("time to catch 7.0 s [4.0..10.0] (n=2)"), "{s}");
        assert!(s.contains("warning: the runs mix kernels: /k/bzImage, /other/bzImage"));
        assert_eq!(s.matches("  b-s").count(), 5);
        assert!(s.ends_with("caught in 2 of 5 runs (exit 1)\n"), "{s}");
    }

    #[test]
    fn collects_reports_from_nested_dirs_without_duplicates() {
        let d = std::env::temp_dir().join(format!("mmrace-merge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (sub, seed) in [("batch/r1", 1), ("batch/r2", 2), ("lab/job-7/run", 3)] {
            let dir = d.join(sub);
            std::fs::create_dir_all(&dir).unwrap();
            run(seed, Verdict::Clean, None, None)
                .write(&dir.join("report.json"))
                .unwrap();
        }
        std::os::unix::fs::symlink("r2", d.join("batch/latest")).unwrap();
        let paths = collect(&[d.join("batch"), d.join("lab"), d.join("batch/r1")]).unwrap();
        assert_eq!(paths.len(), 3, "{paths:?}");
        let reports = load(&paths).unwrap();
        let seeds: Vec<u64> = reports
            .iter()
            .map(|(_, r)| r.meta.spec.as_ref().unwrap().seed)
            .collect();
        assert_eq!(seeds, [1, 2, 3]);
        let m = Merged::from_reports(&reports, None);
        m.write(&reports, &d.join("out")).unwrap();
        for f in [MERGED_JSON, MERGED_KTAP, SUMMARY] {
            assert!(d.join("out").join(f).is_file(), "{f}");
        }
        assert!(collect(&[d.join("out")]).is_err());
        std::fs::write(d.join("bad.json"), "{}").unwrap();
        assert!(load(&[d.join("bad.json")]).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
