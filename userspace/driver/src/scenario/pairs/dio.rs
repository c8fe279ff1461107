//! The O_DIRECT op's two sources of the same stamps: the file on the XFS
//! scratch disk, and the raw disk itself at the file's blocks.
//!
//! The two pin the object's page for different spans. XFS reads through
//! iomap, which marks the pinned pages dirty as it submits the bio
//! (`iomap_dio_bio_iter()`: `bio_set_pages_dirty()` before
//! `iomap_dio_submit_bio()`): a clean page is pinned and still clean only
//! between the pin and that call. The block device's own direct I/O
//! (`__blkdev_direct_IO_simple()`) dirties the pages when the read has
//! completed (`bio_release_pages(&bio, should_dirty)`), so the page stays
//! pinned and clean for the whole I/O. Reclaim that trusts a clean page
//! (lazyfree, MADV_FREE: `ttu_anon_lazyfree_folio()`'s reference check)
//! is exposed for the whole read only on the second path.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Where the O_DIRECT stamps are, as the driver found them.
#[derive(Debug, Clone)]
pub struct DioPaths {
    /// The file on XFS whose page `p` holds `stamp(p, DIO_GEN)`.
    pub file: PathBuf,
    /// The block device the file is on (its blocks read raw), if known.
    pub device: Option<PathBuf>,
}

/// The sources opened O_DIRECT in the worker.
pub struct Dio {
    pub file: File,
    /// The raw disk and the disk offset of each page of the file; `None`
    /// when the device or the file's extents could not be had.
    pub raw: Option<RawDisk>,
}

pub struct RawDisk {
    pub dev: File,
    /// `offsets[p]`: the byte on the disk where the file's page `p` is.
    pub offsets: Vec<u64>,
}

/// One O_DIRECT read's source: the descriptor and the offset of page `p`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub fd: RawFd,
    pub offset: i64,
    /// Whether it is the raw disk.
    pub raw: bool,
}

fn open_direct(path: &std::path::Path) -> Option<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

impl Dio {
    /// Opens the file, and the raw disk when its extents map every one of
    /// the file's `pages` to the disk.
    pub fn open(paths: &DioPaths, pages: usize, unit: usize) -> Option<Dio> {
        let file = open_direct(&paths.file)?;
        let raw = paths.device.as_deref().and_then(|d| {
            let offsets = fiemap::offsets(&file, pages, unit)?;
            Some(RawDisk {
                dev: open_direct(d)?,
                offsets,
            })
        });
        Some(Dio { file, raw })
    }

    /// The source of the `i`-th read of a round, of page `p`: the reads
    /// take turns, the file first, then the raw disk (when it is there).
    pub fn source(&self, i: usize, p: usize, unit: usize) -> Source {
        match &self.raw {
            Some(r) if i % 2 == 1 => Source {
                fd: r.dev.as_raw_fd(),
                offset: r.offsets[p] as i64,
                raw: true,
            },
            _ => Source {
                fd: self.file.as_raw_fd(),
                offset: (p * unit) as i64,
                raw: false,
            },
        }
    }
}

/// FS_IOC_FIEMAP: where a file's blocks are on its disk.
mod fiemap {
    use std::fs::File;
    use std::os::fd::AsRawFd;

    /// _IOWR('f', 11, struct fiemap) (include/uapi/linux/fs.h).
    const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
    /// Flush the file's dirty data first.
    const FIEMAP_FLAG_SYNC: u32 = 1;
    /// Extent flags that mean the disk does not hold the data as is:
    /// UNKNOWN, DELALLOC, ENCODED, DATA_ENCRYPTED, NOT_ALIGNED, DATA_INLINE,
    /// DATA_TAIL, UNWRITTEN (include/uapi/linux/fiemap.h).
    const NOT_ON_DISK: u32 = 0x2 | 0x4 | 0x8 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800;
    const MAX_EXTENTS: usize = 64;

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Extent {
        logical: u64,
        physical: u64,
        length: u64,
        reserved64: [u64; 2],
        flags: u32,
        reserved: [u32; 3],
    }

    #[repr(C)]
    struct Fiemap {
        start: u64,
        length: u64,
        flags: u32,
        mapped_extents: u32,
        extent_count: u32,
        reserved: u32,
        extents: [Extent; MAX_EXTENTS],
    }

    /// The disk offset of each of the first `pages` units of `file`, or
    /// `None` unless every one is plainly on the disk.
    pub fn offsets(file: &File, pages: usize, unit: usize) -> Option<Vec<u64>> {
        let mut m = Fiemap {
            start: 0,
            length: (pages * unit) as u64,
            flags: FIEMAP_FLAG_SYNC,
            mapped_extents: 0,
            extent_count: MAX_EXTENTS as u32,
            reserved: 0,
            extents: [Extent::default(); MAX_EXTENTS],
        };
        // SAFETY: FS_IOC_FIEMAP on our own file with a buffer of
        // MAX_EXTENTS extents, as extent_count says.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP, &mut m) };
        if r != 0 {
            return None;
        }
        let extents = &m.extents[..(m.mapped_extents as usize).min(MAX_EXTENTS)];
        map(extents, pages, unit)
    }

    fn map(extents: &[Extent], pages: usize, unit: usize) -> Option<Vec<u64>> {
        (0..pages)
            .map(|p| {
                let at = (p * unit) as u64;
                let e = extents
                    .iter()
                    .find(|e| e.logical <= at && at < e.logical + e.length)?;
                (e.flags & NOT_ON_DISK == 0).then_some(e.physical + (at - e.logical))
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn ext(logical: u64, physical: u64, length: u64, flags: u32) -> Extent {
            Extent {
                logical,
                physical,
                length,
                flags,
                ..Extent::default()
            }
        }

        #[test]
        fn maps_pages_through_extents() {
            let e = [ext(0, 1 << 20, 8192, 0), ext(8192, 1 << 30, 8192, 1)];
            let want = vec![1 << 20, (1 << 20) + 4096, 1 << 30, (1 << 30) + 4096];
            assert_eq!(map(&e, 4, 4096), Some(want));
            // A hole, or an unwritten extent: no raw source.
            assert_eq!(map(&e, 5, 4096), None);
            assert_eq!(map(&[ext(0, 0, 8192, 0x800)], 2, 4096), None);
        }
    }
}
