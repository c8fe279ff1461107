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
use std::collections::BTreeMap;

/// The knobs, in the order they are written (`delay_us` last: it arms).
pub const KNOBS: [&str; 3] = ["every_nth", "probability_pct", "delay_us"];

/// The parsed `--amplify` value: `delay_us=200,every_nth=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec(pub BTreeMap<String, u64>);

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut m = BTreeMap::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: want KNOB=VALUE"))?;
            if !KNOBS.contains(&k) {
                return Err(format!("unknown knob {k:?} (knobs: {})", KNOBS.join(", ")));
            }
            let v: u64 = v
                .parse()
                .map_err(|_| format!("{k}={v:?}: not a whole number"))?;
            m.insert(k.to_string(), v);
        }
        if m.get("delay_us").copied().unwrap_or(0) == 0 {
            return Err("delay_us must be set and above 0 (e.g. delay_us=200,every_nth=1)".into());
        }
        if m.get("every_nth").copied().unwrap_or(0) == 0
            && m.get("probability_pct").copied().unwrap_or(0) == 0
        {
            return Err(
                "set every_nth or probability_pct too: with both 0 nothing is delayed".into(),
            );
        }
        Ok(Spec(m))
    }
}

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
    fn parses_specs() {
        let s: Spec = "delay_us=200,every_nth=1".parse().unwrap();
        assert_eq!(s.0["delay_us"], 200);
        assert_eq!(s.0["every_nth"], 1);
        let s: Spec = " delay_us=5 , probability_pct=50 ".parse().unwrap();
        assert_eq!(s.0["probability_pct"], 50);
        for bad in [
            "",
            "delay_us=0,every_nth=1",
            "delay_us=200",
            "delay=200,every_nth=1",
            "delay_us=-1,every_nth=1",
            "delay_us,every_nth=1",
            "delay_us=1e3,every_nth=1",
        ] {
            assert!(bad.parse::<Spec>().is_err(), "{bad}");
        }
    }

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
