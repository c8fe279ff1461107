//! `smoke`: proves mmrace.ko's counters move, in a few seconds and
//! deterministically, before any race scenario is trusted. Each iteration
//! faults two THPs, clears soft-dirty, splits one huge pmd with a partial
//! munmap and (with two NUMA nodes) migrates the process to the other node
//! and back; then the matching counters must have risen. A counter that did
//! not is a harness failure: a probe that does not fire would make every
//! race scenario report "nothing happened" forever. First it checks that
//! malformed writes to debugfs `reset` fail with EINVAL, and that
//! `inject/add` refuses unknown symbols with ENOENT and malformed text with
//! EINVAL ([`inject::MUST_REFUSE`]). Two injection points, one at
//! [`inject::SMOKE_POINT`] and one at the entry of the operation
//! [`inject::SMOKE_OP`] (`op=`), 1 us on every call, must then count calls,
//! delay each one, and go away through `inject/remove`. Last before the
//! iterations, two threads race on one THP and debugfs `meets` must move
//! ([`meets_check`]).

use crate::ctx::Ctx;
use crate::oracle::{mem, Check, Op};
use crate::{counters, inject, meets_check, mm, numa, vmstat};
use anyhow::{bail, Result};
use mmrace_proto::counters::name;
use mmrace_proto::oracle::{region, Expected, Stamp, UNIT};
use mmrace_proto::results::SmokeResult;
use mmrace_proto::spec::amplify::Target;
pub use mmrace_proto::spec::smoke::Args;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

/// The counters every smoke run must move, and the one that needs migration.
pub const REQUIRED: &[&str] = &[name::SOFTDIRTY_CLEAR, name::PMD_SPLIT];
pub const REQUIRED_WITH_MIGRATION: &str = name::THP_MIGRATE;

/// The /proc/vmstat keys the report keeps (the rest is noise here).
const VMSTAT_PREFIXES: &[&str] = &["thp_", "pgmigrate_"];

pub fn run(ctx: &Ctx, a: &Args) -> Result<SmokeResult> {
    let nodes = numa::online_nodes()?;
    let migrate = match (a.no_migrate, nodes.as_slice()) {
        (false, [first, second, ..]) => Some((*first, *second)),
        _ => None,
    };
    ctx.say(match migrate {
        Some((from, to)) => format!("smoke: migrating between nodes {from} and {to}"),
        None if a.no_migrate => "smoke: migration off (--no-migrate)".to_string(),
        None => format!("smoke: migration off (online nodes {nodes:?}, need two)"),
    });
    if !mm::thp_for_madvised() {
        ctx.say(format!(
            "smoke: THP mode is {:?}: no huge pages will be faulted",
            mm::thp_mode()
        ));
    }

    counters::check_reset_rejects_garbage()?;
    inject::disarm_all()?;
    inject::check_refusals()?;
    let meets_cells = meets_check::run(ctx, migrate)?;
    let point = inject::arm_smoke_point()?;
    let op_symbol = inject::add_op_point(inject::SMOKE_OP)?;
    let (c0, v0) = (counters::read()?, vmstat::read()?);
    let mut iterations = 0u64;
    loop {
        iteration(ctx, migrate, iterations)?;
        iterations += 1;
        if ctx.should_stop() {
            break;
        }
    }
    let (c1, v1) = (counters::read()?, vmstat::read()?);
    let rows = point.report().points;
    let row_of = |name: &str| rows.iter().find(|r| r.point == name).cloned();
    let (row, op_row) = (row_of(inject::SMOKE_POINT), row_of(op_symbol));
    inject::remove_point(&Target::new(inject::SMOKE_POINT))?;
    inject::remove_op_point(inject::SMOKE_OP)?;
    drop(point);

    let cd = counters::delta(&c0, &c1);
    let vd = vmstat::with_prefixes(&vmstat::nonzero(&vmstat::delta(&v0, &v1)), VMSTAT_PREFIXES);
    let mut still = unmoved(&cd, &vd, migrate.is_some());
    let data = SmokeResult {
        iterations,
        nodes,
        migrate: migrate.is_some(),
        counters: cd,
        vmstat: vd,
        data_oracle: ctx.oracle.summary(),
        inject_point: row,
        op_point: op_row,
        meets_cells,
    };
    still.extend(inject_unmoved(
        &[
            (inject::SMOKE_POINT, data.inject_point.as_ref()),
            (op_symbol, data.op_point.as_ref()),
        ],
        &data.counters,
    ));
    if !still.is_empty() {
        bail!(
            "counters did not move after {iterations} iterations: {} (data: {})",
            still.join(", "),
            serde_json::to_string(&data).unwrap_or_default()
        );
    }
    ctx.say(format!(
        "smoke: {iterations} iterations, counters moved: {}",
        mmrace_proto::counters::fmt_deltas(&vmstat::nonzero(&data.counters))
    ));
    Ok(data)
}

