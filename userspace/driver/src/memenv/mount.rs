//! A filesystem mounted for the run, unmounted on drop.

use anyhow::{Context, Result};
use nix::mount::MsFlags;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Mount {
    pub target: PathBuf,
    pub fstype: String,
    pub options: String,
    mounted: bool,
}

impl Mount {
    /// Mounts `source` (`fstype`, with `options`) on `target`, creating it.
    pub fn new(source: &str, target: &str, fstype: &str, options: &str) -> Result<Mount> {
        std::fs::create_dir_all(target).with_context(|| format!("cannot create {target}"))?;
        nix::mount::mount(
            Some(source),
            target,
            Some(fstype),
            MsFlags::MS_NOATIME,
            (!options.is_empty()).then_some(options),
        )
        .with_context(|| format!("cannot mount {fstype} -o {options:?} on {target}"))?;
        Ok(Mount {
            target: PathBuf::from(target),
            fstype: fstype.to_string(),
            options: options.to_string(),
            mounted: true,
        })
    }

    /// Unmounts now (drop does it otherwise); lazily if busy.
    pub fn unmount(&mut self) {
        if std::mem::take(&mut self.mounted) && nix::mount::umount(&self.target).is_err() {
            let _ = nix::mount::umount2(&self.target, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.unmount();
    }
}
