//! What the in-guest driver and the host runner agree on.
//!
//! - [`counters`]: the counter list, read from the same header the kernel
//!   module is built from, and the parser for the debugfs `counters` file.
//! - [`wire`]: the line format the driver streams to the host.

pub mod counters;
pub mod wire;
