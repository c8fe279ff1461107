//! userfaultfd on the object's tail (pages no thread stores to): the tail
//! is emptied (MADV_DONTNEED, or MADV_REMOVE on shmem), registered
//! (MISSING and WP, UFFD_FEATURE_SIGBUS so that no fault ever waits for a
//! handler), then: UFFDIO_COPY of a stamp into its first page and a
//! second, different copy to the same page, which must fail with EEXIST
//! (a copy lands exactly once: the page must still hold the first stamp);
//! UFFDIO_ZEROPAGE of the second page (it reads zero); UFFDIO_WRITEPROTECT
//! of the first page on and off; on anonymous memory UFFDIO_MOVE of the
//! first page to the third (which then holds the stamp). Then the range is
//! unregistered. Pages are read through /proc/self/mem, so an op that
//! unmaps the tail meanwhile costs an EIO, not a crash. The tail is not
//! checked by the engine (gone); what is wrong here is reported through
//! the data oracle.

use super::super::model::{stamp, store_gen, Effects};
use super::super::op::{check, Op, Resources, RoundEnv};
use crate::oracle::mem;
use mmrace_proto::oracle::{Expected, UNIT};
use mmrace_proto::pairs::{ObjKind, UserOp};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

const UFFD_API: u64 = 0xAA;
const FEATURE_SIGBUS: u64 = 1 << 7;
const FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
const FEATURE_MOVE: u64 = 1 << 16;
const MODE_MISSING: u64 = 1 << 0;
const MODE_WP: u64 = 1 << 1;

/// `_IOWR(0xAA, nr, size)` and `_IOR(0xAA, nr, size)`.
const fn iowr(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | (0xAA << 8) | nr
}
const fn ior(nr: u64, size: usize) -> u64 {
    (2 << 30) | ((size as u64) << 16) | (0xAA << 8) | nr
}

#[repr(C)]
#[derive(Default)]
struct Api {
    api: u64,
    features: u64,
    ioctls: u64,
}
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Range {
    start: u64,
    len: u64,
}
#[repr(C)]
#[derive(Default)]
struct Register {
    range: Range,
    mode: u64,
    ioctls: u64,
}
/// uffdio_copy and uffdio_move: dst, src, len, mode, result.
#[repr(C)]
#[derive(Default)]
struct Copy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    result: i64,
}
#[repr(C)]
#[derive(Default)]
struct Zeropage {
    range: Range,
    mode: u64,
    result: i64,
}
#[repr(C)]
#[derive(Default)]
struct Writeprotect {
    range: Range,
    mode: u64,
}

const API: u64 = iowr(0x3F, std::mem::size_of::<Api>());
const REGISTER: u64 = iowr(0x00, std::mem::size_of::<Register>());
const UNREGISTER: u64 = ior(0x01, std::mem::size_of::<Range>());
const COPY: u64 = iowr(0x03, std::mem::size_of::<Copy>());
const ZEROPAGE: u64 = iowr(0x04, std::mem::size_of::<Zeropage>());
const MOVE: u64 = iowr(0x05, std::mem::size_of::<Copy>());
const WRITEPROTECT: u64 = iowr(0x06, std::mem::size_of::<Writeprotect>());

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

fn ioctl<T>(fd: &OwnedFd, req: u64, arg: &mut T) -> bool {
    // SAFETY: `arg` is the #[repr(C)] struct `req` takes.
    unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) == 0 }
}

/// The features this kernel offers (a handshake asking for none answers
/// with them).
fn offered() -> std::io::Result<u64> {
    open(0).map(|(_, f)| f)
}

/// A userfaultfd with the API handshake done, and the features it has.
fn open(features: u64) -> std::io::Result<(OwnedFd, u64)> {
    // SAFETY: userfaultfd(2) takes flags only.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut api = Api {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    if !ioctl(&fd, API, &mut api) {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fd, api.features))
}

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
    let (s1, s2) = (
        stamp(first, store_gen(env.round, 0)),
        stamp(first, store_gen(env.round, 1)),
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
        let mut mv = Copy {
            dst: env.page_addr(first + 2) as u64,
            src: env.page_addr(first) as u64,
            len: UNIT as u64,
            ..Copy::default()
        };
        if ioctl(fd, MOVE, &mut mv) {
            expect_via_mem(env, first + 2, Expected::Stamp(landed));
        } else {
            check(fx, "UFFDIO_MOVE", false, RACING);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_the_kernels() {
        // From include/uapi/linux/userfaultfd.h on x86_64.
        assert_eq!(API, 0xc018aa3f);
        assert_eq!(REGISTER, 0xc020aa00);
        assert_eq!(UNREGISTER, 0x8010aa01);
        assert_eq!(COPY, 0xc028aa03);
        assert_eq!(ZEROPAGE, 0xc020aa04);
        assert_eq!(MOVE, 0xc028aa05);
        assert_eq!(WRITEPROTECT, 0xc018aa06);
    }
}
