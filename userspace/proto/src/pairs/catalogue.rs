//! The operation catalogue: for every [`UserOp`], the object kinds it
//! applies to and the module operations (`module/mmrace_ops.h`, as
//! [`crate::ops::name`] constants) it drives on each kind. The mapping is
//! read off the 7.3 source (the paths are in the comments) and is what
//! coverage counts: a pair of user ops *met* when the module saw one of the
//! first op's module ops meet one of the second's.
//!
//! A user op whose kernel path enters none of the module's operations
//! (`cold`: deactivation only) has an empty list: it still races, but its
//! pairs cannot be metered and are left out of the coverage figure.

use super::{Combo, ObjKind, ObjState, UserOp};
use crate::ops::name::*;
use std::collections::BTreeMap;

/// The module's memory-kind classes the mapping depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Private anonymous memory (anon, ksm).
    Anon,
    /// shmem (shared-anon, memfd, tmpfs).
    Shmem,
    /// Page cache of XFS (shared and private mappings).
    File,
    Hugetlb,
}

fn class(k: ObjKind) -> Class {
    match k {
        ObjKind::Anon | ObjKind::Ksm => Class::Anon,
        ObjKind::SharedAnon | ObjKind::Memfd | ObjKind::Tmpfs => Class::Shmem,
        ObjKind::XfsShared | ObjKind::XfsPrivate => Class::File,
        ObjKind::Hugetlb => Class::Hugetlb,
    }
}

/// Whether objects of kind `k` have a file (an fd) behind them.
pub fn has_file(k: ObjKind) -> bool {
    !matches!(k, ObjKind::Anon | ObjKind::SharedAnon | ObjKind::Ksm)
}

/// Whether `op` can run on an object of kind `k`.
pub fn applies(op: UserOp, k: ObjKind) -> bool {
    use UserOp::*;
    match op {
        // madvise_free_single_vma: anonymous VMAs only.
        Free => class(k) == Class::Anon,
        // Hugetlb pages are not THPs: no split, collapse, LRU advice, and
        // the tail pages of a 2 MiB page cannot be unmapped or protected
        // on their own.
        Split | Collapse | Pageout | Cold | MunmapPart | MprotectPart => k != ObjKind::Hugetlb,
        // Writes to the file beside the mapping: only where the mapping
        // shows the file (a private mapping shows its own copies, and
        // hugetlbfs has no write(2)).
        Pwrite | PunchHole => matches!(k, ObjKind::Memfd | ObjKind::Tmpfs | ObjKind::XfsShared),
        // The tail is cut off the file: every mapping of it loses it.
        Truncate => matches!(
            k,
            ObjKind::Memfd | ObjKind::Tmpfs | ObjKind::XfsShared | ObjKind::XfsPrivate
        ),
        // Ops on the object's file.
        Pread | Fallocate => has_file(k),
        // Writeback: page cache of a real filesystem only (shmem has none).
        // generic_fadvise ignores POSIX_FADV_DONTNEED where the backing
        // device is noop_backing_dev_info: shmem, tmpfs and hugetlbfs.
        Writeback | Invalidate => class(k) == Class::File,
        // Compaction migrates LRU folios; hugetlb folios only for
        // alloc_contig_range, never for a node's compaction.
        Compact => k != ObjKind::Hugetlb,
        // Fault-around: vm_ops->map_pages, file and shmem mappings only
        // (anonymous and hugetlb faults never map around).
        Refault => matches!(class(k), Class::Shmem | Class::File),
        // Swap-backed memory: anonymous and shmem.
        Swapin => matches!(class(k), Class::Anon | Class::Shmem),
        // KSM merges private anonymous pages only.
        KsmMerge => class(k) == Class::Anon,
        // UFFDIO_COPY/ZEROPAGE on anonymous and shmem (MISSING mode);
        // MOVE is anonymous only (the op skips it elsewhere).
        Uffd => matches!(class(k), Class::Anon | Class::Shmem),
        _ => true,
    }
}

/// Whether `op` may run again and again in one round (`--overlap-ms`):
/// `Err(why)` for the ops that run once. A repeatable op's effects
/// compose in the model (`model.rs`): each run's stores take new
/// generations and its zaps are recorded like any other, so what the
/// page may hold after any interleaving of the runs is what the last
/// store and the zaps around it leave; the ops without effects on the
/// data repeat freely (the migrating ones alternate their target node).
pub fn repeats(op: UserOp) -> Result<(), &'static str> {
    use UserOp::*;
    match op {
        Fork => Err("one fork child per round: the model checks one child view"),
        Mremap => Err("moves the object: the other ops then store through /proc/self/mem"),
        MunmapPart | MprotectPart => Err("the tail is gone or read-only after the first run"),
        KsmMerge => Err("waits for two full ksmd scans: a run is longer than a round"),
        NumaHint => Err("already a timed loop of reads"),
        _ => Ok(()),
    }
}

/// The ops that run once with `--overlap-ms`, and why, as markdown list
/// lines (docs/pairs.md carries them; a test keeps the two equal).
pub fn once_markdown() -> String {
    UserOp::ALL
        .iter()
        .filter_map(|&op| repeats(op).err().map(|why| format!("- `{op}`: {why}\n")))
        .collect()
}

