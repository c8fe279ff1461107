//! `bench`: the phases of `make bench`, back to back in one boot, so they
//! share the kernel, the node layout and the guest's state:
//!
//! - `mem`: the physical limits: memcpy bandwidth of a large buffer, and how
//!   fast migrate_pages(2) moves an idle THP region between the nodes.
//! - `a`: the shell baseline, seed 000's reproducer (`shell-baseline`).
//! - `b`: mmrace's thp-race with its default parties.
//! - `overhead`: probe overhead. thp-race in short segments alternately with
//!   mmrace.ko loaded and unloaded (L U U L, `--overhead-rounds` times, so a
//!   drift over the phase cancels out); the op rates of the two states.
//! - `c`: thp-race with race-window amplification (`--amplify`).
//! - `loops`: for a few pairs, a minimal standalone two-thread loop
//!   ([`loops`]) and then `pairs --pair A,B --kind K` (at its default
//!   meets duty) for as long: rounds/s of each and their ratio.
//! - `meets` (not in the default list): what counting meets costs.
//!   thp-race in D E S S E D segments: mmrace.ko's meets probes disarmed
//!   (D), armed throughout (E), and sampled at the default duty (S); the
//!   op rates of the three states.
//!
//! Each phase runs `--phase-secs` on a context of its own that shares the
//! run's time base, stop flag and output, so events keep the run's clock.
//! Its op counts are mirrored into the run's snapshots as `PHASE.PARTY`, and
//! `phase_start` / `phase_end` events bracket it: the host's wire.log then
//! holds each phase's counters over time. A failing phase is recorded with
//! its error and the next one runs.
//!
//! The phases that are other scenarios (a, b, c, overhead, loops) run
//! through [`super::SubScenario`], with the options parsed as that
//! scenario's. The run itself leaves meets disarmed
//! ([`mmrace_proto::spec::Scenario::meets_plan`]): b and c count them as
//! thp-race's options say, loops' pairs as pairs' defaults do, and the
//! meets phase sets each segment's state.

mod loops;

use super::{Scenario, SubScenario};
use crate::ctx::{Ctx, OpRegistry};
use crate::shared::{measure, setup};
use anyhow::{Context, Result};
use mmrace_proto::meets::Sampling;
use mmrace_proto::results::bench::{
    BenchResult, IdleMigrate, LoopPair, LoopsPhase, MeetsPhase, MemPhase, Memcpy, OverheadPhase,
    PhaseResult, PhaseRun, Segments, WriterCost,
};
use mmrace_proto::results::thp_race::ThpRaceResult;
pub use mmrace_proto::spec::bench::{Args, Phase};
use mmrace_proto::spec::{pairs, shell_baseline, thp_race};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `NAME OPTIONS EXTRA...` parsed as that scenario's options.
fn sub_scenario(name: &str, options: &str, extra: &[&str]) -> Result<Scenario> {
    let words: Vec<String> = std::iter::once(name)
        .chain(options.split_whitespace())
        .chain(extra.iter().copied())
        .map(str::to_string)
        .collect();
    Scenario::parse(&words)
        .map_err(|e| anyhow::anyhow!("bench: {name} {options:?}: {}", e.render()))
}

fn thp_args(options: &str, extra: &[&str]) -> Result<thp_race::Args> {
    match sub_scenario("thp-race", options, extra)? {
        Scenario::ThpRace(a) => Ok(a),
        _ => unreachable!("parsed as thp-race"),
    }
}

fn pairs_args(options: &str) -> Result<pairs::Args> {
    match sub_scenario("pairs", options, &[])? {
        Scenario::Pairs(a) => Ok(a),
        _ => unreachable!("parsed as pairs"),
    }
}

/// Runs `body` with meets counted as `scenario`'s plan says for a run of
/// `secs` (its sampler stopped after), as a run of that scenario would.
fn with_meets<T>(scenario: Scenario, secs: u64, body: impl FnOnce() -> T) -> T {
    let baseline = crate::meets::Baseline::take(scenario.meets_plan(), Duration::from_secs(secs));
    let r = body();
    let _ = baseline.finish();
    r
}

