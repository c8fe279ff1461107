//! madvise(2) on the whole object: collapse, zaps, reclaim hints,
//! population and readahead.

use super::super::model::{Effects, ZapFx};
use super::super::op::{check, Op, RoundEnv};
use mmrace_proto::pairs::UserOp;

/// MADV_COLLAPSE (include/uapi/asm-generic/mman-common.h).
pub const MADV_COLLAPSE: libc::c_int = 25;
/// MADV_POPULATE_READ and MADV_POPULATE_WRITE
/// (include/uapi/asm-generic/mman-common.h, 5.14).
pub const MADV_POPULATE_READ: libc::c_int = 22;
pub const MADV_POPULATE_WRITE: libc::c_int = 23;

/// One madvise op; which advice is its [`UserOp`].
pub struct Advice(pub UserOp);

impl Advice {
    /// The advice, whether it zaps (and strictly), and the errnos it may
    /// return without anything being wrong.
    fn advice(&self) -> (libc::c_int, Option<bool>, &'static [i32]) {
        match self.0 {
            // EAGAIN: a page was busy; EINVAL: no THP possible here.
            UserOp::Collapse => (
                MADV_COLLAPSE,
                None,
                &[libc::EAGAIN, libc::EINVAL, libc::ENOMEM],
            ),
            UserOp::Dontneed => (libc::MADV_DONTNEED, Some(true), &[]),
            UserOp::Free => (libc::MADV_FREE, Some(false), &[]),
            UserOp::Pageout => (libc::MADV_PAGEOUT, None, &[]),
            UserOp::Cold => (libc::MADV_COLD, None, &[]),
            // EFAULT: a page it cannot write (the tail made PROT_READ or
            // truncated off by another op); EINTR, EAGAIN: retry limits.
            UserOp::Populate => (
                MADV_POPULATE_WRITE,
                None,
                &[libc::EFAULT, libc::EINTR, libc::EAGAIN],
            ),
            UserOp::Willneed => (libc::MADV_WILLNEED, None, &[libc::EBADF]),
            op => unreachable!("{op} is not an madvise op"),
        }
    }
}

impl Op for Advice {
    fn op(&self) -> UserOp {
        self.0
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let (mut advice, zaps, expected) = self.advice();
        // populate reads in even rounds: read faults map around
        // (filemap_map_pages on file kinds, the huge zero page on anon).
        if advice == MADV_POPULATE_WRITE && env.round.is_multiple_of(2) {
            advice = MADV_POPULATE_READ;
        }
        let place = env.obj.place();
        let (addr, moves) = place.read();
        let begin = env.seq.next();
        // SAFETY: advice on this round's object (ENOMEM if it moved).
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, env.layout.bytes(), advice) };
        let end = env.seq.next();
        // A move (mremap) during the call: the advice may have gone to
        // the range the object left, which stays mapped (MREMAP_DONTUNMAP,
        // then its placeholder), so it succeeds and zaps nothing of the
        // object.
        let stayed = place.unmoved_since(moves);
        let mut ok_errnos = expected.to_vec();
        // The object moved, or lost its tail, under it.
        ok_errnos.push(libc::ENOMEM);
        check(fx, self.0.word(), r == 0, &ok_errnos);
        if let Some(strict) = zaps {
            // Recorded even when it failed or the object moved: it may
            // have zapped part, or all, or nothing.
            fx.zaps.push(ZapFx {
                pages: 0..env.layout.pages,
                begin,
                end,
                strict: strict && r == 0 && stayed,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::Oracle;
    use crate::scenario::pairs::kinds::anon::AnonMaker;
    use crate::scenario::pairs::model::{Layout, Seq};
    use crate::scenario::pairs::object::Maker;
    use crate::scenario::pairs::op::Resources;
    use std::sync::Arc;

    /// MADV_DONTNEED's zap is strict (the pages must read zero after it)
    /// only when the object did not move during the call: a move while it
    /// ran may have sent it to the range the object left, where it
    /// succeeds and zaps nothing (a clean 7.3 kernel's dontneed+mremap
    /// round read the creation stamps where a strict zap wanted zeros).
    #[test]
    fn a_zap_during_a_move_is_not_strict() {
        let oracle = Arc::new(Oracle::new(std::time::Instant::now()).unwrap());
        let res = Resources::for_tests(&oracle);
        let layout = Layout::new(2, crate::mm::pmd_size());
        let obj = AnonMaker.create(layout.bytes()).unwrap();
        let seq = Seq::default();
        let env = RoundEnv {
            moving: true,
            ..RoundEnv::for_tests(obj.as_ref(), layout, &seq, &res)
        };
        let zap = |fx: &Effects| fx.zaps.last().map(|z| z.strict);
        let mut fx = Effects::default();
        Advice(UserOp::Dontneed).run(&env, &mut fx);
        assert_eq!(zap(&fx), Some(true), "{:?}", fx.first_error);
        // Run while a move is under way (the count is odd).
        obj.place().moving(|_| {
            Advice(UserOp::Dontneed).run(&env, &mut fx);
            None
        });
        assert_eq!(zap(&fx), Some(false));
        // After it: strict again.
        Advice(UserOp::Dontneed).run(&env, &mut fx);
        assert_eq!(zap(&fx), Some(true));
    }
}
