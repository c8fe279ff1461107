//! mmrace.ko's `meets` matrix in debugfs ([`mmrace_proto::meets`] has the
//! format), with `ops`, `meets_enable` and `meets_dropped` next to it.
//! Zeroed with the counters by a write to `reset`.
//!
//! A run takes a [`Baseline`] when the scenario starts and turns it into a
//! [`RunMeets`] when it ends; a module without `meets` (an older mmrace.ko)
//! gives [`RunMeets::Absent`], never an error. A sampled plan
//! ([`MeetsPlan::Sampled`]) runs a [`Sampler`] thread in between, which
//! arms the probes for the duty's share of every period.
//!
//! Every write to `meets_enable` goes through [`set_enabled`], which keeps
//! an arming epoch in a shared page (odd while armed, one step per change):
//! a forked child (pairs' worker) reads [`epoch`] before and after a slice
//! and knows whether the probes were armed the whole time.

use crate::shared::slots::SharedSlots;
use anyhow::{bail, Context, Result};
use mmrace_proto::counters::DEBUGFS_DIR;
use mmrace_proto::meets::{
    parse_ops, Meets, MeetsPlan, MeetsPoint, RunMeets, Sampling, DROPPED_FILE, ENABLE_FILE,
    MEETS_FILE, OPS_FILE, PROGRESS_PERIOD_MS,
};
use mmrace_proto::wire::Msg;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn path(file: &str) -> String {
    format!("{DEBUGFS_DIR}/{file}")
}

pub fn meets_path() -> String {
    path(MEETS_FILE)
}

/// The matrix now.
pub fn read() -> Result<Meets> {
    parse(&read_text()?)
}

/// debugfs `meets` as the module renders it.
pub fn read_text() -> Result<String> {
    let path = meets_path();
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))
}

/// The matrix in `text`, as [`read_text`] gave it.
pub fn parse(text: &str) -> Result<Meets> {
    Meets::parse(text).with_context(|| format!("in {}", meets_path()))
}

/// Every operation's probe and calls now (debugfs `ops`).
pub fn read_ops() -> Result<Vec<mmrace_proto::meets::OpState>> {
    parse_ops_text(&read_ops_text()?)
}

/// debugfs `ops` as the module renders it.
pub fn read_ops_text() -> Result<String> {
    let path = path(OPS_FILE);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))
}

/// The operations in `text`, as [`read_ops_text`] gave it.
pub fn parse_ops_text(text: &str) -> Result<Vec<mmrace_proto::meets::OpState>> {
    parse_ops(text).with_context(|| format!("in {}", path(OPS_FILE)))
}

fn read_dropped() -> Result<u64> {
    let path = path(DROPPED_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path} reads {text:?}, not a number"))
}

/// Whether the loaded module has meets at all.
pub fn present() -> bool {
    std::path::Path::new(&meets_path()).exists()
}

/// The arming epoch's shared page, made by the first [`set_enabled`] (in
/// the driver, before any scenario forks).
static EPOCH: OnceLock<Option<SharedSlots>> = OnceLock::new();

fn epoch_page() -> Option<&'static SharedSlots> {
    EPOCH.get_or_init(|| SharedSlots::new(1).ok()).as_ref()
}

/// The arming epoch: odd while the probes are armed; it moves at every
/// change. `None` before the first [`set_enabled`] of the driver.
pub fn epoch() -> Option<u64> {
    EPOCH
        .get()
        .and_then(Option::as_ref)
        .map(|p| p.get(0).load(Ordering::SeqCst))
}

/// Whether an [`epoch`] is one of the probes armed (odd).
fn armed_in(e: Option<u64>) -> bool {
    e.is_some_and(|e| e % 2 == 1)
}

/// Whether the probes are armed now.
pub fn armed_now() -> bool {
    armed_in(epoch())
}

/// Whether the probes were armed all the time between two [`epoch`]s.
pub fn armed_throughout(before: Option<u64>, after: Option<u64>) -> bool {
    before == after && armed_in(before)
}

/// mmrace.ko's switch for counting alias overlaps.
const ALIAS_PARAM: &str = "/sys/module/mmrace/parameters/meets_alias";

/// Turns the module's counting of alias overlaps on or off (a module
/// without the switch counts them: off is then an error).
pub fn set_alias(on: bool) -> Result<()> {
    let v = if on { "Y\n" } else { "N\n" };
    crate::kfile::write(ALIAS_PARAM, v)
        .with_context(|| format!("cannot write {v:?} to {ALIAS_PARAM}"))
}

