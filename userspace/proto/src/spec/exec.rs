//! `exec`'s options: any program in the guest, run under mmrace's counters,
//! console oracles and verdict (what virtme-ng's `--exec` does, judged).

use serde::{Deserialize, Serialize};

#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Args {
    /// Lines of the program's output (stdout and stderr, merged) the report
    /// keeps: the last ones. The whole output goes to the wire channel.
    #[arg(long, value_name = "N", default_value_t = 40)]
    pub tail_lines: usize,
    /// The program's working directory.
    #[arg(long, value_name = "DIR", default_value = "/tmp")]
    pub cwd: String,
    /// The program (its path in the guest) and its arguments. The run's
    /// duration caps it: at the end it is killed, and that is reported.
    #[arg(value_name = "PROGRAM", required = true, num_args = 1..,
          trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<String>,
}

/// Needed by `#[serde(default)]`; `argv` has no default on the command
/// line, so this is not [`crate::spec::clap_defaults`].
impl Default for Args {
    fn default() -> Self {
        Args {
            tail_lines: 40,
            cwd: "/tmp".into(),
            argv: Vec::new(),
        }
    }
}