fn baseline_args(options: &str) -> Result<shell_baseline::Args> {
    match sub_scenario("shell-baseline", options, &[])? {
        Scenario::ShellBaseline(a) => Ok(a),
        _ => unreachable!("parsed as shell-baseline"),
    }
}

/// A context for one phase: the run's clock, stop flag and output, its own
/// ops, and a deadline `secs` from now.
fn phase_ctx(ctx: &Ctx, secs: u64) -> Ctx {
    Ctx {
        seed: ctx.seed,
        duration: ctx.start.elapsed() + Duration::from_secs(secs),
        start: ctx.start,
        stop: ctx.stop.clone(),
        ops: OpRegistry::default(),
        out: ctx.out.clone(),
        oracle: ctx.oracle.clone(),
    }
}

/// Runs `body` on a phase context, mirroring its ops into the run's
/// snapshots as `PREFIX.PARTY` while it runs (no mirroring without one).
fn with_phase_ctx<T: Send>(
    ctx: &Ctx,
    prefix: Option<&str>,
    secs: u64,
    body: impl FnOnce(&Ctx) -> T + Send,
) -> T {
    let sub = phase_ctx(ctx, secs);
    let mirror = |sub: &Ctx| {
        let Some(prefix) = prefix else { return };
        for (k, v) in sub.ops.snapshot() {
            ctx.op(&format!("{prefix}.{k}")).store(v, Ordering::Relaxed);
        }
    };
    let r = std::thread::scope(|s| {
        let h = s.spawn(|| body(&sub));
        while !h.is_finished() {
            std::thread::sleep(Duration::from_millis(250));
            mirror(&sub);
        }
        h.join()
    });
    mirror(&sub);
    match r {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// memcpy of one `mib` MiB buffer into another, over and over for `secs`.
fn memcpy_bandwidth(mib: usize, secs: u64) -> Memcpy {
    let n = mib << 20;
    let src = vec![0x5au8; n];
    let mut dst = vec![0u8; n];
    dst.fill(1); // fault it in before timing
    let t = Instant::now();
    let mut copies = 0u64;
    while t.elapsed() < Duration::from_secs(secs) || copies == 0 {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        copies += 1;
    }
    let s = t.elapsed().as_secs_f64();
    let bytes = copies * n as u64;
    Memcpy {
        buffer_mib: mib,
        copies,
        secs: s,
        bytes,
        bytes_per_s: bytes as f64 / s,
    }
}

/// The thp-race writer's two store loops over one `mib` MiB THP region,
/// alternating in 8 slices each for `secs` in all.
pub fn writer_cost(oracle: &crate::oracle::Oracle, mib: usize, secs: u64) -> Result<WriterCost> {
    use mmrace_proto::oracle::{region, UNIT};
    let pmd = crate::mm::pmd_size();
    let map = crate::mm::AlignedMap::new(mib << 20, pmd)?;
    map.madvise(libc::MADV_HUGEPAGE)?;
    let (base, len) = (map.as_ptr() as usize, mib << 20);
    let slice = Duration::from_secs(secs).max(Duration::from_millis(160)) / 16;
    let (mut memset, mut stamped) = ((0u64, 0f64), (0u64, 0f64));
    let mut prev: Option<u64> = None;
    let mut gen = 0u64;
    for _ in 0..8 {
        // memset: the seed's loop.
        let t = Instant::now();
        while t.elapsed() < slice {
            gen += 1;
            // SAFETY: our own mapping, no references into it.
            unsafe { std::ptr::write_bytes(base as *mut u8, gen as u8, len) };
            std::hint::black_box(base);
            memset.0 += len as u64;
        }
        memset.1 += t.elapsed().as_secs_f64();
        // The memset destroyed the stamps: each stamped slice starts with
        // one pass that only fills, then checks and fills.
        let t = Instant::now();
        let mut first = true;
        while t.elapsed() < slice {
            gen += 1;
            if first {
                for u in 0..len / UNIT {
                    let s = mmrace_proto::oracle::Stamp {
                        region: region::WRITER,
                        page: u as u32,
                        generation: gen,
                    };
                    // SAFETY: our own mapping, no references into it.
                    unsafe { crate::oracle::mem::fill(base + u * UNIT, &s) };
                }
                first = false;
            } else {
                // SAFETY: our own mapping, no references into it.
                unsafe {
                    crate::oracle::mem::writer_pass(
                        oracle,
                        region::WRITER,
                        base,
                        len / UNIT,
                        prev,
                        gen,
                    )
                };
            }
            prev = Some(gen);
            stamped.0 += len as u64;
        }
        stamped.1 += t.elapsed().as_secs_f64();
    }
    let (m, st) = (memset.0 as f64 / memset.1, stamped.0 as f64 / stamped.1);
    Ok(WriterCost {
        region_mib: mib,
        memset_bytes_per_s: m,
        stamped_bytes_per_s: st,
        stamped_vs_memset_pct: (st / m - 1.0) * 100.0,
    })
}

/// The driver's own `mib` MiB THP region moved between the two nodes with
/// migrate_pages(2) for `secs`; bytes from vmstat pgmigrate_success.
fn idle_migrate(mib: usize, secs: u64, (a, b): (u32, u32)) -> Result<IdleMigrate> {
    let pmd = crate::mm::pmd_size();
    let map = crate::mm::AlignedMap::new(mib << 20, pmd)?;
    map.madvise(libc::MADV_HUGEPAGE)?;
    map.touch_all(1);
    let page = crate::mm::page_size() as u64;
    let before = crate::vmstat::read()?;
    let t = Instant::now();
    let mut calls = 0u64;
    let mut not_moved = 0u64;
    let mut forward = true;
    while t.elapsed() < Duration::from_secs(secs) || calls < 2 {
        let (from, to) = if forward { (a, b) } else { (b, a) };
        not_moved += crate::numa::migrate_pages(0, &[from], &[to])?;
        forward = !forward;
        calls += 1;
    }
    let s = t.elapsed().as_secs_f64();
    let d = crate::vmstat::delta(&before, &crate::vmstat::read()?);
    let pages = d.get("pgmigrate_success").copied().unwrap_or(0);
    Ok(IdleMigrate {
        region_mib: mib,
        calls,
        secs: s,
        pages,
        pages_not_moved: not_moved,
        thp_migrated: d.get("thp_migration_success").copied().unwrap_or(0),
        bytes_per_s: (pages * page) as f64 / s,
    })
}

fn mem_phase(ctx: &Ctx, a: &Args) -> Result<MemPhase> {
    let memcpy = memcpy_bandwidth(a.mem_mib, a.mem_secs);
    ctx.say(format!(
        "bench mem: memcpy {:.0} MB/s ({} x {} MiB)",
        memcpy.bytes_per_s / 1e6,
        memcpy.copies,
        a.mem_mib
    ));
    let nodes =
        crate::numa::validate_pair(&[0, 1], &crate::numa::online_nodes()?, setup::NODES_FIX)?;
    let migrate = idle_migrate(a.mem_mib, a.mem_secs, nodes)?;
    ctx.say(format!(
        "bench mem: idle migrate_pages {:.0} MB/s ({} calls, {} THPs)",
        migrate.bytes_per_s / 1e6,
        migrate.calls,
        migrate.thp_migrated
    ));
    let cost = writer_cost(&ctx.oracle, 20, a.mem_secs)?;
    ctx.say(format!(
        "bench mem: thp-race writer over 20 MiB: memset {:.0} MB/s, stamped (check + fill) {:.0} MB/s ({:+.1} %)",
        cost.memset_bytes_per_s / 1e6,
        cost.stamped_bytes_per_s / 1e6,
        cost.stamped_vs_memset_pct
    ));
    Ok(MemPhase {
        writer_cost: Some(cost),
        memcpy,
        idle_migrate: migrate,
    })
}

/// Sums the `ops` and `elapsed_ms` of thp-race results.
fn add_up(results: &[ThpRaceResult]) -> Segments {
    let mut ops: BTreeMap<String, u64> = BTreeMap::new();
    let mut ms = 0;
    for r in results {
        ms += r.elapsed_ms;
        for (k, v) in &r.ops {
            *ops.entry(k.clone()).or_default() += v;
        }
    }
    Segments {
        segments: results.len(),
        elapsed_ms: ms,
        rates: measure::rates(&ops, ms),
        ops,
    }
}

/// The segments of a rotating phase: (order, each state's results).
type Rotation = (Vec<String>, Vec<Vec<ThpRaceResult>>);

/// The seconds of each segment of a rotation over `k` states.
fn segment_secs(a: &Args, k: usize) -> u64 {
    (a.phase_secs / (2 * k as u64 * a.overhead_rounds)).max(1)
}

/// thp-race in segments over the states `names`, in mirrored rounds
/// (0 1 .. k-1 k-1 .. 1 0, `--overhead-rounds` times, so a drift over the
/// phase cancels out): `enter(i)` runs before each segment of state `i`
/// and `leave(i)` after it.
fn rotate(
    ctx: &Ctx,
    a: &Args,
    names: &[&str],
    enter: impl Fn(usize) -> Result<()>,
    leave: impl Fn(usize) -> Result<()>,
) -> (u64, Result<Rotation>) {
    let k = names.len();
    let segments = 2 * k as u64 * a.overhead_rounds;
    let secs = segment_secs(a, k);
    let args = match thp_args(&a.thp_args, &[]) {
        Ok(args) => args,
        Err(e) => return (secs, Err(e)),
    };
    let (mut order, mut results) = (Vec::new(), vec![Vec::new(); k]);
    for i in 0..segments as usize {
        if ctx.stop.load(Ordering::Relaxed) {
            break;
        }
        let j = i % (2 * k);
        let state = if j < k { j } else { 2 * k - 1 - j };
        let step = (|| -> Result<ThpRaceResult> {
            enter(state)?;
            let r = with_phase_ctx(ctx, None, secs, |sub| args.run_in(sub));
            leave(state)?;
            r
        })();
        match step {
            Ok(r) => {
                order.push(names[state].to_string());
                results[state].push(r);
            }
            Err(e) => return (secs, Err(e)),
        }
    }
    (secs, Ok((order, results)))
}

/// thp-race in L U U L segments, mmrace.ko loaded (L) and unloaded (U).
/// The module is loaded at the end whatever happened.
fn overhead_phase(ctx: &Ctx, a: &Args) -> Result<OverheadPhase> {
    let unloaded = |i: usize| i == 1;
    let (secs, segments) = rotate(
        ctx,
        a,
        &["L", "U"],
        |i| match unloaded(i) {
            true => crate::reload::unload(),
            false => Ok(()),
        },
        |i| match unloaded(i) {
            true => crate::module::load(&a.module_path)
                .with_context(|| format!("loading {} again", a.module_path.display())),
            false => Ok(()),
        },
    );
    // Whatever failed, leave the module loaded for the phases after this.
    if !std::path::Path::new(crate::module::SYSFS_MODULE_DIR).exists() {
        crate::module::load(&a.module_path)?;
    }
    let (order, states) = segments?;
    let (l, u) = (add_up(&states[0]), add_up(&states[1]));
    ctx.say(format!(
        "bench overhead: ops/s loaded {:?} | unloaded {:?}",
        l.rates, u.rates
    ));
    Ok(OverheadPhase {
        segment_secs: secs,
        order,
        loaded: l,
        unloaded: u,
    })
}

/// The kretprobes in `/sys/kernel/debug/kprobes/list`, and how many of
/// them are optimized (a jump instead of an int3 trap).
fn kretprobes_listed() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").ok()?;
    let r: Vec<_> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("r"))
        .collect();
    let optimized = r.iter().filter(|l| l.contains("[OPTIMIZED]")).count();
    Some((r.len() as u64, optimized as u64))
}

