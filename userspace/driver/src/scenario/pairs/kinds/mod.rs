//! The object kinds ([`super::object::Maker`]s), one module per family.
//!
//! - [`anon`]: private anonymous memory.
//! - [`shmem`]: MAP_SHARED|MAP_ANONYMOUS and memfd.

pub mod anon;
pub mod shmem;

/// Maps `len` bytes at the reserved `addr` over the reservation with
/// MAP_FIXED, read-write, `flags` and `fd`, and advises MADV_HUGEPAGE.
pub fn map_fixed_thp(
    addr: usize,
    len: usize,
    flags: libc::c_int,
    fd: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: [addr, addr + len) is the caller's own reservation, replaced.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags | libc::MAP_FIXED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: advice on the mapping just made.
    if unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
