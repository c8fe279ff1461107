// SPDX-License-Identifier: GPL-2.0

//! Race-window amplification: the injection points, a kprobe each whose
//! handler busy-waits `delay_us` on the calls `every_nth` or
//! `probability_pct` picks (`mmrace_inject.c`, the kprobes having no Rust
//! binding).
//!
//! [`Inject`], a part of the module's state, owns them: the table the C
//! handler reads ([`Slot`], `struct mmrace_inject_slot`), which slot holds
//! which point, the knobs and their caps. Slot 0 is the built-in point, the
//! entry of `__split_huge_pmd()`: the `split_huge_pmd()` macro looks at the
//! pmd without the page-table lock and calls it, and it takes the lock and
//! checks again, so a delay there widens the window of the race
//! `pmd_race` counts. It uses the global knobs (the files `delay_us`,
//! `every_nth` and `probability_pct`) and is registered disabled, enabled
//! only while its `delay_us` is above 0. The other slots hold the points
//! `inject/add` adds at any kernel function (or at the entry of an
//! operation of `mmrace_ops.h`), armed from their addition to their
//! removal, each with its own knobs.
//!
//! The lock serialises every change (add, remove, arming) and the
//! `inject/points` lines, so a line never shows a slot half filled; the
//! handlers read only their own slot, without it. A slot is reused only
//! after its kprobe was unregistered, which waits for running handlers.

use kernel::{
    error::to_result,
    ffi::{
        c_char,
        c_int,
        c_uint, //
    },
    fmt,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        new_mutex,
        Mutex, //
    },
};

/// Points `inject/add` can add, besides the built-in one.
const MAX_ADDED: usize = 64;

/// The built-in point.
const BUILTIN: &CStr = c"__split_huge_pmd";

/// `mmrace_inject.h`.
mod c {
    use super::*;

    extern "C" {
        pub(super) fn mmrace_inject_start(table: *mut Slot, n: c_uint, slot_size: usize) -> c_int;
        pub(super) fn mmrace_inject_stop();
        pub(super) fn mmrace_inject_attach(
            i: c_uint,
            sym: *const c_char,
            offset: u32,
            armed: bool,
        ) -> c_int;
        pub(super) fn mmrace_inject_arm(i: c_uint, armed: bool) -> c_int;
        pub(super) fn mmrace_inject_detach(slots: *const c_uint, n: c_uint);
    }
}

/// A knob of an injection point, its index in `enum mmrace_inject_knob`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Knob {
    DelayUs = 0,
    EveryNth = 1,
    ProbabilityPct = 2,
}

/// A point's knobs, indexed by [`Knob`].
pub(crate) type Knobs = [u32; Knob::ALL.len()];

impl Knob {
    pub(crate) const ALL: [Knob; 3] = [Knob::DelayUs, Knob::EveryNth, Knob::ProbabilityPct];

    /// The name of its file, and of its word in `inject/add`.
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            Knob::DelayUs => c"delay_us",
            Knob::EveryNth => c"every_nth",
            Knob::ProbabilityPct => c"probability_pct",
        }
    }

    /// Its cap: 1000 us (a kprobe handler busy-waits), every millionth
    /// call, 100 %.
    fn max(self) -> u64 {
        match self {
            Knob::DelayUs => 1000,
            Knob::EveryNth => 1_000_000,
            Knob::ProbabilityPct => 100,
        }
    }

    pub(crate) fn by_name(name: &str) -> Option<Knob> {
        Knob::ALL
            .into_iter()
            .find(|k| k.name().to_bytes() == name.as_bytes())
    }

    /// `value` if it is within the cap, else `-EINVAL`.
    pub(crate) fn check(self, value: u64) -> Result<u32> {
        if value > self.max() {
            return Err(EINVAL);
        }
        u32::try_from(value).map_err(|_| EINVAL)
    }
}

