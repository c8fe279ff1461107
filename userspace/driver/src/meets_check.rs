//! smoke's meets check: two threads of one process race on one THP for a
//! moment, and mmrace.ko's `meets` must show at least one nonzero meet
//! between operations whose probes attached. One thread writes
//! `/proc/self/clear_refs` (a whole-mm operation) and, with two NUMA nodes,
//! bounces the process between them with migrate_pages(2) (whole mm, and
//! folio migration under it); the other zaps the THP with MADV_DONTNEED and
//! faults it back with stores (huge pmd faults and zaps). First,
//! `meets_enable` must refuse garbage with EINVAL. Then the same race runs
//! with the probes disarmed (`meets_enable=0`): no meet and no operation
//! call may be counted (a disarmed probe leaves no trap), and the probes
//! are armed again.

use crate::ctx::Ctx;
use crate::{meets, mm, numa};
use anyhow::{bail, Context, Result};
use mmrace_proto::counters::DEBUGFS_DIR;
use mmrace_proto::meets::{parse_ops, Meets, ProbeStatus, OPS_FILE};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest the race runs before the check gives up.
const RACE_FOR: Duration = Duration::from_secs(5);
/// How often the matrix is read while racing (the race stops at the first
/// meet).
const POLL: Duration = Duration::from_millis(250);
/// How long the race runs with the probes disarmed.
const DISARMED_FOR: Duration = Duration::from_secs(2);

/// The nonzero meet cells between attached operations since `start`.
fn attached_meets(start: &Meets) -> Result<Vec<String>> {
    let path = format!("{DEBUGFS_DIR}/{OPS_FILE}");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let attached: Vec<_> = parse_ops(&text)
        .with_context(|| format!("in {path}"))?
        .into_iter()
        .filter(|o| o.status == ProbeStatus::Attached)
        .map(|o| o.op)
        .collect();
    Ok(meets::read()?
        .since(start)
        .cells
        .iter()
        .filter(|(c, n)| {
            n.meets > 0 && attached.contains(&c.entering) && attached.contains(&c.holding)
        })
        .map(|(c, n)| format!("{} x {} ({}): {}", c.entering, c.holding, c.kind, n.meets))
        .collect())
}

/// The zap-and-refault side of the race, until `stop`.
fn refaulter(map: &mm::AlignedMap, stop: &AtomicBool) -> Result<u64> {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        map.madvise(libc::MADV_DONTNEED)?;
        map.touch_all((n as u8) | 1);
        n += 1;
    }
    Ok(n)
}

/// The whole-mm side: clear_refs, and migration between `nodes`.
fn clearer(nodes: Option<(u32, u32)>, stop: &AtomicBool) -> Result<u64> {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        mm::clear_soft_dirty()?;
        if let Some((a, b)) = nodes {
            let (from, to) = if n.is_multiple_of(2) { (a, b) } else { (b, a) };
            numa::migrate_pages(0, &[from], &[to])?;
        }
        n += 1;
    }
    Ok(n)
}

/// The two sides on `map` for at most `limit`, reading `found` every
/// [`POLL`] and stopping at the first nonempty answer: the answer, the
/// refault rounds and the clear rounds.
fn race(
    map: &mm::AlignedMap,
    nodes: Option<(u32, u32)>,
    limit: Duration,
    found: impl Fn() -> Result<Vec<String>>,
) -> Result<(Vec<String>, u64, u64)> {
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let (seen, rounds) = std::thread::scope(|s| {
        let r = s.spawn(|| refaulter(map, &stop));
        let c = s.spawn(|| clearer(nodes, &stop));
        let mut seen = Ok(Vec::new());
        while t0.elapsed() < limit && !r.is_finished() && !c.is_finished() {
            std::thread::sleep(POLL);
            seen = found();
            if !matches!(&seen, Ok(v) if v.is_empty()) {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        (seen, (r.join(), c.join()))
    });
    match rounds {
        (Ok(r), Ok(c)) => Ok((seen?, r?, c?)),
        _ => bail!("smoke: a meets race thread panicked"),
    }
}

/// Every operation's calls now.
fn calls() -> Result<u64> {
    Ok(meets::read_ops()?.iter().map(|o| o.calls).sum())
}

/// With the probes disarmed, the race must count no meet and no call;
/// they are armed again after.
fn check_disarmed(map: &mm::AlignedMap, nodes: Option<(u32, u32)>) -> Result<()> {
    meets::set_enabled(false)?;
    let (start, calls0) = (meets::read()?, calls()?);
    let (moved, refaults, clears) = race(map, nodes, DISARMED_FOR, || {
        let mut v: Vec<String> = meets::read()?
            .since(&start)
            .cells
            .iter()
            .map(|(c, n)| format!("{} x {} ({}): {}", c.entering, c.holding, c.kind, n.meets))
            .collect();
        let n = calls()?;
        if n != calls0 {
            v.push(format!("{} operation calls", n - calls0));
        }
        Ok(v)
    })?;
    meets::set_enabled(true)?;
    if !moved.is_empty() {
        bail!(
            "meets counted with meets_enable=0 ({refaults} refaults, {clears} clears): {}",
            moved.join(", ")
        );
    }
    if refaults == 0 || clears == 0 {
        bail!("the disarmed race did not run ({refaults} refaults, {clears} clears)");
    }
    Ok(())
}

/// Runs the check: None when the module has no meets (said, not passed),
/// else the number of nonzero meet cells between attached operations.
pub fn run(ctx: &Ctx, nodes: Option<(u32, u32)>) -> Result<Option<usize>> {
    if !meets::present() {
        ctx.say("smoke: meets check SKIPPED: this mmrace.ko has no debugfs meets");
        return Ok(None);
    }
    meets::check_enable_rejects_garbage()?;
    meets::set_enabled(true)?;
    let start = meets::read()?;
    let pmd = mm::pmd_size();
    let map = mm::AlignedMap::new(pmd, pmd)?;
    map.madvise(libc::MADV_HUGEPAGE)?;
    map.touch_all(1);
    let t0 = Instant::now();
    let (found, refaults, clears) = race(&map, nodes, RACE_FOR, || attached_meets(&start))?;
    if found.is_empty() {
        bail!(
            "meets did not move: {refaults} zap/refault rounds against {clears} clear_refs{} rounds in {:.1} s left no meet between attached operations (see debugfs ops and meets)",
            if nodes.is_some() { "+migrate" } else { "" },
            t0.elapsed().as_secs_f64()
        );
    }
    ctx.say(format!(
        "smoke: meets moved in {:.1} s ({refaults} refaults, {clears} clears): {}",
        t0.elapsed().as_secs_f64(),
        found.join(", ")
    ));
    check_disarmed(&map, nodes)?;
    ctx.say(format!(
        "smoke: with meets_enable=0 the same race counted no meet and no call for {:.0} s",
        DISARMED_FOR.as_secs_f64()
    ));
    Ok(Some(found.len()))
}
