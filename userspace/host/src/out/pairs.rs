//! The summary section of `pairs`: coverage, findings, and the pair table
//! (rows with catches first, then by meets; the whole table is in
//! report.json).

use mmrace_proto::results::pairs::PairsResult;
use std::fmt::Write;

/// Table rows shown; the rest are counted.
pub const MAX_ROWS: usize = 60;

pub fn render(out: &mut String, p: &PairsResult) {
    let _ = writeln!(out, "{}", p.coverage_line());
    let _ = writeln!(out, "{}", p.states_line());
    if let Some(w) = p.windows.line() {
        let _ = writeln!(out, "{w}");
    }
    if let Some(k) = p.ksmd.line() {
        let _ = writeln!(out, "{k}");
    }
    if let Some(t) = p.time.line() {
        let _ = writeln!(out, "{t}");
    }
    for s in &p.skipped {
        let _ = writeln!(out, "pairs: skipped {}: {}", s.what, s.why);
    }
    for f in &p.findings {
        let _ = writeln!(out, "pairs finding: {}", f.line());
    }
    let mut rows: Vec<_> = p.rows.iter().filter(|r| r.rounds > 0).collect();
    rows.sort_by_key(|r| std::cmp::Reverse((r.catches, r.meets, r.rounds)));
    let shown = PairsResult {
        rows: rows.iter().take(MAX_ROWS).map(|r| (*r).clone()).collect(),
        ..PairsResult::default()
    };
    for line in shown.table() {
        let _ = writeln!(out, "  {line}");
    }
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "  ... {} more rows in report.json",
            rows.len() - MAX_ROWS
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::pairs::{Combo, ObjKind, UserOp};
    use mmrace_proto::results::pairs::Row;

    #[test]
    fn catches_first_and_the_rest_counted() {
        let row = |ops: Vec<UserOp>, rounds, meets, catches| {
            let c = Combo::new(ops);
            Row {
                combo: c.name(),
                ops: c.0,
                kind: Some(ObjKind::Anon),
                rounds,
                meets,
                catches,
                ..Row::default()
            }
        };
        let mut p = PairsResult::default();
        for i in 0..(MAX_ROWS + 5) {
            p.rows
                .push(row(vec![UserOp::Smaps, UserOp::Pagemap], 3, i as u64, 0));
        }
        p.rows
            .push(row(vec![UserOp::Store, UserOp::MigratePages], 9, 0, 2));
        p.rows
            .push(row(vec![UserOp::Store, UserOp::Split], 0, 0, 0));
        let mut out = String::new();
        render(&mut out, &p);
        let lines: Vec<_> = out.lines().collect();
        assert!(lines[0].starts_with("pairs coverage:"), "{out}");
        assert!(
            lines[3].trim_start().starts_with("store+migrate-pages"),
            "{out}"
        );
        assert!(out.contains("... 6 more rows"), "{out}");
        assert!(
            !out.contains("store+split"),
            "rows that never ran are left out"
        );
    }
}
