//! The `pairs` scenario's vocabulary: the user-level operations it races
//! two (or three) at a time ([`UserOp`]), the kinds of memory object they
//! meet on ([`ObjKind`]), and the catalogue ([`catalogue`]): which kinds each
//! operation applies to and which module operations (`module/mmrace_ops.h`)
//! it drives, so coverage can be read from the module's `meets`.

pub mod catalogue;
pub mod meetable;

use serde::{Deserialize, Serialize};

/// Declares one of the vocabulary's enums, with the derives they share
/// (command-line values, serde names in kebab-case).
macro_rules! vocabulary {
    ($(#[$meta:meta])* pub enum $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(
            clap::ValueEnum,
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            Serialize,
            Deserialize,
        )]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($body)* }
    };
}

vocabulary! {
/// The kind of the fresh object a round's operations meet on.
pub enum ObjKind {
    /// Private anonymous memory, MADV_HUGEPAGE.
    Anon,
    /// MAP_SHARED | MAP_ANONYMOUS (shmem), MADV_HUGEPAGE.
    SharedAnon,
    /// A memfd mapped MAP_SHARED, MADV_HUGEPAGE.
    Memfd,
    /// A file on a tmpfs mounted huge=always, mapped MAP_SHARED.
    Tmpfs,
    /// A file on the XFS scratch disk, mapped MAP_SHARED.
    XfsShared,
    /// A file on the XFS scratch disk, mapped MAP_PRIVATE.
    XfsPrivate,
    /// hugetlbfs (MAP_HUGETLB, 2 MiB pages).
    Hugetlb,
    /// Private anonymous memory merged by KSM.
    Ksm,
}
}

vocabulary! {
/// The state a round's object starts in (`--states`): what is faulted in,
/// by which folios, mapped how, before the ops race on it. Which kinds
/// each applies to is [`catalogue::state_applies`].
pub enum ObjState {
    /// The hot THP faulted in and stamped (PMD-mapped where the kind gives
    /// THPs), the cold one unpopulated: the start state before states
    /// existed.
    Populated,
    /// Nothing faulted in: the first faults (and, on private anonymous
    /// memory, the first `anon_vma_prepare()`) are the ops' own.
    Fresh,
    /// The hot THP stamped, then its PMD split by an mprotect of one page
    /// and back: the folio intact, mapped by 512 PTEs.
    PteMapped,
    /// MADV_NOHUGEPAGE: small folios only, pte-level faults, zaps and
    /// page-table moves; the hot half stamped.
    Small,
    /// Multi-size THP: the hot half stamped into 64 KiB anonymous folios
    /// (`hugepages-64kB`), mapped by PTEs.
    Mthp,
    /// The hot THP stamped, then paged out (MADV_PAGEOUT to the run's
    /// swap): the ops' first touches are swap-in faults, several threads
    /// at once on one (large) swap entry, and the ops meet swap entries
    /// in the page tables.
    Swapped,
}
}

impl ObjState {
    pub const ALL: [ObjState; 6] = [
        ObjState::Populated,
        ObjState::Fresh,
        ObjState::PteMapped,
        ObjState::Small,
        ObjState::Mthp,
        ObjState::Swapped,
    ];

    /// Its option word.
    pub fn word(self) -> &'static str {
        match self {
            ObjState::Populated => "populated",
            ObjState::Fresh => "fresh",
            ObjState::PteMapped => "pte-mapped",
            ObjState::Small => "small",
            ObjState::Mthp => "mthp",
            ObjState::Swapped => "swapped",
        }
    }

    /// Its index in [`ObjState::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the engine stamps the hot THP before the round (all but
    /// `fresh`).
    pub fn stamped(self) -> bool {
        self != ObjState::Fresh
    }
}

impl std::fmt::Display for ObjState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

impl ObjKind {
    pub const ALL: [ObjKind; 8] = [
        ObjKind::Anon,
        ObjKind::SharedAnon,
        ObjKind::Memfd,
        ObjKind::Tmpfs,
        ObjKind::XfsShared,
        ObjKind::XfsPrivate,
        ObjKind::Hugetlb,
        ObjKind::Ksm,
    ];

