//! `ksm`: private anonymous memory, MADV_HUGEPAGE and MADV_MERGEABLE, with
//! its second 2 MiB (MADV_NOHUGEPAGE: small pages) written with zeros so
//! that its pages are identical
//! and ksmd (run by the run's memenv) merges them: a fresh object waits
//! (at most [`MERGE_WAIT`]) for half of them to be merged. The engine stamps the
//! hot THP (pages that differ, so they stay unmerged); a write to a merged
//! cold page must break the merge and be seen by its writer only: every
//! other cold page still reads zero (the model's expectation of a cold
//! page).

use super::super::object::{reserve_aligned, unmap, Maker, ObjKind, Object};
use super::super::ops::ksm::ksm_running;
use anyhow::{bail, Context, Result};
use mmrace_proto::oracle::UNIT;
use std::time::{Duration, Instant};

/// The longest a fresh object waits for ksmd to merge its cold pages.
pub const MERGE_WAIT: Duration = Duration::from_millis(500);

/// This process's pages KSM has merged now (`/proc/self/ksm_merging_pages`).
pub fn merging_pages() -> Option<u64> {
    std::fs::read_to_string("/proc/self/ksm_merging_pages")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Waits until at least `pages` of this process's pages are merged, or
/// [`MERGE_WAIT`]: a round then starts on merged pages (a slow ksmd only
/// makes fewer rounds start merged).
fn wait_merged(pages: usize) {
    let t = Instant::now();
    while merging_pages().is_some_and(|n| n < pages as u64) && t.elapsed() < MERGE_WAIT {
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub struct KsmMaker;

impl KsmMaker {
    /// Fails unless ksmd runs.
    pub fn new() -> Result<KsmMaker> {
        if !ksm_running() {
            bail!("ksm: /sys/kernel/mm/ksm/run is not 1 (the run's memenv starts ksmd)");
        }
        Ok(KsmMaker)
    }
}

impl Maker for KsmMaker {
    fn kind(&self) -> ObjKind {
        ObjKind::Ksm
    }

    fn create(&mut self, len: usize) -> Result<Box<dyn Object>> {
        let pmd = crate::mm::pmd_size();
        let addr = reserve_aligned(len, pmd).context("ksm: reserve")?;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        if let Err(e) = super::map_fixed_thp(addr, len, flags, -1) {
            unmap(addr, len);
            return Err(e).context("ksm: mmap and MADV_HUGEPAGE");
        }
        // The cold THP in small pages: ksmd did not merge the zero-filled
        // pages of a THP in the 7.3 guest (its splits failed), and the
        // model wants the merged pages, the THP is the hot one.
        // SAFETY: advice on the mapping just made.
        if unsafe {
            libc::madvise(
                (addr + pmd) as *mut libc::c_void,
                len - pmd,
                libc::MADV_NOHUGEPAGE,
            )
        } != 0
        {
            let e = std::io::Error::last_os_error();
            unmap(addr, len);
            return Err(e).context("ksm: MADV_NOHUGEPAGE");
        }
        // Zero-filled pages, not the zero page: a write fault allocates.
        for off in (pmd..len).step_by(UNIT) {
            // SAFETY: the object's own fresh mapping.
            unsafe { ((addr + off) as *mut u64).write_volatile(0) };
        }
        // SAFETY: advice on the mapping just made.
        if unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_MERGEABLE) } != 0 {
            let e = std::io::Error::last_os_error();
            unmap(addr, len);
            return Err(e).context("ksm: MADV_MERGEABLE");
        }
        wait_merged((len - pmd) / UNIT / 2);
        Ok(super::mapped::Mapped::boxed(ObjKind::Ksm, addr, len, None))
    }
}
