//! The line protocol the guest driver streams and the host runner reads.
//!
//! Every message is one line: [`PREFIX`] followed by a JSON object tagged by
//! `"type"`. The host searches for the prefix anywhere in a line, so a message
//! still parses when kernel output lands in front of it on a shared console;
//! a line that does not parse is skipped, never fatal (the next snapshot
//! follows a second later).

use crate::meets::{MeetsPoint, RunMeets};
use crate::oracle::{Corruption, StallKind};
use crate::results::ScenarioResult;
use crate::spec::RunSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Marks a protocol line. Chosen so no kernel message contains it.
pub const PREFIX: &str = "@@MMRACE@@ ";

/// Bumped when a message changes shape.
pub const WIRE_VERSION: u32 = 5;

/// The [`Msg::Event`] a scenario sends the first time `pmd_race` rises
/// during the run (its `t_ms` is the driver's clock).
pub const EVENT_FIRST_RACE: &str = "first_pmd_race";

/// One probe of the module and whether it attached on this kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeState {
    pub name: String,
    pub attached: bool,
    /// Why it did not attach (errno name or message), empty when attached.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// Messages, in the order a run sends them: `Hello`, `Module`, any number of
/// `Snapshot`, `Event`, `Corruption` and `MeetsProgress`, `Meets` once the
/// scenario ended,
/// then `Result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// The driver started: the run it is running, exactly.
    Hello { wire: u32, spec: Box<RunSpec> },
    /// mmrace.ko is loaded: its version and probes.
    Module {
        version: String,
        probes: Vec<ProbeState>,
    },
    /// Counter values at guest time `t_ms` since the driver started.
    Snapshot {
        t_ms: u64,
        counters: BTreeMap<String, u64>,
        /// The driver's own operation counts per party, cumulative.
        #[serde(default)]
        ops: BTreeMap<String, u64>,
        /// /proc/sys/kernel/tainted at the same moment (None: unreadable).
        #[serde(default)]
        tainted: Option<u64>,
        /// Data-oracle mismatches found so far (the first few are also
        /// sent in full as `Corruption`).
        #[serde(default)]
        mismatches: u64,
    },
    /// The data oracle found a stamp that did not read back as written.
    Corruption(Box<Corruption>),
    /// The driver saw the kernel stall (e.g. an OOM victim that never goes).
    Stall {
        t_ms: u64,
        kind: StallKind,
        detail: String,
    },
    /// Something worth a line in the report (first race seen, a kill...).
    Event {
        t_ms: u64,
        what: String,
        #[serde(default)]
        detail: String,
    },
    /// The scenario's meets so far, every
    /// [`crate::meets::PROGRESS_PERIOD_MS`] while they are counted.
    MeetsProgress(MeetsPoint),
    /// mmrace.ko's meets over the scenario (debugfs `meets`, `ops`), or why
    /// there are none.
    Meets { t_ms: u64, meets: RunMeets },
    /// The scenario ended. `ok == false` means the driver itself failed
    /// (a harness problem, not a kernel finding); `message` says why.
    Result {
        t_ms: u64,
        ok: bool,
        message: String,
        /// The scenario's typed results; None when it failed.
        #[serde(default)]
        data: Option<Box<ScenarioResult>>,
    },
}

/// One protocol line, with the trailing newline.
pub fn encode(msg: &Msg) -> String {
    let json = serde_json::to_string(msg).expect("wire messages always serialize");
    format!("{PREFIX}{json}\n")
}

/// The message in `line`, if it carries one that parses.
pub fn decode(line: &str) -> Option<Msg> {
    let start = line.find(PREFIX)? + PREFIX.len();
    let json = line[start..].trim_end();
    // Kernel output can follow a message on the same line; the JSON object
    // ends at its closing brace, which the deserializer finds itself.
    let mut de = serde_json::Deserializer::from_str(json).into_iter::<Msg>();
    de.next()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Msg {
        Msg::Snapshot {
            t_ms: 1500,
            counters: [("pmd_split".to_string(), 7)].into(),
            ops: [("writer".to_string(), 3)].into(),
            tainted: Some(4096),
            mismatches: 0,
        }
    }

    #[test]
    fn round_trips() {
        let line = encode(&snapshot());
        assert!(line.starts_with(PREFIX) && line.ends_with('\n'));
        assert_eq!(decode(&line), Some(snapshot()));
    }

    #[test]
    fn finds_message_behind_kernel_text() {
        let line = format!(
            "[   12.345678] random: crng init done{}",
            encode(&snapshot())
        );
        assert_eq!(decode(&line), Some(snapshot()));
    }

    #[test]
    fn tolerates_kernel_text_after_message() {
        let line = format!(
            "{}[   13.000000] BUG: kernel NULL pointer dereference",
            encode(&snapshot()).trim_end()
        );
        assert_eq!(decode(&line), Some(snapshot()));
    }

    #[test]
    fn corruption_round_trips() {
        use crate::oracle::{Corruption, Expected, Found, RecentOp, Stamp};
        let s = Stamp {
            region: 1,
            page: 3,
            generation: 9,
        };
        let msg = Msg::Corruption(Box::new(Corruption {
            t_ms: 1234,
            check: "writer-pass".into(),
            region: "thp-race writer".into(),
            vaddr: 0x7000_0000_3000,
            page: 3,
            expected: Expected::Stamp(s),
            found: Found::Garbage {
                words: [1, 2, 3, 4],
                last: 5,
            },
            recent_ops: [(
                "migrate".to_string(),
                vec![RecentOp {
                    t_ms: 1200,
                    op: "migrate".into(),
                    addr: 77,
                }],
            )]
            .into(),
            context: Some("store+split on anon, round 3".into()),
        }));
        let line = encode(&msg);
        assert!(line.contains("\"type\":\"corruption\""), "{line}");
        assert_eq!(decode(&line), Some(msg));
    }

    #[test]
    fn meets_round_trip() {
        let meets = crate::meets::Meets::parse("pmd_split migrate_unmap anon 2 1").unwrap();
        for m in [
            RunMeets::Counted {
                meets,
                ops: vec![],
                dropped: 3,
                sampling: None,
            },
            RunMeets::Off,
            RunMeets::Absent {
                why: "no meets".into(),
            },
        ] {
            let msg = Msg::Meets { t_ms: 9, meets: m };
            assert_eq!(decode(&encode(&msg)), Some(msg));
        }
        let text = "pmd_split migrate_unmap anon 12 1\nmigrate_unmap pmd_split shmem 1 0\nnuma_fault zap_huge_pmd anon 3 0\n";
        let p = crate::meets::Meets::parse(text).unwrap().point(10_000);
        assert_eq!((p.met, p.covered, p.meets), (2, 1, 16));
        let msg = Msg::MeetsProgress(p);
        assert!(encode(&msg).contains("\"type\":\"meets_progress\""));
        assert_eq!(decode(&encode(&msg)), Some(msg));
    }

    #[test]
    fn skips_garbage() {
        assert_eq!(decode("plain kernel line"), None);
        assert_eq!(decode(&format!("{PREFIX}{{\"type\":\"snap")), None);
        assert_eq!(decode(&format!("{PREFIX}{{\"type\":\"nonsense\"}}")), None);
    }
}
