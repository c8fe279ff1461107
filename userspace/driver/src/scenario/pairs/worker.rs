//! The worker: a forked child that runs the slices, so the ops' targets
//! (migrate_pages of a pid, clear_refs, smaps, fork) see a small mm, and a
//! kernel bug that kills it does not kill the driver. It reports only
//! through shared pages ([`Tally`], the oracle); the driver restarts it if
//! it dies and tells it to stop through [`H::Stop`].
//!
//! Forked from the multi-threaded driver, it touches none of the driver's
//! locks (stdout, the op registry): it never prints and leaves by `_exit`.
//! Threads and allocation are fine (glibc resets its allocator locks in
//! the child at fork).

use super::clock::Lap;
use super::crew::{Crew, MAX_SLOTS};
use super::dio::{Dio, DioPaths};
use super::ksmd;
use super::model::Layout;
use super::object::{maker, KindEnv, Maker};
use super::op::{op, Resources};
use super::round::{self, Setup, Slice};
use super::steer::{self, Pick, Sizing, Steer};
use super::tally::{Tally, F, H, T};
use super::windows::Windows;
use crate::oracle::{Oracle, Party};
use crate::shared::offsets::{calibrate, Book};
use crate::shared::rng::Rng;
use anyhow::{bail, Result};
use mmrace_proto::meets::Meets;
use mmrace_proto::oracle::UNIT;
use mmrace_proto::pairs::{catalogue, Combo, ObjKind, ObjState, UserOp};
use mmrace_proto::results::pairs::pairs_in;
use mmrace_proto::spec::pairs::{Args, SteerBy};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Rounds in a row a kind may fail to make its object before it is
/// dropped for the run.
const MAX_CREATE_FAILURES: u32 = 3;

/// What the driver hands the worker (plain data, valid after fork).
pub struct Plan {
    pub args: Args,
    pub kinds: Vec<ObjKind>,
    /// The start states in play (those this guest can make).
    pub states: Vec<ObjState>,
    pub ops: Vec<UserOp>,
    pub seed: u64,
    pub deadline: Instant,
    /// The two nodes, or why the migrating ops cannot run.
    pub nodes: Result<(u32, u32), String>,
    /// The O_DIRECT op's file and disk, or why there is none.
    pub dio: Result<DioPaths, String>,
    pub kind_env: KindEnv,
    pub layout: Layout,
}

fn migrates(u: UserOp) -> bool {
    matches!(u, UserOp::MigratePages | UserOp::MovePages | UserOp::Mbind)
}

/// Forks a worker; returns its pid.
pub fn spawn(
    plan: &Plan,
    tally: &Arc<Tally>,
    oracle: &Arc<Oracle>,
    party: Party,
) -> Result<libc::pid_t> {
    let generation = tally.get(H::Workers);
    tally.add(H::Workers, 1);
    // SAFETY: fork in a threaded process; the child runs `child` only
    // (see the module docs) and leaves by _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        bail!(
            "pairs: fork of the worker: {}",
            std::io::Error::last_os_error()
        );
    }
    if pid == 0 {
        let code = child(plan, tally, oracle, party, generation);
        // SAFETY: leaves the child without the driver's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(pid)
}

fn child(plan: &Plan, tally: &Tally, oracle: &Arc<Oracle>, party: Party, generation: u64) -> i32 {
    // SAFETY: prctl with integer arguments: die with the driver.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if let Err(e) = crate::oom::make_killable() {
        tally.fatal(&format!("{e:#}"));
        return 2;
    }
    let dio = plan
        .dio
        .as_ref()
        .ok()
        .and_then(|p| Dio::open(p, plan.layout.pages, UNIT));
    let nodes = *plan.nodes.as_ref().unwrap_or(&(0, 0));
    let res = Resources::open(dio, nodes, oracle, party);
    let a = &plan.args;
    let windows = match Windows::new(
        a.preempt,
        a.held,
        res.cpus,
        Rng::stream(plan.seed, "pairs-windows", generation),
    ) {
        Ok(w) => w,
        Err(e) => {
            tally.fatal(&format!("{e:#}"));
            return 2;
        }
    };
    match Worker::new(plan, tally, &res, &windows, generation) {
        Ok(mut w) => {
            w.run();
            0
        }
        Err(e) => {
            tally.fatal(&format!("{e:#}"));
            2
        }
    }
}

