// SPDX-License-Identifier: GPL-2.0

//! mmrace: counts Linux memory-management races from inside the kernel.
//!
//! The probes (kprobes, kretprobes, tracepoints) live in the C objects
//! `mmrace_probes.c` and `mmrace_oom.c` (OOM and reclaim), and the
//! injection points in `mmrace_inject.c`, because the Rust bindings do not
//! reach them; `mmrace_attach.c` attaches them all. This file owns the
//! module's life cycle and its debugfs interface under
//! `/sys/kernel/debug/mmrace/` (every file root-only):
//!
//! - `version`: the module and interface version;
//! - `counters`: one `name value` line per counter (`mmrace_counters.h`);
//! - `help`: one `name: what it counts` line per counter;
//! - `probes`: one `name attached` or `name failed <errno>` line per probe;
//! - `reclaim_latency`: time spent in direct reclaim (`try_to_free_pages()`,
//!   throttling included) by task class, as log2 histograms (see
//!   [`show_reclaim_latency`]);
//! - `reset`: write `1` to zero every counter, histogram and meet; anything
//!   else is `-EINVAL`;
//! - `meets`: which mm operations met on the same object, and on which
//!   memory kind (`mmrace_meets.c`; see [`show_meets`]);
//! - `ops`: one line per operation of `mmrace_ops.h`: its probe and how
//!   often it ran (see [`show_ops`]);
//! - `meets_enable`: `1` while the operations' probes are armed, `0` (the
//!   state at load) while they are not; write `0` or `1` to disarm or arm
//!   them (the first `1` registers them), anything else is `-EINVAL`;
//! - `meets_dropped`: operations not tracked because every in-flight slot
//!   was taken;
//! - `inject/`: race-window amplification (`mmrace_inject.c`): the global
//!   knobs `delay_us`, `every_nth` and `probability_pct` of the built-in
//!   point (a whole number each, `-EINVAL` for anything else or over the
//!   cap); `add`, `remove` and `clear` for points at any kernel function
//!   (see [`write_inject_add`]); and `points` (see [`show_inject_points`]).

use kernel::{
    debugfs::{
        Dir,
        File, //
    },
    error::to_result,
    fmt,
    prelude::*,
    uaccess::UserSliceReader, //
};

module! {
    type: MmRace,
    name: "mmrace",
    authors: ["The mmrace developers"],
    description: "Counts memory-management races: pmd splits, THP splits, migration",
    license: "GPL",
}

/// The module version and the version of the debugfs file formats.
const VERSION: &str = "mmrace 0.1.0 debugfs 3";

/// The C objects' interface, declared in `mmrace_probes.h`,
/// `mmrace_attach.h`, `mmrace_oom.h` and `mmrace_inject.h`.
mod probes {
    use kernel::ffi::{
        c_char,
        c_int,
        c_uint, //
    };

