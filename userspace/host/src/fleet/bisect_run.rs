//! `mmrace-host bisect-run` (`make bisect`, scripts/race-bisect.sh): drives
//! a race-aware bisection. BAD is built and run until it is caught
//! ESTIMATE_CATCHES times or ESTIMATE_RUNS runs are done; the plan
//! ([`crate::fleet::bisect::plan_of`]) gives the runs per commit and the
//! title to bisect; then git bisect, a step at a time: each commit is built
//! ([`crate::fleet::build`]) and run until the first catch (bad) or all its
//! runs pass (good); one that does not build is skipped; a harness error
//! stops. The report is `bisect-report`'s.
//!
//! The bisection directory: `estimate/`, `expect`, `steps/NN-<commit>/`
//! (a batch, its `commit` file, `not-built`), `first-bad`,
//! `git-bisect-run.log` (git's answers to each step) and `git-bisect.log`.

use crate::args::{BisectReportArgs, BisectRunArgs};
use crate::fleet::bisect::{plan_of, report_cmd, EXPECT_FILE};
use crate::fleet::build::{log, run_self, BuildError, Builder, KernelWant, Output, Target};
use crate::judge::expect::Expect;
use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What stops a bisection: the reason, and the exit code.
struct Stop(String, i32);

impl From<BuildError> for Stop {
    fn from(e: BuildError) -> Stop {
        Stop(e.reason().to_string(), 2)
    }
}

fn stop(msg: impl Into<String>) -> Stop {
    Stop(msg.into(), 2)
}

/// A git command in the tree: its stdout, or its stderr as the error.
fn git(tree: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(tree)
        .args(args)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim_end().to_string())
    }
}

/// The settings, checked; GOOD and BAD as commits.
struct Checked {
    src: PathBuf,
    good: String,
    bad: String,
    seed: u64,
}

/// KERNEL_SRC: a git tree without local changes, not in a bisection.
fn check_tree(src: &Path) -> Result<(), Stop> {
    let s = src.display();
    git(src, &["rev-parse", "--git-dir"])
        .map_err(|_| stop(format!("KERNEL_SRC={s} is not a git tree")))?;
    let dirty = git(src, &["status", "--porcelain", "--untracked-files=no"]).map_err(stop)?;
    if !dirty.is_empty() {
        return Err(stop(format!(
            "KERNEL_SRC={s} has local changes: commit or stash them first"
        )));
    }
    let log_path = git(src, &["rev-parse", "--git-path", "BISECT_LOG"]).map_err(stop)?;
    if src.join(&log_path).exists() {
        return Err(stop(format!(
            "KERNEL_SRC={s} is in the middle of a git bisect: 'git bisect reset' first"
        )));
    }
    Ok(())
}

/// The tree, GOOD, BAD and the runs' options, checked before anything is
/// built.
fn check(a: &BisectRunArgs) -> Result<Checked, Stop> {
    let src = std::fs::canonicalize(&a.kernel_src)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            stop(format!(
                "KERNEL_SRC={} is not a directory",
                a.kernel_src.display()
            ))
        })?;
    let s = src.display();
    check_tree(&src)?;
    let commit = |name: &str, rev: &str| {
        git(
            &src,
            &["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")],
        )
        .map_err(|_| stop(format!("{name}={rev} is not a commit in {s}")))
    };
    let root = &a.mmrace_root;
    crate::fleet::settings::series_list(std::slice::from_ref(&a.kernel_series), true)
        .and_then(|_| crate::fleet::settings::profile(root, a.kernel_profile, None))
        .and_then(|()| match &a.kernel_variant {
            Some(v) => crate::fleet::settings::variant(root, v),
            None => Ok(()),
        })
        .map_err(stop)?;
    let good = commit("GOOD", &a.good)?;
    let bad = commit("BAD", &a.bad)?;
    let seed = a
        .seed
        .unwrap_or_else(|| crate::vm::run::random_seed() & 0xffff_ffff);
    let c = Checked {
        src: src.clone(),
        good,
        bad,
        seed,
    };
    crate::fleet::batch::check_argv(&batch_argv(a, &c, None)).map_err(|e| {
        stop(format!(
            "{e}\nbisect: the runs' settings (SCENARIO, ARGS, DURATION...): refused"
        ))
    })?;
    Ok(c)
}

