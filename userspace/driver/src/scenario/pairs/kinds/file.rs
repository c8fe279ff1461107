//! The file kinds: `tmpfs` (a file on the `huge=always` tmpfs), `xfs-shared`
//! and `xfs-private` (a file on the XFS scratch disk mapped MAP_SHARED or
//! MAP_PRIVATE), all MADV_HUGEPAGE; and `hugetlb` (a file on hugetlbfs,
//! MAP_PRIVATE: 2 MiB pages). The directories are the run's
//! ([`KindEnv`]: the memenv's tmpfs and hugetlbfs, the scenario's XFS
//! mount); a kind without its directory, or whose directory is not on the
//! right filesystem, is unavailable. Every object is a fresh file, unlinked at
//! once and kept open: its fd is [`Object::fd`] for the file ops.
//!
//! `xfs-private`'s file holds [`initial_stamp`] in every page of the hot
//! THP (a zapped private page reverts to it); the other files start as
//! holes.

use super::super::model::{initial_stamp, Layout};
use super::super::object::{reserve_aligned, unmap, KindEnv, Maker, ObjKind, Object};
use crate::oracle::mem;
use anyhow::{bail, Context, Result};
use mmrace_proto::oracle::UNIT;
use nix::sys::statfs::{statfs, FsType, HUGETLBFS_MAGIC, TMPFS_MAGIC, XFS_SUPER_MAGIC};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a file kind's files go (from `env`), the filesystem that must be
/// there, and how they are mapped.
pub fn home(kind: ObjKind, env: &KindEnv) -> Option<(Option<&Path>, FsType, libc::c_int)> {
    let (tmpfs, xfs, huge) = (
        env.tmpfs_dir.as_deref(),
        env.xfs_dir.as_deref(),
        env.hugetlb_dir.as_deref(),
    );
    match kind {
        ObjKind::Tmpfs => Some((tmpfs, TMPFS_MAGIC, libc::MAP_SHARED)),
        ObjKind::XfsShared => Some((xfs, XFS_SUPER_MAGIC, libc::MAP_SHARED)),
        ObjKind::XfsPrivate => Some((xfs, XFS_SUPER_MAGIC, libc::MAP_PRIVATE)),
        ObjKind::Hugetlb => Some((huge, HUGETLBFS_MAGIC, libc::MAP_PRIVATE)),
        _ => None,
    }
}

pub struct FileMaker {
    kind: ObjKind,
    dir: PathBuf,
    flags: libc::c_int,
    made: AtomicU64,
}

impl FileMaker {
    /// Fails unless the kind's directory is on its filesystem (the run's
    /// memenv mounts it).
    pub fn new(kind: ObjKind, env: &KindEnv) -> Result<FileMaker> {
        let Some((dir, fs, flags)) = home(kind, env) else {
            bail!("{kind} is not a file kind");
        };
        let Some(dir) = dir else {
            bail!("{kind}: its filesystem is not mounted (see the run's memenv line)");
        };
        let st = statfs(dir).with_context(|| format!("{kind}: cannot statfs {}", dir.display()))?;
        if st.filesystem_type() != fs {
            bail!(
                "{kind}: {} is not {fs:?} but {:?}",
                dir.display(),
                st.filesystem_type()
            );
        }
        Ok(FileMaker {
            kind,
            dir: dir.to_path_buf(),
            flags,
            made: AtomicU64::new(0),
        })
    }

    fn fresh_file(&self, len: usize) -> Result<std::fs::File> {
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let path = self
            .dir
            .join(format!("pairs-{}-{}-{n}", self.kind, std::process::id()));
        let f = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("{}: cannot create {}", self.kind, path.display()))?;
        let _ = std::fs::remove_file(&path);
        f.set_len(len as u64)
            .with_context(|| format!("{}: cannot size {} to {len}", self.kind, path.display()))?;
        if self.kind == ObjKind::XfsPrivate {
            write_initial(
                &f,
                Layout::new(len / crate::mm::pmd_size(), crate::mm::pmd_size()),
            )
            .with_context(|| format!("{}: cannot write its stamps", self.kind))?;
        }
        Ok(f)
    }
}

