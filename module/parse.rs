// SPDX-License-Identifier: GPL-2.0

//! The debugfs write parsers: each file that takes a write turns its text
//! into a value here, and anything it does not take into `-EINVAL`. They
//! are pure functions of the text, so the KUnit suite `mmrace_parse` at the
//! end (run when the module loads) tests each one.

use crate::inject::{
    Knob,
    Knobs, //
};
use core::str::SplitAsciiWhitespace;
use kernel::prelude::*;

/// The longest symbol kprobes take, NUL included (`KSYM_NAME_LEN`).
const KSYM_NAME_LEN: usize = kernel::bindings::KSYM_NAME_LEN as usize;

/// `1`, the one command of `reset` and `inject/clear`.
pub(crate) fn one(text: &str) -> Result {
    match text.trim() {
        "1" => Ok(()),
        _ => Err(EINVAL),
    }
}

/// `0` or `1`: `meets_enable`.
pub(crate) fn flag(text: &str) -> Result<bool> {
    match text.trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(EINVAL),
    }
}

/// A whole number within `knob`'s cap: an `inject/` knob file.
pub(crate) fn knob_value(knob: Knob, text: &str) -> Result<u32> {
    knob.check(text.trim().parse().map_err(|_| EINVAL)?)
}

/// Where an injection point goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place<'a> {
    /// `SYMBOL[+OFFSET]`: an address in a kernel function.
    Symbol(&'a str, u32),
    /// `op=NAME`: the entry of an operation of `mmrace_ops.h`.
    Op(&'a str),
}

/// The characters kallsyms names are made of (`foo.constprop.0`).
fn is_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// An offset: decimal, or hexadecimal after `0x`.
fn offset(text: &str) -> Result<u32> {
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(EINVAL);
    }
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|_| EINVAL)
}

/// `SYMBOL[+OFFSET]` or `op=NAME`, the first word of `inject/add` and
/// `inject/remove`.
pub(crate) fn place(word: &str) -> Result<Place<'_>> {
    if let Some(op) = word.strip_prefix("op=") {
        if op.is_empty() || !op.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(EINVAL);
        }
        return Ok(Place::Op(op));
    }
    let (sym, off) = match word.split_once('+') {
        None => (word, 0),
        Some((sym, off)) => (sym, offset(off)?),
    };
    if !is_symbol(sym) {
        return Err(EINVAL);
    }
    Ok(Place::Symbol(sym, off))
}

/// `KNOB=N` words, each knob at most once, 0 when left out.
fn knobs<'a>(words: impl Iterator<Item = &'a str>) -> Result<Knobs> {
    let mut values = [0u32; Knob::ALL.len()];
    let mut seen = [false; Knob::ALL.len()];
    for word in words {
        let (key, value) = word.split_once('=').ok_or(EINVAL)?;
        let knob = Knob::by_name(key).ok_or(EINVAL)?;
        let i = knob as usize;
        if seen[i] {
            return Err(EINVAL);
        }
        seen[i] = true;
        values[i] = knob.check(value.parse().map_err(|_| EINVAL)?)?;
    }
    Ok(values)
}

/// A line of `inject/add` or `inject/remove`: its `PLACE` (see [`place`]),
/// then the words after it.
fn placed(text: &str) -> Result<(Place<'_>, SplitAsciiWhitespace<'_>)> {
    let mut words = text.split_ascii_whitespace();
    let at = place(words.next().ok_or(EINVAL)?)?;
    Ok((at, words))
}

/// `inject/add`: `PLACE [delay_us=N] [every_nth=N] [probability_pct=N]`,
/// space-separated, the knobs in any order (see [`knobs`]). A symbol must
/// fit kprobes' `KSYM_NAME_LEN`.
pub(crate) fn add(text: &str) -> Result<(Place<'_>, Knobs)> {
    let (at, words) = placed(text)?;
    if matches!(at, Place::Symbol(sym, _) if sym.len() >= KSYM_NAME_LEN) {
        return Err(EINVAL);
    }
    Ok((at, knobs(words)?))
}

/// `inject/remove`: one `PLACE`, nothing after it.
pub(crate) fn remove(text: &str) -> Result<Place<'_>> {
    let (at, mut words) = placed(text)?;
    match words.next() {
        None => Ok(at),
        Some(_) => Err(EINVAL),
    }
}

#[kunit_tests(mmrace_parse)]
mod tests {
    use super::*;