/// Where a batch goes: its kernel, its directory and id, how many runs,
/// and after how many catches it stops.
struct BatchPlace<'a> {
    target: &'a Target,
    dir: &'a Path,
    id: &'a str,
    runs: u32,
    stop_after: u32,
    expect: Option<&'a Expect>,
}

/// A batch's command line (without a place: `--check-only`).
fn batch_argv(a: &BisectRunArgs, c: &Checked, place: Option<&BatchPlace>) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["mmrace-host".into(), "batch".into()];
    if place.is_none() {
        v.push("--check-only".into());
    }
    let mut opt = |k: &str, val: OsString| {
        v.push(k.into());
        v.push(val);
    };
    if let Some(p) = place {
        opt("--kernel", p.target.kernel.clone().into());
        opt("--initrd", p.target.initrd.clone().into());
    }
    opt("--seed", c.seed.to_string().into());
    opt("--duration", a.duration.to_string().into());
    opt("--kernel-series", "src".into());
    v.extend(a.machine.words().into_iter().map(OsString::from));
    let mut opt = |k: &str, val: OsString| {
        v.push(k.into());
        v.push(val);
    };
    let profile = a.kernel_profile.map(|p| p.name().to_string());
    for (k, val) in [
        ("--kernel-variant", &a.kernel_variant),
        ("--kernel-profile", &profile),
        ("--crash-test", &a.crash_test),
    ] {
        if let Some(val) = val {
            opt(k, val.into());
        }
    }
    if let Some(d) = &a.disk {
        opt("--disk", d.clone().into());
    }
    batch_place(&mut v, a, place);
    v.extend(a.scenario.words.iter().map(OsString::from));
    v
}

/// The options of a batch's place: runs, jobs, expect, stop, directory.
fn batch_place(v: &mut Vec<OsString>, a: &BisectRunArgs, place: Option<&BatchPlace>) {
    let mut opt = |k: &str, val: String| {
        v.push(k.into());
        v.push(val.into());
    };
    opt("--runs", place.map_or(1, |p| p.runs).to_string());
    if let Some(j) = a.jobs.jobs {
        opt("--jobs", j.to_string());
    }
    let expect = place.and_then(|p| p.expect).or(a.expect.as_ref());
    if let Some(e) = expect {
        opt("--expect", e.pattern().to_string());
    }
    if let Some(p) = place {
        opt("--stop-after-catches", p.stop_after.to_string());
        opt("--results-dir", p.dir.display().to_string());
        opt("--run-id", p.id.to_string());
    }
}

/// The next step's directory name: its number and HEAD's commit.
fn step_id(steps: &Path, commit: &str) -> String {
    let done = std::fs::read_dir(steps)
        .map(|d| {
            d.filter_map(Result::ok)
                // Directories only: the batches' `latest` link is not a step.
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .count()
        })
        .unwrap_or(0);
    format!("{:02}-{}", done + 1, &commit[..12])
}

/// A step that did not build: skipped when the kernel or mmrace.ko could
/// not be built (its `not-built` mark), else the bisection stops.
fn skip_or_stop(e: &BuildError, step: &Path, id: &str) -> Result<&'static str, Stop> {
    if e.exit_code() != 125 {
        return Err(stop(format!(
            "bisect: {id}: harness error while building (exit {}): stopping",
            e.exit_code()
        )));
    }
    std::fs::write(step.join("not-built"), "").map_err(|e| stop(e.to_string()))?;
    log(&format!("bisect: {id} does not build: skipped"));
    Ok("skip")
}

