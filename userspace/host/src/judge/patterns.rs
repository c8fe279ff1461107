//! The one table of console patterns that mark a run as failed.
//!
//! Every entry names a class, the substrings that identify it anywhere in a
//! console line, and whether it is a kernel finding or a problem of the
//! harness itself (a guest that could not start our driver proves nothing
//! about the kernel). The table is searched top to bottom and the first entry
//! that matches wins, so the specific classes (soft lockup, KASAN, bad page
//! state...) sit above the generic `BUG:` and `Kernel panic` they also
//! contain, and the harness panics sit above the generic panic.
//!
//! An OOM kill (`Out of memory: Killed process`, `oom-kill:`) is on purpose
//! absent: memory pressure is what several scenarios create, and the OOM
//! killer doing its job is not a kernel bug.

use crate::judge::title::{Stack, TitleRule};
use serde::{Deserialize, Serialize};

/// Who is to blame for a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Blame {
    /// The kernel misbehaved: the finding mmrace is looking for.
    Kernel,
    /// The guest could not run our driver: fix the harness, not the kernel.
    Harness,
}

/// One row of the table.
#[derive(Debug)]
pub struct Pattern {
    /// Short name used in the verdict, the report and the KTAP reason.
    pub class: &'static str,
    /// The line matches when it contains any of these...
    pub any_of: &'static [&'static str],
    /// ...and all of these (after it: a KUnit result line and its suite).
    pub and: &'static [&'static str],
    /// ...unless it also contains one of these (known benign look-alikes).
    pub unless: &'static [&'static str],
    pub blame: Blame,
    /// How a report of this row gets its title ([`crate::judge::title`]).
    pub title: TitleRule,
}

impl Pattern {
    fn matches(&self, line: &str) -> bool {
        self.any_of.iter().any(|n| line.contains(n))
            && self.and.iter().all(|n| line.contains(n))
            && !self.unless.iter().any(|n| line.contains(n))
    }
}

const fn kernel(class: &'static str, any_of: &'static [&'static str], title: TitleRule) -> Pattern {
    Pattern {
        class,
        any_of,
        and: &[],
        unless: &[],
        blame: Blame::Kernel,
        title,
    }
}

const fn harness(
    class: &'static str,
    any_of: &'static [&'static str],
    title: &'static str,
) -> Pattern {
    Pattern {
        class,
        any_of,
        and: &[],
        unless: &[],
        blame: Blame::Harness,
        title: TitleRule::Fixed(title),
    }
}

