//! fork(): the child stores its own stamps into the thread's pages of the
//! populated THP (copy-on-write on private kinds) and checks that it sees
//! them; the parent waits for it. The parent's view is the model's
//! business: on private kinds it must not see the child's stores.
//!
//! On private kinds the child also reads every other page of the object
//! (not the tail, which other ops unmap) before it stores, into a shared
//! page the parent keeps as the round's [`ForkView`]: after the join the
//! engine checks each against [`super::super::model::Model::at_fork`], a
//! value the page held at some moment of the fork call.

use super::super::model::{found_raw, stamp, store_gen, Effects, ForkView, CHILD_BIT, SLOTS};
use super::super::op::{check, Op, RoundEnv};
use crate::oracle::mem;
use crate::shared::slots::SharedSlots;
use mmrace_proto::oracle::{Expected, STAMP_WORDS};
use mmrace_proto::pairs::UserOp;
use std::cell::RefCell;
use std::sync::atomic::Ordering;

pub struct Fork;

/// Words per page in the view: the stamp words and the last word.
const VIEW_WORDS: usize = STAMP_WORDS + 1;

thread_local! {
    /// This thread's shared view page (made on its first fork, kept for
    /// the slice's rounds): word 0 is the round it holds + 1, written last.
    static VIEW: RefCell<Option<SharedSlots>> = const { RefCell::new(None) };
}

/// The pages the child reads: every page but the thread's own of the
/// populated THP (the child stores there) and the tail.
fn others(env: &RoundEnv) -> Vec<usize> {
    let (hot, tail) = (env.layout.hot(), env.layout.tail().start);
    (0..tail)
        .filter(|p| !(hot.contains(p) && p % SLOTS == env.slot))
        .collect()
}

/// The child: read the others' pages into `view`, then store, check,
/// leave. Atomics and raw memory only (the worker is multi-threaded).
fn child(env: &RoundEnv, pages: &[usize], g: u64, view: Option<(&SharedSlots, &[usize])>) -> ! {
    if let Some((v, others)) = view {
        for (i, &p) in others.iter().enumerate() {
            // SAFETY: page p of the object, mapped (not the tail), read only.
            let (words, last) = found_raw(&unsafe { mem::read(env.page_addr(p)) });
            for (k, w) in words.into_iter().chain([last]).enumerate() {
                v.get(1 + i * VIEW_WORDS + k).store(w, Ordering::Relaxed);
            }
        }
        v.get(0).store(env.round + 1, Ordering::Release);
    }
    let mut bad = 0;
    for &p in pages {
        // SAFETY: page p of the object, mapped read-write in the child too.
        unsafe { mem::stamp(env.page_addr(p), &stamp(p, g)) };
    }
    for &p in pages {
        let want = Expected::Stamp(stamp(p, g));
        // SAFETY: as above, read only.
        let found = unsafe { mem::read(env.page_addr(p)) };
        if !env.expect(p, want, &found) {
            bad = 1;
        }
    }
    // SAFETY: leaves the forked child at once, no destructors.
    unsafe { libc::_exit(bad) }
}

/// What the child left in `v` for `others`, if it got to the end.
fn collect(
    env: &RoundEnv,
    v: &SharedSlots,
    others: &[usize],
    begin: u64,
    end: u64,
) -> Option<ForkView> {
    if v.get(0).load(Ordering::Acquire) != env.round + 1 {
        return None;
    }
    let seen = others
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let w = |k: usize| v.get(1 + i * VIEW_WORDS + k).load(Ordering::Relaxed);
            let mut words = [0; STAMP_WORDS];
            for (k, x) in words.iter_mut().enumerate() {
                *x = w(k);
            }
            (p, words, w(STAMP_WORDS))
        })
        .collect();
    Some(ForkView { begin, end, seen })
}

/// Runs `f` with this thread's view page for `pages` pages (`None` when
/// it cannot be made).
fn with_view<T>(pages: usize, f: impl FnOnce(Option<&SharedSlots>) -> T) -> T {
    VIEW.with(|cell| {
        let mut v = cell.borrow_mut();
        let words = 1 + pages * VIEW_WORDS;
        if v.as_ref().is_none_or(|s| s.len() < words) {
            *v = SharedSlots::new(words).ok();
        }
        if let Some(s) = v.as_ref() {
            s.get(0).store(0, Ordering::Release);
        }
        f(v.as_ref())
    })
}

impl Op for Fork {
    fn op(&self) -> UserOp {
        UserOp::Fork
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let pages: Vec<usize> = env.layout.owned(env.slot, env.layout.hot()).collect();
        let others = if env.obj.kind().private() {
            others(env)
        } else {
            Vec::new()
        };
        let g = CHILD_BIT | store_gen(env.round, 0);
        env.res
            .oracle
            .record(env.res.party, crate::oracle::Op::Stamp, env.obj.addr());
        with_view(env.layout.pages, |view| {
            let view = view.filter(|_| !others.is_empty());
            let begin = env.seq.next();
            // SAFETY: the child runs `child` only (raw memory, atomics, _exit).
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                child(env, &pages, g, view.map(|v| (v, &others[..])));
            }
            let end = env.seq.next();
            if pid < 0 {
                check(fx, "fork", false, &[libc::EAGAIN, libc::ENOMEM]);
                return;
            }
            fx.child.extend(pages.iter().map(|&p| (p, g)));
            let mut status = 0;
            // SAFETY: waits for the child made above.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r != pid {
                check(fx, "waitpid", false, &[]);
            } else if libc::WIFSIGNALED(status) {
                fx.error(format!(
                    "fork child killed by signal {}",
                    libc::WTERMSIG(status)
                ));
            }
            // Exit status 1: the child found a page that did not hold its
            // store, already reported through the oracle.
            fx.view = view.and_then(|v| collect(env, v, &others, begin, end));
        });
    }
}
