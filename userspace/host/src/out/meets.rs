//! The summary's meets lines: how many pairs of the module's operations
//! met on the same object in the run, the pairs that met most, and how
//! many pairs of attached operations never met.

use mmrace_proto::meets::{MeetsPoint, RunMeets, COVERED_MEETS};
use std::fmt::Write;

/// Pairs listed by name.
const TOP_PAIRS: usize = 5;

/// Appends the meets lines of a run to `out` (nothing when the driver sent
/// no meets message).
pub fn render(out: &mut String, meets: Option<&RunMeets>) {
    let Some(m) = meets else { return };
    let s = match m {
        RunMeets::Off => {
            let _ = writeln!(out, "meets: not counted (meets_enable=0)");
            return;
        }
        RunMeets::Absent { why } => {
            let _ = writeln!(out, "meets: absent ({why})");
            return;
        }
        RunMeets::Counted { .. } => m.summary().expect("counted meets have a summary"),
    };
    let dropped = match m {
        RunMeets::Counted { dropped, .. } if *dropped > 0 => {
            format!("; {dropped} operations not tracked (no free slot)")
        }
        _ => String::new(),
    };
    if let RunMeets::Counted {
        sampling: Some(x), ..
    } = m
    {
        let _ = writeln!(
            out,
            "meets: SAMPLED, not totals: probes armed {} % of every {:.0} s, {:.1} s of {:.1} s ({} toggles, {} ms)",
            x.duty_pct,
            x.period_ms as f64 / 1000.0,
            x.armed_ms as f64 / 1000.0,
            x.total_ms as f64 / 1000.0,
            x.toggles,
            x.toggle_ms
        );
    }
    let _ = writeln!(
        out,
        "meets: {} op pairs met, {} pairs of the {} attached ops never met{dropped}",
        s.met.len(),
        s.never_met,
        s.attached.len()
    );
    for ((a, b), c) in s.met.iter().take(TOP_PAIRS) {
        let _ = writeln!(out, "  {a} x {b}: {} meets, {} near", c.meets, c.near);
    }
}

/// Appends the run's coverage over time (the driver's progress points):
/// op pairs met at least once and at least [`COVERED_MEETS`] times.
pub fn render_progress(out: &mut String, points: &[MeetsPoint]) {
    if points.is_empty() {
        return;
    }
    let steps: Vec<String> = points
        .iter()
        .map(|p| format!("{:.0} s {}/{}", p.t_ms as f64 / 1000.0, p.met, p.covered))
        .collect();
    let _ = writeln!(
        out,
        "meets over time (op pairs met >= 1 / >= {COVERED_MEETS}): {}",
        steps.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::meets::{parse_ops, Meets};

    #[test]
    fn renders_counted_off_and_absent() {
        let run = RunMeets::Counted {
            meets: Meets::parse("pmd_split migrate_unmap anon 2 1\ngup gup unknown 0 4").unwrap(),
            ops: parse_ops(
                "pmd_split __split_huge_pmd attached 5\n\
                 migrate_unmap try_to_migrate attached 3\n\
                 gup __get_user_pages failed -2 0\n",
            )
            .unwrap(),
            dropped: 0,
            sampling: None,
        };
        let mut out = String::new();
        render(&mut out, Some(&run));
        assert_eq!(
            out,
            "meets: 1 op pairs met, 2 pairs of the 2 attached ops never met\n  \
             migrate_unmap x pmd_split: 2 meets, 1 near\n"
        );
        let RunMeets::Counted { meets, ops, .. } = run else {
            unreachable!()
        };
        let sampled = RunMeets::Counted {
            meets,
            ops,
            dropped: 0,
            sampling: Some(mmrace_proto::meets::Sampling {
                duty_pct: 10,
                period_ms: 5000,
                armed_ms: 3000,
                total_ms: 30_000,
                toggles: 12,
                toggle_ms: 40,
            }),
        };
        let mut out = String::new();
        render(&mut out, Some(&sampled));
        assert!(
            out.starts_with(
                "meets: SAMPLED, not totals: probes armed 10 % of every 5 s, 3.0 s of 30.0 s"
            ),
            "{out}"
        );
        assert!(out.contains("\nmeets: 1 op pairs met"), "{out}");
        let mut out = String::new();
        render(&mut out, Some(&RunMeets::Off));
        assert!(out.contains("not counted"), "{out}");
        let mut out = String::new();
        render(
            &mut out,
            Some(&RunMeets::Absent {
                why: "old module".into(),
            }),
        );
        assert_eq!(out, "meets: absent (old module)\n");
        let mut out = String::new();
        render(&mut out, None);
        assert!(out.is_empty());
    }

    #[test]
    fn renders_progress_as_a_line() {
        let mut out = String::new();
        render_progress(&mut out, &[]);
        assert!(out.is_empty());
        let p = |t_ms, met, covered| MeetsPoint {
            t_ms,
            met,
            covered,
            meets: 0,
        };
        render_progress(&mut out, &[p(10_004, 3, 0), p(20_010, 7, 2)]);
        assert_eq!(
            out,
            "meets over time (op pairs met >= 1 / >= 10): 10 s 3/0, 20 s 7/2\n"
        );
    }
}
