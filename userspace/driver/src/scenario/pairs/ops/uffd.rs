//! userfaultfd on the object's tail (pages no thread stores to): the tail
//! is emptied (MADV_DONTNEED, or MADV_REMOVE on shmem), registered
//! (MISSING and WP, UFFD_FEATURE_SIGBUS so that no fault ever waits for a
//! handler), then: UFFDIO_COPY of a stamp into its first page and a
//! second, different copy to the same page, which must fail with EEXIST
//! (a copy lands exactly once: the page must still hold the first stamp);
//! UFFDIO_ZEROPAGE of the second page (it reads zero); UFFDIO_WRITEPROTECT
//! of the first page on and off; on anonymous memory UFFDIO_MOVE of the
//! first page to the third and back, 64 attempts (a source a racing op
//! zapped is copied again; the page then holds the stamp where it
//! ended). Then the range is unregistered; each run (`--overlap-ms`
//! repeats the op) empties and registers the tail anew. Pages are read
//! through /proc/self/mem, so an op that unmaps the tail meanwhile costs
//! an EIO, not a crash. The tail is not checked by the engine (gone);
//! what is wrong here is reported through the data oracle.

use super::super::model::{stamp, store_gen, Effects};
use super::super::op::{check, last_errno, Op, Resources, RoundEnv};
use crate::oracle::mem;
use crate::shared::uffd::{
    ioctl, offered, open, Copy, Range, Register, Writeprotect, Zeropage, COPY, FEATURE_MOVE,
    FEATURE_SIGBUS, FEATURE_WP_HUGETLBFS_SHMEM, MODE_MISSING, MODE_WP, MOVE, REGISTER, UNREGISTER,
    WRITEPROTECT, ZEROPAGE,
};
use mmrace_proto::oracle::{Expected, UNIT};
use mmrace_proto::pairs::{ObjKind, UserOp};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;

/// Errnos a racing op may cause: the tail unmapped, protected,
/// truncated, repopulated or shared with a fork child meanwhile.
const RACING: &[i32] = &[
    libc::ENOENT,
    libc::EINVAL,
    libc::EEXIST,
    libc::EAGAIN,
    libc::EBUSY,
    libc::EFAULT,
    libc::ENOMEM,
    libc::EPERM,
];

/// UFFDIO_MOVE attempts per run, back and forth between two tail pages:
/// each is one source-pte window.
const MOVES: usize = 64;

/// Whether the object is anonymous (MOVE works only there).
fn anon(kind: ObjKind) -> bool {
    matches!(kind, ObjKind::Anon | ObjKind::Ksm)
}

pub struct Uffd;

impl Op for Uffd {
    fn op(&self) -> UserOp {
        UserOp::Uffd
    }

    fn available(&self, res: &Resources) -> Result<(), String> {
        if res.mem.is_none() {
            return Err("cannot open /proc/self/mem".into());
        }
        match offered() {
            Ok(f) if f & FEATURE_SIGBUS != 0 => Ok(()),
            Ok(_) => Err("userfaultfd: no UFFD_FEATURE_SIGBUS".into()),
            Err(e) => Err(format!("userfaultfd: {e}")),
        }
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let tail = env.layout.tail();
        fx.gone.push(tail.clone());
        let kind = env.obj.kind();
        // WP on shmem needs CONFIG_PTE_MARKER_UFFD_WP: asked for only
        // when the kernel offers it.
        let wanted = if anon(kind) {
            FEATURE_SIGBUS | FEATURE_MOVE
        } else {
            FEATURE_SIGBUS | FEATURE_WP_HUGETLBFS_SHMEM
        };
        let (fd, got) = match offered().and_then(|f| open(wanted & f)) {
            Ok(x) => x,
            Err(e) => return fx.error(format!("userfaultfd: {e}")),
        };
        let wp = anon(kind) || got & FEATURE_WP_HUGETLBFS_SHMEM != 0;
        let range = Range {
            start: env.page_addr(tail.start) as u64,
            len: (tail.len() * UNIT) as u64,
        };
        let empty = if anon(kind) {
            libc::MADV_DONTNEED
        } else {
            libc::MADV_REMOVE
        };
        // SAFETY: advice on the object's tail, no thread's pages.
        let r = unsafe { libc::madvise(range.start as *mut _, range.len as usize, empty) };
        check(fx, "madvise(tail)", r == 0, RACING);
        let mut reg = Register {
            range,
            mode: MODE_MISSING | if wp { MODE_WP } else { 0 },
            ioctls: 0,
        };
        if !ioctl(&fd, REGISTER, &mut reg) {
            return check(fx, "UFFDIO_REGISTER", false, RACING);
        }
        exercise(env, &fd, tail.start, (anon(kind), wp), fx);
        let mut r = range;
        check(
            fx,
            "UFFDIO_UNREGISTER",
            ioctl(&fd, UNREGISTER, &mut r),
            RACING,
        );
    }
}

