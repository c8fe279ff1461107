//! mmrace.ko: loading it (finit_module, as insmod does) and reading what it
//! says about itself in debugfs: `version` (one line) and `probes`, one line
//! per probe, either `<probe-name> attached` or
//! `<probe-name> failed <error text>`.

use anyhow::{bail, Context, Result};
use mmrace_proto::counters::DEBUGFS_DIR;
use mmrace_proto::wire::ProbeState;
use std::path::Path;

pub const DEBUGFS_MOUNT: &str = "/sys/kernel/debug";

/// What the loaded module reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    pub version: String,
    pub probes: Vec<ProbeState>,
}

impl ModuleInfo {
    pub fn failed_probes(&self) -> impl Iterator<Item = &ProbeState> {
        self.probes.iter().filter(|p| !p.attached)
    }
}

/// Loads the module at `path` with no parameters. Already loaded is fine
/// (EEXIST): a test machine may have it from an earlier run.
pub fn load(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open module {}", path.display()))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
    // SAFETY: fd is open for the call; the params string is a static C string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, fd, c"".as_ptr(), 0) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => Ok(()),
        Some(libc::ENOEXEC) | Some(libc::EINVAL) => {
            bail!(
                "finit_module({}): {e} (built for another kernel? see the kernel log)",
                path.display()
            )
        }
        _ => bail!("finit_module({}): {e}", path.display()),
    }
}

/// Whether debugfs is mounted at /sys/kernel/debug, from /proc/self/mounts.
pub fn debugfs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<_> = l.split_whitespace().collect();
                f.len() > 2 && f[1] == DEBUGFS_MOUNT && f[2] == "debugfs"
            })
        })
        .unwrap_or(false)
}

/// Mounts debugfs if it is not mounted yet (best effort: on a test machine
/// it usually is, and without the right to mount the check below says what
/// is missing).
pub fn ensure_debugfs() {
    if !debugfs_mounted() {
        let _ = nix::mount::mount(
            Some("debugfs"),
            DEBUGFS_MOUNT,
            Some("debugfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        );
    }
}

/// Parses the module's `probes` file. Strict: a line in another shape means
/// the module and the driver disagree, which must show at once.
pub fn parse_probes(text: &str) -> Result<Vec<ProbeState>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut it = line.trim().splitn(3, char::is_whitespace);
            let (name, state, rest) = (it.next().unwrap_or(""), it.next(), it.next());
            match (state, rest) {
                (Some("attached"), None) => Ok(ProbeState { name: name.into(), attached: true, error: String::new() }),
                (Some("failed"), rest) => Ok(ProbeState {
                    name: name.into(),
                    attached: false,
                    error: rest.map(str::trim).filter(|r| !r.is_empty()).unwrap_or("unknown error").into(),
                }),
                _ => bail!("malformed probes line {line:?} (want '<probe> attached' or '<probe> failed <error>')"),
            }
        })
        .collect()
}

/// Reads `version` and `probes` of the loaded module.
pub fn info() -> Result<ModuleInfo> {
    let version_path = format!("{DEBUGFS_DIR}/version");
    let version = match std::fs::read_to_string(&version_path) {
        Ok(v) => v.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{version_path} does not exist: mmrace.ko is loaded but its debugfs files are missing \
             (debugfs mounted: {})",
            debugfs_mounted()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {version_path}")),
    };
    let probes_path = format!("{DEBUGFS_DIR}/probes");
    let text = std::fs::read_to_string(&probes_path)
        .with_context(|| format!("cannot read {probes_path}"))?;
    let probes = parse_probes(&text).with_context(|| format!("in {probes_path}"))?;
    Ok(ModuleInfo { version, probes })
}

/// Loads `module` if given, then checks the module is there and reads its
/// info. The one entry point for the run flow and the utility subcommands.
pub fn prepare(module: Option<&Path>) -> Result<ModuleInfo> {
    if let Some(path) = module {
        load(path)?;
    }
    // Mount debugfs only for a loaded module: with none there is nothing to
    // see, and a machine without the module keeps its mounts untouched.
    let loaded = module.is_some() || Path::new(SYSFS_MODULE_DIR).exists();
    if loaded && !Path::new(DEBUGFS_DIR).exists() {
        ensure_debugfs();
    }
    check_present(module.is_some())?;
    info()
}

/// Where sysfs shows a loaded mmrace.ko, whether or not debugfs is mounted.
pub const SYSFS_MODULE_DIR: &str = "/sys/module/mmrace";

/// Fails with what to do when the module's debugfs directory is missing.
pub fn check_present(loaded_by_us: bool) -> Result<()> {
    if Path::new(DEBUGFS_DIR).exists() {
        return Ok(());
    }
    if !loaded_by_us && !Path::new(SYSFS_MODULE_DIR).exists() {
        bail!("mmrace.ko is not loaded: insmod the module `make module KDIR=...` prints (or pass --module PATH)");
    }
    if !debugfs_mounted() {
        bail!(
            "mmrace.ko is loaded but debugfs is not mounted at {DEBUGFS_MOUNT} and could not be \
             mounted (mount -t debugfs none {DEBUGFS_MOUNT})"
        );
    }
    bail!("mmrace.ko is loaded but {DEBUGFS_DIR} does not exist: see the kernel log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_file() {
        let text = "split_huge_pmd_locked attached\n\
                    __folio_split failed -ENOENT (symbol not found)\n\
                    \n\
                    mm_migrate_pages failed\n";
        let p = parse_probes(text).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            p[0],
            ProbeState {
                name: "split_huge_pmd_locked".into(),
                attached: true,
                error: "".into()
            }
        );
        assert_eq!(p[1].name, "__folio_split");
        assert!(!p[1].attached);
        assert_eq!(p[1].error, "-ENOENT (symbol not found)");
        assert_eq!(p[2].error, "unknown error");
    }

    #[test]
    fn malformed_probes_lines() {
        for bad in ["lonely", "x attached extra", "x maybe", "x ok"] {
            assert!(parse_probes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_module_is_explained() {
        // This test machine does not run mmrace.ko.
        if Path::new(SYSFS_MODULE_DIR).exists() {
            return;
        }
        let err = check_present(false).unwrap_err().to_string();
        assert_eq!(
            err,
            "mmrace.ko is not loaded: insmod the module `make module KDIR=...` prints (or pass --module PATH)"
        );
    }

    #[test]
    fn missing_module_file() {
        let err = load(Path::new("/nonexistent/mmrace.ko")).unwrap_err();
        assert!(format!("{err:#}").contains("cannot open module"), "{err:#}");
    }
}
