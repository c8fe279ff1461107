//! `mmrace-host bench-summary DIR`: the summary of a `make bench` directory
//! (build/results/bench-ID).
//!
//! Reads `clean-s*/report.json` and `wire.log` (one boot per seed running
//! the driver's `bench` scenario: phases mem, a, b, overhead, c) and
//! `variant-{a,b,c}/report.json` (the race-only kernel), as the host's
//! [`Report`] and the scenario's [`BenchResult`], then prints one table and
//! writes `bench.json` and `pmd_race.svg` into the directory.

use crate::fleet::stats::Spread;
use crate::judge::verdict::Verdict;
use crate::out::report::Report;
use crate::vm::messages::{snapshot_view, Messages};
use anyhow::Context;
use mmrace_proto::counters::name;
use mmrace_proto::results::bench::{BenchResult, PhaseResult, PhaseRun};
use mmrace_proto::results::{Measurement, Rates, ScenarioResult};
use mmrace_proto::wire::Msg;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The three configurations the bench compares.
pub const CONFIGS: [(&str, &str); 3] = [
    ("a", "(a) shell baseline"),
    ("b", "(b) mmrace"),
    ("c", "(c) mmrace amplified"),
];
const PAGE: f64 = 4096.0;
// The issue's targets.
const TARGET_B_RACES_PER_MIN: f64 = 100.0;
const TARGET_BASELINE_MAX_PER_MIN: f64 = 0.25;
const TARGET_FIRST_RACE_S: f64 = 5.0;
const TARGET_VARIANT_S: f64 = 10.0;
const TARGET_OVERHEAD_PCT: f64 = 3.0;
const TARGET_MIGRATE_FRACTION: f64 = 0.5;
/// Parties whose rates go in the table (when the config has them).
const PARTIES: [&str; 7] = [
    "clear_refs",
    "migrate",
    "splitter",
    "kills",
    "writer",
    "racer_rounds",
    "refault",
];
// The metrics of one phase, besides the parties' `ops_per_s.NAME`.
const SECS: &str = "secs";
const PMD_RACE: &str = "pmd_race";
const PMD_RACE_PER_MIN: &str = "pmd_race_per_min";
const THP_SPLIT_PER_MIN: &str = "thp_split_per_min";
const THP_SPLIT_FAILED_PER_MIN: &str = "thp_split_failed_per_min";
const FIRST_PMD_RACE_S: &str = "first_pmd_race_s";
const MIGRATED_BYTES_PER_S: &str = "migrated_bytes_per_s";
const OPS: &str = "ops_per_s.";
/// vmstat's names, for a phase that ran without the module's counters.
const VM_THP_SPLIT_PAGE: &str = "thp_split_page";
const VM_THP_SPLIT_PAGE_FAILED: &str = "thp_split_page_failed";
const VM_PGMIGRATE_SUCCESS: &str = "pgmigrate_success";

/// median/min/max of the values a metric took over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub median: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub n: usize,
    /// One per seed; None where the seed had no value.
    pub values: Vec<Option<f64>>,
}

impl Stats {
    pub fn of(values: Vec<Option<f64>>) -> Stats {
        let s = Spread::of(values.iter().flatten().copied());
        Stats {
            median: s.median,
            min: s.min,
            max: s.max,
            n: s.n,
            values,
        }
    }

    /// The same figures divided by `d` (bytes/s to MB/s).
    fn scaled(&self, d: f64) -> Stats {
        let f = |x: Option<f64>| x.map(|x| x / d);
        Stats {
            median: f(self.median),
            min: f(self.min),
            max: f(self.max),
            n: self.n,
            values: self.values.iter().map(|x| f(*x)).collect(),
        }
    }

    /// `median [min..max]`, or `none` when there is no value.
    fn cell(&self, none: &str) -> String {
        match (self.median, self.min, self.max) {
            (Some(m), Some(a), Some(b)) if a == b => fmt(Some(m)),
            (Some(m), a, b) => format!("{} [{}..{}]", fmt(Some(m)), fmt(a), fmt(b)),
            _ => none.to_string(),
        }
    }

    /// The cell, or None when there is no value.
    fn shown(&self) -> Option<String> {
        (self.n > 0).then(|| self.cell("-"))
    }
}

fn cell(s: Option<&Stats>, none: &str) -> String {
    s.map_or_else(|| none.to_string(), |s| s.cell(none))
}

/// A ratio of two figures; infinite when only the numerator is above 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ratio {
    Finite(f64),
    Infinite,
}

impl Serialize for Ratio {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ratio::Finite(x) => s.serialize_f64(*x),
            Ratio::Infinite => s.serialize_str("inf"),
        }
    }
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<Ratio> {
    let (num, den) = (num?, den?);
    if den == 0.0 {
        return (num > 0.0).then_some(Ratio::Infinite);
    }
    Some(Ratio::Finite(num / den))
}

/// A ratio as a plain number, for statistics (infinite ones left out).
fn finite(r: Option<Ratio>) -> Option<f64> {
    match r {
        Some(Ratio::Finite(x)) => Some(x),
        _ => None,
    }
}

fn fmt_ratio(r: Option<Ratio>) -> String {
    match r {
        None => "-".into(),
        Some(Ratio::Infinite) => "inf".into(),
        Some(Ratio::Finite(x)) => format!("{}x", g3(x)),
    }
}

/// A number with as many decimals as its size deserves.
fn fmt(v: Option<f64>) -> String {
    let Some(v) = v else { return "-".into() };
    let a = v.abs();
    let digits = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 0.1 {
        2
    } else {
        3
    };
    format!("{v:.digits$}")
}

/// printf's `%.3g`: three significant digits, no trailing zeros.
fn g3(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let exp = format!("{x:.2e}");
    let (mantissa, e) = exp.split_once('e').unwrap_or((&exp, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let strip = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if !(-4..3).contains(&e) {
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", strip(mantissa.to_string()), e.abs());
    }
    let decimals = (2 - e).max(0) as usize;
    strip(format!("{x:.decimals$}"))
}

fn per_min(n: Option<f64>, secs: f64) -> Option<f64> {
    n.filter(|_| secs > 0.0).map(|n| n * 60.0 / secs)
}

/// What a race phase (a, b or c) measured, whichever party drove it.
struct RacePhase<'a> {
    elapsed_ms: u64,
    rates: &'a Rates,
    first_pmd_race_ms: Option<u64>,
    m: &'a Measurement,
}

fn race_phase(p: &PhaseRun) -> Option<RacePhase<'_>> {
    match p.result.as_ref()? {
        PhaseResult::A(r) => Some(RacePhase {
            elapsed_ms: r.elapsed_ms,
            rates: &r.rates,
            first_pmd_race_ms: r.first_pmd_race_ms,
            m: &r.measurement,
        }),
        PhaseResult::B(r) | PhaseResult::C(r) => Some(RacePhase {
            elapsed_ms: r.elapsed_ms,
            rates: &r.rates,
            first_pmd_race_ms: r.first_pmd_race_ms,
            m: &r.measurement,
        }),
        PhaseResult::Mem(_)
        | PhaseResult::Overhead(_)
        | PhaseResult::Meets(_)
        | PhaseResult::Loops(_) => None,
    }
}

