//! Collects the driver's protocol messages ([`mmrace_proto::wire`]) from
//! whichever channel carries them: the virtio console in the mmrace guest,
//! or the serial console itself when the driver ran on real hardware with
//! its protocol lines on stdout. A run keeps every snapshot (the last one is
//! what a crashed guest leaves us) but the report only needs the first and
//! the last.

use mmrace_proto::oracle::{Corruption, TaintReport};
use mmrace_proto::results::suite::SuiteResult;
use mmrace_proto::wire::{self, Msg};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Messages {
    pub hello: Option<Msg>,
    pub module: Option<Msg>,
    pub snapshots: Vec<Msg>,
    pub events: Vec<Msg>,
    /// The data oracle's reports, in the order they came.
    pub corruptions: Vec<Corruption>,
    /// Stalls the driver saw (`Msg::Stall`).
    pub stalls: Vec<Msg>,
    pub result: Option<Msg>,
    /// The module's meets over the scenario (`Msg::Meets`).
    pub meets: Option<mmrace_proto::meets::RunMeets>,
    /// The meets so far, as the run went (`Msg::MeetsProgress`).
    pub meets_progress: Vec<mmrace_proto::meets::MeetsPoint>,
    /// Lines that carried the protocol prefix but did not parse: a few are
    /// normal (a kernel line cut into one), many mean a wire version mismatch.
    pub undecodable: usize,
}

/// Counters and ops of one snapshot, borrowed.
pub struct SnapshotView<'a> {
    pub t_ms: u64,
    pub counters: &'a BTreeMap<String, u64>,
    pub ops: &'a BTreeMap<String, u64>,
}

impl Messages {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line of either channel; lines without a message are ignored.
    pub fn feed(&mut self, line: &str) {
        if !line.contains(wire::PREFIX) {
            return;
        }
        let Some(msg) = wire::decode(line) else {
            self.undecodable += 1;
            return;
        };
        match msg {
            Msg::Hello { .. } => {
                self.hello.get_or_insert(msg);
            }
            Msg::Module { .. } => {
                self.module.get_or_insert(msg);
            }
            Msg::Snapshot { .. } => self.snapshots.push(msg),
            Msg::Event { .. } => self.events.push(msg),
            Msg::Corruption(c) => self.corruptions.push(*c),
            Msg::Stall { .. } => self.stalls.push(msg),
            Msg::Result { .. } => {
                self.result.get_or_insert(msg);
            }
            Msg::Meets { meets, .. } => {
                self.meets.get_or_insert(meets);
            }
            Msg::MeetsProgress(p) => self.meets_progress.push(p),
        }
    }

    pub fn first_snapshot(&self) -> Option<&Msg> {
        self.snapshots.first()
    }

    pub fn last_snapshot(&self) -> Option<&Msg> {
        self.snapshots.last()
    }

    /// `(ok, message)` of the driver's Result, if it sent one.
    pub fn outcome(&self) -> Option<(bool, &str)> {
        match &self.result {
            Some(Msg::Result { ok, message, .. }) => Some((*ok, message)),
            _ => None,
        }
    }

    /// Data-oracle mismatches: the most any snapshot counted, or the
    /// reports received if more (a guest that died before its next
    /// snapshot).
    pub fn mismatches(&self) -> u64 {
        let counted = self.snapshots.iter().filter_map(|m| match m {
            Msg::Snapshot { mismatches, .. } => Some(*mismatches),
            _ => None,
        });
        counted
            .max()
            .unwrap_or(0)
            .max(self.corruptions.len() as u64)
    }

    /// The taint oracle over every snapshot.
    pub fn taint(&self) -> TaintReport {
        TaintReport::from_snapshots(self.snapshots.iter().filter_map(|m| match m {
            Msg::Snapshot { t_ms, tainted, .. } => Some((*t_ms, *tainted)),
            _ => None,
        }))
    }

    /// The programs `exec` and `selftests-mm` ran; None for the other
    /// scenarios or without a Result.
    pub fn suite(&self) -> Option<&SuiteResult> {
        match &self.result {
            Some(Msg::Result { data: Some(d), .. }) => d.suite(),
            _ => None,
        }
    }

    /// The latest guest time any message reported: how long the driver ran.
    pub fn guest_elapsed_ms(&self) -> Option<u64> {
        let times = self
            .snapshots
            .iter()
            .chain(&self.events)
            .chain(&self.result)
            .filter_map(msg_time);
        times.max()
    }
}

/// The guest time stamp of a message, for those that carry one.
pub fn msg_time(msg: &Msg) -> Option<u64> {
    match msg {
        Msg::Snapshot { t_ms, .. }
        | Msg::Event { t_ms, .. }
        | Msg::Result { t_ms, .. }
        | Msg::Meets { t_ms, .. } => Some(*t_ms),
        Msg::Corruption(c) => Some(c.t_ms),
        Msg::MeetsProgress(p) => Some(p.t_ms),
        Msg::Stall { t_ms, .. } => Some(*t_ms),
        Msg::Hello { .. } | Msg::Module { .. } => None,
    }
}

/// The counters of a snapshot message (None for other messages).
pub fn snapshot_view(msg: &Msg) -> Option<SnapshotView<'_>> {
    match msg {
        Msg::Snapshot {
            t_ms,
            counters,
            ops,
            ..
        } => Some(SnapshotView {
            t_ms: *t_ms,
            counters,
            ops,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t_ms: u64, v: u64) -> Msg {
        Msg::Snapshot {
            t_ms,
            counters: [("pmd_split".to_string(), v)].into(),
            ops: BTreeMap::new(),
            tainted: Some(12288),
            mismatches: 0,
        }
    }

    #[test]
    fn keeps_messages_by_kind() {
        let mut m = Messages::new();
        m.feed("[    3.0] plain kernel line");
        m.feed(&wire::encode(&snap(1000, 1)));
        m.feed(&format!("[ 4.0] noise {}", wire::encode(&snap(2000, 5))));
        m.feed(&format!("{}{{\"type\":\"snap", wire::PREFIX));
        m.feed(&wire::encode(&Msg::Result {
            t_ms: 2500,
            ok: true,
            message: "done".into(),
            data: None,
        }));
        assert_eq!(m.snapshots.len(), 2);
        assert_eq!(m.undecodable, 1);
        assert_eq!(m.outcome(), Some((true, "done")));
        assert_eq!(m.guest_elapsed_ms(), Some(2500));
        let last = snapshot_view(m.last_snapshot().unwrap()).unwrap();
        assert_eq!((last.t_ms, last.counters["pmd_split"]), (2000, 5));
    }

    #[test]
    fn nothing_received_means_no_outcome() {
        let m = Messages::new();
        assert_eq!(m.outcome(), None);
        assert_eq!(m.guest_elapsed_ms(), None);
    }
}
