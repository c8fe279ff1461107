// SPDX-License-Identifier: GPL-2.0
/*
 * mmrace race-window amplification: the kprobes of the injection points,
 * and their handler, a bounded busy delay.
 *
 * Everything else is Rust's (inject.rs): which slot holds which point, the
 * built-in point at __split_huge_pmd() (slot 0, registered disabled and
 * enabled while its delay_us is above 0), the knobs and their caps, the
 * debugfs files. Kprobes have no Rust binding, so their registration is
 * here, one kprobe per slot of the table inject.rs hands over at start.
 *
 * A call of an armed point is delayed when its delay_us is above 0 and
 * every_nth or probability_pct picks it. The delay busy-waits (kprobe
 * handlers must not sleep); inject.rs caps delay_us before it writes it.
 * The handler reads only its own slot and takes no lock.
 */

#include <linux/container_of.h>
#include <linux/delay.h>
#include <linux/errno.h>
#include <linux/kprobes.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "mmrace_attach.h"
#include "mmrace_counter_ids.h"
#include "mmrace_inject.h"

struct inject_kprobe {
	struct mmrace_probe probe;	/* an MMRACE_KPROBE on kp */
	struct kprobe kp;
	struct mmrace_inject_slot *slot;
};

static struct inject_kprobe *kps;
static struct mmrace_probe **batch;	/* mmrace_inject_detach()'s */
static unsigned int nr;

static bool inject_pick(struct mmrace_inject_slot *s)
{
	u32 nth = READ_ONCE(s->knobs[MMRACE_INJECT_EVERY_NTH]);
	u32 pct = READ_ONCE(s->knobs[MMRACE_INJECT_PROBABILITY_PCT]);

	if (nth && atomic64_inc_return(&s->nth) % nth == 0)
		return true;
	return pct && get_random_u32_below(100) < pct;
}

static int inject_pre(struct kprobe *p, struct pt_regs *regs)
{
	struct mmrace_inject_slot *s = container_of(p, struct inject_kprobe, kp)->slot;
	u32 us = READ_ONCE(s->knobs[MMRACE_INJECT_DELAY_US]);

	atomic64_inc(&s->calls);
	if (!us || !inject_pick(s))
		return 0;
	udelay(us);
	atomic64_inc(&s->delays);
	mmrace_count(MMRACE_inject_delays);
	return 0;
}

int mmrace_inject_start(struct mmrace_inject_slot *table, unsigned int n, size_t slot_size)
{
	unsigned int i;

	if (slot_size != sizeof(*table))
		return -EINVAL;
	kps = kcalloc(n, sizeof(*kps), GFP_KERNEL);
	batch = kcalloc(n, sizeof(*batch), GFP_KERNEL);
	if (!kps || !batch) {
		mmrace_inject_stop();
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		kps[i].slot = &table[i];
		kps[i].probe.status = -ENODEV;	/* not attached */
	}
	nr = n;
	return 0;
}

void mmrace_inject_stop(void)
{
	unsigned int i, n = 0;

	for (i = 0; i < nr; i++)
		if (!kps[i].probe.status)
			batch[n++] = &kps[i].probe;
	mmrace_probes_detach(batch, n);	/* waits for running handlers */
	kfree(kps);
	kfree(batch);
	kps = NULL;
	batch = NULL;
	nr = 0;
}

int mmrace_inject_attach(unsigned int i, const char *sym, u32 offset, bool armed)
{
	struct inject_kprobe *k;

	if (i >= nr || !kps[i].probe.status)
		return -EINVAL;
	k = &kps[i];
	/* Unregistered: nothing runs on it, and a kprobe registers zeroed. */
	memset(&k->kp, 0, sizeof(k->kp));
	k->kp.symbol_name = sym;
	k->kp.offset = offset;
	k->kp.pre_handler = inject_pre;
	k->kp.flags = armed ? 0 : KPROBE_FLAG_DISABLED;
	k->probe.name = sym;
	k->probe.kind = MMRACE_KPROBE;
	k->probe.kp = &k->kp;
	return mmrace_probe_attach(&k->probe);
}

int mmrace_inject_arm(unsigned int i, bool armed)
{
	if (i >= nr || kps[i].probe.status)
		return -EINVAL;
	return armed ? enable_kprobe(&kps[i].kp) : disable_kprobe(&kps[i].kp);
}

void mmrace_inject_detach(const unsigned int *slots, unsigned int n)
{
	unsigned int i, b = 0;

	for (i = 0; i < n; i++)
		if (slots[i] < nr && !kps[slots[i]].probe.status)
			batch[b++] = &kps[slots[i]].probe;
	mmrace_probes_detach(batch, b);	/* waits for running handlers */
}