/// One phase's figures by metric name.
struct Metrics {
    values: BTreeMap<String, Option<f64>>,
    crosscheck_ok: bool,
}

fn phase_metrics(p: &PhaseRun) -> Option<Metrics> {
    let r = race_phase(p)?;
    let secs = r.elapsed_ms as f64 / 1000.0;
    let (c, v) = (&r.m.counters_delta, &r.m.vmstat_delta);
    let have = r.m.counters_available;
    let counter = |k: &str| c.get(k).map(|x| *x as f64).filter(|_| have);
    let vm = |k: &str| v.get(k).map(|x| *x as f64);
    let splits = counter(name::THP_SPLIT)
        .or_else(|| vm(VM_THP_SPLIT_PAGE).map(|s| s + vm(VM_THP_SPLIT_PAGE_FAILED).unwrap_or(0.0)));
    let failed = match have {
        true => counter(name::THP_SPLIT_FAILED),
        false => vm(VM_THP_SPLIT_PAGE_FAILED),
    };
    let migrated = counter(name::MIGRATE_PAGES).or_else(|| vm(VM_PGMIGRATE_SUCCESS));
    let races = counter(name::PMD_RACE);
    let mut values: BTreeMap<String, Option<f64>> = [
        (SECS, Some(secs)),
        (PMD_RACE_PER_MIN, per_min(races, secs)),
        (PMD_RACE, races),
        (THP_SPLIT_PER_MIN, per_min(splits, secs)),
        (THP_SPLIT_FAILED_PER_MIN, per_min(failed, secs)),
        // Not seen within the phase: None, shown as "none in N s".
        (
            FIRST_PMD_RACE_S,
            r.first_pmd_race_ms.map(|ms| ms as f64 / 1000.0),
        ),
        (
            MIGRATED_BYTES_PER_S,
            migrated.filter(|_| secs > 0.0).map(|m| m * PAGE / secs),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (party, rate) in r.rates {
        values.insert(format!("{OPS}{party}"), Some(*rate));
    }
    Some(Metrics {
        values,
        crosscheck_ok: r.m.crosscheck_ok,
    })
}

/// (seconds since the phase started, cumulative pmd_race) from the
/// snapshots the driver streamed during the phase.
fn series(snapshots: &[(u64, Option<u64>)], phase: &PhaseRun) -> Series {
    let (Some(t0), Some(t1)) = (phase.t_start_ms, phase.t_end_ms) else {
        return Vec::new();
    };
    let mut base: Option<u64> = None;
    let mut pts = vec![(0.0, 0)];
    for &(t, v) in snapshots {
        if t <= t0 {
            base = v;
            continue;
        }
        if t > t1 + 50 {
            break;
        }
        let Some(v) = v else { continue };
        let b = *base.get_or_insert(0);
        pts.push(((t - t0) as f64 / 1000.0, v.saturating_sub(b)));
    }
    if let Some(r) = race_phase(phase) {
        let elapsed = r.elapsed_ms as f64 / 1000.0;
        let last = pts[pts.len() - 1];
        if let Some(end) = r.m.counters_delta.get(name::PMD_RACE) {
            if elapsed > last.0 {
                pts.push((elapsed, (*end).max(last.1)));
            }
        }
    }
    pts
}

/// How the race-only kernel fared in one boot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VariantRun {
    pub ran: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_elapsed_s: Option<f64>,
    pub crashed: bool,
    /// The finding's console line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
    /// The driver's failure, for a run that did not crash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_error: Option<String>,
    pub time_to_crash_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_to_crash_how: Option<String>,
}

fn variant_run(rep: &Report) -> VariantRun {
    let crashed = matches!(rep.verdict, Verdict::KernelProblem | Verdict::Hang);
    let driver_error = match &rep.result {
        Some(Msg::Result {
            ok: false, message, ..
        }) if !crashed => Some(message.clone()),
        _ => None,
    };
    // The host measured it (report.catch): the finding's kernel time minus
    // mmrace.ko's load, or the driver's last message before the crash.
    let how = rep.catch.to_catch_clock.map(|c| match c {
        crate::judge::catch::CatchClock::Kernel => {
            "kernel clock: finding line minus 'mmrace ... loaded'".to_string()
        }
        crate::judge::catch::CatchClock::DriverLastMessage => {
            "driver time of its last message before the crash".to_string()
        }
        crate::judge::catch::CatchClock::Oracle => {
            "driver time of the oracle's finding (no console finding)".to_string()
        }
    });
    VariantRun {
        ran: true,
        verdict: Some(rep.verdict),
        class: rep.class().map(str::to_string),
        reason: Some(rep.reason.clone()),
        guest_elapsed_s: rep.guest_elapsed_s,
        crashed,
        finding: rep
            .finding
            .as_ref()
            .map(|f| f.first_line().text.trim().to_string()),
        driver_error,
        time_to_crash_s: rep.catch.to_catch_s.filter(|_| crashed),
        time_to_crash_how: how.filter(|_| crashed),
    }
}

/// One target of the bench issue and whether it was met.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub target: String,
    pub want: String,
    pub measured: Option<String>,
    /// In every seed (true), in none (false), open (None): in some, or not
    /// enough data to tell.
    pub met: Option<bool>,
}

/// True when every seed meets it, false when none does, None (open) when
/// some do, or when there is nothing to judge.
fn per_seed(st: &Stats, ok: impl Fn(f64) -> bool, none_fails: bool) -> Option<bool> {
    let judged: Vec<bool> = st
        .values
        .iter()
        .filter_map(|v| match v {
            Some(v) => Some(ok(*v)),
            None => none_fails.then_some(false),
        })
        .collect();
    if judged.is_empty() {
        return None;
    }
    match (judged.iter().all(|x| *x), judged.iter().any(|x| *x)) {
        (true, _) => Some(true),
        (false, false) => Some(false),
        _ => None,
    }
}

/// One configuration's figures over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigFigures {
    #[serde(flatten)]
    pub metrics: BTreeMap<String, Stats>,
    pub runs_with_result: usize,
    pub crosscheck_ok: Vec<Option<bool>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    pub memcpy_bytes_per_s: Stats,
    pub idle_migrate_bytes_per_s: Stats,
    pub idle_migrate_fraction_of_memcpy: Stats,
    pub writer_memset_bytes_per_s: Stats,
    pub writer_stamped_bytes_per_s: Stats,
    pub writer_stamped_vs_memset_pct: Stats,
    pub migrated_fraction_of_memcpy: BTreeMap<String, Stats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeOverhead {
    /// % slower with mmrace.ko loaded, geometric mean over the parties.
    pub geomean: Stats,
    pub per_party: BTreeMap<String, Stats>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    pub name: String,
    pub cap_s: Option<f64>,
    pub runs: BTreeMap<String, VariantRun>,
}

