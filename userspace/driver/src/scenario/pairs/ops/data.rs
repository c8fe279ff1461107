//! The ops that write stamps into the thread's own pages.

use super::super::dio::Source;
use super::super::model::{stamp, store_gen, Effects, StoreFx, DIO_GEN};
use super::super::op::{unit_store, Op, Resources, RoundEnv};
use crate::oracle::mem;
use crate::shared::hold::Trap;
use mmrace_proto::oracle::{Stamp, UNIT};
use mmrace_proto::pairs::UserOp;
use std::os::unix::fs::FileExt;

/// Pages an O_DIRECT op reads per round.
pub const DIO_PAGES: usize = 16;
/// Attempts of a /proc/self/mem store while the object moves.
const MEM_TRIES: u32 = 10_000;

/// One unit, filled as [`mem::fill`] would, in a buffer.
#[repr(C, align(4096))]
struct Unit([u8; UNIT]);

/// Stores `s` into page `p` through /proc/self/mem, following the object
/// when it moves. Whether it landed: a write the object may have moved
/// away from under (it began or ended during the write) is done again at
/// the new address, so a store that overlapped the move is verified by
/// its last write only.
fn store_via_mem(env: &RoundEnv, p: usize, s: &Stamp, fx: &mut Effects) -> bool {
    let Some(mem_file) = env.res.mem.as_ref() else {
        fx.error("no /proc/self/mem");
        return false;
    };
    let mut buf = Unit([0; UNIT]);
    // SAFETY: a local, aligned, UNIT-byte buffer nothing else references.
    unsafe { mem::fill(buf.0.as_mut_ptr() as usize, s) };
    let place = env.obj.place();
    for _ in 0..MEM_TRIES {
        let (at, moves) = place.read();
        let wrote = mem_file.write_at(&buf.0, (at + p * UNIT) as u64);
        if matches!(wrote, Ok(UNIT)) && place.unmoved_since(moves) {
            return true;
        }
        // The object is between two places: try its new address.
        std::hint::spin_loop();
    }
    false
}

/// How a store reaches the page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// A user store, or through /proc/self/mem while the object moves.
    User,
    /// Always through /proc/self/mem: the kernel writes the page through
    /// GUP (FOLL_FORCE, the slow path: faults and COW breaks included).
    Kernel,
}

/// Stamps `pages`, `passes` times with increasing generations, recording
/// each store.
fn store_pages(
    env: &RoundEnv,
    pages: &[usize],
    (passes, path): (u32, Path),
    fx: &mut Effects,
    gen: impl Fn(u32) -> u64,
) {
    for pass in 0..passes {
        let g = gen(pass);
        for &p in pages {
            let s = stamp(p, g);
            let begin = env.seq.next();
            let landed = if env.moving || path == Path::Kernel {
                store_via_mem(env, p, &s, fx)
            } else {
                // SAFETY: page p of the object is mapped read-write and
                // only this thread writes it (it owns the page).
                unsafe { mem::stamp(env.page_addr(p), &s) };
                true
            };
            let end = env.seq.next();
            if landed {
                fx.stores.push(StoreFx {
                    page: p,
                    generation: g,
                    begin,
                    end,
                });
            }
        }
    }
}

/// User stores into the thread's pages of the populated THP.
pub struct Store;

impl Op for Store {
    fn op(&self) -> UserOp {
        UserOp::Store
    }

    fn available(&self, res: &Resources) -> Result<(), String> {
        res.mem
            .as_ref()
            .map(|_| ())
            .ok_or_else(|| "cannot open /proc/self/mem".into())
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        store_hot(env, Path::User, fx);
    }
}

/// `burst` passes of stamps into the thread's own pages of the populated
/// THP, by `path`.
fn store_hot(env: &RoundEnv, path: Path, fx: &mut Effects) {
    let pages: Vec<usize> = env.layout.owned(env.slot, env.layout.hot()).collect();
    store_pages(env, &pages, (env.burst, path), fx, |pass| {
        store_gen(env.round, env.pass(pass))
    });
}

/// Stores into the thread's pages of the populated THP made by the
/// kernel: writes to /proc/self/mem (access_remote_vm: GUP with
/// FOLL_FORCE, then a write through the kernel's mapping of the page),
/// the path of ptrace, /proc/PID/mem and process_vm_writev.
pub struct ProcMem;

