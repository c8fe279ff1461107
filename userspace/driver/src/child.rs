//! Child processes: [`GroupChild`], a program started as the leader of its
//! own process group, and watching a forked child without reaping it
//! ([`peek_exit`]: until it is reaped its pid cannot be reused, so threads
//! still holding the pid cannot hit a stranger).

use anyhow::{Context, Result};
use std::ffi::CString;
use std::os::fd::RawFd;

/// A program started with a raw fork and execve (std's Command needs
/// socketpair(2), and the test kernel has no sockets) as the leader of its
/// own process group, so it and everything it starts can be killed at
/// once, and OOM-killable (the driver is OOM-exempt, and that is
/// inherited: see [`crate::oom`]).
#[derive(Debug)]
pub struct GroupChild {
    pub pid: libc::pid_t,
    status: Option<i32>,
}

impl GroupChild {
    /// Starts `argv[0]` (a path) with `argv`, the environment `env`
    /// (`KEY=value`), in `cwd` if given, with these descriptors as stdin,
    /// stdout and stderr. Fails when the program cannot be executed.
    pub fn spawn(
        argv: &[String],
        env: &[String],
        cwd: Option<&str>,
        stdio: [RawFd; 3],
    ) -> Result<GroupChild> {
        let cstr = |s: &str| CString::new(s).context("NUL in an argument");
        let argv_c = argv.iter().map(|a| cstr(a)).collect::<Result<Vec<_>>>()?;
        let env_c = env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>>>()?;
        let cwd_c = cwd.map(cstr).transpose()?;
        let prog = argv_c.first().context("no program to run")?;
        let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
        argv_p.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        // The child reports a failed execve's errno here; a successful one
        // closes it (O_CLOEXEC) and the parent reads nothing.
        let mut errpipe = [0; 2];
        // SAFETY: pipe2 fills the two-element array.
        if unsafe { libc::pipe2(errpipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error()).context("pipe2");
        }
        // SAFETY: fork in a threaded process; the child makes only raw
        // syscalls on memory prepared above, then execs or _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: async-signal-safe calls only (see above).
            unsafe {
                libc::setpgid(0, 0);
                let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
                if fd >= 0 {
                    libc::write(fd, b"0\n".as_ptr().cast(), 2);
                    libc::close(fd);
                }
                for (to, from) in stdio.into_iter().enumerate() {
                    libc::dup2(from, to as RawFd);
                }
                let ok = cwd_c.as_ref().is_none_or(|d| libc::chdir(d.as_ptr()) == 0);
                if ok {
                    libc::execve(prog.as_ptr(), argv_p.as_ptr(), envp.as_ptr());
                }
                let errno = *libc::__errno_location();
                libc::write(errpipe[1], (&errno as *const i32).cast(), 4);
                libc::_exit(127);
            }
        }
        let fork_error = std::io::Error::last_os_error();
        // SAFETY: closing our copy of the write end.
        unsafe { libc::close(errpipe[1]) };
        if pid < 0 {
            // SAFETY: closing the read end we own.
            unsafe { libc::close(errpipe[0]) };
            return Err(fork_error).context("fork");
        }
        let mut errno: i32 = 0;
        // SAFETY: reads at most 4 bytes into an i32, then closes our fd.
        let n = unsafe {
            let n = libc::read(errpipe[0], (&mut errno as *mut i32).cast(), 4);
            libc::close(errpipe[0]);
            n
        };
        let mut child = GroupChild { pid, status: None };
        if n == 4 {
            child.wait();
            return Err(std::io::Error::from_raw_os_error(errno))
                .with_context(|| format!("cannot execute {}", argv[0]));
        }
        Ok(child)
    }

    /// The wait status once it has ended (reaped here), else None.
    pub fn try_wait(&mut self) -> Option<i32> {
        if self.status.is_none() {
            let mut st = 0;
            // SAFETY: waits for our own child.
            if unsafe { libc::waitpid(self.pid, &mut st, libc::WNOHANG) } == self.pid {
                self.status = Some(st);
            }
        }
        self.status
    }

    /// Blocks until it has ended; its wait status.
    pub fn wait(&mut self) -> i32 {
        while self.status.is_none() {
            let mut st = 0;
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(self.pid, &mut st, 0) };
            if r == self.pid
                || (r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
            {
                self.status = Some(st);
            }
        }
        self.status.unwrap_or(0)
    }

    /// Sends `sig` to its whole process group.
    pub fn signal_group(&self, sig: i32) {
        // SAFETY: a plain kill(2) of the group the child leads.
        unsafe { libc::kill(-self.pid, sig) };
    }

    /// SIGKILLs its whole process group.
    pub fn kill_group(&self) {
        self.signal_group(libc::SIGKILL);
    }
}

/// `exit 0`, `signal 9`: a wait status in words.
pub fn describe(st: i32) -> String {
    if libc::WIFEXITED(st) {
        format!("exit {}", libc::WEXITSTATUS(st))
    } else if libc::WIFSIGNALED(st) {
        format!("signal {}", libc::WTERMSIG(st))
    } else {
        format!("wait status {st:#x}")
    }
}

/// How the child `pid` ended, if it has, leaving it waitable (WNOWAIT).
/// A child that is not waitable at all (ECHILD: an init reaper took it)
/// counts as ended.
pub fn peek_exit(pid: libc::pid_t) -> Option<String> {
    // SAFETY: siginfo_t is plain data, valid when zeroed.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child with a valid siginfo pointer;
    // WNOWAIT leaves it waitable.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return Some(format!("not waitable: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: waitid filled `info` (si_pid 0 means no state change).
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return None;
    }
    Some(match code {
        libc::CLD_EXITED => format!("exit status {status}"),
        libc::CLD_KILLED | libc::CLD_DUMPED => format!("killed by signal {status}"),
        _ => format!("si_code {code}, status {status}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_child_runs_reports_exec_errors_and_dies_with_its_group() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut c = GroupChild::spawn(
            &words(&["/bin/sh", "-c", "exit 5"]),
            &[],
            Some("/"),
            [0, 1, 2],
        )
        .unwrap();
        assert_eq!(describe(c.wait()), "exit 5");
        let e = GroupChild::spawn(&words(&["/nonexistent/x"]), &[], None, [0, 1, 2]).unwrap_err();
        assert!(format!("{e:#}").contains("No such file"), "{e:#}");
        let mut c =
            GroupChild::spawn(&words(&["/bin/sleep", "100"]), &[], None, [0, 1, 2]).unwrap();
        assert_eq!(c.try_wait(), None);
        c.kill_group();
        assert_eq!(describe(c.wait()), "signal 9");
    }

    #[test]
    fn sees_exit_without_reaping() {
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the forked child at once.
            unsafe { libc::_exit(3) };
        }
        let mut seen = None;
        for _ in 0..500 {
            seen = peek_exit(pid);
            if seen.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(seen.as_deref(), Some("exit status 3"));
        // Still waitable: the peek did not reap it.
        let mut status = 0;
        // SAFETY: reaping our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(peek_exit(pid).unwrap().starts_with("not waitable"));
    }
}
