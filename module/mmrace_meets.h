/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Meets (mmrace_meets.c): which mm operations of mmrace_ops.h meet on the
 * same object. The interface the Rust side (mmrace_main.rs: debugfs `meets`,
 * `ops`, `meets_enable`, `reset`) uses, and the start/stop pair of the
 * module's life cycle.
 */
#ifndef MMRACE_MEETS_H
#define MMRACE_MEETS_H

#include <linux/types.h>

/* One cell of the matrix; the Rust side declares the same #[repr(C)]. */
struct mmrace_meet_count {
	u64 meets;
	u64 near;
	u64 alias;	/* at once on one mm or file, no object shared */
};

/*
 * Unregisters every operation's probe, if registered: the module exit calls
 * it. The probes are not registered at load (meets_enable reads 0):
 * registering 38 kretprobes, and above all unregistering them once
 * optimized, makes a module load and unload take seconds under TCG. The
 * first meets_enable=1 registers them; after that 0 and 1 only disarm and
 * arm them. May sleep.
 */
void mmrace_meets_stop(void);

/* The tables: operations and kinds in the order of mmrace_ops.h. */
unsigned int mmrace_meets_nr_ops(void);
const char *mmrace_meets_op_name(unsigned int op);
const char *mmrace_meets_op_symbol(unsigned int op);
/* 0 armed, -errno when its probe did not register or arm, 1 when disarmed. */
int mmrace_meets_op_status(unsigned int op);
/* Entries of the operation counted since the last reset. */
u64 mmrace_meets_op_calls(unsigned int op);
unsigned int mmrace_meets_nr_kinds(void);
const char *mmrace_meets_kind_name(unsigned int kind);

/* The cell (entering, holding, kind); zeros for indices out of range. */
void mmrace_meets_cell(unsigned int entering, unsigned int holding, unsigned int kind,
		       struct mmrace_meet_count *out);
/* Zeroes the matrix and the calls (debugfs `reset`). */
void mmrace_meets_reset(void);

/*
 * debugfs `meets_enable`: arms (1) or disarms (0) every probe, registering
 * them at the first 1. A disarmed probe leaves no trap in its function.
 */
bool mmrace_meets_enabled(void);
int mmrace_meets_set_enabled(bool on);

/* Entries not tracked because every in-flight slot was taken. */
u64 mmrace_meets_dropped(void);

/* The near window, in microseconds. */
unsigned int mmrace_meets_near_us(void);

#endif /* MMRACE_MEETS_H */
