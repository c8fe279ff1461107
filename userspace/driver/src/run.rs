//! One invocation, start to finish. For a scenario: banner, Hello, module
//! check, Module, first Snapshot, (crash test), the scenario under the
//! streamer, final Snapshot, Meets, Result. Every path after Hello ends with a
//! Result message, so the host never has to guess why a run stopped.
//!
//! Exit codes: 0 ok, 1 the run failed (the Result says why), 2 usage.

use crate::cli::{Cli, Command};
use crate::ctx::Ctx;
use crate::output::Output;
use crate::{counters, meets, module, numa, scenario, signals, stream, sysinfo};
use anyhow::{anyhow, bail, Context, Result};
use mmrace_proto::results::ScenarioResult;
use mmrace_proto::spec::{CrashTest, RunSpec};
use mmrace_proto::wire::{Msg, WIRE_VERSION};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// Runs the parsed command line, sending protocol lines to `out`; returns
/// the exit code.
pub fn run(cli: &Cli, out: Output) -> i32 {
    match &cli.command {
        Command::Scenario(scenario) => run_spec(&cli.spec(scenario), cli.module.as_deref(), out),
        Command::RunSpec { file } => match read_spec(file) {
            Ok(spec) => run_spec(&spec, cli.module.as_deref(), out),
            Err(e) => {
                eprintln!("mmrace-driver: {e:#}");
                EXIT_USAGE
            }
        },
        Command::Counters => utility(cli, || {
            print!("{}", counters::table(&counters::read()?));
            Ok(())
        }),
        Command::Reset => utility(cli, || {
            counters::reset()?;
            println!("mmrace counters reset");
            Ok(())
        }),
    }
}

/// `counters` and `reset`: plain output for a person at a test machine.
fn utility(cli: &Cli, f: impl FnOnce() -> Result<()>) -> i32 {
    match module::prepare(cli.module.as_deref()).and_then(|_| f()) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("mmrace-driver: {e:#}");
            EXIT_FAILED
        }
    }
}

/// A RunSpec from a JSON file.
fn read_spec(path: &Path) -> Result<RunSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a RunSpec", path.display()))
}

fn banner(ctx: &Ctx, spec: &RunSpec) {
    let nodes = std::fs::read_to_string(numa::ONLINE_PATH)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "0 (no NUMA)".into());
    ctx.say(format!(
        "mmrace-driver {}: scenario {}, seed {}, duration {}s, kernel {}, online nodes {}",
        env!("CARGO_PKG_VERSION"),
        spec.scenario.name(),
        spec.seed,
        spec.duration_s,
        sysinfo::kernel_release(),
        nodes
    ));
}

/// Runs `spec`, loading `module` first if given; returns the exit code.
pub fn run_spec(spec: &RunSpec, module: Option<&Path>, out: Output) -> i32 {
    let ctx = Ctx::new(spec.seed, Duration::from_secs(spec.duration_s), out);
    if let Err(e) = signals::stop_on_signals(&ctx.stop) {
        ctx.say(format!(
            "cannot catch SIGTERM/SIGINT ({e}): they will kill the run unreported"
        ));
    }
    banner(&ctx, spec);
    ctx.out.msg(&Msg::Hello {
        wire: WIRE_VERSION,
        spec: Box::new(spec.clone()),
    });
    let result = module_then_scenario(spec, module, &ctx);
    finish(&ctx, result)
}

fn module_then_scenario(
    spec: &RunSpec,
    module_path: Option<&Path>,
    ctx: &Ctx,
) -> Result<ScenarioResult> {
    let info = module::prepare(module_path)?;
    ctx.say(format!(
        "mmrace.ko {}: {}/{} probes attached",
        info.version,
        info.probes.len() - info.failed_probes().count(),
        info.probes.len()
    ));
    for p in info.failed_probes() {
        ctx.say(format!("probe {} failed: {}", p.name, p.error));
    }
    ctx.out.msg(&Msg::Module {
        version: info.version.clone(),
        probes: info.probes.clone(),
    });
    let first = stream::send_snapshot(ctx, &AtomicBool::new(false));
    match spec.crash_test {
        Some(CrashTest::Sysrq) => return Err(crash_sysrq(ctx)),
        Some(CrashTest::Hang) => go_silent(ctx),
        None => {}
    }
    if !spec.scenario.meets_alias() {
        meets::set_alias(false)?;
        ctx.say("meets: alias overlaps not counted (--meets-no-alias)");
    }
    let baseline = meets::Baseline::take(spec.scenario.meets_plan(), ctx.duration);
    let interval = Duration::from_millis(spec.interval_ms);
    let reload_from = match (spec.reload_module, module_path) {
        (0, _) => None,
        (_, Some(path)) => Some(path),
        (_, None) => bail!("--reload-module needs --module PATH (the module to reload)"),
    };
    let done = AtomicBool::new(false);
    let outcome = stream::with_streamer(ctx, interval, first, || {
        std::thread::scope(|s| {
            s.spawn(|| baseline.stream_progress(ctx, &done));
            let reloader = reload_from
                .map(|path| s.spawn(move || crate::reload::cycle(ctx, path, spec.reload_module)));
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                scenario::run(ctx, &spec.scenario)
            }));
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(Ok(Err(e))) = reloader.map(|r| r.join()) {
                return Ok(Err(e.context("--reload-module")));
            }
            run
        })
    });
    send_meets(ctx, baseline);
    outcome.unwrap_or_else(|panic| Err(anyhow!("scenario panicked: {}", panic_text(&*panic))))
}

