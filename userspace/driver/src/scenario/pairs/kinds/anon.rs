//! `anon`: private anonymous memory, MADV_HUGEPAGE.

use super::super::object::{reserve_aligned, unmap, Maker, ObjKind, Object};
use anyhow::{Context, Result};

pub struct AnonMaker;

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
        Ok(super::mapped::Mapped::boxed(ObjKind::Anon, addr, len, None))
    }
}
