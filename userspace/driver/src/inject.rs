//! Arms and disarms `--amplify` ([`Spec`]) through mmrace.ko's
//! `/sys/kernel/debug/mmrace/inject/`: the global knobs of the built-in
//! point (`__split_huge_pmd`), `add` for `at=` points and for `random`'s
//! [`RANDOM_POINTS`], `clear` to remove them, and `points` for what ran.
//!
//! The run arms before the parties start and disarms when it ends (the
//! [`Armed`] guard's drop: the global knobs back to 0, the added points
//! removed), also on errors and panics.

use anyhow::{bail, Context, Result};
use mmrace_proto::counters::DEBUGFS_DIR;
pub use mmrace_proto::results::inject::{
    AmplifyReport, ArmedPoint, Origin, PointRow, PointState, SkippedPoint,
};
use mmrace_proto::spec::amplify::{Knobs, Spec, Target, KNOBS};
use nix::errno::Errno;

/// `random`'s points: the mm functions thp-race's parties (writer faults
/// and kills, clear_refs, migrate_pages, the split_huge_pages splitter, the
/// racers' munmap/MADV_DONTNEED/mprotect/mremap/MAP_FIXED remaps) and the
/// /proc walkers, khugepaged and the OOM reaper run through, each a place
/// where a pmd or pte is read or changed under a lock another party may be
/// waiting for, or just before taking it. The one list of them: the module
/// takes any point, and which points are worth a delay depends on the
/// workload, which the driver knows. A function the running kernel does not
/// have (inlined, renamed, not built) is skipped and reported.
pub const RANDOM_POINTS: &[&str] = &[
    // THP pmd split and folio split
    "__split_huge_pmd",
    "split_huge_pmd_locked",
    "pmdp_invalidate",
    "__folio_split",
    "unmap_folio",
    "remap_page",
    // zap, mprotect, mremap, fork, faults on a huge pmd
    "zap_huge_pmd",
    "change_huge_pmd",
    "move_huge_pmd",
    "move_page_tables",
    "copy_huge_pmd",
    "do_huge_pmd_wp_page",
    "huge_pmd_set_accessed",
    // migration
    "set_pmd_migration_entry",
    "remove_migration_pmd",
    "try_to_migrate_one",
    "try_to_unmap_one",
    "remove_migration_ptes",
    "remove_migration_pte",
    "migrate_pages_batch",
    "migrate_folio_unmap",
    "migrate_folio_move",
    // khugepaged and MADV_COLLAPSE
    "collapse_huge_page",
    "__collapse_huge_page_isolate",
    "madvise_collapse",
    // /proc walkers: clear_refs, pagemap, smaps, numa_maps
    "clear_refs_pte_range",
    "pagemap_pmd_range",
    "smaps_pte_range",
    "gather_pte_stats",
    // TLB flush and the OOM reaper
    "flush_tlb_mm_range",
    "__oom_reap_task_mm",
];

pub fn inject_dir() -> String {
    format!("{DEBUGFS_DIR}/inject")
}

fn write(file: &str, text: &str) -> std::io::Result<()> {
    crate::kfile::write(&format!("{}/{file}", inject_dir()), text)
}

fn write_knob(knob: &str, value: u64) -> Result<()> {
    write(knob, &format!("{value}\n"))
        .with_context(|| format!("cannot write {value} to {}/{knob}", inject_dir()))
}

