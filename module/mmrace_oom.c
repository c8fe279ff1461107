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
 * - the reaper hand-off watch (below): an OOM victim not handed to the OOM
 *   reaper in time is an OOM stall, said on the console from a timer.
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
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timer.h>
#include <linux/tracepoint.h>

#include "mmrace_attach.h"
#include "mmrace_counter_ids.h"
#include "mmrace_oom.h"

/* ---- the OOM reaper hand-off watch ------------------------------------ */

/*
 * The kernel hands every OOM victim that has not exited to the OOM reaper
 * OOM_REAPER_DELAY (2 s) after marking it: queue_oom_reaper() arms a timer
 * whose expiry is the wake_reaper tracepoint, unless the victim's own exit
 * got there first (exit_mmap() sets MMF_OOM_SKIP, and the timer then hands
 * nothing), or the mm cannot be reaped at all (__oom_kill_process() sets
 * MMF_OOM_SKIP instead). Until one of those, the OOM killer waits for the
 * victim and kills nobody else. So a victim marked REAP_WATCH_MS ago whose
 * mm was never handed to the reaper and is still up (mm_users, no
 * MMF_OOM_SKIP) is an OOM stall: the watch says so on the console once,
 * "mmrace: OOM stall: ...", which the host judges a finding. It runs from
 * a timer: no memory and no userspace needed, as a real OOM deadlock
 * wedges the driver too (every allocation of its waits for the victim).
 *
 * A due victim gets a second look REAP_WATCH_RECHECK_MS later before it is
 * judged, so the reaper's own timer (due 2 s earlier) has certainly run
 * even when a busy host delivered both late in one batch.
 */
#define REAP_WATCH_MS 3000
#define REAP_WATCH_RECHECK_MS 500
#define REAP_WATCH_SLOTS 8

struct reap_watch {
	pid_t pid;
	const struct mm_struct *mm;	/* compared, never dereferenced */
	unsigned long due;
	bool used;
	bool handed;
	bool second_look;
};

static DEFINE_SPINLOCK(reap_watch_lock);
static struct reap_watch reap_watch[REAP_WATCH_SLOTS];
/*
 * The mms handed to the reaper lately: another thread of such an mm marked
 * later (an exiting thread entering the OOM path) is not handed again
 * (MMF_OOM_REAP_QUEUED), and must not be watched.
 */
static const struct mm_struct *reap_handed[REAP_WATCH_SLOTS];
static unsigned int reap_handed_next;

static void reap_watch_fn(struct timer_list *t);
static DEFINE_TIMER(reap_watch_timer, reap_watch_fn);

/* The oom_mm of the task @pid, under rcu_read_lock(); NULL if none. */
static struct mm_struct *victim_mm(pid_t pid, struct task_struct **task)
{
	struct task_struct *t = pid_task(find_pid_ns(pid, &init_pid_ns), PIDTYPE_PID);

	if (task)
		*task = t;
	return t ? READ_ONCE(t->signal->oom_mm) : NULL;
}

static bool mm_skipped(const struct mm_struct *mm)
{
#ifdef MMRACE_HAVE_MM_FLAGS_TEST
	return mm_flags_test(MMF_OOM_SKIP, mm);
#else
	return test_bit(MMF_OOM_SKIP, &mm->flags);
#endif
}

static void reap_watch_mark(struct task_struct *task)
{
	const struct mm_struct *mm = READ_ONCE(task->signal->oom_mm);
	unsigned long due = jiffies + msecs_to_jiffies(REAP_WATCH_MS);
	struct reap_watch *free = NULL;
	unsigned long flags;
	int i;

	if (!mm)
		return;
	spin_lock_irqsave(&reap_watch_lock, flags);
	for (i = 0; i < REAP_WATCH_SLOTS; i++) {
		if (reap_handed[i] == mm)
			goto out;
		if (reap_watch[i].used && reap_watch[i].mm == mm)
			goto out;	/* another thread of a watched mm */
		if (!reap_watch[i].used && !free)
			free = &reap_watch[i];
	}
	if (free) {
		*free = (struct reap_watch){ .pid = task->pid, .mm = mm, .due = due, .used = true };
		timer_reduce(&reap_watch_timer, due);
	}
out:
	spin_unlock_irqrestore(&reap_watch_lock, flags);
}

