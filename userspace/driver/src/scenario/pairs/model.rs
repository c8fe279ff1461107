//! What a round's ops must leave in the object, page by page.
//!
//! The object is [`Layout::thps`] THPs: the first (*hot*) is stamped with
//! [`initial_stamp`] before the round, the rest (*cold*) is left
//! unpopulated (it reads zero). Racing thread `slot` owns the pages
//! `p % SLOTS == slot` (the last residue belongs to nobody: bystanders);
//! the last [`TAIL`] pages are no thread's (the ops that unmap or protect
//! part of the object work there). Every storing op writes only its own
//! pages, with increasing generations, and records per page the last
//! stamp and the order numbers ([`Seq`]) just before its first and after
//! its last word. Zapping ops record the pages and the order numbers
//! around their syscall.
//!
//! A page then must hold its last stamp (or the creation stamp, or zero
//! for a cold page), except where a zap overlapped: a zap that began after
//! the store ended leaves only what [`ObjKind::zap`] says (zero on private
//! anonymous memory, the file's stamp on a private file, the data on
//! shared kinds); one that overlapped the store leaves either, or a stamp
//! torn between them word by word. MADV_FREE may or may not discard. A
//! fork child's stores are seen by the parent only on shared kinds.

use mmrace_proto::oracle::{region, Expected, Found, Stamp, STAMP_WORDS, UNIT};
use mmrace_proto::pairs::{ObjKind, ObjState, Zap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Page residues: three racing threads, and bystanders.
pub const SLOTS: usize = 4;
/// Pages at the object's end that no thread stores to.
pub const TAIL: usize = 8;
/// The generation of the creation stamp.
pub const INITIAL_GEN: u64 = 1;
/// Set in the generations a fork child writes.
pub const CHILD_BIT: u64 = 1 << 62;
/// The generation of the O_DIRECT file's stamps.
pub const DIO_GEN: u64 = 0xd10 << 32;

/// The stamp page `page` holds from the object's creation (hot THP).
pub fn initial_stamp(page: usize) -> Stamp {
    stamp(page, INITIAL_GEN)
}

pub fn stamp(page: usize, generation: u64) -> Stamp {
    Stamp {
        region: region::PAIRS,
        page: page as u32,
        generation,
    }
}

/// A store generation unique in the run: round and pass.
pub fn store_gen(round: u64, pass: u32) -> u64 {
    (round << 12) | u64::from(pass + 2)
}

/// The object's pages and who owns which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub pages: usize,
    pub per_thp: usize,
}

impl Layout {
    /// An object of `thps` THPs of `pmd` bytes.
    pub fn new(thps: usize, pmd: usize) -> Layout {
        Layout {
            pages: thps * pmd / UNIT,
            per_thp: pmd / UNIT,
        }
    }

    pub fn bytes(&self) -> usize {
        self.pages * UNIT
    }

    pub fn hot(&self) -> Range<usize> {
        0..self.per_thp
    }

    pub fn cold(&self) -> Range<usize> {
        self.per_thp..self.pages
    }

    pub fn tail(&self) -> Range<usize> {
        self.pages - TAIL..self.pages
    }

    /// Thread `slot`'s pages in `range` (never the tail's).
    pub fn owned(&self, slot: usize, range: Range<usize>) -> impl Iterator<Item = usize> {
        let tail = self.tail().start;
        range.filter(move |p| p % SLOTS == slot && *p < tail)
    }

    /// What page `p` holds before the round.
    pub fn base(&self, p: usize) -> Expected {
        if self.hot().contains(&p) {
            Expected::Stamp(initial_stamp(p))
        } else {
            Expected::Zero
        }
    }
}

/// The round's order counter: every recorded effect takes numbers from
/// it, so effects of different threads can be ordered.
#[derive(Debug, Default)]
pub struct Seq(AtomicU64);

impl Seq {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// The last store of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreFx {
    pub page: usize,
    pub generation: u64,
    /// Order numbers before its first word and after its last.
    pub begin: u64,
    pub end: u64,
}

/// A zap of `pages`: MADV_DONTNEED (`strict`: the pages are gone when it
/// returns) or MADV_FREE (they may be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZapFx {
    pub pages: Range<usize>,
    pub begin: u64,
    pub end: u64,
    pub strict: bool,
}