/// Zeroes every global knob (delay_us first: it disarms the built-in point)
/// and removes every added point (where the module has `clear`).
pub fn disarm_all() -> Result<()> {
    let mut first_err = None;
    for k in KNOBS.iter().rev() {
        if let Err(e) = write_knob(k, 0) {
            first_err.get_or_insert(e);
        }
    }
    if has_add() {
        if let Err(e) = write("clear", "1\n") {
            first_err
                .get_or_insert(anyhow::Error::new(e).context("cannot clear the injection points"));
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Whether the module takes points at any function (`inject/add`).
fn has_add() -> bool {
    std::path::Path::new(&format!("{}/add", inject_dir())).exists()
}

/// The `inject/add` line for a point.
pub fn add_line(target: &Target, k: &Knobs) -> String {
    format!(
        "{target} delay_us={} every_nth={} probability_pct={}\n",
        k.delay_us, k.every_nth, k.probability_pct
    )
}

/// What the module's refusal of a point means (the errno of the write).
pub fn refusal(errno: i32) -> &'static str {
    match Errno::from_raw(errno) {
        Errno::ENOENT => "no such symbol on this kernel",
        Errno::EINVAL => "not probeable (blacklisted, not text) or a knob over its cap",
        Errno::EILSEQ => "the offset is not on an instruction boundary",
        Errno::EEXIST => "a point is there already",
        Errno::ENOSPC => "every injection slot of the module is taken",
        _ => "refused by register_kprobe()",
    }
}

/// The module's `inject/points`, the built-in point first. Lines it cannot
/// read are left out.
pub fn points() -> Vec<PointRow> {
    std::fs::read_to_string(format!("{}/points", inject_dir()))
        .unwrap_or_default()
        .lines()
        .filter_map(PointRow::parse)
        .collect()
}

/// The armed points; dropping it disarms them.
pub struct Armed {
    spec: Spec,
    armed: Vec<ArmedPoint>,
    skipped: Vec<SkippedPoint>,
}

impl Armed {
    pub fn armed(&self) -> &[ArmedPoint] {
        &self.armed
    }

    pub fn skipped(&self) -> &[SkippedPoint] {
        &self.skipped
    }

    /// The report, with `inject/points` read now.
    pub fn report(&self) -> AmplifyReport {
        AmplifyReport {
            spec: self.spec.clone(),
            armed: self.armed.clone(),
            skipped: self.skipped.clone(),
            points: points(),
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if let Err(e) = disarm_all() {
            eprintln!("mmrace-driver: --amplify: could not disarm the injection points: {e:#}");
        }
    }
}

/// Arms `spec`: the global knobs (all 0 unless an item without `at=` sets
/// them), then each `at=` point (a refusal is an error naming the point),
/// then `random`'s points that no `at=` item names (a refusal skips the
/// point and is reported).
pub fn arm(spec: &Spec) -> Result<Armed> {
    if !std::path::Path::new(&inject_dir()).is_dir() {
        bail!(
            "--amplify: {} does not exist (mmrace.ko without race-window injection?)",
            inject_dir()
        );
    }
    let adds = spec.at().next().is_some() || spec.random().is_some();
    if adds && !has_add() {
        bail!(
            "--amplify {spec}: {}/add does not exist (a mmrace.ko older than injection at any function?)",
            inject_dir()
        );
    }
    disarm_all()?;
    let mut armed = Armed {
        spec: spec.clone(),
        armed: Vec::new(),
        skipped: Vec::new(),
    };
    if let Some(k) = spec.builtin() {
        for name in KNOBS {
            write_knob(name, k.get(name).unwrap_or(0))
                .context("--amplify (the module refuses values over its caps with EINVAL)")?;
        }
        armed.armed.push(ArmedPoint {
            point: "__split_huge_pmd".into(),
            from: Origin::Builtin,
            knobs: *k,
        });
    }
    for (target, k) in spec.at() {
        if let Err(e) = write("add", &add_line(target, k)) {
            let why = e.raw_os_error().map_or("", refusal);
            return Err(anyhow::Error::new(e)).with_context(|| {
                format!("--amplify at={target}: mmrace.ko refused the point: {why}")
            });
        }
        armed.armed.push(ArmedPoint {
            point: target.to_string(),
            from: Origin::At,
            knobs: *k,
        });
    }
    if let Some(k) = spec.random() {
        for sym in RANDOM_POINTS {
            let target = Target::new(sym);
            if spec.at().any(|(t, _)| *t == target) {
                continue;
            }
            match write("add", &add_line(&target, k)) {
                Ok(()) => armed.armed.push(ArmedPoint {
                    point: target.to_string(),
                    from: Origin::Random,
                    knobs: *k,
                }),
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(0);
                    armed.skipped.push(SkippedPoint {
                        point: target.to_string(),
                        errno: format!("{:?}", Errno::from_raw(errno)),
                        why: refusal(errno).to_string(),
                    });
                }
            }
        }
    }
    Ok(armed)
}

/// The point smoke adds: its workload unmaps a PMD-mapped THP in every
/// iteration, so `zap_huge_pmd()` runs.
pub const SMOKE_POINT: &str = "zap_huge_pmd";

/// Writes the module must refuse, with the errno it must refuse them with:
/// an unknown symbol, a blacklisted one (`get_kprobe` is a
/// `NOKPROBE_SYMBOL`), malformed text, a knob over its cap, removing a
/// point that is not there, and a bad `clear`.
pub const MUST_REFUSE: &[(&str, &str, Errno)] = &[
    (
        "add",
        "mmrace_no_such_function delay_us=1 every_nth=1\n",
        Errno::ENOENT,
    ),
    ("add", "get_kprobe delay_us=1 every_nth=1\n", Errno::EINVAL),
    ("add", "\n", Errno::EINVAL),
    ("add", "zap_huge_pmd delay_us=\n", Errno::EINVAL),
    (
        "add",
        "zap_huge_pmd delay_us=5000 every_nth=1\n",
        Errno::EINVAL,
    ),
    ("add", "zap_huge_pmd delay_us=1 delay_us=2\n", Errno::EINVAL),
    ("add", "zap_huge_pmd speed=1\n", Errno::EINVAL),
    ("add", "zap_huge_pmd+x10\n", Errno::EINVAL),
    ("add", "zap huge_pmd\n", Errno::EINVAL),
    (
        "add",
        "op=mmrace_no_such_op delay_us=1 every_nth=1\n",
        Errno::EINVAL,
    ),
    ("remove", "zap_huge_pmd\n", Errno::ENOENT),
    ("remove", "op=mmrace_no_such_op\n", Errno::EINVAL),
    ("remove", "op=zap_huge_pmd\n", Errno::ENOENT),
    ("clear", "2\n", Errno::EINVAL),
];

/// Checks [`MUST_REFUSE`] (run it with no point added).
pub fn check_refusals() -> Result<()> {
    for (file, text, want) in MUST_REFUSE {
        let path = format!("{}/{file}", inject_dir());
        match crate::kfile::write(&path, text) {
            Err(e) if e.raw_os_error() == Some(*want as i32) => {}
            Err(e) => bail!("writing {text:?} to {path}: {e}, want {want:?}"),
            Ok(()) => bail!("writing {text:?} to {path} was accepted, want {want:?}"),
        }
    }
    Ok(())
}

/// Smoke's injection point: [`SMOKE_POINT`] with a 1 us delay on every
/// call, from a clean slate; adding it twice must fail with EEXIST.
/// Dropping the guard removes it.
pub fn arm_smoke_point() -> Result<Armed> {
    let spec: Spec = format!("at={SMOKE_POINT},delay_us=1,every_nth=1")
        .parse()
        .map_err(anyhow::Error::msg)?;
    let armed = arm(&spec)?;
    let (target, knobs) = spec.at().next().expect("one at= item");
    match write("add", &add_line(target, knobs)) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(armed),
        Err(e) => bail!("adding {target} twice: {e}, want EEXIST"),
        Ok(()) => bail!("adding {target} twice was accepted, want EEXIST"),
    }
}

/// Removes the added point at `target` through `inject/remove`, and checks
/// that `inject/points` no longer lists it.
pub fn remove_point(target: &Target) -> Result<()> {
    remove_listed(&target.to_string(), &target.to_string())
}

/// Writes `place` to `inject/remove`, then checks that `inject/points` no
/// longer lists the added point it names as `listed`.
fn remove_listed(place: &str, listed: &str) -> Result<()> {
    write("remove", &format!("{place}\n"))
        .with_context(|| format!("cannot remove the injection point {place}"))?;
    // The built-in point is always listed first; an added one must be gone.
    if points().iter().skip(1).any(|r| r.point == listed) {
        bail!(
            "{listed} is still in {}/points after the removal of {place}",
            inject_dir()
        );
    }
    Ok(())
}

/// The operation of the module's table (`mmrace_ops.h`) smoke places a
/// delay at, through `op=`: its workload faults two THPs in every
/// iteration, so `anon_huge_fault` (`do_huge_pmd_anonymous_page()`) runs.
pub const SMOKE_OP: &str = mmrace_proto::ops::name::ANON_HUGE_FAULT;

/// The kernel function whose entry `op=OP` places a point at: the name
/// `inject/points` lists it by.
pub fn op_symbol(op: &str) -> Option<&'static str> {
    mmrace_proto::ops::op_defs()
        .iter()
        .find(|d| d.name == op)
        .map(|d| d.symbol)
}

