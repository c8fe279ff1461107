//! Turns what was seen (console findings, the driver's messages, how QEMU
//! ended) into one verdict and an exit code.
//!
//! The rules, in order:
//! 1. QEMU could not be started: harness error.
//! 2. The first console finding decides: a kernel class is a kernel problem
//!    (even if the guest then hung: a hung-task report followed by silence is
//!    more useful named than called a hang), a harness class a harness error.
//!    Then the oracles: a data-oracle mismatch (class `data-corruption`),
//!    a stall the driver saw (`oom-deadlock`), then a taint bit that
//!    appeared during the run (class `taint`): kernel problems the console
//!    did not show.
//! 3. The accelerator failed or the user interrupted the run: harness error
//!    (nothing was proven about the kernel).
//! 4. Killed for silence, for the overall deadline or for not starting the
//!    driver in time: hang.
//! 5. The driver's Result: `ok == false` is a harness error; `ok == true` is
//!    clean when QEMU then exited by itself with status 0 (the guest powered
//!    off) or when judging a log after the fact, unless a program that
//!    `exec` or `selftests-mm` ran failed: then the test failed (the
//!    program's verdict on the kernel, below every finding and hang).
//! 6. No Result: QEMU failing before the kernel printed anything is a harness
//!    error; otherwise the guest died without saying why: kernel problem.

use crate::judge::finding::Finding;
use crate::judge::scan::{ConsoleFinding, ConsoleScan};
use crate::judge::title::{self, Identity};
use crate::vm::messages::Messages;
use mmrace_proto::wire::Msg;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Clean,
    KernelProblem,
    Hang,
    HarnessError,
    /// Nothing on the console, but a program `exec` or `selftests-mm` ran
    /// failed (its own verdict: a test failure).
    TestFailed,
}

impl Verdict {
    /// 0 clean, 1 the kernel is at fault (problem or hang), 2 the harness or
    /// its user is, 3 a test program failed.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Clean => 0,
            Verdict::KernelProblem | Verdict::Hang => 1,
            Verdict::HarnessError => 2,
            Verdict::TestFailed => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Verdict::Clean => "CLEAN",
            Verdict::KernelProblem => "KERNEL PROBLEM",
            Verdict::Hang => "HANG",
            Verdict::HarnessError => "HARNESS ERROR",
            Verdict::TestFailed => "TEST FAILED",
        }
    }
}

/// How the guest's run came to an end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum Ending {
    /// QEMU exited by itself (the guest powered off, rebooted or crashed
    /// with `-no-reboot`, or QEMU failed).
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// Killed: neither console channel said anything for `silent_s`.
    Silent { silent_s: u64 },
    /// Killed: the driver did not say Hello within the boot timeout.
    BootTimeout { limit_s: u64 },
    /// Killed: the whole run took longer than boot + duration + slack.
    Overran { limit_s: u64 },
    /// Killed `grace_s` seconds after the verdict was decided (a kernel
    /// finding, or an oracle's).
    Decided { grace_s: u64 },
    /// Killed: the user pressed Ctrl-C (or sent SIGTERM).
    Interrupted,
    /// QEMU could not even be spawned.
    SpawnFailed { error: String },
    /// The accelerator failed (`KVM internal error`): a host problem.
    AccelFailed { error: String },
    /// Judging a log file: it just ends.
    LogEnded,
}

impl Ending {
    pub fn describe(&self) -> String {
        match self {
            Ending::Exited {
                code: Some(c),
                signal: _,
            } => format!("QEMU exited with status {c}"),
            Ending::Exited {
                code: None,
                signal: Some(s),
            } => format!("QEMU was killed by signal {s}"),
            Ending::Exited { .. } => "QEMU exited".to_string(),
            Ending::Silent { silent_s } => {
                format!("no output on either console for {silent_s} s: QEMU killed")
            }
            Ending::BootTimeout { limit_s } => {
                format!("the driver did not start within {limit_s} s: QEMU killed")
            }
            Ending::Overran { limit_s } => {
                format!("the run overran its {limit_s} s deadline: QEMU killed")
            }
            Ending::Decided { grace_s } => {
                format!("the verdict was decided: QEMU stopped {grace_s} s after the finding")
            }
            Ending::Interrupted => "interrupted by the user: QEMU killed".to_string(),
            Ending::SpawnFailed { error } => format!("QEMU failed to start: {error}"),
            Ending::AccelFailed { error } => format!("the accelerator failed: {error}"),
            Ending::LogEnded => "end of the log".to_string(),
        }
    }

