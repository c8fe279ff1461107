//! `mmrace-host hunt` end to end, with tests/fake-qemu.sh in `by-seed`
//! mode: odd seeds crash with the same kernel BUG, even seeds run clean.

mod common;

use common::*;
use std::process::{Command, Output};

/// `mmrace-host hunt` on the fake QEMU in `mode`, its campaign directory
/// `campaign` in the scratch directory.
fn hunt_command(s: &Scratch, campaign: &str, mode: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["hunt", "--campaign", &s.path(campaign)])
        .args([
            "--kernel",
            &s.path("bzImage"),
            "--initrd",
            &s.path("initrd"),
        ])
        .args([
            "--kernel-series",
            "7.3",
            "--duration",
            "1",
            "--accel",
            "tcg",
        ])
        .args(["--qemu-binary", &fake_qemu()])
        .env("MMRACE_CACHE", s.path("cache"))
        .env("FAKE_QEMU_MODE", mode);
    c
}

fn hunt(s: &Scratch, extra: &[&str]) -> Output {
    hunt_command(s, "campaign", "by-seed")
        .args(extra)
        .output()
        .unwrap()
}

fn campaign(s: &Scratch) -> serde_json::Value {
    serde_json::from_str(&read(s.dir.join("campaign/campaign.json"))).unwrap()
}

#[test]
fn finds_dedups_reproduces_minimises_and_resumes() {
    let s = Scratch::new("hunt");
    let o = hunt(
        &s,
        &[
            "--seed",
            "5",
            "--max-runs",
            "6",
            "--jobs",
            "2",
            "--repro-runs",
            "2",
        ],
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(code(&o), 1, "{out}{err}");
    let c = campaign(&s);
    let t = &c["tally"];
    assert_eq!(t["runs"], 6, "{t}");
    // Every crashing run found the same kernel BUG: one finding, its hits
    // the crashing runs.
    let findings = c["findings"].as_object().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let (sig, f) = findings.iter().next().unwrap();
    assert_eq!(f["hits"], t["found"]);
    assert!(
        t["found"].as_u64().unwrap() >= 1 && t["clean"].as_u64().unwrap() >= 1,
        "{t}"
    );
    assert_eq!(f["title"], "kernel BUG");
    assert!(
        err.contains(&format!("new finding {sig}: kernel BUG")),
        "{err}"
    );
    // Its run reproduces every time (same seed); the fake crashes whatever
    // the parties, so minimisation drops all but one.
    let r = &f["repro"];
    assert_eq!(
        (r["estimate"]["k"].as_u64(), r["estimate"]["n"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(r["done"].as_bool().unwrap());
    assert_eq!(r["needed"].as_array().unwrap().len(), 0);
    assert!(r["removed"].as_array().unwrap().len() >= 2, "{r}");
    let repro = read(s.dir.join(format!("campaign/findings/{sig}/REPRODUCER.md")));
    assert!(repro.starts_with("# kernel BUG\n"), "{repro}");
    assert!(
        repro.contains("./mmrace run KERNEL_SERIES=7.3 SCENARIO=thp-race ARGS='"),
        "{repro}"
    );
    assert!(repro.contains("EXPECT='^kernel BUG$'"), "{repro}");
    assert!(
        repro.contains("kernel BUG at mm/huge_memory.c:3050!"),
        "{repro}"
    );
    assert!(s
        .dir
        .join(format!("campaign/findings/{sig}/spec.json"))
        .is_file());
    let html = read(s.dir.join("campaign/report.html"));
    assert!(
        html.contains(sig) && html.contains("REPRODUCER.md"),
        "{html}"
    );
    assert!(out.contains(&format!("  {sig} kernel BUG")), "{out}");

    // Resumed: the next runs are new indices, the finding is the same one.
    let o = hunt(&s, &["--max-runs", "2", "--jobs", "1", "--repro-runs", "2"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("resuming"), "{}", text(&o.stderr));
    let c2 = campaign(&s);
    assert_eq!(c2["tally"]["runs"], 8);
    assert_eq!(c2["done"].as_array().unwrap().len(), 8);
    assert_eq!(c2["findings"].as_object().unwrap().len(), 1);
    assert_eq!(c2["findings"][sig]["hits"], c2["tally"]["found"]);

    // Another seed on the same campaign is refused.
    let o = hunt(&s, &["--seed", "6", "--max-runs", "1"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("holds a campaign with other"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_clean_hunt_exits_0_and_bad_input_2() {
    let s = Scratch::new("hunt-clean");
    let o = Command::new(BIN)
        .args(["hunt", "--campaign", &s.path("c"), "--max-runs", "2"])
        .args([
            "--kernel",
            &s.path("bzImage"),
            "--initrd",
            &s.path("initrd"),
        ])
        .args([
            "--duration",
            "1",
            "--accel",
            "tcg",
            "--qemu-binary",
            &fake_qemu(),
        ])
        .env("MMRACE_CACHE", s.path("cache"))
        .env("FAKE_QEMU_MODE", "clean")
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = hunt(&s, &["--mix", "no-such-scenario", "--max-runs", "1"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("not a scenario of this driver"),
        "{}",
        text(&o.stderr)
    );
    let o = hunt(&s, &["--mix", "oom-stall", "--max-runs", "1"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("--disk-image"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn an_interrupted_campaign_resumes_the_runs_it_cut_short() {
    let s = Scratch::new("hunt-int");
    // Guests that never end: Ctrl-C cuts both runs short, neither is done.
    let child = hunt_command(&s, "c", "chatty")
        .args(["--max-runs", "3", "--jobs", "2", "--seed", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        text(&o.stderr).contains("hunt interrupted"),
        "{}",
        text(&o.stderr)
    );
    let c: serde_json::Value = serde_json::from_str(&read(s.dir.join("c/campaign.json"))).unwrap();
    assert_eq!(c["done"].as_array().unwrap().len(), 0, "{c}");
    assert_eq!(c["tally"]["runs"], 0);
    // Resumed on guests that finish: the same three runs, the two cut
    // short again from the start.
    let o = hunt_command(&s, "c", "clean")
        .args(["--max-runs", "3", "--jobs", "2"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let c: serde_json::Value = serde_json::from_str(&read(s.dir.join("c/campaign.json"))).unwrap();
    assert_eq!(c["done"], serde_json::json!([0, 1, 2]));
    assert_eq!(c["tally"]["clean"], 3);
}
