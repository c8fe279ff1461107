//! `mmrace-host hunt` (`make hunt`, `./mmrace hunt`): a long campaign of
//! runs drawn from a mix of scenarios and kernels, JOBS guests at once,
//! until HOURS are up or it is interrupted. Each run is seeded and kept
//! (`DIR/runs/`); findings are deduplicated by signature; each new one's
//! run is rerun to measure how often it reproduces, then minimised, and
//! gets a reproducer (`DIR/findings/<signature>/REPRODUCER.md`). The
//! campaign's state is `DIR/campaign.json`: a campaign interrupted (Ctrl-C,
//! SIGTERM, the hours up) resumes when started again on the same DIR.

pub mod campaign;
pub mod history;
pub mod output;
pub mod plan;
pub mod repro;
pub mod setup;
pub mod tables;
pub mod triage;

use crate::args::{HuntArgs, RunArgs};
use crate::fleet::build::Target;
use campaign::{Campaign, Task};
use indicatif::{ProgressBar, ProgressStyle};
use mmrace_proto::spec::{RunSpec, Scenario};
use plan::Settings;
use repro::Which;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const RUNS_DIR: &str = "runs";

/// A run to do now: the task, its target, its spec.
type Job = (Task, usize, RunSpec);

/// What a worker does next.
enum Next {
    Run(Box<Job>),
    Wait,
    Done,
}

/// Everything the workers share, behind one lock.
struct Shared {
    campaign: Campaign,
    scenarios: Vec<Scenario>,
    queue: VecDeque<Job>,
    /// Reruns running or queued, by finding and kind.
    pending: BTreeMap<(String, String), u32>,
    running: usize,
    next_index: u64,
    explored: u64,
}

fn which_key(w: &Which) -> String {
    match w {
        Which::Base => "base".into(),
        Which::Without(p) => format!("without-{p}"),
    }
}

/// Limits of this session.
struct Limits {
    deadline: Option<Instant>,
    max_runs: Option<u64>,
}

impl Shared {
    fn next(&mut self, limits: &Limits, stop: &AtomicBool) -> Next {
        if stop.load(Ordering::SeqCst) || limits.deadline.is_some_and(|d| Instant::now() >= d) {
            return Next::Done;
        }
        for (sig, which, spec, left) in self.campaign.wanted() {
            let key = (sig.clone(), which_key(&which));
            let have = self.pending.get(&key).copied().unwrap_or(0);
            let target = self.campaign.findings[&sig].target;
            for _ in have..left {
                let task = Task::Rerun {
                    signature: sig.clone(),
                    which: which.clone(),
                };
                self.queue.push_back((task, target, spec.clone()));
            }
            self.pending.insert(key, have.max(left));
        }
        if let Some(job) = self.queue.pop_front() {
            self.running += 1;
            return Next::Run(Box::new(job));
        }
        if limits.max_runs.is_none_or(|m| self.explored < m) {
            while self.campaign.done.contains(&self.next_index) {
                self.next_index += 1;
            }
            let index = self.next_index;
            self.next_index += 1;
            self.explored += 1;
            let (t, spec) = plan::draw(&self.campaign.settings, index, &self.scenarios);
            self.running += 1;
            return Next::Run(Box::new((Task::Explore { index }, t, spec)));
        }
        if self.running > 0 {
            Next::Wait
        } else {
            Next::Done
        }
    }

    /// Takes a finished job; returns a line to print, if any.
    fn finish(
        &mut self,
        job: &Job,
        done: &crate::fleet::batch::Finished,
        dir: &Path,
    ) -> Vec<String> {
        self.running -= 1;
        if let Task::Rerun { signature, which } = &job.0 {
            let key = (signature.clone(), which_key(which));
            if let Some(n) = self.pending.get_mut(&key) {
                *n = n.saturating_sub(1);
            }
        }
        let mut lines = Vec::new();
        if let Some(sig) = self.campaign.record(&job.0, job.1, done.result.as_ref()) {
            let f = &self.campaign.findings[&sig];
            lines.push(format!(
                "mmrace: new finding {sig}: {} ({}), in {}",
                f.title(),
                f.triage.describe(),
                f.first_run.display()
            ));
        }
        for f in self.campaign.findings.values_mut() {
            if f.repro.done && f.reproducer.is_none() {
                let t = &self.campaign.settings.targets[f.target];
                match output::write_reproducer(dir, f, t) {
                    Ok(p) => {
                        lines.push(format!(
                            "mmrace: reproducer of {}: {}",
                            f.signature(),
                            p.display()
                        ));
                        f.reproducer = Some(p);
                    }
                    Err(e) => lines.push(format!(
                        "mmrace: cannot write the reproducer of {}: {e}",
                        f.signature()
                    )),
                }
            }
        }
        lines
    }
}

