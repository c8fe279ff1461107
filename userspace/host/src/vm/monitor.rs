//! Runs QEMU (or anything standing in for it) and watches both channels
//! until the guest ends or has to be ended.
//!
//! The serial console arrives on QEMU's stdout: it is split into lines,
//! teed to console.log, echoed, scanned for findings and searched for
//! protocol lines. The driver's protocol lines arrive in wire.log, which QEMU
//! appends to and this module tails. QEMU's stderr goes to qemu-stderr.log;
//! it is where KVM failures show up.
//!
//! The child gets its own process group so that killing it also kills
//! whatever it started (a test's stand-in shell and its `sleep`), and so that
//! Ctrl-C in the terminal reaches only us: we kill QEMU ourselves and still
//! write the report. It also gets SIGKILL if we die, so no QEMU is ever left
//! behind burning CPU.

use crate::judge::scan::ConsoleScan;
use crate::judge::verdict::Ending;
use crate::vm::messages::Messages;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often timers, the wire file and the child are checked.
const TICK: Duration = Duration::from_millis(100);

/// How long to wait for the last output once the child is gone.
const DRAIN: Duration = Duration::from_secs(3);

/// QEMU's words when KVM cannot run the guest.
const KVM_ERROR: &str = "KVM internal error";

/// QEMU stderr lines kept for the report.
const STDERR_TAIL: usize = 20;

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub program: String,
    pub args: Vec<String>,
    pub console_log: PathBuf,
    pub wire_log: PathBuf,
    pub stderr_log: PathBuf,
    /// Echo the console to our stdout.
    pub echo: bool,
    pub hang_timeout: Duration,
    /// The driver must have said Hello by then.
    pub boot_timeout: Duration,
    /// The run must be over by then.
    pub deadline: Duration,
    /// Once the verdict is decided (a kernel finding on the console, or an
    /// oracle's: a data mismatch, a stall the driver reported, a new taint
    /// bit), the guest gets this long to print the rest (the stack, the
    /// driver's last snapshots) before QEMU is stopped. A guest wedged by
    /// what it found (an OOM deadlock that keeps printing allocation
    /// stalls) would otherwise hold QEMU until `deadline`, and a WARNING
    /// that leaves the guest running would keep a matrix cell busy to its
    /// cap.
    pub finding_grace: Duration,
    /// Set when trying KVM with TCG as the fallback: how long KVM gets to
    /// reach the kernel banner.
    pub kvm_probe: Option<Duration>,
}

/// Everything seen during one QEMU run.
#[derive(Debug)]
pub struct Observation {
    pub scan: ConsoleScan,
    pub messages: Messages,
    pub ending: Ending,
    pub stderr_tail: Vec<String>,
    /// Host time from start to the kernel banner.
    pub banner_after: Option<Duration>,
}

#[derive(Debug)]
pub enum Outcome {
    Finished(Observation),
    /// Probing KVM failed: the caller retries with TCG.
    KvmFailed {
        reason: String,
        observation: Observation,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

enum Input {
    Bytes(Stream, Vec<u8>),
    Eof,
}

/// Cuts a byte stream into lines: `\n`-terminated, a trailing `\r` removed,
/// invalid UTF-8 replaced (console.log gets the same text, so `judge` counts
/// the same lines).
#[derive(Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                out.push(Self::text(&std::mem::take(&mut self.partial)));
            } else {
                self.partial.push(b);
            }
        }
        out
    }

    /// The unterminated rest, at end of stream.
    pub fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| Self::text(&std::mem::take(&mut self.partial)))
    }

    fn text(bytes: &[u8]) -> String {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Follows a file another process appends to (QEMU's chardev file).
struct FileTail {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    split: LineSplitter,
}

impl FileTail {
    fn new(path: PathBuf) -> Self {
        FileTail {
            path,
            file: None,
            offset: 0,
            split: LineSplitter::default(),
        }
    }

    /// New complete lines, and whether any bytes arrived at all.
    fn poll(&mut self) -> (Vec<String>, bool) {
        if self.file.is_none() {
            self.file = File::open(&self.path).ok();
        }
        let Some(f) = self.file.as_mut() else {
            return (Vec::new(), false);
        };
        // QEMU truncates the file when it opens it; start over if it shrank.
        if f.metadata().map(|m| m.len() < self.offset).unwrap_or(false) {
            self.offset = 0;
            self.split = LineSplitter::default();
        }
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut buf).is_err() {
            return (Vec::new(), false);
        }
        self.offset += buf.len() as u64;
        (self.split.push(&buf), !buf.is_empty())
    }
}

/// Removes terminal control sequences (SeaBIOS clears the screen) so echoing
/// the console cannot mess up the user's terminal.
pub fn printable(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters up to a final byte in '@'..='~'.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if !c.is_control() || c == '\t' {
            out.push(c);
        }
    }
    out
}

