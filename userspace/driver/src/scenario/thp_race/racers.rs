//! The amplifier, inside the writer child (same mm): racer threads that
//! race operations on one freshly faulted huge pmd, round after round.
//!
//! The race mmrace counts (`pmd_race`) needs a caller to see a huge pmd
//! without the page-table lock and find it changed once it has the lock.
//! The seed's parties almost never line that up. Here the leading racer
//! faults a fresh THP, then releases the others with a fuzzy-sync style
//! handshake (it raises "ready", each follower wakes and acknowledges, and
//! the moment all have, the leader raises "go": all are on a CPU and enter
//! the kernel within nanoseconds, after an optional small random delay that
//! sweeps the window from both sides). Waits spin briefly, then sleep on a
//! futex ([`Signal`]), never sched_yield. Each then does the round's operation
//! on its own 4 KiB page of the same pmd: every one of them must split the
//! pmd, and only one can.
//!
//! A round's kind is drawn from `--racer-ops`, plus `refault` unless
//! `--no-refault`:
//! - two partial MADV_DONTNEEDs (per-VMA read lock) really run concurrently;
//! - a refault round has the leader zap the whole pmd (MADV_DONTNEED of all
//!   2 MiB: zap_huge_pmd under the lock, no split) and fault it again while
//!   the others split it partially: a racer that saw it huge and then finds
//!   it gone under the lock is a race too;
//! - mprotect, munmap+mmap and mremap take the mmap write lock, so among
//!   themselves they serialize; they still split via vma_adjust_trans_huge()
//!   and move_page_tables(), racing whatever works without the mmap lock
//!   (rmap walkers: migration, splitting, compaction, reclaim).
//!
//! Without racers, refault is a free-running thread that zaps and refaults
//! the region's chunks round-robin, churning pmds for the seed's parties.
//! (An extra refault member in every round was tried: with more members
//! than the guest's two vCPUs the handshake stalls and rounds drop ~7x.)
//!
//! How the members' starts are offset is `--offsets`: `fuzzy` measures
//! every member's operation and spreads the starts over the measured
//! windows ([`super::offsets`]); `fixed` holds one member back by a random
//! 0..2048 busy loops in half the rounds (the old default); `none` starts
//! them together. Under `--sequential` only the leader runs: it does every
//! member's job of a round itself, one after the other, in its turn.
//!
//! Page 0 of each chunk is never operated on partially: it is what the
//! leader and the refault thread touch to fault the THP, so it must always
//! stay mapped RW.

use super::layout::ChildPlan;
use super::sched;
use super::signal::Signal;
use crate::oracle::{mem, Check, Op, Oracle};
use crate::shared::offsets::{self, busy, KindState};
use crate::shared::rng::Rng;
use crate::shared::slots::SharedOps;
use mmrace_proto::oracle::{region, Expected, Stamp, UNIT};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use mmrace_proto::spec::thp_race::{OffsetMode, RacerOp, MAX_RACERS};

/// Offset round kinds: every racer op, then refault.
pub const KINDS: usize = RacerOp::ALL.len() + 1;
pub const REFAULT_KIND: usize = RacerOp::ALL.len();

/// The name of offset round kind `k` in the report.
pub fn kind_name(k: usize) -> String {
    RacerOp::ALL
        .get(k)
        .map_or("refault", |o| o.word())
        .to_string()
}

/// The op counters the child feeds (folded into `ctx.op`).
pub const OP_NAMES: [&str; 9] = [
    "writer",
    "racer_rounds",
    "racer_dontneed",
    "racer_mprotect",
    "racer_remap",
    "racer_mremap",
    "racer_free",
    "racer_mlock",
    "refault",
];

/// Diagnostics the child feeds (reported in the JSON, not streamed).
/// `racer_remap_fallback` is 1 once a leader found that MADV_DONTNEED of a
/// whole chunk no longer gives it a fresh THP and switched to remapping.
pub const DIAG_NAMES: [&str; 6] = [
    "racer_op_errors",
    "racer_prepare_errors",
    "racer_thp_checks",
    "racer_thp_huge",
    "racer_thp_unknown",
    "racer_remap_fallback",
];

