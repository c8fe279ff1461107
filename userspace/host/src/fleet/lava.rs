//! `mmrace-host export-lava`: a run, or a batch of seeds, as LAVA test jobs,
//! so a lab that already runs kernel CI on LAVA can spread mmrace's runs
//! over its workers instead of mmrace growing a scheduler. The way back,
//! reading a job log, is [`crate::fleet::lava_log`]'s.
//!
//! A job is LAVA's `qemu` device type: a deploy of the kernel, the
//! initramfs and the guest's `-readconfig` file to tmpfs, a `qemu` boot, and
//! a `monitors` test that watches the console (the guest runs no shell, it
//! only prints and powers off). The guest (two sockets, two NUMA nodes) is
//! [`qemu::guest_config`] of the run's spec, without the virtio console: the
//! driver then writes its protocol lines to the serial console, so the job
//! log holds all of them. The kernel command line, with the run's spec in
//! it, is [`qemu::kernel_append`]. LAVA's qemu device-type template adds
//! `-nographic`, `-m`, `-monitor none`, a NIC and, unless `no_kvm`,
//! `-enable-kvm -cpu host`.
//!
//! Each console line matching a kernel class of [`patterns::PATTERNS`]
//! becomes a failing test case whose measurement is the kernel clock (s) at
//! that line. The exact time to catch (from mmrace.ko's load) is in the
//! report `merge` rebuilds from the job log.
//!
//! The job file is JSON, which is also YAML: LAVA reads it as it is.

use crate::args::{ExportLavaArgs, RunArgs};
use crate::judge::patterns::{Blame, PATTERNS};
use crate::vm::accel::AccelChoice;
use crate::vm::qemu;
use mmrace_proto::spec::RunSpec;
use serde_json::{json, Value};
use std::path::Path;

/// The guest's `-readconfig` file, written next to the jobs and deployed
/// with them.
pub const GUEST_CFG: &str = "guest.cfg";

/// LAVA's own start marker is the driver's Hello (the first protocol line);
/// its end is the kernel's power-off line, or the last line of a panic
/// (`panic=-1` resets at once; x86's panic notifier prints the kernel
/// offset after "Kernel panic - not syncing"). Either way the job completes
/// with its test cases; without the panic end, a caught crash closed the
/// console under the monitor, and LAVA ended the job as an infrastructure
/// error (incomplete), which a lab retries instead of reporting.
pub const MONITOR_START: &str = r#"@@MMRACE@@ \{"type":"hello""#;
pub const MONITOR_END: &str = "reboot: Power down|Kernel Offset: ";

/// A substring as a Python regular expression.
fn re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != ' ' && c != '_' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The monitor's pattern and fixup table: every kernel-blamed substring of
/// the crash-pattern table, captured as both the test case's name and its
/// result (which the fixup table maps to `fail`), and the printk time stamp
/// in front of it as the measurement. (The table's `unless` exclusions are
/// left to `merge`, which judges the log with the whole table.)
pub fn monitor_pattern() -> (String, serde_json::Map<String, Value>) {
    let mut needles: Vec<&str> = PATTERNS
        .iter()
        .filter(|p| p.blame == Blame::Kernel)
        .flat_map(|p| p.any_of.iter().copied())
        .collect();
    // Longest first: a regex alternation takes the first that matches, and
    // `BUG: KASAN:` names a line better than `BUG:`.
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    needles.dedup();
    let alternatives: Vec<String> = needles.iter().map(|n| re_escape(n)).collect();
    let pattern = format!(
        r"\[ *(?P<measurement>\d+\.\d+)\] [^\n]*?(?P<test_case_id>(?P<result>{}))",
        alternatives.join("|")
    );
    let fixups = needles
        .iter()
        .map(|n| (n.to_string(), Value::from("fail")))
        .collect();
    (pattern, fixups)
}

/// QEMU options beyond the readconfig file and what LAVA's qemu device
/// type sets: the machine flags, the serial console, and the accelerator
/// when it is not KVM (with `no_kvm` the template sets none).
fn extra_options(accel: AccelChoice) -> Vec<String> {
    let mut opts: Vec<String> = qemu::MACHINE_FLAGS.iter().map(|f| f.to_string()).collect();
    opts.push("-serial stdio".into());
    if accel == AccelChoice::Tcg {
        let t = crate::vm::accel::Accel::Tcg.qemu_args();
        opts.push(format!("{} {}", t[0], t[1]));
        opts.push(format!("{} {}", t[2], t[3]));
    }
    opts
}

