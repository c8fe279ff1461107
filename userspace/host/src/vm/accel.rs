//! Which accelerator QEMU runs the guest with, and the cached answer of
//! "does KVM work on this host?".
//!
//! `/dev/kvm` being openable is not enough: on some hosts (nested
//! virtualization without the features a guest kernel needs) KVM starts and
//! then dies with `KVM internal error` or just never reaches the kernel's
//! first line. `auto` therefore tries KVM, falls back to TCG when the kernel
//! banner does not show, and caches the outcome per host kernel release and
//! QEMU version, the two things that decide it, so only the first run on a
//! host pays for the failed attempt.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelChoice {
    Auto,
    Kvm,
    Tcg,
}

/// What QEMU is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    fn parse(s: &str) -> Option<Accel> {
        match s.trim() {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    /// QEMU options selecting this accelerator and a CPU model that suits it:
    /// the host CPU under KVM, everything TCG can emulate otherwise.
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max"],
        }
    }
}

/// What to do before starting QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Use this accelerator; `why` is printed and recorded.
    Use { accel: Accel, why: String },
    /// Try KVM, fall back to TCG if it does not reach the kernel banner, and
    /// record the outcome in `cache_file`.
    ProbeKvm { cache_file: PathBuf },
}

/// `${MMRACE_CACHE:-${XDG_CACHE_HOME:-~/.cache}/mmrace}`, as scripts/lib.sh.
pub fn cache_dir() -> PathBuf {
    cache_dir_from(|k| std::env::var_os(k))
}

fn cache_dir_from(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("MMRACE_CACHE") {
        return d;
    }
    let base = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("mmrace")
}

/// FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust
/// releases, which would silently invalidate every cache entry).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The cache file for this host kernel release and QEMU version.
pub fn cache_file(dir: &Path, host_release: &str, qemu_version: &str) -> PathBuf {
    let key = format!("{host_release}\n{qemu_version}");
    dir.join(format!("accel-{:016x}", fnv1a(key.as_bytes())))
}

/// Whether this process can open the KVM device read-write, which QEMU needs.
pub fn kvm_openable(device: &Path) -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .is_ok()
}

/// The running kernel's release (`uname -r`).
pub fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The first line of `qemu --version`, or empty when it cannot be run.
pub fn qemu_version(qemu: &str) -> String {
    std::process::Command::new(qemu)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Decides the accelerator from the choice, the KVM device and the cache.
pub fn plan(choice: AccelChoice, kvm_device: &Path, cache_file: &Path) -> Plan {
    let use_ = |accel, why: &str| Plan::Use {
        accel,
        why: why.to_string(),
    };
    match choice {
        AccelChoice::Kvm => use_(Accel::Kvm, "requested"),
        AccelChoice::Tcg => use_(Accel::Tcg, "requested"),
        AccelChoice::Auto if !kvm_openable(kvm_device) => use_(
            Accel::Tcg,
            &format!("auto: {} cannot be opened read-write", kvm_device.display()),
        ),
        AccelChoice::Auto => match cached(cache_file) {
            Some(Accel::Tcg) => use_(
                Accel::Tcg,
                &format!(
                    "auto: KVM failed on this host before; delete {} to try it again",
                    cache_file.display()
                ),
            ),
            // A cached success is probed again: it costs nothing when KVM
            // works and still falls back if the host changed underneath.
            Some(Accel::Kvm) | None => Plan::ProbeKvm {
                cache_file: cache_file.to_path_buf(),
            },
        },
    }
}

pub fn cached(cache_file: &Path) -> Option<Accel> {
    Accel::parse(&std::fs::read_to_string(cache_file).ok()?)
}

/// Records the probe's outcome; failing to is only worth a warning.
pub fn remember(cache_file: &Path, accel: Accel) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = cache_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(cache_file, format!("{}\n", accel.name()))
    };
    if let Err(e) = write() {
        eprintln!(
            "mmrace: warning: cannot cache the accelerator in {}: {e}",
            cache_file.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mmrace-accel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn cache_key_depends_on_kernel_and_qemu() {
        let d = Path::new("/c");
        let a = cache_file(d, "6.1.0", "QEMU emulator version 10.0.2");
        assert_eq!(a, cache_file(d, "6.1.0", "QEMU emulator version 10.0.2"));
        assert_ne!(a, cache_file(d, "6.1.1", "QEMU emulator version 10.0.2"));
        assert_ne!(a, cache_file(d, "6.1.0", "QEMU emulator version 9.2.0"));
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("accel-"));
        // Pinned: a changed hash would throw every host's cache away.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn auto_plans_from_device_and_cache() {
        let d = tmp("plan");
        let dev = d.join("kvm");
        let cache = d.join("cache/accel-x");
        // No device: TCG without probing.
        assert!(matches!(
            plan(AccelChoice::Auto, &dev, &cache),
            Plan::Use {
                accel: Accel::Tcg,
                ..
            }
        ));
        std::fs::write(&dev, "").unwrap();
        assert_eq!(
            plan(AccelChoice::Auto, &dev, &cache),
            Plan::ProbeKvm {
                cache_file: cache.clone()
            }
        );
        remember(&cache, Accel::Tcg);
        assert_eq!(cached(&cache), Some(Accel::Tcg));
        assert!(matches!(
            plan(AccelChoice::Auto, &dev, &cache),
            Plan::Use {
                accel: Accel::Tcg,
                ..
            }
        ));
        // An explicit choice ignores device and cache.
        assert!(matches!(
            plan(AccelChoice::Kvm, &dev, &cache),
            Plan::Use {
                accel: Accel::Kvm,
                ..
            }
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn cache_dir_follows_lib_sh() {
        fn env<'a>(
            vars: &'a [(&'a str, &'a str)],
        ) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
            move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into())
        }
        let all = [
            ("MMRACE_CACHE", "/m"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_dir_from(env(&all)), PathBuf::from("/m"));
        assert_eq!(cache_dir_from(env(&all[1..])), PathBuf::from("/x/mmrace"));
        assert_eq!(
            cache_dir_from(env(&all[2..])),
            PathBuf::from("/h/.cache/mmrace")
        );
        assert_eq!(
            cache_dir_from(env(&[("MMRACE_CACHE", ""), ("HOME", "/h")])),
            PathBuf::from("/h/.cache/mmrace")
        );
    }
}
