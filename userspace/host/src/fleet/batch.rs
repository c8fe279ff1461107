//! `RUNS=N JOBS=J`: many seeded runs of one build, J guests at once, and one
//! merged result ([`crate::fleet::merge`]).
//!
//! Run i gets seed `SEED + i` (so run 0 is the single run `SEED` would have
//! been, and any run can be replayed on its own with its recorded seed).
//! The runs are threads of this process, each running exactly what `run`
//! runs ([`run::execute`]); each keeps its messages in its own `host.log`
//! so the terminal shows one progress line. A worker thread stays alive for
//! as long as its QEMU runs, which matters: QEMU's parent-death signal
//! follows the thread that started it.

use crate::args::{BatchArgs, RunArgs};
use crate::fleet::merge::Merged;
use crate::judge::expect::Expect;
use crate::out::report::Report;
use crate::vm::accel::{self, Plan};
use crate::vm::run;
use mmrace_proto::spec::{GuestSpec, RunSpec};
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Host memory a guest costs beyond its RAM: QEMU itself, TCG's translation
/// cache, the page tables.
const QEMU_OVERHEAD_MIB: u64 = 512;

/// Each run's own messages (what `run` prints on stderr).
pub const HOST_LOG: &str = "host.log";

/// The seed of run `i`.
pub fn seed_of(base: u64, i: usize) -> u64 {
    base.wrapping_add(i as u64)
}

/// How many guests fit at once: each needs its vCPUs in host CPUs (under
/// TCG a vCPU is a busy host thread) and its memory plus QEMU's overhead.
pub fn default_jobs(host_cpus: usize, mem_available_mib: u64, guest: &GuestSpec) -> usize {
    let by_cpu = host_cpus / guest.cpus.max(1) as usize;
    let by_mem = mem_available_mib / (guest.mem_mib + QEMU_OVERHEAD_MIB);
    by_cpu.min(by_mem as usize).max(1)
}

/// MemAvailable from /proc/meminfo, in MiB.
pub(crate) fn mem_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Run i of a batch: the template's options with its own place (under the
/// batch directory, named after its seed), and the base spec with its seed.
pub fn run_args(
    t: &RunArgs,
    base: &RunSpec,
    batch_dir: &std::path::Path,
    i: usize,
) -> (RunArgs, RunSpec) {
    let mut spec = base.clone();
    spec.seed = seed_of(base.seed, i);
    let mut a = t.clone();
    a.results_dir = batch_dir.to_path_buf();
    a.run_id = Some(format!("run{:02}-s{}", i + 1, spec.seed));
    a.quiet = true;
    (a, spec)
}

/// What one worker reports back.
pub(crate) struct Finished {
    pub index: usize,
    pub exit_code: i32,
    pub result: Option<(PathBuf, Report)>,
    pub error: Option<String>,
}

impl Finished {
    /// A kernel problem or hang whose title matches `expect` (any, without
    /// one).
    /// The line the batch prints when this run ends.
    fn describe(&self) -> String {
        match (&self.result, &self.error) {
            (Some((_, r)), _) => format!("{} {}: {}", r.meta.run_id, r.verdict.label(), r.reason),
            (None, Some(e)) => format!("run {}: error: {e}", self.index + 1),
            (None, None) => format!("run {}: exit {}", self.index + 1, self.exit_code),
        }
    }

    fn is_catch(&self, expect: Option<&Expect>) -> bool {
        let title = self
            .result
            .as_ref()
            .and_then(|(_, r)| r.found())
            .and_then(|f| f.title());
        self.exit_code == 1 && expect.is_none_or(|e| title.is_some_and(|t| e.matches(t)))
    }
}

/// Counts for the progress line.
#[derive(Default)]
struct Tally {
    done: usize,
    caught: usize,
    missed: usize,
    other_findings: usize,
    other: usize,
}

impl Tally {
    fn add(&mut self, f: &Finished, expect: Option<&Expect>) {
        self.done += 1;
        match f.exit_code {
            0 => self.missed += 1,
            1 if f.is_catch(expect) => self.caught += 1,
            1 => self.other_findings += 1,
            _ => self.other += 1,
        }
    }

    fn line(&self, total: usize, running: usize, secs: u64) -> String {
        format!(
            "mmrace: batch {}/{total} done, {running} running: caught {}, other findings {}, clean {}, harness errors {} ({secs} s)",
            self.done, self.caught, self.other_findings, self.missed, self.other
        )
    }
}

