//! The statistics of a race-aware bisection (`make bisect`,
//! scripts/race-bisect.sh): how many runs each commit needs, and how far to
//! trust the answer, in the manner of syzkaller's syz-bisect.
//!
//! A race shows up with some probability p per run. BAD's batch estimates
//! p by the rule of succession, `(k + 1) / (n + 2)` (k catches in n runs:
//! 4 of 4 give 0.83, where `k / n` would say 1 and plan a single run per
//! commit); a commit is then run n times, with n the smallest number for
//! which `(1 - p)^n < miss` (1 %): a bad commit passes all n runs by bad
//! luck with less than that chance. A commit where any run caught the bug
//! is bad for certain (a false positive on a clean kernel is what `make
//! matrix` measures); a commit that passed r runs is good with confidence
//! `1 - (1 - p)^r`. The bisection's confidence is the product over its
//! good verdicts, computed with the estimate of p and, more cautiously,
//! with the low end of its 95 % interval.
//!
//! A commit is bad only when a run finds *the* bug: a finding whose title
//! matches the bisection's pattern (`expect`: by default exactly the title
//! BAD's runs caught most often, or the `EXPECT` given). A commit whose
//! runs find something else is not bad for this bug; those findings are
//! listed with the step.
//!
//! The bisection directory holds `estimate/` (BAD's batch), `expect` (the
//! title pattern) and `steps/NN-<commit>/` (one batch per step, with a
//! `commit` file: hash and subject, and `not-built` when the commit did not
//! build).

use crate::args::{BisectPlanArgs, BisectReportArgs};
use crate::fleet::merge::{Merged, MERGED_JSON};
use crate::fleet::stats::{detect_chance, runs_for_miss_below, Proportion};
use crate::judge::expect::Expect;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// More runs per step than this are not worth a bisection: the race is too
/// rare for this scenario.
pub const MAX_RUNS_PER_STEP: u32 = 100;

fn read_merged(dir: &Path) -> anyhow::Result<Merged> {
    let p = dir.join(MERGED_JSON);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
}

/// The file of a bisection directory that holds its title pattern.
pub const EXPECT_FILE: &str = "expect";

