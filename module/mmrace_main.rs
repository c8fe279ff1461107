// SPDX-License-Identifier: GPL-2.0

//! mmrace: counts Linux memory-management races from inside the kernel.
//!
//! The probes (kprobes, kretprobes, tracepoints) live in the C objects
//! `mmrace_probes.c` and `mmrace_oom.c` (OOM and reclaim), the meets
//! operations in `mmrace_meets.c`, and the injection points' kprobes in
//! `mmrace_inject.c`, because the Rust bindings do not reach them;
//! `mmrace_attach.c` attaches them all. This file owns the module's life
//! cycle and its state ([`State`]), from which it builds the debugfs tree
//! under `/sys/kernel/debug/mmrace/` (every file root-only); `inject.rs`
//! owns the injection points, `parse.rs` parses every write:
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
//! - `inject/`: race-window amplification (`inject.rs`): the global knobs
//!   `delay_us`, `every_nth` and `probability_pct` of the built-in point
//!   (a whole number each, `-EINVAL` for anything else or over the cap);
//!   `add`, `remove` and `clear` for points at any kernel function or
//!   operation (see [`write_inject_add`]); and `points` (see
//!   [`inject::PointLine`]).

use kernel::{
    debugfs::{
        Scope,
        ScopedDir, //
    },
    error::to_result,
    fmt,
    prelude::*,
    uaccess::UserSliceReader, //
};

mod inject;
mod parse;

use inject::{
    Inject,
    Knob, //
};
use parse::Place;

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
/// `mmrace_attach.h`, `mmrace_oom.h` and `mmrace_meets.h` (`inject.rs`
/// declares `mmrace_inject.h`'s).
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
    alias: u64,
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

/// Every probe of the C objects and the meets operations' probes
/// (registered at the first `meets_enable=1`, then armed and disarmed).
/// Dropping it unregisters them all; unregistering synchronises, so no
/// handler runs once `drop` returns. The injection points are [`Inject`]'s.
struct Probes;

impl Probes {
    fn register() -> Self {
        // SAFETY: called once, at module init, before any file exists. This
        // is the only registration call (`mmrace_attach.h`).
        unsafe { probes::mmrace_probes_register() };
        Probes
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        // SAFETY: `Probes` exists only after register(), and is dropped after
        // the debugfs tree and the state (no `meets_enable` write can race
        // with it). Waits for running handlers. The run-time set goes first.
        unsafe {
            probes::mmrace_meets_stop();
            probes::mmrace_probes_unregister();
        }
    }
}

/// The longest write `inject/add` and `inject/remove` take: a symbol of up
/// to `KSYM_NAME_LEN` (512) bytes, an offset and the knobs.
const INJECT_LINE_MAX: usize = 640;

/// Reads a short command written to a debugfs file into `buf`: at most `N`
/// bytes of UTF-8, else `-EINVAL`.
fn read_text<'a, const N: usize>(
    reader: &mut UserSliceReader,
    buf: &'a mut [u8; N],
) -> Result<&'a str> {
    let n = reader.len();
    if n > N {
        return Err(EINVAL);
    }
    reader.read_slice(&mut buf[..n])?;
    core::str::from_utf8(&buf[..n]).map_err(|_| EINVAL)
}

fn show_knob<const K: usize>(s: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", s.inject.knob(Knob::ALL[K]))
}

/// Sets a global knob from a whole number; `-EINVAL` for anything else or
/// a value over the knob's cap.
fn write_knob<const K: usize>(s: &State, reader: &mut UserSliceReader) -> Result {
    let knob = Knob::ALL[K];
    let mut buf = [0u8; 24];
    let value = parse::knob_value(knob, read_text(reader, &mut buf)?)?;
    s.inject.set_knob(knob, value);
    Ok(())
}

/// The `inject/` file of the global knob `Knob::ALL[K]`.
fn knob_file<'d, const K: usize>(dir: &ScopedDir<'d, '_>, s: &'d State) {
    dir.read_write_callback_file(Knob::ALL[K].name(), s, &show_knob::<K>, &write_knob::<K>);
}

