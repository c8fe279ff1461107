//! `mmrace-host run`: prepares the run directory, picks the accelerator
//! (retrying with TCG when KVM does not work), watches QEMU, and writes
//! report.json, results.ktap and the summary.

use crate::args::{utc_stamp, RunArgs, UsageError};
use crate::out::ktap;
use crate::out::report::{HostSide, Report, RunMeta};
use crate::out::summary;
use crate::vm::accel::{self, Accel, Plan};
use crate::vm::monitor::{self, MonitorConfig, Observation, Outcome};
use crate::vm::qemu::{self, QemuSpec};
use mmrace_proto::spec::RunSpec;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files of a run directory.
pub const CONSOLE_LOG: &str = "console.log";
pub const WIRE_LOG: &str = "wire.log";
pub const STDERR_LOG: &str = "qemu-stderr.log";
pub const REPORT: &str = "report.json";
pub const KTAP: &str = "results.ktap";
pub const GUEST_CONFIG: &str = "guest.cfg";
pub const SPEC: &str = "spec.json";

/// Creates `<results-dir>/<run-id>`, refusing to mix two runs in one.
fn make_run_dir(args: &RunArgs, run_id: &str) -> Result<PathBuf, UsageError> {
    let dir = args.results_dir.join(run_id);
    let used = std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some());
    if used {
        return Err(UsageError(format!(
            "{} already holds a run: pick another --run-id",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Points `<results-dir>/latest` at this run (relative, so the results
/// directory can be moved or copied whole). The new link replaces the old
/// one by a rename, so runs finishing at once (a batch's guests, parallel
/// tests) never see it missing or fail to create it.
pub fn link_latest(results_dir: &Path, run_id: &str) {
    let link = results_dir.join("latest");
    if let Ok(meta) = std::fs::symlink_metadata(&link) {
        if !meta.file_type().is_symlink() {
            eprintln!(
                "mmrace: warning: {} is not a symlink; left alone",
                link.display()
            );
            return;
        }
    }
    let tmp = results_dir.join(format!(
        ".latest-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) =
        std::os::unix::fs::symlink(run_id, &tmp).and_then(|()| std::fs::rename(&tmp, &link))
    {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("mmrace: warning: cannot link {}: {e}", link.display());
    }
}

struct Attempt {
    accel: Accel,
    command: Vec<String>,
    outcome: Outcome,
}

/// Boots QEMU once with `accel`; `kvm_probe` makes it give up early when
/// KVM does not reach the kernel banner.
fn attempt(
    args: &RunArgs,
    run: &RunSpec,
    dir: &Path,
    accel: Accel,
    kvm_probe: Option<Duration>,
    stop: &AtomicBool,
) -> anyhow::Result<Attempt> {
    let spec = QemuSpec {
        kernel: args.kernel().to_path_buf(),
        initrd: args.initrd().to_path_buf(),
        run: run.clone(),
        extra_append: args.extra_append.clone(),
        config: dir.join(GUEST_CONFIG),
        wire_log: dir.join(WIRE_LOG),
        accel,
    };
    let disk = args.disk.as_deref().map(std::path::absolute).transpose()?;
    std::fs::write(
        &spec.config,
        qemu::guest_config(
            &run.guest,
            Some(&std::path::absolute(&spec.wire_log)?),
            disk.as_deref(),
        ),
    )?;
    let qemu_args = qemu::command_line(&spec);
    let boot = args.boot_timeout_for(accel);
    let cfg = MonitorConfig {
        program: args.qemu_binary.clone(),
        args: qemu_args.clone(),
        console_log: dir.join(CONSOLE_LOG),
        wire_log: spec.wire_log.clone(),
        stderr_log: dir.join(STDERR_LOG),
        echo: !args.quiet,
        hang_timeout: args.hang_timeout(),
        boot_timeout: Duration::from_secs(boot),
        deadline: Duration::from_secs(boot + run.duration_s + args.deadline_slack),
        finding_grace: Duration::from_secs(args.after_finding),
        kvm_probe,
    };
    // QEMU appends to an existing chardev file only with append=on; start
    // from nothing anyway so a retry never sees the failed attempt's lines.
    let _ = std::fs::remove_file(&cfg.wire_log);
    let outcome = monitor::run(&cfg, stop)?;
    let mut command = vec![args.qemu_binary.clone()];
    command.extend(qemu_args);
    Ok(Attempt {
        accel,
        command,
        outcome,
    })
}

/// Keeps the failed KVM attempt's logs next to the real ones.
fn keep_probe_logs(dir: &Path) {
    for name in [CONSOLE_LOG, STDERR_LOG] {
        let _ = std::fs::rename(dir.join(name), dir.join(format!("kvm-probe-{name}")));
    }
}

fn observation(o: Outcome) -> Observation {
    match o {
        Outcome::Finished(o) => o,
        // Only a probing attempt reports this, and its caller handles it.
        Outcome::KvmFailed { observation, .. } => observation,
    }
}

/// What ran in the end.
struct Booted {
    accel: Accel,
    accel_note: String,
    command: Vec<String>,
    observation: Observation,
}

/// Runs the guest with the planned accelerator, falling back to TCG when a
/// KVM probe fails.
fn boot(
    args: &RunArgs,
    run: &RunSpec,
    dir: &Path,
    plan: Plan,
    stop: &AtomicBool,
    say: &dyn Fn(&str),
) -> anyhow::Result<Booted> {
    let booted = |a: Attempt, accel_note: String| Booted {
        accel: a.accel,
        accel_note,
        command: a.command,
        observation: observation(a.outcome),
    };
    let cache_file = match plan {
        Plan::Use { accel, why } => {
            say(&format!("accelerator {} ({why})", accel.name()));
            return Ok(booted(attempt(args, run, dir, accel, None, stop)?, why));
        }
        Plan::ProbeKvm { cache_file } => cache_file,
    };
    let probe = Duration::from_secs(args.kvm_probe_timeout);
    say(&format!(
        "accelerator kvm (auto: TCG instead if the kernel does not start within {} s)",
        probe.as_secs()
    ));
    let a = attempt(args, run, dir, Accel::Kvm, Some(probe), stop)?;
    match a.outcome {
        Outcome::KvmFailed { reason, .. } => {
            let why = format!(
                "auto: KVM failed: {reason}; fell back to TCG and remembered it in {}",
                cache_file.display()
            );
            say(&why);
            accel::remember(&cache_file, Accel::Tcg);
            keep_probe_logs(dir);
            say("accelerator tcg");
            Ok(booted(
                attempt(args, run, dir, Accel::Tcg, None, stop)?,
                why,
            ))
        }
        Outcome::Finished(ref o) => {
            // Only a kernel that printed its banner proves KVM works; an
            // interrupted probe proves nothing either way.
            if o.scan.booted() {
                accel::remember(&cache_file, Accel::Kvm);
            }
            Ok(booted(a, "auto: KVM works on this host".into()))
        }
    }
}

/// Boots again (at most this many times) when QEMU died of a signal before
/// the driver said Hello: nothing of the run had happened yet, so a new
/// boot is the same run. QEMU 10.0.2 (Debian 12's backport) aborts now and
/// then in the guest's PCI scan with two vCPUs under TCG ("iotlb_to_section:
/// Assertion `section_index < d->map.sections_nb' failed": a use-after-free
/// of its memory dispatch, QEMU issue 3040, fixed in 10.0.4 and 10.1).
pub const QEMU_CRASH_REBOOTS: usize = 2;

/// Whether QEMU died of a signal before the driver started.
fn qemu_crashed_before_driver(o: &Observation) -> bool {
    matches!(
        o.ending,
        crate::judge::verdict::Ending::Exited {
            code: None,
            signal: Some(_)
        }
    ) && o.messages.hello.is_none()
        && o.scan.first_finding().is_none()
}

/// [`boot`], booting again after a QEMU crash before the driver started
/// ([`QEMU_CRASH_REBOOTS`]); the crashed boots' logs stay in the run
/// directory as `qemu-crash-N-*`, and `notes` says what happened.
fn boot_through_qemu_crashes(
    args: &RunArgs,
    run: &RunSpec,
    dir: &Path,
    plan: Plan,
    stop: &AtomicBool,
    say: &dyn Fn(&str),
    notes: &mut Vec<String>,
) -> anyhow::Result<Booted> {
    let mut b = boot(args, run, dir, plan, stop, say)?;
    for n in 1..=QEMU_CRASH_REBOOTS {
        if !qemu_crashed_before_driver(&b.observation)
            || stop.load(std::sync::atomic::Ordering::SeqCst)
        {
            break;
        }
        let why = b
            .observation
            .stderr_tail
            .last()
            .cloned()
            .unwrap_or_default();
        let note = format!(
            "QEMU crashed before the driver started ({}: {why}); booted again (logs: qemu-crash-{n}-*)",
            b.observation.ending.describe()
        );
        say(&note);
        notes.push(note);
        for name in [CONSOLE_LOG, STDERR_LOG, WIRE_LOG] {
            let _ = std::fs::rename(dir.join(name), dir.join(format!("qemu-crash-{n}-{name}")));
        }
        let accel = b.accel;
        let note = std::mem::take(&mut b.accel_note);
        b = booted_again(args, run, dir, accel, note, stop)?;
    }
    Ok(b)
}

fn booted_again(
    args: &RunArgs,
    run: &RunSpec,
    dir: &Path,
    accel: Accel,
    accel_note: String,
    stop: &AtomicBool,
) -> anyhow::Result<Booted> {
    let a = attempt(args, run, dir, accel, None, stop)?;
    Ok(Booted {
        accel: a.accel,
        accel_note,
        command: a.command,
        observation: observation(a.outcome),
    })
}

/// Paths in the report stay meaningful when it is read from elsewhere.
fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// A seed for a run that names none: from the clock, kept below 2^53 so
/// JSON readers keep it exact.
pub fn random_seed() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() ^ (u64::from(now.subsec_nanos()) << 20)) & ((1 << 53) - 1)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A finished run.
pub struct Done {
    pub exit_code: i32,
    /// The run directory and its report; None for a usage error.
    pub result: Option<(PathBuf, Report)>,
}

/// One run of `spec`: boots the guest, judges it and writes its directory.
/// Progress messages go to `say`, not to the terminal, so that a batch can
/// keep them apart; usage errors are messages too, with exit code 2.
pub fn execute(
    args: &RunArgs,
    spec: RunSpec,
    stop: &AtomicBool,
    say: &dyn Fn(&str),
) -> anyhow::Result<Done> {
    let now = unix_now();
    let run_id = args.run_id_at(&spec, now);
    let dir = match make_run_dir(args, &run_id) {
        Ok(d) => d,
        Err(e) => {
            say(&e.to_string());
            return Ok(Done {
                exit_code: 2,
                result: None,
            });
        }
    };
    let qemu_version = accel::qemu_version(&args.qemu_binary);
    let host_release = accel::host_release();
    let cache_file = accel::cache_file(&accel::cache_dir(), &host_release, &qemu_version);
    let plan = accel::plan(args.machine.accel, &args.kvm_device, &cache_file);
    say(&format!(
        "run {run_id} ({}) in {}",
        spec.identity(),
        dir.display()
    ));
    std::fs::write(dir.join(SPEC), serde_json::to_string_pretty(&spec)? + "\n")?;

    let t0 = std::time::Instant::now();
    let mut notes = Vec::new();
    let b = boot_through_qemu_crashes(args, &spec, &dir, plan, stop, say, &mut notes)?;
    let o = b.observation;
    let meta = RunMeta {
        run_id: run_id.clone(),
        spec: Some(spec),
        accel: Some(b.accel),
        accel_note: b.accel_note,
        qemu_command: b.command,
        qemu_version,
        host_kernel_release: host_release,
        kernel: absolute(args.kernel()),
        initrd: absolute(args.initrd()),
        started_utc: utc_stamp(now),
    };
    let host = HostSide {
        ending: o.ending,
        stderr_tail: o.stderr_tail,
        boot_s: o.banner_after.map(|d| d.as_secs_f64()),
        // The whole run, a failed KVM probe included.
        wall_s: t0.elapsed().as_secs_f64(),
        notes,
    };
    let report = Report::assemble(meta, &o.scan, &o.messages, host);
    report.write(&dir.join(REPORT))?;
    std::fs::write(dir.join(KTAP), ktap::render(&ktap::cases(&report)))?;
    link_latest(&args.results_dir, &run_id);
    Ok(Done {
        exit_code: report.exit_code,
        result: Some((dir, report)),
    })
}

/// `--check-only` of `run`, `batch` and `export-lava`: the spec the options
/// make, as the run would build it, printed; 0, or 2 with the reason.
pub fn check_only(args: &RunArgs) -> i32 {
    match args.validate().and_then(|()| args.run_spec(random_seed())) {
        Ok(spec) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&spec).expect("a RunSpec serializes")
            );
            0
        }
        Err(e) => {
            eprintln!("mmrace: {e}");
            2
        }
    }
}

/// The whole `run` subcommand; returns the exit code.
pub fn run(args: &RunArgs, stop: &AtomicBool) -> anyhow::Result<i32> {
    let spec = match args.validate().and_then(|()| args.run_spec(random_seed())) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("mmrace: {e}");
            return Ok(2);
        }
    };
    let done = execute(args, spec, stop, &|m| eprintln!("mmrace: {m}"))?;
    if let Some((dir, report)) = &done.result {
        summary::emit(&summary::render(report, Some(dir)));
    }
    Ok(done.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_link_is_relative_and_replaced() {
        let d = std::env::temp_dir().join(format!("mmrace-latest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::fs::create_dir_all(d.join("b")).unwrap();
        link_latest(&d, "a");
        link_latest(&d, "b");
        assert_eq!(
            std::fs::read_link(d.join("latest")).unwrap(),
            PathBuf::from("b")
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
