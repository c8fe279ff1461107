//! The mmrace counters, as the kernel module defines them.
//!
//! `module/mmrace_counters.h` is the one list: the module's C object expands
//! it into the counter array, and this crate parses the same text at compile
//! time (`include_str!`), so userspace cannot drift from the kernel side.

use std::collections::BTreeMap;

/// One constant per counter, generated from the header (build.rs):
/// `name::PMD_RACE == "pmd_race"`.
pub mod name {
    include!(concat!(env!("OUT_DIR"), "/counter_names.rs"));
}

/// The header the module is built from.
pub const COUNTERS_HEADER: &str = include_str!("../../../module/mmrace_counters.h");

/// Where mmrace.ko puts its files.
pub const DEBUGFS_DIR: &str = "/sys/kernel/debug/mmrace";

/// One counter: its name in the `counters` file and what it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterDef {
    pub name: &'static str,
    pub help: &'static str,
}

/// Every counter, in the order the module prints them.
pub fn counter_defs() -> Vec<CounterDef> {
    parse_header(COUNTERS_HEADER)
}

/// Parses `MMRACE_COUNTER(name, "help")` lines.
pub fn parse_header(text: &'static str) -> Vec<CounterDef> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("MMRACE_COUNTER(")?;
            let (name, rest) = rest.split_once(',')?;
            let help = rest.trim().strip_suffix(')')?.trim().trim_matches('"');
            Some(CounterDef {
                name: name.trim(),
                help,
            })
        })
        .collect()
}

/// A parse error in a `counters` file, with the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine(pub String);

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed counters line {:?} (want 'name value')",
            self.0
        )
    }
}

impl std::error::Error for BadLine {}

/// Parses the debugfs `counters` file: one `name value` line per counter.
pub fn parse_counters(text: &str) -> Result<BTreeMap<String, u64>, BadLine> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = line.split_whitespace();
        let (Some(name), Some(value), None) = (it.next(), it.next(), it.next()) else {
            return Err(BadLine(line.to_string()));
        };
        let value = value.parse().map_err(|_| BadLine(line.to_string()))?;
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// Counter deltas for a human: `pmd_split+3 thp_split+1`, or `none`.
pub fn fmt_deltas(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}+{v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lists_unique_snake_case_counters() {
        let defs = counter_defs();
        assert!(defs.len() >= 3, "header parsed to {defs:?}");
        let mut names: Vec<_> = defs.iter().map(|d| d.name).collect();
        for n in &names {
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{n}"
            );
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), defs.len(), "duplicate counter names");
        assert!(defs.iter().all(|d| !d.help.is_empty()));
    }

    #[test]
    fn readme_explains_every_counter() {
        let readme = include_str!("../../../docs/counters.md");
        let missing: Vec<_> = counter_defs()
            .into_iter()
            .filter(|d| !readme.contains(&format!("| `{}` |", d.name)))
            .map(|d| d.name)
            .collect();
        assert!(
            missing.is_empty(),
            "docs/counters.md has no table row for {missing:?}"
        );
    }

    #[test]
    fn parses_counters_file() {
        let m = parse_counters("pmd_split 12\nsoftdirty_clear 0\n\n").unwrap();
        assert_eq!(m["pmd_split"], 12);
        assert_eq!(m["softdirty_clear"], 0);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn rejects_malformed_counters_lines() {
        assert!(parse_counters("pmd_split").is_err());
        assert!(parse_counters("pmd_split x").is_err());
        assert!(parse_counters("pmd_split 1 2").is_err());
        assert!(parse_counters("pmd_split -1").is_err());
    }
}