/// A bisection under way: its tree is put back (bisect reset, the branch
/// it was on) when it ends, however it ends.
struct Bisection<'a> {
    a: &'a BisectRunArgs,
    c: Checked,
    dir: PathBuf,
    builder: Builder,
    driver: PathBuf,
    orig: String,
    started: bool,
}

impl Drop for Bisection<'_> {
    fn drop(&mut self) {
        self.restore();
    }
}

/// What git said to a step: go on, or the bisection's end.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Continue,
    FirstBad(String),
    Ended,
}

/// Reads git bisect's answer.
fn next_of(answer: &str) -> Next {
    for l in answer.lines() {
        if let Some(h) = l.strip_suffix(" is the first bad commit") {
            if h.len() == 40 && h.chars().all(|c| c.is_ascii_hexdigit()) {
                return Next::FirstBad(h.to_string());
            }
        }
        if l.starts_with("There are only 'skip'ped commits left to test") {
            return Next::Ended;
        }
    }
    Next::Continue
}

impl<'a> Bisection<'a> {
    fn restore(&mut self) {
        if self.started {
            let _ = git(&self.c.src, &["bisect", "reset"]);
            self.started = false;
        }
        let _ = git(&self.c.src, &["checkout", "-q", &self.orig]);
    }

    /// The kernel at the tree's HEAD, mmrace.ko and the initramfs.
    fn build_at_head(&self) -> Result<Target, BuildError> {
        let want = KernelWant {
            series: self.a.kernel_series.clone(),
            src: Some(self.c.src.clone()),
            profile: self.a.kernel_profile,
            variant: self.a.kernel_variant.clone(),
        };
        self.builder.target(&want, &self.driver, "src")
    }

    fn batch(&self, place: &BatchPlace) -> Result<i32, Stop> {
        Ok(run_self(
            &batch_argv(self.a, &self.c, Some(place)),
            Output::Inherit,
        )?)
    }

    /// BAD's catch probability and the title to bisect: the runs per
    /// commit and the pattern.
    fn estimate(&self) -> Result<(u32, Expect), Stop> {
        let a = self.a;
        git(&self.c.src, &["checkout", "-q", &self.c.bad]).map_err(stop)?;
        log(&format!(
            "bisect: estimating the catch probability on BAD ({}): up to {} runs, until {} catches",
            a.bad, a.estimate_runs, a.estimate_catches
        ));
        let target = self.build_at_head().map_err(|e| {
            stop(format!(
                "BAD={} does not build (exit {}): nothing to bisect",
                a.bad,
                e.exit_code()
            ))
        })?;
        let rc = self.batch(&BatchPlace {
            target: &target,
            dir: &self.dir,
            id: "estimate",
            runs: a.estimate_runs,
            stop_after: a.estimate_catches,
            expect: None,
        })?;
        if rc > 1 {
            return Err(stop(format!(
                "the runs on BAD ended in harness errors (exit {rc}): see {}",
                self.dir.join("estimate").display()
            )));
        }
        let (runs, expect) = plan_of(&self.dir.join("estimate"), a.miss, a.expect.as_ref())
            .map_err(|e| stop(format!("bisect: {e:#}")))?;
        let expect = expect.ok_or_else(|| stop("bisect: no finding to bisect"))?;
        std::fs::write(
            self.dir.join(EXPECT_FILE),
            format!("{}\n", expect.pattern()),
        )
        .map_err(|e| stop(e.to_string()))?;
        log(&format!(
            "bisect: the bug: a finding titled /{}/",
            expect.pattern()
        ));
        Ok((runs, expect))
    }

