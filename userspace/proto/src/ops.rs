//! The mm operations whose meetings mmrace.ko counts, and the memory kinds
//! it tells them apart by, as the module defines them.
//!
//! `module/mmrace_ops.h` is the one list: the module expands it into its
//! probe and `meets` tables, and this crate parses the same text, so the
//! driver's operation catalogue names module operations by constants the
//! compiler checks (`ops::name::PMD_SPLIT`), never by string literals.

/// One constant per operation, generated from the header (build.rs).
pub mod name {
    include!(concat!(env!("OUT_DIR"), "/op_names.rs"));
}

/// One constant per memory kind, generated from the header (build.rs).
pub mod kind {
    include!(concat!(env!("OUT_DIR"), "/kind_names.rs"));
}

use std::sync::OnceLock;

/// The header the module is built from.
pub const OPS_HEADER: &str = include_str!("../../../module/mmrace_ops.h");

/// One module operation: its name, the kernel function that bounds it, and
/// what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpDef {
    pub name: &'static str,
    pub symbol: &'static str,
    pub help: &'static str,
}

/// One memory kind of the module's `meets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindDef {
    pub name: &'static str,
    pub help: &'static str,
}

/// The quoted strings and the bare first word of `PREFIX(word, "a", "b")`.
fn entry(line: &'static str, prefix: &str) -> Option<(&'static str, Vec<&'static str>)> {
    let rest = line.trim().strip_prefix(prefix)?.strip_suffix(')')?;
    let (name, rest) = rest.split_once(',')?;
    let quoted = rest.split('"').skip(1).step_by(2).collect();
    Some((name.trim(), quoted))
}

/// The header's `PREFIX(...)` entries, each made by `make` from its name
/// and quoted strings.
fn entries<T>(prefix: &str, make: fn(&'static str, &[&'static str]) -> Option<T>) -> Vec<T> {
    OPS_HEADER
        .lines()
        .filter_map(|l| {
            let (name, q) = entry(l, prefix)?;
            make(name, &q)
        })
        .collect()
}

/// Every operation, in the module's order: the header is parsed once (a
/// name lookup per `meets` cell parsed it again and again, 45 ms of a
/// 108 ms `pairs` round under TCG).
pub fn op_defs() -> &'static [OpDef] {
    static DEFS: OnceLock<Vec<OpDef>> = OnceLock::new();
    DEFS.get_or_init(|| {
        entries("MMRACE_OP(", |name, q| match *q {
            [symbol, help] => Some(OpDef { name, symbol, help }),
            _ => None,
        })
    })
}

/// Every memory kind, in the module's order (parsed once).
pub fn kind_defs() -> &'static [KindDef] {
    static DEFS: OnceLock<Vec<KindDef>> = OnceLock::new();
    DEFS.get_or_init(|| {
        entries("MMRACE_KIND(", |name, q| match *q {
            [help] => Some(KindDef { name, help }),
            _ => None,
        })
    })
}

/// The operation called `name`, as the header spells it.
pub fn op(name: &str) -> Option<&'static str> {
    op_defs().iter().map(|d| d.name).find(|n| *n == name)
}

/// The memory kind called `name`, as the header spells it.
pub fn kind_of(name: &str) -> Option<&'static str> {
    kind_defs().iter().map(|d| d.name).find(|n| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snake(n: &str) -> bool {
        n.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn header_lists_unique_ops_with_symbols() {
        let defs = op_defs();
        assert!(defs.len() >= 25, "only {} ops", defs.len());
        let mut names: Vec<_> = defs.iter().map(|d| d.name).collect();
        assert!(names.iter().all(|n| snake(n)), "{names:?}");
        names.sort();
        names.dedup();
        assert_eq!(names.len(), defs.len(), "duplicate op names");
        assert!(defs
            .iter()
            .all(|d| !d.symbol.is_empty() && !d.help.is_empty()));
        assert_eq!(op(name::PMD_SPLIT), Some("pmd_split"));
    }

    #[test]
    fn header_lists_kinds() {
        let kinds: Vec<_> = kind_defs().iter().map(|k| k.name).collect();
        assert_eq!(
            kinds,
            ["anon", "ksm", "shmem", "file", "hugetlb", "unknown"],
            "the kinds changed: update MemKind users"
        );
        assert_eq!(kind_of(kind::SHMEM), Some("shmem"));
        assert_eq!(kind_of("bogus"), None);
    }
}