/// bench.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchSummary {
    pub bench_id: String,
    pub seeds: Vec<Option<u64>>,
    pub phase_secs: u64,
    pub boots: String,
    pub accel: Option<String>,
    pub kernel: String,
    pub configs: BTreeMap<String, ConfigFigures>,
    pub ratios: BTreeMap<String, BTreeMap<String, Option<Ratio>>>,
    pub baseline_rate_upper_bound_per_min: Option<f64>,
    pub limits: Limits,
    pub probe_overhead_pct: ProbeOverhead,
    /// The `loops` phase per pair: rounds/s of the standalone loop and of
    /// pairs, and pairs' over the loop's, over the seeds.
    pub pairs_vs_loop: BTreeMap<String, LoopFigures>,
    pub variant: Variant,
    pub targets: Vec<Target>,
    pub errors: Vec<String>,
    pub runs: Vec<String>,
    pub plot: String,
}

/// One pair of the `loops` phase over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopFigures {
    pub loop_rounds_per_s: Stats,
    pub pairs_rounds_per_s: Stats,
    pub ratio: Stats,
}

/// pairs' share of the standalone loop's rate that issue 17.4 asks for.
const LOOP_RATIO_TARGET: f64 = 0.5;

/// The `loops` phase's pairs, over the seeds.
fn pairs_vs_loop(runs: &[CleanRun]) -> BTreeMap<String, LoopFigures> {
    let mut by: BTreeMap<String, Vec<&mmrace_proto::results::bench::LoopPair>> = BTreeMap::new();
    for r in runs {
        if let Some(PhaseResult::Loops(l)) = r.phase("loops").and_then(|p| p.result.as_ref()) {
            for p in &l.pairs {
                by.entry(p.name.clone()).or_default().push(p);
            }
        }
    }
    let rate = |n: u64, s: f64| Some(n as f64 / s.max(1e-3));
    by.into_iter()
        .map(|(name, ps)| {
            let f = LoopFigures {
                loop_rounds_per_s: Stats::of(
                    ps.iter()
                        .map(|p| rate(p.loop_rounds, p.loop_secs))
                        .collect(),
                ),
                pairs_rounds_per_s: Stats::of(
                    ps.iter()
                        .map(|p| rate(p.pairs_rounds, p.pairs_secs))
                        .collect(),
                ),
                ratio: Stats::of(ps.iter().map(|p| p.ratio).collect()),
            };
            (name, f)
        })
        .collect()
}

fn loops_target(loops: &BTreeMap<String, LoopFigures>) -> Target {
    let medians: Vec<Option<f64>> = loops.values().map(|f| f.ratio.median).collect();
    let met = (!medians.is_empty() && medians.iter().all(Option::is_some))
        .then(|| medians.iter().flatten().all(|&m| m >= LOOP_RATIO_TARGET));
    target(
        "pairs vs standalone loop (rounds/s, each pair)",
        format!(">= {LOOP_RATIO_TARGET}"),
        (!loops.is_empty()).then(|| {
            loops
                .iter()
                .map(|(n, f)| format!("{n} {}", f.ratio.cell("-")))
                .collect::<Vec<_>>()
                .join("; ")
        }),
        met,
    )
}

fn write_loops(t: &mut String, loops: &BTreeMap<String, LoopFigures>) {
    if loops.is_empty() {
        return;
    }
    let _ = writeln!(
        t,
        "pairs vs a minimal standalone loop of the same pair (rounds/s, one boot per seed, side by side):"
    );
    for (n, f) in loops {
        let _ = writeln!(
            t,
            "    {n:<32} loop {}  pairs {}  ratio {}",
            f.loop_rounds_per_s.cell("-"),
            f.pairs_rounds_per_s.cell("-"),
            f.ratio.cell("-")
        );
    }
    let _ = writeln!(t);
}

/// One clean-kernel boot of the bench scenario.
pub struct CleanRun {
    pub dir_name: String,
    pub report: Report,
    pub data: BenchResult,
    /// (t_ms, pmd_race) of every snapshot in wire.log.
    pub snapshots: Vec<(u64, Option<u64>)>,
}

impl CleanRun {
    fn seed(&self) -> Option<u64> {
        self.report.meta.spec.as_ref().map(|s| s.seed)
    }

    fn phase(&self, name: &str) -> Option<&PhaseRun> {
        self.data.phases.get(name)
    }
}

/// Everything a bench directory holds.
pub struct Bench {
    pub id: String,
    pub dir: PathBuf,
    pub runs: Vec<CleanRun>,
    pub variants: BTreeMap<String, VariantRun>,
    pub errors: Vec<String>,
}

fn read_report(path: &Path) -> anyhow::Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a report.json", path.display()))
}

/// The snapshots of a wire.log, through the host's own decoder.
fn wire_snapshots(path: &Path) -> Vec<(u64, Option<u64>)> {
    let mut msgs = Messages::new();
    if let Ok(text) = std::fs::read(path) {
        for line in String::from_utf8_lossy(&text).lines() {
            msgs.feed(line);
        }
    }
    msgs.snapshots
        .iter()
        .filter_map(snapshot_view)
        .map(|s| (s.t_ms, s.counters.get(name::PMD_RACE).copied()))
        .collect()
}

impl Bench {
    /// Reads DIR's clean-s*/ and variant-{a,b,c}/ runs.
    pub fn load(dir: &Path) -> anyhow::Result<Bench> {
        let mut errors = Vec::new();
        let mut clean: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("clean-s"))
                    && p.join("report.json").is_file()
            })
            .collect();
        clean.sort();
        let mut runs = Vec::new();
        for rd in clean {
            let dir_name = rd
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let report = read_report(&rd.join("report.json"))?;
            if report.verdict != Verdict::Clean {
                errors.push(format!(
                    "{dir_name}: verdict {}: {}",
                    verdict_name(report.verdict),
                    report.reason
                ));
            }
            let (data, message) = match &report.result {
                Some(Msg::Result { data, message, .. }) => (
                    match data.as_deref() {
                        Some(ScenarioResult::Bench(b)) => Some((**b).clone()),
                        _ => None,
                    },
                    message.clone(),
                ),
                _ => (None, "no result".to_string()),
            };
            let Some(data) = data.filter(|d| !d.phases.is_empty()) else {
                errors.push(format!(
                    "{dir_name}: no bench phases in the result ({message})"
                ));
                continue;
            };
            for (name, ph) in &data.phases {
                if let Some(e) = &ph.error {
                    errors.push(format!("{dir_name}: phase {name}: {e}"));
                }
            }
            runs.push(CleanRun {
                snapshots: wire_snapshots(&rd.join("wire.log")),
                dir_name,
                report,
                data,
            });
        }
        let mut variants = BTreeMap::new();
        for (cfg, _) in CONFIGS {
            let p = dir.join(format!("variant-{cfg}")).join("report.json");
            let v = match p.is_file() {
                true => variant_run(&read_report(&p)?),
                false => VariantRun::default(),
            };
            variants.insert(cfg.to_string(), v);
        }
        let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Ok(Bench {
            id: abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir: dir.to_path_buf(),
            runs,
            variants,
            errors,
        })
    }
}

fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The summary's figures, its table and its plot.
pub struct Summary {
    pub json: BenchSummary,
    pub table: String,
    pub svg: String,
}

/// Works out the figures and the table of a loaded bench directory.
pub fn summarise(b: &Bench, variant: &str, cap: Option<f64>) -> Summary {
    let runs = &b.runs;
    let phase_secs = runs.first().map_or(0, |r| r.data.phase_secs);
    let configs = config_figures(runs);
    let limits = limits(runs);
    let probe = probe_overhead(runs);
    let metric_keys = metric_keys(&configs);
    let baseline = Baseline::of(&configs);
    let ratios = ratios(&configs, &metric_keys, &baseline);
    let loops = pairs_vs_loop(runs);
    let mut targets = targets(b, &configs, &baseline, &limits, &probe);
    if !loops.is_empty() {
        targets.push(loops_target(&loops));
    }
    let head = Head::of(b);

    let mut t = String::new();
    write_head(&mut t, b, &head, phase_secs);
    let table = MetricTable {
        configs: &configs,
        ratios: &ratios,
        keys: &metric_keys,
        baseline: &baseline,
        phase_secs,
    };
    table.write(&mut t);
    write_limits(&mut t, &limits, &probe);
    write_loops(&mut t, &loops);
    write_variants(&mut t, b, variant, cap);
    write_targets(&mut t, &targets, &b.errors);
    let svg = plot(runs, phase_secs);

    let json = BenchSummary {
        bench_id: b.id.clone(),
        seeds: head.seeds,
        phase_secs,
        boots: "one boot per seed for mem, a, b, overhead, c and loops; one boot per variant run"
            .into(),
        accel: head.accel,
        kernel: head.kernel_path,
        configs,
        ratios,
        baseline_rate_upper_bound_per_min: baseline.bound,
        limits,
        probe_overhead_pct: probe,
        pairs_vs_loop: loops,
        variant: Variant {
            name: variant.to_string(),
            cap_s: cap,
            runs: b.variants.clone(),
        },
        targets,
        errors: b.errors.clone(),
        runs: runs.iter().map(|r| r.dir_name.clone()).collect(),
        plot: PLOT.into(),
    };
    Summary {
        json,
        table: t,
        svg,
    }
}

type Configs = BTreeMap<String, ConfigFigures>;
type Ratios = BTreeMap<String, BTreeMap<String, Option<Ratio>>>;

/// A config's figures for one metric.
fn stat<'a>(configs: &'a Configs, cfg: &str, key: &str) -> Option<&'a Stats> {
    configs.get(cfg).and_then(|c| c.metrics.get(key))
}

/// The median of a config's metric.
fn med(configs: &Configs, cfg: &str, key: &str) -> Option<f64> {
    stat(configs, cfg, key).and_then(|s| s.median)
}

/// Per-config metrics over the seeds.
fn config_figures(runs: &[CleanRun]) -> Configs {
    CONFIGS
        .iter()
        .map(|(cfg, _)| (cfg.to_string(), one_config(runs, cfg)))
        .collect()
}

