//! report.json: everything a later reader needs to know about one run
//! without rerunning it. Protocol messages are stored as the driver sent
//! them (the [`Msg`] JSON, with its `type` tag), so the report and wire.log
//! never disagree about their shape.

use crate::judge::catch::CatchTimes;
use crate::judge::finding::{Finding, InReport};
use crate::judge::scan::{ConsoleFinding, ConsoleScan};
use crate::judge::verdict::{self, Ending, Verdict};
use crate::vm::accel::Accel;
use crate::vm::messages::{snapshot_view, Messages};
use mmrace_proto::spec::RunSpec;
use mmrace_proto::wire::Msg;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub host_tool_version: String,
    /// What the host knew before the guest said anything; its fields sit
    /// at the top level of report.json.
    #[serde(flatten)]
    pub meta: RunMeta,

    pub verdict: Verdict,
    pub exit_code: i32,
    /// What decided the verdict (a console finding, an oracle's, or the
    /// verdict class: `hang`, `guest-died`...), as `class` and `identity`
    /// (title, frame, signature: absent from reports written before titles
    /// existed); None when clean.
    #[serde(flatten)]
    pub found: InReport,
    pub reason: String,
    pub ending: Ending,
    /// The first console finding, which decided the verdict.
    pub finding: Option<ConsoleFinding>,
    /// Later console findings, for information.
    pub other_findings: Vec<ConsoleFinding>,
    /// What the oracles found apart from the console.
    pub oracles: Oracles,

    pub booted: bool,
    pub powered_off: bool,
    pub console_lines: usize,
    pub hello: Option<Msg>,
    /// The module's version and probes.
    pub module: Option<Msg>,
    pub events: Vec<Msg>,
    pub snapshots: usize,
    pub first_snapshot: Option<Msg>,
    pub last_snapshot: Option<Msg>,
    pub rates: Option<Rates>,
    /// The driver's Result, with its scenario-specific `data`.
    pub result: Option<Msg>,
    /// mmrace.ko's meets over the scenario, or why there are none; None
    /// when the driver sent nothing about them (it died first, or predates
    /// them).
    #[serde(default)]
    pub meets: Option<mmrace_proto::meets::RunMeets>,
    /// The meets so far, every 10 s while they were counted: the run's
    /// coverage over time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub meets_progress: Vec<mmrace_proto::meets::MeetsPoint>,
    pub undecodable_wire_lines: usize,

    /// Time to catch and to the first race (absent from reports written
    /// before it existed).
    #[serde(default)]
    pub catch: CatchTimes,
    /// Guest time of the driver's last message.
    pub guest_elapsed_s: Option<f64>,
    /// Host time to the kernel banner.
    pub boot_s: Option<f64>,
    pub host_wall_s: f64,
    pub qemu_stderr_tail: Vec<String>,
    /// Things that did not change the verdict but look wrong.
    pub warnings: Vec<String>,
}

/// The data and taint oracles' findings (see `mmrace_proto::oracle`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Oracles {
    /// Data-oracle mismatches in the run (only the first few in full).
    pub data_mismatches: u64,
    pub corruptions: Vec<mmrace_proto::oracle::Corruption>,
    pub taint: mmrace_proto::oracle::TaintReport,
}

impl Oracles {
    pub fn from_messages(msgs: &Messages) -> Oracles {
        Oracles {
            data_mismatches: msgs.mismatches(),
            corruptions: msgs.corruptions.clone(),
            taint: msgs.taint(),
        }
    }
}

/// Per-second rates between the first and the last snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub window_s: f64,
    pub counters: BTreeMap<String, f64>,
    pub ops: BTreeMap<String, f64>,
}

/// (last - first) / window for every name in the last snapshot. None when
/// the two snapshots are the same moment (a single snapshot): no window, no
/// rate. A counter that went backwards (module reloaded) counts as 0.
pub fn rates(first: &Msg, last: &Msg) -> Option<Rates> {
    let (a, b) = (snapshot_view(first)?, snapshot_view(last)?);
    if b.t_ms <= a.t_ms {
        return None;
    }
    let window_s = (b.t_ms - a.t_ms) as f64 / 1000.0;
    let per_s = |from: &BTreeMap<String, u64>, to: &BTreeMap<String, u64>| {
        to.iter()
            .map(|(k, v)| {
                let delta = v.saturating_sub(from.get(k).copied().unwrap_or(0));
                (k.clone(), delta as f64 / window_s)
            })
            .collect()
    };
    Some(Rates {
        window_s,
        counters: per_s(a.counters, b.counters),
        ops: per_s(a.ops, b.ops),
    })
}

