//! The OOM killer and the driver. PID 1 and the driver run with
//! oom_score_adj -1000 so that a scenario that drives the guest out of
//! memory loses a workload process, never the driver (which must still
//! report) nor init (whose death panics the kernel and would be misread as a
//! kernel bug).
//!
//! The setting is inherited across fork, so **a scenario that forks workload
//! children must call [`make_killable`] in each child** (right after fork),
//! or the OOM killer finds nothing it may kill and panics the guest.

use anyhow::{Context, Result};

pub const PATH: &str = "/proc/self/oom_score_adj";

/// The value that exempts a process from the OOM killer.
pub const UNKILLABLE: i32 = -1000;

/// Sets this process's oom_score_adj (-1000..=1000). Lowering it needs
/// CAP_SYS_RESOURCE (root has it); raising it is always allowed.
pub fn set_oom_score_adj(value: i32) -> Result<()> {
    crate::kfile::write(PATH, &format!("{value}\n"))
        .with_context(|| format!("cannot write {value} to {PATH}"))
}

/// Exempts this process (and its future children) from the OOM killer.
pub fn protect_self() -> Result<()> {
    set_oom_score_adj(UNKILLABLE)
}

/// Makes this process an ordinary OOM victim again (oom_score_adj 0). For
/// workload children forked from the driver; see the module docs.
pub fn make_killable() -> Result<()> {
    set_oom_score_adj(0)
}

/// This process's oom_score_adj.
pub fn oom_score_adj() -> Result<i32> {
    let text = std::fs::read_to_string(PATH).with_context(|| format!("cannot read {PATH}"))?;
    text.trim()
        .parse()
        .with_context(|| format!("bad {PATH}: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_is_always_allowed() {
        // Raise only, so the test runner itself is not protected; then put
        // the old value back only if that is allowed (it is, as root).
        let old = oom_score_adj().unwrap();
        let up = (old + 1).min(1000);
        set_oom_score_adj(up).unwrap();
        assert_eq!(oom_score_adj().unwrap(), up);
        let _ = set_oom_score_adj(old);
    }
}
