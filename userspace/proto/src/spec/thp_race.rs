//! `thp-race`'s options, and the racer operations they choose from.

use serde::{Deserialize, Serialize};

/// Seed 000's race: a THP writer under soft-dirty clears, NUMA migration,
/// forced splits and SIGKILL/restart, amplified by racer threads.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// Do not clear the writer's soft-dirty bits (4 > /proc/PID/clear_refs).
    #[arg(long)]
    pub no_clear_refs: bool,

    /// Do not bounce the writer between the --nodes with migrate_pages(2).
    #[arg(long)]
    pub no_migrate: bool,

    /// Do not force THP splits through /sys/kernel/debug/split_huge_pages.
    #[arg(long)]
    pub no_splitter: bool,

    /// Do not run racer threads in the writer (the pmd_race amplifier).
    #[arg(long)]
    pub no_racers: bool,

    /// No refault: no rounds where the leading racer zaps the whole huge
    /// pmd (and faults it again) while the others split it; without racers,
    /// no free-running zap-and-refault thread.
    #[arg(long)]
    pub no_refault: bool,

    /// Never SIGKILL and restart the writer.
    #[arg(long)]
    pub no_kill: bool,

    /// The two NUMA nodes the migrate party moves the writer between.
    #[arg(long, value_delimiter = ',', default_value = "0,1", value_name = "A,B")]
    pub nodes: Vec<u32>,

    /// Shortest time between two writer kills, in milliseconds.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub kill_min_ms: u64,

    /// Longest time between two writer kills, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub kill_max_ms: u64,

    /// Racer threads released together on each fresh huge pmd.
    #[arg(long, default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u32).range(2..=MAX_RACERS as i64))]
    pub racer_threads: u32,

    /// The partial operations racers draw from (with refault rounds): one
    /// per round, done by every racer thread on its own page of the same
    /// huge pmd.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "OPS",
        default_value = "dontneed,mprotect,remap,mremap"
    )]
    pub racer_ops: Vec<RacerOp>,

    /// Size of the racers' region at 0x710000000000 in MiB (whole THPs).
    #[arg(long, default_value_t = 8, value_name = "MIB")]
    pub racer_mib: usize,

    /// Size of the seed's writer mapping at 0x700000000000 in MiB.
    #[arg(long, default_value_t = 20, value_name = "MIB")]
    pub writer_mib: usize,

    /// The writer's stores: `stamped` writes every 4 KiB page whole (a
    /// memset of a per-pass byte) with a stamp, and first checks that the
    /// page still holds the stamp of its previous pass (the data oracle);
    /// `memset` is the seed's plain memset, unchecked.
    #[arg(long, value_enum, default_value = "stamped", value_name = "MODE")]
    pub writer: WriterMode,

    /// Split only the writer's mapping, not also the racers' region.
    #[arg(long)]
    pub splitter_writer_only: bool,

    /// Pause after each clear_refs, migrate and splitter operation, in
    /// microseconds (0: back to back, like the seed's loops). clear_refs
    /// takes the writer's mmap write lock, so a hot loop of it slows the
    /// racers down.
    #[arg(long, default_value_t = 0, value_name = "US")]
    pub party_pause_us: u64,

    /// Nice value of every party but the racers (writer memset, clear_refs,
    /// migrate, splitter, refault when it runs without racers), so the racers win the two vCPUs when
    /// they need them. 0: all parties equal, as in the seed.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub party_nice: i32,

    /// Race-window amplification: mmrace.ko delays the entry of
    /// __split_huge_pmd() (the unlocked window before the page-table lock),
    /// e.g. `delay_us=200,every_nth=1` or `delay_us=100,probability_pct=50`.
    /// Knobs: delay_us (the module caps it), every_nth, probability_pct.
    /// Zeroed again when the run ends.
    #[arg(long, value_name = "KNOB=N,...")]
    pub amplify: Option<crate::spec::amplify::Spec>,
}

crate::spec::clap_default!(Args);

/// How the thp-race writer stores.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriterMode {
    /// Stamp every page and check the previous pass's stamp first.
    Stamped,
    /// The seed's memset over the whole region, never read back.
    Memset,
}

/// A partial operation on one 4 KiB page of a huge pmd.
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RacerOp {
    /// madvise(MADV_DONTNEED) of the page: zap_pmd_range's partial split.
    Dontneed,
    /// mprotect(PROT_READ) of the page, then back to read-write.
    Mprotect,
    /// munmap of the page, then a MAP_FIXED anonymous mapping in its place.
    Remap,
    /// mremap of the page to this thread's scratch slot.
    Mremap,
}

impl RacerOp {
    pub const ALL: [RacerOp; 4] = [
        RacerOp::Dontneed,
        RacerOp::Mprotect,
        RacerOp::Remap,
        RacerOp::Mremap,
    ];

    /// Its op counter (a party name in the driver's snapshots).
    pub fn counter_name(self) -> &'static str {
        match self {
            RacerOp::Dontneed => "racer_dontneed",
            RacerOp::Mprotect => "racer_mprotect",
            RacerOp::Remap => "racer_remap",
            RacerOp::Mremap => "racer_mremap",
        }
    }

    /// Its `--racer-ops` word.
    pub fn word(self) -> &'static str {
        match self {
            RacerOp::Dontneed => "dontneed",
            RacerOp::Mprotect => "mprotect",
            RacerOp::Remap => "remap",
            RacerOp::Mremap => "mremap",
        }
    }

    /// Whether it leaves the chunk's VMAs or mapping changed, so the next
    /// round on that chunk needs a fresh mapping.
    pub fn changes_layout(self) -> bool {
        self != RacerOp::Dontneed
    }
}

/// Most racer threads `--racer-threads` accepts.
pub const MAX_RACERS: usize = 16;
