//! A userfaultfd trap page that holds a kernel operation open (issue 18:
//! the exploit writer's trick, no kernel change needed).
//!
//! The trap is one anonymous page registered for MISSING faults on a
//! blocking userfaultfd, with a handler thread. An operation whose user
//! buffer ends on the trap (a `preadv` whose last iovec is the trap) does
//! its work on the earlier buffers first (an O_DIRECT read pins their
//! pages into its bio), then faults on the trap inside the kernel and
//! sleeps in `handle_userfault()`, still holding what it holds. The
//! handler waits the armed hold time, lets whatever races run, then
//! resolves the fault with UFFDIO_COPY of a zero page, and the operation
//! completes as it would have. [`Trap::rearm`] empties the page again.

use super::uffd::{
    self, Copy, Msg, Range, Register, COPY, EVENT_PAGEFAULT, MODE_MISSING, REGISTER,
};
use mmrace_proto::oracle::UNIT;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the handler looks at the quit flag while no fault comes.
const POLL_MS: i32 = 50;

#[repr(C, align(4096))]
struct Zero([u8; UNIT]);

#[derive(Default)]
struct State {
    /// How long the next fault is held.
    hold: Mutex<Duration>,
    /// The last hold: fault received, resolved (or `None` if the copy
    /// failed).
    last: Mutex<Option<(Instant, Option<Instant>)>>,
    holds: AtomicU64,
    quit: AtomicBool,
}

/// The trap page and its handler; unmapped and stopped on drop.
pub struct Trap {
    addr: usize,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

/// Maps one anonymous page.
fn map_page() -> std::io::Result<usize> {
    // SAFETY: a fresh private anonymous mapping of one page.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            UNIT,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    Ok(p as usize)
}

impl Trap {
    /// Maps the page, registers it and starts the handler.
    pub fn new() -> std::io::Result<Trap> {
        let (fd, _) = uffd::open(0)?;
        let addr = map_page()?;
        let mut reg = Register {
            range: Range {
                start: addr as u64,
                len: UNIT as u64,
            },
            mode: MODE_MISSING,
            ioctls: 0,
        };
        if !uffd::ioctl(&fd, REGISTER, &mut reg) {
            let e = std::io::Error::last_os_error();
            // SAFETY: our own page, mapped above.
            unsafe { libc::munmap(addr as *mut libc::c_void, UNIT) };
            return Err(e);
        }
        let state = Arc::new(State::default());
        let s = state.clone();
        let thread = std::thread::Builder::new()
            .name("trap".into())
            .spawn(move || handle(&s, &fd))?;
        Ok(Trap {
            addr,
            state,
            thread: Some(thread),
        })
    }

    /// The trap page's address.
    pub fn addr(&self) -> usize {
        self.addr
    }

    /// Sets the next hold's time and forgets the last hold.
    pub fn arm(&self, hold: Duration) {
        *self.state.hold.lock().unwrap() = hold;
        *self.state.last.lock().unwrap() = None;
    }

    /// The last hold since [`Trap::arm`]: when the fault came and when it
    /// was resolved.
    pub fn last(&self) -> Option<(Instant, Option<Instant>)> {
        *self.state.last.lock().unwrap()
    }

    /// Faults held so far.
    pub fn holds(&self) -> u64 {
        self.state.holds.load(Ordering::Acquire)
    }

    /// Empties the page so that the next access faults again.
    pub fn rearm(&self) {
        // SAFETY: advice on our own page.
        unsafe { libc::madvise(self.addr as *mut libc::c_void, UNIT, libc::MADV_DONTNEED) };
    }
}

impl Drop for Trap {
    fn drop(&mut self) {
        self.state.quit.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // SAFETY: our own page; the handler has left.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, UNIT) };
    }
}

/// Waits up to [`POLL_MS`] for a message; the message if one came.
fn next_msg(fd: &OwnedFd) -> Option<Msg> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd of ours.
    if unsafe { libc::poll(&mut p, 1, POLL_MS) } <= 0 {
        return None;
    }
    let mut m = Msg::default();
    let size = std::mem::size_of::<Msg>();
    // SAFETY: reads one uffd_msg into our #[repr(C)] copy of it.
    let n = unsafe {
        libc::read(
            fd.as_raw_fd(),
            &mut m as *mut Msg as *mut libc::c_void,
            size,
        )
    };
    (n == size as isize).then_some(m)
}

/// The handler: each fault held for the armed time, then resolved.
fn handle(s: &State, fd: &OwnedFd) {
    let zero = Box::new(Zero([0; UNIT]));
    while !s.quit.load(Ordering::Acquire) {
        let Some(m) = next_msg(fd) else { continue };
        if m.event != EVENT_PAGEFAULT {
            continue;
        }
        let came = Instant::now();
        s.holds.fetch_add(1, Ordering::AcqRel);
        let hold = *s.hold.lock().unwrap();
        std::thread::sleep(hold);
        let mut c = Copy {
            dst: m.address & !(UNIT as u64 - 1),
            src: zero.0.as_ptr() as u64,
            len: UNIT as u64,
            ..Copy::default()
        };
        // EEXIST: the page is there already (resolved by another copy).
        let ok = uffd::ioctl(fd, COPY, &mut c)
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST);
        *s.last.lock().unwrap() = Some((came, ok.then(Instant::now)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read that ends on the trap blocks for the hold and then
    /// completes; on a host without userfaultfd for this user, nothing to
    /// test.
    #[test]
    fn a_read_into_the_trap_is_held_then_resolved() {
        let trap = match Trap::new() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("no userfaultfd here ({e}): nothing to test");
                return;
            }
        };
        let src = std::fs::File::open("/dev/zero").unwrap();
        trap.arm(Duration::from_millis(20));
        let t = Instant::now();
        // SAFETY: reads UNIT bytes into the trap page, ours.
        let n = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&src),
                trap.addr() as *mut libc::c_void,
                UNIT,
            )
        };
        assert_eq!(n, UNIT as isize);
        assert!(t.elapsed() >= Duration::from_millis(20));
        // The handler records the hold after the copy that woke this
        // read: under load the read can return first, so wait for it.
        let until = Instant::now() + Duration::from_secs(5);
        while trap.last().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        let (came, done) = trap.last().expect("the fault was held");
        assert!(done.unwrap() >= came);
        assert_eq!(trap.holds(), 1);
        trap.rearm();
    }
}
