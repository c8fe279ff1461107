//! More driver-side parties aimed at the current writer, in the style of
//! [`super::parties`] (one operation per iteration, under the writer
//! slot's read lock):
//!
//! - proc_walk: reads the writer's /proc files (`--proc-files`: pagemap of
//!   its regions, smaps, smaps_rollup, numa_maps), one per operation. Each
//!   read walks the page tables (pagemap_pmd_range, smaps_pte_range,
//!   gather_pte_stats) under the mmap read lock only, racing the splits,
//!   migrations, zaps and collapses that change huge pmds under the pmd
//!   lock.
//! - move_pages: move_pages(2) of a few random single pages of the
//!   writer's regions to the other node: per-page migration of whole THPs
//!   (isolation, migration entries, split on failure), next to
//!   migrate_pages' whole-mm bounce.
//! - madvise: process_madvise(2) of one THP-sized range of the writer with
//!   `--madvise-ops` advice: MADV_COLLAPSE (khugepaged's collapse, which
//!   drops the mmap lock and retakes it for write), MADV_PAGEOUT,
//!   MADV_COLD.
//!
//! Also `--khugepaged-scan-ms`, which makes khugepaged itself a party.

use super::layout::Region;
use super::parties::{party_loop, writer_gone, Env, Outcome, PartyStats};
use crate::shared::rng::Rng;
use anyhow::{bail, Context, Result};
use mmrace_proto::spec::thp_race::{MadviseOp, ProcFile};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;

/// The name of `f` under /proc/PID/.
pub fn proc_name(f: ProcFile) -> &'static str {
    match f {
        ProcFile::Pagemap => "pagemap",
        ProcFile::Smaps => "smaps",
        ProcFile::SmapsRollup => "smaps_rollup",
        ProcFile::NumaMaps => "numa_maps",
    }
}

/// Setup check: every chosen file exists for this process.
pub fn check_proc_files(files: &[ProcFile]) -> Result<()> {
    for &f in files {
        let path = format!("/proc/self/{}", proc_name(f));
        File::open(&path).with_context(|| {
            format!(
                "proc_walk: cannot open {path} (kernel without CONFIG_PROC_PAGE_MONITOR or \
                 CONFIG_NUMA?); leave it out of --proc-files or use --no-proc-walk"
            )
        })?;
    }
    Ok(())
}

/// Reads the whole of `f` from offset 0 into `buf`.
fn read_all(f: &File, buf: &mut [u8]) -> std::io::Result<u64> {
    let mut off = 0u64;
    loop {
        match f.read_at(buf, off)? {
            0 => return Ok(off),
            n => off += n as u64,
        }
    }
}

/// Reads the writer's /proc files in turn. `regions`: what pagemap reads
/// (the entries of every page of each, one pread per region).
pub fn proc_walk(
    env: &Env,
    stats: &PartyStats,
    files: &[ProcFile],
    regions: &[Region],
    page: usize,
) {
    let mut open: Option<(u64, Vec<File>)> = None;
    let mut next = 0;
    let mut buf = vec![0u8; 64 << 10];
    party_loop(env, "proc_walk", stats, |id| {
        if open.as_ref().map(|(g, _)| *g) != Some(id.generation) {
            let mut v = Vec::new();
            for &f in files {
                match File::open(format!("/proc/{}/{}", id.pid, proc_name(f))) {
                    Ok(file) => v.push(file),
                    Err(e) if writer_gone(&e) => return Outcome::Gone,
                    Err(e) => return Outcome::Failed(e),
                }
            }
            open = Some((id.generation, v));
        }
        let (_, handles) = open.as_ref().expect("opened above");
        let i = next % files.len();
        next += 1;
        let r = match files[i] {
            ProcFile::Pagemap => regions.iter().try_for_each(|r| {
                let want = r.len / page * 8;
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                handles[i]
                    .read_at(&mut buf[..want], (r.addr / page * 8) as u64)
                    .map(drop)
            }),
            _ => read_all(&handles[i], &mut buf).map(drop),
        };
        match r {
            Ok(()) => Outcome::Done,
            // A zombie or exiting writer: no mm to walk.
            Err(e) if writer_gone(&e) || e.raw_os_error() == Some(libc::EINVAL) => {
                open = None;
                Outcome::Gone
            }
            Err(e) => Outcome::Failed(e),
        }
    });
}

/// MPOL_MF_MOVE: move pages mapped by this process only.
const MPOL_MF_MOVE: libc::c_int = 1 << 1;
/// Pages per move_pages call.
const MOVE_BATCH: usize = 8;

/// Setup check: the kernel has move_pages(2) (an empty call).
pub fn check_move_pages() -> Result<()> {
    // SAFETY: count 0: no array is read or written.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            0,
            0usize,
            std::ptr::null::<usize>(),
            std::ptr::null::<libc::c_int>(),
            std::ptr::null_mut::<libc::c_int>(),
            MPOL_MF_MOVE,
        )
    };
    if r < 0 {
        bail!(
            "move_pages: the move_pages(2) probe failed: {} (CONFIG_MIGRATION off?); \
             turn the party off with --no-move-pages",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Moves [`MOVE_BATCH`] random pages of `regions` to random nodes of the
/// pair, one call per operation.
pub fn move_pages(
    env: &Env,
    stats: &PartyStats,
    seed: u64,
    regions: &[Region],
    page: usize,
    (a, b): (u32, u32),
) {
    let mut rng = Rng::stream(seed, "move_pages", 0);
    let total: usize = regions.iter().map(|r| r.len / page).sum();
    party_loop(env, "move_pages", stats, |id| {
        let mut pages = [0usize; MOVE_BATCH];
        let mut nodes = [0 as libc::c_int; MOVE_BATCH];
        let mut status = [0 as libc::c_int; MOVE_BATCH];
        for (p, n) in pages.iter_mut().zip(nodes.iter_mut()) {
            let mut i = rng.below(total as u64) as usize;
            let r = regions
                .iter()
                .find(|r| {
                    let fits = i < r.len / page;
                    if !fits {
                        i -= r.len / page;
                    }
                    fits
                })
                .expect("i < total");
            *p = r.addr + i * page;
            *n = if rng.below(2) == 0 { a } else { b } as libc::c_int;
        }
        // SAFETY: three arrays of MOVE_BATCH elements that live across the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                id.pid,
                MOVE_BATCH,
                pages.as_ptr(),
                nodes.as_ptr(),
                status.as_mut_ptr(),
                MPOL_MF_MOVE,
            )
        };
        if r >= 0 {
            return Outcome::Done;
        }
        let e = std::io::Error::last_os_error();
        if writer_gone(&e) {
            Outcome::Gone
        } else {
            Outcome::Failed(e)
        }
    });
}

