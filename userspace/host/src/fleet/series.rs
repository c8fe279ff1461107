//! `RUNS=N KERNEL_SERIES="7.2 7.3"`: the same run description on several
//! kernel series, side by side. scripts/qemu-run.sh runs one batch
//! ([`crate::fleet::batch`]) per series into `DIR/<series>/` (or writes
//! `DIR/<series>/not-built` with the reason when that series' kernel or
//! mmrace.ko cannot be built); `mmrace-host series DIR SERIES...` then reads
//! each batch's merged result ([`Merged`], unchanged) and writes the
//! comparison: `series.json`, `results.ktap` (a subtest per series holding
//! the batch's own KTAP, a subtest per run) and `summary.txt`.
//!
//! The series of a run is the one its RunSpec records
//! (`spec.kernel.series`); a batch whose runs record another series than
//! its directory says is reported.

use crate::fleet::merge::{Merged, MERGED_JSON, MERGED_KTAP, SUMMARY};
use crate::fleet::stats::Spread;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// The comparison's own result file (each series keeps its merged.json).
pub const SERIES_JSON: &str = "series.json";
/// Marks a kernel (series, or a matrix row) that could not be built; its
/// text, if any, says why.
pub const NOT_BUILT: &str = "not-built";

/// A row of the side-by-side table: its label and a cell per series.
type Row = (String, Vec<String>);

