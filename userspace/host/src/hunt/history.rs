//! A campaign's history, read back from its exploring runs' reports
//! (`DIR/runs/*/report.json`): which configuration each run was, when it
//! started, what it found, and the module-operation pairs it met. The
//! report's tables (runs per configuration, meets coverage over time, when
//! each finding was first seen) come from here, so a campaign written by
//! an older mmrace, or one still running, gets them too.

use crate::fleet::build::Target;
use crate::judge::verdict::Verdict;
use crate::out::report::Report;
use mmrace_proto::meets::{Pair, RunMeets};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One exploring run, as its report tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// The run directory's name (`r00012-pairs-s...`).
    pub name: String,
    /// Index into the campaign's targets; None for a kernel no target has.
    pub target: Option<usize>,
    pub scenario: String,
    /// Seconds since the Unix epoch, from `started_utc`.
    pub started: u64,
    pub guest_s: f64,
    pub verdict: Verdict,
    /// Unordered module-operation pairs with at least one meet, and how
    /// many meets each had; None when the run counted none.
    pub pairs: Option<BTreeMap<Pair, u64>>,
}

/// Runs of one configuration (a target and a scenario).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigTally {
    pub runs: u64,
    pub clean: u64,
    pub found: u64,
    pub harness_errors: u64,
    /// Guest seconds of those runs.
    pub guest_s: f64,
}

/// One point of the coverage curve: after `hours` of the campaign, the
/// distinct pairs met at least once and at least ten times, over every
/// run so far.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CoveragePoint {
    pub hours: f64,
    pub met: usize,
    pub met_10: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// In the order they started.
    pub runs: Vec<RunEntry>,
}

/// Seconds since the Unix epoch of a `YYYYmmdd-HHMMSS` UTC stamp (the
/// inverse of [`crate::args::utc_stamp`]).
pub fn parse_utc_stamp(s: &str) -> Option<u64> {
    let (date, time) = s.split_once('-')?;
    if date.len() != 8 || time.len() != 6 {
        return None;
    }
    let num = |t: &str| t.parse::<i64>().ok();
    let (y, m, d) = (num(&date[..4])?, num(&date[4..6])?, num(&date[6..])?);
    let (hh, mm, ss) = (num(&time[..2])?, num(&time[2..4])?, num(&time[4..])?);
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn met_pairs(meets: &Option<RunMeets>) -> Option<BTreeMap<Pair, u64>> {
    let Some(RunMeets::Counted { meets, .. }) = meets else {
        return None;
    };
    Some(
        meets
            .by_pair(None)
            .into_iter()
            .filter(|(_, c)| c.meets > 0)
            .map(|(p, c)| (p, c.meets))
            .collect(),
    )
}

impl RunEntry {
    fn of(name: String, r: &Report, targets: &[Target]) -> Option<RunEntry> {
        let spec = r.meta.spec.as_ref()?;
        Some(RunEntry {
            name,
            target: targets
                .iter()
                .position(|t| t.kernel.to_string_lossy() == r.meta.kernel),
            scenario: spec.scenario.name().to_string(),
            started: parse_utc_stamp(&r.meta.started_utc)?,
            guest_s: r.guest_elapsed_s.unwrap_or(0.0),
            verdict: r.verdict,
            pairs: met_pairs(&r.meets),
        })
    }
}

impl History {
    /// Reads every report under `runs`; a run without a readable report
    /// (cut short, still running) is left out, and so is a symlink.
    pub fn read(runs: &Path, targets: &[Target]) -> History {
        let Ok(dir) = std::fs::read_dir(runs) else {
            return History::default();
        };
        let mut v: Vec<RunEntry> = dir
            .flatten()
            // `latest` is a symlink to a run already listed.
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(e.path().join("report.json")).ok()?;
                let r: Report = serde_json::from_str(&text).ok()?;
                RunEntry::of(name, &r, targets)
            })
            .collect();
        v.sort_by(|a, b| a.started.cmp(&b.started).then(a.name.cmp(&b.name)));
        History { runs: v }
    }

    /// Runs per (target label, scenario).
    pub fn per_config(&self, targets: &[Target]) -> BTreeMap<(String, String), ConfigTally> {
        let mut out: BTreeMap<_, ConfigTally> = BTreeMap::new();
        for r in &self.runs {
            let label = r
                .target
                .and_then(|t| targets.get(t))
                .map(Target::label)
                .unwrap_or_else(|| "?".into());
            let t = out.entry((label, r.scenario.clone())).or_default();
            t.runs += 1;
            t.guest_s += r.guest_s;
            match r.verdict {
                Verdict::Clean => t.clean += 1,
                Verdict::HarnessError => t.harness_errors += 1,
                _ => t.found += 1,
            }
        }
        out
    }

    /// Cumulative pair coverage after each run that counted meets, by the
    /// run's end (start + guest time) in hours since the first run began.
    pub fn coverage(&self) -> Vec<CoveragePoint> {
        let Some(t0) = self.runs.first().map(|r| r.started) else {
            return Vec::new();
        };
        let mut total: BTreeMap<Pair, u64> = BTreeMap::new();
        let mut out = Vec::new();
        for r in &self.runs {
            let Some(pairs) = &r.pairs else { continue };
            for (p, n) in pairs {
                *total.entry(*p).or_default() += n;
            }
            out.push(CoveragePoint {
                hours: ((r.started - t0) as f64 + r.guest_s) / 3600.0,
                met: total.len(),
                met_10: total.values().filter(|n| **n >= 10).count(),
            });
        }
        out
    }

    /// Hours from the first run's start to the start of the run `name`.
    pub fn hours_into(&self, name: &str) -> Option<f64> {
        let t0 = self.runs.first()?.started;
        let r = self.runs.iter().find(|r| r.name == name)?;
        Some((r.started - t0) as f64 / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::ops;

    #[test]
    fn utc_stamps_round_trip() {
        for secs in [0, 951_782_400, 1_796_601_083, 4_102_444_799] {
            let s = crate::args::utc_stamp(secs);
            assert_eq!(parse_utc_stamp(&s), Some(secs), "{s}");
        }
        assert_eq!(parse_utc_stamp("20261207-0031"), None);
        assert_eq!(parse_utc_stamp("garbage"), None);
    }

    fn entry(name: &str, started: u64, pairs: &[(Pair, u64)], v: Verdict) -> RunEntry {
        RunEntry {
            name: name.into(),
            target: Some(0),
            scenario: "pairs".into(),
            started,
            guest_s: 60.0,
            verdict: v,
            pairs: Some(pairs.iter().copied().collect()),
        }
    }

    #[test]
    fn coverage_accumulates_over_runs() {
        let a = (
            ops::op("pmd_split").unwrap(),
            ops::op("migrate_unmap").unwrap(),
        );
        let b = (
            ops::op("clear_refs").unwrap(),
            ops::op("pmd_split").unwrap(),
        );
        let h = History {
            runs: vec![
                entry("r0", 1000, &[(a, 4)], Verdict::Clean),
                entry("r1", 1100, &[(a, 6), (b, 1)], Verdict::KernelProblem),
            ],
        };
        let c = h.coverage();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].met, c[0].met_10), (1, 0));
        assert_eq!((c[1].met, c[1].met_10), (2, 1));
        assert!((c[1].hours - 160.0 / 3600.0).abs() < 1e-9);
        assert_eq!(h.hours_into("r1"), Some(100.0 / 3600.0));
    }
}
