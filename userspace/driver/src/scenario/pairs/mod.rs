//! `pairs`: every pair of mm operations meets on one fresh object per
//! round, and the object's data is verified after every round.
//!
//! Each slice takes a pair of user ops (now and then a triple) and an
//! object kind, and runs rounds: a fresh object ([`object`]), the ops on
//! their own threads pinned to different CPUs and released by the shared
//! fuzzy start offsets, then the join and a check of every page against
//! what the ops must leave ([`model`]). A page that does not hold it is a
//! data-corruption finding through the data oracle, naming the pair, the
//! kind, the page and the expected and found stamps.
//!
//! - [`object`]: the object trait and the kinds' makers ([`kinds`]).
//! - [`op`]: the op trait; [`ops`]: the ops.
//! - [`model`]: the page expectation model.

pub mod clock;
pub mod crew;
pub mod dio;
pub mod kinds;
pub mod ksmd;
pub mod model;
pub mod object;
pub mod op;
pub mod ops;
pub mod round;
pub mod state;
pub mod steer;
pub mod tally;
pub mod windows;
pub mod worker;

use crate::ctx::Ctx;
use crate::memenv;
use crate::shared::disk;
use anyhow::{bail, Context, Result};
use dio::DioPaths;
use mmrace_proto::pairs::{ObjKind, ObjState, UserOp};
use mmrace_proto::results::pairs::{PairsResult, Skipped, VMSTAT_PREFIXES};
pub use mmrace_proto::spec::pairs::Args;
use mmrace_proto::spec::pairs::{SliceBy, SteerBy};
use model::Layout;
use object::KindEnv;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::{Tally, H};

/// THPs per object: the hot one (stamped) and a cold one.
pub const THPS: usize = 2;
/// Where the XFS scratch disk is mounted for the O_DIRECT file (and the
/// XFS kinds).
pub const XFS_MOUNT: &str = "/mnt/pairs-xfs";
/// Worker restarts after which the run gives up.
const MAX_RESTARTS: u64 = 20;
/// How long a stopped worker may take to leave before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// shmem_enabled set to `advise` for the run when it gives MADV_HUGEPAGE
/// mappings no THP; restored on drop.
struct ShmemThp {
    before: Option<String>,
}

impl ShmemThp {
    fn ensure(ctx: &Ctx) -> ShmemThp {
        let path = kinds::shmem::SHMEM_ENABLED;
        let Ok(text) = std::fs::read_to_string(path) else {
            return ShmemThp { before: None };
        };
        let mode = crate::mm::selected_mode(&text).unwrap_or_default();
        if kinds::shmem::mode_gives_thp(&mode) {
            return ShmemThp { before: None };
        }
        match crate::kfile::write(path, "advise") {
            Ok(()) => {
                ctx.say(format!(
                    "pairs: {path} was {mode}, set to advise for the run"
                ));
                ShmemThp { before: Some(mode) }
            }
            Err(e) => {
                ctx.say(format!("pairs: cannot set {path} to advise: {e}"));
                ShmemThp { before: None }
            }
        }
    }
}

impl Drop for ShmemThp {
    fn drop(&mut self) {
        if let Some(m) = &self.before {
            let _ = crate::kfile::write(kinds::shmem::SHMEM_ENABLED, m);
        }
    }
}

/// The XFS disk mounted, and the O_DIRECT file on it; or why not.
fn xfs(layout: Layout) -> (Option<disk::Fs>, Result<DioPaths, String>) {
    let dev = match disk::find_by_serial(Path::new("/sys/block"), disk::SERIAL) {
        Ok(d) => d,
        Err(e) => return (None, Err(format!("no XFS scratch disk ({e:#})"))),
    };
    let fs = match disk::Fs::mount(&dev, Path::new(XFS_MOUNT)) {
        Ok(fs) => fs,
        Err(e) => return (None, Err(format!("{e:#}"))),
    };
    let path = fs.dir.join("pairs-dio");
    let r = ops::data::write_dio_file(&path, layout.pages)
        .map(|()| DioPaths {
            file: path.clone(),
            device: fs.device.clone(),
        })
        .map_err(|e| format!("cannot write {}: {e}", path.display()));
    (Some(fs), r)
}

