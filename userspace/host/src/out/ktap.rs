//! results.ktap: the run as KTAP version 1, the format kselftest and KUnit
//! results use, so CI systems that already read those can read ours.
//!
//! Seven tests: the guest booted, the module loaded, the scenario
//! completed, the kernel reported nothing, the guest did not hang, then the
//! oracles: no data corruption, no new taint. A test that cannot be judged because an earlier one
//! failed is `# SKIP`ped rather than failed, so the first `not ok` is the
//! real problem.
//!
//! `exec` and `selftests-mm` add a sixth test after `scenario_completed`,
//! named after the scenario, whose subtests are the programs they ran, each
//! with its own KTAP results nested under it and mmrace's counter deltas as
//! a diagnostic line (KTAP nests a test's subtests, indented four spaces,
//! before its result line).

use crate::judge::patterns::Blame;
use crate::judge::verdict::Ending;
use crate::out::report::Report;
use mmrace_proto::results::suite::{ProgramRun, Status, SuiteResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub outcome: Outcome,
    /// Diagnostic lines (`# ...`) printed before the result line.
    pub notes: Vec<String>,
    /// Subtests, printed indented before the result line.
    pub subtests: Vec<Case>,
}

impl Case {
    pub fn new(name: impl Into<String>, outcome: Outcome) -> Case {
        Case {
            name: name.into(),
            outcome,
            notes: Vec::new(),
            subtests: Vec::new(),
        }
    }
}

/// KTAP directives and descriptions are one line; `#` would start a
/// directive early.
pub fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
        .replace('#', "%")
        .trim()
        .to_string()
}

pub fn render(cases: &[Case]) -> String {
    let mut s = String::new();
    render_at(&mut s, "", cases);
    s
}

fn render_at(s: &mut String, indent: &str, cases: &[Case]) {
    *s += &format!("{indent}KTAP version 1\n{indent}1..{}\n", cases.len());
    for (i, c) in cases.iter().enumerate() {
        let n = i + 1;
        if !c.subtests.is_empty() {
            render_at(s, &format!("{indent}    "), &c.subtests);
        }
        for note in &c.notes {
            *s += &format!("{indent}# {}\n", one_line(note));
        }
        let name = one_line(&c.name);
        match &c.outcome {
            Outcome::Pass => *s += &format!("{indent}ok {n} {name}\n"),
            Outcome::Fail(why) => *s += &format!("{indent}not ok {n} {name} # {}\n", one_line(why)),
            Outcome::Skip(why) => {
                *s += &format!("{indent}ok {n} {name} # SKIP {}\n", one_line(why))
            }
        }
    }
}

/// The test of a scenario that ran programs: one subtest per program, with
/// the program's own KTAP results under it.
fn suite_case(name: &str, suite: &SuiteResult) -> Case {
    let program = |p: &ProgramRun| {
        let mut c = Case::new(
            p.name.clone(),
            match p.status {
                Status::Pass => Outcome::Pass,
                Status::Skip => Outcome::Skip(p.exit.describe()),
                Status::Fail => Outcome::Fail(p.exit.describe()),
            },
        );
        c.subtests = p
            .ktap
            .iter()
            .map(|k| {
                Case::new(
                    k.name.clone(),
                    match k.status {
                        Status::Pass => Outcome::Pass,
                        Status::Skip => Outcome::Skip(k.reason.clone()),
                        Status::Fail => Outcome::Fail(k.reason.clone()),
                    },
                )
            })
            .collect();
        c.notes
            .push(format!("{}, {:.1} s", p.exit.describe(), p.duration_s));
        c.notes.push(format!(
            "mmrace counters: {}",
            crate::out::suite::counter_deltas(&p.counters)
        ));
        c.notes.push(format!(
            "vmstat: {}",
            crate::out::suite::counter_deltas(&p.vmstat)
        ));
        if let Some(r) = &p.rerun {
            c.notes.push(format!(
                "second run: the first failed ({}, {:.1} s), {}",
                r.sign, r.first.duration_s, r.why
            ));
        }
        c
    };
    let t = suite.programs_tally();
    let mut c = Case::new(
        name.replace('-', "_"),
        match (t.fail, t.pass) {
            (0, 0) => Outcome::Skip(format!("no program passed: {t}")),
            (0, _) => Outcome::Pass,
            _ => Outcome::Fail(format!("programs: {t}")),
        },
    );
    c.subtests = suite.programs.iter().map(program).collect();
    c.notes.push(format!(
        "programs: {t}; their cases: {}",
        suite.cases_tally()
    ));
    c
}

