//! One round: a fresh object, its hot THP stamped, the slice's ops on their
//! own pinned threads released by the fuzzy start offsets, the join, and
//! the check of every page.

use super::clock::{self, Lap};
use super::crew::{Crew, Hand, Orders};
use super::model::{accepts_any, Effects, Layout, Model, Summary};
use super::object::{Maker, Object};
use super::op::{Op, Resources, Timing};
use super::state::{self, ObjState};
use super::tally::{Tally, T as Phase};
use super::windows::{RoundPlan, Windows};
use crate::oracle::{mem, Check};
use crate::shared::offsets::{Book, KindState};
use crate::shared::rng::Rng;
use anyhow::Result;
use mmrace_proto::oracle::{region, UNIT};
use mmrace_proto::pairs::{pack_context, Combo, ObjKind};
use std::sync::Arc;
use std::time::Instant;

/// The longest start delay: a whole op of the other side, up to 50 ms
/// (thp-race caps its racers at 0.5 ms; here one side is often a whole
/// migration or split, milliseconds under TCG, and the other side's
/// stores must be able to start anywhere inside it).
pub const MAX_DELAY_NS: f64 = 50_000_000.0;

/// What a slice runs: its ops (in combo order) on one kind.
pub struct Slice<'a> {
    pub combo: &'a Combo,
    pub kind: ObjKind,
    /// The state every round's object starts in.
    pub state: ObjState,
    pub ops: Vec<&'static dyn Op>,
    /// The slice's kind in the offsets book.
    pub book_kind: usize,
    pub burst: u32,
    /// `--overlap-ms`: how long each op repeats in a round (zero: once).
    pub overlap: std::time::Duration,
    pub offsets: bool,
    /// The ops of a round run one after the other (`--sequential`).
    pub sequential: bool,
    /// The window mechanisms (`--preempt`, `--held`), when armed.
    pub windows: Option<&'a Windows>,
}