fn one_config(runs: &[CleanRun], cfg: &str) -> ConfigFigures {
    let rows: Vec<Option<Metrics>> = runs
        .iter()
        .map(|r| r.phase(cfg).and_then(phase_metrics))
        .collect();
    let mut keys: Vec<&String> = rows
        .iter()
        .flatten()
        .flat_map(|m| m.values.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let metrics = keys
        .into_iter()
        .map(|k| {
            let vals = rows
                .iter()
                .map(|m| m.as_ref().and_then(|m| m.values.get(k).copied().flatten()))
                .collect();
            (k.clone(), Stats::of(vals))
        })
        .collect();
    ConfigFigures {
        metrics,
        runs_with_result: rows.iter().flatten().count(),
        crosscheck_ok: rows
            .iter()
            .map(|m| m.as_ref().map(|m| m.crosscheck_ok))
            .collect(),
    }
}

/// Limits: memcpy, idle migration, the writer's cost, migrated bytes/s in
/// each config.
fn limits(runs: &[CleanRun]) -> Limits {
    let mem: Vec<_> = runs
        .iter()
        .map(|r| match r.phase("mem").and_then(|p| p.result.as_ref()) {
            Some(PhaseResult::Mem(m)) => Some(m),
            _ => None,
        })
        .collect();
    let over_mem = |f: &dyn Fn(&mmrace_proto::results::bench::MemPhase) -> Option<f64>| {
        Stats::of(mem.iter().map(|m| m.and_then(f)).collect())
    };
    Limits {
        memcpy_bytes_per_s: over_mem(&|m| Some(m.memcpy.bytes_per_s)),
        idle_migrate_bytes_per_s: over_mem(&|m| Some(m.idle_migrate.bytes_per_s)),
        idle_migrate_fraction_of_memcpy: over_mem(&|m| {
            finite(ratio(
                Some(m.idle_migrate.bytes_per_s),
                Some(m.memcpy.bytes_per_s),
            ))
        }),
        writer_memset_bytes_per_s: over_mem(&|m| {
            m.writer_cost.as_ref().map(|w| w.memset_bytes_per_s)
        }),
        writer_stamped_bytes_per_s: over_mem(&|m| {
            m.writer_cost.as_ref().map(|w| w.stamped_bytes_per_s)
        }),
        writer_stamped_vs_memset_pct: over_mem(&|m| {
            m.writer_cost.as_ref().map(|w| w.stamped_vs_memset_pct)
        }),
        migrated_fraction_of_memcpy: migrated_fractions(runs, &mem),
    }
}

/// Each config's migrated bytes/s as a fraction of its boot's memcpy.
fn migrated_fractions(
    runs: &[CleanRun],
    mem: &[Option<&mmrace_proto::results::bench::MemPhase>],
) -> BTreeMap<String, Stats> {
    let mut fractions = BTreeMap::new();
    for (cfg, _) in CONFIGS {
        let vals = runs
            .iter()
            .zip(mem)
            .map(|(r, m)| {
                let pm = r.phase(cfg).and_then(phase_metrics)?;
                let moved = pm.values.get(MIGRATED_BYTES_PER_S).copied().flatten();
                finite(ratio(moved, Some(m.as_ref()?.memcpy.bytes_per_s)))
            })
            .collect();
        fractions.insert(cfg.to_string(), Stats::of(vals));
    }
    fractions
}

/// Probe overhead: thp-race with mmrace.ko loaded vs unloaded, in
/// alternating segments of the `overhead` phase, same boot.
fn probe_overhead(runs: &[CleanRun]) -> ProbeOverhead {
    let mut overhead: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    let mut geo = Vec::new();
    for r in runs {
        let Some(PhaseResult::Overhead(o)) = r.phase("overhead").and_then(|p| p.result.as_ref())
        else {
            geo.push(None);
            continue;
        };
        let mut logs = Vec::new();
        for (party, &lr) in &o.loaded.rates {
            let Some(&ur) = o.unloaded.rates.get(party) else {
                continue;
            };
            if ur == 0.0 || party == "kills" {
                continue;
            }
            overhead
                .entry(party.clone())
                .or_default()
                .push(Some((1.0 - lr / ur) * 100.0));
            if lr > 0.0 {
                logs.push((lr / ur).ln());
            }
        }
        geo.push(
            (!logs.is_empty())
                .then(|| (1.0 - (logs.iter().sum::<f64>() / logs.len() as f64).exp()) * 100.0),
        );
    }
    ProbeOverhead {
        geomean: Stats::of(geo),
        per_party: overhead
            .into_iter()
            .map(|(p, v)| (p, Stats::of(v)))
            .collect(),
    }
}

/// The table's metrics: the race figures, then the op rate of every party
/// some config has.
fn metric_keys(configs: &Configs) -> Vec<String> {
    let mut keys: Vec<String> = [
        PMD_RACE_PER_MIN,
        THP_SPLIT_PER_MIN,
        THP_SPLIT_FAILED_PER_MIN,
        FIRST_PMD_RACE_S,
        MIGRATED_BYTES_PER_S,
    ]
    .map(String::from)
    .to_vec();
    for p in PARTIES {
        let k = format!("{OPS}{p}");
        if CONFIGS.iter().any(|(c, _)| stat(configs, c, &k).is_some()) {
            keys.push(k);
        }
    }
    keys
}

/// The shell baseline's minutes and, when it saw no race at all, the
/// bound on its rate: below 1 per total minutes run.
struct Baseline {
    total_min: f64,
    bound: Option<f64>,
}

impl Baseline {
    fn of(configs: &Configs) -> Baseline {
        let sum_of = |key: &str| {
            stat(configs, "a", key).map_or(0.0, |s| {
                s.values.iter().flatten().filter(|v| **v != 0.0).sum()
            })
        };
        let total_min = sum_of(SECS) / 60.0;
        let races = sum_of(PMD_RACE);
        let bound = (configs["a"].runs_with_result > 0 && races == 0.0 && total_min > 0.0)
            .then(|| 1.0 / total_min);
        Baseline { total_min, bound }
    }
}

/// Ratios of medians, (b)/(a) and (c)/(a), and the lower bound of the race
/// rate's ratio when (a) saw none.
fn ratios(configs: &Configs, keys: &[String], baseline: &Baseline) -> Ratios {
    let mut ratios: Ratios = BTreeMap::new();
    for cfg in ["b", "c"] {
        let row = ratios.entry(format!("{cfg}/a")).or_default();
        for k in keys {
            row.insert(k.clone(), ratio(med(configs, cfg, k), med(configs, "a", k)));
        }
    }
    if let Some(bnd) = baseline.bound {
        for cfg in ["b", "c"] {
            let lb = med(configs, cfg, PMD_RACE_PER_MIN).map(|b| Ratio::Finite(b / bnd));
            ratios
                .entry(format!("{cfg}/a"))
                .or_default()
                .insert("pmd_race_per_min_lower_bound".into(), lb);
        }
    }
    ratios
}

fn target(name: &str, want: String, measured: Option<String>, met: Option<bool>) -> Target {
    Target {
        target: name.into(),
        want,
        measured,
        met,
    }
}

/// The bench issue's targets, judged.
fn targets(
    b: &Bench,
    configs: &Configs,
    baseline: &Baseline,
    limits: &Limits,
    probe: &ProbeOverhead,
) -> Vec<Target> {
    let empty = Stats::of(Vec::new());
    let st = |cfg: &str, key: &str| stat(configs, cfg, key).unwrap_or(&empty);
    let first_race = |cfg: &str| {
        target(
            &format!("time to first pmd_race, ({cfg})"),
            format!("<= {} s", g3(TARGET_FIRST_RACE_S)),
            st(cfg, FIRST_PMD_RACE_S).shown(),
            per_seed(
                st(cfg, FIRST_PMD_RACE_S),
                |v| v <= TARGET_FIRST_RACE_S,
                true,
            ),
        )
    };
    let fraction_b = &limits.migrated_fraction_of_memcpy["b"];
    vec![
        target(
            "(b) pmd_race/min",
            format!(">= {}", g3(TARGET_B_RACES_PER_MIN)),
            st("b", PMD_RACE_PER_MIN).shown(),
            per_seed(
                st("b", PMD_RACE_PER_MIN),
                |v| v >= TARGET_B_RACES_PER_MIN,
                false,
            ),
        ),
        baseline_target(st("a", PMD_RACE_PER_MIN), baseline),
        first_race("b"),
        first_race("c"),
        variant_target(b),
        target(
            "probe overhead (geomean of op rates)",
            format!("<= {} %", g3(TARGET_OVERHEAD_PCT)),
            probe.geomean.shown(),
            per_seed(&probe.geomean, |v| v <= TARGET_OVERHEAD_PCT, false),
        ),
        target(
            "(b) migrated bytes/s / memcpy bytes/s",
            format!(">= {TARGET_MIGRATE_FRACTION}"),
            fraction_b.shown(),
            per_seed(fraction_b, |v| v >= TARGET_MIGRATE_FRACTION, false),
        ),
    ]
}

/// Zero races in T minutes only bound the rate below 1/T: the target is
/// judged only when that bound (or the measured rate) says so.
fn baseline_target(rate: &Stats, baseline: &Baseline) -> Target {
    let name = "(a) baseline pmd_race/min";
    let want = format!("< {TARGET_BASELINE_MAX_PER_MIN}");
    match baseline.bound {
        None => target(
            name,
            want,
            rate.shown(),
            per_seed(rate, |v| v < TARGET_BASELINE_MAX_PER_MIN, false),
        ),
        Some(bnd) => target(
            name,
            want,
            Some(format!("0 in {:.1} min (< {bnd:.2})", baseline.total_min)),
            (bnd < TARGET_BASELINE_MAX_PER_MIN).then_some(true),
        ),
    }
}

/// The race-only variant caught by (b) or (c) in time.
fn variant_target(b: &Bench) -> Target {
    let vt: Vec<f64> = ["b", "c"]
        .iter()
        .filter_map(|c| b.variants.get(*c).and_then(|v| v.time_to_crash_s))
        .collect();
    let v_ran = ["b", "c"]
        .iter()
        .any(|c| b.variants.get(*c).is_some_and(|v| v.ran));
    let vt_min = vt.iter().copied().reduce(f64::min);
    target(
        "variant caught by (b) or (c)",
        format!("<= {} s", g3(TARGET_VARIANT_S)),
        vt_min.map(|t| fmt(Some(t))),
        v_ran.then(|| vt_min.is_some_and(|t| t <= TARGET_VARIANT_S)),
    )
}

/// What the table's first line says about the boots.
struct Head {
    seeds: Vec<Option<u64>>,
    accel: Option<String>,
    kernel_path: String,
    kernel_name: String,
}

impl Head {
    fn of(b: &Bench) -> Head {
        let rep0 = b.runs.first().map(|r| &r.report);
        let kernel_path = rep0.map(|r| r.meta.kernel.clone()).unwrap_or_default();
        // .../kernel/<build>/arch/x86/boot/bzImage: the build's name.
        let kernel_name = Path::new(&kernel_path)
            .ancestors()
            .nth(4)
            .and_then(|p| p.file_name())
            .map_or_else(|| kernel_path.clone(), |n| n.to_string_lossy().into_owned());
        Head {
            seeds: b.runs.iter().map(CleanRun::seed).collect(),
            accel: rep0
                .and_then(|r| r.meta.accel)
                .map(|a| a.name().to_string()),
            kernel_path,
            kernel_name,
        }
    }
}

fn write_head(t: &mut String, b: &Bench, head: &Head, phase_secs: u64) {
    let seeds_text = head
        .seeds
        .iter()
        .map(|s| s.map_or("None".to_string(), |s| s.to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        t,
        "\nmmrace bench {}: seeds [{seeds_text}], {phase_secs} s per phase, accel {}, kernel {}",
        b.id,
        head.accel.as_deref().unwrap_or("None"),
        head.kernel_name
    );
    let _ = writeln!(
        t,
        "one boot per seed runs mem, a, b, overhead, c back to back; values are median [min..max] over the seeds\n"
    );
}

/// A metric's row label.
fn label(k: &str) -> String {
    match k {
        PMD_RACE_PER_MIN => "pmd_race / min".into(),
        THP_SPLIT_PER_MIN => "THP splits / min".into(),
        THP_SPLIT_FAILED_PER_MIN => "thp_split_failed / min".into(),
        FIRST_PMD_RACE_S => "time to first pmd_race, s".into(),
        MIGRATED_BYTES_PER_S => "migrated MB/s".into(),
        _ => k
            .strip_prefix(OPS)
            .map_or(k.to_string(), |p| format!("ops/s {p}")),
    }
}

/// The metrics table: a row per metric, a column per config, the ratios.
struct MetricTable<'a> {
    configs: &'a Configs,
    ratios: &'a Ratios,
    keys: &'a [String],
    baseline: &'a Baseline,
    phase_secs: u64,
}

const W0: usize = 28;
const W1: usize = 24;

impl MetricTable<'_> {
    fn write(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "{:<W0$}{:>W1$}{:>W1$}{:>W1$}{:>9}{:>9}",
            "metric", "(a) shell", "(b) mmrace", "(c) amplified", "b/a", "c/a"
        );
        for k in self.keys {
            let cells: Vec<String> = CONFIGS.iter().map(|(cfg, _)| self.cell(cfg, k)).collect();
            let (rb, rc) = (self.ratios["b/a"][k], self.ratios["c/a"][k]);
            let _ = writeln!(
                t,
                "{:<W0$}{:>W1$}{:>W1$}{:>W1$}{:>9}{:>9}",
                label(k),
                cells[0],
                cells[1],
                cells[2],
                fmt_ratio(rb),
                fmt_ratio(rc)
            );
        }
        self.write_bound(t);
        let _ = writeln!(t);
    }

    fn cell(&self, cfg: &str, k: &str) -> String {
        let ran = self.configs[cfg].runs_with_result;
        let mut s = stat(self.configs, cfg, k).cloned();
        if k == MIGRATED_BYTES_PER_S {
            s = s.map(|s| s.scaled(1e6));
        }
        let none = match (k == FIRST_PMD_RACE_S, ran > 0) {
            (true, true) => format!("none in {} s", self.phase_secs),
            _ => "-".to_string(),
        };
        let mut c = cell(s.as_ref(), &none);
        if let Some(s) = s
            .as_ref()
            .filter(|s| k == FIRST_PMD_RACE_S && s.n > 0 && s.n < ran)
        {
            let _ = write!(c, " ({} none)", ran - s.n);
        }
        c
    }

    fn write_bound(&self, t: &mut String) {
        let Some(bnd) = self.baseline.bound else {
            return;
        };
        let lb = |pair: &str| {
            fmt_ratio(
                self.ratios[pair]
                    .get("pmd_race_per_min_lower_bound")
                    .copied()
                    .flatten(),
            )
        };
        let _ = writeln!(
            t,
            "  (a) saw no pmd_race in {:.1} min: its rate is < {bnd:.2}/min, so b/a >= {}, c/a >= {}",
            self.baseline.total_min,
            lb("b/a"),
            lb("c/a")
        );
    }
}

