// SPDX-License-Identifier: GPL-2.0

//! The debugfs write parsers: each file that takes a write turns its text
//! into a value here, and anything it does not take into `-EINVAL`. They
//! are pure functions of the text.

use crate::inject::{
    Knob,
    Knobs, //
};
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

/// `SYMBOL[+OFFSET]`, the first word of `inject/add` and `inject/remove`.
pub(crate) fn place(word: &str) -> Result<Place<'_>> {
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

/// `inject/add`: `PLACE [delay_us=N] [every_nth=N] [probability_pct=N]`,
/// space-separated, the knobs in any order (see [`place`] and [`knobs`]).
/// A symbol must fit kprobes' `KSYM_NAME_LEN`.
pub(crate) fn add(text: &str) -> Result<(Place<'_>, Knobs)> {
    let mut words = text.split_ascii_whitespace();
    let at = place(words.next().ok_or(EINVAL)?)?;
    if matches!(at, Place::Symbol(sym, _) if sym.len() >= KSYM_NAME_LEN) {
        return Err(EINVAL);
    }
    Ok((at, knobs(words)?))
}

/// `inject/remove`: one `PLACE`.
pub(crate) fn remove(text: &str) -> Result<Place<'_>> {
    let mut words = text.split_ascii_whitespace();
    let at = place(words.next().ok_or(EINVAL)?)?;
    match words.next() {
        None => Ok(at),
        Some(_) => Err(EINVAL),
    }
}