/// Every this many rounds the leader checks that its fresh chunk really is
/// a THP (two preads; the rounds stay cheap).
const THP_CHECK_EVERY: u64 = 16;
/// `--offsets fixed`: upper bound of the one random delay of a round, in
/// busy-loop iterations: about a microsecond on hardware, several under
/// TCG, the order of a pmd split.
const MAX_DELAY_LOOPS: u64 = 2048;
const STACK: usize = 256 << 10;

/// What one member does in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    /// A partial operation on one page.
    Partial(RacerOp),
    /// MADV_DONTNEED of the whole chunk, then a touch to fault it again.
    ZapChunk,
}

const ZAP_CODE: u8 = u8::MAX;

impl Job {
    /// How the oracle's op ring names it.
    fn ring_op(self) -> Op {
        match self {
            Job::ZapChunk => Op::ZapChunk,
            Job::Partial(RacerOp::Dontneed) => Op::Dontneed,
            Job::Partial(RacerOp::Mprotect) => Op::Mprotect,
            Job::Partial(RacerOp::Remap) => Op::Remap,
            Job::Partial(RacerOp::Mremap) => Op::Mremap,
            Job::Partial(RacerOp::Free) => Op::Free,
            Job::Partial(RacerOp::Mlock) => Op::Mlock,
        }
    }

    fn code(self) -> u8 {
        match self {
            Job::Partial(op) => op as u8,
            Job::ZapChunk => ZAP_CODE,
        }
    }

    fn from_code(v: u8) -> Job {
        match v {
            ZAP_CODE => Job::ZapChunk,
            v => Job::Partial(RacerOp::ALL[usize::from(v) % RacerOp::ALL.len()]),
        }
    }
}

/// The kind of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoundKind {
    /// Every racer does this op on its own page.
    Op(RacerOp),
    /// The leader zaps and refaults the chunk, the others DONTNEED a page.
    Refault,
}

impl RoundKind {
    /// The kinds a leader draws from for `plan`.
    fn all(plan: &ChildPlan) -> Vec<RoundKind> {
        let ops = plan.racers.as_ref().map_or(&[][..], |r| &r.ops[..]);
        let mut kinds: Vec<RoundKind> = ops.iter().map(|&op| RoundKind::Op(op)).collect();
        if plan.refault {
            kinds.push(RoundKind::Refault);
        }
        kinds
    }

    /// Member `i`'s job in a round of this kind.
    fn job(self, i: usize) -> Job {
        match self {
            RoundKind::Op(op) => Job::Partial(op),
            RoundKind::Refault if i == 0 => Job::ZapChunk,
            RoundKind::Refault => Job::Partial(RacerOp::Dontneed),
        }
    }

    /// Whether the chunk's VMAs or mapping changed, so the next round on
    /// it needs a fresh mapping.
    fn changes_layout(self) -> bool {
        matches!(self, RoundKind::Op(op) if op.changes_layout())
    }

    /// Its index among [`KINDS`].
    fn index(self) -> usize {
        match self {
            RoundKind::Op(op) => op as usize,
            RoundKind::Refault => REFAULT_KIND,
        }
    }
}

/// One member's orders for the current round.
#[derive(Default)]
struct Orders {
    job: AtomicU8,
    /// The page (partial jobs) or the chunk (zap).
    addr: AtomicUsize,
    delay: AtomicU64,
    /// Set by the member: its operation succeeded (the data oracle's
    /// expectation for its page depends on it).
    ok: AtomicBool,
    /// When the member started and ended its operation, in ns since the
    /// rendezvous began, and how long its delay really took.
    start_ns: AtomicU64,
    end_ns: AtomicU64,
    delay_ns: AtomicU64,
}

/// The rendezvous of the racer threads (member 0 leads). Counters only
/// grow (round `r` is acknowledged when `acked == (members - 1) * r` and
/// complete when `done == members * r`), so nothing is ever reset under a
/// member.
struct Rendezvous {
    members: u64,
    ready: Signal,
    acked: Signal,
    go: Signal,
    done: Signal,
    orders: Vec<Orders>,
    /// The clock the members' timestamps count from.
    base: Instant,
}