/// MB/s of a bytes/s figure, `-` when there is none.
fn mb(s: &Stats) -> String {
    match s.n {
        0 => "-".to_string(),
        _ => s.scaled(1e6).cell("-"),
    }
}

fn write_limits(t: &mut String, l: &Limits, probe: &ProbeOverhead) {
    let _ = writeln!(
        t,
        "memcpy bandwidth:        {} MB/s",
        mb(&l.memcpy_bytes_per_s)
    );
    let _ = writeln!(
        t,
        "idle migrate_pages:      {} MB/s = {} of memcpy",
        mb(&l.idle_migrate_bytes_per_s),
        l.idle_migrate_fraction_of_memcpy.cell("-")
    );
    for (cfg, _) in CONFIGS {
        let _ = writeln!(
            t,
            "migrated under {cfg}:       {} of memcpy",
            l.migrated_fraction_of_memcpy[cfg].cell("-")
        );
    }
    let _ = writeln!(
        t,
        "thp-race writer, memset: {} MB/s; stamped (data oracle): {} MB/s = {} % vs memset (target: within 20 %)",
        mb(&l.writer_memset_bytes_per_s),
        mb(&l.writer_stamped_bytes_per_s),
        l.writer_stamped_vs_memset_pct.shown().unwrap_or_else(|| "-".into())
    );
    let _ = writeln!(
        t,
        "probe overhead (thp-race op rates, mmrace.ko loaded vs unloaded, alternating segments of one boot; % slower, geomean over parties): {}",
        probe.geomean.cell("-")
    );
    for (p, s) in &probe.per_party {
        let _ = writeln!(t, "    {p:<16} {} %", s.cell("-"));
    }
    let _ = writeln!(t);
}

fn write_variants(t: &mut String, b: &Bench, variant: &str, cap: Option<f64>) {
    let _ = writeln!(
        t,
        "race-only variant {variant}, one boot each, capped at {} s:",
        fmt(cap)
    );
    for (cfg, label) in CONFIGS {
        let _ = writeln!(t, "    {label:<24} {}", variant_text(&b.variants[cfg]));
    }
    let _ = writeln!(t);
}

/// What one variant boot did, in a line.
fn variant_text(v: &VariantRun) -> String {
    if !v.ran {
        "not run".to_string()
    } else if v.crashed {
        let f: String = v
            .finding
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(70)
            .collect();
        format!(
            "crashed after {} s ({}): {f}",
            fmt(v.time_to_crash_s),
            v.class.as_deref().unwrap_or("None")
        )
    } else if let Some(e) = &v.driver_error {
        let e: String = e.chars().take(90).collect();
        format!("driver error: {e}")
    } else {
        format!(
            "survived {} s (verdict {})",
            fmt(v.guest_elapsed_s),
            v.verdict.map_or("None".into(), verdict_name)
        )
    }
}

