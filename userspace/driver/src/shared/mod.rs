//! Pieces more than one scenario (and the oracle) use. Nothing here
//! imports a scenario; scenarios import from here, never from each other.
//!
//! - [`slots`]: counters and slots in a shared anonymous page that forked
//!   children bump and the driver reads.
//! - [`offsets`]: measured start offsets for racing threads (after LTP's
//!   fuzzy sync).
//! - [`rng`]: the seeded generator and random intervals.
//! - [`disk`]: the host's scratch XFS disk, found and mounted.
//! - [`khugepaged`]: khugepaged's scan interval, set for a run.
//! - [`program`]: one program run under the counters (`exec`,
//!   `selftests-mm`).

pub mod disk;
pub mod khugepaged;
pub mod offsets;
pub mod program;
pub mod rng;
pub mod slots;
