// SPDX-License-Identifier: GPL-2.0
/*
 * mmrace meets: which mm operations (mmrace_ops.h) meet on the same object.
 *
 * Every operation has a kretprobe on the kernel function that bounds it.
 * At entry, the operation's *keys* are read from its arguments (see the
 * key_* extractors below): fine keys (the page-table slot it holds, i.e.
 * the pmd pointer; the folio it works on) and coarse ones (the mm of its
 * VMA, the address_space of its file folio). An operation on a whole mm or
 * a whole file (clear_refs, fork, exit, mempolicy migration, GUP, ...) is
 * marked whole: it meets any operation with the same coarse key.
 *
 * The entering operation claims one of MEET_SLOTS in-flight slots (a bit in
 * `inflight`, lock free), publishes its keys there, then looks at every
 * other task's slot: each one that shares a key is a *meet*, counted in
 * meets[entering][holding][kind]. It also looks at the last MEET_RING
 * departures: one of another task that left a shared object less than
 * NEAR_NS ago is a *near* meet. At return the slot is copied to the
 * departures ring and released. The slot index travels from entry to return
 * in the kretprobe instance's data (ri->data): the operation may sleep and
 * come back on another CPU, and a task may hold several slots (migration ->
 * try_to_unmap -> split nest). A task never meets itself.
 *
 * What a probe reads: its arguments, the structures the caller holds for
 * the whole call (the VMA under mmap_lock or the VMA lock, a folio the
 * caller has locked or holds a reference on, the uffd context), and page
 * table entries through pmdp_get() and friends. A folio found in a huge pmd
 * may already be stale: it is only compared, never dereferenced, and the
 * kind comes from the VMA then. Slot and ring entries are read under a
 * seqcount without waiting: an entry being written is skipped (so two
 * operations entering at the same instant may miss each other).
 *
 * The kind of a meet is the entering operation's, or the holder's when the
 * entering one could not tell.
 */

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/hugetlb.h>
#include <linux/kprobes.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/kstrtox.h>
#include <linux/mutex.h>
#include <linux/pagewalk.h>
#include <linux/pgtable.h>
#include <linux/pid.h>
#include <linux/proc_fs.h>
#include <linux/ptrace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/seqlock.h>
#include <linux/shmem_fs.h>
#include <linux/userfaultfd_k.h>

#include "mmrace_attach.h"
#include "mmrace_meets.h"

enum meet_op {
#define MMRACE_OP(_name, _sym, _help) OP_##_name,
#include "mmrace_ops.h"
#undef MMRACE_OP
	NR_OPS
};

enum meet_kind {
#define MMRACE_KIND(_name, _help) KIND_##_name,
#include "mmrace_ops.h"
#undef MMRACE_KIND
	NR_KINDS
};

/* Trees before the folio mapping flags were renamed (7.2 and older). */
#ifndef FOLIO_MAPPING_FLAGS
#define FOLIO_MAPPING_FLAGS	PAGE_MAPPING_FLAGS
#endif

#define MEET_SLOTS	BITS_PER_LONG	/* in flight at once, all tasks */
#define MEET_RING	64		/* departures remembered for near */
#define MEET_FINE	3		/* fine keys per operation */
/*
 * The near window. Under TCG the guest runs mm code 10 to 50 times slower
 * than on hardware and a THP operation takes tens to hundreds of
 * microseconds of guest time, so 200 us would be shorter than the
 * operations it is meant to relate; 1 ms covers the next operation of a
 * racing loop. The ring (MEET_RING departures) bounds it further when
 * operations are frequent.
 */
#define NEAR_NS		(1000 * NSEC_PER_USEC)
/* kretprobe instances per operation: sleeping ops of many tasks. */
#define MEET_MAXACTIVE	128

struct meet_keys {
	unsigned long fine[MEET_FINE];	/* pmd slots and folios; 0: none */
	unsigned long mm;		/* the mm it works in; 0: unknown */
	unsigned long mapping;		/* a file folio's address_space */
	bool whole;			/* on the whole mm or mapping */
	u8 kind;
};

struct meet_slot {
	seqcount_t seq;
	struct meet_keys k;
	unsigned long task;
	u64 left_at;			/* ring entries: local_clock() at return */
	u16 op;
} ____cacheline_aligned;

