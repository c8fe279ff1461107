//! Ctrl-C and SIGTERM only raise a flag: the monitor sees it within a tick,
//! kills QEMU and the run still gets its report. A second one exits at once
//! (exit code 2), in case writing the report itself is what got stuck; QEMU
//! then dies with us through its parent-death signal. signal-hook's
//! conditional-shutdown pattern does exactly this.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Installs the handlers; returns the flag they raise.
pub fn install() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The shutdown is registered first, so it runs only once the flag
        // was already set by an earlier signal.
        let installed = signal_hook::flag::register_conditional_shutdown(sig, 2, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)));
        if let Err(e) = installed {
            eprintln!("mmrace: warning: cannot handle signal {sig}: {e}");
        }
    }
    stop
}
