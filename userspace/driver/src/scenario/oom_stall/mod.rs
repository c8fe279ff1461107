//! `oom-stall`: seed 003 ("mm/page_alloc: Favor kthread and dying threads
//! over normal threads", 2015). One process, three threads: two append 4 KiB
//! writes to a file on XFS, the third unlinks the file, grows a buffer by
//! realloc doubling and reads /dev/zero into it until the OOM killer fires.
//! In 2015 the writeback worker then stalled in memory allocation; today the
//! OOM reaper and memory reserves for OOM victims are meant to prevent that.
//!
//! The run is a series of rounds, each with a fresh victim process (see
//! [`victim`]), until the duration ends. Per round the driver measures (see
//! [`round`]): time until the OOM kill, time from the kill until the victim
//! is gone, bytes the writers' write() calls completed and bytes the disk
//! wrote, in the round and in the OOM window, and whether a writer was
//! stuck. Per run it prints the round table, mmrace's OOM counters with
//! their /proc/vmstat cross-checks, XFS's buffer statistics and the direct
//! reclaim time per task class (debugfs `reclaim_latency`).
//!
//! The driver protects itself (oom_score_adj -1000) and the victim makes
//! itself the OOM killer's first choice (1000). `--unkillable` leaves the
//! victim at -1000 on purpose: the kernel must then panic "System is
//! deadlocked on memory", which proves the host catches that; it is refused
//! outside the mmrace guest.
//!
//! Sub-modules:
//! - [`victim`]: the forked process and its three threads (four with the
//!   lock dependency);
//! - [`holder`]: the lock holder, which waits for memory inside a read that
//!   holds the inode lock the victim's blocker thread waits for;
//! - [`records`]: the data oracle's check of the writers' file;
//! - [`reserve`]: `--leave-mib`, less memory for the rounds;
//! - [`round`]: per-round bookkeeping, the table and the run summary;
//! - [`stats`]: XFS, block device and `reclaim_latency` files.
//!
//! Finding and mounting the XFS disk is [`crate::shared::disk`].

pub mod holder;
pub mod records;
pub mod reserve;
pub mod round;
pub mod stats;
pub mod victim;
pub mod whereabouts;

use crate::ctx::Ctx;
use crate::shared::disk;
use crate::{counters, numa, oom, vmstat};
use anyhow::{bail, Context, Result};
use mmrace_proto::counters::name;
use mmrace_proto::crosscheck::{self, Relation, Rule};
use mmrace_proto::results::oom_stall::{FsInfo, OomStallResult, Plan as OomPlan};
use mmrace_proto::results::Counts;
pub use mmrace_proto::spec::oom_stall::Args;
use records::RecordCheck;
use round::{Outcome, RoundResult, RoundTracker, Sample, VictimReport};
use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;
use victim::{mono_ns, Plan, Victim};

/// The file the writers append to, in the filesystem's root.
pub const FILE_NAME: &str = "mmrace-oom-stall";
/// Its second name, kept by the driver to check the records (see
/// [`records`]).
pub const VERIFY_NAME: &str = "mmrace-oom-stall.verify";
/// The lock holder's file.
pub const LOCK_NAME: &str = "mmrace-oom-lock";

/// mmrace counters this scenario is about, printed even when zero.
pub const OOM_COUNTERS: &[&str] = &[
    name::OOM_KILL,
    name::OOM_VICTIM,
    name::OOM_REAPER_WAKE,
    name::OOM_REAPER_REAPED,
    name::OOM_REAPER_SKIPPED,
    name::RECLAIM_RETRY,
    name::DIRECT_RECLAIM,
    name::ALLOC_STALL_WARN,
];

/// The /proc/vmstat keys the report keeps.
const VMSTAT_PREFIXES: &[&str] = &[
    "oom_kill",
    "allocstall_",
    "pgscan_",
    "pgsteal_",
    "pgrefill",
    "kswapd_",
    "compact_stall",
    "compact_fail",
    "pageoutrun",
    "nr_vmscan_write",
    "nr_written",
    "nr_dirtied",
    "workingset_",
];

