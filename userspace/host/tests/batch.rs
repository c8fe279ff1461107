//! `mmrace-host batch` and `merge` end to end, with tests/fake-qemu.sh in
//! `by-seed` mode: odd seeds crash, even seeds run clean.

mod common;

use common::*;

/// `mmrace-host batch` for the fake QEMU with seed `seed`.
fn batch(s: &Scratch, seed: u64, extra: &[&str]) -> std::process::Output {
    let seed = seed.to_string();
    std::process::Command::new(BIN)
        .args([
            "batch",
            "--kernel",
            &s.path("bzImage"),
            "--initrd",
            &s.path("initrd"),
        ])
        .args(["--seed", &seed, "--duration", "1"])
        .args(["--results-dir", &s.results().display().to_string()])
        .args(["--qemu-binary", &fake_qemu(), "--accel", "tcg"])
        .env("MMRACE_CACHE", s.path("cache"))
        .env("FAKE_QEMU_MODE", "by-seed")
        .args(extra)
        .arg("smoke")
        .output()
        .unwrap()
}

fn json(path: std::path::PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn batch_merges_runs_with_interval_times_and_exit_1() {
    let s = Scratch::new("batch");
    let o = batch(&s, 7, &["--runs", "5", "--jobs", "2", "--run-id", "b"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(code(&o), 1, "{out}{err}");
    // Seeds 7..=11: 7, 9, 11 crash.
    assert!(
        out.contains("5 runs of smoke: caught 3, missed 2, harness errors 0"),
        "{out}"
    );
    assert!(
        out.contains("catch probability 3/5 = 0.60 [0.23, 0.88]"),
        "{out}"
    );
    assert!(
        out.contains("time to catch 0.8 s [0.8..0.8] (n=3)"),
        "{out}"
    );
    assert!(out.ends_with("caught in 3 of 5 runs (exit 1)\n"), "{out}");
    assert!(
        err.contains("5 runs of smoke, seeds 7..=11, 2 at once"),
        "{err}"
    );
    let d = s.results().join("b");
    let m = json(d.join("merged.json"));
    let seeds: Vec<u64> = m["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [7, 8, 9, 10, 11]);
    assert_eq!(m["runs"][0]["verdict"], "kernel-problem");
    assert_eq!(m["runs"][0]["to_catch_s"], 0.75);
    assert_eq!(m["runs"][0]["to_catch_clock"], "kernel");
    assert_eq!(m["runs"][0]["to_first_race_s"], 0.25);
    assert_eq!(m["runs"][1]["verdict"], "clean");
    assert_eq!(m["catch_probability"]["k"], 3);
    // Every run's own directory, with the seed in the driver's arguments.
    let r = json(d.join("run02-s8/report.json"));
    assert_eq!(r["spec"]["seed"], 8);
    assert_eq!(r["spec"]["scenario"]["name"], "smoke");
    assert_eq!(m["runs"][1]["spec"]["seed"], 8);
    assert!(d.join("run02-s8/host.log").is_file());
    let ktap = std::fs::read_to_string(d.join("results.ktap")).unwrap();
    assert!(
        ktap.starts_with("KTAP version 1\n1..5\n  KTAP version 1\n"),
        "{ktap}"
    );
    assert!(
        ktap.contains("\nnot ok 1 seed_7 # BUG at console.log:"),
        "{ktap}"
    );
    assert!(ktap.contains("\nok 2 seed_8\n"), "{ktap}");
    assert_eq!(
        std::fs::read_link(s.results().join("latest"))
            .unwrap()
            .to_str(),
        Some("b")
    );

    // merge reads the batch back (and a copy elsewhere) to the same figures.
    let copy = s.dir.join("elsewhere/run02-s8");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(d.join("run02-s8/report.json"), copy.join("report.json")).unwrap();
    let o = std::process::Command::new(BIN)
        .args(["merge", "--json", "--out"])
        .arg(s.dir.join("merged"))
        .arg(&d)
        .arg(s.dir.join("elsewhere"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let m: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["runs"].as_array().unwrap().len(), 6);
    assert_eq!(
        (m["caught"].as_u64(), m["missed"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(s.dir.join("merged/results.ktap").is_file());
}

#[test]
fn all_clean_batch_exits_0_and_refuses_a_used_directory() {
    let s = Scratch::new("batch-clean");
    let o = batch(&s, 8, &["--runs", "1", "--run-id", "c"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).ends_with("verdict CLEAN: 1 of 1 runs clean (exit 0)\n"));
    let o = batch(&s, 8, &["--runs", "1", "--run-id", "c"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("already holds results"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn stop_after_catches_starts_no_more_runs() {
    let s = Scratch::new("batch-stop");
    // Seeds 8, 9, 10...: run 2 (seed 9) catches, runs 3..6 never start.
    let o = batch(
        &s,
        8,
        &[
            "--runs",
            "6",
            "--jobs",
            "1",
            "--stop-after-catches",
            "1",
            "--run-id",
            "b",
        ],
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(code(&o), 1, "{out}{err}");
    assert!(out.contains("2 runs of smoke: caught 1, missed 1"), "{out}");
    assert!(err.contains("4 of 6 runs not started: 1 caught"), "{err}");
}

#[test]
fn expect_counts_only_the_title_asked_for() {
    let s = Scratch::new("batch-expect");
    // Seeds 8..=11: 9 and 11 crash with a kernel BUG; a KASAN is expected,
    // so nothing is a catch, --stop-after-catches never fires, and the
    // kernel BUGs are other findings.
    let o = batch(
        &s,
        8,
        &[
            "--runs",
            "4",
            "--jobs",
            "1",
            "--stop-after-catches",
            "1",
            "--expect",
            "^KASAN",
            "--run-id",
            "k",
        ],
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(code(&o), 0, "{out}{err}");
    assert!(out.contains("4 runs of smoke: caught 0, missed 4"), "{out}");
    assert!(
        out.contains("other finding in 2 run(s), not a catch: kernel BUG"),
        "{out}"
    );
    assert!(
        out.ends_with(
            "verdict CLEAN for /^KASAN/: not caught in 4 runs, other findings in 2 (exit 0)\n"
        ),
        "{out}"
    );
    let m = json(s.results().join("k/merged.json"));
    assert_eq!(m["expect"], "^KASAN");
    assert_eq!(m["runs"][1]["other"], true);
    // The title it does cause is a catch, and stops the batch.
    let o = batch(
        &s,
        8,
        &[
            "--runs",
            "4",
            "--jobs",
            "1",
            "--stop-after-catches",
            "1",
            "--expect",
            "^kernel BUG",
            "--run-id",
            "b",
        ],
    );
    let out = text(&o.stdout);
    assert_eq!(code(&o), 1, "{out}");
    assert!(out.contains("2 runs of smoke: caught 1, missed 1"), "{out}");
    // A pattern that is not a regex is a usage error.
    let o = batch(&s, 8, &["--runs", "1", "--expect", "(", "--run-id", "x"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("not a regular expression"),
        "{}",
        text(&o.stderr)
    );
}
