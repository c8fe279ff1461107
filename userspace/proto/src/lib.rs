//! What the in-guest driver and the host runner agree on.
//!
//! - [`counters`]: the counter list, read from the same header the kernel
//!   module is built from, and the parser for the debugfs `counters` file.
//! - [`crosscheck`]: module counters against /proc/vmstat, one mechanism
//!   with per-scenario rules.
//! - [`ops`]: the mm operations and memory kinds of the module's `meets`,
//!   from the header the module is built from; [`meets`]: that file, parsed.
//! - [`wire`]: the line format the driver streams to the host.
//! - [`results`]: what each scenario returns, typed.
//! - [`oracle`]: the data oracle's stamps and corruption reports, the
//!   kernel's taint flags.
//! - [`spec`]: the run description ([`spec::RunSpec`]) the host hands the
//!   driver, with every scenario's typed options.

pub mod counters;
pub mod crosscheck;
pub mod keys;
pub mod meets;
pub mod ops;
pub mod oracle;
pub mod pairs;
pub mod results;
pub mod rng;
pub mod spec;
pub mod wire;