/// The run's meets, or why there are none, for the host's report.
fn send_meets(ctx: &Ctx, baseline: meets::Baseline) {
    let meets = baseline.finish();
    if let mmrace_proto::meets::RunMeets::Absent { why } = &meets {
        ctx.say(format!("meets: none in this run: {why}"));
    }
    ctx.out.msg(&Msg::Meets {
        t_ms: ctx.elapsed_ms(),
        meets,
    });
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".into())
}

/// Crashes the kernel on purpose. Returns only if the crash did not happen.
/// `--crash-test hang`: blocks forever with no output on either channel.
fn go_silent(ctx: &Ctx) -> ! {
    ctx.say("--crash-test hang: going silent ON PURPOSE; the host must declare a hang");
    ctx.event("crash_test", "hang");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn crash_sysrq(ctx: &Ctx) -> anyhow::Error {
    ctx.say("--crash-test sysrq: crashing the kernel ON PURPOSE now (echo c > /proc/sysrq-trigger); the oops that follows is intentional");
    ctx.event("crash_test", "sysrq c");
    // The trigger file ignores the sysrq mask, but set it anyway for
    // kernels that restrict it; a kernel without /proc/sys is fine.
    let _ = crate::kfile::write("/proc/sys/kernel/sysrq", "1\n");
    // SAFETY: sync has no preconditions; it keeps a test machine's disks sane.
    unsafe { libc::sync() };
    match crate::kfile::write("/proc/sysrq-trigger", "c") {
        Ok(()) => anyhow!(
            "--crash-test sysrq: wrote c to /proc/sysrq-trigger but the kernel did not crash"
        ),
        Err(e) => anyhow!(
            "--crash-test sysrq: cannot write /proc/sysrq-trigger: {e} (CONFIG_MAGIC_SYSRQ?)"
        ),
    }
}

/// Sends the Result and prints the end line; returns the exit code.
fn finish(ctx: &Ctx, result: Result<ScenarioResult>) -> i32 {
    let secs = ctx.elapsed_ms() as f64 / 1000.0;
    let (ok, message, data, code) = match result {
        Ok(data) => (true, "ok".to_string(), Some(Box::new(data)), EXIT_OK),
        Err(e) => (false, format!("{e:#}"), None, EXIT_FAILED),
    };
    ctx.out.msg(&Msg::Result {
        t_ms: ctx.elapsed_ms(),
        ok,
        message: message.clone(),
        data,
    });
    if ok {
        ctx.say(format!("result: ok after {secs:.1}s (seed {})", ctx.seed));
    } else {
        ctx.say(format!(
            "result: FAILED after {secs:.1}s (seed {}): {message}",
            ctx.seed
        ));
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn messages(lines: &[String]) -> Vec<Msg> {
        lines
            .iter()
            .filter_map(|l| mmrace_proto::wire::decode(l))
            .collect()
    }

    #[test]
    fn missing_module_still_ends_with_a_result() {
        if std::path::Path::new(module::SYSFS_MODULE_DIR).exists() {
            return; // a machine with mmrace.ko loaded: nothing to test here
        }
        let cli = Cli::try_parse_from(["mmrace-driver", "--seed", "3", "--duration", "1", "smoke"])
            .unwrap();
        let (out, lines) = Output::memory();
        assert_eq!(run(&cli, out), EXIT_FAILED);
        let msgs = messages(&lines());
        assert!(
            matches!(&msgs[0], Msg::Hello { spec, .. } if spec.seed == 3 && spec.duration_s == 1 && spec.scenario.name() == "smoke")
        );
        let Some(Msg::Result {
            ok: false, message, ..
        }) = msgs.last()
        else {
            panic!("{msgs:?}")
        };
        assert!(message.contains("not loaded"), "{message}");
    }

    #[test]
    fn panic_payloads() {
        assert_eq!(panic_text(&"boom"), "boom");
        assert_eq!(panic_text(&String::from("bang")), "bang");
        assert_eq!(panic_text(&3), "(non-string panic payload)");
    }
}
