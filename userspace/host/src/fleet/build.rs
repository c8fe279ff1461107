//! The one builder: the toolchain, the static driver, a kernel series'
//! source, the test kernel, mmrace.ko and the initramfs, each by its script
//! (scripts/bootstrap.sh, build-kernel.sh, build-module.sh, mkinitramfs.sh)
//! called with arguments and exactly the environment it reads. What the
//! shell keeps is what shell is for: apt, the kernel's own make.
//!
//! A step that fails keeps its script's exit code: 125 when the kernel or
//! mmrace.ko cannot be built (a missing API, a patch that does not apply),
//! 2 for anything else (a series the archive lacks, a missing tool).

use crate::args::OwnKernelArgs;
use anyhow::{bail, Context as _};
use mmrace_proto::spec::{KernelProfile, KernelSpec};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Rust target of the guest's static driver.
const DRIVER_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Why a build step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The kernel under test or mmrace.ko against it did not build (125).
    NotBuilt(String),
    /// The harness or the setup (2).
    Harness(String),
}

impl BuildError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::NotBuilt(_) => 125,
            BuildError::Harness(_) => 2,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            BuildError::NotBuilt(r) | BuildError::Harness(r) => r,
        }
    }
}

/// Which test kernel to build: build-kernel.sh's KERNEL_SERIES,
/// KERNEL_SRC, KERNEL_PROFILE and KERNEL_VARIANT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelWant {
    pub series: String,
    /// A kernel source tree of the user's instead of Debian's.
    pub src: Option<PathBuf>,
    /// kernel/profiles/NAME.config over the base fragment; None: default.
    pub profile: Option<KernelProfile>,
    /// kernel/variants/NAME.patch; None: the clean kernel.
    pub variant: Option<String>,
}

impl KernelWant {
    /// The kernel of `series` with `variant`, under the settings of a kernel
    /// of the user's: its source tree only when one series is built
    /// (`several` false), its profile always.
    pub fn of(own: &OwnKernelArgs, series: &str, several: bool, variant: Option<String>) -> Self {
        KernelWant {
            series: series.to_string(),
            src: if several {
                None
            } else {
                own.kernel_src.clone()
            },
            profile: own.kernel_profile,
            variant,
        }
    }

    fn profile_name(&self) -> &'static str {
        self.profile.map_or("", KernelProfile::name)
    }
}

/// A kernel ready to boot: what its runs record (series, profile,
/// variant), its image and initramfs, and how it was built (its build
/// directory and mmrace.ko). A campaign's targets.json and campaign.json
/// hold the first five: the build is not part of what a run boots.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The series its runs record (`src` for a KERNEL_SRC tree, empty for
    /// a kernel of the user's).
    pub series: String,
    /// KERNEL_PROFILE; None: the default test kernel.
    #[serde(default)]
    pub profile: Option<KernelProfile>,
    /// KERNEL_VARIANT; None: the clean kernel.
    #[serde(default)]
    pub variant: Option<String>,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    #[serde(skip)]
    pub kdir: PathBuf,
    #[serde(skip)]
    pub module: PathBuf,
}

/// Two targets are the same kernel when they record and boot the same.
impl PartialEq for Target {
    fn eq(&self, o: &Target) -> bool {
        (
            &self.series,
            self.profile,
            &self.variant,
            &self.kernel,
            &self.initrd,
        ) == (&o.series, o.profile, &o.variant, &o.kernel, &o.initrd)
    }
}

impl Eq for Target {}

impl Target {
    /// `7.3`, `7.3 kasan`, `7.3 variant warn-once-only`.
    pub fn label(&self) -> String {
        let mut s = if self.series.is_empty() {
            self.kernel.display().to_string()
        } else {
            self.series.clone()
        };
        if let Some(p) = self.profile.filter(|p| *p != KernelProfile::Default) {
            s += &format!(" {}", p.name());
        }
        if let Some(v) = &self.variant {
            s += &format!(" variant {v}");
        }
        s
    }

    /// What a run on this kernel records in its spec.
    pub fn kernel_spec(&self) -> KernelSpec {
        KernelSpec {
            series: self.series.clone(),
            variant: self.variant.clone(),
            profile: self.profile,
        }
    }

