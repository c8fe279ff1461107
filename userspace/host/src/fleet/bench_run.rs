//! `mmrace-host bench-run` (`make bench`, `./mmrace bench`,
//! scripts/bench.sh): the seed's shell reproducer against mmrace's driver
//! on the same kernel. Every setting is checked first (each boot's options
//! and scenario words as its `run` will check them); then the clean
//! kernel is built ([`crate::fleet::build`]) and boots once per seed (the
//! driver's `bench` scenario, its phases back to back), the race-only
//! variant boots once for each of (a), (b), (c), and
//! [`crate::fleet::bench`] summarises them.

use crate::args::{BenchRunArgs, BenchSummaryArgs};
use crate::fleet::build::{log, run_self, BuildError, Builder, KernelWant, Output, Target};
use crate::fleet::settings;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The seeds when none is given.
const DEFAULT_SEEDS: [u64; 3] = [1, 2, 3];

/// The settings, checked.
struct Bench<'a> {
    a: &'a BenchRunArgs,
    seeds: Vec<u64>,
    variant: Option<&'a str>,
    out: PathBuf,
    builder: Builder,
    t0: Instant,
}

/// One boot: its directory's name, seed, cap, kernel and what it runs.
struct Boot<'a> {
    id: &'a str,
    seed: u64,
    duration: u64,
    images: Option<(&'a Path, &'a Path)>,
    variant: Option<&'a str>,
    words: Vec<String>,
}

/// The `bench-run` subcommand: 0 every clean-kernel run went as expected,
/// 1 one did not (or a phase failed), 2 a harness error, 125 not built.
pub fn bench_run(a: &BenchRunArgs) -> i32 {
    let b = match Bench::checked(a) {
        Ok(b) => b,
        Err(e) => {
            log(&format!("error: {e}"));
            return 2;
        }
    };
    b.run().unwrap_or_else(|e| {
        log(&format!("error: {}", e.reason()));
        e.exit_code()
    })
}

fn push(v: &mut Vec<OsString>, flag: &str, value: impl Into<OsString>) {
    v.push(flag.into());
    v.push(value.into());
}

impl<'a> Bench<'a> {
    fn checked(a: &'a BenchRunArgs) -> Result<Bench<'a>, String> {
        let root = &a.mmrace_root;
        let variant = (!a.no_variant).then_some(a.variant.as_str());
        if let Some(v) = variant {
            settings::variant(root, v)?;
        }
        settings::series_list(std::slice::from_ref(&a.kernel_series), true)?;
        settings::profile(root, a.own.kernel_profile, a.own.kdir.as_deref())?;
        let id =
            a.id.clone()
                .unwrap_or_else(|| crate::args::utc_stamp(crate::vm::run::unix_now()));
        let b = Bench {
            a,
            seeds: if a.seeds.is_empty() {
                DEFAULT_SEEDS.to_vec()
            } else {
                a.seeds.clone()
            },
            variant,
            out: root.join(format!("build/results/bench-{id}")),
            builder: Builder::new(root),
            t0: Instant::now(),
        };
        for boot in [b.clean_boot("check", 1), b.variant_boots(1).remove(2)] {
            crate::fleet::batch::check_argv(&b.run_argv(&boot))?;
        }
        Ok(b)
    }

    /// A boot's cap: phases mem (~2 x 3 s), a, b, overhead, c, loops; the
    /// rest is slack for setup, the overhead phase's module unloads and
    /// loads, and a loaded host (there mem's two migrations of 256 MiB
    /// alone took 47 s, and 80 s in all left no time for overhead and c).
    /// The boot ends when the phases do.
    fn total(&self) -> u64 {
        5 * self.a.duration + 240
    }

    fn thp_args(&self) -> impl Iterator<Item = String> + '_ {
        self.a.thp_args.split_whitespace().map(str::to_string)
    }

