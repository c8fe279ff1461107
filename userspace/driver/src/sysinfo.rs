//! Facts about the running kernel for the banner and the report.

/// The kernel release (`uname -r`), or "unknown".
pub fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".to_string();
    }
    // SAFETY: uname NUL-terminates its fields.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// CPUs online, from sysconf.
pub fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(0) as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_looks_like_one() {
        let r = super::kernel_release();
        assert!(r.chars().next().unwrap().is_ascii_digit(), "{r}");
    }
}
