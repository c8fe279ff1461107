//! A finding's identity: its title in syzkaller's style ("WARNING in
//! __split_huge_pmd_locked", "KASAN: slab-use-after-free Read in foo",
//! "INFO: task hung in foo"), the faulting frame the title names, and a
//! signature (a hash of the title) that two runs share when they found the
//! same bug.
//!
//! A title is the kind of report plus the first function of its stack that
//! is not reporting machinery (`dump_stack`, `__warn`, `report_bug`, lock and
//! string helpers...: [`SKIP`], in the manner of syzkaller's
//! `pkg/report/linux.go` skip lists), with the kernel's decoration stripped:
//! offsets (`+0x12/0x340`), addresses, pids, CPU numbers, `[module]`,
//! compiler suffixes (`.isra.0`, `.cold`), syscall prefixes (`__x64_sys_`).
//!
//! Which rule titles which console report is part of the one pattern table
//! ([`crate::judge::patterns::PATTERNS`], its `title` column); the rules are here.

use mmrace_proto::oracle::{Corruption, Expected, Found, StallKind};
use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use std::sync::LazyLock;

/// Hex digits of the signature.
pub const SIGNATURE_HEX: usize = 16;

/// What makes a finding the same as another one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Identity {
    /// "WARNING in __split_huge_pmd_locked".
    pub title: String,
    /// The function the title names, when it names one.
    pub frame: Option<String>,
    /// The first [`SIGNATURE_HEX`] hex digits of the title's SHA-1.
    pub signature: String,
}

impl Identity {
    /// `kind in frame`, or `kind` alone without a frame.
    pub fn new(kind: &str, frame: Option<String>) -> Identity {
        let title = match &frame {
            Some(f) => format!("{kind} in {f}"),
            None => kind.to_string(),
        };
        Identity {
            signature: signature(&title),
            title,
            frame,
        }
    }

    /// A title that names no function.
    pub fn plain(title: &str) -> Identity {
        Identity::new(title, None)
    }
}

/// The signature of a title.
pub fn signature(title: &str) -> String {
    let digest = Sha1::digest(title.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..SIGNATURE_HEX].to_string()
}

/// Where a rule looks for its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// The call trace (the frame lines after "Call Trace:").
    Trace,
    /// The `RIP:` line, then the call trace.
    RipTrace,
}

/// How a console report gets its title: one per row of the pattern table.
#[derive(Debug, Clone, Copy)]
pub enum TitleRule {
    /// Always this title.
    Fixed(&'static str),
    /// `kind in FRAME`, FRAME from `stack`, past the frames matching the
    /// general skip list or `skip`.
    Frame {
        kind: &'static str,
        stack: Stack,
        skip: &'static [&'static str],
    },
    /// "BUG: KASAN: slab-use-after-free in f" + "Read of size".
    Kasan,
    /// "BUG: KFENCE: use-after-free read in f".
    Kfence,
    /// "BUG: KCSAN: data-race in f / g": the line itself.
    Kcsan,
    /// "UBSAN: array-index-out-of-bounds in file:line".
    Ubsan,
    /// Crash splats told apart by their line: WARNING, kernel BUG at,
    /// unable to handle page fault, NULL pointer dereference, general
    /// protection fault, Oops, other BUG: lines.
    Splat,
    /// Bad page state / bad page map: the allocation stack if page_owner
    /// printed one, else the call trace.
    BadPage,
    /// "BUG: sleeping function called from invalid context", "BUG:
    /// scheduling while atomic".
    SleepInAtomic,
    /// Lockdep's reports: the lock the task was taking.
    Lockdep,
    /// A soft/hard lockup or an RCU stall: the function below the first
    /// dispatch frame (syscall entry, workqueue, kthread...).
    Stall { kind: &'static str },
    /// A hung task: the first frame that is not scheduling or waiting.
    HungTask,
    /// "rust_kernel: panicked at FILE:LINE:COL:".
    RustPanic,
    /// "Kernel panic - not syncing: MESSAGE".
    Panic,
}

static PRINTK_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:<\d+>)?(?:\[\s*\d+\.\d+\])?(?:\[\s*[CT]\d+\])?\s?").unwrap()
});
static FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(\?\s+)?(?:\[<?[0-9a-f]+>?\]\s*){0,2}(?:[0-9]+:)?([A-Za-z0-9_]+)(?:\.[A-Za-z0-9_.]+)?\+0x[0-9a-f]+/0x[0-9a-f]+").unwrap()
});
static RIP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:RIP|IP|pc|PC is at):? (?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\]\s+){0,2}([A-Za-z0-9_]+)(?:\.[A-Za-z0-9_.]+)?\+0x").unwrap()
});
static AT_FUNC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"at: (?:\[<[0-9a-f]+>\] )?([A-Za-z0-9_]+)(?:\.[A-Za-z0-9_.]+)?\+0x").unwrap()
});
/// A function with its offset anywhere in a line.
static FUNC_OFF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z0-9_]+)(?:\.[A-Za-z0-9_.]+)?\+0x[0-9a-f]+/0x[0-9a-f]+").unwrap()
});
static STACK_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"Call (?:T|t)race:|Backtrace:").unwrap());

