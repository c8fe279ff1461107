//! vmsplice(2): the thread's own pages of the populated THP go into a pipe
//! as page references taken by GUP-fast (no pin, no copy), and are read
//! back. The pipe must hold what the pages held: nothing else writes them
//! in the round (the pages of a slot are stored only by its own op), so
//! each reads its value before the round, or zero where a zap of a kind
//! that zeroes (MADV_DONTNEED, MADV_FREE on private anonymous memory and
//! hugetlb) let go of the page first. A page freed or reused under the
//! pipe's reference, or a reference to the wrong page, shows as another
//! value.

use super::super::model::Effects;
use super::super::op::{check, Op, RoundEnv};
use crate::oracle::mem;
use mmrace_proto::oracle::{Expected, UNIT};
use mmrace_proto::pairs::{UserOp, Zap};

/// Pages of its own the op splices per round (a pipe of the default size
/// holds 16 page references).
pub const PIPE_PAGES: usize = 16;

/// One page-aligned buffer for the pipe's contents.
#[repr(C, align(4096))]
struct Buf([u8; PIPE_PAGES * UNIT]);

/// A pipe's two ends, closed on drop.
struct Pipe([libc::c_int; 2]);

impl Pipe {
    fn new() -> Option<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two fds into our array.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
        (r == 0).then_some(Pipe(fds))
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        for fd in self.0 {
            // SAFETY: our own fds, closed once.
            unsafe { libc::close(fd) };
        }
    }
}

pub struct Vmsplice;

impl Vmsplice {
    /// Splices `pages` into the pipe, one iovec each; the pages that went
    /// in (a short splice stops early).
    fn splice(env: &RoundEnv, fx: &mut Effects, pipe: &Pipe, pages: &[usize]) -> usize {
        let iov: Vec<libc::iovec> = pages
            .iter()
            .map(|&p| libc::iovec {
                iov_base: env.page_addr(p) as *mut libc::c_void,
                iov_len: UNIT,
            })
            .collect();
        // SAFETY: the iovecs name pages of this round's object (EFAULT if
        // an op unmapped them); the pipe is ours.
        let n = unsafe { libc::vmsplice(pipe.0[1], iov.as_ptr(), iov.len(), 0) };
        // ENOMEM, EFAULT: a page went away under it (the tail unmapped).
        check(fx, "vmsplice", n >= 0, &[libc::EFAULT, libc::ENOMEM]);
        n.max(0) as usize / UNIT
    }

    /// Reads `n` pages back from the pipe and checks each against what its
    /// page may have held.
    fn read_back(env: &RoundEnv, fx: &mut Effects, pipe: &Pipe, pages: &[usize]) {
        let mut buf = Box::new(Buf([0; PIPE_PAGES * UNIT]));
        let want = pages.len() * UNIT;
        let mut got = 0;
        while got < want {
            // SAFETY: reads into the rest of our own buffer.
            let r = unsafe {
                libc::read(
                    pipe.0[0],
                    buf.0[got..].as_mut_ptr() as *mut libc::c_void,
                    want - got,
                )
            };
            if r <= 0 {
                check(fx, "read from the vmsplice pipe", false, &[]);
                return;
            }
            got += r as usize;
        }
        let zeroes = env.obj.kind().zap() == Zap::Zero;
        for (i, &p) in pages.iter().enumerate() {
            // SAFETY: unit i of our own buffer.
            let found = unsafe { mem::read(buf.0[i * UNIT..].as_ptr() as usize) };
            let base = env.base(p);
            let ok = base.matches(&found) || (zeroes && Expected::Zero.matches(&found));
            if !ok {
                env.expect(p, base, &found);
            }
        }
    }
}

impl Op for Vmsplice {
    fn op(&self) -> UserOp {
        UserOp::Vmsplice
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(pipe) = Pipe::new() else {
            check(fx, "pipe2", false, &[]);
            return;
        };
        // The hot THP is populated in every start state but `fresh`
        // ([`RoundEnv::base`] says what each page holds).
        let pages = env.own_hot(PIPE_PAGES);
        let n = Self::splice(env, fx, &pipe, &pages);
        Self::read_back(env, fx, &pipe, &pages[..n]);
    }
}
