//! Where the scenario's memory lives and what one writer child is asked to
//! run. Fixed addresses, as in the seed: the writer at 0x700000000000 (the
//! seed's mmap), the racers' region next to it, and a scratch area where
//! mremap'd pages land. All three are far below where the kernel places
//! ordinary mappings (just under the stack near 0x7fff...), so they never
//! collide with the driver's own heap or libraries.

use super::baton::Baton;
use super::racers::RacerOp;
use crate::oracle::Party;
use crate::shared::offsets::Book;
pub use mmrace_proto::spec::thp_race::WriterMode;
use mmrace_proto::spec::thp_race::{ChurnOp, OffsetMode};

/// The seed's fixed writer address.
pub const WRITER_ADDR: usize = 0x7000_0000_0000;
/// The racers' region (a separate VMA, so racer splits and holes never
/// touch the seed's writer mapping).
pub const RACER_ADDR: usize = 0x7100_0000_0000;
/// mremap destinations: one pmd-sized slot per racer thread.
pub const SCRATCH_ADDR: usize = 0x7200_0000_0000;
/// The churn thread's region (whole-THP operations, `--churn-ops`).
pub const CHURN_ADDR: usize = 0x7300_0000_0000;
/// Where the churn thread's mremap moves a THP to (and back from).
pub const CHURN_SCRATCH_ADDR: usize = 0x73f0_0000_0000;

pub const MIB: usize = 1 << 20;

/// The largest writer or racer region `Args` accepts, in MiB.
pub const MAX_REGION_MIB: usize = 1024;

// The largest regions must still leave the three areas apart.
const _: () = assert!(WRITER_ADDR + MAX_REGION_MIB * MIB <= RACER_ADDR);
const _: () = assert!(RACER_ADDR + MAX_REGION_MIB * MIB <= SCRATCH_ADDR);
const _: () = assert!(SCRATCH_ADDR + super::racers::MAX_RACERS * 1024 * MIB <= CHURN_ADDR);
const _: () = assert!(CHURN_ADDR + MAX_REGION_MIB * MIB <= CHURN_SCRATCH_ADDR);
const _: () = assert!(
    CHURN_SCRATCH_ADDR + mmrace_proto::spec::thp_race::MAX_CHURN_THREADS * 1024 * MIB
        <= 0x7400_0000_0000
);

/// A fixed range of the writer child's address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub addr: usize,
    pub len: usize,
}

impl Region {
    pub fn end(&self) -> usize {
        self.addr + self.len
    }

    /// The split_huge_pages debugfs line for this range of process `pid`:
    /// `pid,0xstart,0xend` (the kernel's format wants the `0x`).
    pub fn split_line(&self, pid: i32) -> String {
        format!("{pid},{:#x},{:#x}\n", self.addr, self.end())
    }
}

/// What the racer threads of a writer child do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RacerPlan {
    pub threads: usize,
    pub ops: Vec<RacerOp>,
}

/// What the writer's churn thread does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnPlan {
    pub region: Region,
    pub ops: Vec<ChurnOp>,
    /// Churn threads sharing the region (1 under `--sequential`).
    pub threads: usize,
}

/// Everything a writer child needs, fixed before the fork: plain data, so
/// the child never has to reach into the driver's shared state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildPlan {
    pub seed: u64,
    /// 0 for the first writer, +1 per restart: picks the racers' RNG stream.
    pub generation: u64,
    pub page: usize,
    pub pmd: usize,
    pub writer: Region,
    /// The racers' region, mapped when racers or refault are on.
    pub racer_region: Option<Region>,
    pub racers: Option<RacerPlan>,
    pub refault: bool,
    /// Nice value of the writer's memset loop and the refault thread (the
    /// racers keep the driver's).
    pub party_nice: i32,
    /// `--nice-flip-ms` (0 under `--sequential`).
    pub nice_flip_ms: u64,
    /// How racer rounds offset their members.
    pub offsets: OffsetMode,
    /// The racers' offset statistics (shared with the driver), set by the
    /// run before the first fork.
    pub book: Option<Book>,
    /// `--sequential`: the turn baton, shared with the driver's parties.
    pub baton: Option<Baton>,
    /// `--phase-ms`: the active parties, shared with the driver.
    pub phases: Option<super::phases::Phases>,
    pub churn: Option<ChurnPlan>,
    /// The fork (copy-on-write) party.
    pub fork: bool,
    pub writer_mode: WriterMode,
    /// The child's op rings in the data oracle (registered by the driver
    /// before the fork).
    pub parties: ChildParties,
}

/// The oracle rings of the writer child's parties. The default shares ring
/// 0 among all of them: [`ChildParties::register`] gives each its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildParties {
    pub writer: Party,
    /// Racer thread `i` uses `racers[i]` (the leader is racer 0).
    pub racers: [Party; super::racers::MAX_RACERS],
    pub refault: Party,
}

impl ChildParties {
    pub fn register(oracle: &crate::oracle::Oracle, racers: usize) -> ChildParties {
        let mut r = [oracle.party("racer0"); super::racers::MAX_RACERS];
        for (i, p) in r.iter_mut().enumerate().take(racers) {
            *p = oracle.party(&format!("racer{i}"));
        }
        ChildParties {
            writer: oracle.party("writer"),
            racers: r,
            refault: oracle.party("refault"),
        }
    }
}

impl ChildPlan {
    /// The mremap destination of racer thread `i`.
    pub fn scratch(&self, i: usize) -> usize {
        SCRATCH_ADDR + i * self.pmd
    }

    /// How many pmd-sized chunks the racers' region holds.
    pub fn chunks(&self) -> usize {
        self.racer_region.map_or(0, |r| r.len / self.pmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_line_is_the_kernels_format() {
        let r = Region {
            addr: WRITER_ADDR,
            len: 20 * MIB,
        };
        // The end is 20 MiB past the start, in full.
        assert_eq!(r.split_line(123), "123,0x700000000000,0x700001400000\n");
    }
}