/// Reporting machinery, locks, string and list helpers: never the bug's
/// frame (after syzkaller's `linuxStackParams.skipPatterns`).
pub const SKIP: &[&str] = &[
    "__sanitizer",
    "__asan",
    "kasan",
    "kmsan",
    "kcsan",
    "kfence",
    "__ubsan",
    "ubsan_",
    "check_memory_region",
    "print_address_description",
    "print_report",
    "panic",
    "invalid_op",
    "report_bug",
    "fixup_bug",
    "handle_bug",
    "do_error",
    "_trap$|do_trap",
    "show_stack",
    "dump_stack",
    "dump_page",
    "walk_stack",
    "dump_backtrace",
    "warn_slowpath",
    "warn_alloc",
    "warn_bogus",
    "__warn",
    "^__pfx_",
    "debug_object",
    "lockdep",
    "lock_acquire",
    "lock_release",
    "lock_class",
    "mark_lock",
    "(reacquire|mark)_held_locks",
    "spin_lock",
    "spin_trylock",
    "spin_unlock",
    "queued_spin_lock",
    "read_lock",
    "write_lock",
    "read_unlock",
    "write_unlock",
    "^down$",
    "down_read",
    "down_write",
    "down_trylock",
    "up_read",
    "up_write",
    "^mutex_",
    "^__mutex_",
    "^rt_mutex_",
    "osq_lock",
    "osq_unlock",
    "atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)",
    "(set|clear|change|test)_bit",
    "__wake_up",
    "^refcount_",
    "^kref_",
    "memcpy",
    "memcmp",
    "memset",
    "memchr",
    "memmove",
    "strcmp",
    "strncmp",
    "strcpy",
    "strscpy",
    "strlen",
    "strnlen",
    "copy_to_user",
    "copy_from_user",
    "put_user",
    "get_user",
    "might_fault",
    "might_sleep",
    "__might_resched",
    "list_add",
    "list_del",
    "list_replace",
    "list_move",
    "printk",
    "stack_trace_save",
    "arch_stack_walk",
    "lock_timer_base",
    "del_timer",
    "timer_delete",
    "__mod_timer",
    "sk_stop_timer",
    "__filemap_get_folio",
    "filemap_alloc_folio",
    "folio_(?:alloc|unlock)",
    "find_or_create_page",
    "pagecache_get_page",
    "read_cache_page",
    "do_read_cache_folio",
    "grab_cache_page_write_begin",
    "^entry_SYSCALL",
    "^rb_",
    "^__rb_",
];

/// Prefixes a syscall's functions carry (syzkaller strips them too).
const STRIP_PREFIXES: &[&str] = &[
    "SYSC_",
    "SyS_",
    "sys_",
    "__x64_",
    "__ia32_",
    "__arm64_",
    "____sys_",
    "___sys_",
    "__sys_",
    "__se_sys_",
    "__se_",
    "__do_sys_",
    "ksys_",
];

