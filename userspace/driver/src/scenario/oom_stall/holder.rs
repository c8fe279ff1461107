//! The lock holder: the other half of the seed's dependency. A forked
//! process that is **not** an OOM candidate (it keeps the driver's
//! oom_score_adj -1000) reads the lock file into freshly mapped memory, over
//! and over, while a round is on. XFS holds the file's inode lock
//! (`i_rwsem`) shared for the whole `read()`, and every page of the
//! destination is a new anonymous page the kernel must allocate inside it.
//! So when memory runs out the holder waits for memory *while holding the
//! lock* the victim's blocker thread waits for (uninterruptibly, in
//! `down_write`). Memory reserves do not help: the holder is no victim, and
//! the victim's blocked thread is not allocating. Only the OOM reaper,
//! which frees the victim's memory without the victim, breaks the cycle;
//! without it the victim never exits and the OOM killer waits for it
//! forever.
//!
//! The lock file is sparse: reading its holes allocates page cache and the
//! destination pages, and writes nothing to the disk.

use crate::shared::slots::SharedSlots;
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Shared slots.
const ACTIVE: usize = 0;
const READS: usize = 1;
const IN_READ: usize = 2;
const PROGRESS_NS: usize = 3;
const FAILED_ERRNO: usize = 4;
const READY: usize = 5;
const SLOTS: usize = 6;

/// What the driver sees of the holder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HolderState {
    /// read() calls completed.
    pub reads: u64,
    /// Inside a read() right now (holding the inode lock shared).
    pub in_read: bool,
    /// CLOCK_MONOTONIC ns of the last completed read.
    pub progress_ns: u64,
}

/// The forked holder. Dropping it kills and reaps it.
pub struct Holder {
    pid: libc::pid_t,
    shared: SharedSlots,
}

/// Creates the sparse lock file of `bytes` bytes at `path`.
pub fn create_lock_file(path: &Path, bytes: u64) -> Result<()> {
    let f = std::fs::File::create(path)
        .with_context(|| format!("cannot create the lock file {}", path.display()))?;
    f.set_len(bytes)
        .with_context(|| format!("cannot size the lock file {}", path.display()))?;
    // Something in the first block, so the blocker's pwrite rewrites data.
    f.write_all_at(&[0x42; 4096], 0)?;
    f.sync_all()?;
    Ok(())
}

impl Holder {
    /// Forks the holder on the lock file `path`, reading `bytes` per read().
    pub fn spawn(path: &Path, bytes: usize) -> Result<Holder> {
        let shared = SharedSlots::new(SLOTS)?;
        let cpath = CString::new(path.as_os_str().as_encoded_bytes()).context("NUL in path")?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: fork in a threaded process; the child runs only
        // `child_main` (no locks of the driver, no stdout) and never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!("lock holder: fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            child_main(&shared, &cpath, bytes, parent);
        }
        let h = Holder { pid, shared };
        for _ in 0..3000 {
            if h.shared.get(READY).load(Ordering::Acquire) == 1 {
                return Ok(h);
            }
            let e = h.shared.get(FAILED_ERRNO).load(Ordering::Relaxed);
            if e != 0 {
                bail!(
                    "lock holder: cannot open {}: {}",
                    path.display(),
                    std::io::Error::from_raw_os_error(e as i32)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("lock holder: not ready after 30 s")
    }

    /// Reads while `on` (during a round), idles otherwise.
    pub fn set_active(&self, on: bool) {
        self.shared
            .get(ACTIVE)
            .store(u64::from(on), Ordering::Relaxed);
    }

    pub fn state(&self) -> HolderState {
        let g = |i| self.shared.get(i).load(Ordering::Relaxed);
        HolderState {
            reads: g(READS),
            in_read: g(IN_READ) == 1,
            progress_ns: g(PROGRESS_NS),
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // SAFETY: our own unreaped child.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: reaps our own child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

fn child_main(shared: &SharedSlots, path: &CString, bytes: usize, parent: libc::pid_t) -> ! {
    // SAFETY: prctl with integer arguments; getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
        libc::prctl(libc::PR_SET_NAME, c"oom-lock-holder".as_ptr());
    }
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        shared.get(FAILED_ERRNO).store(e as u64, Ordering::Relaxed);
        // SAFETY: leaves the child.
        unsafe { libc::_exit(1) };
    }
    shared.get(READY).store(1, Ordering::Release);
    loop {
        if shared.get(ACTIVE).load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        // SAFETY: a fresh private anonymous mapping; no memory in use.
        let buf = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if buf == libc::MAP_FAILED {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        shared.get(IN_READ).store(1, Ordering::Relaxed);
        // SAFETY: reads into the mapping just made, `bytes` long. Every
        // destination page is faulted in (allocated) inside the read, with
        // the inode lock held.
        unsafe { libc::pread(fd, buf, bytes, 0) };
        shared.get(IN_READ).store(0, Ordering::Relaxed);
        // SAFETY: unmaps the mapping made above.
        unsafe { libc::munmap(buf, bytes) };
        shared.get(READS).fetch_add(1, Ordering::Relaxed);
        shared
            .get(PROGRESS_NS)
            .store(super::victim::mono_ns(), Ordering::Relaxed);
    }
}
