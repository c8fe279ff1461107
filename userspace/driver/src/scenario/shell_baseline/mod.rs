//! `shell-baseline`: seed 000's own reproducer, run as the seed ran it, as
//! the baseline (a) of `make bench`. The driver starts `bench/seed-baseline.sh`
//! under busybox sh (thp_alloc as the writer, numactl's `migratepages`, the
//! clear_refs and splitter loops, the kill/restart cycle: see the script)
//! and only watches: it sums the op counts the script's loops leave in a
//! directory into `ctx.op(..)`, timestamps the first `pmd_race`, and at the
//! end reports the same figures as thp-race (counter and vmstat deltas,
//! cross-checks, ops per second).
//!
//! The initramfs of `make bench` carries the script, thp_alloc, busybox and
//! migratepages with its libraries; the default paths are theirs.

use super::thp_race::{monitor, report};
use crate::child::{describe, GroupChild};
use crate::ctx::Ctx;
use anyhow::{bail, Context, Result};
use mmrace_proto::counters::name;
use mmrace_proto::results::thp_race::{Parties, ShellBaselineResult, ShellBaselineSettings};
pub use mmrace_proto::spec::shell_baseline::Args;
use mmrace_proto::wire::EVENT_FIRST_RACE;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The parties whose counts the script writes (`PARTY.GEN` files, and
/// `kills` for the writer restarts).
pub const PARTIES: [&str; 4] = ["clear_refs", "migrate", "splitter", "kills"];

/// The writer's mapping in the seed: 20 MiB at 0x700000000000.
const SPLIT_RANGE: &str = "0x700000000000,0x700001400000";

/// Sums the counts in `dir`: `PARTY.GEN` files (one per loop instance) and
/// the `kills` file. Unreadable or half-written files count as 0 this time.
pub fn read_ops(dir: &Path) -> BTreeMap<String, u64> {
    let mut ops: BTreeMap<String, u64> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return ops;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let party = name.split('.').next().unwrap_or("");
        if !PARTIES.contains(&party) {
            continue;
        }
        let n: u64 = std::fs::read_to_string(e.path())
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        *ops.entry(party.to_string()).or_default() += n;
    }
    ops
}

fn need_file(what: &str, p: &Path) -> Result<()> {
    if !p.is_file() {
        bail!(
            "shell-baseline: no {what} at {} (the initramfs of `make bench` has it)",
            p.display()
        );
    }
    Ok(())
}

/// The script's process, leader of its own process group (so the writer
/// and every loop can be killed at once), output to the log.
fn spawn_script(
    shell: &Path,
    script: &Path,
    env: &[(&str, String)],
    log: &Path,
) -> Result<GroupChild> {
    let log =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let null = std::fs::File::open("/dev/null").context("cannot open /dev/null")?;
    let argv = [shell, script].map(|p| p.display().to_string());
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    GroupChild::spawn(
        &argv,
        &env,
        None,
        [null.as_raw_fd(), null.as_raw_fd(), log.as_raw_fd()],
    )
    .context("shell-baseline")
}