    /// One step at HEAD: `good`, `bad` or `skip`; a harness error stops.
    fn step(&self, runs: u32, expect: &Expect) -> Result<&'static str, Stop> {
        let src = &self.c.src;
        let commit = git(src, &["rev-parse", "HEAD"]).map_err(stop)?;
        let subject = git(src, &["log", "-1", "--format=%s"]).map_err(stop)?;
        let steps = self.dir.join("steps");
        std::fs::create_dir_all(&steps).map_err(|e| stop(e.to_string()))?;
        let id = step_id(&steps, &commit);
        let step = steps.join(&id);
        let write_commit = || {
            std::fs::create_dir_all(&step)
                .and_then(|()| std::fs::write(step.join("commit"), format!("{commit} {subject}\n")))
                .map_err(|e| stop(e.to_string()))
        };
        let t = Instant::now();
        let target = match self.build_at_head() {
            Ok(t) => t,
            Err(e) => {
                write_commit()?;
                return skip_or_stop(&e, &step, &id);
            }
        };
        log(&format!(
            "bisect: {id} built in {} s; up to {runs} runs",
            t.elapsed().as_secs()
        ));
        let rc = self.batch(&BatchPlace {
            target: &target,
            dir: &steps,
            id: &id,
            runs,
            stop_after: 1,
            expect: Some(expect),
        })?;
        write_commit()?;
        match rc {
            0 => Ok("good"),
            1 => Ok("bad"),
            _ => Err(stop(format!(
                "bisect: {id}: harness error (exit {rc}): stopping"
            ))),
        }
    }

    /// git bisect, a step at a time; the first bad commit, if one was
    /// named. git's answers go to git-bisect-run.log.
    fn bisect(&mut self, runs: u32, expect: &Expect) -> Result<Option<String>, Stop> {
        let mut log_file = std::fs::File::create(self.dir.join("git-bisect-run.log"))
            .map_err(|e| stop(e.to_string()))?;
        self.started = true;
        let src = self.c.src.clone();
        let mut answer =
            git(&src, &["bisect", "start", &self.c.bad, &self.c.good]).map_err(stop)?;
        loop {
            let _ = writeln!(log_file, "{answer}");
            match next_of(&answer) {
                Next::FirstBad(h) => return Ok(Some(h)),
                Next::Ended => return Ok(None),
                Next::Continue => {}
            }
            let verdict = match self.step(runs, expect) {
                Ok(v) => v,
                Err(e) => {
                    let _ = writeln!(log_file, "{}", e.0);
                    return Err(e);
                }
            };
            answer = git(&src, &["bisect", verdict]).map_err(stop)?;
        }
    }

    /// Everything after the checks: the estimate, the steps, the report.
    fn run(&mut self) -> Result<i32, Stop> {
        let t0 = Instant::now();
        let a = self.a;
        log(&format!(
            "bisect: {}..{} in {}, scenario {}, {}s per run, seeds from {}; results in {}",
            a.good,
            a.bad,
            self.c.src.display(),
            a.scenario.words.first().map_or("", String::as_str),
            a.duration,
            self.c.seed,
            self.dir.display()
        ));
        let (runs, expect) = self.estimate()?;
        let result = self.bisect(runs, &expect);
        if let Ok(log) = git(&self.c.src, &["bisect", "log"]) {
            let _ = std::fs::write(self.dir.join("git-bisect.log"), log + "\n");
        }
        if let Ok(Some(h)) = &result {
            let line = git(&self.c.src, &["log", "-1", "--format=%H %s", h]).map_err(stop)?;
            std::fs::write(self.dir.join("first-bad"), line + "\n")
                .map_err(|e| stop(e.to_string()))?;
        }
        self.restore();
        log(&format!("bisect: took {} s", t0.elapsed().as_secs()));
        let stopped = result.as_ref().err().map(|e| e.1);
        if let Err(e) = &result {
            log(&format!("error: {}", e.0));
        }
        if report_cmd(&BisectReportArgs {
            dir: self.dir.clone(),
        }) != 0
        {
            return Ok(2);
        }
        Ok(match (stopped, result) {
            (Some(code), _) => code,
            (None, Ok(Some(_))) => 0,
            _ => 1,
        })
    }
}