    extern "C" {
        pub(super) fn mmrace_nr_counters() -> c_uint;
        pub(super) fn mmrace_counter_name(i: c_uint) -> *const c_char;
        pub(super) fn mmrace_counter_help(i: c_uint) -> *const c_char;
        pub(super) fn mmrace_counter_read(i: c_uint) -> u64;
        pub(super) fn mmrace_counters_reset();
        pub(super) fn mmrace_probes_register();
        pub(super) fn mmrace_probes_unregister();
        pub(super) fn mmrace_nr_probes() -> c_uint;
        pub(super) fn mmrace_probe_name(i: c_uint) -> *const c_char;
        pub(super) fn mmrace_probe_status(i: c_uint) -> c_int;
        pub(super) fn mmrace_reclaim_nr_classes() -> c_uint;
        pub(super) fn mmrace_reclaim_class_name(class: c_uint) -> *const c_char;
        pub(super) fn mmrace_reclaim_nr_buckets() -> c_uint;
        pub(super) fn mmrace_reclaim_calls(class: c_uint) -> u64;
        pub(super) fn mmrace_reclaim_sum_us(class: c_uint) -> u64;
        pub(super) fn mmrace_reclaim_max_us(class: c_uint) -> u64;
        pub(super) fn mmrace_reclaim_bucket(class: c_uint, bucket: c_uint) -> u64;
        pub(super) fn mmrace_reclaim_missed() -> u64;
        pub(super) fn mmrace_reclaim_reset();
        pub(super) fn mmrace_inject_nr_knobs() -> c_uint;
        pub(super) fn mmrace_inject_knob_name(knob: c_uint) -> *const c_char;
        pub(super) fn mmrace_inject_get(knob: c_uint) -> u64;
        pub(super) fn mmrace_inject_set(knob: c_uint, value: u64) -> c_int;
        pub(super) fn mmrace_inject_add(
            sym: *const c_char,
            offset: u32,
            values: *const u32,
        ) -> c_int;
        pub(super) fn mmrace_inject_remove(sym: *const c_char, offset: u32) -> c_int;
        pub(super) fn mmrace_inject_clear();
        pub(super) fn mmrace_inject_nr_slots() -> c_uint;
        pub(super) fn mmrace_inject_point_line(i: c_uint, buf: *mut c_char, size: usize) -> c_int;
        pub(super) fn mmrace_inject_start();
        pub(super) fn mmrace_inject_stop();
        pub(super) fn mmrace_meets_stop();
        pub(super) fn mmrace_meets_nr_ops() -> c_uint;
        pub(super) fn mmrace_meets_op_name(op: c_uint) -> *const c_char;
        pub(super) fn mmrace_meets_op_symbol(op: c_uint) -> *const c_char;
        pub(super) fn mmrace_meets_op_status(op: c_uint) -> c_int;
        pub(super) fn mmrace_meets_op_calls(op: c_uint) -> u64;
        pub(super) fn mmrace_meets_nr_kinds() -> c_uint;
        pub(super) fn mmrace_meets_kind_name(kind: c_uint) -> *const c_char;
        pub(super) fn mmrace_meets_cell(
            entering: c_uint,
            holding: c_uint,
            kind: c_uint,
            out: *mut super::MeetCount,
        );
        pub(super) fn mmrace_meets_reset();
        pub(super) fn mmrace_meets_enabled() -> bool;
        pub(super) fn mmrace_meets_set_enabled(on: bool) -> c_int;
        pub(super) fn mmrace_meets_dropped() -> u64;
    }
}

/// One cell of the meets matrix, as `struct mmrace_meet_count` in
/// `mmrace_meets.h`.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct MeetCount {
    meets: u64,
    near: u64,
}

/// Turns a name from the C object's static tables into a `&str`.
///
/// # Safety
///
/// `p` must point to a NUL-terminated string that lives as long as the module.
unsafe fn static_name(p: *const kernel::ffi::c_char) -> &'static str {
    // SAFETY: the caller guarantees a NUL-terminated, module-lifetime string.
    let name = unsafe { CStr::from_char_ptr(p) };
    name.to_str().unwrap_or("?")
}

/// Every probe of the C objects, the built-in injection point (registered
/// disabled: it fires only while `inject/delay_us` is above 0) and the
/// meets operations' probes (registered at the first `meets_enable=1`).
/// Dropping it unregisters them all, the points
/// added through `inject/add` too; unregistering synchronises, so no
/// handler runs once `drop` returns.
struct Probes;

impl Probes {
    fn register() -> Self {
        // SAFETY: called once, at module init, before any file exists. This
        // is the only registration call (`mmrace_attach.h`); the run-time
        // sets start after the tables they build on.
        unsafe {
            probes::mmrace_probes_register();
            probes::mmrace_inject_start();
        }
        Probes
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        // SAFETY: `Probes` exists only after register(), and is dropped after
        // the debugfs files (no `inject/add` can race with it). Waits for
        // running handlers. The run-time sets go first, in reverse.
        unsafe {
            probes::mmrace_meets_stop();
            probes::mmrace_inject_stop();
            probes::mmrace_probes_unregister();
        }
    }
}

/// One `inject/` knob file: the knob's index in `mmrace_inject.h`.
struct Knob(u32);