static unsigned long inflight;		/* one bit per used slot */
static struct meet_slot slots[MEET_SLOTS];
static struct meet_slot ring[MEET_RING];
static atomic_t ring_next;

static atomic64_t meets[NR_OPS][NR_OPS][NR_KINDS];
static atomic64_t near[NR_OPS][NR_OPS][NR_KINDS];
/*
 * Alias overlaps: @entering started while another task's @holding was in
 * flight in the same mm (or file) with no fine key in common and neither
 * on the whole of it: the two ran at once on one mm but recorded different
 * objects (another pmd, or a folio against a pmd). What tells a pair that
 * never meets because its keys differ from one whose calls never overlap.
 */
static atomic64_t alias[NR_OPS][NR_OPS][NR_KINDS];

/*
 * Whether alias overlaps are counted (issue 17): a switch to measure what
 * counting them costs the operations (/sys/module/mmrace/parameters/
 * meets_alias, the driver's --meets-no-alias). Off, the in-flight scan
 * skips the alias test: meets and near meets are counted as before.
 */
static bool count_alias = true;
module_param_named(meets_alias, count_alias, bool, 0644);
MODULE_PARM_DESC(meets_alias, "count alias overlaps beside meets (default on)");
static atomic64_t calls[NR_OPS];
static atomic64_t dropped;		/* entries with every slot taken */

/* ---- reading objects safely -------------------------------------------- */

static unsigned long arg(struct pt_regs *regs, unsigned int n)
{
	return regs_get_kernel_argument(regs, n);
}

/* The folio a present huge pmd maps, as a key only (it may be stale). */
static unsigned long pmd_folio_key(pmd_t *pmdp)
{
	pmd_t pmd;

	if (!pmdp)
		return 0;
	pmd = pmdp_get(pmdp);
	if (!pmd_present(pmd) || !pmd_trans_huge(pmd))
		return 0;
	return (unsigned long)page_folio(pmd_page(pmd));
}

/*
 * The pmd slot of @addr in @mm, without locks: the caller holds mmap_lock
 * or the VMA lock, so the upper tables do not go away; 0 when there is no
 * pmd table (yet).
 */
static unsigned long pmd_slot(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;
	pud_t pudv;

	if (pgd_none(pgdp_get(pgd)) || pgd_bad(pgdp_get(pgd)))
		return 0;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(p4dp_get(p4d)) || p4d_bad(p4dp_get(p4d)))
		return 0;
	pud = pud_offset(p4d, addr);
	pudv = pudp_get(pud);
	if (!pud_present(pudv) || pud_leaf(pudv))
		return 0;
	return (unsigned long)pmd_offset(pud, addr);
}

static u8 vma_kind(const struct vm_area_struct *vma)
{
	if (!vma)
		return KIND_unknown;
	if (is_vm_hugetlb_page((struct vm_area_struct *)vma))
		return KIND_hugetlb;
	/* vma_is_anonymous(), whose argument is const only from 7.3 on */
	if (!vma->vm_ops)
		return KIND_anon;
	if (vma->vm_file && shmem_mapping(vma->vm_file->f_mapping))
		return KIND_shmem;
	return KIND_file;
}

/* The address_space of a file folio, 0 for anon, KSM or no mapping. */
static unsigned long folio_mapping_key(struct folio *folio)
{
	unsigned long m = (unsigned long)READ_ONCE(folio->mapping);

	return m & FOLIO_MAPPING_FLAGS ? 0 : m;
}

/* A folio the caller holds (locked or referenced): safe to look into. */
static u8 folio_kind(struct folio *folio)
{
	unsigned long mapping;

	if (!folio)
		return KIND_unknown;
	if (folio_test_hugetlb(folio))
		return KIND_hugetlb;
	if (folio_test_ksm(folio))
		return KIND_ksm;
	if (folio_test_anon(folio))
		return KIND_anon;
	mapping = folio_mapping_key(folio);
	if (!mapping)
		return KIND_unknown;
	return shmem_mapping((struct address_space *)mapping) ? KIND_shmem : KIND_file;
}

static void keys_vma(struct meet_keys *k, const struct vm_area_struct *vma)
{
	k->kind = vma_kind(vma);
	k->mm = vma ? (unsigned long)vma->vm_mm : 0;
}

