//! The ops, by family.
//!
//! - [`data`]: store, touch, odirect: the ops that write stamps.
//! - [`fork`]: fork with copy-on-write stores in the child.
//! - [`migrate`]: migrate_pages, move_pages, mbind.
//! - [`mapping`]: split, partial munmap and mprotect, PROT_EXEC toggles,
//!   mlock, mremap.
//! - [`advice`]: MADV_COLLAPSE, DONTNEED, FREE, PAGEOUT, COLD,
//!   POPULATE_WRITE, WILLNEED.
//! - [`walk`]: clear_refs, smaps and pagemap readers, mincore.
//! - [`pipe`]: vmsplice of the thread's pages, read back.
//! - [`file`]: pwrite, pread, hole punch, truncate, fallocate, writeback
//!   on the object's file.
//! - [`swap`]: MADV_PAGEOUT and swap-in.
//! - [`ksm`]: MADV_MERGEABLE and ksmd's merge.
//! - [`uffd`]: userfaultfd COPY, ZEROPAGE, WRITEPROTECT, MOVE.
//! - [`numa`]: NUMA hinting faults.
//! - [`refault`]: zap and read again, window by window: fault-around.

pub mod advice;
pub mod data;
pub mod file;
pub mod fork;
pub mod ksm;
pub mod mapping;
pub mod migrate;
pub mod numa;
pub mod pipe;
pub mod refault;
pub mod swap;
pub mod uffd;
pub mod walk;