/// What is known about a run apart from what the guest said: the
/// command line of `run`, or what `judge` can tell from a log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub run_id: String,
    /// The run: what the host handed the guest (for `judge`, what the
    /// driver's Hello says it ran). None when neither is known.
    pub spec: Option<RunSpec>,
    /// None when QEMU never ran.
    pub accel: Option<Accel>,
    /// Why that accelerator (requested, cached, fallback after a KVM failure).
    pub accel_note: String,
    /// Program and arguments, exactly as started.
    pub qemu_command: Vec<String>,
    pub qemu_version: String,
    pub host_kernel_release: String,
    pub kernel: String,
    pub initrd: String,
    /// `YYYYmmdd-HHMMSS` UTC.
    pub started_utc: String,
}

/// How the run went on the host side.
#[derive(Debug, Clone)]
pub struct HostSide {
    pub ending: Ending,
    pub stderr_tail: Vec<String>,
    pub boot_s: Option<f64>,
    pub wall_s: f64,
    /// What the host did that the verdict does not show (a boot again after
    /// a QEMU crash): added to the report's warnings.
    pub notes: Vec<String>,
}

/// The driver's Hello echoes the spec it ran; a different one means the
/// report would describe a run that did not happen.
fn spec_mismatch(meta: &RunMeta, hello: Option<&Msg>) -> Option<String> {
    match (hello, &meta.spec) {
        (Some(Msg::Hello { spec: ran, .. }), Some(asked)) if **ran != *asked => Some(format!(
            "the driver ran {} but the host asked for {}",
            serde_json::to_string(ran).unwrap_or_default(),
            serde_json::to_string(asked).unwrap_or_default()
        )),
        _ => None,
    }
}

impl Report {
    /// What decided the verdict; None when clean.
    pub fn found(&self) -> Option<&Finding> {
        self.found.0.as_ref()
    }

    /// Its class; None when clean.
    pub fn class(&self) -> Option<&str> {
        self.found().and_then(Finding::class)
    }

    /// Judges what was seen and puts it all together: the one place both
    /// `run` and `judge` get their verdict from.
    pub fn assemble(meta: RunMeta, scan: &ConsoleScan, msgs: &Messages, host: HostSide) -> Report {
        let j = verdict::judge(scan, msgs, &host.ending);
        let mut warnings: Vec<String> = spec_mismatch(&meta, msgs.hello.as_ref())
            .into_iter()
            .chain(host.notes.iter().cloned())
            .collect();
        if msgs.undecodable > 0 {
            warnings.push(format!(
                "{} protocol lines did not parse (wire version mismatch?)",
                msgs.undecodable
            ));
        }
        let findings = scan.findings();
        let (first, last) = (msgs.first_snapshot(), msgs.last_snapshot());
        let catch = CatchTimes::measure(j.verdict, findings.first(), scan, msgs);
        Report {
            host_tool_version: env!("CARGO_PKG_VERSION").to_string(),
            meta,
            verdict: j.verdict,
            exit_code: j.verdict.exit_code(),
            found: InReport(j.finding),
            reason: j.reason,
            ending: host.ending,
            finding: findings.first().cloned(),
            other_findings: findings.iter().skip(1).cloned().collect(),
            oracles: Oracles::from_messages(msgs),
            booted: scan.booted(),
            powered_off: scan.powered_off(),
            console_lines: scan.lines(),
            hello: msgs.hello.clone(),
            module: msgs.module.clone(),
            events: msgs.events.clone(),
            snapshots: msgs.snapshots.len(),
            first_snapshot: first.cloned(),
            last_snapshot: last.cloned(),
            rates: first.zip(last).and_then(|(a, b)| rates(a, b)),
            result: msgs.result.clone(),
            meets: msgs.meets.clone(),
            meets_progress: msgs.meets_progress.clone(),
            undecodable_wire_lines: msgs.undecodable,
            catch,
            guest_elapsed_s: msgs.guest_elapsed_ms().map(|ms| ms as f64 / 1000.0),
            boot_s: host.boot_s,
            host_wall_s: host.wall_s,
            qemu_stderr_tail: host.stderr_tail,
            warnings,
        }
    }

    /// The scenario that ran: the one the driver's Hello echoed, else the
    /// one the host asked for.
    pub fn scenario(&self) -> Option<&mmrace_proto::spec::Scenario> {
        match &self.hello {
            Some(Msg::Hello { spec, .. }) => Some(&spec.scenario),
            _ => self.meta.spec.as_ref().map(|s| &s.scenario),
        }
    }