/// Where a stall's loop is dispatched from: the frame above the first of
/// these names it (syzkaller's `linuxStallAnchorFrames`, the entries that
/// matter for mm).
const STALL_ANCHORS: &[&str] = &[
    "process_one_work",
    "do_syscall_",
    "do_fast_syscall_",
    "do_softirq",
    "call_timer_fn",
    "run_timer_softirq",
    "run_ksoftirqd",
    "netif_receive_skb",
    "smpboot_thread_fn",
    "^kthread$",
    "start_secondary",
    "cpu_startup_entry",
    "ret_from_fork",
    "vfs_write",
    "vfs_read",
    "vfs_ioctl",
    "mmap_region",
    "do_mmap",
    "__do_fault",
    "handle_mm_fault",
    "do_user_addr_fault",
    "task_work_run",
];

/// Substrings of a hung task's frames that only say it waits.
const HANG_SKIP: &[&str] = &[
    "sched",
    "_lock",
    "_slowlock",
    "down",
    "completion",
    "kthread",
    "wait",
    "synchronize",
    "context_switch",
    "__switch_to",
    "cancel_delayed_work",
];

/// The freeing and dumping path of a bad page.
const BAD_PAGE_SKIP: &[&str] = &[
    "bad_page",
    "print_bad_p",
    "free_.*page",
    "free_pages",
    "page_prepare",
    "free_unref",
    "release_pages",
    "^_*folio_(put|unref|free)",
    "^_*put_page",
    "page_owner",
    "vm_normal_page",
    "poison",
    "get_page_from_freelist",
    "alloc_pages",
    "^__alloc",
];

fn regex_set(patterns: &[&str]) -> RegexSet {
    RegexSet::new(patterns).expect("skip patterns are valid regexes")
}

static SKIP_SET: LazyLock<RegexSet> = LazyLock::new(|| regex_set(SKIP));
static ANCHOR_SET: LazyLock<RegexSet> = LazyLock::new(|| regex_set(STALL_ANCHORS));

/// A console line without its printk time and caller prefix.
pub fn strip_prefix(line: &str) -> &str {
    let m = PRINTK_PREFIX.find(line).map_or(0, |m| m.end());
    &line[m..]
}

/// A frame line's function, None for other lines and for the unreliable
/// `? foo+0x..` frames.
fn frame_of(line: &str) -> Option<&str> {
    let c = FRAME.captures(strip_prefix(line))?;
    if c.get(1).is_some() {
        return None;
    }
    c.get(2).map(|m| m.as_str())
}

/// The function of a `RIP: 0010:foo+0x1/0x2` line.
fn rip_of(line: &str) -> Option<&str> {
    RIP.captures(line)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// The frames of a stack: the frame lines from the first line matching
/// `start` on (none without such a line), leaving out the interrupt and
/// NMI sections (`<IRQ>`...`</IRQ>`) a lockup's trace begins with when
/// `task_only`.
fn stack_frames<'a>(lines: &[&'a str], start: &Regex, task_only: bool) -> Vec<&'a str> {
    let Some(from) = lines.iter().position(|l| start.is_match(l)) else {
        return Vec::new();
    };
    let mut frames = Vec::new();
    let mut in_irq = false;
    for l in &lines[from..] {
        let t = strip_prefix(l).trim();
        if t == "<IRQ>" || t == "<NMI>" {
            in_irq = true;
        } else if t == "</IRQ>" || t == "</NMI>" || t == "<TASK>" {
            in_irq = false;
        } else if !(task_only && in_irq) {
            frames.extend(frame_of(l));
        }
    }
    frames
}

/// Strips the syscall prefixes, in one pass in [`STRIP_PREFIXES`]' order
/// (as syzkaller: `__x64_sys_rmdir` becomes `sys_rmdir`).
pub fn strip_frame(f: &str) -> String {
    let mut f = f;
    for p in STRIP_PREFIXES {
        if let Some(rest) = f.strip_prefix(p) {
            if !rest.is_empty() {
                f = rest;
            }
        }
    }
    f.to_string()
}

/// The first frame no skip pattern matches.
fn first_unskipped(frames: &[&str], extra: &[&str]) -> Option<String> {
    let extra = regex_set(extra);
    frames
        .iter()
        .find(|f| !SKIP_SET.is_match(f) && !extra.is_match(f))
        .map(|f| strip_frame(f))
}

