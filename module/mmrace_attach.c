// SPDX-License-Identifier: GPL-2.0
/*
 * mmrace probe attachment: the one probe type (mmrace_attach.h), the list
 * of the C objects' probe tables, and the one register/unregister pair the
 * Rust module init and exit call.
 */

#include <linux/errno.h>
#include <linux/kprobes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tracepoint.h>

#include "mmrace_attach.h"

/* In debugfs `probes` order. */
static struct mmrace_probe_table *const tables[] = {
	&mmrace_thp_probes,
	&mmrace_oom_probes,
};

static void tp_lookup_one(struct tracepoint *tp, void *priv)
{
	struct mmrace_tp *t = priv;

	if (!strcmp(tp->name, t->name))
		t->tp = tp;
}

static int tp_attach(struct mmrace_tp *t)
{
	for_each_kernel_tracepoint(tp_lookup_one, t);
	if (!t->tp)
		return -ENOENT;
	return tracepoint_probe_register(t->tp, t->func, NULL);
}

int mmrace_probe_attach(struct mmrace_probe *p)
{
	switch (p->kind) {
	case MMRACE_KPROBE:
		p->status = register_kprobe(p->kp);
		break;
	case MMRACE_KRETPROBE:
		p->status = register_kretprobe(p->rp);
		break;
	case MMRACE_TRACEPOINT:
		p->status = tp_attach(p->tp);
		break;
	case MMRACE_CHECK:
		p->status = p->check->attach();
		break;
	default:
		p->status = -EINVAL;
	}
	return p->status;
}

void mmrace_probe_detach(struct mmrace_probe *p)
{
	if (p->status)
		return;
	switch (p->kind) {
	case MMRACE_KPROBE:
		unregister_kprobe(p->kp);
		break;
	case MMRACE_KRETPROBE:
		unregister_kretprobe(p->rp);
		break;
	case MMRACE_TRACEPOINT:
		tracepoint_probe_unregister(p->tp->tp, p->tp->func, NULL);
		break;
	case MMRACE_CHECK:
		if (p->check->detach)
			p->check->detach();
		break;
	}
	p->status = -ENODEV;
}

void mmrace_probes_detach(struct mmrace_probe *const *ps, unsigned int n)
{
	struct kprobe **kps;
	unsigned int i, nk = 0;

	kps = kmalloc_array(n, sizeof(*kps), GFP_KERNEL);
	for (i = 0; i < n; i++) {
		if (kps && ps[i]->kind == MMRACE_KPROBE && !ps[i]->status) {
			kps[nk++] = ps[i]->kp;
			ps[i]->status = -ENODEV;
		} else {
			mmrace_probe_detach(ps[i]);
		}
	}
	if (nk)
		unregister_kprobes(kps, nk);
	kfree(kps);
}

/*
 * The tables in order, each in its own order (a probe may depend on an
 * earlier one: the pmd_race caller check needs split_huge_pmd_locked's
 * address).
 */
void mmrace_probes_register(void)
{
	unsigned int t, i;

	for (t = 0; t < ARRAY_SIZE(tables); t++)
		for (i = 0; i < tables[t]->nr; i++)
			mmrace_probe_attach(&tables[t]->probes[i]);
}

/* Everything in reverse. */
void mmrace_probes_unregister(void)
{
	int t, i;

	for (t = ARRAY_SIZE(tables) - 1; t >= 0; t--)
		for (i = tables[t]->nr - 1; i >= 0; i--)
			mmrace_probe_detach(&tables[t]->probes[i]);
	/*
	 * unregister_k*probe() waited for their running handlers; the
	 * tracepoints' are waited for here, before the module text and the
	 * counters go away.
	 */
	tracepoint_synchronize_unregister();
}

static struct mmrace_probe *probe_at(unsigned int i)
{
	unsigned int t;

	for (t = 0; t < ARRAY_SIZE(tables); t++) {
		if (i < tables[t]->nr)
			return &tables[t]->probes[i];
		i -= tables[t]->nr;
	}
	return NULL;
}

unsigned int mmrace_nr_probes(void)
{
	unsigned int t, n = 0;

	for (t = 0; t < ARRAY_SIZE(tables); t++)
		n += tables[t]->nr;
	return n;
}

const char *mmrace_probe_name(unsigned int i)
{
	struct mmrace_probe *p = probe_at(i);

	return p ? p->name : "?";
}

int mmrace_probe_status(unsigned int i)
{
	struct mmrace_probe *p = probe_at(i);

	return p ? p->status : -EINVAL;
}
