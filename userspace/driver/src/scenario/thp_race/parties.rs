//! The seed's driver-side parties, as threads of the driver aimed at the
//! current writer: clear_refs (soft-dirty clear), migrate (migrate_pages(2)
//! between two nodes, one syscall per bounce instead of the seed's process
//! per `migratepages`), and the splitter (debugfs split_huge_pages).
//!
//! The writer is killed and replaced under them, so they find its pid in a
//! [`WriterSlot`] and hold its read lock for the duration of one operation:
//! the supervisor takes the write lock before reaping a killed writer, so a
//! party never aims at a pid that has been reaped (and maybe reused).

use super::layout::Region;
use crate::ctx::Ctx;
use crate::numa;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

pub const SPLIT_PATH: &str = "/sys/kernel/debug/split_huge_pages";
pub const CLEAR_REFS_SELF: &str = "/proc/self/clear_refs";

/// Which writer the parties aim at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterId {
    /// 0 while the writer is being replaced.
    pub pid: libc::pid_t,
    pub generation: u64,
}

/// The current writer, shared by the supervisor and the parties.
pub struct WriterSlot {
    id: RwLock<WriterId>,
    /// Set from just before SIGKILL until the replacement runs: errors seen
    /// meanwhile are the restart's, not the party's.
    dying: AtomicBool,
}

impl WriterSlot {
    pub fn new(id: WriterId) -> Self {
        WriterSlot {
            id: RwLock::new(id),
            dying: AtomicBool::new(false),
        }
    }

    /// Held by a party for one operation on the writer.
    pub fn read(&self) -> RwLockReadGuard<'_, WriterId> {
        self.id.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for every in-flight party operation; held by the supervisor
    /// while it reaps and replaces the writer.
    pub fn write(&self) -> RwLockWriteGuard<'_, WriterId> {
        self.id.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_dying(&self, dying: bool) {
        self.dying.store(dying, Ordering::SeqCst);
    }

    pub fn is_dying(&self) -> bool {
        self.dying.load(Ordering::SeqCst)
    }
}

