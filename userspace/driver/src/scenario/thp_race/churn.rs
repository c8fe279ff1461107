//! Two more parties inside the writer child (its mm), started with the
//! racers:
//!
//! - churn: whole-THP operations on a region of its own (`--churn-ops`):
//!   mprotect of the whole 2 MiB (change_huge_pmd), mremap of the THP away
//!   and back (move_huge_pmd), MADV_FREE (madvise_free_huge_pmd), mlock and
//!   munlock, MADV_DONTNEED of one page then MADV_COLLAPSE (collapse after
//!   a split), and a whole-pmd zap (zap_huge_pmd). Each leaves the chunk
//!   mapped and faults it again, so the next operation, and the seed's
//!   migrate, splitter and clear_refs parties and the /proc walkers, meet
//!   huge pmds that keep changing shape under whole-pmd paths.
//! - fork: forks a child that writes one byte into every THP of the writer
//!   and the racers' region and exits. fork copies the huge pmds
//!   (copy_huge_pmd, write-protected in both), the child's writes and the
//!   writer's memset break copy-on-write (do_huge_pmd_wp_page), and the
//!   child's exit zaps its copies: all while the other parties split,
//!   migrate and walk them.
//!
//! With `--churn-threads N` (N > 1) N churn threads share the region, each
//! with its own random stream and mremap scratch slot: whole-THP operations
//! then meet each other, and each other's faults, on the same huge pmd. A
//! thread may touch a chunk that another has just moved away (mremap) or
//! made read-only (mprotect): the writer child's SIGSEGV handler lets such
//! an access retry once the other thread has put the chunk back, and counts
//! it (`churn_segv_retries`); a fault anywhere else is fatal as before.
//!
//! Both run at `--party-nice`, count into the shared op page and take
//! their turns under `--sequential` (one churn thread then). Neither ever
//! leaves an address the writer or the racers touch unmapped.

use super::layout::{ChildPlan, Region, CHURN_SCRATCH_ADDR};
use super::sched;
use crate::mm;
use crate::shared::rng::Rng;
use crate::shared::slots::SharedOps;
use mmrace_proto::spec::thp_race::ChurnOp;
use mmrace_proto::spec::thp_race::MAX_CHURN_THREADS;
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

/// MADV_COLLAPSE (Linux 6.1), not in every libc.
pub const MADV_COLLAPSE: libc::c_int = 25;

/// MADV_POPULATE_WRITE (Linux 5.14), not in every libc.
pub const MADV_POPULATE_WRITE: libc::c_int = 23;

/// The op counters of the churn and fork parties.
pub const OP_NAMES: [&str; 9] = [
    "churn_mprotect",
    "churn_mremap",
    "churn_free",
    "churn_mlock",
    "churn_collapse",
    "churn_zap",
    "churn_zero",
    "churn_populate",
    "fork",
];

/// Their diagnostics (in the racers' diag page).
pub const DIAG_NAMES: [&str; 4] = [
    "churn_errors",
    "churn_collapse_failed",
    "churn_segv_retries",
    "fork_errors",
];

const STACK: usize = 256 << 10;

pub fn counter_name(op: ChurnOp) -> &'static str {
    match op {
        ChurnOp::Mprotect => "churn_mprotect",
        ChurnOp::Mremap => "churn_mremap",
        ChurnOp::Free => "churn_free",
        ChurnOp::Mlock => "churn_mlock",
        ChurnOp::Collapse => "churn_collapse",
        ChurnOp::Zap => "churn_zap",
        ChurnOp::Zero => "churn_zero",
        ChurnOp::Populate => "churn_populate",
    }
}

/// The churn thread `i`'s mremap destination.
pub fn scratch(i: usize, pmd: usize) -> usize {
    CHURN_SCRATCH_ADDR + i * pmd
}

// The range the SIGSEGV handler retries faults in (the churn region and
// the scratch slots), and how often it did.
static RETRY_LO: AtomicUsize = AtomicUsize::new(0);
static RETRY_HI: AtomicUsize = AtomicUsize::new(0);
static SEGV_RETRIES: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_segv(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if (RETRY_LO.load(Ordering::Relaxed)..RETRY_HI.load(Ordering::Relaxed)).contains(&addr) {
        // Another churn thread has this chunk away or read-only for a few
        // microseconds: let it finish, then the access runs again.
        SEGV_RETRIES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: sched_yield is async-signal-safe.
        unsafe { libc::sched_yield() };
        return;
    }
    // Not ours: the default action, when the access runs again.
    // SAFETY: signal() with SIG_DFL is async-signal-safe.
    unsafe { libc::signal(libc::SIGSEGV, libc::SIG_DFL) };
}