/// Whether an object of kind `k` can start in state `s` (and the state
/// means something there: it reaches paths the populated state does not).
pub fn state_applies(s: ObjState, k: ObjKind) -> bool {
    match s {
        ObjState::Populated => true,
        // Every kind can be left unfaulted; ksm's point is its merged
        // pages, which its maker faults in and merges itself.
        ObjState::Fresh => k != ObjKind::Ksm,
        // A pmd split keeps the folio only on anonymous memory: a shmem
        // or file pmd is just unmapped, and the next fault maps the
        // folio by its pmd again (do_set_pmd()).
        ObjState::PteMapped => k == ObjKind::Anon,
        // MADV_NOHUGEPAGE governs anonymous and shmem folios
        // (vma_thp_disabled()); XFS's page-cache folio size comes from
        // readahead, hugetlb has only its huge pages, ksm its own layout.
        ObjState::Small => matches!(class(k), Class::Anon | Class::Shmem) && k != ObjKind::Ksm,
        // hugepages-64kB/enabled is the anonymous mTHP setting (shmem
        // has its own, not set here).
        ObjState::Mthp => k == ObjKind::Anon,
        // Swap-backed memory: anonymous and shmem; ksm's merged pages
        // are its point, and paging them out unmerges nothing useful.
        ObjState::Swapped => matches!(class(k), Class::Anon | Class::Shmem) && k != ObjKind::Ksm,
    }
}

/// The states of `states` that kind `k` can start in.
pub fn states_for(k: ObjKind, states: &[ObjState]) -> Vec<ObjState> {
    states
        .iter()
        .copied()
        .filter(|s| state_applies(*s, k))
        .collect()
}

/// The module ops that act on a huge pmd (or, `folio_split`, on a large
/// folio): what an object without one never enters.
const HUGE_PMD_OPS: [&str; 12] = [
    ANON_HUGE_FAULT,
    FILE_HUGE_MAP,
    HUGE_PMD_WP,
    HUGE_PMD_NUMA,
    PMD_SPLIT,
    ZAP_HUGE_PMD,
    CHANGE_HUGE_PMD,
    MOVE_HUGE_PMD,
    MADV_FREE_HUGE_PMD,
    COPY_HUGE_PMD,
    COLLAPSE_FILE,
    UFFD_MOVE,
];

/// The faults on a pte (a page table under the pmd, no huge pmd): entered
/// where the object's memory is mapped by ptes ([`ptes_in`]).
const PTE_FAULT_OPS: [&str; 2] = [ANON_FAULT, WP_FAULT];

/// Whether ops on kind `k` in state `s`, beside `combo`, can meet ptes:
/// small and mTHP folios, a pte-mapped THP, KSM's merged pages, or a
/// fork's COW (a shared anonymous huge pmd is split, and the write fault
/// copies one page: `do_wp_page`). (`do_fault` is not among them: file and
/// shmem THPs are mapped by it too, through `do_set_pmd`.)
fn ptes_in(k: ObjKind, s: ObjState, combo: &[UserOp]) -> bool {
    use ObjState::*;
    matches!(s, Small | Mthp | PteMapped) || k == ObjKind::Ksm || combo.contains(&UserOp::Fork)
}

/// Whether an object of kind `k` in start state `s` can hold a huge pmd
/// (with `collapse` in the round: MADV_COLLAPSE can make one) and a
/// large folio, for the whole round. `small` is MADV_NOHUGEPAGE
/// (`vma_thp_disabled()`: no THP or mTHP is allocated and MADV_COLLAPSE
/// refuses the VMA), so neither; `mthp` has a pte table under each pmd of
/// the object before the ops start (no PMD fault there), so large folios
/// of 64 KiB but no huge pmd unless a collapse makes one. The others can
/// have both: populated and pte-mapped keep or fault one (the cold THP),
/// fresh faults them in, swapped may swap them in.
pub fn state_has(s: ObjState, collapse: bool) -> (bool, bool) {
    match s {
        ObjState::Small => (false, false),
        ObjState::Mthp => (collapse, true),
        // swapped: its swap-in faults may map a THP or large folio again.
        ObjState::Populated | ObjState::Fresh | ObjState::PteMapped | ObjState::Swapped => {
            (true, true)
        }
    }
}

/// The part of the object an op's module ops act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The populated (hot) THP: `dontneed`, `free`.
    Hot,
    /// Whatever of the object is mapped.
    Object,
}

/// The part `op`'s module ops need mapped; `None` for the ops that enter
/// theirs either way: `munmap-part` and `mprotect-part` (the VMA
/// boundary's `split_huge_pmd_address` calls `__split_huge_pmd` whenever
/// the pmd table exists, and it looks at the pmd itself; measured: one
/// met `clear-refs` on a fresh memfd object), and `smaps`, which reads
/// all of `/proc/self/smaps`: `smaps_pte_range` walks every mapped pmd of
/// the worker's other VMAs too, keyed by the object's mm, so it meets a
/// whole-range op on the object (a zap) whatever the object's state
/// (measured: `dontneed+smaps` met 807 times on a fresh hugetlb object,
/// whose own VMA smaps walks through `hugetlb_entry`, not the probe).
fn acts_on(op: UserOp) -> Option<Part> {
    match op {
        UserOp::Dontneed | UserOp::Free => Some(Part::Hot),
        UserOp::MunmapPart | UserOp::MprotectPart | UserOp::Smaps => None,
        _ => Some(Part::Object),
    }
}

/// Whether an op of `combo` maps `part` of the object from nothing: its
/// accesses fault it in.
fn mapped_by(combo: &[UserOp], part: Part) -> bool {
    use UserOp::*;
    combo.iter().any(|op| match part {
        Part::Hot => matches!(
            op,
            Store | Populate | Odirect | Mlock | Vmsplice | NumaHint | Refault
        ),
        Part::Object => matches!(
            op,
            Store | Touch | Populate | Odirect | Mlock | Vmsplice | NumaHint | Uffd | Refault
        ),
    })
}