impl Op for ProcMem {
    fn op(&self) -> UserOp {
        UserOp::ProcMem
    }

    fn available(&self, res: &Resources) -> Result<(), String> {
        Store.available(res)
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        store_hot(env, Path::Kernel, fx);
    }
}

/// First touch of the unpopulated THP: a read fault, then stores.
pub struct Touch;

impl Op for Touch {
    fn op(&self) -> UserOp {
        UserOp::Touch
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let pages: Vec<usize> = env.layout.owned(env.slot, env.layout.cold()).collect();
        if let Some(&first) = pages.first() {
            // SAFETY: a mapped page of the object, read only.
            unsafe { std::ptr::read_volatile(env.page_addr(first) as *const u64) };
        }
        store_pages(env, &pages, (1, Path::User), fx, |pass| {
            store_gen(env.round, env.pass(pass))
        });
    }
}

/// O_DIRECT reads from the XFS file into the thread's pages.
pub struct Odirect;

impl Op for Odirect {
    fn op(&self) -> UserOp {
        UserOp::Odirect
    }

    fn available(&self, res: &Resources) -> Result<(), String> {
        res.dio
            .as_ref()
            .map(|_| ())
            .ok_or_else(|| "no XFS scratch disk for its O_DIRECT file".into())
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let Some(dio) = env.res.dio.as_ref() else {
            return;
        };
        for (i, p) in dio_pages(env).into_iter().enumerate() {
            let held = env.hold.filter(|h| h.index == i);
            let src = dio.source(i, p, UNIT);
            let what = match src.raw {
                true => "O_DIRECT pread of the raw disk",
                false => "O_DIRECT pread",
            };
            unit_store(env, fx, p, DIO_GEN, what, &[], || match held {
                Some(h) => held_pread(src, env.page_addr(p), h.trap),
                None => {
                    // SAFETY: page p of the object is mapped read-write
                    // and only this thread writes it; the device writes
                    // UNIT bytes into it.
                    unsafe {
                        libc::pread(
                            src.fd,
                            env.page_addr(p) as *mut libc::c_void,
                            UNIT,
                            src.offset as libc::off_t,
                        )
                    }
                }
            });
        }
    }
}

/// The pages an O_DIRECT op reads into: half of them the thread's first
/// pages of the populated THP (GUP on mapped pages, a pin racing whatever
/// moves or merges them), half its first pages of the cold one (GUP that
/// faults the page in first, or breaks its copy-on-write share: a KSM or
/// zero page).
fn dio_pages(env: &RoundEnv) -> Vec<usize> {
    let half = DIO_PAGES / 2;
    let hot = env.layout.owned(env.slot, env.layout.hot()).take(half);
    hot.chain(env.layout.owned(env.slot, env.layout.cold()).take(half))
        .collect()
}

/// The O_DIRECT read from `src` into `addr` with the window held open:
/// one `preadv` of two units, the page and then `trap`, so the kernel pins
/// the page into its bio and then blocks on the trap's fault until the
/// handler resolves it. The bytes that landed in the page (a whole unit
/// when the read got past it); the trap is emptied again.
fn held_pread(src: Source, addr: usize, trap: &Trap) -> isize {
    let iov = [
        libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: UNIT,
        },
        libc::iovec {
            iov_base: trap.addr() as *mut libc::c_void,
            iov_len: UNIT,
        },
    ];
    // SAFETY: the page is this thread's own in the object, mapped
    // read-write; the trap page is ours; the device writes into both.
    let n = unsafe { libc::preadv(src.fd, iov.as_ptr(), 2, src.offset as libc::off_t) };
    trap.rearm();
    n.min(UNIT as isize)
}

/// Writes the O_DIRECT file: `pages` units, page `p` holding
/// `stamp(p, DIO_GEN)`.
pub fn write_dio_file(path: &std::path::Path, pages: usize) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut buf = Unit([0; UNIT]);
    for p in 0..pages {
        // SAFETY: a local, aligned, UNIT-byte buffer.
        unsafe { mem::fill(buf.0.as_mut_ptr() as usize, &stamp(p, DIO_GEN)) };
        f.write_all_at(&buf.0, (p * UNIT) as u64)?;
    }
    f.sync_all()
}