/// What became of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    /// Its batch ran: the batch's merged result.
    Ran { merged: Box<Merged> },
    /// Its kernel or mmrace.ko could not be built (exit 125 of the build).
    NotBuilt { reason: String },
    /// Neither a merged result nor a not-built mark: the batch failed
    /// before it could merge (a harness error).
    NoResult { reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesResult {
    pub series: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl SeriesResult {
    fn merged(&self) -> Option<&Merged> {
        match &self.outcome {
            Outcome::Ran { merged } => Some(merged),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// In the order asked for (KERNEL_SERIES).
    pub series: Vec<SeriesResult>,
    /// 1 if any run of any series caught a kernel problem or hang, else 3
    /// if a test program failed, else 2 if a series had a harness error,
    /// else 125 if a series could not be built, else 0.
    pub exit_code: i32,
    pub warnings: Vec<String>,
}

impl Comparison {
    pub fn new(series: Vec<SeriesResult>) -> Comparison {
        let codes: Vec<i32> = series
            .iter()
            .map(|s| match &s.outcome {
                Outcome::Ran { merged } => merged.exit_code,
                Outcome::NotBuilt { .. } => 125,
                Outcome::NoResult { .. } => 2,
            })
            .collect();
        let exit_code = [1, 3, 2, 125]
            .into_iter()
            .find(|c| codes.contains(c))
            .unwrap_or(0);
        let mut warnings = Vec::new();
        for s in &series {
            let Some(m) = s.merged() else { continue };
            let mut recorded: Vec<&str> = m
                .runs
                .iter()
                .filter_map(|r| r.spec.as_ref().map(|spec| spec.kernel.series.as_str()))
                .collect();
            recorded.sort_unstable();
            recorded.dedup();
            if recorded.iter().any(|r| *r != s.series) {
                warnings.push(format!(
                    "the runs under {} record the series {}",
                    s.series,
                    recorded.join(", ")
                ));
            }
        }
        let mut scenarios: Vec<&str> = series
            .iter()
            .filter_map(SeriesResult::merged)
            .flat_map(|m| m.runs.iter().map(|r| r.scenario.as_str()))
            .collect();
        scenarios.sort_unstable();
        scenarios.dedup();
        if scenarios.len() > 1 {
            warnings.push(format!(
                "the series ran different scenarios: {}",
                scenarios.join(", ")
            ));
        }
        Comparison {
            series,
            exit_code,
            warnings,
        }
    }

    /// Reads `dir/<series>/` for each of `series` (all subdirectories, in
    /// name order, when empty).
    pub fn load(dir: &Path, series: &[String]) -> anyhow::Result<Comparison> {
        let names: Vec<String> = if series.is_empty() {
            let mut v: Vec<String> = std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        } else {
            series.to_vec()
        };
        anyhow::ensure!(!names.is_empty(), "{}: no series there", dir.display());
        let results = names
            .into_iter()
            .map(|name| {
                let d = dir.join(&name);
                let merged = d.join(MERGED_JSON);
                let outcome = if d.join(NOT_BUILT).exists() {
                    let reason = std::fs::read_to_string(d.join(NOT_BUILT)).unwrap_or_default();
                    let reason = reason.trim();
                    Outcome::NotBuilt {
                        reason: if reason.is_empty() {
                            "its kernel or mmrace.ko did not build".into()
                        } else {
                            reason.into()
                        },
                    }
                } else if merged.is_file() {
                    let text = std::fs::read_to_string(&merged)?;
                    let m: Merged = serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", merged.display()))?;
                    Outcome::Ran {
                        merged: Box::new(m),
                    }
                } else {
                    Outcome::NoResult {
                        reason: format!("no {MERGED_JSON} in {}", d.display()),
                    }
                };
                Ok(SeriesResult {
                    series: name,
                    outcome,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Comparison::new(results))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializes") + "\n"
    }

    pub fn verdict_line(&self) -> String {
        let list = |f: &dyn Fn(&SeriesResult) -> Option<String>| -> String {
            self.series
                .iter()
                .filter_map(f)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let caught = |s: &SeriesResult| {
            s.merged()
                .map(|m| format!("{} {}/{}", s.series, m.caught, m.runs.len()))
        };
        let runs: usize = self
            .series
            .iter()
            .filter_map(SeriesResult::merged)
            .map(|m| m.runs.len())
            .sum();
        let n = self.series.len();
        match self.exit_code {
            1 => format!(
                "mmrace: verdict KERNEL PROBLEM: caught on {} (exit 1)",
                list(&caught)
            ),
            3 => format!(
                "mmrace: verdict TEST FAILED: a test program failed on {} (exit 3)",
                list(&caught)
            ),
            2 => format!(
                "mmrace: verdict HARNESS ERROR: nothing caught; harness errors on {} (exit 2)",
                list(&|s| match &s.outcome {
                    Outcome::Ran { merged } if merged.exit_code == 2 => Some(s.series.clone()),
                    Outcome::NoResult { .. } => Some(s.series.clone()),
                    _ => None,
                })
            ),
            125 => format!(
                "mmrace: verdict NOT BUILT: {} could not be built; {} (exit 125)",
                list(&|s| matches!(s.outcome, Outcome::NotBuilt { .. }).then(|| s.series.clone())),
                if runs == 0 {
                    "nothing ran".to_string()
                } else {
                    format!("{runs} of {runs} runs on the others clean")
                }
            ),
            _ => {
                format!("mmrace: verdict CLEAN: {runs} of {runs} runs clean on {n} series (exit 0)")
            }
        }
    }

    /// The series side by side: a column each.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let first = self.series.iter().find_map(SeriesResult::merged);
        let _ = match first.and_then(|m| m.runs.first()) {
            Some(r) => writeln!(
                out,
                "mmrace: {} on {} kernel series, side by side",
                r.scenario,
                self.series.len()
            ),
            None => writeln!(out, "mmrace: {} kernel series, no run", self.series.len()),
        };
        for w in &self.warnings {
            let _ = writeln!(out, "mmrace: warning: {w}");
        }
        let (names, all_zero) = self.moved_counters();
        let mut rows = self.outcome_rows();
        rows.extend(self.counter_rows(&names));
        self.table(&mut out, &rows, all_zero);
        for s in &self.series {
            match &s.outcome {
                Outcome::NotBuilt { reason } => {
                    let _ = writeln!(out, "mmrace: {} not built: {reason}", s.series);
                }
                Outcome::NoResult { reason } => {
                    let _ = writeln!(out, "mmrace: {}: {reason}", s.series);
                }
                Outcome::Ran { .. } => {}
            }
        }
        let _ = writeln!(out, "{}", self.verdict_line());
        out
    }

    /// A cell per series: `f` of its merged runs, or why it has none.
    fn column(&self, f: &dyn Fn(&Merged) -> String) -> Vec<String> {
        self.series
            .iter()
            .map(|s| match &s.outcome {
                Outcome::Ran { merged } => f(merged),
                Outcome::NotBuilt { .. } => "not built".into(),
                Outcome::NoResult { .. } => "no result".into(),
            })
            .collect()
    }

    /// The rows of how each series' runs ended: verdict, runs, catch
    /// probability, times to catch and to the first race.
    fn outcome_rows(&self) -> Vec<Row> {
        let secs = |s: &Spread| match (s.median, s.max) {
            (Some(m), Some(x)) => format!("{m:.1}/{x:.1} s (n={})", s.n),
            _ => "-".into(),
        };
        let verdict = |m: &Merged| {
            match m.exit_code {
                1 => "KERNEL PROBLEM",
                3 => "TEST FAILED",
                2 => "HARNESS ERROR",
                _ => "CLEAN",
            }
            .into()
        };
        let runs = |m: &Merged| {
            format!(
                "{}: {}/{}/{}",
                m.runs.len(),
                m.caught,
                m.missed,
                m.harness_errors as usize + m.unreported.len()
            )
        };
        let probability = |m: &Merged| {
            let p = &m.catch_probability;
            format!("{}/{} [{:.2}, {:.2}]", p.k, p.n, p.lo, p.hi)
        };
        vec![
            ("verdict".into(), self.column(&verdict)),
            ("runs: caught/clean/err".into(), self.column(&runs)),
            ("catch probability".into(), self.column(&probability)),
            (
                "to catch, median/max".into(),
                self.column(&|m| secs(&m.time_to_catch)),
            ),
            (
                "first race, median/max".into(),
                self.column(&|m| secs(&m.time_to_first_race)),
            ),
        ]
    }

    /// The counters some series saw move, in the module's order, and how
    /// many more every series saw stay 0.
    fn moved_counters(&self) -> (Vec<String>, usize) {
        let mut names: Vec<String> = Vec::new();
        let mut all_zero = 0;
        for d in mmrace_proto::counters::counter_defs() {
            let seen: Vec<u64> = self
                .series
                .iter()
                .filter_map(SeriesResult::merged)
                .filter_map(|m| m.counters.get(d.name).map(|c| c.max))
                .collect();
            if seen.iter().any(|max| *max > 0) {
                names.push(d.name.to_string());
            } else if !seen.is_empty() {
                all_zero += 1;
            }
        }
        (names, all_zero)
    }

    /// A row per counter: the median of each run's last value [its max].
    fn counter_rows(&self, names: &[String]) -> Vec<Row> {
        names
            .iter()
            .map(|name| {
                let cell = |m: &Merged| {
                    m.counters
                        .get(name)
                        .map(|c| format!("{} [{}]", fmt_median(c.median), c.max))
                        .unwrap_or_else(|| "-".into())
                };
                (format!("  {name}"), self.column(&cell))
            })
            .collect()
    }

    /// The rows under a header of the series' names, in aligned columns;
    /// the counters' rows (labels indented) after a line saying what they
    /// are.
    fn table(&self, out: &mut String, rows: &[Row], all_zero: usize) {
        let header: Vec<String> = self.series.iter().map(|s| s.series.clone()).collect();
        let label_w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(24);
        let widths: Vec<usize> = (0..header.len())
            .map(|j| {
                rows.iter()
                    .map(|r| r.1[j].len())
                    .chain([header[j].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |label: &str, cells: &[String]| {
            let mut l = format!("  {label:<label_w$}");
            for (c, w) in cells.iter().zip(&widths) {
                let _ = write!(l, "  {c:<w$}");
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line("series", &header));
        let mut counters_said = false;
        for (label, cells) in rows {
            if label.starts_with("  ") && !counters_said {
                let _ = writeln!(
                    out,
                    "  counters, median of the runs' last values [max] ({all_zero} more stayed 0 everywhere):"
                );
                counters_said = true;
            }
            let _ = writeln!(out, "{}", line(label, cells));
        }
    }

    /// KTAP with a subtest per series, each holding its batch's KTAP (a
    /// subtest per run); `ktaps` are the batches' results.ktap texts, in
    /// the order of `self.series` (None for a series that did not run).
    pub fn ktap(&self, ktaps: &[Option<String>]) -> String {
        let mut s = format!("KTAP version 1\n1..{}\n", self.series.len());
        for (i, (r, k)) in self.series.iter().zip(ktaps).enumerate() {
            if let Some(k) = k {
                for line in k.lines() {
                    let _ = writeln!(s, "  {line}");
                }
            }
            let n = i + 1;
            let name = format!("series_{}", r.series);
            let _ = match &r.outcome {
                Outcome::Ran { merged } => match merged.exit_code {
                    0 => writeln!(s, "ok {n} {name}"),
                    2 => writeln!(s, "ok {n} {name} # SKIP harness errors"),
                    _ => writeln!(
                        s,
                        "not ok {n} {name} # caught in {} of {} runs",
                        merged.caught,
                        merged.runs.len()
                    ),
                },
                Outcome::NotBuilt { reason } => writeln!(
                    s,
                    "ok {n} {name} # SKIP not built: {}",
                    crate::out::ktap::one_line(reason)
                ),
                Outcome::NoResult { reason } => {
                    writeln!(
                        s,
                        "ok {n} {name} # SKIP {}",
                        crate::out::ktap::one_line(reason)
                    )
                }
            };
        }
        s
    }
}

fn fmt_median(m: f64) -> String {
    if m.fract() == 0.0 {
        format!("{m:.0}")
    } else {
        format!("{m:.1}")
    }
}

/// The `series` subcommand: reads DIR/<series>/, writes series.json,
/// results.ktap and summary.txt into DIR, prints the summary; returns the
/// comparison's exit code.
pub fn series_cmd(a: &crate::args::SeriesArgs) -> i32 {
    let done = Comparison::load(&a.dir, &a.series).and_then(|c| {
        let ktaps: Vec<Option<String>> = c
            .series
            .iter()
            .map(|s| std::fs::read_to_string(a.dir.join(&s.series).join(MERGED_KTAP)).ok())
            .collect();
        std::fs::write(a.dir.join(SERIES_JSON), c.to_json())?;
        std::fs::write(a.dir.join(MERGED_KTAP), c.ktap(&ktaps))?;
        let summary = c.summary();
        std::fs::write(a.dir.join(SUMMARY), &summary)?;
        Ok((c, summary))
    });
    match done {
        Ok((c, summary)) => {
            crate::out::summary::emit(&summary);
            eprintln!("mmrace: side by side in {}", a.dir.display());
            c.exit_code
        }
        Err(e) => {
            eprintln!("mmrace: series: {e:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::merge::tests::merged;

    /// A batch on `series`: `caught`, `missed` and `harness` runs.
    fn batch(series: &str, caught: u32, missed: u32, harness: u32) -> Merged {
        let mut m = merged(caught, missed, harness);
        for r in &mut m.runs {
            r.spec.as_mut().unwrap().kernel.series = series.into();
        }
        m
    }

    fn ran(series: &str, m: Merged) -> SeriesResult {
        SeriesResult {
            series: series.into(),
            outcome: Outcome::Ran {
                merged: Box::new(m),
            },
        }
    }

    fn not_built(series: &str) -> SeriesResult {
        SeriesResult {
            series: series.into(),
            outcome: Outcome::NotBuilt {
                reason: "mmrace.ko cannot be built against 6.12: no kernel::debugfs".into(),
            },
        }
    }

    #[test]
    fn exit_code_over_the_series() {
        let code = |v: Vec<SeriesResult>| Comparison::new(v).exit_code;
        assert_eq!(
            code(vec![
                ran("7.2", batch("7.2", 0, 2, 0)),
                ran("7.3", batch("7.3", 0, 2, 0))
            ]),
            0
        );
        // A series that did not build: 125, the others still count.
        assert_eq!(
            code(vec![not_built("6.12"), ran("7.3", batch("7.3", 0, 2, 0))]),
            125
        );
        assert_eq!(
            code(vec![not_built("6.12"), ran("7.3", batch("7.3", 1, 1, 0))]),
            1
        );
        assert_eq!(
            code(vec![not_built("6.12"), ran("7.3", batch("7.3", 0, 1, 1))]),
            2
        );
        let mut unreported = batch("7.2", 0, 2, 0);
        unreported.add_unreported(["run 3: qemu died".to_string()]);
        assert_eq!(unreported.exit_code, 2);
        assert_eq!(
            code(vec![
                ran("7.2", unreported),
                ran("7.3", batch("7.3", 0, 2, 0))
            ]),
            2
        );
        let none = SeriesResult {
            series: "7.2".into(),
            outcome: Outcome::NoResult {
                reason: "no merged.json".into(),
            },
        };
        assert_eq!(code(vec![none, ran("7.3", batch("7.3", 1, 0, 0))]), 1);
    }

    #[test]
    fn summary_puts_the_series_side_by_side() {
        let c = Comparison::new(vec![
            ran("7.2", batch("7.2", 1, 3, 0)),
            ran("7.3", batch("7.3", 0, 4, 0)),
            not_built("6.12"),
        ]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let s = c.summary();
        let line = |label: &str| {
            s.lines()
                .find(|l| l.trim_start().starts_with(label))
                .unwrap_or_else(|| panic!("no {label} in\n{s}"))
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(line("series"), ["series", "7.2", "7.3", "6.12"]);
        assert_eq!(
            line("verdict"),
            ["verdict", "KERNEL PROBLEM", "CLEAN", "not built"]
        );
        assert_eq!(
            line("runs: caught/clean/err"),
            [
                "runs: caught/clean/err",
                "4: 1/3/0",
                "4: 0/4/0",
                "not built"
            ]
        );
        assert_eq!(
            line("catch probability"),
            [
                "catch probability",
                "1/4 [0.05, 0.70]",
                "0/4 [0.00, 0.49]",
                "not built"
            ]
        );
        // merged(): run i of a batch catches at 1 + i s.
        assert_eq!(
            line("to catch, median/max"),
            ["to catch, median/max", "1.0/1.0 s (n=1)", "-", "not built"]
        );
        // sample()'s last snapshot: pmd_split 50 in every run.
        assert_eq!(
            line("pmd_split"),
            ["pmd_split", "50 [50]", "50 [50]", "not built"]
        );
        assert!(s.contains("mmrace: 6.12 not built: mmrace.ko cannot be built against 6.12: no kernel::debugfs"), "{s}");
        assert!(
            s.ends_with("mmrace: verdict KERNEL PROBLEM: caught on 7.2 1/4, 7.3 0/4 (exit 1)\n"),
            "{s}"
        );
        let back: Comparison = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(back, c);
        let c = Comparison::new(vec![not_built("6.12"), ran("7.3", batch("7.3", 0, 2, 0))]);
        assert!(c.summary().ends_with(
            "mmrace: verdict NOT BUILT: 6.12 could not be built; 2 of 2 runs on the others clean (exit 125)\n"
        ));
        let c = Comparison::new(vec![
            ran("7.2", batch("7.2", 0, 1, 0)),
            ran("7.3", batch("7.3", 0, 2, 0)),
        ]);
        assert!(c
            .summary()
            .ends_with("mmrace: verdict CLEAN: 3 of 3 runs clean on 2 series (exit 0)\n"));
    }

    #[test]
    fn ktap_has_a_subtest_per_series_holding_its_runs() {
        let b72 = batch("7.2", 1, 1, 0);
        let c = Comparison::new(vec![ran("7.2", b72.clone()), not_built("6.12")]);
        let k = c.ktap(&[
            Some("KTAP version 1\n1..2\nnot ok 1 seed_0 # BUG\nok 2 seed_1\n".into()),
            None,
        ]);
        assert_eq!(
            k,
            "KTAP version 1\n1..2\n  KTAP version 1\n  1..2\n  not ok 1 seed_0 # BUG\n  ok 2 seed_1\n\
             not ok 1 series_7.2 # caught in 1 of 2 runs\n\
             ok 2 series_6.12 # SKIP not built: mmrace.ko cannot be built against 6.12: no kernel::debugfs\n"
        );
    }

    #[test]
    fn loads_series_dirs_in_the_order_asked() {
        let d = std::env::temp_dir().join(format!("mmrace-series-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (s, m) in [
            ("7.3", batch("7.3", 0, 2, 0)),
            ("7.2", batch("7.3", 0, 1, 0)),
        ] {
            std::fs::create_dir_all(d.join(s)).unwrap();
            std::fs::write(d.join(s).join(MERGED_JSON), m.to_json()).unwrap();
        }
        std::fs::create_dir_all(d.join("6.12")).unwrap();
        std::fs::write(d.join("6.12").join(NOT_BUILT), "no kernel::debugfs\n").unwrap();
        std::fs::create_dir_all(d.join("7.4")).unwrap();
        let order = ["7.3", "7.2", "6.12", "7.4"].map(String::from);
        let c = Comparison::load(&d, &order).unwrap();
        let got: Vec<(&str, &str)> = c
            .series
            .iter()
            .map(|s| {
                let status = match &s.outcome {
                    Outcome::Ran { .. } => "ran",
                    Outcome::NotBuilt { reason } => {
                        assert_eq!(reason, "no kernel::debugfs");
                        "not built"
                    }
                    Outcome::NoResult { .. } => "no result",
                };
                (s.series.as_str(), status)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("7.3", "ran"),
                ("7.2", "ran"),
                ("6.12", "not built"),
                ("7.4", "no result")
            ]
        );
        assert_eq!(c.exit_code, 2);
        // The batch under 7.2 recorded 7.3 in its specs: said.
        assert_eq!(c.warnings, ["the runs under 7.2 record the series 7.3"]);
        // Without a list: every directory, by name.
        let all = Comparison::load(&d, &[]).unwrap();
        assert_eq!(
            all.series
                .iter()
                .map(|s| s.series.as_str())
                .collect::<Vec<_>>(),
            ["6.12", "7.2", "7.3", "7.4"]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