    /// Reads a targets file: a JSON list of targets, each image a file.
    pub fn load_all(path: &Path) -> anyhow::Result<Vec<Target>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: Vec<Target> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a list of targets", path.display()))?;
        if v.is_empty() {
            bail!("{}: no targets", path.display());
        }
        for t in &v {
            for (what, p) in [("kernel", &t.kernel), ("initrd", &t.initrd)] {
                if !p.is_file() {
                    bail!("target {}: {what} {} is not a file", t.label(), p.display());
                }
            }
        }
        Ok(v)
    }
}

/// The builder of one mmrace tree.
#[derive(Debug, Clone)]
pub struct Builder {
    root: PathBuf,
}

impl Builder {
    pub fn new(root: &Path) -> Builder {
        Builder {
            root: root.to_path_buf(),
        }
    }

    fn script(&self, name: &str) -> Command {
        let mut c = Command::new(self.root.join("scripts").join(name));
        // build-kernel.sh reads JOBS as make -j; the guests' JOBS is ours.
        c.env_remove("JOBS");
        c
    }

    /// The static driver, the guest's /init.
    pub fn driver_bin(&self) -> PathBuf {
        self.root
            .join("target")
            .join(DRIVER_TARGET)
            .join("release/mmrace-driver")
    }

    /// The packages (with what `profile`'s kernel needs), libclang,
    /// bindgen and the first series' source (scripts/bootstrap.sh); with a
    /// kernel of the user's (`own_kdir`), only the packages.
    pub fn toolchain(
        &self,
        series: &str,
        profile: Option<KernelProfile>,
        own_kdir: bool,
    ) -> Result<(), BuildError> {
        let mut c = self.script("bootstrap.sh");
        c.env("KERNEL_SERIES", series)
            .env("KERNEL_PROFILE", profile.map_or("", KernelProfile::name))
            .env("MMRACE_DIE_CODE", "2");
        if own_kdir {
            c.args(["apt-sources", "packages"]);
        }
        run(c, "the toolchain").map(drop).map_err(harness)
    }

    /// The static mmrace-driver (cargo).
    pub fn driver(&self) -> Result<PathBuf, BuildError> {
        log("userspace: building mmrace-driver (static)");
        let mut c = Command::new("cargo");
        c.current_dir(&self.root)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args([
                "build",
                "-q",
                "--release",
                "--locked",
                "-p",
                "mmrace-driver",
            ])
            .args(["--target", DRIVER_TARGET]);
        run(c, "userspace: cargo build")
            .map_err(|_| BuildError::Harness("userspace: cargo build failed".into()))?;
        Ok(self.driver_bin())
    }

    /// Debian's linux-source-SERIES, fetched when missing; a series the
    /// archive lacks is a usage error.
    pub fn kernel_src(&self, series: &str) -> Result<(), BuildError> {
        let mut c = self.script("bootstrap.sh");
        c.arg("kernel-src").env("KERNEL_SERIES", series);
        run(c, "kernel source").map(drop).map_err(harness)
    }

    /// The test kernel's build directory (scripts/build-kernel.sh).
    pub fn kernel(&self, want: &KernelWant) -> Result<PathBuf, BuildError> {
        let mut c = self.script("build-kernel.sh");
        c.env("KERNEL_SERIES", &want.series)
            .env("KERNEL_SRC", want.src.as_deref().unwrap_or(Path::new("")))
            .env("KERNEL_PROFILE", want.profile_name())
            .env("KERNEL_VARIANT", want.variant.as_deref().unwrap_or(""));
        run(c, "kernel").map(PathBuf::from)
    }

    /// mmrace.ko against `kdir` (scripts/build-module.sh).
    pub fn module(&self, kdir: &Path) -> Result<PathBuf, BuildError> {
        let mut c = self.script("build-module.sh");
        c.arg(kdir);
        run(c, "mmrace.ko").map(PathBuf::from)
    }

