//! `mmrace-host judge`: the verdict of an existing console log, from a past
//! run or a real machine's serial console, by the same scanner, message
//! collector and rules as a live run ([`Report::assemble`]).

use crate::args::JudgeArgs;
use crate::judge::scan::ConsoleScan;
use crate::judge::verdict::Ending;
use crate::out::report::{HostSide, Report, RunMeta};
use crate::out::summary;
use crate::vm::messages::Messages;
use crate::vm::monitor::LineSplitter;
use mmrace_proto::wire::Msg;
use std::path::Path;

/// The lines of a log, split exactly as the live monitor splits a stream.
fn log_lines(path: &Path) -> std::io::Result<Vec<String>> {
    let bytes = std::fs::read(path)?;
    let mut split = LineSplitter::default();
    let mut lines = split.push(&bytes);
    lines.extend(split.finish());
    Ok(lines)
}

/// Judges the logs; protocol lines are taken from the console too, since on
/// a real machine the driver writes them to its stdout.
pub fn judge_logs(console: &Path, wire: Option<&Path>) -> std::io::Result<Report> {
    let wire = match wire {
        Some(w) => log_lines(w)?,
        None => Vec::new(),
    };
    Ok(judge_lines(
        &console.display().to_string(),
        &log_lines(console)?,
        &wire,
    ))
}

/// Judges console lines (and separate protocol lines, if any); `name`
/// becomes the run id.
pub fn judge_lines(name: &str, console: &[String], wire: &[String]) -> Report {
    let mut scan = ConsoleScan::new();
    let mut msgs = Messages::new();
    for line in console {
        scan.feed(line);
        msgs.feed(line);
    }
    for line in wire {
        msgs.feed(line);
    }
    let mut meta = RunMeta {
        run_id: name.to_string(),
        ..RunMeta::default()
    };
    if let Some(Msg::Hello { spec, .. }) = &msgs.hello {
        meta.spec = Some((**spec).clone());
    }
    let host = HostSide {
        ending: Ending::LogEnded,
        stderr_tail: Vec::new(),
        boot_s: None,
        wall_s: 0.0,
        notes: Vec::new(),
    };
    Report::assemble(meta, &scan, &msgs, host)
}

/// The whole `judge` subcommand; returns the exit code.
pub fn judge(args: &JudgeArgs) -> i32 {
    match judge_logs(&args.console_log, args.wire.as_deref()) {
        Ok(report) => {
            if args.json {
                summary::emit(&report.to_json());
            } else {
                summary::emit(&summary::render(&report, None));
            }
            report.exit_code
        }
        Err(e) => {
            eprintln!("mmrace: cannot read the logs: {e}");
            2
        }
    }
}
