//! The object keys each module operation records when it enters
//! (`module/mmrace_meets.c`, its `key_*` extractors), as data: what two
//! operations can share, and where the module takes a meet's memory kind
//! from. `pairs::meetable` reads it to tell the catalogue pairs that can
//! meet from those that cannot by construction; a test derives the same
//! table from the C source, so the two cannot drift apart.

use crate::ops::name::*;

/// Where the module takes the memory kind of an operation's keys from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindFrom {
    /// The VMA (`vma_kind`): anon, shmem, file or hugetlb; never ksm.
    Vma,
    /// A folio the caller holds (`folio_kind`): ksm for a KSM folio.
    Folio,
    /// Always shmem (`shmem_undo_range`).
    Shmem,
    /// `KIND_unknown`: the meet takes the other operation's kind, and a
    /// meet of two such operations is counted on `unknown`.
    Unknown,
}

/// Which mm an operation's coarse mm key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmKey {
    None,
    /// The mm the object is mapped in (the VMA's, or the one handed in).
    Object,
    /// Another mm (`exit_mmap` of a fork child): it shares no key with
    /// the object's operations.
    Other,
}

/// What one module operation records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    /// A page-table slot (a `pmd_t *`).
    pub pmd: bool,
    /// A folio: one handed in, or the one a present huge pmd maps.
    pub folio: bool,
    pub mm: MmKey,
    /// The `address_space` of a file or shmem folio (or of the file).
    pub mapping: bool,
    /// On a whole mm or file: meets any operation with the same coarse key.
    pub whole: bool,
    pub kind: KindFrom,
}

const fn k(pmd: bool, folio: bool, mm: MmKey, mapping: bool, whole: bool, kind: KindFrom) -> Keys {
    Keys {
        pmd,
        folio,
        mm,
        mapping,
        whole,
        kind,
    }
}

use KindFrom as F;
use MmKey as M;
/// A fault or a walk of a pmd: the VMA, the pmd slot and its huge folio.
const VMF: Keys = k(true, true, M::Object, false, false, F::Vma);
/// A folio the caller holds, locked or referenced.
const FOLIO: Keys = k(false, true, M::None, true, false, F::Folio);
/// A whole mm, kind unknown.
const WHOLE_MM: Keys = k(false, false, M::Object, false, true, F::Unknown);
/// A range of a VMA, whole.
const VMA_RANGE: Keys = k(false, false, M::Object, false, true, F::Vma);

/// The keys of module operation `op` (a [`crate::ops::name`] constant);
/// `None` for a name the module does not have.
pub fn of(op: &str) -> Option<Keys> {
    Some(match op {
        ANON_HUGE_FAULT | HUGE_PMD_WP | HUGE_PMD_NUMA | PMD_SPLIT | ZAP_HUGE_PMD
        | CHANGE_HUGE_PMD | MOVE_HUGE_PMD | MADV_FREE_HUGE_PMD | COPY_HUGE_PMD | SMAPS_WALK
        | PAGEMAP_WALK | UFFD_MOVE | ANON_FAULT | FILE_FAULT => VMF,
        // do_wp_page: the vmf's, and the folio the read-only pte maps.
        WP_FAULT => VMF,
        // do_set_pmd: the vmf's, then the locked folio's kind and mapping.
        FILE_HUGE_MAP => k(true, true, M::Object, true, false, F::Folio),
        // numa_migrate_check: the pte table's pmd slot and the folio.
        NUMA_FAULT => k(true, true, M::Object, true, false, F::Folio),
        // The vmf's, and the file's mapping.
        SHMEM_FAULT => k(true, true, M::Object, true, false, F::Vma),
        // A pmd slot only: no huge folio behind it.
        SWAP_IN | HUGETLB_FAULT => k(true, false, M::Object, false, false, F::Vma),
        FOLIO_SPLIT | MIGRATE_UNMAP | MIGRATE_REMOVE | TRUNCATE_FOLIO | EVICT_FOLIO
        | TRY_TO_UNMAP | MLOCK_FOLIO | SWAP_OUT => FOLIO,
        // try_to_merge_one_page: the folio, the KSM folio, the VMA's mm.
        KSM_MERGE => k(false, true, M::Object, true, false, F::Folio),
        CLEAR_REFS | GUP | GUP_FAST | MEMPOLICY | FORK_MM | UFFD_FILL | UFFD_WP => WHOLE_MM,
        // The child's mm.
        EXIT_MM => k(false, false, M::Other, false, true, F::Unknown),
        MOVE_PAGE_TABLES | MADV_COLLAPSE | HUGETLB_UNMAP | HUGETLB_COPY | ZAP_RANGE => VMA_RANGE,
        // collapse_pte_mapped_thp: the mm and the pmd slot, kind unknown.
        COLLAPSE_FILE => k(true, false, M::Object, false, false, F::Unknown),
        SHMEM_UNDO_RANGE => k(false, false, M::None, true, true, F::Shmem),
        _ => return None,
    })
}