    /// Its option word.
    pub fn word(self) -> &'static str {
        match self {
            ObjKind::Anon => "anon",
            ObjKind::SharedAnon => "shared-anon",
            ObjKind::Memfd => "memfd",
            ObjKind::Tmpfs => "tmpfs",
            ObjKind::XfsShared => "xfs-shared",
            ObjKind::XfsPrivate => "xfs-private",
            ObjKind::Hugetlb => "hugetlb",
            ObjKind::Ksm => "ksm",
        }
    }

    /// The module's memory kind (`ops::kind::*`) its folios are counted as.
    pub fn module_kind(self) -> &'static str {
        use crate::ops::kind;
        match self {
            ObjKind::Anon => kind::ANON,
            ObjKind::SharedAnon | ObjKind::Memfd | ObjKind::Tmpfs => kind::SHMEM,
            ObjKind::XfsShared | ObjKind::XfsPrivate => kind::FILE,
            ObjKind::Hugetlb => kind::HUGETLB,
            ObjKind::Ksm => kind::KSM,
        }
    }

    /// Whether a store is private to the process (and a fork child's
    /// stores are not seen by the parent).
    pub fn private(self) -> bool {
        matches!(
            self,
            ObjKind::Anon | ObjKind::XfsPrivate | ObjKind::Hugetlb | ObjKind::Ksm
        )
    }

    /// What MADV_DONTNEED leaves in a page (see [`Zap`]).
    pub fn zap(self) -> Zap {
        match self {
            ObjKind::Anon | ObjKind::Ksm | ObjKind::Hugetlb => Zap::Zero,
            ObjKind::XfsPrivate => Zap::Reverts,
            _ => Zap::Keeps,
        }
    }
}

impl std::fmt::Display for ObjKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// What zapping a page (MADV_DONTNEED, MADV_FREE) leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Zap {
    /// Private anonymous: the page reads zero afterwards.
    Zero,
    /// Shared or file-backed: the data stays (refaulted from the page
    /// cache).
    Keeps,
    /// Private file: the page reads what the file holds (the object's
    /// creation stamp).
    Reverts,
}