const HUNG_TASK_PATH: &str = "/proc/sys/kernel/hung_task_timeout_secs";

pub fn run(ctx: &Ctx, a: &Args) -> Result<OomStallResult> {
    oom::protect_self().context("oom-stall: the driver must not be an OOM victim")?;
    if a.unkillable {
        refuse_outside_the_guest()?;
    }
    let fs = filesystem(a)?;
    let block_stat = fs.block_stat_path()?;
    let reserve = (a.leave_mib > 0)
        .then(|| reserve::Reserve::take(a.leave_mib))
        .transpose()?;
    let file = fs.dir.join(FILE_NAME);
    let cstr =
        |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).context("path with a NUL byte");
    let lock_path = fs.dir.join(LOCK_NAME);
    let holder = start_holder(a, &lock_path)?;
    let mut plan = Plan {
        file: cstr(&file)?,
        writer_delay: Duration::from_millis(a.writer_delay_ms),
        consumer_delay: Duration::from_millis(a.consumer_delay_ms),
        unkillable: a.unkillable,
        round: 0,
        fsync_every: a.fsync_every,
        lock_file: holder.as_ref().map(|_| cstr(&lock_path)).transpose()?,
        populate: a.populate,
    };
    let files = Files {
        file: file.clone(),
        verify: fs.dir.join(VERIFY_NAME),
    };
    let _hung = HungTaskTimeout::set(ctx, a.hung_task_secs);
    let nodes = numa::online_nodes().unwrap_or_default();
    let mem_total_kib = mem_total_kib();
    let lock = holder.as_ref().map(|h| (h.pid(), lock_path.as_path()));
    say_setup(ctx, a, &fs, &nodes, mem_total_kib, lock)?;
    if let Some(r) = &reserve {
        ctx.say(format!(
            "oom-stall: --leave-mib {}: {} MiB taken into the hugetlb pool ({} pages), \
             {} MiB left available",
            a.leave_mib,
            r.mib(),
            r.pages,
            r.left_kib / 1024
        ));
    }

    let start = Readings::take()?;
    let rounds = run_rounds(ctx, a, &mut plan, &files, holder.as_ref(), &block_stat)?;
    let reserved_mib = reserve.as_ref().map_or(0, |r| r.mib());
    if rounds.iter().any(|r| r.outcome == Outcome::NotGone) {
        // A stalled victim is left as it is, and so is the memory it ran
        // out of: giving the pool back now could end the stall unseen.
        std::mem::forget(reserve);
    }
    let end = Readings::take()?;
    let d = Deltas::between(&start, &end);
    let sum = round::summary(&rounds);
    let checks = crosscheck::evaluate(CROSSCHECKS, Some(&d.counters), &d.vmstat);
    say_results(ctx, &sum, &rounds, &d, &checks);

    Ok(OomStallResult {
        fs: FsInfo {
            dir: fs.dir.clone(),
            device: fs.device.clone(),
            block_stat,
        },
        mem_total_kib,
        nodes,
        plan: oom_plan(a, holder.is_some(), reserved_mib),
        data_oracle: ctx.oracle.summary(),
        rounds,
        summary: sum,
        counters: d.counters,
        vmstat: d.vmstat,
        xfs: d.xfs,
        reclaim_latency: d.reclaim,
        crosscheck_ok: crosscheck::all_ok(&checks),
        crosscheck: checks,
    })
}

/// The XFS the victims write to: `--dir`, or the device (`--device`, or
/// the disk the host attached) mounted at `--mount-point`.
fn filesystem(a: &Args) -> Result<disk::Fs> {
    if let Some(dir) = &a.dir {
        return disk::Fs::existing(dir);
    }
    let device = match &a.device {
        Some(d) => d.clone(),
        None => disk::find_by_serial(Path::new("/sys/block"), disk::SERIAL)?,
    };
    disk::Fs::mount(&device, &a.mount_point)
}