    /// The typed result of `exec` and `selftests-mm`, if this run has one.
    pub fn suite(&self) -> Option<&mmrace_proto::results::suite::SuiteResult> {
        match &self.result {
            Some(Msg::Result { data: Some(d), .. }) => d.suite(),
            _ => None,
        }
    }

    /// The typed result of `pairs`, if this run has one.
    pub fn pairs(&self) -> Option<&mmrace_proto::results::pairs::PairsResult> {
        match &self.result {
            Some(Msg::Result { data: Some(d), .. }) => d.pairs(),
            _ => None,
        }
    }

    /// `(ok, message)` of the driver's Result.
    pub fn outcome(&self) -> Option<(bool, &str)> {
        match &self.result {
            Some(Msg::Result { ok, message, .. }) => Some((*ok, message)),
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("reports always serialize");
        s.push('\n');
        s
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::judge::patterns::Blame;
    use crate::judge::scan::NumberedLine;
    use mmrace_proto::results::{ScenarioResult, SmokeResult};
    use mmrace_proto::wire::ProbeState;

    /// The driver's Result of a selftests-mm run that ran `suite`.
    pub fn selftests_result(suite: mmrace_proto::results::suite::SuiteResult) -> Msg {
        Msg::Result {
            t_ms: 1,
            ok: true,
            message: "ok".into(),
            data: Some(Box::new(ScenarioResult::SelftestsMm(Box::new(suite)))),
        }
    }

    fn snap(t_ms: u64, split: u64, writer: u64) -> Msg {
        Msg::Snapshot {
            t_ms,
            counters: [
                ("pmd_split".to_string(), split),
                ("thp_split".to_string(), 3),
            ]
            .into(),
            ops: [("writer".to_string(), writer)].into(),
            tainted: Some(12288),
            mismatches: 0,
        }
    }

    /// A smoke scenario's Result data.
    pub(crate) fn smoke_result(iterations: u64) -> Option<Box<ScenarioResult>> {
        Some(Box::new(ScenarioResult::Smoke(Box::new(SmokeResult {
            iterations,
            nodes: vec![0, 1],
            migrate: true,
            counters: Default::default(),
            vmstat: Default::default(),
            data_oracle: Default::default(),
            inject_point: None,
            op_point: None,
            meets_cells: None,
        }))))
    }

    pub(crate) fn smoke_spec(seed: u64) -> RunSpec {
        RunSpec::new(
            mmrace_proto::spec::Scenario::Smoke(Default::default()),
            seed,
            20,
        )
    }

    /// A report with every field filled in.
    pub(crate) fn sample() -> Report {
        let first = snap(1000, 10, 100);
        let last = snap(3000, 50, 1100);
        Report {
            host_tool_version: "0.1.0".into(),
            meta: RunMeta {
                run_id: "20261122-025807-smoke-s7".into(),
                spec: Some(smoke_spec(7)),
                accel: Some(Accel::Tcg),
                accel_note: "requested".into(),
                qemu_command: vec!["qemu-system-x86_64".into(), "-machine".into(), "pc".into()],
                qemu_version: "QEMU emulator version 10.0.2".into(),
                host_kernel_release: "6.1.0".into(),
                kernel: "/k/bzImage".into(),
                initrd: "/k/initrd".into(),
                started_utc: "20261122-025807".into(),
            },
            verdict: Verdict::KernelProblem,
            exit_code: 1,
            found: InReport(Some(Finding::new(
                "BUG",
                crate::judge::title::Identity::plain("kernel BUG"),
            ))),
            reason: "BUG at console.log:2: kernel BUG at mm/huge_memory.c:3050!".into(),
            ending: Ending::Exited {
                code: Some(0),
                signal: None,
            },
            finding: Some(ConsoleFinding {
                finding: Finding::new("BUG", crate::judge::title::Identity::plain("kernel BUG")),
                blame: Blame::Kernel,
                before: vec![],
                excerpt: vec![NumberedLine {
                    line_no: 2,
                    text: "[    5.000000] kernel BUG at mm/huge_memory.c:3050!".into(),
                }],
            }),
            other_findings: vec![],
            oracles: Oracles {
                taint: mmrace_proto::oracle::TaintReport::from_snapshots([(1000, Some(12288))]),
                ..Oracles::default()
            },
            booted: true,
            powered_off: false,
            console_lines: 40,
            hello: Some(Msg::Hello {
                wire: 1,
                spec: Box::new(smoke_spec(7)),
            }),
            module: Some(Msg::Module {
                version: "0.1.0".into(),
                probes: vec![ProbeState {
                    name: "split_huge_pmd_locked".into(),
                    attached: true,
                    error: String::new(),
                }],
            }),
            events: vec![Msg::Event {
                t_ms: 1500,
                what: "first race".into(),
                detail: String::new(),
            }],
            snapshots: 3,
            rates: rates(&first, &last),
            first_snapshot: Some(first),
            last_snapshot: Some(last),
            result: None,
            meets: Some(mmrace_proto::meets::RunMeets::Counted {
                meets: mmrace_proto::meets::Meets::parse("pmd_split migrate_unmap anon 2 1")
                    .unwrap(),
                ops: vec![],
                dropped: 0,
                sampling: None,
            }),
            meets_progress: vec![mmrace_proto::meets::MeetsPoint {
                t_ms: 10_000,
                met: 1,
                covered: 0,
                meets: 2,
            }],
            undecodable_wire_lines: 0,
            catch: CatchTimes {
                to_catch_s: Some(2.5),
                to_catch_clock: Some(crate::judge::catch::CatchClock::Kernel),
                to_first_race_s: Some(1.5),
            },
            guest_elapsed_s: Some(3.0),
            boot_s: Some(1.25),
            host_wall_s: 6.5,
            qemu_stderr_tail: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn rates_are_delta_over_window() {
        let r = rates(&snap(1000, 10, 100), &snap(3000, 50, 1100)).unwrap();
        assert_eq!(r.window_s, 2.0);
        assert_eq!(r.counters["pmd_split"], 20.0);
        assert_eq!(r.counters["thp_split"], 0.0);
        assert_eq!(r.ops["writer"], 500.0);
        assert_eq!(rates(&snap(1000, 1, 1), &snap(1000, 1, 1)), None);
        // Backwards counters do not produce huge wrapped rates.
        let r = rates(&snap(0, 50, 0), &snap(1000, 10, 0)).unwrap();
        assert_eq!(r.counters["pmd_split"], 0.0);
    }

    #[test]
    fn round_trips_through_json() {
        let r = sample();
        let json = r.to_json();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn assemble_judges_and_flags_hello_mismatch() {
        use mmrace_proto::wire::encode;
        let mut scan = ConsoleScan::new();
        scan.feed_text("[ 0.0] Linux version 7.3.4\n[ 9.0] reboot: Power down\n");
        let mut msgs = Messages::new();
        let hello = sample().hello.unwrap();
        for m in [hello, snap(1000, 10, 100), snap(3000, 50, 1100)] {
            msgs.feed(&encode(&m));
        }
        msgs.feed(&encode(&Msg::Result {
            t_ms: 3100,
            ok: true,
            message: "done".into(),
            data: smoke_result(40),
        }));
        let meta = RunMeta {
            spec: Some(smoke_spec(8)),
            ..RunMeta::default()
        };
        let host = HostSide {
            ending: Ending::Exited {
                code: Some(0),
                signal: None,
            },
            stderr_tail: vec![],
            boot_s: None,
            wall_s: 1.0,
            notes: vec![],
        };
        let r = Report::assemble(meta, &scan, &msgs, host);
        assert_eq!(
            (r.verdict, r.exit_code, r.class()),
            (Verdict::Clean, 0, None)
        );
        assert!(r.booted && r.powered_off);
        assert_eq!(r.snapshots, 2);
        assert_eq!(r.rates.as_ref().unwrap().counters["pmd_split"], 20.0);
        assert_eq!(r.guest_elapsed_s, Some(3.1));
        assert_eq!(r.outcome(), Some((true, "done")));
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("\"seed\":7") && r.warnings[0].contains("\"seed\":8"));
    }

    #[test]
    fn json_uses_readable_names() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["verdict"], "kernel-problem");
        assert_eq!(v["accel"], "tcg");
        assert_eq!(v["ending"]["how"], "exited");
        assert_eq!(v["finding"]["blame"], "kernel");
        // What decided the verdict, as report.json always kept it.
        assert_eq!(
            (&v["class"], &v["identity"]["title"]),
            (&"BUG".into(), &"kernel BUG".into())
        );
        assert_eq!(v["finding"]["class"], "BUG");
        assert_eq!(v["finding"]["title"], "kernel BUG");
        assert_eq!(v["finding"]["excerpt"][0]["line_no"], 2);
        assert_eq!(v["module"]["probes"][0]["name"], "split_huge_pmd_locked");
        assert_eq!(v["rates"]["ops"]["writer"], 500.0);
    }
}