/// Candidate frames of a stack kind.
fn frames_for<'a>(lines: &[&'a str], stack: Stack) -> Vec<&'a str> {
    let mut v = Vec::new();
    if stack == Stack::RipTrace {
        v.extend(lines.iter().find_map(|l| rip_of(l)));
    }
    v.extend(stack_frames(lines, &STACK_START, false));
    v
}

/// Decoration out of a report's own words: offsets, addresses, numbers,
/// `[module]`, process names in brackets.
pub fn normalise(text: &str) -> String {
    static OFFSET: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\+0x[0-9a-f]+/0x[0-9a-f]+").unwrap());
    static BRACKETS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*\[[^\]]*\]").unwrap());
    static HEX: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{8,}\b").unwrap());
    static NUM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+").unwrap());
    static SPACE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").unwrap());
    let t = OFFSET.replace_all(text, "");
    let t = BRACKETS.replace_all(&t, "");
    let t = HEX.replace_all(&t, "ADDR");
    let t = NUM.replace_all(&t, "N");
    SPACE.replace_all(t.trim(), " ").to_string()
}

/// The text after `marker` in `line`, if there.
fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.find(marker).map(|i| &line[i + marker.len()..])
}

/// Titles a console report: `lines` from its first line (the one that
/// matched the pattern table) on.
pub fn identify(rule: TitleRule, lines: &[&str]) -> Identity {
    let first = lines.first().copied().unwrap_or_default();
    match rule {
        TitleRule::Fixed(t) => Identity::plain(t),
        TitleRule::Frame { kind, stack, skip } => {
            Identity::new(kind, first_unskipped(&frames_for(lines, stack), skip))
        }
        TitleRule::Kasan => kasan(first, lines),
        TitleRule::Kfence => kfence(first, lines),
        TitleRule::Kcsan => {
            let rest = after(first, "BUG: KCSAN: ").unwrap_or(first);
            Identity::plain(&format!("KCSAN: {}", normalise_funcs(rest)))
        }
        TitleRule::Ubsan => {
            static KIND: LazyLock<Regex> =
                LazyLock::new(|| Regex::new(r"UBSAN: ([A-Za-z\- ]+?) in ").unwrap());
            let kind = KIND
                .captures(first)
                .map_or("undefined-behaviour", |c| c.get(1).unwrap().as_str());
            Identity::new(
                &format!("UBSAN: {kind}"),
                first_unskipped(&frames_for(lines, Stack::Trace), &["ubsan"]),
            )
        }
        TitleRule::Splat => splat(first, lines),
        TitleRule::BadPage => bad_page(first, lines),
        TitleRule::SleepInAtomic => {
            let kind = if first.contains("scheduling while atomic") {
                "BUG: scheduling while atomic"
            } else {
                "BUG: sleeping function called from invalid context"
            };
            Identity::new(
                kind,
                first_unskipped(&frames_for(lines, Stack::Trace), &["preempt", "schedule"]),
            )
        }
        TitleRule::Lockdep => lockdep(first, lines),
        TitleRule::Stall { kind } => Identity::new(kind, stall_frame(lines)),
        TitleRule::HungTask => Identity::new(
            "INFO: task hung",
            hang_frame(&stack_frames(lines, &STACK_START, false)),
        ),
        TitleRule::RustPanic => {
            static AT: LazyLock<Regex> =
                LazyLock::new(|| Regex::new(r"panicked at ([^:\s]+)").unwrap());
            match AT.captures(first) {
                Some(c) => Identity::plain(&format!("Rust panic at {}", &c[1])),
                None => Identity::plain("Rust panic"),
            }
        }
        TitleRule::Panic => {
            let msg = after(first, "not syncing: ").unwrap_or("");
            Identity::plain(&format!("kernel panic: {}", normalise(msg)))
        }
    }
}

/// "find_next_bit+0x1/0x2 / foo" to "find_next_bit / foo".
fn normalise_funcs(text: &str) -> String {
    FUNC_OFF.replace_all(text.trim(), "$1").to_string()
}

