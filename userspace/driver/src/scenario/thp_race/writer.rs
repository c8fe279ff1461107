//! The writer: a forked child holding the seed's THP mapping and the racer
//! threads, which the driver SIGKILLs and restarts.
//!
//! It must be a separate process: the seed's clear_refs, migrate_pages and
//! split_huge_pages all target a pid, and killing a process mid-fault (exit
//! tearing down huge pmds while others split them) is part of the race.
//!
//! Forking from the multi-threaded driver: the child starts with one thread
//! and a copy of memory in which other threads may have held locks (stdout,
//! the op registry, the writer slot). So the child touches none of the
//! driver's shared state: it gets a plain [`ChildPlan`], counts into shared
//! pages ([`SharedOps`]), reports setup through a status page, never prints,
//! and leaves only by `_exit` or SIGKILL. Thread creation and allocation are
//! fine: glibc resets its allocator locks in the child at fork.

use super::layout::{ChildPlan, Region, WriterMode, MIB};
use super::racers;
use super::sched;
use crate::mm::{self, errno};
use crate::oracle::{mem, Op, Oracle};
use crate::shared::slots::{SharedOps, SharedSlots};
use anyhow::{anyhow, bail, Result};
use mmrace_proto::oracle::{region, UNIT};
use std::sync::atomic::{compiler_fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Setup steps of the child, reported to the driver when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stage {
    OomScoreAdj = 1,
    ParentDeathSignal = 2,
    MapWriter = 3,
    MadviseWriter = 4,
    MapRacers = 5,
    MadviseRacers = 6,
    SpawnThreads = 7,
}

impl Stage {
    fn from_u64(v: u64) -> Option<Stage> {
        use Stage::*;
        [
            OomScoreAdj,
            ParentDeathSignal,
            MapWriter,
            MadviseWriter,
            MapRacers,
            MadviseRacers,
            SpawnThreads,
        ]
        .into_iter()
        .find(|s| *s as u64 == v)
    }
}

/// A failed setup step and its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupFailure {
    pub stage: Stage,
    pub errno: i32,
}

impl SetupFailure {
    /// The driver-side message: what failed, why, and how to avoid it.
    pub fn message(&self, plan: &ChildPlan) -> String {
        let err = std::io::Error::from_raw_os_error(self.errno);
        let racer = plan.racer_region.unwrap_or(plan.writer);
        let mib = |r: Region| r.len / MIB;
        match self.stage {
            Stage::OomScoreAdj => {
                format!("writer: cannot write 0 to /proc/self/oom_score_adj: {err}")
            }
            Stage::ParentDeathSignal => format!("writer: prctl(PR_SET_PDEATHSIG): {err}"),
            Stage::MapWriter if self.errno == libc::EEXIST => format!(
                "writer: {:#x}..{:#x} ({} MiB) is already mapped in the driver, \
                 so the writer cannot be placed at the seed's fixed address",
                plan.writer.addr,
                plan.writer.end(),
                mib(plan.writer)
            ),
            Stage::MapWriter => format!(
                "writer: cannot map {} MiB at {:#x}: {err}",
                mib(plan.writer),
                plan.writer.addr
            ),
            Stage::MadviseWriter => format!(
                "writer: madvise(MADV_HUGEPAGE) on its mapping: {err} (no THP in this kernel?)"
            ),
            Stage::MapRacers if self.errno == libc::EEXIST => format!(
                "racers: {:#x}..{:#x} is already mapped in the driver \
                 (turn racers and refault off with --no-racers --no-refault)",
                racer.addr,
                racer.end()
            ),
            Stage::MapRacers => format!(
                "racers: cannot map {} MiB at {:#x}: {err} \
                 (turn racers and refault off with --no-racers --no-refault)",
                mib(racer),
                racer.addr
            ),
            Stage::MadviseRacers => format!(
                "racers: madvise(MADV_HUGEPAGE) on their region: {err} \
                 (turn racers and refault off with --no-racers --no-refault)"
            ),
            Stage::SpawnThreads => format!(
                "writer: cannot start its racer/refault threads: {err} \
                 (turn them off with --no-racers --no-refault)"
            ),
        }
    }
}

/// The status page's slots; STATE starts at 0, "starting".
const STATE: usize = 0;
const STAGE: usize = 1;
const ERRNO: usize = 2;
const READY: u64 = 1;
const FAILED: u64 = 2;

/// How long a child may take to map, advise and start its threads. Far more
/// than it needs; a TCG guest under load is slow, but not this slow.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A live (or not yet reaped) writer child, owned by the driver. Dropping it
/// kills and reaps the child, so no path out of the scenario leaves one.
#[derive(Debug)]
pub struct Writer {
    pid: libc::pid_t,
    reaped: bool,
}

