//! [`Mapped`]: the object every kind makes.

use super::super::object::{ObjKind, Object, Place};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// An object of any kind: `len` bytes mapped at a [`Place`], with the file
/// behind it if any (kept open); unmapped on drop.
pub struct Mapped {
    kind: ObjKind,
    place: Place,
    len: usize,
    fd: Option<OwnedFd>,
}

impl Mapped {
    /// The `kind` object of `len` bytes mapped at `addr`, over `fd` if any.
    pub fn boxed(kind: ObjKind, addr: usize, len: usize, fd: Option<OwnedFd>) -> Box<dyn Object> {
        Box::new(Mapped {
            kind,
            place: Place::new(addr),
            len,
            fd,
        })
    }
}

impl Object for Mapped {
    fn kind(&self) -> ObjKind {
        self.kind
    }
    fn place(&self) -> &Place {
        &self.place
    }
    fn bytes(&self) -> usize {
        self.len
    }
    fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        self.place.release(self.len);
    }
}
