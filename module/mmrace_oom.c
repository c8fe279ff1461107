// SPDX-License-Identifier: GPL-2.0
/*
 * mmrace OOM and reclaim probes, for the oom-stall scenario (seed 003): the
 * OOM killer, the OOM reaper, direct reclaim and its time per task class,
 * and the allocator's stall warning.
 *
 * - oom tracepoints (include/trace/events/oom.h): mark_victim, wake_reaper,
 *   finish_task_reaping, skip_task_reaping, reclaim_retry_zone;
 * - mm_vmscan_direct_reclaim_begin: one per try_to_free_pages() call that
 *   went on to reclaim (was not throttled out); vmstat allocstall_* counts
 *   these and also the passes do_try_to_free_pages() retries after one that
 *   reclaimed nothing, so it is never below direct_reclaim;
 * - a kretprobe on try_to_free_pages(): time in direct reclaim, throttling
 *   included, into log2 histograms by task class (kthread, dying task,
 *   ordinary task), the split the seed's patch is about;
 * - the console tracepoint (every printk record, in the printing task's
 *   context): the "Killed process" report __oom_kill_process() prints right
 *   after it counts vmstat oom_kill, and the "page allocation stall" warning
 *   of check_alloc_stall_warn(), which is inlined into the allocator and
 *   has no probe-able symbol of its own.
 *
 * Why oom_kill does not come from mark_victim: mark_oom_victim() also marks
 * tasks that are already exiting (an OOM-killed process's other threads
 * entering the OOM path again), which vmstat oom_kill does not count, and
 * returns without the tracepoint for a task marked twice. mark_victim is
 * kept as oom_victim.
 */

#include <linux/atomic.h>
#include <linux/errno.h>
#include <linux/kprobes.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/mmzone.h>
#include <linux/oom.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/string.h>
#include <linux/tracepoint.h>

#include "mmrace_attach.h"
#include "mmrace_counter_ids.h"
#include "mmrace_oom.h"

/* ---- tracepoint handlers: each matches its TP_PROTO ------------------- */

static void mark_victim_tp(void *data, struct task_struct *task, uid_t uid)
{
	mmrace_count(MMRACE_oom_victim);
}

static void wake_reaper_tp(void *data, int pid)
{
	mmrace_count(MMRACE_oom_reaper_wake);
}

static void finish_task_reaping_tp(void *data, int pid)
{
	mmrace_count(MMRACE_oom_reaper_reaped);
}

static void skip_task_reaping_tp(void *data, int pid)
{
	mmrace_count(MMRACE_oom_reaper_skipped);
}

static void reclaim_retry_zone_tp(void *data, struct zoneref *zoneref, int order,
				  unsigned long reclaimable, unsigned long available,
				  unsigned long min_wmark, int no_progress_loops,
				  bool wmark_check)
{
	mmrace_count(MMRACE_reclaim_retry);
}

static void direct_reclaim_begin_tp(void *data, gfp_t gfp_flags, int order,
				    struct mem_cgroup *memcg)
{
	mmrace_count(MMRACE_direct_reclaim);
}

/*
 * printk_sprint() passes each record's text, without the log level and not
 * NUL-terminated. The two messages are fixed strings in mm/oom_kill.c and
 * mm/page_alloc.c, printed nowhere else (the same text written to
 * /dev/kmsg would count too).
 */
static void console_tp(void *data, const char *text, size_t len)
{
	if (strnstr(text, ": Killed process ", len))
		mmrace_count(MMRACE_oom_kill);
	else if (strnstr(text, ": page allocation stall for ", len))
		mmrace_count(MMRACE_alloc_stall_warn);
}

static struct mmrace_tp tp_mark_victim = { "mark_victim", mark_victim_tp };
static struct mmrace_tp tp_wake_reaper = { "wake_reaper", wake_reaper_tp };
static struct mmrace_tp tp_finish_reaping = { "finish_task_reaping", finish_task_reaping_tp };
static struct mmrace_tp tp_skip_reaping = { "skip_task_reaping", skip_task_reaping_tp };
static struct mmrace_tp tp_reclaim_retry = { "reclaim_retry_zone", reclaim_retry_zone_tp };
static struct mmrace_tp tp_console = { "console", console_tp };
static struct mmrace_tp tp_direct_begin = {
	"mm_vmscan_direct_reclaim_begin", direct_reclaim_begin_tp
};

/* ---- direct reclaim time: try_to_free_pages() ------------------------- */

enum task_class { CLASS_KTHREAD, CLASS_DYING, CLASS_ORDINARY, NR_CLASSES };

static const char *const class_names[NR_CLASSES] = {
	[CLASS_KTHREAD] = "kthread",
	[CLASS_DYING] = "dying",
	[CLASS_ORDINARY] = "ordinary",
};

/* Bucket 0: < 1 us; bucket b: [2^(b-1), 2^b) us; the last: >= 2^24 us. */
#define NR_BUCKETS 26

struct reclaim_hist {
	atomic64_t calls;
	atomic64_t sum_us;
	atomic64_t max_us;
	atomic64_t bucket[NR_BUCKETS];
};