/// A party's failures, for the report.
#[derive(Default)]
pub struct PartyStats {
    /// Failures while the writer was alive and well.
    pub errors: AtomicU64,
    /// Failures because the writer was being killed or restarted (ESRCH,
    /// ENOENT, a zombie without an mm): expected, only counted.
    pub transient: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

impl PartyStats {
    pub fn record(&self) -> mmrace_proto::results::thp_race::PartyErrors {
        mmrace_proto::results::thp_race::PartyErrors {
            errors: self.errors.load(Ordering::Relaxed),
            transient: self.transient.load(Ordering::Relaxed),
            first_error: self
                .first_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// What every party thread works with.
pub struct Env<'a> {
    pub ctx: &'a Ctx,
    /// Set when the run ends.
    pub stop: &'a AtomicBool,
    pub slot: &'a WriterSlot,
    /// Sleep after each successful operation (`--party-pause-us`).
    pub pause: Duration,
    /// This party thread's nice value (`--party-nice`).
    pub nice: i32,
    /// `--sequential`: take turns with every other party.
    pub baton: Option<&'a super::baton::Baton>,
    /// `--phase-ms`: run only in this party's phases.
    pub phases: Option<&'a super::phases::Phases>,
}

/// How one operation went.
pub(super) enum Outcome {
    Done,
    /// The writer is gone or going.
    Gone,
    Failed(std::io::Error),
}

/// Errnos that mean "this writer is gone" rather than a broken party.
pub(super) fn writer_gone(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ESRCH | libc::ENOENT))
}

/// The loop every party runs: one operation per iteration on the current
/// writer, counted in `ctx.op(name)` or in `stats`.
pub(super) fn party_loop(
    env: &Env,
    name: &str,
    stats: &PartyStats,
    op: impl FnMut(WriterId) -> Outcome,
) {
    party_loop_as(env, name, name, stats, op)
}

/// [`party_loop`] for one of several threads of a party: `turn_name` is
/// this thread's place in the `--sequential` order.
pub(super) fn party_loop_as(
    env: &Env,
    name: &str,
    turn_name: &str,
    stats: &PartyStats,
    mut op: impl FnMut(WriterId) -> Outcome,
) {
    let Env {
        ctx,
        stop,
        slot,
        pause,
        nice,
        baton,
        phases,
    } = *env;
    super::sched::nice_this_thread(nice);
    let count = ctx.op(name);
    let party = ctx.oracle.party(name);
    let ring_op = match name {
        "clear_refs" => crate::oracle::Op::ClearRefs,
        "migrate" => crate::oracle::Op::Migrate,
        _ => crate::oracle::Op::Split,
    };
    let ending = || stop.load(Ordering::Relaxed) || ctx.should_stop();
    while !ending() {
        if !super::phases::wait(phases, turn_name, ending) {
            break;
        }
        // Under --sequential: one operation per turn, the turn passed on
        // at the end of the iteration.
        let Some(_turn) = super::baton::turn(baton, turn_name, ending) else {
            break;
        };
        let id = slot.read();
        if id.pid == 0 {
            drop(id);
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        ctx.oracle.record(party, ring_op, id.pid as usize);
        let outcome = op(*id);
        // Read under the guard: a restart cannot complete (and clear it)
        // while this party still holds the old writer's pid.
        let dying = slot.is_dying();
        drop(id);
        match outcome {
            Outcome::Done => {
                count.fetch_add(1, Ordering::Relaxed);
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            Outcome::Gone => {
                stats.transient.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(100));
            }
            Outcome::Failed(_) if dying => {
                stats.transient.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(100));
            }
            Outcome::Failed(e) => {
                if stats.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    let msg = format!("{name}: {e}");
                    ctx.say(format!(
                        "thp-race: first {name} error: {e} (counted, the party goes on)"
                    ));
                    *stats.first_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg);
                }
                // A persistent failure must not spin a vCPU away from the race.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Setup check: the soft-dirty interface exists.
pub fn check_clear_refs(path: &str) -> Result<()> {
    OpenOptions::new().write(true).open(path).map(drop).with_context(|| {
        format!(
            "clear_refs: cannot open {path} for writing (kernel without CONFIG_PROC_PAGE_MONITOR?); \
             turn the party off with --no-clear-refs"
        )
    })
}

/// Writes `4` (clear soft-dirty) to the writer's clear_refs, reopening the
/// file for each new writer.
pub fn clear_refs(env: &Env, stats: &PartyStats) {
    let mut open: Option<(u64, File)> = None;
    party_loop(env, "clear_refs", stats, |id| {
        if open.as_ref().map(|(g, _)| *g) != Some(id.generation) {
            let path = format!("/proc/{}/clear_refs", id.pid);
            match OpenOptions::new().write(true).open(&path) {
                Ok(f) => open = Some((id.generation, f)),
                Err(e) if writer_gone(&e) => return Outcome::Gone,
                Err(e) => return Outcome::Failed(e),
            }
        }
        let (_, f) = open.as_mut().expect("opened above");
        match f.write(b"4") {
            Ok(_) => Outcome::Done,
            Err(e) if writer_gone(&e) => {
                open = None;
                Outcome::Gone
            }
            Err(e) => Outcome::Failed(e),
        }
    });
}

/// How out of a bad `--nodes`: the end of every node error.
pub const NODES_FIX: &str =
    "(set two online nodes with --nodes A,B, or turn the migrate party off with --no-migrate)";

/// Setup check: two online nodes, and a kernel that implements
/// migrate_pages(2) (probed with a harmless node A to node A move of the
/// driver itself). Returns the pair.
pub fn check_migrate(nodes: &[u32], online: &[u32]) -> Result<(u32, u32)> {
    let (a, b) = numa::validate_pair(nodes, online, NODES_FIX)?;
    let mask = numa::single_mask(a);
    // SAFETY: both masks are 2 words, covering MASK_MAXNODE - 1 bits.
    let r = unsafe {
        libc::syscall(
            libc::SYS_migrate_pages,
            0,
            numa::MASK_MAXNODE,
            mask.as_ptr(),
            mask.as_ptr(),
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        let why = if e.raw_os_error() == Some(libc::ENOSYS) {
            " (the kernel has no NUMA migration: CONFIG_NUMA_MIGRATION off?)"
        } else {
            ""
        };
        bail!("migrate: migrate_pages(2) probe failed: {e}{why}; turn the party off with --no-migrate");
    }
    Ok((a, b))
}

/// Bounces the writer's pages A to B, then B to A, and so on. The return
/// value (pages that did not move) is summed into `not_moved`. Thread
/// `index` of `--migrate-threads` starts the other way round from its
/// predecessor.
pub fn migrate(
    env: &Env,
    stats: &PartyStats,
    (a, b): (u32, u32),
    not_moved: &AtomicU64,
    index: u32,
) {
    let (mask_a, mask_b) = (numa::single_mask(a), numa::single_mask(b));
    let mut forward = index.is_multiple_of(2);
    let turn_name = migrate_turn_name(index);
    party_loop_as(env, "migrate", &turn_name, stats, |id| {
        let (from, to) = if forward {
            (&mask_a, &mask_b)
        } else {
            (&mask_b, &mask_a)
        };
        forward = !forward;
        // SAFETY: both masks are 2 words, covering MASK_MAXNODE - 1 bits.
        let r = unsafe {
            libc::syscall(
                libc::SYS_migrate_pages,
                id.pid,
                numa::MASK_MAXNODE,
                from.as_ptr(),
                to.as_ptr(),
            )
        };
        if r >= 0 {
            not_moved.fetch_add(r as u64, Ordering::Relaxed);
            return Outcome::Done;
        }
        let e = std::io::Error::last_os_error();
        if writer_gone(&e) {
            Outcome::Gone
        } else {
            Outcome::Failed(e)
        }
    });
}

/// Migrate thread `index`'s name in the `--sequential` order.
pub fn migrate_turn_name(index: u32) -> String {
    if index == 0 {
        "migrate".into()
    } else {
        format!("migrate{index}")
    }
}

/// Setup check: the debugfs file exists and opens for writing. The open
/// file is what the splitter then writes to.
pub fn check_splitter(path: &str) -> Result<File> {
    OpenOptions::new().write(true).open(path).with_context(|| {
        format!(
            "splitter: cannot open {path} for writing (debugfs not mounted at /sys/kernel/debug, \
             or a kernel without CONFIG_DEBUG_FS/CONFIG_TRANSPARENT_HUGEPAGE?); \
             turn the party off with --no-splitter"
        )
    })
}

/// Asks the kernel to split every THP of each of `ranges` of the writer,
/// one range per write, in turn.
pub fn splitter(env: &Env, stats: &PartyStats, file: File, ranges: &[Region]) {
    let mut file = file;
    let mut next = 0;
    party_loop(env, "splitter", stats, |id| {
        let line = ranges[next].split_line(id.pid);
        next = (next + 1) % ranges.len();
        match file.write(line.as_bytes()) {
            Ok(_) => Outcome::Done,
            // EINVAL: the writer is a zombie without an mm; party_loop
            // counts it as transient when the slot says it is dying.
            Err(e) if writer_gone(&e) || e.kind() == ErrorKind::NotFound => Outcome::Gone,
            Err(e) => Outcome::Failed(e),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_splitter_file_names_the_flag() {
        let e = check_splitter("/nonexistent/split_huge_pages").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("--no-splitter") && msg.contains("/nonexistent/split_huge_pages"),
            "{msg}"
        );
    }

    #[test]
    fn missing_clear_refs_names_the_flag() {
        let msg = format!(
            "{:#}",
            check_clear_refs("/nonexistent/clear_refs").unwrap_err()
        );
        assert!(msg.contains("--no-clear-refs"), "{msg}");
        check_clear_refs(CLEAR_REFS_SELF).unwrap();
    }

    #[test]
    fn migrate_check_names_the_flag() {
        // Node 1 offline: refused before any syscall.
        let msg = format!("{:#}", check_migrate(&[0, 1], &[0]).unwrap_err());
        assert!(msg.contains("--no-migrate"), "{msg}");
        // On this host: either both default nodes work or the error says how out.
        let online = crate::numa::online_nodes().unwrap();
        if let Err(e) = check_migrate(&[0, 1], &online) {
            assert!(format!("{e:#}").contains("--no-migrate"));
        }
    }

    #[test]
    fn gone_errnos() {
        assert!(writer_gone(&std::io::Error::from_raw_os_error(libc::ESRCH)));
        assert!(writer_gone(&std::io::Error::from_raw_os_error(
            libc::ENOENT
        )));
        assert!(!writer_gone(&std::io::Error::from_raw_os_error(
            libc::EINVAL
        )));
    }
}
