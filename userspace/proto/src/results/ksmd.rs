//! ksmd's turns in `pairs --sequential` (docs/pairs.md, "ksmd in
//! sequential rounds"): ksmd scans whatever a round's ops do, so in a
//! sequential round it is stopped while an op runs and given a turn of
//! its own after each op.

use serde::{Deserialize, Serialize};

/// What the sequential rounds did with ksmd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KsmdTurns {
    /// Sequential rounds that stopped ksmd for their ops (ksmd ran).
    pub rounds: u64,
    /// ksmd's turns between and after the ops.
    pub turns: u64,
    /// Full scans ksmd finished in its turns.
    pub full_scans: u64,
    /// Turns that ended at the time cap before two full scans.
    pub short: u64,
}

impl KsmdTurns {
    /// The console line; `None` when no round stopped ksmd.
    pub fn line(&self) -> Option<String> {
        if self.rounds == 0 {
            return None;
        }
        Some(format!(
            "pairs ksmd: stopped during the ops of {} sequential rounds; {} turns between ops, \
             {} full scans in them, {} cut short",
            self.rounds, self.turns, self.full_scans, self.short
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_only_when_ksmd_was_stopped_and_json_defaults() {
        assert_eq!(KsmdTurns::default().line(), None);
        let k = KsmdTurns {
            rounds: 2,
            turns: 4,
            full_scans: 9,
            short: 1,
        };
        let line = k.line().unwrap();
        assert!(line.contains("2 sequential rounds") && line.contains("9 full scans"));
        let back: KsmdTurns = serde_json::from_str("{}").unwrap();
        assert_eq!(back, KsmdTurns::default());
    }
}
