//! `mmrace-host qemu-run` (`./mmrace run`, `make qemu-run`,
//! scripts/qemu-run.sh): one scenario on one kernel, once or RUNS seeded
//! runs, or RUNS runs on each of several series side by side. Every
//! setting is checked first (the run's own options through the command
//! line its `run` or `batch` will get), then what is missing is built
//! ([`crate::fleet::build`]), with the programs `exec` and `selftests-mm`
//! run packed in and the XFS image a scenario needs; then this program's
//! `run` or `batch` boots the guests, and for several series
//! [`crate::fleet::series`] puts them side by side.

use crate::args::{QemuRunArgs, SeriesArgs};
use crate::fleet::build::{
    log, recorded_series, run_self, BuildError, Builder, KernelWant, Output, Target,
};
use crate::fleet::series::{series_cmd, NOT_BUILT};
use crate::fleet::settings;
use clap::ValueEnum as _;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The settings, checked: what the runs get.
struct Launch<'a> {
    a: &'a QemuRunArgs,
    series: Vec<String>,
    seed: u64,
    /// The scenario words the host gets (exec's name the program's place
    /// in the guest).
    words: Vec<String>,
    /// EXEC's program, on this machine.
    exec: Option<PathBuf>,
    needs_disk: bool,
    results_dir: PathBuf,
    builder: Builder,
}

/// Where a run or batch goes: its images, the series it records, its disk
/// and directory.
struct Place<'a> {
    kernel: &'a Path,
    initrd: &'a Path,
    series: &'a str,
    disk: Option<&'a Path>,
    results_dir: &'a Path,
    run_id: Option<&'a str>,
}

/// A series' kernel and its initramfs (with the scenario's programs), or
/// why it was not built.
type SeriesBuild = Result<(Target, PathBuf), String>;

/// A fresh XFS image this command made: removed when it is done (two
/// runs at once each make their own: one mkfs over the other's corrupts
/// both).
struct MadeDisk(PathBuf);

impl Drop for MadeDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The `qemu-run` subcommand; returns the exit code: the verdict of the
/// run (or batch), 125 when its kernel or mmrace.ko did not build, 2 a
/// harness or usage error; with several series, `series`'s.
pub fn qemu_run(a: &QemuRunArgs, stop: &AtomicBool) -> i32 {
    let l = match Launch::checked(a) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mmrace: {e}");
            return 2;
        }
    };
    let done = if l.series.len() > 1 {
        l.run_series(stop)
    } else {
        l.run_one()
    };
    done.unwrap_or_else(|e| {
        log(&format!("error: {}", e.reason()));
        e.exit_code()
    })
}

