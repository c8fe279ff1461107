//! One round's bookkeeping, from the driver's observations: when the OOM
//! killer fired, how long the victim took to be gone, what the writers and
//! the disk got done, and whether a writer was stuck. Pure logic: the
//! observations come in as [`Sample`]s, so the tests feed made-up ones.
//!
//! A round's time line, all in milliseconds since the victim was forked:
//!
//! ```text
//! fork   writers start   consumer reads /dev/zero   OOM kill     victim gone
//!  0 ........ ~2000 ............. pressure ............ kill ........ gone
//!                                 |<------------ OOM window ------------>|
//! ```
//!
//! The OOM window runs from the memory consumer's read of /dev/zero (memory
//! starts running out) until the victim is gone (every thread exited, the
//! process waitable). A writer is stuck when, inside the window and before
//! the kill, it completed no write for `stuck_ms` or longer.

pub use mmrace_proto::results::oom_stall::{Outcome, RoundResult, Summary};
use std::fmt::Write;

/// What the driver saw at one moment of a round.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Milliseconds since the round started.
    pub t_ms: u64,
    /// Bytes each writer's write() calls completed so far this round.
    pub written: [u64; 2],
    /// Bytes the block device has written since the round started.
    pub disk: u64,
    /// /proc/vmstat oom_kill, minus its value at the round's start.
    pub oom_kills: u64,
    /// mmrace's oom_reaper_reaped, minus its value at the round's start.
    pub reaped: u64,
    /// When the consumer began reading /dev/zero, if it has (ms since the
    /// round started).
    pub pressure_ms: Option<u64>,
    /// The victim has exited (is waitable).
    pub gone: bool,
    /// The lock holder's completed reads (cumulative; 0 without one).
    pub holder_reads: u64,
    /// The holder is inside a read (holding the inode lock).
    pub holder_in_read: bool,
    /// The state letter of the victim's blocker thread (`D`: waiting for
    /// the inode lock), read when the kill is first seen.
    pub blocker_state: Option<char>,
}

/// Accumulates a round's samples.
#[derive(Debug, Clone)]
pub struct RoundTracker {
    stuck_ms: u64,
    last: Option<Sample>,
    first: Option<Sample>,
    pressure_ms: Option<u64>,
    kill_ms: Option<u64>,
    gone_ms: Option<u64>,
    reaped: bool,
    /// Per writer: when its byte count last rose (or the window began).
    progress_ms: [u64; 2],
    max_gap_ms: u64,
    /// Writer bytes and disk bytes when the window began.
    at_pressure: Option<([u64; 2], u64)>,
    /// Disk bytes when the victim was gone.
    disk_at_gone: Option<u64>,
    reap_ms: Option<u64>,
    holder_reads_at_reap: u64,
    holder_progress_ms: Option<u64>,
    holder_in_read_at_kill: Option<bool>,
    blocker_state_at_kill: Option<char>,
}

impl RoundTracker {
    pub fn new(stuck_ms: u64) -> Self {
        RoundTracker {
            stuck_ms,
            last: None,
            first: None,
            pressure_ms: None,
            kill_ms: None,
            gone_ms: None,
            reaped: false,
            progress_ms: [0; 2],
            max_gap_ms: 0,
            at_pressure: None,
            disk_at_gone: None,
            reap_ms: None,
            holder_reads_at_reap: 0,
            holder_progress_ms: None,
            holder_in_read_at_kill: None,
            blocker_state_at_kill: None,
        }
    }

    pub fn kill_ms(&self) -> Option<u64> {
        self.kill_ms
    }

    pub fn gone(&self) -> bool {
        self.gone_ms.is_some()
    }

