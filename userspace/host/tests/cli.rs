//! `mmrace-host run` end to end, with tests/fake-qemu.sh standing in for
//! QEMU: argument checks, the verdicts, the result files, the KVM fallback
//! and its cache, and killing the guest on hang and on Ctrl-C.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn bad_arguments_exit_2_before_anything_starts() {
    let s = Scratch::new("usage");
    for (extra, needle) in [
        (&["--cpus", "3"][..], "--cpus 3"),
        (&["--mem-mib", "0"][..], "--mem-mib 0"),
        (&["--accel", "xen"][..], "xen"),
    ] {
        let o = s.run(extra, "clean");
        assert_eq!(code(&o), 2, "{extra:?}");
        assert!(
            text(&o.stderr).contains(needle),
            "{extra:?}: {}",
            text(&o.stderr)
        );
    }
    let o = std::process::Command::new(BIN)
        .args([
            "run",
            "--kernel",
            "/nonexistent/bzImage",
            "--initrd",
            &s.path("initrd"),
        ])
        .args(["--seed", "1", "--duration", "1"])
        .args(["--results-dir", &s.results().display().to_string()])
        .arg("smoke")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("--kernel /nonexistent/bzImage is not a readable file"));
    assert!(!s.results().exists(), "no run directory for a usage error");
}

#[test]
fn clean_run_writes_report_ktap_and_latest() {
    let s = Scratch::new("clean");
    let o = s.run(
        &["--accel", "tcg", "--run-id", "r1", "--cpus", "4"],
        "clean",
    );
    let out = text(&o.stdout);
    assert_eq!(code(&o), 0, "{out}{}", text(&o.stderr));
    assert!(out.starts_with("mmrace: verdict CLEAN (exit 0)\n"), "{out}");
    assert!(out.contains("mmrace: accelerator tcg (requested)"), "{out}");
    assert!(
        out.contains("  pmd_split             40         20.0\n"),
        "{out}"
    );
    assert!(text(&o.stderr).contains("mmrace: accelerator tcg (requested)"));

    let r = s.report("r1");
    assert_eq!(r["verdict"], "clean");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["accel"], "tcg");
    assert_eq!(
        (
            r["spec"]["scenario"]["name"].as_str(),
            r["spec"]["seed"].as_u64(),
            r["spec"]["duration_s"].as_u64(),
            r["spec"]["guest"]["cpus"].as_u64()
        ),
        (Some("smoke"), Some(7), Some(1), Some(4))
    );
    assert_eq!(r["hello"]["spec"], r["spec"], "the driver echoes the spec");
    assert_eq!(r["warnings"].as_array().map(Vec::len), Some(0));
    let cfg = std::fs::read_to_string(s.results().join("r1/guest.cfg")).unwrap();
    assert!(
        cfg.contains("  cpus = \"4\"\n  sockets = \"2\"\n  cores = \"2\"\n"),
        "{cfg}"
    );
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.results().join("r1/spec.json")).unwrap())
            .unwrap();
    assert_eq!(spec, r["spec"]);
    assert_eq!(r["result"]["message"], "smoke passed");
    assert_eq!(r["result"]["data"]["scenario"], "smoke");
    assert_eq!(r["result"]["data"]["iterations"], 40);
    assert_eq!(r["module"]["probes"][0]["attached"], true);
    assert_eq!(r["first_snapshot"]["t_ms"], 0);
    assert_eq!(r["last_snapshot"]["counters"]["pmd_split"], 40);
    assert_eq!(r["rates"]["ops"]["writer"], 450.0);
    assert_eq!(r["guest_elapsed_s"], 2.05);
    assert!(r["powered_off"].as_bool().unwrap());
    let cmd: Vec<&str> = r["qemu_command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd[0], fake_qemu());
    assert!(cmd.iter().any(|a| a.ends_with("/r1/guest.cfg")), "{cmd:?}");
    assert!(cmd.iter().any(|a| a.contains(" mmrace.spec=")), "{cmd:?}");

    let dir = s.results().join("r1");
    assert_eq!(
        read(dir.join("results.ktap")),
        "KTAP version 1\n1..7\nok 1 guest_booted\nok 2 module_loaded\n\
         ok 3 scenario_completed\nok 4 no_kernel_finding\nok 5 no_hang\n\
         ok 6 no_data_corruption\nok 7 no_new_taint\n"
    );
    assert!(read(dir.join("console.log")).ends_with("[    2.600000] reboot: Power down\n"));
    assert!(read(dir.join("wire.log")).contains("\"type\":\"result\""));
    assert_eq!(
        std::fs::read_link(s.results().join("latest")).unwrap(),
        std::path::Path::new("r1")
    );

    // A run id is never reused.
    let o = s.run(&["--accel", "tcg", "--run-id", "r1"], "clean");
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("already holds a run"));
}

#[test]
fn crash_is_a_kernel_problem_with_excerpt_and_last_counters() {
    let s = Scratch::new("crash");
    let o = s.run(&["--accel", "tcg", "--run-id", "c"], "crash");
    let out = text(&o.stdout);
    assert_eq!(code(&o), 1, "{out}");
    assert!(
        out.starts_with("mmrace: verdict KERNEL PROBLEM: BUG (exit 1)\n"),
        "{out}"
    );
    assert!(out.contains("finding BUG at console.log:4:\n"), "{out}");
    assert!(out.contains("  pmd_split             25"), "{out}");
    let r = s.report("c");
    assert_eq!(r["class"], "BUG");
    assert_eq!(r["finding"]["excerpt"][0]["line_no"], 4);
    assert_eq!(r["finding"]["excerpt"].as_array().unwrap().len(), 3);
    assert!(r["result"].is_null());
    let ktap = read(s.results().join("c/results.ktap"));
    assert!(
        ktap.contains("\nnot ok 3 scenario_completed # no Result from the driver"),
        "{ktap}"
    );
    let title = r["identity"]["title"].as_str().unwrap();
    assert!(title.starts_with("kernel BUG"), "{title}");
    assert!(
        ktap.contains(&format!(
            "\nnot ok 4 no_kernel_finding # {title}: BUG at console.log:4: "
        )),
        "{ktap}"
    );
    assert!(ktap.contains("\nok 5 no_hang\n"), "{ktap}");
}