/// The `bisect-run` subcommand: 0 a first bad commit was named, 1 none
/// (all good, or only skipped commits left), 2 a harness or usage error
/// (BAD never caught included).
pub fn bisect_run(a: &BisectRunArgs) -> i32 {
    let outcome = check(a).and_then(|c| {
        let builder = Builder::new(&a.mmrace_root);
        builder.toolchain(&a.kernel_series, a.kernel_profile, false)?;
        let driver = builder.driver()?;
        let stamp = crate::args::utc_stamp(crate::vm::run::unix_now());
        let dir = a.mmrace_root.join(format!("build/results/bisect-{stamp}"));
        std::fs::create_dir_all(&dir).map_err(|e| stop(format!("{}: {e}", dir.display())))?;
        let orig = git(&c.src, &["symbolic-ref", "-q", "--short", "HEAD"])
            .or_else(|_| git(&c.src, &["rev-parse", "HEAD"]))
            .map_err(stop)?;
        let mut b = Bisection {
            a,
            c,
            dir,
            builder,
            driver,
            orig,
            started: false,
        };
        b.run()
    });
    outcome.unwrap_or_else(|Stop(msg, code)| {
        log(&format!("error: {msg}"));
        code
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser as _;

    #[test]
    fn gits_answers() {
        let h = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            next_of(&format!("{h} is the first bad commit\ncommit {h}\n")),
            Next::FirstBad(h.into())
        );
        assert_eq!(
            next_of("Bisecting: 1 revision left to test after this (roughly 1 step)\n[abc] x"),
            Next::Continue
        );
        assert_eq!(
            next_of("There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:"),
            Next::Ended
        );
    }

    #[test]
    fn a_steps_batch_gets_the_settings() {
        let cli = Cli::try_parse_from([
            "mmrace-host",
            "bisect-run",
            "--mmrace-root",
            "/r",
            "--kernel-src",
            "/s",
            "--good",
            "g",
            "--bad",
            "b",
            "--seed",
            "21",
            "--duration",
            "8",
            "--jobs",
            "2",
            "--",
            "thp-race",
            "--amplify",
            "delay_us=1000,every_nth=1",
        ])
        .unwrap();
        let Command::BisectRun(a) = cli.command else {
            unreachable!()
        };
        let c = Checked {
            src: "/s".into(),
            good: "g".into(),
            bad: "b".into(),
            seed: 21,
        };
        assert!(crate::fleet::batch::check_argv(&batch_argv(&a, &c, None)).is_ok());
        let target = Target {
            series: "src".into(),
            profile: None,
            variant: None,
            kdir: "/k".into(),
            kernel: "/k/bz".into(),
            module: "/k/m.ko".into(),
            initrd: "/i".into(),
        };
        let e = Expect::new("^WARNING").unwrap();
        let place = BatchPlace {
            target: &target,
            dir: Path::new("/d/steps"),
            id: "01-abc",
            runs: 7,
            stop_after: 1,
            expect: Some(&e),
        };
        let argv: Vec<String> = batch_argv(&a, &c, Some(&place))
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let want = "mmrace-host batch --kernel /k/bz --initrd /i --seed 21 --duration 8 \
                    --kernel-series src --accel auto \
                    --runs 7 --jobs 2 --expect ^WARNING --stop-after-catches 1 \
                    --results-dir /d/steps --run-id 01-abc thp-race --amplify delay_us=1000,every_nth=1";
        assert_eq!(argv.join(" "), want);
    }

    #[test]
    fn steps_are_numbered_by_their_directories_not_the_latest_link() {
        let d = std::env::temp_dir().join(format!("mmrace-steps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("01-aaaaaaaaaaaa")).unwrap();
        std::os::unix::fs::symlink("01-aaaaaaaaaaaa", d.join("latest")).unwrap();
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(step_id(&d, c), "02-0123456789ab");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
