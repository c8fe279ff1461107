//! The victim: one forked process running the seed's three threads, which
//! the OOM killer is meant to kill.
//!
//! As in the seed, the threads share one mm (they are threads of one
//! process, as the seed's `clone(CLONE_THREAD | CLONE_VM ...)` made them):
//!
//! - two file writers: open the file (`O_WRONLY | O_CREAT | O_APPEND`),
//!   wait `writer_delay`, then append 4 KiB writes forever;
//! - a memory consumer: waits `consumer_delay`, unlinks the file, grows a
//!   buffer by realloc doubling from 1 MiB until realloc fails, then reads
//!   /dev/zero into the whole buffer with one read(). Overcommit lets the
//!   buffer be larger than memory, so the read ends in the OOM killer. If
//!   it does not (a large machine), it grows another buffer and reads again.
//!
//! With the lock dependency (the default), a fourth thread, the blocker,
//! rewrites the first 4 KiB of the lock file over and over: each `pwrite`
//! needs the file's inode lock (`i_rwsem`) exclusively, which the lock
//! holder ([`super::holder`]) keeps shared while it reads the file into
//! memory that must be allocated. So once memory runs out, the blocker
//! sleeps uninterruptibly behind a task that waits for memory, and the
//! victim cannot exit until someone frees memory without its help: the
//! OOM reaper.
//!
//! The writers stamp every record (see [`mmrace_proto::oracle`]): writer
//! `w`'s record `i` of round `r` is unit `i` of region `OOM_FILE + w`,
//! generation `r`, so the driver can read the file back and check every
//! record whose write() returned success (see [`super::records`]). Every
//! `fsync_every` records a writer calls fdatasync and counts the records
//! it made durable.
//!
//! The process sets its oom_score_adj to 1000 (the driver runs at -1000,
//! and fork passes that on), unless `unkillable`: then the OOM killer finds
//! nothing to kill and the kernel panics "System is deadlocked on memory",
//! which is what `--unkillable` is for.
//!
//! Forking from the multi-threaded driver: the child touches none of the
//! driver's shared state (stdout, the op registry), reports through a
//! `MAP_SHARED` page made before the fork (it survives the SIGKILL), never
//! prints, and leaves only by `_exit` or a signal. Thread creation and
//! allocation are fine: glibc resets its allocator locks in the child.

use anyhow::{bail, Result};
use mmrace_proto::oracle::{region, Stamp};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Slots of the shared page.
const STATE: usize = 0;
const FAIL_STAGE: usize = 1;
const FAIL_ERRNO: usize = 2;
const WRITTEN: [usize; 2] = [3, 4];
const WRITE_ERRORS: usize = 5;
const WRITE_ERRNO: usize = 6;
const BUFFER_BYTES: usize = 7;
/// CLOCK_MONOTONIC ns of the consumer's first read of /dev/zero.
const READ_START_NS: usize = 8;
const READS_DONE: usize = 9;
const SYNCED: [usize; 2] = [10, 11];
const BLOCKER_WRITES: usize = 12;
const BLOCKER_TID: usize = 13;
const SLOTS: usize = 14;

// STATE: 0 while the child starts, then READY or FAILED.
const READY: u64 = 1;
const FAILED: u64 = 2;

/// How long the child may take to start its threads.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Write size, as in the seed.
pub const WRITE_SIZE: usize = 4096;

/// CLOCK_MONOTONIC in nanoseconds: the same clock in the driver and the
/// victim.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the time into a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `SLOTS` `AtomicU64`s in a shared anonymous page, unmapped on drop.
struct Shared {
    ptr: *mut AtomicU64,
}

// SAFETY: the page is only accessed through `&AtomicU64`, which is Sync;
// the pointer is owned by this value and unmapped once, on drop.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

const PAGE: usize = 4096;