    /// The guest's initramfs: the driver as /init and mmrace.ko
    /// (scripts/mkinitramfs.sh), in build/initramfs/<kernel>.cpio.
    pub fn initrd(&self, kdir: &Path, driver: &Path, module: &Path) -> Result<PathBuf, BuildError> {
        let name = format!("{}.cpio", file_name(kdir));
        let mut c = self.script("mkinitramfs.sh");
        c.arg(kdir)
            .arg(driver)
            .arg(module)
            .arg(self.root.join("build/initramfs").join(name));
        run(c, "initramfs").map(PathBuf::from).map_err(harness)
    }

    /// `base` with `files` (guest path, file here) appended, in
    /// build/initramfs/<kernel>-<tag>.cpio (scripts/mkinitramfs.sh
    /// --onto): the programs `exec` and `selftests-mm` run.
    pub fn initrd_onto(
        &self,
        base: &Path,
        kdir: &Path,
        tag: &str,
        files: &[(String, PathBuf)],
    ) -> Result<PathBuf, BuildError> {
        let name = format!("{}-{tag}.cpio", file_name(kdir));
        let mut c = self.script("mkinitramfs.sh");
        c.arg("--onto")
            .arg(base)
            .arg(kdir)
            .arg(self.root.join("build/initramfs").join(name));
        for (guest, here) in files {
            let mut entry = std::ffi::OsString::from(format!("{guest}="));
            entry.push(here);
            c.arg(entry);
        }
        run(c, "initramfs").map(PathBuf::from).map_err(harness)
    }

    /// The kernel's mm selftests `binaries`, built static from the source
    /// of `want` (or of `own_kdir`, a kernel of the user's) and cached
    /// (scripts/build-selftests.sh); the directory holding them.
    pub fn selftests(
        &self,
        want: &KernelWant,
        own_kdir: Option<&Path>,
        binaries: &[&str],
    ) -> Result<PathBuf, BuildError> {
        let mut c = self.script("build-selftests.sh");
        c.args(binaries)
            .env("KERNEL_SERIES", &want.series)
            .env("KERNEL_SRC", want.src.as_deref().unwrap_or(Path::new("")));
        match own_kdir {
            Some(k) => c.env("KDIR", k).env("KDIR_GIVEN", "1"),
            None => c.env_remove("KDIR").env_remove("KDIR_GIVEN"),
        };
        run(c, "selftests-mm").map(PathBuf::from).map_err(harness)
    }

    /// `base` with what the seed's shell procedure needs appended
    /// (scripts/bench-initrd.sh).
    pub fn bench_initrd(&self, kdir: &Path, base: &Path) -> Result<PathBuf, BuildError> {
        let mut c = self.script("bench-initrd.sh");
        c.arg(kdir).arg(base);
        run(c, "bench initramfs")
            .map(PathBuf::from)
            .map_err(harness)
    }

    /// A fresh, sparse XFS image of `mib` MiB at `image`
    /// (scripts/make-xfs-disk.sh).
    pub fn xfs_disk(&self, image: &Path, mib: u64) -> Result<PathBuf, BuildError> {
        let mut c = self.script("make-xfs-disk.sh");
        c.arg(image).arg(mib.to_string());
        run(c, "XFS image").map(PathBuf::from).map_err(harness)
    }

    /// mmrace.ko and the initramfs for a built kernel.
    pub fn target_of(
        &self,
        kdir: &Path,
        driver: &Path,
        series: &str,
        want: &KernelWant,
    ) -> Result<Target, BuildError> {
        let module = self.module(kdir)?;
        let initrd = self.initrd(kdir, driver, &module)?;
        Ok(Target {
            series: series.to_string(),
            profile: want.profile,
            variant: want.variant.clone(),
            kdir: kdir.to_path_buf(),
            kernel: kdir.join("arch/x86/boot/bzImage"),
            module,
            initrd,
        })
    }

    /// The kernel of the user's (`own_kdir`, built already) or the one
    /// `want` names, mmrace.ko against it and its initramfs; the runs
    /// record `series`. A kernel of the user's must hold its bzImage.
    pub fn base_target(
        &self,
        want: &KernelWant,
        own_kdir: Option<&Path>,
        driver: &Path,
        series: &str,
    ) -> Result<Target, BuildError> {
        let Some(kdir) = own_kdir else {
            return self.target(want, driver, series);
        };
        let kdir = std::fs::canonicalize(kdir)
            .map_err(|e| BuildError::Harness(format!("KDIR={}: {e}", kdir.display())))?;
        let kernel = kdir.join("arch/x86/boot/bzImage");
        if !kernel.exists() {
            return Err(BuildError::Harness(format!(
                "no {} in KDIR={}: build bzImage there first",
                kernel.display(),
                kdir.display()
            )));
        }
        self.target_of(&kdir, driver, series, want)
    }

