//! Which catalogue pairs can meet at all, by construction (issue 17's
//! denominator): a pair is credited with the meets between its two ops'
//! module ops counted on its kind's module memory kind
//! ([`catalogue::meets_between`]), and the module counts a meet only
//! between two operations that record a key in common, on the kind the
//! entering operation tells, or the holder's when the entering one cannot
//! tell ([`crate::keys`]). A pair none of whose module-op pairs can do both
//! never meets, however long it runs: two whole-mm operations of unknown
//! kind (`gup` against `gup`: the meet is counted on `unknown`), or a
//! whole-mm operation against one that records only a folio (no mm key
//! in common), or, on ksm, operations that tell the kind from the VMA
//! (anon) only.
//!
//! The coverage figure keeps every catalogue pair in its denominator and
//! reports the pairs that can meet beside it, never instead.

use super::{catalogue, ObjKind, ObjState, UserOp};
use crate::keys::{self, Keys, KindFrom};

/// Why a catalogue pair cannot meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cannot {
    /// No module op of one can record a key the other's can.
    NoCommonKey,
    /// They can share a key, but every such meet is counted on another
    /// memory kind (both of unknown kind, or told from a VMA on ksm).
    OtherKind,
}

impl Cannot {
    pub fn describe(self) -> &'static str {
        match self {
            Cannot::NoCommonKey => "no object key in common",
            Cannot::OtherKind => "counted on another memory kind",
        }
    }
}

/// The module memory kind a meet of `entering` with `holding` is counted
/// on for an object of kind `k`, when the module can tell one.
fn counted_kind(entering: Keys, holding: Keys, k: ObjKind) -> Option<&'static str> {
    let told = |x: Keys| match x.kind {
        KindFrom::Unknown => None,
        KindFrom::Shmem => Some(crate::ops::kind::SHMEM),
        // A VMA of a KSM object is anonymous.
        KindFrom::Vma if k == ObjKind::Ksm => Some(crate::ops::kind::ANON),
        KindFrom::Vma | KindFrom::Folio => Some(k.module_kind()),
    };
    told(entering).or_else(|| told(holding))
}

/// Whether module ops `a` and `b` can meet on an object of kind `k` and
/// be credited to it; the reason when not.
pub fn ops_can_meet(a: &str, b: &str, k: ObjKind) -> Result<(), Cannot> {
    let (Some(ka), Some(kb)) = (keys::of(a), keys::of(b)) else {
        return Err(Cannot::NoCommonKey);
    };
    let mapped = !matches!(k, ObjKind::Anon | ObjKind::Ksm);
    if !keys::can_share(ka, kb, mapped) {
        return Err(Cannot::NoCommonKey);
    }
    let on_k = |e, h| counted_kind(e, h, k) == Some(k.module_kind());
    if on_k(ka, kb) || on_k(kb, ka) {
        Ok(())
    } else {
        Err(Cannot::OtherKind)
    }
}

/// Whether catalogue pair `a`, `b` on `k` can meet in one of `states`
/// (the module ops each drives there, [`catalogue::module_ops_in`]); the
/// reason when not (the least specific over its module-op pairs: a common
/// key on another kind says more than none).
pub fn can_meet(a: UserOp, b: UserOp, k: ObjKind, states: &[ObjState]) -> Result<(), Cannot> {
    let combo = [a, b];
    let mut why = Cannot::NoCommonKey;
    for s in catalogue::states_for(k, states) {
        for ma in catalogue::module_ops_in(a, k, s, &combo) {
            for mb in catalogue::module_ops_in(b, k, s, &combo) {
                match ops_can_meet(ma, mb, k) {
                    Ok(()) => return Ok(()),
                    Err(w) => why = why.max(w),
                }
            }
        }
    }
    Err(why)
}