/// Whether `part` of an object starting in `s` is mapped when an op of
/// `combo` acts on it: at the start (`fresh` leaves everything unfaulted),
/// or by an op of the round ([`mapped_by`]).
fn present(part: Option<Part>, s: ObjState, combo: &[UserOp]) -> bool {
    match part {
        None => true,
        Some(p) => s != ObjState::Fresh || mapped_by(combo, p),
    }
}

/// [`module_ops`] of `op` on `k` that an object starting in `s` can enter
/// when `op` races with the ops of `combo` (which holds `op`): the
/// catalogue's drives made true per start state (issue 17: rows whose op
/// never called its module ops). [`state_has`]: no huge-pmd operation
/// without a huge pmd (`collapse` in the round can make one), no folio
/// split without a large folio. [`present`]: an op whose part of the
/// object is not mapped (a fresh object nobody faults in) enters only its whole-mm or
/// whole-range operations (`keys::Keys::whole`: `mempolicy`, `gup`,
/// `madv_collapse`, ...): `pagemap_pmd_range` is not called on a none
/// pmd, a split or a zap finds nothing.
pub fn module_ops_in(op: UserOp, k: ObjKind, s: ObjState, combo: &[UserOp]) -> Vec<&'static str> {
    let collapse = combo.contains(&UserOp::Collapse);
    let (mut pmd, large) = state_has(s, collapse);
    // The split op's three are the steps of splitting a large folio.
    if op == UserOp::Split && !large {
        return Vec::new();
    }
    let part = acts_on(op);
    // pte-mapped: the hot THP is mapped by ptes (only the cold one can
    // be faulted in by its pmd).
    if part == Some(Part::Hot) && s == ObjState::PteMapped && !collapse {
        pmd = false;
    }
    let mapped = present(part, s, combo);
    let whole = |m: &str| crate::keys::of(m).is_some_and(|x| x.whole);
    module_ops(op, k)
        .iter()
        .copied()
        .filter(|m| pmd || !HUGE_PMD_OPS.contains(m))
        .filter(|m| ptes_in(k, s, combo) || !PTE_FAULT_OPS.contains(m))
        .filter(|m| large || *m != FOLIO_SPLIT)
        .filter(|m| mapped || whole(m))
        .collect()
}

/// Whether the module ops of `op` on `k` tell where it works: it has
/// one that is not a huge-pmd operation. An op whose module ops are all
/// huge-pmd ones (`free`: `madv_free_huge_pmd`) still does its work on
/// ptes (`madvise_free_pte_range()`), unmetered, so no state can be
/// ruled out for it.
fn metered_on_ptes(op: UserOp, k: ObjKind) -> bool {
    module_ops(op, k).iter().any(|m| !HUGE_PMD_OPS.contains(m))
}

/// The states of `states` (those `k` can start in) in which every op of
/// `ops` that drives module ops on `k` (on ptes too:
/// [`metered_on_ptes`]) can enter one ([`module_ops_in`]); all of `k`'s
/// states when none is left, so a combo always has a state to run in.
pub fn states_that_drive(k: ObjKind, states: &[ObjState], ops: &[UserOp]) -> Vec<ObjState> {
    let all = states_for(k, states);
    let drives = |s: ObjState| {
        ops.iter()
            .filter(|o| metered_on_ptes(**o, k))
            .all(|o| !module_ops_in(*o, k, s, ops).is_empty())
    };
    let some: Vec<ObjState> = all.iter().copied().filter(|s| drives(*s)).collect();
    if some.is_empty() {
        all
    } else {
        some
    }
}

/// The start-state table: which kind each state applies to
/// (docs/pairs.md carries it; a test keeps the two equal).
pub fn states_markdown_table() -> String {
    let mut out = String::from("| state |");
    for k in ObjKind::ALL {
        out += &format!(" {k} |");
    }
    out += "\n|---|";
    out += &"---|".repeat(ObjKind::ALL.len());
    out += "\n";
    for s in ObjState::ALL {
        out += &format!("| `{s}` |");
        for k in ObjKind::ALL {
            out += if state_applies(s, k) {
                " yes |"
            } else {
                " - |"
            };
        }
        out += "\n";
    }
    out
}

/// The module operations `op` drives on kind `k` (empty when it does not
/// apply).
pub fn module_ops(op: UserOp, k: ObjKind) -> &'static [&'static str] {
    if !applies(op, k) {
        return &[];
    }
    use UserOp::*;
    let c = class(k);
    match op {
        Store | ProcMem | Touch | Populate | Fork | Refault => fault_ops(op, k, c),
        MigratePages | MovePages | Mbind | Split | KsmMerge | Compact => migration_ops(op, c),
        MunmapPart | MprotectPart | MprotectExec | Mlock | Mremap | Uffd | NumaHint => {
            mapping_ops(op, c)
        }
        Collapse | Dontneed | Free | Pageout | Cold | Swapin => madvise_ops(op, c),
        Pread | Pwrite | PunchHole | Truncate | Fallocate | Writeback | Invalidate => {
            file_ops(op, c)
        }
        ClearRefs | Smaps | Pagemap | Odirect | Vmsplice | Mincore | Willneed => walk_ops(op),
    }
}

