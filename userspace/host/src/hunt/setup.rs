//! `mmrace-host hunt-run` (`make hunt`, `./mmrace hunt`, scripts/hunt.sh):
//! a campaign's settings checked before anything is built, its kernels
//! built ([`crate::fleet::build`]; one that does not build is left out),
//! its targets written to CAMPAIGN/targets.json, the campaign's XFS image
//! made (when a scenario of the mix needs the disk), then [`super::hunt`] on them.

use crate::args::{Cli, Command, HuntArgs, HuntRunArgs};
use crate::fleet::build::{log, BuildError, Builder, KernelWant, Target};
use crate::fleet::settings;
use clap::Parser as _;
use mmrace_proto::spec::KernelProfile;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// HUNT_MIX when none is given: thp-race and pairs in swarm mode (each run
/// a narrow draw; pairs over every kind), oom-stall, and pairs again with
/// each op repeated through 100 ms of every round (`--overlap-ms`): three
/// of the library's pairs catches need it (uffd-move-src-unchecked,
/// smaps-pmd-unlocked, map-pages-punched-folio), which a run of the
/// plain rounds does not reach (docs/findings.md, "make hunt").
pub fn default_mix() -> Vec<String> {
    let kinds = mmrace_proto::spec::pairs::ALL_KINDS;
    vec![
        "thp-race --swarm".to_string(),
        "oom-stall".to_string(),
        format!("pairs --swarm --kinds {kinds}"),
        format!("pairs --swarm --overlap-ms 100 --kinds {kinds}"),
    ]
}

/// The campaign's settings, checked.
struct Setup<'a> {
    a: &'a HuntRunArgs,
    campaign: PathBuf,
    series: Vec<String>,
    profiles: Vec<KernelProfile>,
    /// None: the clean kernel.
    variants: Vec<Option<String>>,
    mix: Vec<String>,
    builder: Builder,
}

/// What the hunt runs on: the targets file, the first target's images,
/// the campaign's XFS image.
struct Built<'a> {
    targets: &'a Path,
    first: &'a Target,
    disk_image: Option<&'a Path>,
}

/// The `hunt-run` subcommand; its exit code: `hunt`'s (1 the campaign has
/// findings, 0 none), 2 a harness or usage error (no kernel built).
pub fn hunt_run(a: &HuntRunArgs, stop: &AtomicBool) -> i32 {
    let s = match Setup::checked(a) {
        Ok(s) => s,
        Err(e) => {
            log(&format!("error: {e}"));
            return 2;
        }
    };
    match s.build().and_then(|t| s.disk_image().map(|d| (t, d))) {
        Ok((targets, disk)) => s.hunt(&targets, disk.as_deref(), stop),
        Err(e) => {
            log(&format!("error: {}", e.reason()));
            e.exit_code()
        }
    }
}

/// The campaign's XFS image, remade each session: `disk.img`, or
/// `oom-stall.img` in a campaign an older mmrace started (that name, from
/// when only oom-stall used the disk, is remade in place rather than left
/// beside a second image).
fn disk_image_path(campaign: &Path) -> PathBuf {
    let old = campaign.join("oom-stall.img");
    if old.exists() {
        old
    } else {
        campaign.join("disk.img")
    }
}

fn push(v: &mut Vec<OsString>, flag: &str, value: impl Into<OsString>) {
    v.push(flag.into());
    v.push(value.into());
}