/// The template run options of a job: its kernel, its place, its disk.
fn job_args(
    t: &RunArgs,
    targets: &[Target],
    job: &Job,
    dir: &Path,
    disk_image: Option<&Path>,
    seq: u64,
) -> RunArgs {
    let (task, target, spec) = job;
    let mut a = t.clone();
    a.set_images(&targets[*target].kernel, &targets[*target].initrd);
    a.quiet = true;
    // Every run that uses the XFS disk gets it (a private copy: batch::one):
    // oom-stall's writers, pairs' O_DIRECT op and XFS kinds.
    a.disk = disk_image
        .filter(|_| spec.scenario.needs_disk())
        .map(Path::to_path_buf);
    match task {
        Task::Explore { index } => {
            a.results_dir = dir.join(RUNS_DIR);
            a.run_id = Some(format!(
                "r{index:05}-{}-s{}",
                spec.scenario.name(),
                spec.seed
            ));
        }
        Task::Rerun { signature, which } => {
            a.results_dir = dir
                .join(output::FINDINGS_DIR)
                .join(signature)
                .join("reruns");
            a.run_id = Some(format!(
                "{}-{seq:04}-{:06x}",
                which_key(which),
                crate::vm::run::random_seed() & 0xff_ffff
            ));
        }
    }
    a
}

/// Writes report.html and campaign-report.json from the campaign and its
/// runs' reports.
fn write_report(c: &Campaign, dir: &Path) {
    let h = history::History::read(&dir.join(RUNS_DIR), &c.settings.targets);
    let r = tables::CampaignReport::new(c, &h);
    let _ = std::fs::write(dir.join(output::REPORT_HTML), output::report_html(c, &r));
    let _ = std::fs::write(dir.join(tables::REPORT_JSON), r.to_json());
}

/// `mmrace-host hunt-report DIR`: writes a campaign's report again (one
/// written by an older mmrace, or one still running) without running
/// anything; prints the summary. Exit 2 without a campaign there.
pub fn report_only(dir: &Path) -> i32 {
    match Campaign::load(dir) {
        Ok(Some(c)) => {
            write_report(&c, dir);
            crate::out::summary::emit(&output::summary(&c, dir));
            0
        }
        Ok(None) => {
            eprintln!("mmrace: {}: no campaign.json there", dir.display());
            2
        }
        Err(e) => {
            eprintln!("mmrace: {e:#}");
            2
        }
    }
}

/// The settings of a new campaign, from the command line.
fn settings(a: &HuntArgs) -> anyhow::Result<Settings> {
    let targets = match &a.targets {
        Some(f) => Target::load_all(f)?,
        None => vec![Target {
            series: a.run.kernel_series.clone().unwrap_or_default(),
            profile: a.run.kernel_profile,
            variant: a.run.kernel_variant.clone(),
            kernel: a.run.kernel().to_path_buf(),
            initrd: a.run.initrd().to_path_buf(),
            kdir: Default::default(),
            module: Default::default(),
        }],
    };
    let mix = if a.mix.is_empty() {
        vec!["thp-race --swarm".to_string()]
    } else {
        a.mix.clone()
    };
    Ok(Settings {
        seed: a.run.seed.unwrap_or_else(crate::vm::run::random_seed),
        targets,
        mix,
        duration_s: a
            .run
            .duration
            .unwrap_or(mmrace_proto::spec::DEFAULT_DURATION_S),
        repro_runs: a.repro_runs,
        cpus: a.run.machine.cpus,
        mem_mib: a.run.machine.mem_mib,
    })
}

/// A new campaign, or the one DIR holds (whose settings must not be
/// contradicted).
fn open(a: &HuntArgs) -> anyhow::Result<Campaign> {
    let wanted = settings(a)?;
    match Campaign::load(&a.campaign)? {
        None => {
            std::fs::create_dir_all(&a.campaign)?;
            Ok(Campaign::new(wanted))
        }
        Some(c) => {
            let s = &c.settings;
            let given_differs = (a.targets.is_some() && wanted.targets != s.targets)
                || (!a.mix.is_empty() && wanted.mix != s.mix)
                || a.run.seed.is_some_and(|x| x != s.seed);
            anyhow::ensure!(
                !given_differs,
                "{} holds a campaign with other targets, mix or seed: resume it without them (or with the same), or give another --campaign",
                a.campaign.display()
            );
            eprintln!(
                "mmrace: hunt: resuming {}: {} runs done, {} findings",
                a.campaign.display(),
                c.tally.runs,
                c.findings.len()
            );
            Ok(c)
        }
    }
}

/// Rewrites the reproducers written so far: their hit counts went on.
fn refresh_reproducers(c: &Campaign, dir: &Path) {
    for f in c.findings.values().filter(|f| f.reproducer.is_some()) {
        let t = &c.settings.targets[f.target];
        if let Err(e) = output::write_reproducer(dir, f, t) {
            eprintln!(
                "mmrace: cannot rewrite the reproducer of {}: {e}",
                f.signature()
            );
        }
    }
}

