//! The guest's memory environment for the memory kinds: what a scenario
//! asks for by [`Need`] and gets back in a [`MemEnv`] (paths and what is
//! on), every piece undone when the `MemEnv` is dropped. The kernel options
//! each piece needs are in `kernel/mmrace.config`; docs/kinds.md says what
//! the guest turns on at run time.
//!
//! - [`swap`]: swap on a zram device, with a swap header written here;
//! - [`hugetlb`]: 2 MiB pages reserved on every node, hugetlbfs mounted;
//! - [`tmpfs`]: a `huge=always` tmpfs, and `shmem_enabled=always`;
//! - the host's XFS disk, found by serial and mounted ([`crate::shared::disk`]);
//! - [`ksm`]: ksmd running and scanning fast;
//! - [`numa_balancing`]: NUMA hinting faults on;
//! - [`uffd`]: userfaultfd available;
//! - [`setting`], [`mount`]: a control file or a mount undone on drop.

#[cfg(test)]
mod guest_tests;
pub mod hugetlb;
pub mod ksm;
pub mod mount;
pub mod numa_balancing;
pub mod setting;
pub mod swap;
pub mod tmpfs;
pub mod uffd;

use crate::shared::disk;
use anyhow::{anyhow, bail, Result};
use std::path::Path;

/// Where the XFS disk is mounted.
pub const XFS_MOUNT_POINT: &str = "/mnt/mmrace-xfs";

/// One piece of the environment a scenario needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Swap on zram ([`swap::SWAP_MIB`] MiB).
    Swap,
    /// [`hugetlb::PAGES_PER_NODE`] 2 MiB pages a node, hugetlbfs mounted.
    Hugetlb,
    /// A `huge=always` tmpfs mounted.
    Tmpfs,
    /// `shmem_enabled=always`: THPs for memfd and shared anonymous memory.
    ShmemThp,
    /// The host's XFS disk mounted (the scenario must ask the host for it:
    /// `Scenario::needs_disk`).
    Xfs,
    /// ksmd running, scanning fast.
    Ksm,
    /// Automatic NUMA balancing on.
    NumaBalancing,
    /// The userfaultfd syscall works.
    Userfaultfd,
}

impl Need {
    pub const ALL: &'static [Need] = &[
        Need::Swap,
        Need::Hugetlb,
        Need::Tmpfs,
        Need::ShmemThp,
        Need::Xfs,
        Need::Ksm,
        Need::NumaBalancing,
        Need::Userfaultfd,
    ];

    /// How errors and the console name it.
    pub fn name(self) -> &'static str {
        match self {
            Need::Swap => "swap on zram",
            Need::Hugetlb => "hugetlb pages and hugetlbfs",
            Need::Tmpfs => "huge tmpfs",
            Need::ShmemThp => "shmem THP (shmem_enabled)",
            Need::Xfs => "XFS scratch filesystem",
            Need::Ksm => "KSM",
            Need::NumaBalancing => "NUMA balancing",
            Need::Userfaultfd => "userfaultfd",
        }
    }
}

/// What [`prepare`] set up; each piece is undone on drop.
#[derive(Debug, Default)]
pub struct MemEnv {
    pub swap: Option<swap::ZramSwap>,
    pub hugetlb: Option<hugetlb::Hugetlb>,
    pub tmpfs: Option<mount::Mount>,
    pub shmem_thp: Option<setting::Setting>,
    pub xfs: Option<disk::Fs>,
    pub ksm: Option<ksm::Ksm>,
    pub numa_balancing: Option<numa_balancing::NumaBalancing>,
    pub userfaultfd: bool,
}

/// Sets up every piece of `needs`. If any cannot be, the ones that were are
/// undone and the error names each that failed and why.
pub fn prepare(needs: &[Need]) -> Result<MemEnv> {
    let (env, failed) = prepare_available(needs);
    if !failed.is_empty() {
        bail!("memenv: cannot prepare {}", failed.join("; "));
    }
    Ok(env)
}

/// Sets up what it can of `needs`; the rest is returned as one line per
/// piece that failed and why (a scenario that can do without a piece
/// skips what needs it and says so).
pub fn prepare_available(needs: &[Need]) -> (MemEnv, Vec<String>) {
    let mut env = MemEnv::default();
    let mut wanted = needs.to_vec();
    wanted.sort();
    wanted.dedup();
    let failed = wanted
        .iter()
        .filter_map(|&n| env.add(n).err().map(|e| format!("{}: {e:#}", n.name())))
        .collect();
    (env, failed)
}