/// What a fork child saw (private kinds): the pages no other op of its
/// own thread stores to, read in the child right after fork, and the
/// order numbers just before fork() and just after it returned in the
/// parent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForkView {
    pub begin: u64,
    pub end: u64,
    /// (page, stamp words, last word) as the child read them.
    pub seen: Vec<(usize, [u64; STAMP_WORDS], u64)>,
}

/// What one thread's op did to the object in a round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Stores, any number per page: the last (highest `end`) counts.
    pub stores: Vec<StoreFx>,
    pub zaps: Vec<ZapFx>,
    /// Pages unmapped: not verified.
    pub gone: Vec<Range<usize>>,
    /// A fork child's stores (page, generation).
    pub child: Vec<(usize, u64)>,
    /// What a fork child saw of the others' pages (private kinds).
    pub view: Option<ForkView>,
    /// Calls that failed unexpectedly, and the first such error.
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Effects {
    pub fn error(&mut self, what: impl Into<String>) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what.into());
        }
    }
}

/// What a page may hold after the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The value it must hold when no zap interferes; reported on mismatch.
    pub primary: Option<Expected>,
    /// What an interfering zap leaves instead.
    pub alternate: Option<Expected>,
}

fn raw(e: &Expected) -> ([u64; STAMP_WORDS], u64) {
    match e {
        Expected::Zero => ([0; STAMP_WORDS], 0),
        Expected::Stamp(s) => {
            let w = s.words();
            (w, w[STAMP_WORDS - 1])
        }
    }
}

/// The raw words of what was read.
pub fn found_raw(f: &Found) -> ([u64; STAMP_WORDS], u64) {
    match f {
        Found::Stamp(s) => raw(&Expected::Stamp(*s)),
        Found::Zero => ([0; STAMP_WORDS], 0),
        Found::Garbage { words, last } => (*words, *last),
    }
}

impl Allowed {
    /// Whether `found` is legal: each stamp word and the last word from
    /// the primary or the alternate (with one of them: exactly it; with
    /// both: either, or a store torn by the zap).
    pub fn accepts(&self, found: &Found) -> bool {
        let (fw, fl) = found_raw(found);
        let opts: Vec<_> = self
            .primary
            .iter()
            .chain(&self.alternate)
            .map(raw)
            .collect();
        let word_ok = |i: usize, v: u64| opts.iter().any(|(w, _)| w[i] == v);
        (0..STAMP_WORDS).all(|i| word_ok(i, fw[i])) && opts.iter().any(|(_, l)| *l == fl)
    }

    /// The value named in a report.
    pub fn reported(&self) -> Expected {
        self.primary.or(self.alternate).unwrap_or(Expected::Zero)
    }
}

/// Whether `found`'s every stamp word and its last word come from one of
/// `opts` (each word from any: a unit torn between them passes).
pub fn accepts_any(opts: &[Expected], found: &Found) -> bool {
    let (fw, fl) = found_raw(found);
    let opts: Vec<_> = opts.iter().map(raw).collect();
    let word_ok = |i: usize, v: u64| opts.iter().any(|(w, _)| w[i] == v);
    (0..STAMP_WORDS).all(|i| word_ok(i, fw[i])) && opts.iter().any(|(_, l)| *l == fl)
}

/// A round's effects per page: the last store, a fork child's store,
/// whether the page is gone; and the zaps.
pub struct Summary {
    pub last: Vec<Option<StoreFx>>,
    pub child: Vec<Option<u64>>,
    pub gone: Vec<bool>,
    pub zaps: Vec<ZapFx>,
}

impl Summary {
    pub fn new(pages: usize, fx: &[Effects]) -> Summary {
        let mut s = Summary {
            last: vec![None; pages],
            child: vec![None; pages],
            gone: vec![false; pages],
            zaps: Vec::new(),
        };
        for f in fx {
            for st in f.stores.iter().filter(|st| st.page < pages) {
                let slot = &mut s.last[st.page];
                if slot.is_none_or(|old| st.end > old.end) {
                    *slot = Some(*st);
                }
            }
            for &(p, g) in f.child.iter().filter(|c| c.0 < pages) {
                s.child[p].get_or_insert(g);
            }
            for r in &f.gone {
                for p in r.clone().filter(|p| *p < pages) {
                    s.gone[p] = true;
                }
            }
            s.zaps.extend(f.zaps.iter().cloned());
        }
        s
    }
}

