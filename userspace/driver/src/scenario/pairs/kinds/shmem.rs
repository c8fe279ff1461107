//! `shared-anon` (MAP_SHARED|MAP_ANONYMOUS) and `memfd`: shmem, THP-backed
//! when `/sys/kernel/mm/transparent_hugepage/shmem_enabled` allows it for
//! MADV_HUGEPAGE mappings (the scenario sets `advise` when it says
//! `never`; see [`SHMEM_ENABLED`]).

use super::super::object::{reserve_aligned, unmap, Maker, ObjKind, Object};
use anyhow::{bail, Context, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const SHMEM_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/// Whether the shmem_enabled setting `mode` gives MADV_HUGEPAGE mappings
/// THPs.
pub fn mode_gives_thp(mode: &str) -> bool {
    matches!(mode, "always" | "within_size" | "advise" | "force")
}

pub struct ShmemMaker {
    kind: ObjKind,
}

impl ShmemMaker {
    /// Fails when shmem THPs are off (`shmem_enabled` never or deny).
    pub fn new(kind: ObjKind) -> Result<ShmemMaker> {
        let text = std::fs::read_to_string(SHMEM_ENABLED)
            .with_context(|| format!("{kind}: cannot read {SHMEM_ENABLED} (no shmem THP)"))?;
        let mode = crate::mm::selected_mode(&text).unwrap_or_default();
        if !mode_gives_thp(&mode) {
            bail!("{kind}: {SHMEM_ENABLED} is {mode:?}: no shmem THPs");
        }
        Ok(ShmemMaker { kind })
    }
}

fn memfd(len: usize) -> Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and flags; returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"mmrace-pairs".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create");
    }
    // SAFETY: fd was just returned to us and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate on our own fd.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(std::io::Error::last_os_error()).context("memfd ftruncate");
    }
    Ok(fd)
}

impl Maker for ShmemMaker {
    fn kind(&self) -> ObjKind {
        self.kind
    }

    fn create(&mut self, len: usize) -> Result<Box<dyn Object>> {
        let fd = match self.kind {
            ObjKind::Memfd => Some(memfd(len)?),
            _ => None,
        };
        let (flags, raw) = match &fd {
            Some(f) => (libc::MAP_SHARED, f.as_raw_fd()),
            None => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1),
        };
        let addr = reserve_aligned(len, crate::mm::pmd_size()).context("shmem: reserve")?;
        if let Err(e) = super::map_fixed_thp(addr, len, flags, raw) {
            unmap(addr, len);
            return Err(e).with_context(|| format!("{}: mmap and MADV_HUGEPAGE", self.kind));
        }
        Ok(super::mapped::Mapped::boxed(self.kind, addr, len, fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert!(mode_gives_thp("advise") && mode_gives_thp("always"));
        assert!(!mode_gives_thp("never") && !mode_gives_thp("deny"));
    }

    #[test]
    fn memfd_objects_map_and_hold_data() {
        let Ok(mut m) = ShmemMaker::new(ObjKind::Memfd) else {
            return; // this host has shmem THPs off
        };
        let len = 2 * crate::mm::pmd_size();
        let o = m.create(len).unwrap();
        assert_eq!(o.addr() % crate::mm::pmd_size(), 0);
        assert!(o.fd().is_some());
        // SAFETY: the object's own mapping.
        unsafe { (o.addr() as *mut u64).write_volatile(7) };
        // SAFETY: as above.
        assert_eq!(unsafe { (o.addr() as *const u64).read_volatile() }, 7);
    }
}