impl Rendezvous {
    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// Starts the racer threads, or the free refault thread when there are no
/// racers. Called in the writer child before it reports ready.
pub fn start(
    plan: &ChildPlan,
    ops: &Arc<SharedOps>,
    diag: &Arc<SharedOps>,
    oracle: &Arc<Oracle>,
) -> std::io::Result<()> {
    let spawn = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn(f)
            .map(drop)
    };
    match &plan.racers {
        Some(racers) => {
            // Sequentially the leader does every member's job itself.
            let threads = if plan.baton.is_some() {
                1
            } else {
                racers.threads
            };
            let rv = Arc::new(Rendezvous {
                members: threads as u64,
                ready: Signal::default(),
                acked: Signal::default(),
                go: Signal::default(),
                done: Signal::default(),
                orders: (0..racers.threads).map(|_| Orders::default()).collect(),
                base: Instant::now(),
            });
            for i in 0..threads {
                let (plan, ops, diag, rv, oracle) = (
                    plan.clone(),
                    ops.clone(),
                    diag.clone(),
                    rv.clone(),
                    oracle.clone(),
                );
                spawn(Box::new(move || {
                    member(i, &plan, &ops, &diag, &rv, &oracle)
                }))?;
            }
        }
        None if plan.refault => {
            let (plan, ops) = (plan.clone(), ops.clone());
            spawn(Box::new(move || free_refault(&plan, &ops)))?;
        }
        None => {}
    }
    super::churn::start(plan, ops, diag)
}

/// Writes one byte at `addr`: on a pmd_none chunk of a MADV_HUGEPAGE VMA
/// this faults the whole THP.
fn touch(addr: usize, value: u8) {
    // SAFETY: `addr` is page 0 of a racer chunk, which no operation ever
    // unmaps or write-protects (see the module docs).
    unsafe { std::ptr::write_volatile(addr as *mut u8, value) };
}

/// MADV_DONTNEED of a whole chunk and a touch to fault it again. Errors are
/// expected and ignored: a racer may have a hole punched in the chunk right
/// now (ENOMEM); the rest is zapped anyway.
fn zap_and_touch(chunk: usize, pmd: usize, value: u8) {
    // SAFETY: advice on the racer region, which only racer threads use and
    // no Rust reference points into.
    unsafe { libc::madvise(chunk as *mut libc::c_void, pmd, libc::MADV_DONTNEED) };
    touch(chunk, value);
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
                libc::mprotect(p, page_size, libc::PROT_READ) == 0
                    && libc::mprotect(p, page_size, rw) == 0
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
                libc::mremap(
                    p,
                    page_size,
                    page_size,
                    libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                    dst,
                ) == dst
            }
            RacerOp::Free => libc::madvise(p, page_size, libc::MADV_FREE) == 0,
            RacerOp::Mlock => libc::mlock(p, page_size) == 0 && libc::munlock(p, page_size) == 0,
        }
    }
}

/// Gives `chunk` a fresh huge pmd. After a round of partial DONTNEEDs the
/// layout is intact and a whole-chunk DONTNEED is enough: it empties the
/// page table, which the kernel frees (CONFIG_PT_RECLAIM), so the touch
/// faults a THP, all without the mmap write lock that the seed's
/// clear_refs keeps taking. After layout-changing ops (or on a kernel that
/// keeps empty tables) the chunk is replaced by a fresh mapping instead:
/// munmap always frees the table and undoes holes and VMA splits.
fn prepare(chunk: usize, pmd: usize, value: u8, remap: bool) -> bool {
    // `chunk` is a pmd-aligned chunk of the racer region, which only racer
    // threads use; zapping or replacing it discards nothing anyone else
    // needs.
    let ok = if remap {
        crate::mm::map_thp_at(chunk, pmd, crate::mm::Fixed::Replace).is_ok()
    } else {
        // SAFETY: see above.
        unsafe { libc::madvise(chunk as *mut libc::c_void, pmd, libc::MADV_DONTNEED) == 0 }
    };
    touch(chunk, value);
    ok
}