/// One point as the C handler reads it, `struct mmrace_inject_slot`: the
/// knobs (written under the lock, already capped) and its counts.
#[repr(C)]
struct Slot {
    knobs: [Atomic<u32>; Knob::ALL.len()],
    calls: Atomic<u64>,
    nth: Atomic<u64>,
    delays: Atomic<u64>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            knobs: core::array::from_fn(|_| Atomic::new(0)),
            calls: Atomic::new(0),
            nth: Atomic::new(0),
            delays: Atomic::new(0),
        }
    }

    fn knobs(&self) -> Knobs {
        Knob::ALL.map(|k| self.knobs[k as usize].load(Relaxed))
    }

    /// A fresh point's: its knobs, and counts from 0. Only while no
    /// handler runs on it.
    fn reset(&self, knobs: &Knobs) {
        for (k, v) in self.knobs.iter().zip(knobs) {
            k.store(*v, Relaxed);
        }
        for n in [&self.calls, &self.nth, &self.delays] {
            n.store(0, Relaxed);
        }
    }
}

/// What the lock keeps of a slot.
#[derive(Default)]
struct Entry {
    /// The symbol, NUL-terminated (the kprobe points at it); empty for a
    /// free slot.
    name: KVec<u8>,
    offset: u32,
    /// 0, or why the built-in point could not be attached.
    status: i32,
    armed: bool,
}

impl Entry {
    fn used(&self) -> bool {
        !self.name.is_empty() && self.status == 0
    }

    fn is_at(&self, sym: &str, offset: u32) -> bool {
        self.used() && self.offset == offset && self.symbol() == sym
    }

    fn symbol(&self) -> &str {
        let name = self.name.strip_suffix(&[0]).unwrap_or(&self.name);
        core::str::from_utf8(name).unwrap_or("?")
    }
}

/// The injection points (see the module documentation).
#[pin_data(PinnedDrop)]
pub(crate) struct Inject {
    /// Slot 0 is the built-in point. The C side keeps a pointer to it from
    /// start to stop; it is never resized.
    table: KVec<Slot>,
    /// One per slot of the table.
    #[pin]
    entries: Mutex<KVec<Entry>>,
}

/// The state of a point in its `inject/points` line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PointState {
    Armed,
    /// The built-in point while its `delay_us` is 0.
    Idle,
    /// The built-in point could not be attached: the errno.
    Failed(i32),
}

/// One `inject/points` line:
///
/// ```text
/// NAME STATE CALLS DELAYS delay_us=N every_nth=N probability_pct=N
/// ```
///
/// `NAME` is `SYMBOL` or `SYMBOL+0xOFFSET`, `STATE` `armed`, `idle` or
/// `failed ERRNO`.
pub(crate) struct PointLine<'a> {
    pub(crate) symbol: &'a str,
    pub(crate) offset: u32,
    pub(crate) state: PointState,
    pub(crate) calls: u64,
    pub(crate) delays: u64,
    pub(crate) knobs: Knobs,
}

impl PointLine<'_> {
    pub(crate) fn write_to(&self, w: &mut impl fmt::Write) -> fmt::Result {
        w.write_str(self.symbol)?;
        if self.offset != 0 {
            write!(w, "+{:#x}", self.offset)?;
        }
        match self.state {
            PointState::Armed => w.write_str(" armed")?,
            PointState::Idle => w.write_str(" idle")?,
            PointState::Failed(e) => write!(w, " failed {e}")?,
        }
        let [delay_us, every_nth, pct] = self.knobs;
        writeln!(
            w,
            " {} {} delay_us={delay_us} every_nth={every_nth} probability_pct={pct}",
            self.calls, self.delays
        )
    }
}

/// `n` values of `f`.
fn filled<T>(n: usize, f: impl Fn() -> T) -> Result<KVec<T>> {
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        v.push(f(), GFP_KERNEL)?;
    }
    Ok(v)
}

/// A NUL-terminated copy of `sym`.
fn c_name(sym: &[u8]) -> Result<KVec<u8>> {
    let mut name = KVec::with_capacity(sym.len() + 1, GFP_KERNEL)?;
    name.extend_from_slice(sym, GFP_KERNEL)?;
    name.push(0, GFP_KERNEL)?;
    Ok(name)
}

