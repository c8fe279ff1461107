//! mmrace-host as a library, in parts:
//!
//! - [`vm`]: one guest: the accelerator, the QEMU command line, the
//!   monitor that watches both channels, the driver's messages, a run;
//! - [`judge`]: what a console means: the crash patterns, the scan, the
//!   titles, the verdict, the times to catch, which finding is the catch;
//! - [`out`]: what a run writes and prints: report.json, KTAP, the
//!   summary, `check`;
//! - [`fleet`]: many runs: batches, their merge, series side by side,
//!   matrix, bisect, bench, LAVA, the statistics;
//! - [`hunt`]: the bug-hunting campaign;
//! - [`variants`]: the kernel variant library's patch headers (`Expect:`,
//!   `Best:`...).
//!
//! [`args`] is the command line; `main.rs` dispatches it.

pub mod args;
pub mod fleet;
pub mod hunt;
pub mod judge;
pub mod out;
pub mod variants;
pub mod vm;
