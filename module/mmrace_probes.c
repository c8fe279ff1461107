// SPDX-License-Identifier: GPL-2.0
/*
 * mmrace probes: the kprobes, kretprobes and tracepoints behind the counters
 * in mmrace_counters.h. The Rust side (mmrace_main.rs) owns the module and
 * its debugfs files and reads the counters through mmrace_probes.h; the
 * probes are attached through mmrace_attach.c, which lists this object's
 * table (mmrace_thp_probes) with the others.
 *
 * A probe whose symbol is missing on the running kernel is reported as
 * failed in debugfs `probes` and its counters stay at zero; it never fails
 * the module load.
 */

#include <linux/atomic.h>
#include <linux/errno.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/leafops.h>
#include <linux/mm.h>
#include <linux/ptrace.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/uaccess.h>

#include "mmrace_attach.h"
#include "mmrace_counter_ids.h"
#include "mmrace_probes.h"

/* ---- counters ---------------------------------------------------------- */

struct counter_info {
	const char *name;
	const char *help;
};

static const struct counter_info counter_info[] = {
#define MMRACE_COUNTER(_name, _help) { .name = #_name, .help = _help },
#include "mmrace_counters.h"
#undef MMRACE_COUNTER
};

static atomic64_t counters[MMRACE_NR_COUNTERS];

static void count(enum mmrace_counter c)
{
	atomic64_inc(&counters[c]);
}

static void count_add(enum mmrace_counter c, unsigned long n)
{
	if (n)
		atomic64_add(n, &counters[c]);
}

/* For the other C objects (mmrace_counter_ids.h). */
void mmrace_count(enum mmrace_counter c)
{
	count(c);
}

void mmrace_count_add(enum mmrace_counter c, unsigned long n)
{
	count_add(c, n);
}

unsigned int mmrace_nr_counters(void)
{
	return MMRACE_NR_COUNTERS;
}

const char *mmrace_counter_name(unsigned int i)
{
	return i < MMRACE_NR_COUNTERS ? counter_info[i].name : "?";
}

const char *mmrace_counter_help(unsigned int i)
{
	return i < MMRACE_NR_COUNTERS ? counter_info[i].help : "?";
}

u64 mmrace_counter_read(unsigned int i)
{
	return i < MMRACE_NR_COUNTERS ? atomic64_read(&counters[i]) : 0;
}

void mmrace_counters_reset(void)
{
	unsigned int i;

	for (i = 0; i < MMRACE_NR_COUNTERS; i++)
		atomic64_set(&counters[i], 0);
}

/* ---- where a call came from ------------------------------------------- */

/* A function's text, found through kallsyms at register time. */
struct text_range {
	unsigned long start;
	unsigned long size;
};

/*
 * Looks up @name's start and size. kallsyms_lookup_name() is not exported,
 * so the start comes from a probe registration and the size from the
 * "name+0x0/0xsize" form sprint_symbol() prints.
 */
static int text_range_lookup(const char *name, struct text_range *r)
{
	struct kprobe kp = { .symbol_name = name };
	char sym[KSYM_SYMBOL_LEN];
	char *slash;
	int ret;

	ret = register_kprobe(&kp);
	if (ret)
		return ret;
	r->start = (unsigned long)kp.addr - kp.offset;
	unregister_kprobe(&kp);

	sprint_symbol(sym, r->start);
	slash = strrchr(sym, '/');
	if (!slash || kstrtoul(slash + 1, 16, &r->size) || !r->size)
		return -ENOENT;
	return 0;
}

static bool text_range_has(const struct text_range *r, unsigned long addr)
{
	return addr - r->start < r->size;
}

/* Whether @r's code contains a direct call (e8 rel32) to @target. */
static bool text_range_calls(const struct text_range *r, unsigned long target)
{
	const u8 *p = (const u8 *)r->start;
	unsigned long i;
	s32 rel;

	for (i = 0; i + 5 <= r->size; i++) {
		if (p[i] != 0xe8)
			continue;
		memcpy(&rel, p + i + 1, sizeof(rel));
		if (r->start + i + 5 + rel == target)
			return true;
	}
	return false;
}