static void keys_folio(struct meet_keys *k, unsigned int i, struct folio *folio)
{
	k->fine[i] = (unsigned long)folio;
	k->mapping = folio ? folio_mapping_key(folio) : 0;
	k->kind = folio_kind(folio);
}

/* A pmd the operation holds: its slot and the folio a huge one maps. */
static void keys_pmd(struct meet_keys *k, unsigned int i, pmd_t *pmdp)
{
	k->fine[i] = (unsigned long)pmdp;
	k->fine[i + 1] = pmd_folio_key(pmdp);
}

static void keys_whole_mm(struct meet_keys *k, struct mm_struct *mm)
{
	k->mm = (unsigned long)mm;
	k->whole = true;
}

/* A fault: struct vm_fault * in argument 0. */
static void keys_vmf(struct meet_keys *k, struct vm_fault *vmf)
{
	keys_vma(k, vmf->vma);
	keys_pmd(k, 0, vmf->pmd);
}

/* ---- one extractor per operation: false skips the call ---------------- */

typedef bool (*meet_extract_t)(struct pt_regs *regs, struct meet_keys *k);

/* do_huge_pmd_anonymous_page(vmf) */
static bool key_anon_huge_fault(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vmf(k, (struct vm_fault *)arg(regs, 0));
	return true;
}

/* do_set_pmd(vmf, folio, page): the folio is locked. */
static bool key_file_huge_map(struct pt_regs *regs, struct meet_keys *k)
{
	struct vm_fault *vmf = (struct vm_fault *)arg(regs, 0);

	keys_vmf(k, vmf);
	keys_folio(k, 1, (struct folio *)arg(regs, 1));
	return true;
}

/* do_huge_pmd_wp_page(vmf) */
static bool key_huge_pmd_wp(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vmf(k, (struct vm_fault *)arg(regs, 0));
	return true;
}

/* do_anonymous_page(vmf): the pte table's pmd slot, no folio yet. */
static bool key_anon_fault(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vmf(k, (struct vm_fault *)arg(regs, 0));
	return true;
}

/* do_fault(vmf): read, COW or shared fault of a file or shmem page. */
static bool key_file_fault(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vmf(k, (struct vm_fault *)arg(regs, 0));
	return true;
}

/*
 * do_wp_page(vmf), under the pte lock: the pmd slot, and the folio the
 * read-only pte maps (compared only; a special or invalid pfn has none).
 */
static bool key_wp_fault(struct pt_regs *regs, struct meet_keys *k)
{
	struct vm_fault *vmf = (struct vm_fault *)arg(regs, 0);
	pte_t pte = vmf->orig_pte;

	keys_vmf(k, vmf);
	if (pte_present(pte) && !pte_special(pte) && pfn_valid(pte_pfn(pte)))
		k->fine[2] = (unsigned long)page_folio(pte_page(pte));
	return true;
}

/* do_huge_pmd_numa_page(vmf) */
static bool key_huge_pmd_numa(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vmf(k, (struct vm_fault *)arg(regs, 0));
	return true;
}

/*
 * numa_migrate_check(folio, vmf, ...), under the pte lock: 7.3 inlines
 * do_numa_page(). do_huge_pmd_numa_page() calls it too: a leaf pmd is
 * that one, skipped (huge_pmd_numa counts it).
 */
static bool key_numa_fault(struct pt_regs *regs, struct meet_keys *k)
{
	struct vm_fault *vmf = (struct vm_fault *)arg(regs, 1);

	if (pmd_leaf(pmdp_get(vmf->pmd)))
		return false;
	keys_vma(k, vmf->vma);
	k->fine[0] = (unsigned long)vmf->pmd;
	keys_folio(k, 1, (struct folio *)arg(regs, 0));
	return true;
}

/* __split_huge_pmd(vma, pmd, address, freeze) */
static bool key_pmd_split(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 0));
	keys_pmd(k, 0, (pmd_t *)arg(regs, 1));
	return true;
}

/* __folio_split(folio, ...): locked. */
static bool key_folio_split(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 0));
	return true;
}

/* try_to_migrate(folio, flags): locked. */
static bool key_migrate_unmap(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 0));
	return true;
}

/* remove_migration_ptes(src, dst, flags): both locked. */
static bool key_migrate_remove(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 1));
	k->fine[1] = arg(regs, 0);
	return true;
}