impl Shared {
    fn new() -> Result<Shared> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!(
                "mmap of the victim's status page: {}",
                std::io::Error::last_os_error()
            );
        }
        // Fresh anonymous memory is zero: every slot is an AtomicU64 of 0.
        Ok(Shared { ptr: p.cast() })
    }

    fn get(&self, i: usize) -> &AtomicU64 {
        assert!(i < SLOTS);
        // SAFETY: `i < SLOTS`, and SLOTS u64s fit the page-aligned page,
        // which lives as long as `self`.
        unsafe { &*self.ptr.add(i) }
    }

    fn load(&self, i: usize) -> u64 {
        self.get(i).load(Ordering::Relaxed)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the page mapped in `new`.
        unsafe { libc::munmap(self.ptr.cast(), PAGE) };
    }
}

/// The child's setup steps, reported when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    ParentDeathSignal = 1,
    OomScoreAdj = 2,
    OpenFile = 3,
    OpenZero = 4,
    SpawnThreads = 5,
    OpenLock = 6,
}

impl Stage {
    fn describe(v: u64) -> &'static str {
        match v {
            1 => "prctl(PR_SET_PDEATHSIG)",
            2 => "writing 1000 to /proc/self/oom_score_adj",
            3 => "opening the file",
            4 => "opening /dev/zero",
            5 => "starting the threads",
            6 => "opening the lock file",
            _ => "an unknown step",
        }
    }
}

/// What the child needs, fixed before the fork: plain data.
#[derive(Debug, Clone)]
pub struct Plan {
    pub file: CString,
    pub writer_delay: Duration,
    pub consumer_delay: Duration,
    pub unkillable: bool,
    /// The round: the generation of the writers' record stamps.
    pub round: u64,
    /// fdatasync after every this many records of a writer (0: never).
    pub fsync_every: u64,
    /// The lock holder's file: the blocker thread writes it. None: no
    /// blocker (`--no-lock-dependency`).
    pub lock_file: Option<CString>,
    /// The consumer fills its buffers with MADV_POPULATE_WRITE instead of
    /// reading /dev/zero into them (`--populate`).
    pub populate: bool,
}

/// The victim's progress, read from the shared page.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub written: [u64; 2],
    pub write_errors: u64,
    pub write_errno: i32,
    pub buffer_bytes: u64,
    /// CLOCK_MONOTONIC ns when the consumer began reading /dev/zero.
    pub read_start_ns: Option<u64>,
    pub reads_done: u64,
    /// Records each writer made durable with fdatasync.
    pub synced: [u64; 2],
    /// pwrites the blocker completed.
    pub blocker_writes: u64,
    /// The blocker thread's tid (0 before it started or without one).
    pub blocker_tid: i32,
}

/// A forked victim. Dropping it kills and reaps the child.
pub struct Victim {
    pid: libc::pid_t,
    shared: Shared,
    reaped: Option<i32>,
}

