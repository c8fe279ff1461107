//! `smoke`'s options.

use serde::{Deserialize, Serialize};

#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// Skip the NUMA migration step even when two nodes are online.
    #[arg(long)]
    pub no_migrate: bool,
}

crate::spec::clap_default!(Args);
