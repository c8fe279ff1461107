//! `thp-race`: seed 000 (linux-mm 2016, "mm: thp: move pmd check inside ptl
//! for freeze_page()"), made to hit the race within seconds.
//!
//! The seed raced a THP writer (20 MiB at 0x700000000000, MADV_HUGEPAGE,
//! memset forever) against soft-dirty clears (`4 > /proc/PID/clear_refs`)
//! and `migratepages` bouncing it between two nodes, with the writer
//! SIGKILLed and restarted at random. Its split_huge_pmd_address(freeze)
//! saw a pmd that was no longer there. Today the pmd is rechecked under the
//! page-table lock, and mmrace.ko counts the recheck failing (`pmd_race`).
//!
//! The seed's parties alone almost never line up the race; the racers (two
//! or more threads in the writer racing partial operations on one fresh
//! huge pmd, the way a targeted two-thread probe hits it dozens of times a
//! minute) are there to make it a matter of seconds. Every party can be
//! switched off to see which ones matter. Submodules:
//!
//! - [`writer`]: the forked writer child, its setup handshake and kill.
//! - [`racers`]: the racer threads (and refault) inside the writer.
//! - [`parties`]: clear_refs, migrate and splitter threads in the driver.
//! - [`walkers`]: /proc walkers, move_pages and process_madvise threads in
//!   the driver; khugepaged's scan interval.
//! - [`churn`]: whole-THP churn and fork (copy-on-write) threads in the
//!   writer.
//! - [`baton`]: `--sequential`, the parties one at a time.
//! - [`phases`]: `--phase-ms`, a random half of the parties at a time.
//! - [`layout`], [`sched`], [`signal`]: the small parts.
//!
//! The racers' measured start offsets (LTP fuzzy sync), the shared counter
//! page, the generator, the monitor (op folding and time to the first
//! race), the end-of-run measurements (counter/vmstat deltas,
//! cross-checks, the table) and the splitter's setup check are in
//! [`crate::shared`]: shell-baseline uses them too.

pub mod baton;
pub mod churn;
pub mod layout;
pub mod parties;
pub mod phases;
pub mod racers;
pub mod sched;
pub mod signal;
pub mod walkers;
pub mod writer;

use crate::ctx::Ctx;
use crate::shared::offsets;
use crate::shared::rng::{self, Rng};
use crate::shared::setup;
use crate::shared::slots::SharedOps;
use crate::shared::{measure, monitor};
use anyhow::{bail, Result};
use layout::{
    ChildPlan, ChurnPlan, RacerPlan, Region, CHURN_ADDR, MAX_REGION_MIB, MIB, RACER_ADDR,
    WRITER_ADDR,
};
use mmrace_proto::counters::name;
use mmrace_proto::results::thp_race::{
    Khugepaged, Parties, RegionInfo, Sequential, SwarmChoice, ThpRaceResult, ThpRaceSettings,
    WriterLife,
};
use mmrace_proto::results::Measurement;
pub use mmrace_proto::spec::thp_race::Args;
use mmrace_proto::spec::thp_race::{MadviseOp, ProcFile};
use mmrace_proto::wire::EVENT_FIRST_RACE;
use parties::{PartyStats, WriterId, WriterSlot};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use writer::Writer;

/// How often the supervisor looks at the writer and the clock.
const TICK: Duration = Duration::from_millis(5);

/// The checked settings of one run: everything derived from the arguments
/// alone (the system checks come later, in `run`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub clear_refs: bool,
    pub migrate: bool,
    /// The migrate party's nodes as given (checked against the system in
    /// `run_with`).
    pub nodes: Vec<u32>,
    pub splitter: bool,
    /// Sleep after each driver-side party operation.
    pub party_pause: Duration,
    /// Kill interval bounds in ms.
    pub kill: Option<(u64, u64)>,
    pub plan: ChildPlan,
    pub split_ranges: Vec<Region>,
    pub amplify: Option<mmrace_proto::spec::amplify::Spec>,
    /// The /proc walkers' files.
    pub proc_walk: Option<Vec<ProcFile>>,
    pub move_pages: bool,
    /// The madvise party's advice.
    pub madvise: Option<Vec<MadviseOp>>,
    pub migrate_threads: u32,
    /// khugepaged's scan interval for the run (ms).
    pub khugepaged_scan_ms: Option<u64>,
    /// `--sequential`: the turn order of the parties.
    pub sequence: Option<Vec<String>>,
    /// `--phase-ms` (not with `--sequential`).
    pub phase: Option<Duration>,
    /// What `--swarm` resolved to.
    pub swarm: Option<SwarmChoice>,
    /// The options in force (after `--swarm`).
    pub options: Args,
}

/// `--kill-min-ms`, `--kill-max-ms`: the kill interval's bounds, none with
/// `--no-kill`.
fn kill_bounds(a: &Args) -> Result<Option<(u64, u64)>> {
    let kill = (!a.no_kill).then_some((a.kill_min_ms, a.kill_max_ms));
    if let Some((lo, hi)) = kill {
        if lo == 0 || lo > hi {
            bail!("--kill-min-ms {lo} must be at least 1 and at most --kill-max-ms {hi} (or use --no-kill)");
        }
    }
    Ok(kill)
}

/// The racers' (and refault's) region, `--racer-mib` whole THPs of `pmd`
/// bytes; none without racers and refault.
fn racer_region(a: &Args, pmd: usize) -> Result<Option<Region>> {
    if a.no_racers && a.no_refault {
        return Ok(None);
    }
    let len = a.racer_mib * MIB;
    if a.racer_mib == 0 || a.racer_mib > MAX_REGION_MIB || !len.is_multiple_of(pmd) {
        bail!(
            "--racer-mib {} must be a multiple of the THP size ({} MiB), at most {MAX_REGION_MIB} \
             (or turn racers and refault off with --no-racers --no-refault)",
            a.racer_mib,
            pmd / MIB
        );
    }
    Ok(Some(Region {
        addr: RACER_ADDR,
        len,
    }))
}

/// The churn party's plan: `--churn-mib` whole THPs, its ops, its threads
/// (one in sequence: one party, one turn at a time); none with
/// `--no-churn`.
fn churn_plan(a: &Args, pmd: usize) -> Result<Option<ChurnPlan>> {
    if a.no_churn {
        return Ok(None);
    }
    let len = a.churn_mib * MIB;
    if a.churn_mib == 0 || a.churn_mib > MAX_REGION_MIB || !len.is_multiple_of(pmd) {
        bail!(
            "--churn-mib {} must be a multiple of the THP size ({} MiB), at most \
             {MAX_REGION_MIB} (or use --no-churn)",
            a.churn_mib,
            pmd / MIB
        );
    }
    let mut ops = a.churn_ops.clone();
    ops.sort();
    ops.dedup();
    Ok(Some(ChurnPlan {
        region: Region {
            addr: CHURN_ADDR,
            len,
        },
        ops,
        threads: if a.sequential {
            1
        } else {
            a.churn_threads as usize
        },
    }))
}

