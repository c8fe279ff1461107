//! Pieces more than one scenario (and the oracle) use. Nothing here
//! imports a scenario; scenarios import from here, never from each other.
//!
//! - [`cpu`]: pinning a thread, SCHED_FIFO.
//! - [`preempt`]: a SCHED_FIFO waker that preempts a racer mid-operation.
//! - [`uffd`]: the raw userfaultfd API; [`hold`]: a userfaultfd trap page
//!   that holds a kernel operation open mid-way.
//! - [`slots`]: counters and slots in a shared anonymous page that forked
//!   children bump and the driver reads.
//! - [`offsets`]: measured start offsets for racing threads (after LTP's
//!   fuzzy sync).
//! - [`rng`]: the seeded generator and random intervals.
//! - [`disk`]: the host's scratch XFS disk, found and mounted.
//! - [`khugepaged`]: khugepaged's scan interval, set for a run.
//! - [`program`]: one program run under the counters (`exec`,
//!   `selftests-mm`).
//! - [`monitor`]: the 100 ms watch of the ops and counters, timestamping
//!   the first race (thp-race, shell-baseline).
//! - [`measure`]: the end-of-run counter and vmstat deltas, their
//!   cross-checks, and op rates (thp-race, shell-baseline, bench).
//! - [`setup`]: setup checks of the seed's parties (thp-race,
//!   shell-baseline, bench).

pub mod cpu;
pub mod disk;
pub mod hold;
pub mod khugepaged;
pub mod measure;
pub mod monitor;
pub mod offsets;
pub mod preempt;
pub mod program;
pub mod rng;
pub mod setup;
pub mod slots;
pub mod uffd;
