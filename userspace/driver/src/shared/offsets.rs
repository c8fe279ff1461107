//! Measured start offsets for the racer rounds (`--offsets fuzzy`), after
//! LTP's fuzzy sync (tst_fuzzy_sync.h, Richard Palethorpe).
//!
//! Every member of a round times its own operation (its syscalls) from the
//! moment it starts to the moment it returns. The leader keeps, per round
//! kind, running means and deviations of the leader's time (`sa`), a
//! follower's time (`sb`) and the skew between their starts. Once a kind
//! has [`SAMPLING`] rounds behind it, each of its rounds delays one side by
//! `1.1 * (U * (sa + sb) - sb)` for U uniform in [0, 1): a positive delay
//! holds a follower back by up to the leader's whole operation, a negative
//! one the leader by up to a follower's, so the two starts sweep each
//! other's windows from both sides. Delays are busy loops (no PAUSE, which
//! leaves TCG's translated code), converted from nanoseconds with a
//! calibration against the clock that every measured delay refines.
//!
//! The statistics live in a shared page ([`Book`]) so they survive the
//! writer's kill and restart (the next leader continues from them) and the
//! driver reads them for the report. A book holds a fixed number of round
//! kinds; what a kind is (a racer op, an op pair) is the caller's business.

use super::slots::SharedSlots;
use mmrace_proto::results::thp_race::{OffsetKind, Offsets, Stat};
use mmrace_proto::spec::thp_race::OffsetMode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Rounds a kind only measures before its delays start (LTP's sampling
/// period, much shortened: under TCG on a loaded host a round can take
/// tens of milliseconds, and the kinds share the rounds; with alpha 1/4
/// the means have mostly settled after 8 samples).
pub const SAMPLING: u64 = 8;
/// No delay longer than this (a syscall preempted for a time slice must
/// not turn into millisecond spins).
pub const MAX_DELAY_NS: f64 = 500_000.0;
/// Busy loops timed for the first calibration.
const CALIBRATION_LOOPS: u64 = 100_000;
/// Measured delays shorter than this many loops do not refine the
/// calibration (clock overhead dominates).
const MIN_LOOPS_FOR_CALIBRATION: u64 = 512;

/// A delay without PAUSE: a counted busy loop.
pub fn busy(n: u64) {
    for i in 0..n {
        std::hint::black_box(i);
    }
}

/// Nanoseconds per [`busy`] iteration on this CPU now.
pub fn calibrate() -> f64 {
    let t = Instant::now();
    busy(CALIBRATION_LOOPS);
    (t.elapsed().as_nanos() as f64 / CALIBRATION_LOOPS as f64).max(1e-3)
}

/// One kind's state, as the leader works with it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KindState {
    pub rounds: u64,
    pub sampling_rounds: u64,
    pub leader: Stat,
    pub follower: Stat,
    pub skew: Stat,
    pub delay_min: f64,
    pub delay_max: f64,
    pub leader_delayed: u64,
    pub follower_delayed: u64,
}

/// f64 fields of a KindState in the shared page, in this order.
const FIELDS: usize = 12;

impl KindState {
    fn to_slots(self) -> [u64; FIELDS] {
        [
            self.rounds,
            self.sampling_rounds,
            self.leader.avg.to_bits(),
            self.leader.dev.to_bits(),
            self.follower.avg.to_bits(),
            self.follower.dev.to_bits(),
            self.skew.avg.to_bits(),
            self.skew.dev.to_bits(),
            self.delay_min.to_bits(),
            self.delay_max.to_bits(),
            self.leader_delayed,
            self.follower_delayed,
        ]
    }

    fn from_slots(s: [u64; FIELDS]) -> KindState {
        let f = f64::from_bits;
        KindState {
            rounds: s[0],
            sampling_rounds: s[1],
            leader: Stat {
                avg: f(s[2]),
                dev: f(s[3]),
            },
            follower: Stat {
                avg: f(s[4]),
                dev: f(s[5]),
            },
            skew: Stat {
                avg: f(s[6]),
                dev: f(s[7]),
            },
            delay_min: f(s[8]),
            delay_max: f(s[9]),
            leader_delayed: s[10],
            follower_delayed: s[11],
        }
    }

    /// The window the next delay is drawn from, in ns: [-sb, +sa] times 1.1
    /// (LTP adds 10 %: the measured times slightly underestimate the
    /// windows), each side capped at [`MAX_DELAY_NS`].
    pub fn window(&self) -> (f64, f64) {
        self.window_capped(MAX_DELAY_NS)
    }

    /// [`KindState::window`] with each side capped at `cap_ns` instead.
    pub fn window_capped(&self, cap_ns: f64) -> (f64, f64) {
        let cap = |x: f64| (1.1 * x).clamp(0.0, cap_ns);
        (-cap(self.follower.avg), cap(self.leader.avg))
    }

