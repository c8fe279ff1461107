//! `shell-baseline`'s options.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Seed 000's bash reproducer under busybox sh, with a shell splitter.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// The reproducer script.
    #[arg(long, default_value = "/seed-baseline.sh", value_name = "PATH")]
    pub script: PathBuf,

    /// The shell that runs it.
    #[arg(long, default_value = "/bin/sh", value_name = "PATH")]
    pub shell: PathBuf,

    /// The seed's writer program (thp_alloc.c, built static).
    #[arg(long, default_value = "/thp_alloc", value_name = "PATH")]
    pub writer: PathBuf,

    /// The two NUMA nodes `migratepages` moves the writer between.
    #[arg(long, value_delimiter = ',', default_value = "0,1", value_name = "A,B")]
    pub nodes: Vec<u32>,

    /// No shell splitter loop (the seed as posted had none).
    #[arg(long)]
    pub no_splitter: bool,

    /// Seconds the script gets to end its loops after the stop file appears
    /// (then its process group is SIGKILLed).
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub stop_grace: u64,
}

crate::spec::clap_default!(Args);
