//! `refault`: read faults on page-cache folios that are already there.
//!
//! A read fault on a file or shmem page whose pte is none maps the
//! page cache around it (`do_read_fault()` -> `filemap_map_pages()`, the
//! window of `fault_around_bytes`, 64 KiB): a walk that takes each
//! neighbouring folio without its lock and checks it after a trylock.
//! Only faults on pages already cached but not mapped in this mm go
//! there, and the other ops fault each page once per round at most (a
//! store or a read maps it, and it stays mapped), so before this op no
//! fault-around ever ran while another op changed the page cache under
//! it (a hole punch, a truncate, a migration or split of the folios).
//!
//! The op goes window by window over the first pages of the populated
//! THP, where the ops on the file work (every thread's first
//! [`FILE_PAGES`] pages: pwrite, pread, punch-hole; vmsplice and
//! O_DIRECT too): MADV_DONTNEED of the window (the ptes go; on a shared
//! mapping the page cache stays, on a private file mapping the private
//! copies go: a strict zap in the model), then a read of one page of it,
//! which faults and maps around. It changes no data of a shared kind.
//! A run is short (4 windows), so with `--overlap-ms` it loops over the
//! range while the other op runs, as a two-thread probe would; a sweep
//! of the whole object (63 windows) was tried first and spent 15 of 16
//! faults away from the pages the file ops change.

use super::super::model::{Effects, ZapFx, SLOTS};
use super::super::op::{check, Op, RoundEnv};
use super::file::FILE_PAGES;
use mmrace_proto::oracle::UNIT;
use mmrace_proto::pairs::UserOp;

/// Pages of one fault-around window (`fault_around_bytes`, 64 KiB).
pub const WINDOW_PAGES: usize = 65536 / UNIT;

/// The windows over every thread's first [`FILE_PAGES`] pages, never
/// reaching the tail (pages owned by no thread, which other ops unmap,
/// protect or truncate), each as a page range.
pub fn windows(env: &RoundEnv) -> impl Iterator<Item = std::ops::Range<usize>> {
    let end = (SLOTS * FILE_PAGES).min(env.layout.tail().start);
    (0..end)
        .step_by(WINDOW_PAGES)
        .map(move |w| w..(w + WINDOW_PAGES).min(end))
}

pub struct Refault;

impl Op for Refault {
    fn op(&self) -> UserOp {
        UserOp::Refault
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        for (i, w) in windows(env).enumerate() {
            let begin = env.seq.next();
            // SAFETY: advice on a range of this round's object (the
            // object never moves in a round with this op).
            let r = unsafe {
                libc::madvise(
                    env.page_addr(w.start) as *mut libc::c_void,
                    w.len() * UNIT,
                    libc::MADV_DONTNEED,
                )
            };
            let end = env.seq.next();
            // EINVAL: an mlock op locked the object (DONTNEED refuses
            // locked VMAs); then nothing was zapped for sure.
            check(fx, "madvise(DONTNEED) of a window", r == 0, &[libc::EINVAL]);
            fx.zaps.push(ZapFx {
                pages: w.clone(),
                begin,
                end,
                strict: r == 0,
            });
            // A different page of the window each run and window: the
            // fault's own page is mapped by fault-around when cached, by
            // the fault handler otherwise.
            let p = w.start + (i + env.rep as usize) % w.len();
            // SAFETY: a mapped page of the object (not the tail), read only.
            unsafe { std::ptr::read_volatile(env.page_addr(p) as *const u64) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::Oracle;
    use crate::scenario::pairs::kinds::mapped::Mapped;
    use crate::scenario::pairs::model::{Layout, Seq};
    use crate::scenario::pairs::op::Resources;
    use mmrace_proto::pairs::ObjKind;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::FileExt;
    use std::sync::Arc;

    /// Whether the page at `addr` is mapped in this process (pagemap).
    fn present(addr: usize) -> bool {
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let mut b = [0u8; 8];
        pagemap
            .read_exact_at(&mut b, (addr / UNIT * 8) as u64)
            .unwrap();
        u64::from_le_bytes(b) & (1 << 63) != 0
    }

    /// On a memfd whose first pages are in the page cache but not mapped
    /// (written with pwrite), one run maps far more pages than it reads:
    /// its read faults map their windows around them. Every window is
    /// zapped strictly, and the data stays.
    #[test]
    fn its_reads_map_the_cached_pages_around_them() {
        let layout = Layout::new(2, crate::mm::pmd_size());
        let len = layout.bytes();
        // SAFETY: a name and flags; a new fd or -1.
        let raw = unsafe { libc::memfd_create(c"refault-test".as_ptr(), 0) };
        assert!(raw >= 0);
        // SAFETY: the fd was just returned to us.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let cached = 4 * WINDOW_PAGES;
        let file = std::fs::File::from(fd.try_clone().unwrap());
        file.set_len(len as u64).unwrap();
        file.write_all_at(&vec![0x5a; cached * UNIT], 0).unwrap();
        // SAFETY: a new shared mapping of our memfd.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        let obj = Mapped::boxed(ObjKind::Memfd, addr as usize, len, Some(fd));
        let oracle = Arc::new(Oracle::new(std::time::Instant::now()).unwrap());
        let res = Resources::for_tests(&oracle);
        let seq = Seq::default();
        let env = RoundEnv::for_tests(obj.as_ref(), layout, &seq, &res);
        let mut fx = Effects::default();
        Refault.run(&env, &mut fx);
        assert_eq!(fx.errors, 0, "{:?}", fx.first_error);
        assert_eq!(fx.zaps.len(), windows(&env).count());
        assert!(fx.zaps.iter().all(|z| z.strict));
        let mapped = (0..cached).filter(|p| present(env.page_addr(*p))).count();
        // One page read per window: 4 without fault-around.
        assert!(
            mapped > 2 * cached / WINDOW_PAGES,
            "{mapped} of {cached} mapped"
        );
        // SAFETY: a page of the object, mapped by the op's read.
        let first = unsafe { std::ptr::read_volatile(env.page_addr(1) as *const u8) };
        assert_eq!(first, 0x5a);
    }
}