impl Writer {
    /// Forks a writer for `plan` and waits until it has mapped its memory and
    /// started its threads. A setup failure in the child comes back as `Err`
    /// with [`SetupFailure::message`].
    pub fn spawn(
        plan: &ChildPlan,
        ops: &Arc<SharedOps>,
        diag: &Arc<SharedOps>,
        oracle: &Arc<Oracle>,
    ) -> Result<Writer> {
        let status = SharedSlots::new(3)?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: fork in a threaded process; the child runs only
        // `child_main`, which respects the restrictions in the module docs
        // and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!("writer: fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            child_main(plan, ops, diag, oracle, &status, parent);
        }
        let mut w = Writer { pid, reaped: false };
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            match status.get(STATE).load(Ordering::Acquire) {
                READY => return Ok(w),
                FAILED => {
                    let stage = Stage::from_u64(status.get(STAGE).load(Ordering::Relaxed));
                    let errno = status.get(ERRNO).load(Ordering::Relaxed) as i32;
                    w.kill_and_reap();
                    let stage =
                        stage.ok_or_else(|| anyhow!("writer: setup failed at an unknown stage"))?;
                    bail!(SetupFailure { stage, errno }.message(plan));
                }
                _ => {}
            }
            if let Some(how) = w.exited() {
                w.kill_and_reap();
                bail!("writer: exited during setup ({how})");
            }
            if Instant::now() > deadline {
                w.kill_and_reap();
                bail!(
                    "writer: not ready after {}s of setup",
                    SETUP_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// How the child ended, if it has (without reaping it: until it is
    /// reaped its pid cannot be reused, so parties still holding the pid
    /// cannot hit a stranger).
    pub fn exited(&self) -> Option<String> {
        if self.reaped {
            return Some("reaped".into());
        }
        crate::child::peek_exit(self.pid)
    }

    /// Sends SIGKILL (does not reap). Harmless on a zombie.
    pub fn sigkill(&self) {
        if !self.reaped {
            // SAFETY: signals our own unreaped child; its pid cannot have
            // been reused while it is unreaped.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }

    /// Waits for the child to end and reaps it. Returns how it ended.
    pub fn reap(&mut self) -> String {
        if self.reaped {
            return "reaped".into();
        }
        let mut status = 0;
        let r = loop {
            // SAFETY: waits for our own child with a valid status pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r >= 0 || errno() != libc::EINTR {
                break r;
            }
        };
        self.reaped = true;
        if r < 0 {
            return format!("not waitable: {}", std::io::Error::last_os_error());
        }
        if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exit status {}", libc::WEXITSTATUS(status))
        }
    }

    pub fn kill_and_reap(&mut self) -> String {
        self.sigkill();
        self.reap()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The child: set up, report, then write forever.
fn child_main(
    plan: &ChildPlan,
    ops: &Arc<SharedOps>,
    diag: &Arc<SharedOps>,
    oracle: &Arc<Oracle>,
    status: &SharedSlots,
    parent: libc::pid_t,
) -> ! {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        setup_and_write(plan, ops, diag, oracle, status, parent)
    }));
    let code = match r {
        Ok(failure) => {
            status
                .get(STAGE)
                .store(failure.stage as u64, Ordering::Relaxed);
            status
                .get(ERRNO)
                .store(failure.errno as u64, Ordering::Relaxed);
            status.get(STATE).store(FAILED, Ordering::Release);
            2
        }
        Err(_) => 101,
    };
    // SAFETY: leaves the child without running the driver's atexit handlers,
    // flushing its copied stdio buffers or unwinding into the driver's code.
    unsafe { libc::_exit(code) }
}

/// Maps `r` at its fixed address without replacing anything, RW, and
/// advises it for THP.
fn map_fixed(r: Region, map_stage: Stage, advise_stage: Stage) -> Result<(), SetupFailure> {
    mm::map_thp_at(r.addr, r.len, mm::Fixed::NoReplace).map_err(|e| SetupFailure {
        stage: match e.step {
            mm::ThpMapStep::Map => map_stage,
            mm::ThpMapStep::Advise => advise_stage,
        },
        errno: e.errno,
    })
}

/// Returns only when setup fails; on success the writer loop runs until the
/// driver's SIGKILL.
fn setup_and_write(
    plan: &ChildPlan,
    ops: &Arc<SharedOps>,
    diag: &Arc<SharedOps>,
    oracle: &Arc<Oracle>,
    status: &SharedSlots,
    parent: libc::pid_t,
) -> SetupFailure {
    // If the driver dies, so does the writer: nothing is left behind.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        return SetupFailure {
            stage: Stage::ParentDeathSignal,
            errno: errno(),
        };
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        // The driver died before the prctl took effect.
        // SAFETY: see child_main.
        unsafe { libc::_exit(0) };
    }
    // The driver runs at -1000; its workload must be an OOM victim again.
    if let Err(e) = std::fs::write("/proc/self/oom_score_adj", "0\n") {
        return SetupFailure {
            stage: Stage::OomScoreAdj,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        };
    }
    if let Err(f) = map_fixed(plan.writer, Stage::MapWriter, Stage::MadviseWriter) {
        return f;
    }
    if let Some(region) = plan.racer_region {
        if let Err(f) = map_fixed(region, Stage::MapRacers, Stage::MadviseRacers) {
            return f;
        }
    }
    if let Err(e) = racers::start(plan, ops, diag, oracle) {
        return SetupFailure {
            stage: Stage::SpawnThreads,
            errno: e.raw_os_error().unwrap_or(libc::EAGAIN),
        };
    }
    status.get(STATE).store(READY, Ordering::Release);
    // After the racers were spawned: they must not inherit it.
    sched::nice_this_thread(plan.party_nice);
    match plan.writer_mode {
        WriterMode::Memset => write_forever(plan.writer, plan.baton.as_ref(), ops),
        WriterMode::Stamped => write_stamped(plan, ops, oracle),
    }
}