/// The checks that failed: required mmrace counters that stayed at zero,
/// and `vmstat:thp_fault_alloc` if no THP was faulted at all (then nothing
/// else could have moved for the right reason).
pub fn unmoved(
    counters: &BTreeMap<String, u64>,
    vmstat: &BTreeMap<String, u64>,
    migrated: bool,
) -> Vec<String> {
    let mut names: Vec<&str> = REQUIRED.to_vec();
    if migrated {
        names.push(REQUIRED_WITH_MIGRATION);
    }
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|n| counters.get(*n).copied().unwrap_or(0) == 0)
        .map(str::to_string)
        .collect();
    if vmstat.get("thp_fault_alloc").copied().unwrap_or(0) == 0 {
        out.push("vmstat:thp_fault_alloc".to_string());
    }
    out
}

/// One round of the smoke workload; needs no module, so it also runs (and is
/// tested) on an ordinary machine. `migrate` is (from, to) node.
pub fn iteration(ctx: &Ctx, migrate: Option<(u32, u32)>, n: u64) -> Result<()> {
    let (pmd, page) = (mm::pmd_size(), mm::page_size());
    // Two huge pages: the first is split, the second stays PMD-mapped so it
    // migrates whole (thp_migrate).
    let mut map = mm::AlignedMap::new(2 * pmd, pmd)?;
    map.madvise(libc::MADV_HUGEPAGE)?;
    map.touch_all((n as u8) | 1);
    ctx.op("thp_touch").fetch_add(1, Ordering::Relaxed);

    // The data oracle: every 4 KiB unit stamped, checked after each step.
    let party = ctx.oracle.party("smoke");
    let base = map.as_ptr() as usize;
    let stamp = |off: usize| Stamp {
        region: region::SMOKE,
        page: (off / UNIT) as u32,
        generation: n,
    };
    for off in (0..map.len()).step_by(UNIT) {
        // SAFETY: our own mapping, all of it mapped, no references into it.
        unsafe { mem::fill(base + off, &stamp(off)) };
    }
    // The unit MADV_DONTNEED zaps after the split: zero from then on.
    let zapped = pmd / 2 + 2 * page;
    let verify = |map: &mm::AlignedMap, zap_done: bool| {
        ctx.oracle.record(party, Op::Verify, base);
        let mut units = 0;
        for &(o, l) in map.mapped_ranges() {
            for off in (o..o + l).step_by(UNIT) {
                let expected = match zap_done && (zapped..zapped + page).contains(&off) {
                    true => Expected::Zero,
                    false => Expected::Stamp(stamp(off)),
                };
                let (addr, unit) = (base + off, (off / UNIT) as u64);
                // SAFETY: a mapped unit of our own mapping.
                unsafe {
                    mem::check(
                        &ctx.oracle,
                        Check::Smoke,
                        region::SMOKE,
                        addr,
                        unit,
                        expected,
                    )
                };
                units += 1;
            }
        }
        ctx.oracle.verified(units);
    };

    mm::clear_soft_dirty()?;
    ctx.oracle.record(party, Op::ClearRefs, 0);
    ctx.op("clear_refs").fetch_add(1, Ordering::Relaxed);
    verify(&map, false);

    ctx.oracle.record(party, Op::Munmap, base + pmd / 2);
    map.unmap(pmd / 2, page)?;
    ctx.op("split").fetch_add(1, Ordering::Relaxed);
    verify(&map, false);
    // A zapped range must read back as zero.
    ctx.oracle.record(party, Op::Dontneed, base + zapped);
    // SAFETY: a page of our own mapping, still mapped, no references into it.
    if unsafe {
        libc::madvise(
            (base + zapped) as *mut libc::c_void,
            page,
            libc::MADV_DONTNEED,
        )
    } != 0
    {
        bail!(
            "madvise(MADV_DONTNEED): {}",
            std::io::Error::last_os_error()
        );
    }
    verify(&map, true);

    if let Some((from, to)) = migrate {
        for (a, b) in [(from, to), (to, from)] {
            ctx.oracle.record(party, Op::Migrate, 0);
            numa::migrate_pages(0, &[a], &[b])?;
            ctx.op("migrate").fetch_add(1, Ordering::Relaxed);
            verify(&map, true);
        }
    }
    drop(map);
    Ok(())
}