fn show_knob(k: &Knob, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // SAFETY: reads a knob; out-of-range indices read 0.
    writeln!(f, "{}", unsafe { probes::mmrace_inject_get(k.0) })
}

/// Sets a knob from a whole number; `-EINVAL` for anything else, and (from
/// the C side) for a value over the knob's cap.
fn write_knob(k: &Knob, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 24];
    let n = read_command(reader, &mut buf)?;
    let value = core::str::from_utf8(&buf[..n])
        .map_err(|_| EINVAL)?
        .trim()
        .parse::<u64>()
        .map_err(|_| EINVAL)?;
    // SAFETY: the C side checks the index and the value.
    to_result(unsafe { probes::mmrace_inject_set(k.0, value) })
}

/// The longest line `inject/add` takes, and the longest `inject/points`
/// line: a symbol of up to `KSYM_NAME_LEN` (512) bytes, an offset and the
/// knobs.
const INJECT_LINE_MAX: usize = 640;

/// `SYMBOL[+OFFSET]` as `mmrace_inject_add()` takes it: the symbol,
/// NUL-terminated, and the offset (decimal, or hexadecimal after `0x`).
/// `-EINVAL` for an empty symbol, a character no kernel symbol has, or a
/// bad offset; the C side checks the length.
fn parse_target(word: &str) -> Result<(KVec<u8>, u32)> {
    let (sym, offset) = match word.split_once('+') {
        None => (word, 0),
        Some((sym, off)) => {
            if !off.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(EINVAL);
            }
            let offset = match off.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => off.parse(),
            };
            (sym, offset.map_err(|_| EINVAL)?)
        }
    };
    if sym.is_empty()
        || !sym
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(EINVAL);
    }
    let mut name = KVec::with_capacity(sym.len() + 1, GFP_KERNEL)?;
    name.extend_from_slice(sym.as_bytes(), GFP_KERNEL)?;
    name.push(0, GFP_KERNEL)?;
    Ok((name, offset))
}