/// Runs the batch; returns the exit code (that of the merged result).
pub fn batch(args: &BatchArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let Some(plan) = BatchPlan::new(args)? else {
        return Ok(2);
    };
    plan.announce(args);
    let started = Instant::now();
    let workers = Workers {
        args,
        plans: &plan.runs,
        stop,
        next: AtomicUsize::new(0),
        running: AtomicUsize::new(0),
        caught: AtomicUsize::new(0),
        first_done: AtomicBool::new(!plan.probe_first),
    };
    let (tx, rx) = mpsc::channel::<Finished>();
    let finished = std::thread::scope(|scope| {
        for _ in 0..plan.jobs {
            let (tx, workers) = (tx.clone(), &workers);
            scope.spawn(move || workers.work(&tx));
        }
        drop(tx);
        watch(&workers, &rx, started)
    });
    finish(args, &plan, &workers, finished, started)
}

/// What a batch runs, settled before the first guest boots.
struct BatchPlan {
    id: String,
    dir: PathBuf,
    base: RunSpec,
    runs: Vec<(RunArgs, RunSpec)>,
    jobs: usize,
    host_cpus: usize,
    /// Run 1 probes KVM alone first (no accelerator decided yet).
    probe_first: bool,
}

impl BatchPlan {
    /// The plan, its directory created; `None` after saying why the batch
    /// cannot run (a harness error).
    fn new(args: &BatchArgs) -> anyhow::Result<Option<BatchPlan>> {
        let t = &args.run;
        let base = match t.validate().and_then(|()| t.run_spec(run::random_seed())) {
            Ok(spec) => spec,
            Err(e) => {
                eprintln!("mmrace: {e}");
                return Ok(None);
            }
        };
        let id = t
            .run_id
            .clone()
            .unwrap_or_else(|| format!("{}-x{}", t.run_id_at(&base, run::unix_now()), args.runs()));
        let dir = t.results_dir.join(&id);
        if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            eprintln!(
                "mmrace: {} already holds results: pick another RUN_ID",
                dir.display()
            );
            return Ok(None);
        }
        std::fs::create_dir_all(&dir)?;
        let runs = (0..args.runs())
            .map(|i| run_args(t, &base, &dir, i))
            .collect();
        let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jobs = args
            .jobs()
            .unwrap_or_else(|| {
                default_jobs(host_cpus, mem_available_mib().unwrap_or(0), &base.guest)
            })
            .min(args.runs())
            .max(1);
        Ok(Some(BatchPlan {
            id,
            dir,
            base,
            runs,
            jobs,
            host_cpus,
            probe_first: probes_kvm(t),
        }))
    }

    /// The batch's first lines: what runs, how many at once, where.
    fn announce(&self, args: &BatchArgs) {
        let (base, jobs, host_cpus) = (&self.base, self.jobs, self.host_cpus);
        eprintln!(
            "mmrace: batch {}: {} runs of {}, seeds {}..={}, {jobs} at once ({host_cpus} host CPUs, {} vCPUs and {} MiB per guest){}",
            self.id,
            args.runs(),
            base.scenario.name(),
            base.seed,
            seed_of(base.seed, args.runs() - 1),
            base.guest.cpus,
            base.guest.mem_mib,
            if self.probe_first { "; run 1 alone first, to settle KVM or TCG" } else { "" }
        );
        eprintln!("mmrace: results in {}", self.dir.display());
    }
}

/// With no accelerator decided yet, run 1 probes KVM alone and caches the
/// outcome; the others then start with the answer.
fn probes_kvm(t: &RunArgs) -> bool {
    let qemu_version = accel::qemu_version(&t.qemu_binary);
    let cache_file = accel::cache_file(&accel::cache_dir(), &accel::host_release(), &qemu_version);
    matches!(
        accel::plan(t.machine.accel, &t.kvm_device, &cache_file),
        Plan::ProbeKvm { .. }
    )
}

/// What the worker threads share.
struct Workers<'a> {
    args: &'a BatchArgs,
    plans: &'a [(RunArgs, RunSpec)],
    stop: &'a AtomicBool,
    next: AtomicUsize,
    running: AtomicUsize,
    caught: AtomicUsize,
    first_done: AtomicBool,
}

