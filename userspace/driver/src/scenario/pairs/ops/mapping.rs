//! Ops on the object's mapping: splits, VMA changes, mlock, mremap.

use super::super::model::{Effects, TAIL};
use super::super::object::{placeholder, reserve_aligned, unmap};
use super::super::op::{check, Op, Resources, RoundEnv};
use mmrace_proto::oracle::UNIT;
use mmrace_proto::pairs::UserOp;

/// debugfs' THP splitter: `PID,0xSTART,0xEND` splits the THPs there.
pub const SPLIT_PATH: &str = "/sys/kernel/debug/split_huge_pages";

/// Writes `pid,0xstart,0xend` for the object to split_huge_pages.
pub struct Split;

impl Op for Split {
    fn op(&self) -> UserOp {
        UserOp::Split
    }

    fn available(&self, _res: &Resources) -> Result<(), String> {
        if std::path::Path::new(SPLIT_PATH).exists() {
            Ok(())
        } else {
            Err(format!("no {SPLIT_PATH} (debugfs not mounted?)"))
        }
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let a = env.obj.addr();
        let line = format!(
            "{},{:#x},{:#x}",
            std::process::id(),
            a,
            a + env.layout.bytes()
        );
        if let Err(e) = crate::kfile::write(SPLIT_PATH, &line) {
            let ok = matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EBUSY));
            if !ok {
                fx.error(format!("{SPLIT_PATH} {line}: {e}"));
            }
        }
    }
}

/// The tail's address and length.
fn tail(env: &RoundEnv) -> (*mut libc::c_void, usize) {
    let start = env.obj.addr() + env.layout.tail().start * UNIT;
    (start as *mut libc::c_void, TAIL * UNIT)
}

/// munmap of the object's tail (inside the last THP: splits its pmd).
pub struct MunmapPart;

impl Op for MunmapPart {
    fn op(&self) -> UserOp {
        UserOp::MunmapPart
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let (p, len) = tail(env);
        fx.gone.push(env.layout.tail());
        // SAFETY: the tail of this round's object; no thread stores there
        // and the object's release unmaps the whole range again.
        let r = unsafe { libc::munmap(p, len) };
        check(fx, "munmap tail", r == 0, &[]);
    }
}

/// mprotect(PROT_READ) of the object's tail: a VMA split inside a THP.
pub struct MprotectPart;

impl Op for MprotectPart {
    fn op(&self) -> UserOp {
        UserOp::MprotectPart
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let (p, len) = tail(env);
        // SAFETY: protections of the tail, which no thread stores to.
        let r = unsafe { libc::mprotect(p, len, libc::PROT_READ) };
        check(fx, "mprotect tail", r == 0, &[libc::ENOMEM]);
    }
}

/// mprotect adding then removing PROT_EXEC on the whole object: the
/// protection changes (change_huge_pmd), stores never fault on it.
pub struct MprotectExec;

impl Op for MprotectExec {
    fn op(&self) -> UserOp {
        UserOp::MprotectExec
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let (a, len) = (env.obj.addr() as *mut libc::c_void, env.layout.bytes());
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        for prot in [rw | libc::PROT_EXEC, rw] {
            // SAFETY: protections of the object; write stays allowed.
            let r = unsafe { libc::mprotect(a, len, prot) };
            check(fx, "mprotect exec", r == 0, &[libc::ENOMEM]);
        }
    }
}

/// mlock then munlock of the object.
pub struct Mlock;

impl Op for Mlock {
    fn op(&self) -> UserOp {
        UserOp::Mlock
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let (a, len) = (env.obj.addr() as *const libc::c_void, env.layout.bytes());
        // SAFETY: locking the object's range changes no data.
        let r = unsafe { libc::mlock(a, len) };
        check(fx, "mlock", r == 0, &[libc::ENOMEM, libc::EAGAIN]);
        // SAFETY: as above.
        let r = unsafe { libc::munlock(a, len) };
        check(fx, "munlock", r == 0, &[libc::ENOMEM]);
    }
}

/// mremap of the object to a fresh aligned address.
///
/// The range it leaves is covered at once by a [`placeholder`], so that a
/// store through /proc/self/mem that read the old address lands nowhere
/// (and is done again at the new one: [`super::data`]). With
/// MREMAP_DONTUNMAP the old range is never free: the placeholder replaces
/// the emptied mapping. Where a kind refuses DONTUNMAP, a plain mremap
/// leaves a hole until the placeholder fills it, if nothing took it first.
pub struct Mremap;

impl Op for Mremap {
    fn op(&self) -> UserOp {
        UserOp::Mremap
    }

    fn run(&self, env: &RoundEnv, fx: &mut Effects) {
        let len = env.layout.bytes();
        let Ok(dest) = reserve_aligned(len, crate::mm::pmd_size()) else {
            check(fx, "mremap reserve", false, &[libc::ENOMEM]);
            return;
        };
        let place = env.obj.place();
        place.moving(|from| match move_object(from, len, dest) {
            Ok(dontunmap) => {
                if placeholder(from, len, dontunmap).is_ok() {
                    place.left_behind(from);
                }
                Some(dest)
            }
            Err(_) => {
                // EFAULT: the tail was unmapped first. (errno is still
                // the failed mremap's.)
                check(fx, "mremap", false, &[libc::EFAULT]);
                unmap(dest, len);
                None
            }
        });
    }
}

/// Moves `len` bytes from `from` onto the reservation at `dest`: with
/// MREMAP_DONTUNMAP if the kind allows it (`Ok(true)`), else plainly.
fn move_object(from: usize, len: usize, dest: usize) -> std::io::Result<bool> {
    let mv = |extra: libc::c_int| {
        // SAFETY: moves the object onto our own reservation; the threads
        // that run with a moving op never access the object directly.
        let r = unsafe {
            libc::mremap(
                from as *mut libc::c_void,
                len,
                len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | extra,
                dest as *mut libc::c_void,
            )
        };
        if r == libc::MAP_FAILED {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    match mv(libc::MREMAP_DONTUNMAP) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => mv(0).map(|()| false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Private anonymous memory moves with DONTUNMAP on this kernel, and
    /// the range it leaves stays mapped (empty) until a placeholder
    /// replaces it.
    #[test]
    fn a_move_keeps_the_old_range_mapped() {
        let len = 2 * crate::mm::pmd_size();
        let from = reserve_aligned(len, crate::mm::pmd_size()).unwrap();
        // SAFETY: maps over our own reservation.
        let p = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        assert_eq!(p as usize, from);
        let dest = reserve_aligned(len, crate::mm::pmd_size()).unwrap();
        assert!(move_object(from, len, dest).unwrap(), "DONTUNMAP refused");
        assert!(
            placeholder(from, len, false).is_err(),
            "the old range was free"
        );
        placeholder(from, len, true).unwrap();
        unmap(from, len);
        unmap(dest, len);
    }
}