/// Adds up what several samplers did.
fn add_sampling(sum: Option<Sampling>, s: Sampling) -> Sampling {
    let Some(t) = sum else { return s };
    Sampling {
        armed_ms: t.armed_ms + s.armed_ms,
        total_ms: t.total_ms + s.total_ms,
        toggles: t.toggles + s.toggles,
        toggle_ms: t.toggle_ms + s.toggle_ms,
        ..t
    }
}

/// The `meets` phase's states: D disarmed, E armed, S sampled.
const MEETS_STATES: [&str; 3] = ["D", "E", "S"];

/// thp-race in D E S S E D segments: mmrace.ko's meets probes disarmed
/// (D), armed throughout (E), and sampled as thp-race's options say (S:
/// its default duty, unless `--thp-args` sets `--meets-duty` or
/// `--meets-period-s`). They are disarmed at the end whatever happened.
fn meets_phase(ctx: &Ctx, a: &Args) -> Result<MeetsPhase> {
    let plan = Scenario::ThpRace(thp_args(&a.thp_args, &[])?).meets_plan();
    let sampler = Mutex::new(None);
    let (sampling, listed) = (Mutex::new(None), Mutex::new(None));
    let (secs, segments) = rotate(
        ctx,
        a,
        &MEETS_STATES,
        |i| match i {
            0 => crate::meets::set_enabled(false),
            1 => crate::meets::set_enabled(true),
            _ => {
                let seg = Duration::from_secs(segment_secs(a, MEETS_STATES.len()));
                *sampler.lock().unwrap() = crate::meets::Sampler::start(plan, seg);
                Ok(())
            }
        },
        |i| {
            if i == 1 {
                *listed.lock().unwrap() = kretprobes_listed();
            }
            if let Some(s) = sampler.lock().unwrap().take() {
                let mut sum = sampling.lock().unwrap();
                *sum = Some(add_sampling(*sum, s.finish()?));
            }
            crate::meets::set_enabled(false)
        },
    );
    crate::meets::set_enabled(false)?;
    let (order, states) = segments?;
    let [d, e, s] = [0, 1, 2].map(|i| add_up(&states[i]));
    let all = |x: &Segments| x.rates.values().sum::<f64>();
    ctx.say(format!(
        "bench meets: ops/s of all parties: disarmed {:.1} | armed {:.1} ({:.2} of disarmed) | sampled {plan:?} {:.1} ({:.2}); kretprobes (listed, optimized) {:?}",
        all(&d),
        all(&e),
        all(&e) / all(&d),
        all(&s),
        all(&s) / all(&d),
        listed.lock().unwrap()
    ));
    let (sampling, kretprobes) = (sampling.into_inner().unwrap(), listed.into_inner().unwrap());
    Ok(MeetsPhase {
        segment_secs: secs,
        order,
        enabled: e,
        disabled: d,
        sampled: Some(s),
        sampling,
        kretprobes,
    })
}

