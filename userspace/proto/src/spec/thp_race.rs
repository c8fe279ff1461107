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

    /// The meets probes: off, or armed a share of the run.
    #[command(flatten)]
    #[serde(flatten)]
    pub meets: super::meets_args::MeetsArgs,

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

    /// Every MS milliseconds the racers give up their lead: in odd periods
    /// they run at the parties' nice (all parties equal, as in the seed),
    /// in even ones at their own. Races of the seed's own parties (writer,
    /// clear_refs, migration, kills) need the CPU the racers otherwise
    /// take; 0: the racers always lead.
    #[arg(long, default_value_t = 4000, value_name = "MS")]
    pub nice_flip_ms: u64,

    /// Race-window amplification: mmrace.ko busy-waits at injection points.
    /// Items separated by `;`: `delay_us=200,every_nth=1` delays the entry
    /// of __split_huge_pmd() (the unlocked window before the page-table
    /// lock); `at=SYMBOL[+OFFSET],delay_us=50,probability_pct=10` any kernel
    /// function; `op=OP,...` the entry of an operation of the module's table
    /// (mmrace_ops.h); `random[,delay_us=20,probability_pct=5]` a curated list of
    /// mm functions. Knobs: delay_us (the module caps it), every_nth,
    /// probability_pct. Disarmed again when the run ends.
    #[arg(long, value_name = "ITEM;...")]
    pub amplify: Option<crate::spec::amplify::Spec>,

    /// Do not read the writer's /proc files in a loop (the page-table
    /// walkers behind them race splits, migration and zaps).
    #[arg(long)]
    pub no_proc_walk: bool,

    /// The /proc/PID files the proc-walk party reads, one per operation,
    /// in turn.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "FILES",
        default_value = "pagemap,smaps,smaps-rollup,numa-maps"
    )]
    pub proc_files: Vec<ProcFile>,

    /// Do not migrate single pages of the writer with move_pages(2)
    /// (per-page migration, next to migrate_pages' whole-mm bounce; it
    /// needs the migrate party's nodes, so --no-migrate stops it too).
    #[arg(long)]
    pub no_move_pages: bool,

    /// Do not advise the writer's memory from the driver with
    /// process_madvise(2).
    #[arg(long)]
    pub no_madvise: bool,

    /// The advice the madvise party gives, one range per operation.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "OPS",
        default_value = "collapse,pageout,cold"
    )]
    pub madvise_ops: Vec<MadviseOp>,

    /// No churn threads in the writer (whole-THP operations: mprotect,
    /// mremap, MADV_FREE, mlock, MADV_COLLAPSE, zap... on a region of
    /// their own).
    #[arg(long)]
    pub no_churn: bool,

    /// The whole-THP operations the churn thread draws from.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "OPS",
        default_value = "mprotect,mremap,free,mlock,collapse,zap,zero,populate"
    )]
    pub churn_ops: Vec<ChurnOp>,

    /// Size of the churn region at 0x730000000000 in MiB (whole THPs).
    #[arg(long, default_value_t = 8, value_name = "MIB")]
    pub churn_mib: usize,

    /// Churn threads sharing the churn region, each drawing its own
    /// operations and THPs: with two or more, whole-THP operations meet
    /// each other (and each other's faults) on the same huge pmd, as a
    /// two-thread reproducer does.
    #[arg(long, default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_CHURN_THREADS as i64))]
    pub churn_threads: u32,

    /// No fork party (a thread of the writer that forks a child which
    /// writes one byte per THP of the writer and the racers' region and
    /// exits: huge pmds shared at fork, broken by copy-on-write on both
    /// sides, zapped at the child's exit).
    #[arg(long)]
    pub no_fork: bool,

    /// migrate_pages(2) threads bouncing the writer between the nodes.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=4))]
    pub migrate_threads: u32,

    /// Set khugepaged's scan_sleep_millisecs to this for the run (and
    /// pages_to_scan to 8 THPs' worth), restored after; 0 leaves both
    /// alone. khugepaged collapses the MADV_HUGEPAGE regions the racers and
    /// the splitter leave pte-mapped.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub khugepaged_scan_ms: u64,

    /// How racer rounds offset their members' starts: `fuzzy` (measure
    /// each side's syscall, as LTP's fuzzy sync does, and delay one side
    /// by a random time in [-window, +window]), `fixed` (half the rounds
    /// hold one member back by up to 2048 busy loops) or `none`.
    #[arg(long, value_enum, default_value = "fuzzy", value_name = "MODE")]
    pub offsets: OffsetMode,

    /// Swarm over time: every MS milliseconds the seed picks a random half
    /// of the enabled parties (at least two) and only those run until the
    /// next phase (the writer and the kills always). 0: every party all
    /// the time. Ignored with --sequential.
    #[arg(long, default_value_t = DEFAULT_PHASE_MS, value_name = "MS")]
    pub phase_ms: u64,

    /// Run the same parties one at a time, round robin, never two at once
    /// (one operation per turn): shows a bug is race-only.
    #[arg(long)]
    pub sequential: bool,

    /// Swarm testing: the seed picks a random subset of the enabled
    /// parties, racer ops, proc files, advice and churn ops (and the racer
    /// thread count). The resolved options are printed and recorded, and
    /// the same seed resolves them the same way.
    #[arg(long)]
    pub swarm: bool,
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
    /// madvise(MADV_FREE) of the page: splits the THP itself (folio split
    /// through the rmap) under the racing pmd splits.
    Free,
    /// mlock of the page, then munlock: VMA split and merge around it.
    Mlock,
}