    /// The kernel `want` names, mmrace.ko against it and its initramfs;
    /// the runs record `series`.
    pub fn target(
        &self,
        want: &KernelWant,
        driver: &Path,
        series: &str,
    ) -> Result<Target, BuildError> {
        let kdir = self.kernel(want)?;
        self.target_of(&kdir, driver, series, want)
    }
}

/// The `build` subcommand: one kernel's target, checked then built; its
/// build directory, bzImage, mmrace.ko and initramfs printed a line each.
/// The series a single series' runs record: empty for a kernel build of
/// the user's, `src` for a KERNEL_SRC tree, else `series`.
pub fn recorded_series(own: &OwnKernelArgs, series: &str) -> String {
    if own.kdir.is_some() {
        String::new()
    } else if own.kernel_src.is_some() {
        "src".into()
    } else {
        series.to_string()
    }
}

pub fn build_cmd(a: &crate::args::BuildArgs) -> i32 {
    let root = &a.mmrace_root;
    let checked = crate::fleet::settings::series_list(
        std::slice::from_ref(&a.series),
        a.own.kdir.is_some() || a.own.kernel_src.is_some(),
    )
    .and_then(|_| {
        crate::fleet::settings::profile(root, a.own.kernel_profile, a.own.kdir.as_deref())
    })
    .and_then(|()| match (&a.own.kdir, &a.kernel_variant) {
        (None, Some(v)) => crate::fleet::settings::variant(root, v),
        _ => Ok(()),
    });
    if let Err(e) = checked {
        log(&format!("error: {e}"));
        return 2;
    }
    let b = Builder::new(root);
    let want = KernelWant::of(&a.own, &a.series, false, a.kernel_variant.clone());
    let built = b
        .toolchain(&a.series, a.own.kernel_profile, a.own.kdir.is_some())
        .and_then(|()| b.driver())
        .and_then(|driver| b.base_target(&want, a.own.kdir.as_deref(), &driver, &a.series));
    match built {
        Ok(t) => {
            for p in [&t.kdir, &t.kernel, &t.module, &t.initrd] {
                println!("{}", p.display());
            }
            0
        }
        Err(e) => {
            log(&format!("error: {}", e.reason()));
            e.exit_code()
        }
    }
}

/// This program, to run its own subcommands (a cell's or a step's batch):
/// the path it was started by when that is absolute (the scripts start it
/// as target/release/mmrace-host; a rebuild during a long matrix replaces
/// that file, and /proc/self/exe would then name a deleted one), else the
/// running executable.
pub fn host_exe() -> std::io::Result<PathBuf> {
    match std::env::args_os().next().map(PathBuf::from) {
        Some(p) if p.is_absolute() && p.is_file() => Ok(p),
        _ => std::env::current_exe(),
    }
}

/// Where a child run of this program writes its output.
pub enum Output<'a> {
    /// Ours.
    Inherit,
    /// stdout discarded, stderr ours.
    NoStdout,
    /// Both into this file.
    File(&'a Path),
}

/// Runs this program with `argv` (program name first: a cell's, a step's,
/// a series' batch, or a run); its exit code (a signal's as a shell gives
/// it, 128 + N).
pub fn run_self(argv: &[std::ffi::OsString], output: Output) -> Result<i32, BuildError> {
    use std::os::unix::process::ExitStatusExt as _;
    let what = argv
        .get(1)
        .map_or("mmrace-host".into(), |c| c.to_string_lossy());
    let harness = |e: std::io::Error| BuildError::Harness(format!("{what}: {e}"));
    let mut c = Command::new(host_exe().map_err(harness)?);
    c.args(&argv[1..]);
    match output {
        Output::Inherit => {}
        Output::NoStdout => {
            c.stdout(Stdio::null());
        }
        Output::File(f) => {
            let out = std::fs::File::create(f).map_err(harness)?;
            c.stderr(out.try_clone().map_err(harness)?).stdout(out);
        }
    }
    let status = c.status().map_err(harness)?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(2))
}