vocabulary! {
/// A user-level operation of `pairs`: what one racing thread does once
/// (or a short burst of) in a round.
pub enum UserOp {
    /// Stores stamps into the thread's own pages of the populated THP, pass
    /// after pass (through /proc/self/mem in rounds where mremap moves the
    /// object).
    Store,
    /// First-touch faults: reads then writes the thread's own pages of the
    /// object's unpopulated THP.
    Touch,
    /// fork(): the child writes its own stamps into the thread's pages and
    /// checks it sees them; the parent waits (copy-on-write on private
    /// kinds).
    Fork,
    /// migrate_pages(2) of the whole worker between the two nodes.
    MigratePages,
    /// move_pages(2) of the object's pages to the other node.
    MovePages,
    /// mbind(MPOL_BIND, MPOL_MF_MOVE) of the object to the other node.
    Mbind,
    /// /sys/kernel/debug/split_huge_pages for the worker's object range.
    Split,
    /// munmap of the object's tail pages (no store goes there): splits the
    /// huge pmd.
    MunmapPart,
    /// mprotect(PROT_READ) of the object's tail pages: splits the VMA and
    /// the huge pmd.
    MprotectPart,
    /// MADV_COLLAPSE of the object.
    Collapse,
    /// MADV_DONTNEED of the populated THP.
    Dontneed,
    /// MADV_FREE of the populated THP (private anonymous only).
    Free,
    /// MADV_PAGEOUT of the object.
    Pageout,
    /// MADV_COLD of the object.
    Cold,
    /// mprotect toggling PROT_EXEC on the whole object (protections change,
    /// stores never fault on them).
    MprotectExec,
    /// mlock then munlock of the object.
    Mlock,
    /// `4 > /proc/self/clear_refs` (soft-dirty clear).
    ClearRefs,
    /// A read of /proc/self/smaps.
    Smaps,
    /// A read of /proc/self/pagemap over the object.
    Pagemap,
    /// O_DIRECT reads from a file on the XFS scratch disk into the thread's
    /// own pages (skipped without the disk).
    Odirect,
    /// mremap of the object to another address and back (the object
    /// moves: paired only with ops that tolerate it).
    Mremap,
    /// pwrite(2) of stamps into the thread's own pages of the populated
    /// THP, beside the mapping (shared file kinds).
    Pwrite,
    /// pread(2) of the thread's own pages, compared with the mapping
    /// (shared kinds) or with the file's content (private kinds).
    Pread,
    /// fallocate(PUNCH_HOLE) of some of the thread's own pages of the
    /// populated THP: they must read zero, then are stamped again.
    PunchHole,
    /// ftruncate of the object's tail off and back: the tail reads zero.
    Truncate,
    /// fallocate(2) mode 0 over the whole file.
    Fallocate,
    /// fsync(2), then sync_file_range(2) over the object: writeback.
    Writeback,
    /// MADV_PAGEOUT of the populated THP (to zram swap), then reads of
    /// the thread's own pages: swap-in faults.
    Swapin,
    /// MADV_MERGEABLE of the object and a wait for ksmd's scans (KSM
    /// merges identical pages; a later write unmerges).
    KsmMerge,
    /// userfaultfd on the thread's own stretch of the unpopulated THP:
    /// UFFDIO_COPY, ZEROPAGE, MOVE and WRITEPROTECT; a copy lands once.
    Uffd,
    /// Reads of the thread's own pages for a while with NUMA balancing
    /// on: NUMA hinting faults.
    NumaHint,
    /// MADV_POPULATE_READ (even rounds) or MADV_POPULATE_WRITE (odd ones)
    /// of the whole object: faults through GUP (faultin_page), read faults
    /// mapping around on files; the data unchanged.
    Populate,
    /// vmsplice(2) of the thread's own pages of the populated THP into a
    /// pipe (GUP-fast references, no pin), read back: the pipe must hold
    /// what the pages held.
    Vmsplice,
    /// mincore(2) of the object: a read-only page-table walk.
    Mincore,
    /// MADV_WILLNEED of the object: swap or page-cache readahead.
    Willneed,
    /// posix_fadvise(POSIX_FADV_DONTNEED) of the object's file: writeback
    /// started, then the clean, unmapped page-cache folios evicted
    /// (mapping_evict_folio); the data stays (XFS kinds).
    Invalidate,
    /// Compaction of one node (`/sys/devices/system/node/nodeN/compact`):
    /// small folios migrated by the compaction scanners, which look at
    /// every folio of the node without its locks; the data stays.
    Compact,
    /// Stamps written into the thread's own pages of the populated THP
    /// by the kernel: writes to /proc/self/mem (GUP with FOLL_FORCE, then
    /// a write through the kernel's mapping of the page).
    ProcMem,
    /// MADV_DONTNEED window by window (64 KiB) over the first pages of
    /// the populated THP, where the file ops work, each followed by a
    /// read of one page of it: read faults on page-cache folios already
    /// there, which map the window around them (filemap_map_pages) on
    /// file and shmem kinds.
    Refault,
}
}

impl UserOp {
    pub const ALL: [UserOp; 39] = [
        UserOp::Store,
        UserOp::Touch,
        UserOp::Fork,
        UserOp::MigratePages,
        UserOp::MovePages,
        UserOp::Mbind,
        UserOp::Split,
        UserOp::MunmapPart,
        UserOp::MprotectPart,
        UserOp::Collapse,
        UserOp::Dontneed,
        UserOp::Free,
        UserOp::Pageout,
        UserOp::Cold,
        UserOp::MprotectExec,
        UserOp::Mlock,
        UserOp::ClearRefs,
        UserOp::Smaps,
        UserOp::Pagemap,
        UserOp::Odirect,
        UserOp::Mremap,
        UserOp::Pwrite,
        UserOp::Pread,
        UserOp::PunchHole,
        UserOp::Truncate,
        UserOp::Fallocate,
        UserOp::Writeback,
        UserOp::Swapin,
        UserOp::KsmMerge,
        UserOp::Uffd,
        UserOp::NumaHint,
        UserOp::Populate,
        UserOp::Vmsplice,
        UserOp::Mincore,
        UserOp::Willneed,
        UserOp::Invalidate,
        UserOp::Compact,
        UserOp::ProcMem,
        UserOp::Refault,
    ];