/// What a round found.
#[derive(Debug, Default)]
pub struct RoundOut {
    /// Pages that did not hold what the ops must leave.
    pub bad: u64,
    pub verified: u64,
    /// Of `verified`, the pages fork children saw (their views).
    pub viewed: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// The busy loops each slot waits before its op: a negative delay holds
/// the leader (slot 0) back, a positive one the follower (slot 1); a third
/// op starts anywhere in the window.
fn delays(book: &Book, st: &KindState, offsets: bool, rng: &mut Rng) -> ([u64; 3], f64) {
    if !offsets {
        return ([0; 3], 0.0);
    }
    let u = |rng: &mut Rng| rng.next_u64() as f64 / u64::MAX as f64;
    let d = st.next_delay_capped(u(rng), MAX_DELAY_NS);
    let (lo, hi) = st.window_capped(MAX_DELAY_NS);
    let third = book.loops_for(lo + u(rng) * (hi - lo));
    let l = book.loops_for(d);
    if d < 0.0 {
        ([l, 0, third], d)
    } else {
        ([0, l, third], d)
    }
}

/// Folds the round's timings into the offsets book.
fn record_offsets(book: &Book, k: usize, mut st: KindState, t: &[(Effects, Timing)], delay: f64) {
    let ns = |a: Instant, b: Instant| b.saturating_duration_since(a).as_nanos() as f64;
    let (l, f) = (t[0].1, t[1].1);
    let skew = if f.start >= l.start {
        ns(l.start, f.start)
    } else {
        -ns(f.start, l.start)
    };
    // One run's time: the offsets sweep one op across the other.
    st.record(
        ns(l.start, l.first_end),
        ns(f.start, f.first_end),
        skew,
        delay,
    );
    book.store(k, &st);
}

/// Checks every page of `obj` against the model; reports mismatches.
fn verify(
    obj: &dyn Object,
    model: &Model,
    layout: Layout,
    fx: &[Effects],
    context: u64,
    res: &Resources,
    tally: &Tally,
) -> (u64, u64) {
    let (mut bad, mut checked) = (0, 0);
    let base = obj.addr();
    let sum = Summary::new(layout.pages, fx);
    for p in 0..layout.pages {
        let Some(allowed) = model.allowed_in(p, &sum) else {
            continue;
        };
        let addr = base + p * UNIT;
        // SAFETY: page p is mapped (not gone) and at least readable.
        let found = unsafe { mem::read(addr) };
        checked += 1;
        if !allowed.accepts(&found) {
            bad += 1;
            let exp = allowed.reported();
            res.oracle.mismatch_in(
                Check::PairsRound,
                region::PAIRS,
                addr,
                p as u64,
                exp,
                &found,
                context,
            );
            tally.finding(context, p, addr, exp, &found);
        }
    }
    res.oracle.verified(checked);
    (bad, checked)
}

/// Checks what each fork child saw (its [`super::model::ForkView`])
/// against the values each page held during the fork; reports mismatches
/// like [`verify`] (the address is the parent's, the page the same).
fn verify_fork_views(
    obj: &dyn Object,
    model: &Model,
    fx: &[Effects],
    context: u64,
    res: &Resources,
    tally: &Tally,
) -> (u64, u64) {
    let (mut bad, mut checked) = (0, 0);
    for v in fx.iter().filter_map(|f| f.view.as_ref()) {
        for &(p, words, last) in &v.seen {
            let opts = model.at_fork(p, fx, v.begin, v.end);
            let found = mmrace_proto::oracle::Found::decode(words, last);
            checked += 1;
            if !accepts_any(&opts, &found) {
                bad += 1;
                let addr = obj.addr() + p * UNIT;
                res.oracle.mismatch_in(
                    Check::PairsRound,
                    region::PAIRS,
                    addr,
                    p as u64,
                    opts[0],
                    &found,
                    context,
                );
                tally.finding(context, p, addr, opts[0], &found);
            }
        }
    }
    res.oracle.verified(checked);
    (bad, checked)
}

/// The node the migrating ops move the object to: away from where it is
/// (migrate_pages then moves only what lives there, not the whole worker
/// back and forth); by turns when that cannot be told.
fn target(obj: &dyn Object, nodes: (u32, u32), round: u64) -> u32 {
    let (a, b) = nodes;
    match crate::numa::node_of(obj.addr()) {
        Some(n) if n == a => b,
        Some(n) if n == b => a,
        _ if round.is_multiple_of(2) => b,
        _ => a,
    }
}

/// What a crew's threads keep for its life (the run's settings; the ops
/// come with each round).
#[derive(Clone, Copy)]
pub struct Setup<'a> {
    /// Threads: the most ops of a round it races.
    pub slots: usize,
    pub layout: Layout,
    pub burst: u32,
    pub sequential: bool,
    pub overlap: std::time::Duration,
    pub windows: Option<&'a Windows>,
}

impl<'a> Slice<'a> {
    /// A crew for this slice's ops alone.
    pub fn setup(&self, layout: Layout) -> Setup<'a> {
        Setup {
            slots: self.ops.len(),
            layout,
            burst: self.burst,
            sequential: self.sequential,
            overlap: self.overlap,
            windows: self.windows,
        }
    }
}

/// Runs `f` with a crew for the slice's ops alone (`--crew-per-slice`,
/// and the tests).
pub fn with_crew<T>(
    slice: &Slice,
    layout: Layout,
    res: &Resources,
    tally: &Tally,
    f: impl FnOnce(&Crew) -> T,
) -> T {
    with_crew_of(slice.setup(layout), res, tally, f)
}

/// Runs `f` with a crew of `setup`'s threads started (and stops them
/// after, even when `f` panics); the time to start and stop them is the
/// `crew` phase.
pub fn with_crew_of<T>(
    setup: Setup,
    res: &Resources,
    tally: &Tally,
    f: impl FnOnce(&Crew) -> T,
) -> T {
    struct Quit<'c>(&'c Crew);
    impl Drop for Quit<'_> {
        fn drop(&mut self) {
            self.0.quit();
        }
    }
    let begun = Instant::now();
    let crew = Crew::new(setup.slots, setup.sequential, setup.overlap);
    let (out, ended) = std::thread::scope(|sc| {
        for slot in 0..setup.slots {
            let h = Hand {
                slot,
                layout: setup.layout,
                burst: setup.burst,
                res,
                tally,
                windows: setup.windows,
            };
            let c = &crew;
            sc.spawn(move || c.serve(h));
        }
        let _quit = Quit(&crew);
        tally.add_time(Phase::Crew, begun.elapsed().as_nanos() as u64);
        (f(&crew), Instant::now())
    });
    tally.add_time(Phase::Crew, ended.elapsed().as_nanos() as u64);
    out
}