/// The finding to bisect: `given`, else exactly the title BAD's runs found
/// most often (the first of them on a tie). None when no run found any.
pub fn choose_expect(estimate: &Merged, given: Option<&Expect>) -> Option<Expect> {
    if let Some(e) = given {
        return Some(e.clone());
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for t in estimate
        .runs
        .iter()
        .filter(|r| r.found())
        .filter_map(|r| r.title())
    {
        match counts.iter_mut().find(|(x, _)| *x == t) {
            Some((_, n)) => *n += 1,
            None => counts.push((t, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts
        .iter()
        .find(|(_, n)| *n == best)
        .map(|(t, _)| Expect::exactly(t))
}

/// Runs per step for a miss below `miss`, from BAD's batch counted against
/// `expect`.
pub fn plan(
    estimate: &Merged,
    miss: f64,
    expect: Option<&Expect>,
) -> anyhow::Result<(u32, Proportion)> {
    let mut estimate = estimate.clone();
    estimate.recount(expect);
    let p = estimate.catch_probability;
    let Some(phat) = p.succession().filter(|_| p.k > 0) else {
        let what = match &estimate.expect {
            Some(e) => format!("a finding titled /{e}/"),
            None => "the bug".into(),
        };
        let others: Vec<&str> = estimate.other_findings.iter().map(|o| o.title()).collect();
        let others = if others.is_empty() {
            String::new()
        } else {
            format!("; it found {} instead", others.join(", "))
        };
        bail!(
            "BAD never showed {what}: caught in 0 of {} runs ({} harness errors{others}); \
             a bisection cannot tell good from bad with this scenario and these settings \
             (try a longer DURATION, another SCENARIO, or more ESTIMATE_RUNS)",
            p.n,
            estimate.harness_errors
        );
    };
    let n = runs_for_miss_below(phat, miss).expect("p in (0, 1], miss in (0, 1)");
    if n > MAX_RUNS_PER_STEP {
        bail!(
            "BAD caught it in {}: {n} runs per step would be needed for a miss under {:.0} %, \
             more than {MAX_RUNS_PER_STEP}",
            p.describe(),
            miss * 100.0
        );
    }
    Ok((n, p))
}

/// `'it''s'` for the shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The plan of a bisection from BAD's batch in `estimate`: the runs per
/// commit and the title pattern to bisect, said on stderr.
pub fn plan_of(
    estimate: &Path,
    miss: f64,
    given: Option<&Expect>,
) -> anyhow::Result<(u32, Option<Expect>)> {
    let m = read_merged(estimate)?;
    let expect = choose_expect(&m, given);
    let (n, p) = plan(&m, miss, expect.as_ref())?;
    let planned = p.succession().unwrap_or(0.0);
    if let Some(e) = &expect {
        eprintln!(
            "mmrace: bisect: the finding to bisect: titles matching /{}/",
            e.pattern()
        );
    }
    eprintln!(
        "mmrace: bisect: BAD caught it in {}: {n} runs per commit keep a miss under {:.0} % ((1 - {:.2})^{n} = {:.4})",
        p.describe(),
        miss * 100.0,
        planned,
        1.0 - detect_chance(planned, n)
    );
    Ok((n, expect))
}

/// The `bisect-plan` subcommand: prints `RUNS=<n>` and `EXPECT=<pattern>`
/// for the script.
pub fn plan_cmd(a: &BisectPlanArgs) -> i32 {
    match plan_of(&a.estimate, a.miss, a.expect.as_ref()) {
        Ok((n, expect)) => {
            if let Some(e) = &expect {
                println!("EXPECT={}", shell_quote(e.pattern()));
            }
            println!("RUNS={n}");
            0
        }
        Err(e) => {
            eprintln!("mmrace: bisect: {e:#}");
            2
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepVerdict {
    Good,
    Bad,
    /// Did not build (git bisect skip).
    Skip,
    /// Nothing but harness errors: the bisection stops.
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub commit: String,
    pub subject: String,
    pub verdict: StepVerdict,
    pub runs: usize,
    pub caught: u32,
    /// Runs that found something else (not a catch).
    #[serde(default)]
    pub other_findings: u32,
    /// The chance the verdict is right: 1 for bad, `1 - (1 - p)^runs` for good.
    pub confidence: Option<f64>,
    /// The same with p at the low end of its interval.
    pub confidence_low: Option<f64>,
    pub time_to_catch_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bisection {
    /// The title pattern a catch matched; None for a bisection directory
    /// written before titles (any finding counted).
    #[serde(default)]
    pub expect: Option<String>,
    pub p: Proportion,
    pub steps: Vec<Step>,
    pub first_bad: Option<String>,
    pub confidence: f64,
    pub confidence_low: f64,
}

impl Bisection {
    pub fn assemble(
        estimate: &Merged,
        steps: Vec<(String, String, Option<Merged>)>,
        expect: Option<&Expect>,
    ) -> Self {
        let mut estimate = estimate.clone();
        estimate.recount(expect);
        let p = estimate.catch_probability;
        let (phat, plow) = (p.succession().unwrap_or(0.0), p.lo);
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|(commit, subject, m)| match m {
                None => Step {
                    commit,
                    subject,
                    verdict: StepVerdict::Skip,
                    runs: 0,
                    caught: 0,
                    other_findings: 0,
                    confidence: None,
                    confidence_low: None,
                    time_to_catch_s: None,
                },
                Some(mut m) => {
                    m.recount(expect);
                    let verdict = if m.caught > 0 {
                        StepVerdict::Bad
                    } else if m.missed > 0 {
                        StepVerdict::Good
                    } else {
                        StepVerdict::Error
                    };
                    let clean = m.missed;
                    let (c, cl) = match verdict {
                        StepVerdict::Bad => (Some(1.0), Some(1.0)),
                        StepVerdict::Good => (
                            Some(detect_chance(phat, clean)),
                            Some(detect_chance(plow, clean)),
                        ),
                        _ => (None, None),
                    };
                    Step {
                        commit,
                        subject,
                        verdict,
                        runs: m.runs.len(),
                        caught: m.caught,
                        other_findings: m.other_findings.iter().map(|o| o.runs).sum(),
                        confidence: c,
                        confidence_low: cl,
                        time_to_catch_s: m.time_to_catch.min,
                    }
                }
            })
            .collect();
        let product = |f: fn(&Step) -> Option<f64>| steps.iter().filter_map(f).product::<f64>();
        Bisection {
            expect: expect.map(|e| e.pattern().to_string()),
            p,
            confidence: product(|s| s.confidence),
            confidence_low: product(|s| s.confidence_low),
            first_bad: None,
            steps,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "mmrace: bisect: p on BAD {} (95 % interval)",
            self.p.describe()
        );
        if let Some(e) = &self.expect {
            let _ = writeln!(out, "mmrace: bisect: bad means a finding titled /{e}/");
        }
        let _ = writeln!(
            out,
            "  {:<14} {:<6} {:>5} {:>7} {:>6} {:>11} {:>9}  subject",
            "commit", "verdict", "runs", "caught", "other", "confidence", "(p low)"
        );
        for s in &self.steps {
            let pct = |c: Option<f64>| {
                c.map(|c| format!("{:.2} %", c * 100.0))
                    .unwrap_or_else(|| "-".into())
            };
            let verdict = match s.verdict {
                StepVerdict::Good => "good",
                StepVerdict::Bad => "bad",
                StepVerdict::Skip => "skip",
                StepVerdict::Error => "error",
            };
            let _ = writeln!(
                out,
                "  {:<14} {verdict:<7} {:>5} {:>7} {:>6} {:>11} {:>9}  {}",
                &s.commit[..s.commit.len().min(12)],
                s.runs,
                s.caught,
                s.other_findings,
                pct(s.confidence),
                pct(s.confidence_low),
                s.subject
            );
        }
        match &self.first_bad {
            Some(c) => {
                let _ = writeln!(out, "mmrace: bisect: first bad commit {c}");
            }
            None => {
                let _ = writeln!(out, "mmrace: bisect: no single first bad commit");
            }
        }
        let _ = writeln!(
            out,
            "mmrace: bisect: confidence {:.2} % ({:.2} % with p at the low end of its interval)",
            self.confidence * 100.0,
            self.confidence_low * 100.0
        );
        out
    }
}

/// Reads a bisection directory.
pub fn load(dir: &Path) -> anyhow::Result<Bisection> {
    let estimate = read_merged(&dir.join("estimate"))?;
    let mut step_dirs: Vec<_> = match std::fs::read_dir(dir.join("steps")) {
        // Directories only: the batches' `latest` links would count twice.
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    step_dirs.sort();
    let mut steps = Vec::new();
    for d in step_dirs {
        let commit_line = std::fs::read_to_string(d.join("commit"))
            .with_context(|| format!("{}: no commit file", d.display()))?;
        let (commit, subject) = commit_line
            .trim()
            .split_once(' ')
            .unwrap_or((commit_line.trim(), ""));
        let merged = if d.join("not-built").exists() {
            None
        } else {
            Some(read_merged(&d)?)
        };
        steps.push((commit.to_string(), subject.to_string(), merged));
    }
    let expect = match std::fs::read_to_string(dir.join(EXPECT_FILE)) {
        Ok(p) => Some(
            Expect::new(p.trim()).with_context(|| format!("{}/{EXPECT_FILE}", dir.display()))?,
        ),
        Err(_) => None,
    };
    let mut b = Bisection::assemble(&estimate, steps, expect.as_ref());
    b.first_bad = std::fs::read_to_string(dir.join("first-bad"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(b)
}

/// The `bisect-report` subcommand: prints the table, writes bisect.json.
pub fn report_cmd(a: &BisectReportArgs) -> i32 {
    match load(&a.dir) {
        Ok(b) => {
            let json = serde_json::to_string_pretty(&b).expect("serializes") + "\n";
            if let Err(e) = std::fs::write(a.dir.join("bisect.json"), json) {
                eprintln!("mmrace: bisect: cannot write bisect.json: {e}");
                return 2;
            }
            crate::out::summary::emit(&b.render());
            0
        }
        Err(e) => {
            eprintln!("mmrace: bisect: {e:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::merge::tests::merged;

    #[test]
    fn plan_from_the_estimate() {
        // 2 of 4: p = 3/6 = 0.5, (0.5)^7 < 1 %.
        let (n, p) = plan(&merged(2, 2, 0), 0.01, None).unwrap();
        assert_eq!((n, p.k, p.n), (7, 2, 4));
        // Caught in all 3 runs: p = 4/5, not 1, so 3 runs per step
        // ((0.2)^3 < 1 %), where k / n planned one and named a bad commit
        // good after a single unlucky run.
        assert_eq!(plan(&merged(3, 0, 0), 0.01, None).unwrap().0, 3);
        // 4 of 4 at a 5 % miss: p = 5/6, 2 runs.
        assert_eq!(plan(&merged(4, 0, 0), 0.05, None).unwrap().0, 2);
        let e = plan(&merged(0, 5, 1), 0.01, None).unwrap_err().to_string();
        assert!(
            e.contains("BAD never showed the bug: caught in 0 of 5 runs (1 harness errors)"),
            "{e}"
        );
        // 1 in 60: 274 runs; refused.
        assert!(plan(&merged(1, 59, 0), 0.01, None).is_err());
    }

    #[test]
    fn bad_needs_the_title_bad_was_caught_with() {
        // BAD: 3 runs caught "kernel BUG" (the sample's title), one found a
        // WARNING: the bisection is about the kernel BUG, p = 3/5.
        let mut est = merged(4, 1, 0);
        est.runs[3].found.0.as_mut().expect("a finding").identity =
            crate::judge::title::Identity::plain("WARNING in elsewhere");
        let expect = choose_expect(&est, None).unwrap();
        assert_eq!(expect.pattern(), "^kernel BUG$");
        let (_, p) = plan(&est, 0.01, Some(&expect)).unwrap();
        assert_eq!((p.k, p.n), (3, 5));
        let e = plan(&est, 0.01, Some(&Expect::new("^KASAN").unwrap()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("BAD never showed a finding titled /^KASAN/: caught in 0 of 5 runs (0 harness errors; it found kernel BUG, WARNING in elsewhere instead)"),
            "{e}"
        );
        // A step whose only finding is the WARNING is good, not bad.
        let mut other = merged(1, 6, 0);
        other.runs[0].found.0.as_mut().expect("a finding").identity =
            crate::judge::title::Identity::plain("WARNING in elsewhere");
        let steps = vec![
            ("aaaa".to_string(), "other bug".to_string(), Some(other)),
            (
                "bbbb".to_string(),
                "the bug".to_string(),
                Some(merged(1, 0, 0)),
            ),
        ];
        let b = Bisection::assemble(&est, steps, Some(&expect));
        assert_eq!(b.steps[0].verdict, StepVerdict::Good);
        assert_eq!((b.steps[0].caught, b.steps[0].other_findings), (0, 1));
        assert_eq!(b.steps[1].verdict, StepVerdict::Bad);
        assert!(b
            .render()
            .contains("bad means a finding titled /^kernel BUG$/"));
        // Without a title, any finding was bad.
        let any = Bisection::assemble(
            &est,
            vec![(
                "aaaa".into(),
                "x".into(),
                Some({
                    let mut m = merged(1, 6, 0);
                    m.runs[0].found.0.as_mut().expect("a finding").identity =
                        crate::judge::title::Identity::plain("WARNING in elsewhere");
                    m
                }),
            )],
            None,
        );
        assert_eq!(any.steps[0].verdict, StepVerdict::Bad);
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn confidence_is_the_product_over_good_steps() {
        let est = merged(2, 2, 0); // p = 0.5, Wilson low 0.15
        let steps = vec![
            (
                "aaaa".to_string(),
                "good one".to_string(),
                Some(merged(0, 7, 0)),
            ),
            (
                "bbbb".to_string(),
                "bad one".to_string(),
                Some(merged(1, 0, 0)),
            ),
            ("cccc".to_string(), "did not build".to_string(), None),
            (
                "dddd".to_string(),
                "good two".to_string(),
                Some(merged(0, 7, 0)),
            ),
        ];
        let b = Bisection::assemble(&est, steps, None);
        let good = 1.0 - 0.5f64.powi(7);
        assert_eq!(b.steps[0].verdict, StepVerdict::Good);
        assert_eq!(b.steps[0].confidence, Some(good));
        assert_eq!(b.steps[1].verdict, StepVerdict::Bad);
        assert_eq!(b.steps[1].confidence, Some(1.0));
        assert_eq!(b.steps[2].verdict, StepVerdict::Skip);
        assert!((b.confidence - good * good).abs() < 1e-12);
        let low = 1.0 - (1.0 - est.catch_probability.lo).powi(7);
        assert!((b.confidence_low - low * low).abs() < 1e-12);
        let text = b.render();
        assert!(
            text.contains("aaaa           good        7       0      0     99.22 %"),
            "{text}"
        );
        assert!(text.contains("no single first bad commit"), "{text}");
    }
}
