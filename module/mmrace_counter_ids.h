/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Counter ids for the module's C objects: one enum entry per line of
 * mmrace_counters.h, and the helpers that bump the counter array (which
 * lives in mmrace_probes.c).
 */
#ifndef MMRACE_COUNTER_IDS_H
#define MMRACE_COUNTER_IDS_H

enum mmrace_counter {
#define MMRACE_COUNTER(_name, _help) MMRACE_##_name,
#include "mmrace_counters.h"
#undef MMRACE_COUNTER
	MMRACE_NR_COUNTERS
};

void mmrace_count(enum mmrace_counter c);
void mmrace_count_add(enum mmrace_counter c, unsigned long n);

#endif /* MMRACE_COUNTER_IDS_H */