/// The faults: stores, touches, populate, and fork (which copies the page
/// tables, then faults).
fn fault_ops(op: UserOp, k: ObjKind, c: Class) -> &'static [&'static str] {
    use Class::*;
    use UserOp::*;
    match op {
        // Stores fault only after another op changed the mapping: a zapped
        // or fresh pmd (anon: do_huge_pmd_anonymous_page; shmem and file:
        // shmem_fault/do_set_pmd), a COW-shared one (do_huge_pmd_wp_page);
        // through /proc/self/mem they go through __get_user_pages.
        // proc-mem's writes always go through GUP (FOLL_FORCE), which
        // faults as a store would.
        Store | ProcMem => match c {
            Anon => &[ANON_HUGE_FAULT, HUGE_PMD_WP, ANON_FAULT, WP_FAULT, GUP],
            Shmem => &[SHMEM_FAULT, FILE_HUGE_MAP, FILE_FAULT, GUP],
            File => &[FILE_HUGE_MAP, HUGE_PMD_WP, FILE_FAULT, WP_FAULT, GUP],
            Hugetlb => &[HUGETLB_FAULT, GUP],
        },
        // A read fault (the huge zero page on anon, the zero page on
        // ptes), then write faults (a shared file's read-only pte too:
        // XFS has page_mkwrite).
        Touch => match c {
            Anon => &[ANON_HUGE_FAULT, HUGE_PMD_WP, ANON_FAULT, WP_FAULT],
            Shmem => &[SHMEM_FAULT, FILE_HUGE_MAP, FILE_FAULT],
            File => &[FILE_HUGE_MAP, HUGE_PMD_WP, FILE_FAULT, WP_FAULT],
            Hugetlb => &[HUGETLB_FAULT],
        },
        // madvise_populate -> faultin_page_range -> __get_user_pages ->
        // handle_mm_fault: the faults a load (fault-around:
        // filemap_map_pages) or a store would take.
        Populate => match c {
            Anon => &[ANON_HUGE_FAULT, HUGE_PMD_WP, ANON_FAULT, WP_FAULT, GUP],
            Shmem => &[SHMEM_FAULT, FILE_HUGE_MAP, FILE_FAULT, GUP],
            File => &[FILE_HUGE_MAP, HUGE_PMD_WP, FILE_FAULT, WP_FAULT, GUP],
            Hugetlb => &[HUGETLB_FAULT, GUP],
        },
        // dup_mmap copies page tables only of VMAs with an anon_vma
        // (vma_needs_copy): private kinds, whose stores then COW (a
        // shared huge pmd is split and one page copied: do_wp_page);
        // the shared kinds' child faults them in; then the child's exit.
        Fork => match c {
            Anon => &[FORK_MM, COPY_HUGE_PMD, HUGE_PMD_WP, WP_FAULT, EXIT_MM],
            Shmem => &[FORK_MM, EXIT_MM, SHMEM_FAULT, FILE_FAULT],
            File if k.private() => &[FORK_MM, COPY_HUGE_PMD, HUGE_PMD_WP, WP_FAULT, EXIT_MM],
            File => &[FORK_MM, EXIT_MM, FILE_HUGE_MAP, FILE_FAULT],
            Hugetlb => &[FORK_MM, HUGETLB_COPY, HUGETLB_FAULT, EXIT_MM],
        },
        // madvise_dontneed_free -> zap_vma_range_batched: a 64 KiB part
        // of a huge pmd splits it (zap_pmd_range -> __split_huge_pmd),
        // then __zap_vma_range; the read: do_fault -> do_read_fault ->
        // filemap_map_pages, and shmem_fault for a page not cached.
        Refault => match c {
            Shmem => &[ZAP_RANGE, PMD_SPLIT, FILE_FAULT, SHMEM_FAULT],
            File => &[ZAP_RANGE, PMD_SPLIT, FILE_FAULT],
            Anon | Hugetlb => &[],
        },
        _ => unreachable!("{op:?} is not one of fault_ops's ops"),
    }
}

/// The ops that move or split a folio: migration, split, KSM.
fn migration_ops(op: UserOp, c: Class) -> &'static [&'static str] {
    use Class::*;
    use UserOp::*;
    match op {
        // do_migrate_pages -> migrate_to_node -> migrate_pages ->
        // try_to_migrate / remove_migration_ptes; a THP that cannot move
        // whole is split.
        MigratePages => match c {
            Hugetlb => &[MEMPOLICY, MIGRATE_UNMAP, MIGRATE_REMOVE],
            _ => &[MEMPOLICY, MIGRATE_UNMAP, MIGRATE_REMOVE, FOLIO_SPLIT],
        },
        // do_pages_move (folio_walk, no GUP) and do_mbind both call
        // migrate_pages directly, not migrate_to_node.
        MovePages | Mbind => match c {
            Hugetlb => &[MIGRATE_UNMAP, MIGRATE_REMOVE],
            _ => &[MIGRATE_UNMAP, MIGRATE_REMOVE, FOLIO_SPLIT],
        },
        // split_huge_pages_pid -> __folio_split -> unmap_folio: anon folios
        // get migration entries (try_to_migrate, remove_migration_ptes),
        // file ones are unmapped (try_to_unmap); the pmd is split first.
        Split => match c {
            Anon => &[FOLIO_SPLIT, PMD_SPLIT, MIGRATE_UNMAP, MIGRATE_REMOVE],
            _ => &[FOLIO_SPLIT, PMD_SPLIT, TRY_TO_UNMAP],
        },
        // ksmd: cmp_and_merge_page -> try_to_merge_one_page, which splits
        // a THP first (split_folio: unmap_folio -> try_to_migrate).
        KsmMerge => &[KSM_MERGE, FOLIO_SPLIT, MIGRATE_UNMAP, MIGRATE_REMOVE],
        // compact_node -> compact_zone -> isolate_migratepages_block (no
        // module op: it works on pfns, not on one object) -> migrate_pages;
        // it skips large folios, so it moves the object's small ones only.
        Compact => &[MIGRATE_UNMAP, MIGRATE_REMOVE],
        _ => unreachable!("{op:?} is not one of migration_ops's ops"),
    }
}