/// Installs the handler that lets accesses to `r` (and the scratch slots)
/// retry while another churn thread has the chunk away.
fn retry_faults_in(r: Region, pmd: usize) -> std::io::Result<()> {
    // The scratch slots sit above the region: the range ends after them.
    RETRY_LO.store(r.addr, Ordering::Relaxed);
    RETRY_HI.store(scratch(MAX_CHURN_THREADS, pmd), Ordering::Relaxed);
    // SAFETY: a zeroed sigaction with a valid SA_SIGINFO handler.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_segv as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Maps the churn region at its fixed address (never over anything) and
/// starts the churn and fork threads the plan asks for. Called by
/// `racers::start` in the writer child.
pub fn start(plan: &ChildPlan, ops: &Arc<SharedOps>, diag: &Arc<SharedOps>) -> std::io::Result<()> {
    let spawn = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(f)
            .map(drop)
    };
    if let Some(c) = &plan.churn {
        map_region(c.region)?;
        if c.threads > 1 {
            retry_faults_in(c.region, plan.pmd)?;
        }
        for i in 0..c.threads {
            let (plan, ops, diag) = (plan.clone(), ops.clone(), diag.clone());
            spawn(Box::new(move || churn(&plan, &ops, &diag, i)))?;
        }
    }
    if plan.fork {
        let (plan, ops, diag) = (plan.clone(), ops.clone(), diag.clone());
        spawn(Box::new(move || forker(&plan, &ops, &diag)))?;
    }
    Ok(())
}

fn map_region(r: Region) -> std::io::Result<()> {
    Ok(mm::map_thp_at(r.addr, r.len, mm::Fixed::NoReplace)?)
}

/// Writes one byte at `addr`, faulting a THP into a pmd_none chunk.
fn touch(addr: usize, value: u8) {
    // SAFETY: `addr` is the start of a churn chunk, which `perform` always
    // leaves mapped read-write.
    unsafe { std::ptr::write_volatile(addr as *mut u8, value) };
}

/// A fresh THP-advised mapping at `chunk` (the fallback when a chunk could
/// not be moved back); it replaces the chunk, which only this thread uses.
fn remap_fresh(chunk: usize, pmd: usize) -> bool {
    mm::map_thp_at(chunk, pmd, mm::Fixed::Replace).is_ok()
}

/// What one churn operation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Ok,
    /// MADV_COLLAPSE said no (busy range, allocation failure): expected.
    CollapseRefused,
    Failed,
}

/// Performs `op` on the whole THP at `chunk` (pmd-aligned, pmd bytes) and
/// leaves the chunk mapped read-write with a THP faulted in; mremap moves
/// it through `scratch` (a free pmd-aligned slot of this thread's).
pub fn perform(
    op: ChurnOp,
    chunk: usize,
    scratch: usize,
    pmd: usize,
    page: usize,
    value: u8,
) -> Done {
    let p = chunk as *mut libc::c_void;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    touch(chunk, value);
    // SAFETY (all arms): `chunk` is a chunk of the churn region, which only
    // this thread uses and no Rust reference points into; the scratch slot
    // is this thread's alone.
    let done = unsafe {
        match op {
            ChurnOp::Mprotect => {
                libc::mprotect(p, pmd, libc::PROT_READ) == 0 && libc::mprotect(p, pmd, rw) == 0
            }
            ChurnOp::Mremap => {
                let dst = scratch as *mut libc::c_void;
                let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
                if libc::mremap(p, pmd, pmd, flags, dst) != dst {
                    false
                } else if libc::mremap(dst, pmd, pmd, flags, p) != p {
                    // Never leave the chunk unmapped: the touch below needs it.
                    remap_fresh(chunk, pmd);
                    false
                } else {
                    true
                }
            }
            ChurnOp::Free => libc::madvise(p, pmd, libc::MADV_FREE) == 0,
            ChurnOp::Mlock => libc::mlock(p, pmd) == 0 && libc::munlock(p, pmd) == 0,
            ChurnOp::Collapse => {
                let hole = (chunk + page) as *mut libc::c_void;
                if libc::madvise(hole, page, libc::MADV_DONTNEED) != 0 {
                    false
                } else if libc::madvise(p, pmd, MADV_COLLAPSE) != 0 {
                    touch(chunk, value);
                    return Done::CollapseRefused;
                } else {
                    true
                }
            }
            ChurnOp::Zap => libc::madvise(p, pmd, libc::MADV_DONTNEED) == 0,
            ChurnOp::Zero => {
                let ok = libc::madvise(p, pmd, libc::MADV_DONTNEED) == 0;
                // A read fault of the empty pmd maps the huge zero page;
                // the write below breaks it by copy-on-write.
                std::ptr::read_volatile((chunk + page) as *const u8);
                ok
            }
            ChurnOp::Populate => {
                libc::madvise(p, pmd, libc::MADV_DONTNEED) == 0
                    && libc::madvise(p, pmd, MADV_POPULATE_WRITE) == 0
            }
        }
    };
    touch(chunk, value);
    if done {
        Done::Ok
    } else {
        Done::Failed
    }
}

