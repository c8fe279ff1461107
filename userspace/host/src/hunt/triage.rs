//! What a hunt's finding probably is, before anyone reads it.
//!
//! On a variant kernel a finding is the variant's (or a side effect of it).
//! On the clean kernel it is either a kernel bug worth a report, or one of
//! the known ways a run goes wrong without one: an artefact of TCG (the
//! emulator is slow enough that the kernel's stall detectors fire under
//! load, and emulates 5-level paging), the guest's own OOM taking the
//! driver, or the harness.

use crate::judge::verdict::Verdict;
use crate::out::report::Report;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "why", rename_all = "kebab-case")]
pub enum Triage {
    /// Found on a kernel variant.
    Variant(String),
    /// A known artefact of TCG on a clean kernel (why).
    TcgArtefact(String),
    /// The guest ran out of memory and the OOM killer took the driver.
    GuestOom,
    /// The harness failed (the kernel was not judged).
    Harness,
    /// Found on the clean kernel, and none of the above: look at it.
    KernelBug,
}

impl Triage {
    pub fn describe(&self) -> String {
        match self {
            Triage::Variant(v) => format!("on variant {v}"),
            Triage::TcgArtefact(why) => format!("known TCG artefact: {why}"),
            Triage::GuestOom => "the guest's own OOM killed the driver".into(),
            Triage::Harness => "harness fault".into(),
            Triage::KernelBug => "clean kernel: a kernel bug to look at".into(),
        }
    }
}

/// Titles that TCG produces on a clean kernel, and why.
const TCG_ARTEFACTS: &[(&str, &str)] = &[
    (
        "^INFO: rcu detected stall",
        "TCG runs the guest many times slower than hardware: RCU's 21 s grace-period limit passes under load",
    ),
    (
        "^BUG: soft lockup",
        "TCG's slow vCPUs can hold a CPU past the soft-lockup threshold under load",
    ),
    (
        "^INFO: task hung",
        "under TCG a task can wait past the hung-task timeout behind slow emulated I/O",
    ),
    (
        "^hang: ",
        "a TCG guest on a loaded host can fall silent past the hang timeout",
    ),
    (
        "^KASAN: wild-memory-access Read in __common_interrupt$",
        "KASAN under TCG's 5-level paging (LA57) during identify_cpu(): the kasan profile needs no5lvl",
    ),
];

static ARTEFACTS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    TCG_ARTEFACTS
        .iter()
        .map(|(p, why)| (Regex::new(p).expect("valid"), *why))
        .collect()
});

/// The driver (PID 1, the guest's init) OOM-killed.
const DRIVER_OOM: &str = "Out of memory: Killed process 1 (";

/// Triages a run's finding; `console` is the run's console.log text (empty
/// if unreadable).
pub fn triage(r: &Report, console: &str) -> Triage {
    if r.verdict == Verdict::HarnessError {
        return Triage::Harness;
    }
    if let Some(v) = r.meta.spec.as_ref().and_then(|s| s.kernel.variant.clone()) {
        return Triage::Variant(v);
    }
    if console.contains(DRIVER_OOM) {
        return Triage::GuestOom;
    }
    let tcg = r.meta.accel == Some(crate::vm::accel::Accel::Tcg);
    let title = r.found().and_then(|f| f.title()).unwrap_or("");
    if tcg {
        if let Some((_, why)) = ARTEFACTS.iter().find(|(re, _)| re.is_match(title)) {
            return Triage::TcgArtefact(why.to_string());
        }
    }
    Triage::KernelBug
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::title::Identity;
    use crate::out::report::tests::sample;

    #[test]
    fn triages_clean_kernel_findings() {
        let mut r = sample();
        r.meta.accel = Some(crate::vm::accel::Accel::Tcg);
        assert_eq!(triage(&r, ""), Triage::KernelBug);
        r.found.0.as_mut().unwrap().identity =
            Identity::plain("INFO: rcu detected stall in sys_munmap");
        assert!(matches!(triage(&r, ""), Triage::TcgArtefact(_)));
        assert_eq!(
            triage(
                &r,
                "[ 9.0] Out of memory: Killed process 1 (mmrace-driver) total-vm:1kB"
            ),
            Triage::GuestOom
        );
        r.meta.spec.as_mut().unwrap().kernel.variant = Some("warn-once-only".into());
        assert_eq!(triage(&r, ""), Triage::Variant("warn-once-only".into()));
        r.verdict = Verdict::HarnessError;
        assert_eq!(triage(&r, ""), Triage::Harness);
    }
}