/// The seed's writer: memset the whole mapping, forever (one pass per turn
/// under `--sequential`).
fn write_forever(r: Region, baton: Option<&super::baton::Baton>, ops: &SharedOps) -> ! {
    let count = ops.counter("writer");
    let mut value: u8 = 0;
    loop {
        let _turn = super::baton::turn(baton, "writer", || false);
        value = value.wrapping_add(1);
        // SAFETY: `r` is this process's own RW mapping (map_fixed), used by
        // no other thread.
        unsafe { std::ptr::write_bytes(r.addr as *mut u8, value, r.len) };
        // The memory is never read: keep the compiler from dropping stores.
        compiler_fence(Ordering::SeqCst);
        std::hint::black_box(r.addr);
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The stamped writer: the same pass over every page, each page filled
/// whole, but first checked for the stamp of the previous pass (zero
/// before the first). Nothing but this thread writes the region, and no
/// party changes its contents (clear_refs, migration and splits must not),
/// so a page that changed behind the writer's back is found within one
/// pass: that is the owner's check after every migrate, split and
/// clear_refs round on this region.
fn write_stamped(plan: &ChildPlan, ops: &SharedOps, oracle: &Oracle) -> ! {
    let r = plan.writer;
    let count = ops.counter("writer");
    let mut prev = None;
    for gen in 1u64.. {
        let _turn = super::baton::turn(plan.baton.as_ref(), "writer", || false);
        oracle.record(plan.parties.writer, Op::WritePass, r.addr);
        // SAFETY: `r` is this process's own RW mapping (map_fixed), used by
        // no other thread and no Rust reference.
        unsafe { mem::writer_pass(oracle, region::WRITER, r.addr, r.len / UNIT, prev, gen) };
        prev = Some(gen);
        count.fetch_add(1, Ordering::Relaxed);
    }
    unreachable!("the pass counter does not run out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_codes_round_trip() {
        for s in [
            Stage::OomScoreAdj,
            Stage::ParentDeathSignal,
            Stage::MapWriter,
            Stage::MadviseWriter,
            Stage::MapRacers,
            Stage::MadviseRacers,
            Stage::SpawnThreads,
        ] {
            assert_eq!(Stage::from_u64(s as u64), Some(s));
        }
        assert_eq!(Stage::from_u64(0), None);
    }

    #[test]
    fn racer_failures_name_the_flags() {
        let plan = super::super::tests::host_plan();
        for stage in [Stage::MapRacers, Stage::MadviseRacers, Stage::SpawnThreads] {
            for errno in [libc::EEXIST, libc::ENOMEM] {
                let m = SetupFailure { stage, errno }.message(&plan);
                assert!(
                    m.contains("--no-racers") && m.contains("--no-refault"),
                    "{m}"
                );
            }
        }
        let m = SetupFailure {
            stage: Stage::MapWriter,
            errno: libc::EEXIST,
        }
        .message(&plan);
        assert!(
            m.contains("already mapped") && m.contains("0x700000000000"),
            "{m}"
        );
    }
}