fn spawn_reader(mut r: impl Read + Send + 'static, stream: Stream, tx: mpsc::Sender<Input>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Input::Bytes(stream, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let _ = tx.send(Input::Eof);
    });
}

/// Kills the child's whole process group and reaps the child.
fn kill(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Where lines go: the logs, the terminal, the scanners.
struct Sink {
    console: BufWriter<File>,
    stderr: BufWriter<File>,
    echo: bool,
    scan: ConsoleScan,
    messages: Messages,
    stderr_tail: Vec<String>,
    kvm_error: Option<String>,
}

impl Sink {
    fn console_line(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.console, "{line}")?;
        // A closed terminal or pipe must not end the run: stop echoing.
        if self.echo && writeln!(std::io::stdout().lock(), "{}", printable(line)).is_err() {
            self.echo = false;
        }
        self.scan.feed(line);
        self.messages.feed(line);
        self.note_kvm_error(line);
        Ok(())
    }

    fn stderr_line(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.stderr, "{line}")?;
        self.note_kvm_error(line);
        if self.stderr_tail.len() == STDERR_TAIL {
            self.stderr_tail.remove(0);
        }
        self.stderr_tail.push(line.to_string());
        Ok(())
    }

    fn note_kvm_error(&mut self, line: &str) {
        if line.contains(KVM_ERROR) && self.kvm_error.is_none() {
            self.kvm_error = Some(line.trim().to_string());
        }
    }
}

/// The state of one watch: the sink plus where each channel stands.
struct Watch {
    sink: Sink,
    split_out: LineSplitter,
    split_err: LineSplitter,
    open_streams: usize,
    wire: FileTail,
    last_activity: Instant,
}

impl Watch {
    fn take(&mut self, input: Input) -> std::io::Result<()> {
        match input {
            Input::Bytes(Stream::Stdout, b) => {
                self.last_activity = Instant::now();
                for l in self.split_out.push(&b) {
                    self.sink.console_line(&l)?;
                }
            }
            Input::Bytes(Stream::Stderr, b) => {
                for l in self.split_err.push(&b) {
                    self.sink.stderr_line(&l)?;
                }
            }
            Input::Eof => self.open_streams -= 1,
        }
        Ok(())
    }

    /// Waits up to `wait` for output, takes all that is there, reads the
    /// wire file.
    fn pump(&mut self, rx: &mpsc::Receiver<Input>, wait: Duration) -> std::io::Result<()> {
        match rx.recv_timeout(wait) {
            Ok(input) => {
                self.take(input)?;
                while let Ok(input) = rx.try_recv() {
                    self.take(input)?;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
        }
        self.poll_wire();
        self.sink.console.flush()?;
        self.sink.stderr.flush()
    }

    fn poll_wire(&mut self) {
        let (lines, active) = self.wire.poll();
        for l in &lines {
            // Other lines on the wire are the output of a program `exec`
            // or `selftests-mm` runs: shown like the console, not judged.
            if self.sink.echo
                && !l.contains(mmrace_proto::wire::PREFIX)
                && writeln!(std::io::stdout().lock(), "{}", printable(l)).is_err()
            {
                self.sink.echo = false;
            }
            self.sink.messages.feed(l);
        }
        if active {
            self.last_activity = Instant::now();
        }
    }

    /// Takes what is still in the pipes after the child ended, for at most
    /// [`DRAIN`] (a grandchild could keep a pipe open forever), then the
    /// unterminated last lines.
    fn drain(&mut self, rx: &mpsc::Receiver<Input>) -> std::io::Result<()> {
        let until = Instant::now() + DRAIN;
        while self.open_streams > 0 {
            match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(input) => self.take(input)?,
                Err(_) => break,
            }
        }
        if let Some(l) = self.split_out.finish() {
            self.sink.console_line(&l)?;
        }
        if let Some(l) = self.split_err.finish() {
            self.sink.stderr_line(&l)?;
        }
        self.poll_wire();
        if let Some(l) = self.wire.split.finish() {
            self.sink.messages.feed(&l);
        }
        self.sink.console.flush()?;
        self.sink.stderr.flush()
    }
}

/// What the watch loop does next.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Continue,
    End(Ending),
    /// KVM did not get the kernel going: retry with TCG.
    KvmFailed(String),
}

