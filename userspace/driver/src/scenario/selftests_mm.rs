//! `selftests-mm`: the kernel's own tools/testing/selftests/mm programs that
//! touch THP, migration, soft-dirty and splitting
//! ([`mmrace_proto::spec::selftests_mm::TESTS`]), one after the other, each
//! under mmrace's counters (a delta per program). The host's scripts build
//! them statically from the kernel source in use and put them in
//! [`GUEST_DIR`]. A program exits 0 (pass), KSFT_SKIP (skip) or anything
//! else (fail); its own KTAP results are kept. A program the tree does not
//! have, or that the duration leaves no time for, is a skip that says so.
//! The guest gets swap on zram and reserved hugetlb pages ([`NEEDS`]).

use crate::ctx::Ctx;
use crate::memenv::{self, Need};
use crate::numa;
use crate::shared::disk;
use crate::shared::khugepaged::KhugepagedGuard;
use crate::shared::program::{self, Launch};
use anyhow::Result;
use mmrace_proto::results::suite::{Exit, ProgramRun, Rerun, Status, SuiteResult};
pub use mmrace_proto::spec::selftests_mm::Args;
use mmrace_proto::spec::selftests_mm::{known_race, Test, Xfs, GUEST_DIR, KSFT_SKIP};
use std::path::Path;

/// Where the XFS disk the host attaches is mounted.
pub const XFS_MOUNT: &str = "/mnt/xfs";

/// khugepaged's swap-in cases page out with MADV_PAGEOUT and need swap;
/// migration's hugetlb cases need free 2 MiB pages.
const NEEDS: &[Need] = &[Need::Swap, Need::Hugetlb];

/// kselftest's exit codes.
pub fn kselftest_status(exit: &Exit) -> Status {
    match exit {
        Exit::Code { code: 0 } => Status::Pass,
        Exit::Code { code: KSFT_SKIP } | Exit::NotRun { .. } => Status::Skip,
        _ => Status::Fail,
    }
}

/// The XFS directory: the one given, or the host's disk mounted here, or
/// none (the tests that need one are skipped, as run_vmtests.sh does).
fn xfs_dir(ctx: &Ctx, a: &Args) -> (Option<String>, Option<disk::Fs>) {
    if let Some(d) = &a.xfs_dir {
        return (Some(d.clone()), None);
    }
    let Ok(dev) = disk::find_by_serial(Path::new("/sys/block"), disk::SERIAL) else {
        ctx.say("selftests-mm: no XFS disk attached: the tests that need one are skipped");
        return (None, None);
    };
    match disk::Fs::mount(&dev, Path::new(XFS_MOUNT)) {
        Ok(fs) => (Some(XFS_MOUNT.to_string()), Some(fs)),
        Err(e) => {
            ctx.say(format!(
                "selftests-mm: {e:#}: the tests that need XFS are skipped"
            ));
            (None, None)
        }
    }
}

pub fn run(ctx: &Ctx, a: &Args) -> Result<SuiteResult> {
    let tests = a.selected();
    let cpus = crate::sysinfo::online_cpus();
    let nodes = numa::online_nodes().unwrap_or_default();
    ctx.say(format!(
        "selftests-mm: {} programs from {GUEST_DIR}; {cpus} CPUs, nodes {nodes:?}",
        tests.len()
    ));
    if cpus < 4 {
        ctx.say("selftests-mm: fewer than 4 CPUs: migration will SKIP (it needs numa_num_task_cpus() - 2 threads)");
    }
    let (xfs, _mounted) = xfs_dir(ctx, a);
    let env = memenv::prepare(NEEDS)?;
    ctx.say(format!("selftests-mm: {}", env.describe()));
    let _khugepaged = match a.khugepaged_scan_ms {
        Some(ms) => {
            let g = KhugepagedGuard::set(ms)?;
            ctx.say(format!(
                "selftests-mm: khugepaged scans every {ms} ms (was {} ms)",
                g.setting.scan_sleep_ms_before
            ));
            Some(g)
        }
        None => None,
    };
    let programs = tests
        .iter()
        .map(|t| run_known(ctx, a, t, xfs.as_deref()))
        .collect();
    let r = SuiteResult {
        programs,
        cpus,
        nodes,
    };
    ctx.say(format!(
        "selftests-mm: programs {}; their cases {}",
        r.programs_tally(),
        r.cases_tally()
    ));
    Ok(r)
}

/// Runs `t`, and once more when it failed by a known race of the test
/// itself (`KNOWN_RACES`): the second run is the result, and keeps the
/// first.
fn run_known(ctx: &Ctx, a: &Args, t: &Test, xfs: Option<&str>) -> ProgramRun {
    let first = run_one(ctx, a, t, xfs);
    let known = match first.status {
        Status::Fail => known_race(t, &first.output_tail, &first.ktap),
        _ => None,
    };
    let Some(k) = known.filter(|_| !ctx.should_stop()) else {
        return first;
    };
    ctx.say(format!(
        "selftests-mm: {} failed ({}), a known race of the test: {}; once more",
        first.name,
        k.sign.describe(),
        k.why
    ));
    let mut again = run_one(ctx, a, t, xfs);
    again.rerun = Some(Rerun {
        sign: k.sign.describe(),
        why: k.why.to_string(),
        first: Box::new(first),
    });
    again
}

/// One program: run, or a skip that says why not.
fn run_one(ctx: &Ctx, a: &Args, t: &Test, xfs: Option<&str>) -> ProgramRun {
    let path = format!("{GUEST_DIR}/{}", t.binary);
    let mut argv = vec![path.clone()];
    argv.extend(a.args_of(t, xfs));
    let name = std::iter::once(t.binary.to_string())
        .chain(a.args_of(t, None))
        .collect::<Vec<_>>()
        .join(" ");
    let p = if !Path::new(&path).exists() {
        program::not_run(name, argv, "not built: this kernel tree does not have it")
    } else if t.xfs == Xfs::Required && xfs.is_none() {
        program::not_run(name, argv, "needs an XFS directory and there is none")
    } else if ctx.should_stop() {
        program::not_run(name, argv, "the run's duration was over")
    } else {
        ctx.say(format!("selftests-mm: running {}", argv.join(" ")));
        let launch = Launch {
            name: name.clone(),
            argv: argv.clone(),
            cwd: GUEST_DIR.into(),
            deadline: ctx.start + ctx.duration,
            tail_lines: a.tail_lines,
            label: format!("selftests-mm {name}"),
        };
        program::run(ctx, &launch, kselftest_status).unwrap_or_else(|e| {
            let mut p = program::not_run(name, argv, "");
            p.exit = Exit::SpawnFailed {
                error: e.to_string(),
            };
            p.status = Status::Fail;
            p
        })
    };
    ctx.say(format!("selftests-mm: {}", program::summary_line(&p)));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kselftest_exit_codes() {
        assert_eq!(kselftest_status(&Exit::Code { code: 0 }), Status::Pass);
        assert_eq!(kselftest_status(&Exit::Code { code: 4 }), Status::Skip);
        assert_eq!(kselftest_status(&Exit::Code { code: 1 }), Status::Fail);
        assert_eq!(kselftest_status(&Exit::Signal { signal: 11 }), Status::Fail);
        assert_eq!(
            kselftest_status(&Exit::Killed { after_s: 3.0 }),
            Status::Fail
        );
    }
}