/// The injection points' checks that failed: each (named as
/// `inject/points` lists it) must have seen calls and delayed each of them
/// (1 us on every call), and `inject_delays` must have counted at least
/// their delays together.
pub fn inject_unmoved(
    rows: &[(&str, Option<&inject::PointRow>)],
    counters: &BTreeMap<String, u64>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut delays = 0;
    for (point, row) in rows {
        let Some(r) = row else {
            out.push(format!("inject:{point} (not in inject/points)"));
            continue;
        };
        if r.calls == 0 {
            out.push(format!("inject:{point} calls"));
        }
        if r.delays != r.calls {
            out.push(format!(
                "inject:{point} delays {} != calls {}",
                r.delays, r.calls
            ));
        }
        delays += r.delays;
    }
    let counted = counters.get(name::INJECT_DELAYS).copied().unwrap_or(0);
    if counted < delays {
        out.push(format!(
            "inject_delays {counted} < the points' {delays} delays"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;
    use std::time::Duration;

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn judges_the_injection_points() {
        let row = |name: &str, calls, delays| {
            inject::PointRow::parse(&format!(
                "{name} armed {calls} {delays} delay_us=1 every_nth=1 probability_pct=0"
            ))
            .unwrap()
        };
        let c = map(&[("inject_delays", 5)]);
        let judge = |zap: Option<(u64, u64)>| {
            let r = zap.map(|(calls, delays)| row("zap_huge_pmd", calls, delays));
            inject_unmoved(&[("zap_huge_pmd", r.as_ref())], &c)
        };
        assert!(judge(Some((5, 5))).is_empty());
        assert_eq!(judge(Some((0, 0))), ["inject:zap_huge_pmd calls"]);
        assert_eq!(judge(Some((6, 6))).len(), 1);
        assert_eq!(judge(Some((5, 4))).len(), 1);
        assert_eq!(judge(None).len(), 1);
        // Both points, at a function and at an operation: their delays
        // together must be counted.
        let op = "do_huge_pmd_anonymous_page";
        let both = |zap: u64, at_op: Option<u64>| {
            let z = row("zap_huge_pmd", zap, zap);
            let o = at_op.map(|n| row(op, n, n));
            inject_unmoved(&[("zap_huge_pmd", Some(&z)), (op, o.as_ref())], &c)
        };
        assert!(both(2, Some(3)).is_empty());
        assert_eq!(both(3, Some(3)), ["inject_delays 5 < the points' 6 delays"]);
        assert_eq!(
            both(2, None),
            ["inject:do_huge_pmd_anonymous_page (not in inject/points)"]
        );
    }

    #[test]
    fn judges_which_counters_did_not_move() {
        let good = map(&[("softdirty_clear", 3), ("pmd_split", 2), ("thp_migrate", 4)]);
        let thp = map(&[("thp_fault_alloc", 2)]);
        assert!(unmoved(&good, &thp, true).is_empty());
        let no_migrate = map(&[("softdirty_clear", 3), ("pmd_split", 2), ("thp_migrate", 0)]);
        assert!(unmoved(&no_migrate, &thp, false).is_empty());
        assert_eq!(unmoved(&no_migrate, &thp, true), ["thp_migrate"]);
        assert_eq!(
            unmoved(&BTreeMap::new(), &BTreeMap::new(), false),
            ["softdirty_clear", "pmd_split", "vmstat:thp_fault_alloc"]
        );
    }

    /// The workload on this machine, without the module: it must run, count
    /// its ops, and (when THP serves madvised memory) make the kernel try a
    /// THP, which vmstat shows as an alloc or a fallback.
    #[test]
    fn workload_runs_without_the_module() {
        let (out, _lines) = Output::memory();
        let ctx = Ctx::new(1, Duration::ZERO, out);
        let before = vmstat::read().unwrap();
        for n in 0..3 {
            iteration(&ctx, None, n).unwrap();
        }
        let d = vmstat::delta(&before, &vmstat::read().unwrap());
        let ops = ctx.ops.snapshot();
        assert_eq!(ops["thp_touch"], 3);
        assert_eq!(ops["clear_refs"], 3);
        assert_eq!(ops["split"], 3);
        assert!(!ops.contains_key("migrate"));
        let data = ctx.oracle.summary();
        assert_eq!(data.mismatches, 0, "{:?}", ctx.oracle.take_new());
        // Three checks of the two THPs per iteration, the last two without
        // the unmapped page.
        let units = 2 * (mm::pmd_size() / UNIT) as u64;
        assert_eq!(data.verified, 3 * (3 * units - 2), "{data:?}");
        if mm::thp_for_madvised() {
            let tried =
                d.get("thp_fault_alloc").unwrap_or(&0) + d.get("thp_fault_fallback").unwrap_or(&0);
            assert!(tried > 0, "no THP fault tried: {d:?}");
            if d.get("thp_fault_alloc").unwrap_or(&0) > &0 {
                assert!(
                    d.get("thp_split_pmd").unwrap_or(&0) > &0,
                    "THP faulted but pmd not split: {d:?}"
                );
            }
        }
    }

    #[test]
    fn migrates_when_two_nodes_are_online() {
        let nodes = numa::online_nodes().unwrap();
        let [a, b, ..] = nodes[..] else { return };
        let (out, _lines) = Output::memory();
        let ctx = Ctx::new(1, Duration::ZERO, out);
        iteration(&ctx, Some((a, b)), 0).unwrap();
        assert_eq!(ctx.ops.snapshot()["migrate"], 2);
    }
}
