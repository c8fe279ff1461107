//! `mmrace-host check REPORT CHECK...`: assertions on a run's report.json,
//! for scripts/test.sh and for anyone scripting around mmrace. The report is
//! read back into the same [`Report`] type `run` wrote, so a check can only
//! name fields that exist.
//!
//! Every call also checks that the driver ran the run the report describes:
//! the spec its Hello echoed equals the report's spec (scenario, options,
//! seed, duration). A report whose guest never said Hello has nothing to
//! compare and passes that check only if it has no Hello at all.

use crate::out::report::Report;
use crate::vm::messages::snapshot_view;
use mmrace_proto::results::ScenarioResult;
use mmrace_proto::wire::Msg;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The checks, as documented in `mmrace-host check --help`.
pub const HELP: &str = "\
CHECK is one of:
  verdict=V            the verdict is V (clean, kernel-problem, hang, ...)
  class~TEXT           the verdict's class contains TEXT (case-insensitive)
  probes-attached      every module probe attached
  moved=C1,C2          these counters rose between first and last snapshot
  equal=C:V1+V2        module counter delta C == sum of vmstat deltas V1+V2
                       (from the driver's result data: counters / vmstat)
  has-last-snapshot    the report kept a counter snapshot
  meets-met            the module counted meets and at least one pair of
                       attached operations met
  meets-progress       the driver streamed the meets so far (every 10 s):
                       at least one point, counts never falling, the last
                       no more than the run's whole meets
  crosscheck-ok        every module-vs-vmstat cross-check of the results held
  amplify-armed=N      --amplify armed at least N injection points
  amplify-hit=N        at least N of the armed points saw calls
  amplify-delays       the points delayed calls, and their delays add up to
                       no more than the inject_delays delta
  data-true=KEY        the driver's result data has KEY == true
  data-set=KEY         the driver's result data has KEY set (not null)
  finding~TEXT         a line of the finding's excerpt contains TEXT
  title~REGEX          the verdict's title matches REGEX (a run that found
                       nothing has no title and fails this)
  kernel~TEXT          the booted kernel image's path contains TEXT
  variant=NAME         the spec records kernel variant NAME
  profile=NAME         the spec records kernel profile NAME
  message~TEXT         the driver's result message contains TEXT
  ops=NAME:N           the last snapshot's op NAME equals N
  ran=SCENARIO         the spec's scenario is SCENARIO
  data-verified        the data oracle checked units and found no mismatch
  taint-new~LETTERS    the taint oracle saw these new flags (e.g. W)
  dependency-formed    an oom-stall round's OOM kill found the victim's
                       blocker thread asleep (D) on the holder's lock
  program=NAME:STATUS  exec/selftests-mm: program NAME ended pass, skip or fail
  program-exit=NAME:N  ... program NAME exited with status N
  program-moved=NAME:C1,C2  ... these counters rose while program NAME ran
  program-cases=NAME:P/S/F  ... program NAME's own KTAP had exactly P pass,
                       S skip and F fail results
  output~TEXT          ... a kept output line of a program contains TEXT
  pairs-kind=KIND:OP,... pairs: kind KIND ran rounds with each op listed
                       (KIND: alone, any round), and was not skipped
  pairs-ran=N          pairs: at least N catalogue pairs ran a round
  pairs-met=N          pairs: at least N catalogue pairs met 10 times
  pairs-ksmd-turns=N   pairs --sequential: ksmd took at least N turns
                       between the ops (stopped while they ran)
  pairs-caught~TEXT    pairs: a finding's line contains TEXT (e.g.
                       'store+migrate-pages on anon')
  pairs-runs=N         pairs: at least N op runs per round (all threads;
                       2 for a pair whose ops run once, more with
                       --overlap-ms)
  pairs-preempted=N    pairs --preempt: at least N wake-ups of the waker
                       came inside the racer's op
  pairs-held=N         pairs --held: at least N holds were resolved while
                       another op of the round ran
Always: the spec the driver echoed in its Hello equals the report's spec.";

