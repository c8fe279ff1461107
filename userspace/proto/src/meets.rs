//! debugfs `meets`: which module operations met on the same object, and on
//! which memory kind.
//!
//! The file's format (module and userspace agree on it here):
//!
//! ```text
//! # entering holding kind meets near
//! pmd_split migrate_unmap anon 12 40
//! ```
//!
//! One line per (entering, holding, kind) cell with a nonzero count; lines
//! starting with `#` are comments. A *meet*: `entering` started on an object
//! (a page-table slot, a folio, or a whole mm) while another task's
//! `holding` was inside its operation on the same object. A *near meet*:
//! `holding` had left the object within the module's near window. The
//! operations and kinds are those of `module/mmrace_ops.h` ([`crate::ops`]).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The file under [`crate::counters::DEBUGFS_DIR`].
pub const MEETS_FILE: &str = "meets";

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Cell {
    pub entering: &'static str,
    pub holding: &'static str,
    pub kind: &'static str,
}

/// Meets and near meets of one cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub meets: u64,
    pub near: u64,
}

/// The whole matrix, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meets {
    pub cells: BTreeMap<Cell, Count>,
}

/// An unordered pair of operations, `a <= b`.
pub type Pair = (&'static str, &'static str);

/// A malformed `meets` line, or one naming an operation or kind the header
/// does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMeetsLine(pub String);

impl std::fmt::Display for BadMeetsLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "malformed meets line {:?} (want 'entering holding kind meets near' with names from module/mmrace_ops.h)",
            self.0
        )
    }
}

impl std::error::Error for BadMeetsLine {}

fn parse_line(line: &str) -> Option<(Cell, Count)> {
    let w: Vec<_> = line.split_whitespace().collect();
    let [entering, holding, kind, meets, near] = w[..] else {
        return None;
    };
    let cell = Cell {
        entering: crate::ops::op(entering)?,
        holding: crate::ops::op(holding)?,
        kind: crate::ops::kind_of(kind)?,
    };
    Some((
        cell,
        Count {
            meets: meets.parse().ok()?,
            near: near.parse().ok()?,
        },
    ))
}

impl Meets {
    /// Parses the debugfs file.
    pub fn parse(text: &str) -> Result<Meets, BadMeetsLine> {
        let mut cells = BTreeMap::new();
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (c, n) = parse_line(t).ok_or_else(|| BadMeetsLine(line.to_string()))?;
            cells.insert(c, n);
        }
        Ok(Meets { cells })
    }

    /// What happened between `earlier` and `self` (counts only grow
    /// between resets; a cell that shrank counts from zero).
    pub fn since(&self, earlier: &Meets) -> Meets {
        let cells = self
            .cells
            .iter()
            .filter_map(|(c, n)| {
                let e = earlier.cells.get(c).copied().unwrap_or_default();
                let d = if n.meets >= e.meets && n.near >= e.near {
                    Count {
                        meets: n.meets - e.meets,
                        near: n.near - e.near,
                    }
                } else {
                    *n
                };
                (d != Count::default()).then_some((*c, d))
            })
            .collect();
        Meets { cells }
    }

    /// Meets and near meets per unordered pair, over every kind (or over
    /// `kind` only).
    pub fn by_pair(&self, kind: Option<&str>) -> BTreeMap<Pair, Count> {
        let mut out: BTreeMap<Pair, Count> = BTreeMap::new();
        for (c, n) in &self.cells {
            if kind.is_some_and(|k| k != c.kind) {
                continue;
            }
            let key = if c.entering <= c.holding {
                (c.entering, c.holding)
            } else {
                (c.holding, c.entering)
            };
            let e = out.entry(key).or_default();
            e.meets += n.meets;
            e.near += n.near;
        }
        out
    }

    /// The kinds each operation met another on.
    pub fn kinds_by_op(&self) -> BTreeMap<&'static str, BTreeSet<&'static str>> {
        let mut out: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
        for c in self.cells.keys() {
            out.entry(c.entering).or_default().insert(c.kind);
            out.entry(c.holding).or_default().insert(c.kind);
        }
        out
    }
}

/// Every unordered pair of `ops` (each with itself too), `a <= b`.
pub fn all_pairs(ops: &[&'static str]) -> Vec<Pair> {
    let mut v: Vec<_> = ops.to_vec();
    v.sort();
    v.dedup();
    let mut out = Vec::new();
    for (i, a) in v.iter().enumerate() {
        for b in &v[i..] {
            out.push((*a, *b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{kind, name};

    const TEXT: &str = "# entering holding kind meets near\n\
        pmd_split migrate_unmap anon 12 40\n\
        migrate_unmap pmd_split anon 3 0\n\
        zap_huge_pmd pmd_split shmem 1 2\n";

    #[test]
    fn parses_and_folds_pairs() {
        let m = Meets::parse(TEXT).unwrap();
        assert_eq!(m.cells.len(), 3);
        let p = m.by_pair(Some(kind::ANON));
        assert_eq!(
            p[&(name::MIGRATE_UNMAP, name::PMD_SPLIT)],
            Count {
                meets: 15,
                near: 40
            }
        );
        assert_eq!(m.by_pair(None).len(), 2);
        assert!(m.kinds_by_op()[name::PMD_SPLIT].contains(kind::SHMEM));
    }

    #[test]
    fn rejects_unknown_names_and_malformed_lines() {
        for bad in [
            "pmd_split bogus anon 1 1",
            "pmd_split migrate_unmap nokind 1 1",
            "pmd_split migrate_unmap anon 1",
            "pmd_split migrate_unmap anon x 1",
        ] {
            assert!(Meets::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_subtracts_and_drops_unchanged_cells() {
        let a = Meets::parse("pmd_split migrate_unmap anon 2 5").unwrap();
        let b = Meets::parse(TEXT).unwrap();
        let d = b.since(&a);
        let c = Cell {
            entering: name::PMD_SPLIT,
            holding: name::MIGRATE_UNMAP,
            kind: kind::ANON,
        };
        assert_eq!(
            d.cells[&c],
            Count {
                meets: 10,
                near: 35
            }
        );
        assert_eq!(b.since(&b).cells.len(), 0);
    }

    #[test]
    fn all_pairs_counts_n_choose_2_plus_n() {
        let p = all_pairs(&[
            name::PMD_SPLIT,
            name::GUP,
            name::PMD_SPLIT,
            name::CLEAR_REFS,
        ]);
        assert_eq!(p.len(), 6);
    }
}