/// Adds a point at the entry of the operation `op` (`op=OP`, 1 us on every
/// call); [`remove_op_point`] removes it. Returns the name `inject/points`
/// lists it by.
pub fn add_op_point(op: &str) -> Result<&'static str> {
    let symbol =
        op_symbol(op).with_context(|| format!("{op} is not an operation of mmrace_ops.h"))?;
    write("add", &format!("op={op} delay_us=1 every_nth=1\n"))
        .with_context(|| format!("cannot add an injection point at op={op}"))?;
    Ok(symbol)
}

/// Removes the point [`add_op_point`] added, by its operation's name.
pub fn remove_op_point(op: &str) -> Result<()> {
    let symbol =
        op_symbol(op).with_context(|| format!("{op} is not an operation of mmrace_ops.h"))?;
    remove_listed(&format!("op={op}"), symbol)
}

/// `--amplify` of scenario `who`: the injection points of `spec` armed,
/// and said which (none without a spec).
pub fn arm_said(ctx: &crate::ctx::Ctx, who: &str, spec: Option<&Spec>) -> Result<Option<Armed>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let arming = std::time::Instant::now();
    let a = arm(spec)?;
    let arm_ms = arming.elapsed().as_millis();
    let armed: Vec<&str> = a.armed().iter().map(|p| p.point.as_str()).collect();
    let skipped: Vec<String> = a
        .skipped()
        .iter()
        .map(|p| format!("{} ({})", p.point, p.errno))
        .collect();
    ctx.say(format!(
        "{who}: --amplify {spec}: {} points armed in {arm_ms} ms: {}; {} skipped{}{}",
        armed.len(),
        armed.join(" "),
        skipped.len(),
        if skipped.is_empty() { "" } else { ": " },
        skipped.join(" ")
    ));
    Ok(Some(a))
}