/// The scenario's typed results, if the driver sent them.
fn result(r: &Report) -> Option<&ScenarioResult> {
    match &r.result {
        Some(Msg::Result { data, .. }) => data.as_deref(),
        _ => None,
    }
}

/// A top-level field of the results, by name (`data-true=`, `data-set=`).
fn result_field(r: &Report, key: &str) -> Value {
    result(r)
        .and_then(|d| serde_json::to_value(d).ok())
        .map_or(Value::Null, |v| v[key].clone())
}

fn counters(msg: &Option<Msg>) -> BTreeMap<String, u64> {
    msg.as_ref()
        .and_then(snapshot_view)
        .map(|s| s.counters.clone())
        .unwrap_or_default()
}

/// `Err` unless every name is a counter of module/mmrace_counters.h: a
/// check naming a counter that does not exist must fail, not pass vacuously.
fn known_counters<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), String> {
    let defs = mmrace_proto::counters::counter_defs();
    match names
        .into_iter()
        .find(|n| !defs.iter().any(|d| d.name == *n))
    {
        Some(n) => Err(format!(
            "{n:?} is not an mmrace counter (module/mmrace_counters.h)"
        )),
        None => Ok(()),
    }
}

/// `pairs-kind=KIND:OP,...`: the kind ran, and ran rounds with each op.
fn check_pairs_kind(r: &Report, value: &str) -> Result<(), String> {
    use clap::ValueEnum;
    use mmrace_proto::pairs::{ObjKind, UserOp};
    let (kind, ops) = value.split_once(':').unwrap_or((value, ""));
    let kind = ObjKind::from_str(kind, false).map_err(|e| format!("pairs-kind: {e}"))?;
    let ops = ops
        .split(',')
        .filter(|o| !o.is_empty())
        .map(|o| UserOp::from_str(o, false).map_err(|e| format!("pairs-kind: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(ScenarioResult::Pairs(p)) = result(r) else {
        return Err("no pairs result".into());
    };
    if let Some(s) = p.skipped.iter().find(|s| s.what == kind.word()) {
        return Err(format!("{kind} was skipped: {}", s.why));
    }
    let rows: Vec<_> = p
        .rows
        .iter()
        .filter(|row| row.kind == Some(kind) && row.rounds > 0)
        .collect();
    if rows.is_empty() {
        return Err(format!("{kind} ran no round"));
    }
    let missing: Vec<_> = ops
        .iter()
        .filter(|o| !rows.iter().any(|row| row.ops.contains(o)))
        .map(|o| o.word())
        .collect();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(format!("{kind} ran no round with {}", missing.join(", "))),
    }
}

/// `Err(why)` when `check` fails on `r`.
/// `Ok` if `pass`, else `Err(why)`.
fn ok(pass: bool, why: String) -> Result<(), String> {
    if pass {
        Ok(())
    } else {
        Err(why)
    }
}

pub fn check(r: &Report, check: &str) -> Result<(), String> {
    let (key, value) = match check.find(['=', '~']) {
        Some(i) => (&check[..=i], &check[i + 1..]),
        None => (check, ""),
    };
    match key {
        "verdict=" | "class~" | "finding~" | "title~" | "message~" => check_outcome(r, key, value),
        "kernel~" | "variant=" | "profile=" | "ran=" => check_spec(r, key, value),
        "meets-met" => check_meets_met(r),
        "meets-progress" => progress(r),
        "probes-attached" => check_probes_attached(r),
        "moved=" => check_moved(r, value),
        "equal=" => check_equal(r, value),
        "has-last-snapshot" => ok(
            !counters(&r.last_snapshot).is_empty(),
            "no counter snapshot kept".into(),
        ),
        "ops=" => check_ops(r, value),
        "data-true=" | "data-set=" => check_data(r, key, value),
        "data-verified" => check_data_verified(r),
        "taint-new~" => check_taint(r, value),
        "dependency-formed" => check_dependency(r),
        "crosscheck-ok" => match result(r).and_then(ScenarioResult::crosscheck_ok) {
            Some(true) => Ok(()),
            Some(false) => Err("a cross-check failed".into()),
            None => Err("the results have no cross-checks".into()),
        },
        "amplify-armed=" | "amplify-hit=" => check_amplify_points(r, key, value),
        "amplify-delays" => check_amplify_delays(r),
        "pairs-kind=" => check_pairs_kind(r, value),
        "program=" | "program-exit=" | "program-moved=" | "program-cases=" | "output~" => {
            check_suite(r, key, value)
        }
        "pairs-ran=" | "pairs-met=" | "pairs-caught~" => check_pairs(r, key, value),
        "pairs-runs=" => check_runs(r, value),
        "pairs-preempted=" | "pairs-held=" | "pairs-ksmd-turns=" => check_windows(r, key, value),
        _ => Err(format!("unknown check {check:?}")),
    }
}

/// The checks on how the run ended: `verdict=`, `class~`, `finding~`,
/// `title~`, `message~`.
fn check_outcome(r: &Report, key: &str, value: &str) -> Result<(), String> {
    match key {
        "verdict=" => {
            let got = serde_json::to_value(r.verdict).unwrap_or_default();
            ok(got == value, format!("verdict {got}, want {value:?}"))
        }
        "class~" => {
            let class = r.class().unwrap_or_default().to_string();
            ok(
                class.to_lowercase().contains(&value.to_lowercase()),
                format!("class {class:?} lacks {value:?}"),
            )
        }
        "finding~" => {
            let lines = r.finding.iter().flat_map(|f| &f.excerpt);
            ok(
                lines.into_iter().any(|l| l.text.contains(value)),
                format!("no finding line has {value:?}"),
            )
        }
        "title~" => check_title(r, value),
        _ => {
            let msg = r.outcome().map(|(_, m)| m).unwrap_or_default();
            ok(
                msg.contains(value),
                format!("result message {msg:?} lacks {value:?}"),
            )
        }
    }
}

/// `title~REGEX`: the verdict's title matches; nothing found fails.
fn check_title(r: &Report, value: &str) -> Result<(), String> {
    let e = crate::judge::expect::Expect::new(value).map_err(|e| format!("{e:#}"))?;
    let title = r.found().and_then(|f| f.title());
    ok(
        title.is_some_and(|t| e.matches(t)),
        format!(
            "the title {} does not match /{value}/",
            title.map_or("(none: nothing found)".to_string(), |t| format!("{t:?}"))
        ),
    )
}

/// The checks on what was booted and run: `kernel~`, `variant=`,
/// `profile=`, `ran=`.
fn check_spec(r: &Report, key: &str, value: &str) -> Result<(), String> {
    let spec = r.meta.spec.as_ref();
    match key {
        "kernel~" => ok(
            r.meta.kernel.contains(value),
            format!("kernel {:?} lacks {value:?}", r.meta.kernel),
        ),
        "variant=" => {
            let v = spec.and_then(|s| s.kernel.variant.clone());
            ok(
                v.as_deref() == Some(value),
                format!("spec variant {v:?}, want {value:?}"),
            )
        }
        "profile=" => {
            let p = spec.and_then(|s| s.kernel.profile);
            ok(
                p.map(|p| p.name()) == Some(value),
                format!("spec profile {p:?}, want {value:?}"),
            )
        }
        _ => {
            let name = spec.map(|s| s.scenario.name());
            ok(
                name == Some(value),
                format!("the spec's scenario is {name:?}, want {value:?}"),
            )
        }
    }
}

/// `meets-met`: at least one pair of attached operations met.
fn check_meets_met(r: &Report) -> Result<(), String> {
    match r.meets.as_ref().map(|m| (m, m.summary())) {
        Some((_, Some(s))) => ok(
            s.met
                .iter()
                .any(|((a, b), _)| s.attached.contains(a) && s.attached.contains(b)),
            format!("no pair of the {} attached ops met", s.attached.len()),
        ),
        Some((m, None)) => Err(format!("meets not counted: {m:?}")),
        None => Err("the report has no meets".into()),
    }
}

/// `probes-attached`: every probe the module reported attached.
fn check_probes_attached(r: &Report) -> Result<(), String> {
    match &r.module {
        Some(Msg::Module { probes, .. }) if !probes.is_empty() => {
            let bad: Vec<_> = probes
                .iter()
                .filter(|p| !p.attached)
                .map(|p| &p.name)
                .collect();
            ok(bad.is_empty(), format!("probes not attached: {bad:?}"))
        }
        _ => Err("no module message".into()),
    }
}

/// `moved=C1,C2`: the counters rose between the first and last snapshot.
fn check_moved(r: &Report, value: &str) -> Result<(), String> {
    known_counters(value.split(','))?;
    let (first, last) = (counters(&r.first_snapshot), counters(&r.last_snapshot));
    let still: Vec<_> = value
        .split(',')
        .filter(|n| last.get(*n).copied().unwrap_or(0) <= first.get(*n).copied().unwrap_or(0))
        .collect();
    ok(
        still.is_empty(),
        format!("counters did not move: {still:?}"),
    )
}

/// `equal=C:V1+V2`: the module counter's delta equals the vmstat deltas'
/// sum.
fn check_equal(r: &Report, value: &str) -> Result<(), String> {
    let (name, rhs) = value.split_once(':').ok_or("want equal=C:V1+V2")?;
    known_counters([name])?;
    let (counters, vmstat) = result(r)
        .and_then(ScenarioResult::deltas)
        .ok_or("the results have no counter and vmstat deltas")?;
    let got = counters
        .get(name)
        .ok_or(format!("no module counter {name} in result data"))?;
    let want: u64 = rhs
        .split('+')
        .map(|v| vmstat.get(v).copied().unwrap_or(0))
        .sum();
    ok(
        *got == want,
        format!("{name}={got} but vmstat {rhs}={want}"),
    )
}

/// `ops=NAME:N`: the last snapshot's op NAME equals N.
fn check_ops(r: &Report, value: &str) -> Result<(), String> {
    let (name, n) = value.split_once(':').ok_or("want ops=NAME:N")?;
    let n: u64 = n
        .parse()
        .map_err(|_| format!("ops={value}: N is not a number"))?;
    let got = r
        .last_snapshot
        .as_ref()
        .and_then(snapshot_view)
        .and_then(|s| s.ops.get(name).copied());
    ok(got == Some(n), format!("op {name} = {got:?}, want {n}"))
}

/// `data-true=KEY` and `data-set=KEY`: a top-level field of the results.
fn check_data(r: &Report, key: &str, value: &str) -> Result<(), String> {
    let v = result_field(r, value);
    match key {
        "data-true=" => ok(v == Value::Bool(true), format!("result data {value} = {v}")),
        _ => ok(!v.is_null(), format!("result data {value} is not set")),
    }
}

/// `data-verified`: the data oracle checked units and found no mismatch.
fn check_data_verified(r: &Report) -> Result<(), String> {
    let o = &r.oracles;
    let verified = result_field(r, "data_oracle")["verified"]
        .as_u64()
        .unwrap_or(0);
    ok(
        o.data_mismatches == 0 && verified > 0,
        format!(
            "data oracle: {} mismatches, {verified} units verified",
            o.data_mismatches
        ),
    )
}

/// `taint-new~LETTERS`: the taint oracle saw each of these new flags.
fn check_taint(r: &Report, value: &str) -> Result<(), String> {
    let t = &r.oracles.taint;
    ok(
        value
            .split_whitespace()
            .all(|l| t.letters.split(' ').any(|x| x == l)),
        format!("new taint {:?} lacks {value:?}", t.letters),
    )
}

/// `dependency-formed`: an oom-stall kill found the blocker in D.
fn check_dependency(r: &Report) -> Result<(), String> {
    let Some(ScenarioResult::OomStall(o)) = result(r) else {
        return Err("no oom-stall results".into());
    };
    ok(
        o.rounds
            .iter()
            .any(|x| x.blocker_state_at_kill == Some('D')),
        format!(
            "no round's kill found the blocker in D: {:?}",
            o.rounds
                .iter()
                .map(|x| x.blocker_state_at_kill)
                .collect::<Vec<_>>()
        ),
    )
}

/// `amplify-armed=N` and `amplify-hit=N`: at least N points armed, or hit.
fn check_amplify_points(r: &Report, key: &str, value: &str) -> Result<(), String> {
    let n: usize = value
        .parse()
        .map_err(|_| format!("{key}{value}: N is not a number"))?;
    let a = result(r)
        .and_then(ScenarioResult::amplify)
        .ok_or("the results have no --amplify report")?;
    let got = if key == "amplify-armed=" {
        a.armed.len()
    } else {
        a.hit()
    };
    ok(got >= n, format!("{got} points, want at least {n}"))
}

/// `amplify-delays`: the points delayed calls, no more than inject_delays.
fn check_amplify_delays(r: &Report) -> Result<(), String> {
    let res = result(r).ok_or("no results")?;
    let a = res
        .amplify()
        .ok_or("the results have no --amplify report")?;
    let delays = a.delays();
    let counted = res
        .deltas()
        .and_then(|(c, _)| c.get(mmrace_proto::counters::name::INJECT_DELAYS).copied())
        .unwrap_or(0);
    ok(
        delays > 0 && delays <= counted,
        format!("the points delayed {delays} calls, inject_delays rose by {counted}"),
    )
}

/// The checks on `pairs`' typed result.
fn check_pairs(r: &Report, key: &str, value: &str) -> Result<(), String> {
    let p = r.pairs().ok_or("the run has no pairs result")?;
    let c = &p.coverage;
    let at_least = |got: u64, what: &str| {
        let want: u64 = value
            .parse()
            .map_err(|_| format!("{key}{value}: want a number"))?;
        if got >= want {
            Ok(())
        } else {
            Err(format!(
                "{got} of {} catalogue pairs {what}, want at least {want}",
                c.pairs
            ))
        }
    };
    match key {
        "pairs-ran=" => at_least(c.ran, "ran"),
        "pairs-met=" => at_least(c.met, "met 10 times"),
        _ => {
            let lines: Vec<String> = p.findings.iter().map(|f| f.line()).collect();
            if lines.iter().any(|l| l.contains(value)) {
                Ok(())
            } else {
                Err(format!("no pairs finding names {value:?}: {lines:?}"))
            }
        }
    }
}

/// At least `value` op runs per round (`--overlap-ms` repeats the ops).
fn check_runs(r: &Report, value: &str) -> Result<(), String> {
    let t = &r.pairs().ok_or("the run has no pairs result")?.time;
    let want: f64 = value
        .parse()
        .map_err(|_| format!("pairs-runs={value}: want a number"))?;
    let got = t.runs_per_round();
    if t.rounds > 0 && got >= want {
        Ok(())
    } else {
        Err(format!(
            "{got:.1} op runs per round over {} rounds, want at least {want}",
            t.rounds
        ))
    }
}

/// The checks on what `pairs`' window mechanisms did: at least N rounds
/// whose waker woke inside the racer's op, or whose hold was resolved
/// while another op ran; and at least N turns ksmd took between the ops
/// of sequential rounds (stopped during the ops).
fn check_windows(r: &Report, key: &str, value: &str) -> Result<(), String> {
    let p = r.pairs().ok_or("the run has no pairs result")?;
    let w = &p.windows;
    let want: u64 = value
        .parse()
        .map_err(|_| format!("{key}{value}: want a number"))?;
    let (got, what) = match key {
        "pairs-preempted=" => (w.preempt.inside, "wake-ups inside a racer's op"),
        "pairs-ksmd-turns=" => (p.ksmd.turns, "ksmd turns between sequential ops"),
        _ => (w.held.inside, "resolved holds overlapping another op"),
    };
    if got >= want {
        Ok(())
    } else {
        Err(format!(
            "{got} {what}, want at least {want} ({w:?}, {:?})",
            p.ksmd
        ))
    }
}

/// The checks on `exec`'s and `selftests-mm`'s typed result.
fn check_suite(r: &Report, key: &str, value: &str) -> Result<(), String> {
    let suite = r.suite().ok_or("the run has no exec/selftests-mm result")?;
    if key == "output~" {
        let found = suite
            .programs
            .iter()
            .flat_map(|p| &p.output_tail)
            .any(|l| l.contains(value));
        return found
            .then_some(())
            .ok_or(format!("no kept output line has {value:?}"));
    }
    let (name, want) = value
        .rsplit_once(':')
        .ok_or(format!("want {key}NAME:VALUE"))?;
    let p = suite
        .programs
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = suite.programs.iter().map(|p| p.name.as_str()).collect();
            format!("no program {name:?} (ran: {names:?})")
        })?;
    let (pass, got) = match key {
        "program=" => {
            let got = serde_json::to_value(p.status).unwrap_or_default();
            (got == want, got.to_string())
        }
        "program-exit=" => {
            let want = mmrace_proto::results::suite::Exit::Code {
                code: want
                    .parse()
                    .map_err(|_| format!("{want:?} is not a number"))?,
            };
            (p.exit == want, p.exit.describe())
        }
        "program-cases=" => {
            let t = mmrace_proto::results::suite::Tally::of(p.ktap.iter().map(|k| k.status));
            let got = format!("{}/{}/{}", t.pass, t.skip, t.fail);
            (got == want, format!("KTAP cases {got} (pass/skip/fail)"))
        }
        _ => {
            let still: Vec<_> = want
                .split(',')
                .filter(|c| p.counters.get(*c).copied().unwrap_or(0) == 0)
                .collect();
            (still.is_empty(), format!("{still:?} did not move"))
        }
    };
    pass.then_some(())
        .ok_or(format!("{name}: {got}, want {key}{want}"))
}

