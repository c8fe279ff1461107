//! The XFS scratch filesystem (oom-stall's writers, selftests-mm, the file
//! kinds). In the mmrace guest the host attaches a freshly made XFS image
//! as a virtio disk with serial [`SERIAL`] when the scenario asks for it
//! (`Scenario::needs_disk`); the driver finds it, mounts it, and unmounts it
//! at the end. On a test machine a directory on a mounted XFS is given.

use anyhow::{bail, Context, Result};
use nix::mount::MsFlags;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The serial the host runner gives its extra disk (userspace/host qemu.rs).
pub const SERIAL: &str = "mmrace-disk";

/// The block device whose `/sys/block/*/serial` is `serial`, as /dev/NAME.
pub fn find_by_serial(sys_block: &Path, serial: &str) -> Result<PathBuf> {
    let mut seen = Vec::new();
    let entries = std::fs::read_dir(sys_block)
        .with_context(|| format!("cannot list {}", sys_block.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let s = std::fs::read_to_string(entry.path().join("serial")).unwrap_or_default();
        if s.trim() == serial {
            return Ok(PathBuf::from("/dev").join(name));
        }
        seen.push(name);
    }
    seen.sort();
    bail!(
        "no block device with serial {serial:?} (devices: {}): the host attaches the XFS \
         image with --disk (scripts/qemu-run.sh does for a scenario that needs it: \
         mmrace-host needs-disk); on a test machine give a directory on XFS",
        if seen.is_empty() {
            "none".into()
        } else {
            seen.join(" ")
        }
    )
}

/// A filesystem for the writers: mounted here (and unmounted on drop), or
/// given.
#[derive(Debug)]
pub struct Fs {
    pub dir: PathBuf,
    pub device: Option<PathBuf>,
    mounted_here: bool,
}

impl Fs {
    /// Mounts `device` (XFS) on `target`, creating the directory.
    pub fn mount(device: &Path, target: &Path) -> Result<Fs> {
        std::fs::create_dir_all(target)
            .with_context(|| format!("cannot create {}", target.display()))?;
        nix::mount::mount(
            Some(device),
            target,
            Some("xfs"),
            MsFlags::MS_NOATIME,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "cannot mount {} (xfs) on {}",
                device.display(),
                target.display()
            )
        })?;
        Ok(Fs {
            dir: target.to_path_buf(),
            device: Some(device.to_path_buf()),
            mounted_here: true,
        })
    }

    /// An existing directory, which must be on XFS.
    pub fn existing(dir: &Path) -> Result<Fs> {
        let st = nix::sys::statfs::statfs(dir)
            .with_context(|| format!("cannot statfs {}", dir.display()))?;
        if st.filesystem_type() != nix::sys::statfs::XFS_SUPER_MAGIC {
            bail!(
                "{} is not on XFS (statfs type {:?}); the seed's writers need XFS",
                dir.display(),
                st.filesystem_type()
            );
        }
        Ok(Fs {
            dir: dir.to_path_buf(),
            device: None,
            mounted_here: false,
        })
    }

    /// The sysfs `stat` file of the block device holding the filesystem.
    pub fn block_stat_path(&self) -> Result<PathBuf> {
        let dev = std::fs::metadata(&self.dir)
            .with_context(|| format!("cannot stat {}", self.dir.display()))?
            .dev();
        let (major, minor) = (libc::major(dev), libc::minor(dev));
        let p = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
        if !p.exists() {
            bail!(
                "{} is on device {major}:{minor}, which has no {}",
                self.dir.display(),
                p.display()
            );
        }
        Ok(p)
    }
}

impl Drop for Fs {
    fn drop(&mut self) {
        if self.mounted_here {
            let _ = nix::mount::umount(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_disk_by_serial() {
        let root = std::env::temp_dir().join(format!("mmrace-sysblock-{}", std::process::id()));
        for (name, serial) in [("vda", "other\n"), ("vdb", "mmrace-disk\n")] {
            std::fs::create_dir_all(root.join(name)).unwrap();
            std::fs::write(root.join(name).join("serial"), serial).unwrap();
        }
        std::fs::create_dir_all(root.join("loop0")).unwrap(); // no serial file
        assert_eq!(
            find_by_serial(&root, SERIAL).unwrap(),
            PathBuf::from("/dev/vdb")
        );
        let err = find_by_serial(&root, "nope").unwrap_err().to_string();
        assert!(err.contains("loop0 vda vdb"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn existing_dir_must_be_xfs() {
        // The build machine's /proc is never XFS.
        let err = Fs::existing(Path::new("/proc")).err().unwrap().to_string();
        assert!(err.contains("not on XFS"), "{err}");
    }
}