impl RacerOp {
    pub const ALL: [RacerOp; 6] = [
        RacerOp::Dontneed,
        RacerOp::Mprotect,
        RacerOp::Remap,
        RacerOp::Mremap,
        RacerOp::Free,
        RacerOp::Mlock,
    ];

    /// Its op counter (a party name in the driver's snapshots).
    pub fn counter_name(self) -> &'static str {
        match self {
            RacerOp::Dontneed => "racer_dontneed",
            RacerOp::Mprotect => "racer_mprotect",
            RacerOp::Remap => "racer_remap",
            RacerOp::Mremap => "racer_mremap",
            RacerOp::Free => "racer_free",
            RacerOp::Mlock => "racer_mlock",
        }
    }

    /// Its `--racer-ops` word.
    pub fn word(self) -> &'static str {
        match self {
            RacerOp::Dontneed => "dontneed",
            RacerOp::Mprotect => "mprotect",
            RacerOp::Remap => "remap",
            RacerOp::Mremap => "mremap",
            RacerOp::Free => "free",
            RacerOp::Mlock => "mlock",
        }
    }

    /// Whether it leaves the chunk's VMAs or mapping changed, so the next
    /// round on that chunk needs a fresh mapping.
    pub fn changes_layout(self) -> bool {
        !matches!(self, RacerOp::Dontneed | RacerOp::Free)
    }
}

/// Most racer threads `--racer-threads` accepts.
pub const MAX_RACERS: usize = 16;

/// Implements `word()` (the option word) and `ALL` for a clap value enum.
macro_rules! words {
    ($t:ty { $($v:ident => $w:literal),+ $(,)? }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$(<$t>::$v),+];

            /// Its option word.
            pub fn word(self) -> &'static str {
                match self {
                    $(<$t>::$v => $w),+
                }
            }
        }
    };
}

/// A /proc/PID file of the writer whose read walks its page tables.
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum ProcFile {
    /// pagemap of the writer's regions (pagemap_pmd_range).
    Pagemap,
    /// smaps (smaps_pte_range, smaps_pmd_entry).
    Smaps,
    /// smaps_rollup: the same walk over every VMA, one lock hold.
    SmapsRollup,
    /// numa_maps (gather_pte_stats, the huge pmd under its lock).
    NumaMaps,
}
words!(ProcFile { Pagemap => "pagemap", Smaps => "smaps", SmapsRollup => "smaps-rollup", NumaMaps => "numa-maps" });

