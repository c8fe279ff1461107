//! Shared by the integration tests: a scratch directory with stand-in
//! kernel and initrd files, and a way to run the built binary.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_mmrace-host");

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fake_qemu() -> String {
    manifest_dir()
        .join("tests/fake-qemu.sh")
        .display()
        .to_string()
}

/// A fresh directory, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("mmrace-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bzImage"), "not a kernel").unwrap();
        std::fs::write(dir.join("initrd"), "not an initrd").unwrap();
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    pub fn results(&self) -> PathBuf {
        self.dir.join("results")
    }

    /// `mmrace-host run` with valid options for the fake QEMU, `extra`
    /// appended (clap refuses repeated options, so callers only add options
    /// not set here), then the scenario `smoke`.
    pub fn run_cmd(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args([
            "run",
            "--kernel",
            &self.path("bzImage"),
            "--initrd",
            &self.path("initrd"),
        ])
        .args(["--seed", "7", "--duration", "1"])
        .args(["--results-dir", &self.results().display().to_string()])
        .args(["--qemu-binary", &fake_qemu(), "--quiet"])
        .env("MMRACE_CACHE", self.path("cache"))
        .env("FAKE_QEMU_PIDS", self.path("pids"))
        .args(extra)
        .arg("smoke");
        c
    }

    pub fn run(&self, extra: &[&str], mode: &str) -> Output {
        self.run_cmd(extra)
            .env("FAKE_QEMU_MODE", mode)
            .output()
            .unwrap()
    }

    pub fn report(&self, run_id: &str) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.results().join(run_id).join("report.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Every pid the fake QEMU recorded is gone (or an unreaped zombie).
    /// A SIGKILLed grandchild needs to be scheduled once to die, which can
    /// take a moment on a loaded machine.
    pub fn assert_fakes_dead(&self) {
        let pids = std::fs::read_to_string(self.dir.join("pids")).unwrap();
        assert!(!pids.trim().is_empty());
        for pid in pids.split_whitespace() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while running(pid) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "fake QEMU process {pid} survived"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running(pid: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    state != Some("Z")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}
