//! Every console log under tests/console/ judged by `mmrace-host judge`,
//! against the verdict and class listed in tests/console/EXPECTED and the
//! title in the log's own `# TITLE:` header line. Real captured logs can be
//! added there with one more EXPECTED line and their header.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A fixture split: its `# ` header lines, and the console after them.
struct Fixture {
    header: Vec<String>,
    /// The console alone, in a scratch file (its line numbers are those
    /// the report's excerpts must carry).
    body: PathBuf,
}

impl Fixture {
    fn open(name: &str) -> Fixture {
        static DIR: OnceLock<PathBuf> = OnceLock::new();
        let dir = DIR.get_or_init(|| {
            let d = std::env::temp_dir().join(format!("mmrace-console-{}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            d
        });
        let bytes = std::fs::read(manifest_dir().join("tests/console").join(name)).unwrap();
        let mut header = Vec::new();
        let mut at = 0;
        while bytes[at..].starts_with(b"# ") {
            let end = bytes[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(bytes.len(), |p| at + p + 1);
            header.push(
                String::from_utf8_lossy(&bytes[at + 2..end])
                    .trim_end()
                    .to_string(),
            );
            at = end;
        }
        let body = dir.join(name);
        std::fs::write(&body, &bytes[at..]).unwrap();
        Fixture { header, body }
    }

    /// The title the header expects (None for "-"); panics without one.
    fn title(&self) -> Option<&str> {
        let t = self
            .header
            .iter()
            .find_map(|l| l.strip_prefix("TITLE: "))
            .expect("every fixture has a # TITLE: line");
        (t != "-").then_some(t)
    }
}

struct Expected {
    file: String,
    verdict: String,
    class: Option<String>,
}

fn expected() -> Vec<Expected> {
    read(manifest_dir().join("tests/console/EXPECTED"))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split_whitespace();
            let file = it.next().unwrap().to_string();
            let verdict = it.next().unwrap().to_string();
            let class = it.collect::<Vec<_>>().join(" ");
            Expected {
                file,
                verdict,
                class: (class != "-").then_some(class),
            }
        })
        .collect()
}

#[test]
fn every_log_is_listed() {
    let dir = manifest_dir().join("tests/console");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log") && !n.ends_with(".wire.log"))
        .collect();
    let listed: BTreeSet<String> = expected().into_iter().map(|e| e.file).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn judge_classifies_each_log() {
    let dir = manifest_dir().join("tests/console");
    for e in expected() {
        let fixture = Fixture::open(&e.file);
        let log = fixture.body.clone();
        let wire = dir.join(e.file.replace(".log", ".wire.log"));
        let mut cmd = Command::new(BIN);
        cmd.arg("judge").arg(&log).arg("--json");
        if wire.exists() {
            cmd.arg("--wire").arg(&wire);
        }
        let out = cmd.output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|err| panic!("{}: {err}: {}", e.file, text(&out.stderr)));
        let want_code = match e.verdict.as_str() {
            "clean" => 0,
            "kernel-problem" | "hang" => 1,
            _ => 2,
        };
        assert_eq!(
            report["verdict"],
            e.verdict.as_str(),
            "{}: {}",
            e.file,
            report["reason"]
        );
        assert_eq!(code(&out), want_code, "{}", e.file);
        assert_eq!(report["exit_code"], want_code, "{}", e.file);
        let title = report["identity"]["title"].as_str();
        assert_eq!(title, fixture.title(), "{}: title", e.file);
        match &e.class {
            None => {
                assert!(
                    report["finding"].is_null(),
                    "{}: {}",
                    e.file,
                    report["finding"]
                );
                assert!(report["class"].is_null(), "{}", e.file);
            }
            Some(class) => {
                assert_eq!(report["class"], class.as_str(), "{}", e.file);
                let f = &report["finding"];
                assert_eq!(f["class"], class.as_str(), "{}", e.file);
                // The console finding carries the same identity.
                assert_eq!(f["title"].as_str(), title, "{}", e.file);
                let sig = f["signature"].as_str().unwrap();
                assert_eq!(sig.len(), 16, "{}", e.file);
                assert_eq!(report["identity"]["signature"], sig, "{}", e.file);
                // The excerpt's line numbers are those of the log itself.
                let lines: Vec<String> = read(&log).lines().map(str::to_string).collect();
                for l in f["excerpt"].as_array().unwrap() {
                    let n = l["line_no"].as_u64().unwrap() as usize;
                    assert_eq!(lines[n - 1], l["text"].as_str().unwrap(), "{}:{n}", e.file);
                }
            }
        }
    }
}

/// `mmrace-host judge --json` of a log under tests/console (without its
/// header).
fn judge_json(name: &str) -> serde_json::Value {
    let log = Fixture::open(name).body;
    let out = Command::new(BIN)
        .arg("judge")
        .arg(&log)
        .arg("--json")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn vm_bug_on_folio_keeps_the_folio_dump_and_lists_the_later_panic() {
    let r = judge_json("vm-bug-on-folio.log");
    let f = &r["finding"];
    assert_eq!(f["excerpt"][0]["line_no"], 17);
    assert_eq!(
        f["excerpt"][1]["text"],
        "[   41.211964] Oops: invalid opcode: 0000 [#1] SMP NOPTI"
    );
    assert_eq!(f["excerpt"].as_array().unwrap().len(), 31);
    let before: Vec<&str> = f["before"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(before
        .iter()
        .any(|l| l.contains("VM_BUG_ON_FOLIO(!folio_test_locked(folio))")));
    // The second register dump's panic is beyond the excerpt: its own entry.
    assert_eq!(r["other_findings"][0]["class"], "panic");
}

#[test]
fn lockdep_report_then_sleep_in_atomic_are_two_findings() {
    // Real text (syzkaller's report 166): PROVE_RCU's report decides, the
    // DEBUG_ATOMIC_SLEEP report 62 lines on is listed after it.
    let r = judge_json("syz-rcu-then-sleep.log");
    assert_eq!(r["finding"]["excerpt"][0]["line_no"], 2);
    assert_eq!(r["other_findings"][0]["class"], "sleep in atomic");
    assert_eq!(r["other_findings"][0]["excerpt"][0]["line_no"], 64);
}

#[test]
fn pagealloc_reports_keep_page_owner_context() {
    // KERNEL_PROFILE=pagealloc turns page_owner on: a bad page state and a
    // page poisoning report carry who allocated (and freed) the page, and
    // the finding's excerpt must keep those lines (real text, see EXPECTED).
    for (log, owner_line, last_stack_line) in [
        (
            "syz-bad-page-state-page-owner.log",
            "page_owner tracks the page as allocated",
            "page last free pid 5083 tgid 5083 stack trace:",
        ),
        (
            "lkml-page-poison-page-owner.log",
            "page_owner tracks the page as freed",
            " migrate_pages+0x16d0/0x1dc0",
        ),
    ] {
        let r = judge_json(log);
        let excerpt: Vec<&str> = r["finding"]["excerpt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["text"].as_str().unwrap())
            .collect();
        for want in [owner_line, last_stack_line] {
            assert!(
                excerpt.iter().any(|l| l.ends_with(want)),
                "{log}: no {want:?} in the excerpt"
            );
        }
    }
}

#[test]
fn judge_summary_names_class_and_lines() {
    let log = Fixture::open("soft-lockup.log").body;
    let out = Command::new(BIN).arg("judge").arg(&log).output().unwrap();
    let s = text(&out.stdout);
    assert!(
        s.starts_with("mmrace: verdict KERNEL PROBLEM: soft lockup (exit 1)\n"),
        "{s}"
    );
    assert!(s.contains("finding soft lockup at console.log:4:"), "{s}");
    assert!(
        s.contains("       4 | [   52.000001] watchdog: BUG: soft lockup"),
        "{s}"
    );
    assert_eq!(code(&out), 1);
}

#[test]
fn judge_of_missing_log_is_a_harness_error() {
    let out = Command::new(BIN)
        .args(["judge", "/nonexistent/console.log"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains("cannot read"));
}

#[test]
fn decoration_does_not_change_the_signature() {
    // The same WARNING from another run: other times, CPU, pid, offsets,
    // addresses. Same title, same signature; another bug, another one.
    let original = judge_json("warning.log");
    let body = std::fs::read_to_string(Fixture::open("warning.log").body).unwrap();
    let other_run = body
        .replace("CPU: 0 PID: 1", "CPU: 1 PID: 4242")
        .replace("+0x6a5/0xa30", "+0x6b1/0xa40")
        .replace("[   12.", "[   97.");
    assert_ne!(body, other_run, "the edits must hit the log");
    let path = std::env::temp_dir().join(format!("mmrace-other-run-{}.log", std::process::id()));
    std::fs::write(&path, other_run).unwrap();
    let out = Command::new(BIN)
        .arg("judge")
        .arg(&path)
        .arg("--json")
        .output()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["identity"], original["identity"]);
    assert_ne!(
        judge_json("vm-bug-on-folio.log")["identity"]["signature"],
        original["identity"]["signature"]
    );
}