/// The driver ran exactly the report's spec.
pub fn spec_echoed(r: &Report) -> Result<(), String> {
    match (&r.hello, &r.meta.spec) {
        (None, _) => Ok(()),
        (Some(Msg::Hello { spec: ran, .. }), Some(asked)) if **ran == *asked => Ok(()),
        (Some(Msg::Hello { spec: ran, .. }), asked) => Err(format!(
            "the driver ran {} but the report records {}",
            serde_json::to_string(ran).unwrap_or_default(),
            serde_json::to_string(asked).unwrap_or_default()
        )),
        (Some(other), _) => Err(format!("hello is not a Hello: {other:?}")),
    }
}

/// The whole `check` subcommand: one line per failed check; exit 1 if any
/// failed, 2 if the report cannot be read.
pub fn main(report: &Path, checks: &[String]) -> i32 {
    let r: Report = match std::fs::read_to_string(report)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mmrace: cannot read {} as a report: {e}", report.display());
            return 2;
        }
    };
    let mut failed = 0;
    let mut fail = |name: &str, why: String| {
        println!("    check {name}: {why}");
        failed += 1;
    };
    if let Err(why) = spec_echoed(&r) {
        fail("spec-echoed", why);
    }
    for c in checks {
        if let Err(why) = check(&r, c) {
            fail(c, why);
        }
    }
    i32::from(failed > 0)
}

