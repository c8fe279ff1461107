//! SIGTERM and SIGINT end a run early but cleanly: they set the run's stop
//! flag, the scenario winds down at its next `should_stop()` check, and the
//! driver still sends its final snapshot and Result.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

/// The flag the handler sets: a leaked reference to the run's stop flag
/// (an atomic pointer load and store are all a signal handler may do).
static STOP: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_signal(_: libc::c_int) {
    let flag = STOP.load(Ordering::Acquire);
    if !flag.is_null() {
        // SAFETY: set from a leaked Arc in `stop_on_signals`, never freed.
        unsafe { (*flag).store(true, Ordering::Relaxed) };
    }
}

/// Makes SIGTERM and SIGINT set `stop` instead of killing the process.
pub fn stop_on_signals(stop: &Arc<AtomicBool>) -> nix::Result<()> {
    let leaked = Arc::into_raw(stop.clone()) as *mut AtomicBool;
    // An earlier flag stays leaked: a handler may be reading it right now.
    STOP.store(leaked, Ordering::Release);
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only touches an atomic.
        unsafe { sigaction(sig, &action)? };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_sets_the_flag() {
        let stop = Arc::new(AtomicBool::new(false));
        stop_on_signals(&stop).unwrap();
        // raise() delivers to this thread before returning.
        nix::sys::signal::raise(Signal::SIGTERM).unwrap();
        assert!(stop.load(Ordering::Relaxed));
    }
}
