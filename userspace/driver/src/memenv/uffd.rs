//! userfaultfd: the syscall must open a descriptor (as root nothing else is
//! needed; `vm.unprivileged_userfaultfd` matters only to other users).

use anyhow::{bail, Result};

/// Opens and closes a userfaultfd, to learn that the kernel has one.
pub fn check() -> Result<()> {
    // SAFETY: userfaultfd(2) takes flags only.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        bail!("userfaultfd(2): {e} (the kernel needs CONFIG_USERFAULTFD; EPERM: not root and vm.unprivileged_userfaultfd=0)");
    }
    // SAFETY: fd is a descriptor this function opened.
    unsafe { libc::close(fd as i32) };
    Ok(())
}
