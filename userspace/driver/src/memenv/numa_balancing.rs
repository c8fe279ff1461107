//! Automatic NUMA balancing switched on for a run that asks
//! (`/proc/sys/kernel/numa_balancing`; the guest boots with
//! `numa_balancing=disable`), with the scanner's delays shortened through
//! debugfs when it is mounted, so hinting faults come within seconds.

use super::setting::Setting;
use anyhow::Result;

pub const SYSCTL: &str = "/proc/sys/kernel/numa_balancing";
const DEBUGFS: &str = "/sys/kernel/debug/sched/numa_balancing";

/// The scanner's tunables under debugfs: scan every new VMA at once, and
/// every 10 to 20 ms. The period adapts between its min and max, and with
/// the defaults (max 60 s) it grew to seconds within a run: `pairs`' 30 s
/// `numa-hint,dontneed` run on anon (2026-12-07) updated 13,056 ptes in
/// all, a few passes over the worker, so most rounds' fresh objects were
/// never made PROT_NONE and `numa-hint` read them without one hinting
/// fault. The period's floor is 1000 ms over (2560 MB / scan_size_mb)
/// (`task_scan_min()`): 16 MB makes it 6 ms.
const SCANNER: [(&str, &str); 4] = [
    ("scan_delay_ms", "0"),
    ("scan_size_mb", "16"),
    ("scan_period_min_ms", "10"),
    ("scan_period_max_ms", "20"),
];

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
        for (file, value) in SCANNER {
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