impl MemEnv {
    fn add(&mut self, need: Need) -> Result<()> {
        match need {
            Need::Swap => self.swap = Some(swap::ZramSwap::start()?),
            Need::Hugetlb => self.hugetlb = Some(hugetlb::Hugetlb::start()?),
            Need::Tmpfs => self.tmpfs = Some(tmpfs::huge_tmpfs()?),
            Need::ShmemThp => self.shmem_thp = Some(tmpfs::shmem_thp()?),
            Need::Xfs => {
                let dev = disk::find_by_serial(Path::new("/sys/block"), disk::SERIAL)?;
                self.xfs = Some(disk::Fs::mount(&dev, Path::new(XFS_MOUNT_POINT))?);
            }
            Need::Ksm => self.ksm = Some(ksm::Ksm::start()?),
            Need::NumaBalancing => {
                self.numa_balancing = Some(numa_balancing::NumaBalancing::start()?)
            }
            Need::Userfaultfd => {
                uffd::check()?;
                self.userfaultfd = true;
            }
        }
        Ok(())
    }

    /// Whether `need` is set up.
    pub fn has(&self, need: Need) -> bool {
        match need {
            Need::Swap => self.swap.is_some(),
            Need::Hugetlb => self.hugetlb.is_some(),
            Need::Tmpfs => self.tmpfs.is_some(),
            Need::ShmemThp => self.shmem_thp.is_some(),
            Need::Xfs => self.xfs.is_some(),
            Need::Ksm => self.ksm.is_some(),
            Need::NumaBalancing => self.numa_balancing.is_some(),
            Need::Userfaultfd => self.userfaultfd,
        }
    }

    /// An error if `need` was not asked for (a scenario bug: its object
    /// needs what it did not prepare).
    pub fn require(&self, need: Need) -> Result<()> {
        match self.has(need) {
            true => Ok(()),
            false => Err(anyhow!(
                "memenv: {} was not prepared (add Need::{need:?} to the scenario's needs)",
                need.name()
            )),
        }
    }

    /// The huge tmpfs's directory.
    pub fn tmpfs_dir(&self) -> Result<&Path> {
        self.require(Need::Tmpfs)?;
        Ok(&self.tmpfs.as_ref().expect("checked").target)
    }

    /// The hugetlbfs directory.
    pub fn hugetlb_dir(&self) -> Result<&Path> {
        self.require(Need::Hugetlb)?;
        Ok(&self.hugetlb.as_ref().expect("checked").mount.target)
    }

    /// The XFS directory.
    pub fn xfs_dir(&self) -> Result<&Path> {
        self.require(Need::Xfs)?;
        Ok(&self.xfs.as_ref().expect("checked").dir)
    }

    /// One line for the console: what is on, with sizes and paths.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.swap {
            parts.push(format!(
                "swap {} MiB on {}",
                s.size >> 20,
                s.device.display()
            ));
        }
        if let Some(h) = &self.hugetlb {
            let pools: Vec<String> = h
                .pools
                .iter()
                .map(|p| format!("node{} {} (was {})", p.node, p.pages, p.before))
                .collect();
            parts.push(format!(
                "hugetlb 2 MiB pages {} on {}",
                pools.join(", "),
                h.mount.target.display()
            ));
        }
        if let Some(m) = &self.tmpfs {
            parts.push(format!("tmpfs {} on {}", m.options, m.target.display()));
        }
        if let Some(s) = &self.shmem_thp {
            parts.push(format!("shmem_enabled {} (was {})", s.value, s.before));
        }
        if let Some(x) = &self.xfs {
            parts.push(format!("xfs on {}", x.dir.display()));
        }
        if self.ksm.is_some() {
            parts.push(format!(
                "ksm run=1 pages_to_scan={} sleep_millisecs=0",
                ksm::PAGES_TO_SCAN
            ));
        }
        if let Some(n) = &self.numa_balancing {
            let set: Vec<String> = n
                .settings
                .iter()
                .map(|s| format!("{}={}", s.path.rsplit('/').next().unwrap_or(""), s.value))
                .collect();
            parts.push(format!("numa balancing {}", set.join(" ")));
        }
        if self.userfaultfd {
            parts.push("userfaultfd".into());
        }
        match parts.is_empty() {
            true => "memenv: nothing".into(),
            false => format!("memenv: {}", parts.join("; ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_needed_is_nothing_prepared() {
        let env = prepare(&[]).unwrap();
        assert_eq!(env.describe(), "memenv: nothing");
        for &n in Need::ALL {
            assert!(!env.has(n));
        }
        let err = env.tmpfs_dir().unwrap_err().to_string();
        assert!(err.contains("Need::Tmpfs"), "{err}");
    }

    #[test]
    fn the_error_names_the_missing_piece() {
        // No machine building mmrace has a disk with the guest's serial.
        let err = format!("{:#}", prepare(&[Need::Xfs, Need::Xfs]).unwrap_err());
        assert!(
            err.starts_with("memenv: cannot prepare XFS scratch filesystem: no block device"),
            "{err}"
        );
        assert_eq!(err.matches("XFS scratch").count(), 1, "{err}");
    }
}