    /// The delay for the next round, in ns (negative: hold the leader
    /// back), from a uniform `u` in [0, 1); 0 while still sampling.
    pub fn next_delay(&self, u: f64) -> f64 {
        self.next_delay_capped(u, MAX_DELAY_NS)
    }

    /// [`KindState::next_delay`] within [`KindState::window_capped`].
    pub fn next_delay_capped(&self, u: f64, cap_ns: f64) -> f64 {
        if self.rounds < SAMPLING {
            return 0.0;
        }
        let (lo, hi) = self.window_capped(cap_ns);
        lo + u * (hi - lo)
    }

    /// Folds in one completed round: the leader's and the measured
    /// follower's operation times, the follower's start minus the
    /// leader's, and the delay that was applied.
    pub fn record(&mut self, leader_ns: f64, follower_ns: f64, skew_ns: f64, delay_ns: f64) {
        let first = self.rounds == 0;
        self.leader.update(leader_ns, first);
        self.follower.update(follower_ns, first);
        self.skew.update(skew_ns, first);
        if self.rounds < SAMPLING {
            self.sampling_rounds += 1;
        } else {
            if self.leader_delayed + self.follower_delayed == 0 {
                (self.delay_min, self.delay_max) = (delay_ns, delay_ns);
            }
            self.delay_min = self.delay_min.min(delay_ns);
            self.delay_max = self.delay_max.max(delay_ns);
            if delay_ns < 0.0 {
                self.leader_delayed += 1;
            } else {
                self.follower_delayed += 1;
            }
        }
        self.rounds += 1;
    }

    fn report(&self, kind: String) -> OffsetKind {
        let (lo, hi) = self.window();
        OffsetKind {
            kind,
            rounds: self.rounds,
            sampling_rounds: self.sampling_rounds,
            leader_ns: self.leader,
            follower_ns: self.follower,
            start_skew_ns: self.skew,
            delay_range_ns: [lo.round() as i64, hi.round() as i64],
            delay_min_ns: self.delay_min.round() as i64,
            delay_max_ns: self.delay_max.round() as i64,
            leader_delayed: self.leader_delayed,
            follower_delayed: self.follower_delayed,
        }
    }
}

/// The offsets' shared page: `kinds` kind states, then ns per loop.
#[derive(Clone)]
pub struct Book {
    slots: Arc<SharedSlots>,
    kinds: usize,
}

impl std::fmt::Debug for Book {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Book")
    }
}

impl PartialEq for Book {
    fn eq(&self, other: &Book) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
    }
}
impl Eq for Book {}

impl Book {
    /// A book for round kinds `0..kinds`.
    pub fn new(kinds: usize) -> anyhow::Result<Book> {
        Ok(Book {
            slots: Arc::new(SharedSlots::new(kinds * FIELDS + 1)?),
            kinds,
        })
    }

    /// How many round kinds it holds.
    pub fn kinds(&self) -> usize {
        self.kinds
    }

    pub fn load(&self, k: usize) -> KindState {
        let mut s = [0u64; FIELDS];
        for (i, v) in s.iter_mut().enumerate() {
            *v = self.slots.get(k * FIELDS + i).load(Ordering::Relaxed);
        }
        KindState::from_slots(s)
    }

    pub fn store(&self, k: usize, st: &KindState) {
        for (i, v) in st.to_slots().into_iter().enumerate() {
            self.slots.get(k * FIELDS + i).store(v, Ordering::Relaxed);
        }
    }

    /// Nanoseconds per busy loop, or `None` before the first calibration.
    pub fn ns_per_loop(&self) -> Option<f64> {
        let bits = self.slots.get(self.kinds * FIELDS).load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }

    pub fn set_ns_per_loop(&self, v: f64) {
        self.slots
            .get(self.kinds * FIELDS)
            .store(v.to_bits(), Ordering::Relaxed);
    }

    /// Refines the calibration with a measured delay of `loops` loops.
    pub fn observe_delay(&self, loops: u64, ns: f64) {
        if loops < MIN_LOOPS_FOR_CALIBRATION {
            return;
        }
        let sample = ns / loops as f64;
        let v = self
            .ns_per_loop()
            .map_or(sample, |old| old + Stat::ALPHA * (sample - old));
        self.set_ns_per_loop(v);
    }

    /// Busy loops for `ns` nanoseconds.
    pub fn loops_for(&self, ns: f64) -> u64 {
        let per = self.ns_per_loop().unwrap_or(1.0);
        (ns.abs() / per).round() as u64
    }