fn write_targets(t: &mut String, targets: &[Target], errors: &[String]) {
    let _ = writeln!(t, "targets:");
    for x in targets {
        let state = match x.met {
            Some(true) => "met ",
            None => "open",
            Some(false) => "MISS",
        };
        let _ = writeln!(
            t,
            "    {state}  {:<40} want {:<9} measured {}",
            x.target,
            x.want,
            x.measured.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(
        t,
        "    (met/MISS: in every seed / in none; open: in some, or not enough data to tell)"
    );
    for e in errors {
        let _ = writeln!(t, "ERROR: {e}");
    }
}

/// Cumulative pmd_race of every seed's phase, per config.
fn plot(runs: &[CleanRun], phase_secs: u64) -> String {
    let mut curves: Vec<(&str, Vec<Curve>)> = Vec::new();
    for (cfg, _) in CONFIGS {
        let mut cs = Vec::new();
        for r in runs {
            if let Some(ph) = r.phase(cfg) {
                if ph.t_start_ms.is_some() && ph.result.is_some() {
                    cs.push((r.seed(), series(&r.snapshots, ph)));
                }
            }
        }
        curves.push((cfg, cs));
    }
    svg_plot(&curves, phase_secs as f64)
}

/// The plot's file name in the bench directory.
pub const PLOT: &str = "pmd_race.svg";

/// (seconds, cumulative pmd_race) points of one phase.
type Series = Vec<(f64, u64)>;
/// One seed's series.
type Curve = (Option<u64>, Series);
type Curves<'a> = [(&'a str, Vec<Curve>)];

/// Cumulative pmd_race per phase, one line per seed and config; the y axis
/// is log10(1 + count).
fn svg_plot(curves: &Curves, phase_secs: f64) -> String {
    let p = Plot::new(curves, phase_secs);
    let mut el = p.head();
    p.y_grid(&mut el);
    p.x_grid(&mut el);
    p.frame(&mut el);
    p.lines(&mut el, curves);
    el.push("</svg>".into());
    el.join("\n") + "\n"
}

/// The plot's size, its margins and its scales.
struct Plot {
    w: f64,
    h: f64,
    /// The left and top margins.
    l: f64,
    top_m: f64,
    /// The plotting area's width and height.
    pw: f64,
    ph: f64,
    /// The x axis' end, in seconds.
    xmax: f64,
    /// The y axis' end, a power of ten.
    top: i32,
}

impl Plot {
    fn new(curves: &Curves, phase_secs: f64) -> Plot {
        let (w, h, l, r, top_m, b) = (760.0, 440.0, 70.0, 170.0, 40.0, 50.0);
        let points = || {
            curves
                .iter()
                .flat_map(|(_, cs)| cs.iter().flat_map(|(_, p)| p.iter()))
        };
        let ymax = points().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
        let xmax = points()
            .map(|p| p.0)
            .fold(if phase_secs > 0.0 { phase_secs } else { 1.0 }, f64::max);
        let top = (1.0 + ymax).log10();
        Plot {
            w,
            h,
            l,
            top_m,
            pw: w - l - r,
            ph: h - top_m - b,
            xmax,
            top: if top > 0.0 { top.ceil() as i32 } else { 1 },
        }
    }

    fn x(&self, t: f64) -> f64 {
        self.l + self.pw * t / self.xmax
    }

    fn y(&self, v: f64) -> f64 {
        self.top_m + self.ph * (1.0 - (1.0 + v).log10() / f64::from(self.top))
    }

    /// The svg element, its background and the title.
    fn head(&self) -> Vec<String> {
        let (w, h, l) = (self.w, self.h, self.l);
        vec![
            format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
            ),
            format!(r#"<rect width="{w}" height="{h}" fill="white"/>"#),
            format!(
                r#"<text x="{l}" y="22" font-size="14">Cumulative pmd_race over each phase (one line per seed; y is log10(1 + count))</text>"#
            ),
        ]
    }

    /// A grid line and a label at each power of ten of the y axis.
    fn y_grid(&self, el: &mut Vec<String>) {
        let (l, pw) = (self.l, self.pw);
        for k in 0..=self.top {
            let v = if k > 0 { 10f64.powi(k) - 1.0 } else { 0.0 };
            let yy = self.y(v);
            el.push(format!(
                r##"<line x1="{l}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/>"##,
                l + pw
            ));
            el.push(format!(
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                l - 6.0,
                yy + 4.0,
                if k > 0 { 10i64.pow(k as u32) } else { 0 }
            ));
        }
    }

    /// A grid line and a label every few seconds of the x axis.
    fn x_grid(&self, el: &mut Vec<String>) {
        let (top_m, ph, xmax) = (self.top_m, self.ph, self.xmax);
        let step = if xmax > 10.0 {
            ((xmax / 6.0 / 5.0).round() * 5.0).max(1.0)
        } else {
            1.0
        };
        let mut tick = 0.0;
        while tick <= xmax + 1e-9 {
            let xx = self.x(tick);
            el.push(format!(
                r##"<line x1="{xx:.1}" y1="{top_m}" x2="{xx:.1}" y2="{}" stroke="#eee"/>"##,
                top_m + ph
            ));
            el.push(format!(
                r#"<text x="{xx:.1}" y="{}" text-anchor="middle">{tick}</text>"#,
                top_m + ph + 16.0
            ));
            tick += step;
        }
    }

    /// The plotting area's frame and the axes' names.
    fn frame(&self, el: &mut Vec<String>) {
        let (l, top_m, pw, ph) = (self.l, self.top_m, self.pw, self.ph);
        el.push(format!(
            r#"<rect x="{l}" y="{top_m}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
        ));
        el.push(format!(
            r#"<text x="{}" y="{}" text-anchor="middle">seconds since the phase started</text>"#,
            l + pw / 2.0,
            self.h - 12.0
        ));
        el.push(format!(
            r#"<text x="16" y="{0}" text-anchor="middle" transform="rotate(-90 16 {0})">pmd_race (cumulative)</text>"#,
            top_m + ph / 2.0
        ));
    }