/* ---- soft-dirty clears: clear_refs_write() ---------------------------- */

/* Whether the user buffer reads "4": clear_refs_write() parses it so too. */
static bool user_buf_is_softdirty(const char __user *ubuf, size_t count)
{
	char buf[8] = {};

	if (copy_from_user_nofault(buf, ubuf, min(count, sizeof(buf) - 1)))
		return false;
	return !strcmp(strim(buf), "4");
}

static int clear_refs_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	bool *softdirty = (bool *)ri->data;

	*softdirty = user_buf_is_softdirty((const char __user *)regs_get_kernel_argument(regs, 1),
					   regs_get_kernel_argument(regs, 2));
	return *softdirty ? 0 : 1;	/* 1: no return probe needed */
}

static int clear_refs_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	if ((long)regs_return_value(regs) > 0)
		count(MMRACE_softdirty_clear);
	return 0;
}

static struct kretprobe clear_refs_probe = {
	.kp.symbol_name = "clear_refs_write",
	.entry_handler = clear_refs_entry,
	.handler = clear_refs_return,
	.data_size = sizeof(bool),
	.maxactive = 64,
};

/* ---- pmd splits and the pmd race: split_huge_pmd_locked() ------------- */

/*
 * __split_huge_pmd() is reached from the split_huge_pmd() macro, which
 * looked at the pmd without the page-table lock. When it calls
 * split_huge_pmd_locked() the lock is held, so a pmd that is then neither
 * huge nor a migration entry changed under the caller's feet: the race.
 * split_huge_pmd_address() and the rmap walkers call split_huge_pmd_locked()
 * from elsewhere and did no unlocked check, so they are not counted.
 */
static struct text_range racy_caller;
static bool racy_caller_ok;

/* This object's probes, in attach order (the table is at the end). */
enum {
	PROBE_CLEAR_REFS,
	PROBE_SPLIT_PMD_LOCKED,
	PROBE_RACY_CALLER,	/* needs PROBE_SPLIT_PMD_LOCKED attached */
	PROBE_FOLIO_SPLIT,
	PROBE_MIGRATE_TP,
	NR_PROBES
};

static struct mmrace_probe probes[NR_PROBES];

static int split_pmd_locked_pre(struct kprobe *p, struct pt_regs *regs)
{
	pmd_t *pmdp = (pmd_t *)regs_get_kernel_argument(regs, 2);
	bool freeze = regs_get_kernel_argument(regs, 3);
	unsigned long ret_addr = regs_get_kernel_stack_nth(regs, 0);
	pmd_t pmd = pmdp_get(pmdp);

	count(MMRACE_pmd_split);
	if (freeze)
		count(MMRACE_pmd_split_freeze);
	if (pmd_trans_huge(pmd) || pmd_is_valid_softleaf(pmd))
		count(MMRACE_pmd_split_done);
	else if (racy_caller_ok && text_range_has(&racy_caller, ret_addr))
		count(MMRACE_pmd_race);
	return 0;
}

static struct kprobe split_pmd_locked_probe = {
	.symbol_name = "split_huge_pmd_locked",
	.pre_handler = split_pmd_locked_pre,
};

/*
 * The return address tells the caller apart only if __split_huge_pmd()
 * calls split_huge_pmd_locked() out of line (else the counter would stay
 * at zero) and split_huge_pmd_address() does not reach it through an
 * out-of-line __split_huge_pmd() (else its splits, which follow no unlocked
 * check, would count as races). A kernel built otherwise gets an attach
 * failure, never a wrong count.
 */
