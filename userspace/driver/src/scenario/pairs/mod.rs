//! `pairs`: every pair of mm operations meets on one fresh object per
//! round, and the object's data is verified after every round.
//!
//! Each slice takes a pair of user ops (now and then a triple) and an
//! object kind, and runs rounds: a fresh object ([`object`]), the ops on
//! their own threads pinned to different CPUs and released by the shared
//! fuzzy start offsets, then the join and a check of every page against
//! what the ops must leave ([`model`]). A page that does not hold it is a
//! data-corruption finding through the data oracle, naming the pair, the
//! kind, the page and the expected and found stamps.
//!
//! - [`object`]: the object trait and the kinds' makers ([`kinds`]).
//! - [`op`]: the op trait; [`ops`]: the ops.
//! - [`model`]: the page expectation model.

pub mod kinds;
pub mod model;
pub mod object;
pub mod op;
pub mod ops;

use crate::ctx::Ctx;
use anyhow::{bail, Result};
use mmrace_proto::results::pairs::PairsResult;
pub use mmrace_proto::spec::pairs::Args;

pub fn run(_ctx: &Ctx, a: &Args) -> Result<PairsResult> {
    if let Err(e) = a.check() {
        bail!("pairs: {e}");
    }
    bail!("pairs: the engine is not built yet (object and op traits only)")
}