/// Milliseconds since `t0`.
fn ms(t0: Instant) -> u64 {
    t0.elapsed().as_millis() as u64
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<ShellBaselineResult> {
    need_file("shell", &a.shell)?;
    need_file("script", &a.script)?;
    need_file("writer", &a.writer)?;
    let (node_a, node_b) = crate::numa::validate_pair(
        &a.nodes,
        &crate::numa::online_nodes()?,
        super::thp_race::parties::NODES_FIX,
    )?;
    if !a.no_splitter {
        super::thp_race::parties::check_splitter(super::thp_race::parties::SPLIT_PATH)?;
    }
    let counters_start = crate::counters::read_reported();
    let vmstat_start = crate::vmstat::read()?;

    let dir = PathBuf::from(format!("/tmp/mmrace-shell-baseline.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let ops_dir = dir.join("ops");
    std::fs::create_dir_all(&ops_dir)
        .with_context(|| format!("cannot create {}", ops_dir.display()))?;
    let stop_file = dir.join("stop");
    let log_path = dir.join("script.log");

    let env = [
        ("PATH", "/bin:/usr/bin:/sbin:/usr/sbin".to_string()),
        ("OPS_DIR", ops_dir.display().to_string()),
        ("STOP_FILE", stop_file.display().to_string()),
        ("WRITER", a.writer.display().to_string()),
        ("SEED", (ctx.seed % 32768).to_string()),
        ("NODE_A", node_a.to_string()),
        ("NODE_B", node_b.to_string()),
        (
            "SPLITTER",
            if a.no_splitter { "0" } else { "1" }.to_string(),
        ),
        ("SPLIT_RANGE", SPLIT_RANGE.to_string()),
    ];
    let t0 = Instant::now();
    let mut child = spawn_script(&a.shell, &a.script, &env, &log_path)?;
    ctx.say(format!(
        "shell-baseline: {} {} running as pid {} (nodes {node_a},{node_b}, splitter {})",
        a.shell.display(),
        a.script.display(),
        child.pid,
        if a.no_splitter { "off" } else { "on" }
    ));

    let start_map = counters_start.clone().unwrap_or_default();
    let mut watches = [
        monitor::Watch::new(name::PMD_RACE, EVENT_FIRST_RACE, &start_map),
        monitor::Watch::new(name::THP_SPLIT_FAILED, "first_thp_split_failed", &start_map),
    ];
    let fold = |ops: &BTreeMap<String, u64>| {
        for (k, v) in ops {
            ctx.op(k).store(*v, Ordering::Relaxed);
        }
    };
    let mut early_exit = None;
    monitor::run(
        ctx,
        "shell-baseline",
        t0,
        || fold(&read_ops(&ops_dir)),
        || {
            counters_start
                .is_ok()
                .then(|| crate::counters::read().ok())
                .flatten()
        },
        &mut watches,
        || {
            early_exit = child.try_wait().map(describe);
            early_exit.is_some()
        },
    );
    let elapsed_ms = ms(t0);
    // The race window ends here: the stop file, then the script's own end.
    let _ = std::fs::write(&stop_file, "");
    let grace = Duration::from_secs(a.stop_grace);
    let stopping = Instant::now();
    let mut status = None;
    while stopping.elapsed() < grace {
        if let Some(st) = child.try_wait() {
            status = Some(st);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = status.is_none();
    child.kill_group();
    let status = describe(status.unwrap_or_else(|| child.wait()));
    let ops = read_ops(&ops_dir);
    fold(&ops);
    if let Some(how) = &early_exit {
        let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(5).collect();
        bail!("shell-baseline: the script ended on its own after {elapsed_ms} ms ({how}); its stderr ends with {tail:?}");
    }

    let deltas = report::Deltas::measure(ctx, "shell-baseline", &counters_start, &vmstat_start)?;
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let stderr_lines = log_text.lines().count();
    let mut stderr_kinds: BTreeMap<String, u64> = BTreeMap::new();
    for l in log_text.lines() {
        *stderr_kinds.entry(l.trim().to_string()).or_default() += 1;
    }
    ctx.say(format!(
        "shell-baseline: {elapsed_ms} ms, ops {ops:?}, script {status}{}, first pmd_race {:?} ms",
        if killed {
            " (SIGKILLed after the grace time)"
        } else {
            ""
        },
        watches[0].first_ms
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ShellBaselineResult {
        settings: ShellBaselineSettings {
            seed: ctx.seed,
            shell_random_seed: ctx.seed % 32768,
            script: a.script.clone(),
            shell: a.shell.clone(),
            writer: a.writer.clone(),
            nodes: [node_a, node_b],
            parties: Parties {
                writer: true,
                clear_refs: true,
                migrate: true,
                splitter: !a.no_splitter,
                racers: false,
                refault: false,
                kill: true,
                ..Parties::default()
            },
            split_range: SPLIT_RANGE.to_string(),
            thp_mode: crate::mm::thp_mode(),
        },
        elapsed_ms,
        rates: report::rates(&ops, elapsed_ms),
        ops,
        script_exit: status,
        script_killed: killed,
        script_stderr_lines: stderr_lines as u64,
        script_stderr: stderr_kinds.into_iter().take(10).collect(),
        first_pmd_race_ms: watches[0].first_ms,
        first_thp_split_failed_ms: watches[1].first_ms,
        measurement: deltas.record(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_loop_files_per_party() {
        let d = std::env::temp_dir().join(format!("mmrace-sb-test.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [
            ("clear_refs.1", "10\n"),
            ("clear_refs.2", "5\n"),
            ("migrate.1", "3\n"),
            ("kills", "2\n"),
            ("splitter.3", ""),
            ("other.1", "99\n"),
        ] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let ops = read_ops(&d);
        assert_eq!(ops["clear_refs"], 15);
        assert_eq!(ops["migrate"], 3);
        assert_eq!(ops["kills"], 2);
        assert_eq!(ops["splitter"], 0);
        assert!(!ops.contains_key("other"));
        std::fs::remove_dir_all(&d).unwrap();
        assert!(read_ops(&d).is_empty());
    }
}
