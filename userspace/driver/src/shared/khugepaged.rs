//! khugepaged's scan interval, set for a run and restored on drop.

use anyhow::{Context, Result};
use mmrace_proto::results::thp_race::Khugepaged;

const KHUGEPAGED_SLEEP: &str =
    "/sys/kernel/mm/transparent_hugepage/khugepaged/scan_sleep_millisecs";

fn read_u64(path: &str) -> Result<u64> {
    let s = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    s.trim()
        .parse()
        .with_context(|| format!("{path}: {s:?} is not a number"))
}

/// khugepaged's scan interval set for the run; restored on drop.
pub struct KhugepagedGuard {
    pub setting: Khugepaged,
}

impl KhugepagedGuard {
    pub fn set(ms: u64) -> Result<KhugepagedGuard> {
        let before = read_u64(KHUGEPAGED_SLEEP).context(
            "khugepaged: no scan interval to set (kernel without THP?); leave out --khugepaged-scan-ms",
        )?;
        crate::kfile::write(KHUGEPAGED_SLEEP, &format!("{ms}\n"))
            .with_context(|| format!("cannot write {ms} to {KHUGEPAGED_SLEEP}"))?;
        Ok(KhugepagedGuard {
            setting: Khugepaged {
                scan_sleep_ms: ms,
                scan_sleep_ms_before: before,
            },
        })
    }
}

impl Drop for KhugepagedGuard {
    fn drop(&mut self) {
        let _ = crate::kfile::write(
            KHUGEPAGED_SLEEP,
            &format!("{}\n", self.setting.scan_sleep_ms_before),
        );
    }
}