/// The five tests of a run, from its report.
pub fn cases(r: &Report) -> Vec<Case> {
    use Outcome::*;
    let case = |name: &str, outcome| Case::new(name, outcome);
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
            "{}: {} at console.log:{}: {}",
            f.finding.identity.title,
            f.finding.class,
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
    let suite = match (r.suite(), r.scenario()) {
        (Some(suite), Some(s)) => Some(suite_case(s.name(), suite)),
        _ => None,
    };
    [
        case("guest_booted", booted),
        case("module_loaded", module),
        case("scenario_completed", completed),
    ]
    .into_iter()
    .chain(suite)
    .chain([
        case("no_kernel_finding", no_finding),
        case("no_hang", no_hang),
        case("no_data_corruption", data),
        case("no_new_taint", taint),
    ])
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out::report::tests::sample;

    #[test]
    fn renders_exact_text() {
        let text = render(&[
            Case::new("a", Outcome::Pass),
            Case::new("b", Outcome::Fail("bad\nthing #1".into())),
            Case::new("c", Outcome::Skip("not run".into())),
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
             not ok 4 no_kernel_finding # kernel BUG: BUG at console.log:2: [    5.000000] kernel BUG at mm/huge_memory.c:3050!\n\
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
        f.finding.class = "init-died".into();
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

    #[test]
    fn suite_programs_nest_with_their_own_results_and_counters() {
        use mmrace_proto::results::suite::{Exit, KtapResult};
        use mmrace_proto::spec::{RunSpec, Scenario};
        use mmrace_proto::wire::Msg;
        let mut r = sample();
        r.finding = None;
        let scenario = Scenario::parse(&["selftests-mm".into()]).unwrap();
        r.hello = Some(Msg::Hello {
            wire: 2,
            spec: Box::new(RunSpec::new(scenario, 1, 60)),
        });
        let run = |name: &str, code, status, ktap: Vec<KtapResult>| ProgramRun {
            name: name.into(),
            argv: vec![],
            exit: Exit::Code { code },
            status,
            duration_s: 2.0,
            output_lines: 3,
            output_tail: vec![],
            ktap,
            counters: [("pmd_split".to_string(), 4)].into(),
            vmstat: [("thp_split_page".to_string(), 4)].into(),
            rerun: None,
        };
        let suite = SuiteResult {
            programs: vec![
                run(
                    "soft-dirty",
                    0,
                    Status::Pass,
                    ["ok 1 a", "ok 2 b # SKIP no"]
                        .iter()
                        .map(|l| KtapResult::parse(l).unwrap())
                        .collect(),
                ),
                ProgramRun {
                    rerun: Some(mmrace_proto::results::suite::Rerun {
                        sign: "\"Unexpected huge page\"".into(),
                        why: "the test's race".into(),
                        first: Box::new(run("migration", 1, Status::Fail, vec![])),
                    }),
                    ..run("migration", 4, Status::Skip, vec![])
                },
            ],
            cpus: 4,
            nodes: vec![0, 1],
        };
        r.result = Some(crate::out::report::tests::selftests_result(suite));
        let text = render(&cases(&r));
        assert_eq!(
            text,
            "KTAP version 1\n\
             1..8\n\
             ok 1 guest_booted\n\
             ok 2 module_loaded\n\
             ok 3 scenario_completed\n\
             \x20   KTAP version 1\n\
             \x20   1..2\n\
             \x20       KTAP version 1\n\
             \x20       1..2\n\
             \x20       ok 1 a\n\
             \x20       ok 2 b # SKIP no\n\
             \x20   # exit 0, 2.0 s\n\
             \x20   # mmrace counters: pmd_split+4\n\
             \x20   # vmstat: thp_split_page+4\n\
             \x20   ok 1 soft-dirty\n\
             \x20   # exit 4, 2.0 s\n\
             \x20   # mmrace counters: pmd_split+4\n\
             \x20   # vmstat: thp_split_page+4\n\
             \x20   # second run: the first failed (\"Unexpected huge page\", 2.0 s), the test's race\n\
             \x20   ok 2 migration # SKIP exit 4\n\
             # programs: 1 pass, 1 skip, 0 fail; their cases: 1 pass, 1 skip, 0 fail\n\
             ok 4 selftests_mm\n\
             ok 5 no_kernel_finding\n\
             ok 6 no_hang\n\
             ok 7 no_data_corruption\n\
             ok 8 no_new_taint\n"
        );
    }
}