/* zap_huge_pmd(tlb, vma, pmd, addr) */
static bool key_zap_huge_pmd(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 1));
	keys_pmd(k, 0, (pmd_t *)arg(regs, 2));
	return true;
}

/* change_huge_pmd(tlb, vma, pmd, addr, newprot, cp_flags) */
static bool key_change_huge_pmd(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 1));
	keys_pmd(k, 0, (pmd_t *)arg(regs, 2));
	return true;
}

/* move_huge_pmd(vma, old_addr, new_addr, old_pmd, new_pmd) */
static bool key_move_huge_pmd(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 0));
	keys_pmd(k, 0, (pmd_t *)arg(regs, 3));
	k->fine[2] = arg(regs, 4);
	return true;
}

/*
 * move_page_tables(pmc): a range of the mm; struct pagetable_move_control
 * (mm/internal.h) starts with the source VMA.
 */
static bool key_move_page_tables(struct pt_regs *regs, struct meet_keys *k)
{
	struct vm_area_struct *vma = *(struct vm_area_struct **)arg(regs, 0);

	keys_vma(k, vma);
	k->whole = true;
	return true;
}

/* __zap_vma_range(tlb, vma, start, end, details): a range. */
static bool key_zap_range(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 1));
	k->whole = true;
	return true;
}

/* madvise_free_huge_pmd(tlb, vma, pmd, addr, next) */
static bool key_madv_free_huge_pmd(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 1));
	keys_pmd(k, 0, (pmd_t *)arg(regs, 2));
	return true;
}

/* copy_huge_pmd(dst_mm, src_mm, dst_pmd, src_pmd, addr, dst_vma, src_vma) */
static bool key_copy_huge_pmd(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 6));
	keys_pmd(k, 0, (pmd_t *)arg(regs, 3));
	k->fine[2] = arg(regs, 2);
	return true;
}

/*
 * The PID of a /proc/PID/FILE or /proc/PID/task/TID/FILE: the name of its
 * directory (proc's PID directories are never renamed), or 0.
 */
static int proc_file_pid(struct file *file)
{
	struct dentry *dir = READ_ONCE(file->f_path.dentry->d_parent);
	const unsigned char *name = READ_ONCE(dir->d_name.name);
	char buf[12];
	unsigned int i;
	int nr;

	for (i = 0; i < sizeof(buf) - 1 && name[i]; i++)
		buf[i] = name[i];
	buf[i] = 0;
	return kstrtoint(buf, 10, &nr) ? 0 : nr;
}

/*
 * clear_refs_write(file, buf, count, ppos): the mm of the /proc file's
 * task, found under RCU as get_proc_task() would (its struct proc_inode is
 * not visible to modules), without taking references: the mm is a key.
 */
static bool key_clear_refs(struct pt_regs *regs, struct meet_keys *k)
{
	struct file *file = (struct file *)arg(regs, 0);
	int nr = proc_file_pid(file);
	struct task_struct *task;

	if (nr <= 0)
		return false;
	rcu_read_lock();
	task = pid_task(find_pid_ns(nr, proc_pid_ns(file_inode(file)->i_sb)), PIDTYPE_PID);
	if (task)
		keys_whole_mm(k, READ_ONCE(task->mm));
	rcu_read_unlock();
	k->kind = KIND_unknown;
	return k->mm;
}

/* smaps_pte_range(pmd, addr, end, walk) */
static bool key_smaps_walk(struct pt_regs *regs, struct meet_keys *k)
{
	struct mm_walk *walk = (struct mm_walk *)arg(regs, 3);

	keys_vma(k, walk->vma);
	keys_pmd(k, 0, (pmd_t *)arg(regs, 0));
	return true;
}

/* pagemap_pmd_range(pmdp, addr, end, walk) */
static bool key_pagemap_walk(struct pt_regs *regs, struct meet_keys *k)
{
	struct mm_walk *walk = (struct mm_walk *)arg(regs, 3);

	keys_vma(k, walk->vma);
	keys_pmd(k, 0, (pmd_t *)arg(regs, 0));
	return true;
}

/* __get_user_pages(mm, start, nr_pages, gup_flags, pages, locked) */
static bool key_gup(struct pt_regs *regs, struct meet_keys *k)
{
	keys_whole_mm(k, (struct mm_struct *)arg(regs, 0));
	k->kind = KIND_unknown;
	return true;
}

