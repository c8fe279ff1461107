//! The scenarios. Each is a module with a clap `Args` struct and
//! `run(&Ctx, &Args) -> anyhow::Result<serde_json::Value>`: it runs until
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

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Scenario {
    /// Proves the module's counters move: a THP is faulted, split, soft-dirty
    /// cleared and migrated, and the matching counters must rise.
    Smoke(smoke::Args),
    /// Seed 000: THP writer vs clear_refs vs migrate_pages vs splitters.
    ThpRace(thp_race::Args),
    /// Seed 003: XFS file writers vs a memory consumer, OOM kill after OOM
    /// kill; times the kill, the victim's exit and direct reclaim.
    OomStall(oom_stall::Args),
    /// Seed 000's own reproducer under busybox sh (the baseline of `make bench`).
    ShellBaseline(shell_baseline::Args),
    /// `make bench`'s phases in one boot: memcpy/migrate limits, shell
    /// baseline, thp-race, probe overhead, thp-race amplified.
    Bench(bench::Args),
}

impl Scenario {
    /// The name used on the command line, the kernel command line and in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Smoke(_) => "smoke",
            Scenario::ThpRace(_) => "thp-race",
            Scenario::OomStall(_) => "oom-stall",
            Scenario::ShellBaseline(_) => "shell-baseline",
            Scenario::Bench(_) => "bench",
        }
    }

    pub fn run(&self, ctx: &Ctx) -> anyhow::Result<serde_json::Value> {
        match self {
            Scenario::Smoke(a) => smoke::run(ctx, a),
            Scenario::ThpRace(a) => thp_race::run(ctx, a),
            Scenario::OomStall(a) => oom_stall::run(ctx, a),
            Scenario::ShellBaseline(a) => shell_baseline::run(ctx, a),
            Scenario::Bench(a) => bench::run(ctx, a),
        }
    }

    /// The scenario's settings, recorded in the Hello message and the report.
    pub fn params(&self) -> std::collections::BTreeMap<String, String> {
        let dbg = match self {
            Scenario::Smoke(a) => format!("{a:?}"),
            Scenario::ThpRace(a) => format!("{a:?}"),
            Scenario::OomStall(a) => format!("{a:?}"),
            Scenario::ShellBaseline(a) => format!("{a:?}"),
            Scenario::Bench(a) => format!("{a:?}"),
        };
        [("args".to_string(), dbg)].into()
    }
}