/// Whether the worker should stop: told to, past the deadline, or the
/// oracle found something (the verdict is decided).
fn done(plan: &Plan, tally: &Tally, res: &Resources) -> bool {
    tally.get(H::Stop) != 0 || Instant::now() >= plan.deadline || res.oracle.mismatches() > 0
}

struct Worker<'a> {
    plan: &'a Plan,
    tally: &'a Tally,
    res: &'a Resources,
    makers: Vec<(ObjKind, Box<dyn Maker>)>,
    steer: Steer,
    use_meets: bool,
    book: Book,
    rng: Rng,
    /// Draws each slice's start state.
    states_rng: Rng,
    windows: &'a Windows,
    /// The meets and calls read after the last slice, and the probes'
    /// epoch then: the next slice's before, while they stay armed.
    last: Option<(Option<u64>, Counted)>,
}

impl<'a> Worker<'a> {
    fn new(
        plan: &'a Plan,
        tally: &'a Tally,
        res: &'a Resources,
        windows: &'a Windows,
        generation: u64,
    ) -> Result<Worker<'a>> {
        ksmd::recover(tally);
        let mut ops = Vec::new();
        for &u in &plan.ops {
            let why = match (&plan.nodes, &plan.dio) {
                (Err(e), _) if migrates(u) => Some(e.clone()),
                (_, Err(e)) if u == UserOp::Odirect => Some(e.clone()),
                _ => op(u).available(res).err(),
            };
            match why {
                Some(w) => tally.skip_op(u, &w),
                None => ops.push(u),
            }
        }
        let mut makers = Vec::new();
        for &k in &plan.kinds {
            match maker(k, &plan.kind_env) {
                Ok(m) => makers.push((k, m)),
                Err(e) => tally.skip_kind(k, &e.0),
            }
        }
        let by_kind: Vec<_> = makers
            .iter()
            .filter(|(k, _)| !catalogue::states_for(*k, &plan.states).is_empty())
            .map(|(k, _)| (*k, steer::ops_of(*k, &ops)))
            .filter(|(_, o)| !o.is_empty())
            .collect();
        let forced = plan.args.forced().map_err(anyhow::Error::msg)?;
        let steer = Steer::new(
            by_kind,
            forced.clone(),
            (!plan.args.no_steer).then_some(plan.args.steer_by),
            plan.args.triple_pct,
            Sizing {
                by: plan.args.slice_by,
                rounds: u64::from(plan.args.rounds),
                first: u64::from(plan.args.first_rounds),
            },
            Rng::stream(plan.seed, "pairs-steer", generation),
        );
        if steer.is_empty() {
            bail!(
                "pairs: nothing can run (every kind or op skipped: {:?})",
                tally.skipped()
            );
        }
        let use_meets = crate::meets::read().is_ok();
        tally.set(H::Meets, if use_meets { 1 } else { 2 });
        let n = UserOp::ALL.len();
        let book = Book::new(n * n)?;
        book.set_ns_per_loop(calibrate());
        Ok(Worker {
            plan,
            tally,
            res,
            makers,
            steer,
            use_meets,
            book,
            rng: Rng::stream(plan.seed, "pairs-offsets", generation),
            states_rng: Rng::stream(plan.seed, "pairs-states", generation),
            windows,
            last: None,
        })
    }

    fn done(&self) -> bool {
        done(self.plan, self.tally, self.res)
    }

    /// The worker's slices, raced by one crew for its life, or by a crew
    /// per slice (`--crew-per-slice`).
    fn run(&mut self) {
        if self.plan.args.crew_per_slice {
            return self.slices(None);
        }
        let a = &self.plan.args;
        let setup = Setup {
            slots: MAX_SLOTS,
            layout: self.plan.layout,
            burst: a.burst,
            sequential: a.sequential,
            overlap: std::time::Duration::from_millis(a.overlap_ms.into()),
            windows: Some(self.windows),
        };
        let (tally, res) = (self.tally, self.res);
        round::with_crew_of(setup, res, tally, |crew| self.slices(Some(crew)));
    }

    /// Slices until done; `crew` races them all, or each gets its own.
    fn slices(&mut self, crew: Option<&Crew>) {
        while !self.done() {
            let begun = Instant::now();
            let mut lap = Lap::start(self.tally);
            let armed = crate::meets::armed_now();
            let next = self.steer.next(self.tally, self.use_meets, armed);
            lap.mark(T::Steer);
            let Some(pick) = next else {
                break;
            };
            self.slice(&pick, crew);
            self.tally
                .add_time(T::Wall, begun.elapsed().as_nanos() as u64);
        }
    }

    /// The module's meets and calls now, when the probes were armed all
    /// the time since `epoch` (only then does a slice count its meets:
    /// the files are not read for nothing, a read costs milliseconds
    /// under TCG).
    fn meets_if_armed(&self, epoch: Option<u64>) -> Option<Counted> {
        if self.use_meets && crate::meets::armed_throughout(epoch, crate::meets::epoch()) {
            let mut lap = Lap::start(self.tally);
            let text = crate::meets::read_text().ok()?;
            let ops = crate::meets::read_ops_text().ok()?;
            lap.mark(T::MeetsRead);
            let meets = crate::meets::parse(&text).ok()?;
            let calls = crate::meets::parse_ops_text(&ops)
                .ok()?
                .into_iter()
                .map(|o| (o.op, o.calls))
                .collect();
            Some(Counted { meets, calls })
        } else {
            None
        }
    }

    /// The meets and calls before a slice that begins in `epoch`: those
    /// read after the last slice when the probes stayed armed since (only
    /// the steering ran in between: reading debugfs `meets` and `ops`
    /// took 60 to 110 ms a slice under TCG in session 11), else read now.
    fn meets_before(&mut self, epoch: Option<u64>) -> Option<Counted> {
        still_armed(self.last.take(), epoch).or_else(|| self.meets_if_armed(epoch))
    }

    /// One slice: the pick's rounds of its combo on its kind, in a start
    /// state drawn from those the kind can start in, then its meets when
    /// the probes were armed throughout (the run may sample them).
    fn slice(&mut self, pick: &Pick, crew: Option<&Crew>) {
        let (combo, kind) = (&pick.combo, pick.kind);
        let mut lap = Lap::start(self.tally);
        // Steering by need draws among the states where the combo's ops
        // can enter their module ops (issue 17's cause (a)).
        let states = if self.plan.args.steer_by == SteerBy::Need {
            catalogue::states_that_drive(kind, &self.plan.states, &combo.0)
        } else {
            catalogue::states_for(kind, &self.plan.states)
        };
        let state = *self.states_rng.pick(&states);
        let epoch = crate::meets::epoch();
        let before = self.meets_before(epoch);
        lap.mark(T::Meets);
        let n = UserOp::ALL.len();
        let s = Slice {
            combo,
            kind,
            state,
            ops: combo.0.iter().map(|u| op(*u)).collect(),
            book_kind: combo.0[0].index() * n + combo.0[1].index(),
            burst: self.plan.args.burst,
            overlap: std::time::Duration::from_millis(self.plan.args.overlap_ms.into()),
            offsets: !self.plan.args.no_offsets && !self.plan.args.sequential,
            sequential: self.plan.args.sequential,
            windows: Some(self.windows),
        };
        let Some(row) = self.tally.row(combo, kind, state) else {
            self.tally.set(H::Stop, 1); // the table is full
            return;
        };
        let (plan, tally, res) = (self.plan, self.tally, self.res);
        let maker = &mut self
            .makers
            .iter_mut()
            .find(|(k, _)| *k == kind)
            .expect("a steered kind has a maker")
            .1;
        let (book, rng) = (&self.book, &mut self.rng);
        lap.mark(T::Steer);
        let mut rounds = |crew: &Crew| {
            let (mut ran, mut failures) = (0, 0);
            for _ in 0..pick.rounds {
                if done(plan, tally, res) {
                    break;
                }
                let round = tally.get(H::Rounds) + 1;
                let r = round::run(
                    &s,
                    crew,
                    maker.as_mut(),
                    plan.layout,
                    round,
                    res,
                    book,
                    rng,
                    tally,
                );
                match r {
                    Ok(out) => {
                        failures = 0;
                        ran += 1;
                        tally.add(H::Rounds, 1);
                        tally.add(H::Verified, out.verified);
                        tally.bump(row, F::Rounds, 1);
                        tally.bump(row, F::Catches, u64::from(out.bad > 0));
                        tally.bump(row, F::Errors, out.errors);
                    }
                    Err(e) => {
                        failures += 1;
                        if failures >= MAX_CREATE_FAILURES {
                            return (ran, Some(format!("cannot make its objects: {e:#}")));
                        }
                    }
                }
            }
            (ran, None)
        };
        let (ran, failed) = match crew {
            Some(c) => rounds(c),
            None => round::with_crew(&s, plan.layout, res, tally, rounds),
        };
        lap.skip();
        if let Some(why) = failed {
            self.tally.skip_kind(kind, &why);
            self.steer.drop_kind(kind);
        }
        self.tally.bump(row, F::Slices, 1);
        self.tally.add(H::Slices, 1);
        if combo.0.len() > 2 {
            for p in pairs_in(combo) {
                if let Some(pr) = self.tally.row(&p, kind, state) {
                    self.tally.bump(pr, F::TripleRounds, ran);
                }
            }
        }
        lap.mark(T::Steer);
        let after = self.meets_if_armed(epoch);
        let armed = crate::meets::armed_throughout(epoch, crate::meets::epoch());
        lap.mark(T::Meets);
        if !armed {
            return;
        }
        if let (Some(b), Some(a)) = (before, &after) {
            self.attribute(combo, (kind, state), row, ran, &a.since(&b));
        }
        self.last = after.map(|a| (epoch, a));
        lap.mark(T::Steer);
    }

    /// Credits the slice's meets (and its `ran` rounds as metered) to its
    /// row and, for a triple, to the rows of the pairs in it; and to each
    /// pair's row what tells why it did not meet (`Row::why_unmet`): its
    /// ops' module calls, alias overlaps and meets on another kind.
    fn attribute(
        &self,
        combo: &Combo,
        (kind, state): (ObjKind, ObjState),
        row: usize,
        ran: u64,
        d: &Counted,
    ) {
        self.tally.bump(row, F::Metered, ran);
        let pairs = if combo.0.len() == 2 {
            vec![combo.clone()]
        } else {
            pairs_in(combo)
        };
        for p in pairs {
            let (a, b) = (p.0[0], p.0[1]);
            let c = catalogue::meets_between(&d.meets, a, b, kind);
            self.tally.bump(row, F::Meets, c.meets);
            self.tally.bump(row, F::Near, c.near);
            let pr = if combo.0.len() > 2 {
                let Some(pr) = self.tally.row(&p, kind, state) else {
                    continue;
                };
                self.tally.bump(pr, F::Meets, c.meets);
                self.tally.bump(pr, F::Near, c.near);
                self.tally.bump(pr, F::Metered, ran);
                pr
            } else {
                row
            };
            let why = [
                (F::CallsA, catalogue::calls_of(&d.calls, a, kind)),
                (F::CallsB, catalogue::calls_of(&d.calls, b, kind)),
                (F::Alias, c.alias),
                (
                    F::Elsewhere,
                    catalogue::meets_elsewhere(&d.meets, a, b, kind),
                ),
            ];
            for (f, n) in why {
                self.tally.bump(pr, f, n);
            }
        }
    }
}