    /// Takes one sample (samples come in time order).
    pub fn observe(&mut self, s: &Sample) {
        if self.first.is_none() {
            self.first = Some(s.clone());
        }
        let prev = self.last.clone().unwrap_or_else(|| s.clone());
        if self.pressure_ms.is_none() {
            if let Some(p) = s.pressure_ms {
                self.pressure_ms = Some(p);
                // The values at the first sample that knows of the pressure:
                // at most one poll interval late.
                self.at_pressure = Some((prev.written, prev.disk));
                self.progress_ms = [p; 2];
            }
        }
        if self.kill_ms.is_none() && s.oom_kills > 0 {
            self.kill_ms = Some(s.t_ms);
            self.holder_in_read_at_kill = Some(s.holder_in_read);
            self.blocker_state_at_kill = s.blocker_state;
        }
        if s.reaped > 0 {
            self.reaped = true;
            if self.reap_ms.is_none() {
                self.reap_ms = Some(s.t_ms);
                self.holder_reads_at_reap = s.holder_reads;
            }
        }
        if self.reap_ms.is_some()
            && self.holder_progress_ms.is_none()
            && s.holder_reads > self.holder_reads_at_reap
        {
            self.holder_progress_ms = Some(s.t_ms);
        }
        // Writer gaps: inside the window, until the kill is seen (a killed
        // writer is dying, not stuck).
        if self.pressure_ms.is_some() && (self.kill_ms.is_none() || self.kill_ms == Some(s.t_ms)) {
            for w in 0..2 {
                if s.written[w] > prev.written[w] {
                    self.progress_ms[w] = s.t_ms;
                } else {
                    let gap = s.t_ms.saturating_sub(self.progress_ms[w]);
                    self.max_gap_ms = self.max_gap_ms.max(gap);
                }
            }
        }
        if s.gone && self.gone_ms.is_none() {
            self.gone_ms = Some(s.t_ms);
            self.disk_at_gone = Some(s.disk);
        }
        self.last = Some(s.clone());
    }

    /// The round's row. `outcome` is decided by the caller (it knows how
    /// the victim ended); `buffer_bytes`, `writer_errors`, `writer_errno`
    /// and `exit` come from the victim.
    pub fn finish(&self, round: u32, outcome: Outcome, victim: VictimReport) -> RoundResult {
        let last = self.last.clone().unwrap_or_default();
        let written: u64 = last.written.iter().sum();
        let (written_window, disk_window) = match self.at_pressure {
            Some((w, d)) => (
                written.saturating_sub(w.iter().sum()),
                self.disk_at_gone.unwrap_or(last.disk).saturating_sub(d),
            ),
            None => (0, 0),
        };
        RoundResult {
            round,
            outcome,
            duration_ms: self.gone_ms.unwrap_or(last.t_ms),
            pressure_ms: self.pressure_ms,
            kill_ms: self.kill_ms,
            pressure_to_kill_ms: self
                .kill_ms
                .zip(self.pressure_ms)
                .map(|(k, p)| k.saturating_sub(p)),
            kill_to_gone_ms: self
                .kill_ms
                .zip(self.gone_ms)
                .map(|(k, g)| g.saturating_sub(k)),
            reaped: self.reaped,
            kill_to_reap_ms: self
                .kill_ms
                .zip(self.reap_ms)
                .map(|(k, r)| r.saturating_sub(k)),
            reap_to_holder_ms: self
                .reap_ms
                .zip(self.holder_progress_ms)
                .map(|(r, p)| p.saturating_sub(r)),
            holder_in_read_at_kill: self.holder_in_read_at_kill,
            blocker_state_at_kill: self.blocker_state_at_kill,
            records: None,
            written_bytes: written,
            written_window_bytes: written_window,
            disk_bytes: last.disk,
            disk_window_bytes: disk_window,
            writer_gap_ms: self.max_gap_ms,
            stuck: self.pressure_ms.is_some() && self.max_gap_ms >= self.stuck_ms,
            buffer_bytes: victim.buffer_bytes,
            writer_errors: victim.writer_errors,
            writer_errno: victim.writer_errno,
            exit: victim.exit,
        }
    }
}

/// What the victim itself reported (through the shared page) and how it
/// ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VictimReport {
    pub buffer_bytes: u64,
    pub writer_errors: u64,
    pub writer_errno: i32,
    pub exit: String,
}

