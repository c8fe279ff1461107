// SPDX-License-Identifier: GPL-2.0
/*
 * mmrace race-window amplification: a bounded busy delay at named probe
 * points that sit in an unlocked window, before a page-table lock is taken.
 *
 * The split_huge_pmd() macro looks at the pmd without the page-table lock
 * and calls __split_huge_pmd(), which takes the lock and rechecks. Delaying
 * __split_huge_pmd()'s entry widens that window, so a pmd that changes in
 * between (the race mmrace.ko counts as pmd_race) becomes likely.
 *
 * Knobs (debugfs inject/, written from mmrace_main.rs):
 *   delay_us         0..INJECT_MAX_DELAY_US; 0 = off (the default)
 *   every_nth        0..INJECT_MAX_EVERY_NTH; delay every Nth call, 0 = never
 *   probability_pct  0..100; delay a call with this chance, 0 = never
 * A call is delayed when delay_us > 0 and every_nth or probability_pct
 * picks it. The kprobes are registered disabled and enabled only while
 * delay_us > 0: with delay_us at 0 no probe fires at all.
 */

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/kprobes.h>
#include <linux/mutex.h>
#include <linux/random.h>

#include "mmrace_counter_ids.h"
#include "mmrace_inject.h"

#define INJECT_MAX_DELAY_US	1000
#define INJECT_MAX_EVERY_NTH	1000000
#define INJECT_MAX_PCT		100

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

static u32 knobs[MMRACE_INJECT_NR_KNOBS];

/* Serialises knob writes with arming and disarming the probes. */
static DEFINE_MUTEX(inject_lock);

struct inject_point {
	const char *name;
	struct kprobe kp;
	int status;		/* 0 registered, else -errno */
	bool armed;
	atomic64_t calls;	/* calls seen while armed */
	atomic64_t nth;		/* the every_nth count */
	atomic64_t delays;
};

static int inject_pre(struct kprobe *p, struct pt_regs *regs);

static struct inject_point points[] = {
	{
		.name = "__split_huge_pmd",
		.kp = {
			.symbol_name = "__split_huge_pmd",
			.pre_handler = inject_pre,
			.flags = KPROBE_FLAG_DISABLED,
		},
	},
};

static bool inject_pick(struct inject_point *pt)
{
	u32 nth = READ_ONCE(knobs[MMRACE_INJECT_EVERY_NTH]);
	u32 pct = READ_ONCE(knobs[MMRACE_INJECT_PROBABILITY_PCT]);

	if (nth && atomic64_inc_return(&pt->nth) % nth == 0)
		return true;
	return pct && get_random_u32_below(100) < pct;
}

static int inject_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct inject_point *pt = container_of(p, struct inject_point, kp);
	u32 us = READ_ONCE(knobs[MMRACE_INJECT_DELAY_US]);

	if (!us)
		return 0;
	atomic64_inc(&pt->calls);
	if (!inject_pick(pt))
		return 0;
	udelay(us);
	atomic64_inc(&pt->delays);
	mmrace_count(MMRACE_inject_delays);
	return 0;
}

/* Enables or disables every registered point. Called with inject_lock. */
static void inject_arm(bool arm)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(points); i++) {
		struct inject_point *pt = &points[i];

		if (pt->status || pt->armed == arm)
			continue;
		if (arm ? enable_kprobe(&pt->kp) : disable_kprobe(&pt->kp))
			continue;
		pt->armed = arm;
	}
}

void mmrace_inject_register(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(points); i++)
		points[i].status = register_kprobe(&points[i].kp);
}

void mmrace_inject_unregister(void)
{
	unsigned int i;

	mutex_lock(&inject_lock);
	WRITE_ONCE(knobs[MMRACE_INJECT_DELAY_US], 0);
	for (i = 0; i < ARRAY_SIZE(points); i++) {
		if (!points[i].status)
			unregister_kprobe(&points[i].kp);	/* waits for handlers */
		points[i].armed = false;
	}
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

/* Sets a knob; -EINVAL for an unknown knob or a value over its cap. */
int mmrace_inject_set(unsigned int knob, u64 value)
{
	if (knob >= MMRACE_INJECT_NR_KNOBS || value > knob_max[knob])
		return -EINVAL;
	mutex_lock(&inject_lock);
	WRITE_ONCE(knobs[knob], value);
	if (knob == MMRACE_INJECT_DELAY_US)
		inject_arm(value != 0);
	mutex_unlock(&inject_lock);
	return 0;
}

unsigned int mmrace_inject_nr_points(void)
{
	return ARRAY_SIZE(points);
}

const char *mmrace_inject_point_name(unsigned int i)
{
	return i < ARRAY_SIZE(points) ? points[i].name : "?";
}

int mmrace_inject_point_status(unsigned int i)
{
	return i < ARRAY_SIZE(points) ? points[i].status : -EINVAL;
}

bool mmrace_inject_point_armed(unsigned int i)
{
	return i < ARRAY_SIZE(points) && READ_ONCE(points[i].armed);
}

u64 mmrace_inject_point_calls(unsigned int i)
{
	return i < ARRAY_SIZE(points) ? atomic64_read(&points[i].calls) : 0;
}

u64 mmrace_inject_point_delays(unsigned int i)
{
	return i < ARRAY_SIZE(points) ? atomic64_read(&points[i].delays) : 0;
}