/// The ops that change a mapping: part of it unmapped or protected, moved,
/// locked, userfaultfd, NUMA hinting.
fn mapping_ops(op: UserOp, c: Class) -> &'static [&'static str] {
    use Class::*;
    use UserOp::*;
    match op {
        // A VMA boundary inside a huge pmd splits it
        // (vma_adjust_trans_huge); munmap then zaps the tail's ptes.
        MunmapPart => &[PMD_SPLIT, ZAP_RANGE],
        MprotectPart => &[PMD_SPLIT],
        MprotectExec => match c {
            Hugetlb => &[],
            _ => &[CHANGE_HUGE_PMD],
        },
        Mlock => match c {
            Hugetlb => &[],
            _ => &[MLOCK_FOLIO],
        },
        Mremap => match c {
            Hugetlb => &[MOVE_PAGE_TABLES],
            _ => &[MOVE_HUGE_PMD, MOVE_PAGE_TABLES],
        },
        // mfill_atomic (COPY, ZEROPAGE), move_pages (MOVE, splitting a
        // huge pmd it meets), mwriteprotect_range (WRITEPROTECT; a huge
        // pmd's protection: change_huge_pmd).
        Uffd => match c {
            Anon => &[UFFD_FILL, UFFD_MOVE, UFFD_WP, PMD_SPLIT, CHANGE_HUGE_PMD],
            _ => &[UFFD_FILL, UFFD_WP, CHANGE_HUGE_PMD],
        },
        // task_numa_work -> change_prot_numa (change_huge_pmd), then the
        // reads fault: do_numa_page, do_huge_pmd_numa_page.
        NumaHint => match c {
            Hugetlb => &[],
            _ => &[CHANGE_HUGE_PMD, NUMA_FAULT, HUGE_PMD_NUMA],
        },
        _ => unreachable!("{op:?} is not one of mapping_ops's ops"),
    }
}

/// The madvise advice that collapses, drops, frees, cools, reclaims or
/// swaps in.
fn madvise_ops(op: UserOp, c: Class) -> &'static [&'static str] {
    use Class::*;
    use UserOp::*;
    match op {
        // madvise_collapse; shmem and file THPs are remapped by
        // collapse_pte_mapped_thp.
        Collapse => match c {
            Anon => &[MADV_COLLAPSE],
            _ => &[MADV_COLLAPSE, COLLAPSE_FILE],
        },
        // zap_vma_range_batched -> __zap_vma_range: a huge pmd, ptes,
        // or hugetlb's __unmap_hugepage_range.
        Dontneed => match c {
            Hugetlb => &[HUGETLB_UNMAP, ZAP_RANGE],
            _ => &[ZAP_HUGE_PMD, ZAP_RANGE],
        },
        Free => &[MADV_FREE_HUGE_PMD],
        // madvise_cold_or_pageout_pte_range isolates the folio; reclaim
        // asks for swap (folio_alloc_swap), splits a THP it cannot swap
        // whole, unmaps what it can write out.
        Pageout => &[SWAP_OUT, TRY_TO_UNMAP, FOLIO_SPLIT],
        Cold => &[],
        // MADV_PAGEOUT (reclaim_pages: folio_alloc_swap, try_to_unmap,
        // a THP split when it cannot swap whole), then do_swap_page
        // (anon) or shmem_fault -> shmem_swapin_folio (shmem).
        Swapin => match c {
            Shmem => &[SWAP_OUT, TRY_TO_UNMAP, FOLIO_SPLIT, SHMEM_FAULT, FILE_FAULT],
            _ => &[SWAP_OUT, TRY_TO_UNMAP, FOLIO_SPLIT, SWAP_IN],
        },
        _ => unreachable!("{op:?} is not one of madvise_ops's ops"),
    }
}

/// The file ops: reads, writes, holes, truncation, allocation, writeback.
fn file_ops(op: UserOp, c: Class) -> &'static [&'static str] {
    use Class::*;
    use UserOp::*;
    match op {
        // shmem_file_read_iter / filemap_read, shmem_write_begin /
        // iomap_file_buffered_write: page-cache lookups, none of the
        // module's operations (the mapping's faults are the other op's).
        Pread | Pwrite => &[],
        // shmem_fallocate (PUNCH_HOLE: shmem_truncate_range ->
        // shmem_undo_range) and xfs_free_file_space -> truncate_pagecache_range;
        // both unmap the range first (unmap_mapping_range: a huge pmd
        // across it is split) and split a large folio the hole cuts
        // (truncate_inode_partial_folio).
        // unmap_mapping_range zaps the mapped range (__zap_vma_range);
        // hugetlbfs unmaps by unmap_hugepage_range, not through it.
        PunchHole => match c {
            Shmem => &[
                SHMEM_UNDO_RANGE,
                TRUNCATE_FOLIO,
                FOLIO_SPLIT,
                PMD_SPLIT,
                ZAP_RANGE,
            ],
            File => &[TRUNCATE_FOLIO, FOLIO_SPLIT, PMD_SPLIT, ZAP_RANGE],
            _ => &[TRUNCATE_FOLIO, FOLIO_SPLIT, PMD_SPLIT],
        },
        // shmem_setattr -> shmem_truncate_range; truncate_setsize ->
        // truncate_pagecache -> truncate_inode_pages_range.
        Truncate => match c {
            Shmem => &[SHMEM_UNDO_RANGE, TRUNCATE_FOLIO, FOLIO_SPLIT, ZAP_RANGE],
            File => &[TRUNCATE_FOLIO, FOLIO_SPLIT, ZAP_RANGE],
            _ => &[TRUNCATE_FOLIO, FOLIO_SPLIT],
        },
        // shmem_fallocate / xfs_alloc_file_space / hugetlbfs_fallocate
        // allocate into holes: none of the module's operations.
        Fallocate => &[],
        // file_write_and_wait_range: writeback of the page cache, none of
        // the module's operations.
        Writeback => &[],
        // generic_fadvise -> mapping_try_invalidate -> mapping_evict_folio
        // for each clean folio no one maps or holds.
        Invalidate => &[EVICT_FOLIO],
        _ => unreachable!("{op:?} is not one of file_ops's ops"),
    }
}