/* gup_fast_fallback(start, nr_pages, gup_flags, pages): current's mm. */
static bool key_gup_fast(struct pt_regs *regs, struct meet_keys *k)
{
	keys_whole_mm(k, current->mm);
	k->kind = KIND_unknown;
	return true;
}

/* madvise_collapse(vma, start, end, lock_dropped): a range. */
static bool key_madv_collapse(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 0));
	k->whole = true;
	return true;
}

/* collapse_pte_mapped_thp(mm, addr, install_pmd): under mmap_lock. */
static bool key_collapse_file(struct pt_regs *regs, struct meet_keys *k)
{
	struct mm_struct *mm = (struct mm_struct *)arg(regs, 0);

	k->mm = (unsigned long)mm;
	k->fine[0] = pmd_slot(mm, arg(regs, 1));
	k->kind = KIND_unknown;
	return true;
}

/* do_migrate_pages(mm, from, to, flags): 7.3 inlines migrate_to_node(). */
static bool key_mempolicy(struct pt_regs *regs, struct meet_keys *k)
{
	keys_whole_mm(k, (struct mm_struct *)arg(regs, 0));
	k->kind = KIND_unknown;
	return true;
}

/* truncate_inode_folio(mapping, folio): locked. */
static bool key_truncate_folio(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 1));
	return true;
}

/* mapping_evict_folio(mapping, folio): locked, its mapping checked. */
static bool key_evict_folio(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 1));
	return true;
}

/* try_to_unmap(folio, flags): locked. */
static bool key_try_to_unmap(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 0));
	return true;
}

/* mlock_folio(folio): mapped, under the page-table lock. */
static bool key_mlock_folio(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 0));
	return true;
}

/* dup_mmap(mm, oldmm): the parent's mm, whole. */
static bool key_fork_mm(struct pt_regs *regs, struct meet_keys *k)
{
	keys_whole_mm(k, (struct mm_struct *)arg(regs, 1));
	k->kind = KIND_unknown;
	return true;
}

/* exit_mmap(mm) */
static bool key_exit_mm(struct pt_regs *regs, struct meet_keys *k)
{
	keys_whole_mm(k, (struct mm_struct *)arg(regs, 0));
	k->kind = KIND_unknown;
	return true;
}

/* do_swap_page(vmf) */
static bool key_swap_in(struct pt_regs *regs, struct meet_keys *k)
{
	struct vm_fault *vmf = (struct vm_fault *)arg(regs, 0);

	keys_vma(k, vmf->vma);
	k->fine[0] = (unsigned long)vmf->pmd;
	return true;
}

/* folio_alloc_swap(folio): locked. */
static bool key_swap_out(struct pt_regs *regs, struct meet_keys *k)
{
	keys_folio(k, 0, (struct folio *)arg(regs, 0));
	return true;
}

/* shmem_fault(vmf) */
static bool key_shmem_fault(struct pt_regs *regs, struct meet_keys *k)
{
	struct vm_fault *vmf = (struct vm_fault *)arg(regs, 0);

	keys_vmf(k, vmf);
	if (vmf->vma->vm_file)
		k->mapping = (unsigned long)vmf->vma->vm_file->f_mapping;
	return true;
}

/* shmem_undo_range(inode, lstart, lend, unfalloc): the whole mapping. */
static bool key_shmem_undo_range(struct pt_regs *regs, struct meet_keys *k)
{
	struct inode *inode = (struct inode *)arg(regs, 0);

	k->mapping = (unsigned long)inode->i_mapping;
	k->whole = true;
	k->kind = KIND_shmem;
	return true;
}

/* hugetlb_fault(mm, vma, address, flags): the pmd slot of a 2M page. */
static bool key_hugetlb_fault(struct pt_regs *regs, struct meet_keys *k)
{
	struct mm_struct *mm = (struct mm_struct *)arg(regs, 0);

	keys_vma(k, (struct vm_area_struct *)arg(regs, 1));
	k->fine[0] = pmd_slot(mm, arg(regs, 2));
	return true;
}

/* __unmap_hugepage_range(tlb, vma, start, end, folio, zap_flags) */
static bool key_hugetlb_unmap(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 1));
	k->whole = true;
	return true;
}