    /// The clean kernel's boot of `seed`: the driver's `bench` scenario.
    fn clean_boot<'b>(&self, id: &'b str, seed: u64) -> Boot<'b> {
        let a = self.a;
        Boot {
            id,
            seed,
            duration: self.total(),
            images: None,
            variant: None,
            words: [
                "bench",
                "--phase-secs",
                &a.duration.to_string(),
                "--amplify",
                &a.amplify,
                "--thp-args",
                &a.thp_args,
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    /// The variant's boots, (a) the shell baseline, (b) thp-race, (c)
    /// thp-race amplified, capped.
    fn variant_boots(&self, seed: u64) -> Vec<Boot<'static>> {
        let thp: Vec<String> = std::iter::once("thp-race".to_string())
            .chain(self.thp_args())
            .collect();
        let mut amplified = thp.clone();
        amplified.extend(["--amplify".to_string(), self.a.amplify.clone()]);
        let words = [vec!["shell-baseline".to_string()], thp, amplified];
        ["variant-a", "variant-b", "variant-c"]
            .into_iter()
            .zip(words)
            .map(|(id, words)| Boot {
                id,
                seed,
                duration: self.a.variant_cap,
                images: None,
                variant: None,
                words,
            })
            .collect()
    }

    /// A boot's `run` command line (without images, `--check-only`).
    fn run_argv(&self, b: &Boot) -> Vec<OsString> {
        let a = self.a;
        let mut v: Vec<OsString> = vec!["mmrace-host".into(), "run".into(), "--quiet".into()];
        match b.images {
            Some((kernel, initrd)) => {
                push(&mut v, "--kernel", kernel);
                push(&mut v, "--initrd", initrd);
            }
            None => v.push("--check-only".into()),
        }
        push(&mut v, "--seed", b.seed.to_string());
        push(&mut v, "--duration", b.duration.to_string());
        v.extend(a.machine.words().into_iter().map(OsString::from));
        if let Some(p) = a.own.kernel_profile {
            push(&mut v, "--kernel-profile", p.name());
        }
        if let Some(k) = b.variant {
            push(&mut v, "--kernel-variant", k);
        }
        push(&mut v, "--results-dir", &self.out);
        push(&mut v, "--run-id", b.id);
        v.extend(b.words.iter().map(OsString::from));
        v
    }

    /// One boot, its output in OUT/ID.out; logs its verdict line. Its exit
    /// code.
    fn boot(&self, b: &Boot) -> Result<i32, BuildError> {
        let out_file = self.out.join(format!("{}.out", b.id));
        let rc = run_self(&self.run_argv(b), Output::File(&out_file))?;
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.to_lowercase().contains("verdict"))
            .or_else(|| text.lines().last())
            .unwrap_or("");
        log(&format!(
            "{}: exit {rc} ({} s so far), {line}",
            b.id,
            self.t0.elapsed().as_secs()
        ));
        Ok(rc)
    }

    fn want(&self, variant: Option<&str>) -> KernelWant {
        KernelWant::of(
            &self.a.own,
            &self.a.kernel_series,
            false,
            variant.map(str::to_string),
        )
    }

    /// The clean kernel with the shell baseline's programs in its
    /// initramfs; its runs record no series (as the bench always did).
    fn clean_target(&self, driver: &Path) -> Result<(Target, PathBuf), BuildError> {
        let b = &self.builder;
        let t = b.base_target(&self.want(None), self.a.own.kdir.as_deref(), driver, "")?;
        let initrd = b.bench_initrd(&t.kdir, &t.initrd)?;
        Ok((t, initrd))
    }

    fn run(&self) -> Result<i32, BuildError> {
        let a = self.a;
        let io = |e: std::io::Error| BuildError::Harness(format!("{}: {e}", self.out.display()));
        std::fs::create_dir_all(&self.out).map_err(io)?;
        let b = &self.builder;
        b.toolchain(&a.kernel_series, a.own.kernel_profile, a.own.kdir.is_some())?;
        let driver = b.driver()?;
        let (t, initrd) = self.clean_target(&driver)?;
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        log(&format!(
            "bench {}: seeds {}, {}s per phase, one boot per seed ({} s each), results in {}",
            file_name(&self.out).trim_start_matches("bench-"),
            seeds.join(" "),
            a.duration,
            self.total(),
            self.out.display()
        ));
        let mut failed = false;
        for seed in &self.seeds {
            let id = format!("clean-s{seed}");
            let mut boot = self.clean_boot(&id, *seed);
            boot.images = Some((&t.kernel, &initrd));
            failed |= self.boot(&boot)? != 0;
        }
        if let Some(v) = self.variant {
            self.variant_step(v, &driver)?;
        }
        log(&format!(
            "summary ({} s in all)",
            self.t0.elapsed().as_secs()
        ));
        // bench-summary: 0 fine, 1 a phase or run failed (listed under the
        // table).
        let rc = crate::fleet::bench::main(&BenchSummaryArgs {
            dir: self.out.clone(),
            variant: self.variant.unwrap_or("none").to_string(),
            cap: Some(a.variant_cap as f64),
        });
        if rc > 1 {
            return Err(BuildError::Harness(format!(
                "mmrace-host bench-summary failed on {}",
                self.out.display()
            )));
        }
        Ok(i32::from(failed || rc == 1))
    }

    /// Step 2: the variant's boots (its crash, exit 1, is the expected
    /// outcome: the summary reads the reports); none when it does not
    /// build.
    fn variant_step(&self, v: &str, driver: &Path) -> Result<(), BuildError> {
        let b = &self.builder;
        let built = b
            .target(&self.want(Some(v)), driver, "")
            .and_then(|t| b.bench_initrd(&t.kdir, &t.initrd).map(|i| (t, i)));
        let (t, initrd) = match built {
            Ok(ti) if ti.0.kernel.exists() => ti,
            _ => {
                log(&format!("variant {v} did not build: no variant timings"));
                return Ok(());
            }
        };
        log(&format!(
            "variant {v}: one boot each for a, b, c, capped at {}s",
            self.a.variant_cap
        ));
        for mut boot in self.variant_boots(self.seeds[0]) {
            boot.images = Some((&t.kernel, &initrd));
            boot.variant = Some(v);
            self.boot(&boot)?;
        }
        Ok(())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser as _;

    fn args(extra: &[&str]) -> BenchRunArgs {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let r = root.to_string_lossy().into_owned();
        let mut argv = vec!["mmrace-host", "bench-run", "--mmrace-root", &r];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::BenchRun(a) => *a,
            _ => unreachable!(),
        }
    }

    fn text(v: &[OsString]) -> String {
        let v: Vec<String> = v.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        v.join(" ")
    }

    #[test]
    fn each_boot_gets_the_bench_settings() {
        let a = args(&[
            "--duration",
            "5",
            "--id",
            "t",
            "--thp-args",
            "--racer-ops dontneed",
        ]);
        let b = Bench::checked(&a).unwrap();
        assert_eq!(b.seeds, DEFAULT_SEEDS);
        let mut boot = b.clean_boot("clean-s1", 1);
        boot.images = Some((Path::new("/k"), Path::new("/i")));
        let out = b.out.display().to_string();
        assert!(out.ends_with("build/results/bench-t"), "{out}");
        assert_eq!(
            text(&b.run_argv(&boot)),
            format!(
                "mmrace-host run --quiet --kernel /k --initrd /i --seed 1 --duration 265 \
                 --accel auto --results-dir {out} --run-id clean-s1 \
                 bench --phase-secs 5 --amplify delay_us=1000,every_nth=1 \
                 --thp-args --racer-ops dontneed"
            )
        );
        let c = &b.variant_boots(4)[2];
        assert_eq!(
            c.words,
            [
                "thp-race",
                "--racer-ops",
                "dontneed",
                "--amplify",
                "delay_us=1000,every_nth=1"
            ]
        );
        assert_eq!((c.id, c.seed, c.duration), ("variant-c", 4, 120));
    }

    #[test]
    fn bad_settings_are_refused_before_anything_is_built() {
        let e = Bench::checked(&args(&["--variant", "nosuch"]))
            .err()
            .unwrap();
        assert!(e.contains("no kernel variant 'nosuch'"), "{e}");
        assert!(Bench::checked(&args(&["--variant", "nosuch", "--no-variant"])).is_ok());
        let e = Bench::checked(&args(&["--amplify", "bogus=1"]))
            .err()
            .unwrap();
        assert!(!e.is_empty());
        let e = Bench::checked(&args(&["--cpus", "3"])).err().unwrap();
        assert!(e.contains("--cpus 3"), "{e}");
    }
}
