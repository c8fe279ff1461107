//! `exec`: runs one program (any static program, or a script with busybox
//! in the guest) under mmrace's counters and the host's console oracles,
//! as virtme-ng's `--exec` does. The program's exit status is a test
//! result: 0 passes, anything else (a signal, being killed at the end of
//! the duration) fails. The scenario itself fails only when the program
//! cannot be started.

use crate::ctx::Ctx;
use crate::numa;
use crate::shared::program::{self, Launch};
use anyhow::{bail, Result};
use mmrace_proto::results::suite::SuiteResult;
pub use mmrace_proto::spec::exec::Args;

pub fn run(ctx: &Ctx, a: &Args) -> Result<SuiteResult> {
    let Some(prog) = a.argv.first() else {
        bail!("exec: no program given");
    };
    let launch = Launch {
        name: a.argv.join(" "),
        argv: a.argv.clone(),
        cwd: a.cwd.clone(),
        deadline: ctx.start + ctx.duration,
        tail_lines: a.tail_lines,
        label: "exec".into(),
    };
    ctx.say(format!("exec: {} (cwd {})", launch.name, a.cwd));
    let p = program::run(ctx, &launch, program::zero_passes).map_err(|e| {
        anyhow::anyhow!(
            "exec: cannot start {prog}: {e} (in the guest? a dynamically linked program \
             needs its libraries there: link it statically)"
        )
    })?;
    ctx.say(format!("exec: {}", program::summary_line(&p)));
    Ok(SuiteResult {
        programs: vec![p],
        cpus: crate::sysinfo::online_cpus(),
        nodes: numa::online_nodes().unwrap_or_default(),
    })
}
