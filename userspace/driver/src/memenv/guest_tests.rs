//! Checks that every piece of the environment comes up and goes away, in
//! the mmrace guest (root, the test kernel, the XFS disk attached): ignored
//! by `cargo test`, run in the guest through SCENARIO=exec (docs/kinds.md):
//! `EXEC="DRIVER_TEST_BINARY --ignored --test-threads 1 memenv::guest"`.

use super::*;

fn proc_swaps() -> String {
    std::fs::read_to_string("/proc/swaps").unwrap()
}

/// smaps' `name:` total for the mapping starting at `addr`, in kB.
fn smaps_field(addr: usize, name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let start = format!("{addr:x}-");
    let mut inside = false;
    for l in text.lines() {
        if l.contains('-') && l.split_whitespace().count() >= 5 && !l.ends_with("kB") {
            inside = l.starts_with(&start);
        } else if inside && l.starts_with(name) {
            return l.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
    }
    panic!("no {name} for the mapping at {addr:x}");
}

fn rw_file(path: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap()
}

/// Maps 2 MiB of `fd` shared, writes it, returns the mapping's address.
fn map_written(fd: i32, len: usize, flags: i32) -> usize {
    // SAFETY: a fresh mapping of a file this test made, written then left.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | flags,
            fd,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
    unsafe { std::ptr::write_bytes(p as *mut u8, 0x5a, len) };
    p as usize
}

#[test]
#[ignore = "changes the machine's swap, pools and mounts: the mmrace guest only"]
fn guest_every_piece_comes_up_and_goes() {
    let nr_before =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").unwrap();
    let numa_before = std::fs::read_to_string(numa_balancing::SYSCTL).unwrap();
    let env = prepare(Need::ALL).unwrap();
    println!("{}", env.describe());
    for &n in Need::ALL {
        assert!(env.has(n), "{n:?}");
    }
    // Swap is listed and takes a paged-out page.
    let swap = env.swap.as_ref().unwrap();
    assert!(proc_swaps().contains(swap.device.to_str().unwrap()));
    let mut m = crate::mm::AlignedMap::new(1 << 21, 1 << 21).unwrap();
    m.touch_all(0x33);
    m.madvise(libc::MADV_PAGEOUT).unwrap();
    let swapped = smaps_field(m.as_ptr() as usize, "Swap:");
    println!(
        "MADV_PAGEOUT of 2 MiB: {swapped} kB in swap, /proc/swaps used {:?}",
        swap.used_bytes()
    );
    assert!(swapped > 0, "nothing went to swap");
    assert!(
        unsafe { *m.as_ptr().add(4096) } == 0x33,
        "swap-in lost the data"
    );
    m.unmap(0, 1 << 21).unwrap();
    // hugetlb: both nodes reserved, a hugetlbfs file maps a huge page.
    let h = env.hugetlb.as_ref().unwrap();
    assert!(h.pools.len() >= 2, "{:?}", h.pools);
    assert!(h.pools.iter().all(|p| p.pages >= hugetlb::PAGES_PER_NODE));
    let free = hugetlb::Hugetlb::free_pages().unwrap();
    let hf = rw_file(&env.hugetlb_dir().unwrap().join("t"));
    hf.set_len(1 << 21).unwrap();
    let a = map_written(std::os::fd::AsRawFd::as_raw_fd(&hf), 1 << 21, 0);
    assert_eq!(hugetlb::Hugetlb::free_pages().unwrap(), free - 1);
    unsafe { libc::munmap(a as *mut _, 1 << 21) };
    drop(hf);
    // tmpfs huge=always: a written 2 MiB file is one PMD-mapped THP.
    let path = env.tmpfs_dir().unwrap().join("t");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    f.set_len(1 << 21).unwrap();
    let a = map_written(std::os::fd::AsRawFd::as_raw_fd(&f), 1 << 21, 0);
    let pmd = smaps_field(a, "ShmemPmdMapped:") + smaps_field(a, "FilePmdMapped:");
    println!("tmpfs: {pmd} kB PMD-mapped");
    assert!(pmd >= 2048, "no THP in the huge tmpfs");
    unsafe { libc::munmap(a as *mut _, 1 << 21) };
    // XFS is mounted and writable.
    let x = env.xfs_dir().unwrap().join("t");
    std::fs::write(&x, b"mmrace").unwrap();
    assert_eq!(std::fs::read(&x).unwrap(), b"mmrace");
    // KSM and NUMA balancing are on.
    assert_eq!(
        std::fs::read_to_string("/sys/kernel/mm/ksm/run")
            .unwrap()
            .trim(),
        "1"
    );
    assert_eq!(
        std::fs::read_to_string(numa_balancing::SYSCTL)
            .unwrap()
            .trim(),
        "1"
    );
    let dev = swap.device.clone();
    std::fs::remove_file(&path).unwrap();
    drop(f); // open files would keep the mounts busy
    drop(env);
    // Everything put back.
    assert!(!proc_swaps().contains(dev.to_str().unwrap()));
    assert_eq!(
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages").unwrap(),
        nr_before
    );
    assert_eq!(
        std::fs::read_to_string(numa_balancing::SYSCTL).unwrap(),
        numa_before
    );
}