/* copy_hugetlb_page_range(dst, src, dst_vma, src_vma) */
static bool key_hugetlb_copy(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 3));
	k->whole = true;
	return true;
}

/* try_to_merge_one_page(vma, page, kpage): the page's folio is locked. */
static bool key_ksm_merge(struct pt_regs *regs, struct meet_keys *k)
{
	struct page *kpage = (struct page *)arg(regs, 2);

	keys_folio(k, 0, page_folio((struct page *)arg(regs, 1)));
	k->fine[1] = kpage ? (unsigned long)page_folio(kpage) : 0;
	k->mm = (unsigned long)((struct vm_area_struct *)arg(regs, 0))->vm_mm;
	return true;
}

/* mfill_atomic_copy(ctx, ...): 7.3 inlines mfill_atomic(); a range. */
static bool key_uffd_fill(struct pt_regs *regs, struct meet_keys *k)
{
	keys_whole_mm(k, ((struct userfaultfd_ctx *)arg(regs, 0))->mm);
	k->kind = KIND_unknown;
	return true;
}

/*
 * move_pages_huge_pmd(mm, dst_pmd, src_pmd, dst_pmdval, dst_vma, src_vma,
 * ...): 7.3 inlines move_pages() into the ioctl; its huge pmd moves.
 */
static bool key_uffd_move(struct pt_regs *regs, struct meet_keys *k)
{
	keys_vma(k, (struct vm_area_struct *)arg(regs, 5));
	keys_pmd(k, 0, (pmd_t *)arg(regs, 2));
	k->fine[2] = arg(regs, 1);
	return true;
}

/* mwriteprotect_range(ctx, start, len, enable_wp): a range. */
static bool key_uffd_wp(struct pt_regs *regs, struct meet_keys *k)
{
	keys_whole_mm(k, ((struct userfaultfd_ctx *)arg(regs, 0))->mm);
	k->kind = KIND_unknown;
	return true;
}

/* ---- the tables ----------------------------------------------------------- */

struct meet_op_info {
	const char *name;
	const char *symbol;
	meet_extract_t extract;
};