    #[test]
    fn one_takes_only_1() {
        assert!(one("1") == Ok(()));
        assert!(one("1\n") == Ok(()));
        assert!(one(" 1 ") == Ok(()));
        for bad in ["", "\n", "0", "2", "11", "one", "1 1"] {
            assert!(one(bad) == Err(EINVAL));
        }
    }

    #[test]
    fn flag_takes_0_or_1() {
        assert!(flag("1\n") == Ok(true));
        assert!(flag("0") == Ok(false));
        for bad in ["", "2", "01", "yes", "-1", "1 0"] {
            assert!(flag(bad) == Err(EINVAL));
        }
    }

    #[test]
    fn knob_values_within_their_caps() {
        assert!(knob_value(Knob::DelayUs, "1000\n") == Ok(1000));
        assert!(knob_value(Knob::DelayUs, "0") == Ok(0));
        assert!(knob_value(Knob::EveryNth, "1000000") == Ok(1_000_000));
        assert!(knob_value(Knob::ProbabilityPct, "100") == Ok(100));
        for (knob, bad) in [
            (Knob::DelayUs, "1001"),
            (Knob::DelayUs, "5000"),
            (Knob::EveryNth, "1000001"),
            (Knob::ProbabilityPct, "101"),
            (Knob::DelayUs, "99999999999999999999"),
            (Knob::DelayUs, ""),
            (Knob::DelayUs, "-1"),
            (Knob::DelayUs, "1.5"),
            (Knob::DelayUs, "abc"),
            (Knob::DelayUs, "1 2"),
        ] {
            assert!(knob_value(knob, bad) == Err(EINVAL));
        }
    }

    #[test]
    fn places_symbol_offset_or_op() {
        assert!(place("zap_huge_pmd") == Ok(Place::Symbol("zap_huge_pmd", 0)));
        assert!(place("move_huge_pmd+26") == Ok(Place::Symbol("move_huge_pmd", 26)));
        assert!(place("move_huge_pmd+0x1a") == Ok(Place::Symbol("move_huge_pmd", 26)));
        assert!(place("foo.constprop.0") == Ok(Place::Symbol("foo.constprop.0", 0)));
        assert!(place("op=pmd_split") == Ok(Place::Op("pmd_split")));
        for bad in [
            "", "zap+x10", "zap+", "zap+0x", "zap+-1", "+5", "a-b", "op=", "op=a.b", "op=a+1",
        ] {
            assert!(place(bad) == Err(EINVAL));
        }
    }

    #[test]
    fn add_lines() {
        assert!(
            add("zap_huge_pmd delay_us=50 probability_pct=10\n")
                == Ok((Place::Symbol("zap_huge_pmd", 0), [50, 0, 10]))
        );
        assert!(
            add("op=pmd_split every_nth=3 delay_us=1") == Ok((Place::Op("pmd_split"), [1, 3, 0]))
        );
        assert!(add("zap_huge_pmd") == Ok((Place::Symbol("zap_huge_pmd", 0), [0, 0, 0])));
        for bad in [
            "\n",
            "zap_huge_pmd delay_us=",
            "zap_huge_pmd delay_us=5000 every_nth=1",
            "zap_huge_pmd delay_us=1 delay_us=2",
            "zap_huge_pmd speed=1",
            "zap_huge_pmd+x10",
            "zap huge_pmd",
            "delay_us=1 zap_huge_pmd",
        ] {
            assert!(add(bad) == Err(EINVAL));
        }
    }

    #[test]
    fn add_refuses_a_symbol_kprobes_cannot_hold() -> Result {
        let mut long = KVec::new();
        for len in [KSYM_NAME_LEN - 1, KSYM_NAME_LEN] {
            long.clear();
            long.extend_from_slice(&[b'a'; KSYM_NAME_LEN][..len], GFP_KERNEL)?;
            let sym = core::str::from_utf8(&long).map_err(|_| EINVAL)?;
            assert!(add(sym).is_ok() == (len < KSYM_NAME_LEN));
        }
        Ok(())
    }

    #[test]
    fn remove_lines() {
        assert!(remove("zap_huge_pmd\n") == Ok(Place::Symbol("zap_huge_pmd", 0)));
        assert!(remove("op=zap_huge_pmd") == Ok(Place::Op("zap_huge_pmd")));
        for bad in ["", "\n", "zap_huge_pmd delay_us=1", "zap+x"] {
            assert!(remove(bad) == Err(EINVAL));
        }
    }
}
