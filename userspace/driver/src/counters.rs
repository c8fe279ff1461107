//! mmrace.ko's counters in debugfs: `counters` (one `name value` line each)
//! and `reset` (write 1 to zero them all).

use anyhow::{Context, Result};
use mmrace_proto::counters::{counter_defs, parse_counters, DEBUGFS_DIR};
use std::collections::BTreeMap;

pub fn counters_path() -> String {
    format!("{DEBUGFS_DIR}/counters")
}

pub fn reset_path() -> String {
    format!("{DEBUGFS_DIR}/reset")
}

/// Every counter's current value.
pub fn read() -> Result<BTreeMap<String, u64>> {
    let path = counters_path();
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_counters(&text).with_context(|| format!("in {path}"))
}

/// [`read`], with the error as text for a report (a run without the
/// module still reports its vmstat side).
pub fn read_reported() -> Result<BTreeMap<String, u64>, String> {
    read().map_err(|e| format!("{e:#}"))
}

/// Zeroes every counter.
pub fn reset() -> Result<()> {
    let path = reset_path();
    crate::kfile::write(&path, "1\n").with_context(|| format!("cannot write 1 to {path}"))
}

/// Checks that the module refuses malformed writes to `reset` with EINVAL
/// (and that they reset nothing): the interface promise users rely on.
pub fn check_reset_rejects_garbage() -> Result<()> {
    let path = reset_path();
    for bad in ["2\n", "reset\n", "1 1\n", "123456789\n"] {
        match crate::kfile::write(&path, bad) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => anyhow::bail!("writing {bad:?} to {path}: {e}, want EINVAL"),
            Ok(()) => anyhow::bail!("writing {bad:?} to {path} was accepted, want EINVAL"),
        }
    }
    Ok(())
}

/// How much each counter rose from `before` to `after` (0 if it fell, as
/// after a reset; counters only present in `after` count from 0).
pub fn delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    crate::vmstat::delta(before, after)
}

/// The `counters` subcommand's table: `name value  help`, in the header's
/// order, then any counter the module has that the header does not know.
pub fn table(values: &BTreeMap<String, u64>) -> String {
    let defs = counter_defs();
    let width = values
        .keys()
        .map(String::len)
        .chain(defs.iter().map(|d| d.name.len()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for d in &defs {
        let v = values
            .get(d.name)
            .map_or_else(|| "-".to_string(), u64::to_string);
        out += &format!("{:width$} {:>12}  {}\n", d.name, v, d.help);
    }
    for (name, v) in values
        .iter()
        .filter(|(n, _)| !defs.iter().any(|d| d.name == n.as_str()))
    {
        out += &format!("{name:width$} {v:>12}  (not in mmrace_counters.h)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lists_header_counters_with_help_and_extras() {
        let values: BTreeMap<String, u64> =
            [("pmd_split".to_string(), 12), ("mystery".to_string(), 3)].into();
        let t = table(&values);
        let split = t.lines().find(|l| l.starts_with("pmd_split ")).unwrap();
        assert!(
            split.contains(" 12  ") && split.contains("split_huge_pmd_locked"),
            "{split}"
        );
        let missing = t
            .lines()
            .find(|l| l.starts_with("softdirty_clear "))
            .unwrap();
        assert!(missing.contains(" -  "), "{missing}");
        assert!(t.lines().last().unwrap().starts_with("mystery"));
        assert_eq!(t.lines().count(), counter_defs().len() + 1);
    }
}
