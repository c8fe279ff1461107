//! mmrace.ko's `meets` matrix in debugfs ([`mmrace_proto::meets`] has the
//! format), with `ops`, `meets_enable` and `meets_dropped` next to it.
//! Zeroed with the counters by a write to `reset`.
//!
//! A run takes a [`Baseline`] when the scenario starts and turns it into a
//! [`RunMeets`] when it ends; a module without `meets` (an older mmrace.ko)
//! gives [`RunMeets::Absent`], never an error.

use anyhow::{bail, Context, Result};
use mmrace_proto::counters::DEBUGFS_DIR;
use mmrace_proto::meets::{
    parse_ops, Meets, RunMeets, DROPPED_FILE, ENABLE_FILE, MEETS_FILE, OPS_FILE,
};

fn path(file: &str) -> String {
    format!("{DEBUGFS_DIR}/{file}")
}

pub fn meets_path() -> String {
    path(MEETS_FILE)
}

/// The matrix now.
pub fn read() -> Result<Meets> {
    let path = meets_path();
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    Meets::parse(&text).with_context(|| format!("in {path}"))
}

fn read_ops() -> Result<Vec<mmrace_proto::meets::OpState>> {
    let path = path(OPS_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_ops(&text).with_context(|| format!("in {path}"))
}

fn read_dropped() -> Result<u64> {
    let path = path(DROPPED_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("{path} reads {text:?}, not a number"))
}

/// Whether the loaded module has meets at all.
pub fn present() -> bool {
    std::path::Path::new(&meets_path()).exists()
}

/// Attaches (`true`) or detaches the module's meets probes.
pub fn set_enabled(on: bool) -> Result<()> {
    let path = path(ENABLE_FILE);
    let v = if on { "1\n" } else { "0\n" };
    crate::kfile::write(&path, v).with_context(|| format!("cannot write {v:?} to {path}"))
}

/// Checks that `meets_enable` refuses anything but `0` and `1` with EINVAL.
pub fn check_enable_rejects_garbage() -> Result<()> {
    let path = path(ENABLE_FILE);
    for bad in ["2\n", "on\n", "1 1\n", "-1\n", "\n"] {
        match crate::kfile::write(&path, bad) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => bail!("writing {bad:?} to {path}: {e}, want EINVAL"),
            Ok(()) => bail!("writing {bad:?} to {path} was accepted, want EINVAL"),
        }
    }
    Ok(())
}

/// What the module's meets were when the scenario started.
pub enum Baseline {
    Counting { meets: Meets, dropped: u64 },
    Off,
    Absent(String),
}

impl Baseline {
    /// Sets `meets_enable` as the run asks and reads the starting point.
    pub fn take(enabled: bool) -> Baseline {
        if !present() {
            return Baseline::Absent(format!(
                "{} does not exist: this mmrace.ko has no meets",
                meets_path()
            ));
        }
        let start = set_enabled(enabled).and_then(|()| Ok((read()?, read_dropped()?)));
        match start {
            Err(e) => Baseline::Absent(format!("{e:#}")),
            Ok(_) if !enabled => Baseline::Off,
            Ok((meets, dropped)) => Baseline::Counting { meets, dropped },
        }
    }

    /// The run's meets: what moved since the baseline, with each
    /// operation's probe and its calls now.
    pub fn finish(self) -> RunMeets {
        let (start, dropped0) = match self {
            Baseline::Counting { meets, dropped } => (meets, dropped),
            Baseline::Off => return RunMeets::Off,
            Baseline::Absent(why) => return RunMeets::Absent { why },
        };
        let end = (|| Ok::<_, anyhow::Error>((read()?, read_ops()?, read_dropped()?)))();
        match end {
            Ok((meets, ops, dropped)) => RunMeets::Counted {
                meets: meets.since(&start),
                ops,
                dropped: dropped.saturating_sub(dropped0),
            },
            Err(e) => RunMeets::Absent {
                why: format!("{e:#}"),
            },
        }
    }
}