/// Advice the driver gives the writer's memory through process_madvise(2).
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MadviseOp {
    /// MADV_COLLAPSE (6.1+): synchronous khugepaged collapse of one THP's
    /// range (collapse_huge_page: drops the mmap lock, retakes it).
    Collapse,
    /// MADV_PAGEOUT: reclaim the range now (splits THPs it covers partly).
    Pageout,
    /// MADV_COLD: deactivate the range.
    Cold,
}
words!(MadviseOp { Collapse => "collapse", Pageout => "pageout", Cold => "cold" });

/// A whole-THP operation of the writer's churn thread.
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ChurnOp {
    /// mprotect of the whole 2 MiB read-only and back (change_huge_pmd).
    Mprotect,
    /// mremap of the whole THP away and back (move_huge_pmd).
    Mremap,
    /// MADV_FREE of the whole THP (madvise_free_huge_pmd), then a write.
    Free,
    /// mlock and munlock of the whole THP (mlock_vma_folio on a pmd).
    Mlock,
    /// Split one page off (MADV_DONTNEED of 4 KiB), then MADV_COLLAPSE.
    Collapse,
    /// MADV_DONTNEED of the whole THP (zap_huge_pmd), then a write.
    Zap,
    /// MADV_DONTNEED of the whole THP, a read (the huge zero page is
    /// mapped), then a write (copy-on-write of the huge zero page).
    Zero,
    /// MADV_DONTNEED of the whole THP, then MADV_POPULATE_WRITE (the fault
    /// taken through GUP, not from a user access).
    Populate,
}
words!(ChurnOp { Mprotect => "mprotect", Mremap => "mremap", Free => "free", Mlock => "mlock", Collapse => "collapse", Zap => "zap", Zero => "zero", Populate => "populate" });

/// The parties beyond the seed's and the racers (on by default since the
/// detection matrix showed they catch what the racers miss).
pub const WIDE_PARTIES: [&str; 5] = ["proc_walk", "move_pages", "madvise", "churn", "fork"];

/// The default `--phase-ms`: a random half of the parties at a time.
pub const DEFAULT_PHASE_MS: u64 = 4000;

/// The most churn threads `--churn-threads` takes.
pub const MAX_CHURN_THREADS: usize = 4;

/// How a racer round offsets its members' starts.
#[derive(
    clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OffsetMode {
    /// Measured windows (LTP fuzzy sync): one side delayed by a random
    /// time in [-the other's syscall time, +the leader's].
    Fuzzy,
    /// Half the rounds delay one member by 0..2048 busy loops (the old
    /// default, unmeasured).
    Fixed,
    /// Everyone starts at once.
    None,
}
words!(OffsetMode { Fuzzy => "fuzzy", Fixed => "fixed", None => "none" });

/// A random non-empty subset of `items` (each kept with probability 1/2),
/// in their order. `items` itself when it has at most one element.
fn subset<T: Copy>(rng: &mut crate::rng::Rng, items: &[T]) -> Vec<T> {
    if items.len() <= 1 {
        return items.to_vec();
    }
    loop {
        let v: Vec<T> = items
            .iter()
            .copied()
            .filter(|_| rng.below(2) == 0)
            .collect();
        if !v.is_empty() {
            return v;
        }
    }
}