/// The catalogue pairs of every op that cannot meet on each kind (in any
/// start state), as markdown: a table of the counts per kind beside its
/// catalogue pairs, then the pairs per kind and reason (docs/pairs.md
/// carries it; a test keeps the two equal).
pub fn cannot_markdown() -> String {
    use std::fmt::Write;
    let mut table = String::from(
        "| kind | catalogue pairs | can meet | cannot: no common key | cannot: counted on another kind |\n|---|---|---|---|---|\n",
    );
    let mut lists = String::new();
    for k in ObjKind::ALL {
        let pairs = catalogue::catalogue_pairs(&UserOp::ALL, k);
        let mut by: std::collections::BTreeMap<Cannot, Vec<String>> = Default::default();
        for c in &pairs {
            if let Err(w) = can_meet(c.0[0], c.0[1], k, &ObjState::ALL) {
                by.entry(w).or_default().push(format!("`{}`", c.name()));
            }
        }
        let n = |w| by.get(&w).map_or(0, Vec::len);
        let (none, other) = (n(Cannot::NoCommonKey), n(Cannot::OtherKind));
        let _ = writeln!(
            table,
            "| {k} | {} | {} | {none} | {other} |",
            pairs.len(),
            pairs.len() - none - other
        );
        for (w, list) in by {
            let _ = writeln!(lists, "- {k}, {}: {}", w.describe(), list.join(", "));
        }
    }
    table + "\n" + &lists
}

#[cfg(test)]
mod tests {
    use super::*;
    use UserOp::*;

    #[test]
    fn unknown_kind_pairs_and_folio_against_whole_mm_cannot_meet() {
        let all = ObjState::ALL;
        // gup against gup: counted on unknown.
        assert_eq!(
            can_meet(Odirect, Vmsplice, ObjKind::Anon, &all),
            Err(Cannot::OtherKind)
        );
        // clear_refs (whole mm) against migration's folio ops (no mm)
        // and mempolicy (unknown).
        assert_eq!(
            can_meet(ClearRefs, MigratePages, ObjKind::Anon, &all),
            Err(Cannot::OtherKind)
        );
        assert_eq!(can_meet(Store, MigratePages, ObjKind::Anon, &all), Ok(()));
        assert_eq!(can_meet(ClearRefs, Store, ObjKind::Anon, &all), Ok(()));
        assert_eq!(can_meet(Odirect, Dontneed, ObjKind::Anon, &all), Ok(()));
    }

    #[test]
    fn on_ksm_only_folio_told_meets_count() {
        let all = ObjState::ALL;
        // dontneed's zap (VMA: anon) against smaps (VMA: anon).
        assert_eq!(
            can_meet(Dontneed, Smaps, ObjKind::Ksm, &all),
            Err(Cannot::OtherKind)
        );
        assert_eq!(can_meet(Dontneed, Smaps, ObjKind::Anon, &all), Ok(()));
        assert_eq!(can_meet(KsmMerge, Odirect, ObjKind::Ksm, &all), Ok(()));
    }

    #[test]
    fn smaps_walks_the_other_vmas_of_a_fresh_object_s_mm() {
        // Measured: dontneed+smaps met on a fresh hugetlb object (a
        // swarm run whose only state was fresh): the zap of the object's
        // range (whole, the mm) against smaps_pte_range on another VMA.
        let fresh = [ObjState::Fresh];
        assert_eq!(can_meet(Dontneed, Smaps, ObjKind::Hugetlb, &fresh), Ok(()));
        assert_eq!(can_meet(Dontneed, Smaps, ObjKind::Anon, &fresh), Ok(()));
        // pagemap reads the object's range only: nothing mapped, no walk.
        assert_eq!(
            can_meet(Pagemap, Smaps, ObjKind::Hugetlb, &fresh),
            Err(Cannot::NoCommonKey)
        );
    }

    #[test]
    fn the_docs_carry_the_list() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/pairs.md");
        let text = std::fs::read_to_string(&docs).unwrap();
        assert!(
            text.contains(&cannot_markdown()),
            "docs/pairs.md's list of the pairs that cannot meet is not the code's; paste:\n{}",
            cannot_markdown()
        );
    }

    #[test]
    fn every_module_op_has_keys() {
        for d in crate::ops::op_defs() {
            assert!(keys::of(d.name).is_some(), "{}", d.name);
        }
    }
}
