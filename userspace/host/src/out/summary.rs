//! The human summary printed at the end of a run (and by `judge`): the
//! verdict first, then what decided it, then the last counters the guest
//! streamed, which a crashed or hung guest still leaves behind.

use crate::judge::scan::ConsoleFinding;
use crate::out::report::{Oracles, Report};
use crate::vm::messages::snapshot_view;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Finding lines shown here; report.json and console.log have the rest.
const FINDING_LINES: usize = 8;

/// What dump_page() says about why it dumped.
const DUMP_REASON: &str = "page dumped because:";

/// Counter names in the module's order, then any the module does not list
/// (a newer module than this host tool).
fn ordered(values: &BTreeMap<String, u64>) -> Vec<&str> {
    let defs = mmrace_proto::counters::counter_defs();
    let mut names: Vec<&str> = defs
        .iter()
        .map(|d| d.name)
        .filter(|n| values.contains_key(*n))
        .collect();
    for k in values.keys() {
        if !names.contains(&k.as_str()) {
            names.push(k);
        }
    }
    names
}

/// A titled group of values with their rates, if known.
type Section<'a> = (
    &'a str,
    &'a BTreeMap<String, u64>,
    Option<&'a BTreeMap<String, f64>>,
);

/// One table for counters and ops, so both share their columns.
fn table(out: &mut String, sections: &[Section<'_>]) {
    let named: Vec<_> = sections
        .iter()
        .map(|(t, v, r)| (*t, ordered(v), *v, *r))
        .collect();
    let width = named
        .iter()
        .flat_map(|(t, names, _, _)| names.iter().copied().chain([*t]))
        .map(str::len)
        .max()
        .unwrap_or(0);
    for (title, names, values, rates) in named {
        if names.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {title:<width$} {:>14} {:>12}", "value", "per s");
        for n in names {
            let rate = rates
                .and_then(|r| r.get(n))
                .map(|r| format!("{r:.1}"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "  {n:<width$} {:>14} {rate:>12}", values[n]);
        }
    }
}

/// Prints `text` on stdout; a closed stdout (`| head`) is not an error
/// worth a panic after the run is over and its files are written.
pub fn emit(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// The summary text; `results` is the run directory (None for `judge`).
pub fn render(r: &Report, results: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    verdict(&mut out, r);
    ran(&mut out, r);
    timing(&mut out, r);
    for w in &r.warnings {
        let _ = writeln!(out, "mmrace: warning: {w}");
    }
    if let Some(f) = &r.finding {
        finding(&mut out, f, &r.other_findings);
    }
    oracles(&mut out, &r.oracles);
    crate::out::suite::render(&mut out, r);
    if let Some(p) = r.pairs() {
        crate::out::pairs::render(&mut out, p);
    }
    last_counters(&mut out, r);
    crate::out::meets::render(&mut out, r.meets.as_ref());
    crate::out::meets::render_progress(&mut out, &r.meets_progress);
    if let Some(dir) = results {
        let _ = writeln!(out, "mmrace: results in {}", dir.display());
    }
    out
}

/// The verdict, its class and exit code, the reason and the title.
fn verdict(out: &mut String, r: &Report) {
    let class = match r.class() {
        Some(c) => format!(": {c}"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "mmrace: verdict {}{class} (exit {})",
        r.verdict.label(),
        r.exit_code
    );
    let _ = writeln!(out, "mmrace: {}", r.reason);
    if let Some(f) = r.found().filter(|f| f.title().is_some()) {
        let _ = writeln!(
            out,
            "mmrace: title {} (signature {})",
            f.identity.title, f.identity.signature
        );
    }
}

/// What ran, on which kernel, under which accelerator.
fn ran(out: &mut String, r: &Report) {
    if let Some(spec) = &r.meta.spec {
        let k = &spec.kernel;
        let kernel: Vec<String> = [
            (!k.series.is_empty()).then(|| k.series.clone()),
            k.variant.as_ref().map(|v| format!("variant {v}")),
            k.profile.as_ref().map(|p| format!("profile {p}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let kernel = match kernel.is_empty() {
            true => String::new(),
            false => format!("; kernel {}", kernel.join(", ")),
        };
        let _ = writeln!(out, "mmrace: ran {}{kernel}", spec.identity());
    }
    if let Some(a) = r.meta.accel {
        let _ = writeln!(
            out,
            "mmrace: accelerator {} ({})",
            a.name(),
            r.meta.accel_note
        );
    }
}

/// Timing, and the ending when the reason did not already say it.
fn timing(out: &mut String, r: &Report) {
    let mut times = Vec::new();
    if let Some(g) = r.guest_elapsed_s {
        times.push(format!("the driver ran {g:.1} s"));
    }
    if r.host_wall_s > 0.0 {
        times.push(format!("the run took {:.1} s", r.host_wall_s));
    }
    let ending = r.ending.describe();
    if !r.reason.contains(&ending) {
        times.push(ending);
    }
    if !times.is_empty() {
        let _ = writeln!(out, "mmrace: {}", times.join("; "));
    }
}

/// The finding's first lines on the console, then one line per other
/// finding.
fn finding(out: &mut String, f: &ConsoleFinding, others: &[ConsoleFinding]) {
    let _ = writeln!(
        out,
        "finding {} at console.log:{}:",
        f.finding.class,
        f.first_line().line_no
    );
    // A VM_BUG_ON_*'s assertion is named in the page dump above the
    // BUG line; it is worth more than a line of registers.
    let dump_reason = f.before.iter().filter(|l| l.text.contains(DUMP_REASON));
    for l in dump_reason.chain(f.excerpt.iter().take(FINDING_LINES)) {
        let _ = writeln!(
            out,
            "  {:>6} | {}",
            l.line_no,
            crate::vm::monitor::printable(&l.text)
        );
    }
    for f in others {
        let l = f.first_line();
        let _ = writeln!(
            out,
            "also {} at console.log:{}: {}",
            f.finding.identity.title,
            l.line_no,
            l.text.trim()
        );
    }
}

/// The oracles' findings: data corruption (each with the parties' recent
/// ops) and new taint.
fn oracles(out: &mut String, o: &Oracles) {
    if o.data_mismatches > 0 {
        let _ = writeln!(
            out,
            "data corruption: {} mismatch(es), {} reported in full:",
            o.data_mismatches,
            o.corruptions.len()
        );
        for c in &o.corruptions {
            let _ = writeln!(out, "  {}", c.line());
            for (party, ops) in &c.recent_ops {
                let ops: Vec<String> = ops
                    .iter()
                    .map(|op| format!("{}@{:#x} {:.3}s", op.op, op.addr, op.t_ms as f64 / 1000.0))
                    .collect();
                let _ = writeln!(out, "    {party:<10} {}", ops.join(", "));
            }
        }
    }
    if o.taint.new != 0 {
        let _ = writeln!(out, "taint: {}", o.taint.line());
    }
}

/// The last snapshot's counters and ops, with their rates.
fn last_counters(out: &mut String, r: &Report) {
    let Some(s) = r.last_snapshot.as_ref().and_then(snapshot_view) else {
        let _ = writeln!(out, "no counters: the driver sent no snapshot");
        return;
    };
    let window = r
        .rates
        .as_ref()
        .map(|x| format!(", rates over the last {:.1} s", x.window_s))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "last counters at guest time {:.1} s ({} snapshots{window}):",
        s.t_ms as f64 / 1000.0,
        r.snapshots
    );
    let rates = r.rates.as_ref();
    table(
        out,
        &[
            ("counter", s.counters, rates.map(|x| &x.counters)),
            ("op", s.ops, rates.map(|x| &x.ops)),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::scan::NumberedLine;
    use crate::out::report::tests::sample;

    #[test]
    fn crashed_run_summary() {
        let text = render(&sample(), Some(std::path::Path::new("build/results/x")));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "mmrace: verdict KERNEL PROBLEM: BUG (exit 1)");
        assert_eq!(
            lines[2],
            format!(
                "mmrace: title kernel BUG (signature {})",
                crate::judge::title::signature("kernel BUG")
            )
        );
        assert_eq!(lines[3], "mmrace: ran smoke seed 7, 20 s");
        assert_eq!(lines[4], "mmrace: accelerator tcg (requested)");
        assert!(
            text.contains("finding BUG at console.log:2:\n       2 | [    5.000000] kernel BUG at")
        );
        // Module order: pmd_split is listed before thp_split in the header.
        let pmd = text.find("  pmd_split").unwrap();
        assert!(pmd < text.find("  thp_split").unwrap());
        assert!(
            text.contains("\n  pmd_split             50         20.0\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  writer              1100        500.0\n"),
            "{text}"
        );
        assert!(
            text.contains("meets: 1 op pairs met, 0 pairs of the 0 attached ops never met\n"),
            "{text}"
        );
        assert!(text.ends_with("mmrace: results in build/results/x\n"));
    }

    #[test]
    fn shows_the_vm_bug_on_assertion_from_the_page_dump() {
        let mut r = sample();
        let f = r.finding.as_mut().unwrap();
        f.before = vec![NumberedLine {
            line_no: 1,
            text: "[ 5.0] page dumped because: VM_BUG_ON_FOLIO(!folio_test_locked(folio))".into(),
        }];
        let text = render(&r, None);
        assert!(
            text.contains(
                "console.log:2:\n       1 | [ 5.0] page dumped because: VM_BUG_ON_FOLIO(!folio_test_locked(folio))\n       2 | "
            ),
            "{text}"
        );
    }

    #[test]
    fn clean_run_without_snapshots() {
        let mut r = sample();
        r.verdict = crate::judge::verdict::Verdict::Clean;
        r.exit_code = 0;
        r.found.0 = None;
        r.finding = None;
        r.last_snapshot = None;
        let text = render(&r, None);
        assert!(text.starts_with("mmrace: verdict CLEAN (exit 0)\n"));
        assert!(text.contains("no counters"));
        assert!(!text.contains("finding"));
    }
}