/// `url` for a local file: a `file://` URL, or `base/NAME` when the
/// artifacts are served from elsewhere.
fn artifact_url(base: Option<&str>, file: &Path) -> anyhow::Result<String> {
    match base {
        Some(b) => {
            let name = file
                .file_name()
                .ok_or_else(|| anyhow::anyhow!("{} has no file name", file.display()))?;
            Ok(format!(
                "{}/{}",
                b.trim_end_matches('/'),
                name.to_string_lossy()
            ))
        }
        None => Ok(format!("file://{}", std::fs::canonicalize(file)?.display())),
    }
}

/// Whole minutes, at least one, for LAVA's timeouts.
fn minutes(secs: u64) -> u64 {
    secs.div_ceil(60).max(1)
}

/// The job of one run: `a`'s options, `spec`'s run, the guest file at
/// `guest_cfg`.
pub fn job(
    a: &RunArgs,
    spec: &RunSpec,
    guest_cfg: &Path,
    artifacts: Option<&str>,
) -> anyhow::Result<Value> {
    let boot_s = a.boot_timeout.unwrap_or(crate::args::BOOT_TIMEOUT_TCG);
    let test_s = spec.duration_s + a.hang_timeout + 60;
    let job_s = boot_s + test_s + 300;
    let append = qemu::kernel_append(spec, a.extra_append.as_deref());
    anyhow::ensure!(
        !append.contains('"'),
        "the kernel command line cannot carry '\"' in a LAVA image_arg"
    );
    let (pattern, fixupdict) = monitor_pattern();
    let mut context = json!({
        "arch": "amd64",
        "memory": spec.guest.mem_mib,
        "extra_options": extra_options(a.machine.accel),
    });
    if a.machine.accel == AccelChoice::Tcg {
        context["no_kvm"] = json!(true);
    }
    Ok(json!({
        "device_type": "qemu",
        "job_name": format!("mmrace {}", spec.identity()),
        "visibility": "public",
        "priority": "medium",
        "timeouts": {
            "job": {"minutes": minutes(job_s)},
            "action": {"minutes": minutes(job_s)},
            "connection": {"minutes": 2},
        },
        "metadata": {
            "mmrace.scenario": spec.scenario.name(),
            "mmrace.seed": spec.seed.to_string(),
            "mmrace.duration_s": spec.duration_s.to_string(),
            "mmrace.spec": serde_json::to_string(spec)?,
        },
        "context": context,
        "actions": [
            {"deploy": {
                "to": "tmpfs",
                "timeout": {"minutes": 5},
                "images": {
                    "kernel": {
                        "url": artifact_url(artifacts, a.kernel())?,
                        "image_arg": format!("-kernel {{kernel}} -append \"{append}\""),
                    },
                    "ramdisk": {
                        "url": artifact_url(artifacts, a.initrd())?,
                        "image_arg": "-initrd {ramdisk}",
                    },
                    "guestcfg": {
                        "url": artifact_url(artifacts, guest_cfg)?,
                        "image_arg": "-readconfig {guestcfg}",
                    },
                },
            }},
            {"boot": {
                "method": "qemu",
                "media": "tmpfs",
                "timeout": {"minutes": minutes(boot_s)},
            }},
            {"test": {
                "timeout": {"minutes": minutes(test_s)},
                "monitors": [{
                    "name": format!("mmrace-{}-s{}", spec.scenario.name(), spec.seed),
                    "start": MONITOR_START,
                    "end": MONITOR_END,
                    "pattern": pattern,
                    "fixupdict": fixupdict,
                }],
            }},
        ],
    }))
}

