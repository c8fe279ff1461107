//! The ops, by family.
//!
//! - [`data`]: store, touch, odirect: the ops that write stamps.
//! - [`fork`]: fork with copy-on-write stores in the child.
//! - [`migrate`]: migrate_pages, move_pages, mbind.
//! - [`mapping`]: split, partial munmap and mprotect, PROT_EXEC toggles,
//!   mlock, mremap.
//! - [`advice`]: MADV_COLLAPSE, DONTNEED, FREE, PAGEOUT, COLD.
//! - [`walk`]: clear_refs, smaps and pagemap readers.

pub mod advice;
pub mod data;
pub mod fork;
pub mod mapping;
pub mod migrate;
pub mod walk;