/// Reads a line written to `inject/add` or `inject/remove` and hands `f`
/// its first word as [`parse_target`] parses it, and the other words.
fn with_target_line(
    reader: &mut UserSliceReader,
    f: impl FnOnce(KVec<u8>, u32, core::str::SplitAsciiWhitespace<'_>) -> Result,
) -> Result {
    let mut buf = [0u8; INJECT_LINE_MAX];
    let n = read_command(reader, &mut buf)?;
    let text = core::str::from_utf8(&buf[..n]).map_err(|_| EINVAL)?;
    let mut words = text.split_ascii_whitespace();
    let (sym, offset) = parse_target(words.next().ok_or(EINVAL)?)?;
    f(sym, offset, words)
}

/// `inject/add`: `SYMBOL[+OFFSET] [delay_us=N] [every_nth=N]
/// [probability_pct=N]` (space-separated, knobs in any order, each at most
/// once, 0 when left out) adds an armed injection point there with its own
/// knobs. `-EINVAL` for malformed text or a knob over its cap, `-EEXIST`
/// for a point already there, `-ENOSPC` when all slots are taken, and
/// `register_kprobe()`'s error for an address the kernel will not probe:
/// `-ENOENT` for an unknown symbol, `-EINVAL` for a blacklisted one,
/// `-EILSEQ` for an offset off an instruction boundary.
fn write_inject_add(_: &Tables, reader: &mut UserSliceReader) -> Result {
    with_target_line(reader, |sym, offset, words| {
        // SAFETY: a constant of the C object.
        let nr = unsafe { probes::mmrace_inject_nr_knobs() };
        let mut values = KVec::from_elem(0u32, nr as usize, GFP_KERNEL)?;
        let mut seen = 0u32;
        for word in words {
            let (key, value) = word.split_once('=').ok_or(EINVAL)?;
            // SAFETY: the knob names are static strings.
            let k = (0..nr)
                .find(|&k| unsafe { static_name(probes::mmrace_inject_knob_name(k)) } == key)
                .ok_or(EINVAL)?;
            if seen & (1 << k) != 0 {
                return Err(EINVAL);
            }
            seen |= 1 << k;
            values[k as usize] = value.parse().map_err(|_| EINVAL)?;
        }
        // SAFETY: `sym` is NUL-terminated and `values` holds one value per
        // knob; the C side checks the caps.
        to_result(unsafe {
            probes::mmrace_inject_add(sym.as_ptr().cast(), offset, values.as_ptr())
        })
    })
}

/// `inject/remove`: `SYMBOL[+OFFSET]` removes that added point; `-ENOENT`
/// if there is none, `-EINVAL` for malformed text.
fn write_inject_remove(_: &Tables, reader: &mut UserSliceReader) -> Result {
    with_target_line(reader, |sym, offset, mut words| {
        if words.next().is_some() {
            return Err(EINVAL);
        }
        // SAFETY: `sym` is NUL-terminated.
        to_result(unsafe { probes::mmrace_inject_remove(sym.as_ptr().cast(), offset) })
    })
}

/// `inject/clear`: write `1` to remove every added point (the built-in one
/// stays); anything else is `-EINVAL`.
fn write_inject_clear(_: &Tables, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    let n = read_command(reader, &mut buf)?;
    match core::str::from_utf8(&buf[..n]).map(str::trim) {
        Ok("1") => {
            // SAFETY: takes the C side's lock; may sleep, as a write may.
            unsafe { probes::mmrace_inject_clear() };
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// `inject/points`: one line per injection point, the built-in point
/// (`__split_huge_pmd`, with the global knobs) first, then the added ones:
///
/// ```text
/// NAME STATE CALLS DELAYS delay_us=N every_nth=N probability_pct=N
/// __split_huge_pmd armed 1234 1234 delay_us=1000 every_nth=1 probability_pct=0
/// zap_huge_pmd+0x10 armed 88 9 delay_us=50 every_nth=0 probability_pct=10
/// ```
///
/// `NAME` is `SYMBOL` or `SYMBOL+0xOFFSET`. `STATE` is `armed` (firing),
/// `idle` (the built-in point while `delay_us` is 0) or `failed <errno>`
/// (the built-in point is not attached on this kernel). `CALLS` counts the
/// calls seen while armed, `DELAYS` those that were delayed
/// (`mmrace_inject_point_line()` formats the line).
fn show_inject_points(_: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut buf = [0u8; INJECT_LINE_MAX];
    // SAFETY: a constant of the C object.
    for i in 0..unsafe { probes::mmrace_inject_nr_slots() } {
        // SAFETY: the C side writes at most `buf.len()` bytes and checks `i`.
        let n = unsafe { probes::mmrace_inject_point_line(i, buf.as_mut_ptr().cast(), buf.len()) };
        let n = usize::try_from(n).unwrap_or(0).min(buf.len());
        f.write_str(core::str::from_utf8(&buf[..n]).unwrap_or("?\n"))?;
    }
    Ok(())
}

/// What a debugfs file reads: the C object's static tables. A zero-sized
/// handle, because the state itself lives in the C object for the whole
/// life of the module.
struct Tables;

impl Tables {
    fn counters(&self) -> impl Iterator<Item = (&'static str, u64)> {
        // SAFETY: the counter tables are static and indices are in range.
        (0..unsafe { probes::mmrace_nr_counters() }).map(|i| unsafe {
            (
                static_name(probes::mmrace_counter_name(i)),
                probes::mmrace_counter_read(i),
            )
        })
    }

    fn counter_helps(&self) -> impl Iterator<Item = (&'static str, &'static str)> {
        // SAFETY: the counter tables are static and indices are in range.
        (0..unsafe { probes::mmrace_nr_counters() }).map(|i| unsafe {
            (
                static_name(probes::mmrace_counter_name(i)),
                static_name(probes::mmrace_counter_help(i)),
            )
        })
    }

    /// Every C object's counter probes, in the tables' order
    /// (`mmrace_attach.c`).
    fn probe_states(&self) -> impl Iterator<Item = (&'static str, i32)> {
        // SAFETY: the probe tables are static and indices are in range.
        (0..unsafe { probes::mmrace_nr_probes() }).map(|i| unsafe {
            (
                static_name(probes::mmrace_probe_name(i)),
                probes::mmrace_probe_status(i),
            )
        })
    }

    fn reclaim_buckets(&self) -> u32 {
        // SAFETY: a constant of the C object.
        unsafe { probes::mmrace_reclaim_nr_buckets() }
    }

    /// One histogram per task class.
    fn reclaim_rows(&self) -> impl Iterator<Item = ReclaimRow> {
        // SAFETY: a constant of the C object.
        (0..unsafe { probes::mmrace_reclaim_nr_classes() }).map(ReclaimRow)
    }

    fn reclaim_missed(&self) -> u64 {
        // SAFETY: reads counters.
        unsafe { probes::mmrace_reclaim_missed() }
    }

    fn reset(&self) {
        // SAFETY: resetting atomics is always allowed.
        unsafe {
            probes::mmrace_counters_reset();
            probes::mmrace_reclaim_reset();
            probes::mmrace_meets_reset();
        }
    }

    /// The operations of `mmrace_ops.h`, in its order: index, name, symbol.
    fn ops(&self) -> impl Iterator<Item = (u32, &'static str, &'static str)> {
        // SAFETY: the op tables are static and indices are in range.
        (0..unsafe { probes::mmrace_meets_nr_ops() }).map(|i| unsafe {
            (
                i,
                static_name(probes::mmrace_meets_op_name(i)),
                static_name(probes::mmrace_meets_op_symbol(i)),
            )
        })
    }

    /// The memory kinds of `mmrace_ops.h`, in its order.
    fn kinds(&self) -> impl Iterator<Item = (u32, &'static str)> {
        // SAFETY: the kind table is static and indices are in range.
        (0..unsafe { probes::mmrace_meets_nr_kinds() })
            .map(|i| (i, unsafe { static_name(probes::mmrace_meets_kind_name(i)) }))
    }

    fn meet(&self, entering: u32, holding: u32, kind: u32) -> MeetCount {
        let mut c = MeetCount::default();
        // SAFETY: the C side checks the indices and writes one struct.
        unsafe { probes::mmrace_meets_cell(entering, holding, kind, &mut c) };
        c
    }
}

/// One task class's direct-reclaim histogram in the C object. Out-of-range
/// indices read as `?` and 0.
struct ReclaimRow(u32);

impl ReclaimRow {
    fn name(&self) -> &'static str {
        // SAFETY: the class names are static strings.
        unsafe { static_name(probes::mmrace_reclaim_class_name(self.0)) }
    }

    /// Calls, total and longest time in microseconds.
    fn totals(&self) -> [u64; 3] {
        // SAFETY: reads atomics.
        unsafe {
            [
                probes::mmrace_reclaim_calls(self.0),
                probes::mmrace_reclaim_sum_us(self.0),
                probes::mmrace_reclaim_max_us(self.0),
            ]
        }
    }

    fn buckets(&self, n: u32) -> impl Iterator<Item = u64> + '_ {
        // SAFETY: reads atomics.
        (0..n).map(|b| unsafe { probes::mmrace_reclaim_bucket(self.0, b) })
    }
}

fn show_version(_: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{VERSION}")
}

fn show_counters(t: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (name, value) in t.counters() {
        writeln!(f, "{name} {value}")?;
    }
    Ok(())
}

fn show_help(t: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (name, help) in t.counter_helps() {
        writeln!(f, "{name}: {help}")?;
    }
    Ok(())
}

fn show_probes(t: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (name, status) in t.probe_states() {
        if status == 0 {
            writeln!(f, "{name} attached")?;
        } else {
            writeln!(f, "{name} failed {status}")?;
        }
    }
    Ok(())
}

/// `meets`: one line per (entering, holding, kind) cell with a nonzero
/// count, after one comment line (the format of
/// `userspace/proto/src/meets.rs`):
///
/// ```text
/// # entering holding kind meets near
/// pmd_split migrate_unmap anon 12 40
/// ```
///
/// `meets` counts the entries of `entering` while another task's `holding`
/// was inside its operation on the same object, `near` those where
/// `holding` had left it within the near window (`mmrace_meets.c`).
fn show_meets(t: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "# entering holding kind meets near")?;
    for (e, entering, _) in t.ops() {
        for (h, holding, _) in t.ops() {
            for (k, kind) in t.kinds() {
                let c = t.meet(e, h, k);
                if c != MeetCount::default() {
                    writeln!(f, "{entering} {holding} {kind} {} {}", c.meets, c.near)?;
                }
            }
        }
    }
    Ok(())
}

/// `ops`: one line per operation, after one comment line:
///
/// ```text
/// # name symbol state calls
/// pmd_split __split_huge_pmd attached 1234
/// uffd_move move_pages_huge_pmd failed -2 0
/// ```
///
/// `state` is `attached` (armed), `failed <errno>` (its probe did not
/// register or arm on this kernel) or `off` (`meets_enable` is 0); `calls` counts the entries
/// tracked since the last reset.
fn show_ops(t: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "# name symbol state calls")?;
    for (i, name, symbol) in t.ops() {
        // SAFETY: reads a status and a counter; the index is in range.
        let (status, calls) = unsafe {
            (
                probes::mmrace_meets_op_status(i),
                probes::mmrace_meets_op_calls(i),
            )
        };
        match status {
            0 => writeln!(f, "{name} {symbol} attached {calls}")?,
            1 => writeln!(f, "{name} {symbol} off {calls}")?,
            e => writeln!(f, "{name} {symbol} failed {e} {calls}")?,
        }
    }
    Ok(())
}