static struct reclaim_hist reclaim_hist[NR_CLASSES];
static int reclaim_missed_base;

struct reclaim_start {
	u64 ns;
	enum task_class class;
};

static enum task_class task_class(struct task_struct *t)
{
	if (t->flags & PF_KTHREAD)
		return CLASS_KTHREAD;
	if (fatal_signal_pending(t) || tsk_is_oom_victim(t))
		return CLASS_DYING;
	return CLASS_ORDINARY;
}

static unsigned int bucket_of(u64 us)
{
	return us ? min_t(unsigned int, ilog2(us) + 1, NR_BUCKETS - 1) : 0;
}

static void hist_add(struct reclaim_hist *h, u64 us)
{
	s64 max = atomic64_read(&h->max_us);

	atomic64_inc(&h->calls);
	atomic64_add(us, &h->sum_us);
	atomic64_inc(&h->bucket[bucket_of(us)]);
	while ((s64)us > max && !atomic64_try_cmpxchg(&h->max_us, &max, us))
		;
}

static int reclaim_entry(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct reclaim_start *s = (struct reclaim_start *)ri->data;

	s->class = task_class(current);
	s->ns = ktime_get_ns();
	return 0;
}

static int reclaim_return(struct kretprobe_instance *ri, struct pt_regs *regs)
{
	struct reclaim_start *s = (struct reclaim_start *)ri->data;

	hist_add(&reclaim_hist[s->class], div_u64(ktime_get_ns() - s->ns, NSEC_PER_USEC));
	return 0;
}

/* Reclaimers sleep (throttling, writeback waits): room for many at once. */
static struct kretprobe reclaim_probe = {
	.kp.symbol_name = "try_to_free_pages",
	.entry_handler = reclaim_entry,
	.handler = reclaim_return,
	.data_size = sizeof(struct reclaim_start),
	.maxactive = 256,
};

static int reclaim_missed_now(void)
{
	return reclaim_probe.nmissed + reclaim_probe.kp.nmissed;
}

unsigned int mmrace_reclaim_nr_classes(void)
{
	return NR_CLASSES;
}

const char *mmrace_reclaim_class_name(unsigned int class)
{
	return class < NR_CLASSES ? class_names[class] : "?";
}

unsigned int mmrace_reclaim_nr_buckets(void)
{
	return NR_BUCKETS;
}

u64 mmrace_reclaim_calls(unsigned int class)
{
	return class < NR_CLASSES ? atomic64_read(&reclaim_hist[class].calls) : 0;
}

u64 mmrace_reclaim_sum_us(unsigned int class)
{
	return class < NR_CLASSES ? atomic64_read(&reclaim_hist[class].sum_us) : 0;
}

u64 mmrace_reclaim_max_us(unsigned int class)
{
	return class < NR_CLASSES ? atomic64_read(&reclaim_hist[class].max_us) : 0;
}

u64 mmrace_reclaim_bucket(unsigned int class, unsigned int bucket)
{
	if (class >= NR_CLASSES || bucket >= NR_BUCKETS)
		return 0;
	return atomic64_read(&reclaim_hist[class].bucket[bucket]);
}

u64 mmrace_reclaim_missed(void)
{
	return max(reclaim_missed_now() - reclaim_missed_base, 0);
}

void mmrace_reclaim_reset(void)
{
	unsigned int c, b;

	for (c = 0; c < NR_CLASSES; c++) {
		atomic64_set(&reclaim_hist[c].calls, 0);
		atomic64_set(&reclaim_hist[c].sum_us, 0);
		atomic64_set(&reclaim_hist[c].max_us, 0);
		for (b = 0; b < NR_BUCKETS; b++)
			atomic64_set(&reclaim_hist[c].bucket[b], 0);
	}
	reclaim_missed_base = reclaim_missed_now();
}

/* ---- the probe table (attached by mmrace_attach.c) -------------------- */

static struct mmrace_probe probes[] = {
	{ "tracepoint:mark_victim", MMRACE_TRACEPOINT, .tp = &tp_mark_victim },
	{ "tracepoint:wake_reaper", MMRACE_TRACEPOINT, .tp = &tp_wake_reaper },
	{ "tracepoint:finish_task_reaping", MMRACE_TRACEPOINT, .tp = &tp_finish_reaping },
	{ "tracepoint:skip_task_reaping", MMRACE_TRACEPOINT, .tp = &tp_skip_reaping },
	{ "tracepoint:reclaim_retry_zone", MMRACE_TRACEPOINT, .tp = &tp_reclaim_retry },
	{ "tracepoint:mm_vmscan_direct_reclaim_begin", MMRACE_TRACEPOINT, .tp = &tp_direct_begin },
	{ "try_to_free_pages", MMRACE_KRETPROBE, .rp = &reclaim_probe },
	{ "tracepoint:console", MMRACE_TRACEPOINT, .tp = &tp_console },
};

struct mmrace_probe_table mmrace_oom_probes = { probes, ARRAY_SIZE(probes) };