/// One round on a fresh object of `maker`'s kind, raced by `crew`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    slice: &Slice,
    crew: &Crew,
    maker: &mut dyn Maker,
    layout: Layout,
    round: u64,
    res: &Resources,
    book: &Book,
    rng: &mut Rng,
    tally: &Tally,
) -> Result<RoundOut> {
    let mut lap = Lap::start(tally);
    tally.add_time(Phase::Rounds, 1);
    let made = maker.create(layout.bytes());
    lap.mark(Phase::Create);
    let obj: Arc<dyn Object> = Arc::from(made?);
    state::prepare(obj.as_ref(), slice.state, layout)?;
    lap.mark(Phase::Stamp);
    let st = book.load(slice.book_kind);
    let (loops, delay) = delays(book, &st, slice.offsets, rng);
    let context = pack_context(slice.combo, slice.kind, slice.state, round);
    let plan = slice
        .windows
        .map_or(RoundPlan::default(), |w| w.plan(&slice.combo.0, &st));
    let target = target(obj.as_ref(), res.nodes, round);
    tally.add_time(Phase::Planned, delay.abs() as u64);
    lap.mark(Phase::Plan);
    let published = Instant::now();
    let t = crew.round(
        Orders {
            ops: slice.ops.clone(),
            obj: obj.clone(),
            round,
            target,
            moving: slice.combo.0.iter().any(|o| o.moves()),
            context,
            loops,
            plan,
        },
        tally,
    );
    let timings: Vec<Timing> = t.iter().map(|(_, x)| *x).collect();
    clock::race(tally, published, Instant::now(), &timings);
    lap.skip();
    if let Some(w) = slice.windows {
        w.score(&plan, &slice.combo.0, &timings, tally);
    }
    if t.len() >= 2 {
        record_offsets(book, slice.book_kind, st, &t, delay);
    }
    let fx: Vec<Effects> = t.into_iter().map(|(f, _)| f).collect();
    lap.mark(Phase::Record);
    let model = Model::new(layout, slice.kind, slice.state);
    let (bad, verified) = verify(obj.as_ref(), &model, layout, &fx, context, res, tally);
    let (bad_views, viewed) = verify_fork_views(obj.as_ref(), &model, &fx, context, res, tally);
    lap.mark(Phase::Verify);
    drop(obj);
    lap.mark(Phase::Drop);
    let mut out = RoundOut {
        bad: bad + bad_views,
        verified: verified + viewed,
        viewed,
        ..RoundOut::default()
    };
    for f in fx {
        out.errors += f.errors;
        out.first_error = out.first_error.or(f.first_error);
    }
    Ok(out)
}

#[cfg(test)]
mod fixture {
    use super::*;
    use crate::oracle::Oracle;
    use crate::scenario::pairs::kinds::anon::AnonMaker;
    use crate::scenario::pairs::op::op;
    use mmrace_proto::pairs::UserOp;
    use std::time::Duration;

    /// What a test's rounds on anon need: the oracle, the resources, the
    /// tally, a calibrated offsets book, and a two-THP layout.
    pub struct Bench {
        pub oracle: Arc<Oracle>,
        pub res: Resources,
        pub tally: Tally,
        pub book: Book,
        pub layout: Layout,
    }

    impl Bench {
        pub fn new() -> Bench {
            let oracle = Arc::new(Oracle::new(Instant::now()).unwrap());
            let res = Resources::for_tests(&oracle);
            let n = UserOp::ALL.len();
            let book = Book::new(n * n).unwrap();
            book.set_ns_per_loop(crate::shared::offsets::calibrate());
            Bench {
                oracle,
                res,
                tally: Tally::new().unwrap(),
                book,
                layout: Layout::new(2, crate::mm::pmd_size()),
            }
        }