/// The states of the run this guest can make: `mthp` needs the 64 KiB
/// anonymous mTHP setting (set for the run, restored on drop), `swapped`
/// the run's swap; what cannot be made is skipped with its reason.
fn states(ctx: &Ctx, a: &Args) -> (Vec<ObjState>, Option<state::MthpSetting>, Vec<Skipped>) {
    let mut v = a.states();
    let (mut guard, mut skipped) = (None, Vec::new());
    if v.contains(&ObjState::Mthp) && a.kinds().contains(&ObjKind::Anon) {
        match state::MthpSetting::ensure() {
            Ok((g, said)) => {
                if let Some(s) = said {
                    ctx.say(format!("pairs: {s}"));
                }
                guard = Some(g);
            }
            Err(why) => {
                v.retain(|s| *s != ObjState::Mthp);
                skipped.push(Skipped {
                    what: ObjState::Mthp.word().to_string(),
                    why,
                });
            }
        }
    }
    if v.contains(&ObjState::Swapped) && !ops::swap::swap_on() {
        v.retain(|s| *s != ObjState::Swapped);
        skipped.push(Skipped {
            what: ObjState::Swapped.word().to_string(),
            why: "no swap (the run's memenv sets up zram swap)".into(),
        });
    }
    (v, guard, skipped)
}

/// Copies the worker's counts into the op counters the host streams.
fn fold(ctx: &Ctx, tally: &Tally) {
    use std::sync::atomic::Ordering::Relaxed;
    ctx.op("rounds").store(tally.get(H::Rounds), Relaxed);
    ctx.op("slices").store(tally.get(H::Slices), Relaxed);
    for u in UserOp::ALL {
        let n = tally.calls(u);
        if n > 0 {
            ctx.op(u.word()).store(n, Relaxed);
        }
    }
}

/// How a worker ended.
enum End {
    Done,
    Fatal(String),
    Died(String),
}