fn kasan(first: &str, lines: &[&str]) -> Identity {
    static HEAD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"BUG: KASAN: ([a-z\-]+(?: or [a-z\-]+)?) in ([A-Za-z0-9_]+)").unwrap()
    });
    static ACCESS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b(Read|Write) of size").unwrap());
    let Some(c) = HEAD.captures(first) else {
        let rest = after(first, "BUG: KASAN: ").unwrap_or("");
        return Identity::plain(&format!("KASAN: {}", normalise(rest)));
    };
    let kind = &c[1];
    let mut frames = vec![c.get(2).unwrap().as_str()];
    frames.extend(stack_frames(lines, &STACK_START, false));
    if kind.contains("invalid-free") {
        let skip = ["kmem_", "slab_", "kfree", "vunmap", "vfree"];
        return Identity::new("KASAN: invalid-free", first_unskipped(&frames, &skip));
    }
    let access = lines
        .iter()
        .take(6)
        .find_map(|l| ACCESS.captures(l).map(|c| c[1].to_string()));
    let kind = match access {
        Some(a) => format!("KASAN: {kind} {a}"),
        None => format!("KASAN: {kind}"),
    };
    Identity::new(&kind, first_unskipped(&frames, &[]))
}

fn kfence(first: &str, lines: &[&str]) -> Identity {
    static HEAD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"BUG: KFENCE: (.+?) in ([A-Za-z0-9_]+)").unwrap());
    let Some(c) = HEAD.captures(first) else {
        let rest = after(first, "BUG: KFENCE: ").unwrap_or("");
        return Identity::plain(&format!("KFENCE: {}", normalise(rest)));
    };
    // KFENCE prints its stack right after its header, without "Call Trace:".
    let mut frames = vec![c.get(2).unwrap().as_str()];
    let end = lines
        .iter()
        .skip(1)
        .position(|l| l.contains("kfence-#") && !l.contains(" at 0x"))
        .map_or(lines.len(), |p| p + 1);
    frames.extend(lines[1..end].iter().filter_map(|l| frame_of(l)));
    Identity::new(&format!("KFENCE: {}", &c[1]), first_unskipped(&frames, &[]))
}

/// The function a WARNING's own line names.
fn warning_func(first: &str) -> Option<&str> {
    static OLD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"WARNING: .* at \S+:\d+ ([A-Za-z0-9_]+)(?:\.[A-Za-z0-9_.]+)?\+0x").unwrap()
    });
    static NEW: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"WARNING: \S+:\d+ at ([A-Za-z0-9_]+)(?:\.[A-Za-z0-9_.]+)?\+0x").unwrap()
    });
    OLD.captures(first)
        .or_else(|| NEW.captures(first))
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

fn splat(first: &str, lines: &[&str]) -> Identity {
    let rip_trace = || frames_for(lines, Stack::RipTrace);
    let (kind, frames, skip): (String, Vec<&str>, &[&str]) = if first.contains("kernel BUG at") {
        ("kernel BUG".into(), rip_trace(), &[])
    } else if first.contains("BUG: unable to handle page fault")
        || first.contains("BUG: unable to handle kernel paging request")
    {
        (
            "BUG: unable to handle kernel paging request".into(),
            rip_trace(),
            &[],
        )
    } else if first.contains("NULL pointer dereference") {
        (
            "BUG: unable to handle kernel NULL pointer dereference".into(),
            rip_trace(),
            &[],
        )
    } else if first.contains("general protection fault") {
        ("general protection fault".into(), rip_trace(), &[])
    } else if first.contains("WARNING:") {
        let mut f: Vec<&str> = warning_func(first).into_iter().collect();
        f.extend(rip_trace());
        ("WARNING".into(), f, &[])
    } else if let Some(rest) = after(first, "Oops: ") {
        let what = rest.split(':').next().unwrap_or("").trim();
        (format!("Oops: {}", normalise(what)), rip_trace(), &[])
    } else {
        let rest = after(first, "BUG: ").unwrap_or(first);
        let what = rest.split(':').next().unwrap_or(rest);
        (format!("BUG: {}", normalise(what)), rip_trace(), &[])
    };
    Identity::new(&kind, first_unskipped(&frames, skip))
}

