//! The amplifier, inside the writer child (same mm): threads that race
//! partial operations on one freshly faulted huge pmd, and a refault thread.
//!
//! The race mmrace counts (`pmd_race`) needs a caller to see a huge pmd
//! without the page-table lock and find it changed once it has the lock.
//! The seed's parties almost never line that up. Here each round faults a
//! fresh THP, then releases all racer threads at once (they spin on a
//! shared "go" sequence number, LTP fuzzy-sync style, so they enter the
//! kernel within a few hundred nanoseconds of each other) and each does a
//! partial operation on a different 4 KiB page of the same pmd: every
//! partial op must split the pmd, and only one of them can.
//!
//! Two MADV_DONTNEEDs (per-VMA read lock) really run concurrently. mprotect,
//! munmap+mmap and mremap take the mmap write lock, so against each other
//! and against DONTNEED they serialize; they still split via
//! vma_adjust_trans_huge() and move_page_tables(), racing whatever works
//! without the mmap lock (rmap walkers: migration, compaction, reclaim).
//!
//! Page 0 of each chunk is never operated on: it is what the leader and the
//! refault thread touch to fault the THP, so it must always stay mapped RW.

use super::layout::ChildPlan;
use super::rng::Rng;
use super::shared_ops::SharedOps;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

/// A partial operation on one 4 KiB page of a huge pmd.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RacerOp {
    /// madvise(MADV_DONTNEED) of the page: zap_pmd_range's partial split.
    Dontneed,
    /// mprotect(PROT_READ) of the page, then back to read-write.
    Mprotect,
    /// munmap of the page, then a MAP_FIXED anonymous mapping in its place.
    Remap,
    /// mremap of the page to this thread's scratch slot.
    Mremap,
}

impl RacerOp {
    pub const ALL: [RacerOp; 4] = [RacerOp::Dontneed, RacerOp::Mprotect, RacerOp::Remap, RacerOp::Mremap];

    /// Its op counter (a party name in the driver's snapshots).
    pub fn counter_name(self) -> &'static str {
        match self {
            RacerOp::Dontneed => "racer_dontneed",
            RacerOp::Mprotect => "racer_mprotect",
            RacerOp::Remap => "racer_remap",
            RacerOp::Mremap => "racer_mremap",
        }
    }

    /// Its `--racer-ops` word.
    pub fn word(self) -> &'static str {
        match self {
            RacerOp::Dontneed => "dontneed",
            RacerOp::Mprotect => "mprotect",
            RacerOp::Remap => "remap",
            RacerOp::Mremap => "mremap",
        }
    }

    fn from_u8(v: u8) -> RacerOp {
        RacerOp::ALL[usize::from(v) % RacerOp::ALL.len()]
    }
}

/// Most racer threads `--racer-threads` accepts.
pub const MAX_RACERS: usize = 16;

/// The op counters the child feeds (folded into `ctx.op`).
pub const OP_NAMES: [&str; 7] = [
    "writer",
    "racer_rounds",
    "racer_dontneed",
    "racer_mprotect",
    "racer_remap",
    "racer_mremap",
    "refault",
];

/// Diagnostics the child feeds (reported in the JSON, not streamed).
pub const DIAG_NAMES: [&str; 5] = [
    "racer_op_errors",
    "racer_prepare_errors",
    "racer_thp_checks",
    "racer_thp_huge",
    "racer_thp_unknown",
];

/// Every this many rounds the leader checks that its fresh chunk really is
/// a THP (two preads; the rounds stay cheap).
const THP_CHECK_EVERY: u64 = 16;
/// Spins before a waiting thread starts yielding its vCPU.
const SPIN_LIMIT: u32 = 20_000;
/// Upper bound of the per-thread random delay after "go", in spin-loop
/// iterations: shifts the threads against each other by up to about a
/// microsecond so successive rounds sweep the window from both sides.
const MAX_DELAY_SPINS: u64 = 512;
const STACK: usize = 256 << 10;

/// One thread's orders for the current round.
#[derive(Default)]
struct Orders {
    op: AtomicU8,
    page: AtomicUsize,
    delay: AtomicU64,
}

/// The rendezvous of a round. Counters only grow (round `r` is complete
/// when `done == threads * r`), so nothing is ever reset under a racer.
struct Rendezvous {
    threads: u64,
    go: AtomicU64,
    arrived: AtomicU64,
    done: AtomicU64,
    orders: Vec<Orders>,
}

