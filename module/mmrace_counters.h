/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one list of mmrace counters: name and what it counts.
 *
 * Expanded by the module's C object into the counter array and its names,
 * and parsed by userspace (userspace/proto) from this same text, so the two
 * cannot disagree. One entry per line, exactly MMRACE_COUNTER(name, "help"),
 * because userspace parses the text as is. docs/counters.md explains each one.
 * No include guard: the includer defines MMRACE_COUNTER first.
 */
MMRACE_COUNTER(softdirty_clear, "successful writes of 4 to /proc/PID/clear_refs")
MMRACE_COUNTER(pmd_split, "split_huge_pmd_locked() calls")
MMRACE_COUNTER(pmd_split_freeze, "split_huge_pmd_locked() calls with freeze=true")
MMRACE_COUNTER(pmd_split_done, "locked pmd splits that went ahead (vmstat thp_split_pmd)")
MMRACE_COUNTER(pmd_race, "pmds seen huge without the ptl, not huge under it")
MMRACE_COUNTER(thp_split, "PMD-size folio split attempts (__folio_split)")
MMRACE_COUNTER(thp_split_failed, "PMD-size folio splits that failed")
MMRACE_COUNTER(thp_split_eagain, "failed splits, -EAGAIN: folio could not be frozen")
MMRACE_COUNTER(thp_split_ebusy, "failed splits, -EBUSY")
MMRACE_COUNTER(thp_split_einval, "failed splits, -EINVAL: the folio cannot be split so")
MMRACE_COUNTER(thp_split_enomem, "failed splits, -ENOMEM")
MMRACE_COUNTER(thp_split_other, "failed splits, any other error")
MMRACE_COUNTER(thp_migrate, "THPs migrated whole (mm_migrate_pages thp_succeeded)")
MMRACE_COUNTER(thp_migrate_failed, "THPs that failed to migrate (thp_failed)")
MMRACE_COUNTER(migrate_pages, "base pages migrated (mm_migrate_pages succeeded)")
MMRACE_COUNTER(oom_kill, "OOM kills: 'Killed process' reports (as vmstat oom_kill)")
MMRACE_COUNTER(oom_victim, "tasks marked OOM victim (mark_victim): kills and exiting tasks")
MMRACE_COUNTER(oom_reaper_wake, "victims handed to the OOM reaper (wake_reaper)")
MMRACE_COUNTER(oom_reaper_reaped, "OOM reaper passes over a victim's mm (finish_task_reaping)")
MMRACE_COUNTER(oom_reaper_skipped, "OOM reaper passes skipped: mmap_lock busy or mm gone")
MMRACE_COUNTER(reclaim_retry, "zones should_reclaim_retry() weighed (reclaim_retry_zone)")
MMRACE_COUNTER(direct_reclaim, "try_to_free_pages() calls that reclaimed (not throttled out)")
MMRACE_COUNTER(alloc_stall_warn, "'page allocation stall for N secs' warnings")
MMRACE_COUNTER(inject_delays, "delays injected at inject/ probe points (race-window amplification)")