/// The lock dependency's holder (none with `--no-lock-dependency`), its
/// lock file `--hold-mib` MiB at `lock_path`.
fn start_holder(a: &Args, lock_path: &Path) -> Result<Option<holder::Holder>> {
    if a.no_lock_dependency {
        return Ok(None);
    }
    let bytes = a.hold_mib << 20;
    holder::create_lock_file(lock_path, bytes)?;
    Ok(Some(holder::Holder::spawn(lock_path, bytes as usize)?))
}

/// The setup line (and the `unkillable` event); `lock` is the holder's
/// pid and lock file, when there is a lock dependency.
fn say_setup(
    ctx: &Ctx,
    a: &Args,
    fs: &disk::Fs,
    nodes: &[u32],
    mem_total_kib: u64,
    lock: Option<(libc::pid_t, &Path)>,
) -> Result<()> {
    ctx.say(format!(
        "oom-stall: XFS {} on {}, MemTotal {} MiB, nodes {nodes:?}; writers start after {} ms, \
         the consumer after {} ms; driver oom_score_adj {}, victim {}; {}",
        fs.device
            .as_ref()
            .map_or_else(|| "(given)".into(), |d| d.display().to_string()),
        fs.dir.display(),
        mem_total_kib / 1024,
        a.writer_delay_ms,
        a.consumer_delay_ms,
        oom::oom_score_adj()?,
        if a.unkillable {
            "-1000 (--unkillable: the kernel must panic)"
        } else {
            "1000"
        },
        match lock {
            Some((pid, path)) => format!(
                "lock dependency on: holder pid {pid} (oom_score_adj -1000) reads {} MiB of {} per read()",
                a.hold_mib,
                path.display()
            ),
            None => "no lock dependency".into(),
        }
    ));
    if a.unkillable {
        ctx.event(
            "unkillable",
            "victim left at oom_score_adj -1000 on purpose",
        );
    }
    Ok(())
}

/// Rounds until the run's end, `--rounds` OOM kills, or a victim that is
/// not gone after the kill; a victim that ends by itself is an error.
fn run_rounds(
    ctx: &Ctx,
    a: &Args,
    plan: &mut Plan,
    files: &Files,
    holder: Option<&holder::Holder>,
    block_stat: &Path,
) -> Result<Vec<RoundResult>> {
    let mut rounds: Vec<RoundResult> = Vec::new();
    let mut writes_before = 0;
    let enough = |rounds: &[RoundResult]| {
        a.rounds > 0 && round::summary(rounds).oom_kills >= a.rounds as usize
    };
    while !ctx.should_stop() && !enough(&rounds) {
        let n = rounds.len() as u32 + 1;
        ctx.op("round").fetch_add(1, Ordering::Relaxed);
        plan.round = u64::from(n);
        let rc = RoundCtx {
            ctx,
            a,
            files,
            holder,
            block_stat,
            n,
            writes_before,
        };
        let r = one_round(&rc, plan)?;
        writes_before += r.written_bytes / victim::WRITE_SIZE as u64;
        ctx.say(format!("oom-stall: {}", round_line(&r)));
        ctx.event("round", round_line(&r));
        let outcome = r.outcome;
        rounds.push(r);
        match outcome {
            Outcome::Exited => bail!(
                "oom-stall: the victim of round {n} ended by itself ({}): a harness bug",
                rounds[rounds.len() - 1].exit
            ),
            Outcome::NotGone => {
                ctx.say(format!(
                    "oom-stall: the round {n} victim is still not gone {} s after the kill; \
                     leaving it and stopping here",
                    a.exit_timeout
                ));
                ctx.event("victim_not_gone", format!("round {n}"));
                break;
            }
            _ => {}
        }
    }
    Ok(rounds)
}

/// The counters, vmstat, XFS statistics and reclaim latencies, read at
/// the start and at the end.
struct Readings {
    counters: Counts,
    vmstat: Counts,
    xfs: Counts,
    reclaim: stats::ReclaimLatency,
}

impl Readings {
    fn take() -> Result<Readings> {
        let (counters, vmstat) = (counters::read()?, vmstat::read()?);
        let (xfs, reclaim) = (stats::read_xfs_stats(), stats::read_reclaim_latency()?);
        Ok(Readings {
            counters,
            vmstat,
            xfs,
            reclaim,
        })
    }
}