    /// A line per config and seed (a color per config, a dash per seed),
    /// each with its legend entry on the right.
    fn lines(&self, el: &mut Vec<String>, curves: &Curves) {
        let color = |cfg: &str| match cfg {
            "a" => "#7f7f7f",
            "b" => "#1f77b4",
            "c" => "#d62728",
            _ => "black",
        };
        let dashes = ["", "6,3", "2,2", "8,2,2,2", "1,3"];
        let right = self.l + self.pw;
        let mut ly = self.top_m + 10.0;
        for (cfg, cs) in curves {
            for (i, (seed, pts)) in cs.iter().enumerate() {
                let Some(last) = pts.last() else { continue };
                let d = pts
                    .iter()
                    .map(|(t, v)| format!("{:.1},{:.1}", self.x(*t), self.y(*v as f64)))
                    .collect::<Vec<_>>()
                    .join(" ");
                let dash = match dashes[i % dashes.len()] {
                    "" => String::new(),
                    d => format!(r#" stroke-dasharray="{d}""#),
                };
                let c = color(cfg);
                el.push(format!(
                    r#"<polyline fill="none" stroke="{c}" stroke-width="1.6"{dash} points="{d}"/>"#
                ));
                el.push(format!(
                    r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>"#,
                    right + 10.0,
                    right + 34.0
                ));
                let seed = seed.map_or("None".to_string(), |s| s.to_string());
                el.push(format!(
                    r#"<text x="{}" y="{}">{cfg} seed {seed}: {}</text>"#,
                    right + 40.0,
                    ly + 4.0,
                    last.1
                ));
                ly += 16.0;
            }
        }
    }
}

/// Writes bench.json and the plot into the bench directory.
pub fn write(b: &Bench, s: &Summary) -> anyhow::Result<(PathBuf, PathBuf)> {
    let json = b.dir.join("bench.json");
    let svg = b.dir.join(PLOT);
    std::fs::write(&json, serde_json::to_string_pretty(&s.json)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    std::fs::write(&svg, &s.svg).with_context(|| format!("writing {}", svg.display()))?;
    Ok((json, svg))
}

/// The `bench-summary` subcommand: 0 fine, 1 a phase or run failed (listed
/// under the table), 2 no usable run or an I/O error.
pub fn main(a: &crate::args::BenchSummaryArgs) -> i32 {
    let b = match Bench::load(&a.dir) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench-summary: {e:#}");
            return 2;
        }
    };
    if b.runs.is_empty() {
        eprintln!(
            "bench-summary: no usable clean-s*/report.json under {}",
            a.dir.display()
        );
        for e in &b.errors {
            eprintln!("  {e}");
        }
        return 2;
    }
    let s = summarise(&b, &a.variant, a.cap);
    print!("{}", s.table);
    match write(&b, &s) {
        Ok((json, svg)) => println!("\nwrote {} and {}", json.display(), svg.display()),
        Err(e) => {
            eprintln!("bench-summary: {e:#}");
            return 2;
        }
    }
    i32::from(!b.errors.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `make bench` directory: one 5 s-phase seed of the clean
    /// kernel (bench-smoke's), and variant-c: a thp-race --amplify run on
    /// pmd-trust-unlocked-check that crashed.
    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bench/bench-fixture")
    }

    #[test]
    fn number_formats() {
        assert_eq!(g3(1.7666), "1.77");
        assert_eq!(g3(0.932), "0.932");
        assert_eq!(g3(0.8), "0.8");
        assert_eq!(g3(100.0), "100");
        assert_eq!(g3(1234.0), "1.23e+03");
        assert_eq!(g3(0.00001234), "1.23e-05");
        assert_eq!(fmt(Some(599.88)), "600");
        assert_eq!(fmt(Some(46.6)), "46.6");
        assert_eq!(fmt(Some(0.0)), "0.000");
        assert_eq!(fmt(None), "-");
        assert_eq!(fmt_ratio(ratio(Some(3.0), Some(0.0))), "inf");
        assert_eq!(fmt_ratio(ratio(Some(0.0), Some(0.0))), "-");
    }

    #[test]
    fn stats_and_targets() {
        let s = Stats::of(vec![Some(3.0), None, Some(1.0), Some(2.0), Some(10.0)]);
        assert_eq!(
            (s.median, s.min, s.max, s.n),
            (Some(2.5), Some(1.0), Some(10.0), 4)
        );
        assert_eq!(s.cell("-"), "2.50 [1.00..10.0]");
        assert_eq!(per_seed(&s, |v| v > 0.0, false), Some(true));
        // A seed without a value fails where none_fails says so.
        assert_eq!(per_seed(&s, |v| v > 0.0, true), None);
        assert_eq!(
            per_seed(&Stats::of(vec![None]), |_| true, true),
            Some(false)
        );
        assert_eq!(per_seed(&s, |v| v > 2.0, false), None);
        assert_eq!(per_seed(&Stats::of(vec![None]), |_| true, false), None);
    }

    #[test]
    fn loops_target_needs_every_pair_at_half_the_loop() {
        let fig = |r: f64| LoopFigures {
            loop_rounds_per_s: Stats::of(vec![Some(10.0)]),
            pairs_rounds_per_s: Stats::of(vec![Some(10.0 * r)]),
            ratio: Stats::of(vec![Some(r)]),
        };
        let mut m = BTreeMap::new();
        m.insert("a".to_string(), fig(0.8));
        assert_eq!(loops_target(&m).met, Some(true));
        m.insert("b".to_string(), fig(0.4));
        let t = loops_target(&m);
        assert_eq!(t.met, Some(false));
        assert!(t.measured.unwrap().contains("b 0.40"));
        let mut t = String::new();
        write_loops(&mut t, &m);
        assert!(t.contains("ratio 0.40"), "{t}");
    }

    /// The table the Python summariser printed for the same directory
    /// (bench/summarise.py before it was ported), and the figures in
    /// bench.json and the plot.
    #[test]
    fn summarises_a_real_bench_directory() {
        let b = Bench::load(&fixture()).unwrap();
        assert_eq!(b.runs.len(), 1);
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        let s = summarise(&b, "pmd-trust-unlocked-check", Some(120.0));
        let want = std::fs::read_to_string(fixture().with_file_name("table.txt")).unwrap();
        assert_eq!(s.table, want);

        let j = &s.json;
        assert_eq!(j.seeds, [Some(1)]);
        assert_eq!(j.phase_secs, 5);
        let b_cfg = &j.configs["b"];
        assert_eq!(b_cfg.runs_with_result, 1);
        assert_eq!(b_cfg.crosscheck_ok, [Some(true)]);
        assert!(b_cfg.metrics[PMD_RACE].median.unwrap() > 0.0);
        assert_eq!(j.configs["a"].metrics[PMD_RACE].median, Some(0.0));
        assert_eq!(j.ratios["b/a"][PMD_RACE_PER_MIN], Some(Ratio::Infinite));
        assert!(j.baseline_rate_upper_bound_per_min.is_some());
        let c = &j.variant.runs["c"];
        assert!(c.crashed && c.time_to_crash_s == Some(0.71), "{c:?}");
        assert!(!j.variant.runs["b"].ran);
        assert_eq!(j.targets.len(), 7);
        assert_eq!(j.targets[4].met, Some(true));
        let text = serde_json::to_string(j).unwrap();
        assert!(text.contains(r#""pmd_race_per_min":"inf""#), "{text}");
        // One curve per config (one seed each), each starting at 0 and
        // ending at the phase's pmd_race delta.
        assert_eq!(s.svg.matches("<polyline").count(), 3);
        assert!(s.svg.contains("b seed 1: 4<"), "{}", s.svg);
    }

    #[test]
    fn a_directory_without_runs_is_refused() {
        let d = std::env::temp_dir().join(format!("bench-empty-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let b = Bench::load(&d).unwrap();
        assert!(b.runs.is_empty());
        let args = crate::args::BenchSummaryArgs {
            dir: d.clone(),
            variant: "none".into(),
            cap: None,
        };
        assert_eq!(main(&args), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
