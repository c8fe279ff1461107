/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one probe type of mmrace.ko's C objects, and the one owner of their
 * registration (mmrace_attach.c).
 *
 * Every kprobe, kretprobe, tracepoint and register-time check of the C
 * objects is a struct mmrace_probe, attached and detached through
 * mmrace_probe_attach() and mmrace_probe_detach(). The counter probes sit in
 * one static table per object (mmrace_thp_probes in mmrace_probes.c,
 * mmrace_oom_probes in mmrace_oom.c); mmrace_attach.c lists the tables, in
 * the order debugfs `probes` shows them. The injection points of
 * mmrace_inject.c are struct mmrace_probes too, but they come and go at run
 * time through debugfs `inject/` and are listed in `inject/points`.
 *
 * Registration has one owner: the Rust module init calls
 * mmrace_probes_register() once and the module exit
 * mmrace_probes_unregister() once. No C object registers its own table, so
 * the order (and the tracepoint synchronisation at the end) is decided in
 * one place. The run-time probe sets, the injection points
 * (mmrace_inject.h) and the meets operations (mmrace_meets.h), use
 * mmrace_probe_attach() and mmrace_probe_detach() from here; the module
 * init starts the injection points after mmrace_probes_register() (the
 * meets probes wait for debugfs meets_enable) and the exit stops both
 * before mmrace_probes_unregister(). This object calls neither: the
 * dependency goes one way, from them to it.
 */
#ifndef MMRACE_ATTACH_H
#define MMRACE_ATTACH_H

#include <linux/types.h>

struct kprobe;
struct kretprobe;
struct tracepoint;

/*
 * A kernel tracepoint found by name: tracepoints that are not exported to
 * modules are found through for_each_kernel_tracepoint(). The probe
 * function takes `void *data` followed by the tracepoint's TP_PROTO
 * arguments.
 */
struct mmrace_tp {
	const char *name;	/* the tracepoint, e.g. "mm_migrate_pages" */
	void *func;		/* the probe */
	struct tracepoint *tp;	/* found at attach time */
};

/*
 * A register-time check with no handler of its own (the pmd_race caller
 * check): attach() returns 0 when it holds, else -errno.
 */
struct mmrace_check {
	int (*attach)(void);
	void (*detach)(void);
};

enum mmrace_probe_kind {
	MMRACE_KPROBE,
	MMRACE_KRETPROBE,
	MMRACE_TRACEPOINT,
	MMRACE_CHECK,
};

struct mmrace_probe {
	const char *name;	/* as listed in debugfs `probes` */
	enum mmrace_probe_kind kind;
	union {
		struct kprobe *kp;
		struct kretprobe *rp;
		struct mmrace_tp *tp;
		const struct mmrace_check *check;
	};
	int status;		/* 0 attached, else -errno */
};

struct mmrace_probe_table {
	struct mmrace_probe *probes;
	unsigned int nr;
};

/* The counter probes, one table per C object. */
extern struct mmrace_probe_table mmrace_thp_probes;
extern struct mmrace_probe_table mmrace_oom_probes;

/*
 * Attaches @p and records the outcome in p->status: 0, -ENOENT for a
 * symbol or tracepoint the running kernel does not have, or the register
 * error (-EINVAL for a blacklisted or unprobeable address, -EILSEQ for an
 * offset off an instruction boundary, ...). Returns p->status. May sleep.
 */
int mmrace_probe_attach(struct mmrace_probe *p);
/*
 * Detaches @p if it is attached (its status is -ENODEV after). A kprobe or
 * kretprobe's running handlers are waited for; a tracepoint's are not: the
 * caller ends with tracepoint_synchronize_unregister(). May sleep.
 */
void mmrace_probe_detach(struct mmrace_probe *p);

/*
 * Detaches several probes: their kprobes with one unregister_kprobes(), so
 * one RCU grace period for all instead of one each. May sleep.
 */
void mmrace_probes_detach(struct mmrace_probe *const *ps, unsigned int n);

/* The one register/unregister pair, for the Rust module init and exit. */
void mmrace_probes_register(void);
void mmrace_probes_unregister(void);

/* debugfs `probes`: every table's probes, in table order. */
unsigned int mmrace_nr_probes(void);
const char *mmrace_probe_name(unsigned int i);
int mmrace_probe_status(unsigned int i);

#endif /* MMRACE_ATTACH_H */
