//! `anon`: private anonymous memory, MADV_HUGEPAGE.

use super::super::object::{reserve_aligned, unmap, Maker, ObjKind, Object, Place};
use anyhow::{Context, Result};

pub struct AnonMaker;

pub struct Anon {
    place: Place,
    len: usize,
}

impl Maker for AnonMaker {
    fn kind(&self) -> ObjKind {
        ObjKind::Anon
    }

    fn create(&mut self, len: usize) -> Result<Box<dyn Object>> {
        let addr = reserve_aligned(len, crate::mm::pmd_size()).context("anon: reserve")?;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        if let Err(e) = super::map_fixed_thp(addr, len, flags, -1) {
            unmap(addr, len);
            return Err(e).context("anon: mmap and MADV_HUGEPAGE");
        }
        Ok(Box::new(Anon {
            place: Place::new(addr),
            len,
        }))
    }
}

impl Object for Anon {
    fn kind(&self) -> ObjKind {
        ObjKind::Anon
    }
    fn addr(&self) -> usize {
        self.place.get()
    }
    fn set_addr(&self, addr: usize) {
        self.place.set(addr)
    }
    fn bytes(&self) -> usize {
        self.len
    }
}

impl Drop for Anon {
    fn drop(&mut self) {
        unmap(self.place.get(), self.len);
    }
}
