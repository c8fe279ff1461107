//! The scenarios. Each is a module with `run(&Ctx, &Args) -> Result<R>`,
//! its `Args` being the typed options in [`mmrace_proto::spec`] and `R` its
//! typed results in [`mmrace_proto::results`]: it runs until
//! `ctx.should_stop()`, counts its operations with `ctx.op(party)`, and
//! returns its results (they go into the report's `result.data`).
//! A scenario returns `Err` only for harness failures (a setup step that
//! could not be done); kernel findings are the host's business, from the
//! console.

pub mod bench;
pub mod exec;
pub mod oom_stall;
pub mod pairs;
pub mod selftests_mm;
pub mod shell_baseline;
pub mod smoke;
pub mod thp_race;

use crate::ctx::Ctx;
use mmrace_proto::results::ScenarioResult;
pub use mmrace_proto::spec::Scenario;

/// Runs `scenario` on `ctx`.
pub fn run(ctx: &Ctx, scenario: &Scenario) -> anyhow::Result<ScenarioResult> {
    Ok(match scenario {
        Scenario::Smoke(a) => ScenarioResult::Smoke(smoke::run(ctx, a)?),
        Scenario::ThpRace(a) => ScenarioResult::ThpRace(Box::new(thp_race::run(ctx, a)?)),
        Scenario::OomStall(a) => ScenarioResult::OomStall(Box::new(oom_stall::run(ctx, a)?)),
        Scenario::ShellBaseline(a) => {
            ScenarioResult::ShellBaseline(Box::new(shell_baseline::run(ctx, a)?))
        }
        Scenario::Bench(a) => ScenarioResult::Bench(Box::new(bench::run(ctx, a)?)),
        Scenario::Exec(a) => ScenarioResult::Exec(Box::new(exec::run(ctx, a)?)),
        Scenario::SelftestsMm(a) => {
            ScenarioResult::SelftestsMm(Box::new(selftests_mm::run(ctx, a)?))
        }
        Scenario::Pairs(a) => ScenarioResult::Pairs(Box::new(pairs::run(ctx, a)?)),
    })
}
