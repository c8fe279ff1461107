//! The streamer: a thread that sends a counter snapshot every interval while
//! the scenario runs, so the host sees progress (and the last values before
//! a crash), and prints a compact rate line for the human on the console.

use crate::counters;
use crate::ctx::Ctx;
use mmrace_proto::wire::Msg;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One reading of the counters and the scenario's op counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub t_ms: u64,
    pub counters: BTreeMap<String, u64>,
    pub ops: BTreeMap<String, u64>,
    pub tainted: Option<u64>,
}

/// Reads the counters (empty if they cannot be read: the ops still matter),
/// the op counts and the taint mask, and sends them as a Snapshot, after
/// any data-oracle mismatches found since the last one.
pub fn send_snapshot(ctx: &Ctx, warned: &AtomicBool) -> Reading {
    let counters = counters::read().unwrap_or_else(|e| {
        if !warned.swap(true, Ordering::Relaxed) {
            ctx.say(format!(
                "cannot read counters, snapshots carry ops only: {e:#}"
            ));
        }
        BTreeMap::new()
    });
    ctx.send_corruptions();
    let r = Reading {
        t_ms: ctx.elapsed_ms(),
        counters,
        ops: ctx.ops.snapshot(),
        tainted: crate::oracle::taint::read(),
    };
    ctx.out.msg(&Msg::Snapshot {
        t_ms: r.t_ms,
        counters: r.counters.clone(),
        ops: r.ops.clone(),
        tainted: r.tainted,
        mismatches: ctx.oracle.mismatches(),
    });
    r
}

/// Per-second rate of each key of `now` since `prev`, over `dt_ms`.
fn rates(
    prev: &BTreeMap<String, u64>,
    now: &BTreeMap<String, u64>,
    dt_ms: u64,
) -> Vec<(String, u64)> {
    now.iter()
        .map(|(k, &v)| {
            let d = v.saturating_sub(prev.get(k).copied().unwrap_or(0));
            (k.clone(), (d * 1000 + dt_ms / 2) / dt_ms.max(1))
        })
        .collect()
}

/// `t=12s ops/s writer=1200 migrate=40 | counters/s pmd_split=30`: every
/// party's rate, and the rates of the counters that moved since `prev`.
pub fn rate_line(prev: &Reading, now: &Reading) -> String {
    let dt = now.t_ms.saturating_sub(prev.t_ms);
    let ops: Vec<String> = rates(&prev.ops, &now.ops, dt)
        .into_iter()
        .map(|(k, r)| format!("{k}={r}"))
        .collect();
    let moved: Vec<String> = rates(&prev.counters, &now.counters, dt)
        .into_iter()
        .filter(|(k, _)| now.counters.get(k) != prev.counters.get(k))
        .map(|(k, r)| format!("{k}={r}"))
        .collect();
    let mut line = format!("t={} ops/s", fmt_secs(now.t_ms));
    line += &if ops.is_empty() {
        " -".to_string()
    } else {
        format!(" {}", ops.join(" "))
    };
    line += " | counters/s";
    line += &if moved.is_empty() {
        " -".to_string()
    } else {
        format!(" {}", moved.join(" "))
    };
    line
}

/// `12s` on whole seconds, `1.5s` otherwise (sub-second intervals).
fn fmt_secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{}s", ms / 1000, ms % 1000 / 100)
    }
}

/// Runs `body` with the streamer going every `interval`; when `body`
/// returns (or panics), stops it and sends the final snapshot. `first` is
/// the reading the run already sent at the start, the base of the first
/// rate line.
pub fn with_streamer<T>(
    ctx: &Ctx,
    interval: Duration,
    first: Reading,
    body: impl FnOnce() -> T,
) -> T {
    let warned = AtomicBool::new(false);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let result = std::thread::scope(|s| {
        let warned = &warned;
        s.spawn(move || {
            let mut prev = first;
            let mut next = Instant::now() + interval;
            loop {
                let wait = next.saturating_duration_since(Instant::now());
                match stop_rx.recv_timeout(wait) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    // Stop asked, or the body panicked and dropped the sender.
                    _ => return,
                }
                let now = send_snapshot(ctx, warned);
                ctx.say(rate_line(&prev, &now));
                prev = now;
                // Fixed cadence; after a stall, skip missed ticks instead of bursting.
                next += interval;
                if next < Instant::now() {
                    next = Instant::now() + interval;
                }
            }
        });
        let r = body();
        drop(stop_tx);
        r
    });
    send_snapshot(ctx, &warned);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn rate_line_shows_all_ops_and_moved_counters() {
        let prev = Reading {
            t_ms: 11_000,
            counters: map(&[("pmd_split", 10), ("thp_migrate", 4)]),
            ops: map(&[("writer", 100)]),
            tainted: None,
        };
        let now = Reading {
            t_ms: 12_000,
            counters: map(&[
                ("pmd_split", 40),
                ("thp_migrate", 4),
                ("softdirty_clear", 700),
            ]),
            ops: map(&[("writer", 1300), ("migrate", 40)]),
            tainted: None,
        };
        assert_eq!(
            rate_line(&prev, &now),
            "t=12s ops/s migrate=40 writer=1200 | counters/s pmd_split=30 softdirty_clear=700"
        );
    }

    #[test]
    fn rates_scale_to_seconds() {
        let prev = Reading {
            t_ms: 0,
            ..Default::default()
        };
        let now = Reading {
            t_ms: 500,
            ops: map(&[("a", 10)]),
            ..Default::default()
        };
        assert_eq!(rate_line(&prev, &now), "t=0.5s ops/s a=20 | counters/s -");
        let same = Reading {
            t_ms: 1500,
            ..Default::default()
        };
        assert_eq!(rate_line(&same, &same), "t=1.5s ops/s - | counters/s -");
    }

    #[test]
    fn streams_until_body_ends_then_sends_final_snapshot() {
        let (out, lines) = crate::output::Output::memory();
        let ctx = Ctx::new(1, Duration::from_secs(60), out);
        let r = with_streamer(&ctx, Duration::from_millis(20), Reading::default(), || {
            ctx.op("writer").fetch_add(5, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(110));
            42
        });
        assert_eq!(r, 42);
        let snaps: Vec<_> = lines()
            .iter()
            .filter_map(|l| mmrace_proto::wire::decode(l))
            .filter(|m| matches!(m, Msg::Snapshot { .. }))
            .collect();
        // About five ticks plus the final one; timing on a loaded machine
        // varies, so only require the final snapshot and one tick.
        assert!(snaps.len() >= 2, "{snaps:?}");
        let Msg::Snapshot { ops, .. } = snaps.last().unwrap() else {
            unreachable!()
        };
        assert_eq!(ops["writer"], 5);
    }
}
