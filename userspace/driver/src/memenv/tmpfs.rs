//! tmpfs with THPs: a tmpfs mounted `huge=always` (every file of it tries a
//! PMD-sized folio first, whatever sysfs says), and `shmem_enabled` set to
//! `always` for the internal shm mount (memfd, MAP_SHARED|MAP_ANONYMOUS,
//! SysV shm), restored on drop.

use super::mount::Mount;
use super::setting::Setting;
use anyhow::Result;

/// Where the huge tmpfs is mounted.
pub const MOUNT_POINT: &str = "/mnt/mmrace-tmpfs";
/// Its size limit.
pub const SIZE_MIB: u64 = 512;
/// The internal shm mount's THP policy.
pub const SHMEM_ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/shmem_enabled";

/// `shmem_enabled` set to `always`.
pub fn shmem_thp() -> Result<Setting> {
    Setting::set(
        SHMEM_ENABLED,
        "always",
        "CONFIG_TRANSPARENT_HUGEPAGE and CONFIG_SHMEM",
    )
}

/// The `huge=always` tmpfs.
pub fn huge_tmpfs() -> Result<Mount> {
    Mount::new(
        "tmpfs",
        MOUNT_POINT,
        "tmpfs",
        &format!("huge=always,size={SIZE_MIB}m"),
    )
}
