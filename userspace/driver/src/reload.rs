//! `--reload-module N`: unloads and reloads mmrace.ko N times while a
//! scenario runs, so module exit (probe unregistration and its
//! synchronisation) is exercised while every probe is firing.

use crate::ctx::Ctx;
use crate::module;
use anyhow::{bail, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long one unload may keep failing with EBUSY/EAGAIN (a reader of a
/// debugfs file holds a module reference) before the run gives up.
const UNLOAD_PATIENCE: Duration = Duration::from_secs(10);

/// Unloads mmrace.ko, retrying while it is busy (a reader of a debugfs
/// file, such as the streamer, holds a reference).
pub fn unload() -> Result<()> {
    let start = Instant::now();
    loop {
        // SAFETY: a static C string and flags; no memory is handed over.
        let r = unsafe {
            libc::syscall(
                libc::SYS_delete_module,
                c"mmrace".as_ptr(),
                libc::O_NONBLOCK,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EBUSY) | Some(libc::EAGAIN) if start.elapsed() < UNLOAD_PATIENCE => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => bail!("delete_module(mmrace): {e}"),
        }
    }
}

/// Runs `cycles` unload+load cycles back to back, counting them as the
/// `module_reload` op, then stops the scenario: the run lasts as long as
/// the cycles take, with the duration as a cap (a test then sees fewer
/// cycles than it asked for). The module is loaded on return.
pub fn cycle(ctx: &Ctx, path: &Path, cycles: u32) -> Result<u32> {
    let ops = ctx.op("module_reload");
    let mut done = 0;
    while done < cycles && !ctx.should_stop() {
        unload()?;
        module::load(path)?;
        done += 1;
        ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    ctx.event("module_reloads", format!("{done} unload/load cycles"));
    ctx.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(done)
}
