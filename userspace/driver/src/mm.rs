//! Anonymous memory for the workloads: mappings aligned so a transparent
//! huge page can back them, touched page by page, with holes punched in on
//! purpose (a partial munmap is the simplest way to split a huge pmd).

use anyhow::{bail, Result};
use std::io;

/// The size of a huge pmd on x86_64; only used when sysfs does not say.
pub const DEFAULT_PMD_SIZE: usize = 2 << 20;

const THP_DIR: &str = "/sys/kernel/mm/transparent_hugepage";

pub fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// The size of a PMD-mapped THP (hpage_pmd_size), 2 MiB on x86_64. Read
/// once (it cannot change while the kernel runs).
pub fn pmd_size() -> usize {
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        std::fs::read_to_string(format!("{THP_DIR}/hpage_pmd_size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(DEFAULT_PMD_SIZE)
    })
}

/// The selected THP mode (`always`, `madvise`, `never`), or `None` when the
/// kernel has no THP support.
pub fn thp_mode() -> Option<String> {
    let text = std::fs::read_to_string(format!("{THP_DIR}/enabled")).ok()?;
    selected_mode(&text)
}

/// The `[bracketed]` word of a sysfs choice file such as THP's `enabled`.
pub fn selected_mode(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let len = text[start..].find(']')?;
    Some(text[start..start + len].to_string())
}

/// Whether an `madvise(MADV_HUGEPAGE)` region gets THPs on first touch.
pub fn thp_for_madvised() -> bool {
    matches!(thp_mode().as_deref(), Some("always" | "madvise"))
}

/// Clears the soft-dirty bits of this process's pages (`echo 4 >
/// /proc/self/clear_refs`): the pagewalk that races with THP splits and
/// migration in mmrace's seed bug.
pub fn clear_soft_dirty() -> Result<()> {
    clear_refs("/proc/self/clear_refs")
}

/// Writes 4 (soft-dirty) to a `/proc/PID/clear_refs` file.
pub fn clear_refs(path: &str) -> Result<()> {
    crate::kfile::write(path, "4").map_err(|e| anyhow::anyhow!("cannot write 4 to {path}: {e}"))
}

/// The errno of the last failed libc call (EIO if it set none).
pub fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Which step of [`map_thp_at`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThpMapStep {
    Map,
    Advise,
}

/// Why [`map_thp_at`] failed: the step and its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThpMapError {
    pub step: ThpMapStep,
    pub errno: i32,
}

impl From<ThpMapError> for io::Error {
    fn from(e: ThpMapError) -> io::Error {
        io::Error::from_raw_os_error(e.errno)
    }
}

/// How [`map_thp_at`] treats what is already mapped at the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixed {
    /// `MAP_FIXED_NOREPLACE`: fail with EEXIST (a kernel older than 4.17
    /// takes the address as a hint and maps elsewhere: the same EEXIST).
    NoReplace,
    /// `MAP_FIXED`: replace it.
    Replace,
}

/// Maps `len` bytes of private anonymous read-write memory at `addr` and
/// advises them `MADV_HUGEPAGE`: the fixed-address THP regions of thp-race
/// (the writer's, the racers', churn's chunks).
pub fn map_thp_at(addr: usize, len: usize, fixed: Fixed) -> Result<(), ThpMapError> {
    let flag = match fixed {
        Fixed::NoReplace => libc::MAP_FIXED_NOREPLACE,
        Fixed::Replace => libc::MAP_FIXED,
    };
    let fail = |step| ThpMapError {
        step,
        errno: errno(),
    };
    // SAFETY: with NoReplace no existing mapping is touched; with Replace
    // the caller owns whatever lies at [addr, addr + len) and gives it up.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flag,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(fail(ThpMapStep::Map));
    }
    if p as usize != addr {
        // SAFETY: unmaps the mapping just made elsewhere, which nothing uses.
        unsafe { libc::munmap(p, len) };
        return Err(ThpMapError {
            step: ThpMapStep::Map,
            errno: libc::EEXIST,
        });
    }
    // SAFETY: advice on the mapping just made.
    if unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) } != 0 {
        return Err(fail(ThpMapStep::Advise));
    }
    Ok(())
}

/// A private anonymous mapping whose start is aligned to `align`, unmapped
/// on drop. Holes punched with [`AlignedMap::unmap`] are remembered, so drop
/// never unmaps a hole that some other mapping has since taken.
pub struct AlignedMap {
    base: *mut u8,
    len: usize,
    /// Still-mapped byte ranges, as (offset, len) from `base`.
    mapped: Vec<(usize, usize)>,
}

// SAFETY: the mapping is plain memory owned by this value; threads that
// share it only go through raw pointers the caller synchronises.
unsafe impl Send for AlignedMap {}
unsafe impl Sync for AlignedMap {}

