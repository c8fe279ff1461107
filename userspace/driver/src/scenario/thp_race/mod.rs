//! Placeholder until the thp-race scenario lands (written separately).

use crate::ctx::Ctx;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub fn run(_ctx: &Ctx, _a: &Args) -> anyhow::Result<serde_json::Value> {
    anyhow::bail!("thp-race: not implemented")
}
