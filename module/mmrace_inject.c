// SPDX-License-Identifier: GPL-2.0
/*
 * mmrace race-window amplification: a bounded busy delay at injection
 * points, kprobes on kernel functions that sit in a race window.
 *
 * The built-in point is the entry of __split_huge_pmd(). The
 * split_huge_pmd() macro looks at the pmd without the page-table lock and
 * calls __split_huge_pmd(), which takes the lock and rechecks. Delaying
 * __split_huge_pmd()'s entry widens that window, so a pmd that changes in
 * between (the race mmrace.ko counts as pmd_race) becomes likely. It uses
 * the global knobs (debugfs inject/, written from mmrace_main.rs):
 *   delay_us         0..INJECT_MAX_DELAY_US; 0 = off (the default)
 *   every_nth        0..INJECT_MAX_EVERY_NTH; delay every Nth call, 0 = never
 *   probability_pct  0..100; delay a call with this chance, 0 = never
 * Its kprobe is registered disabled and enabled only while delay_us > 0:
 * with delay_us at 0 it does not fire at all.
 *
 * Up to INJECT_MAX_POINTS more points can be added at any probeable kernel
 * address, SYMBOL[+OFFSET], each with its own three knobs (inject/add), and
 * removed (inject/remove, inject/clear). An added point is enabled from its
 * add to its removal; with its delay_us at 0 it only counts calls.
 *
 * A call of an armed point is delayed when its delay_us is above 0 and
 * every_nth or probability_pct picks it. The delay busy-waits (kprobe
 * handlers must not sleep) and is capped at INJECT_MAX_DELAY_US.
 *
 * inject_lock serialises every change of the point table (add, remove,
 * arming, module exit) and the inject/points lines, so a line never shows a
 * slot half filled; the handlers read only their own point and take no
 * lock. A slot is reused only after its kprobe was unregistered, which
 * waits for running handlers.
 */

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/minmax.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/sprintf.h>
#include <linux/string.h>

#include "mmrace_attach.h"
#include "mmrace_counter_ids.h"
#include "mmrace_inject.h"

#define INJECT_MAX_DELAY_US	1000
#define INJECT_MAX_EVERY_NTH	1000000
#define INJECT_MAX_PCT		100

/* Points inject/add can add, besides the built-in one. */
#define INJECT_MAX_POINTS	64

static const char *const knob_names[MMRACE_INJECT_NR_KNOBS] = {
	[MMRACE_INJECT_DELAY_US] = "delay_us",
	[MMRACE_INJECT_EVERY_NTH] = "every_nth",
	[MMRACE_INJECT_PROBABILITY_PCT] = "probability_pct",
};

static const u32 knob_max[MMRACE_INJECT_NR_KNOBS] = {
	[MMRACE_INJECT_DELAY_US] = INJECT_MAX_DELAY_US,
	[MMRACE_INJECT_EVERY_NTH] = INJECT_MAX_EVERY_NTH,
	[MMRACE_INJECT_PROBABILITY_PCT] = INJECT_MAX_PCT,
};

/* The global knobs, the built-in point's. */
static u32 knobs[MMRACE_INJECT_NR_KNOBS];

static DEFINE_MUTEX(inject_lock);

struct inject_point {
	struct mmrace_probe probe;	/* an MMRACE_KPROBE on kp */
	struct kprobe kp;
	char sym[KSYM_NAME_LEN];	/* kp.symbol_name of an added point */
	u32 own_knobs[MMRACE_INJECT_NR_KNOBS];
	u32 *knobs;		/* own_knobs, or the global ones (built-in) */
	bool used;		/* the slot holds a registered point */
	bool armed;		/* enabled: its handler runs */
	atomic64_t calls;	/* calls seen while armed */
	atomic64_t nth;		/* the every_nth count */
	atomic64_t delays;
};

static int inject_pre(struct kprobe *p, struct pt_regs *regs);