/// A device dictionary for running the jobs with `lava-run` on this
/// machine: what a server renders from LAVA's `qemu.jinja2` for an amd64
/// worker (`no_kvm` as the job's context asks).
pub fn local_device(accel: AccelChoice, mem_mib: u64) -> Value {
    let mut options = vec![];
    if accel != AccelChoice::Tcg {
        options.extend(["-cpu host".to_string(), "-enable-kvm".to_string()]);
    }
    options.extend([
        "-nographic".to_string(),
        format!("-m {mem_mib}"),
        "-monitor none".to_string(),
    ]);
    json!({
        "constants": {
            "posix": {
                "lava_test_sh_cmd": "/bin/sh",
                "lava_test_results_dir": "/lava-%s",
                "lava_test_shell_file": "~/.bashrc",
            },
            "shutdown-message": "The system is going down for reboot NOW",
            "kernel-start-message": "Linux version [0-9]",
            "default-shell-prompt": "lava-test: # ",
            "spawn_maxread": "4092",
            // One attempt: a retried run would be another seed's worth.
            "failure_retry": 1,
            "boot_retry": 1,
        },
        "parameters": {"pass": null},
        "available_architectures": ["amd64", "x86_64"],
        "actions": {
            "deploy": {
                "connections": {"serial": null, "lxc": null},
                "methods": {"image": {"parameters": {"guest": {
                    "size": 512, "interface": "ide", "driveid": "lavatest"
                }}}},
            },
            "boot": {
                "connections": {"serial": null},
                "methods": {"qemu": {"parameters": {
                    "command": "qemu-system-x86_64",
                    "boot_options": {"root": "/dev/sda1", "console": "ttyS0,115200", "boot_order": "c"},
                    "options": options,
                    "extra": extra_options(accel),
                }}},
            },
        },
        "timeouts": {
            "actions": {
                "boot-qemu-image": {"minutes": 2},
                "boot-image-retry": {"minutes": 2},
            },
            "connections": {"lava-test-shell": {"seconds": 10}},
        },
    })
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON values serialize");
    s.push('\n');
    s
}

/// The `export-lava` subcommand; returns the exit code.
pub fn export(args: &ExportLavaArgs) -> i32 {
    let go = || -> anyhow::Result<()> {
        let t = &args.run;
        t.validate()?;
        let base = t.run_spec(crate::vm::run::random_seed())?;
        anyhow::ensure!(
            t.disk.is_none(),
            "--disk: the LAVA export carries no disk image (oom-stall's XFS disk); \
             export scenarios that need none"
        );
        std::fs::create_dir_all(&args.out)?;
        let cfg = args.out.join(GUEST_CFG);
        std::fs::write(&cfg, qemu::guest_config(&base.guest, None, None))?;
        for i in 0..args.runs() {
            let (a, spec) = crate::fleet::batch::run_args(t, &base, &args.out, i);
            let path = args.out.join(format!("job-s{}.yaml", spec.seed));
            std::fs::write(
                &path,
                pretty(&job(&a, &spec, &cfg, args.artifact_url.as_deref())?),
            )?;
            println!("{}", path.display());
        }
        let device = args.out.join("device-qemu-local.yaml");
        std::fs::write(
            &device,
            pretty(&local_device(t.machine.accel, base.guest.mem_mib)),
        )?;
        eprintln!(
            "mmrace: {} LAVA job(s) and {GUEST_CFG} in {}; {} runs them here with lava-run",
            args.runs(),
            args.out.display(),
            device.display()
        );
        Ok(())
    };
    match go() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mmrace: export-lava: {e:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_regex_metacharacters() {
        assert_eq!(re_escape("BUG: KASAN:"), r"BUG\: KASAN\:");
        assert_eq!(re_escape("a.b(c)[d]"), r"a\.b\(c\)\[d\]");
    }

    #[test]
    fn pattern_covers_every_kernel_class_and_no_harness_one() {
        let (p, fix) = monitor_pattern();
        assert!(p.contains("kernel BUG at"), "{p}");
        assert!(!p.contains("Attempted to kill init"), "{p}");
        assert_eq!(fix["kernel BUG at"], "fail");
        assert!(p.starts_with(r"\[ *(?P<measurement>\d+\.\d+)\] "));
        assert!(
            p.find(r"BUG\: KASAN\:").unwrap() < p.find(r"|BUG\:)").unwrap(),
            "{p}"
        );
    }
}