static const struct meet_op_info op_info[NR_OPS] = {
#define MMRACE_OP(_name, _sym, _help) \
	[OP_##_name] = { .name = #_name, .symbol = _sym, .extract = key_##_name },
#include "mmrace_ops.h"
#undef MMRACE_OP
};

static const struct {
	const char *name;
} kind_info[NR_KINDS] = {
#define MMRACE_KIND(_name, _help) { .name = #_name },
#include "mmrace_ops.h"
#undef MMRACE_KIND
};

/* ---- the hot path ------------------------------------------------------- */

static bool keys_meet(const struct meet_keys *a, const struct meet_keys *b)
{
	unsigned int i, j;

	for (i = 0; i < MEET_FINE; i++) {
		if (!a->fine[i])
			continue;
		for (j = 0; j < MEET_FINE; j++)
			if (a->fine[i] == b->fine[j])
				return true;
	}
	if (!a->whole && !b->whole)
		return false;
	return (a->mm && a->mm == b->mm) || (a->mapping && a->mapping == b->mapping);
}

/* A consistent copy of @s, or false while it is being written. */
static bool slot_read(const struct meet_slot *s, struct meet_slot *copy)
{
	unsigned int seq = raw_read_seqcount(&s->seq);

	if (seq & 1)
		return false;
	copy->k = s->k;
	copy->task = s->task;
	copy->op = s->op;
	copy->left_at = s->left_at;
	return !read_seqcount_retry(&s->seq, seq);
}

static void slot_write(struct meet_slot *s, const struct meet_keys *k, unsigned long task,
		       u16 op, u64 left_at)
{
	raw_write_seqcount_begin(&s->seq);
	s->k = *k;
	s->task = task;
	s->op = op;
	s->left_at = left_at;
	raw_write_seqcount_end(&s->seq);
}

static void count_meet(atomic64_t (*m)[NR_OPS][NR_KINDS], u16 entering,
		       const struct meet_slot *held, u8 kind)
{
	if (kind == KIND_unknown)
		kind = held->k.kind;
	atomic64_inc(&m[entering][held->op][kind]);
}

/* Same mm or file, no fine key shared, neither whole (see alias). */
static bool keys_alias(const struct meet_keys *a, const struct meet_keys *b)
{
	return (a->mm && a->mm == b->mm) || (a->mapping && a->mapping == b->mapping);
}

/* Meets (and alias overlaps) with every other task's operation in flight. */
static void scan_inflight(unsigned int self, u16 op, const struct meet_keys *k)
{
	unsigned long busy = READ_ONCE(inflight) & ~BIT(self);
	unsigned long task = (unsigned long)current;
	struct meet_slot s;
	unsigned int i;

	for_each_set_bit(i, &busy, MEET_SLOTS) {
		if (!slot_read(&slots[i], &s) || s.task == task)
			continue;
		if (keys_meet(k, &s.k))
			count_meet(meets, op, &s, k->kind);
		else if (READ_ONCE(count_alias) && keys_alias(k, &s.k))
			count_meet(alias, op, &s, k->kind);
	}
}

/*
 * Near meets: another task's departures from a shared object. The ring is
 * read newest first and the scan stops at the first departure older than
 * the window, so a busy run reads the few entries of the last NEAR_NS, not
 * all MEET_RING (the departures of two CPUs interleave, so a slightly
 * older one may hide a newer one behind it: a near meet missed, never a
 * wrong one). A departure stamped after @now, by another CPU's clock,
 * counts as within the window.
 */
static void scan_ring(u16 op, const struct meet_keys *k, u64 now)
{
	unsigned int newest = (unsigned int)atomic_read(&ring_next);
	unsigned long task = (unsigned long)current;
	struct meet_slot s;
	unsigned int i;

	for (i = 0; i < MEET_RING; i++) {
		if (!slot_read(&ring[(newest - i) % MEET_RING], &s))
			continue;
		if (!s.left_at || (s.left_at < now && now - s.left_at > NEAR_NS))
			break;
		if (s.task != task && keys_meet(k, &s.k))
			count_meet(near, op, &s, k->kind);
	}
}

static int slot_claim(void)
{
	unsigned long busy;
	unsigned int i;

	do {
		busy = READ_ONCE(inflight);
		if (busy == ~0UL)
			return -1;
		i = ffz(busy);
	} while (test_and_set_bit(i, &inflight));
	return i;
}

static struct kretprobe op_probes[NR_OPS];

static u16 op_of(struct kretprobe_instance *ri)
{
	return get_kretprobe(ri) - op_probes;
}

static int op_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	u16 op = op_of(ri);
	struct meet_keys k = { .kind = KIND_unknown };
	int *slot = (int *)ri->data;

	if (!op_info[op].extract(regs, &k))
		return 1;
	atomic64_inc(&calls[op]);
	*slot = slot_claim();
	if (*slot < 0) {
		atomic64_inc(&dropped);
		return 1;	/* no return probe */
	}
	slot_write(&slots[*slot], &k, (unsigned long)current, op, 0);
	scan_inflight(*slot, op, &k);
	scan_ring(op, &k, local_clock());
	return 0;
}

static int op_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	int slot = *(int *)ri->data;
	struct meet_slot *s = &slots[slot];
	unsigned int r = (unsigned int)atomic_inc_return(&ring_next) % MEET_RING;

	slot_write(&ring[r], &s->k, s->task, s->op, local_clock());
	clear_bit(slot, &inflight);
	return 0;
}

/* ---- register, arm, disarm, read ---------------------------------------- */

/*
 * The probes are registered at the first meets_enable=1 and stay registered
 * until the module exit; meets_enable 1/0 then arms and disarms them
 * (enable_kretprobe/disable_kretprobe). A disarmed kprobe leaves no trap in
 * the probed function, so 0 costs nothing, and a driver that samples meets
 * (arms them a fraction of the time) does not pay for an unregister, which
 * waits for an RCU grace period and, for an optimized kprobe, for the
 * optimizer: seconds under TCG. An operation in flight when its probe is
 * disarmed still runs its return handler, which releases its slot.
 */
static struct mmrace_probe op_attach[NR_OPS];
static DEFINE_MUTEX(meets_lock);	/* registration, arming */
static bool registered;
static bool enabled;