/// `[mmrace] ...` on stderr, as the scripts log.
pub fn log(msg: &str) {
    eprintln!("[mmrace] {msg}");
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every failure of a step that cannot be the kernel's is the harness's.
fn harness(e: BuildError) -> BuildError {
    BuildError::Harness(e.reason().to_string())
}

/// Runs a build script: its stderr goes on to ours (progress, errors), its
/// stdout's last line is what it built. A failure is 125 or 2 as the
/// script exited, with the script's last error line as the reason.
fn run(mut c: Command, what: &str) -> Result<String, BuildError> {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BuildError::Harness(format!("{what}: cannot start {c:?}: {e}")))?;
    let stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || last_error_line(BufReader::new(stderr)));
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    let status = child
        .wait()
        .map_err(|e| BuildError::Harness(format!("{what}: {e}")))?;
    let reason = errors.join().unwrap_or_default();
    if status.success() {
        return Ok(out
            .lines()
            .rfind(|l| !l.is_empty())
            .unwrap_or("")
            .to_string());
    }
    let reason = reason.unwrap_or_else(|| format!("{what} failed ({status})"));
    Err(match status.code() {
        Some(125) => BuildError::NotBuilt(reason),
        _ => BuildError::Harness(reason),
    })
}

/// Copies `r` to stderr; returns its last `[mmrace] error: ` message.
fn last_error_line(r: impl BufRead) -> Option<String> {
    let mut last = None;
    for line in r.lines().map_while(Result::ok) {
        eprintln!("{line}");
        if let Some(m) = line.strip_prefix("[mmrace] error: ") {
            last = Some(m.to_string());
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join("scripts").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn tree(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mmrace-build-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_target_from_the_scripts_with_their_environment() {
        let d = tree("ok");
        script(
            &d,
            "build-kernel.sh",
            "echo \"[mmrace] kernel $KERNEL_SERIES\" >&2\necho /k/$KERNEL_SERIES-$KERNEL_PROFILE-$KERNEL_VARIANT-src$KERNEL_SRC-jobs$JOBS",
        );
        script(&d, "build-module.sh", "echo \"$1/mmrace.ko\"");
        script(&d, "mkinitramfs.sh", "echo \"$1 $2 $3\" >&2\necho \"$4\"");
        let want = KernelWant {
            series: "7.2".into(),
            src: None,
            profile: Some(KernelProfile::Lockdep),
            variant: Some("v".into()),
        };
        let t = Builder::new(&d)
            .target(&want, Path::new("/drv"), "7.2")
            .unwrap();
        assert_eq!(t.kdir, PathBuf::from("/k/7.2-lockdep-v-src-jobs"));
        assert_eq!(t.kernel, t.kdir.join("arch/x86/boot/bzImage"));
        assert_eq!(t.module, t.kdir.join("mmrace.ko"));
        assert_eq!(
            t.initrd,
            d.join("build/initramfs/7.2-lockdep-v-src-jobs.cpio")
        );
        assert_eq!(
            (t.series.as_str(), t.variant.as_deref()),
            ("7.2", Some("v"))
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failures_keep_their_exit_code_and_reason() {
        let d = tree("fail");
        script(
            &d,
            "build-kernel.sh",
            "echo '[mmrace] error: the patch does not apply' >&2\nexit 125",
        );
        script(
            &d,
            "bootstrap.sh",
            "echo '[mmrace] error: no such series' >&2\nexit 2",
        );
        script(&d, "make-xfs-disk.sh", "exit 125");
        let b = Builder::new(&d);
        let e = b.kernel(&KernelWant::default()).unwrap_err();
        assert_eq!(e, BuildError::NotBuilt("the patch does not apply".into()));
        assert_eq!(e.exit_code(), 125);
        let e = b.kernel_src("9.9").unwrap_err();
        assert_eq!((e.exit_code(), e.reason()), (2, "no such series"));
        // Only the kernel and the module can be "not built".
        let e = b.xfs_disk(Path::new("/x.img"), 300).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
