/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Race-window amplification (mmrace_inject.c): the interface the Rust side
 * (mmrace_main.rs, debugfs `inject/`) uses, and the start/stop pair of the
 * module's life cycle.
 */
#ifndef MMRACE_INJECT_H
#define MMRACE_INJECT_H

#include <linux/types.h>

/* The knobs, in the order of mmrace_inject_knob_name(). */
enum mmrace_inject_knob {
	MMRACE_INJECT_DELAY_US,
	MMRACE_INJECT_EVERY_NTH,
	MMRACE_INJECT_PROBABILITY_PCT,
	MMRACE_INJECT_NR_KNOBS
};

/*
 * Called by the module init (after mmrace_probes_register()) and exit
 * (before mmrace_probes_unregister()) only: registers the built-in point
 * (disabled); removes every point. May sleep.
 */
void mmrace_inject_start(void);
void mmrace_inject_stop(void);

/* The global knobs, which the built-in point (__split_huge_pmd) uses. */
unsigned int mmrace_inject_nr_knobs(void);
const char *mmrace_inject_knob_name(unsigned int knob);
u64 mmrace_inject_get(unsigned int knob);
int mmrace_inject_set(unsigned int knob, u64 value);

/*
 * Adds an armed point at @sym+@offset with its own knobs @values (indexed
 * by enum mmrace_inject_knob). 0, or: -EINVAL for an empty or too long
 * name or a knob over its cap, -EEXIST if that point is there already,
 * -ENOSPC when every slot is taken, else register_kprobe()'s error (-ENOENT
 * for an unknown symbol, -EINVAL for a blacklisted or unprobeable address,
 * -EILSEQ for an offset off an instruction boundary). May sleep.
 */
int mmrace_inject_add(const char *sym, u32 offset, const u32 *values);
/* Removes an added point: 0, or -ENOENT when there is none at @sym+@offset. */
int mmrace_inject_remove(const char *sym, u32 offset);
/* Removes every added point (not the built-in one). */
void mmrace_inject_clear(void);

/* debugfs `inject/points`: one line per used slot, see mmrace_inject.c. */
unsigned int mmrace_inject_nr_slots(void);
int mmrace_inject_point_line(unsigned int i, char *buf, size_t size);

#endif /* MMRACE_INJECT_H */