impl Workers<'_> {
    /// As many catches as `--stop-after-catches` asked for.
    fn enough(&self) -> bool {
        self.args
            .stop_after_catches()
            .is_some_and(|k| self.caught.load(Ordering::SeqCst) >= k)
    }

    /// One worker: takes the next run until none is left, the batch is
    /// stopped or has caught enough; runs after the first wait for it.
    fn work(&self, tx: &mpsc::Sender<Finished>) {
        loop {
            if self.stop.load(Ordering::SeqCst) || self.enough() {
                return;
            }
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= self.plans.len() {
                return;
            }
            while i > 0
                && !self.first_done.load(Ordering::SeqCst)
                && !self.stop.load(Ordering::SeqCst)
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            self.running.fetch_add(1, Ordering::SeqCst);
            let f = one(i, &self.plans[i].0, &self.plans[i].1, self.stop);
            if f.is_catch(self.args.expect.as_ref()) {
                self.caught.fetch_add(1, Ordering::SeqCst);
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.first_done.store(true, Ordering::SeqCst);
            let _ = tx.send(f);
        }
    }
}

/// Collects the workers' runs until they are all gone, printing a line per
/// run and the progress line (rewritten in place on a terminal).
fn watch(w: &Workers, rx: &mpsc::Receiver<Finished>, started: Instant) -> Vec<Option<Finished>> {
    let runs = w.args.runs();
    let mut finished: Vec<Option<Finished>> = (0..runs).map(|_| None).collect();
    let tty = std::io::stderr().is_terminal();
    let mut tally = Tally::default();
    let mut last_len = 0;
    loop {
        let got = rx.recv_timeout(Duration::from_secs(1));
        let secs = started.elapsed().as_secs();
        let line = |tally: &Tally| tally.line(runs, w.running.load(Ordering::SeqCst), secs);
        match got {
            Ok(f) => {
                tally.add(&f, w.args.expect.as_ref());
                let what = f.describe();
                let index = f.index;
                finished[index] = Some(f);
                if tty {
                    eprint!("\r{:last_len$}\r", "");
                }
                eprintln!("mmrace: {what}");
                if !tty {
                    eprintln!("{}", line(&tally));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if tty {
            let l = line(&tally);
            eprint!("\r{l:last_len$}");
            last_len = l.len();
            let _ = std::io::stderr().flush();
        }
    }
    if tty {
        eprintln!();
    }
    finished
}

/// Merges the finished runs into merged.json, prints the summary and
/// returns the batch's exit code (the merge's).
fn finish(
    args: &BatchArgs,
    plan: &BatchPlan,
    w: &Workers,
    mut finished: Vec<Option<Finished>>,
    started: Instant,
) -> anyhow::Result<i32> {
    let t = &args.run;
    let reports: Vec<(PathBuf, Report)> = finished
        .iter_mut()
        .filter_map(|f| f.as_mut().and_then(|f| f.result.take()))
        .map(|(d, r)| (d.join(run::REPORT), r))
        .collect();
    let not_run = args.runs() - finished.iter().filter(|f| f.is_some()).count();
    let stopped_early = w.enough() && !w.stop.load(Ordering::SeqCst);
    let mut merged = Merged::from_reports(&reports, args.expect.as_ref());
    // A missing or failed run cannot hide behind a clean merge: merged.json
    // records them, and its exit code is the batch's.
    let mut unreported = errors(&finished);
    if not_run > 0 && !stopped_early {
        unreported.push(format!(
            "{not_run} of {} runs did not run (interrupted)",
            args.runs()
        ));
    }
    if reports.is_empty() && unreported.is_empty() {
        unreported.push("no run left a report".into());
    }
    merged.add_unreported(unreported);
    merged.write(&reports, &plan.dir)?;
    run::link_latest(&t.results_dir, &plan.id);
    crate::out::summary::emit(&merged.summary());
    if not_run > 0 && stopped_early {
        eprintln!(
            "mmrace: {not_run} of {} runs not started: {} caught, as many as asked for",
            args.runs(),
            w.caught.load(Ordering::SeqCst)
        );
    }
    eprintln!(
        "mmrace: batch took {:.0} s; merged results in {}",
        started.elapsed().as_secs_f64(),
        plan.dir.display()
    );
    Ok(merged.exit_code)
}

/// The runs that ended in a harness error, one line each.
fn errors(finished: &[Option<Finished>]) -> Vec<String> {
    finished
        .iter()
        .flatten()
        .filter_map(|f| {
            f.error
                .as_ref()
                .map(|e| format!("run {}: {e}", f.index + 1))
        })
        .collect()
}

/// A private copy of the disk image for one run (sparse, so a fresh 4 GiB
/// XFS image costs what it holds): runs at once must not share a
/// filesystem, and each run of a batch starts from the same image.
fn private_disk(disk: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let copy = dir.with_extension("disk.img");
    let st = std::process::Command::new("cp")
        .arg("--sparse=always")
        .arg(disk)
        .arg(&copy)
        .status()?;
    anyhow::ensure!(
        st.success(),
        "cannot copy {} to {}",
        disk.display(),
        copy.display()
    );
    Ok(copy)
}

/// Runs plan `i`, keeping its messages in its own host.log.
pub(crate) fn one(i: usize, a: &RunArgs, spec: &RunSpec, stop: &AtomicBool) -> Finished {
    let log = Mutex::new(Vec::<String>::new());
    let say = |m: &str| log.lock().expect("not poisoned").push(m.to_string());
    let dir = a.results_dir.join(a.run_id.as_deref().unwrap_or_default());
    let mut a = a.clone();
    let disk = match a.disk.as_deref().map(|d| private_disk(d, &dir)) {
        Some(Ok(copy)) => {
            a.disk = Some(copy.clone());
            Some(copy)
        }
        Some(Err(e)) => {
            return Finished {
                index: i,
                exit_code: 2,
                result: None,
                error: Some(format!("{e:#}")),
            }
        }
        None => None,
    };
    let done = run::execute(&a, spec.clone(), stop, &say);
    if let Some(d) = disk {
        let _ = std::fs::remove_file(d);
    }
    let mut lines = log.into_inner().expect("not poisoned");
    let (exit_code, result, error) = match done {
        Ok(d) => (d.exit_code, d.result, None),
        Err(e) => {
            lines.push(format!("error: {e:#}"));
            (2, None, Some(format!("{e:#}")))
        }
    };
    let error = error.or_else(|| result.is_none().then(|| lines.join("; ")));
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(HOST_LOG), lines.join("\n") + "\n");
    }
    Finished {
        index: i,
        exit_code,
        result,
        error,
    }
}

/// A `run` or `batch` command line (`argv`, program name first), checked
/// as it would check itself, without running it: Ok, or the reason, with
/// the valid scenarios for an unknown one (qemu-run, matrix-run and
/// bisect-run check every run and batch they will start before any build).
pub fn check_argv(argv: &[std::ffi::OsString]) -> Result<(), String> {
    use clap::Parser as _;
    let cli = crate::args::Cli::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        let mut m = text.trim_start_matches("error: ").trim_end().to_string();
        let command = argv.get(1).and_then(|c| c.to_str());
        if let Some(note) = crate::args::error_note(&e, command) {
            m = format!("{m}\n{note}");
        }
        m
    })?;
    let run = match &cli.command {
        crate::args::Command::Batch(b) => &b.run,
        crate::args::Command::Run(r) => r.as_ref(),
        _ => unreachable!("a run or batch command line"),
    };
    run.validate()
        .and_then(|()| run.run_spec(0))
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn template(extra: &[&str]) -> BatchArgs {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let mut argv = vec![
            "mmrace-host",
            "batch",
            "--kernel",
            exe,
            "--initrd",
            exe,
            "--seed",
            "40",
            "--duration",
            "5",
        ];
        argv.extend(extra);
        argv.extend(["thp-race", "--no-splitter"]);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Batch(b) => *b,
            _ => unreachable!(),
        }
    }

    #[test]
    fn each_run_gets_its_seed_and_place() {
        let b = template(&["--runs", "3"]);
        assert_eq!((b.runs(), b.jobs()), (3, None));
        let base = b.run.run_spec(1).unwrap();
        let (a, spec) = run_args(&b.run, &base, std::path::Path::new("/r/b"), 2);
        assert_eq!(spec.seed, 42);
        assert_eq!(spec.scenario, base.scenario);
        assert_eq!(spec.duration_s, 5);
        assert_eq!(a.run_id.as_deref(), Some("run03-s42"));
        assert_eq!(a.results_dir, PathBuf::from("/r/b"));
        assert!(a.quiet);
        assert_eq!(seed_of(u64::MAX, 1), 0);
    }

    #[test]
    fn default_jobs_from_cpus_and_memory() {
        let g = GuestSpec::default();
        // 2 host CPUs, 2 vCPUs per guest: one at a time.
        assert_eq!(default_jobs(2, 24_000, &g), 1);
        // 8 CPUs: four by CPU, but 6000 MiB fit only two 2048+512 guests.
        assert_eq!(default_jobs(8, 6_000, &g), 2);
        assert_eq!(default_jobs(8, 24_000, &g), 4);
        // Never zero.
        assert_eq!(default_jobs(1, 0, &g), 1);
    }

    #[test]
    fn runs_must_be_at_least_one() {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let r = Cli::try_parse_from([
            "mmrace-host",
            "batch",
            "--runs",
            "0",
            "--kernel",
            exe,
            "--initrd",
            exe,
            "smoke",
        ]);
        assert!(r.is_err());
    }
}