/// What the run changed: [`Readings`] deltas (vmstat: the keys of
/// [`VMSTAT_PREFIXES`]).
struct Deltas {
    counters: Counts,
    vmstat: Counts,
    xfs: Counts,
    reclaim: stats::ReclaimLatency,
}

impl Deltas {
    fn between(start: &Readings, end: &Readings) -> Deltas {
        Deltas {
            counters: counters::delta(&start.counters, &end.counters),
            vmstat: vmstat::with_prefixes(
                &vmstat::delta(&start.vmstat, &end.vmstat),
                VMSTAT_PREFIXES,
            ),
            xfs: vmstat::delta(&start.xfs, &end.xfs),
            reclaim: stats::reclaim_delta(&start.reclaim, &end.reclaim),
        }
    }
}

/// The end-of-run lines: the rounds' summary and table, the OOM counters,
/// the cross-checks, vmstat, XFS and the reclaim times.
fn say_results(
    ctx: &Ctx,
    sum: &round::Summary,
    rounds: &[RoundResult],
    d: &Deltas,
    checks: &[mmrace_proto::crosscheck::CrossCheck],
) {
    ctx.say(format!(
        "oom-stall: {} rounds, {} OOM kills, {} with a stuck writer, {} victims not gone",
        sum.rounds, sum.oom_kills, sum.stuck_rounds, sum.not_gone
    ));
    say_block(ctx, &round::table(rounds));
    ctx.say(format!(
        "oom-stall: mmrace OOM counters: {}",
        OOM_COUNTERS
            .iter()
            .map(|n| format!("{n}+{}", d.counters.get(*n).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for c in checks {
        ctx.say(format!("oom-stall: {}", c.line()));
    }
    ctx.say(format!(
        "oom-stall: vmstat: {}",
        mmrace_proto::counters::fmt_deltas(&vmstat::nonzero(&d.vmstat))
    ));
    ctx.say(format!(
        "oom-stall: XFS: {}",
        if d.xfs.is_empty() {
            "no /sys/fs/xfs/stats/stats".into()
        } else {
            mmrace_proto::counters::fmt_deltas(&d.xfs)
        }
    ));
    ctx.say("oom-stall: time in direct reclaim (try_to_free_pages) by task class:");
    say_block(ctx, &stats::reclaim_table(&d.reclaim));
}

/// The plan the result records.
fn oom_plan(a: &Args, lock_dependency: bool, reserved_mib: u64) -> OomPlan {
    OomPlan {
        writer_delay_ms: a.writer_delay_ms,
        consumer_delay_ms: a.consumer_delay_ms,
        stuck_ms: a.stuck_ms,
        poll_ms: a.poll_ms,
        oom_rounds_wanted: a.rounds,
        hung_task_secs: a.hung_task_secs,
        unkillable: a.unkillable,
        lock_dependency,
        hold_mib: a.hold_mib,
        fsync_every: a.fsync_every,
        leave_mib: a.leave_mib,
        reserved_mib,
    }
}

/// One round: fork the victim, watch it until it is gone, tell what
/// happened. `writes_before`: 4 KiB writes of earlier rounds (the streamed
/// `write` op count is cumulative).
/// The writers' file and the driver's second name for it.
struct Files {
    file: std::path::PathBuf,
    verify: std::path::PathBuf,
}

impl Files {
    /// A fresh, empty file with both names.
    fn prepare(&self) -> Result<()> {
        for p in [&self.file, &self.verify] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("cannot remove {}", p.display()))
                }
                _ => {}
            }
        }
        std::fs::File::create(&self.file)
            .with_context(|| format!("cannot create {}", self.file.display()))?;
        std::fs::hard_link(&self.file, &self.verify)
            .with_context(|| format!("cannot link {}", self.verify.display()))
    }
}