/// `--sequential`: the turn order, every party that runs (`churn` when
/// the churn party does).
fn turn_order(a: &Args, churn: bool) -> Vec<String> {
    let mut order: Vec<String> = vec!["supervisor".into(), "writer".into()];
    let mut add = |on: bool, name: &str| {
        if on {
            order.push(name.to_string());
        }
    };
    add(!a.no_racers, "racers");
    add(a.no_racers && !a.no_refault, "refault");
    add(churn, "churn");
    add(!a.no_fork, "fork");
    add(!a.no_clear_refs, "clear_refs");
    for i in 0..a.migrate_threads {
        add(!a.no_migrate, &parties::migrate_turn_name(i));
    }
    add(!a.no_splitter, "splitter");
    add(!a.no_proc_walk, "proc_walk");
    add(!a.no_move_pages && !a.no_migrate, "move_pages");
    add(!a.no_madvise, "madvise");
    order
}

impl Settings {
    pub fn new(seed: u64, given: &Args) -> Result<Self> {
        let resolved = given.resolve(seed);
        let a = &resolved;
        let swarm = given.swarm.then(|| SwarmChoice {
            words: a.to_words(),
            options: a.clone(),
        });
        let (page, pmd) = (crate::mm::page_size(), crate::mm::pmd_size());
        if a.writer_mib == 0 || a.writer_mib > MAX_REGION_MIB {
            bail!("--writer-mib {} must be 1..={MAX_REGION_MIB}", a.writer_mib);
        }
        let kill = kill_bounds(a)?;
        let writer = Region {
            addr: WRITER_ADDR,
            len: a.writer_mib * MIB,
        };
        let racer_region = racer_region(a, pmd)?;
        let mut ops = a.racer_ops.clone();
        ops.sort();
        ops.dedup();
        let racers = (!a.no_racers).then_some(RacerPlan {
            threads: a.racer_threads as usize,
            ops,
        });
        let churn = churn_plan(a, pmd)?;
        let mut split_ranges = vec![writer];
        if !a.splitter_writer_only {
            split_ranges.extend(racer_region);
            split_ranges.extend(churn.as_ref().map(|c| c.region));
        }
        if a.racer_ops.is_empty() && !a.no_racers {
            bail!("--racer-ops needs at least one op (or use --no-racers)");
        }
        if churn.as_ref().is_some_and(|c| c.ops.is_empty()) {
            bail!("--churn-ops needs at least one op (or use --no-churn)");
        }
        let mut proc_files = a.proc_files.clone();
        proc_files.dedup();
        let mut madvise_ops = a.madvise_ops.clone();
        madvise_ops.dedup();
        let sequence = a.sequential.then(|| turn_order(a, churn.is_some()));
        Ok(Settings {
            clear_refs: !a.no_clear_refs,
            migrate: !a.no_migrate,
            nodes: a.nodes.clone(),
            splitter: !a.no_splitter,
            party_pause: Duration::from_micros(a.party_pause_us),
            kill,
            plan: ChildPlan {
                seed,
                generation: 0,
                page,
                pmd,
                writer,
                racer_region,
                racers,
                refault: !a.no_refault,
                party_nice: a.party_nice,
                nice_flip_ms: if a.sequential { 0 } else { a.nice_flip_ms },
                writer_mode: a.writer,
                parties: Default::default(),
                offsets: a.offsets,
                book: None,
                baton: None,
                phases: None,
                churn,
                fork: !a.no_fork,
            },
            split_ranges,
            amplify: a.amplify.clone(),
            proc_walk: (!a.no_proc_walk && !proc_files.is_empty()).then_some(proc_files),
            // move_pages needs the migrate party's two nodes.
            move_pages: !a.no_move_pages && !a.no_migrate,
            madvise: (!a.no_madvise && !madvise_ops.is_empty()).then_some(madvise_ops),
            migrate_threads: a.migrate_threads,
            khugepaged_scan_ms: (a.khugepaged_scan_ms > 0).then_some(a.khugepaged_scan_ms),
            phase: (a.phase_ms > 0 && sequence.is_none())
                .then(|| Duration::from_millis(a.phase_ms)),
            sequence,
            swarm,
            options: resolved.clone(),
        })
    }

    /// The writer's regions: its mapping, the racers' and the churn
    /// region (what the walkers, move_pages and madvise aim at).
    pub fn regions(&self) -> Vec<Region> {
        let mut v = vec![self.plan.writer];
        v.extend(self.plan.racer_region);
        v.extend(self.plan.churn.as_ref().map(|c| c.region));
        v
    }

    /// The parties `--phase-ms` switches on and off in this run.
    pub fn phase_parties(&self, migrate: bool) -> Vec<&'static str> {
        phases::NAMES
            .into_iter()
            .filter(|n| match *n {
                "racers" => self.plan.racers.is_some(),
                "refault" => self.plan.refault,
                "churn" => self.plan.churn.is_some(),
                "fork" => self.plan.fork,
                "clear_refs" => self.clear_refs,
                "migrate" => migrate,
                "move_pages" => migrate && self.move_pages,
                "splitter" => self.splitter,
                "proc_walk" => self.proc_walk.is_some(),
                _ => self.madvise.is_some(),
            })
            .collect()
    }

    /// The diagnostics the writer child counts.
    pub fn diag_names() -> Vec<&'static str> {
        racers::DIAG_NAMES
            .into_iter()
            .chain(churn::DIAG_NAMES)
            .collect()
    }

    /// The child's op counters for this plan (only enabled parties, so a
    /// disabled one does not show up as a zero in every snapshot).
    pub fn child_op_names(&self) -> Vec<&'static str> {
        let churn_ops = self.plan.churn.as_ref().map_or(&[][..], |c| &c.ops[..]);
        racers::OP_NAMES
            .into_iter()
            .filter(|n| match *n {
                "writer" => true,
                "refault" => self.plan.refault,
                _ => self.plan.racers.is_some(),
            })
            .chain(churn_ops.iter().map(|&o| churn::counter_name(o)))
            .chain(self.plan.fork.then_some("fork"))
            .collect()
    }

    /// Which parties this run has.
    pub fn parties(&self) -> Parties {
        Parties {
            writer: true,
            clear_refs: self.clear_refs,
            migrate: self.migrate,
            splitter: self.splitter,
            racers: self.plan.racers.is_some(),
            refault: self.plan.refault,
            kill: self.kill.is_some(),
            proc_walk: self.proc_walk.is_some(),
            move_pages: self.move_pages,
            madvise: self.madvise.is_some(),
            churn: self.plan.churn.is_some(),
            fork: self.plan.fork,
        }
    }

    /// The settings as the results record them.
    pub fn record(&self, seed: u64, nodes: Option<(u32, u32)>) -> ThpRaceSettings {
        let region = |r: Region| RegionInfo {
            addr: format!("{:#x}", r.addr),
            bytes: r.len,
        };
        ThpRaceSettings {
            seed,
            parties: self.parties(),
            writer: region(self.plan.writer),
            racer_region: self.plan.racer_region.map(region),
            racer_threads: self.plan.racers.as_ref().map(|r| r.threads),
            racer_ops: self.plan.racers.as_ref().map(|r| r.ops.clone()),
            nodes: nodes.map(|(a, b)| [a, b]),
            kill_ms: self.kill.map(|(lo, hi)| [lo, hi]),
            party_pause_us: self.party_pause.as_micros() as u64,
            party_nice: self.plan.party_nice,
            writer_mode: self.plan.writer_mode,
            split_ranges: self
                .split_ranges
                .iter()
                .map(|r| r.split_line(0).trim_start_matches("0,").trim().to_string())
                .collect(),
            page_size: self.plan.page,
            pmd_size: self.plan.pmd,
            thp_mode: crate::mm::thp_mode(),
            amplify: self.amplify.clone(),
            options: self.options.clone(),
        }
    }
}

