//! What a console means: the crash patterns, the scan of the console, the
//! one `Finding` every consumer keys on and its title, the verdict, the times to catch, which finding is the
//! catch (`Expect`), and `mmrace-host judge` on a saved log.

pub mod catch;
pub mod expect;
pub mod finding;
pub mod patterns;
pub mod saved;
pub mod scan;
pub mod title;
pub mod verdict;
