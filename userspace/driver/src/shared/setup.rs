//! Setup checks of the seed's parties that more than one scenario runs
//! (thp-race, shell-baseline, bench's `mem` phase): the hint every node
//! error ends with, and the debugfs file the splitter writes to.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};

/// debugfs' split_huge_pages: the splitter party's file.
pub const SPLIT_PATH: &str = "/sys/kernel/debug/split_huge_pages";

/// How out of a bad `--nodes`: the end of every node error.
pub const NODES_FIX: &str =
    "(set two online nodes with --nodes A,B, or turn the migrate party off with --no-migrate)";

/// Setup check: the debugfs file exists and opens for writing. The open
/// file is what the splitter then writes to.
pub fn check_splitter(path: &str) -> Result<File> {
    OpenOptions::new().write(true).open(path).with_context(|| {
        format!(
            "splitter: cannot open {path} for writing (debugfs not mounted at /sys/kernel/debug, \
             or a kernel without CONFIG_DEBUG_FS/CONFIG_TRANSPARENT_HUGEPAGE?); \
             turn the party off with --no-splitter"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_splitter_file_names_the_flag() {
        let e = check_splitter("/nonexistent/split_huge_pages").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("--no-splitter") && msg.contains("/nonexistent/split_huge_pages"),
            "{msg}"
        );
    }
}