/// `inject/add`: `SYMBOL[+OFFSET]` or `op=OP`, then `[delay_us=N]
/// [every_nth=N] [probability_pct=N]` (space-separated, knobs in any
/// order, each at most once, 0 when left out) adds an armed injection
/// point there with its own knobs; `op=OP` is the entry of an operation of
/// `mmrace_ops.h`. `-EINVAL` for malformed text, an unknown operation or a
/// knob over its cap, `-EEXIST` for a point already there, `-ENOSPC` when
/// all slots are taken, and `register_kprobe()`'s error for an address the
/// kernel will not probe: `-ENOENT` for an unknown symbol, `-EINVAL` for a
/// blacklisted one, `-EILSEQ` for an offset off an instruction boundary.
fn write_inject_add(s: &State, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; INJECT_LINE_MAX];
    let (at, knobs) = parse::add(read_text(reader, &mut buf)?)?;
    let (sym, offset) = s.resolve(at)?;
    s.inject.add(sym, offset, &knobs)
}

/// `inject/remove`: `SYMBOL[+OFFSET]` or `op=OP` removes that added point;
/// `-ENOENT` if there is none, `-EINVAL` for malformed text or an unknown
/// operation.
fn write_inject_remove(s: &State, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; INJECT_LINE_MAX];
    let (sym, offset) = s.resolve(parse::remove(read_text(reader, &mut buf)?)?)?;
    s.inject.remove(sym, offset)
}

/// `inject/clear`: write `1` to remove every added point (the built-in one
/// stays); anything else is `-EINVAL`.
fn write_inject_clear(s: &State, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    parse::one(read_text(reader, &mut buf)?)?;
    s.inject.clear()
}

/// `inject/points`: one line per injection point, the built-in point
/// (`__split_huge_pmd`, with the global knobs) first, then the added ones
/// (see [`inject::PointLine`]):
///
/// ```text
/// __split_huge_pmd armed 1234 1234 delay_us=1000 every_nth=1 probability_pct=0
/// zap_huge_pmd+0x10 armed 88 9 delay_us=50 every_nth=0 probability_pct=10
/// ```
fn show_inject_points(s: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    s.inject.write_points(f)
}

/// The module's state: the injection points, and the C objects' tables
/// behind the other files. Every debugfs file reads or writes it.
#[pin_data]
struct State {
    #[pin]
    inject: Inject,
}

impl State {
    fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(State {
            inject <- Inject::new(),
        }? Error)
    }

    /// The symbol and offset of a place: an operation's is its entry.
    fn resolve<'a>(&self, at: Place<'a>) -> Result<(&'a str, u32)> {
        match at {
            Place::Symbol(sym, offset) => Ok((sym, offset)),
            Place::Op(name) => self
                .ops()
                .find(|(_, op, _)| *op == name)
                .map(|(_, _, symbol)| (symbol, 0))
                .ok_or(EINVAL),
        }
    }

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
    fn ops(&self) -> impl Iterator<Item = (u32, &'static str, &'static str)> + '_ {
        (0..self.nr_ops()).map(|i| {
            // SAFETY: the C side returns a static string for any index.
            let symbol = unsafe { static_name(probes::mmrace_meets_op_symbol(i)) };
            (i, self.op_name(i), symbol)
        })
    }

    fn nr_ops(&self) -> u32 {
        // SAFETY: a constant of the C object.
        unsafe { probes::mmrace_meets_nr_ops() }
    }

    /// Operation `i`'s name (`?` out of range).
    fn op_name(&self, i: u32) -> &'static str {
        // SAFETY: the C side returns a static string for any index.
        unsafe { static_name(probes::mmrace_meets_op_name(i)) }
    }

    fn nr_kinds(&self) -> u32 {
        // SAFETY: a constant of the C object.
        unsafe { probes::mmrace_meets_nr_kinds() }
    }

    /// Memory kind `k`'s name (`?` out of range).
    fn kind_name(&self, k: u32) -> &'static str {
        // SAFETY: the C side returns a static string for any index.
        unsafe { static_name(probes::mmrace_meets_kind_name(k)) }
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

fn show_version(_: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{VERSION}")
}

fn show_counters(t: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (name, value) in t.counters() {
        writeln!(f, "{name} {value}")?;
    }
    Ok(())
}

fn show_help(t: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (name, help) in t.counter_helps() {
        writeln!(f, "{name}: {help}")?;
    }
    Ok(())
}

