//! The QEMU command line, built in this one place so a test can read it.
//!
//! The guest is a `pc` machine with two NUMA nodes (the THP migration
//! scenarios need somewhere to migrate to), half the CPUs and half the memory
//! on each. Without `sockets=2` the guest kernel sees two nodes inside one
//! package and WARNs in topology_sane(), which would be a false finding.
//!
//! Two output channels: the kernel console on the serial port, which QEMU
//! writes to its stdout, and the driver's protocol lines on a virtio console
//! (`/dev/hvc0` in the guest) that QEMU writes to `wire.log`. Keeping them
//! apart means a kernel splat can never tear a protocol line, and a flood of
//! protocol lines cannot slow the serial console the crash reports need.
//!
//! `-no-reboot` and `panic=-1` together turn a guest panic into QEMU exiting,
//! so a crashed guest ends the run at once instead of waiting for a timeout.

use crate::accel::Accel;
use std::path::{Path, PathBuf};

/// Everything the command line depends on.
#[derive(Debug, Clone)]
pub struct QemuSpec {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cpus: u32,
    pub mem_mib: u64,
    /// Node 0's share of the memory in percent; node 1 gets the rest.
    pub node0_pct: u32,
    pub driver_args: String,
    pub extra_append: Option<String>,
    pub wire_log: PathBuf,
    pub disk: Option<PathBuf>,
    pub accel: Accel,
}

/// The kernel command line. The driver reads its arguments from the
/// `mmrace.argv` parameter; the kernel keeps a double-quoted value together
/// (it has no escapes, which is why the arguments must not contain `"`).
pub fn kernel_append(driver_args: &str, extra: Option<&str>) -> String {
    let mut s = format!(
        "console=ttyS0,115200 panic=-1 oops=panic rdinit=/init numa_balancing=disable \
         mmrace.argv=\"{driver_args}\""
    );
    if let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) {
        s.push(' ');
        s.push_str(extra);
    }
    s
}

