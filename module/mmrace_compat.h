/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the kernel trees mmrace.ko's C objects build
 * against. The MMRACE_HAVE_* flags come from scripts/module-features.sh,
 * which Kbuild runs on the tree (a feature test of its headers, not of its
 * version number); a tree that lacks what the module cannot do without
 * stops the build there, with the API named.
 */
#ifndef MMRACE_COMPAT_H
#define MMRACE_COMPAT_H

#include <linux/mm.h>
/*
 * linux/leafops.h includes swapops.h before swap.h, and on trees where
 * swapops.h does not include swap.h itself (7.2) MAX_SWAPFILES_SHIFT is
 * then undeclared. The kernel's own users include swap.h first.
 */
#include <linux/swap.h>

#ifdef MMRACE_HAVE_LEAFOPS
#include <linux/leafops.h>
#else
#include <linux/swapops.h>

/* A non-present pmd that still maps a THP: what leafops.h calls valid. */
static inline bool pmd_is_valid_softleaf(pmd_t pmd)
{
#ifdef MMRACE_HAVE_PMD_DEVICE_PRIVATE
	if (is_pmd_device_private_entry(pmd))
		return true;
#endif
	return is_pmd_migration_entry(pmd);
}
#endif /* MMRACE_HAVE_LEAFOPS */

#endif /* MMRACE_COMPAT_H */