/// One pair of the `loops` phase: the standalone loop, then pairs with
/// each op once a round (`--overlap-ms 0`), as the loop runs them.
fn loop_pair(
    ctx: &Ctx,
    pair: (loops::LoopOp, loops::LoopOp, loops::LoopKind),
    secs: u64,
    nodes: (u32, u32),
) -> Result<LoopPair> {
    let (x, y, kind) = pair;
    let name = format!("{}+{} on {}", x.word(), y.word(), kind.word());
    let (loop_rounds, loop_secs) = loops::standalone(pair, Duration::from_secs(secs), nodes)
        .with_context(|| format!("the standalone loop of {name}"))?;
    let args = pairs_args(&format!(
        "--pair {},{} --kind {} --overlap-ms 0",
        x.word(),
        y.word(),
        kind.word()
    ))?;
    let t = Instant::now();
    let r = with_meets(Scenario::Pairs(args.clone()), secs, || {
        with_phase_ctx(ctx, None, secs, |sub| args.run_in(sub))
    })?;
    let pairs_secs = t.elapsed().as_secs_f64();
    let rate = |n: u64, s: f64| n as f64 / s.max(1e-3);
    let ratio =
        (loop_rounds > 0).then(|| rate(r.rounds, pairs_secs) / rate(loop_rounds, loop_secs));
    ctx.say(format!(
        "bench loops: {name}: standalone {:.1} rounds/s ({loop_rounds} in {loop_secs:.1} s), pairs {:.1} rounds/s ({} in {pairs_secs:.1} s), ratio {}",
        rate(loop_rounds, loop_secs),
        rate(r.rounds, pairs_secs),
        r.rounds,
        ratio.map_or("-".into(), |v| format!("{v:.2}"))
    ));
    Ok(LoopPair {
        name,
        loop_rounds,
        loop_secs,
        pairs_rounds: r.rounds,
        pairs_secs,
        ratio,
    })
}