/// The state letter of thread `tid` of `pid` (`D`, `S`, `R`...).
fn thread_state(pid: libc::pid_t, tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// The stall of a victim not gone `exit_timeout` s after its kill, and
/// where its threads and the lock holder's are. With an OOM kill, the
/// OOM killer waits for it and kills nothing else (oom-deadlock); after
/// the driver's own kill (no OOM kill came), a task with a fatal signal is
/// stuck in the kernel while memory is short (killed-not-gone).
fn say_not_gone(
    ctx: &Ctx,
    a: &Args,
    n: u32,
    victim: &Victim,
    holder: Option<&holder::Holder>,
    oom_killed: bool,
) {
    use mmrace_proto::oracle::StallKind;
    let (kind, who) = if oom_killed {
        (StallKind::OomDeadlock, "the OOM victim")
    } else {
        (
            StallKind::KilledNotGone,
            "no OOM kill came; the victim, SIGKILLed by the driver,",
        )
    };
    let in_read = match holder.map(|h| h.state()) {
        Some(hs) if hs.in_read => "; the lock holder is still inside its read",
        _ => "",
    };
    let holder_at = holder
        .map(|h| format!("; holder: {}", whereabouts::describe(h.pid())))
        .unwrap_or_default();
    ctx.stall(
        kind,
        format!(
            "round {n}: {who} (pid {}) is not gone {} s after the kill{in_read}; victim: {}{holder_at}",
            victim.pid(),
            a.exit_timeout,
            whereabouts::describe(victim.pid()),
        ),
    );
}

/// What one round runs with: the scenario's settings and the round's
/// number.
struct RoundCtx<'a> {
    ctx: &'a Ctx,
    a: &'a Args,
    files: &'a Files,
    holder: Option<&'a holder::Holder>,
    block_stat: &'a Path,
    n: u32,
    /// The victims' writes in the rounds before this one.
    writes_before: u64,
}

fn one_round(rc: &RoundCtx, plan: &Plan) -> Result<RoundResult> {
    rc.files.prepare()?;
    let mut w = Watch {
        oom0: vmstat_oom_kill()?,
        reaped0: reaped_counter(),
        disk0: disk_written(rc.block_stat)?,
        t0: mono_ns(),
        kill_seen: false,
        tracker: RoundTracker::new(rc.a.stuck_ms),
        driver_kill: None,
    };
    let mut victim = Victim::spawn(plan)?;
    if let Some(h) = rc.holder {
        h.set_active(true);
    }
    let idle = Idle(rc.holder);
    let not_gone = w.until_gone_or_stuck(rc, &mut victim)?;
    let p = victim.progress();
    let (outcome, exit) = w.end(rc, &mut victim, not_gone);
    // Let the holder finish; the driver's memory-hungry check comes after.
    drop(idle);
    let mut r = w.tracker.finish(
        rc.n,
        outcome,
        VictimReport {
            buffer_bytes: p.buffer_bytes,
            writer_errors: p.write_errors,
            writer_errno: p.write_errno,
            exit,
        },
    );
    if !not_gone {
        r.records = check_records(rc, &p)?;
        let _ = std::fs::remove_file(&rc.files.verify);
    }
    Ok(r)
}

/// Deactivates the holder on every way out of the round.
struct Idle<'a>(Option<&'a holder::Holder>);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.0 {
            h.set_active(false);
        }
    }
}

/// Milliseconds from `t0` to `t` (CLOCK_MONOTONIC ns).
fn ms_since(t0: u64, t: u64) -> u64 {
    t.saturating_sub(t0) / 1_000_000
}

/// The round's watch over its victim: the counts at its start, what it
/// has seen since, and the driver's own kill, if it had to make one.
struct Watch {
    oom0: u64,
    reaped0: u64,
    disk0: u64,
    t0: u64,
    kill_seen: bool,
    tracker: RoundTracker,
    driver_kill: Option<(Outcome, u64)>,
}

impl Watch {
    /// Samples the victim until it is gone (false) or still there
    /// `exit_timeout` s after a kill (true).
    fn until_gone_or_stuck(&mut self, rc: &RoundCtx, victim: &mut Victim) -> Result<bool> {
        let pidfd = PidFd::open(victim.pid());
        loop {
            let s = self.sample(rc, victim)?;
            if s.gone {
                return Ok(false);
            }
            if self.tracker.kill_ms().is_none() && self.driver_kill.is_none() {
                self.kill_if_due(rc, victim, s.t_ms);
            }
            let killed_at = self.tracker.kill_ms().or(self.driver_kill.map(|(_, t)| t));
            if killed_at.is_some_and(|k| s.t_ms.saturating_sub(k) >= rc.a.exit_timeout * 1000) {
                return Ok(true);
            }
            pidfd.wait(Duration::from_millis(rc.a.poll_ms));
        }
    }

