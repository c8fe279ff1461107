//! The kinds' ops on this machine's own tmpfs (/dev/shm): on a clean
//! kernel the model and the ops' own checks accept every round; an object
//! that lies about its kind (a private mapping called shared) makes the
//! file ops' oracles report, so they can fail.

use super::super::model::Layout;
use super::super::object::{reserve_aligned, KindEnv, Maker, ObjKind, Object};
use super::super::op::{op, Resources};
use super::super::round::{run, with_crew, Slice};
use super::super::tally::Tally;
use super::file::FileMaker;
use crate::oracle::Oracle;
use crate::shared::offsets::Book;
use crate::shared::rng::Rng;
use mmrace_proto::pairs::{Combo, UserOp};
use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn shm_env() -> Option<KindEnv> {
    let env = KindEnv {
        tmpfs_dir: Some(PathBuf::from("/dev/shm")),
        ..KindEnv::default()
    };
    FileMaker::new(ObjKind::Tmpfs, &env).ok().map(|_| env)
}

/// Runs each combo for a round on `maker`; returns (bad pages, errors).
fn rounds(maker: &mut dyn Maker, combos: &[Combo], oracle: &Arc<Oracle>) -> (u64, Vec<String>) {
    let res = Resources::for_tests(oracle);
    let tally = Tally::new().unwrap();
    let n = UserOp::ALL.len();
    let book = Book::new(n * n).unwrap();
    let mut rng = Rng::new(5);
    let layout = Layout::new(2, crate::mm::pmd_size());
    let (mut bad, mut errors) = (0, Vec::new());
    for (round, combo) in combos.iter().enumerate() {
        let s = Slice {
            combo,
            kind: maker.kind(),
            state: mmrace_proto::pairs::ObjState::Populated,
            ops: combo.0.iter().map(|u| op(*u)).collect(),
            book_kind: combo.0[0].index() * n + combo.0[1].index(),
            burst: 2,
            overlap: std::time::Duration::ZERO,
            offsets: false,
            sequential: false,
            windows: None,
        };
        let out = with_crew(&s, layout, &res, &tally, |crew| {
            run(
                &s,
                crew,
                maker,
                layout,
                round as u64 + 1,
                &res,
                &book,
                &mut rng,
                &tally,
            )
        })
        .unwrap();
        bad += out.bad;
        errors.extend(out.first_error.map(|e| format!("{combo}: {e}")));
    }
    (bad, errors)
}

fn pairs(ops: &[UserOp], with: &[UserOp]) -> Vec<Combo> {
    ops.iter()
        .flat_map(|a| with.iter().map(move |b| Combo::new(vec![*a, *b])))
        .filter(Combo::compatible)
        .collect()
}

#[test]
fn file_ops_on_a_clean_tmpfs_are_accepted() {
    let Some(env) = shm_env() else { return };
    let mut m = FileMaker::new(ObjKind::Tmpfs, &env).unwrap();
    let oracle = Arc::new(Oracle::new(Instant::now()).unwrap());
    use UserOp::*;
    let mine = [Pwrite, Pread, PunchHole, Truncate, Fallocate, Uffd];
    let combos = pairs(&mine, &[Store, Touch, Dontneed, Pread, MunmapPart]);
    let (bad, errors) = rounds(&mut m, &combos, &oracle);
    assert_eq!(bad, 0);
    assert_eq!(oracle.mismatches(), 0, "{:?}", oracle.take_new());
    assert!(errors.is_empty(), "{errors:#?}");
}

/// Makes private mappings of a tmpfs file that say they are shared `tmpfs`
/// objects: their stamps never reach the file.
struct LiarMaker;

impl Maker for LiarMaker {
    fn kind(&self) -> ObjKind {
        ObjKind::Tmpfs
    }
    fn create(&mut self, len: usize) -> anyhow::Result<Box<dyn Object>> {
        let path = format!("/dev/shm/mmrace-liar-{}", std::process::id());
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        f.set_len(len as u64)?;
        let addr = reserve_aligned(len, crate::mm::pmd_size())?;
        super::map_fixed_thp(addr, len, libc::MAP_PRIVATE, f.as_raw_fd())?;
        Ok(super::mapped::Mapped::boxed(
            ObjKind::Tmpfs,
            addr,
            len,
            Some(OwnedFd::from(f)),
        ))
    }
}

#[test]
fn the_file_oracles_can_fail() {
    if shm_env().is_none() {
        return;
    }
    use UserOp::*;
    for probe in [Pread, PunchHole] {
        let oracle = Arc::new(Oracle::new(Instant::now()).unwrap());
        rounds(&mut LiarMaker, &[Combo::new(vec![probe, Smaps])], &oracle);
        assert!(
            oracle.mismatches() > 0,
            "{probe}: a private mapping passed for shared"
        );
    }
}

/// ksmd's merge counters now.
fn ksm_counters() -> Vec<(&'static str, u64)> {
    ["full_scans"]
        .into_iter()
        .map(|n| (n, crate::memenv::ksm::Ksm::counter(n).unwrap_or(0)))
        .collect()
}

