//! Every console log under tests/console/ judged by `mmrace-host judge`,
//! against the verdict and class listed in tests/console/EXPECTED. Real
//! captured logs can be added there with one more EXPECTED line.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::process::Command;

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
        let log = dir.join(&e.file);
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

/// `mmrace-host judge --json` of a log under tests/console.
fn judge_json(name: &str) -> serde_json::Value {
    let log = manifest_dir().join("tests/console").join(name);
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
    let log = manifest_dir().join("tests/console/soft-lockup.log");
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