        /// Round `round` of `s` on a fresh anonymous object, by `crew`.
        pub fn round(&self, s: &Slice, crew: &Crew, round: u64, rng: &mut Rng) -> RoundOut {
            let res = &self.res;
            run(
                s,
                crew,
                &mut AnonMaker,
                self.layout,
                round,
                res,
                &self.book,
                rng,
                &self.tally,
            )
            .unwrap()
        }
    }

    /// A slice of `combo` on anon in `state`, with start offsets.
    pub fn anon_slice(combo: &Combo, state: ObjState, burst: u32, overlap: Duration) -> Slice<'_> {
        let n = UserOp::ALL.len();
        Slice {
            combo,
            kind: ObjKind::Anon,
            state,
            ops: combo.0.iter().map(|u| op(*u)).collect(),
            book_kind: combo.0[0].index() * n + combo.0[1].index(),
            burst,
            overlap,
            offsets: true,
            sequential: false,
            windows: None,
        }
    }
}
#[cfg(test)]
mod tests {
    use super::fixture::{anon_slice, Bench};
    use super::*;
    use mmrace_proto::pairs::UserOp;

    /// Every pair of the ops that need nothing but this process, on
    /// private anonymous memory of this (clean) kernel: the model must
    /// accept whatever they leave.
    #[test]
    fn a_clean_kernel_leaves_nothing_the_model_refuses() {
        every_anon_pair(std::time::Duration::ZERO);
    }

    /// The same with `--overlap-ms`: the ops repeated while the other
    /// runs leave nothing the model refuses either, and they did repeat.
    #[test]
    fn repeated_ops_leave_nothing_the_model_refuses() {
        every_anon_pair(std::time::Duration::from_millis(3));
    }

    fn every_anon_pair(overlap: std::time::Duration) {
        if !crate::mm::thp_for_madvised() {
            return;
        }
        let b = Bench::new();
        let mut rng = Rng::new(3);
        let (layout, tally) = (b.layout, &b.tally);
        use UserOp::*;
        let ops = [
            Store,
            Touch,
            Fork,
            MigratePages,
            MovePages,
            Mbind,
            MunmapPart,
            MprotectPart,
            Collapse,
            Dontneed,
            Free,
            Pageout,
            Cold,
            MprotectExec,
            Mlock,
            ClearRefs,
            Smaps,
            Pagemap,
            Mremap,
            Populate,
            Vmsplice,
            Mincore,
            Willneed,
            ProcMem,
        ];
        let mut round = 0;
        let (mut errors, mut views) = (Vec::new(), 0);
        for (i, a) in ops.iter().enumerate() {
            for c in &ops[i..] {
                let combo = Combo::new(vec![*a, *c]);
                if !combo.compatible() {
                    continue;
                }
                let s = anon_slice(&combo, ObjState::Populated, 2, overlap);
                with_crew(&s, layout, &b.res, tally, |crew| {
                    round += 1;
                    let out = b.round(&s, crew, round, &mut rng);
                    assert_eq!(out.bad, 0, "{combo} round {round}: {:?}", tally.findings());
                    // A fork child's view adds the pages it read (none
                    // when fork failed: EAGAIN, ENOMEM).
                    assert!(out.viewed == 0 || combo.0.contains(&Fork), "{combo}");
                    views += out.viewed;
                    assert_eq!(
                        (out.verified - out.viewed) as usize,
                        layout.pages
                            - if combo.0.contains(&MunmapPart) {
                                super::super::model::TAIL
                            } else {
                                0
                            }
                    );
                    if let Some(e) = out.first_error {
                        errors.push(format!("{combo}: {e}"));
                    }
                });
            }
        }
        assert_eq!(b.oracle.mismatches(), 0);
        assert!(views > 0, "no fork child's view was checked");
        let runs = tally.time(Phase::Runs);
        if overlap.is_zero() {
            assert_eq!(runs, 2 * round, "each op ran once a round");
        } else {
            assert!(runs > 4 * round, "{runs} op runs in {round} rounds");
        }
        // Errors here are this host's limits (no second node, no root...),
        // not findings; they must not be every round's.
        assert!(errors.len() < round as usize / 2, "{errors:#?}");
    }
}
#[cfg(test)]
mod one_crew {
    use super::fixture::{anon_slice, Bench};
    use super::*;
    use crate::scenario::pairs::crew::MAX_SLOTS;
    use mmrace_proto::pairs::UserOp;
    use std::time::Duration;

