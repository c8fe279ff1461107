//! The start states (`--states`, [`ObjState`]): how a fresh object is
//! brought into the state its round starts in, before the ops race on it.
//!
//! Every kind's maker maps its object MADV_HUGEPAGE with nothing faulted
//! in; [`prepare`] then makes the state:
//!
//! - `populated`: the hot THP stamped through the mapping (PMD-mapped).
//! - `fresh`: nothing: the ops' own accesses are the first faults.
//! - `pte-mapped`: stamped, then an mprotect of the first page to
//!   PROT_READ and back splits the hot THP's pmd (`__split_huge_pmd()`:
//!   the folio stays whole, mapped by 512 PTEs; the VMA merges back).
//! - `small`: MADV_NOHUGEPAGE first, then stamped: small folios only.
//! - `mthp`: MADV_NOHUGEPAGE, a read of one bystander page of each THP
//!   (a PTE table under each pmd, so no fault can map a PMD THP there),
//!   MADV_HUGEPAGE again, then stamped: the anonymous faults allocate the
//!   mTHP sizes `hugepages-64kB` allows ([`MthpSetting`] sets it to
//!   `madvise` for the run).
//! - `swapped`: stamped, then MADV_PAGEOUT of the hot THP: it goes to the
//!   run's swap (the run prepares it when the state is in play), so the
//!   ops' first touches are swap-in faults.
//!
//! What each page holds afterwards is the model's [`super::model::Model`]
//! base: the creation stamp in the hot THP (the file's stamp on a fresh
//! `xfs-private` object), zero elsewhere.

use super::model::{initial_stamp, Layout, SLOTS};
use super::object::Object;
use crate::oracle::mem;
use anyhow::{bail, Result};
use mmrace_proto::oracle::UNIT;
pub use mmrace_proto::pairs::ObjState;

/// The anonymous 64 KiB mTHP setting.
pub const MTHP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled";
/// The top-level THP setting (`inherit` follows it).
const THP_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

/// The hot THP's bystander page `mthp` reads before stamping: residue
/// [`SLOTS`] - 1 is no thread's.
fn bystander(thp_start: usize) -> usize {
    thp_start + SLOTS - 1
}

