//! PID 1 in the mmrace guest. The initramfs holds only this binary and
//! mmrace.ko, so init's chores are done here with syscalls: mount the pseudo
//! filesystems, read the arguments from the kernel command line, then fork.
//! The child runs the driver; PID 1 only reaps orphans until that child
//! exits, then syncs and powers off.
//!
//! Why a separate child: PID 1 inherits every orphaned process, and a reaper
//! looping on `waitpid(-1)` in the driver's own process would steal the exit
//! statuses a scenario waits for with `waitpid(pid)`. And PID 1 must never
//! exit or panic: the kernel would panic with "Attempted to kill init",
//! which the host would take for a kernel bug. So every failure here is
//! reported as a Result on the wire, followed by a clean power-off.

use crate::oom;
use crate::output::Output;
use crate::{cmdline, run};
use mmrace_proto::spec::{RunSpec, CMDLINE_KEY};
use mmrace_proto::wire::Msg;
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::path::PathBuf;
use std::time::Instant;

/// The virtio console the host reads protocol lines from.
pub const WIRE_DEVICE: &str = "/dev/hvc0";

pub use mmrace_proto::spec::MODULE_IN_INITRAMFS;

/// What init mounts, in order: (source, target, type, flags).
const MOUNTS: &[(&str, &str, &str, MsFlags)] = &[
    (
        "proc",
        "/proc",
        "proc",
        MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
    ),
    (
        "sysfs",
        "/sys",
        "sysfs",
        MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
    ),
    ("devtmpfs", "/dev", "devtmpfs", MsFlags::MS_NOSUID),
    (
        "debugfs",
        "/sys/kernel/debug",
        "debugfs",
        MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
    ),
    (
        "tmpfs",
        "/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
    ),
];

/// PID 1's whole life. Never returns.
pub fn main() -> ! {
    let start = Instant::now();
    let guarded = std::panic::catch_unwind(|| pid1(start));
    if guarded.is_err() {
        // Best effort: the wire may be gone with the panic's cause.
        let out = open_wire(None);
        report_failure(&out, start, "init panicked (see the console)".into());
    }
    power_off()
}

fn pid1(start: Instant) {
    let human = Output::stdout();
    for problem in mount_all() {
        human.human(&problem);
    }
    if let Err(e) = oom::protect_self() {
        human.human(&format!("init: {e:#}"));
    }
    let out = open_wire(None);
    let spec = match read_spec() {
        Ok(spec) => spec,
        Err(message) => {
            report_failure(&out, start, message);
            return;
        }
    };
    // SAFETY: PID 1 is single-threaded here (no thread was started), so the
    // child may run anything.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => std::process::exit(run::run_spec(
            &spec,
            Some(std::path::Path::new(MODULE_IN_INITRAMFS)),
            out,
        )),
        Ok(ForkResult::Parent { child }) => {
            if let Some(message) = describe_exit(reap_until(child)) {
                report_failure(&out, start, message);
            }
        }
        Err(e) => report_failure(&out, start, format!("init: fork failed: {e}")),
    }
}

/// Mounts what the driver needs; returns a line for each mount that failed
/// (not fatal: the step that needs it reports the real consequence).
fn mount_all() -> Vec<String> {
    let mut problems = Vec::new();
    for &(source, target, fstype, flags) in MOUNTS {
        if is_mounted(target, fstype) {
            continue;
        }
        let _ = std::fs::create_dir_all(target);
        match nix::mount::mount(Some(source), target, Some(fstype), flags, None::<&str>) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(e) => problems.push(format!("init: cannot mount {fstype} on {target}: {e}")),
        }
    }
    problems
}

/// Whether `fstype` is mounted at `target` (per /proc/self/mounts, so
/// always false before /proc is).
fn is_mounted(target: &str, fstype: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<_> = l.split_whitespace().collect();
                f.len() > 2 && f[1] == target && f[2] == fstype
            })
        })
        .unwrap_or(false)
}

/// The run from `mmrace.spec` in /proc/cmdline; the error is the Result
/// message.
fn read_spec() -> Result<RunSpec, String> {
    let line = std::fs::read_to_string("/proc/cmdline")
        .map_err(|e| format!("init: cannot read /proc/cmdline: {e}"))?;
    let value = cmdline::value(&line, CMDLINE_KEY)
        .map_err(|e| format!("init: {e:#}"))?
        .ok_or_else(|| {
            format!(
                "init: no {CMDLINE_KEY}=... on the kernel command line: {}",
                line.trim()
            )
        })?;
    RunSpec::from_cmdline_value(&value).map_err(|e| format!("init: {e}"))
}

