//! The object trait: one fresh memory object of one [`ObjKind`] per round.
//!
//! A kind is a [`Maker`] (set up once per worker: a mount, a file, a sysfs
//! setting) that makes [`Object`]s. An object is `len` bytes (whole 2 MiB
//! THPs) at a 2 MiB-aligned address, advised or configured so THPs back
//! it, mapped read-write. The engine then stamps the first THP (the *hot*
//! one) through the mapping, leaves the rest unpopulated, races the ops on
//! it, verifies every page against the model ([`super::model`]), and drops
//! it (the object's `Drop` releases it: munmap at its current address, the
//! file or fd closed).
//!
//! What the kind means for the data (private or shared, what a zap leaves)
//! is [`ObjKind::private`] and [`ObjKind::zap`]: the model applies them,
//! the object does not check anything itself. A kind whose zap reverts to
//! the file (`xfs-private`) must create its file holding
//! [`super::model::initial_stamp`] in every page of the hot THP, the
//! content the engine's own stamping also writes through the mapping.
//!
//! To add a kind: a `Maker` in `kinds/`, and its arm in [`maker`].

use anyhow::Result;
pub use mmrace_proto::pairs::ObjKind;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One round's object. Shared by the round's threads (`Sync`): only its
/// address changes, through [`Object::set_addr`].
pub trait Object: Send + Sync {
    fn kind(&self) -> ObjKind;
    /// Where it is mapped now.
    fn addr(&self) -> usize;
    /// Records that it was moved to `addr` (by mremap), so verification
    /// and release find it there.
    fn set_addr(&self, addr: usize);
    /// Its length in bytes (whole THPs).
    fn bytes(&self) -> usize;
    /// The file behind it, if any (memfd, tmpfs or XFS file), for ops that
    /// need one.
    fn fd(&self) -> Option<RawFd> {
        None
    }
}

/// Makes fresh objects of one kind.
pub trait Maker: Send {
    fn kind(&self) -> ObjKind;
    /// A fresh object of `len` bytes (a multiple of 2 MiB).
    fn create(&mut self, len: usize) -> Result<Box<dyn Object>>;
}

/// Why a kind cannot run in this guest (no THP for shmem, no disk...):
/// reported as skipped, never as run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// What the driver prepared that a kind may need.
#[derive(Debug, Clone, Default)]
pub struct KindEnv {
    /// The host's XFS scratch disk, mounted (`None`: no disk attached).
    pub xfs_dir: Option<std::path::PathBuf>,
    /// The memenv's `huge=always` tmpfs (`None`: not mounted).
    pub tmpfs_dir: Option<std::path::PathBuf>,
    /// The memenv's hugetlbfs with its reserved pages (`None`: none).
    pub hugetlb_dir: Option<std::path::PathBuf>,
}

/// The kind's maker, or why it cannot run here. Called in the worker
/// process, once per worker.
pub fn maker(kind: ObjKind, env: &KindEnv) -> Result<Box<dyn Maker>, Unavailable> {
    use super::kinds;
    let made: Result<Box<dyn Maker>> = match kind {
        ObjKind::Anon => Ok(Box::new(kinds::anon::AnonMaker)),
        ObjKind::SharedAnon | ObjKind::Memfd => {
            kinds::shmem::ShmemMaker::new(kind).map(|m| Box::new(m) as Box<dyn Maker>)
        }
        ObjKind::Tmpfs | ObjKind::XfsShared | ObjKind::XfsPrivate | ObjKind::Hugetlb => {
            kinds::file::FileMaker::new(kind, env).map(|m| Box::new(m) as Box<dyn Maker>)
        }
        ObjKind::Ksm => kinds::ksm::KsmMaker::new().map(|m| Box::new(m) as Box<dyn Maker>),
    };
    made.map_err(|e| Unavailable(format!("{e:#}")))
}

/// The address an object lives at, as every kind keeps it.
#[derive(Debug, Default)]
pub struct Place(AtomicUsize);

impl Place {
    pub fn new(addr: usize) -> Place {
        Place(AtomicUsize::new(addr))
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
    pub fn set(&self, addr: usize) {
        self.0.store(addr, Ordering::Release)
    }
}

/// Reserves `len` bytes of address space aligned to `align` (PROT_NONE),
/// for a kind to map its object over with MAP_FIXED. Returns the address.
pub fn reserve_aligned(len: usize, align: usize) -> std::io::Result<usize> {
    // SAFETY: a fresh PROT_NONE mapping at an address the kernel picks.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len + align,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    let start = p as usize;
    let aligned = start.next_multiple_of(align);
    // SAFETY: trims the reservation made above to [aligned, aligned + len).
    unsafe {
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        let end = start + len + align;
        if end > aligned + len {
            libc::munmap((aligned + len) as *mut libc::c_void, end - aligned - len);
        }
    }
    Ok(aligned)
}

/// Unmaps `len` bytes at `addr` (an object's release).
pub fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller's object owns [addr, addr + len) and gives it up.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_aligned() {
        let pmd = crate::mm::pmd_size();
        let a = reserve_aligned(2 * pmd, pmd).unwrap();
        assert_eq!(a % pmd, 0);
        unmap(a, 2 * pmd);
        let p = Place::new(5);
        p.set(7);
        assert_eq!(p.get(), 7);
    }
}