/// `meets-progress`: the streamed points agree with themselves and with
/// the run's whole meets.
fn progress(r: &Report) -> Result<(), String> {
    let p = &r.meets_progress;
    let Some(last) = p.last() else {
        return Err("no meets progress point in the report".into());
    };
    if p.windows(2)
        .any(|w| w[1].met < w[0].met || w[1].meets < w[0].meets)
    {
        return Err(format!("meets progress fell: {p:?}"));
    }
    let whole = r
        .meets
        .as_ref()
        .and_then(|m| m.summary())
        .ok_or("the run's meets were not counted")?;
    if last.met > whole.met.len() as u64 {
        return Err(format!(
            "the last point has {} pairs met, the whole run {}",
            last.met,
            whole.met.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out::report::tests::{sample, smoke_spec};

    #[test]
    fn checks_on_a_pairs_result() {
        use mmrace_proto::oracle::{Expected, Found};
        use mmrace_proto::pairs::ObjKind;
        use mmrace_proto::results::pairs::{Coverage, Finding, PairsResult};
        let mut r = sample();
        assert!(check(&r, "pairs-ran=1").is_err(), "no pairs result");
        let p = PairsResult {
            coverage: Coverage {
                pairs: 100,
                met: 3,
                ran: 40,
                ..Coverage::default()
            },
            findings: vec![Finding {
                combo: "store+migrate-pages".into(),
                kind: ObjKind::Anon,
                state: None,
                round: 4,
                page: 8,
                vaddr: 0x8000,
                expected: Expected::Zero,
                found: Found::Zero,
            }],
            ..PairsResult::default()
        };
        r.result = Some(Msg::Result {
            t_ms: 1,
            ok: true,
            message: String::new(),
            data: Some(Box::new(ScenarioResult::Pairs(Box::new(p)))),
        });
        assert!(check(&r, "pairs-preempted=1").is_err(), "nothing armed");
        if let Some(Msg::Result { data: Some(d), .. }) = &mut r.result {
            if let ScenarioResult::Pairs(p) = d.as_mut() {
                p.windows.preempt.inside = 2;
                p.windows.held.inside = 1;
                p.ksmd.turns = 4;
                p.time.rounds = 4;
                p.time.runs = 30;
            }
        }
        for good in [
            "pairs-preempted=2",
            "pairs-held=1",
            "pairs-ksmd-turns=4",
            "pairs-runs=7.5",
            "pairs-ran=40",
            "pairs-met=3",
            "pairs-caught~store+migrate-pages on anon",
        ] {
            assert_eq!(check(&r, good), Ok(()), "{good}");
        }
        for bad in [
            "pairs-ran=41",
            "pairs-runs=8",
            "pairs-runs=x",
            "pairs-met=4",
            "pairs-met=x",
            "pairs-preempted=3",
            "pairs-held=2",
            "pairs-held=x",
            "pairs-ksmd-turns=5",
            "pairs-caught~store+split",
        ] {
            assert!(check(&r, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_on_a_suite_result() {
        use mmrace_proto::results::suite::{Exit, KtapResult, ProgramRun, Status, SuiteResult};
        let ktap = |n, status| KtapResult {
            number: n,
            name: format!("case {n}"),
            status,
            reason: String::new(),
        };
        let mut r = sample();
        let suite = SuiteResult {
            programs: vec![ProgramRun {
                name: "soft-dirty".into(),
                argv: vec![],
                exit: Exit::Code { code: 0 },
                status: Status::Pass,
                duration_s: 1.0,
                output_lines: 3,
                output_tail: vec!["ok 1 case 1".into()],
                ktap: vec![
                    ktap(1, Status::Pass),
                    ktap(2, Status::Pass),
                    ktap(3, Status::Skip),
                ],
                counters: [("softdirty_clear".to_string(), 9)].into(),
                vmstat: Default::default(),
                rerun: None,
            }],
            cpus: 4,
            nodes: vec![0, 1],
        };
        r.result = Some(crate::out::report::tests::selftests_result(suite));
        for good in [
            "program=soft-dirty:pass",
            "program-exit=soft-dirty:0",
            "program-moved=soft-dirty:softdirty_clear",
            "program-cases=soft-dirty:2/1/0",
            "output~case 1",
        ] {
            assert_eq!(check(&r, good), Ok(()), "{good}");
        }
        for bad in [
            "program=soft-dirty:fail",
            "program-exit=soft-dirty:1",
            "program-moved=soft-dirty:thp_split",
            "program-cases=soft-dirty:3/0/0",
            "program-cases=migration:0/0/0",
            "output~nothing like it",
        ] {
            assert!(check(&r, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_on_the_sample_report() {
        let r = sample();
        for good in [
            "verdict=kernel-problem",
            "class~bug",
            "probes-attached",
            "moved=pmd_split",
            "has-last-snapshot",
            "finding~kernel BUG",
            "kernel~bzImage",
            "ops=writer:1100",
            "ran=smoke",
        ] {
            assert_eq!(check(&r, good), Ok(()), "{good}");
        }
        for bad in [
            "verdict=clean",
            "class~deadlock",
            "moved=thp_split",
            "moved=pmd_split,no_such_counter",
            "equal=no_such_counter:thp_split_pmd",
            "finding~KASAN",
            "ops=writer:1",
            "ran=thp-race",
            "variant=x",
            "profile=default",
            "data-true=crosscheck_ok",
            "crosscheck-ok",
            "amplify-armed=1",
            "amplify-hit=x",
            "amplify-delays",
            "no-such-check",
        ] {
            assert!(check(&r, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn meets_met_needs_counted_meets_with_a_pair() {
        use mmrace_proto::meets::RunMeets;
        use mmrace_proto::meets::{parse_ops, Meets};
        let mut r = sample();
        // The sample's pair met, but it lists no attached operation.
        assert!(check(&r, "meets-met").is_err());
        let ops = parse_ops(
            "pmd_split __split_huge_pmd attached 1\nmigrate_unmap try_to_migrate attached 1\n",
        )
        .unwrap();
        let meets = Meets::parse("pmd_split migrate_unmap anon 2 1").unwrap();
        r.meets = Some(RunMeets::Counted {
            meets: meets.clone(),
            ops: ops.clone(),
            dropped: 0,
            sampling: None,
        });
        assert_eq!(check(&r, "meets-met"), Ok(()));
        r.meets = Some(RunMeets::Counted {
            meets: Default::default(),
            ops,
            dropped: 0,
            sampling: None,
        });
        assert!(check(&r, "meets-met").is_err());
        r.meets = Some(RunMeets::Off);
        assert!(check(&r, "meets-met").unwrap_err().contains("not counted"));
        r.meets = None;
        assert!(check(&r, "meets-met").is_err());
    }

    #[test]
    fn profile_check_reads_the_spec() {
        let mut r = sample();
        let spec = r.meta.spec.as_mut().unwrap();
        spec.kernel.profile = Some(mmrace_proto::spec::KernelProfile::Lockdep);
        assert_eq!(check(&r, "profile=lockdep"), Ok(()));
        assert!(check(&r, "profile=kasan").is_err());
    }

    #[test]
    fn the_echoed_spec_must_match() {
        let mut r = sample();
        assert_eq!(spec_echoed(&r), Ok(()));
        r.meta.spec = Some(smoke_spec(8));
        assert!(spec_echoed(&r).unwrap_err().contains("\"seed\":8"));
        r.hello = None;
        assert_eq!(spec_echoed(&r), Ok(()));
    }

    #[test]
    fn meets_progress_must_agree_with_itself_and_the_run() {
        use mmrace_proto::meets::{Meets, MeetsPoint, RunMeets};
        let mut r = sample();
        r.meets_progress.clear();
        r.meets = None;
        assert!(check(&r, "meets-progress")
            .unwrap_err()
            .contains("no meets progress"));
        let p = |met, meets| MeetsPoint {
            t_ms: 0,
            met,
            covered: 0,
            meets,
        };
        r.meets_progress = vec![p(1, 2), p(1, 3)];
        assert!(check(&r, "meets-progress")
            .unwrap_err()
            .contains("not counted"));
        r.meets = Some(RunMeets::Counted {
            meets: Meets::parse("pmd_split migrate_unmap anon 2 1").unwrap(),
            ops: vec![],
            dropped: 0,
            sampling: None,
        });
        assert_eq!(check(&r, "meets-progress"), Ok(()));
        r.meets_progress.push(p(2, 4));
        assert!(check(&r, "meets-progress")
            .unwrap_err()
            .contains("whole run 1"));
        r.meets_progress = vec![p(1, 3), p(1, 2)];
        assert!(check(&r, "meets-progress").unwrap_err().contains("fell"));
    }
}