static int racy_caller_lookup(void)
{
	struct text_range by_address;
	int ret;

	/* The scan below reads x86 call instructions (e8 rel32). */
	if (!IS_ENABLED(CONFIG_X86))
		return -EOPNOTSUPP;
	if (probes[PROBE_SPLIT_PMD_LOCKED].status)
		return -ENOENT;
	ret = text_range_lookup("__split_huge_pmd", &racy_caller);
	if (ret)
		return ret;
	if (!text_range_calls(&racy_caller, (unsigned long)split_pmd_locked_probe.addr))
		return -EOPNOTSUPP;
	ret = text_range_lookup("split_huge_pmd_address", &by_address);
	if (ret)
		return ret;
	if (text_range_calls(&by_address, racy_caller.start))
		return -EOPNOTSUPP;
	racy_caller_ok = true;
	return 0;
}

static void racy_caller_forget(void)
{
	racy_caller_ok = false;
}

/* ---- THP splits: __folio_split() -------------------------------------- */

/*
 * Counts splits of PMD-sized folios only, as vmstat's thp_split_page and
 * thp_split_page_failed do, so the two can be compared.
 */
static int folio_split_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct folio *folio = (struct folio *)regs_get_kernel_argument(regs, 0);

	if (folio_order(folio) != HPAGE_PMD_ORDER)
		return 1;
	count(MMRACE_thp_split);
	return 0;
}

static int folio_split_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	/* __folio_split() returns int: the upper half of rax is undefined. */
	int ret = (int)regs_return_value(regs);

	if (!ret)
		return 0;
	count(MMRACE_thp_split_failed);
	if (ret == -EAGAIN)
		count(MMRACE_thp_split_eagain);
	else if (ret == -EBUSY)
		count(MMRACE_thp_split_ebusy);
	else if (ret == -EINVAL)
		count(MMRACE_thp_split_einval);
	else if (ret == -ENOMEM)
		count(MMRACE_thp_split_enomem);
	else
		count(MMRACE_thp_split_other);
	return 0;
}

static struct kretprobe folio_split_probe = {
	.kp.symbol_name = "__folio_split",
	.entry_handler = folio_split_entry,
	.handler = folio_split_return,
	.maxactive = 64,
};

/* ---- migration: the mm_migrate_pages tracepoint ----------------------- */

/* Matches TP_PROTO of mm_migrate_pages in include/trace/events/migrate.h. */
static void migrate_pages_tp(void *data, unsigned long succeeded, unsigned long failed,
			     unsigned long thp_succeeded, unsigned long thp_failed,
			     unsigned long thp_split, unsigned long large_folio_split,
			     int mode, int reason)
{
	count_add(MMRACE_migrate_pages, succeeded);
	count_add(MMRACE_thp_migrate, thp_succeeded);
	count_add(MMRACE_thp_migrate_failed, thp_failed);
}

static struct mmrace_tp migrate_tp = {
	.name = "mm_migrate_pages",
	.func = migrate_pages_tp,
};

/* ---- the probe table --------------------------------------------------- */

static const struct mmrace_check racy_caller_check = {
	.attach = racy_caller_lookup,
	.detach = racy_caller_forget,
};

static struct mmrace_probe probes[NR_PROBES] = {
	[PROBE_CLEAR_REFS] = { "clear_refs_write", MMRACE_KRETPROBE, .rp = &clear_refs_probe },
	[PROBE_SPLIT_PMD_LOCKED] = {
		"split_huge_pmd_locked", MMRACE_KPROBE, .kp = &split_pmd_locked_probe
	},
	[PROBE_RACY_CALLER] = {
		"__split_huge_pmd:calls_split_huge_pmd_locked", MMRACE_CHECK,
		.check = &racy_caller_check
	},
	[PROBE_FOLIO_SPLIT] = { "__folio_split", MMRACE_KRETPROBE, .rp = &folio_split_probe },
	[PROBE_MIGRATE_TP] = {
		"tracepoint:mm_migrate_pages", MMRACE_TRACEPOINT, .tp = &migrate_tp
	},
};

struct mmrace_probe_table mmrace_thp_probes = { probes, ARRAY_SIZE(probes) };
