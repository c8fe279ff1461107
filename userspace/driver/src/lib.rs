//! mmrace's in-guest driver as a library: the binary (`main.rs`) is a thin
//! shell that picks [`init::main`] (PID 1) or [`run::run`], and the pieces
//! here are public so scenarios and tests can use them without going
//! through the command line.
//!
//! - [`cli`]: the command line (clap), shared by argv and `mmrace.argv=`.
//! - [`init`]: PID 1 duties in the test guest (mounts, reaper, power-off).
//! - [`cmdline`]: finding `mmrace.argv="..."` on the kernel command line.
//! - [`module`]: loading mmrace.ko and reading its version and probes.
//! - [`counters`], [`vmstat`], [`numa`], [`mm`], [`oom`], [`kfile`]: kernel
//!   interfaces.
//! - [`oracle`]: the data oracle (stamps, checks, corruption reports from
//!   any process) and the taint reading.
//!   interfaces; [`inject`]: mmrace.ko's injection points.
//! - [`memenv`]: the guest's memory environment (swap on zram, hugetlb,
//!   huge tmpfs, the XFS disk, KSM, NUMA balancing, userfaultfd).
//! - [`stream`]: the periodic snapshot thread.
//! - [`run`]: one run, Hello to Result.
//! - [`scenario`]: the workloads; [`shared`]: what several of them use
//!   (a scenario never imports another).

pub mod child;
pub mod cli;
pub mod cmdline;
pub mod counters;
pub mod ctx;
pub mod init;
pub mod inject;
pub mod kfile;
pub mod meets;
pub mod meets_check;
pub mod memenv;
pub mod mm;
pub mod module;
pub mod numa;
pub mod oom;
pub mod oracle;
pub mod output;
pub mod reload;
pub mod run;
pub mod scenario;
pub mod shared;
pub mod signals;
pub mod stream;
pub mod sysinfo;
pub mod vmstat;