/// Waits for worker `pid`, folding its counts; stops it when the run
/// should stop.
fn watch(ctx: &Ctx, pid: libc::pid_t, tally: &Tally) -> End {
    let mut stop_at: Option<Instant> = None;
    loop {
        let mut status = 0;
        // SAFETY: polls our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        fold(ctx, tally);
        if r == pid {
            return match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
                (true, 0) => End::Done,
                (true, 2) => End::Fatal(
                    tally
                        .fatal_text()
                        .unwrap_or_else(|| "worker setup failed".into()),
                ),
                (true, c) => End::Died(format!("exited with {c}")),
                _ => End::Died(format!("killed by signal {}", libc::WTERMSIG(status))),
            };
        }
        if r < 0 {
            return End::Died(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        if ctx.should_stop() && stop_at.is_none() {
            tally.set(H::Stop, 1);
            stop_at = Some(Instant::now());
        }
        if stop_at.is_some_and(|t| t.elapsed() > STOP_GRACE) {
            // SAFETY: our own child, not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn run(ctx: &Ctx, given: &Args) -> Result<PairsResult> {
    let resolved = given.resolve(ctx.seed);
    let a = &resolved;
    if given.swarm {
        ctx.say(format!(
            "pairs: swarm (seed {}) drew: {}",
            ctx.seed,
            a.to_words().join(" ")
        ));
    }
    if let Err(e) = a.check() {
        bail!("pairs: {e}");
    }
    let layout = Layout::new(THPS, crate::mm::pmd_size());
    let online = crate::numa::online_nodes()?;
    let nodes =
        crate::numa::validate_pair(&a.nodes, &online, "(set two online nodes with --nodes A,B)")
            .map_err(|e| format!("{e:#}"));
    let shmem_kinds = a
        .kinds()
        .iter()
        .any(|k| k.module_kind() == mmrace_proto::ops::kind::SHMEM);
    let _shmem = shmem_kinds.then(|| ShmemThp::ensure(ctx));
    let (env, missing) =
        memenv::prepare_available(&kinds::needs(&a.kinds(), &a.ops(), &a.states()));
    ctx.say(format!("pairs: {}", env.describe()));
    for m in &missing {
        ctx.say(format!("pairs: memenv: {m}: what needs it is skipped"));
    }
    let (states, _mthp, states_skipped) = states(ctx, a);
    if a.kinds().contains(&ObjKind::Anon) {
        for s in &states {
            match state::probe(*s, layout) {
                Ok(line) => ctx.say(format!("pairs: {line}")),
                Err(e) => ctx.say(format!("pairs: state {s} on anon: cannot tell ({e:#})")),
            }
        }
    }
    let (fs, dio) = xfs(layout);
    if let Err(e) = &dio {
        ctx.say(format!("pairs: {e}: odirect and the XFS kinds are skipped"));
    }
    let plan = worker::Plan {
        args: a.clone(),
        kinds: a.kinds(),
        states,
        ops: a.ops(),
        seed: ctx.seed,
        deadline: ctx.start + ctx.duration,
        nodes,
        dio,
        kind_env: KindEnv {
            xfs_dir: fs.as_ref().map(|f| f.dir.clone()),
            tmpfs_dir: env.tmpfs_dir().ok().map(Path::to_path_buf),
            hugetlb_dir: env.hugetlb_dir().ok().map(Path::to_path_buf),
        },
        layout,
    };
    let tally = Arc::new(Tally::new()?);
    let party = ctx.oracle.party("pairs");
    let words = |v: &mut dyn Iterator<Item = &'static str>| v.collect::<Vec<_>>().join(",");
    ctx.say(format!(
        "pairs: {} ops, kinds {}, states {}, {}, triples {} %, steering {}",
        plan.ops.len(),
        words(&mut plan.kinds.iter().map(|k| k.word())),
        words(&mut plan.states.iter().map(|s| s.word())),
        match a.slice_by {
            SliceBy::Fixed => format!("{} rounds per slice", a.rounds),
            SliceBy::Need => format!(
                "slices by need ({} rounds first, {} covered)",
                a.first_rounds, a.rounds
            ),
        },
        a.triple_pct,
        match (a.no_steer, a.steer_by) {
            (true, _) => "off",
            (false, SteerBy::LeastMet) => "towards the least met",
            (false, SteerBy::Need) => "by the rounds a pair needs to be met",
        }
    ));
    if a.preempt > 0 || a.held > 0 {
        ctx.say(format!(
            "pairs: windows held open: preemption in {} % of rounds, userfaultfd holds in {} %",
            a.preempt, a.held
        ));
    }
    let armed = crate::inject::arm_said(ctx, "pairs", a.amplify.as_ref())?;
    let vm0 = crate::vmstat::read().unwrap_or_default();
    loop {
        let pid = worker::spawn(&plan, &tally, &ctx.oracle, party).context("pairs worker")?;
        match watch(ctx, pid, &tally) {
            End::Done => break,
            End::Fatal(why) => bail!("pairs: {why}"),
            End::Died(why) if !ctx.should_stop() && tally.get(H::Workers) <= MAX_RESTARTS => {
                ctx.event("pairs-worker-died", why.clone());
                ctx.say(format!("pairs: the worker {why}; restarting it"));
            }
            End::Died(why) => {
                ctx.say(format!("pairs: the worker {why}"));
                break;
            }
        }
    }
    fold(ctx, &tally);
    let amplified = crate::inject::disarm_said(ctx, "pairs", armed);
    let mut r = result(ctx, a, &tally, &plan);
    r.amplify = amplified;
    r.skipped.extend(states_skipped);
    r.vmstat = vmstat_moved(&vm0);
    report(ctx, &r);
    Ok(r)
}

/// The typed result from the tallies.
fn result(ctx: &Ctx, a: &Args, tally: &Tally, plan: &worker::Plan) -> PairsResult {
    let ran_ops: Vec<UserOp> = plan
        .ops
        .iter()
        .copied()
        .filter(|o| tally.op_skipped(*o).is_none())
        .collect();
    let ran_kinds: Vec<ObjKind> = plan
        .kinds
        .iter()
        .copied()
        .filter(|k| tally.kind_skipped(*k).is_none())
        .collect();
    let rows = tally.rows();
    let meets_available = tally.get(H::Meets) == 1;
    PairsResult {
        settings: a.clone(),
        coverage: PairsResult::coverage_of(
            &rows,
            &ran_ops,
            &ran_kinds,
            &plan.states,
            meets_available,
        ),
        rows,
        findings: tally.findings(),
        slices: tally.get(H::Slices),
        rounds: tally.get(H::Rounds),
        pages_verified: tally.get(H::Verified),
        workers: tally.get(H::Workers),
        skipped: tally.skipped(),
        data_oracle: ctx.oracle.summary(),
        windows: windows::report(tally),
        time: clock::report(tally),
        ksmd: ksmd::report(tally),
        vmstat: BTreeMap::new(),
        amplify: None,
    }
}

/// The events of [`VMSTAT_PREFIXES`] that moved since `before`.
fn vmstat_moved(before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let after = crate::vmstat::read().unwrap_or_default();
    let moved = crate::vmstat::nonzero(&crate::vmstat::delta(before, &after));
    crate::vmstat::with_prefixes(&moved, VMSTAT_PREFIXES)
}

/// The console lines: skips, the pair table, coverage, findings.
fn report(ctx: &Ctx, r: &PairsResult) {
    for s in &r.skipped {
        ctx.say(format!("pairs: skipped {}: {}", s.what, s.why));
    }
    for line in r.table() {
        ctx.say(format!("pairs: {line}"));
    }
    ctx.say(r.coverage_line());
    ctx.say(r.states_line());
    if let Some(w) = r.windows.line() {
        ctx.say(w);
    }
    if let Some(k) = r.ksmd.line() {
        ctx.say(k);
    }
    if let Some(t) = r.time.line() {
        ctx.say(t);
    }
    if !r.vmstat.is_empty() {
        let moved: Vec<String> = r.vmstat.iter().map(|(k, v)| format!("{k} {v}")).collect();
        ctx.say(format!("pairs: vmstat: {}", moved.join(", ")));
    }
    for f in &r.findings {
        ctx.say(format!("pairs: FINDING {}", f.line()));
    }
}