/// `kind in FRAME`, FRAME from the call trace past `skip`.
const fn in_trace(kind: &'static str, skip: &'static [&'static str]) -> TitleRule {
    TitleRule::Frame {
        kind,
        stack: Stack::Trace,
        skip,
    }
}

/// The table. Order matters: first match wins.
pub const PATTERNS: &[Pattern] = &[
    // The driver is the guest's init: when it exits or dies the kernel panics
    // with "Attempted to kill init". A kernel crash that kills the driver is
    // reported earlier in the log by its own line, which then decides.
    harness(
        "init-died",
        &["Attempted to kill init"],
        "kernel panic: Attempted to kill init!",
    ),
    harness(
        "no-init",
        &["No working init found"],
        "kernel panic: No working init found",
    ),
    harness(
        "no-root-fs",
        &["Unable to mount root fs"],
        "kernel panic: VFS: Unable to mount root fs",
    ),
    // mmrace.ko's own KUnit suites (module/parse.rs, module/inject.rs),
    // which the kernel runs when the module loads: a suite that failed
    // prints `not ok N mmrace_SUITE` unindented (its failed cases, and what
    // they asserted, are the indented lines before it). The module is
    // broken, not the kernel.
    Pattern {
        class: "module-kunit-failed",
        any_of: &["not ok "],
        and: &[" mmrace_"],
        unless: &[],
        blame: Blame::Harness,
        title: TitleRule::Fixed("mmrace.ko: a KUnit suite of the module failed"),
    },
    // Specific kernel classes before the generic BUG:/panic lines they contain.
    kernel("KASAN", &["BUG: KASAN:"], TitleRule::Kasan),
    kernel("KFENCE", &["BUG: KFENCE:"], TitleRule::Kfence),
    kernel("KCSAN", &["BUG: KCSAN:"], TitleRule::Kcsan),
    kernel("UBSAN", &["UBSAN:"], TitleRule::Ubsan),
    kernel(
        "soft lockup",
        &["BUG: soft lockup"],
        TitleRule::Stall {
            kind: "BUG: soft lockup",
        },
    ),
    kernel(
        "hard lockup",
        &["hard LOCKUP"],
        TitleRule::Stall {
            kind: "hard LOCKUP",
        },
    ),
    kernel(
        "bad page state",
        &["BUG: Bad page state"],
        TitleRule::BadPage,
    ),
    // Page poisoning (KERNEL_PROFILE=pagealloc): a freed page was written.
    kernel(
        "page poison",
        &[
            "pagealloc: memory corruption",
            "pagealloc: single bit error",
        ],
        in_trace(
            "pagealloc: memory corruption",
            &[
                "poison",
                "get_page_from_freelist",
                "alloc_pages",
                "^__alloc",
            ],
        ),
    ),
    // DEBUG_VM_PGTABLE's boot-time checks fail with a WARN_ON or BUG_ON in
    // that file (either WARNING format, or "kernel BUG at"); its normal
    // boot line ("Validating architecture page table helpers") names no
    // source line.
    kernel(
        "DEBUG_VM_PGTABLE",
        &["mm/debug_vm_pgtable.c:"],
        TitleRule::Splat,
    ),
    kernel("bad page map", &["BUG: Bad page map"], TitleRule::BadPage),
    kernel(
        "bad rss-counter",
        &["BUG: Bad rss-counter"],
        TitleRule::Fixed("BUG: Bad rss-counter state"),
    ),
    kernel(
        "sleep in atomic",
        &[
            "BUG: sleeping function called from invalid context",
            "BUG: scheduling while atomic",
        ],
        TitleRule::SleepInAtomic,
    ),
    // Lockdep (KERNEL_PROFILE=lockdep): its reports are titled WARNING or
    // INFO, and must win over the generic WARNING.
    kernel(
        "lockdep",
        &[
            "WARNING: possible circular locking dependency detected",
            "WARNING: inconsistent lock state",
            "WARNING: possible recursive locking detected",
            "WARNING: possible irq lock inversion dependency detected",
            "-unsafe lock order detected",
            "WARNING: bad unlock balance detected!",
            "WARNING: bad contention detected!",
            "WARNING: held lock freed!",
            "still has locks held!",
            "WARNING: chain_key collision",
            "WARNING: lock held when returning to user space!",
            "WARNING: Nested lock was not taken",
            "INFO: trying to register non-static key.",
        ],
        TitleRule::Lockdep,
    ),
    kernel(
        "suspicious RCU usage",
        &["WARNING: suspicious RCU usage"],
        in_trace("WARNING: suspicious RCU usage", &["rcu", "kmem", "slab"]),
    ),
    kernel(
        "Rust panic",
        &["rust_kernel: panicked"],
        TitleRule::RustPanic,
    ),
    kernel(
        "OOM deadlock",
        &["System is deadlocked on memory"],
        TitleRule::Fixed("kernel panic: System is deadlocked on memory"),
    ),
    // mmrace.ko's OOM reaper hand-off watch (module/mmrace_oom.c): an OOM
    // victim still up 3.5 s after its kill (3 s, then a second look 0.5 s
    // later) and never handed to the reaper.
    // From a timer in the kernel: the driver, which needs memory, may be
    // wedged by the same stall.
    kernel(
        "OOM stall",
        &["mmrace: OOM stall: "],
        TitleRule::Fixed("OOM stall: victim not handed to the OOM reaper"),
    ),
    kernel(
        "hung task",
        &["blocked for more than", "blocked in I/O wait for more than"],
        TitleRule::HungTask,
    ),
    kernel(
        "RCU stall",
        &[
            "detected stalls on CPUs",
            "self-detected stall",
            "detected expedited stalls",
        ],
        TitleRule::Stall {
            kind: "INFO: rcu detected stall",
        },
    ),
    kernel(
        "page allocation stall",
        &["page allocation stall"],
        in_trace(
            "INFO: page allocation stall",
            &["alloc_pages", "^__alloc", "get_page_from_freelist"],
        ),
    ),
    // Generic kernel crash lines. "kernel BUG at" (BUG_ON, VM_BUG_ON_FOLIO)
    // and "BUG: unable to handle"/"BUG: kernel NULL pointer dereference" are
    // all BUG; the Oops line that follows them is then part of the excerpt.
    kernel("BUG", &["kernel BUG at", "BUG:"], TitleRule::Splat),
    kernel(
        "general protection fault",
        &["general protection fault"],
        TitleRule::Splat,
    ),
    kernel("Oops", &["Oops:"], TitleRule::Splat),
    Pattern {
        class: "WARNING",
        any_of: &["WARNING:"],
        and: &[],
        // A boot-time mitigation notice, not a WARN() splat.
        unless: &["Unprivileged eBPF"],
        blame: Blame::Kernel,
        title: TitleRule::Splat,
    },
    kernel("panic", &["Kernel panic - not syncing"], TitleRule::Panic),
];

/// The first table entry that matches `line`.
pub fn classify(line: &str) -> Option<&'static Pattern> {
    PATTERNS.iter().find(|p| p.matches(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(line: &str) -> Option<&'static str> {
        classify(line).map(|p| p.class)
    }

    #[test]
    fn specific_classes_win_over_generic_bug() {
        assert_eq!(
            class("[   30.1] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [thp:77]"),
            Some("soft lockup")
        );
        assert_eq!(
            class("[    9.9] BUG: KASAN: slab-use-after-free in folio_split+0x1/0x2"),
            Some("KASAN")
        );
        assert_eq!(
            class("[    9.9] BUG: Bad page state in process thp-race  pfn:10a00"),
            Some("bad page state")
        );
        assert_eq!(
            class("[    9.9] BUG: Bad rss-counter state mm:000000001 type:MM_ANONPAGES val:-512"),
            Some("bad rss-counter")
        );
        assert_eq!(
            class("[    9.9] kernel BUG at mm/huge_memory.c:3050!"),
            Some("BUG")
        );
        assert_eq!(
            class(
                "[   14.9] mmrace: OOM stall: victim 90 (oom-victim) not handed to the OOM \
                 reaper 4000 ms after the kill, its mm still up"
            ),
            Some("OOM stall")
        );
        assert_eq!(
            class("[    9.9] BUG: unable to handle page fault for address: ffff8880"),
            Some("BUG")
        );
    }

    #[test]
    fn sanitizer_profile_reports_win_over_generic_warning_and_bug() {
        // Whole reports from real consoles are in tests/console/syz-*.log;
        // these are the title lines of each class, as the 7.3 sources
        // print them (kernel/locking/lockdep.c, mm/page_poison.c, the
        // WARN_ON/BUG_ON formats for mm/debug_vm_pgtable.c).
        for (line, want) in [
            ("[ 44.3][ C4] BUG: KCSAN: data-race in find_next_bit / rcu_report_exp_cpu_mult", "KCSAN"),
            ("[ 44.3] BUG: KCSAN: assert: race in split_huge_pmd_locked+0x1/0x2", "KCSAN"),
            ("[ 37.8] WARNING: possible circular locking dependency detected", "lockdep"),
            ("[ 0.0][ C0] WARNING: inconsistent lock state", "lockdep"),
            ("[ 57.9] WARNING: possible recursive locking detected", "lockdep"),
            ("[ 5.0] WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected", "lockdep"),
            ("[ 5.0] WARNING: bad unlock balance detected!", "lockdep"),
            ("[ 5.0] WARNING: mmrace-driver/88 still has locks held!", "lockdep"),
            ("[ 5.0] INFO: trying to register non-static key.", "lockdep"),
            ("[ 38.0] WARNING: suspicious RCU usage", "suspicious RCU usage"),
            ("[ 9.0] pagealloc: memory corruption", "page poison"),
            ("[ 9.0] pagealloc: single bit error", "page poison"),
            ("[ 0.9] WARNING: CPU: 0 PID: 1 at mm/debug_vm_pgtable.c:418 pmd_huge_tests+0x1/0x2", "DEBUG_VM_PGTABLE"),
            ("[ 0.9] WARNING: mm/debug_vm_pgtable.c:418 at pmd_huge_tests+0x1/0x2, CPU#0: swapper/0/1", "DEBUG_VM_PGTABLE"),
            ("[ 0.9] kernel BUG at mm/debug_vm_pgtable.c:1053!", "DEBUG_VM_PGTABLE"),
        ] {
            assert_eq!(class(line), Some(want), "{line}");
        }
        // DEBUG_VM_PGTABLE's own boot line is not a report.
        assert_eq!(
            class("[ 0.9] debug_vm_pgtable: [debug_vm_pgtable         ]: Validating architecture page table helpers"),
            None
        );
    }

    #[test]
    fn harness_panics_win_over_generic_panic() {
        let p = classify(
            "[ 1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
        )
        .unwrap();
        assert_eq!((p.class, p.blame), ("init-died", Blame::Harness));
        let p = classify(
            "[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
        )
        .unwrap();
        assert_eq!((p.class, p.blame), ("no-root-fs", Blame::Harness));
        let p = classify("[ 1.0] Kernel panic - not syncing: sysrq triggered crash").unwrap();
        assert_eq!((p.class, p.blame), ("panic", Blame::Kernel));
        let p =
            classify("[ 1.0] Kernel panic - not syncing: System is deadlocked on memory").unwrap();
        assert_eq!((p.class, p.blame), ("OOM deadlock", Blame::Kernel));
    }

    #[test]
    fn a_failed_suite_of_the_module_is_a_harness_error() {
        // KUnit's lines for mmrace.ko's suites (lib/kunit/test.c): the
        // suite's result unindented, its cases indented.
        let p = classify("[    3.1] not ok 1 mmrace_parse").unwrap();
        assert_eq!((p.class, p.blame), ("module-kunit-failed", Blame::Harness));
        for line in [
            "[    3.1] ok 1 mmrace_parse",
            "[    3.1] ok 2 mmrace_inject",
            "[    3.1]     not ok 5 add_lines",
            "[    3.1]     # add_lines: ASSERTION FAILED at module/parse.rs:190",
            "[    3.1] # mmrace_parse: pass:6 fail:1 skip:0 total:7",
            "[    3.1] not ok 1 ext4_inode_test",
        ] {
            assert_eq!(class(line), None, "{line}");
        }
    }

    #[test]
    fn both_warn_formats_match() {
        assert_eq!(
            class("[ 5.0] WARNING: CPU: 1 PID: 77 at mm/huge_memory.c:3050 split_huge_pmd_locked+0x5/0x9"),
            Some("WARNING")
        );
        assert_eq!(
            class("[ 5.0] WARNING: mm/huge_memory.c:3050 at split_huge_pmd_locked+0x5/0x9, CPU#1: thp/77"),
            Some("WARNING")
        );
    }

    #[test]
    fn benign_lines_do_not_match() {
        for line in [
            "[ 7.0] Out of memory: Killed process 88 (thp-race) total-vm:2097152kB",
            "[ 7.0] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task=thp-race,pid=88",
            "[ 7.0] thp-race invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0",
            "[ 0.1] Spectre V2 : WARNING: Unprivileged eBPF is enabled with eIBRS on, data leaks possible",
            "[ 0.0] Linux version 7.3.4 (root@vm) #1 SMP PREEMPT",
            "[ 9.0] reboot: Power down",
        ] {
            assert_eq!(class(line), None, "{line}");
        }
    }

    #[test]
    fn every_class_is_reachable() {
        // A row hidden behind an earlier, broader one would never fire.
        for p in PATTERNS {
            for needle in p.any_of {
                let line = [*needle].iter().chain(p.and).copied().collect::<String>();
                let winner = classify(&line).expect(needle);
                assert_eq!(winner.class, p.class, "{needle:?} is shadowed");
            }
        }
        let mut classes: Vec<_> = PATTERNS.iter().map(|p| p.class).collect();
        classes.sort();
        classes.dedup();
        assert_eq!(classes.len(), PATTERNS.len(), "duplicate class names");
    }
}
