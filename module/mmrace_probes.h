/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C object's interface to the Rust side of mmrace.ko (mmrace_main.rs
 * declares the same functions in its `probes` module).
 */
#ifndef MMRACE_PROBES_H
#define MMRACE_PROBES_H

#include <linux/types.h>

unsigned int mmrace_nr_counters(void);
const char *mmrace_counter_name(unsigned int i);
const char *mmrace_counter_help(unsigned int i);
u64 mmrace_counter_read(unsigned int i);
void mmrace_counters_reset(void);

void mmrace_probes_register(void);
void mmrace_probes_unregister(void);
unsigned int mmrace_nr_probes(void);
const char *mmrace_probe_name(unsigned int i);
int mmrace_probe_status(unsigned int i);

#endif /* MMRACE_PROBES_H */