fn wait_until(cond: impl Fn() -> bool) {
    let mut spins = 0;
    while !cond() {
        if spins < SPIN_LIMIT {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

fn spin(n: u64) {
    for _ in 0..n {
        std::hint::spin_loop();
    }
}

/// Starts the racer threads and the refault thread the plan asks for.
/// Called in the writer child before it reports ready.
pub fn start(plan: &ChildPlan, ops: &Arc<SharedOps>, diag: &Arc<SharedOps>) -> std::io::Result<()> {
    if let Some(racers) = &plan.racers {
        let rv = Arc::new(Rendezvous {
            threads: racers.threads as u64,
            go: AtomicU64::new(0),
            arrived: AtomicU64::new(0),
            done: AtomicU64::new(0),
            orders: (0..racers.threads).map(|_| Orders::default()).collect(),
        });
        for i in 0..racers.threads {
            let (plan, ops, diag, rv) = (plan.clone(), ops.clone(), diag.clone(), rv.clone());
            std::thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || racer(i, &plan, &ops, &diag, &rv))?;
        }
    }
    if plan.refault {
        let (plan, ops) = (plan.clone(), ops.clone());
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || refault(&plan, &ops))?;
    }
    Ok(())
}

/// Writes one byte at `addr`: on a pmd_none chunk of a MADV_HUGEPAGE VMA
/// this faults the whole THP.
fn touch(addr: usize, value: u8) {
    // SAFETY: `addr` is page 0 of a racer chunk, which no operation ever
    // unmaps or write-protects (see the module docs).
    unsafe { std::ptr::write_volatile(addr as *mut u8, value) };
}

/// Performs `op` on the page at `page`; false if a syscall failed.
fn perform(op: RacerOp, page: usize, page_size: usize, scratch: usize) -> bool {
    let p = page as *mut libc::c_void;
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY (all arms): `page` is a page of this thread's own orders inside
    // the racer region, which only racer threads use and no Rust reference
    // points into; `scratch` is this thread's private mremap slot.
    unsafe {
        match op {
            RacerOp::Dontneed => libc::madvise(p, page_size, libc::MADV_DONTNEED) == 0,
            RacerOp::Mprotect => {
                libc::mprotect(p, page_size, libc::PROT_READ) == 0 && libc::mprotect(p, page_size, rw) == 0
            }
            RacerOp::Remap => {
                libc::munmap(p, page_size) == 0
                    && libc::mmap(
                        p,
                        page_size,
                        rw,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                        -1,
                        0,
                    ) == p
            }
            RacerOp::Mremap => {
                let dst = scratch as *mut libc::c_void;
                libc::mremap(p, page_size, page_size, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, dst) == dst
            }
        }
    }
}

/// Replaces `chunk` with a fresh anonymous THP-advised mapping and faults
/// it. A fresh mapping, not just MADV_DONTNEED: a split pmd keeps its page
/// table after DONTNEED unless the kernel reclaims empty tables
/// (CONFIG_PT_RECLAIM), and with a table there no THP is faulted; munmap
/// always frees it. It also undoes the holes remap/mremap left.
fn prepare(chunk: usize, pmd: usize, value: u8) -> bool {
    let p = chunk as *mut libc::c_void;
    // SAFETY: `chunk` is a pmd-aligned chunk of the racer region, which only
    // racer threads use; replacing it discards nothing anyone else needs.
    let ok = unsafe {
        libc::mmap(
            p,
            pmd,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        ) == p
            && libc::madvise(p, pmd, libc::MADV_HUGEPAGE) == 0
    };
    touch(chunk, value);
    ok
}

/// Whether the page at `addr` belongs to a THP: its pfn from
/// /proc/self/pagemap, that pfn's KPF_THP bit in /proc/kpageflags. `None`
/// when that cannot be told (files missing, no CAP_SYS_ADMIN for pfns).
fn is_thp(pagemap: &File, kpageflags: &File, addr: usize, page_size: usize) -> Option<bool> {
    const PRESENT: u64 = 1 << 63;
    const PFN_MASK: u64 = (1 << 55) - 1;
    const KPF_THP: u64 = 1 << 22;
    let mut buf = [0u8; 8];
    pagemap.read_exact_at(&mut buf, (addr / page_size * 8) as u64).ok()?;
    let entry = u64::from_ne_bytes(buf);
    let pfn = entry & PFN_MASK;
    if entry & PRESENT == 0 || pfn == 0 {
        return None;
    }
    kpageflags.read_exact_at(&mut buf, pfn * 8).ok()?;
    Some(u64::from_ne_bytes(buf) & KPF_THP != 0)
}

/// Racer thread `me`; thread 0 leads: it picks each round's chunk, ops,
/// pages and delays, prepares the chunk, and releases the others.
fn racer(me: usize, plan: &ChildPlan, ops: &SharedOps, diag: &SharedOps, rv: &Rendezvous) {
    let Some(racers) = &plan.racers else { return };
    let Some(region) = plan.racer_region else { return };
    let (page_size, pmd) = (plan.page, plan.pmd);
    let scratch = plan.scratch(me);
    let op_counts: Vec<&AtomicU64> = RacerOp::ALL.iter().map(|o| ops.counter(o.counter_name())).collect();
    let op_errors = diag.counter("racer_op_errors");
    let n = rv.threads;
    let mine = &rv.orders[me];

    let run_orders = || {
        spin(mine.delay.load(Ordering::Relaxed));
        let op = RacerOp::from_u8(mine.op.load(Ordering::Relaxed));
        if perform(op, mine.page.load(Ordering::Relaxed), page_size, scratch) {
            op_counts[op as usize].fetch_add(1, Ordering::Relaxed);
        } else {
            op_errors.fetch_add(1, Ordering::Relaxed);
        }
        rv.done.fetch_add(1, Ordering::Release);
    };

    if me != 0 {
        for round in 1u64.. {
            rv.arrived.fetch_add(1, Ordering::Release);
            wait_until(|| rv.go.load(Ordering::Acquire) >= round);
            run_orders();
        }
        return;
    }

    let mut rng = Rng::stream(plan.seed, "racers", plan.generation);
    let rounds = ops.counter("racer_rounds");
    let prepare_errors = diag.counter("racer_prepare_errors");
    let (checks, huge, unknown) = (
        diag.counter("racer_thp_checks"),
        diag.counter("racer_thp_huge"),
        diag.counter("racer_thp_unknown"),
    );
    let pagemap = File::open("/proc/self/pagemap").ok();
    let kpageflags = File::open("/proc/kpageflags").ok();
    let chunks = (region.len / pmd) as u64;
    let pages = (pmd / page_size) as u64;
    let mut chosen: Vec<u64> = Vec::with_capacity(MAX_RACERS);
    for round in 1u64.. {
        let chunk = region.addr + rng.below(chunks) as usize * pmd;
        chosen.clear();
        for orders in &rv.orders {
            let page = loop {
                let p = rng.range_inclusive(1, pages - 1);
                if !chosen.contains(&p) {
                    break p;
                }
            };
            chosen.push(page);
            let op = *rng.pick(&racers.ops);
            orders.op.store(op as u8, Ordering::Relaxed);
            orders.page.store(chunk + page as usize * page_size, Ordering::Relaxed);
            orders.delay.store(rng.below(MAX_DELAY_SPINS), Ordering::Relaxed);
        }
        if !prepare(chunk, pmd, round as u8) {
            prepare_errors.fetch_add(1, Ordering::Relaxed);
        }
        if round % THP_CHECK_EVERY == 1 {
            checks.fetch_add(1, Ordering::Relaxed);
            let thp = match (&pagemap, &kpageflags) {
                (Some(pm), Some(kf)) => is_thp(pm, kf, chunk, page_size),
                _ => None,
            };
            match thp {
                Some(true) => huge.fetch_add(1, Ordering::Relaxed),
                Some(false) => 0,
                None => unknown.fetch_add(1, Ordering::Relaxed),
            };
        }
        wait_until(|| rv.arrived.load(Ordering::Acquire) >= (n - 1) * round);
        rv.go.store(round, Ordering::Release);
        run_orders();
        wait_until(|| rv.done.load(Ordering::Acquire) >= n * round);
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

/// The refault thread: zaps whole chunks (a whole-pmd zap, no split) and
/// faults them again, round-robin, so racers' unlocked checks keep meeting
/// pmds that vanish or appear under them.
fn refault(plan: &ChildPlan, ops: &SharedOps) {
    let Some(region) = plan.racer_region else { return };
    let count = ops.counter("refault");
    let chunks = region.len / plan.pmd;
    for i in 0usize.. {
        let chunk = region.addr + (i % chunks) * plan.pmd;
        // Errors are expected and ignored: a racer may have a hole punched
        // in the chunk right now (ENOMEM), the rest is zapped anyway.
        // SAFETY: advice on the racer region, which only racer threads use
        // and no Rust reference points into.
        unsafe { libc::madvise(chunk as *mut libc::c_void, plan.pmd, libc::MADV_DONTNEED) };
        touch(chunk, i as u8);
        count.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names_are_counted_names() {
        for op in RacerOp::ALL {
            assert!(OP_NAMES.contains(&op.counter_name()));
            assert_eq!(RacerOp::from_u8(op as u8), op);
            use clap::ValueEnum;
            let pv = op.to_possible_value().unwrap();
            assert_eq!(pv.get_name(), op.word());
        }
    }

    #[test]
    fn ops_work_on_a_plain_thp_region() {
        // In this (threaded) test process, on a private 2-pmd region.
        let pmd = crate::mm::pmd_size();
        let page = crate::mm::page_size();
        let map = crate::mm::AlignedMap::new(2 * pmd, pmd).unwrap();
        map.madvise(libc::MADV_HUGEPAGE).unwrap();
        let chunk = map.as_ptr() as usize;
        let scratch = crate::mm::AlignedMap::new(pmd, pmd).unwrap();
        for (i, op) in RacerOp::ALL.into_iter().enumerate() {
            assert!(prepare(chunk, pmd, 1));
            assert!(perform(op, chunk + (i + 1) * page, page, scratch.as_ptr() as usize), "{op:?}");
        }
        assert!(prepare(chunk, pmd, 2));
    }
}