/// The rules for ending a run, given what has been seen. `exit` is the
/// child's status if it already exited.
fn decide(
    cfg: &MonitorConfig,
    w: &Watch,
    elapsed: Duration,
    interrupted: bool,
    exit: Option<std::process::ExitStatus>,
    decided_at: Option<Duration>,
) -> Next {
    let probing = cfg.kvm_probe.is_some() && !w.sink.scan.booted();
    if interrupted {
        return Next::End(Ending::Interrupted);
    }
    if let Some(error) = &w.sink.kvm_error {
        return match probing {
            true => Next::KvmFailed(error.clone()),
            false => Next::End(Ending::AccelFailed {
                error: error.clone(),
            }),
        };
    }
    if let Some(status) = exit {
        let ending = Ending::Exited {
            code: status.code(),
            signal: status.signal(),
        };
        return match probing {
            true => Next::KvmFailed(format!("{} before the kernel banner", ending.describe())),
            false => Next::End(ending),
        };
    }
    if let Some(limit) = cfg.kvm_probe.filter(|_| probing) {
        if elapsed >= limit {
            return Next::KvmFailed(format!("no kernel banner within {} s", limit.as_secs()));
        }
    }
    if w.last_activity.elapsed() >= cfg.hang_timeout {
        return Next::End(Ending::Silent {
            silent_s: cfg.hang_timeout.as_secs(),
        });
    }
    if w.sink.messages.hello.is_none() && elapsed >= cfg.boot_timeout {
        return Next::End(Ending::BootTimeout {
            limit_s: cfg.boot_timeout.as_secs(),
        });
    }
    if elapsed >= cfg.deadline {
        return Next::End(Ending::Overran {
            limit_s: cfg.deadline.as_secs(),
        });
    }
    if decided_at.is_some_and(|t| elapsed >= t + cfg.finding_grace) {
        return Next::End(Ending::Decided {
            grace_s: cfg.finding_grace.as_secs(),
        });
    }
    Next::Continue
}

/// Whether what has been seen already decides the verdict: a kernel
/// finding on the console, or an oracle's finding in the driver's lines.
fn decided(w: &Watch) -> bool {
    w.sink.scan.first_finding().is_some() || crate::judge::verdict::oracle_decided(&w.sink.messages)
}

