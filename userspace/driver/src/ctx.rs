//! What a running scenario gets: its seed and deadline, a stop flag, per-party
//! operation counters that the streamer reports, and a way to emit events.
//!
//! The driver runs with oom_score_adj -1000 (see [`crate::oom`]) and fork
//! passes that on: a scenario that forks workload processes must call
//! [`crate::oom::make_killable`] in each child, or an OOM in the guest finds
//! nothing it may kill.

use crate::oracle::Oracle;
use crate::output::Output;
use mmrace_proto::wire::Msg;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cumulative operation counts, one per party ("writer", "clear_refs"...).
#[derive(Default)]
pub struct OpRegistry(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

impl OpRegistry {
    /// The counter for `party`, created at zero on first use.
    pub fn get(&self, party: &str) -> Arc<AtomicU64> {
        let mut m = self.0.lock().unwrap();
        m.entry(party.to_string()).or_default().clone()
    }

    /// Current values of every party's counter.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let m = self.0.lock().unwrap();
        m.iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Shared by the scenario's threads, the streamer and the main loop.
pub struct Ctx {
    pub seed: u64,
    pub duration: Duration,
    pub start: Instant,
    pub stop: Arc<AtomicBool>,
    pub ops: OpRegistry,
    pub out: Output,
    /// The data oracle's mailbox and op rings (shared with forked children).
    pub oracle: Arc<Oracle>,
}

impl Ctx {
    pub fn new(seed: u64, duration: Duration, out: Output) -> Self {
        let start = Instant::now();
        Ctx {
            seed,
            duration,
            start,
            stop: Arc::new(AtomicBool::new(false)),
            ops: OpRegistry::default(),
            out,
            // Three small shared mappings; failing that, nothing else in the
            // run could work either.
            oracle: Arc::new(Oracle::new(start).expect("mmap of the oracle's shared pages")),
        }
    }

    /// Milliseconds since the driver started: the time base of every message.
    pub fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// True once the duration is over, someone asked to stop, or the data
    /// oracle found a mismatch: the verdict is decided, and a batch or a
    /// bisection step should not wait for the rest of the duration.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
            || self.start.elapsed() >= self.duration
            || self.oracle.mismatches() > 0
    }

    /// The operation counter of `party`, reported in every snapshot.
    pub fn op(&self, party: &str) -> Arc<AtomicU64> {
        self.ops.get(party)
    }

    /// Records an event for the host's report.
    pub fn event(&self, what: &str, detail: impl Into<String>) {
        self.out.msg(&Msg::Event {
            t_ms: self.elapsed_ms(),
            what: what.to_string(),
            detail: detail.into(),
        });
    }

    /// Reports a stall the driver saw (a kernel problem for the host).
    pub fn stall(&self, kind: mmrace_proto::oracle::StallKind, detail: impl Into<String>) {
        let detail = detail.into();
        self.say(format!("STALL {}: {detail}", kind.class()));
        self.out.msg(&Msg::Stall {
            t_ms: self.elapsed_ms(),
            kind,
            detail,
        });
    }

    /// Sends every data-oracle mismatch found since the last call as a
    /// `Corruption` message (the first few in full; see [`crate::oracle`]).
    pub fn send_corruptions(&self) {
        for c in self.oracle.take_new() {
            self.say(format!("DATA CORRUPTION: {}", c.line()));
            self.out.msg(&Msg::Corruption(Box::new(c)));
        }
    }

    /// A line for the human reading the console.
    pub fn say(&self, text: impl AsRef<str>) {
        self.out.human(text.as_ref());
    }
}
