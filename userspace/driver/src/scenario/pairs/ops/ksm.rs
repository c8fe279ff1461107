//! KSM merge: MADV_MERGEABLE of the object, then a wait for ksmd (run by
//! the run's memenv, scanning without sleeping) to finish two full scans,
//! the least in which a page goes through the unstable tree and merges.
//! Unmerging is any later write (store, touch, a fork child's). In a
//! sequential round ksmd is stopped while the op runs; the op then only
//! advises, and ksmd's turn after it does the merging.

use super::super::model::Effects;
use super::super::op::{check, Op, Resources, RoundEnv};
use crate::memenv::ksm::Ksm;
use mmrace_proto::pairs::UserOp;
use std::time::{Duration, Instant};

/// The longest the op waits for ksmd.
pub const KSM_WAIT: Duration = Duration::from_millis(300);

/// Whether ksmd runs (`/sys/kernel/mm/ksm/run` is 1).
pub fn ksm_running() -> bool {
    Ksm::running()
}

pub struct KsmMerge;

impl Op for KsmMerge {
    fn op(&self) -> UserOp {
        UserOp::KsmMerge
    }

    fn available(&self, _res: &Resources) -> Result<(), String> {
        match ksm_running() {
            true => Ok(()),
            false => Err("ksmd is not running (the run's memenv starts it)".into()),
        }
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        // SAFETY: advice on this round's object (ENOMEM if it moved).
        let r = unsafe {
            libc::madvise(
                env.obj.addr() as *mut libc::c_void,
                env.layout.bytes(),
                libc::MADV_MERGEABLE,
            )
        };
        check(fx, "MADV_MERGEABLE", r == 0, &[libc::ENOMEM]);
        // Stopped: a sequential round's ksmd takes its turn after this op
        // (ksmd.rs).
        if !Ksm::running() {
            return;
        }
        let Some(start) = Ksm::counter("full_scans") else {
            return;
        };
        let t = Instant::now();
        while Ksm::counter("full_scans").is_some_and(|n| n < start + 2) && t.elapsed() < KSM_WAIT {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