fn bad_page(first: &str, lines: &[&str]) -> Identity {
    static OWNER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"page last allocated").unwrap());
    let kind = if first.contains("Bad page map") {
        "BUG: Bad page map"
    } else {
        "BUG: Bad page state"
    };
    let owner = stack_frames(lines, &OWNER, false);
    let from_owner = lines.iter().any(|l| OWNER.is_match(l));
    let frame = if from_owner {
        let skip: Vec<&str> = BAD_PAGE_SKIP
            .iter()
            .copied()
            .chain(["alloc", "vmap"])
            .collect();
        first_unskipped(&owner, &skip)
    } else {
        None
    };
    let frame = frame.or_else(|| first_unskipped(&frames_for(lines, Stack::Trace), BAD_PAGE_SKIP));
    Identity::new(kind, frame)
}

/// The function of the first `at: f+0x` line after the line containing
/// `marker`.
fn at_after(lines: &[&str], marker: &str) -> Option<String> {
    let from = lines.iter().position(|l| l.contains(marker))?;
    lines[from..].iter().find_map(|l| {
        AT_FUNC
            .captures(l)
            .map(|c| strip_frame(c.get(1).unwrap().as_str()))
    })
}

fn lockdep(first: &str, lines: &[&str]) -> Identity {
    let trace = || first_unskipped(&frames_for(lines, Stack::Trace), &[]);
    let pick = |marker: &str| at_after(lines, marker).or_else(trace);
    let (kind, frame) = if first.contains("circular locking")
        || first.contains("recursive locking")
        || first.contains("lock order detected")
    {
        ("possible deadlock", pick("is trying to acquire"))
    } else if first.contains("irq lock inversion") {
        ("possible deadlock", pick("just changed the state of lock"))
    } else if first.contains("inconsistent lock state") {
        (
            "inconsistent lock state",
            trace().or_else(|| at_after(lines, "takes")),
        )
    } else if first.contains("bad unlock balance") {
        ("WARNING: bad unlock balance", trace())
    } else if first.contains("held lock freed") {
        ("WARNING: held lock freed", trace())
    } else if first.contains("still has locks held") {
        ("WARNING: still has locks held", trace())
    } else if first.contains("lock held when returning to user space") {
        (
            "WARNING: lock held when returning to user space",
            pick("leaving the kernel with locks still held"),
        )
    } else if first.contains("non-static key") {
        (
            "INFO: trying to register non-static key",
            first_unskipped(&frames_for(lines, Stack::Trace), &["stack", "lock", "IRQ"]),
        )
    } else {
        let text = strip_prefix(first).trim_end_matches('!');
        return Identity::new(&normalise(text), trace());
    };
    Identity::new(kind, frame)
}

/// A lockup's or a stall's frame: the one above the first dispatch frame.
/// The frames are those the timer interrupt interrupted when the trace
/// shows that interrupt's entry (an RCU stall seen from the tick: the
/// interrupted code may itself run in a softirq), else the `RIP:` and the
/// task's part of the trace.
fn stall_frame(lines: &[&str]) -> Option<String> {
    let frames: Vec<&str> = match lines
        .iter()
        .rposition(|l| l.contains("apic_timer_interrupt"))
    {
        Some(i) => lines[i + 1..]
            .iter()
            .filter_map(|l| rip_of(l).or_else(|| frame_of(l)))
            .collect(),
        None => {
            let mut f: Vec<&str> = lines.iter().find_map(|l| rip_of(l)).into_iter().collect();
            f.extend(stack_frames(lines, &STACK_START, true));
            f
        }
    };
    let frames: Vec<&str> = frames
        .into_iter()
        .filter(|f| !SKIP_SET.is_match(f) && !f.contains("rcu") && !f.contains("apic_timer"))
        .collect();
    let mut prev = *frames.first()?;
    for f in &frames {
        if ANCHOR_SET.is_match(f) {
            return Some(strip_frame(prev));
        }
        prev = f;
    }
    frames.first().map(|f| strip_frame(f))
}

