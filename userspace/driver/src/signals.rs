//! SIGTERM and SIGINT end a run early but cleanly: they set the run's stop
//! flag, the scenario winds down at its next `should_stop()` check, and the
//! driver still sends its final snapshot and Result.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Makes SIGTERM and SIGINT set `stop` (signal-hook's flag handler).
pub fn stop_on_signals(stop: &Arc<AtomicBool>) -> std::io::Result<()> {
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn sigterm_sets_the_flag() {
        let stop = Arc::new(AtomicBool::new(false));
        stop_on_signals(&stop).unwrap();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
        assert!(stop.load(Ordering::Relaxed));
    }
}