/// What was read in epoch `then`, if the probes stayed armed from then
/// to `now` (the same odd epoch): still a valid start to count from.
fn still_armed<C>(last: Option<(Option<u64>, C)>, now: Option<u64>) -> Option<C> {
    last.and_then(|(then, c)| crate::meets::armed_throughout(then, now).then_some(c))
}

/// The module's meets and each operation's calls, read together.
struct Counted {
    meets: Meets,
    calls: BTreeMap<&'static str, u64>,
}

impl Counted {
    /// What happened between `earlier` and `self`.
    fn since(&self, earlier: &Counted) -> Counted {
        let calls = self
            .calls
            .iter()
            .map(|(op, n)| {
                (
                    *op,
                    n.saturating_sub(earlier.calls.get(op).copied().unwrap_or(0)),
                )
            })
            .collect();
        Counted {
            meets: self.meets.since(&earlier.meets),
            calls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::still_armed;

    #[test]
    fn the_last_read_counts_only_while_the_probes_stay_armed() {
        // Armed in epoch 3 then and now: the read stands.
        assert_eq!(still_armed(Some((Some(3), "read")), Some(3)), Some("read"));
        // Disarmed (even) or re-armed since (another epoch): read again.
        assert_eq!(still_armed(Some((Some(3), "read")), Some(5)), None);
        assert_eq!(still_armed(Some((Some(4), "read")), Some(4)), None);
        // Nothing read, or no meets at all.
        assert_eq!(still_armed::<&str>(None, Some(3)), None);
        assert_eq!(still_armed(Some((None, "read")), None), None);
    }
}