/// QEMU splits `-chardev`/`-drive` values at commas; a comma in a path is
/// written twice.
fn opt_path(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// The CPU list of a NUMA node: `first-last`.
fn cpu_range(first: u32, count: u32) -> String {
    format!("{first}-{}", first + count - 1)
}

/// Memory per node in MiB: node 0 gets `node0_pct` percent (rounded down to
/// whole 2 MiB, the THP size, so both nodes can hold whole THPs), node 1 the
/// rest.
pub fn node_mib(mem_mib: u64, node0_pct: u32) -> [u64; 2] {
    let node0 = mem_mib * u64::from(node0_pct) / 100 / 2 * 2;
    [node0, mem_mib - node0]
}

/// QEMU's arguments (without the program name).
pub fn command_line(spec: &QemuSpec) -> Vec<String> {
    let per_node_cpus = spec.cpus / 2;
    let node_mib = node_mib(spec.mem_mib, spec.node0_pct);
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));

    // No default devices (NIC with its option ROM, VGA, floppy): a faster
    // boot and nothing the scenarios do not need.
    push(&["-machine", "pc", "-nodefaults", "-no-reboot"]);
    push(&["-nographic", "-serial", "stdio", "-monitor", "none"]);
    push(&spec.accel.qemu_args());
    push(&[
        "-smp",
        &format!("{},sockets=2,cores={per_node_cpus},threads=1", spec.cpus),
    ]);
    push(&["-m", &format!("{}M", spec.mem_mib)]);
    for node in 0..2u32 {
        push(&[
            "-object",
            &format!(
                "memory-backend-ram,id=m{node},size={}M",
                node_mib[node as usize]
            ),
            "-numa",
            &format!(
                "node,nodeid={node},cpus={},memdev=m{node}",
                cpu_range(node * per_node_cpus, per_node_cpus)
            ),
        ]);
    }
    push(&[
        "-device",
        "virtio-serial-pci",
        "-chardev",
        &format!("file,id=wire,path={}", opt_path(&spec.wire_log)),
        "-device",
        "virtconsole,chardev=wire",
    ]);
    if let Some(disk) = &spec.disk {
        push(&[
            "-drive",
            &format!("file={},format=raw,if=none,id=disk0", opt_path(disk)),
            "-device",
            "virtio-blk-pci,drive=disk0,serial=mmrace-disk",
        ]);
    }
    push(&[
        "-kernel",
        &spec.kernel.display().to_string(),
        "-initrd",
        &spec.initrd.display().to_string(),
        "-append",
        &kernel_append(&spec.driver_args, spec.extra_append.as_deref()),
    ]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cpus: u32, accel: Accel) -> QemuSpec {
        QemuSpec {
            kernel: "/k/bzImage".into(),
            initrd: "/k/initrd.cpio.gz".into(),
            cpus,
            mem_mib: 2048,
            node0_pct: 50,
            driver_args: "--duration 20 --seed 7 smoke".into(),
            extra_append: None,
            wire_log: "/r/run,1/wire.log".into(),
            disk: None,
            accel,
        }
    }

    /// The value following `flag`, for every occurrence.
    fn values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn node_split_follows_node0_pct() {
        assert_eq!(node_mib(2048, 50), [1024, 1024]);
        assert_eq!(node_mib(2048, 25), [512, 1536]);
        assert_eq!(node_mib(1000, 33), [330, 670]);
        let mut s = spec(2, Accel::Tcg);
        s.node0_pct = 25;
        let a = command_line(&s);
        assert!(a.iter().any(|x| x == "memory-backend-ram,id=m0,size=512M"));
        assert!(a.iter().any(|x| x == "memory-backend-ram,id=m1,size=1536M"));
    }

    #[test]
    fn two_numa_nodes_each_with_half() {
        let a = command_line(&spec(4, Accel::Tcg));
        assert_eq!(values(&a, "-smp"), ["4,sockets=2,cores=2,threads=1"]);
        assert_eq!(values(&a, "-m"), ["2048M"]);
        assert_eq!(
            values(&a, "-object"),
            [
                "memory-backend-ram,id=m0,size=1024M",
                "memory-backend-ram,id=m1,size=1024M"
            ]
        );
        assert_eq!(
            values(&a, "-numa"),
            [
                "node,nodeid=0,cpus=0-1,memdev=m0",
                "node,nodeid=1,cpus=2-3,memdev=m1"
            ]
        );
        let a = command_line(&spec(2, Accel::Tcg));
        assert_eq!(values(&a, "-smp"), ["2,sockets=2,cores=1,threads=1"]);
        assert_eq!(
            values(&a, "-numa"),
            [
                "node,nodeid=0,cpus=0-0,memdev=m0",
                "node,nodeid=1,cpus=1-1,memdev=m1"
            ]
        );
    }

    #[test]
    fn accel_flags() {
        let a = command_line(&spec(2, Accel::Kvm));
        assert_eq!(values(&a, "-accel"), ["kvm"]);
        assert_eq!(values(&a, "-cpu"), ["host"]);
        let a = command_line(&spec(2, Accel::Tcg));
        assert_eq!(values(&a, "-accel"), ["tcg,thread=multi"]);
        assert_eq!(values(&a, "-cpu"), ["max"]);
    }

    #[test]
    fn machine_console_and_wire_channel() {
        let a = command_line(&spec(2, Accel::Tcg));
        assert_eq!(values(&a, "-machine"), ["pc"]);
        assert!(a.iter().any(|x| x == "-no-reboot"));
        assert!(a.iter().any(|x| x == "-nographic"));
        assert_eq!(values(&a, "-serial"), ["stdio"]);
        assert_eq!(values(&a, "-monitor"), ["none"]);
        assert_eq!(
            values(&a, "-chardev"),
            ["file,id=wire,path=/r/run,,1/wire.log"]
        );
        assert_eq!(
            values(&a, "-device"),
            ["virtio-serial-pci", "virtconsole,chardev=wire"]
        );
        assert_eq!(values(&a, "-kernel"), ["/k/bzImage"]);
        assert_eq!(values(&a, "-initrd"), ["/k/initrd.cpio.gz"]);
        assert!(values(&a, "-drive").is_empty());
    }

    #[test]
    fn optional_disk_is_a_virtio_blk() {
        let mut s = spec(2, Accel::Tcg);
        s.disk = Some("/d/xfs.img".into());
        let a = command_line(&s);
        assert_eq!(
            values(&a, "-drive"),
            ["file=/d/xfs.img,format=raw,if=none,id=disk0"]
        );
        assert!(values(&a, "-device").contains(&"virtio-blk-pci,drive=disk0,serial=mmrace-disk"));
    }

    #[test]
    fn append_quotes_driver_args_as_one_value() {
        let a = command_line(&spec(2, Accel::Tcg));
        assert_eq!(
            values(&a, "-append"),
            [
                "console=ttyS0,115200 panic=-1 oops=panic rdinit=/init numa_balancing=disable \
              mmrace.argv=\"--duration 20 --seed 7 smoke\""
            ]
        );
        assert_eq!(
            kernel_append("smoke", Some(" loglevel=8 ")),
            "console=ttyS0,115200 panic=-1 oops=panic rdinit=/init numa_balancing=disable \
             mmrace.argv=\"smoke\" loglevel=8"
        );
    }
}