/// Reads page `p` through /proc/self/mem and reports it unless it holds
/// `want`; an unreadable page (unmapped or emptied meanwhile) is skipped.
fn expect_via_mem(env: &RoundEnv, p: usize, want: Expected) {
    let Some(m) = env.res.mem.as_ref() else {
        return;
    };
    let mut buf = vec![0u64; UNIT / 8];
    // SAFETY: the Vec's storage as bytes, UNIT of them.
    let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, UNIT) };
    if m.read_exact_at(bytes, env.page_addr(p) as u64).is_err() {
        return;
    }
    // SAFETY: our own buffer, a whole aligned unit.
    let found = unsafe { mem::read(buf.as_ptr() as usize) };
    env.expect(p, want, &found);
}

/// A page of stamp `s` in a buffer.
fn source(s: &mmrace_proto::oracle::Stamp) -> Vec<u64> {
    let buf = vec![0u64; UNIT / 8];
    // SAFETY: the Vec's own aligned storage of UNIT bytes.
    unsafe { mem::fill(buf.as_ptr() as usize, s) };
    buf
}

/// COPY twice, ZEROPAGE, WRITEPROTECT on and off (when registered for
/// WP), MOVE (on anonymous memory); each checked.
fn exercise(
    env: &RoundEnv,
    fd: &OwnedFd,
    first: usize,
    (anon, wp): (bool, bool),
    fx: &mut Effects,
) {
    // Two generations of its own per run (`--overlap-ms` repeats it).
    let (s1, s2) = (
        stamp(first, store_gen(env.round, 2 * env.rep)),
        stamp(first, store_gen(env.round, 2 * env.rep + 1)),
    );
    let (b1, b2) = (source(&s1), source(&s2));
    let copy = |b: &Vec<u64>| Copy {
        dst: env.page_addr(first) as u64,
        src: b.as_ptr() as u64,
        len: UNIT as u64,
        ..Copy::default()
    };
    let copied = ioctl(fd, COPY, &mut copy(&b1));
    check(fx, "UFFDIO_COPY", copied, RACING);
    // What the page holds once the copies are done: the first stamp, or
    // the second if the second copy landed (a zap by another op, e.g.
    // MADV_DONTNEED, emptied the page between the two: legal).
    let mut landed = s1;
    if copied {
        let again = ioctl(fd, COPY, &mut copy(&b2));
        if again {
            landed = s2;
        } else {
            check(fx, "UFFDIO_COPY again", false, RACING);
        }
        expect_via_mem(env, first, Expected::Stamp(landed));
    }
    let mut z = Zeropage {
        range: Range {
            start: env.page_addr(first + 1) as u64,
            len: UNIT as u64,
        },
        ..Zeropage::default()
    };
    if ioctl(fd, ZEROPAGE, &mut z) {
        expect_via_mem(env, first + 1, Expected::Zero);
    } else {
        check(fx, "UFFDIO_ZEROPAGE", false, RACING);
    }
    for mode in if wp { &[1, 0][..] } else { &[] } {
        let mut wp = Writeprotect {
            range: Range {
                start: env.page_addr(first) as u64,
                len: UNIT as u64,
            },
            mode: *mode,
        };
        check(
            fx,
            "UFFDIO_WRITEPROTECT",
            ioctl(fd, WRITEPROTECT, &mut wp),
            RACING,
        );
    }
    if anon && copied {
        let src = if landed == s1 { &b1 } else { &b2 };
        shuttle(env, fd, (first, src), landed, fx);
    }
}

/// UFFDIO_MOVEs of the page back and forth between pages `first` and
/// `first + 2`, [`MOVES`] attempts: each move reads the source pte,
/// takes its folio and moves it under both pte locks, a window a racing
/// op on the object (a zap, a pageout, a migration) can hit every time.
/// A move whose source a racing op zapped meanwhile (ENOENT) copies
/// `src` (the page's stamp) there again and goes on, so the moves keep
/// coming while the other op zaps. The page holds `landed` where the
/// last move left it; another failure for a racing reason ends the
/// shuttle.
fn shuttle(
    env: &RoundEnv,
    fd: &OwnedFd,
    (first, src): (usize, &[u64]),
    landed: mmrace_proto::oracle::Stamp,
    fx: &mut Effects,
) {
    let mut at = first;
    for _ in 0..MOVES {
        let to = if at == first { first + 2 } else { first };
        let mut mv = Copy {
            dst: env.page_addr(to) as u64,
            src: env.page_addr(at) as u64,
            len: UNIT as u64,
            ..Copy::default()
        };
        if ioctl(fd, MOVE, &mut mv) {
            at = to;
            continue;
        }
        if last_errno() != libc::ENOENT {
            return check(fx, "UFFDIO_MOVE", false, RACING);
        }
        let mut c = Copy {
            dst: env.page_addr(at) as u64,
            src: src.as_ptr() as u64,
            len: UNIT as u64,
            ..Copy::default()
        };
        if !ioctl(fd, COPY, &mut c) {
            return check(fx, "UFFDIO_COPY (shuttle)", false, RACING);
        }
    }
    expect_via_mem(env, at, Expected::Stamp(landed));
}