/// In the mmrace guest (SCENARIO=exec, root, the XFS disk attached): every
/// new kind with its own ops and a few others, one round per pair; the
/// model and the ops' checks must accept all, and no op may fail.
#[test]
#[ignore = "needs the mmrace guest: prepares swap, hugetlb, tmpfs, KSM, NUMA balancing"]
fn guest_every_kind_with_its_ops() {
    use crate::memenv::{self, Need};
    use UserOp::*;
    let mut needs = vec![
        Need::Swap,
        Need::Hugetlb,
        Need::Tmpfs,
        Need::ShmemThp,
        Need::Ksm,
        Need::NumaBalancing,
        Need::Userfaultfd,
    ];
    let disk = crate::shared::disk::find_by_serial(
        std::path::Path::new("/sys/block"),
        crate::shared::disk::SERIAL,
    )
    .is_ok();
    if disk {
        needs.push(Need::Xfs);
    }
    let env = memenv::prepare(&needs).unwrap();
    println!("{}", env.describe());
    let kenv = KindEnv {
        xfs_dir: env.xfs_dir().ok().map(|p| p.to_path_buf()),
        tmpfs_dir: env.tmpfs_dir().ok().map(|p| p.to_path_buf()),
        hugetlb_dir: env.hugetlb_dir().ok().map(|p| p.to_path_buf()),
    };
    let mine = [
        Pwrite, Pread, PunchHole, Truncate, Fallocate, Writeback, Swapin, KsmMerge, Uffd, NumaHint,
        Invalidate, Compact, ProcMem, Refault,
    ];
    let others = [
        Store,
        Touch,
        Fork,
        Dontneed,
        MigratePages,
        Split,
        Collapse,
        Mremap,
    ];
    let mut failures = Vec::new();
    for kind in [
        ObjKind::Tmpfs,
        ObjKind::XfsShared,
        ObjKind::XfsPrivate,
        ObjKind::Hugetlb,
        ObjKind::Ksm,
        ObjKind::Anon,
        ObjKind::Memfd,
    ] {
        let mut maker = match super::super::object::maker(kind, &kenv) {
            Ok(m) => m,
            Err(e) => {
                println!("{kind}: unavailable: {}", e.0);
                continue;
            }
        };
        let applies = |u: &UserOp| mmrace_proto::pairs::catalogue::applies(*u, kind);
        let mine: Vec<UserOp> = mine.iter().copied().filter(applies).collect();
        let others: Vec<UserOp> = others.iter().copied().filter(applies).collect();
        let combos = pairs(&mine, &others);
        let oracle = Arc::new(Oracle::new(Instant::now()).unwrap());
        let (vm0, ksm0) = (crate::vmstat::read().unwrap(), ksm_counters());
        let (bad, errors) = rounds(maker.as_mut(), &combos, &oracle);
        let vm = crate::vmstat::delta(&vm0, &crate::vmstat::read().unwrap());
        let shown = crate::vmstat::with_prefixes(
            &crate::vmstat::nonzero(&vm),
            &[
                "pswp",
                "numa_hint",
                "thp_split_page",
                "thp_fault",
                "thp_file",
                "thp_collapse",
                "cow_ksm",
                "ksm",
            ],
        );
        let ksm: Vec<String> = ksm_counters()
            .iter()
            .zip(&ksm0)
            .map(|((n, v), (_, v0))| format!("{n} +{}", v.saturating_sub(*v0)))
            .collect();
        println!(
            "{kind}: {} rounds, {bad} bad pages, {} mismatches, {} op errors; vmstat {shown:?}; ksm {}",
            combos.len(),
            oracle.mismatches(),
            errors.len(),
            ksm.join(", ")
        );
        for c in oracle.take_new() {
            failures.push(format!("{kind}: {}", c.line()));
        }
        failures.extend(errors.iter().map(|e| format!("{kind}: {e}")));
        if bad > 0 {
            failures.push(format!("{kind}: {bad} bad pages"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// In the mmrace guest: a ksm object's cold pages get merged, and a write
/// to one of them breaks the merge for its writer only.
#[test]
#[ignore = "needs the mmrace guest: starts ksmd"]
fn guest_ksm_objects_merge() {
    use crate::memenv::{self, Need};
    let _env = memenv::prepare(&[Need::Ksm]).unwrap();
    let mut m = super::ksm::KsmMaker::new().unwrap();
    let pmd = crate::mm::pmd_size();
    let cow0 = crate::vmstat::read().unwrap().get("cow_ksm").copied();
    let o = m.create(2 * pmd).unwrap();
    let merged = super::ksm::merging_pages();
    let ksm = |n: &str| crate::memenv::ksm::Ksm::counter(n);
    println!(
        "merging_pages {merged:?}, pages_shared {:?}, pages_sharing {:?}, full_scans {:?}",
        ksm("pages_shared"),
        ksm("pages_sharing"),
        ksm("full_scans")
    );
    // SAFETY: a cold page of the object, then its neighbour read.
    unsafe { ((o.addr() + pmd) as *mut u64).write_volatile(42) };
    let other = unsafe { ((o.addr() + pmd + 4096) as *const u64).read_volatile() };
    let cow = crate::vmstat::read().unwrap().get("cow_ksm").copied();
    println!("cow_ksm {cow0:?} -> {cow:?}");
    assert_eq!(other, 0, "a write to a merged page showed in another");
    assert!(merged.unwrap_or(0) > 0, "nothing merged");
    assert!(cow > cow0, "the write broke no KSM page");
}