fn show_meets_dropped(_: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // SAFETY: reads a counter.
    writeln!(f, "{}", unsafe { probes::mmrace_meets_dropped() })
}

fn show_meets_enable(_: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // SAFETY: reads a flag.
    writeln!(f, "{}", u8::from(unsafe { probes::mmrace_meets_enabled() }))
}

/// `meets_enable`: `1` arms the operations' probes (registering them the
/// first time), `0` disarms them: no trap is left in the probed functions,
/// so meets cost nothing while off; anything else is `-EINVAL`.
fn write_meets_enable(_: &Tables, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    let n = read_command(reader, &mut buf)?;
    let on = match core::str::from_utf8(&buf[..n]).map(str::trim) {
        Ok("1") => true,
        Ok("0") => false,
        _ => return Err(EINVAL),
    };
    // SAFETY: takes the C side's mutex; may sleep, as a write may.
    to_result(unsafe { probes::mmrace_meets_set_enabled(on) })
}

/// `reclaim_latency`: time tasks spent in direct reclaim, from entry to
/// return of `try_to_free_pages()` (so throttling in
/// `throttle_direct_reclaim()` counts), by the class of the task at entry:
/// `kthread` (`PF_KTHREAD`: kswapd never enters here, writeback and other
/// kworkers do), `dying` (fatal signal pending or OOM victim) and `ordinary`.
///
/// ```text
/// class calls sum_us max_us b0 b1 ... b25
/// kthread 12 3456 789 0 0 ...
/// dying ...
/// ordinary ...
/// missed 0
/// ```
///
/// `bN` counts the calls that took `2^(N-1) <= us < 2^N` microseconds; `b0`
/// those under 1 us, and the last bucket everything from `2^24` us (16.8 s)
/// up. `missed` counts the calls that could not be timed (no free kretprobe
/// instance); they are in no row.
fn show_reclaim_latency(t: &Tables, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let n = t.reclaim_buckets();
    write!(f, "class calls sum_us max_us")?;
    for b in 0..n {
        write!(f, " b{b}")?;
    }
    writeln!(f)?;
    for row in t.reclaim_rows() {
        let [calls, sum, max] = row.totals();
        write!(f, "{} {calls} {sum} {max}", row.name())?;
        for count in row.buckets(n) {
            write!(f, " {count}")?;
        }
        writeln!(f)?;
    }
    writeln!(f, "missed {}", t.reclaim_missed())
}