    /// What kind of hang, in a few stable words (for its title).
    fn hang_kind(&self) -> &'static str {
        match self {
            Ending::Silent { .. } => "guest silent",
            Ending::BootTimeout { .. } => "driver did not start",
            _ => "run overran its deadline",
        }
    }

    fn is_hang(&self) -> bool {
        matches!(
            self,
            Ending::Silent { .. } | Ending::BootTimeout { .. } | Ending::Overran { .. }
        )
    }
}

/// The verdict and what led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// One sentence for humans.
    pub reason: String,
    /// What decided it: its class (the finding's, or a short class for
    /// verdicts without a finding: `hang`, `guest-died`,
    /// `driver-failed`...), title, frame and signature. None when clean.
    pub finding: Option<Finding>,
}

impl Judgement {
    /// A verdict whose class is its title (None when clean).
    fn new(verdict: Verdict, class: Option<&str>, reason: String) -> Self {
        Judgement {
            verdict,
            reason,
            finding: class.map(|c| Finding::new(c, title::verdict_class(c))),
        }
    }

    fn titled(mut self, identity: Identity) -> Self {
        if let Some(f) = &mut self.finding {
            f.identity = identity;
        }
        self
    }

    /// The class of what decided it; None when clean.
    pub fn class(&self) -> Option<&str> {
        self.finding.as_ref().map(|f| f.class.as_str())
    }
}

fn finding_reason(f: &ConsoleFinding) -> String {
    let l = f.first_line();
    format!(
        "{} at console.log:{}: {}",
        f.finding.class,
        l.line_no,
        l.text.trim()
    )
}

/// Whether the driver's lines already hold an oracle's finding.
pub fn oracle_decided(msgs: &Messages) -> bool {
    oracle_judgement(msgs).is_some()
}

/// The data oracle first (memory that changed behind a party's back), then
/// the taint oracle (a WARN, BUG or lockup the console did not show).
fn oracle_judgement(msgs: &Messages) -> Option<Judgement> {
    let n = msgs.mismatches();
    if n > 0 {
        let first = match msgs.corruptions.first() {
            Some(c) => c.line(),
            None => "no report received".into(),
        };
        let j = Judgement::new(
            Verdict::KernelProblem,
            Some(DATA_CORRUPTION),
            format!("data corruption: {n} mismatch(es); first: {first}"),
        );
        return Some(match msgs.corruptions.first() {
            Some(c) => j.titled(title::corruption(c)),
            None => j.titled(Identity::plain("data corruption: no report received")),
        });
    }
    if let Some(Msg::Stall {
        t_ms, kind, detail, ..
    }) = msgs.stalls.first()
    {
        return Some(
            Judgement::new(
                Verdict::KernelProblem,
                Some(kind.class()),
                format!(
                    "{} at guest {:.1} s: {detail}",
                    kind.class(),
                    *t_ms as f64 / 1000.0
                ),
            )
            .titled(title::stall(*kind)),
        );
    }
    let taint = msgs.taint();
    (taint.new != 0).then(|| {
        Judgement::new(Verdict::KernelProblem, Some(TAINT), taint.line())
            .titled(title::taint(&taint.letters))
    })
}

/// The class of a run whose QEMU died of a signal (`judge`).
pub const QEMU_CRASHED: &str = "qemu-crashed";

/// The verdict classes of the oracles.
pub const DATA_CORRUPTION: &str = "data-corruption";
pub const TAINT: &str = "taint";

/// `2 of 11 programs failed: migration (exit 1), ...`.
fn failed_programs(suite: &mmrace_proto::results::suite::SuiteResult) -> String {
    let failed: Vec<String> = suite
        .failed()
        .map(|p| format!("{} ({})", p.name, p.exit.describe()))
        .collect();
    format!(
        "{} of {} programs failed: {}",
        failed.len(),
        suite.programs.len(),
        failed.join(", ")
    )
}