fn advice(op: MadviseOp) -> libc::c_int {
    match op {
        MadviseOp::Collapse => super::churn::MADV_COLLAPSE,
        MadviseOp::Pageout => libc::MADV_PAGEOUT,
        MadviseOp::Cold => libc::MADV_COLD,
    }
}

fn pidfd_open(pid: libc::pid_t) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// process_madvise(2) of `[addr, addr + len)` of the process behind `fd`.
fn process_madvise(
    fd: &OwnedFd,
    addr: usize,
    len: usize,
    advice: libc::c_int,
) -> std::io::Result<()> {
    let iov = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: one iovec that lives across the call; the kernel only reads it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_process_madvise,
            fd.as_raw_fd(),
            &iov as *const libc::iovec,
            1usize,
            advice,
            0u32,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Setup check: process_madvise(2) takes every chosen advice (tried on a
/// scratch buffer of the driver itself).
pub fn check_madvise(ops: &[MadviseOp]) -> Result<()> {
    let pmd = crate::mm::pmd_size();
    let map = crate::mm::AlignedMap::new(pmd, pmd)?;
    map.touch_all(1);
    // SAFETY: getpid has no preconditions.
    let fd = pidfd_open(unsafe { libc::getpid() })
        .context("madvise: pidfd_open(2) failed; turn the party off with --no-madvise")?;
    for &op in ops {
        let Err(e) = process_madvise(&fd, map.as_ptr() as usize, pmd, advice(op)) else {
            continue;
        };
        // EINVAL is an unknown advice, except that collapse may refuse this
        // buffer (not THP-eligible here) with it.
        let broken = match e.raw_os_error() {
            Some(libc::EINVAL) => op != MadviseOp::Collapse,
            _ => !expected_refusal(&e),
        };
        if broken {
            bail!(
                "madvise: process_madvise(2) with {} failed: {e}; leave it out of \
                     --madvise-ops or use --no-madvise",
                op.word()
            );
        }
    }
    Ok(())
}

/// Errors that mean "not now, not this range" rather than a broken party:
/// a hole in the range (ENOMEM), a busy or unsuitable range for collapse
/// (EAGAIN, EINVAL).
fn expected_refusal(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOMEM | libc::EAGAIN | libc::EINVAL | libc::EBUSY)
    )
}

/// Advises one random THP-sized chunk of `regions` per operation.
pub fn madvise(
    env: &Env,
    stats: &PartyStats,
    seed: u64,
    ops: &[MadviseOp],
    regions: &[Region],
    pmd: usize,
) {
    let mut rng = Rng::stream(seed, "madvise", 0);
    let chunks: Vec<usize> = regions
        .iter()
        .flat_map(|r| (0..r.len / pmd).map(move |i| r.addr + i * pmd))
        .collect();
    let refused = env.ctx.op("madvise_refused");
    let mut open: Option<(u64, OwnedFd)> = None;
    party_loop(env, "madvise", stats, |id| {
        if open.as_ref().map(|(g, _)| *g) != Some(id.generation) {
            match pidfd_open(id.pid) {
                Ok(fd) => open = Some((id.generation, fd)),
                Err(e) if writer_gone(&e) => return Outcome::Gone,
                Err(e) => return Outcome::Failed(e),
            }
        }
        let (_, fd) = open.as_ref().expect("opened above");
        let op = *rng.pick(ops);
        let chunk = *rng.pick(&chunks);
        match process_madvise(fd, chunk, pmd, advice(op)) {
            Ok(()) => Outcome::Done,
            Err(e) if writer_gone(&e) => Outcome::Gone,
            Err(e) if expected_refusal(&e) => {
                refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Outcome::Done
            }
            Err(e) => Outcome::Failed(e),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_names_and_check() {
        for &f in ProcFile::ALL {
            assert_eq!(proc_name(f).replace('_', "-"), f.word());
        }
        // pagemap and smaps exist on any kernel these tests run on.
        check_proc_files(&[ProcFile::Pagemap, ProcFile::Smaps]).unwrap();
    }

    #[test]
    fn move_pages_and_madvise_probes() {
        // Both exist on this host's kernel, or the errors name the switch.
        if let Err(e) = check_move_pages() {
            assert!(format!("{e:#}").contains("--no-move-pages"));
        }
        if let Err(e) = check_madvise(MadviseOp::ALL) {
            assert!(format!("{e:#}").contains("--no-madvise"), "{e:#}");
        }
    }

    #[test]
    fn refusals_are_expected_errors() {
        for e in [libc::ENOMEM, libc::EAGAIN, libc::EINVAL] {
            assert!(expected_refusal(&std::io::Error::from_raw_os_error(e)));
        }
        assert!(!expected_refusal(&std::io::Error::from_raw_os_error(
            libc::EPERM
        )));
    }
}
