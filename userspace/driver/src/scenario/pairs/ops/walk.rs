//! Readers and writers of /proc/self files that walk the page tables, and
//! mincore(2), which walks them too.

use super::super::model::Effects;
use super::super::op::{Op, Resources, RoundEnv};
use mmrace_proto::oracle::UNIT;
use mmrace_proto::pairs::UserOp;
use std::io::Read;
use std::os::unix::fs::FileExt;

/// `4 > /proc/self/clear_refs`: soft-dirty clear of the whole mm.
pub struct ClearRefs;

impl Op for ClearRefs {
    fn op(&self) -> UserOp {
        UserOp::ClearRefs
    }

    fn run(&self, _env: &RoundEnv, fx: &mut Effects) {
        if let Err(e) = crate::kfile::write("/proc/self/clear_refs", "4") {
            fx.error(format!("clear_refs: {e}"));
        }
    }
}

/// A whole read of /proc/self/smaps.
pub struct Smaps;

impl Op for Smaps {
    fn op(&self) -> UserOp {
        UserOp::Smaps
    }

    fn run(&self, _env: &RoundEnv, fx: &mut Effects) {
        let mut buf = Vec::with_capacity(64 << 10);
        let r = std::fs::File::open("/proc/self/smaps").and_then(|mut f| f.read_to_end(&mut buf));
        if let Err(e) = r {
            fx.error(format!("smaps: {e}"));
        }
    }
}

/// /proc/self/pagemap entries of the object.
pub struct Pagemap;

impl Op for Pagemap {
    fn op(&self) -> UserOp {
        UserOp::Pagemap
    }

    fn available(&self, res: &Resources) -> Result<(), String> {
        res.pagemap
            .as_ref()
            .map(|_| ())
            .ok_or_else(|| "cannot open /proc/self/pagemap".into())
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(f) = env.res.pagemap.as_ref() else {
            return;
        };
        let mut buf = vec![0u8; env.layout.pages * 8];
        let off = (env.obj.addr() / UNIT * 8) as u64;
        if let Err(e) = f.read_at(&mut buf, off) {
            fx.error(format!("pagemap: {e}"));
        }
    }
}

/// mincore(2) of the whole object.
pub struct Mincore;

impl Op for Mincore {
    fn op(&self) -> UserOp {
        UserOp::Mincore
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let mut vec = vec![0u8; env.layout.pages];
        // SAFETY: one byte per page of the object into our own vector.
        let r = unsafe {
            libc::mincore(
                env.obj.addr() as *mut libc::c_void,
                env.layout.bytes(),
                vec.as_mut_ptr(),
            )
        };
        // ENOMEM: the object moved, or lost its tail, under it.
        super::super::op::check(fx, "mincore", r == 0, &[libc::ENOMEM]);
    }
}
