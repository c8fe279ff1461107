//! /proc/vmstat: the kernel's own mm event counts (thp_fault_alloc,
//! thp_split_pmd, pgmigrate_success...). Scenarios read it before and after
//! to show the kernel really did what the workload asked, independently of
//! mmrace.ko.

use anyhow::{Context, Result};
use std::collections::BTreeMap;

pub const PATH: &str = "/proc/vmstat";

/// Parses `name value` lines. Lines that do not parse are skipped: the file
/// is the kernel's, not ours, and one odd line must not cost the others.
pub fn parse(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (name, value) = (it.next()?, it.next()?.parse().ok()?);
            it.next().is_none().then(|| (name.to_string(), value))
        })
        .collect()
}

pub fn read() -> Result<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(PATH).with_context(|| format!("cannot read {PATH}"))?;
    Ok(parse(&text))
}

/// `after - before` for every key of `after`, saturating at 0 (a key missing
/// from `before` counts from 0). Works for any cumulative counter map.
pub fn delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, &v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .collect()
}

/// The entries of `m` that are not zero: a delta worth printing.
pub fn nonzero(m: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    m.iter()
        .filter(|(_, &v)| v != 0)
        .map(|(k, &v)| (k.clone(), v))
        .collect()
}

/// The entries of `m` whose name starts with one of `prefixes`.
pub fn with_prefixes(m: &BTreeMap<String, u64>, prefixes: &[&str]) -> BTreeMap<String, u64> {
    m.iter()
        .filter(|(k, _)| prefixes.iter().any(|p| k.starts_with(p)))
        .map(|(k, &v)| (k.clone(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn parses_and_skips_odd_lines() {
        let m = parse("nr_free_pages 1000\nthp_fault_alloc 5\n\nbogus\nneg -1\nthree 1 2\n");
        assert_eq!(m, map(&[("nr_free_pages", 1000), ("thp_fault_alloc", 5)]));
    }

    #[test]
    fn delta_saturates_and_counts_new_keys_from_zero() {
        let before = map(&[("a", 10), ("b", 5), ("gone", 1)]);
        let after = map(&[("a", 15), ("b", 3), ("new", 4)]);
        assert_eq!(
            delta(&before, &after),
            map(&[("a", 5), ("b", 0), ("new", 4)])
        );
        assert_eq!(
            nonzero(&delta(&before, &after)),
            map(&[("a", 5), ("new", 4)])
        );
    }

    #[test]
    fn prefix_filter() {
        let m = map(&[
            ("thp_fault_alloc", 1),
            ("pgmigrate_success", 2),
            ("nr_free_pages", 3),
        ]);
        assert_eq!(
            with_prefixes(&m, &["thp_", "pgmigrate_"]),
            map(&[("thp_fault_alloc", 1), ("pgmigrate_success", 2)])
        );
    }

    #[test]
    fn reads_this_machine() {
        // /proc/vmstat exists on every Linux with procfs.
        assert!(read().unwrap().contains_key("nr_free_pages"));
    }
}