/// The `loops` phase: [`loops::PAIRS`], each as a standalone loop and as
/// pairs, phase-secs in all. A pair that fails is said and left out.
fn loops_phase(ctx: &Ctx, a: &Args) -> Result<LoopsPhase> {
    let secs = (a.phase_secs / (2 * loops::PAIRS.len() as u64)).max(1);
    let nodes =
        crate::numa::validate_pair(&[0, 1], &crate::numa::online_nodes()?, setup::NODES_FIX)?;
    let mut pairs = Vec::new();
    for pair in loops::PAIRS {
        if ctx.should_stop() {
            break;
        }
        match loop_pair(ctx, pair, secs, nodes) {
            Ok(p) => pairs.push(p),
            Err(e) => ctx.say(format!("bench loops: FAILED: {e:#}; the next pair runs")),
        }
    }
    Ok(LoopsPhase {
        segment_secs: secs,
        pairs,
    })
}

fn run_phase(ctx: &Ctx, a: &Args, phase: Phase) -> Result<PhaseResult> {
    let secs = a.phase_secs;
    Ok(match phase {
        Phase::Mem => PhaseResult::Mem(mem_phase(ctx, a)?),
        Phase::A => {
            let args = baseline_args(&a.baseline_args)?;
            let r = with_phase_ctx(ctx, Some("a"), secs, |sub| args.run_in(sub));
            PhaseResult::A(Box::new(r?))
        }
        Phase::B => {
            let args = thp_args(&a.thp_args, &[])?;
            let r = with_meets(Scenario::ThpRace(args.clone()), secs, || {
                with_phase_ctx(ctx, Some("b"), secs, |sub| args.run_in(sub))
            });
            PhaseResult::B(Box::new(r?))
        }
        Phase::Overhead => PhaseResult::Overhead(overhead_phase(ctx, a)?),
        Phase::Meets => PhaseResult::Meets(meets_phase(ctx, a)?),
        Phase::Loops => PhaseResult::Loops(loops_phase(ctx, a)?),
        Phase::C => {
            let args = thp_args(&a.thp_args, &["--amplify", &a.amplify])?;
            let r = with_meets(Scenario::ThpRace(args.clone()), secs, || {
                with_phase_ctx(ctx, Some("c"), secs, |sub| args.run_in(sub))
            });
            PhaseResult::C(Box::new(r?))
        }
    })
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<BenchResult> {
    // Parse every phase's options first: a typo fails before any phase runs.
    baseline_args(&a.baseline_args)?;
    thp_args(&a.thp_args, &[])?;
    let mut phases = BTreeMap::new();
    let mut order = Vec::new();
    let mut errors = 0;
    for &phase in &a.phases {
        let name = phase.word();
        if ctx.should_stop() {
            ctx.say(format!("bench: out of time before phase {name}; skipped"));
            phases.insert(
                name.to_string(),
                PhaseRun {
                    t_start_ms: None,
                    t_end_ms: None,
                    result: None,
                    error: None,
                    skipped: Some("out of time".into()),
                },
            );
            continue;
        }
        order.push(name);
        let t_start = ctx.elapsed_ms();
        ctx.event("phase_start", name);
        ctx.say(format!("bench: phase {name} starts"));
        let r = run_phase(ctx, a, phase);
        let t_end = ctx.elapsed_ms();
        ctx.event("phase_end", name);
        let mut v = PhaseRun {
            t_start_ms: Some(t_start),
            t_end_ms: Some(t_end),
            result: None,
            error: None,
            skipped: None,
        };
        match r {
            Ok(result) => v.result = Some(result),
            Err(e) => {
                errors += 1;
                ctx.say(format!("bench: phase {name} FAILED: {e:#}"));
                v.error = Some(format!("{e:#}"));
            }
        }
        phases.insert(name.to_string(), v);
    }
    Ok(BenchResult {
        phase_secs: a.phase_secs,
        order: order.into_iter().map(str::to_string).collect(),
        phases,
        phase_errors: errors,
        amplify: a.amplify.clone(),
        thp_args: a.thp_args.clone(),
        baseline_args: a.baseline_args.clone(),
        module_path: a.module_path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_words_and_option_strings() {
        assert_eq!(Phase::Overhead.word(), "overhead");
        let t = thp_args(
            "--no-kill  --racer-threads 3",
            &["--amplify", "delay_us=5,every_nth=2"],
        )
        .unwrap();
        assert!(t.no_kill);
        assert_eq!(t.racer_threads, 3);
        assert_eq!(t.amplify.unwrap().builtin().unwrap().every_nth, 2);
        assert!(thp_args("--no-such", &[]).is_err());
        assert!(baseline_args("--no-splitter").unwrap().no_splitter);
        assert!(baseline_args("--bogus").is_err());
    }

    #[test]
    fn phase_ctx_keeps_the_clock_and_mirrors_ops() {
        let ctx = Ctx::new(
            5,
            Duration::from_secs(60),
            crate::output::Output::memory().0,
        );
        let r = with_phase_ctx(&ctx, Some("b"), 1, |sub| {
            assert_eq!(sub.start, ctx.start);
            assert!(!sub.should_stop());
            sub.op("writer").fetch_add(3, Ordering::Relaxed);
            while !sub.should_stop() {
                std::thread::sleep(Duration::from_millis(20));
            }
            7
        });
        assert_eq!(r, 7);
        assert_eq!(ctx.ops.snapshot()["b.writer"], 3);
        assert!(ctx.elapsed_ms() >= 1000);
    }

    #[test]
    fn writer_cost_measures_both_loops_and_finds_nothing_wrong() {
        let o = crate::oracle::Oracle::new(Instant::now()).unwrap();
        let c = writer_cost(&o, 2, 0).unwrap();
        assert!(
            c.memset_bytes_per_s > 0.0 && c.stamped_bytes_per_s > 0.0,
            "{c:?}"
        );
        assert_eq!(o.mismatches(), 0);
    }

    /// `cargo test -p mmrace-driver --release writer_cost_here -- --ignored
    /// --nocapture`: the two writers on this machine.
    #[test]
    #[ignore]
    fn writer_cost_here() {
        let o = crate::oracle::Oracle::new(Instant::now()).unwrap();
        println!("{:?}", writer_cost(&o, 20, 8).unwrap());
    }

    #[test]
    fn memcpy_measures_something() {
        let m = memcpy_bandwidth(4, 0);
        assert!(m.copies >= 1);
        assert!(m.bytes_per_s > 0.0);
    }
}
