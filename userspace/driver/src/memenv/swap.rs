//! Swap on zram: a compressed RAM block device made the guest's only swap,
//! so `MADV_PAGEOUT`, reclaim and the khugepaged selftests' swap-in cases
//! have somewhere to put pages. The swap header is written here (mkswap's
//! format, one page: [`header`]); `swapon(2)` and `swapoff(2)` via libc.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The zram device's size, and so the swap's.
pub const SWAP_MIB: u64 = 256;

const ZRAM_CONTROL: &str = "/sys/class/zram-control";
const MAGIC: &[u8; 10] = b"SWAPSPACE2";
/// Where `union swap_header`'s `info` starts (after `bootbits[1024]`).
const INFO_OFFSET: usize = 1024;

/// The first page of a swap area of `size` bytes, as mkswap writes it
/// (include/linux/swap.h `union swap_header`): version 1, `last_page` the
/// index of the last page, no bad pages, `uuid`, and "SWAPSPACE2" in the
/// last ten bytes of the page. Native endian, as the kernel reads it.
pub fn header(page_size: usize, size: u64, uuid: [u8; 16]) -> Result<Vec<u8>> {
    let pages = size / page_size as u64;
    if pages < 2 {
        bail!("a swap area of {size} bytes has no page after its header (page size {page_size})");
    }
    let last_page = u32::try_from(pages - 1)
        .with_context(|| format!("a swap area of {pages} pages is too large for one header"))?;
    let mut page = vec![0u8; page_size];
    let info = &mut page[INFO_OFFSET..];
    info[0..4].copy_from_slice(&1u32.to_ne_bytes()); // version
    info[4..8].copy_from_slice(&last_page.to_ne_bytes());
    info[8..12].copy_from_slice(&0u32.to_ne_bytes()); // nr_badpages
    info[12..28].copy_from_slice(&uuid);
    page[page_size - MAGIC.len()..].copy_from_slice(MAGIC);
    Ok(page)
}

/// A version-4-shaped UUID from the clock and the pid (only tools read it).
fn uuid() -> [u8; 16] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut u = (t ^ ((std::process::id() as u128) << 64)).to_le_bytes();
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// The swap areas in use, by path (`/proc/swaps`' first column).
pub fn active_swaps(proc_swaps: &str) -> Vec<String> {
    proc_swaps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// A zram device made swap for the run: swapoff, reset (and removed, if it
/// was added here) on drop.
#[derive(Debug)]
pub struct ZramSwap {
    pub device: PathBuf,
    pub index: u32,
    pub size: u64,
    hot_added: bool,
    swapped_on: bool,
}

impl ZramSwap {
    /// Makes a zram device of [`SWAP_MIB`] MiB and swaps on it.
    pub fn start() -> Result<ZramSwap> {
        let (index, hot_added) = free_device()?;
        let mut z = ZramSwap {
            device: PathBuf::from(format!("/dev/zram{index}")),
            index,
            size: SWAP_MIB << 20,
            hot_added,
            swapped_on: false,
        };
        let disksize = format!("/sys/block/zram{index}/disksize");
        crate::kfile::write(&disksize, &format!("{}\n", z.size))
            .with_context(|| format!("cannot write {} to {disksize}", z.size))?;
        write_header(&z.device, z.size)?;
        swapon(&z.device)?;
        z.swapped_on = true;
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        if !active_swaps(&swaps)
            .iter()
            .any(|d| Path::new(d) == z.device)
        {
            bail!(
                "swapon {} succeeded but /proc/swaps does not list it",
                z.device.display()
            );
        }
        Ok(z)
    }

    /// Bytes of swap in use now (`/proc/swaps`' Used column, KiB).
    pub fn used_bytes(&self) -> Option<u64> {
        let text = std::fs::read_to_string("/proc/swaps").ok()?;
        let dev = self.device.to_str()?;
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.first() == Some(&dev))
            .and_then(|w| w.get(3)?.parse::<u64>().ok())
            .map(|kib| kib << 10)
    }
}