/* Slot 0 is the built-in point, the others are added through inject/add. */
static struct inject_point points[1 + INJECT_MAX_POINTS] = {
	[0] = {
		.probe = {
			.name = "__split_huge_pmd",
			.kind = MMRACE_KPROBE,
			.kp = &points[0].kp,
		},
		.kp = {
			.symbol_name = "__split_huge_pmd",
			.pre_handler = inject_pre,
			.flags = KPROBE_FLAG_DISABLED,
		},
		.knobs = knobs,
	},
};

static struct inject_point *const builtin = &points[0];

static bool inject_pick(struct inject_point *pt)
{
	u32 nth = READ_ONCE(pt->knobs[MMRACE_INJECT_EVERY_NTH]);
	u32 pct = READ_ONCE(pt->knobs[MMRACE_INJECT_PROBABILITY_PCT]);

	if (nth && atomic64_inc_return(&pt->nth) % nth == 0)
		return true;
	return pct && get_random_u32_below(100) < pct;
}

static int inject_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct inject_point *pt = container_of(p, struct inject_point, kp);
	u32 us = min_t(u32, READ_ONCE(pt->knobs[MMRACE_INJECT_DELAY_US]), INJECT_MAX_DELAY_US);

	atomic64_inc(&pt->calls);
	if (!us || !inject_pick(pt))
		return 0;
	udelay(us);
	atomic64_inc(&pt->delays);
	mmrace_count(MMRACE_inject_delays);
	return 0;
}

/* Enables or disables the built-in point. Called with inject_lock. */
static void builtin_arm(bool arm)
{
	if (!builtin->used || builtin->armed == arm)
		return;
	if (arm ? enable_kprobe(&builtin->kp) : disable_kprobe(&builtin->kp))
		return;
	builtin->armed = arm;
}

static void point_remove(struct inject_point *pt)
{
	mmrace_probe_detach(&pt->probe);	/* waits for running handlers */
	pt->used = false;
	pt->armed = false;
}

/*
 * Removes the used points from slot @first on, all at once (one RCU grace
 * period, not one per point). Called with inject_lock.
 */
static void points_remove_from(unsigned int first)
{
	static struct mmrace_probe *batch[ARRAY_SIZE(points)];
	unsigned int i, n = 0;

	for (i = first; i < ARRAY_SIZE(points); i++)
		if (points[i].used)
			batch[n++] = &points[i].probe;
	mmrace_probes_detach(batch, n);	/* waits for running handlers */
	for (i = first; i < ARRAY_SIZE(points); i++) {
		points[i].used = false;
		points[i].armed = false;
	}
}

void mmrace_inject_start(void)
{
	mutex_lock(&inject_lock);
	builtin->used = !mmrace_probe_attach(&builtin->probe);
	mutex_unlock(&inject_lock);
}

void mmrace_inject_stop(void)
{
	mutex_lock(&inject_lock);
	WRITE_ONCE(knobs[MMRACE_INJECT_DELAY_US], 0);
	points_remove_from(0);
	mutex_unlock(&inject_lock);
}

unsigned int mmrace_inject_nr_knobs(void)
{
	return MMRACE_INJECT_NR_KNOBS;
}

const char *mmrace_inject_knob_name(unsigned int knob)
{
	return knob < MMRACE_INJECT_NR_KNOBS ? knob_names[knob] : "?";
}

u64 mmrace_inject_get(unsigned int knob)
{
	return knob < MMRACE_INJECT_NR_KNOBS ? READ_ONCE(knobs[knob]) : 0;
}

/* Sets a global knob; -EINVAL for an unknown knob or a value over its cap. */
int mmrace_inject_set(unsigned int knob, u64 value)
{
	if (knob >= MMRACE_INJECT_NR_KNOBS || value > knob_max[knob])
		return -EINVAL;
	mutex_lock(&inject_lock);
	WRITE_ONCE(knobs[knob], value);
	if (knob == MMRACE_INJECT_DELAY_US)
		builtin_arm(value != 0);
	mutex_unlock(&inject_lock);
	return 0;
}

/* An added point at @sym+@offset, or NULL. Called with inject_lock. */
static struct inject_point *added_find(const char *sym, u32 offset)
{
	unsigned int i;

	for (i = 1; i < ARRAY_SIZE(points); i++)
		if (points[i].used && points[i].kp.offset == offset &&
		    !strcmp(points[i].sym, sym))
			return &points[i];
	return NULL;
}

