//! The scenarios. Each is a module with
//! `run(&Ctx, &Args) -> anyhow::Result<serde_json::Value>`, its `Args` being
//! the typed options in [`mmrace_proto::spec`]: it runs until
//! `ctx.should_stop()`, counts its operations with `ctx.op(party)`, and
//! returns its scenario-specific results (they go into the report's `data`).
//! A scenario returns `Err` only for harness failures (a setup step that
//! could not be done); kernel findings are the host's business, from the
//! console.

pub mod bench;
pub mod oom_stall;
pub mod shell_baseline;
pub mod smoke;
pub mod thp_race;

use crate::ctx::Ctx;
pub use mmrace_proto::spec::Scenario;

/// Runs `scenario` on `ctx`.
pub fn run(ctx: &Ctx, scenario: &Scenario) -> anyhow::Result<serde_json::Value> {
    match scenario {
        Scenario::Smoke(a) => smoke::run(ctx, a),
        Scenario::ThpRace(a) => thp_race::run(ctx, a),
        Scenario::OomStall(a) => oom_stall::run(ctx, a),
        Scenario::ShellBaseline(a) => shell_baseline::run(ctx, a),
        Scenario::Bench(a) => bench::run(ctx, a),
    }
}