/// Sets the flag when dropped, also on unwinding, so scoped party threads
/// always end and the scope can return.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Owns the writer: restarts it when it dies and kills it on schedule.
struct Supervisor<'a> {
    ctx: &'a Ctx,
    plan: ChildPlan,
    ops: &'a Arc<SharedOps>,
    diag: &'a Arc<SharedOps>,
    slot: &'a WriterSlot,
    writer: Writer,
    kills: u64,
    unexpected_exits: u64,
    first_unexpected_exit: Option<String>,
}

impl<'a> Supervisor<'a> {
    /// The writer's life so far: its generations, kills and unexpected
    /// exits (the first one's description taken).
    fn life(&mut self) -> WriterLife {
        WriterLife {
            generations: self.plan.generation + 1,
            kills: self.kills,
            unexpected_exits: self.unexpected_exits,
            first_unexpected_exit: self.first_unexpected_exit.take(),
        }
    }

    fn new(
        ctx: &'a Ctx,
        plan: &ChildPlan,
        ops: &'a Arc<SharedOps>,
        diag: &'a Arc<SharedOps>,
        slot: &'a WriterSlot,
        writer: Writer,
    ) -> Self {
        Supervisor {
            ctx,
            plan: plan.clone(),
            ops,
            diag,
            slot,
            writer,
            kills: 0,
            unexpected_exits: 0,
            first_unexpected_exit: None,
        }
    }

    /// Kills (if still alive), reaps and replaces the writer. The slot's
    /// write lock is held from before the reap until the new pid is in, so
    /// no party operation can use a reaped pid.
    fn replace(&mut self) -> Result<()> {
        self.slot.set_dying(true);
        let o = &self.ctx.oracle;
        o.record(
            o.party("kill"),
            crate::oracle::Op::Kill,
            self.writer.pid() as usize,
        );
        self.writer.sigkill();
        let mut id = self.slot.write();
        id.pid = 0;
        self.writer.reap();
        self.plan.generation += 1;
        self.writer = Writer::spawn(&self.plan, self.ops, self.diag, &self.ctx.oracle)?;
        *id = WriterId {
            pid: self.writer.pid(),
            generation: self.plan.generation,
        };
        drop(id);
        self.slot.set_dying(false);
        Ok(())
    }

    fn run(&mut self, kill: Option<(u64, u64)>) -> Result<()> {
        let mut rng = Rng::stream(self.plan.seed, "kill", 0);
        let kills = self.ctx.op("kills");
        let mut next_kill =
            kill.map(|(lo, hi)| Instant::now() + rng::kill_interval(&mut rng, lo, hi));
        let started = Instant::now();
        let baton = self.plan.baton.clone();
        while !self.ctx.should_stop() {
            // Under --sequential this is the supervisor's turn: it waits
            // for it, or takes it when the writer died (maybe holding it).
            let _turn = match &baton {
                None => {
                    std::thread::sleep(TICK);
                    None
                }
                Some(b) => {
                    let t = b.take("supervisor", || {
                        self.ctx.should_stop() || self.writer.exited().is_some()
                    });
                    match t {
                        Some(t) => Some(t),
                        None if self.ctx.should_stop() => break,
                        None => Some(b.steal("supervisor")),
                    }
                }
            };
            if let Some(how) = self.writer.exited() {
                self.unexpected_exits += 1;
                if self.first_unexpected_exit.is_none() {
                    self.ctx.say(format!(
                        "thp-race: writer pid {} died on its own ({how}); restarting it",
                        self.writer.pid()
                    ));
                    self.first_unexpected_exit = Some(how);
                }
                self.replace()?;
                continue;
            }
            let (Some(at), Some((lo, hi))) = (next_kill, kill) else {
                continue;
            };
            if Instant::now() < at {
                continue;
            }
            let old = self.writer.pid();
            self.replace()?;
            self.kills += 1;
            kills.fetch_add(1, Ordering::Relaxed);
            if self.kills == 1 {
                self.ctx.event(
                    "writer_restart",
                    format!(
                        "writer pid {old} SIGKILLed after {} ms, restarted as pid {}",
                        started.elapsed().as_millis(),
                        self.writer.pid()
                    ),
                );
            }
            next_kill = Some(Instant::now() + rng::kill_interval(&mut rng, lo, hi));
        }
        Ok(())
    }
}

pub fn run(ctx: &Ctx, args: &Args) -> Result<ThpRaceResult> {
    let s = Settings::new(ctx.seed, args)?;
    if let Some(c) = &s.swarm {
        ctx.say(format!(
            "thp-race: --swarm with seed {} resolved to: thp-race {}",
            ctx.seed,
            c.words.join(" ")
        ));
    }
    run_with(ctx, &s, setup::SPLIT_PATH).map(|o| o.result)
}

/// What a run produced: the results, and for tests the last writer's pid.
pub struct Outcome {
    pub result: ThpRaceResult,
    pub last_writer_pid: libc::pid_t,
}

