//! Counters that forked children increment and the driver reads.
//!
//! The writer and its racer threads live in a child process (they need their
//! own mm, one the driver can SIGKILL), but their work must show up in the
//! driver's per-party op counts (`ctx.op(..)`, streamed to the host). A
//! `MAP_SHARED | MAP_ANONYMOUS` page made before the fork is the same memory
//! in the driver and in every child forked after it, so the child bumps
//! atomics in it and the driver copies them into `ctx.op(..)`.
//!
//! Because every writer generation inherits the same page, counts simply
//! keep accumulating across SIGKILL/restart: a killed child's increments
//! stay in the page, and no per-child base bookkeeping is needed.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// `len` `AtomicU64`s in a shared anonymous mapping, unmapped on drop.
/// A child gets its own reference to the mapping at fork; the driver
/// dropping its `SharedSlots` does not take the memory from a live child.
pub struct SharedSlots {
    ptr: *mut AtomicU64,
    len: usize,
    bytes: usize,
}

// SAFETY: the mapping is only ever accessed through `&AtomicU64`, which is
// Sync; the pointer itself is owned by this value and freed once, on drop.
unsafe impl Send for SharedSlots {}
// SAFETY: as above: shared access is only through atomics.
unsafe impl Sync for SharedSlots {}

impl SharedSlots {
    pub fn new(len: usize) -> Result<Self> {
        let bytes = (len.max(1) * std::mem::size_of::<AtomicU64>()).next_multiple_of(4096);
        // SAFETY: a fresh anonymous mapping at an address the kernel picks;
        // no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!(
                "mmap of a shared counter page: {}",
                std::io::Error::last_os_error()
            );
        }
        // Fresh anonymous memory is zero, and a zero u64 is a valid
        // AtomicU64 of value 0 (same size and alignment as u64).
        Ok(SharedSlots {
            ptr: p.cast(),
            len,
            bytes,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slot `i` (panics when out of range: a programming error).
    pub fn get(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.len, "shared slot {i} of {}", self.len);
        // SAFETY: `i < len`, the mapping holds `len` zero-initialised u64s,
        // page-aligned, and lives as long as `self`.
        unsafe { &*self.ptr.add(i) }
    }
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference
        // into it outlives `self` (they all borrow from it).
        unsafe { libc::munmap(self.ptr.cast(), self.bytes) };
    }
}

/// Named shared counters: a child increments `counter(name)`, the driver
/// reads `totals()` or folds them into its op registry with `fold_into`.
pub struct SharedOps {
    slots: SharedSlots,
    names: Vec<&'static str>,
}

impl SharedOps {
    pub fn new(names: &[&'static str]) -> Result<Self> {
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != names.len() {
            bail!("duplicate shared op names in {names:?}");
        }
        Ok(SharedOps {
            slots: SharedSlots::new(names.len())?,
            names: names.to_vec(),
        })
    }

    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The counter called `name` (panics for an unknown name: the set of
    /// names is fixed at construction, so that is a programming error).
    pub fn counter(&self, name: &str) -> &AtomicU64 {
        let i = self
            .names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("no shared op {name:?} in {:?}", self.names));
        self.slots.get(i)
    }

    /// Current value of every counter.
    pub fn totals(&self) -> BTreeMap<String, u64> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), self.slots.get(i).load(Ordering::Relaxed)))
            .collect()
    }

    /// Copies every counter into `op(name)` (e.g. `|n| ctx.op(n)`). The
    /// shared values are cumulative over all children, so a plain store is
    /// right and folding any number of times is harmless.
    pub fn fold_into(&self, op: impl Fn(&str) -> std::sync::Arc<AtomicU64>) {
        for (i, n) in self.names.iter().enumerate() {
            op(n).store(self.slots.get(i).load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Forks a child that runs `f` and exits; waits for it.
    fn in_child(f: impl FnOnce()) {
        // SAFETY: the child only runs `f` (atomic increments, no locks or
        // allocation) and leaves with _exit, so forking from a threaded test
        // process is sound.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            f();
            // SAFETY: ends the child without running the parent's atexit
            // handlers or unwinding into the test harness.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child made above.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    #[test]
    fn children_counts_reach_parent_and_accumulate_across_children() {
        let ops = SharedOps::new(&["writer", "racer_rounds"]).unwrap();
        in_child(|| {
            ops.counter("writer").fetch_add(5, Ordering::Relaxed);
        });
        assert_eq!(ops.totals()["writer"], 5);
        // A second generation (as after a kill and restart) adds to the
        // first one's counts.
        in_child(|| {
            ops.counter("writer").fetch_add(2, Ordering::Relaxed);
            ops.counter("racer_rounds").fetch_add(1, Ordering::Relaxed);
        });
        let registry = crate::ctx::OpRegistry::default();
        ops.fold_into(|n| registry.get(n));
        ops.fold_into(|n| registry.get(n)); // idempotent
        let snap = registry.snapshot();
        assert_eq!(snap["writer"], 7);
        assert_eq!(snap["racer_rounds"], 1);
    }

    #[test]
    fn fold_stores_current_value() {
        let ops = SharedOps::new(&["a"]).unwrap();
        let target = Arc::new(AtomicU64::new(0));
        ops.counter("a").store(3, Ordering::Relaxed);
        ops.fold_into(|_| target.clone());
        assert_eq!(target.load(Ordering::Relaxed), 3);
        ops.counter("a").fetch_add(1, Ordering::Relaxed);
        ops.fold_into(|_| target.clone());
        assert_eq!(target.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn rejects_duplicates_and_unknown_names() {
        assert!(SharedOps::new(&["a", "a"]).is_err());
        let ops = SharedOps::new(&["a"]).unwrap();
        assert!(std::panic::catch_unwind(|| ops.counter("b").load(Ordering::Relaxed)).is_err());
    }

    #[test]
    fn slots_span_more_than_a_page() {
        let s = SharedSlots::new(1000).unwrap();
        s.get(999).store(1, Ordering::Relaxed);
        assert_eq!(s.get(999).load(Ordering::Relaxed), 1);
        assert_eq!(s.get(0).load(Ordering::Relaxed), 0);
        assert_eq!(s.len(), 1000);
    }
}
