//! The summary lines of the scenarios that run programs (`exec`,
//! `selftests-mm`): one line per program with its status, time, exit, KTAP
//! tally and mmrace counter deltas, and for `exec` the output's tail.
//! results.ktap nests the same (see [`crate::out::ktap`]); report.json keeps the
//! whole typed result.

use crate::out::report::Report;
use mmrace_proto::results::suite::{Status, Tally};
use std::fmt::Write;

pub use mmrace_proto::counters::fmt_deltas as counter_deltas;

fn label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Skip => "SKIP",
        Status::Fail => "FAIL",
    }
}

/// The section for `r`, empty when its scenario ran no programs.
pub fn render(out: &mut String, r: &Report) {
    let (Some(scenario), Some(suite)) = (r.scenario(), r.suite()) else {
        return;
    };
    let name = scenario.name();
    let _ = writeln!(
        out,
        "{name}: programs {}; their KTAP cases {} (guest: {} CPUs, nodes {:?})",
        suite.programs_tally(),
        suite.cases_tally(),
        suite.cpus,
        suite.nodes
    );
    let width = suite
        .programs
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &suite.programs {
        let cases = match p.ktap.is_empty() {
            true => String::new(),
            false => {
                let t = Tally::of(p.ktap.iter().map(|k| k.status));
                format!("  cases {}/{}/{}", t.pass, t.skip, t.fail)
            }
        };
        let _ = writeln!(
            out,
            "  {} {:<width$} {:>7.1} s  {}{cases}  counters {}  vmstat {}",
            label(p.status),
            p.name,
            p.duration_s,
            p.exit.describe(),
            counter_deltas(&p.counters),
            counter_deltas(&p.vmstat)
        );
        if let Some(r) = &p.rerun {
            let _ = writeln!(
                out,
                "    a second run: the first {} after {:.1} s ({}), {}",
                label(r.first.status),
                r.first.duration_s,
                r.sign,
                r.why
            );
        }
    }
    if let [p] = suite.programs.as_slice() {
        let _ = writeln!(
            out,
            "{name}: output {} line{} (all in wire.log){}",
            p.output_lines,
            if p.output_lines == 1 { "" } else { "s" },
            match p.output_tail.is_empty() {
                true => String::new(),
                false => format!(", the last {}:", p.output_tail.len()),
            }
        );
        for l in &p.output_tail {
            let _ = writeln!(out, "  | {}", crate::vm::monitor::printable(l));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn deltas() {
        assert_eq!(counter_deltas(&BTreeMap::new()), "none");
        let d: BTreeMap<String, u64> = [("a".to_string(), 3), ("b".to_string(), 1)].into();
        assert_eq!(counter_deltas(&d), "a+3 b+1");
    }
}
