//! `--sequential`: the same parties, one at a time. A baton in a shared
//! anonymous page (so the writer child's threads and the driver's party
//! threads see the same one) names the party whose turn it is; each party
//! waits for its turn, does one operation, and passes the baton to the
//! next in a fixed round-robin order. Never are two operations in flight,
//! so a bug that a sequential run does not hit but the racing run does is
//! race-only (issue 9: "smoke, and a sequential run of the same parties,
//! stay clean").
//!
//! Waiters sleep on a futex on the baton word (not FUTEX_PRIVATE: the word
//! is shared between processes) with a timeout, so driver threads notice
//! the end of the run and the supervisor notices a writer that died holding
//! the baton (it then takes the baton itself, see [`Baton::steal`]).

use anyhow::{bail, Result};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a waiter sleeps before it polls its give-up condition.
const POLL: Duration = Duration::from_millis(10);

struct Page {
    ptr: *mut u8,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for Page {}
// SAFETY: as above.
unsafe impl Sync for Page {}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: unmaps the page mapped in `Baton::new`; the atomics that
        // borrow it do not outlive `self`.
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

/// The baton and the turn order. Cloning shares it.
#[derive(Clone)]
pub struct Baton {
    page: Arc<Page>,
    order: Arc<Vec<String>>,
}

impl std::fmt::Debug for Baton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Baton({:?})", self.order)
    }
}

impl PartialEq for Baton {
    fn eq(&self, other: &Baton) -> bool {
        Arc::ptr_eq(&self.page, &other.page)
    }
}
impl Eq for Baton {}

fn futex(word: &AtomicU32, op: libc::c_int, val: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 in a shared mapping for the
    // duration of the call; the timeout is null or a live timespec.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, val, tsp, 0usize, 0u32) };
}

impl Baton {
    /// A baton for `order` (party names, distinct), held by the first.
    pub fn new(order: Vec<String>) -> Result<Baton> {
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        if order.is_empty() || sorted.len() != order.len() {
            bail!("sequential: bad turn order {order:?}");
        }
        // SAFETY: a fresh shared anonymous page; nothing else is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            bail!("sequential: mmap: {}", std::io::Error::last_os_error());
        }
        Ok(Baton {
            page: Arc::new(Page { ptr: p.cast() }),
            order: Arc::new(order),
        })
    }

    /// The word naming whose turn it is (offset 0 of the page).
    fn word(&self) -> &AtomicU32 {
        // SAFETY: the page is zeroed, page-aligned and lives as long as
        // `self`; a zero u32 is a valid AtomicU32.
        unsafe { &*self.page.ptr.cast::<AtomicU32>() }
    }

    /// Turns taken so far (offset 8).
    fn turns(&self) -> &AtomicU64 {
        // SAFETY: as above, 8-aligned within the page.
        unsafe { &*self.page.ptr.add(8).cast::<AtomicU64>() }
    }

    pub fn order(&self) -> &[String] {
        &self.order
    }

    pub fn turns_taken(&self) -> u64 {
        self.turns().load(Ordering::Relaxed)
    }

    /// The turn index of party `name` (panics for a party not in the
    /// order: a programming error).
    pub fn index(&self, name: &str) -> u32 {
        self.order
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("sequential: {name} not in {:?}", self.order)) as u32
    }

    /// Whose turn it is now.
    pub fn current(&self) -> &str {
        &self.order[self.word().load(Ordering::Acquire) as usize]
    }

    /// Waits for `name`'s turn. `give_up` is polled while waiting; when it
    /// says so, returns `None`. The [`Turn`] passes the baton on drop.
    pub fn take(&self, name: &str, mut give_up: impl FnMut() -> bool) -> Option<Turn<'_>> {
        let me = self.index(name);
        loop {
            let now = self.word().load(Ordering::Acquire);
            if now == me {
                return Some(Turn { baton: self, me });
            }
            if give_up() {
                return None;
            }
            futex(self.word(), libc::FUTEX_WAIT, now, Some(POLL));
        }
    }

    /// Takes the baton for `name` now, whoever holds it: only for the
    /// supervisor, when the writer died (maybe holding it) and must be
    /// replaced.
    pub fn steal(&self, name: &str) -> Turn<'_> {
        let me = self.index(name);
        self.word().store(me, Ordering::Release);
        Turn { baton: self, me }
    }

    fn pass(&self, me: u32) {
        let next = (me + 1) % self.order.len() as u32;
        // Only the holder passes: a stolen baton is not passed twice.
        if self
            .word()
            .compare_exchange(me, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.turns().fetch_add(1, Ordering::Relaxed);
            futex(self.word(), libc::FUTEX_WAKE, i32::MAX as u32, None);
        }
    }
}

/// A party's turn; the baton moves on when it is dropped.
pub struct Turn<'a> {
    baton: &'a Baton,
    me: u32,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.baton.pass(self.me);
    }
}

/// Takes `name`'s turn if there is a baton, else runs freely (`Some(None)`);
/// `None` when the wait was given up.
pub fn turn<'a>(
    baton: Option<&'a Baton>,
    name: &str,
    give_up: impl FnMut() -> bool,
) -> Option<Option<Turn<'a>>> {
    match baton {
        None => Some(None),
        Some(b) => b.take(name, give_up).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn parties_take_turns_round_robin_never_two_at_once() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let baton = Baton::new(names.clone()).unwrap();
        let log = Mutex::new(Vec::new());
        let busy = AtomicU32::new(0);
        std::thread::scope(|s| {
            for n in &names {
                let (baton, log, busy) = (&baton, &log, &busy);
                s.spawn(move || {
                    for _ in 0..50 {
                        let _t = baton.take(n, || false).unwrap();
                        assert_eq!(busy.fetch_add(1, Ordering::SeqCst), 0, "two at once");
                        log.lock().unwrap().push(n.clone());
                        std::thread::yield_now();
                        busy.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        let log = log.into_inner().unwrap();
        assert_eq!(log.len(), 150);
        for (i, n) in log.iter().enumerate() {
            assert_eq!(n, &names[i % 3], "turn {i}");
        }
        assert_eq!(baton.turns_taken(), 150);
    }

    #[test]
    fn works_across_fork_and_gives_up_and_steals() {
        let baton = Baton::new(vec!["parent".into(), "child".into()]).unwrap();
        // SAFETY: the child only waits on the baton (atomics, futex) and
        // leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            for _ in 0..20 {
                drop(baton.take("child", || false));
            }
            // SAFETY: ends the forked test child.
            unsafe { libc::_exit(0) };
        }
        for _ in 0..20 {
            drop(baton.take("parent", || false).unwrap());
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert_eq!(baton.turns_taken(), 40);
        assert_eq!(baton.current(), "parent");
        // Nobody will pass to "child" now: its wait gives up...
        let t = baton.take("parent", || false).unwrap();
        let mut polls = 0;
        assert!(baton
            .take("child", || {
                polls += 1;
                polls > 2
            })
            .is_none());
        // ... and a steal takes it regardless; the old holder's pass is void.
        let s = baton.steal("child");
        drop(t);
        assert_eq!(baton.current(), "child");
        drop(s);
        assert_eq!(baton.current(), "parent");
        assert!(Baton::new(vec!["x".into(), "x".into()]).is_err());
        assert!(turn(None, "x", || false).unwrap().is_none());
    }
}