    /// One crew of three threads races slices of pairs and triples in
    /// turn (the worker's crew): each round runs exactly its own ops, one
    /// thread each in slot order, the slot past a pair sits it out, and
    /// the model accepts every page.
    #[test]
    fn one_crew_races_pairs_and_triples_in_turn() {
        if !crate::mm::thp_for_madvised() {
            return;
        }
        let b = Bench::new();
        let mut rng = Rng::new(5);
        let (layout, tally) = (b.layout, &b.tally);
        use UserOp::*;
        let combos = [
            vec![Store, Touch],
            vec![Store, Touch, Dontneed],
            vec![Pagemap, Smaps],
            vec![Store, Fork, ClearRefs],
            vec![Store, Touch],
        ];
        let setup = Setup {
            slots: MAX_SLOTS,
            layout,
            burst: 1,
            sequential: false,
            overlap: std::time::Duration::ZERO,
            windows: None,
        };
        let mut round = 0;
        with_crew_of(setup, &b.res, tally, |crew| {
            assert_eq!(crew.slots(), MAX_SLOTS);
            for ops in &combos {
                let combo = Combo::new(ops.clone());
                let s = anon_slice(&combo, ObjState::Populated, 1, Duration::ZERO);
                for _ in 0..2 {
                    round += 1;
                    let runs = tally.time(Phase::Runs);
                    let out = b.round(&s, crew, round, &mut rng);
                    assert_eq!(out.bad, 0, "{combo}: {:?}", tally.findings());
                    assert_eq!(
                        tally.time(Phase::Runs) - runs,
                        ops.len() as u64,
                        "{combo}: one run per op"
                    );
                }
            }
        });
        // Each op ran once in each round of the slices it was in.
        for u in [Store, Touch, Dontneed, Pagemap, Smaps, Fork, ClearRefs] {
            let want = combos.iter().filter(|c| c.contains(&u)).count() as u64 * 2;
            assert_eq!(tally.calls(u), want, "{u}");
        }
        assert_eq!(b.oracle.mismatches(), 0, "{:?}", b.oracle.summary());
    }
}
#[cfg(test)]
mod states {
    use super::fixture::{anon_slice, Bench};
    use super::*;
    use mmrace_proto::pairs::UserOp;
    use std::time::Duration;

    /// Every start state of anon, with pairs whose paths the states
    /// change (fault, fork, zap, move, migration, split): a clean kernel
    /// leaves nothing the model or the fork child's snapshot refuses.
    #[test]
    fn every_state_is_exactly_modelled_on_a_clean_kernel() {
        if !crate::mm::thp_for_madvised() {
            return;
        }
        let b = Bench::new();
        let mut rng = Rng::new(11);
        use UserOp::*;
        let combos = [
            [Store, Fork],
            [Touch, Fork],
            [Store, Dontneed],
            [Store, Mremap],
            [Store, MigratePages],
            [Touch, MprotectPart],
            [Store, Collapse],
            [Fork, Free],
        ];
        let mut round = 0;
        for state in ObjState::ALL {
            for pair in combos {
                let combo = Combo::new(pair.to_vec());
                let s = anon_slice(&combo, state, 1, Duration::ZERO);
                with_crew(&s, b.layout, &b.res, &b.tally, |crew| {
                    for _ in 0..3 {
                        round += 1;
                        let out = b.round(&s, crew, round, &mut rng);
                        assert_eq!(out.bad, 0, "{combo} {state}: {:?}", b.tally.findings());
                    }
                });
            }
        }
        assert_eq!(b.oracle.mismatches(), 0, "{:?}", b.oracle.summary());
    }
}