/// Disarms the injection points [`arm_said`] armed; their report.
pub fn disarm_said(
    ctx: &crate::ctx::Ctx,
    who: &str,
    armed: Option<Armed>,
) -> Option<AmplifyReport> {
    let armed = armed?;
    let report = armed.report();
    let disarming = std::time::Instant::now();
    drop(armed);
    ctx.say(format!(
        "{who}: --amplify: disarmed in {} ms",
        disarming.elapsed().as_millis()
    ));
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_lines_name_the_point_as_points_does() {
        let t: Target = "move_huge_pmd+26".parse().unwrap();
        let k = Knobs {
            delay_us: 20,
            every_nth: 3,
            probability_pct: 0,
        };
        assert_eq!(
            add_line(&t, &k),
            "move_huge_pmd+0x1a delay_us=20 every_nth=3 probability_pct=0\n"
        );
    }

    #[test]
    fn smoke_op_is_an_operation_with_a_symbol() {
        assert_eq!(op_symbol(SMOKE_OP), Some("do_huge_pmd_anonymous_page"));
        assert_eq!(op_symbol("mmrace_no_such_op"), None);
    }

    #[test]
    fn random_points_are_distinct_symbols() {
        let mut v: Vec<_> = RANDOM_POINTS.to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), RANDOM_POINTS.len());
        for p in RANDOM_POINTS {
            assert!(p.parse::<Target>().is_ok(), "{p}");
        }
        assert!(refusal(libc::ENOENT).contains("no such symbol"));
    }

    #[test]
    fn arming_without_the_module_names_the_directory() {
        if std::path::Path::new(&inject_dir()).exists() {
            return;
        }
        let e = arm(&"delay_us=1,every_nth=1".parse().unwrap())
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("inject"), "{e:#}");
    }
}
