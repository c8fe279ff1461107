//! Swap-in: MADV_PAGEOUT of the populated THP (to the run's zram swap),
//! then reads of the thread's own pages, which fault them back in.

use super::super::model::Effects;
use super::super::op::{check, Op, Resources, RoundEnv};
use mmrace_proto::pairs::UserOp;

pub struct Swapin;

/// Whether a swap area is on (`/proc/swaps` lists one).
pub fn swap_on() -> bool {
    std::fs::read_to_string("/proc/swaps")
        .map(|t| t.lines().count() > 1)
        .unwrap_or(false)
}

impl Op for Swapin {
    fn op(&self) -> UserOp {
        UserOp::Swapin
    }

    fn available(&self, _res: &Resources) -> Result<(), String> {
        match swap_on() {
            true => Ok(()),
            false => Err("no swap (the run's memenv sets up zram swap)".into()),
        }
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let hot = env.layout.hot();
        // SAFETY: advice on the object's populated THP.
        let r = unsafe {
            libc::madvise(
                env.page_addr(hot.start) as *mut libc::c_void,
                hot.len() * mmrace_proto::oracle::UNIT,
                libc::MADV_PAGEOUT,
            )
        };
        check(fx, "MADV_PAGEOUT", r == 0, &[libc::ENOMEM]);
        for p in env.layout.owned(env.slot, hot) {
            // SAFETY: a mapped page of the object, read only.
            unsafe { std::ptr::read_volatile(env.page_addr(p) as *const u64) };
        }
    }
}