/// A line above the progress spinner, or on stderr without a terminal.
fn say(pb: &ProgressBar, line: &str) {
    if pb.is_hidden() {
        eprintln!("{line}");
    } else {
        pb.println(line);
    }
}

fn progress_line(s: &Shared) -> String {
    let t = &s.campaign.tally;
    let reruns: u32 = s.pending.values().sum();
    format!(
        "runs {} (clean {}, found {}, harness {}), {} running, findings {}, reruns {} done {} pending",
        t.runs,
        t.clean,
        t.found,
        t.harness_errors,
        s.running,
        s.campaign.findings.len(),
        t.reruns,
        reruns
    )
}

/// The `hunt` subcommand; returns the exit code: 1 if the campaign has a
/// finding, 2 on a usage or harness error (nothing but harness errors),
/// else 0.
pub fn hunt(a: &HuntArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let Some((campaign, scenarios)) = start(a) else {
        return Ok(2);
    };
    let jobs = jobs(a, &scenarios[0]).max(1);
    announce(a, &campaign.settings, jobs);
    let h = Hunt {
        a,
        stop,
        dir: a.campaign.clone(),
        settings: campaign.settings.clone(),
        limits: Limits {
            deadline: a
                .hours
                .map(|h| Instant::now() + Duration::from_secs_f64(h * 3600.0)),
            max_runs: a.max_runs,
        },
        elapsed_before: campaign.elapsed_s,
        started: Instant::now(),
        seq: AtomicU64::new(0),
        live: AtomicUsize::new(jobs),
        pb: spinner(),
        shared: Mutex::new(Shared {
            campaign,
            scenarios,
            queue: VecDeque::new(),
            pending: BTreeMap::new(),
            running: 0,
            next_index: 0,
            explored: 0,
        }),
    };
    h.save(&mut h.lock());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| h.work());
        }
        h.watch();
    });
    h.pb.finish_and_clear();
    Ok(h.end())
}

/// The campaign opened and its mix parsed, or `None` after saying why the
/// hunt cannot start (a usage or harness error).
fn start(a: &HuntArgs) -> Option<(Campaign, Vec<Scenario>)> {
    let fail = |e: String| {
        eprintln!("mmrace: {e}");
        None
    };
    if let Err(e) = a.run.validate() {
        return fail(e.to_string());
    }
    if a.run.scenario.is_some() || a.run.spec.is_some() {
        return fail(
            "hunt draws its scenarios from --mix: name none after its options, and no --spec"
                .into(),
        );
    }
    let campaign = match open(a) {
        Ok(c) => c,
        Err(e) => return fail(format!("hunt: {e:#}")),
    };
    let scenarios = match plan::parse_mix(&campaign.settings.mix) {
        Ok(s) => s,
        Err(e) => return fail(format!("hunt: {e:#}")),
    };
    if scenarios.iter().any(|s| matches!(s, Scenario::OomStall(_))) && a.disk_image.is_none() {
        return fail("hunt: the mix has oom-stall: give --disk-image IMAGE (an XFS image; each run gets a copy)".into());
    }
    Some((campaign, scenarios))
}

/// How many guests at once: `--jobs`, or as many as fit guests like the
/// mix's first scenario's.
fn jobs(a: &HuntArgs, first: &Scenario) -> usize {
    let guest = RunSpec::new(first.clone(), 0, 0).guest;
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    a.jobs().unwrap_or_else(|| {
        crate::fleet::batch::default_jobs(
            host_cpus,
            crate::fleet::batch::mem_available_mib().unwrap_or(0),
            &guest,
        )
    })
}

/// The campaign's first line: its settings and how long it goes on.
fn announce(a: &HuntArgs, settings: &Settings, jobs: usize) {
    let targets: Vec<String> = settings.targets.iter().map(Target::label).collect();
    eprintln!(
        "mmrace: hunt {}: seed {}, {jobs} guests at once, {} s per run, kernels [{}], mix [{}], {} reruns per new finding; {}",
        a.campaign.display(),
        settings.seed,
        settings.duration_s,
        targets.join(", "),
        settings.mix.join("; "),
        settings.repro_runs,
        match (a.hours, a.max_runs) {
            (Some(h), _) => format!("for {h} h or until interrupted"),
            (None, Some(n)) => format!("{n} exploring runs"),
            (None, None) => "until interrupted (Ctrl-C: it resumes when started again)".into(),
        }
    );
}

/// The progress spinner, ticking every second.
fn spinner() -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").expect("valid template"),
    );
    pb.enable_steady_tick(Duration::from_secs(1));
    pb
}

