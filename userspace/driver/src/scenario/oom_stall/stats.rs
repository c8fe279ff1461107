//! The kernel files the scenario reads besides the counters and vmstat: XFS
//! statistics, the block device's I/O statistics, and mmrace.ko's
//! `reclaim_latency` histograms.

use anyhow::{bail, Context, Result};
pub use mmrace_proto::results::oom_stall::{ReclaimClass, ReclaimLatency};
use std::collections::BTreeMap;

/// XFS's global statistics (all mounted XFS filesystems).
pub const XFS_STATS: &str = "/sys/fs/xfs/stats/stats";

/// Field names of the `buf` and `xpc` lines of [`XFS_STATS`], in order
/// (fs/xfs/xfs_stats.h). `xb_page_retries` counts buffer allocations that
/// failed and were retried: the "possible memory allocation deadlock" of
/// the seed's time.
const XFS_FIELDS: &[(&str, &[&str])] = &[
    (
        "buf",
        &[
            "xb_get",
            "xb_create",
            "xb_get_locked",
            "xb_get_locked_waited",
            "xb_busy_locked",
            "xb_miss_locked",
            "xb_page_retries",
            "xb_page_found",
            "xb_get_read",
        ],
    ),
    (
        "xpc",
        &["xs_xstrat_bytes", "xs_write_bytes", "xs_read_bytes"],
    ),
];

/// The named fields of the `buf` and `xpc` lines. Other lines, and values
/// past the known names (a newer kernel), are left out.
pub fn parse_xfs_stats(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(group) = words.next() else { continue };
        let Some((_, names)) = XFS_FIELDS.iter().find(|(g, _)| *g == group) else {
            continue;
        };
        for (name, value) in names.iter().zip(words) {
            if let Ok(v) = value.parse() {
                out.insert(name.to_string(), v);
            }
        }
    }
    out
}

/// [`XFS_STATS`], empty when XFS is not there (no filesystem mounted yet,
/// or not built in): the run then reports no XFS numbers.
pub fn read_xfs_stats() -> BTreeMap<String, u64> {
    std::fs::read_to_string(XFS_STATS)
        .map(|t| parse_xfs_stats(&t))
        .unwrap_or_default()
}

/// Bytes written, from a block device's `stat` file
/// (Documentation/block/stat.rst: the 7th field is sectors written, in
/// 512-byte units whatever the device's sector size).
pub fn parse_block_stat_written(text: &str) -> Result<u64> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let Some(sectors) = fields.get(6) else {
        bail!("block stat has {} fields, want at least 7", fields.len());
    };
    let sectors: u64 = sectors
        .parse()
        .with_context(|| format!("bad sectors-written field {sectors:?}"))?;
    Ok(sectors * 512)
}

/// Parses the `reclaim_latency` file (format in module/mmrace_main.rs).
pub fn parse_reclaim_latency(text: &str) -> Result<ReclaimLatency> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("empty reclaim_latency")?
        .split_whitespace()
        .collect();
    if header.get(..4) != Some(&["class", "calls", "sum_us", "max_us"][..]) {
        bail!("reclaim_latency header {header:?} is not 'class calls sum_us max_us b0...'");
    }
    let mut out = ReclaimLatency::default();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let nums = || -> Result<Vec<u64>> {
            words[1..]
                .iter()
                .map(|w| w.parse().with_context(|| format!("bad number in {line:?}")))
                .collect()
        };
        match words.as_slice() {
            [] => {}
            ["missed", n] => out.missed = n.parse().with_context(|| format!("bad {line:?}"))?,
            [name, ..] if words.len() == header.len() => {
                let v = nums()?;
                out.classes.insert(
                    name.to_string(),
                    ReclaimClass {
                        calls: v[0],
                        sum_us: v[1],
                        max_us: v[2],
                        buckets: v[3..].to_vec(),
                    },
                );
            }
            _ => bail!("reclaim_latency line {line:?} does not match the header"),
        }
    }
    Ok(out)
}

pub fn read_reclaim_latency() -> Result<ReclaimLatency> {
    let path = format!("{}/reclaim_latency", mmrace_proto::counters::DEBUGFS_DIR);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_reclaim_latency(&text).with_context(|| format!("in {path}"))
}

/// What happened between two readings (the maximum is the later one's).
pub fn reclaim_delta(before: &ReclaimLatency, after: &ReclaimLatency) -> ReclaimLatency {
    let classes = after
        .classes
        .iter()
        .map(|(name, a)| {
            let b = before.classes.get(name).cloned().unwrap_or_default();
            let sub = |x: u64, y: u64| x.saturating_sub(y);
            let buckets = a
                .buckets
                .iter()
                .enumerate()
                .map(|(i, &n)| sub(n, b.buckets.get(i).copied().unwrap_or(0)))
                .collect();
            let class = ReclaimClass {
                calls: sub(a.calls, b.calls),
                sum_us: sub(a.sum_us, b.sum_us),
                max_us: a.max_us,
                buckets,
            };
            (name.clone(), class)
        })
        .collect();
    ReclaimLatency {
        classes,
        missed: after.missed.saturating_sub(before.missed),
    }
}

