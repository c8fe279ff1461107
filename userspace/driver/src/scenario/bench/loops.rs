//! The `loops` phase's best case: a minimal standalone two-thread loop of
//! one pair of mm operations. Each round the main thread makes a fresh
//! object (two 2 MiB THPs, 2 MiB-aligned, MADV_HUGEPAGE, the first one
//! written), releases the two threads (each pinned to its CPU) through a
//! barrier, and drops the object when both are back: no stamps, no
//! verification, no start offsets, no steering, no meets. `pairs --pair
//! A,B --kind K` runs the same pair for as long next to it.

use crate::memenv::{self, Need};
use crate::mm::AlignedMap;
use crate::numa;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// An operation of the loop, as pairs' op of the same name does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopOp {
    /// Stores into the thread's pages of the first THP.
    Store,
    /// Reads then writes the thread's pages of the second THP.
    Touch,
    /// migrate_pages(2) of the whole process to the round's node.
    MigratePages,
    /// fallocate(PUNCH_HOLE) of the thread's pages of the first THP.
    PunchHole,
    /// MADV_DONTNEED of the whole object.
    Dontneed,
    /// MADV_PAGEOUT of the whole object.
    Pageout,
}

impl LoopOp {
    /// pairs' name of the op.
    pub fn word(self) -> &'static str {
        match self {
            LoopOp::Store => "store",
            LoopOp::Touch => "touch",
            LoopOp::MigratePages => "migrate-pages",
            LoopOp::PunchHole => "punch-hole",
            LoopOp::Dontneed => "dontneed",
            LoopOp::Pageout => "pageout",
        }
    }
}

/// The object kinds of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopKind {
    Anon,
    Memfd,
}

impl LoopKind {
    pub fn word(self) -> &'static str {
        match self {
            LoopKind::Anon => "anon",
            LoopKind::Memfd => "memfd",
        }
    }
}

/// The pairs of the phase.
pub const PAIRS: [(LoopOp, LoopOp, LoopKind); 4] = [
    (LoopOp::Store, LoopOp::MigratePages, LoopKind::Anon),
    (LoopOp::PunchHole, LoopOp::Touch, LoopKind::Memfd),
    (LoopOp::Dontneed, LoopOp::Touch, LoopKind::Anon),
    (LoopOp::Pageout, LoopOp::Touch, LoopKind::Anon),
];

/// What the guest must have for a pair: pairs prepares the same.
pub fn needs(a: LoopOp, b: LoopOp, kind: LoopKind) -> Vec<Need> {
    let mut v = Vec::new();
    if kind == LoopKind::Memfd {
        v.push(Need::ShmemThp);
    }
    if [a, b].contains(&LoopOp::Pageout) {
        v.push(Need::Swap);
    }
    v
}

const PAGE: usize = 4096;
/// Threads own the pages `p % 4 == slot`, as in pairs.
const OWNERS: usize = 4;

/// One round's object: its mapping and, for memfd, its file.
struct Obj {
    map: AlignedMap,
    fd: Option<OwnedFd>,
}