int mmrace_inject_add(const char *sym, u32 offset, const u32 *values)
{
	struct inject_point *pt = NULL;
	unsigned int i;
	int ret;

	if (!*sym || strlen(sym) >= KSYM_NAME_LEN)
		return -EINVAL;
	for (i = 0; i < MMRACE_INJECT_NR_KNOBS; i++)
		if (values[i] > knob_max[i])
			return -EINVAL;

	mutex_lock(&inject_lock);
	if (added_find(sym, offset)) {
		ret = -EEXIST;
		goto out;
	}
	for (i = 1; i < ARRAY_SIZE(points) && !pt; i++)
		if (!points[i].used)
			pt = &points[i];
	if (!pt) {
		ret = -ENOSPC;
		goto out;
	}
	/* A free slot's kprobe is unregistered: nothing runs on it. */
	memset(pt, 0, sizeof(*pt));
	strscpy(pt->sym, sym);
	memcpy(pt->own_knobs, values, sizeof(pt->own_knobs));
	pt->knobs = pt->own_knobs;
	pt->kp.symbol_name = pt->sym;
	pt->kp.offset = offset;
	pt->kp.pre_handler = inject_pre;
	pt->probe.name = pt->sym;
	pt->probe.kind = MMRACE_KPROBE;
	pt->probe.kp = &pt->kp;
	ret = mmrace_probe_attach(&pt->probe);
	if (!ret) {
		pt->used = true;
		pt->armed = true;
	}
out:
	mutex_unlock(&inject_lock);
	return ret;
}

int mmrace_inject_remove(const char *sym, u32 offset)
{
	struct inject_point *pt;
	int ret = 0;

	mutex_lock(&inject_lock);
	pt = added_find(sym, offset);
	if (pt)
		point_remove(pt);
	else
		ret = -ENOENT;
	mutex_unlock(&inject_lock);
	return ret;
}

void mmrace_inject_clear(void)
{
	mutex_lock(&inject_lock);
	points_remove_from(1);
	mutex_unlock(&inject_lock);
}

unsigned int mmrace_inject_nr_slots(void)
{
	return ARRAY_SIZE(points);
}

/*
 * Formats slot @i's inject/points line into @buf:
 *
 *   NAME STATE CALLS DELAYS delay_us=N every_nth=N probability_pct=N
 *
 * NAME is SYMBOL or SYMBOL+0xOFFSET; STATE is `armed` (the handler runs),
 * `idle` (the built-in point while the global delay_us is 0) or
 * `failed ERRNO` (the built-in point could not be registered on this
 * kernel). The knobs are the point's own, or the global ones for the
 * built-in point, which is always slot 0. Returns the length, 0 for an
 * empty slot (or one out of range).
 */
int mmrace_inject_point_line(unsigned int i, char *buf, size_t size)
{
	struct inject_point *pt;
	char state[24];
	int n = 0;

	if (i >= ARRAY_SIZE(points) || !size)
		return 0;
	pt = &points[i];
	mutex_lock(&inject_lock);
	if (i && !pt->used)
		goto out;
	if (pt->probe.status)
		scnprintf(state, sizeof(state), "failed %d", pt->probe.status);
	else
		strscpy(state, pt->armed ? "armed" : "idle");
	n = scnprintf(buf, size, "%s", pt->kp.symbol_name);
	if (pt->kp.offset)
		n += scnprintf(buf + n, size - n, "+%#x", pt->kp.offset);
	n += scnprintf(buf + n, size - n,
		       " %s %lld %lld delay_us=%u every_nth=%u probability_pct=%u\n",
		       state, atomic64_read(&pt->calls), atomic64_read(&pt->delays),
		       READ_ONCE(pt->knobs[MMRACE_INJECT_DELAY_US]),
		       READ_ONCE(pt->knobs[MMRACE_INJECT_EVERY_NTH]),
		       READ_ONCE(pt->knobs[MMRACE_INJECT_PROBABILITY_PCT]));
out:
	mutex_unlock(&inject_lock);
	return n;
}
