//! mmrace.ko's `meets` matrix in debugfs ([`mmrace_proto::meets`] has the
//! format). Zeroed with the counters by a write to `reset`.

use anyhow::{Context, Result};
use mmrace_proto::counters::DEBUGFS_DIR;
use mmrace_proto::meets::{Meets, MEETS_FILE};

pub fn meets_path() -> String {
    format!("{DEBUGFS_DIR}/{MEETS_FILE}")
}

/// The matrix now.
pub fn read() -> Result<Meets> {
    let path = meets_path();
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    Meets::parse(&text).with_context(|| format!("in {path}"))
}
