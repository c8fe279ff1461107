//! Ctrl-C and SIGTERM only raise a flag: the monitor sees it within a tick,
//! kills QEMU and the run still gets its report. A second one exits at once
//! (exit code 2), in case writing the report itself is what got stuck; QEMU
//! then dies with us through its parent-death signal.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, Ordering};

pub static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn raise_flag(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(2) };
    }
}

pub fn install() {
    let action = SigAction::new(
        SigHandler::Handler(raise_flag),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only swaps an atomic and calls _exit, both
        // async-signal-safe.
        if let Err(e) = unsafe { sigaction(sig, &action) } {
            eprintln!("mmrace: warning: cannot handle {sig}: {e}");
        }
    }
}