impl Inject {
    /// The table, handed to the C side, and the built-in point, attached
    /// disabled (a kernel without `__split_huge_pmd` leaves it failed).
    pub(crate) fn new() -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            table: filled(1 + MAX_ADDED, Slot::new)?,
            entries <- new_mutex!(filled(1 + MAX_ADDED, Entry::default)?),
        }? Error)
        .pin_chain(|this| this.start())
    }

    fn start(&self) -> Result {
        let n = self.table.len();
        // SAFETY: the table's buffer stays where it is (`table` is never
        // resized) until `drop` calls `mmrace_inject_stop()`; its atomics
        // are what the C side writes through the pointer.
        to_result(unsafe {
            c::mmrace_inject_start(
                self.table.as_ptr().cast_mut(),
                n as c_uint,
                core::mem::size_of::<Slot>(),
            )
        })?;
        let mut entries = self.entries.lock();
        let builtin = &mut entries[0];
        builtin.name = c_name(BUILTIN.to_bytes())?;
        // SAFETY: slot 0 is free; its name lives in `entries` until stop.
        builtin.status =
            unsafe { c::mmrace_inject_attach(0, builtin.name.as_ptr().cast(), 0, false) };
        Ok(())
    }

    /// The built-in point's knob.
    pub(crate) fn knob(&self, knob: Knob) -> u32 {
        self.table[0].knobs[knob as usize].load(Relaxed)
    }

    /// Sets a built-in knob (already checked against its cap); `delay_us`
    /// arms the built-in point while above 0.
    pub(crate) fn set_knob(&self, knob: Knob, value: u32) {
        let mut entries = self.entries.lock();
        self.table[0].knobs[knob as usize].store(value, Relaxed);
        let builtin = &mut entries[0];
        let arm = value != 0;
        if knob != Knob::DelayUs || !builtin.used() || builtin.armed == arm {
            return;
        }
        // SAFETY: slot 0 is attached (`used`), under the lock.
        if unsafe { c::mmrace_inject_arm(0, arm) } == 0 {
            builtin.armed = arm;
        }
    }

    /// Adds an armed point at `sym+offset` with its own knobs (checked
    /// against their caps): `-EEXIST` if one is there, `-ENOSPC` when every
    /// slot is taken, else the C side's `register_kprobe()` error.
    pub(crate) fn add(&self, sym: &str, offset: u32, knobs: &Knobs) -> Result {
        let name = c_name(sym.as_bytes())?;
        let mut entries = self.entries.lock();
        if entries[1..].iter().any(|e| e.is_at(sym, offset)) {
            return Err(EEXIST);
        }
        let i = 1 + entries[1..].iter().position(|e| !e.used()).ok_or(ENOSPC)?;
        // No handler runs on a free slot: its kprobe is unregistered.
        self.table[i].reset(knobs);
        let e = &mut entries[i];
        *e = Entry {
            name,
            offset,
            status: 0,
            armed: true,
        };
        // SAFETY: slot `i` is free and in range; its name lives in
        // `entries` until the slot is detached.
        let status =
            unsafe { c::mmrace_inject_attach(i as c_uint, e.name.as_ptr().cast(), offset, true) };
        if status != 0 {
            *e = Entry::default();
        }
        to_result(status)
    }

    /// Removes the added point at `sym+offset`: `-ENOENT` if there is none.
    pub(crate) fn remove(&self, sym: &str, offset: u32) -> Result {
        let mut entries = self.entries.lock();
        let i = 1 + entries[1..]
            .iter()
            .position(|e| e.is_at(sym, offset))
            .ok_or(ENOENT)?;
        Self::detach(&mut entries, &[i as c_uint]);
        Ok(())
    }

    /// Removes every added point (the built-in one stays).
    pub(crate) fn clear(&self) -> Result {
        let mut entries = self.entries.lock();
        let mut used = KVec::with_capacity(MAX_ADDED, GFP_KERNEL)?;
        for (i, e) in entries.iter().enumerate().skip(1) {
            if e.used() {
                used.push(i as c_uint, GFP_KERNEL)?;
            }
        }
        Self::detach(&mut entries, &used);
        Ok(())
    }

    /// Detaches attached slots with one RCU grace period, and frees them.
    fn detach(entries: &mut [Entry], slots: &[c_uint]) {
        // SAFETY: `slots` are attached slots' indices, under the lock; the
        // call waits for their running handlers.
        unsafe { c::mmrace_inject_detach(slots.as_ptr(), slots.len() as c_uint) };
        for &i in slots {
            entries[i as usize] = Entry::default();
        }
    }

    /// `inject/points`: the built-in point, then the added ones.
    pub(crate) fn write_points(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries.lock();
        for (i, (e, slot)) in entries.iter().zip(&self.table).enumerate() {
            if i != 0 && !e.used() {
                continue;
            }
            let state = match (e.status, e.armed) {
                (0, true) => PointState::Armed,
                (0, false) => PointState::Idle,
                (err, _) => PointState::Failed(err),
            };
            PointLine {
                symbol: e.symbol(),
                offset: e.offset,
                state,
                calls: slot.calls.load(Relaxed),
                delays: slot.delays.load(Relaxed),
                knobs: slot.knobs(),
            }
            .write_to(f)?;
        }
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Inject {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: the last use of the table by the C side: it unregisters
        // every point still attached, waiting for their handlers.
        unsafe { c::mmrace_inject_stop() };
    }
}