/// The scenario words the host gets: SCENARIO and ARGS as given; for exec,
/// `exec ARGS -- /exec/NAME ARG...` from EXEC="PROGRAM ARG..." (and the
/// program, which must be a file here).
fn scenario_words(a: &QemuRunArgs) -> Result<(Vec<String>, Option<PathBuf>), String> {
    if a.scenario.words[0] != "exec" {
        return Ok((a.scenario.words.clone(), None));
    }
    let mut exec = a.exec.as_deref().unwrap_or("").split_whitespace();
    let Some(prog) = exec.next() else {
        return Err(
            "SCENARIO=exec needs EXEC=\"PROGRAM [ARG...]\" (a program on this machine)".into(),
        );
    };
    let prog = PathBuf::from(prog);
    if !prog.is_file() {
        return Err(format!(
            "EXEC: '{}' is not a file on this machine",
            prog.display()
        ));
    }
    let mut words = a.scenario.words.clone();
    words.push("--".into());
    words.push(format!("/exec/{}", file_name(&prog)));
    words.extend(exec.map(str::to_string));
    Ok((words, Some(prog)))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn push(v: &mut Vec<OsString>, flag: &str, value: impl Into<OsString>) {
    v.push(flag.into());
    v.push(value.into());
}

impl<'a> Launch<'a> {
    /// Every setting, checked before anything is built: the series, the
    /// variant and profile names, EXEC, then the run's options and
    /// scenario words as its `run` or `batch` will check them.
    fn checked(a: &'a QemuRunArgs) -> Result<Launch<'a>, String> {
        let root = &a.mmrace_root;
        let series = settings::series_list(
            &a.series,
            a.own.kdir.is_some() || a.own.kernel_src.is_some(),
        )?;
        // A KDIR of the user's is built already: its variant is a name.
        if let (None, Some(v)) = (&a.own.kdir, &a.kernel_variant) {
            settings::variant(root, v)?;
        }
        settings::profile(root, a.own.kernel_profile, a.own.kdir.as_deref())?;
        let (words, exec) = scenario_words(a)?;
        let l = Launch {
            a,
            seed: a
                .seed
                .unwrap_or_else(|| crate::vm::run::random_seed() & 0xffff_ffff),
            needs_disk: mmrace_proto::spec::Scenario::parse(&words).is_ok_and(|s| s.needs_disk()),
            words,
            exec,
            results_dir: a
                .results_dir
                .clone()
                .unwrap_or_else(|| root.join("build/results")),
            builder: Builder::new(root),
            series,
        };
        crate::fleet::batch::check_argv(&l.host_argv(None))?;
        Ok(l)
    }

    fn multi(&self) -> bool {
        self.series.len() > 1
    }

    /// The host command line of the runs: `run`, or `batch` for RUNS or
    /// several series; without a place, `--check-only`.
    fn host_argv(&self, place: Option<&Place>) -> Vec<OsString> {
        let a = self.a;
        let mut v: Vec<OsString> = vec!["mmrace-host".into()];
        if a.runs.is_some() || self.multi() {
            v.push("batch".into());
            push(&mut v, "--runs", a.runs.unwrap_or(1).to_string());
            if let Some(j) = a.jobs.jobs {
                push(&mut v, "--jobs", j.to_string());
            }
        } else {
            v.push("run".into());
        }
        self.run_options(&mut v);
        match place {
            Some(p) => {
                push(&mut v, "--kernel", p.kernel);
                push(&mut v, "--initrd", p.initrd);
                push(&mut v, "--kernel-series", p.series);
                push(&mut v, "--results-dir", p.results_dir);
                if let Some(id) = p.run_id {
                    push(&mut v, "--run-id", id);
                }
                if let Some(d) = p.disk {
                    push(&mut v, "--disk", d);
                }
            }
            None => {
                v.push("--check-only".into());
                if let Some(id) = &a.run_id {
                    push(&mut v, "--run-id", id);
                }
                if let Some(d) = &a.disk {
                    push(&mut v, "--disk", d);
                }
            }
        }
        v.extend(self.words.iter().map(OsString::from));
        v
    }

    /// The options every run gets, whatever its kernel.
    fn run_options(&self, v: &mut Vec<OsString>) {
        let a = self.a;
        push(v, "--seed", self.seed.to_string());
        v.extend(a.machine.words().into_iter().map(OsString::from));
        if let Some(d) = a.duration {
            push(v, "--duration", d.to_string());
        }
        if let Some(k) = &a.kernel_variant {
            push(v, "--kernel-variant", k);
        }
        if let Some(p) = a.own.kernel_profile {
            push(v, "--kernel-profile", p.name());
        }
        if let Some(c) = a.crash_test {
            let c = c.to_possible_value().expect("a value");
            push(v, "--crash-test", c.get_name());
        }
    }

    /// The kernel of `series`.
    fn want(&self, series: &str) -> KernelWant {
        KernelWant::of(
            &self.a.own,
            series,
            self.multi(),
            self.a.kernel_variant.clone(),
        )
    }

    /// The series one run records.
    fn recorded_series(&self) -> String {
        recorded_series(&self.a.own, &self.series[0])
    }

    /// The target's initramfs with what the scenario runs packed in: EXEC's
    /// program at /exec/NAME, or the kernel's mm selftests (built from its
    /// source, cached) at /selftests/mm/.
    fn scenario_initrd(&self, t: &Target, want: &KernelWant) -> Result<PathBuf, BuildError> {
        let b = &self.builder;
        let files = match self.words[0].as_str() {
            "exec" => {
                let prog = self.exec.as_ref().expect("checked with the words");
                let here = std::fs::canonicalize(prog).unwrap_or_else(|_| prog.clone());
                vec![(format!("/exec/{}", file_name(prog)), here)]
            }
            "selftests-mm" => {
                let own = self.a.own.kdir.as_ref().map(|_| t.kdir.as_path());
                let binaries = mmrace_proto::spec::selftests_mm::binaries();
                let dir = b.selftests(want, own, &binaries)?;
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| BuildError::Harness(format!("{}: {e}", dir.display())))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .collect();
                files.sort();
                files
                    .into_iter()
                    .map(|f| (format!("/selftests/mm/{}", file_name(&f)), f))
                    .collect()
            }
            _ => return Ok(t.initrd.clone()),
        };
        b.initrd_onto(&t.initrd, &t.kdir, &self.words[0], &files)
    }

    /// A fresh XFS image when the scenario needs one and QEMU_DISK names
    /// none (build/disk/SCENARIO-PID.img).
    fn made_disk(&self) -> Result<Option<MadeDisk>, BuildError> {
        if self.a.disk.is_some() || !self.needs_disk {
            return Ok(None);
        }
        let img = self.a.mmrace_root.join(format!(
            "build/disk/{}-{}.img",
            self.words[0],
            std::process::id()
        ));
        self.builder.xfs_disk(&img, self.a.disk_mib)?;
        Ok(Some(MadeDisk(img)))
    }

    fn disk<'d>(&'d self, made: &'d Option<MadeDisk>) -> Option<&'d Path> {
        made.as_ref()
            .map(|m| m.0.as_path())
            .or(self.a.disk.as_deref())
    }

    /// One kernel: the toolchain, the driver, the kernel, mmrace.ko and
    /// the initramfs, then the run or the batch.
    fn run_one(&self) -> Result<i32, BuildError> {
        let (a, b) = (self.a, &self.builder);
        b.toolchain(&self.series[0], a.own.kernel_profile, a.own.kdir.is_some())?;
        let driver = b.driver()?;
        let want = self.want(&self.series[0]);
        let series = self.recorded_series();
        let t = b.base_target(&want, a.own.kdir.as_deref(), &driver, &series)?;
        let initrd = self.scenario_initrd(&t, &want)?;
        let made = self.made_disk()?;
        log(&format!(
            "run: scenario={} duration={} seed={} accel={} kernel={}",
            self.words[0],
            a.duration.map_or("default".into(), |d| d.to_string()),
            self.seed,
            a.machine
                .accel
                .to_possible_value()
                .expect("a value")
                .get_name(),
            file_name(&t.kdir)
        ));
        if let Some(n) = a.runs {
            let jobs = a
                .jobs
                .jobs
                .map_or(String::new(), |j| format!(", {j} at once"));
            log(&format!("batch: {n} runs, seeds from {}{jobs}", self.seed));
        }
        let place = Place {
            kernel: &t.kernel,
            initrd: &initrd,
            series: &series,
            disk: self.disk(&made),
            results_dir: &self.results_dir,
            run_id: a.run_id.as_deref(),
        };
        run_self(&self.host_argv(Some(&place)), Output::Inherit)
    }

    /// Every series' kernel, mmrace.ko and initramfs, built first; a
    /// series that cannot be built (125: a missing API, a variant patch
    /// that does not apply) is marked not built and the others still run.
    fn build_series(&self) -> Result<Vec<SeriesBuild>, BuildError> {
        let b = &self.builder;
        b.toolchain(&self.series[0], self.a.own.kernel_profile, false)?;
        // Every series' source first: one the archive lacks is a usage
        // error, before any build.
        for s in &self.series[1..] {
            b.kernel_src(s)?;
        }
        let driver = b.driver()?;
        let mut built = Vec::new();
        for s in &self.series {
            log(&format!("series {s}: kernel, mmrace.ko and initramfs"));
            let want = self.want(s);
            match b.kernel_src(s).and_then(|()| b.target(&want, &driver, s)) {
                Ok(t) => {
                    let initrd = self.scenario_initrd(&t, &want)?;
                    built.push(Ok((t, initrd)));
                }
                Err(BuildError::NotBuilt(reason)) => {
                    log(&format!(
                        "series {s}: not built; the other series still run"
                    ));
                    built.push(Err(reason));
                }
                Err(e) => {
                    return Err(BuildError::Harness(format!(
                        "series {s}: cannot prepare it: {}",
                        e.reason()
                    )))
                }
            }
        }
        Ok(built)
    }

    /// RUNS runs on each series: one batch per series into
    /// RESULTS_DIR/RUN_ID/SERIES/, then `series` side by side (its exit
    /// code: 1 any run of any series caught a kernel problem, 3 a test
    /// program failed, 2 a harness error, 125 a series did not build).
    fn run_series(&self, stop: &AtomicBool) -> Result<i32, BuildError> {
        let built = self.build_series()?;
        let made = self.made_disk()?;
        let id = self.a.run_id.clone().unwrap_or_else(|| {
            let stamp = crate::args::utc_stamp(crate::vm::run::unix_now());
            format!("{stamp}-{}-s{}-series", self.words[0], self.seed)
        });
        let out = self.results_dir.join(&id);
        if std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some()) {
            return Err(BuildError::Harness(format!(
                "{} already holds results: pick another RUN_ID",
                out.display()
            )));
        }
        let io = |e: std::io::Error| BuildError::Harness(format!("{}: {e}", out.display()));
        std::fs::create_dir_all(&out).map_err(io)?;
        for (s, b) in self.series.iter().zip(&built) {
            let (t, initrd) = match b {
                Ok(ti) => ti,
                Err(reason) => {
                    std::fs::create_dir_all(out.join(s)).map_err(io)?;
                    std::fs::write(out.join(s).join(NOT_BUILT), format!("{reason}\n"))
                        .map_err(io)?;
                    continue;
                }
            };
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let runs = self.a.runs.unwrap_or(1);
            log(&format!(
                "series {s}: {runs} runs of {}, seeds from {}",
                self.words[0], self.seed
            ));
            let place = Place {
                kernel: &t.kernel,
                initrd,
                series: s,
                disk: self.disk(&made),
                results_dir: &out,
                run_id: Some(s),
            };
            // The batch's exit code is in its merged.json and its summary
            // in summary.txt, which the comparison reads; stderr shows
            // progress.
            run_self(&self.host_argv(Some(&place)), Output::NoStdout)?;
        }
        drop(made);
        let _ = std::fs::remove_file(out.join("latest"));
        let latest = self.results_dir.join("latest");
        let _ = std::fs::remove_file(&latest);
        std::os::unix::fs::symlink(&id, &latest).map_err(io)?;
        Ok(series_cmd(&SeriesArgs {
            dir: out,
            series: self.series.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser as _;

    fn root() -> String {
        let r = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        r.to_string_lossy().into_owned()
    }

    fn args(extra: &[&str]) -> QemuRunArgs {
        let r = root();
        let mut argv = vec!["mmrace-host", "qemu-run", "--mmrace-root", &r];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::QemuRun(a) => *a,
            _ => unreachable!(),
        }
    }

    fn argv_text(v: &[OsString]) -> String {
        let v: Vec<String> = v.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        v.join(" ")
    }

    #[test]
    fn a_run_or_a_batch_gets_the_settings() {
        let a = args(&[
            "--seed",
            "7",
            "--duration",
            "30",
            "--",
            "thp-race",
            "--no-splitter",
        ]);
        let l = Launch::checked(&a).unwrap();
        let place = Place {
            kernel: Path::new("/k"),
            initrd: Path::new("/i"),
            series: "7.3",
            disk: None,
            results_dir: Path::new("/r"),
            run_id: None,
        };
        assert_eq!(
            argv_text(&l.host_argv(Some(&place))),
            "mmrace-host run --seed 7 --accel auto \
             --duration 30 --kernel /k --initrd /i --kernel-series 7.3 --results-dir /r \
             thp-race --no-splitter"
        );
        assert!(!l.needs_disk);
        let a = args(&[
            "--seed",
            "7",
            "--runs",
            "3",
            "--jobs",
            "2",
            "--",
            "oom-stall",
        ]);
        let l = Launch::checked(&a).unwrap();
        assert!(argv_text(&l.host_argv(None)).starts_with("mmrace-host batch --runs 3 --jobs 2 "));
        assert!(l.needs_disk);
        let a = args(&["--series", "7.2", "--series", "7.3", "--", "smoke"]);
        let l = Launch::checked(&a).unwrap();
        assert!(argv_text(&l.host_argv(None)).starts_with("mmrace-host batch --runs 1 "));
    }

    #[test]
    fn bad_settings_are_refused_before_anything_is_built() {
        let e = Launch::checked(&args(&["bogus"])).err().unwrap();
        assert!(e.contains("the scenarios: smoke, thp-race, "), "{e}");
        let e = Launch::checked(&args(&["--cpus", "3", "smoke"]))
            .err()
            .unwrap();
        assert!(e.contains("--cpus 3"), "{e}");
        let e = Launch::checked(&args(&["--kernel-variant", "nosuch", "smoke"]))
            .err()
            .unwrap();
        assert!(e.starts_with("no kernel variant 'nosuch': have "), "{e}");
        let e = Launch::checked(&args(&["--series", "7.3", "--series", "7.3", "smoke"]))
            .err()
            .unwrap();
        assert!(e.contains("lists 7.3 twice"), "{e}");
        let e = Launch::checked(&args(&["exec"])).err().unwrap();
        assert!(e.contains("needs EXEC="), "{e}");
        let e = Launch::checked(&args(&["--run-id", "latest", "smoke"]))
            .err()
            .unwrap();
        assert!(e.contains("--run-id"), "{e}");
        let r = Cli::try_parse_from([
            "mmrace-host",
            "qemu-run",
            "--mmrace-root",
            "/",
            "--runs",
            "0",
            "smoke",
        ]);
        assert!(r.is_err());
    }

    #[test]
    fn exec_words_name_the_program_in_the_guest() {
        let me = std::env::current_exe().unwrap();
        let exec = format!("{} hello world", me.display());
        let a = args(&["--exec", &exec, "--", "exec", "--timeout", "5"]);
        let (words, prog) = scenario_words(&a).unwrap();
        let name = file_name(&me);
        assert_eq!(
            words,
            [
                "exec",
                "--timeout",
                "5",
                "--",
                &format!("/exec/{name}"),
                "hello",
                "world"
            ]
        );
        assert_eq!(prog.as_deref(), Some(me.as_path()));
        let a = args(&["--exec", "/nonexistent/prog", "exec"]);
        assert!(scenario_words(&a).unwrap_err().contains("not a file"));
    }
}
