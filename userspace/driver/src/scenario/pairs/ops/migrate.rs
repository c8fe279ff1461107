//! Moving the object between the two NUMA nodes.

use super::super::model::Effects;
use super::super::op::{check, Op, Resources, RoundEnv};
use crate::numa;
use mmrace_proto::oracle::UNIT;
use mmrace_proto::pairs::UserOp;

/// Pages in the object's page list for move_pages: every
/// [`MOVE_STRIDE`]th (the first of each THP among them).
const MOVE_STRIDE: usize = 64;

/// Move pages mapped by this process (include/uapi/linux/mempolicy.h).
const MPOL_MF_MOVE: libc::c_int = 1 << 1;

/// migrate_pages(2) of the whole worker from the source node to the
/// target.
pub struct MigratePages;

impl Op for MigratePages {
    fn op(&self) -> UserOp {
        UserOp::MigratePages
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let (from, to) = (
            numa::single_mask(env.source()),
            numa::single_mask(env.target),
        );
        // SAFETY: both masks are 2 words, covering MASK_MAXNODE - 1 bits.
        let r = unsafe {
            libc::syscall(
                libc::SYS_migrate_pages,
                0,
                numa::MASK_MAXNODE,
                from.as_ptr(),
                to.as_ptr(),
            )
        };
        check(fx, "migrate_pages", r >= 0, &[]);
    }
}

/// move_pages(2) of the object's pages to the target node.
pub struct MovePages;

impl Op for MovePages {
    fn op(&self) -> UserOp {
        UserOp::MovePages
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let base = env.obj.addr();
        let pages: Vec<*mut libc::c_void> = (0..env.layout.pages)
            .step_by(MOVE_STRIDE)
            .map(|p| (base + p * UNIT) as *mut libc::c_void)
            .collect();
        let nodes = vec![env.target as libc::c_int; pages.len()];
        let mut status = vec![0 as libc::c_int; pages.len()];
        // SAFETY: three arrays of pages.len() entries; the kernel reads the
        // first two and writes the third.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                0,
                pages.len() as libc::c_ulong,
                pages.as_ptr(),
                nodes.as_ptr(),
                status.as_mut_ptr(),
                MPOL_MF_MOVE,
            )
        };
        // Per-page failures are in `status` (ENOENT: not populated...).
        check(fx, "move_pages", r >= 0, &[libc::ENOENT, libc::EFAULT]);
    }
}

/// mbind(MPOL_BIND to the target node, MPOL_MF_MOVE) of the object.
pub struct Mbind;

impl Op for Mbind {
    fn op(&self) -> UserOp {
        UserOp::Mbind
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let mask = numa::single_mask(env.target);
        // SAFETY: the mask is 2 words, covering MASK_MAXNODE - 1 bits; the
        // range is the object's (EFAULT if it moved away).
        let r = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                env.obj.addr(),
                env.layout.bytes(),
                libc::MPOL_BIND,
                mask.as_ptr(),
                numa::MASK_MAXNODE,
                MPOL_MF_MOVE,
            )
        };
        // EIO: some page could not be moved; EFAULT/ENOMEM: the object
        // moved or lost its tail.
        check(
            fx,
            "mbind",
            r == 0,
            &[libc::EIO, libc::EFAULT, libc::ENOMEM],
        );
    }
}

/// Compaction of the node the object is on: the node's sysfs `compact`
/// file (compact_node: every zone, synchronously), whose migration
/// scanner takes the object's small folios without their locks.
pub struct Compact;

/// The sysfs file that compacts `node`.
fn compact_file(node: u32) -> String {
    format!("/sys/devices/system/node/node{node}/compact")
}

impl Op for Compact {
    fn op(&self) -> UserOp {
        UserOp::Compact
    }

    fn available(&self, res: &Resources) -> Result<(), String> {
        let f = compact_file(res.nodes.0);
        match std::path::Path::new(&f).exists() {
            true => Ok(()),
            false => Err(format!("no {f} (CONFIG_COMPACTION off?)")),
        }
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        if let Err(e) = std::fs::write(compact_file(env.source()), "1") {
            fx.error(format!("compact: {e}"));
        }
    }
}