fn show_probes(t: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
/// # entering holding kind meets near alias
/// pmd_split migrate_unmap anon 12 40 3
/// ```
///
/// `meets` counts the entries of `entering` while another task's `holding`
/// was inside its operation on the same object, `near` those where
/// `holding` had left it within the near window, `alias` those where
/// `holding` was in flight on the same mm or file with no object in common
/// (`mmrace_meets.c`).
///
/// Most cells are zero: the walk reads counts by index and looks up the
/// names of the cells it prints only.
fn show_meets(t: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "# entering holding kind meets near alias")?;
    let (ops, kinds) = (t.nr_ops(), t.nr_kinds());
    for e in 0..ops {
        for h in 0..ops {
            for k in 0..kinds {
                let c = t.meet(e, h, k);
                if c != MeetCount::default() {
                    writeln!(
                        f,
                        "{} {} {} {} {} {}",
                        t.op_name(e),
                        t.op_name(h),
                        t.kind_name(k),
                        c.meets,
                        c.near,
                        c.alias
                    )?;
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
fn show_ops(t: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

fn show_meets_dropped(_: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // SAFETY: reads a counter.
    writeln!(f, "{}", unsafe { probes::mmrace_meets_dropped() })
}

fn show_meets_enable(_: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // SAFETY: reads a flag.
    writeln!(f, "{}", u8::from(unsafe { probes::mmrace_meets_enabled() }))
}

/// `meets_enable`: `1` arms the operations' probes (registering them the
/// first time), `0` disarms them: no trap is left in the probed functions,
/// so meets cost nothing while off; anything else is `-EINVAL`.
fn write_meets_enable(_: &State, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    let on = parse::flag(read_text(reader, &mut buf)?)?;
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
fn show_reclaim_latency(t: &State, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

/// `reset`: `1` zeroes every counter, histogram and meet; anything else is
/// `-EINVAL`.
fn write_reset(t: &State, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 8];
    parse::one(read_text(reader, &mut buf)?)?;
    t.reset();
    Ok(())
}

struct MmRace {
    // Drop order is declaration order: the debugfs tree goes first (no new
    // reader or writer can start), then the state (the injection points,
    // unregistered), then the probes (unregistered and synchronised before
    // the module's memory, counters included, goes away).
    _state: Pin<KBox<Scope<State>>>,
    _probes: Probes,
}

/// The files at the top of `mmrace/`.
fn top_files<'d>(dir: &ScopedDir<'d, '_>, s: &'d State) {
    dir.read_callback_file(c"version", s, &show_version);
    dir.read_callback_file(c"counters", s, &show_counters);
    dir.read_callback_file(c"help", s, &show_help);
    dir.read_callback_file(c"probes", s, &show_probes);
    dir.read_callback_file(c"reclaim_latency", s, &show_reclaim_latency);
    dir.write_only_callback_file(c"reset", s, &write_reset);
    dir.read_callback_file(c"meets", s, &show_meets);
    dir.read_callback_file(c"ops", s, &show_ops);
    dir.read_callback_file(c"meets_dropped", s, &show_meets_dropped);
    dir.read_write_callback_file(c"meets_enable", s, &show_meets_enable, &write_meets_enable);
}

/// `mmrace/inject/`.
fn inject_files<'d>(dir: &ScopedDir<'d, '_>, s: &'d State) {
    knob_file::<{ Knob::DelayUs as usize }>(dir, s);
    knob_file::<{ Knob::EveryNth as usize }>(dir, s);
    knob_file::<{ Knob::ProbabilityPct as usize }>(dir, s);
    dir.read_callback_file(c"points", s, &show_inject_points);
    dir.write_only_callback_file(c"add", s, &write_inject_add);
    dir.write_only_callback_file(c"remove", s, &write_inject_remove);
    dir.write_only_callback_file(c"clear", s, &write_inject_clear);
}

impl kernel::Module for MmRace {
    fn init(_module: &'static kernel::ThisModule) -> Result<Self> {
        let probes = Probes::register();
        let state = KBox::pin_init(
            Scope::dir(State::new(), c"mmrace", |s, dir| {
                top_files(dir, s);
                inject_files(&dir.dir(c"inject"), s);
            }),
            GFP_KERNEL,
        )?;
        for (name, status) in state.probe_states().filter(|(_, s)| *s != 0) {
            pr_warn!("probe {name} not attached ({status}): its counters stay at 0\n");
        }
        pr_info!("{VERSION} loaded\n");
        Ok(MmRace {
            _state: state,
            _probes: probes,
        })
    }
}