/// The outcome of a round whose victim is gone: an OOM kill if it died of
/// SIGKILL and vmstat oom_kill moved, unless the driver itself had killed
/// it first (`driver_kill`: why).
pub fn outcome(
    killed_by_sigkill: bool,
    oom_kill_seen: bool,
    driver_kill: Option<Outcome>,
) -> Outcome {
    match (driver_kill, killed_by_sigkill, oom_kill_seen) {
        (_, true, true) => Outcome::OomKill,
        (Some(why), _, _) => why,
        (None, true, false) => Outcome::KilledOther,
        (None, false, _) => Outcome::Exited,
    }
}

const MIB: f64 = 1048576.0;

fn secs(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| format!("{:.1}", ms as f64 / 1000.0))
}

fn millis(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| ms.to_string())
}

/// The round table, one header line and one line per round:
///
/// - `kill_s`: fork until the OOM kill; `press_s`: until the consumer's
///   read of /dev/zero began; `p2k_s`: from that read to the kill;
/// - `gone_ms`: kill until the victim was gone; `reaped`: the OOM reaper
///   finished a pass over its mm (it waits 2 s for a victim to exit alone);
/// - `wr_MiB`/`win_MiB`: bytes the writers' write() calls completed in the
///   round / in the OOM window; `disk_MiB`/`dwin_MiB`: the same for bytes
///   the disk wrote;
/// - `gap_ms`: a writer's longest stretch without a completed write inside
///   the window before the kill; `stuck` when that reached `--stuck-ms`;
/// - `dep`: the victim's blocker thread's state at the kill (`D`: asleep
///   on the inode lock the holder keeps while it waits for memory: the
///   dependency formed); `k2r_ms`: kill until the reaper's pass was seen;
///   `r2h_ms`: from there until the lock holder completed its read;
/// - `rec`: the round's file records checked (`ok`, `BAD`, `-` not checked).
pub fn table(rounds: &[RoundResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5} {:<12} {:>6} {:>7} {:>6} {:>7} {:>3} {:>6} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>7} {:>5} {:>4}",
        "round",
        "outcome",
        "kill_s",
        "press_s",
        "p2k_s",
        "gone_ms",
        "dep",
        "reaped",
        "k2r_ms",
        "r2h_ms",
        "wr_MiB",
        "win_MiB",
        "disk_MiB",
        "dwin_MiB",
        "gap_ms",
        "stuck",
        "rec"
    );
    for r in rounds {
        let _ = writeln!(
            out,
            "{:>5} {:<12} {:>6} {:>7} {:>6} {:>7} {:>3} {:>6} {:>6} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>5} {:>4}",
            r.round,
            r.outcome.label(),
            secs(r.kill_ms),
            secs(r.pressure_ms),
            secs(r.pressure_to_kill_ms),
            millis(r.kill_to_gone_ms),
            r.blocker_state_at_kill.map_or_else(|| "-".into(), |c| c.to_string()),
            if r.reaped { "yes" } else { "no" },
            millis(r.kill_to_reap_ms),
            millis(r.reap_to_holder_ms),
            r.written_bytes as f64 / MIB,
            r.written_window_bytes as f64 / MIB,
            r.disk_bytes as f64 / MIB,
            r.disk_window_bytes as f64 / MIB,
            r.writer_gap_ms,
            if r.stuck { "YES" } else { "no" },
            match &r.records {
                None => "-",
                Some(c) if c.mismatches > 0 => "BAD",
                Some(_) => "ok",
            }
        );
    }
    out
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len().checked_sub(1)? / 2).copied()
}

