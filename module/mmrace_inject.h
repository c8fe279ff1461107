/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Race-window amplification: the kprobes of the injection points
 * (mmrace_inject.c), the one part the Rust side (inject.rs) cannot do
 * itself, and the table their handler reads.
 *
 * inject.rs owns the points: the table below, which slot holds which
 * point, the knobs and their caps, the debugfs `inject/` files. It calls
 * these functions under its lock, so they never run concurrently.
 */
#ifndef MMRACE_INJECT_H
#define MMRACE_INJECT_H

#include <linux/atomic.h>
#include <linux/types.h>

/* The knobs, indices of mmrace_inject_slot.knobs (`Knob` in inject.rs). */
enum mmrace_inject_knob {
	MMRACE_INJECT_DELAY_US,
	MMRACE_INJECT_EVERY_NTH,
	MMRACE_INJECT_PROBABILITY_PCT,
	MMRACE_INJECT_NR_KNOBS
};

/*
 * One injection point as its handler reads it: the same #[repr(C)] layout
 * as `Slot` in inject.rs, which writes the knobs (already capped) and reads
 * the counts.
 */
struct mmrace_inject_slot {
	u32 knobs[MMRACE_INJECT_NR_KNOBS];
	atomic64_t calls;	/* calls seen while armed */
	atomic64_t nth;		/* the every_nth count */
	atomic64_t delays;	/* calls delayed */
};

/*
 * Takes the table of @n slots (which stays put until stop) and allocates
 * a kprobe per slot: 0, -EINVAL when @slot_size is not this file's
 * sizeof(struct mmrace_inject_slot), or -ENOMEM. Stop unregisters every
 * point still attached (waiting for running handlers) and frees them. May
 * sleep.
 */
int mmrace_inject_start(struct mmrace_inject_slot *table, unsigned int n, size_t slot_size);
void mmrace_inject_stop(void);

/*
 * Registers slot @i's kprobe at @sym+@offset, enabled if @armed. @sym stays
 * valid until the slot is detached. 0, or register_kprobe()'s error (-ENOENT
 * for an unknown symbol, -EINVAL for a blacklisted or unprobeable address,
 * -EILSEQ for an offset off an instruction boundary). May sleep.
 */
int mmrace_inject_attach(unsigned int i, const char *sym, u32 offset, bool armed);
/* Enables or disables an attached slot's kprobe: 0 or -errno. */
int mmrace_inject_arm(unsigned int i, bool armed);
/*
 * Unregisters the kprobes of @n attached slots with one RCU grace period;
 * no handler runs on them once it returns. May sleep.
 */
void mmrace_inject_detach(const unsigned int *slots, unsigned int n);

#endif /* MMRACE_INJECT_H */
