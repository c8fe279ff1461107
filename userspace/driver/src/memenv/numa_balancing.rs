//! Automatic NUMA balancing switched on for a run that asks
//! (`/proc/sys/kernel/numa_balancing`; the guest boots with
//! `numa_balancing=disable`), with the scanner's delays shortened through
//! debugfs when it is mounted, so hinting faults come within seconds.

use super::setting::Setting;
use anyhow::Result;

pub const SYSCTL: &str = "/proc/sys/kernel/numa_balancing";
const DEBUGFS: &str = "/sys/kernel/debug/sched/numa_balancing";

/// The sysctl and the scanner's tunables, restored on drop (last set,
/// first restored).
#[derive(Debug)]
pub struct NumaBalancing {
    pub settings: Vec<Setting>,
}

impl NumaBalancing {
    pub fn start() -> Result<NumaBalancing> {
        let mut settings = vec![Setting::set(SYSCTL, "1", "CONFIG_NUMA_BALANCING")?];
        // Tunables only: without debugfs the defaults still scan, slower.
        for (file, value) in [("scan_delay_ms", "0"), ("scan_period_min_ms", "100")] {
            if let Ok(s) = Setting::set(&format!("{DEBUGFS}/{file}"), value, "debugfs") {
                settings.push(s);
            }
        }
        Ok(NumaBalancing { settings })
    }
}

impl Drop for NumaBalancing {
    fn drop(&mut self) {
        while let Some(s) = self.settings.pop() {
            drop(s);
        }
    }
}