impl Victim {
    /// Forks the victim and waits until its threads run.
    pub fn spawn(plan: &Plan) -> Result<Victim> {
        let shared = Shared::new()?;
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: fork in a threaded process; the child runs only
        // `child_main`, which keeps to the rules in the module docs and
        // never returns.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            bail!("victim: fork: {}", std::io::Error::last_os_error());
        }
        if pid == 0 {
            child_main(plan, &shared, parent);
        }
        let mut v = Victim {
            pid,
            shared,
            reaped: None,
        };
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            match v.shared.load(STATE) {
                READY => return Ok(v),
                FAILED => {
                    let stage = Stage::describe(v.shared.load(FAIL_STAGE));
                    let err = std::io::Error::from_raw_os_error(v.shared.load(FAIL_ERRNO) as i32);
                    v.kill();
                    v.reap();
                    bail!("victim: {stage} failed: {err}");
                }
                _ => {}
            }
            if v.gone() {
                let how = v.reap();
                bail!("victim: ended during setup ({})", describe_status(how));
            }
            if Instant::now() > deadline {
                bail!("victim: not ready after {} s", SETUP_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    pub fn progress(&self) -> Progress {
        let s = &self.shared;
        let start = s.load(READ_START_NS);
        Progress {
            written: WRITTEN.map(|i| s.load(i)),
            write_errors: s.load(WRITE_ERRORS),
            write_errno: s.load(WRITE_ERRNO) as i32,
            buffer_bytes: s.load(BUFFER_BYTES),
            read_start_ns: (start != 0).then_some(start),
            reads_done: s.load(READS_DONE),
            synced: SYNCED.map(|i| s.load(i)),
            blocker_writes: s.load(BLOCKER_WRITES),
            blocker_tid: s.load(BLOCKER_TID) as i32,
        }
    }

    /// Whether the child has ended (it is waitable; not reaped yet, so its
    /// pid stays ours).
    pub fn gone(&self) -> bool {
        if self.reaped.is_some() {
            return true;
        }
        crate::child::peek_exit(self.pid).is_some()
    }

    /// SIGKILL (harmless on a zombie).
    pub fn kill(&self) {
        if self.reaped.is_none() {
            // SAFETY: signals our own unreaped child, whose pid cannot have
            // been reused.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }

    /// Gives up on a child that will not end: no wait, now or on drop (it
    /// stays a process of ours until the guest powers off).
    pub fn abandon(&mut self) {
        self.reaped = Some(-1);
    }

    /// Waits for the child and reaps it; returns its wait status (-1 if it
    /// could not be waited for).
    pub fn reap(&mut self) -> i32 {
        if let Some(status) = self.reaped {
            return status;
        }
        let mut status = 0;
        let status = loop {
            // SAFETY: waits for our own child with a valid status pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r >= 0 {
                break status;
            }
            if errno() != libc::EINTR {
                break -1;
            }
        };
        self.reaped = Some(status);
        status
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            self.kill();
            self.reap();
        }
    }
}

/// Whether a wait status is death by SIGKILL.
pub fn killed_by_sigkill(status: i32) -> bool {
    status != -1 && libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL
}

/// A wait status in words.
pub fn describe_status(status: i32) -> String {
    if status == -1 {
        "not waitable".into()
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = nix::sys::signal::Signal::try_from(sig)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {sig}"));
        format!("killed by {name}")
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// The victim process. Never returns.
fn child_main(plan: &Plan, shared: &Shared, parent: libc::pid_t) -> ! {
    let fail = |stage: Stage, e: i32| -> ! {
        shared.get(FAIL_ERRNO).store(e as u64, Ordering::Relaxed);
        shared
            .get(FAIL_STAGE)
            .store(stage as u64, Ordering::Relaxed);
        shared.get(STATE).store(FAILED, Ordering::Release);
        // SAFETY: ends the child without the parent's atexit handlers.
        unsafe { libc::_exit(1) }
    };
    // If the driver dies, so does the victim: nothing is left behind.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
        fail(Stage::ParentDeathSignal, errno());
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    // The name the OOM killer's report gives the victim (else "init").
    // SAFETY: prctl with a valid NUL-terminated name of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"oom-victim".as_ptr()) };
    if !plan.unkillable {
        if let Err(e) = crate::oom::set_oom_score_adj(1000) {
            let code = e
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::raw_os_error)
                .unwrap_or(libc::EIO);
            fail(Stage::OomScoreAdj, code);
        }
    }
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND | libc::O_CLOEXEC;
    let mut fds = [0; 2];
    for fd in &mut fds {
        // SAFETY: a valid NUL-terminated path.
        *fd = unsafe { libc::open(plan.file.as_ptr(), flags, 0o600) };
        if *fd < 0 {
            fail(Stage::OpenFile, errno());
        }
    }
    // SAFETY: a valid NUL-terminated path.
    let zero = unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if zero < 0 {
        fail(Stage::OpenZero, errno());
    }
    let lock = plan.lock_file.as_ref().map(|path| {
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            fail(Stage::OpenLock, errno());
        }
        fd
    });
    // The threads get their own handle on the page, never unmapped: the
    // process ends by _exit or SIGKILL.
    let shared: &'static Shared = Box::leak(Box::new(Shared { ptr: shared.ptr }));
    let spawned = (|| -> std::io::Result<()> {
        for (w, fd) in fds.into_iter().enumerate() {
            let (delay, round, every) = (plan.writer_delay, plan.round, plan.fsync_every);
            std::thread::Builder::new()
                .name(format!("writer{w}"))
                .spawn(move || writer(shared, w, fd, delay, round, every))?;
        }
        if let Some(fd) = lock {
            std::thread::Builder::new()
                .name("blocker".into())
                .spawn(move || blocker(shared, fd))?;
        }
        let (file, delay) = (plan.file.clone(), plan.consumer_delay);
        let fill = if plan.populate {
            Fill::Populate(zero)
        } else {
            Fill::ReadZero(zero)
        };
        std::thread::Builder::new()
            .name("consumer".into())
            .spawn(move || consumer(shared, fill, &file, delay))?;
        Ok(())
    })();
    if let Err(e) = spawned {
        fail(
            Stage::SpawnThreads,
            e.raw_os_error().unwrap_or(libc::EAGAIN),
        );
    }
    shared.get(STATE).store(READY, Ordering::Release);
    // The seed's main thread: pause() until killed.
    loop {
        // SAFETY: no preconditions.
        unsafe { libc::pause() };
    }
}

/// A file writer: stamped 4 KiB appends forever, each completed one
/// counted, an fdatasync every `fsync_every` records.
fn writer(shared: &Shared, w: usize, fd: i32, delay: Duration, round: u64, fsync_every: u64) {
    // One page of our own, 4 KiB aligned for the stamp code.
    let mut buf = vec![0u64; WRITE_SIZE / 8];
    std::thread::sleep(delay);
    let mut seq = 0u64;
    loop {
        let stamp = Stamp {
            region: region::OOM_FILE + w as u16,
            page: seq as u32,
            generation: round,
        };
        // SAFETY: `buf` is WRITE_SIZE bytes, 8-aligned, and only written
        // through this pointer while no reference is in use.
        unsafe { crate::oracle::mem::fill(buf.as_mut_ptr() as usize, &stamp) };
        // SAFETY: writes from our own buffer to our own fd.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), WRITE_SIZE) };
        if n == WRITE_SIZE as isize {
            seq += 1;
            shared
                .get(WRITTEN[w])
                .fetch_add(WRITE_SIZE as u64, Ordering::Relaxed);
            // SAFETY: fdatasync of our own fd.
            if fsync_every > 0
                && seq.is_multiple_of(fsync_every)
                && unsafe { libc::fdatasync(fd) } == 0
            {
                shared.get(SYNCED[w]).store(seq, Ordering::Relaxed);
            }
        } else {
            // The seed stops here; keep trying instead (ENOSPC passes once
            // an earlier round's file is freed), and count it.
            let e = if n < 0 { errno() } else { 0 };
            shared.get(WRITE_ERRNO).store(e as u64, Ordering::Relaxed);
            shared.get(WRITE_ERRORS).fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The blocker: rewrites the lock file's first 4 KiB forever. Each pwrite
/// takes the inode lock exclusively, so while the lock holder reads the
/// file this thread sleeps in `down_write` (uninterruptible: not even
/// SIGKILL ends that wait).
fn blocker(shared: &Shared, fd: i32) {
    static BUF: [u8; WRITE_SIZE] = [0x42; WRITE_SIZE];
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    shared.get(BLOCKER_TID).store(tid as u64, Ordering::Relaxed);
    loop {
        // SAFETY: writes from a valid static buffer to our own fd.
        let n = unsafe { libc::pwrite(fd, BUF.as_ptr().cast(), WRITE_SIZE, 0) };
        if n == WRITE_SIZE as isize {
            shared.get(BLOCKER_WRITES).fetch_add(1, Ordering::Relaxed);
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The seed's realloc doubling: from 1 MiB up, until realloc fails (or
/// 512 GiB). Returns the buffer and its size (null and 0 if even 1 MiB
/// failed).
fn grow() -> (*mut libc::c_void, usize) {
    let mut buf: *mut libc::c_void = std::ptr::null_mut();
    let mut have = 0usize;
    let mut size = 1usize << 20;
    while size < 512usize << 30 {
        // SAFETY: `buf` is null or the block the previous realloc returned.
        let p = unsafe { libc::realloc(buf, size) };
        if p.is_null() {
            break;
        }
        buf = p;
        have = size;
        size <<= 1;
    }
    (buf, have)
}

/// include/uapi/asm-generic/mman-common.h (Linux 5.14).
const MADV_POPULATE_WRITE: libc::c_int = 23;

/// How the consumer fills a buffer.
#[derive(Debug, Clone, Copy)]
enum Fill {
    /// read() from this /dev/zero descriptor, as the seed does: a page
    /// fault per page inside the copy, and the copy.
    ReadZero(i32),
    /// MADV_POPULATE_WRITE: the same anonymous pages allocated by the
    /// kernel's fault path in one call, without the exception per page or
    /// the copy. A kernel without it (EINVAL) gets the read from this
    /// /dev/zero descriptor.
    Populate(i32),
}

impl Fill {
    fn fill(self, buf: *mut libc::c_void, size: usize) {
        match self {
            // SAFETY: reads into the `size` bytes realloc gave us. Will
            // cause OOM due to overcommit, as the seed says.
            Fill::ReadZero(zero) => unsafe {
                libc::read(zero, buf, size);
            },
            // SAFETY: populates the `size` bytes realloc gave us (page
            // aligned: glibc mmaps a block this large, with its header in
            // the first page, which is ours too).
            Fill::Populate(zero) => unsafe {
                let page = buf as usize & !(PAGE - 1);
                let len = (buf as usize + size - page).next_multiple_of(PAGE);
                if libc::madvise(page as *mut _, len, MADV_POPULATE_WRITE) != 0
                    && errno() == libc::EINVAL
                {
                    Fill::ReadZero(zero).fill(buf, size);
                }
            },
        }
    }
}

/// The memory consumer. The buffers are never freed: the process holds
/// them until it is killed.
fn consumer(shared: &Shared, fill: Fill, file: &CString, delay: Duration) {
    std::thread::sleep(delay);
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::unlink(file.as_ptr()) };
    loop {
        let (buf, size) = grow();
        if size == 0 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        shared
            .get(BUFFER_BYTES)
            .fetch_add(size as u64, Ordering::Relaxed);
        let _ = shared.get(READ_START_NS).compare_exchange(
            0,
            mono_ns(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        fill.fill(buf, size);
        shared.get(READS_DONE).fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_words() {
        assert!(killed_by_sigkill(libc::SIGKILL));
        assert!(!killed_by_sigkill(libc::SIGTERM));
        assert!(!killed_by_sigkill(-1));
        assert!(!killed_by_sigkill(3 << 8));
        assert_eq!(describe_status(libc::SIGKILL), "killed by SIGKILL");
        assert_eq!(describe_status(3 << 8), "exit status 3");
        assert_eq!(describe_status(-1), "not waitable");
    }

    /// The real victim, minus the OOM: it makes itself the OOM killer's
    /// first choice, its writers append to a temporary file and the driver
    /// side sees the bytes; the consumer's delay is long enough that it
    /// never allocates here. Killing and reaping work.
    #[test]
    fn writers_count_into_the_shared_page() {
        let path = std::env::temp_dir().join(format!("mmrace-victim-{}", std::process::id()));
        let plan = Plan {
            file: CString::new(path.to_str().unwrap()).unwrap(),
            writer_delay: Duration::ZERO,
            consumer_delay: Duration::from_secs(3600),
            unkillable: false,
            round: 1,
            fsync_every: 16,
            lock_file: None,
            populate: false,
        };
        let mut v = Victim::spawn(&plan).unwrap();
        let adj = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", v.pid())).unwrap();
        assert_eq!(adj.trim(), "1000");
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", v.pid())).unwrap();
        assert_eq!(comm.trim(), "oom-victim");
        let deadline = Instant::now() + Duration::from_secs(10);
        while v.progress().written.iter().any(|&w| w < 64 * 1024) {
            assert!(Instant::now() < deadline, "{:?}", v.progress());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!v.gone());
        assert_eq!(v.progress().read_start_ns, None);
        v.kill();
        let status = v.reap();
        assert!(killed_by_sigkill(status), "{}", describe_status(status));
        assert!(v.gone());
        let p = v.progress();
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::remove_file(&path).unwrap();
        // A write the kill cut off between write() and the count: at most
        // one per writer goes uncounted.
        let counted = p.written[0] + p.written[1];
        assert!(
            (counted..=counted + 2 * WRITE_SIZE as u64).contains(&len),
            "file {len} bytes, counted {counted}"
        );
        assert_eq!(len % WRITE_SIZE as u64, 0);
    }
}