/// Whether the page at `addr` belongs to a THP: its pfn from
/// /proc/self/pagemap, that pfn's KPF_THP bit in /proc/kpageflags. `None`
/// when that cannot be told (files missing, no CAP_SYS_ADMIN for pfns,
/// page not present).
fn is_thp(pagemap: &File, kpageflags: &File, addr: usize, page_size: usize) -> Option<bool> {
    const PRESENT: u64 = 1 << 63;
    const PFN_MASK: u64 = (1 << 55) - 1;
    const KPF_THP: u64 = 1 << 22;
    let mut buf = [0u8; 8];
    pagemap
        .read_exact_at(&mut buf, (addr / page_size * 8) as u64)
        .ok()?;
    let entry = u64::from_ne_bytes(buf);
    let pfn = entry & PFN_MASK;
    if entry & PRESENT == 0 || pfn == 0 {
        return None;
    }
    kpageflags.read_exact_at(&mut buf, pfn * 8).ok()?;
    Some(u64::from_ne_bytes(buf) & KPF_THP != 0)
}

/// Member `me` of the rendezvous. Member 0 leads: it picks each round's
/// chunk, kind, pages and delay, prepares the chunk, and releases the rest.
fn member(
    me: usize,
    plan: &ChildPlan,
    ops: &SharedOps,
    diag: &SharedOps,
    rv: &Rendezvous,
    oracle: &Oracle,
) {
    let Some(region) = plan.racer_region else {
        return;
    };
    let (page_size, pmd) = (plan.page, plan.pmd);
    let scratch = plan.scratch(me);
    let op_counts: Vec<&AtomicU64> = RacerOp::ALL
        .iter()
        .map(|o| ops.counter(o.counter_name()))
        .collect();
    let refaults = plan.refault.then(|| ops.counter("refault"));
    let op_errors = diag.counter("racer_op_errors");
    let n = rv.members;
    let mine = &rv.orders[me];

    let ring = plan.parties.racers[me];
    let run_job = |orders: &Orders, round: u64| {
        let loops = orders.delay.load(Ordering::Relaxed);
        if loops > 0 {
            let t = rv.now_ns();
            busy(loops);
            orders.delay_ns.store(rv.now_ns() - t, Ordering::Relaxed);
        }
        orders.start_ns.store(rv.now_ns(), Ordering::Relaxed);
        let addr = orders.addr.load(Ordering::Relaxed);
        let job = Job::from_code(orders.job.load(Ordering::Relaxed));
        oracle.record(ring, job.ring_op(), addr);
        let ok = match job {
            Job::ZapChunk => {
                zap_and_touch(addr, pmd, round as u8);
                if let Some(c) = refaults {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Job::Partial(op) => {
                let ok = perform(op, addr, page_size, scratch);
                if ok {
                    op_counts[op as usize].fetch_add(1, Ordering::Relaxed);
                } else {
                    op_errors.fetch_add(1, Ordering::Relaxed);
                }
                ok
            }
        };
        orders.ok.store(ok, Ordering::Relaxed);
        orders.end_ns.store(rv.now_ns(), Ordering::Relaxed);
    };
    let run_orders = |round: u64| {
        run_job(mine, round);
        rv.done.bump();
    };

    let mut flip = sched::NiceFlip::new(plan.party_nice, plan.nice_flip_ms);
    if me != 0 {
        for round in 1u64.. {
            flip.apply();
            rv.ready.wait_for(round);
            rv.acked.bump();
            // The leader raises go as soon as the last ack lands, so this
            // is normally a spin of nanoseconds.
            rv.go.wait_for(round);
            run_orders(round);
        }
        return;
    }

    let mut rng = Rng::stream(plan.seed, "racers", plan.generation);
    let kinds = RoundKind::all(plan);
    let rounds = ops.counter("racer_rounds");
    let prepare_errors = diag.counter("racer_prepare_errors");
    let (checks, huge, unknown, fallback) = (
        diag.counter("racer_thp_checks"),
        diag.counter("racer_thp_huge"),
        diag.counter("racer_thp_unknown"),
        diag.counter("racer_remap_fallback"),
    );
    let pagemap = File::open("/proc/self/pagemap").ok();
    let kpageflags = File::open("/proc/kpageflags").ok();
    let chunks = region.len / pmd;
    let pages = (pmd / page_size) as u64;
    let mut needs_remap = vec![false; chunks];
    let mut always_remap = false;
    let mut chosen: Vec<u64> = Vec::with_capacity(MAX_RACERS);
    let book = plan.book.as_ref();
    if let Some(b) = book.filter(|b| b.ns_per_loop().is_none()) {
        b.set_ns_per_loop(offsets::calibrate());
    }
    let mut states: Vec<KindState> = (0..KINDS)
        .map(|k| book.map_or_else(KindState::default, |b| b.load(k)))
        .collect();
    let racers = plan.racers.as_ref().map_or(1, |r| r.threads);
    for round in 1u64.. {
        super::phases::wait(plan.phases.as_ref(), "racers", || false);
        flip.apply();
        let ci = rng.below(chunks as u64) as usize;
        let chunk = region.addr + ci * pmd;
        // One kind per round for all racers: two partial DONTNEEDs are the
        // pair that really runs concurrently, and per-thread choices would
        // make it 1 round in 16 instead of 1 in 4.
        let mut kind = *rng.pick(&kinds);
        // Out of refault's --phase-ms phases: no refault rounds.
        while kind == RoundKind::Refault
            && kinds.len() > 1
            && plan.phases.as_ref().is_some_and(|p| !p.active("refault"))
        {
            kind = *rng.pick(&kinds);
        }
        // Who is held back, by how many loops; and the follower whose
        // times the statistics take.
        let (delayed, delay_ns, measured) = match (plan.offsets, book) {
            (OffsetMode::Fuzzy, Some(b)) => {
                let u = rng.below(1 << 53) as f64 / (1u64 << 53) as f64;
                let d = states[kind.index()].next_delay(u);
                let follower = 1 + rng.below(racers as u64 - 1) as usize;
                let who = if d < 0.0 { 0 } else { follower };
                (Some((who, b.loops_for(d))), d, follower)
            }
            // Half the rounds start everyone at once; the other half hold
            // one member back by a random delay.
            (OffsetMode::Fixed, _) | (OffsetMode::Fuzzy, None) => (
                (rng.below(2) == 0).then(|| {
                    (
                        rng.below(racers as u64) as usize,
                        rng.below(MAX_DELAY_LOOPS),
                    )
                }),
                0.0,
                1,
            ),
            (OffsetMode::None, _) => (None, 0.0, 1),
        };
        chosen.clear();
        for (i, orders) in rv.orders.iter().enumerate() {
            let job = kind.job(i);
            let addr = match job {
                Job::ZapChunk => chunk,
                Job::Partial(_) => {
                    let page = loop {
                        let p = rng.range_inclusive(1, pages - 1);
                        if !chosen.contains(&p) {
                            break p;
                        }
                    };
                    chosen.push(page);
                    chunk + page as usize * page_size
                }
            };
            let delay = delayed.filter(|&(who, _)| who == i).map_or(0, |(_, d)| d);
            orders.job.store(job.code(), Ordering::Relaxed);
            orders.addr.store(addr, Ordering::Relaxed);
            orders.delay.store(delay, Ordering::Relaxed);
        }
        // Sequential: the whole round (prepare, check, jobs) is one turn.
        let turn = (n == 1)
            .then(|| super::baton::turn(plan.baton.as_ref(), "racers", || false))
            .flatten();
        let remap = always_remap || needs_remap[ci];
        oracle.record(ring, Op::Prepare, chunk);
        let prepared = prepare(chunk, pmd, round as u8, remap);
        if !prepared {
            prepare_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            stamp_chunk(plan, chunk, round);
        }
        if round % THP_CHECK_EVERY == 1 {
            checks.fetch_add(1, Ordering::Relaxed);
            let thp = match (&pagemap, &kpageflags) {
                (Some(pm), Some(kf)) => is_thp(pm, kf, chunk, page_size),
                _ => None,
            };
            match thp {
                Some(true) => {
                    huge.fetch_add(1, Ordering::Relaxed);
                }
                Some(false) if !remap => {
                    // Empty page tables are not reclaimed here: remap.
                    always_remap = true;
                    fallback.store(1, Ordering::Relaxed);
                }
                Some(false) => {}
                None => {
                    unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if n == 1 {
            // Sequential: every member's job, one after the other.
            for orders in &rv.orders {
                run_job(orders, round);
            }
        } else {
            rv.ready.set(round);
            rv.acked.wait_for((n - 1) * round);
            rv.go.set(round);
            run_orders(round);
            rv.done.wait_for(n * round);
        }
        drop(turn);
        if let (Some(b), Some(f)) = (book, rv.orders.get(measured)) {
            let lead = &rv.orders[0];
            let ns = |o: &Orders| {
                o.end_ns
                    .load(Ordering::Relaxed)
                    .saturating_sub(o.start_ns.load(Ordering::Relaxed)) as f64
            };
            let skew = f.start_ns.load(Ordering::Relaxed) as f64
                - lead.start_ns.load(Ordering::Relaxed) as f64;
            if let Some((who, loops)) = delayed.filter(|&(_, l)| l > 0) {
                let o = &rv.orders[who];
                b.observe_delay(loops, o.delay_ns.load(Ordering::Relaxed) as f64);
            }
            let k = kind.index();
            states[k].record(ns(lead), ns(f), skew, delay_ns);
            b.store(k, &states[k]);
        }
        if prepared {
            oracle.record(ring, Op::Verify, chunk);
            verify_chunk(plan, oracle, rv, kind, chunk, round);
        }
        needs_remap[ci] = kind.changes_layout();
        rounds.fetch_add(1, Ordering::Relaxed);
    }
}

/// The stamp of unit `page` of the racers' region in `round`.
fn racer_stamp(page: usize, round: u64) -> Stamp {
    Stamp {
        region: region::RACERS,
        page: page as u32,
        generation: round,
    }
}

/// Stamps every 4 KiB unit of a freshly prepared chunk with the round
/// (stamp words and last word only: a full fill would cost more than the
/// round's operations).
fn stamp_chunk(plan: &ChildPlan, chunk: usize, round: u64) {
    let Some(region) = plan.racer_region else {
        return;
    };
    for u in 0..plan.pmd / UNIT {
        let addr = chunk + u * UNIT;
        // SAFETY: a prepared chunk is one fresh RW mapping of the racer
        // region, which only the racer threads use, and they wait for the
        // leader's "ready".
        unsafe { mem::stamp(addr, &racer_stamp((addr - region.addr) / UNIT, round)) };
    }
}

/// After a round: the owner's check of its chunk. Every unit no racer
/// touched must keep its stamp (the splits, zaps and moves of the round
/// must not disturb their neighbours); a page that was zapped
/// (`MADV_DONTNEED`, or munmap and a fresh mapping) must read zero; a page
/// mremap'd away must be found, stamp and all, at its new address. Units
/// of a member whose operation failed are skipped (its page may be a
/// hole), and page 0 after a refault round (the leader's touch wrote it).
fn verify_chunk(
    plan: &ChildPlan,
    oracle: &Oracle,
    rv: &Rendezvous,
    kind: RoundKind,
    chunk: usize,
    round: u64,
) {
    let Some(region) = plan.racer_region else {
        return;
    };
    let units_per_page = plan.page / UNIT;
    // Per page of the chunk: what the round did to it.
    let mut done: Vec<Option<(Job, usize)>> = vec![None; plan.pmd / plan.page];
    for (i, orders) in rv.orders.iter().enumerate() {
        let job = Job::from_code(orders.job.load(Ordering::Relaxed));
        if let Job::Partial(_) = job {
            let addr = orders.addr.load(Ordering::Relaxed);
            let who = match orders.ok.load(Ordering::Relaxed) {
                true => i,
                false => usize::MAX,
            };
            done[(addr - chunk) / plan.page] = Some((job, who));
        }
    }
    let mut checked = 0u64;
    for (p, what) in done.iter().enumerate() {
        if p == 0 && kind == RoundKind::Refault {
            continue;
        }
        for u in 0..units_per_page {
            let addr = chunk + p * plan.page + u * UNIT;
            let unit = (addr - region.addr) / UNIT;
            let stamped = Expected::Stamp(racer_stamp(unit, round));
            let (at, expected) = match (kind, what) {
                (_, Some((_, usize::MAX))) => continue, // its op failed
                // The leader zapped the whole chunk.
                (RoundKind::Refault, _) => (addr, Expected::Zero),
                (_, None) => (addr, stamped),
                (_, Some((Job::Partial(op), member))) => match op {
                    RacerOp::Dontneed | RacerOp::Remap => (addr, Expected::Zero),
                    RacerOp::Mprotect | RacerOp::Mlock => (addr, stamped),
                    // MADV_FREE: the old contents or zero, as reclaim decides.
                    RacerOp::Free => continue,
                    // Sequential rounds (one thread) share scratch slot 0.
                    RacerOp::Mremap if rv.members == 1 => continue,
                    RacerOp::Mremap => (plan.scratch(*member) + u * UNIT, stamped),
                },
                (_, Some((Job::ZapChunk, _))) => continue,
            };
            // SAFETY: `at` is mapped: a unit no op removed, a zapped unit
            // (still mapped, reads zero), or the mremap destination; only
            // racer threads use these, and they wait for the next round.
            unsafe {
                mem::check(
                    oracle,
                    Check::RacerRound,
                    region::RACERS,
                    at,
                    unit as u64,
                    expected,
                )
            };
            checked += 1;
        }
    }
    oracle.verified(checked);
}

/// The refault thread without racers: zaps and refaults the chunks
/// round-robin, so the seed's parties keep meeting pmds that vanish and
/// reappear.
fn free_refault(plan: &ChildPlan, ops: &SharedOps) {
    let Some(region) = plan.racer_region else {
        return;
    };
    sched::nice_this_thread(plan.party_nice);
    let count = ops.counter("refault");
    let chunks = region.len / plan.pmd;
    for i in 0usize.. {
        super::phases::wait(plan.phases.as_ref(), "refault", || false);
        let _turn = super::baton::turn(plan.baton.as_ref(), "refault", || false);
        zap_and_touch(region.addr + (i % chunks) * plan.pmd, plan.pmd, i as u8);
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
            assert_eq!(Job::from_code(Job::Partial(op).code()), Job::Partial(op));
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
            assert!(prepare(chunk, pmd, 1, true));
            let scratch = scratch.as_ptr() as usize;
            assert!(perform(op, chunk + (i + 1) * page, page, scratch), "{op:?}");
        }
        assert!(prepare(chunk, pmd, 2, true));
        zap_and_touch(chunk, pmd, 3);
        assert_eq!(Job::from_code(Job::ZapChunk.code()), Job::ZapChunk);
    }

    #[test]
    fn round_kinds_follow_the_plan() {
        let mut plan = super::super::tests::host_plan();
        assert_eq!(
            RoundKind::all(&plan).len(),
            plan.racers.as_ref().unwrap().ops.len() + 1
        );
        assert_eq!(RoundKind::Refault.job(0), Job::ZapChunk);
        assert_eq!(RoundKind::Refault.job(1), Job::Partial(RacerOp::Dontneed));
        assert_eq!(
            RoundKind::Op(RacerOp::Mremap).job(0),
            Job::Partial(RacerOp::Mremap)
        );
        assert!(!RoundKind::Refault.changes_layout());
        assert!(!RoundKind::Op(RacerOp::Dontneed).changes_layout());
        assert!(RoundKind::Op(RacerOp::Remap).changes_layout());
        plan.refault = false;
        assert!(!RoundKind::all(&plan).contains(&RoundKind::Refault));
    }

    #[test]
    fn dontneed_prepare_gives_a_fresh_thp_where_tables_are_reclaimed() {
        let pmd = crate::mm::pmd_size();
        let page = crate::mm::page_size();
        let map = crate::mm::AlignedMap::new(pmd, pmd).unwrap();
        map.madvise(libc::MADV_HUGEPAGE).unwrap();
        let chunk = map.as_ptr() as usize;
        let (Ok(pm), Ok(kf)) = (
            File::open("/proc/self/pagemap"),
            File::open("/proc/kpageflags"),
        ) else {
            return;
        };
        assert!(prepare(chunk, pmd, 1, false));
        if is_thp(&pm, &kf, chunk, page) != Some(true) {
            return; // no THP here at all (mode, memory, privileges)
        }
        // Split it the way a dontneed round does, then prepare cheaply.
        assert!(perform(RacerOp::Dontneed, chunk + 5 * page, page, 0));
        assert!(prepare(chunk, pmd, 2, false));
        // Holds on kernels with CONFIG_PT_RECLAIM (6.14+ x86: this host and
        // the test kernel); elsewhere the leader falls back to remapping.
        let reclaim = is_thp(&pm, &kf, chunk, page);
        eprintln!("THP after a dontneed prepare: {reclaim:?}");
        assert!(prepare(chunk, pmd, 3, true));
        assert_eq!(is_thp(&pm, &kf, chunk, page), Some(true));
    }
}