    /// Its option word.
    pub fn word(self) -> &'static str {
        match self {
            UserOp::Store => "store",
            UserOp::Touch => "touch",
            UserOp::Fork => "fork",
            UserOp::MigratePages => "migrate-pages",
            UserOp::MovePages => "move-pages",
            UserOp::Mbind => "mbind",
            UserOp::Split => "split",
            UserOp::MunmapPart => "munmap-part",
            UserOp::MprotectPart => "mprotect-part",
            UserOp::Collapse => "collapse",
            UserOp::Dontneed => "dontneed",
            UserOp::Free => "free",
            UserOp::Pageout => "pageout",
            UserOp::Cold => "cold",
            UserOp::MprotectExec => "mprotect-exec",
            UserOp::Mlock => "mlock",
            UserOp::ClearRefs => "clear-refs",
            UserOp::Smaps => "smaps",
            UserOp::Pagemap => "pagemap",
            UserOp::Odirect => "odirect",
            UserOp::Mremap => "mremap",
            UserOp::Pwrite => "pwrite",
            UserOp::Pread => "pread",
            UserOp::PunchHole => "punch-hole",
            UserOp::Truncate => "truncate",
            UserOp::Fallocate => "fallocate",
            UserOp::Writeback => "writeback",
            UserOp::Swapin => "swapin",
            UserOp::KsmMerge => "ksm-merge",
            UserOp::Uffd => "uffd",
            UserOp::NumaHint => "numa-hint",
            UserOp::Populate => "populate",
            UserOp::Vmsplice => "vmsplice",
            UserOp::Mincore => "mincore",
            UserOp::Willneed => "willneed",
            UserOp::Invalidate => "invalidate",
            UserOp::Compact => "compact",
            UserOp::ProcMem => "proc-mem",
            UserOp::Refault => "refault",
        }
    }

    /// Its index in [`UserOp::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Moves the object to another address while it runs.
    pub fn moves(self) -> bool {
        self == UserOp::Mremap
    }

    /// Safe to run while another op moves the object: it only makes
    /// syscalls that fail cleanly on an unmapped address (or takes no
    /// address), never a user access to the object. `store` qualifies by
    /// storing through /proc/self/mem in such rounds.
    pub fn survives_move(self) -> bool {
        !matches!(
            self,
            UserOp::Touch
                | UserOp::Fork
                | UserOp::Odirect
                | UserOp::Mremap
                | UserOp::Pwrite
                | UserOp::Pread
                | UserOp::PunchHole
                | UserOp::Swapin
                | UserOp::Uffd
                | UserOp::NumaHint
                | UserOp::Vmsplice
                | UserOp::Refault
        )
    }
}

impl std::fmt::Display for UserOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// The ops of one slice: a pair, or now and then a triple. Sorted, so
/// `(a, b)` and `(b, a)` are one pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Combo(pub Vec<UserOp>);

impl Combo {
    pub fn new(mut ops: Vec<UserOp>) -> Combo {
        ops.sort();
        Combo(ops)
    }

    /// `store+migrate-pages`.
    pub fn name(&self) -> String {
        self.0
            .iter()
            .map(|o| o.word())
            .collect::<Vec<_>>()
            .join("+")
    }

    /// Whether these ops may run together in one round (see
    /// [`UserOp::survives_move`]).
    pub fn compatible(&self) -> bool {
        let moving = self.0.iter().filter(|o| o.moves()).count();
        let moves_ok =
            moving == 0 || (moving == 1 && self.0.iter().all(|o| o.moves() || o.survives_move()));
        moves_ok && !self.uffd_unpredictable() && !self.faults_into_uffd()
    }

    /// `uffd` with `populate` or `refault`: MADV_POPULATE_WRITE, or
    /// refault's reads, fault the uffd op's registered, still missing
    /// pages, and nobody answers those faults (the op fills its pages
    /// itself), so the round would never end.
    fn faults_into_uffd(&self) -> bool {
        self.0.contains(&UserOp::Uffd)
            && self
                .0
                .iter()
                .any(|o| matches!(o, UserOp::Populate | UserOp::Refault))
    }

    /// `uffd` twice, or `uffd` with an op that reopens holes (`truncate`,
    /// `punch-hole`): which UFFDIO_COPY lands is then a legal race the
    /// model cannot predict (a copy into a hole the other op just made
    /// is allowed), so its "lands exactly once" check would flag a clean
    /// kernel (seen: truncate+uffd+uffd on tmpfs, a later copy's stamp).
    fn uffd_unpredictable(&self) -> bool {
        let uffds = self.0.iter().filter(|o| **o == UserOp::Uffd).count();
        let holes = self
            .0
            .iter()
            .any(|o| matches!(o, UserOp::Truncate | UserOp::PunchHole));
        uffds > 1 || (uffds == 1 && holes)
    }
}

