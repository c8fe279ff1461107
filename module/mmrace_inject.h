/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Race-window amplification (mmrace_inject.c): the interface the Rust side
 * (mmrace_main.rs, debugfs `inject/`) uses.
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

void mmrace_inject_register(void);
void mmrace_inject_unregister(void);

unsigned int mmrace_inject_nr_knobs(void);
const char *mmrace_inject_knob_name(unsigned int knob);
u64 mmrace_inject_get(unsigned int knob);
int mmrace_inject_set(unsigned int knob, u64 value);

unsigned int mmrace_inject_nr_points(void);
const char *mmrace_inject_point_name(unsigned int i);
int mmrace_inject_point_status(unsigned int i);
bool mmrace_inject_point_armed(unsigned int i);
u64 mmrace_inject_point_calls(unsigned int i);
u64 mmrace_inject_point_delays(unsigned int i);

#endif /* MMRACE_INJECT_H */