    /// One sample of the round, given to the tracker; the victim's writes
    /// counted in the `write` op.
    fn sample(&mut self, rc: &RoundCtx, victim: &Victim) -> Result<Sample> {
        let gone = victim.gone();
        let p = victim.progress();
        let now = mono_ns();
        let hs = rc.holder.map(|h| h.state()).unwrap_or_default();
        let oom_kills = vmstat_oom_kill()?.saturating_sub(self.oom0);
        // The blocker's state, read once: when the kill is first seen.
        let blocker_state = match (oom_kills > 0 && !self.kill_seen, p.blocker_tid) {
            (true, tid) if tid > 0 => thread_state(victim.pid(), tid),
            _ => None,
        };
        self.kill_seen |= oom_kills > 0;
        let s = Sample {
            t_ms: ms_since(self.t0, now),
            written: p.written,
            disk: disk_written(rc.block_stat)?.saturating_sub(self.disk0),
            oom_kills,
            reaped: reaped_counter().saturating_sub(self.reaped0),
            pressure_ms: p.read_start_ns.map(|ns| ms_since(self.t0, ns)),
            gone,
            holder_reads: hs.reads,
            holder_in_read: hs.in_read,
            blocker_state,
        };
        self.tracker.observe(&s);
        let writes = (p.written[0] + p.written[1]) / victim::WRITE_SIZE as u64;
        rc.ctx
            .op("write")
            .store(rc.writes_before + writes, Ordering::Relaxed);
        Ok(s)
    }

    /// With no OOM kill yet, the driver kills the victim itself when the
    /// scenario stops or the round times out.
    fn kill_if_due(&mut self, rc: &RoundCtx, victim: &Victim, t_ms: u64) {
        let why = if rc.ctx.should_stop() {
            Outcome::Stopped
        } else if t_ms >= rc.a.round_timeout * 1000 {
            Outcome::NoOom
        } else {
            return;
        };
        victim.kill();
        self.driver_kill = Some((why, t_ms));
    }

    /// The round's outcome and the victim's exit: reaped, or abandoned
    /// (and said) when it is not gone.
    fn end(&self, rc: &RoundCtx, victim: &mut Victim, not_gone: bool) -> (Outcome, String) {
        if not_gone {
            let oom_killed = self.tracker.kill_ms().is_some();
            say_not_gone(rc.ctx, rc.a, rc.n, victim, rc.holder, oom_killed);
            victim.abandon();
            return (Outcome::NotGone, "not gone".to_string());
        }
        let status = victim.reap();
        let outcome = round::outcome(
            victim::killed_by_sigkill(status),
            self.tracker.kill_ms().is_some(),
            self.driver_kill.map(|(why, _)| why),
        );
        (outcome, victim::describe_status(status))
    }
}

/// The data oracle: every record whose write() returned success, read
/// back. Not after failed writes (a short write leaves a partial record
/// that shifts the rest); the caller skips a victim still alive.
fn check_records(rc: &RoundCtx, p: &victim::Progress) -> Result<Option<RecordCheck>> {
    if p.write_errors != 0 {
        return Ok(None);
    }
    let n = rc.n;
    let counted = p.written.map(|b| b / victim::WRITE_SIZE as u64);
    let check = records::verify(
        &rc.ctx.oracle,
        &rc.files.verify,
        u64::from(n),
        counted,
        p.synced,
    )?;
    if check.mismatches > 0 {
        rc.ctx.say(format!(
            "oom-stall: round {n}: {} file records wrong or missing",
            check.mismatches
        ));
    }
    Ok(Some(check))
}