#[test]
fn silent_guest_is_a_hang_and_is_killed() {
    let s = Scratch::new("hang");
    let t = Instant::now();
    let o = s.run(
        &["--accel", "tcg", "--run-id", "h", "--hang-timeout", "1"],
        "hang",
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert!(t.elapsed() < Duration::from_secs(20));
    assert!(text(&o.stdout).starts_with("mmrace: verdict HANG: hang (exit 1)\n"));
    let r = s.report("h");
    assert_eq!(r["verdict"], "hang");
    assert_eq!(r["ending"]["how"], "silent");
    assert!(read(s.results().join("h/results.ktap"))
        .contains("not ok 5 no_hang # no output on either console for 1 s: QEMU killed\n"));
    s.assert_fakes_dead();
}

#[test]
fn auto_falls_back_to_tcg_and_remembers() {
    let s = Scratch::new("auto");
    std::fs::write(s.dir.join("kvm"), "").unwrap();
    let log = s.path("qemu-starts");
    let run = |id: &str| {
        s.run_cmd(&[
            "--accel",
            "auto",
            "--run-id",
            id,
            "--kvm-device",
            &s.path("kvm"),
        ])
        .env("FAKE_QEMU_MODE", "kvm-broken")
        .env("FAKE_QEMU_LOG", &log)
        .output()
        .unwrap()
    };
    let o = run("a1");
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(read(&log), "accel=kvm\naccel=tcg,thread=multi\n");
    let r = s.report("a1");
    assert_eq!(r["accel"], "tcg");
    let note = r["accel_note"].as_str().unwrap();
    assert!(note.contains("KVM failed: KVM internal error"), "{note}");
    assert!(text(&o.stderr).contains("fell back to TCG"));
    assert!(s.results().join("a1/kvm-probe-qemu-stderr.log").exists());
    let cached: Vec<_> = std::fs::read_dir(s.dir.join("cache")).unwrap().collect();
    assert_eq!(cached.len(), 1);
    let entry = cached[0].as_ref().unwrap();
    assert!(entry.file_name().to_string_lossy().starts_with("accel-"));
    assert_eq!(read(entry.path()), "tcg\n");
    s.assert_fakes_dead();

    // The second run goes straight to TCG.
    std::fs::remove_file(&log).unwrap();
    let o = run("a2");
    assert_eq!(code(&o), 0);
    assert_eq!(read(&log), "accel=tcg,thread=multi\n");
    assert!(s.report("a2")["accel_note"]
        .as_str()
        .unwrap()
        .contains("failed on this host before"));
}

#[test]
fn auto_without_kvm_device_uses_tcg_directly() {
    let s = Scratch::new("nokvm");
    let log = s.path("qemu-starts");
    let o = s
        .run_cmd(&["--run-id", "n", "--kvm-device", "/nonexistent/kvm"])
        .env("FAKE_QEMU_MODE", "clean")
        .env("FAKE_QEMU_LOG", &log)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    assert_eq!(read(&log), "accel=tcg,thread=multi\n");
    assert!(
        !s.dir.join("cache").exists(),
        "nothing probed, nothing cached"
    );
}

#[test]
fn ctrl_c_kills_the_guest_and_still_reports() {
    let s = Scratch::new("sigint");
    let child = s
        .run_cmd(&["--accel", "tcg", "--run-id", "i"])
        .env("FAKE_QEMU_MODE", "chatty")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let console = s.results().join("i/console.log");
    let t = Instant::now();
    while std::fs::read_to_string(&console)
        .map(|c| c.lines().count())
        .unwrap_or(0)
        < 5
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the fake guest never printed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o.stdout));
    let r = s.report("i");
    assert_eq!(
        (r["verdict"].as_str(), r["class"].as_str()),
        (Some("harness-error"), Some("interrupted"))
    );
    assert_eq!(r["ending"]["how"], "interrupted");
    s.assert_fakes_dead();
}

#[test]
fn missing_qemu_is_a_harness_error_with_a_report() {
    let s = Scratch::new("noqemu");
    let mut cmd = std::process::Command::new(BIN);
    cmd.args([
        "run",
        "--kernel",
        &s.path("bzImage"),
        "--initrd",
        &s.path("initrd"),
    ])
    .args(["--seed", "1", "--duration", "1"])
    .args([
        "--results-dir",
        &s.results().display().to_string(),
        "--run-id",
        "q",
    ])
    .args([
        "--accel",
        "tcg",
        "--qemu-binary",
        "/nonexistent/qemu-system-x86_64",
    ])
    .arg("smoke");
    let o = cmd.output().unwrap();
    assert_eq!(code(&o), 2);
    let r = s.report("q");
    assert_eq!(r["class"], "qemu-failed");
    assert!(r["reason"]
        .as_str()
        .unwrap()
        .contains("/nonexistent/qemu-system-x86_64"));
}
