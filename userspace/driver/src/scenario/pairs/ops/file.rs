//! Ops on the object's file, beside its mapping: pwrite, pread, hole
//! punch, truncate, fallocate, writeback. Each checks what only it can
//! see and reports a mismatch through the data oracle with the round's
//! context (the engine checks the mapping after the round):
//!
//! - `pread`: on a shared kind the file and the mapping agree on the
//!   thread's own pages (nothing else writes them); on a private kind the
//!   file still holds what it was made with (a mapping's copy-on-write
//!   stays private);
//! - `punch-hole`: a punched page reads zero through the file and the
//!   mapping, then is stamped again through the mapping (the engine
//!   checks that the refault keeps it);
//! - `truncate`: the tail cut off and grown back reads zero.

use super::super::model::{initial_stamp, stamp, store_gen, Effects, StoreFx};
use super::super::op::{check, unit_store, Op, RoundEnv};
use crate::oracle::{mem, Check};
use mmrace_proto::oracle::{region, Expected, Found, UNIT};
use mmrace_proto::pairs::{ObjKind, UserOp};

/// Pages of its own a file op works on per round.
pub const FILE_PAGES: usize = 16;

/// One page-aligned unit buffer.
#[repr(C, align(4096))]
struct Unit([u8; UNIT]);

impl Unit {
    fn new() -> Box<Unit> {
        Box::new(Unit([0; UNIT]))
    }
    fn addr(&mut self) -> usize {
        self.0.as_mut_ptr() as usize
    }
}

/// Reports `found` at page `p` (read at `addr`) unless it is `want`.
fn expect(env: &RoundEnv, p: usize, addr: usize, want: Expected, found: &Found) {
    if !want.matches(found) {
        env.res.oracle.mismatch_in(
            Check::PairsRound,
            region::PAIRS,
            addr,
            p as u64,
            want,
            found,
            env.context,
        );
    }
}

/// pread of page `p` of the object's file into `buf`; whether it read a
/// whole unit.
fn pread_page(fd: i32, p: usize, buf: &mut Unit) -> bool {
    // SAFETY: reads UNIT bytes into our own buffer.
    let n = unsafe {
        libc::pread(
            fd,
            buf.addr() as *mut libc::c_void,
            UNIT,
            (p * UNIT) as libc::off_t,
        )
    };
    n == UNIT as isize
}

/// What the file of a private kind holds in page `p` (it is never written).
fn private_file_content(kind: ObjKind, env: &RoundEnv, p: usize) -> Expected {
    match kind {
        ObjKind::XfsPrivate if env.layout.hot().contains(&p) => Expected::Stamp(initial_stamp(p)),
        _ => Expected::Zero,
    }
}

/// The value a found unit stands for, if it is one a page may hold.
fn as_expected(f: &Found) -> Option<Expected> {
    match f {
        Found::Stamp(s) => Some(Expected::Stamp(*s)),
        Found::Zero => Some(Expected::Zero),
        Found::Garbage { .. } => None,
    }
}

pub struct Pwrite;

impl Op for Pwrite {
    fn op(&self) -> UserOp {
        UserOp::Pwrite
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(fd) = env.obj.fd() else { return };
        let mut buf = Unit::new();
        for pass in 0..env.burst {
            let g = store_gen(env.round, env.pass(pass));
            for p in env.own_hot(FILE_PAGES) {
                // SAFETY: our own aligned UNIT-byte buffer.
                unsafe { mem::fill(buf.addr(), &stamp(p, g)) };
                let expected = [libc::ENOSPC, libc::ENOMEM];
                unit_store(env, fx, p, g, "pwrite", &expected, || {
                    // SAFETY: writes our buffer to the object's file.
                    unsafe {
                        libc::pwrite(
                            fd,
                            buf.addr() as *const libc::c_void,
                            UNIT,
                            (p * UNIT) as libc::off_t,
                        )
                    }
                });
            }
        }
    }
}

pub struct Pread;

impl Op for Pread {
    fn op(&self) -> UserOp {
        UserOp::Pread
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(fd) = env.obj.fd() else { return };
        let kind = env.obj.kind();
        let mut buf = Unit::new();
        for p in env.own_hot(FILE_PAGES) {
            if !pread_page(fd, p, &mut buf) {
                check(fx, "pread", false, &[]);
                continue;
            }
            // SAFETY: our own buffer, a whole unit.
            let in_file = unsafe { mem::read(buf.addr()) };
            if kind.private() {
                let want = private_file_content(kind, env, p);
                expect(env, p, env.page_addr(p), want, &in_file);
                continue;
            }
            // SAFETY: page p of the object, mapped; only this thread's op
            // could change it, and it only reads.
            let mapped = unsafe { mem::read(env.page_addr(p)) };
            if let Some(want) = as_expected(&mapped) {
                expect(env, p, env.page_addr(p), want, &in_file);
            }
        }
    }
}