static void reap_watch_handed(pid_t pid)
{
	const struct mm_struct *mm;
	unsigned long flags;
	int i;

	rcu_read_lock();
	mm = victim_mm(pid, NULL);
	rcu_read_unlock();
	spin_lock_irqsave(&reap_watch_lock, flags);
	for (i = 0; i < REAP_WATCH_SLOTS; i++)
		if (reap_watch[i].used && (reap_watch[i].pid == pid || reap_watch[i].mm == mm))
			reap_watch[i].handed = true;
	if (mm) {
		reap_handed[reap_handed_next] = mm;
		reap_handed_next = (reap_handed_next + 1) % REAP_WATCH_SLOTS;
	}
	spin_unlock_irqrestore(&reap_watch_lock, flags);
}

/* Whether watched victim @w is stalled now (its task and mm still up). */
static bool reap_watch_stalled(const struct reap_watch *w, char *comm)
{
	struct task_struct *t;
	struct mm_struct *mm;
	bool stalled = false;

	rcu_read_lock();
	mm = victim_mm(w->pid, &t);
	if (mm && mm == w->mm) {
		stalled = atomic_read(&mm->mm_users) > 0 && !mm_skipped(mm);
		strscpy_pad(comm, t->comm, TASK_COMM_LEN);
	}
	rcu_read_unlock();
	return stalled;
}

static void reap_watch_fn(struct timer_list *unused)
{
	char comm[TASK_COMM_LEN];
	unsigned long flags, next = 0;
	bool pending = false;
	int i;

	spin_lock_irqsave(&reap_watch_lock, flags);
	for (i = 0; i < REAP_WATCH_SLOTS; i++) {
		struct reap_watch *w = &reap_watch[i];

		if (!w->used)
			continue;
		if (w->handed) {
			w->used = false;
			continue;
		}
		if (time_before(jiffies, w->due)) {
			/* not due yet */
		} else if (!w->second_look) {
			w->second_look = true;
			w->due = jiffies + msecs_to_jiffies(REAP_WATCH_RECHECK_MS);
		} else {
			if (reap_watch_stalled(w, comm))
				pr_err("mmrace: OOM stall: victim %d (%s) not handed to the OOM reaper %u ms after the kill, its mm still up\n",
				       w->pid, comm, REAP_WATCH_MS);
			w->used = false;
			continue;
		}
		if (!pending || time_before(w->due, next))
			next = w->due;
		pending = true;
	}
	if (pending)
		mod_timer(&reap_watch_timer, next);
	spin_unlock_irqrestore(&reap_watch_lock, flags);
}

static int reap_watch_attach(void)
{
	return 0;
}

/* After this the timer never runs again (mod_timer() then does nothing). */
static void reap_watch_detach(void)
{
	timer_shutdown_sync(&reap_watch_timer);
}

static const struct mmrace_check reap_watch_check = { reap_watch_attach, reap_watch_detach };

/* ---- tracepoint handlers: each matches its TP_PROTO ------------------- */

static void mark_victim_tp(void *data, struct task_struct *task, uid_t uid)
{
	mmrace_count(MMRACE_oom_victim);
	reap_watch_mark(task);
}

static void wake_reaper_tp(void *data, int pid)
{
	mmrace_count(MMRACE_oom_reaper_wake);
	reap_watch_handed(pid);
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
	/* First: detached last, after the tracepoints that arm its timer. */
	{ "oom_reaper_handoff_watch", MMRACE_CHECK, .check = &reap_watch_check },
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
