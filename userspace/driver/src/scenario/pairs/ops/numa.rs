//! NUMA hinting faults: with automatic NUMA balancing on (the run's memenv
//! turns it on and shortens the scanner's delays), task_numa_work makes
//! the object's ptes and pmds PROT_NONE now and then; this op reads its
//! own pages for a while, taking the hinting faults that follow (which
//! may migrate the pages to the reading CPU's node).

use super::super::model::Effects;
use super::super::op::{Op, Resources, RoundEnv};
use mmrace_proto::pairs::UserOp;
use std::time::{Duration, Instant};

/// How long the op reads.
pub const NUMA_READ: Duration = Duration::from_millis(20);

/// Whether automatic NUMA balancing is on.
pub fn numa_balancing_on() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/numa_balancing")
        .map(|s| s.trim() != "0")
        .unwrap_or(false)
}

pub struct NumaHint;

impl Op for NumaHint {
    fn op(&self) -> UserOp {
        UserOp::NumaHint
    }

    fn available(&self, _res: &Resources) -> Result<(), String> {
        match numa_balancing_on() {
            true => Ok(()),
            false => Err("NUMA balancing is off (the run's memenv turns it on)".into()),
        }
    }

    fn run(&self, env: &RoundEnv, _fx: &mut Effects) {
        let pages: Vec<usize> = env.layout.owned(env.slot, env.layout.hot()).collect();
        let t = Instant::now();
        while t.elapsed() < NUMA_READ {
            for &p in &pages {
                // SAFETY: a mapped page of the object, read only.
                unsafe { std::ptr::read_volatile(env.page_addr(p) as *const u64) };
            }
        }
    }
}