/// `round 3 oom-kill: kill after 9.1 s (4.2 s of pressure), gone 310 ms
/// later, reaped; written 812.0 MiB (120.5 in the window), disk 700.1 MiB
/// (90.2); writer gap 340 ms`
fn round_line(r: &RoundResult) -> String {
    const MIB: f64 = 1048576.0;
    let mut s = format!("round {} {}", r.round, r.outcome.label());
    if let Some(k) = r.kill_ms {
        s += &format!(": kill after {:.1} s", k as f64 / 1000.0);
        if let Some(p) = r.pressure_to_kill_ms {
            s += &format!(" ({:.1} s of pressure)", p as f64 / 1000.0);
        }
        if let Some(g) = r.kill_to_gone_ms {
            s += &format!(", gone {g} ms later");
        }
        s += if r.reaped { ", reaped" } else { ", not reaped" };
    } else {
        s += &format!(" after {:.1} s", r.duration_ms as f64 / 1000.0);
    }
    s += &format!(
        "; written {:.1} MiB ({:.1} in the window), disk {:.1} MiB ({:.1}); writer gap {} ms{}",
        r.written_bytes as f64 / MIB,
        r.written_window_bytes as f64 / MIB,
        r.disk_bytes as f64 / MIB,
        r.disk_window_bytes as f64 / MIB,
        r.writer_gap_ms,
        if r.stuck { " STUCK" } else { "" }
    );
    if r.writer_errors > 0 {
        s += &format!(
            "; {} failed writes ({})",
            r.writer_errors,
            std::io::Error::from_raw_os_error(r.writer_errno)
        );
    }
    s
}

/// oom_kill must equal vmstat oom_kill (both count __oom_kill_process()
/// kills); direct_reclaim is at most the sum of vmstat allocstall_*, which
/// also counts the passes do_try_to_free_pages() retries.
pub const CROSSCHECKS: &[Rule] = &[
    Rule {
        module: name::OOM_KILL,
        vmstat: &["oom_kill"],
        relation: Relation::Equal,
    },
    Rule {
        module: name::DIRECT_RECLAIM,
        vmstat: &["allocstall_*"],
        relation: Relation::AtMost,
    },
];

/// The guard for `--unkillable`: it panics the kernel, so only where that
/// is the point (the mmrace guest, whose kernel command line carries the
/// run's spec).
fn refuse_outside_the_guest() -> Result<()> {
    let line = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let key = mmrace_proto::spec::CMDLINE_KEY;
    if matches!(crate::cmdline::value(&line, key), Ok(Some(_))) {
        return Ok(());
    }
    bail!(
        "oom-stall: --unkillable panics the kernel on purpose; refused outside the mmrace \
         guest (no {key}= on the kernel command line)"
    )
}

fn vmstat_oom_kill() -> Result<u64> {
    Ok(vmstat::read()?.get("oom_kill").copied().unwrap_or(0))
}

/// mmrace's oom_reaper_reaped (0 if unreadable: it only decorates a round).
fn reaped_counter() -> u64 {
    counters::read()
        .ok()
        .and_then(|c| c.get(name::OOM_REAPER_REAPED).copied())
        .unwrap_or(0)
}

fn disk_written(block_stat: &Path) -> Result<u64> {
    let text = std::fs::read_to_string(block_stat)
        .with_context(|| format!("cannot read {}", block_stat.display()))?;
    stats::parse_block_stat_written(&text).with_context(|| format!("in {}", block_stat.display()))
}

fn mem_total_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| reserve::meminfo_kib(&t, "MemTotal"))
        .unwrap_or(0)
}

fn say_block(ctx: &Ctx, text: &str) {
    for line in text.lines() {
        ctx.say(format!("oom-stall: {line}"));
    }
}

/// A pidfd for the victim: waiting on it wakes the driver the moment the
/// victim is gone, so kill-to-gone is timed to the wake-up, not to the next
/// poll. Without pidfd_open (old kernel) the wait is a plain sleep.
struct PidFd(Option<std::os::fd::OwnedFd>);