/// A hung task's frame: the first that does not only wait.
fn hang_frame(frames: &[&str]) -> Option<String> {
    frames
        .iter()
        .find(|f| !SKIP_SET.is_match(f) && !HANG_SKIP.iter().any(|s| f.contains(s)))
        .map(|f| strip_frame(f))
}

/// What the data oracle found, in words: the stamp it read against the one
/// it expected.
pub fn corruption_kind(c: &Corruption) -> &'static str {
    match (&c.expected, &c.found) {
        (Expected::Stamp(e), Found::Stamp(f))
            if e.region == f.region && e.page == f.page && f.generation < e.generation =>
        {
            "lost write"
        }
        (Expected::Stamp(e), Found::Stamp(f)) if e.region == f.region && e.page == f.page => {
            "write from the future"
        }
        (Expected::Stamp(_), Found::Stamp(_)) => "page from elsewhere",
        (Expected::Stamp(_), Found::Zero) => "lost page (reads zero)",
        (Expected::Zero, Found::Stamp(_)) => "data survived a zap",
        (_, Found::Garbage { .. }) => "torn or foreign data",
        (Expected::Zero, Found::Zero) => "no mismatch",
    }
}

/// A data-oracle finding: "data corruption: lost write in thp-race writer
/// (writer-pass)". The parties' recent operations vary from run to run, so
/// they stay in the reason, out of the title.
///
/// A pairs round names what raced instead of the check, its round number
/// cut ("data corruption: lost write in pairs (store+migrate-pages on
/// anon)"): the pair and the kind are the finding's identity.
pub fn corruption(c: &Corruption) -> Identity {
    let what = match &c.context {
        Some(ctx) => ctx.split(", round").next().unwrap_or(ctx).to_string(),
        None => c.check.clone(),
    };
    Identity::plain(&format!(
        "data corruption: {} in {} ({what})",
        corruption_kind(c),
        c.region,
    ))
}

/// A stall the driver saw.
pub fn stall(kind: StallKind) -> Identity {
    match kind {
        StallKind::OomDeadlock => Identity::plain("OOM stall: victim not gone after the kill"),
        StallKind::KilledNotGone => {
            Identity::plain("OOM stall: no OOM kill, SIGKILLed victim not gone")
        }
    }
}

/// A taint bit the console did not explain.
pub fn taint(letters: &str) -> Identity {
    Identity::plain(&format!("taint {letters} without a console finding"))
}

/// A hang: "hang: guest silent".
pub fn hang(kind: &str) -> Identity {
    Identity::plain(&format!("hang: {kind}"))
}

/// Programs of `exec` or `selftests-mm` that failed.
pub fn test_failed<'a>(names: impl Iterator<Item = &'a str>) -> Identity {
    let names: Vec<&str> = names.collect();
    Identity::plain(&format!("test failed: {}", names.join(", ")))
}