pub fn summary(rounds: &[RoundResult]) -> Summary {
    let oom: Vec<&RoundResult> = rounds
        .iter()
        .filter(|r| r.outcome == Outcome::OomKill)
        .collect();
    let kills: Vec<u64> = oom.iter().filter_map(|r| r.kill_ms).collect();
    let gones: Vec<u64> = oom.iter().filter_map(|r| r.kill_to_gone_ms).collect();
    Summary {
        rounds: rounds.len(),
        oom_kills: oom.len(),
        stuck_rounds: rounds.iter().filter(|r| r.stuck).count(),
        not_gone: rounds
            .iter()
            .filter(|r| r.outcome == Outcome::NotGone)
            .count(),
        kill_ms_median: median(kills.clone()),
        kill_ms_max: kills.iter().max().copied(),
        kill_to_gone_ms_median: median(gones.clone()),
        kill_to_gone_ms_max: gones.iter().max().copied(),
        written_bytes: rounds.iter().map(|r| r.written_bytes).sum(),
        written_window_bytes: rounds.iter().map(|r| r.written_window_bytes).sum(),
        disk_bytes: rounds.iter().map(|r| r.disk_bytes).sum(),
        disk_window_bytes: rounds.iter().map(|r| r.disk_window_bytes).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn s(t_ms: u64, written: [u64; 2], disk: u64) -> Sample {
        Sample {
            t_ms,
            written,
            disk,
            ..Default::default()
        }
    }

    /// A textbook round: writers from 2 s, pressure at 5 s, kill at 9 s,
    /// gone at 9.4 s.
    fn textbook(stuck_ms: u64, stall_writer_1_from: Option<u64>) -> RoundTracker {
        let mut t = RoundTracker::new(stuck_ms);
        let mut w = [0u64; 2];
        let mut disk = 0;
        for step in 0..=94u64 {
            let ms = step * 100;
            if ms >= 2000 {
                w[0] += MB;
                if stall_writer_1_from.is_none_or(|from| ms < from) {
                    w[1] += MB;
                }
                disk += MB / 2;
            }
            let mut x = s(ms, w, disk);
            x.pressure_ms = (ms >= 5000).then_some(4950);
            x.oom_kills = u64::from(ms >= 9000);
            x.reaped = u64::from(ms >= 9300);
            x.gone = ms >= 9400;
            t.observe(&x);
        }
        t
    }

    fn victim() -> VictimReport {
        VictimReport {
            buffer_bytes: 2048 * MB,
            exit: "killed by signal 9".into(),
            ..Default::default()
        }
    }

    #[test]
    fn textbook_round() {
        let t = textbook(5000, None);
        let r = t.finish(1, Outcome::OomKill, victim());
        assert_eq!(r.pressure_ms, Some(4950));
        assert_eq!(r.kill_ms, Some(9000));
        assert_eq!(r.pressure_to_kill_ms, Some(4050));
        assert_eq!(r.kill_to_gone_ms, Some(400));
        assert_eq!(r.duration_ms, 9400);
        assert!(r.reaped);
        // 75 steps from 2.0 s to 9.4 s, 2 MiB each.
        assert_eq!(r.written_bytes, 75 * 2 * MB);
        // Window values start at the sample before the first one that saw
        // the pressure (4.9 s): 45 steps from 5.0 to 9.4 s.
        assert_eq!(r.written_window_bytes, 45 * 2 * MB);
        assert_eq!(r.disk_bytes, 75 * MB / 2);
        assert_eq!(r.disk_window_bytes, 45 * MB / 2);
        assert_eq!(r.writer_gap_ms, 0);
        assert!(!r.stuck);
    }

    #[test]
    fn dependency_times_kill_to_reap_to_holder() {
        let mut t = RoundTracker::new(5000);
        let at = |t_ms, oom_kills, reaped, holder_reads, in_read, state| Sample {
            t_ms,
            oom_kills,
            reaped,
            holder_reads,
            holder_in_read: in_read,
            blocker_state: state,
            pressure_ms: Some(1000),
            ..Default::default()
        };
        t.observe(&at(0, 0, 0, 3, false, None));
        t.observe(&at(1000, 0, 0, 4, true, None));
        t.observe(&at(5000, 1, 0, 4, true, Some('D')));
        t.observe(&at(7100, 1, 1, 4, true, None));
        t.observe(&at(7500, 1, 1, 4, true, None));
        t.observe(&at(7900, 1, 1, 5, false, None));
        let mut g = at(8000, 1, 1, 5, false, None);
        g.gone = true;
        t.observe(&g);
        let r = t.finish(1, Outcome::OomKill, victim());
        assert_eq!(r.holder_in_read_at_kill, Some(true));
        assert_eq!(r.blocker_state_at_kill, Some('D'));
        assert_eq!(r.kill_to_reap_ms, Some(2100));
        assert_eq!(r.reap_to_holder_ms, Some(800));
        assert_eq!(r.kill_to_gone_ms, Some(3000));
    }

    #[test]
    fn stalled_writer_is_stuck_only_past_the_threshold() {
        // Writer 1 stops at 6 s; the kill is seen at 9 s: a 3 s gap.
        let t = textbook(5000, Some(6000));
        let r = t.finish(1, Outcome::OomKill, victim());
        assert_eq!(r.writer_gap_ms, 3100);
        assert!(!r.stuck);
        let r = textbook(3000, Some(6000)).finish(1, Outcome::OomKill, victim());
        assert!(r.stuck);
    }

    #[test]
    fn gap_counts_from_the_window_start_and_stops_at_the_kill() {
        // Writer 1 never writes; the window starts at 4.95 s; the kill is
        // seen at 9 s: the gap is 4050 ms, not 9000 (and not 9400: after
        // the kill a writer is dying, not stuck).
        let r = textbook(5000, Some(0)).finish(1, Outcome::OomKill, victim());
        assert_eq!(r.writer_gap_ms, 4050);
    }

    #[test]
    fn round_without_pressure_has_no_window() {
        let mut t = RoundTracker::new(1000);
        t.observe(&s(0, [0, 0], 0));
        let mut x = s(8000, [0, 0], 0);
        x.gone = true;
        t.observe(&x);
        let r = t.finish(2, Outcome::Exited, VictimReport::default());
        assert_eq!(
            (r.pressure_ms, r.kill_ms, r.kill_to_gone_ms),
            (None, None, None)
        );
        assert_eq!((r.written_window_bytes, r.writer_gap_ms), (0, 0));
        assert!(!r.stuck);
        assert_eq!(r.duration_ms, 8000);
    }

    #[test]
    fn outcomes() {
        use Outcome::*;
        assert_eq!(outcome(true, true, None), OomKill);
        // The OOM killer got there first even though the driver also killed.
        assert_eq!(outcome(true, true, Some(Stopped)), OomKill);
        assert_eq!(outcome(true, false, Some(Stopped)), Stopped);
        assert_eq!(outcome(true, false, Some(NoOom)), NoOom);
        assert_eq!(outcome(true, false, None), KilledOther);
        assert_eq!(outcome(false, false, None), Exited);
    }

    #[test]
    fn table_has_a_header_and_a_line_per_round() {
        let r1 = textbook(5000, None).finish(1, Outcome::OomKill, victim());
        let r2 = textbook(3000, Some(6000)).finish(2, Outcome::OomKill, victim());
        let text = table(&[r1, r2]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("round outcome"), "{}", lines[0]);
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "1", "oom-kill", "9.0", "5.0", "4.0", "400", "-", "yes", "300", "-", "150.0",
                "90.0", "37.5", "22.5", "0", "no", "-"
            ]
        );
        assert!(lines[2].ends_with("YES    -"), "{}", lines[2]);
        // Every line has the header's column count.
        assert!(lines.iter().all(|l| l.split_whitespace().count() == 17));
    }

    #[test]
    fn summary_counts_oom_rounds_only_for_times() {
        let a = textbook(5000, None).finish(1, Outcome::OomKill, victim());
        let mut b = a.clone();
        b.round = 2;
        b.kill_ms = Some(12000);
        b.kill_to_gone_ms = Some(900);
        let mut c = a.clone();
        c.round = 3;
        c.outcome = Outcome::Stopped;
        c.kill_ms = None;
        c.kill_to_gone_ms = None;
        let sum = summary(&[a.clone(), b, c]);
        assert_eq!((sum.rounds, sum.oom_kills, sum.stuck_rounds), (3, 2, 0));
        assert_eq!(
            (sum.kill_ms_median, sum.kill_ms_max),
            (Some(9000), Some(12000))
        );
        assert_eq!(
            (sum.kill_to_gone_ms_median, sum.kill_to_gone_ms_max),
            (Some(400), Some(900))
        );
        assert_eq!(sum.written_bytes, 3 * a.written_bytes);
        assert_eq!(summary(&[]).kill_ms_median, None);
    }
}