pub fn judge(scan: &ConsoleScan, msgs: &Messages, ending: &Ending) -> Judgement {
    use Verdict::*;
    if let Ending::SpawnFailed { .. } = ending {
        return Judgement::new(HarnessError, Some("qemu-failed"), ending.describe());
    }
    if let Some(f) = scan.first_finding() {
        let verdict = match f.blame {
            crate::judge::patterns::Blame::Kernel => KernelProblem,
            crate::judge::patterns::Blame::Harness => HarnessError,
        };
        return Judgement::new(verdict, Some(&f.finding.class), finding_reason(f))
            .titled(f.finding.identity.clone());
    }
    if let Some(j) = oracle_judgement(msgs) {
        return j;
    }
    if let Ending::AccelFailed { .. } = ending {
        return Judgement::new(HarnessError, Some("accel-failed"), ending.describe());
    }
    if *ending == Ending::Interrupted {
        return Judgement::new(HarnessError, Some("interrupted"), ending.describe());
    }
    if ending.is_hang() {
        return Judgement::new(Hang, Some("hang"), ending.describe())
            .titled(title::hang(ending.hang_kind()));
    }
    match (msgs.outcome(), ending) {
        (Some((false, message)), _) => Judgement::new(
            HarnessError,
            Some("driver-failed"),
            format!("the driver failed: {message}"),
        ),
        (Some((true, _)), Ending::LogEnded)
        | (
            Some((true, _)),
            Ending::Exited {
                code: Some(0),
                signal: None,
            },
        ) => match msgs.suite() {
            Some(suite) if suite.failed().next().is_some() => {
                Judgement::new(TestFailed, Some("test-failed"), failed_programs(suite))
                    .titled(title::test_failed(suite.failed().map(|p| p.name.as_str())))
            }
            _ => Judgement::new(
                Clean,
                None,
                "the scenario completed and the guest powered off".into(),
            ),
        },
        (Some((true, _)), _) => Judgement::new(
            HarnessError,
            Some("qemu-failed"),
            format!("the scenario completed but {}", ending.describe()),
        ),
        (None, Ending::Exited { code, .. }) if !scan.booted() && *code != Some(0) => {
            Judgement::new(
                HarnessError,
                Some("qemu-failed"),
                format!("{} before the kernel printed anything", ending.describe()),
            )
        }
        // QEMU dying of a signal is never the guest's doing (a guest crash
        // or reboot makes QEMU exit, see `-no-reboot`): QEMU's own abort
        // (an assertion: a QEMU bug), or a kill from outside (the host's
        // OOM killer). Not a kernel finding.
        (
            None,
            Ending::Exited {
                code: None,
                signal: Some(_),
            },
        ) => Judgement::new(
            HarnessError,
            Some(QEMU_CRASHED),
            format!(
                "{} before the driver's Result (QEMU's own failure, not the guest's: see qemu-stderr.log)",
                ending.describe()
            ),
        ),
        (None, Ending::LogEnded) => Judgement::new(
            KernelProblem,
            Some("no-result"),
            "the log ends without the driver's Result and without a finding".into(),
        ),
        (None, _) => Judgement::new(
            KernelProblem,
            Some("guest-died"),
            format!(
                "the guest stopped without the driver's Result and without a console finding ({})",
                ending.describe()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::wire;

    fn exited(code: i32) -> Ending {
        Ending::Exited {
            code: Some(code),
            signal: None,
        }
    }

    fn result(ok: bool) -> Messages {
        let mut m = Messages::new();
        m.feed(&wire::encode(&Msg::Result {
            t_ms: 1,
            ok,
            message: if ok { "done" } else { "mount failed" }.into(),
            data: None,
        }));
        m
    }

    fn booted() -> ConsoleScan {
        let mut s = ConsoleScan::new();
        s.feed("[    0.000000] Linux version 7.3.4");
        s
    }

    #[test]
    fn clean_needs_result_ok_and_own_exit() {
        let j = judge(&booted(), &result(true), &exited(0));
        assert_eq!((j.verdict, j.class()), (Verdict::Clean, None));
        assert_eq!(
            judge(&booted(), &result(true), &exited(1)).verdict,
            Verdict::HarnessError
        );
        assert_eq!(
            judge(&booted(), &result(true), &Ending::Silent { silent_s: 5 }).verdict,
            Verdict::Hang
        );
    }

    #[test]
    fn first_finding_beats_everything_but_spawn_failure() {
        let mut s = booted();
        s.feed("[ 3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000");
        let j = judge(&s, &result(true), &exited(0));
        assert_eq!(j.verdict, Verdict::KernelProblem);
        assert_eq!(j.class(), Some("BUG"));
        assert!(j.reason.contains("console.log:2"), "{}", j.reason);
        assert_eq!(
            judge(&s, &result(false), &Ending::Silent { silent_s: 1 }).verdict,
            Verdict::KernelProblem
        );
        assert_eq!(
            judge(
                &s,
                &result(true),
                &Ending::SpawnFailed { error: "x".into() }
            )
            .verdict,
            Verdict::HarnessError
        );
    }

    #[test]
    fn harness_pattern_and_driver_failure_are_harness_errors() {
        let mut s = booted();
        s.feed(
            "[ 1.0] Kernel panic - not syncing: No working init found.  Try passing init= option",
        );
        assert_eq!(
            judge(&s, &Messages::new(), &exited(0)).verdict,
            Verdict::HarnessError
        );
        let j = judge(&booted(), &result(false), &exited(0));
        assert_eq!(
            (j.verdict, j.class()),
            (Verdict::HarnessError, Some("driver-failed"))
        );
        assert!(j.reason.contains("mount failed"));
    }

    #[test]
    fn silent_death_is_a_kernel_problem_unless_qemu_never_started() {
        let j = judge(&booted(), &Messages::new(), &exited(0));
        assert_eq!(
            (j.verdict, j.class()),
            (Verdict::KernelProblem, Some("guest-died"))
        );
        let j = judge(&ConsoleScan::new(), &Messages::new(), &exited(1));
        assert_eq!(j.verdict, Verdict::HarnessError);
        assert_eq!(
            judge(&booted(), &Messages::new(), &Ending::Interrupted).verdict,
            Verdict::HarnessError
        );
    }

    #[test]
    fn qemu_killed_by_a_signal_is_a_harness_error() {
        // QEMU 10.0.2's iotlb_to_section assertion during the guest's PCI
        // scan: SIGABRT, after the kernel booted, before the driver.
        let abort = Ending::Exited {
            code: None,
            signal: Some(6),
        };
        let j = judge(&booted(), &Messages::new(), &abort);
        assert_eq!(
            (j.verdict, j.class()),
            (Verdict::HarnessError, Some(QEMU_CRASHED))
        );
        assert!(j.reason.contains("signal 6"), "{}", j.reason);
        // A finding the console showed first still decides.
        let mut s = booted();
        s.feed("[ 3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000");
        assert_eq!(
            judge(&s, &Messages::new(), &abort).verdict,
            Verdict::KernelProblem
        );
    }

    fn with_oracles(corrupt: bool, taint_at: Option<u64>) -> Messages {
        use mmrace_proto::oracle::{region, Corruption, Expected, Found, Stamp, TAINT_EXPECTED};
        let stamp = |generation| Stamp {
            region: region::WRITER,
            page: 3,
            generation,
        };
        let mut m = result(true);
        for t in [1000, 2000, 3000] {
            let tainted = match taint_at {
                Some(at) if t >= at => TAINT_EXPECTED | (1 << 9),
                _ => TAINT_EXPECTED,
            };
            m.feed(&wire::encode(&Msg::Snapshot {
                t_ms: t,
                counters: Default::default(),
                ops: Default::default(),
                tainted: Some(tainted),
                mismatches: u64::from(corrupt && t >= 2000),
            }));
        }
        if corrupt {
            m.feed(&wire::encode(&Msg::Corruption(Box::new(Corruption {
                t_ms: 1500,
                check: "writer-pass".into(),
                region: "thp-race writer".into(),
                vaddr: 0x7000_0000_3000,
                page: 3,
                expected: Expected::Stamp(stamp(5)),
                found: Found::Stamp(stamp(4)),
                recent_ops: Default::default(),
                context: None,
            }))));
        }
        m
    }

    #[test]
    fn oracles_turn_a_clean_run_into_a_kernel_problem() {
        let j = judge(&booted(), &with_oracles(false, None), &exited(0));
        assert_eq!(j.verdict, Verdict::Clean);
        let j = judge(&booted(), &with_oracles(true, Some(2000)), &exited(0));
        assert_eq!(
            (j.verdict, j.class()),
            (Verdict::KernelProblem, Some(DATA_CORRUPTION))
        );
        assert!(j.reason.contains("0x700000003000 (page 3)"), "{}", j.reason);
        assert_eq!(
            j.finding.unwrap().identity.title,
            "data corruption: lost write in thp-race writer (writer-pass)"
        );
        let j = judge(&booted(), &with_oracles(false, Some(3000)), &exited(0));
        assert_eq!(
            (j.verdict, j.class()),
            (Verdict::KernelProblem, Some(TAINT))
        );
        assert!(j.reason.contains("W (kernel issued warning)") && j.reason.contains("3.0 s"));
        assert_eq!(
            j.finding.unwrap().identity.title,
            "taint W without a console finding"
        );
        // A console finding still comes first.
        let mut s = booted();
        s.feed("[ 3.0] WARNING: CPU: 1 PID: 7 at mm/huge_memory.c:3050 __split_huge_pmd+0x1/0x2");
        let j = judge(&s, &with_oracles(true, Some(2000)), &exited(0));
        assert_eq!(j.class(), Some("WARNING"));
        assert_eq!(
            j.finding.unwrap().identity.title,
            "WARNING in __split_huge_pmd"
        );
        // Clean has no title; a hang is titled by its kind.
        assert_eq!(
            judge(&booted(), &with_oracles(false, None), &exited(0)).finding,
            None
        );
        let j = judge(&booted(), &Messages::new(), &Ending::Silent { silent_s: 5 });
        assert_eq!(j.finding.unwrap().identity.title, "hang: guest silent");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Verdict::Clean.exit_code(), 0);
        assert_eq!(Verdict::KernelProblem.exit_code(), 1);
        assert_eq!(Verdict::Hang.exit_code(), 1);
        assert_eq!(Verdict::HarnessError.exit_code(), 2);
        assert_eq!(Verdict::TestFailed.exit_code(), 3);
    }

    /// An `exec` run whose program exited with `code`.
    fn exec_run(code: i32) -> Messages {
        use mmrace_proto::results::suite::{Exit, ProgramRun, Status, SuiteResult};
        use mmrace_proto::results::ScenarioResult;
        use mmrace_proto::spec::{RunSpec, Scenario};
        let scenario = Scenario::parse(&["exec".into(), "/exec/t".into()]).unwrap();
        let suite = SuiteResult {
            programs: vec![ProgramRun {
                name: "/exec/t".into(),
                argv: vec!["/exec/t".into()],
                exit: Exit::Code { code },
                status: if code == 0 {
                    Status::Pass
                } else {
                    Status::Fail
                },
                duration_s: 0.1,
                output_lines: 1,
                output_tail: vec!["hello".into()],
                ktap: vec![],
                counters: Default::default(),
                vmstat: Default::default(),
                rerun: None,
            }],
            cpus: 2,
            nodes: vec![0, 1],
        };
        let mut m = Messages::new();
        for msg in [
            Msg::Hello {
                wire: wire::WIRE_VERSION,
                spec: Box::new(RunSpec::new(scenario, 1, 10)),
            },
            Msg::Result {
                t_ms: 1,
                ok: true,
                message: "ok".into(),
                data: Some(Box::new(ScenarioResult::Exec(Box::new(suite)))),
            },
        ] {
            m.feed(&wire::encode(&msg));
        }
        m
    }

    #[test]
    fn a_failed_program_is_a_test_failure_and_findings_still_win() {
        assert_eq!(
            judge(&booted(), &exec_run(0), &exited(0)).verdict,
            Verdict::Clean
        );
        let j = judge(&booted(), &exec_run(3), &exited(0));
        assert_eq!(
            (j.verdict, j.class()),
            (Verdict::TestFailed, Some("test-failed"))
        );
        assert!(
            j.reason
                .contains("1 of 1 programs failed: /exec/t (exit 3)"),
            "{}",
            j.reason
        );
        let mut s = booted();
        s.feed("[ 3.0] BUG: kernel NULL pointer dereference, address: 0000000000000000");
        assert_eq!(
            judge(&s, &exec_run(3), &exited(0)).verdict,
            Verdict::KernelProblem
        );
        assert_eq!(
            judge(&booted(), &exec_run(3), &Ending::Silent { silent_s: 5 }).verdict,
            Verdict::Hang
        );
    }
}
