//! Runs one program the way `exec` and `selftests-mm` need it: in its own
//! process group, OOM-killable ([`GroupChild`]), stdout and stderr merged into one pipe whose
//! every line goes to the wire channel (so a program printing `BUG:` is not
//! mistaken for the kernel on the console), with the tail and the KTAP
//! result lines kept, mmrace's counters read before and after, and killed
//! at the run's deadline (SIGTERM, then SIGKILL after [`GRACE`]).

use crate::child::GroupChild;
use crate::counters;
use crate::ctx::Ctx;
use crate::output::Output;
use crate::vmstat;
use mmrace_proto::results::suite::{Exit, KtapResult, ProgramRun, Status, VMSTAT_PREFIXES};
use mmrace_proto::wire::PREFIX;
use std::collections::VecDeque;
use std::io::BufRead;
use std::os::fd::AsRawFd;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Time a program gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// Output lines longer than this are cut in the kept tail (not on the wire).
const TAIL_LINE_CHARS: usize = 300;

/// How long the output reader may take after the program is gone: a
/// grandchild outside the process group could hold the pipe open forever.
const DRAIN: Duration = Duration::from_secs(2);

/// What to run.
pub struct Launch {
    /// The name in the report and results.ktap.
    pub name: String,
    pub argv: Vec<String>,
    pub cwd: String,
    /// Killed if still running then.
    pub deadline: Instant,
    /// Lines of output to keep.
    pub tail_lines: usize,
    /// Prefix of its output lines on the wire (`exec`, `selftests-mm`).
    pub label: String,
}

/// How the program's exit turns into a status: `exec` takes 0 as the only
/// pass, kselftests also have KSFT_SKIP.
pub type Judge = fn(&Exit) -> Status;

/// What the reader thread collects.
#[derive(Default)]
struct Captured {
    lines: u64,
    tail: VecDeque<String>,
    ktap: Vec<KtapResult>,
}

/// Reads the merged output line by line until every writer has closed it.
fn read_output(
    pipe: std::io::PipeReader,
    out: Output,
    prefix: String,
    keep: usize,
    cap: Arc<Mutex<Captured>>,
) {
    let mut r = std::io::BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        // A program's line never passes for a protocol message.
        let on_wire = line.replace(PREFIX.trim_end(), "@@mmrace@@");
        out.raw(&format!("{prefix}| {on_wire}"));
        let mut c = cap.lock().unwrap();
        c.lines += 1;
        if let Some(k) = KtapResult::parse(line) {
            c.ktap.push(k);
        }
        if keep > 0 {
            if c.tail.len() == keep {
                c.tail.pop_front();
            }
            c.tail
                .push_back(line.chars().take(TAIL_LINE_CHARS).collect());
        }
    }
}

/// The status of a program that ended with `exit` and printed `ktap`: what
/// `judge` makes of the exit, but never a pass or a skip when one of its
/// own results failed.
pub fn program_status(judge: Judge, exit: &Exit, ktap: &[KtapResult]) -> Status {
    match judge(exit) {
        Status::Fail => Status::Fail,
        _ if ktap.iter().any(|k| k.status == Status::Fail) => Status::Fail,
        s => s,
    }
}

/// `exec`'s judge: exit 0 passes, anything else fails.
pub fn zero_passes(exit: &Exit) -> Status {
    match exit {
        Exit::Code { code: 0 } => Status::Pass,
        Exit::NotRun { .. } => Status::Skip,
        _ => Status::Fail,
    }
}

