/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmrace_oom.c's interface to the Rust side of mmrace.ko (mmrace_main.rs
 * declares the same functions in its `probes` module): the direct-reclaim
 * latency histograms behind debugfs `reclaim_latency`. Its probes are in
 * mmrace_oom_probes (mmrace_attach.h), listed after mmrace_probes.c's in
 * debugfs `probes`.
 */
#ifndef MMRACE_OOM_H
#define MMRACE_OOM_H

#include <linux/types.h>

/* Task classes: 0 kthread, 1 dying (fatal signal or OOM victim), 2 ordinary. */
unsigned int mmrace_reclaim_nr_classes(void);
const char *mmrace_reclaim_class_name(unsigned int class);
/* Bucket 0: < 1 us; bucket b: [2^(b-1), 2^b) us; the last one is open. */
unsigned int mmrace_reclaim_nr_buckets(void);
u64 mmrace_reclaim_calls(unsigned int class);
u64 mmrace_reclaim_sum_us(unsigned int class);
u64 mmrace_reclaim_max_us(unsigned int class);
u64 mmrace_reclaim_bucket(unsigned int class, unsigned int bucket);
/* Reclaim calls not timed: no free kretprobe instance. */
u64 mmrace_reclaim_missed(void);
void mmrace_reclaim_reset(void);

#endif /* MMRACE_OOM_H */
