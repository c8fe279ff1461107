//! A smaller machine for the rounds (`--leave-mib`): before the first
//! round, the guest's available memory beyond `--leave-mib` MiB is taken
//! into the hugetlb pool (`vm.nr_hugepages`), which nothing in the
//! scenario maps. Pool pages are out of the page allocator's reach, as if
//! the guest had that much less memory, so the rounds run out of memory
//! after filling `--leave-mib` MiB instead of the whole guest (under TCG
//! that fill, page by page, is what takes tens of seconds). Taking pool
//! pages zeroes nothing: it costs a fraction of a second. The pool is put
//! back when the run ends.
//!
//! Everything else stays as it is: the same OOM killer, reclaim, reaper,
//! writers and lock dependency, on less memory.

use anyhow::{bail, Context, Result};

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const MEMINFO: &str = "/proc/meminfo";

/// Pool pages to add so that about `leave_mib` MiB stay available, given
/// the available memory and the huge page size (KiB); 0 when there is no
/// more than that.
pub fn pages_to_take(available_kib: u64, leave_mib: u64, hpage_kib: u64) -> u64 {
    if hpage_kib == 0 {
        return 0;
    }
    available_kib.saturating_sub(leave_mib * 1024) / hpage_kib
}

/// A `/proc/meminfo` field, in KiB.
pub fn meminfo_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The pool taken for the run; dropping it gives the pages back.
#[derive(Debug)]
pub struct Reserve {
    before: u64,
    /// Pages actually added.
    pub pages: u64,
    pub hpage_kib: u64,
    /// MemAvailable after the pool was taken, KiB.
    pub left_kib: u64,
}

impl Reserve {
    /// Takes the pool so that about `leave_mib` MiB stay available.
    pub fn take(leave_mib: u64) -> Result<Reserve> {
        let info = std::fs::read_to_string(MEMINFO).context("cannot read /proc/meminfo")?;
        let (Some(avail), Some(hpage_kib)) = (
            meminfo_kib(&info, "MemAvailable"),
            meminfo_kib(&info, "Hugepagesize"),
        ) else {
            bail!("--leave-mib: no MemAvailable or Hugepagesize in /proc/meminfo (no HUGETLBFS?)");
        };
        let before = read_nr_hugepages()?;
        let want = pages_to_take(avail, leave_mib, hpage_kib);
        crate::kfile::write(NR_HUGEPAGES, &format!("{}\n", before + want))
            .with_context(|| format!("--leave-mib: cannot write {NR_HUGEPAGES}"))?;
        let pages = read_nr_hugepages()?.saturating_sub(before);
        let info = std::fs::read_to_string(MEMINFO).unwrap_or_default();
        Ok(Reserve {
            before,
            pages,
            hpage_kib,
            left_kib: meminfo_kib(&info, "MemAvailable").unwrap_or(0),
        })
    }

    /// MiB in the pool.
    pub fn mib(&self) -> u64 {
        self.pages * self.hpage_kib / 1024
    }
}

impl Drop for Reserve {
    fn drop(&mut self) {
        let _ = crate::kfile::write(NR_HUGEPAGES, &format!("{}\n", self.before));
    }
}

fn read_nr_hugepages() -> Result<u64> {
    let t = std::fs::read_to_string(NR_HUGEPAGES)
        .with_context(|| format!("cannot read {NR_HUGEPAGES}"))?;
    t.trim()
        .parse()
        .with_context(|| format!("bad {NR_HUGEPAGES}: {t:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_is_beyond_the_margin_in_whole_pages() {
        // 900 MiB available, leave 256: 644 MiB, 322 pages of 2 MiB.
        assert_eq!(pages_to_take(900 * 1024, 256, 2048), 322);
        assert_eq!(pages_to_take(900 * 1024 + 1000, 256, 2048), 322);
        assert_eq!(pages_to_take(200 * 1024, 256, 2048), 0);
        assert_eq!(pages_to_take(900 * 1024, 256, 0), 0);
    }

    #[test]
    fn meminfo_fields() {
        let t = "MemTotal:        1004000 kB\nMemAvailable:     812345 kB\nHugepagesize:       2048 kB\n";
        assert_eq!(meminfo_kib(t, "MemAvailable"), Some(812_345));
        assert_eq!(meminfo_kib(t, "Hugepagesize"), Some(2048));
        assert_eq!(meminfo_kib(t, "Mem"), None);
        assert_eq!(meminfo_kib(t, "MemFree"), None);
    }

    #[test]
    fn meminfo_of_this_machine() {
        let t = std::fs::read_to_string(MEMINFO).unwrap();
        assert!(meminfo_kib(&t, "MemTotal").unwrap() > 0);
    }
}