    /// The typed report: only kinds that ran, each named by `name`.
    pub fn report(&self, mode: OffsetMode, name: impl Fn(usize) -> String) -> Offsets {
        Offsets {
            mode,
            ns_per_loop: self.ns_per_loop().unwrap_or(0.0),
            sampling: SAMPLING,
            kinds: (0..self.kinds)
                .map(|k| (k, self.load(k)))
                .filter(|(_, s)| s.rounds > 0)
                .map(|(k, s)| s.report(name(k)))
                .collect(),
        }
    }
}

/// The report as lines for the console: per kind, the measured windows
/// (mean ± deviation), the delay range and the delays applied.
pub fn lines(o: &Offsets) -> Vec<String> {
    let us = |x: f64| x / 1000.0;
    let mut v = vec![format!(
        "offsets {}: {:.3} ns per busy loop, {} sampling rounds per kind",
        o.mode.word(),
        o.ns_per_loop,
        o.sampling
    )];
    for k in &o.kinds {
        v.push(format!(
            "offsets {:<8} {:>7} rounds: leader {:.1}±{:.1} us, follower {:.1}±{:.1} us, \
             start skew {:.1}±{:.1} us; delay range [{:.1}, {:.1}] us, applied [{:.1}, {:.1}] us, \
             held back: leader {} follower {}",
            k.kind,
            k.rounds,
            us(k.leader_ns.avg),
            us(k.leader_ns.dev),
            us(k.follower_ns.avg),
            us(k.follower_ns.dev),
            us(k.start_skew_ns.avg),
            us(k.start_skew_ns.dev),
            us(k.delay_range_ns[0] as f64),
            us(k.delay_range_ns[1] as f64),
            us(k.delay_min_ns as f64),
            us(k.delay_max_ns as f64),
            k.leader_delayed,
            k.follower_delayed
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_settles_on_a_constant_and_tracks_spread() {
        let mut s = Stat::default();
        s.update(100.0, true);
        for _ in 0..50 {
            s.update(100.0, false);
        }
        assert_eq!((s.avg, s.dev), (100.0, 0.0));
        for i in 0..200 {
            s.update(if i % 2 == 0 { 80.0 } else { 120.0 }, false);
        }
        assert!((s.avg - 100.0).abs() < 15.0, "{s:?}");
        assert!(s.dev > 10.0 && s.dev < 30.0, "{s:?}");
        assert!(s.dev_ratio() > 0.1);
    }

    #[test]
    fn delays_wait_for_sampling_then_span_both_windows() {
        let mut k = KindState::default();
        for _ in 0..SAMPLING {
            assert_eq!(k.next_delay(0.9), 0.0);
            k.record(1000.0, 400.0, 5.0, 0.0);
        }
        assert_eq!(k.sampling_rounds, SAMPLING);
        let (lo, hi) = k.window();
        assert!(
            (lo + 440.0).abs() < 1e-6 && (hi - 1100.0).abs() < 1e-6,
            "{lo} {hi}"
        );
        assert!((k.next_delay(0.0) - lo).abs() < 1e-6);
        assert!((k.next_delay(0.999_999) - hi).abs() < 0.01);
        // The window's zero is where U = sb / (sa + sb).
        assert!(k.next_delay(440.0 / 1540.0).abs() < 1e-6);
        k.record(1000.0, 400.0, 0.0, -300.0);
        k.record(1000.0, 400.0, 0.0, 700.0);
        assert_eq!((k.leader_delayed, k.follower_delayed), (1, 1));
        assert_eq!((k.delay_min, k.delay_max), (-300.0, 700.0));
        let r = k.report("dontneed".into());
        assert_eq!(r.kind, "dontneed");
        assert_eq!(r.delay_range_ns, [-440, 1100]);
        assert_eq!(r.rounds, SAMPLING + 2);
    }

    #[test]
    fn window_is_capped() {
        let mut k = KindState::default();
        k.record(1e9, 5e8, 0.0, 0.0);
        assert_eq!(k.window(), (-MAX_DELAY_NS, MAX_DELAY_NS));
    }

    #[test]
    fn book_round_trips_through_a_child() {
        let book = Book::new(3).unwrap();
        assert_eq!(book.kinds(), 3);
        let mut k = KindState::default();
        k.record(10.0, 20.0, 3.0, 0.0);
        book.store(2, &k);
        book.set_ns_per_loop(0.5);
        assert_eq!(book.load(2), k);
        assert_eq!(book.loops_for(-100.0), 200);
        book.observe_delay(1000, 1000.0); // 1 ns per loop measured
        assert!((book.ns_per_loop().unwrap() - 0.625).abs() < 1e-9);
        book.observe_delay(10, 1e6); // too short to count
        assert!((book.ns_per_loop().unwrap() - 0.625).abs() < 1e-9);
        let r = book.report(OffsetMode::Fuzzy, |k| format!("kind{k}"));
        assert_eq!(r.kinds.len(), 1);
        assert_eq!(r.kinds[0].kind, "kind2");
        assert!(calibrate() > 0.0);
    }
}
