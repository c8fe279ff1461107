//! KSM: ksmd running and scanning fast (`/sys/kernel/mm/ksm`), so identical
//! pages of a MADV_MERGEABLE range merge within a round. Settings restored
//! on drop (merged pages stay merged until written or unmerged).

use super::setting::Setting;
use anyhow::Result;

const DIR: &str = "/sys/kernel/mm/ksm";
/// Pages ksmd scans per wake-up.
pub const PAGES_TO_SCAN: u64 = 1000;

/// ksmd's settings for the run, in the order they were set.
#[derive(Debug)]
pub struct Ksm {
    pub settings: Vec<Setting>,
}

impl Ksm {
    pub fn start() -> Result<Ksm> {
        let mut settings = Vec::new();
        for (file, value) in [
            ("pages_to_scan", PAGES_TO_SCAN.to_string()),
            ("sleep_millisecs", "0".to_string()),
            ("run", "1".to_string()),
        ] {
            settings.push(Setting::set(
                &format!("{DIR}/{file}"),
                &value,
                "CONFIG_KSM",
            )?);
        }
        Ok(Ksm { settings })
    }

    /// A counter of `/sys/kernel/mm/ksm` (`pages_shared`, `full_scans`...).
    pub fn counter(name: &str) -> Option<u64> {
        std::fs::read_to_string(format!("{DIR}/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether ksmd runs (`run` is 1).
    pub fn running() -> bool {
        Ksm::counter("run") == Some(1)
    }

    /// Starts or stops ksmd (`run` 1 or 0; merged pages stay merged). The
    /// write takes `ksm_thread_mutex`, which ksmd holds while it scans a
    /// batch: when stopping returns, no scan is in progress.
    pub fn set_running(on: bool) -> std::io::Result<()> {
        std::fs::write(format!("{DIR}/run"), if on { "1" } else { "0" })
    }
}

impl Drop for Ksm {
    fn drop(&mut self) {
        // `run` first: stop ksmd before its pace is put back.
        while let Some(s) = self.settings.pop() {
            drop(s);
        }
    }
}
