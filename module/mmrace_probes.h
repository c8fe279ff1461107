/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The counters' interface to the Rust side of mmrace.ko (mmrace_main.rs
 * declares the same functions in its `probes` module). Probe registration
 * and the `probes` listing are in mmrace_attach.h.
 */
#ifndef MMRACE_PROBES_H
#define MMRACE_PROBES_H

#include <linux/types.h>

unsigned int mmrace_nr_counters(void);
const char *mmrace_counter_name(unsigned int i);
const char *mmrace_counter_help(unsigned int i);
u64 mmrace_counter_read(unsigned int i);
void mmrace_counters_reset(void);

#endif /* MMRACE_PROBES_H */