impl AlignedMap {
    /// Maps `len` bytes aligned to `align` (a power of two, at least a page):
    /// over-allocates by `align` and trims both ends.
    pub fn new(len: usize, align: usize) -> Result<Self> {
        let page = page_size();
        if !align.is_power_of_two() || align < page || len == 0 || !len.is_multiple_of(page) {
            bail!("AlignedMap::new({len}, {align}): need page-multiple len and power-of-two align");
        }
        let total = len + align;
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            bail!("mmap of {total} bytes: {}", io::Error::last_os_error());
        }
        let raw = raw as usize;
        let base = (raw + align - 1) & !(align - 1);
        let head = base - raw;
        let tail = total - head - len;
        // SAFETY: both trims lie inside the mapping made above.
        unsafe {
            if head > 0 {
                libc::munmap(raw as *mut libc::c_void, head);
            }
            if tail > 0 {
                libc::munmap((base + len) as *mut libc::c_void, tail);
            }
        }
        Ok(AlignedMap {
            base: base as *mut u8,
            len,
            mapped: vec![(0, len)],
        })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.base
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// madvise over the whole mapping (e.g. `libc::MADV_HUGEPAGE`).
    pub fn madvise(&self, advice: libc::c_int) -> Result<()> {
        // SAFETY: advice on our own mapping.
        if unsafe { libc::madvise(self.base.cast(), self.len, advice) } != 0 {
            bail!(
                "madvise({advice}) on {} bytes: {}",
                self.len,
                io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Writes one byte in every page of `[offset, offset+len)`, faulting it
    /// in; `value` varies the data so pages are not all alike. The range must
    /// still be mapped.
    pub fn touch(&self, offset: usize, len: usize, value: u8) {
        assert!(
            self.is_mapped(offset, len),
            "touch of unmapped range {offset}+{len}"
        );
        let page = page_size();
        for off in (offset..offset + len).step_by(page) {
            // SAFETY: inside a mapped, writable range (checked above).
            unsafe { std::ptr::write_volatile(self.base.add(off), value) };
        }
    }

    /// Writes every page of the mapping.
    pub fn touch_all(&self, value: u8) {
        for &(off, len) in &self.mapped.clone() {
            self.touch(off, len, value);
        }
    }

    /// Whether `[offset, offset+len)` lies within one still-mapped range.
    pub fn is_mapped(&self, offset: usize, len: usize) -> bool {
        self.mapped
            .iter()
            .any(|&(o, l)| offset >= o && offset + len <= o + l)
    }

    /// munmaps `[offset, offset+len)` (page-aligned, inside the mapping);
    /// in a THP this splits the huge pmd.
    pub fn unmap(&mut self, offset: usize, len: usize) -> Result<()> {
        let page = page_size();
        if !offset.is_multiple_of(page) || !len.is_multiple_of(page) || offset + len > self.len {
            bail!(
                "unmap({offset}, {len}) outside or unaligned in a {}-byte map",
                self.len
            );
        }
        // SAFETY: the range is inside our mapping; holes already unmapped
        // are ours too and munmap of them is a no-op.
        if unsafe { libc::munmap(self.base.add(offset).cast(), len) } != 0 {
            bail!("munmap({offset}, {len}): {}", io::Error::last_os_error());
        }
        let (lo, hi) = (offset, offset + len);
        self.mapped = self
            .mapped
            .iter()
            .flat_map(|&(o, l)| {
                let end = o + l;
                [(o, end.min(lo)), (o.max(hi), end)]
            })
            .filter(|&(s, e)| e > s)
            .map(|(s, e)| (s, e - s))
            .collect();
        Ok(())
    }

    /// The still-mapped ranges, as (offset, len).
    pub fn mapped_ranges(&self) -> &[(usize, usize)] {
        &self.mapped
    }
}

impl Drop for AlignedMap {
    fn drop(&mut self) {
        for &(off, len) in &self.mapped {
            // SAFETY: ranges we still own.
            unsafe { libc::munmap(self.base.add(off).cast(), len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thp_mapping_at_a_fixed_address() {
        let len = DEFAULT_PMD_SIZE;
        // A free pmd-aligned address: one mapped and given back.
        let probe = AlignedMap::new(len, len).unwrap();
        let addr = probe.as_ptr() as usize;
        drop(probe);
        map_thp_at(addr, len, Fixed::NoReplace).unwrap();
        let taken = map_thp_at(addr, len, Fixed::NoReplace).unwrap_err();
        assert_eq!(
            taken,
            ThpMapError {
                step: ThpMapStep::Map,
                errno: libc::EEXIST
            }
        );
        assert_eq!(io::Error::from(taken).raw_os_error(), Some(libc::EEXIST));
        map_thp_at(addr, len, Fixed::Replace).unwrap();
        // SAFETY: the mapping made just above, then given back.
        unsafe {
            std::ptr::write_volatile(addr as *mut u8, 7);
            libc::munmap(addr as *mut libc::c_void, len);
        }
    }

    #[test]
    fn aligned_touch_and_holes() {
        let pmd = DEFAULT_PMD_SIZE;
        let page = page_size();
        let mut m = AlignedMap::new(2 * pmd, pmd).unwrap();
        assert_eq!(m.as_ptr() as usize % pmd, 0);
        m.touch_all(7);
        m.unmap(pmd / 2, page).unwrap();
        assert_eq!(
            m.mapped_ranges(),
            [(0, pmd / 2), (pmd / 2 + page, 2 * pmd - pmd / 2 - page)]
        );
        assert!(!m.is_mapped(pmd / 2, page));
        assert!(m.is_mapped(0, page));
        // SAFETY: still mapped and touched.
        assert_eq!(unsafe { *m.as_ptr() }, 7);
        m.unmap(0, pmd).unwrap();
        assert_eq!(m.mapped_ranges(), [(pmd, pmd)]);
        assert!(m.unmap(1, page).is_err());
        assert!(m.unmap(0, 4 * pmd).is_err());
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(AlignedMap::new(0, 4096).is_err());
        assert!(AlignedMap::new(4096, 3000).is_err());
        assert!(AlignedMap::new(100, 4096).is_err());
    }

    #[test]
    fn sysfs_choice() {
        assert_eq!(
            selected_mode("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            selected_mode("[always] madvise never").as_deref(),
            Some("always")
        );
        assert_eq!(selected_mode("always madvise never"), None);
    }
}