pub struct PunchHole;

impl Op for PunchHole {
    fn op(&self) -> UserOp {
        UserOp::PunchHole
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(fd) = env.obj.fd() else { return };
        let mut buf = Unit::new();
        let g = store_gen(env.round, env.pass(0));
        for p in env.own_hot(FILE_PAGES) {
            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            // SAFETY: fallocate on the object's file.
            let r = unsafe {
                libc::fallocate(fd, mode, (p * UNIT) as libc::off_t, UNIT as libc::off_t)
            };
            if r != 0 {
                check(fx, "fallocate(PUNCH_HOLE)", false, &[]);
                continue;
            }
            if pread_page(fd, p, &mut buf) {
                // SAFETY: our own buffer, a whole unit.
                let in_file = unsafe { mem::read(buf.addr()) };
                expect(env, p, env.page_addr(p), Expected::Zero, &in_file);
            }
            // SAFETY: page p of the object, mapped read-write, this
            // thread's own: read, then stamped again.
            let mapped = unsafe { mem::read(env.page_addr(p)) };
            expect(env, p, env.page_addr(p), Expected::Zero, &mapped);
            let begin = env.seq.next();
            // SAFETY: as above.
            unsafe { mem::stamp(env.page_addr(p), &stamp(p, g)) };
            let end = env.seq.next();
            fx.stores.push(StoreFx {
                page: p,
                generation: g,
                begin,
                end,
            });
        }
    }
}

pub struct Truncate;

impl Op for Truncate {
    fn op(&self) -> UserOp {
        UserOp::Truncate
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(fd) = env.obj.fd() else { return };
        let tail = env.layout.tail();
        let len = env.layout.bytes() as libc::off_t;
        // The tail is no thread's: the engine does not check it.
        fx.gone.push(tail.clone());
        // SAFETY: ftruncate of the object's file, down then back.
        let ok = unsafe {
            libc::ftruncate(fd, (tail.start * UNIT) as libc::off_t) == 0
                && libc::ftruncate(fd, len) == 0
        };
        if !ok {
            check(fx, "ftruncate", false, &[]);
            return;
        }
        let mut buf = Unit::new();
        for p in tail {
            if pread_page(fd, p, &mut buf) {
                // SAFETY: our own buffer, a whole unit.
                let in_file = unsafe { mem::read(buf.addr()) };
                expect(env, p, env.page_addr(p), Expected::Zero, &in_file);
            }
        }
    }
}

pub struct Fallocate;

impl Op for Fallocate {
    fn op(&self) -> UserOp {
        UserOp::Fallocate
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(fd) = env.obj.fd() else { return };
        // SAFETY: fallocate on the object's file.
        let r = unsafe { libc::fallocate(fd, 0, 0, env.layout.bytes() as libc::off_t) };
        // ENOSPC: hugetlb's pool or the disk is full.
        check(fx, "fallocate", r == 0, &[libc::ENOSPC, libc::ENOMEM]);
    }
}

/// posix_fadvise(POSIX_FADV_DONTNEED) of the object's file: writeback
/// started, then every clean folio no one maps or holds evicted. Nothing
/// it may change is data: what was written stays readable.
pub struct Invalidate;

impl Op for Invalidate {
    fn op(&self) -> UserOp {
        UserOp::Invalidate
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(fd) = env.obj.fd() else { return };
        let len = env.layout.bytes() as libc::off_t;
        // SAFETY: advice on the object's file; it returns the error.
        let r = unsafe { libc::posix_fadvise(fd, 0, len, libc::POSIX_FADV_DONTNEED) };
        if r != 0 {
            let e = std::io::Error::from_raw_os_error(r);
            fx.error(format!("posix_fadvise(DONTNEED): {e}"));
        }
    }
}

pub struct Writeback;

impl Op for Writeback {
    fn op(&self) -> UserOp {
        UserOp::Writeback
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(fd) = env.obj.fd() else { return };
        // SAFETY: fsync of the object's file.
        let r = unsafe { libc::fsync(fd) };
        check(fx, "fsync", r == 0, &[]);
        let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        // SAFETY: sync_file_range over the object's file.
        let r = unsafe { libc::sync_file_range(fd, 0, env.layout.bytes() as i64, flags) };
        check(fx, "sync_file_range", r == 0, &[]);
    }
}