/// A verdict without a finding (`hang`, `guest-died`, `driver-failed`...):
/// its class is its title.
pub fn verdict_class(class: &str) -> Identity {
    Identity::plain(class)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    fn corrupt(check: &str, context: Option<&str>) -> Corruption {
        let st = |generation| mmrace_proto::oracle::Stamp {
            region: 7,
            page: 3,
            generation,
        };
        Corruption {
            t_ms: 1,
            check: check.into(),
            region: "pairs".into(),
            vaddr: 0x1000,
            page: 3,
            expected: Expected::Stamp(st(9)),
            found: Found::Stamp(st(4)),
            recent_ops: Default::default(),
            context: context.map(str::to_string),
        }
    }

    #[test]
    fn pairs_corruption_is_titled_by_pair_and_kind_not_round() {
        let a = corruption(&corrupt(
            "pairs-round",
            Some("store+migrate-pages on anon, round 7"),
        ));
        let b = corruption(&corrupt(
            "pairs-round",
            Some("store+migrate-pages on anon, round 9"),
        ));
        assert_eq!(
            a.title,
            "data corruption: lost write in pairs (store+migrate-pages on anon)"
        );
        assert_eq!(a.signature, b.signature);
        let c = corruption(&corrupt("writer-pass", None));
        assert_eq!(
            c.title,
            "data corruption: lost write in pairs (writer-pass)"
        );
    }

    #[test]
    fn signature_is_stable_and_short() {
        let a = Identity::plain("WARNING in __split_huge_pmd_locked");
        assert_eq!(a.signature.len(), SIGNATURE_HEX);
        let b = Identity::new("WARNING", Some("__split_huge_pmd_locked".into()));
        assert_eq!((&a.title, &a.signature), (&b.title, &b.signature));
        assert_ne!(a.signature, Identity::plain("WARNING in x").signature);
        // SHA-1 of "abc", a published test vector.
        assert_eq!(signature("abc"), "a9993e364706816a");
    }

    #[test]
    fn decoration_is_stripped() {
        assert_eq!(
            normalise("scheduling while atomic: thp/77/0x00000002 [mmrace] CPU 3"),
            "scheduling while atomic: thp/N/ADDR CPU N"
        );
        assert_eq!(strip_frame("__x64_sys_mprotect"), "sys_mprotect");
        assert_eq!(strip_frame("ksys_write"), "write");
        assert_eq!(strip_frame("sys_"), "sys_");
        assert_eq!(
            frame_of("[   52.0][ T12]  change_huge_pmd.isra.0+0x7c/0x3a0 [mmrace]"),
            Some("change_huge_pmd")
        );
        assert_eq!(frame_of("[ 1.0]  ? watchdog_timer_fn+0x1e6/0x270"), None);
        assert_eq!(
            frame_of(" [<a000000101163390>] dump_stack+0x150/0x1c0"),
            Some("dump_stack")
        );
        assert_eq!(
            rip_of("[ 5.0] RIP: 0010:__split_huge_pmd_locked+0x6a5/0xa30"),
            Some("__split_huge_pmd_locked")
        );
        assert_eq!(rip_of("[ 5.0] RIP: 0033:0x55d0c2f4a9cd"), None);
    }

    #[test]
    fn warning_skips_the_reporting_frames() {
        // New format, no function on the line: the RIP, then the trace
        // past __warn and report_bug.
        let l = lines(
            "WARNING: mm/huge_memory.c:3050 at 0x0, CPU#1: thp/77\n\
             Call Trace:\n dump_stack_lvl+0x1/0x2\n __warn+0x1/0x2\n report_bug+0x1/0x2\n handle_bug+0x1/0x2\n exc_invalid_op+0x1/0x2\n split_huge_pmd_locked+0x1/0x2\n",
        );
        assert_eq!(
            identify(TitleRule::Splat, &l).title,
            "WARNING in split_huge_pmd_locked"
        );
        let l = lines("WARNING: CPU: 1 PID: 77 at mm/rmap.c:12 folio_add_anon_rmap_ptes+0x5/0x9\n");
        assert_eq!(
            identify(TitleRule::Splat, &l).title,
            "WARNING in folio_add_anon_rmap_ptes"
        );
    }

    #[test]
    fn splats_without_a_stack_keep_their_kind() {
        let l = lines("[ 9.0] kernel BUG at mm/huge_memory.c:3050!");
        let id = identify(TitleRule::Splat, &l);
        assert_eq!((id.title.as_str(), id.frame), ("kernel BUG", None));
        let l = lines("BUG: Bad rss-counter state mm:00000000abcd type:MM_ANONPAGES val:-512");
        assert_eq!(
            identify(TitleRule::Fixed("BUG: Bad rss-counter state"), &l).title,
            "BUG: Bad rss-counter state"
        );
    }

    #[test]
    fn stall_takes_the_frame_above_the_syscall_entry() {
        let l = lines(
            "BUG: soft lockup\nRIP: 0010:pmd_lock_slowpath+0x31/0x90\nCall Trace:\n <IRQ>\n hrtimer_interrupt+0x1/0x2\n </IRQ>\n <TASK>\n change_huge_pmd+0x7c/0x3a0\n __x64_sys_mprotect+0x1f/0x30\n do_syscall_64+0x82/0x870\n",
        );
        assert_eq!(
            identify(
                TitleRule::Stall {
                    kind: "BUG: soft lockup"
                },
                &l
            )
            .title,
            "BUG: soft lockup in sys_mprotect"
        );
    }
}
