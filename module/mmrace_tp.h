/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Attaching to a kernel tracepoint by name from mmrace.ko's C objects.
 * Tracepoints that are not exported to modules are found through
 * for_each_kernel_tracepoint(); the probe function takes `void *data`
 * followed by the tracepoint's TP_PROTO arguments.
 */
#ifndef MMRACE_TP_H
#define MMRACE_TP_H

struct tracepoint;

struct mmrace_tp {
	const char *name;	/* the tracepoint, e.g. "mm_migrate_pages" */
	void *func;		/* the probe */
	struct tracepoint *tp;	/* found at register time */
};

/* 0, -ENOENT when the kernel has no such tracepoint, or the register error. */
int mmrace_tp_register(struct mmrace_tp *t);
/*
 * Detaches the probe; the caller waits for running handlers with
 * tracepoint_synchronize_unregister() before the module goes.
 */
void mmrace_tp_unregister(struct mmrace_tp *t);

#endif /* MMRACE_TP_H */