/// Whether `a` and `b` can record a key in common (`keys_meet`): a fine
/// key of the same type, or a coarse one with either whole. `mapped`:
/// the object's folios have an `address_space` (shmem and file kinds).
pub fn can_share(a: Keys, b: Keys, mapped: bool) -> bool {
    let fine = (a.pmd && b.pmd) || (a.folio && b.folio);
    let mm = a.mm == MmKey::Object && b.mm == MmKey::Object;
    let mapping = mapped && a.mapping && b.mapping;
    fine || ((a.whole || b.whole) && (mm || mapping))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of `key_NAME` in the module's C source.
    fn body<'a>(src: &'a str, name: &str) -> &'a str {
        let head = format!("static bool key_{name}(");
        let start = src.find(&head).unwrap_or_else(|| panic!("no {head}"));
        let rest = &src[start..];
        &rest[..rest.find("\n}\n").unwrap()]
    }

    /// The keys as the C body says, read off its calls and assignments.
    fn derived(b: &str) -> Keys {
        let has = |s: &str| b.contains(s);
        let vmf = has("keys_vmf(") || has("keys_pmd(");
        let last = |s: &str| b.rfind(s).map_or(-1, |i| i as i64);
        let kind = if has("KIND_unknown") {
            F::Unknown
        } else if has("KIND_shmem") {
            F::Shmem
        } else if last("keys_folio(") > last("keys_vma(").max(last("keys_vmf(")) {
            F::Folio
        } else {
            F::Vma
        };
        let mm = if has("keys_vma(") || has("keys_vmf(") || has("keys_whole_mm(") || has("k->mm =")
        {
            M::Object
        } else {
            M::None
        };
        Keys {
            pmd: vmf || has("pmd_slot(") || has("->pmd;"),
            folio: vmf || has("keys_folio("),
            mm,
            mapping: has("keys_folio(") || has("k->mapping ="),
            whole: has("whole = true") || has("keys_whole_mm("),
            kind,
        }
    }

    #[test]
    fn the_table_is_what_the_module_records() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../module/mmrace_meets.c");
        let src = std::fs::read_to_string(path).unwrap();
        for d in crate::ops::op_defs() {
            let mut want = derived(body(&src, d.name));
            if d.name == EXIT_MM {
                // exit_mmap(mm) of the fork child: another mm.
                want.mm = M::Other;
            }
            assert_eq!(of(d.name), Some(want), "{}", d.name);
        }
    }

    #[test]
    fn whole_ops_share_the_mm_and_folio_ops_only_folios() {
        let of = |n| of(n).unwrap();
        assert!(can_share(of(GUP), of(PMD_SPLIT), false));
        assert!(!can_share(of(GUP), of(MIGRATE_UNMAP), false));
        assert!(can_share(of(PMD_SPLIT), of(MIGRATE_UNMAP), false));
        assert!(!can_share(of(HUGETLB_FAULT), of(MIGRATE_UNMAP), false));
        assert!(can_share(of(SHMEM_UNDO_RANGE), of(TRY_TO_UNMAP), true));
        assert!(!can_share(of(SHMEM_UNDO_RANGE), of(TRY_TO_UNMAP), false));
        assert!(!can_share(of(EXIT_MM), of(PMD_SPLIT), false));
    }
}