impl PidFd {
    fn open(pid: libc::pid_t) -> PidFd {
        // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        PidFd((fd >= 0).then(|| {
            // SAFETY: a fresh fd that nothing else owns.
            unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) }
        }))
    }

    /// Waits up to `timeout` for the process to end.
    fn wait(&self, timeout: Duration) {
        match &self.0 {
            Some(fd) => {
                let mut p = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(fd),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, timeout.as_millis() as i32) };
            }
            None => std::thread::sleep(timeout),
        }
    }
}

/// Sets kernel.hung_task_timeout_secs for the run and puts the old value
/// back on drop.
struct HungTaskTimeout(Option<String>);

impl HungTaskTimeout {
    fn set(ctx: &Ctx, secs: u64) -> HungTaskTimeout {
        if secs == 0 {
            return HungTaskTimeout(None);
        }
        let old = std::fs::read_to_string(HUNG_TASK_PATH).ok();
        match crate::kfile::write(HUNG_TASK_PATH, &format!("{secs}\n")) {
            Ok(()) => HungTaskTimeout(old),
            Err(e) => {
                ctx.say(format!(
                    "oom-stall: cannot set {HUNG_TASK_PATH} to {secs} ({e}): blocked tasks are \
                     reported at the kernel's own timeout, if at all"
                ));
                HungTaskTimeout(None)
            }
        }
    }
}

impl Drop for HungTaskTimeout {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = crate::kfile::write(HUNG_TASK_PATH, old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_lines() {
        let r = RoundResult {
            round: 3,
            outcome: Outcome::OomKill,
            duration_ms: 9400,
            pressure_ms: Some(4900),
            kill_ms: Some(9100),
            pressure_to_kill_ms: Some(4200),
            kill_to_gone_ms: Some(310),
            reaped: true,
            kill_to_reap_ms: None,
            reap_to_holder_ms: None,
            holder_in_read_at_kill: None,
            blocker_state_at_kill: None,
            records: None,
            written_bytes: 10 << 20,
            written_window_bytes: 3 << 20,
            disk_bytes: 8 << 20,
            disk_window_bytes: 2 << 20,
            writer_gap_ms: 340,
            stuck: false,
            buffer_bytes: 2 << 30,
            writer_errors: 0,
            writer_errno: 0,
            exit: "killed by SIGKILL".into(),
        };
        assert_eq!(
            round_line(&r),
            "round 3 oom-kill: kill after 9.1 s (4.2 s of pressure), gone 310 ms later, \
             reaped; written 10.0 MiB (3.0 in the window), disk 8.0 MiB (2.0); writer gap 340 ms"
        );
        let mut s = r.clone();
        s.outcome = Outcome::Stopped;
        s.kill_ms = None;
        s.stuck = true;
        s.writer_errors = 2;
        s.writer_errno = libc::ENOSPC;
        let line = round_line(&s);
        assert!(
            line.starts_with("round 3 stopped after 9.4 s; written"),
            "{line}"
        );
        assert!(
            line.contains(" STUCK; 2 failed writes (No space left"),
            "{line}"
        );
    }

    #[test]
    fn unkillable_is_refused_here() {
        // The build machine's kernel command line has no mmrace.argv.
        let err = refuse_outside_the_guest().unwrap_err().to_string();
        assert!(err.contains("refused outside the mmrace guest"), "{err}");
    }

    #[test]
    fn vmstat_oom_kill_reads_this_machine() {
        vmstat_oom_kill().unwrap();
    }

    #[test]
    fn args_parse() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "mmrace-driver",
            "oom-stall",
            "--dir",
            "/x",
            "--stuck-ms",
            "100",
        ])
        .unwrap();
        let crate::cli::Command::Scenario(crate::scenario::Scenario::OomStall(a)) = cli.command
        else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(a.dir.as_deref(), Some(Path::new("/x")));
        assert_eq!(
            (a.stuck_ms, a.writer_delay_ms, a.consumer_delay_ms),
            (100, 2000, 3000)
        );
        assert!(!a.unkillable);
        let both = crate::cli::Cli::try_parse_from([
            "mmrace-driver",
            "oom-stall",
            "--dir",
            "/x",
            "--device",
            "/dev/vda",
        ]);
        assert!(both.is_err());
    }
}
