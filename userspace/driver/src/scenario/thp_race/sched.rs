//! Who gets the vCPUs. The guest has two, and the racers need both at the
//! same moment for a round to be a race; the other parties (the seed's
//! memset writer, the refault thread, clear_refs, migrate, splitter) are
//! busy loops that would otherwise take half the time slices. They run at a
//! higher nice value (`--party-nice`), which only weights the scheduler:
//! unlike a real-time policy it cannot starve anything, so no soft lockup
//! or RCU stall is provoked by the harness itself.

/// Raises the nice value of the calling thread only to at least `nice`
/// (Linux keeps nice per thread; threads created afterwards by this thread
/// inherit it). Never lowers it: a driver started under `nice` must not
/// boost its parties above its racers. Raising nice is always allowed;
/// failure is harmless and ignored.
pub fn nice_this_thread(nice: i32) {
    let nice = nice.max(this_thread_nice());
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority with integer arguments; `tid` is this thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
}

/// The calling thread's nice value.
pub fn this_thread_nice() -> i32 {
    // SAFETY: as above.
    let tid = unsafe { libc::gettid() };
    // SAFETY: getpriority with integer arguments (errno is not checked:
    // -1 is a valid answer and the callers only compare values).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_is_per_thread() {
        let mine = this_thread_nice();
        let other = std::thread::spawn(|| {
            nice_this_thread(15);
            let raised = this_thread_nice();
            nice_this_thread(0); // never lowered
            (raised, this_thread_nice())
        })
        .join()
        .unwrap();
        assert_eq!(other, (mine.max(15), mine.max(15)));
        assert_eq!(this_thread_nice(), mine);
    }
}