impl std::fmt::Display for Combo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Bits of one op number in a context word: op index + 1, 0 for none
/// (so at most 63 ops).
const OP_BITS: u32 = 6;
/// Where the 4-bit kind starts, after three op numbers.
const KIND_SHIFT: u32 = 3 * OP_BITS;
/// Where the 3-bit start state starts, after the kind.
const STATE_SHIFT: u32 = KIND_SHIFT + 4;
/// Where the round starts.
const ROUND_SHIFT: u32 = STATE_SHIFT + 3;

/// Packs a round's identity into the data oracle's context word (the
/// oracle's mismatch slots hold only integers): three op numbers, a 4-bit
/// kind, a 3-bit start state (populated is 0, so words from before states
/// decode as it), the round in the rest.
pub fn pack_context(combo: &Combo, kind: ObjKind, state: ObjState, round: u64) -> u64 {
    let mut w = 0u64;
    for (i, op) in combo.0.iter().take(3).enumerate() {
        w |= (op.index() as u64 + 1) << (OP_BITS * i as u32);
    }
    let k = ObjKind::ALL.iter().position(|x| *x == kind).unwrap_or(0) as u64;
    w | (k << KIND_SHIFT) | ((state.index() as u64) << STATE_SHIFT) | (round << ROUND_SHIFT)
}

/// A round's identity, unpacked from its context word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub combo: Combo,
    pub kind: ObjKind,
    pub state: ObjState,
    pub round: u64,
}

/// The combo, kind, state and round of a context word.
pub fn unpack_context(w: u64) -> Option<Context> {
    let mut ops = Vec::new();
    for i in 0..3 {
        let n = ((w >> (OP_BITS * i)) & ((1 << OP_BITS) - 1)) as usize;
        if n > 0 {
            ops.push(*UserOp::ALL.get(n - 1)?);
        }
    }
    let kind = *ObjKind::ALL.get(((w >> KIND_SHIFT) & 15) as usize)?;
    let state = *ObjState::ALL.get(((w >> STATE_SHIFT) & 7) as usize)?;
    (!ops.is_empty()).then(|| Context {
        combo: Combo::new(ops),
        kind,
        state,
        round: w >> ROUND_SHIFT,
    })
}

/// The context word as words for a report: `store+split on mthp anon,
/// round 7` (the host's finding title keeps what is before `, round`).
pub fn describe_context(w: u64) -> Option<String> {
    let c = unpack_context(w)?;
    Some(format!(
        "{} on {} {}, round {}",
        c.combo, c.state, c.kind, c.round
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_words_round_trip() {
        let c = Combo::new(vec![UserOp::Mremap, UserOp::Store, UserOp::Split]);
        let w = pack_context(&c, ObjKind::Ksm, ObjState::Mthp, 123_456);
        assert_eq!(
            unpack_context(w),
            Some(Context {
                combo: c,
                kind: ObjKind::Ksm,
                state: ObjState::Mthp,
                round: 123_456
            })
        );
        assert_eq!(
            describe_context(pack_context(
                &Combo::new(vec![UserOp::MigratePages, UserOp::Store]),
                ObjKind::Anon,
                ObjState::Populated,
                7
            ))
            .unwrap(),
            "store+migrate-pages on populated anon, round 7"
        );
        assert_eq!(unpack_context(0), None);
        let last = *UserOp::ALL.last().unwrap();
        let c = Combo::new(vec![last, last, UserOp::Store]);
        let w = pack_context(&c, ObjKind::Hugetlb, ObjState::Small, 9);
        assert_eq!(
            unpack_context(w),
            Some(Context {
                combo: c,
                kind: ObjKind::Hugetlb,
                state: ObjState::Small,
                round: 9
            })
        );
        assert!(UserOp::ALL.len() < 1 << OP_BITS);
        for s in ObjState::ALL {
            let w = pack_context(&Combo::new(vec![UserOp::Fork]), ObjKind::Hugetlb, s, 1);
            assert_eq!(unpack_context(w).unwrap().state, s);
        }
    }

    #[test]
    fn state_words_are_clap_words() {
        use clap::ValueEnum;
        for (i, s) in ObjState::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
            assert_eq!(s.to_possible_value().unwrap().get_name(), s.word());
        }
    }
}