impl<'a> Setup<'a> {
    /// The series, profiles, variants and mix, and the hunt's own options
    /// as `hunt` parses them, before anything is built.
    fn checked(a: &'a HuntRunArgs) -> Result<Setup<'a>, String> {
        let root = &a.mmrace_root;
        let series = settings::series_list(&a.series, false)?;
        let profiles = if a.profiles.is_empty() {
            vec![KernelProfile::Default]
        } else {
            a.profiles.clone()
        };
        for p in &profiles {
            settings::profile(root, Some(*p), None)?;
        }
        let mut variants = Vec::new();
        for v in &a.variants {
            if v == "clean" {
                variants.push(None);
            } else {
                settings::variant(root, v).map_err(|e| format!("HUNT_VARIANTS: {e}"))?;
                variants.push(Some(v.clone()));
            }
        }
        if variants.is_empty() {
            variants.push(None);
        }
        let mix: Vec<String> = if a.mix.is_empty() {
            default_mix()
        } else {
            a.mix.clone()
        };
        super::plan::parse_mix(&mix).map_err(|e| format!("HUNT_MIX: {e:#}"))?;
        let campaign = a.campaign.clone().unwrap_or_else(|| {
            let stamp = crate::args::utc_stamp(crate::vm::run::unix_now());
            root.join(format!("build/results/hunt-{stamp}"))
        });
        let s = Setup {
            a,
            campaign,
            series,
            profiles,
            variants,
            mix,
            builder: Builder::new(root),
        };
        let placeholder = Target {
            series: String::new(),
            profile: None,
            variant: None,
            kernel: "-".into(),
            initrd: "-".into(),
            kdir: PathBuf::new(),
            module: PathBuf::new(),
        };
        let check = Built {
            targets: Path::new("-"),
            first: &placeholder,
            disk_image: None,
        };
        s.hunt_args(&check)?;
        Ok(s)
    }

    /// `hunt`'s command line on what was built, parsed.
    fn hunt_args(&self, b: &Built) -> Result<HuntArgs, String> {
        let a = self.a;
        let mut v: Vec<OsString> = vec!["mmrace-host".into(), "hunt".into()];
        push(&mut v, "--campaign", &self.campaign);
        push(&mut v, "--targets", b.targets);
        push(&mut v, "--kernel", &b.first.kernel);
        push(&mut v, "--initrd", &b.first.initrd);
        for m in &self.mix {
            push(&mut v, "--mix", m);
        }
        if let Some(d) = b.disk_image {
            push(&mut v, "--disk-image", d);
        }
        push(&mut v, "--duration", a.duration.to_string());
        push(&mut v, "--repro-runs", a.repro_runs.to_string());
        v.extend(a.machine.words().into_iter().map(OsString::from));
        let numbers = [
            ("--seed", a.seed),
            ("--max-runs", a.max_runs),
            ("--jobs", a.jobs.jobs.map(u64::from)),
            ("--after-finding", a.after_finding),
        ];
        for (flag, n) in numbers {
            if let Some(n) = n {
                push(&mut v, flag, n.to_string());
            }
        }
        if let Some(h) = a.hours {
            push(&mut v, "--hours", h.to_string());
        }
        match Cli::try_parse_from(&v) {
            Ok(Cli {
                command: Command::Hunt(h),
            }) => Ok(*h),
            Ok(_) => unreachable!("a hunt command line"),
            Err(e) => Err(e
                .to_string()
                .trim_start_matches("error: ")
                .trim_end()
                .into()),
        }
    }

    /// Every kernel of the campaign: series x profile x variant, each with
    /// mmrace.ko and its initramfs; written to CAMPAIGN/targets.json.
    fn build(&self) -> Result<Vec<Target>, BuildError> {
        let b = &self.builder;
        b.toolchain(&self.series[0], None, false)?;
        let driver = b.driver()?;
        let io =
            |e: std::io::Error| BuildError::Harness(format!("{}: {e}", self.campaign.display()));
        std::fs::create_dir_all(&self.campaign).map_err(io)?;
        let mut targets = Vec::new();
        for s in &self.series {
            for p in &self.profiles {
                for v in &self.variants {
                    let name = v.as_deref().unwrap_or("clean");
                    let label = v.as_deref().unwrap_or("clean kernel");
                    log(&format!("hunt: kernel {s}, profile {}, {label}", p.name()));
                    let want = KernelWant {
                        series: s.clone(),
                        src: None,
                        profile: Some(*p),
                        variant: v.clone(),
                    };
                    match b.kernel_src(s).and_then(|()| b.target(&want, &driver, s)) {
                        Ok(t) => targets.push(t),
                        Err(e) => log(&format!(
                            "hunt: {s} {} {name} did not build (exit {}): left out of the campaign",
                            p.name(),
                            e.exit_code()
                        )),
                    }
                }
            }
        }
        if targets.is_empty() {
            return Err(BuildError::Harness(
                "no kernel of the campaign could be built".into(),
            ));
        }
        let json = serde_json::to_string(&targets).expect("targets serialize");
        std::fs::write(self.targets_file(), json).map_err(io)?;
        Ok(targets)
    }

    fn targets_file(&self) -> PathBuf {
        self.campaign.join("targets.json")
    }

    /// The campaign's XFS image, when a scenario of the mix uses the disk
    /// (oom-stall, pairs; each run gets a private copy of it).
    fn disk_image(&self) -> Result<Option<PathBuf>, BuildError> {
        let mix = super::plan::parse_mix(&self.mix).unwrap_or_default();
        if !mix.iter().any(|s| s.needs_disk()) {
            return Ok(None);
        }
        self.builder
            .xfs_disk(&disk_image_path(&self.campaign), self.a.disk_mib)
            .map(Some)
    }

    /// The campaign on the targets built.
    fn hunt(&self, targets: &[Target], disk_image: Option<&Path>, stop: &AtomicBool) -> i32 {
        let file = self.targets_file();
        let built = Built {
            targets: &file,
            first: &targets[0],
            disk_image,
        };
        let h = match self.hunt_args(&built) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("mmrace: {e}");
                return 2;
            }
        };
        super::hunt(&h, stop).unwrap_or_else(|e| {
            eprintln!("mmrace: {e:#}");
            2
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> HuntRunArgs {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let r = root.to_string_lossy().into_owned();
        let mut argv = vec!["mmrace-host", "hunt-run", "--mmrace-root", &r];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::HuntRun(a) => *a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_hunt_gets_the_campaigns_settings() {
        let a = args(&[
            "--campaign",
            "/c",
            "--series",
            "7.2",
            "--variant",
            "clean",
            "--variant",
            "warn-once-only",
            "--mix",
            "thp-race",
            "--seed",
            "3",
            "--max-runs",
            "2",
        ]);
        let s = Setup::checked(&a).unwrap();
        assert_eq!(s.variants, [None, Some("warn-once-only".to_string())]);
        assert_eq!(s.profiles, [KernelProfile::Default]);
        let t = Target {
            series: "7.2".into(),
            profile: None,
            variant: None,
            kernel: "/k".into(),
            initrd: "/i".into(),
            kdir: PathBuf::new(),
            module: PathBuf::new(),
        };
        let h = s
            .hunt_args(&Built {
                targets: Path::new("/c/targets.json"),
                first: &t,
                disk_image: None,
            })
            .unwrap();
        assert_eq!(h.campaign, Path::new("/c"));
        assert_eq!(h.mix, ["thp-race"]);
        assert_eq!(
            (h.run.seed, h.max_runs, h.run.duration),
            (Some(3), Some(2), Some(60))
        );
        assert_eq!(h.run.kernel(), Path::new("/k"));
    }

    #[test]
    fn bad_settings_are_refused_before_anything_is_built() {
        let e = Setup::checked(&args(&["--series", "7.3", "--series", "7.3"]))
            .err()
            .unwrap();
        assert!(e.contains("KERNEL_SERIES lists 7.3 twice"), "{e}");
        let e = Setup::checked(&args(&["--variant", "nosuch"]))
            .err()
            .unwrap();
        assert!(e.contains("no kernel variant 'nosuch'"), "{e}");
        let e = Setup::checked(&args(&["--mix", "bogus"])).err().unwrap();
        assert!(e.contains("not a scenario"), "{e}");
        let a = args(&[]);
        assert_eq!(Setup::checked(&a).unwrap().mix, default_mix());
    }
}
