//! Watching a forked child without reaping it: until it is reaped its pid
//! cannot be reused, so threads still holding the pid cannot hit a stranger.

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