/* A kretprobe is registered once, from a fresh struct. */
static void op_init(unsigned int i)
{
	op_probes[i] = (struct kretprobe) {
		.kp.symbol_name = op_info[i].symbol,
		.entry_handler = op_entry,
		.handler = op_return,
		.data_size = sizeof(int),
		.maxactive = MEET_MAXACTIVE,
	};
	op_attach[i] = (struct mmrace_probe) {
		.name = op_info[i].symbol,
		.kind = MMRACE_KRETPROBE,
		.rp = &op_probes[i],
	};
}

/* Registers every probe, armed. */
static void ops_register(void)
{
	unsigned int i;

	for (i = 0; i < NR_OPS; i++) {
		op_init(i);
		mmrace_probe_attach(&op_attach[i]);
	}
	registered = true;
}

/* Arms or disarms every registered probe; a failure shows in its status. */
static void ops_arm(bool on)
{
	unsigned int i;

	for (i = 0; i < NR_OPS; i++) {
		if (op_attach[i].status)
			continue;
		if (on)
			op_attach[i].status = enable_kretprobe(&op_probes[i]);
		else
			disable_kretprobe(&op_probes[i]);
	}
}

/* One unregister_kretprobes(): one RCU grace period for all. */
static void ops_unregister(void)
{
	struct kretprobe *rps[NR_OPS];
	unsigned int i, n = 0;

	for (i = 0; i < NR_OPS; i++) {
		if (op_attach[i].status)
			continue;
		rps[n++] = &op_probes[i];
		op_attach[i].status = -ENODEV;
	}
	if (n)
		unregister_kretprobes(rps, n);
	/* No handler runs any more, and pending returns never will. */
	WRITE_ONCE(inflight, 0);
	registered = false;
}

void mmrace_meets_stop(void)
{
	mutex_lock(&meets_lock);
	if (registered)
		ops_unregister();
	WRITE_ONCE(enabled, false);
	mutex_unlock(&meets_lock);
}

bool mmrace_meets_enabled(void)
{
	return READ_ONCE(enabled);
}

int mmrace_meets_set_enabled(bool on)
{
	mutex_lock(&meets_lock);
	if (on && !registered)
		ops_register();
	else if (on != enabled)
		ops_arm(on);
	WRITE_ONCE(enabled, on);
	mutex_unlock(&meets_lock);
	return 0;
}

unsigned int mmrace_meets_nr_ops(void)
{
	return NR_OPS;
}

const char *mmrace_meets_op_name(unsigned int op)
{
	return op < NR_OPS ? op_info[op].name : "?";
}

const char *mmrace_meets_op_symbol(unsigned int op)
{
	return op < NR_OPS ? op_info[op].symbol : "?";
}

int mmrace_meets_op_status(unsigned int op)
{
	if (op >= NR_OPS)
		return -EINVAL;
	if (!READ_ONCE(enabled))
		return 1;
	return READ_ONCE(op_attach[op].status);
}

u64 mmrace_meets_op_calls(unsigned int op)
{
	return op < NR_OPS ? atomic64_read(&calls[op]) : 0;
}

unsigned int mmrace_meets_nr_kinds(void)
{
	return NR_KINDS;
}

const char *mmrace_meets_kind_name(unsigned int kind)
{
	return kind < NR_KINDS ? kind_info[kind].name : "?";
}

void mmrace_meets_cell(unsigned int entering, unsigned int holding, unsigned int kind,
		       struct mmrace_meet_count *out)
{
	if (entering >= NR_OPS || holding >= NR_OPS || kind >= NR_KINDS) {
		*out = (struct mmrace_meet_count) {};
		return;
	}
	out->meets = atomic64_read(&meets[entering][holding][kind]);
	out->near = atomic64_read(&near[entering][holding][kind]);
	out->alias = atomic64_read(&alias[entering][holding][kind]);
}

void mmrace_meets_reset(void)
{
	unsigned int e, h, k;

	atomic64_set(&dropped, 0);
	for (e = 0; e < NR_OPS; e++) {
		atomic64_set(&calls[e], 0);
		for (h = 0; h < NR_OPS; h++)
			for (k = 0; k < NR_KINDS; k++) {
				atomic64_set(&meets[e][h][k], 0);
				atomic64_set(&near[e][h][k], 0);
				atomic64_set(&alias[e][h][k], 0);
			}
	}
}

u64 mmrace_meets_dropped(void)
{
	return atomic64_read(&dropped);
}

unsigned int mmrace_meets_near_us(void)
{
	return NEAR_NS / NSEC_PER_USEC;
}