/// One session of a campaign: what its workers share.
struct Hunt<'a> {
    a: &'a HuntArgs,
    stop: &'a AtomicBool,
    dir: std::path::PathBuf,
    settings: Settings,
    limits: Limits,
    /// The campaign's time in the sessions before this one.
    elapsed_before: f64,
    started: Instant,
    seq: AtomicU64,
    /// Workers still running.
    live: AtomicUsize,
    pb: ProgressBar,
    shared: Mutex<Shared>,
}

impl Hunt<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("not poisoned")
    }

    /// Saves campaign.json (with the time spent so far) and the report.
    fn save(&self, s: &mut Shared) {
        s.campaign.elapsed_s = self.elapsed_before + self.started.elapsed().as_secs_f64();
        if let Err(e) = s.campaign.save(&self.dir) {
            say(
                &self.pb,
                &format!("mmrace: hunt: cannot save the campaign: {e:#}"),
            );
        }
        write_report(&s.campaign, &self.dir);
    }

    /// One worker: runs the campaign's next job until there is none.
    fn work(&self) {
        loop {
            let next = self.lock().next(&self.limits, self.stop);
            match next {
                Next::Run(job) => self.run(&job),
                Next::Wait => std::thread::sleep(Duration::from_millis(200)),
                Next::Done => {
                    self.live.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    }

    /// Runs one job and records what it found.
    fn run(&self, job: &Job) {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let args = job_args(
            &self.a.run,
            &self.settings.targets,
            job,
            &self.dir,
            self.a.disk_image.as_deref(),
            n,
        );
        let run_dir = args
            .results_dir
            .join(args.run_id.as_deref().unwrap_or_default());
        // A run an interruption cut short left a directory without a
        // result: its index was not done, so it runs again here.
        if matches!(job.0, Task::Explore { .. }) && run_dir.exists() {
            let _ = std::fs::remove_dir_all(&run_dir);
        }
        let _ = std::fs::create_dir_all(&args.results_dir);
        let done = crate::fleet::batch::one(n as usize, &args, &job.2, self.stop);
        let mut s = self.lock();
        for line in s.finish(job, &done, &self.dir) {
            say(&self.pb, &line);
        }
        self.save(&mut s);
        self.pb.set_message(progress_line(&s));
    }

    /// Refreshes the progress line until every worker is done.
    fn watch(&self) {
        while self.live.load(Ordering::SeqCst) > 0 {
            self.pb.set_message(progress_line(&self.lock()));
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The session's end: reproducers refreshed, the campaign saved, the
    /// summary printed; returns the exit code.
    fn end(self) -> i32 {
        let mut s = self.lock();
        refresh_reproducers(&s.campaign, &self.dir);
        self.save(&mut s);
        let c = &s.campaign;
        crate::out::summary::emit(&output::summary(c, &self.dir));
        if self.stop.load(Ordering::SeqCst) {
            eprintln!(
                "mmrace: hunt interrupted: start it again with the same --campaign to resume"
            );
        }
        if !c.findings.is_empty() {
            1
        } else if c.tally.harness_errors > 0 && c.tally.clean == 0 {
            2
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    /// `hunt`'s arguments with the disk image given by `flag`.
    fn hunt_args(flag: &str) -> Box<crate::args::HuntArgs> {
        let cli = Cli::try_parse_from([
            "mmrace-host",
            "hunt",
            "--campaign",
            "/c",
            flag,
            "/c/disk.img",
            "--kernel",
            "/k",
            "--initrd",
            "/i",
        ])
        .unwrap();
        let Command::Hunt(a) = cli.command else {
            unreachable!()
        };
        a
    }

    #[test]
    fn runs_that_use_the_disk_get_it() {
        let a = hunt_args("--disk-image");
        let target = crate::fleet::build::Target {
            series: "7.3".into(),
            profile: None,
            variant: None,
            kernel: "/k".into(),
            initrd: "/i".into(),
            kdir: Default::default(),
            module: Default::default(),
        };
        for (words, disk) in [
            ("oom-stall", true),
            ("pairs --swarm", true),
            ("thp-race --swarm", false),
        ] {
            let mix = plan::parse_mix(&[words.to_string()]).unwrap();
            let spec = RunSpec::new(mix[0].clone(), 1, 30);
            let job = (Task::Explore { index: 0 }, 0, spec);
            let r = job_args(
                &a.run,
                std::slice::from_ref(&target),
                &job,
                Path::new("/c"),
                a.disk_image.as_deref(),
                0,
            );
            assert_eq!(r.disk.is_some(), disk, "{words}");
        }
    }

    #[test]
    fn the_disk_image_keeps_its_old_name_as_an_alias() {
        for flag in ["--disk-image", "--oom-disk"] {
            let a = hunt_args(flag);
            assert_eq!(a.disk_image.as_deref(), Some(Path::new("/c/disk.img")));
        }
    }
}