/// The whole run, with the splitter's file as a parameter (tests point it
/// somewhere else).
pub fn run_with(ctx: &Ctx, s: &Settings, split_path: &str) -> Result<Outcome> {
    let Checked { nodes, split_file } = check_system(ctx, s, split_path)?;
    let counters_start = start_counters(ctx);
    let vmstat_start = crate::vmstat::read()?;
    let armed = crate::inject::arm_said(ctx, "thp-race", s.amplify.as_ref())?;
    let khugepaged = s
        .khugepaged_scan_ms
        .map(crate::shared::khugepaged::KhugepagedGuard::set)
        .transpose()?;
    let plan = child_plan(ctx, s)?;
    let ops = Arc::new(SharedOps::new(&s.child_op_names())?);
    let diag = Arc::new(SharedOps::new(&Settings::diag_names())?);
    let (first, slot) = first_writer(ctx, s, &plan, &ops, &diag)?;
    let mut sup = Supervisor::new(ctx, &plan, &ops, &diag, &slot, first);
    let stats: BTreeMap<&str, PartyStats> = phases::driver_parties()
        .iter()
        .map(|n| (*n, PartyStats::default()))
        .collect();
    let mut watches = first_watches(&counters_start);
    let stop = AtomicBool::new(false);
    let crew = Crew {
        ctx,
        s,
        plan: &plan,
        env: &parties::Env {
            ctx,
            stop: &stop,
            slot: &slot,
            pause: s.party_pause,
            nice: s.plan.party_nice,
            baton: plan.baton.as_ref(),
            phases: plan.phases.as_ref(),
        },
        stats: &stats,
        not_moved: &AtomicU64::new(0),
        regions: &s.regions(),
        phase_log: &std::sync::Mutex::new(Vec::new()),
        t0: Instant::now(),
    };
    let supervised = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        crew.spawn_parties(scope, nodes, split_file);
        let (ops, watches, counters) = (&ops, &mut watches, counters_start.is_ok());
        scope.spawn(move || crew.watch(ops, watches, counters));
        let r = sup.run(s.kill);
        stop.store(true, Ordering::SeqCst);
        r
    });
    let last_writer_pid = sup.writer.pid();
    let writer = sup.life();
    drop(sup); // SIGKILLs and reaps the last writer
    let amplify = crate::inject::disarm_said(ctx, "thp-race", armed);
    let khugepaged = khugepaged.map(|g| g.setting.clone()); // restored on drop
    supervised?;
    let elapsed_ms = crew.t0.elapsed().as_millis() as u64;
    ops.fold_into(|n| ctx.op(n));
    let deltas = measure::Deltas::measure(ctx, "thp-race", &counters_start, &vmstat_start)?;
    let ended = Ended {
        elapsed_ms,
        writer,
        amplify,
        khugepaged,
        measurement: deltas.record(),
    };
    Ok(Outcome {
        result: crew.result(nodes, &watches, &diag, ended),
        last_writer_pid,
    })
}

/// The module's counters at the start (the run goes on without them, its
/// module side empty).
fn start_counters(ctx: &Ctx) -> Result<BTreeMap<String, u64>, String> {
    let counters_start = crate::counters::read_reported();
    if let Err(e) = &counters_start {
        ctx.say(format!(
            "thp-race: no mmrace.ko counters ({e}): module side of the report stays empty"
        ));
    }
    counters_start
}

/// The first writer, up, and the slot that names it to the parties.
fn first_writer(
    ctx: &Ctx,
    s: &Settings,
    plan: &ChildPlan,
    ops: &Arc<SharedOps>,
    diag: &Arc<SharedOps>,
) -> Result<(Writer, WriterSlot)> {
    let first = Writer::spawn(plan, ops, diag, &ctx.oracle)?;
    let slot = WriterSlot::new(WriterId {
        pid: first.pid(),
        generation: 0,
    });
    ctx.say(format!(
        "thp-race: writer pid {} up; parties: {}",
        first.pid(),
        serde_json::to_string(&s.parties()).unwrap_or_default()
    ));
    Ok((first, slot))
}

/// The counters whose first rise the monitor timestamps: the first pmd
/// race, the first failed THP split.
fn first_watches(counters_start: &Result<BTreeMap<String, u64>, String>) -> Vec<monitor::Watch> {
    let start_map = counters_start.clone().unwrap_or_default();
    vec![
        monitor::Watch::new(name::PMD_RACE, EVENT_FIRST_RACE, &start_map),
        monitor::Watch::new(name::THP_SPLIT_FAILED, "first_thp_split_failed", &start_map),
    ]
}

/// What the run left once its parties stopped and its writer was reaped.
struct Ended {
    elapsed_ms: u64,
    writer: WriterLife,
    amplify: Option<crate::inject::AmplifyReport>,
    khugepaged: Option<Khugepaged>,
    measurement: Measurement,
}

/// What the system checks give the run.
struct Checked {
    /// The migrate pair, when migrating.
    nodes: Option<(u32, u32)>,
    /// The splitter's open file, when splitting.
    split_file: Option<std::fs::File>,
}

/// System checks first: a missing interface is an error naming the
/// switch.
fn check_system(ctx: &Ctx, s: &Settings, split_path: &str) -> Result<Checked> {
    let nodes = if s.migrate {
        let online = crate::numa::online_nodes()?;
        Some(parties::check_migrate(&s.nodes, &online)?)
    } else {
        None
    };
    if s.clear_refs {
        parties::check_clear_refs(parties::CLEAR_REFS_SELF)?;
    }
    if let Some(files) = &s.proc_walk {
        walkers::check_proc_files(files)?;
    }
    if s.move_pages && nodes.is_some() {
        walkers::check_move_pages()?;
    }
    if let Some(ops) = &s.madvise {
        walkers::check_madvise(ops)?;
    }
    let split_file = if s.splitter {
        Some(setup::check_splitter(split_path)?)
    } else {
        None
    };
    if !crate::mm::thp_for_madvised() {
        ctx.say(format!(
            "thp-race: THP mode is {:?}: MADV_HUGEPAGE regions get no huge pages, nothing to race on",
            crate::mm::thp_mode()
        ));
    }
    Ok(Checked { nodes, split_file })
}

/// The writer's plan with the run's shared pieces: the offsets book for
/// the racers, the baton (`--sequential`), the phases (`--phase-ms`), the
/// oracle's party registrations.
fn child_plan(ctx: &Ctx, s: &Settings) -> Result<ChildPlan> {
    let mut plan = s.plan.clone();
    if plan.racers.is_some() {
        plan.book = Some(offsets::Book::new(racers::KINDS)?);
    }
    if let Some(order) = &s.sequence {
        plan.baton = Some(baton::Baton::new(order.clone())?);
        ctx.say(format!(
            "thp-race: --sequential, one operation per turn in this order: {}",
            order.join(" ")
        ));
    }
    if s.phase.is_some() {
        plan.phases = Some(phases::Phases::new()?);
    }
    plan.parties =
        layout::ChildParties::register(&ctx.oracle, plan.racers.as_ref().map_or(0, |r| r.threads));
    Ok(plan)
}

/// The racers' measured start offsets, said line by line.
fn offsets_report(ctx: &Ctx, plan: &ChildPlan) -> Option<mmrace_proto::results::thp_race::Offsets> {
    let o = plan
        .book
        .as_ref()
        .map(|b| b.report(plan.offsets, racers::kind_name))?;
    for line in offsets::lines(&o) {
        ctx.say(format!("thp-race: {line}"));
    }
    Some(o)
}