/// The ops that walk page tables or pin pages: /proc walks, mincore,
/// willneed, O_DIRECT and vmsplice.
fn walk_ops(op: UserOp) -> &'static [&'static str] {
    use UserOp::*;
    match op {
        ClearRefs => &[CLEAR_REFS],
        Smaps => &[SMAPS_WALK],
        Pagemap => &[PAGEMAP_WALK],
        // iov_iter_extract_pages pins the buffer (GUP-fast first, the slow
        // path __get_user_pages when that fails).
        Odirect => &[GUP_FAST, GUP],
        // vmsplice_to_pipe -> iov_iter_get_pages2 -> get_user_pages_fast:
        // the lockless walk first (gup_fast_pmd_leaf on a huge pmd),
        // __get_user_pages only when it falls back.
        Vmsplice => &[GUP_FAST, GUP],
        // mincore_pte_range (a huge pmd under pmd_trans_huge_lock) and
        // willneed's swapin_walk_pmd_entry / shmem swap-in readahead /
        // vfs_fadvise: none of the module's operations.
        Mincore | Willneed => &[],
        _ => unreachable!("{op:?} is not one of walk_ops's ops"),
    }
}

/// Ops of `ops` that apply to `k`.
pub fn ops_for(k: ObjKind, ops: &[UserOp]) -> Vec<UserOp> {
    ops.iter().copied().filter(|o| applies(*o, k)).collect()
}

/// The catalogue pairs of `ops` on `kind`: both ops apply and have module
/// ops, and they may run together.
pub fn catalogue_pairs(ops: &[UserOp], kind: ObjKind) -> Vec<Combo> {
    let metered: Vec<UserOp> = ops_for(kind, ops)
        .into_iter()
        .filter(|o| !module_ops(*o, kind).is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, a) in metered.iter().enumerate() {
        for b in &metered[i..] {
            let c = Combo::new(vec![*a, *b]);
            if c.compatible() {
                out.push(c);
            }
        }
    }
    out
}

/// What the module counted between the module ops of `a` and `b` on
/// `k`'s module memory kind, in `m` (a delta over a slice).
pub fn meets_between(
    m: &crate::meets::Meets,
    a: UserOp,
    b: UserOp,
    k: ObjKind,
) -> crate::meets::Count {
    let (ma, mb) = (module_ops(a, k), module_ops(b, k));
    let mut out = crate::meets::Count::default();
    for (c, n) in &m.cells {
        let hit = (ma.contains(&c.entering) && mb.contains(&c.holding))
            || (mb.contains(&c.entering) && ma.contains(&c.holding));
        if c.kind == k.module_kind() && hit {
            out.meets += n.meets;
            out.near += n.near;
            out.alias += n.alias;
        }
    }
    out
}

/// Meets between the module ops of `a` and `b` counted on a module memory
/// kind other than `k`'s, in `m`: the pair met, but the module told its
/// kind otherwise (a coverage figure never credits those).
pub fn meets_elsewhere(m: &crate::meets::Meets, a: UserOp, b: UserOp, k: ObjKind) -> u64 {
    let (ma, mb) = (module_ops(a, k), module_ops(b, k));
    m.cells
        .iter()
        .filter(|(c, _)| c.kind != k.module_kind())
        .filter(|(c, _)| {
            (ma.contains(&c.entering) && mb.contains(&c.holding))
                || (mb.contains(&c.entering) && ma.contains(&c.holding))
        })
        .map(|(_, n)| n.meets)
        .sum()
}

/// The calls of `op`'s module ops on `k` in `calls` (operation -> calls,
/// a delta over a slice; the module counts calls per operation, not per
/// kind or task, so another op's or task's calls count too).
pub fn calls_of(calls: &BTreeMap<&str, u64>, op: UserOp, k: ObjKind) -> u64 {
    module_ops(op, k)
        .iter()
        .map(|m| calls.get(m).copied().unwrap_or(0))
        .sum()
}