fn memfd(len: usize) -> Result<OwnedFd> {
    // SAFETY: a plain syscall with a static name.
    let fd = unsafe { libc::memfd_create(c"mmrace-loop".as_ptr(), 0) };
    if fd < 0 {
        bail!("memfd_create: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate of our own file.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        bail!("ftruncate: {}", std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// A fresh object of `kind`: two THPs, the first written.
fn make(kind: LoopKind) -> Result<Obj> {
    let thp = crate::mm::pmd_size();
    let map = AlignedMap::new(2 * thp, thp)?;
    let fd = match kind {
        LoopKind::Anon => None,
        LoopKind::Memfd => {
            let fd = memfd(2 * thp)?;
            // SAFETY: maps the file over our own reservation (same range).
            let p = unsafe {
                libc::mmap(
                    map.as_ptr().cast(),
                    2 * thp,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                bail!("mmap of the memfd: {}", std::io::Error::last_os_error());
            }
            Some(fd)
        }
    };
    map.madvise(libc::MADV_HUGEPAGE)?;
    map.touch(0, thp, 1);
    Ok(Obj { map, fd })
}

/// What the threads see of the round.
struct Round {
    addr: AtomicUsize,
    fd: AtomicI32,
    n: AtomicU64,
    stop: AtomicBool,
    start: Barrier,
    end: Barrier,
}

fn own_pages(slot: usize, first: usize, n: usize) -> impl Iterator<Item = usize> {
    (first..first + n).filter(move |p| p % OWNERS == slot)
}

/// `op` once, by the thread of `slot`, on the object at `addr`.
fn run_op(op: LoopOp, slot: usize, addr: usize, fd: i32, round: u64, nodes: (u32, u32)) {
    let pages = crate::mm::pmd_size() / PAGE;
    let advise = |advice| {
        // SAFETY: advice on this round's object.
        unsafe { libc::madvise(addr as *mut libc::c_void, 2 * pages * PAGE, advice) };
    };
    match op {
        LoopOp::Store => own_pages(slot, 0, pages).for_each(|p| {
            // SAFETY: a page of this round's object, mapped read-write.
            unsafe { ((addr + p * PAGE) as *mut u64).write_volatile(round) };
        }),
        LoopOp::Touch => own_pages(slot, pages, pages).for_each(|p| {
            let a = (addr + p * PAGE) as *mut u64;
            // SAFETY: as above.
            unsafe { a.write_volatile(a.read_volatile() ^ round) };
        }),
        LoopOp::MigratePages => {
            let (from, to) = if round.is_multiple_of(2) {
                nodes
            } else {
                (nodes.1, nodes.0)
            };
            let _ = numa::migrate_pages(0, &[from], &[to]);
        }
        LoopOp::PunchHole => own_pages(slot, 0, pages).for_each(|p| {
            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            // SAFETY: fallocate on this round's file.
            unsafe { libc::fallocate(fd, mode, (p * PAGE) as libc::off_t, PAGE as libc::off_t) };
        }),
        LoopOp::Dontneed => advise(libc::MADV_DONTNEED),
        LoopOp::Pageout => advise(libc::MADV_PAGEOUT),
    }
}

impl Round {
    fn new() -> Round {
        Round {
            addr: AtomicUsize::new(0),
            fd: AtomicI32::new(-1),
            n: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            start: Barrier::new(3),
            end: Barrier::new(3),
        }
    }

    /// Both racers on `pair`'s ops, rounds on its kind for `secs`.
    fn race(
        &self,
        (a, b, kind): (LoopOp, LoopOp, LoopKind),
        secs: Duration,
        nodes: (u32, u32),
    ) -> Result<u64> {
        std::thread::scope(|s| {
            s.spawn(|| racer(self, 0, a, nodes));
            s.spawn(|| racer(self, 1, b, nodes));
            let n = rounds(self, kind, secs);
            self.stop.store(true, Ordering::Release);
            self.start.wait();
            n
        })
    }
}

/// A racing thread: each round, `op` between the two barriers.
fn racer(r: &Round, slot: usize, op: LoopOp, nodes: (u32, u32)) {
    crate::shared::cpu::pin(slot % (crate::sysinfo::online_cpus() as usize).max(1));
    loop {
        r.start.wait();
        if r.stop.load(Ordering::Acquire) {
            return;
        }
        let (addr, fd) = (r.addr.load(Ordering::Acquire), r.fd.load(Ordering::Acquire));
        run_op(op, slot, addr, fd, r.n.load(Ordering::Acquire), nodes);
        r.end.wait();
    }
}

/// Rounds for `secs`: make, release, join, drop.
fn rounds(r: &Round, kind: LoopKind, secs: Duration) -> Result<u64> {
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < secs {
        let obj = make(kind).context("loop: a fresh object")?;
        r.addr.store(obj.map.as_ptr() as usize, Ordering::Release);
        r.fd.store(
            obj.fd.as_ref().map_or(-1, |f| f.as_raw_fd()),
            Ordering::Release,
        );
        r.n.store(n, Ordering::Release);
        r.start.wait();
        r.end.wait();
        drop(obj);
        n += 1;
    }
    Ok(n)
}

/// Runs the standalone loop of (`a`, `b`) on `kind` for `secs`: its
/// rounds and the seconds they took.
pub fn standalone(
    (a, b, kind): (LoopOp, LoopOp, LoopKind),
    secs: Duration,
    nodes: (u32, u32),
) -> Result<(u64, f64)> {
    let _env = memenv::prepare(&needs(a, b, kind))?;
    let t = Instant::now();
    let n = Round::new().race((a, b, kind), secs, nodes)?;
    Ok((n, t.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_runs_rounds_on_this_host() {
        for (a, b, kind) in PAIRS {
            // Swap and shmem THPs need root and a guest: anon only here,
            // and no pageout (it needs swap to do anything).
            if kind != LoopKind::Anon || [a, b].contains(&LoopOp::Pageout) {
                continue;
            }
            let n = Round::new()
                .race((a, b, kind), Duration::from_millis(50), (0, 0))
                .unwrap();
            assert!(n > 0, "{a:?}+{b:?}");
        }
    }
}