/// What the driver-side party threads share.
#[derive(Clone, Copy)]
struct Crew<'a> {
    ctx: &'a Ctx,
    s: &'a Settings,
    plan: &'a ChildPlan,
    env: &'a parties::Env<'a>,
    stats: &'a BTreeMap<&'static str, PartyStats>,
    not_moved: &'a AtomicU64,
    regions: &'a [Region],
    phase_log: &'a std::sync::Mutex<Vec<mmrace_proto::results::thp_race::Phase>>,
    t0: Instant,
}

impl<'a> Crew<'a> {
    /// Starts the driver-side parties the settings enable.
    fn spawn_parties<'scope>(
        self,
        scope: &'scope std::thread::Scope<'scope, '_>,
        nodes: Option<(u32, u32)>,
        split_file: Option<std::fs::File>,
    ) where
        'a: 'scope,
    {
        let (s, env, stats, regions) = (self.s, self.env, self.stats, self.regions);
        if s.clear_refs {
            scope.spawn(move || parties::clear_refs(env, &stats["clear_refs"]));
        }
        if let Some(pair) = nodes {
            self.spawn_migrate(scope, pair);
        }
        if let Some(files) = &s.proc_walk {
            let page = s.plan.page;
            scope.spawn(move || walkers::proc_walk(env, &stats["proc_walk"], files, regions, page));
        }
        if let Some(advice) = &s.madvise {
            let (seed, pmd) = (self.ctx.seed, s.plan.pmd);
            scope.spawn(move || {
                walkers::madvise(env, &stats["madvise"], seed, advice, regions, pmd)
            });
        }
        if let Some(f) = split_file {
            let ranges = &s.split_ranges;
            scope.spawn(move || parties::splitter(env, &stats["splitter"], f, ranges));
        }
        if let (Some(p), Some(every)) = (&self.plan.phases, s.phase) {
            let enabled = s.phase_parties(nodes.is_some());
            scope.spawn(move || self.switch_phases(p, every, &enabled));
        }
    }

    /// The migrate threads, and move_pages when asked for.
    fn spawn_migrate<'scope>(self, scope: &'scope std::thread::Scope<'scope, '_>, pair: (u32, u32))
    where
        'a: 'scope,
    {
        let (s, env, stats, not_moved) = (self.s, self.env, self.stats, self.not_moved);
        for i in 0..s.migrate_threads {
            scope.spawn(move || parties::migrate(env, &stats["migrate"], pair, not_moved, i));
        }
        if s.move_pages {
            let (seed, page, regions) = (self.ctx.seed, s.plan.page, self.regions);
            scope.spawn(move || {
                walkers::move_pages(env, &stats["move_pages"], seed, regions, page, pair)
            });
        }
    }

    /// `--phase-ms`: a random half of the `enabled` parties at a time,
    /// every `every`, until the run ends; each phase logged.
    fn switch_phases(self, p: &phases::Phases, every: Duration, enabled: &[&'static str]) {
        let ctx = self.ctx;
        let mut rng = Rng::stream(ctx.seed, "phases", 0);
        let ending = || self.env.stop.load(Ordering::Relaxed) || ctx.should_stop();
        while !ending() {
            let on = phases::draw(&mut rng, enabled);
            p.set(phases::mask_of(&on));
            let t_ms = self.t0.elapsed().as_millis() as u64;
            ctx.say(format!("thp-race: phase at {t_ms} ms: {}", on.join(" ")));
            self.phase_log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(phases::record(t_ms, &on));
            let until = Instant::now() + every;
            while !ending() && Instant::now() < until {
                std::thread::sleep(TICK);
            }
        }
    }

    /// The monitor: folds the writer's `ops` into the context and, with
    /// `counters`, timestamps the `watches` (the first race), until the
    /// run's stop.
    fn watch(self, ops: &SharedOps, watches: &mut [monitor::Watch], counters: bool) {
        let ctx = self.ctx;
        monitor::run(
            ctx,
            "thp-race",
            self.t0,
            || ops.fold_into(|n| ctx.op(n)),
            || counters.then(|| crate::counters::read().ok()).flatten(),
            watches,
            || self.env.stop.load(Ordering::Relaxed),
        )
    }

    /// The records of the parties that ran.
    fn party_records(
        &self,
        nodes: Option<(u32, u32)>,
    ) -> BTreeMap<String, mmrace_proto::results::thp_race::PartyErrors> {
        let s = self.s;
        self.stats
            .iter()
            .filter(|(n, _)| match **n {
                "clear_refs" => s.clear_refs,
                "migrate" => nodes.is_some(),
                "move_pages" => nodes.is_some() && s.move_pages,
                "proc_walk" => s.proc_walk.is_some(),
                "madvise" => s.madvise.is_some(),
                _ => s.splitter,
            })
            .map(|(n, st)| (n.to_string(), st.record()))
            .collect()
    }

    /// The run's results, once it ended; says its totals first.
    fn result(
        &self,
        nodes: Option<(u32, u32)>,
        watches: &[monitor::Watch],
        diag: &SharedOps,
        ended: Ended,
    ) -> ThpRaceResult {
        let (ctx, s, plan) = (self.ctx, self.s, self.plan);
        let Ended {
            elapsed_ms, writer, ..
        } = ended;
        let op_totals = ctx.ops.snapshot();
        ctx.say(format!(
            "thp-race: {elapsed_ms} ms, ops {op_totals:?}, {} kills, \
             first pmd_race {:?} ms, first thp_split_failed {:?} ms",
            writer.kills, watches[0].first_ms, watches[1].first_ms
        ));
        ThpRaceResult {
            settings: s.record(ctx.seed, nodes),
            elapsed_ms,
            rates: measure::rates(&op_totals, elapsed_ms),
            ops: op_totals,
            parties: self.party_records(nodes),
            writer,
            migrate_pages_not_moved: self.not_moved.load(Ordering::Relaxed),
            racer_diag: diag.totals(),
            data_oracle: ctx.oracle.summary(),
            first_pmd_race_ms: watches[0].first_ms,
            first_thp_split_failed_ms: watches[1].first_ms,
            amplify: ended.amplify,
            offsets: offsets_report(ctx, plan),
            swarm: s.swarm.clone(),
            sequential: plan.baton.as_ref().map(|b| Sequential {
                order: b.order().to_vec(),
                turns: b.turns_taken(),
            }),
            khugepaged: ended.khugepaged,
            phases: plan.phases.as_ref().map(|_| {
                let mut log = self.phase_log.lock().unwrap_or_else(|e| e.into_inner());
                std::mem::take(&mut *log)
            }),
            measurement: ended.measurement,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use racers::RacerOp;

    fn test_oracle() -> Arc<crate::oracle::Oracle> {
        Arc::new(crate::oracle::Oracle::new(Instant::now()).unwrap())
    }

    pub(crate) fn host_plan() -> ChildPlan {
        Settings::new(1, &narrow(&[])).unwrap().plan
    }

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(words: &[&str]) -> Args {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("thp-race").chain(words.iter().copied()))
            .unwrap()
            .args
    }

    /// `words` over the narrow parties ([`Args::narrow`]): the seed's and
    /// the racers, no phases, for tests that count on every party running.
    fn narrow(words: &[&str]) -> Args {
        parse(words).narrow()
    }

    fn parse_err(words: &[&str]) -> String {
        use clap::Parser;
        Cli::try_parse_from(std::iter::once("thp-race").chain(words.iter().copied()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_every_party_in_phases() {
        let a = parse(&[]);
        assert_eq!(a.nodes, [0, 1]);
        assert_eq!((a.kill_min_ms, a.kill_max_ms), (200, 2000));
        assert_eq!(a.racer_threads, 2);
        assert_eq!(a.racer_ops, RacerOp::ALL[..4]);
        let s = Settings::new(7, &a).unwrap();
        assert!(s.clear_refs && s.migrate && s.splitter && s.plan.refault);
        assert_eq!(s.kill, Some((200, 2000)));
        assert_eq!(
            s.plan.writer,
            Region {
                addr: 0x7000_0000_0000,
                len: 20 << 20
            }
        );
        assert_eq!(
            s.plan.racer_region,
            Some(Region {
                addr: 0x7100_0000_0000,
                len: 8 << 20
            })
        );
        assert_eq!(s.plan.racers.as_ref().unwrap().threads, 2);
        // Every party, a random half of them at a time, two churn threads.
        assert!(s.proc_walk.is_some() && s.move_pages && s.madvise.is_some());
        assert!(s.plan.fork && s.plan.churn.as_ref().unwrap().threads == 2);
        assert_eq!(s.phase, Some(Duration::from_millis(4000)));
        assert_eq!(s.phase_parties(true), phases::NAMES);
        assert!(s.sequence.is_none() && s.swarm.is_none());
        assert_eq!(s.options, a);
        // Writer, racers, churn.
        assert_eq!(s.split_ranges.len(), 3);
        assert_eq!(s.regions(), s.split_ranges);
        let mut names = racers::OP_NAMES.to_vec();
        names.extend(churn::OP_NAMES);
        assert_eq!(s.child_op_names(), names);
        // The narrow set: the seed's parties and the racers, all the time.
        let n = Settings::new(7, &a.clone().narrow()).unwrap();
        assert!(n.proc_walk.is_none() && !n.move_pages && n.madvise.is_none());
        assert!(!n.plan.fork && n.plan.churn.is_none() && n.phase.is_none());
        assert_eq!(n.split_ranges.len(), 2);
        assert_eq!(n.child_op_names(), racers::OP_NAMES);
    }

    #[test]
    fn switches_turn_parties_off() {
        let a = parse(&[
            "--no-clear-refs",
            "--no-migrate",
            "--no-splitter",
            "--no-racers",
            "--no-refault",
            "--no-kill",
            "--no-proc-walk",
            "--no-move-pages",
            "--no-madvise",
            "--no-churn",
            "--no-fork",
        ]);
        let s = Settings::new(7, &a).unwrap();
        assert!(s.proc_walk.is_none() && !s.move_pages && s.madvise.is_none());
        assert!(s.plan.churn.is_none() && !s.plan.fork);
        assert!(!s.clear_refs && !s.migrate && !s.splitter && !s.plan.refault);
        assert!(s.kill.is_none() && s.plan.racers.is_none() && s.plan.racer_region.is_none());
        assert_eq!(s.split_ranges.len(), 1);
        assert_eq!(s.child_op_names(), ["writer"]);
        // Refault alone still needs the racer region.
        let s = Settings::new(7, &narrow(&["--no-racers"])).unwrap();
        assert!(s.plan.racer_region.is_some());
        assert_eq!(s.child_op_names(), ["writer", "refault"]);
        // move_pages needs the migrate party's nodes.
        assert!(
            !Settings::new(7, &parse(&["--no-migrate"]))
                .unwrap()
                .move_pages
        );
        let s = Settings::new(7, &parse(&["--splitter-writer-only"])).unwrap();
        assert_eq!(s.split_ranges, [s.plan.writer]);
    }

    #[test]
    fn parses_lists_and_numbers() {
        let a = parse(&[
            "--nodes",
            "1,0",
            "--racer-ops",
            "dontneed,mremap,dontneed",
            "--racer-threads",
            "4",
            "--kill-min-ms",
            "50",
            "--kill-max-ms",
            "50",
            "--racer-mib",
            "4",
            "--writer-mib",
            "2",
        ]);
        assert_eq!(a.nodes, [1, 0]);
        let s = Settings::new(7, &a).unwrap();
        let r = s.plan.racers.unwrap();
        assert_eq!(
            (r.threads, r.ops),
            (4, vec![RacerOp::Dontneed, RacerOp::Mremap])
        );
        assert_eq!(s.kill, Some((50, 50)));
        assert_eq!(s.plan.racer_region.unwrap().len, 4 << 20);
        assert_eq!(s.plan.writer.len, 2 << 20);
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse_err(&["--racer-threads", "1"]).contains("racer-threads"));
        assert!(parse_err(&["--racer-threads", "17"]).contains("racer-threads"));
        assert!(parse_err(&["--racer-ops", "fork"]).contains("fork"));
        assert!(parse_err(&["--nodes", "a"]).contains("nodes"));
        let bad = |w: &[&str]| Settings::new(1, &parse(w)).unwrap_err().to_string();
        assert!(bad(&["--kill-min-ms", "300", "--kill-max-ms", "200"]).contains("--no-kill"));
        assert!(bad(&["--kill-min-ms", "0"]).contains("at least 1"));
        assert!(bad(&["--racer-mib", "3"]).contains("--no-racers"));
        assert!(bad(&["--racer-mib", "0"]).contains("multiple"));
        assert!(bad(&["--writer-mib", "0"]).contains("--writer-mib"));
        // Out-of-range kill settings do not matter with --no-kill.
        Settings::new(1, &parse(&["--no-kill", "--kill-min-ms", "0"])).unwrap();
    }

    fn ctx(seed: u64, ms: u64) -> Ctx {
        Ctx::new(
            seed,
            Duration::from_millis(ms),
            crate::output::Output::stdout(),
        )
    }

    /// True once `pid` is gone for good (reaped, not even a zombie).
    fn gone(pid: libc::pid_t) -> bool {
        // SAFETY: signal 0 only checks for existence.
        let r = unsafe { libc::kill(pid, 0) };
        r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }

    /// What every party must have done in a short run, or why not: the
    /// run's progress, which takes CPU time a loaded host may not give.
    fn short_run_progress(r: &ThpRaceResult) -> Result<(), String> {
        for party in ["writer", "racer_rounds", "refault", "clear_refs", "kills"] {
            if r.ops.get(party).copied().unwrap_or(0) == 0 {
                return Err(format!("{party} did nothing"));
            }
        }
        if r.writer.generations < 2 {
            return Err(format!("{} writer generation(s)", r.writer.generations));
        }
        if r.data_oracle.verified == 0 {
            return Err("the data oracle checked no page".into());
        }
        Ok(())
    }

    /// What a short run must show however far it got: counts that agree,
    /// no error, no lost data, no party left behind.
    fn check_short_run(c: &Ctx, o: &Outcome) {
        let r = &o.result;
        let j = serde_json::to_string_pretty(r).unwrap();
        let op = |n: &str| r.ops.get(n).copied();
        let racer_ops: u64 = RacerOp::ALL
            .iter()
            .map(|o| op(o.counter_name()).unwrap())
            .sum();
        // Every round gives each of the 2 racers one job (a partial op, or
        // the leader's zap in refault rounds); a kill may cut a round short
        // after some jobs were counted.
        let jobs = racer_ops + op("refault").unwrap();
        let rounds = op("racer_rounds").unwrap();
        let generations = r.writer.generations;
        assert!(
            (2 * rounds..=2 * (rounds + generations)).contains(&jobs),
            "{j}"
        );
        assert!(op("migrate").is_none() && op("splitter").is_none());
        assert_eq!(r.writer.unexpected_exits, 0, "{j}");
        let diag = |n: &str| r.racer_diag.get(n).copied();
        assert_eq!(diag("racer_op_errors"), Some(0), "{j}");
        assert_eq!(diag("racer_prepare_errors"), Some(0), "{j}");
        // This kernel lost nothing the data oracle checked.
        assert_eq!(r.data_oracle.mismatches, 0, "{j}");
        assert_eq!(r.parties["clear_refs"].errors, 0, "{j}");
        assert!(!r.parties.contains_key("migrate"), "{j}");
        if rounds > 0 && crate::mm::thp_for_madvised() && diag("racer_thp_unknown") == Some(0) {
            assert!(diag("racer_thp_huge").unwrap() > 0, "no THP faulted: {j}");
            assert!(r.measurement.vmstat_delta["thp_fault_alloc"] > 0, "{j}");
        }
        assert_eq!(
            r.measurement.counters_available,
            crate::counters::read().is_ok()
        );
        assert_eq!(r.measurement.crosscheck.len(), measure::CROSSCHECKS.len());
        assert_eq!(r.settings.racer_ops.as_ref().unwrap().len(), 4);
        assert!(
            gone(o.last_writer_pid),
            "writer {} left behind",
            o.last_writer_pid
        );
        // The shared counts reached the context (streamed to the host).
        assert_eq!(c.ops.snapshot()["writer"], op("writer").unwrap());
    }

    #[test]
    fn short_run_on_this_host() {
        // No mmrace.ko, no debugfs, one node here: the parties that need
        // them are off; writer, racers, refault, clear_refs and kills run.
        // Each party must get somewhere, which takes CPU time: on a busy
        // host a writer killed every 100 to 300 ms may never finish a
        // pass. So up to three runs, each twice as long with kills twice
        // as far apart (2 s and 100 to 300 ms, then 4 s, then 8 s and 400
        // to 1200 ms); every run's counts, errors and data are checked,
        // and the third must have made progress.
        for (attempt, scale) in [1u64, 2, 4].into_iter().enumerate() {
            let (min, max) = ((100 * scale).to_string(), (300 * scale).to_string());
            let a = narrow(&[
                "--no-migrate",
                "--no-splitter",
                "--kill-min-ms",
                &min,
                "--kill-max-ms",
                &max,
            ]);
            let s = Settings::new(11, &a).unwrap();
            let c = ctx(11, 2000 * scale);
            let o = run_with(&c, &s, "/nonexistent").unwrap();
            let j = serde_json::to_string_pretty(&o.result).unwrap();
            eprintln!("run {} ({} ms): {j}", attempt + 1, 2000 * scale);
            check_short_run(&c, &o);
            match short_run_progress(&o.result) {
                Ok(()) => return,
                Err(why) if attempt == 2 => panic!("{why} in three runs: {j}"),
                Err(why) => eprintln!("run {}: {why}; again, longer", attempt + 1),
            }
        }
    }

    #[test]
    fn sequential_run_takes_turns_on_this_host() {
        let a = parse(&[
            "--sequential",
            "--no-migrate",
            "--no-splitter",
            "--kill-min-ms",
            "300",
            "--kill-max-ms",
            "300",
        ]);
        let s = Settings::new(12, &a).unwrap();
        let order = s.sequence.clone().unwrap();
        assert_eq!(order[..3], ["supervisor", "writer", "racers"]);
        let o = run_with(&ctx(12, 6000), &s, "/nonexistent").unwrap();
        let r = &o.result;
        for party in [
            "writer",
            "racer_rounds",
            "clear_refs",
            "proc_walk",
            "fork",
            "madvise",
        ] {
            assert!(r.ops.get(party).copied().unwrap_or(0) > 0, "{party}: {r:?}");
        }
        assert!(r.writer.kills >= 1, "{r:?}");
        let seq = r.sequential.as_ref().unwrap();
        assert_eq!(seq.order, order);
        // Every operation counted above was a turn, and more turns passed.
        assert!(seq.turns > r.ops["writer"]);
        assert!(gone(o.last_writer_pid));
    }

    #[test]
    fn phases_switch_parties_and_are_recorded() {
        let a = parse(&[
            "--phase-ms",
            "300",
            "--no-migrate",
            "--no-splitter",
            "--no-kill",
        ]);
        let s = Settings::new(9, &a).unwrap();
        let enabled = s.phase_parties(false);
        assert_eq!(
            enabled,
            [
                "racers",
                "refault",
                "churn",
                "fork",
                "clear_refs",
                "proc_walk",
                "madvise"
            ]
        );
        // 300 ms phases over 3 s: at least two phases even when a loaded
        // host spends most of the run setting the writer up.
        let o = run_with(&ctx(9, 3000), &s, "/nonexistent").unwrap();
        let log = o.result.phases.unwrap();
        assert!(log.len() >= 2, "{log:?}");
        for p in &log {
            assert!(p.active.len() >= 2, "{p:?}");
            assert!(
                p.active.iter().all(|n| enabled.contains(&n.as_str())),
                "{p:?}"
            );
        }
        // Not with --sequential.
        let s = Settings::new(9, &parse(&["--phase-ms", "300", "--sequential"])).unwrap();
        assert!(s.phase.is_none());
    }

    #[test]
    fn swarm_resolves_per_seed_and_the_run_records_it() {
        let a = parse(&["--swarm"]);
        let s1 = Settings::new(5, &a).unwrap();
        let s2 = Settings::new(5, &a).unwrap();
        let c = s1.swarm.clone().unwrap();
        assert_eq!(Some(&c), s2.swarm.as_ref());
        assert_eq!(c.options, s1.options);
        // The recorded words give the same settings without --swarm.
        let words: Vec<&str> = c.words.iter().map(String::as_str).collect();
        let replay = Settings::new(5, &parse(&words)).unwrap();
        assert_eq!(replay.options, s1.options);
        assert_eq!(replay.plan, s1.plan);
        assert!(replay.swarm.is_none());
    }

    #[test]
    fn fuzzy_offsets_measure_and_delay() {
        let a = narrow(&[
            "--no-migrate",
            "--no-splitter",
            "--no-kill",
            "--racer-ops",
            "dontneed",
            "--no-refault",
            "--no-clear-refs",
        ]);
        let s = Settings::new(3, &a).unwrap();
        let o = run_with(&ctx(3, 3000), &s, "/nonexistent").unwrap();
        let off = o.result.offsets.clone().unwrap();
        assert!(off.ns_per_loop > 0.0, "{off:?}");
        let k = &off.kinds[0];
        assert_eq!((k.kind.as_str(), off.kinds.len()), ("dontneed", 1));
        assert!(k.rounds > offsets::SAMPLING, "too few rounds here: {k:?}");
        assert_eq!(k.sampling_rounds, offsets::SAMPLING);
        assert_eq!(
            k.leader_delayed + k.follower_delayed,
            k.rounds - k.sampling_rounds
        );
        assert!(k.leader_ns.avg > 0.0 && k.follower_ns.avg > 0.0, "{k:?}");
        assert!(k.delay_range_ns[0] < 0 && k.delay_range_ns[1] > 0, "{k:?}");
        // The window moves with the measurements; every delay stays capped.
        let cap = offsets::MAX_DELAY_NS as i64;
        assert!(k.delay_min_ns >= -cap && k.delay_max_ns <= cap, "{k:?}");
        assert!(k.delay_min_ns < k.delay_max_ns, "{k:?}");
    }

    #[test]
    fn missing_interfaces_fail_setup_naming_the_switch() {
        let s = Settings::new(1, &narrow(&["--no-migrate"])).unwrap();
        let e = run_with(&ctx(1, 500), &s, "/nonexistent/split_huge_pages")
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("--no-splitter"), "{e:#}");
        let online = crate::numa::online_nodes().unwrap();
        if !(online.contains(&0) && online.contains(&1)) {
            let s = Settings::new(1, &narrow(&["--no-splitter"])).unwrap();
            let e = run_with(&ctx(1, 500), &s, "/nonexistent").err().unwrap();
            assert!(format!("{e:#}").contains("--no-migrate"), "{e:#}");
        }
    }

    #[test]
    fn taken_fixed_address_is_a_clear_error() {
        // Another address than the real writer's: tests run in parallel
        // threads of one process, and a mapping here is inherited by every
        // child any test forks.
        let taken = crate::mm::AlignedMap::new(4 << 20, 2 << 20).unwrap();
        let mut plan = host_plan();
        plan.racers = None;
        plan.refault = false;
        plan.racer_region = None;
        plan.writer = Region {
            addr: taken.as_ptr() as usize,
            len: 2 << 20,
        };
        let ops = Arc::new(SharedOps::new(&["writer"]).unwrap());
        let diag = Arc::new(SharedOps::new(&racers::DIAG_NAMES).unwrap());
        let e = Writer::spawn(&plan, &ops, &diag, &test_oracle())
            .unwrap_err()
            .to_string();
        assert!(e.contains("already mapped"), "{e}");
        // And the racers' region: the message names the switches.
        let mut plan = host_plan();
        plan.writer = Region {
            addr: 0x7400_0000_0000,
            len: 2 << 20,
        };
        plan.racer_region = Some(Region {
            addr: taken.as_ptr() as usize,
            len: 2 << 20,
        });
        let e = Writer::spawn(&plan, &ops, &diag, &test_oracle())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--no-racers --no-refault"), "{e}");
    }

    #[test]
    fn writer_runs_and_dies_with_its_handle() {
        let mut plan = host_plan();
        plan.churn = None;
        plan.fork = false;
        plan.party_nice = 19; // above any nice the test runner may run at
        plan.nice_flip_ms = 0; // the racers keep their nice: checked below
        plan.writer = Region {
            addr: 0x7500_0000_0000,
            len: 4 << 20,
        };
        plan.racer_region = Some(Region {
            addr: 0x7600_0000_0000,
            len: 4 << 20,
        });
        let ops = Arc::new(SharedOps::new(&racers::OP_NAMES).unwrap());
        let diag = Arc::new(SharedOps::new(&racers::DIAG_NAMES).unwrap());
        let w = Writer::spawn(&plan, &ops, &diag, &test_oracle()).unwrap();
        let pid = w.pid();
        // It must not be protected from the OOM killer like the driver.
        let adj = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
        assert_eq!(adj.trim(), "0");
        let t = Instant::now();
        while ops.totals()["racer_rounds"] < 10 || ops.totals()["writer"] < 2 {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no progress: {:?}",
                ops.totals()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(w.exited().is_none());
        // The memset loop runs niced, the racers do not (refault is a
        // round kind of theirs, no thread of its own).
        let nice_of = |tid: &str| -> i32 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).unwrap();
            let after_comm = stat.rsplit_once(") ").unwrap().1;
            after_comm.split(' ').nth(16).unwrap().parse().unwrap()
        };
        let mut nices: Vec<(String, i32)> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .map(|tid| (tid.clone(), nice_of(&tid)))
            .collect();
        nices.sort();
        assert_eq!(nices.len(), 1 + 2, "writer, 2 racers: {nices:?}");
        assert!(
            nices.contains(&(pid.to_string(), plan.party_nice)),
            "{nices:?}"
        );
        assert_eq!(
            nices.iter().filter(|(_, n)| *n == plan.party_nice).count(),
            1,
            "{nices:?}"
        );
        let base = sched::this_thread_nice();
        assert_eq!(
            nices.iter().filter(|(_, n)| *n == base).count(),
            2,
            "{nices:?}"
        );
        drop(w);
        assert!(gone(pid));
    }

    /// A manual run on this machine: `THP_RACE_ARGS="--no-migrate
    /// --no-splitter" THP_RACE_MS=5000 cargo test -p mmrace-driver
    /// manual_run -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn manual_run() {
        let words = std::env::var("THP_RACE_ARGS").unwrap_or_default();
        let ms = std::env::var("THP_RACE_MS").map_or(3000, |v| v.parse().unwrap());
        let s = Settings::new(1, &parse(&words.split_whitespace().collect::<Vec<_>>())).unwrap();
        let o = run_with(&ctx(1, ms), &s, setup::SPLIT_PATH).unwrap();
        println!("{:#?}", o.result.rates);
        println!("{:#?}", o.result.racer_diag);
    }
}