/// Arms (`true`) or disarms the module's meets probes.
pub fn set_enabled(on: bool) -> Result<()> {
    let path = path(ENABLE_FILE);
    let v = if on { "1\n" } else { "0\n" };
    let page = epoch_page();
    // Disarming: the epoch moves first, so a reader never takes a
    // disarmed moment for an armed one; arming: after the write.
    let bump = |want_odd: bool| {
        if let Some(e) = page.map(|p| p.get(0)) {
            if (e.load(Ordering::SeqCst) % 2 == 1) != want_odd {
                e.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    if !on {
        bump(false);
    }
    crate::kfile::write(&path, v).with_context(|| format!("cannot write {v:?} to {path}"))?;
    if on {
        bump(true);
    }
    Ok(())
}

/// Arms the probes for the duty's share of every period (by default one
/// period: the run), from the start of each, on a thread of its own until
/// [`Sampler::finish`].
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Sampling>>,
}

/// Sleeps `d` in short steps; false when `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
    false
}

/// The sampler's loop: arm, wait `on`, disarm, wait `off`, until `stop`.
fn sample(duty_pct: u8, (on, off): (u64, u64), stop: &AtomicBool) -> Result<Sampling> {
    let t0 = Instant::now();
    let (mut armed, mut toggling, mut toggles) = (Duration::ZERO, Duration::ZERO, 0u64);
    let mut toggle = |v: bool| -> Result<()> {
        let t = Instant::now();
        set_enabled(v)?;
        toggling += t.elapsed();
        toggles += 1;
        Ok(())
    };
    loop {
        toggle(true)?;
        let a = Instant::now();
        let more = sleep_unless(stop, Duration::from_millis(on));
        toggle(false)?;
        armed += a.elapsed();
        if !more || !sleep_unless(stop, Duration::from_millis(off)) {
            break;
        }
    }
    Ok(Sampling {
        duty_pct,
        period_ms: on + off,
        armed_ms: armed.as_millis() as u64,
        total_ms: t0.elapsed().as_millis() as u64,
        toggles,
        toggle_ms: toggling.as_millis() as u64,
    })
}

impl Sampler {
    /// Starts sampling as `plan` says, for a run of `run`; `None` unless
    /// it is sampled.
    pub fn start(plan: MeetsPlan, run: Duration) -> Option<Sampler> {
        let MeetsPlan::Sampled { duty_pct, .. } = plan else {
            return None;
        };
        let period = plan.period_ms(run.as_millis() as u64)?;
        epoch_page();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("meets-sampler".into())
            .spawn(move || sample(duty_pct, period, &s))
            .ok()?;
        Some(Sampler { stop, thread })
    }

    /// Stops sampling (the probes are left disarmed) and says what it did.
    pub fn finish(self) -> Result<Sampling> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(r) => r,
            Err(_) => bail!("the meets sampler panicked"),
        }
    }
}

/// Checks that `meets_enable` refuses anything but `0` and `1` with EINVAL.
pub fn check_enable_rejects_garbage() -> Result<()> {
    let path = path(ENABLE_FILE);
    for bad in ["2\n", "on\n", "1 1\n", "-1\n", "\n"] {
        match crate::kfile::write(&path, bad) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => bail!("writing {bad:?} to {path}: {e}, want EINVAL"),
            Ok(()) => bail!("writing {bad:?} to {path} was accepted, want EINVAL"),
        }
    }
    Ok(())
}

/// What the module's meets were when the scenario started.
pub enum Baseline {
    Counting {
        meets: Meets,
        dropped: u64,
        sampler: Option<Sampler>,
    },
    Off,
    Absent(String),
}

impl Baseline {
    /// Sets `meets_enable` as the plan of a run of `run` asks (starting
    /// its sampler) and reads the starting point.
    pub fn take(plan: MeetsPlan, run: Duration) -> Baseline {
        if !present() {
            return Baseline::Absent(format!(
                "{} does not exist: this mmrace.ko has no meets",
                meets_path()
            ));
        }
        let on = plan == MeetsPlan::Always;
        let start = set_enabled(on).and_then(|()| Ok((read()?, read_dropped()?)));
        match start {
            Err(e) => Baseline::Absent(format!("{e:#}")),
            Ok(_) if plan == MeetsPlan::Off => Baseline::Off,
            Ok((meets, dropped)) => Baseline::Counting {
                meets,
                dropped,
                sampler: Sampler::start(plan, run),
            },
        }
    }

    /// The meets counted since the baseline, as a point of the run's
    /// progress at `t_ms`; None when not counting or unreadable.
    pub fn progress(&self, t_ms: u64) -> Option<MeetsPoint> {
        let Baseline::Counting { meets, .. } = self else {
            return None;
        };
        read().ok().map(|now| now.since(meets).point(t_ms))
    }

    /// Sends the meets so far to the host every
    /// [`PROGRESS_PERIOD_MS`] until `stop` (nothing when not counting).
    pub fn stream_progress(&self, ctx: &crate::ctx::Ctx, stop: &AtomicBool) {
        if !matches!(self, Baseline::Counting { .. }) {
            return;
        }
        while sleep_unless(stop, Duration::from_millis(PROGRESS_PERIOD_MS)) {
            if let Some(p) = self.progress(ctx.elapsed_ms()) {
                ctx.out.msg(&Msg::MeetsProgress(p));
            }
        }
    }

    /// The run's meets: what moved since the baseline, with each
    /// operation's probe and its calls now (a sampler is stopped first).
    pub fn finish(self) -> RunMeets {
        let (start, dropped0, sampler) = match self {
            Baseline::Counting {
                meets,
                dropped,
                sampler,
            } => (meets, dropped, sampler),
            Baseline::Off => return RunMeets::Off,
            Baseline::Absent(why) => return RunMeets::Absent { why },
        };
        let sampling = match sampler.map(Sampler::finish).transpose() {
            Ok(s) => s,
            Err(e) => {
                return RunMeets::Absent {
                    why: format!("{e:#}"),
                }
            }
        };
        let end = (|| Ok::<_, anyhow::Error>((read()?, read_ops()?, read_dropped()?)))();
        match end {
            Ok((meets, ops, dropped)) => RunMeets::Counted {
                meets: meets.since(&start),
                ops,
                dropped: dropped.saturating_sub(dropped0),
                sampling,
            },
            Err(e) => RunMeets::Absent {
                why: format!("{e:#}"),
            },
        }
    }
}