fn us(v: Option<u64>) -> String {
    match v {
        None => "-".into(),
        Some(u64::MAX) => "inf".into(),
        Some(v) => v.to_string(),
    }
}

/// `class calls mean_us p50_us p99_us max_us` per class (p50/p99 are bucket
/// upper bounds).
pub fn reclaim_table(r: &ReclaimLatency) -> String {
    let mut out = format!(
        "{:<9} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
        "class", "calls", "mean_us", "p50_us<=", "p99_us<=", "max_us"
    );
    for (name, c) in &r.classes {
        out += &format!(
            "{:<9} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
            name,
            c.calls,
            us(c.mean_us()),
            us(c.quantile_us(0.5)),
            us(c.quantile_us(0.99)),
            c.max_us
        );
    }
    if r.missed > 0 {
        out += &format!("({} calls not timed)\n", r.missed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const XFS: &str = "extent_alloc 5 10 2 4\n\
        vnodes 0 0 0 0 0 0 0 0\n\
        buf 120 30 100 2 0 20 7 90 25\n\
        abtb2 1 2 3\n\
        xpc 4096 819200 0\n\
        debug 0\n";

    #[test]
    fn xfs_buf_and_xpc_lines() {
        let m = parse_xfs_stats(XFS);
        assert_eq!(m["xb_get"], 120);
        assert_eq!(m["xb_page_retries"], 7);
        assert_eq!(m["xb_get_read"], 25);
        assert_eq!(m["xs_write_bytes"], 819200);
        assert_eq!(m.len(), 12);
        assert!(parse_xfs_stats("").is_empty());
    }

    #[test]
    fn block_stat_sectors_written() {
        let line = "    1520        0    94536      820     3210      100  6553600    51230        0     9000    52050\n";
        assert_eq!(parse_block_stat_written(line).unwrap(), 6553600 * 512);
        assert!(parse_block_stat_written("1 2 3").is_err());
    }

    fn latency_text() -> String {
        let head: Vec<String> = (0..26).map(|b| format!("b{b}")).collect();
        let mut kthread = vec![0u64; 26];
        kthread[5] = 3; // 16..32 us
        kthread[11] = 1; // 1024..2048 us
        let mut dying = vec![0u64; 26];
        dying[25] = 1;
        let row = |name: &str, calls: u64, sum: u64, max: u64, b: &[u64]| {
            let b: Vec<String> = b.iter().map(u64::to_string).collect();
            format!("{name} {calls} {sum} {max} {}\n", b.join(" "))
        };
        format!(
            "class calls sum_us max_us {}\n{}{}{}missed 2\n",
            head.join(" "),
            row("kthread", 4, 1100, 1500, &kthread),
            row("dying", 1, 20_000_000, 20_000_000, &dying),
            row("ordinary", 0, 0, 0, &[0; 26]),
        )
    }

    #[test]
    fn reclaim_latency_parses_and_summarises() {
        let r = parse_reclaim_latency(&latency_text()).unwrap();
        assert_eq!(r.missed, 2);
        let k = &r.classes["kthread"];
        assert_eq!((k.calls, k.sum_us, k.max_us), (4, 1100, 1500));
        assert_eq!(k.buckets.len(), 26);
        assert_eq!(k.mean_us(), Some(275));
        assert_eq!(k.quantile_us(0.5), Some(32));
        assert_eq!(k.quantile_us(0.99), Some(2048));
        assert_eq!(r.classes["dying"].quantile_us(0.5), Some(u64::MAX));
        assert_eq!(r.classes["ordinary"].quantile_us(0.5), None);
        assert_eq!(r.classes["ordinary"].mean_us(), None);
        let t = reclaim_table(&r);
        assert!(t.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["kthread", "4", "275", "32", "2048", "1500"]));
        assert!(t
            .lines()
            .any(|l| l.starts_with("dying") && l.contains(" inf ")));
        assert!(t.ends_with("(2 calls not timed)\n"));
    }

    #[test]
    fn reclaim_latency_rejects_odd_text() {
        assert!(parse_reclaim_latency("").is_err());
        assert!(parse_reclaim_latency("name value\n").is_err());
        assert!(parse_reclaim_latency("class calls sum_us max_us b0\nkthread 1 2\n").is_err());
        assert!(parse_reclaim_latency("class calls sum_us max_us b0\nkthread 1 2 x 4\n").is_err());
    }

    #[test]
    fn reclaim_delta_subtracts_all_but_the_maximum() {
        let after = parse_reclaim_latency(&latency_text()).unwrap();
        let mut before = after.clone();
        let k = before.classes.get_mut("kthread").unwrap();
        k.calls = 1;
        k.sum_us = 100;
        k.max_us = 20;
        k.buckets[5] = 1;
        k.buckets[11] = 0;
        before.missed = 1;
        let d = reclaim_delta(&before, &after);
        let k = &d.classes["kthread"];
        assert_eq!((k.calls, k.sum_us, k.max_us), (3, 1000, 1500));
        assert_eq!((k.buckets[5], k.buckets[11]), (2, 1));
        assert_eq!(d.missed, 1);
        assert_eq!(d.classes["dying"].calls, 0);
        assert_eq!(reclaim_delta(&ReclaimLatency::default(), &after), after);
    }
}
