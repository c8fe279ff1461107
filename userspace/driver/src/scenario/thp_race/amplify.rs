//! `--amplify`: race-window amplification through mmrace.ko's
//! `/sys/kernel/debug/mmrace/inject/` knobs. The module delays the callers
//! of the named probe points (the entry of `__split_huge_pmd()`, in the
//! unlocked window between the caller's pmd check and the page-table lock)
//! by `delay_us` microseconds, on every `every_nth` call and/or with
//! `probability_pct` percent chance. All knobs zero: no delay, probes idle.
//!
//! The run sets the knobs before the parties start and zeroes them when it
//! ends (the guard's drop), also on errors and panics.

use anyhow::{bail, Context, Result};
use mmrace_proto::counters::DEBUGFS_DIR;

pub use mmrace_proto::spec::amplify::{Spec, KNOBS};

pub fn inject_dir() -> String {
    format!("{DEBUGFS_DIR}/inject")
}

fn write_knob(knob: &str, value: u64) -> Result<()> {
    let path = format!("{}/{knob}", inject_dir());
    crate::kfile::write(&path, &format!("{value}\n"))
        .with_context(|| format!("cannot write {value} to {path}"))
}

/// Zeroes every knob (delay_us first: it disarms the probes).
pub fn zero_all() -> Result<()> {
    let mut first_err = None;
    for k in KNOBS.iter().rev() {
        if let Err(e) = write_knob(k, 0) {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// The module's `inject/points` (point name, state, calls, delays).
pub fn points() -> String {
    std::fs::read_to_string(format!("{}/points", inject_dir())).unwrap_or_default()
}

/// Armed knobs; dropping it zeroes them.
pub struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        if let Err(e) = zero_all() {
            eprintln!("mmrace-driver: --amplify: could not zero the inject knobs: {e:#}");
        }
    }
}

/// Sets the knobs of `spec` (the others to 0).
pub fn arm(spec: &Spec) -> Result<Armed> {
    if !std::path::Path::new(&inject_dir()).is_dir() {
        bail!(
            "--amplify: {} does not exist (mmrace.ko without race-window injection?)",
            inject_dir()
        );
    }
    zero_all()?;
    let armed = Armed;
    for k in KNOBS {
        write_knob(k, spec.0.get(k).copied().unwrap_or(0))
            .context("--amplify (the module refuses values over its caps with EINVAL)")?;
    }
    Ok(armed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arming_without_the_module_names_the_directory() {
        if std::path::Path::new(&inject_dir()).exists() {
            return;
        }
        let e = arm(&"delay_us=1,every_nth=1".parse().unwrap())
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("inject"), "{e:#}");
    }
}
