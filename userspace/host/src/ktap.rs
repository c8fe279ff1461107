//! results.ktap: the run as KTAP version 1, the format kselftest and KUnit
//! results use, so CI systems that already read those can read ours.
//!
//! Seven tests: the guest booted, the module loaded, the scenario
//! completed, the kernel reported nothing, the guest did not hang, then the
//! oracles: no data corruption, no new taint. A test that cannot be judged because an earlier one
//! failed is `# SKIP`ped rather than failed, so the first `not ok` is the
//! real problem.

use crate::patterns::Blame;
use crate::report::Report;
use crate::verdict::Ending;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// KTAP directives and descriptions are one line; `#` would start a
/// directive early.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
        .replace('#', "%")
        .trim()
        .to_string()
}

pub fn render(cases: &[Case]) -> String {
    let mut s = format!("KTAP version 1\n1..{}\n", cases.len());
    for (i, c) in cases.iter().enumerate() {
        let n = i + 1;
        match &c.outcome {
            Outcome::Pass => s += &format!("ok {n} {}\n", c.name),
            Outcome::Fail(why) => s += &format!("not ok {n} {} # {}\n", c.name, one_line(why)),
            Outcome::Skip(why) => s += &format!("ok {n} {} # SKIP {}\n", c.name, one_line(why)),
        }
    }
    s
}

/// The five tests of a run, from its report.
pub fn cases(r: &Report) -> Vec<Case> {
    use Outcome::*;
    let case = |name, outcome| Case { name, outcome };
    let no_guest = || Skip("the guest did not boot".into());

    let booted = if r.booted {
        Pass
    } else {
        Fail(r.reason.clone())
    };
    let module = match (&r.module, r.booted) {
        (Some(_), _) => Pass,
        (None, false) => no_guest(),
        (None, true) => Fail("the driver never reported the module loaded".into()),
    };
    let completed = match (r.outcome(), r.booted) {
        (Some((true, _)), _) => Pass,
        (Some((false, msg)), _) => Fail(format!("driver failed: {msg}")),
        (None, false) => no_guest(),
        (None, true) => Fail(format!("no Result from the driver: {}", r.reason)),
    };
    let no_finding = match (&r.finding, r.booted) {
        // The guest could not run our driver: the kernel was not tested.
        (Some(f), _) if f.blame == Blame::Harness => Skip(format!("harness problem: {}", r.reason)),
        (Some(f), _) => Fail(format!(
            "{} at console.log:{}: {}",
            f.class,
            f.first_line().line_no,
            f.first_line().text.trim()
        )),
        (None, false) => no_guest(),
        (None, true) => Pass,
    };
    let no_hang = match (&r.ending, r.booted) {
        (Ending::Silent { .. } | Ending::BootTimeout { .. } | Ending::Overran { .. }, _) => {
            Fail(r.ending.describe())
        }
        (_, false) => no_guest(),
        _ => Pass,
    };
    let data = match (&r.oracles, r.booted) {
        (o, _) if o.data_mismatches > 0 => Fail(match o.corruptions.first() {
            Some(c) => format!("{} mismatch(es); first: {}", o.data_mismatches, c.line()),
            None => format!("{} mismatch(es)", o.data_mismatches),
        }),
        (_, false) => no_guest(),
        _ => Pass,
    };
    let taint = match (&r.oracles.taint, r.booted) {
        (t, _) if t.new != 0 => Fail(t.line()),
        (t, true) if t.start.is_none() => Skip("no taint mask in any snapshot".into()),
        (_, false) => no_guest(),
        _ => Pass,
    };
    vec![
        case("guest_booted", booted),
        case("module_loaded", module),
        case("scenario_completed", completed),
        case("no_kernel_finding", no_finding),
        case("no_hang", no_hang),
        case("no_data_corruption", data),
        case("no_new_taint", taint),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn renders_exact_text() {
        let text = render(&[
            Case {
                name: "a",
                outcome: Outcome::Pass,
            },
            Case {
                name: "b",
                outcome: Outcome::Fail("bad\nthing #1".into()),
            },
            Case {
                name: "c",
                outcome: Outcome::Skip("not run".into()),
            },
        ]);
        assert_eq!(
            text,
            "KTAP version 1\n1..3\nok 1 a\nnot ok 2 b # bad thing %1\nok 3 c # SKIP not run\n"
        );
    }

    #[test]
    fn crashed_run_fails_completion_and_finding() {
        // sample(): booted, module loaded, BUG found, no Result, QEMU exited.
        let text = render(&cases(&sample()));
        assert_eq!(
            text,
            "KTAP version 1\n\
             1..7\n\
             ok 1 guest_booted\n\
             ok 2 module_loaded\n\
             not ok 3 scenario_completed # no Result from the driver: BUG at console.log:2: kernel BUG at mm/huge_memory.c:3050!\n\
             not ok 4 no_kernel_finding # BUG at console.log:2: [    5.000000] kernel BUG at mm/huge_memory.c:3050!\n\
             ok 5 no_hang\n\
             ok 6 no_data_corruption\n\
             ok 7 no_new_taint\n"
        );
    }

    #[test]
    fn harness_finding_skips_the_kernel_test() {
        let mut r = sample();
        let f = r.finding.as_mut().unwrap();
        f.blame = Blame::Harness;
        f.class = "init-died".into();
        r.reason = "init-died at console.log:2: Attempted to kill init!".into();
        let c = cases(&r);
        assert_eq!(
            c[3].outcome,
            Outcome::Skip(
                "harness problem: init-died at console.log:2: Attempted to kill init!".into()
            )
        );
        assert!(matches!(&c[2].outcome, Outcome::Fail(w) if w.contains("init-died")));
    }

    #[test]
    fn hung_guest_fails_no_hang_and_unbooted_guest_skips() {
        let mut r = sample();
        r.finding = None;
        r.ending = Ending::Silent { silent_s: 120 };
        let c = cases(&r);
        assert_eq!(c[3].outcome, Outcome::Pass);
        assert!(matches!(&c[4].outcome, Outcome::Fail(w) if w.contains("120 s")));

        r.booted = false;
        r.module = None;
        r.ending = Ending::Exited {
            code: Some(1),
            signal: None,
        };
        r.reason = "QEMU exited with status 1 before the kernel printed anything".into();
        let c = cases(&r);
        assert!(matches!(&c[0].outcome, Outcome::Fail(w) if w.contains("status 1")));
        for case in &c[1..] {
            assert!(matches!(case.outcome, Outcome::Skip(_)), "{case:?}");
        }
    }
}