/// An unused zram device: zram0 if it has no size yet, else one added
/// through zram-control.
fn free_device() -> Result<(u32, bool)> {
    let initstate = std::fs::read_to_string("/sys/block/zram0/initstate");
    if initstate.as_deref().map(str::trim).ok() == Some("0") {
        return Ok((0, false));
    }
    let hot_add = format!("{ZRAM_CONTROL}/hot_add");
    let text = std::fs::read_to_string(&hot_add).with_context(|| {
        format!(
            "no unused zram device: /sys/block/zram0 is {} and {hot_add} cannot be read \
             (the kernel needs CONFIG_ZRAM)",
            if initstate.is_ok() {
                "in use"
            } else {
                "missing"
            }
        )
    })?;
    let index = text
        .trim()
        .parse()
        .with_context(|| format!("{hot_add} said {text:?}, not a device number"))?;
    Ok((index, true))
}

fn write_header(device: &Path, size: u64) -> Result<()> {
    let page = header(crate::mm::page_size(), size, uuid())?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(device)
        .with_context(|| format!("cannot open {} to write a swap header", device.display()))?;
    f.write_all_at(&page, 0)
        .and_then(|_| f.flush())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write the swap header to {}", device.display()))
}

fn c_path(p: &Path) -> Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    Ok(std::ffi::CString::new(p.as_os_str().as_bytes())?)
}

fn swapon(device: &Path) -> Result<()> {
    let c = c_path(device)?;
    // SAFETY: a valid NUL-terminated path; flags 0.
    if unsafe { libc::swapon(c.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        bail!(
            "swapon {}: {e} (the kernel needs CONFIG_SWAP; EPERM means not root)",
            device.display()
        );
    }
    Ok(())
}

impl Drop for ZramSwap {
    fn drop(&mut self) {
        if self.swapped_on {
            if let Ok(c) = c_path(&self.device) {
                // SAFETY: a valid NUL-terminated path.
                unsafe { libc::swapoff(c.as_ptr()) };
            }
        }
        let _ = crate::kfile::write(&format!("/sys/block/zram{}/reset", self.index), "1\n");
        if self.hot_added {
            let _ = crate::kfile::write(
                &format!("{ZRAM_CONTROL}/hot_remove"),
                &format!("{}\n", self.index),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(page: &[u8], off: usize) -> u32 {
        u32::from_ne_bytes(page[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn header_is_mkswaps_format() {
        let uuid = [7u8; 16];
        let page = header(4096, 256 << 20, uuid).unwrap();
        assert_eq!(page.len(), 4096);
        assert_eq!(&page[4086..], b"SWAPSPACE2");
        assert_eq!(u32_at(&page, 1024), 1, "version");
        assert_eq!(u32_at(&page, 1028), (256 << 20) / 4096 - 1, "last_page");
        assert_eq!(u32_at(&page, 1032), 0, "nr_badpages");
        assert_eq!(&page[1036..1052], &uuid);
        assert!(page[..1024].iter().all(|&b| b == 0), "bootbits");
        assert!(page[1052..4086].iter().all(|&b| b == 0));
        // A partial last page is not swap.
        let odd = header(4096, 3 * 4096 + 100, uuid).unwrap();
        assert_eq!(u32_at(&odd, 1028), 2);
    }

    #[test]
    fn header_refuses_what_cannot_be_swap() {
        assert!(header(4096, 4096, [0; 16]).is_err());
        assert!(header(4096, (u32::MAX as u64 + 2) * 4096, [0; 16]).is_err());
        let p64k = header(65536, 1 << 30, [0; 16]).unwrap();
        assert_eq!(&p64k[65526..], b"SWAPSPACE2");
    }

    #[test]
    fn parses_proc_swaps() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
                    /dev/zram0                              partition\t262140\t\t1024\t\t-2\n";
        assert_eq!(active_swaps(text), ["/dev/zram0"]);
        assert!(active_swaps("Filename Type Size Used Priority\n").is_empty());
    }

    #[test]
    fn uuid_is_version_4_shaped() {
        let u = uuid();
        assert_eq!(u[6] >> 4, 4);
        assert_eq!(u[8] >> 6, 2);
    }
}