/// Starts the child and watches it until it ends or is killed. `stop` is
/// set by the Ctrl-C handler. Errors are local I/O failures (cannot write
/// console.log); a child that cannot start is an [`Ending::SpawnFailed`].
pub fn run(cfg: &MonitorConfig, stop: &AtomicBool) -> std::io::Result<Outcome> {
    let start = Instant::now();
    let sink = Sink {
        console: BufWriter::new(File::create(&cfg.console_log)?),
        stderr: BufWriter::new(File::create(&cfg.stderr_log)?),
        echo: cfg.echo,
        scan: ConsoleScan::new(),
        messages: Messages::new(),
        stderr_tail: Vec::new(),
        kvm_error: None,
    };
    let mut w = Watch {
        sink,
        split_out: LineSplitter::default(),
        split_err: LineSplitter::default(),
        open_streams: 2,
        wire: FileTail::new(cfg.wire_log.clone()),
        last_activity: start,
    };
    let observe = |w: Watch, ending: Ending, banner_after| Observation {
        scan: w.sink.scan,
        messages: w.sink.messages,
        ending,
        stderr_tail: w.sink.stderr_tail,
        banner_after,
    };

    let mut cmd = Command::new(&cfg.program);
    cmd.args(&cfg.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let error = format!("{}: {e}", cfg.program);
            return Ok(Outcome::Finished(observe(
                w,
                Ending::SpawnFailed { error },
                None,
            )));
        }
    };
    let (tx, rx) = mpsc::channel();
    spawn_reader(
        child.stdout.take().expect("piped"),
        Stream::Stdout,
        tx.clone(),
    );
    spawn_reader(child.stderr.take().expect("piped"), Stream::Stderr, tx);

    let mut banner_after = None;
    let mut decided_at = None;
    let next = loop {
        w.pump(&rx, TICK)?;
        let exit = child.try_wait()?;
        if exit.is_some() {
            // Output written just before the exit may still be in the pipe;
            // decide on all of it (a KVM probe needs to see the banner).
            w.drain(&rx)?;
        }
        if banner_after.is_none() && w.sink.scan.booted() {
            banner_after = Some(start.elapsed());
        }
        if decided_at.is_none() && decided(&w) {
            decided_at = Some(start.elapsed());
        }
        let next = decide(
            cfg,
            &w,
            start.elapsed(),
            stop.load(Ordering::SeqCst),
            exit,
            decided_at,
        );
        if next != Next::Continue {
            if exit.is_none() {
                kill(&mut child);
            }
            break next;
        }
    };
    w.drain(&rx)?;
    Ok(match next {
        Next::KvmFailed(mut reason) => {
            if let Some(last) = w.sink.stderr_tail.last() {
                reason = format!("{reason} ({})", last.trim());
            }
            let ending = Ending::AccelFailed {
                error: reason.clone(),
            };
            Outcome::KvmFailed {
                reason,
                observation: observe(w, ending, None),
            }
        }
        Next::End(ending) => Outcome::Finished(observe(w, ending, banner_after)),
        Next::Continue => unreachable!("the loop only ends on a decision"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::verdict::{judge, Verdict};
    use mmrace_proto::wire::{encode, Msg};

    struct Fake {
        dir: PathBuf,
    }

    impl Fake {
        fn new(name: &str) -> Fake {
            let dir =
                std::env::temp_dir().join(format!("mmrace-mon-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Fake { dir }
        }

        /// A config running `sh -c script` with $1 = the wire file and
        /// $2 = a file for the script to record pids in.
        fn config(&self, script: &str) -> MonitorConfig {
            MonitorConfig {
                program: "sh".into(),
                args: vec![
                    "-c".into(),
                    script.into(),
                    "fake-qemu".into(),
                    self.path("wire.log"),
                    self.path("pids"),
                ],
                console_log: self.dir.join("console.log"),
                wire_log: self.dir.join("wire.log"),
                stderr_log: self.dir.join("stderr.log"),
                echo: false,
                hang_timeout: Duration::from_secs(1),
                boot_timeout: Duration::from_secs(30),
                deadline: Duration::from_secs(30),
                finding_grace: Duration::from_secs(30),
                kvm_probe: None,
            }
        }

        fn path(&self, name: &str) -> String {
            self.dir.join(name).display().to_string()
        }

        /// Every pid the script recorded is gone (or a zombie nobody
        /// reaped). A SIGKILLed grandchild needs to be scheduled once to
        /// die, which can take a moment on a loaded machine.
        fn assert_all_dead(&self) {
            let pids = std::fs::read_to_string(self.dir.join("pids")).unwrap();
            assert!(!pids.trim().is_empty());
            for pid in pids.split_whitespace() {
                let deadline = Instant::now() + Duration::from_secs(10);
                while alive(pid) {
                    assert!(Instant::now() < deadline, "process {pid} survived");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }

    fn alive(pid: &str) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next());
        state != Some("Z")
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn finished(o: Outcome) -> Observation {
        match o {
            Outcome::Finished(o) => o,
            Outcome::KvmFailed { reason, .. } => panic!("unexpected KVM failure: {reason}"),
        }
    }

    fn wire_line(msg: &Msg) -> String {
        // Single quotes for sh: the JSON has none.
        format!("printf '%s' '{}' >> \"$1\"", encode(msg))
    }

    fn hello() -> Msg {
        Msg::Hello {
            wire: 1,
            spec: Box::new(mmrace_proto::spec::RunSpec::new(
                mmrace_proto::spec::Scenario::Smoke(Default::default()),
                7,
                1,
            )),
        }
    }

    static NO_STOP: AtomicBool = AtomicBool::new(false);

    #[test]
    fn splits_lines_across_chunks_and_strips_cr() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"[ 0.1] Linux ver"), Vec::<String>::new());
        assert_eq!(
            s.push(b"sion 7\r\nnext\npart"),
            ["[ 0.1] Linux version 7", "next"]
        );
        assert_eq!(s.finish().as_deref(), Some("part"));
        assert_eq!(s.finish(), None);
        assert_eq!(s.push(b"\xff\n"), ["\u{fffd}"]);
    }

    #[test]
    fn printable_drops_terminal_control() {
        assert_eq!(
            printable(
                "Booting from ROM..\u{1b}c\u{1b}[?7l\u{1b}[2J\u{1b}[0m.\r[    0.000000] Linux"
            ),
            "Booting from ROM...[    0.000000] Linux"
        );
        assert_eq!(printable("a\tb"), "a\tb");
    }

    #[test]
    fn silent_guest_is_a_hang_and_gets_killed() {
        let f = Fake::new("hang");
        let cfg = f.config(
            "echo '[    0.000000] Linux version 7.3.4'; echo $$ >> \"$2\"; \
             sleep 100 & echo $! >> \"$2\"; wait",
        );
        let t = Instant::now();
        let o = finished(run(&cfg, &NO_STOP).unwrap());
        assert_eq!(o.ending, Ending::Silent { silent_s: 1 });
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(o.scan.booted());
        assert_eq!(
            judge(&o.scan, &o.messages, &o.ending).verdict,
            Verdict::Hang
        );
        f.assert_all_dead();
    }

    #[test]
    fn crash_line_then_exit_is_a_kernel_problem() {
        let f = Fake::new("crash");
        let cfg = f.config(
            "echo '[    0.000000] Linux version 7.3.4'; \
             echo '[    5.100000] kernel BUG at mm/huge_memory.c:3050!'; \
             printf '[    5.100001] Oops: invalid opcode: 0000 [#1] SMP NOPTI'",
        );
        let o = finished(run(&cfg, &NO_STOP).unwrap());
        assert_eq!(
            o.ending,
            Ending::Exited {
                code: Some(0),
                signal: None
            }
        );
        let j = judge(&o.scan, &o.messages, &o.ending);
        assert_eq!(
            (j.verdict, j.class()),
            (Verdict::KernelProblem, Some("BUG"))
        );
        // The unterminated last line still made it, into the log too.
        let log = std::fs::read_to_string(&cfg.console_log).unwrap();
        assert!(log.ends_with("SMP NOPTI\n"), "{log}");
        assert_eq!(o.scan.first_finding().unwrap().excerpt.len(), 2);
    }

    #[test]
    fn result_ok_and_power_off_is_clean() {
        let f = Fake::new("clean");
        let result = Msg::Result {
            t_ms: 1200,
            ok: true,
            message: "smoke passed".into(),
            data: crate::out::report::tests::smoke_result(3),
        };
        let script = format!(
            "echo '[    0.000000] Linux version 7.3.4'; {}; {}; echo '[    1.5] reboot: Power down'",
            wire_line(&hello()),
            wire_line(&result)
        );
        let o = finished(run(&f.config(&script), &NO_STOP).unwrap());
        assert!(o.messages.hello.is_some());
        assert_eq!(o.messages.outcome(), Some((true, "smoke passed")));
        assert!(o.scan.powered_off());
        assert_eq!(
            judge(&o.scan, &o.messages, &o.ending).verdict,
            Verdict::Clean
        );
    }

    #[test]
    fn no_hello_within_boot_timeout() {
        let f = Fake::new("boot");
        let mut cfg = f.config("echo $$ >> \"$2\"; while :; do echo booting; sleep 0.1; done");
        cfg.boot_timeout = Duration::from_secs(1);
        let o = finished(run(&cfg, &NO_STOP).unwrap());
        assert_eq!(o.ending, Ending::BootTimeout { limit_s: 1 });
        f.assert_all_dead();
    }

    #[test]
    fn chatty_guest_still_meets_the_deadline() {
        let f = Fake::new("overrun");
        let script = format!(
            "echo $$ >> \"$2\"; {}; while :; do echo working; sleep 0.1; done",
            wire_line(&hello())
        );
        let mut cfg = f.config(&script);
        cfg.deadline = Duration::from_secs(2);
        let o = finished(run(&cfg, &NO_STOP).unwrap());
        assert_eq!(o.ending, Ending::Overran { limit_s: 2 });
        assert!(o.messages.hello.is_some());
        f.assert_all_dead();
    }

    #[test]
    fn a_decided_verdict_ends_a_running_guest_after_the_grace() {
        let f = Fake::new("decided");
        let script = format!(
            "echo $$ >> \"$2\"; {}; sleep 0.5; echo '[    1.000000] WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2'; \
             while :; do echo working; sleep 0.1; done",
            wire_line(&hello())
        );
        let mut cfg = f.config(&script);
        cfg.finding_grace = Duration::from_secs(1);
        let t = Instant::now();
        let o = finished(run(&cfg, &NO_STOP).unwrap());
        assert_eq!(o.ending, Ending::Decided { grace_s: 1 });
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
        assert!(o.scan.first_finding().is_some());
        // The guest kept talking during the grace, and that is kept.
        assert!(std::fs::read_to_string(&cfg.console_log)
            .unwrap()
            .contains("working"));
        f.assert_all_dead();
    }

    #[test]
    fn stop_flag_kills_and_reports_interrupted() {
        let f = Fake::new("stop");
        let cfg = f.config("echo $$ >> \"$2\"; exec sleep 100");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let pids = f.dir.join("pids");
        let ctrl_c = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while std::fs::metadata(&pids)
                    .map(|m| m.len() == 0)
                    .unwrap_or(true)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                stop.store(true, Ordering::SeqCst);
            })
        };
        let o = finished(run(&cfg, &stop).unwrap());
        ctrl_c.join().unwrap();
        assert_eq!(o.ending, Ending::Interrupted);
        f.assert_all_dead();
    }

    #[test]
    fn kvm_probe_gives_up_on_internal_error_or_early_exit() {
        let f = Fake::new("kvm");
        let mut cfg = f.config(
            "echo $$ >> \"$2\"; echo 'KVM internal error. Suberror: 1' >&2; exec sleep 100",
        );
        cfg.kvm_probe = Some(Duration::from_secs(30));
        match run(&cfg, &NO_STOP).unwrap() {
            Outcome::KvmFailed { reason, .. } => assert!(reason.contains("KVM internal error")),
            Outcome::Finished(o) => panic!("probe did not fail: {:?}", o.ending),
        }
        f.assert_all_dead();

        let mut cfg = f.config("echo 'could not open /dev/kvm' >&2; exit 1");
        cfg.kvm_probe = Some(Duration::from_secs(30));
        match run(&cfg, &NO_STOP).unwrap() {
            Outcome::KvmFailed { reason, .. } => {
                assert!(
                    reason.contains("status 1") && reason.contains("/dev/kvm"),
                    "{reason}"
                )
            }
            Outcome::Finished(o) => panic!("probe did not fail: {:?}", o.ending),
        }

        let mut cfg = f.config("exec sleep 100");
        cfg.kvm_probe = Some(Duration::from_millis(300));
        cfg.hang_timeout = Duration::from_secs(30);
        assert!(matches!(
            run(&cfg, &NO_STOP).unwrap(),
            Outcome::KvmFailed { .. }
        ));
    }

    #[test]
    fn kvm_probe_passes_once_the_kernel_prints() {
        let f = Fake::new("kvm-ok");
        let mut cfg = f.config("echo '[    0.000000] Linux version 7.3.4'; exit 0");
        cfg.kvm_probe = Some(Duration::from_secs(30));
        let o = finished(run(&cfg, &NO_STOP).unwrap());
        assert!(o.scan.booted() && o.banner_after.is_some());
    }

    #[test]
    fn missing_program_is_spawn_failure() {
        let f = Fake::new("spawn");
        let mut cfg = f.config("");
        cfg.program = "/nonexistent/qemu-system-x86_64".into();
        let o = finished(run(&cfg, &NO_STOP).unwrap());
        assert!(matches!(o.ending, Ending::SpawnFailed { .. }));
        assert_eq!(
            judge(&o.scan, &o.messages, &o.ending).verdict,
            Verdict::HarnessError
        );
    }

    #[test]
    fn wire_tail_follows_appends_and_truncation() {
        let f = Fake::new("tail");
        let p = f.dir.join("w");
        let mut t = FileTail::new(p.clone());
        assert_eq!(t.poll(), (vec![], false));
        std::fs::write(&p, "one\ntw").unwrap();
        assert_eq!(t.poll(), (vec!["one".to_string()], true));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"o\n")
            .unwrap();
        assert_eq!(t.poll(), (vec!["two".to_string()], true));
        std::fs::write(&p, "x\n").unwrap();
        assert_eq!(t.poll(), (vec!["x".to_string()], true));
    }
}