impl Args {
    /// The party switches, as (name, `--no-NAME` switch): the set swarm
    /// mode draws from. Every party runs unless its switch is set.
    fn party_switches(&mut self) -> [(&'static str, &mut bool); 11] {
        [
            ("clear_refs", &mut self.no_clear_refs),
            ("migrate", &mut self.no_migrate),
            ("splitter", &mut self.no_splitter),
            ("racers", &mut self.no_racers),
            ("refault", &mut self.no_refault),
            ("kill", &mut self.no_kill),
            ("proc_walk", &mut self.no_proc_walk),
            ("move_pages", &mut self.no_move_pages),
            ("madvise", &mut self.no_madvise),
            ("churn", &mut self.no_churn),
            ("fork", &mut self.no_fork),
        ]
    }

    /// The parties by name (`clear_refs`, `migrate`...), with whether each
    /// one runs.
    pub fn parties(&self) -> Vec<(&'static str, bool)> {
        let mut me = self.clone();
        me.party_switches()
            .into_iter()
            .map(|(name, off)| (name, !*off))
            .collect()
    }

    /// These options with party `name` switched off (as `--no-NAME`); None
    /// for a name that is not a party.
    pub fn without_party(mut self, name: &str) -> Option<Args> {
        let (_, off) = self
            .party_switches()
            .into_iter()
            .find(|(n, _)| *n == name)?;
        *off = true;
        Some(self)
    }

    /// The seed's parties and the racers only, all of them all the time:
    /// thp-race's defaults before the wide parties and phases became the
    /// default (`--no-proc-walk --no-move-pages --no-madvise --no-churn
    /// --no-fork --phase-ms 0`).
    pub fn narrow(mut self) -> Args {
        for (name, switch) in self.party_switches() {
            if WIDE_PARTIES.contains(&name) {
                *switch = true;
            }
        }
        self.phase_ms = 0;
        self
    }

    /// The options the run really uses: `self` without `--swarm`, or, with
    /// it, the seed's subset: each enabled party stays on with probability
    /// 1/2 (at least two stay on), each op list keeps a random non-empty
    /// subset, and the racers get 2 or 3 threads. Swarm only switches
    /// things off, never on, so `--swarm --no-kill` never kills. The same
    /// seed always resolves the same way: the result, as [`Args::to_words`],
    /// replays the run without `--swarm`.
    pub fn resolve(&self, seed: u64) -> Args {
        let mut a = self.clone();
        if !a.swarm {
            return a;
        }
        a.swarm = false;
        let mut rng = crate::rng::Rng::stream(seed, "swarm", 0);
        let enabled: Vec<&'static str> = a
            .party_switches()
            .into_iter()
            .filter(|(_, off)| !**off)
            .map(|(n, _)| n)
            .collect();
        let keep = if enabled.len() <= 2 {
            enabled.clone()
        } else {
            loop {
                let keep = subset(&mut rng, &enabled);
                if keep.len() >= 2 {
                    break keep;
                }
            }
        };
        for (name, off) in a.party_switches() {
            if !keep.contains(&name) {
                *off = true;
            }
        }
        a.racer_ops = subset(&mut rng, &a.racer_ops);
        a.proc_files = subset(&mut rng, &a.proc_files);
        a.madvise_ops = subset(&mut rng, &a.madvise_ops);
        a.churn_ops = subset(&mut rng, &a.churn_ops);
        a.racer_threads = a.racer_threads.min(2 + rng.below(2) as u32);
        a
    }

    /// The option words that give these options on a command line (only
    /// those that differ from the defaults): `thp-race WORDS...` parses
    /// back to `self`.
    pub fn to_words(&self) -> Vec<String> {
        let d = Args::default();
        let mut w = self.switch_words();
        w.extend(self.meets.to_words());
        self.party_words(&d, &mut w);
        self.mix_words(&d, &mut w);
        w
    }

    /// The switches: the parties switched off, then the modes switched on.
    fn switch_words(&self) -> Vec<String> {
        let mut w: Vec<String> = Vec::new();
        let mut me = self.clone();
        for (name, off) in me.party_switches() {
            if *off {
                w.push(format!("--no-{}", name.replace('_', "-")));
            }
        }
        for (on, name) in [
            (self.splitter_writer_only, "--splitter-writer-only"),
            (self.sequential, "--sequential"),
            (self.swarm, "--swarm"),
        ] {
            if on {
                w.push(name.to_string());
            }
        }
        w
    }

    /// The options of the parties: nodes, kills, racers, writer, pauses,
    /// nice, amplification.
    fn party_words(&self, d: &Args, w: &mut Vec<String>) {
        list_opt(w, "--nodes", &self.nodes, &d.nodes, |n| n.to_string());
        opt(w, "--kill-min-ms", &self.kill_min_ms, &d.kill_min_ms);
        opt(w, "--kill-max-ms", &self.kill_max_ms, &d.kill_max_ms);
        opt(w, "--racer-threads", &self.racer_threads, &d.racer_threads);
        list_opt(w, "--racer-ops", &self.racer_ops, &d.racer_ops, |o| {
            o.word()
        });
        opt(w, "--racer-mib", &self.racer_mib, &d.racer_mib);
        opt(w, "--writer-mib", &self.writer_mib, &d.writer_mib);
        opt(
            w,
            "--party-pause-us",
            &self.party_pause_us,
            &d.party_pause_us,
        );
        opt(w, "--party-nice", &self.party_nice, &d.party_nice);
        opt(w, "--nice-flip-ms", &self.nice_flip_ms, &d.nice_flip_ms);
        if let Some(a) = &self.amplify {
            w.extend(["--amplify".to_string(), a.to_string()]);
        }
    }

    /// The options of what the parties do: proc files, madvise and churn
    /// ops, migration threads, khugepaged, offsets, phases.
    fn mix_words(&self, d: &Args, w: &mut Vec<String>) {
        list_opt(w, "--proc-files", &self.proc_files, &d.proc_files, |o| {
            o.word()
        });
        list_opt(w, "--madvise-ops", &self.madvise_ops, &d.madvise_ops, |o| {
            o.word()
        });
        list_opt(w, "--churn-ops", &self.churn_ops, &d.churn_ops, |o| {
            o.word()
        });
        opt(w, "--churn-mib", &self.churn_mib, &d.churn_mib);
        opt(w, "--churn-threads", &self.churn_threads, &d.churn_threads);
        opt(
            w,
            "--migrate-threads",
            &self.migrate_threads,
            &d.migrate_threads,
        );
        opt(
            w,
            "--khugepaged-scan-ms",
            &self.khugepaged_scan_ms,
            &d.khugepaged_scan_ms,
        );
        opt(w, "--offsets", &self.offsets.word(), &d.offsets.word());
        opt(w, "--phase-ms", &self.phase_ms, &d.phase_ms);
    }
}

/// Pushes `NAME VALUE` when the value differs from its default.
fn opt<T: PartialEq + ToString>(w: &mut Vec<String>, name: &str, value: &T, default: &T) {
    if value != default {
        w.extend([name.to_string(), value.to_string()]);
    }
}

/// Pushes `NAME WORD,WORD...` when the list differs from its default.
fn list_opt<T: PartialEq, S: AsRef<str>>(
    w: &mut Vec<String>,
    name: &str,
    list: &[T],
    default: &[T],
    word: impl Fn(&T) -> S,
) {
    if list != default {
        let words: Vec<S> = list.iter().map(word).collect();
        let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
        w.extend([name.to_string(), words.join(",")]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[String]) -> Args {
        let mut all = vec!["thp-race".to_string()];
        all.extend(words.iter().cloned());
        match crate::spec::Scenario::parse(&all).unwrap() {
            crate::spec::Scenario::ThpRace(a) => a,
            s => panic!("{s:?}"),
        }
    }

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn value_words_are_clap_names() {
        use clap::ValueEnum;
        for o in RacerOp::ALL {
            assert_eq!(o.to_possible_value().unwrap().get_name(), o.word());
        }
        for o in ProcFile::ALL {
            assert_eq!(o.to_possible_value().unwrap().get_name(), o.word());
        }
        for o in MadviseOp::ALL {
            assert_eq!(o.to_possible_value().unwrap().get_name(), o.word());
        }
        for o in ChurnOp::ALL {
            assert_eq!(o.to_possible_value().unwrap().get_name(), o.word());
        }
        for o in OffsetMode::ALL {
            assert_eq!(o.to_possible_value().unwrap().get_name(), o.word());
        }
        // The defaults take every value but racer ops free and mlock.
        let d = Args::default();
        assert_eq!(d.racer_ops, RacerOp::ALL[..4]);
        assert_eq!(d.proc_files, ProcFile::ALL);
        assert_eq!(d.madvise_ops, MadviseOp::ALL);
        assert_eq!(d.churn_ops, ChurnOp::ALL);
    }

    #[test]
    fn words_parse_back() {
        assert!(Args::default().to_words().is_empty());
        for s in [
            "--no-kill --racer-ops free,dontneed --sequential",
            "--swarm --no-fork --no-proc-walk --proc-files smaps --churn-mib 4 --offsets fixed",
            "--churn-threads 3 --churn-ops zero,populate,mremap",
            "--nice-flip-ms 0 --party-nice 5",
            "--no-churn --no-madvise --no-move-pages --no-racers --phase-ms 200",
            "--phase-ms 0 --churn-threads 1",
            "--amplify delay_us=10,every_nth=2 --migrate-threads 2 --khugepaged-scan-ms 50",
            "--nodes 1,0 --kill-min-ms 5 --kill-max-ms 9 --racer-threads 4 --party-nice 0",
        ] {
            let a = parse(&w(s));
            assert_eq!(parse(&a.to_words()), a, "{s}: {:?}", a.to_words());
        }
    }

    #[test]
    fn swarm_is_deterministic_per_seed_and_replayable() {
        let swarm = parse(&w("--swarm"));
        let mut distinct = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let a = swarm.resolve(seed);
            assert_eq!(a, swarm.resolve(seed), "seed {seed}");
            assert!(!a.swarm);
            // The printed words replay it without --swarm.
            assert_eq!(parse(&a.to_words()), a, "seed {seed}");
            let mut on = a.clone();
            let parties = on.party_switches().iter().filter(|(_, off)| !**off).count();
            assert!(parties >= 2, "seed {seed}: {a:?}");
            assert!(!a.racer_ops.is_empty() && !a.proc_files.is_empty());
            assert!(!a.madvise_ops.is_empty() && !a.churn_ops.is_empty());
            assert!((2..=3).contains(&a.racer_threads));
            distinct.insert(a.to_words());
        }
        // Seeds really choose differently.
        assert!(distinct.len() > 150, "{}", distinct.len());
        // Without --swarm nothing changes.
        assert_eq!(Args::default().resolve(5), Args::default());
    }

    #[test]
    fn narrow_is_the_old_default() {
        let n = Args::default().narrow();
        assert_eq!(
            n,
            parse(&w(
                "--no-proc-walk --no-move-pages --no-madvise --no-churn --no-fork --phase-ms 0"
            ))
        );
        assert_eq!(parse(&n.to_words()), n);
        // Every party but the wide ones still runs.
        let mut m = n.clone();
        for (name, off) in m.party_switches() {
            assert_eq!(*off, WIDE_PARTIES.contains(&name), "{name}");
        }
    }

    #[test]
    fn swarm_never_switches_a_party_on() {
        let a = parse(&w(
            "--swarm --no-kill --no-fork --no-churn --racer-ops dontneed",
        ));
        for seed in 0..100 {
            let r = a.resolve(seed);
            assert!(r.no_kill && r.no_fork && r.no_churn, "seed {seed}");
            assert_eq!(r.racer_ops, [RacerOp::Dontneed]);
        }
        // With two parties left, both stay.
        let mut two = Args {
            swarm: true,
            ..Args::default()
        };
        for (name, off) in two.party_switches() {
            *off = !matches!(name, "racers" | "migrate");
        }
        let r = two.resolve(3);
        assert!(!r.no_racers && !r.no_migrate && r.no_kill);
    }
}
