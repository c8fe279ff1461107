//! The raw userfaultfd(2) API: the ioctl numbers and argument structs of
//! include/uapi/linux/userfaultfd.h (x86_64), the handshake, and a typed
//! ioctl call. Used by `pairs`' `uffd` op and by the held-window trap
//! ([`super::hold`]).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const UFFD_API: u64 = 0xAA;
pub const FEATURE_SIGBUS: u64 = 1 << 7;
pub const FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
pub const FEATURE_MOVE: u64 = 1 << 16;
pub const MODE_MISSING: u64 = 1 << 0;
pub const MODE_WP: u64 = 1 << 1;
/// `uffd_msg.event` of a page fault.
pub const EVENT_PAGEFAULT: u8 = 0x12;

/// `_IOWR(0xAA, nr, size)` and `_IOR(0xAA, nr, size)`.
const fn iowr(nr: u64, size: usize) -> u64 {
    (3 << 30) | ((size as u64) << 16) | (0xAA << 8) | nr
}
const fn ior(nr: u64, size: usize) -> u64 {
    (2 << 30) | ((size as u64) << 16) | (0xAA << 8) | nr
}

#[repr(C)]
#[derive(Default)]
pub struct Api {
    pub api: u64,
    pub features: u64,
    pub ioctls: u64,
}
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Range {
    pub start: u64,
    pub len: u64,
}
#[repr(C)]
#[derive(Default)]
pub struct Register {
    pub range: Range,
    pub mode: u64,
    pub ioctls: u64,
}
/// uffdio_copy and uffdio_move: dst, src, len, mode, result.
#[repr(C)]
#[derive(Default)]
pub struct Copy {
    pub dst: u64,
    pub src: u64,
    pub len: u64,
    pub mode: u64,
    pub result: i64,
}
#[repr(C)]
#[derive(Default)]
pub struct Zeropage {
    pub range: Range,
    pub mode: u64,
    pub result: i64,
}
#[repr(C)]
#[derive(Default)]
pub struct Writeprotect {
    pub range: Range,
    pub mode: u64,
}
/// `struct uffd_msg`: the event, then (for a page fault) flags, address
/// and thread id.
#[repr(C)]
#[derive(Default)]
pub struct Msg {
    pub event: u8,
    pub reserved: [u8; 7],
    pub flags: u64,
    pub address: u64,
    pub arg: u64,
}

pub const API: u64 = iowr(0x3F, std::mem::size_of::<Api>());
pub const REGISTER: u64 = iowr(0x00, std::mem::size_of::<Register>());
pub const UNREGISTER: u64 = ior(0x01, std::mem::size_of::<Range>());
pub const COPY: u64 = iowr(0x03, std::mem::size_of::<Copy>());
pub const ZEROPAGE: u64 = iowr(0x04, std::mem::size_of::<Zeropage>());
pub const MOVE: u64 = iowr(0x05, std::mem::size_of::<Copy>());
pub const WRITEPROTECT: u64 = iowr(0x06, std::mem::size_of::<Writeprotect>());

/// `ioctl(fd, req, arg)`; whether it succeeded.
pub fn ioctl<T>(fd: &OwnedFd, req: u64, arg: &mut T) -> bool {
    // SAFETY: `arg` is the #[repr(C)] struct `req` takes.
    unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg as *mut T) == 0 }
}

/// The features this kernel offers (a handshake asking for none answers
/// with them).
pub fn offered() -> std::io::Result<u64> {
    open(0).map(|(_, f)| f)
}

/// A non-blocking userfaultfd with the API handshake done, and the
/// features it has.
pub fn open(features: u64) -> std::io::Result<(OwnedFd, u64)> {
    // SAFETY: userfaultfd(2) takes flags only.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor just returned to us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut api = Api {
        api: UFFD_API,
        features,
        ioctls: 0,
    };
    if !ioctl(&fd, API, &mut api) {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fd, api.features))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_and_sizes_are_the_kernels() {
        // From include/uapi/linux/userfaultfd.h on x86_64.
        assert_eq!(API, 0xc018aa3f);
        assert_eq!(REGISTER, 0xc020aa00);
        assert_eq!(UNREGISTER, 0x8010aa01);
        assert_eq!(COPY, 0xc028aa03);
        assert_eq!(ZEROPAGE, 0xc020aa04);
        assert_eq!(MOVE, 0xc028aa05);
        assert_eq!(WRITEPROTECT, 0xc018aa06);
        assert_eq!(std::mem::size_of::<Msg>(), 32);
    }
}