/// The expectations of one round's object.
pub struct Model {
    layout: Layout,
    kind: ObjKind,
    state: ObjState,
}

impl Model {
    pub fn new(layout: Layout, kind: ObjKind, state: ObjState) -> Model {
        Model {
            layout,
            kind,
            state,
        }
    }

    /// What page `p` holds before the round: the creation stamp in the
    /// hot THP when the state stamps it, or when the kind's file holds it
    /// (`xfs-private`: a page never faulted in reads the file); else zero.
    pub fn base(&self, p: usize) -> Expected {
        if self.state.stamped() || self.kind.zap() == Zap::Reverts {
            self.layout.base(p)
        } else {
            Expected::Zero
        }
    }

    /// What a zap leaves in page `p`.
    fn zapped(&self, p: usize) -> Expected {
        match self.kind.zap() {
            Zap::Zero => Expected::Zero,
            Zap::Reverts => self.layout.base(p),
            Zap::Keeps => unreachable!("Keeps leaves the data"),
        }
    }

    /// What page `p` may hold after a round with effects `fx`; `None`
    /// when it is gone (unmapped) and not checked.
    pub fn allowed(&self, p: usize, fx: &[Effects]) -> Option<Allowed> {
        self.allowed_in(p, &Summary::new(self.layout.pages, fx))
    }

    /// [`Model::allowed`] from the round's effects summarised once.
    pub fn allowed_in(&self, p: usize, sum: &Summary) -> Option<Allowed> {
        if sum.gone[p] {
            return None;
        }
        let last = sum.last[p].as_ref();
        let child = sum.child[p];
        let mut primary = match (last, child) {
            (Some(s), _) => Expected::Stamp(stamp(p, s.generation)),
            (None, Some(g)) if !self.kind.private() => Expected::Stamp(stamp(p, g)),
            _ => self.base(p),
        };
        let (begin, end) = last.map_or((0, 0), |s| (s.begin, s.end));
        let mut allowed = Allowed {
            primary: Some(primary),
            alternate: None,
        };
        if self.kind.zap() == Zap::Keeps {
            return Some(allowed);
        }
        for z in sum.zaps.iter().filter(|z| z.pages.contains(&p)) {
            if z.end < begin {
                continue; // over before the store began
            }
            let left = self.zapped(p);
            if z.strict && z.begin > end {
                primary = left; // began after the store (or nothing) ended
                allowed = Allowed {
                    primary: Some(primary),
                    alternate: None,
                };
            } else {
                allowed.alternate = Some(left);
            }
        }
        Some(allowed)
    }

