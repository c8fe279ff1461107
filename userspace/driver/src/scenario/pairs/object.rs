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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// One round's object. Shared by the round's threads (`Sync`): only its
/// address changes, through its [`Place`].
pub trait Object: Send + Sync {
    fn kind(&self) -> ObjKind;
    /// Where it is mapped, moved by mremap through [`Place::moving`], so
    /// that verification and release find it there.
    fn place(&self) -> &Place;
    /// Where it is mapped now.
    fn addr(&self) -> usize {
        self.place().get()
    }
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

/// The address an object lives at, as every kind keeps it, with a count
/// of its moves (odd while one is under way) and the ranges a move left
/// behind, each covered by a [`placeholder`] until the object is dropped.
///
/// A store through /proc/self/mem reads the address, then writes: the
/// object may have moved in between. The count tells the storer so
/// ([`Place::unmoved_since`]), and the placeholder makes sure the stale
/// address never belongs to anything else meanwhile (FOLL_FORCE writes
/// into any private mapping, even PROT_NONE, so a stale store must find
/// nothing there it may write).
#[derive(Debug, Default)]
pub struct Place {
    addr: AtomicUsize,
    moves: AtomicU64,
    left: Mutex<Vec<usize>>,
}

impl Place {
    pub fn new(addr: usize) -> Place {
        Place {
            addr: AtomicUsize::new(addr),
            ..Place::default()
        }
    }
    pub fn get(&self) -> usize {
        self.addr.load(Ordering::Acquire)
    }
    /// The address now and the move count, read in that order.
    pub fn read(&self) -> (usize, u64) {
        let moves = self.moves.load(Ordering::Acquire);
        (self.get(), moves)
    }
    /// No move began or ended since [`Place::read`] returned `moves`.
    pub fn unmoved_since(&self, moves: u64) -> bool {
        moves.is_multiple_of(2) && self.moves.load(Ordering::Acquire) == moves
    }
    /// Moves the object by `mv` (from its address to the one it returns,
    /// or `None`: it stayed), counting the move from before it starts to
    /// after the new address is published.
    pub fn moving(&self, mv: impl FnOnce(usize) -> Option<usize>) {
        self.moves.fetch_add(1, Ordering::AcqRel);
        if let Some(to) = mv(self.get()) {
            self.addr.store(to, Ordering::Release);
        }
        self.moves.fetch_add(1, Ordering::AcqRel);
    }
    /// Records a range a move left behind (its placeholder), released
    /// with the object.
    pub fn left_behind(&self, addr: usize) {
        self.left
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(addr);
    }
    /// Unmaps the object's `len` bytes and every range it left behind.
    pub fn release(&self, len: usize) {
        unmap(self.get(), len);
        for a in self
            .left
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            unmap(a, len);
        }
    }
}

/// Covers `[addr, addr + len)` with a shared PROT_NONE mapping: nothing
/// else gets the range, and /proc/self/mem refuses to write it
/// (FOLL_FORCE writes only where a write could COW). `replace`: over
/// what is mapped there now (MAP_FIXED), else only if it is free.
pub fn placeholder(addr: usize, len: usize, replace: bool) -> std::io::Result<()> {
    let fixed = if replace {
        libc::MAP_FIXED
    } else {
        libc::MAP_FIXED_NOREPLACE
    };
    // SAFETY: maps over a range this object owns (`replace`) or that is
    // free; no Rust reference points into it.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | fixed,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    if p as usize != addr {
        // An old kernel without MAP_FIXED_NOREPLACE took it as a hint.
        unmap(p as usize, len);
        return Err(std::io::Error::from_raw_os_error(libc::EEXIST));
    }
    Ok(())
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
        let (at, moves) = p.read();
        assert_eq!(at, 5);
        assert!(p.unmoved_since(moves));
        p.moving(|from| {
            assert!(!p.unmoved_since(moves));
            Some(from + 2)
        });
        assert_eq!(p.get(), 7);
        assert!(!p.unmoved_since(moves));
        assert!(p.unmoved_since(p.read().1));
    }

    /// The hazard the placeholder closes: /proc/self/mem writes into a
    /// private PROT_NONE mapping (FOLL_FORCE), and not into the
    /// placeholder put over it.
    #[test]
    fn a_placeholder_refuses_stale_stores() {
        use std::os::unix::fs::FileExt;
        let mem = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/proc/self/mem")
            .unwrap();
        let len = 2 * 4096;
        let a = reserve_aligned(len, 4096).unwrap();
        assert!(mem.write_at(&[7u8; 8], a as u64).is_ok());
        placeholder(a, len, true).unwrap();
        assert!(mem.write_at(&[7u8; 8], a as u64).is_err());
        assert!(placeholder(a, len, false).is_err(), "the range is taken");
        unmap(a, len);
    }
}
