//! The scenarios. Each is a module with `run(&Ctx, &Args) -> Result<R>`,
//! its `Args` being the typed options in [`mmrace_proto::spec`] and `R` its
//! typed results in [`mmrace_proto::results`]: it runs until
//! `ctx.should_stop()`, counts its operations with `ctx.op(party)`, and
//! returns its results (they go into the report's `result.data`).
//! A scenario returns `Err` only for harness failures (a setup step that
//! could not be done); kernel findings are the host's business, from the
//! console.
//!
//! No scenario imports another: what several share is in
//! [`crate::shared`], and a scenario that runs another as a phase of its
//! own (bench runs shell-baseline, thp-race and pairs) does it through this
//! module, with that scenario's typed options as a [`SubScenario`].

pub mod bench;
pub mod exec;
pub mod oom_stall;
pub mod pairs;
pub mod selftests_mm;
pub mod shell_baseline;
pub mod smoke;
pub mod thp_race;

use crate::ctx::Ctx;
use mmrace_proto::results::pairs::PairsResult;
use mmrace_proto::results::thp_race::{ShellBaselineResult, ThpRaceResult};
use mmrace_proto::results::ScenarioResult;
use mmrace_proto::spec;
pub use mmrace_proto::spec::Scenario;

/// Runs `scenario` on `ctx`.
pub fn run(ctx: &Ctx, scenario: &Scenario) -> anyhow::Result<ScenarioResult> {
    Ok(match scenario {
        Scenario::Smoke(a) => ScenarioResult::Smoke(Box::new(smoke::run(ctx, a)?)),
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

/// A scenario's typed options that another scenario may run as a phase:
/// `args.run_in(ctx)` runs that scenario and gives its typed result. The
/// scenarios that can be phases are the ones implementing it here.
pub trait SubScenario {
    type Output;
    fn run_in(&self, ctx: &Ctx) -> anyhow::Result<Self::Output>;
}

impl SubScenario for spec::thp_race::Args {
    type Output = ThpRaceResult;
    fn run_in(&self, ctx: &Ctx) -> anyhow::Result<ThpRaceResult> {
        thp_race::run(ctx, self)
    }
}

impl SubScenario for spec::pairs::Args {
    type Output = PairsResult;
    fn run_in(&self, ctx: &Ctx) -> anyhow::Result<PairsResult> {
        pairs::run(ctx, self)
    }
}

impl SubScenario for spec::shell_baseline::Args {
    type Output = ShellBaselineResult;
    fn run_in(&self, ctx: &Ctx) -> anyhow::Result<ShellBaselineResult> {
        shell_baseline::run(ctx, self)
    }
}