#[kunit_tests(mmrace_inject)]
mod tests {
    use super::*;

    /// A line's text.
    struct Buf {
        b: [u8; 160],
        n: usize,
    }

    impl fmt::Write for Buf {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.n + s.len();
            self.b
                .get_mut(self.n..end)
                .ok_or(fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.n = end;
            Ok(())
        }
    }

    /// The line's text, or `?` if it did not fit.
    fn line(l: &PointLine<'_>) -> Buf {
        let mut buf = Buf { b: [0; 160], n: 0 };
        if l.write_to(&mut buf).is_err() {
            buf.n = 0;
        }
        buf
    }

    fn text(buf: &Buf) -> &str {
        core::str::from_utf8(&buf.b[..buf.n]).unwrap_or("?")
    }

    #[test]
    fn point_lines() {
        let mut l = PointLine {
            symbol: "__split_huge_pmd",
            offset: 0,
            state: PointState::Armed,
            calls: 1234,
            delays: 1234,
            knobs: [1000, 1, 0],
        };
        let b = line(&l);
        assert_eq!(
            text(&b),
            "__split_huge_pmd armed 1234 1234 delay_us=1000 every_nth=1 probability_pct=0\n"
        );
        l.state = PointState::Idle;
        l.knobs = [0, 0, 0];
        let b = line(&l);
        assert_eq!(
            text(&b),
            "__split_huge_pmd idle 1234 1234 delay_us=0 every_nth=0 probability_pct=0\n"
        );
        l.state = PointState::Failed(-2);
        let b = line(&l);
        assert_eq!(
            text(&b),
            "__split_huge_pmd failed -2 1234 1234 delay_us=0 every_nth=0 probability_pct=0\n"
        );
        l = PointLine {
            symbol: "zap_huge_pmd",
            offset: 16,
            state: PointState::Armed,
            calls: 88,
            delays: 9,
            knobs: [50, 0, 10],
        };
        let b = line(&l);
        assert_eq!(
            text(&b),
            "zap_huge_pmd+0x10 armed 88 9 delay_us=50 every_nth=0 probability_pct=10\n"
        );
    }

    #[test]
    fn knobs_by_name_with_caps() {
        for k in Knob::ALL {
            let name = k.name().to_str().unwrap_or("?");
            assert!(Knob::by_name(name) == Some(k));
            assert!(k.check(k.max()) == u32::try_from(k.max()).map_err(|_| EINVAL));
            assert!(k.check(k.max() + 1) == Err(EINVAL));
        }
        assert!(Knob::by_name("speed").is_none());
        assert!(Knob::by_name("delay").is_none());
    }

    #[test]
    fn entries_match_symbol_and_offset() -> Result {
        let e = Entry {
            name: c_name(b"zap_huge_pmd")?,
            offset: 16,
            status: 0,
            armed: true,
        };
        assert!(e.used());
        assert_eq!(e.symbol(), "zap_huge_pmd");
        assert!(e.is_at("zap_huge_pmd", 16));
        assert!(!e.is_at("zap_huge_pmd", 0));
        assert!(!e.is_at("zap_huge_pm", 16));
        assert!(!Entry::default().used());
        Ok(())
    }
}
