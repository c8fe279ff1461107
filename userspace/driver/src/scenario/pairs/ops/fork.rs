//! fork(): the child stores its own stamps into the thread's pages of the
//! populated THP (copy-on-write on private kinds) and checks that it sees
//! them; the parent waits for it. The parent's view is the model's
//! business: on private kinds it must not see the child's stores.

use super::super::model::{stamp, store_gen, Effects, CHILD_BIT};
use super::super::op::{check, Op, RoundEnv};
use crate::oracle::mem;
use mmrace_proto::oracle::Expected;
use mmrace_proto::pairs::UserOp;

pub struct Fork;

/// The child: store, check, leave. Atomics and raw memory only (the
/// worker is multi-threaded).
fn child(env: &RoundEnv, pages: &[usize], g: u64) -> ! {
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

impl Op for Fork {
    fn op(&self) -> UserOp {
        UserOp::Fork
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let pages: Vec<usize> = env.layout.owned(env.slot, env.layout.hot()).collect();
        let g = CHILD_BIT | store_gen(env.round, 0);
        env.res
            .oracle
            .record(env.res.party, crate::oracle::Op::Stamp, env.obj.addr());
        // SAFETY: the child runs `child` only (raw memory, atomics, _exit).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            check(fx, "fork", false, &[libc::EAGAIN, libc::ENOMEM]);
            return;
        }
        if pid == 0 {
            child(env, &pages, g);
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
    }
}
