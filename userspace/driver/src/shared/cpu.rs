//! Placing the calling thread: pinned to one CPU, or made SCHED_FIFO.

/// Pins the calling thread to `cpu` (failure ignored: a racer still
/// races, only less often in parallel).
pub fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Makes the calling thread SCHED_FIFO at `priority`; whether it worked
/// (it needs CAP_SYS_NICE, which the guest's root has).
pub fn realtime(priority: i32) -> bool {
    let p = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: sets this thread's policy from a valid sched_param.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) == 0 }
}
