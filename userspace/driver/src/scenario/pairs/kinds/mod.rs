//! The object kinds ([`super::object::Maker`]s), one module per family.
//!
//! - [`anon`]: private anonymous memory.
//! - [`shmem`]: MAP_SHARED|MAP_ANONYMOUS and memfd.
//! - [`file`]: tmpfs, xfs-shared, xfs-private, hugetlb: a file each.
//! - [`ksm`]: private anonymous memory KSM merges.
//!
//! Every kind's object is a [`mapped::Mapped`].
//!
//! [`needs`] is what the run's guest environment ([`crate::memenv`]) must
//! have for the kinds and ops in play.

pub mod anon;
pub mod file;
pub mod ksm;
pub mod mapped;
pub mod shmem;

use crate::memenv::Need;
use mmrace_proto::pairs::{ObjKind, ObjState, UserOp};

/// The guest environment the kinds, ops and start states need (the XFS disk is mounted
/// by the scenario itself, for the O_DIRECT file too).
pub fn needs(kinds: &[ObjKind], ops: &[UserOp], states: &[ObjState]) -> Vec<Need> {
    let mut v = Vec::new();
    let kind = |k| kinds.contains(&k);
    let op = |o| ops.contains(&o);
    if kind(ObjKind::Tmpfs) {
        v.push(Need::Tmpfs);
    }
    if kind(ObjKind::Hugetlb) {
        v.push(Need::Hugetlb);
    }
    if kind(ObjKind::Ksm) || op(UserOp::KsmMerge) {
        v.push(Need::Ksm);
    }
    if op(UserOp::Swapin) || op(UserOp::Pageout) || states.contains(&ObjState::Swapped) {
        v.push(Need::Swap);
    }
    if op(UserOp::NumaHint) {
        v.push(Need::NumaBalancing);
    }
    if op(UserOp::Uffd) {
        v.push(Need::Userfaultfd);
    }
    v
}

/// Maps `len` bytes at the reserved `addr` over the reservation with
/// MAP_FIXED, read-write, `flags` and `fd`, and advises MADV_HUGEPAGE.
pub fn map_fixed_thp(
    addr: usize,
    len: usize,
    flags: libc::c_int,
    fd: libc::c_int,
) -> std::io::Result<()> {
    let p = map_fixed(addr, len, flags, fd)?;
    // SAFETY: advice on the mapping just made.
    if unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Maps `len` bytes at the reserved `addr` over the reservation with
/// MAP_FIXED, read-write, `flags` and `fd`; the mapping's start.
pub fn map_fixed(
    addr: usize,
    len: usize,
    flags: libc::c_int,
    fd: libc::c_int,
) -> std::io::Result<*mut libc::c_void> {
    // SAFETY: [addr, addr + len) is the caller's own reservation, replaced.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_FIXED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_kinds_and_ops() {
        let populated = [ObjState::Populated];
        assert!(needs(
            &[ObjKind::Anon],
            &[UserOp::Store, UserOp::Split],
            &populated
        )
        .is_empty());
        assert_eq!(
            needs(
                &[ObjKind::Tmpfs, ObjKind::Ksm],
                &[UserOp::Swapin],
                &populated
            ),
            [Need::Tmpfs, Need::Ksm, Need::Swap]
        );
        assert_eq!(
            needs(&[ObjKind::Anon], &[UserOp::Store], &[ObjState::Swapped]),
            [Need::Swap]
        );
        assert_eq!(
            needs(
                &[ObjKind::Hugetlb],
                &[UserOp::Uffd, UserOp::NumaHint],
                &populated
            ),
            [Need::Hugetlb, Need::NumaBalancing, Need::Userfaultfd]
        );
    }
}

#[cfg(test)]
mod host_tests;