/// Runs `l` to its end or its deadline. Errors only when it cannot be
/// started (the caller decides what that means).
pub fn run(ctx: &Ctx, l: &Launch, judge: Judge) -> std::io::Result<ProgramRun> {
    let before = counters::read().unwrap_or_default();
    let vm_before = vmstat::read().unwrap_or_default();
    let (reader, writer) = std::io::pipe()?;
    let null = std::fs::File::open("/dev/null")?;
    let env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    let start = Instant::now();
    let spawned = GroupChild::spawn(
        &l.argv,
        &env,
        Some(&l.cwd),
        [null.as_raw_fd(), writer.as_raw_fd(), writer.as_raw_fd()],
    );
    // The reader sees EOF only once every write end is closed: ours too.
    drop(writer);
    let mut child = spawned.map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let cap = Arc::new(Mutex::new(Captured::default()));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    {
        let (out, prefix, keep, cap) =
            (ctx.out.clone(), l.label.clone(), l.tail_lines, cap.clone());
        std::thread::spawn(move || {
            read_output(reader, out, prefix, keep, cap);
            let _ = done_tx.send(());
        });
    }

    let mut killed_at: Option<Instant> = None;
    let status = loop {
        if let Some(s) = child.try_wait() {
            break s;
        }
        let now = Instant::now();
        match killed_at {
            None if now >= l.deadline || ctx.stop.load(std::sync::atomic::Ordering::Relaxed) => {
                ctx.say(format!(
                    "{}: {} still running after {:.0} s: SIGTERM",
                    l.label,
                    l.name,
                    start.elapsed().as_secs_f64()
                ));
                child.signal_group(libc::SIGTERM);
                killed_at = Some(now);
            }
            Some(t) if now >= t + GRACE => {
                child.kill_group();
                killed_at = Some(now + Duration::from_secs(3600));
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let duration_s = start.elapsed().as_secs_f64();
    // Whatever it left behind in its group goes too.
    child.kill_group();
    let _ = done_rx.recv_timeout(DRAIN);
    let after = counters::read().unwrap_or_default();
    let vm_after = vmstat::read().unwrap_or_default();

    let exit = if killed_at.is_some() {
        Exit::Killed {
            after_s: duration_s,
        }
    } else if libc::WIFSIGNALED(status) {
        Exit::Signal {
            signal: libc::WTERMSIG(status),
        }
    } else {
        Exit::Code {
            code: libc::WEXITSTATUS(status),
        }
    };
    let c = cap.lock().unwrap();
    let p = ProgramRun {
        name: l.name.clone(),
        argv: l.argv.clone(),
        status: program_status(judge, &exit, &c.ktap),
        exit,
        duration_s: (duration_s * 1000.0).round() / 1000.0,
        output_lines: c.lines,
        output_tail: c.tail.iter().cloned().collect(),
        ktap: c.ktap.clone(),
        counters: vmstat::nonzero(&counters::delta(&before, &after)),
        vmstat: vmstat::nonzero(&vmstat::with_prefixes(
            &vmstat::delta(&vm_before, &vm_after),
            VMSTAT_PREFIXES,
        )),
        rerun: None,
    };
    // On the run's time line, next to the snapshots.
    ctx.event("program", summary_line(&p));
    Ok(p)
}

/// A program that was not run, as a skip.
pub fn not_run(name: String, argv: Vec<String>, why: impl Into<String>) -> ProgramRun {
    ProgramRun {
        name,
        argv,
        exit: Exit::NotRun { why: why.into() },
        status: Status::Skip,
        duration_s: 0.0,
        output_lines: 0,
        output_tail: Vec::new(),
        ktap: Vec::new(),
        counters: Default::default(),
        vmstat: Default::default(),
        rerun: None,
    }
}

/// One line for the console about a finished program.
pub fn summary_line(p: &ProgramRun) -> String {
    let cases = if p.ktap.is_empty() {
        String::new()
    } else {
        format!(
            ", cases {}",
            mmrace_proto::results::suite::Tally::of(p.ktap.iter().map(|k| k.status))
        )
    };
    format!(
        "{}: {} after {:.1} s ({}){cases}",
        p.name,
        match p.status {
            Status::Pass => "PASS",
            Status::Skip => "SKIP",
            Status::Fail => "FAIL",
        },
        p.duration_s,
        p.exit.describe()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(argv: &[&str], secs: u64) -> Launch {
        Launch {
            name: argv.join(" "),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: "/".into(),
            deadline: Instant::now() + Duration::from_secs(secs),
            tail_lines: 2,
            label: "test".into(),
        }
    }

    #[test]
    fn captures_exit_output_tail_and_ktap() {
        let (out, lines) = Output::memory();
        let ctx = Ctx::new(1, Duration::from_secs(60), out);
        let script = "echo 'ok 1 first'; echo 'not ok 2 second # bad' >&2; echo tail; exit 3";
        let p = run(&ctx, &launch(&["/bin/sh", "-c", script], 30), zero_passes).unwrap();
        assert_eq!(p.exit, Exit::Code { code: 3 });
        assert_eq!(p.status, Status::Fail);
        assert_eq!(p.output_lines, 3);
        assert_eq!(p.output_tail, ["not ok 2 second # bad", "tail"]);
        assert_eq!(p.ktap.len(), 2);
        assert_eq!(p.ktap[1].status, Status::Fail);
        assert!(
            lines().contains(&"test| ok 1 first".to_string()),
            "{:?}",
            lines()
        );
    }

    #[test]
    fn a_failed_case_fails_a_zero_exit() {
        let (out, _) = Output::memory();
        let ctx = Ctx::new(1, Duration::from_secs(60), out);
        let p = run(
            &ctx,
            &launch(&["/bin/sh", "-c", "echo 'not ok 1 x'"], 30),
            zero_passes,
        )
        .unwrap();
        assert_eq!(
            (p.exit.clone(), p.status),
            (Exit::Code { code: 0 }, Status::Fail)
        );
        let p = run(&ctx, &launch(&["/bin/true"], 30), zero_passes).unwrap();
        assert_eq!(p.status, Status::Pass);
    }

    #[test]
    fn killed_at_the_deadline_with_its_children() {
        let (out, _) = Output::memory();
        let ctx = Ctx::new(1, Duration::from_secs(60), out);
        let t = Instant::now();
        // The background sleep keeps the pipe open: it must die with the group.
        let p = run(
            &ctx,
            &launch(&["/bin/sh", "-c", "sleep 100 & trap '' TERM; sleep 100"], 1),
            zero_passes,
        )
        .unwrap();
        assert!(matches!(p.exit, Exit::Killed { .. }), "{:?}", p.exit);
        assert_eq!(p.status, Status::Fail);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }

    #[test]
    fn spawn_failure_is_an_error() {
        let (out, _) = Output::memory();
        let ctx = Ctx::new(1, Duration::from_secs(60), out);
        assert!(run(&ctx, &launch(&["/nonexistent/prog"], 5), zero_passes).is_err());
    }
}