/// Reads a short command written to a debugfs file into `out`: at most `N`
/// bytes, else `-EINVAL`. Returns the length read.
fn read_command<const N: usize>(reader: &mut UserSliceReader, out: &mut [u8; N]) -> Result<usize> {
    let n = reader.len();
    if n > N {
        return Err(EINVAL);
    }
    reader.read_slice(&mut out[..n])?;
    Ok(n)
}

fn write_reset(t: &Tables, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    let n = read_command(reader, &mut buf)?;
    match core::str::from_utf8(&buf[..n]).map(str::trim) {
        Ok("1") => {
            t.reset();
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

struct MmRace {
    // Drop order is declaration order: the files go first (no new reader or
    // writer can start), then the directories, then the probes and injection
    // points (unregistered and synchronised before the module's memory,
    // counters included, goes away).
    _knobs: KVec<Pin<KBox<File<Knob>>>>,
    _files: KVec<Pin<KBox<File<Tables>>>>,
    _inject_dir: Dir,
    _dir: Dir,
    _probes: Probes,
}

/// Creates a debugfs file and keeps it in `files` (it is removed when the
/// vector is dropped).
fn add_file<T, E>(files: &mut KVec<Pin<KBox<File<T>>>>, file: impl PinInit<File<T>, E>) -> Result
where
    Error: From<E>,
{
    files.push(KBox::pin_init(file, GFP_KERNEL)?, GFP_KERNEL)?;
    Ok(())
}

impl kernel::Module for MmRace {
    fn init(_module: &'static kernel::ThisModule) -> Result<Self> {
        let probes = Probes::register();
        let dir = Dir::new(c"mmrace");
        let mut files = KVec::new();
        add_file(
            &mut files,
            dir.read_callback_file(c"version", Tables, &show_version),
        )?;
        add_file(
            &mut files,
            dir.read_callback_file(c"counters", Tables, &show_counters),
        )?;
        add_file(
            &mut files,
            dir.read_callback_file(c"help", Tables, &show_help),
        )?;
        add_file(
            &mut files,
            dir.read_callback_file(c"probes", Tables, &show_probes),
        )?;
        add_file(
            &mut files,
            dir.read_callback_file(c"reclaim_latency", Tables, &show_reclaim_latency),
        )?;
        add_file(
            &mut files,
            dir.write_callback_file(c"reset", Tables, &write_reset),
        )?;
        add_file(
            &mut files,
            dir.read_callback_file(c"meets", Tables, &show_meets),
        )?;
        add_file(
            &mut files,
            dir.read_callback_file(c"ops", Tables, &show_ops),
        )?;
        add_file(
            &mut files,
            dir.read_callback_file(c"meets_dropped", Tables, &show_meets_dropped),
        )?;
        add_file(
            &mut files,
            dir.read_write_callback_file(
                c"meets_enable",
                Tables,
                &show_meets_enable,
                &write_meets_enable,
            ),
        )?;
        let inject_dir = dir.subdir(c"inject");
        let mut knobs = KVec::new();
        // SAFETY: a constant of the C object.
        for k in 0..unsafe { probes::mmrace_inject_nr_knobs() } {
            // SAFETY: the knob names are static strings.
            let name = unsafe { CStr::from_char_ptr(probes::mmrace_inject_knob_name(k)) };
            add_file(
                &mut knobs,
                inject_dir.read_write_callback_file(name, Knob(k), &show_knob, &write_knob),
            )?;
        }
        add_file(
            &mut files,
            inject_dir.read_callback_file(c"points", Tables, &show_inject_points),
        )?;
        add_file(
            &mut files,
            inject_dir.write_callback_file(c"add", Tables, &write_inject_add),
        )?;
        add_file(
            &mut files,
            inject_dir.write_callback_file(c"remove", Tables, &write_inject_remove),
        )?;
        add_file(
            &mut files,
            inject_dir.write_callback_file(c"clear", Tables, &write_inject_clear),
        )?;
        for (name, status) in Tables.probe_states().filter(|(_, s)| *s != 0) {
            pr_warn!("probe {name} not attached ({status}): its counters stay at 0\n");
        }
        pr_info!("{VERSION} loaded\n");
        Ok(MmRace {
            _knobs: knobs,
            _files: files,
            _inject_dir: inject_dir,
            _dir: dir,
            _probes: probes,
        })
    }
}