fn madvise(obj: &dyn Object, advice: libc::c_int, what: &str) -> Result<()> {
    // SAFETY: advice on the fresh object's whole mapping.
    let r = unsafe { libc::madvise(obj.addr() as *mut libc::c_void, obj.bytes(), advice) };
    if r != 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn mprotect(addr: usize, prot: libc::c_int) -> Result<()> {
    // SAFETY: one page of the fresh object, which this thread owns alone.
    if unsafe { libc::mprotect(addr as *mut libc::c_void, UNIT, prot) } != 0 {
        bail!("mprotect: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Stamps every page of the hot THP with its creation stamp.
fn stamp_hot(obj: &dyn Object, layout: Layout) {
    for p in layout.hot() {
        // SAFETY: the fresh object is mapped read-write; no thread runs yet.
        unsafe { mem::stamp(obj.addr() + p * UNIT, &initial_stamp(p)) };
    }
}

/// MADV_PAGEOUT of the hot THP (reclaim of the folio: swapped out when
/// swap is on; a folio busy at the time stays in memory, which the
/// round's data check does not mind).
fn pageout_hot(obj: &dyn Object, layout: Layout) -> Result<()> {
    let hot = layout.hot();
    // SAFETY: advice on the fresh object's populated THP.
    let r = unsafe {
        libc::madvise(
            (obj.addr() + hot.start * UNIT) as *mut libc::c_void,
            hot.len() * UNIT,
            libc::MADV_PAGEOUT,
        )
    };
    if r != 0 {
        bail!("MADV_PAGEOUT: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Brings the fresh `obj` into `state`.
pub fn prepare(obj: &dyn Object, state: ObjState, layout: Layout) -> Result<()> {
    match state {
        ObjState::Populated => stamp_hot(obj, layout),
        ObjState::Fresh => {}
        ObjState::PteMapped => {
            stamp_hot(obj, layout);
            mprotect(obj.addr(), libc::PROT_READ)?;
            mprotect(obj.addr(), libc::PROT_READ | libc::PROT_WRITE)?;
        }
        ObjState::Small => {
            madvise(obj, libc::MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE")?;
            stamp_hot(obj, layout);
        }
        ObjState::Swapped => {
            stamp_hot(obj, layout);
            pageout_hot(obj, layout)?;
        }
        ObjState::Mthp => {
            madvise(obj, libc::MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE")?;
            for thp in (0..layout.pages).step_by(layout.per_thp) {
                let p = bystander(thp);
                // SAFETY: a mapped page of the object, read only: maps the
                // zero page by a PTE.
                unsafe { std::ptr::read_volatile((obj.addr() + p * UNIT) as *const u64) };
            }
            madvise(obj, libc::MADV_HUGEPAGE, "MADV_HUGEPAGE")?;
            stamp_hot(obj, layout);
        }
    }
    Ok(())
}

/// What an anonymous object in `state` is made of, as this kernel made
/// it: the hot THP's folio sizes (pagemap and kpageflags) and its
/// PMD-mapped bytes (smaps' AnonHugePages). One line for the run's
/// console, so a state that did not come out as described shows.
pub fn probe(state: ObjState, layout: Layout) -> Result<String> {
    use super::object::Maker;
    let obj = super::kinds::anon::AnonMaker.create(layout.bytes())?;
    prepare(obj.as_ref(), state, layout)?;
    let sizes = folio_sizes(obj.addr(), layout.hot().len())?;
    let huge = anon_huge_kb(obj.addr()).unwrap_or(0);
    let mut hist = std::collections::BTreeMap::<usize, usize>::new();
    for n in sizes {
        *hist.entry(n).or_default() += 1;
    }
    let folios: Vec<String> = hist
        .iter()
        .rev()
        .map(|(pages, n)| format!("{n} x {pages}"))
        .collect();
    let folios = if folios.is_empty() {
        "none faulted in".to_string()
    } else {
        format!("{} folios (count x pages)", folios.join(", "))
    };
    Ok(format!(
        "state {state} on anon: hot THP {folios}, AnonHugePages {huge} kB"
    ))
}

/// The sizes in pages of the folios backing `pages` pages at `addr`
/// (present pages only), from their pfns' compound head and tail flags.
fn folio_sizes(addr: usize, pages: usize) -> Result<Vec<usize>> {
    use std::os::unix::fs::FileExt;
    const PRESENT: u64 = 1 << 63;
    const PFN_MASK: u64 = (1 << 55) - 1;
    const HEAD: u64 = 1 << 15;
    const TAIL: u64 = 1 << 16;
    let pagemap = std::fs::File::open("/proc/self/pagemap")?;
    let flags = std::fs::File::open("/proc/kpageflags")?;
    let mut sizes: Vec<usize> = Vec::new();
    let mut b = [0u8; 8];
    for p in 0..pages {
        pagemap.read_exact_at(&mut b, ((addr / UNIT + p) * 8) as u64)?;
        let e = u64::from_le_bytes(b);
        if e & PRESENT == 0 || e & PFN_MASK == 0 {
            continue;
        }
        flags.read_exact_at(&mut b, (e & PFN_MASK) * 8)?;
        let f = u64::from_le_bytes(b);
        match sizes.last_mut() {
            Some(n) if f & TAIL != 0 && f & HEAD == 0 => *n += 1,
            _ => sizes.push(1),
        }
    }
    Ok(sizes)
}

/// smaps' AnonHugePages of the mapping that starts at `addr`.
fn anon_huge_kb(addr: usize) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps").ok()?;
    let start = format!("{addr:x}-");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&start));
    lines.next()?;
    lines
        .take_while(|l| !l.contains('-') || l.contains(':'))
        .find_map(|l| l.strip_prefix("AnonHugePages:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `hugepages-64kB/enabled` made to give MADV_HUGEPAGE mappings 64 KiB
/// folios for the run (`madvise`, when it gave none); restored on drop.
pub struct MthpSetting {
    before: Option<String>,
}

/// Whether a `hugepages-64kB/enabled` mode gives MADV_HUGEPAGE mappings
/// 64 KiB folios, `top` being the top-level mode (`inherit` follows it).
pub fn gives_mthp(mode: &str, top: &str) -> bool {
    match mode {
        "always" | "madvise" => true,
        "inherit" => matches!(top, "always" | "madvise"),
        _ => false,
    }
}

impl MthpSetting {
    /// Sets it up, or says why the `mthp` state cannot run.
    pub fn ensure() -> Result<(MthpSetting, Option<String>), String> {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|t| crate::mm::selected_mode(&t).unwrap_or_default())
                .map_err(|e| format!("no {p} ({e}): no multi-size THP"))
        };
        let mode = read(MTHP_ENABLED)?;
        let top = read(THP_ENABLED).unwrap_or_default();
        if gives_mthp(&mode, &top) {
            return Ok((MthpSetting { before: None }, None));
        }
        crate::kfile::write(MTHP_ENABLED, "madvise")
            .map_err(|e| format!("cannot set {MTHP_ENABLED} to madvise: {e}"))?;
        let said = format!("{MTHP_ENABLED} was {mode}, set to madvise for the run");
        Ok((MthpSetting { before: Some(mode) }, Some(said)))
    }
}

impl Drop for MthpSetting {
    fn drop(&mut self) {
        if let Some(m) = &self.before {
            let _ = crate::kfile::write(MTHP_ENABLED, m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mthp_modes() {
        assert!(gives_mthp("madvise", "never"));
        assert!(gives_mthp("inherit", "madvise"));
        assert!(!gives_mthp("inherit", "never"));
        assert!(!gives_mthp("never", "always"));
        assert_eq!(bystander(512), 515);
        assert_eq!(bystander(0) % SLOTS, SLOTS - 1);
    }
}
