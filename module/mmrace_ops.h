/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one list of mm operations whose meetings mmrace.ko counts (debugfs
 * `meets`), and of the memory kinds it tells them apart by.
 *
 * MMRACE_OP(name, "symbol", "help"): an operation, the kernel function whose
 * entry and return bound it, and what it is. MMRACE_KIND(name, "help"): a
 * memory kind, decided from the folio or the VMA an operation works on.
 * Expanded by the module's C objects into their tables, and parsed by
 * userspace (userspace/proto/build.rs) from this same text: one entry per
 * line, exactly as below. The names are the interface (debugfs `meets`,
 * report.json, the driver's operation catalogue); a symbol may change with
 * the kernel, and a symbol the running kernel lacks or has inlined shows
 * as failed in debugfs `probes`.
 * No include guard: the includer defines MMRACE_OP and MMRACE_KIND first.
 */
#ifdef MMRACE_KIND
MMRACE_KIND(anon, "private anonymous memory")
MMRACE_KIND(ksm, "KSM-merged anonymous pages")
MMRACE_KIND(shmem, "shmem and tmpfs: memfd, MAP_SHARED|MAP_ANONYMOUS, tmpfs files")
MMRACE_KIND(file, "page cache of a regular filesystem (XFS)")
MMRACE_KIND(hugetlb, "hugetlbfs pages")
MMRACE_KIND(unknown, "an object whose kind could not be told")
#endif

#ifdef MMRACE_OP
MMRACE_OP(anon_huge_fault, "do_huge_pmd_anonymous_page", "first-touch fault of an anonymous THP")
MMRACE_OP(file_huge_map, "do_set_pmd", "a file or shmem THP mapped by a pmd at fault time")
MMRACE_OP(huge_pmd_wp, "do_huge_pmd_wp_page", "write fault on a read-only huge pmd: COW or reuse")
MMRACE_OP(anon_fault, "do_anonymous_page", "first touch of small or mTHP anonymous folios")
MMRACE_OP(file_fault, "do_fault", "a pte-level fault on file or shmem memory: read, COW or shared")
MMRACE_OP(wp_fault, "do_wp_page", "write fault on a read-only pte: COW or reuse")
MMRACE_OP(huge_pmd_numa, "do_huge_pmd_numa_page", "NUMA hinting fault on a huge pmd")
MMRACE_OP(numa_fault, "numa_migrate_check", "NUMA hinting fault on a pte (do_numa_page inlined)")
MMRACE_OP(pmd_split, "__split_huge_pmd", "split of a huge pmd into a page table")
MMRACE_OP(folio_split, "__folio_split", "split of a large folio")
MMRACE_OP(migrate_unmap, "try_to_migrate", "a folio's mappings replaced by migration entries")
MMRACE_OP(migrate_remove, "remove_migration_ptes", "migration entries replaced by the new folio")
MMRACE_OP(zap_huge_pmd, "zap_huge_pmd", "a huge pmd zapped: munmap, MADV_DONTNEED, exit")
MMRACE_OP(zap_range, "__zap_vma_range", "a VMA range zapped: munmap, DONTNEED, truncation, exit")
MMRACE_OP(change_huge_pmd, "change_huge_pmd", "a huge pmd's protection changed: mprotect, NUMA")
MMRACE_OP(move_huge_pmd, "move_huge_pmd", "a huge pmd moved by mremap")
MMRACE_OP(move_page_tables, "move_page_tables", "mremap's page-table move")
MMRACE_OP(madv_free_huge_pmd, "madvise_free_huge_pmd", "MADV_FREE of a huge pmd")
MMRACE_OP(copy_huge_pmd, "copy_huge_pmd", "fork's copy of a huge pmd")
MMRACE_OP(clear_refs, "clear_refs_write", "a /proc/PID/clear_refs write: the whole mm")
MMRACE_OP(smaps_walk, "smaps_pte_range", "/proc/PID/smaps walking a pmd")
MMRACE_OP(pagemap_walk, "pagemap_pmd_range", "/proc/PID/pagemap walking a pmd")
MMRACE_OP(gup, "__get_user_pages", "get_user_pages and pinning (O_DIRECT, move_pages)")
MMRACE_OP(gup_fast, "gup_fast_fallback", "GUP-fast: the lockless walk first (O_DIRECT, vmsplice)")
MMRACE_OP(madv_collapse, "madvise_collapse", "MADV_COLLAPSE of a range")
MMRACE_OP(collapse_file, "collapse_pte_mapped_thp", "a pte-mapped file/shmem THP remapped by a pmd")
MMRACE_OP(mempolicy, "do_migrate_pages", "migrate_pages(2) (migrate_to_node is inlined)")
MMRACE_OP(truncate_folio, "truncate_inode_folio", "a page-cache folio truncated or punched out")
MMRACE_OP(try_to_unmap, "try_to_unmap", "reclaim or split unmapping a folio")
MMRACE_OP(mlock_folio, "mlock_folio", "a folio mlocked")
MMRACE_OP(fork_mm, "dup_mmap", "fork copying an mm: the whole mm")
MMRACE_OP(exit_mm, "exit_mmap", "an mm torn down: the whole mm")
MMRACE_OP(swap_in, "do_swap_page", "a swap-in fault")
MMRACE_OP(swap_out, "folio_alloc_swap", "a folio given swap space for pageout")
MMRACE_OP(shmem_fault, "shmem_fault", "a fault on shmem or tmpfs")
MMRACE_OP(shmem_undo_range, "shmem_undo_range", "shmem truncate or hole punch")
MMRACE_OP(hugetlb_fault, "hugetlb_fault", "a hugetlb fault")
MMRACE_OP(hugetlb_unmap, "__unmap_hugepage_range", "hugetlb pages unmapped")
MMRACE_OP(hugetlb_copy, "copy_hugetlb_page_range", "fork copying hugetlb mappings")
MMRACE_OP(ksm_merge, "try_to_merge_one_page", "KSM merging a page")
MMRACE_OP(uffd_fill, "mfill_atomic_copy", "UFFDIO_COPY (7.3 inlines mfill_atomic)")
MMRACE_OP(uffd_move, "move_pages_huge_pmd", "UFFDIO_MOVE of a huge pmd (7.3 inlines move_pages)")
MMRACE_OP(uffd_wp, "mwriteprotect_range", "UFFDIO_WRITEPROTECT")
MMRACE_OP(evict_folio, "mapping_evict_folio", "an unused page-cache folio evicted (fadvise)")
#endif