/// The protocol channel: `wire` if given (created if missing), else the
/// virtio console (never created: a missing device means no virtio console,
/// and a regular file there would swallow the protocol), else stdout (then
/// the host finds the lines on the serial console).
fn open_wire(wire: Option<PathBuf>) -> Output {
    let (opened, what) = match &wire {
        Some(path) => (Output::to_path(path), path.display().to_string()),
        None => (Output::to_device(WIRE_DEVICE), WIRE_DEVICE.to_string()),
    };
    opened.unwrap_or_else(|e| {
        let out = Output::stdout();
        out.human(&format!(
            "init: cannot open {what} ({e}): protocol lines go to the console"
        ));
        out
    })
}

/// Waits until `driver` exits, reaping every other process that ends on the
/// way (orphans of the scenario's workloads).
fn reap_until(driver: Pid) -> WaitStatus {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(status) if status.pid() == Some(driver) => return status,
            Ok(_) | Err(Errno::EINTR) => {}
            // No child left at all (cannot happen while the driver lives):
            // report it as the driver's end rather than spin.
            Err(_) => return WaitStatus::StillAlive,
        }
    }
}

/// `None` when the driver ended normally (exit 0 or 1: it sent its own
/// Result); otherwise the message for the Result init sends on its behalf.
pub fn describe_exit(status: WaitStatus) -> Option<String> {
    match status {
        WaitStatus::Exited(_, run::EXIT_OK | run::EXIT_FAILED) => None,
        WaitStatus::Exited(_, code) => Some(format!("driver died: exit status {code}")),
        WaitStatus::Signaled(_, sig, core) => Some(format!(
            "driver died: killed by {}{}",
            sig.as_str(),
            if core { " (core dumped)" } else { "" }
        )),
        other => Some(format!("driver died: lost track of it ({other:?})")),
    }
}

fn report_failure(out: &Output, start: Instant, message: String) {
    out.human(&format!("result: FAILED: {message}"));
    out.msg(&Msg::Result {
        t_ms: start.elapsed().as_millis() as u64,
        ok: false,
        message,
        data: None,
    });
}

/// Syncs and powers the guest off. If that fails, sleeps forever: exiting
/// would panic the kernel.
fn power_off() -> ! {
    Output::stdout().human("init: powering off");
    // SAFETY: no preconditions.
    unsafe { libc::sync() };
    let e = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    Output::stdout().human(&format!("init: power-off failed ({e:?}); halting here"));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    /// Forks a child that sleeps `ms` and then runs `end` (only
    /// async-signal-safe calls: the test process has threads).
    fn child(ms: u32, end: fn()) -> Pid {
        // SAFETY: the child only sleeps and exits or kills itself.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                unsafe { libc::usleep(ms * 1000) };
                end();
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => child,
        }
    }

    #[test]
    fn reaps_others_until_the_driver_ends() {
        // Played out in a forked "init" so its waitpid(-1) sees only its own
        // children, never those of tests running beside it.
        let init = child(0, || {
            let other = child(0, || unsafe { libc::_exit(0) });
            let driver = child(100, || unsafe { libc::_exit(7) });
            let first = reap_until(driver) == WaitStatus::Exited(driver, 7);
            // `other` ended first and was reaped on the way.
            let reaped = waitpid(other, None) == Err(Errno::ECHILD);
            let driver = child(20, || unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            });
            let killed = describe_exit(reap_until(driver)).as_deref()
                == Some("driver died: killed by SIGKILL");
            let code = i32::from(!first) | i32::from(!reaped) << 1 | i32::from(!killed) << 2;
            unsafe { libc::_exit(code) }
        });
        assert_eq!(
            waitpid(init, None),
            Ok(WaitStatus::Exited(init, 0)),
            "bits: 1 status, 2 reaping, 4 signal"
        );
    }

    #[test]
    fn driver_exit_statuses() {
        let pid = Pid::from_raw(42);
        assert_eq!(describe_exit(WaitStatus::Exited(pid, 0)), None);
        assert_eq!(describe_exit(WaitStatus::Exited(pid, 1)), None);
        assert_eq!(
            describe_exit(WaitStatus::Exited(pid, 101)).unwrap(),
            "driver died: exit status 101"
        );
        assert_eq!(
            describe_exit(WaitStatus::Signaled(pid, Signal::SIGKILL, false)).unwrap(),
            "driver died: killed by SIGKILL"
        );
        assert_eq!(
            describe_exit(WaitStatus::Signaled(pid, Signal::SIGSEGV, true)).unwrap(),
            "driver died: killed by SIGSEGV (core dumped)"
        );
    }
}