/// One page-aligned unit, for writing stamps with pwrite.
#[repr(C, align(4096))]
pub struct Unit(pub [u8; UNIT]);

/// Writes [`initial_stamp`] into every page of the hot THP of `f`.
fn write_initial(f: &std::fs::File, layout: Layout) -> std::io::Result<()> {
    let mut buf = Box::new(Unit([0; UNIT]));
    for p in layout.hot() {
        // SAFETY: a local, aligned, UNIT-byte buffer.
        unsafe { mem::fill(buf.0.as_mut_ptr() as usize, &initial_stamp(p)) };
        f.write_all_at(&buf.0, (p * UNIT) as u64)?;
    }
    Ok(())
}

/// Maps `len` bytes of `fd` at the reserved `addr` (MAP_FIXED), with
/// MADV_HUGEPAGE unless it is hugetlb (whose pages are huge anyway).
fn map_file(addr: usize, len: usize, flags: libc::c_int, fd: RawFd, kind: ObjKind) -> Result<()> {
    if kind != ObjKind::Hugetlb {
        return super::map_fixed_thp(addr, len, flags, fd).context("mmap and MADV_HUGEPAGE");
    }
    super::map_fixed(addr, len, flags, fd).context("mmap of the hugetlbfs file")?;
    Ok(())
}

impl Maker for FileMaker {
    fn kind(&self) -> ObjKind {
        self.kind
    }

    fn create(&mut self, len: usize) -> Result<Box<dyn Object>> {
        let file = self.fresh_file(len)?;
        let addr = reserve_aligned(len, crate::mm::pmd_size())
            .with_context(|| format!("{}: reserve", self.kind))?;
        if let Err(e) = map_file(addr, len, self.flags, file.as_raw_fd(), self.kind) {
            unmap(addr, len);
            return Err(e).with_context(|| format!("{}: map its file", self.kind));
        }
        Ok(super::mapped::Mapped::boxed(
            self.kind,
            addr,
            len,
            Some(OwnedFd::from(file)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homes() {
        let env = KindEnv::default();
        assert!(home(ObjKind::Anon, &env).is_none());
        assert_eq!(
            home(ObjKind::XfsPrivate, &env).unwrap().2,
            libc::MAP_PRIVATE
        );
        assert_eq!(home(ObjKind::XfsShared, &env).unwrap().2, libc::MAP_SHARED);
    }

    #[test]
    fn without_its_mount_a_kind_is_unavailable() {
        let err = format!(
            "{:#}",
            FileMaker::new(ObjKind::Tmpfs, &KindEnv::default())
                .err()
                .unwrap()
        );
        assert!(err.contains("not mounted"), "{err}");
        // A directory on the wrong filesystem (/proc is never tmpfs).
        let env = KindEnv {
            tmpfs_dir: Some(PathBuf::from("/proc")),
            ..KindEnv::default()
        };
        let err = format!("{:#}", FileMaker::new(ObjKind::Tmpfs, &env).err().unwrap());
        assert!(err.contains("is not"), "{err}");
    }

    #[test]
    fn tmpfs_objects_on_a_tmpfs_hold_data() {
        // /dev/shm is a tmpfs on most machines; without one, nothing to do.
        let shm = PathBuf::from("/dev/shm");
        let env = KindEnv {
            tmpfs_dir: Some(shm),
            ..KindEnv::default()
        };
        let Ok(mut m) = FileMaker::new(ObjKind::Tmpfs, &env) else {
            return;
        };
        let len = 2 * crate::mm::pmd_size();
        let o = m.create(len).unwrap();
        assert_eq!(o.addr() % crate::mm::pmd_size(), 0);
        // SAFETY: the object's own mapping.
        unsafe { (o.addr() as *mut u64).write_volatile(7) };
        let mut b = [0u8; 8];
        // SAFETY: pread of the object's file into a local buffer.
        let n = unsafe { libc::pread(o.fd().unwrap(), b.as_mut_ptr() as *mut _, 8, 0) };
        assert_eq!(n, 8);
        assert_eq!(
            u64::from_ne_bytes(b),
            7,
            "the file and the mapping disagree"
        );
    }
}