    /// What page `p` may hold in the child of a fork that ran between
    /// order numbers `begin` and `end` (private kinds): a value it held at
    /// some moment of the fork. The first is what it held when fork began:
    /// the last store that ended before (or the base), unless a strict zap
    /// came after that store and ended before fork began; then any store
    /// that overlapped the fork, and what a zap that began before fork
    /// returned (and ended after that store began) leaves. A store that
    /// ended before fork began must be seen (an older one must not), one
    /// that began after fork returned must not.
    pub fn at_fork(&self, p: usize, fx: &[Effects], begin: u64, end: u64) -> Vec<Expected> {
        let stores = fx.iter().flat_map(|f| &f.stores).filter(|s| s.page == p);
        let before = stores
            .clone()
            .filter(|s| s.end < begin)
            .max_by_key(|s| s.end);
        let mut first = before.map_or(self.base(p), |s| Expected::Stamp(stamp(p, s.generation)));
        let (b_begin, b_end) = before.map_or((0, 0), |s| (s.begin, s.end));
        let mut opts = Vec::new();
        if self.kind.zap() != Zap::Keeps {
            let zaps = fx.iter().flat_map(|f| &f.zaps);
            for z in zaps.filter(|z| z.pages.contains(&p) && z.begin < end && z.end > b_begin) {
                if z.strict && z.end < begin && z.begin > b_end {
                    first = self.zapped(p);
                } else {
                    opts.push(self.zapped(p));
                }
            }
        }
        opts.insert(0, first);
        opts.extend(
            stores
                .filter(|s| s.begin < end && s.end > begin)
                .map(|s| Expected::Stamp(stamp(p, s.generation))),
        );
        opts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Layout = Layout {
        pages: 16,
        per_thp: 8,
    };

    fn store(page: usize, generation: u64, begin: u64, end: u64) -> Effects {
        Effects {
            stores: vec![StoreFx {
                page,
                generation,
                begin,
                end,
            }],
            ..Effects::default()
        }
    }

    fn zap(pages: Range<usize>, begin: u64, end: u64, strict: bool) -> Effects {
        Effects {
            zaps: vec![ZapFx {
                pages,
                begin,
                end,
                strict,
            }],
            ..Effects::default()
        }
    }

    fn found(p: usize, g: u64) -> Found {
        Found::Stamp(stamp(p, g))
    }

    #[test]
    fn layout_ownership() {
        let l = Layout::new(2, 2 << 20);
        assert_eq!((l.pages, l.per_thp), (1024, 512));
        let mine: Vec<_> = l.owned(1, l.hot()).take(3).collect();
        assert_eq!(mine, [1, 5, 9]);
        assert!(l.owned(2, l.cold()).all(|p| p < 1016 && p % 4 == 2));
        assert_eq!(l.base(3), Expected::Stamp(initial_stamp(3)));
        assert_eq!(l.base(600), Expected::Zero);
    }

    #[test]
    fn a_lost_store_is_a_mismatch() {
        let m = Model::new(L, ObjKind::Anon, ObjState::Populated);
        let fx = [store(2, 9, 1, 2)];
        let a = m.allowed(2, &fx).unwrap();
        assert!(a.accepts(&found(2, 9)));
        assert!(!a.accepts(&found(2, 8)), "an older stamp came back");
        assert!(!a.accepts(&found(2, INITIAL_GEN)));
        assert!(!a.accepts(&Found::Zero), "no zap: zero is a loss");
        // An untouched bystander keeps its creation stamp, a cold page zero.
        assert!(m.allowed(3, &fx).unwrap().accepts(&found(3, INITIAL_GEN)));
        assert!(!m.allowed(3, &fx).unwrap().accepts(&found(3, 2)));
        assert!(m.allowed(12, &fx).unwrap().accepts(&Found::Zero));
    }

    #[test]
    fn after_dontneed_private_anon_reads_zero() {
        let m = Model::new(L, ObjKind::Anon, ObjState::Populated);
        // The zap began after the store ended: zero only.
        let fx = [store(2, 9, 1, 2), zap(0..8, 3, 4, true)];
        let a = m.allowed(2, &fx).unwrap();
        assert!(a.accepts(&Found::Zero));
        assert!(!a.accepts(&found(2, 9)), "non-zero after DONTNEED");
        assert!(!m.allowed(5, &fx).unwrap().accepts(&found(5, INITIAL_GEN)));
        // Overlapping: either, or torn word by word.
        let fx = [store(2, 9, 1, 5), zap(0..8, 3, 4, true)];
        let a = m.allowed(2, &fx).unwrap();
        assert!(a.accepts(&Found::Zero) && a.accepts(&found(2, 9)));
        let (mut w, last) = found_raw(&found(2, 9));
        w[0] = 0;
        assert!(a.accepts(&Found::decode(w, last)), "torn by the zap");
        w[1] = 77;
        assert!(!a.accepts(&Found::decode(w, last)), "a word from nowhere");
        // Over before the store began: the stamp only.
        let fx = [store(2, 9, 5, 6), zap(0..8, 3, 4, true)];
        assert!(!m.allowed(2, &fx).unwrap().accepts(&Found::Zero));
        // MADV_FREE may or may not discard.
        let fx = [zap(0..8, 3, 4, false)];
        let a = m.allowed(1, &fx).unwrap();
        assert!(a.accepts(&Found::Zero) && a.accepts(&found(1, INITIAL_GEN)));
    }

    #[test]
    fn shared_kinds_keep_data_through_a_zap() {
        let m = Model::new(L, ObjKind::Memfd, ObjState::Populated);
        let fx = [store(2, 9, 1, 2), zap(0..8, 3, 4, true)];
        let a = m.allowed(2, &fx).unwrap();
        assert!(a.accepts(&found(2, 9)));
        assert!(!a.accepts(&Found::Zero), "shmem lost data to DONTNEED");
    }

    #[test]
    fn fork_child_stores_are_private_or_shared_by_kind() {
        let child = Effects {
            child: vec![(2, CHILD_BIT | 5)],
            ..Effects::default()
        };
        let anon = Model::new(L, ObjKind::Anon, ObjState::Populated)
            .allowed(2, std::slice::from_ref(&child))
            .unwrap();
        assert!(anon.accepts(&found(2, INITIAL_GEN)));
        assert!(
            !anon.accepts(&found(2, CHILD_BIT | 5)),
            "child write seen by the parent"
        );
        let shared = Model::new(L, ObjKind::SharedAnon, ObjState::Populated)
            .allowed(2, std::slice::from_ref(&child))
            .unwrap();
        assert!(shared.accepts(&found(2, CHILD_BIT | 5)));
        assert!(!shared.accepts(&found(2, INITIAL_GEN)));
    }

    #[test]
    fn a_fresh_object_reads_zero_except_a_private_file() {
        let fresh = Model::new(L, ObjKind::Anon, ObjState::Fresh);
        let a = fresh.allowed(2, &[]).unwrap();
        assert!(a.accepts(&Found::Zero));
        assert!(
            !a.accepts(&found(2, INITIAL_GEN)),
            "a fresh page was stamped"
        );
        let a = fresh.allowed(2, &[store(2, 9, 1, 2)]).unwrap();
        assert!(a.accepts(&found(2, 9)) && !a.accepts(&Found::Zero));
        // xfs-private's file holds the creation stamps: a fresh mapping
        // reads them, and a zap reverts to them.
        let private = Model::new(L, ObjKind::XfsPrivate, ObjState::Fresh);
        assert!(private
            .allowed(2, &[])
            .unwrap()
            .accepts(&found(2, INITIAL_GEN)));
        for s in [
            ObjState::PteMapped,
            ObjState::Small,
            ObjState::Mthp,
            ObjState::Swapped,
        ] {
            let m = Model::new(L, ObjKind::Anon, s);
            assert!(m.allowed(3, &[]).unwrap().accepts(&found(3, INITIAL_GEN)));
            assert!(m.allowed(12, &[]).unwrap().accepts(&Found::Zero));
        }
    }

    #[test]
    fn a_fork_child_sees_the_object_as_it_was_during_fork() {
        let m = Model::new(L, ObjKind::Anon, ObjState::Populated);
        // Fork between order numbers 10 and 20.
        let ok = |fx: &[Effects], f: Found| accepts_any(&m.at_fork(2, fx, 10, 20), &f);
        // Ended before fork began: must be seen, the older one must not.
        let fx = [store(2, 8, 1, 2), store(2, 9, 3, 4)];
        assert!(ok(&fx, found(2, 9)));
        assert!(!ok(&fx, found(2, 8)), "an older store in the child");
        assert!(!ok(&fx, found(2, INITIAL_GEN)), "a store before fork lost");
        // Overlapping fork: either, or torn.
        let fx = [store(2, 9, 3, 4), store(2, 11, 12, 25)];
        assert!(ok(&fx, found(2, 9)) && ok(&fx, found(2, 11)));
        // Began after fork returned: must not be seen.
        let fx = [store(2, 9, 3, 4), store(2, 12, 21, 22)];
        assert!(!ok(&fx, found(2, 12)), "a store from after fork");
        // Nothing stored: the base; a strict zap over before fork: zero.
        assert!(ok(&[], found(2, INITIAL_GEN)) && !ok(&[], Found::Zero));
        let fx = [zap(0..8, 5, 6, true)];
        assert!(ok(&fx, Found::Zero) && !ok(&fx, found(2, INITIAL_GEN)));
        // A zap during fork: either; one after fork returned: no effect.
        let fx = [zap(0..8, 15, 16, true)];
        assert!(ok(&fx, Found::Zero) && ok(&fx, found(2, INITIAL_GEN)));
        let fx = [zap(0..8, 21, 22, true)];
        assert!(!ok(&fx, Found::Zero));
    }

    #[test]
    fn gone_pages_are_not_checked() {
        let fx = [Effects {
            gone: vec![L.tail()],
            ..Effects::default()
        }];
        let m = Model::new(L, ObjKind::Anon, ObjState::Populated);
        assert!(m.allowed(L.pages - 1, &fx).is_none());
        assert!(m.allowed(0, &fx).is_some());
    }
}
