/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one list of mmrace counters: name and what it counts.
 *
 * Expanded by the module's C object into the counter array, its names and
 * its help texts, and parsed by userspace (userspace/proto) from the same
 * text, so the two cannot disagree. One entry per line, exactly in the form
 * MMRACE_COUNTER(name, "help"), because userspace parses the text as is.
 * No include guard: the includer defines MMRACE_COUNTER first.
 */
MMRACE_COUNTER(softdirty_clear, "writes of 4 (soft-dirty) to /proc/PID/clear_refs that succeeded")
MMRACE_COUNTER(pmd_split, "calls of split_huge_pmd_locked(), the locked pmd split")
MMRACE_COUNTER(pmd_split_freeze, "split_huge_pmd_locked() calls with freeze=true (migration/unmap path)")
MMRACE_COUNTER(pmd_split_done, "split_huge_pmd_locked() calls that found a huge or migration pmd and split it (vmstat thp_split_pmd)")
MMRACE_COUNTER(pmd_race, "pmds a caller saw huge without the ptl that were neither huge nor a migration entry under it")
MMRACE_COUNTER(thp_split, "large folio split attempts (__folio_split)")
MMRACE_COUNTER(thp_split_failed, "large folio split attempts that returned an error")
MMRACE_COUNTER(thp_split_eagain, "failed splits with -EAGAIN: the folio could not be frozen (the seed's failure)")
MMRACE_COUNTER(thp_split_ebusy, "failed splits with -EBUSY")
MMRACE_COUNTER(thp_split_other, "failed splits with any other error")
MMRACE_COUNTER(thp_migrate, "THPs migrated whole (mm_migrate_pages thp_succeeded)")
MMRACE_COUNTER(thp_migrate_failed, "THPs that failed to migrate (mm_migrate_pages thp_failed)")
MMRACE_COUNTER(migrate_pages, "pages migrated (mm_migrate_pages succeeded)")