fn churn(plan: &ChildPlan, ops: &SharedOps, diag: &SharedOps, thread: usize) {
    let Some(c) = &plan.churn else { return };
    sched::nice_this_thread(plan.party_nice);
    // Thread 0 keeps the stream a single churn thread always had.
    let stream = match thread {
        0 => "churn".to_string(),
        i => format!("churn{i}"),
    };
    let mut rng = Rng::stream(plan.seed, &stream, plan.generation);
    let scratch = scratch(thread, plan.pmd);
    let counts: Vec<_> = c
        .ops
        .iter()
        .map(|&o| ops.counter(counter_name(o)))
        .collect();
    let (errors, refused, retries) = (
        diag.counter("churn_errors"),
        diag.counter("churn_collapse_failed"),
        diag.counter("churn_segv_retries"),
    );
    let chunks = (c.region.len / plan.pmd) as u64;
    for i in 0u64.. {
        let k = rng.below(c.ops.len() as u64) as usize;
        let chunk = c.region.addr + rng.below(chunks) as usize * plan.pmd;
        super::phases::wait(plan.phases.as_ref(), "churn", || false);
        let _turn = super::baton::turn(plan.baton.as_ref(), "churn", || false);
        match perform(c.ops[k], chunk, scratch, plan.pmd, plan.page, i as u8) {
            Done::Ok => counts[k].fetch_add(1, Ordering::Relaxed),
            Done::CollapseRefused => {
                counts[k].fetch_add(1, Ordering::Relaxed);
                refused.fetch_add(1, Ordering::Relaxed)
            }
            Done::Failed => errors.fetch_add(1, Ordering::Relaxed),
        };
        if thread == 0 {
            retries.store(SEGV_RETRIES.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// The writer's addresses a forked child may write: one per THP of the
/// writer's mapping and page 0 of each racer chunk (always mapped RW).
fn fork_targets(plan: &ChildPlan) -> Vec<usize> {
    let mut v: Vec<usize> = (0..plan.writer.len / plan.pmd)
        .map(|i| plan.writer.addr + i * plan.pmd)
        .collect();
    if let Some(r) = plan.racer_region {
        v.extend((0..r.len / plan.pmd).map(|i| r.addr + i * plan.pmd));
    }
    v
}

fn forker(plan: &ChildPlan, ops: &SharedOps, diag: &SharedOps) {
    sched::nice_this_thread(plan.party_nice);
    let count = ops.counter("fork");
    let errors = diag.counter("fork_errors");
    let targets = fork_targets(plan);
    for i in 0u64.. {
        super::phases::wait(plan.phases.as_ref(), "fork", || false);
        let _turn = super::baton::turn(plan.baton.as_ref(), "fork", || false);
        // SAFETY: fork in a threaded process: the child only does volatile
        // stores into memory it inherited and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: prctl with integers; the child dies with the writer.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            for &a in &targets {
                // SAFETY: see fork_targets: always mapped read-write.
                unsafe { std::ptr::write_volatile(a as *mut u8, i as u8) };
            }
            // SAFETY: leaves the forked child without running anything of
            // the writer's.
            unsafe { libc::_exit(0) };
        }
        if pid < 0 {
            errors.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        count.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_leaves_the_chunk_mapped() {
        let pmd = crate::mm::pmd_size();
        let page = crate::mm::page_size();
        // The mremap op uses the fixed scratch slot: only this test may.
        let map = crate::mm::AlignedMap::new(2 * pmd, pmd).unwrap();
        map.madvise(libc::MADV_HUGEPAGE).unwrap();
        let chunk = map.as_ptr() as usize;
        for (i, &op) in ChurnOp::ALL.iter().enumerate() {
            let d = perform(op, chunk, scratch(0, pmd), pmd, page, i as u8);
            assert_ne!(d, Done::Failed, "{op:?}");
            // Still mapped and writable.
            touch(chunk + pmd - 1, 7);
            assert!(OP_NAMES.contains(&counter_name(op)));
        }
    }

    #[test]
    fn fork_targets_are_writer_thps_and_racer_page_zeros() {
        let plan = super::super::tests::host_plan();
        let t = fork_targets(&plan);
        let n = plan.writer.len / plan.pmd + plan.chunks();
        assert_eq!(t.len(), n);
        assert!(t.iter().all(|a| a % plan.pmd == 0));
    }
}