/// The catalogue as a markdown table: op, kinds, module ops per kind
/// class (docs/pairs.md carries it; a test keeps the two equal).
pub fn markdown_table() -> String {
    let classes = [
        ("anon, ksm", ObjKind::Anon),
        ("shared-anon, memfd, tmpfs", ObjKind::Memfd),
        ("xfs-shared", ObjKind::XfsShared),
        ("xfs-private", ObjKind::XfsPrivate),
        ("hugetlb", ObjKind::Hugetlb),
    ];
    let mut out = String::from("| op |");
    for (name, _) in classes {
        out += &format!(" {name} |");
    }
    out += "\n|---|";
    out += &"---|".repeat(classes.len());
    out += "\n";
    for op in UserOp::ALL {
        out += &format!("| `{op}` |");
        for (_, k) in classes {
            let cell = if !applies(op, k) {
                "n/a".to_string()
            } else if module_ops(op, k).is_empty() {
                "(none)".to_string()
            } else {
                module_ops(op, k).join(", ")
            };
            out += &format!(" {cell} |");
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops;

    #[test]
    fn the_docs_carry_this_catalogue() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/pairs.md");
        let text = std::fs::read_to_string(&docs).unwrap();
        assert!(
            text.contains(&markdown_table()),
            "docs/pairs.md's catalogue table is not the code's; paste:\n{}",
            markdown_table()
        );
        assert!(
            text.contains(&once_markdown()),
            "docs/pairs.md's list of the ops that run once is not the code's; paste:\n{}",
            once_markdown()
        );
    }

    #[test]
    fn the_docs_carry_the_state_table() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/pairs.md");
        let text = std::fs::read_to_string(&docs).unwrap();
        assert!(
            text.contains(&states_markdown_table()),
            "docs/pairs.md's start-state table is not the code's; paste:\n{}",
            states_markdown_table()
        );
    }

    #[test]
    fn every_kind_starts_populated_and_anon_in_every_state() {
        for k in ObjKind::ALL {
            assert!(state_applies(ObjState::Populated, k), "{k}");
        }
        for s in ObjState::ALL {
            assert!(state_applies(s, ObjKind::Anon), "{s}");
        }
        assert!(!state_applies(ObjState::Small, ObjKind::Hugetlb));
        assert!(state_applies(ObjState::Small, ObjKind::Tmpfs));
        assert!(!state_applies(ObjState::Mthp, ObjKind::Memfd));
        assert_eq!(
            states_for(ObjKind::Memfd, &ObjState::ALL),
            [
                ObjState::Populated,
                ObjState::Fresh,
                ObjState::Small,
                ObjState::Swapped
            ]
        );
        assert!(!state_applies(ObjState::Swapped, ObjKind::Ksm));
        assert!(!state_applies(ObjState::Swapped, ObjKind::XfsShared));
    }

    #[test]
    fn meets_are_attributed_by_module_ops_and_kind() {
        let m = crate::meets::Meets::parse(
            "migrate_unmap anon_huge_fault anon 3 1\n\
             huge_pmd_wp migrate_remove anon 2 0\n\
             migrate_unmap shmem_fault shmem 5 5\n\
             clear_refs migrate_unmap anon 7 7\n",
        )
        .unwrap();
        let c = meets_between(&m, UserOp::Store, UserOp::MigratePages, ObjKind::Anon);
        assert_eq!((c.meets, c.near), (5, 1));
        let c = meets_between(&m, UserOp::Store, UserOp::MigratePages, ObjKind::Memfd);
        assert_eq!((c.meets, c.near), (5, 5));
        let c = meets_between(&m, UserOp::Store, UserOp::Store, ObjKind::Anon);
        assert_eq!(c.meets, 0);
    }

    #[test]
    fn every_mapped_op_is_a_module_op() {
        for op in UserOp::ALL {
            for k in ObjKind::ALL {
                for m in module_ops(op, k) {
                    assert_eq!(ops::op(m), Some(*m), "{op} on {k}: {m}");
                }
            }
        }
    }

    #[test]
    fn only_cold_is_unmetered_where_it_applies() {
        for op in UserOp::ALL {
            for k in [ObjKind::Anon, ObjKind::SharedAnon, ObjKind::Memfd] {
                // Unmetered: cold (deactivation) and the file-only ops
                // whose kernel paths enter none of the module's operations.
                let unmetered = [
                    UserOp::Cold,
                    UserOp::Mincore,
                    UserOp::Willneed,
                    UserOp::Pread,
                    UserOp::Pwrite,
                    UserOp::Fallocate,
                    UserOp::Writeback,
                ];
                if applies(op, k) && !unmetered.contains(&op) {
                    assert!(!module_ops(op, k).is_empty(), "{op} on {k}");
                }
            }
        }
    }

    #[test]
    fn every_kind_has_enough_ops() {
        for k in ObjKind::ALL {
            let n = ops_for(k, &UserOp::ALL).len();
            assert!(n >= 14, "{k}: only {n} ops");
        }
        assert!(!applies(UserOp::Free, ObjKind::Memfd));
        assert!(applies(UserOp::PunchHole, ObjKind::Tmpfs));
        assert!(!applies(UserOp::PunchHole, ObjKind::XfsPrivate));
        assert!(!applies(UserOp::Pwrite, ObjKind::Hugetlb));
        assert!(applies(UserOp::Pread, ObjKind::Hugetlb));
        assert!(!applies(UserOp::Pread, ObjKind::SharedAnon));
        assert!(applies(UserOp::KsmMerge, ObjKind::Ksm));
        assert!(!applies(UserOp::Writeback, ObjKind::Memfd));
        assert!(applies(UserOp::Free, ObjKind::Anon));
    }

    #[test]
    fn op_indices_and_words() {
        for (i, op) in UserOp::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
            use clap::ValueEnum;
            assert_eq!(
                op.to_possible_value().unwrap().get_name(),
                op.word(),
                "clap and word() disagree"
            );
        }
        for k in ObjKind::ALL {
            use clap::ValueEnum;
            assert_eq!(k.to_possible_value().unwrap().get_name(), k.word());
        }
    }

    #[test]
    fn moving_ops_pair_only_with_survivors() {
        use crate::pairs::Combo;
        use UserOp::*;
        assert!(Combo::new(vec![Mremap, Store]).compatible());
        assert!(Combo::new(vec![Mremap, MigratePages]).compatible());
        assert!(!Combo::new(vec![Mremap, Touch]).compatible());
        assert!(!Combo::new(vec![Mremap, Mremap]).compatible());
        assert!(Combo::new(vec![Touch, Fork]).compatible());
        assert!(Combo::new(vec![Uffd, Store]).compatible());
        assert!(!Combo::new(vec![Uffd, Uffd]).compatible());
        assert!(!Combo::new(vec![Truncate, Uffd, Store]).compatible());
        assert!(!Combo::new(vec![PunchHole, Uffd]).compatible());
        assert!(!Combo::new(vec![Populate, Uffd]).compatible());
        assert!(!Combo::new(vec![Refault, Uffd]).compatible());
        assert!(!Combo::new(vec![Refault, Mremap]).compatible());
        assert!(Combo::new(vec![Refault, PunchHole]).compatible());
        assert!(Combo::new(vec![Populate, Dontneed]).compatible());
        assert!(!Combo::new(vec![Mremap, Vmsplice]).compatible());
        assert_eq!(Combo::new(vec![Store, Fork]).name(), "store+fork");
    }

    #[test]
    fn drives_per_state_leave_out_huge_pmd_ops_without_a_huge_pmd() {
        use ObjState::*;
        use UserOp::*;
        let a = ObjKind::Anon;
        // mprotect-exec drives change_huge_pmd only: not in small or mthp.
        assert!(module_ops_in(MprotectExec, a, Small, &[MprotectExec, Store]).is_empty());
        assert!(module_ops_in(MprotectExec, a, Mthp, &[MprotectExec, Store]).is_empty());
        assert_eq!(
            module_ops_in(MprotectExec, a, Mthp, &[MprotectExec, Collapse]),
            [CHANGE_HUGE_PMD]
        );
        // split's three split a large folio: none on small; pageout
        // unmaps small folios too.
        assert!(module_ops_in(Split, ObjKind::Memfd, Small, &[Split, Store]).is_empty());
        assert_eq!(
            module_ops_in(Pageout, ObjKind::Memfd, Small, &[Pageout, Store]),
            [SWAP_OUT, TRY_TO_UNMAP]
        );
        assert_eq!(
            module_ops_in(MigratePages, a, Mthp, &[MigratePages, Store]),
            module_ops(MigratePages, a)
        );
        let all = [Populated, Fresh, PteMapped, Small, Mthp];
        // free's only module op is a huge-pmd one, but MADV_FREE works
        // on ptes too (unmetered): it rules out no state. Before, it kept
        // free to populated and fresh, where a lazyfree THP is discarded
        // whole by unmap_huge_pmd_locked(), never on ptes.
        assert_eq!(states_that_drive(a, &all, &[Free, Store]), all);
        assert_eq!(
            states_that_drive(a, &all, &[Free, Dontneed]),
            all,
            "dontneed's zap_range is on ptes"
        );
        // An op without module ops (cold) leaves the states as they are.
        assert_eq!(states_that_drive(a, &all, &[Cold, MigratePages]), all);
    }

    #[test]
    fn drives_need_the_part_of_the_object_the_op_acts_on_mapped() {
        use ObjState::*;
        use UserOp::*;
        let (a, m) = (ObjKind::Anon, ObjKind::Memfd);
        // A fresh object: pagemap walks no pmd unless the other op faults.
        assert!(module_ops_in(Pagemap, m, Fresh, &[Pagemap, ClearRefs]).is_empty());
        assert_eq!(
            module_ops_in(Pagemap, m, Fresh, &[Pagemap, Store]),
            [PAGEMAP_WALK]
        );
        assert_eq!(
            module_ops_in(Pagemap, m, Populated, &[Pagemap, ClearRefs]),
            [PAGEMAP_WALK]
        );
        // migrate-pages keeps its whole-mm mempolicy on a fresh object.
        assert_eq!(
            module_ops_in(MigratePages, a, Fresh, &[MigratePages, ClearRefs]),
            [MEMPOLICY]
        );
        // free's huge pmd is the hot THP's: ptes in pte-mapped.
        assert!(module_ops_in(Free, a, PteMapped, &[Free, Store]).is_empty());
        // dontneed zaps the hot THP: touch faults only the cold one, so
        // only its range zap (whole) is entered.
        assert_eq!(
            module_ops_in(Dontneed, a, Fresh, &[Dontneed, Touch]),
            [ZAP_RANGE]
        );
        // munmap-part's pmd_split is entered whether or not a huge pmd
        // is there (and its range zap, whole, always).
        assert_eq!(
            module_ops_in(MunmapPart, m, Fresh, &[MunmapPart, ClearRefs]),
            [PMD_SPLIT, ZAP_RANGE]
        );
        let all = [Populated, Fresh, PteMapped, Small, Mthp];
        assert_eq!(
            states_that_drive(a, &all, &[Pagemap, ClearRefs]),
            [Populated, PteMapped, Small, Mthp]
        );
    }

    #[test]
    fn pte_faults_are_claimed_where_ptes_map_the_object() {
        use ObjState::*;
        use UserOp::*;
        let a = ObjKind::Anon;
        // A first touch of small folios: do_anonymous_page, then the
        // zero page's COW.
        assert_eq!(
            module_ops_in(Touch, a, Small, &[Touch, MigratePages]),
            [ANON_FAULT, WP_FAULT]
        );
        // A huge pmd's own faults only where no pte maps the object...
        assert_eq!(
            module_ops_in(Touch, a, Populated, &[Touch, MigratePages]),
            [ANON_HUGE_FAULT, HUGE_PMD_WP]
        );
        // ...unless a fork's COW splits it (do_wp_page), or KSM merged.
        assert!(module_ops_in(Store, a, Populated, &[Store, Fork]).contains(&WP_FAULT));
        assert!(
            module_ops_in(Store, ObjKind::Ksm, Populated, &[Store, Dontneed]).contains(&WP_FAULT)
        );
        // do_fault maps shmem THPs too: claimed in every state.
        assert!(
            module_ops_in(Touch, ObjKind::Memfd, Populated, &[Touch, Smaps]).contains(&FILE_FAULT)
        );
        // Steering by need now draws small and mthp for fault pairs.
        let all = [Populated, Fresh, PteMapped, Small, Mthp];
        assert_eq!(states_that_drive(a, &all, &[Touch, MigratePages]), all);
        assert_eq!(module_ops(Odirect, a), [GUP_FAST, GUP]);
    }
}
