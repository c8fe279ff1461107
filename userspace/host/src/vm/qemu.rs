//! The QEMU command line, built in this one place so a test can read it.
//!
//! The guest is data: a QEMU `-readconfig` file rendered from the run's
//! [`GuestSpec`] into the run directory (`guest.cfg`), next to
//! `qemu/mmrace-guest.cfg`, the default guest checked in for booting by hand
//! (a test keeps the two identical), and the kernel command line in
//! `qemu/kernel-cmdline`. The command line adds only what cannot live in a
//! config file: the consoles, the accelerator, kernel, initrd and append.
//!
//! The guest is a `pc` machine with two NUMA nodes (the THP migration
//! scenarios need somewhere to migrate to), half the CPUs and (by default)
//! half the memory on each. Without `sockets=2` the guest kernel sees two nodes inside one
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

use crate::vm::accel::Accel;
use mmrace_proto::spec::{GuestSpec, RunSpec};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The kernel command line every run starts with (qemu/kernel-cmdline).
pub const KERNEL_CMDLINE: &str = include_str!("../../../../qemu/kernel-cmdline");

/// Everything the command line depends on.
#[derive(Debug, Clone)]
pub struct QemuSpec {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The run: its guest shape and the `mmrace.spec` parameter.
    pub run: RunSpec,
    pub extra_append: Option<String>,
    /// Where the guest's `-readconfig` file is written ([`guest_config`]).
    pub config: PathBuf,
    pub wire_log: PathBuf,
    pub accel: Accel,
}

/// The kernel command line: [`KERNEL_CMDLINE`], the run's spec as one word,
/// the kernel profile's boot parameters, then `extra`.
pub fn kernel_append(run: &RunSpec, extra: Option<&str>) -> String {
    let mut s = format!("{} {}", KERNEL_CMDLINE.trim(), run.to_cmdline_param());
    let profile = run.kernel.profile.map_or("", |p| p.boot_params());
    for extra in [Some(profile), extra] {
        if let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) {
            s.push(' ');
            s.push_str(extra);
        }
    }
    s
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

/// A QEMU config-file value: quoted, with `"` and `\` escaped.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The guest as a QEMU `-readconfig` file: machine, CPUs and memory, the two
/// NUMA nodes, the virtio console the driver's protocol goes to (written to
/// `wire_log`; without one, as in a LAVA job, the driver writes its
/// protocol to the serial console) and the optional disk. Without `sockets=2` the guest kernel
/// sees two nodes inside one package and WARNs in topology_sane(), which
/// would be a false finding.
pub fn guest_config(g: &GuestSpec, wire_log: Option<&Path>, disk: Option<&Path>) -> String {
    let per_node_cpus = g.cpus / 2;
    let node_mib = node_mib(g.mem_mib, g.node0_pct);
    let mut c = String::from(
        "# mmrace's guest (QEMU -readconfig). mmrace-host renders this for every\n\
         # run from the run's GuestSpec into the run directory as guest.cfg;\n\
         # this copy is the default guest. See docs/runs.md, \"Booting the guest by hand\".\n",
    );
    let mut section = |name: &str, items: &[(&str, String)]| {
        let _ = writeln!(c, "\n[{name}]");
        for (k, v) in items {
            let _ = writeln!(c, "  {k} = {}", quoted(v));
        }
    };
    section("machine", &[("type", "pc".into())]);
    section(
        "smp-opts",
        &[
            ("cpus", g.cpus.to_string()),
            ("sockets", "2".into()),
            ("cores", per_node_cpus.to_string()),
            ("threads", "1".into()),
        ],
    );
    section("memory", &[("size", format!("{}M", g.mem_mib))]);
    for node in 0..2u32 {
        section(
            &format!("object \"m{node}\""),
            &[
                ("qom-type", "memory-backend-ram".into()),
                ("size", format!("{}M", node_mib[node as usize])),
            ],
        );
        section(
            "numa",
            &[
                ("type", "node".into()),
                ("nodeid", node.to_string()),
                ("cpus", cpu_range(node * per_node_cpus, per_node_cpus)),
                ("memdev", format!("m{node}")),
            ],
        );
    }
    if let Some(wire_log) = wire_log {
        section("device", &[("driver", "virtio-serial-pci".into())]);
        section(
            "chardev \"wire\"",
            &[
                ("backend", "file".into()),
                ("path", wire_log.display().to_string()),
            ],
        );
        section(
            "device",
            &[("driver", "virtconsole".into()), ("chardev", "wire".into())],
        );
    }
    if let Some(disk) = disk {
        section(
            "drive \"disk0\"",
            &[
                ("file", disk.display().to_string()),
                ("format", "raw".into()),
                ("if", "none".into()),
            ],
        );
        section(
            "device",
            &[
                ("driver", "virtio-blk-pci".into()),
                ("drive", "disk0".into()),
                ("serial", "mmrace-disk".into()),
            ],
        );
    }
    c
}

/// No default devices (NIC with its option ROM, VGA, floppy), and a guest
/// that stops instead of rebooting: with `panic=-1`, a crash ends QEMU.
pub const MACHINE_FLAGS: [&str; 2] = ["-nodefaults", "-no-reboot"];

/// QEMU's arguments (without the program name). The config file
/// `spec.config` must hold [`guest_config`] of the same spec.
///
/// Two output channels: the kernel console on the serial port, which QEMU
/// writes to its stdout, and the driver's protocol lines on the virtio
/// console. No default devices (NIC with its option ROM, VGA, floppy): a
/// faster boot and nothing the scenarios do not need.
pub fn command_line(spec: &QemuSpec) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&MACHINE_FLAGS);
    push(&["-nographic", "-serial", "stdio", "-monitor", "none"]);
    push(&spec.accel.qemu_args());
    push(&["-readconfig", &spec.config.display().to_string()]);
    push(&[
        "-kernel",
        &spec.kernel.display().to_string(),
        "-initrd",
        &spec.initrd.display().to_string(),
        "-append",
        &kernel_append(&spec.run, spec.extra_append.as_deref()),
    ]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmrace_proto::spec::Scenario;

    fn run(cpus: u32) -> RunSpec {
        let mut r = RunSpec::new(Scenario::Smoke(Default::default()), 7, 20);
        r.guest.cpus = cpus;
        r
    }

    fn spec(cpus: u32, accel: Accel) -> QemuSpec {
        QemuSpec {
            kernel: "/k/bzImage".into(),
            initrd: "/k/initrd.cpio.gz".into(),
            run: run(cpus),
            extra_append: None,
            config: "/r/run,1/guest.cfg".into(),
            wire_log: "/r/run,1/wire.log".into(),
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
    fn checked_in_guest_is_the_default_guest() {
        let rendered = guest_config(&GuestSpec::default(), Some(Path::new("wire.log")), None);
        if std::env::var_os("MMRACE_BLESS").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../qemu/mmrace-guest.cfg"),
                &rendered,
            )
            .unwrap();
        }
        assert_eq!(
            rendered,
            include_str!("../../../../qemu/mmrace-guest.cfg"),
            "qemu/mmrace-guest.cfg is out of date: regenerate it from guest_config()"
        );
    }

    #[test]
    fn node_split_follows_node0_pct() {
        assert_eq!(node_mib(2048, 50), [1024, 1024]);
        assert_eq!(node_mib(2048, 25), [512, 1536]);
        assert_eq!(node_mib(1000, 33), [330, 670]);
        let g = GuestSpec {
            node0_pct: 25,
            ..GuestSpec::default()
        };
        let c = guest_config(&g, Some(Path::new("w")), None);
        assert!(
            c.contains("[object \"m0\"]\n  qom-type = \"memory-backend-ram\"\n  size = \"512M\"\n")
        );
        assert!(c.contains(
            "[object \"m1\"]\n  qom-type = \"memory-backend-ram\"\n  size = \"1536M\"\n"
        ));
    }

    #[test]
    fn two_numa_nodes_each_with_half_the_cpus() {
        let g = GuestSpec {
            cpus: 4,
            ..GuestSpec::default()
        };
        let c = guest_config(&g, Some(Path::new("w")), None);
        assert!(c.contains("[smp-opts]\n  cpus = \"4\"\n  sockets = \"2\"\n  cores = \"2\"\n"));
        assert!(c.contains("  nodeid = \"0\"\n  cpus = \"0-1\"\n  memdev = \"m0\"\n"));
        assert!(c.contains("  nodeid = \"1\"\n  cpus = \"2-3\"\n  memdev = \"m1\"\n"));
        assert!(c.contains("[memory]\n  size = \"2048M\"\n"));
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
    fn consoles_config_and_boot_files() {
        let a = command_line(&spec(2, Accel::Tcg));
        assert!(a.iter().any(|x| x == "-no-reboot"));
        assert!(a.iter().any(|x| x == "-nographic"));
        assert_eq!(values(&a, "-serial"), ["stdio"]);
        assert_eq!(values(&a, "-monitor"), ["none"]);
        assert_eq!(values(&a, "-readconfig"), ["/r/run,1/guest.cfg"]);
        assert_eq!(values(&a, "-kernel"), ["/k/bzImage"]);
        assert_eq!(values(&a, "-initrd"), ["/k/initrd.cpio.gz"]);
        let c = guest_config(
            &GuestSpec::default(),
            Some(Path::new("/r/run,1/wire.log")),
            None,
        );
        assert!(c.contains(
            "[chardev \"wire\"]\n  backend = \"file\"\n  path = \"/r/run,1/wire.log\"\n"
        ));
        assert!(c.contains("[device]\n  driver = \"virtconsole\"\n  chardev = \"wire\"\n"));
        assert!(!c.contains("[drive"));
        // Without a wire file (a LAVA job) there is no virtio console.
        let c = guest_config(&GuestSpec::default(), None, None);
        assert!(!c.contains("virtconsole") && !c.contains("virtio-serial"));
        assert!(c.contains("[numa]"));
    }

    #[test]
    fn optional_disk_is_a_virtio_blk() {
        let c = guest_config(
            &GuestSpec::default(),
            Some(Path::new("w")),
            Some(Path::new("/d/x\"y.img")),
        );
        assert!(c.contains("[drive \"disk0\"]\n  file = \"/d/x\\\"y.img\"\n  format = \"raw\"\n"));
        assert!(c.contains(
            "  driver = \"virtio-blk-pci\"\n  drive = \"disk0\"\n  serial = \"mmrace-disk\"\n"
        ));
    }

    #[test]
    fn append_carries_the_spec_as_one_word() {
        let a = command_line(&spec(2, Accel::Tcg));
        let append = values(&a, "-append")[0];
        assert!(append.starts_with("console=ttyS0,115200 panic=-1 oops=panic rdinit=/init numa_balancing=disable no_timer_check kunit.enable=1 kunit.autorun=1 mmrace.spec="));
        let value = append.rsplit_once("mmrace.spec=").unwrap().1;
        assert_eq!(RunSpec::from_cmdline_value(value).unwrap(), run(2));
        assert!(kernel_append(&run(2), Some(" loglevel=8 ")).ends_with(" loglevel=8"));
        // A profile's own boot parameters come before the user's.
        let mut kasan = run(2);
        kasan.kernel.profile = Some(mmrace_proto::spec::KernelProfile::Kasan);
        assert!(kernel_append(&kasan, Some("loglevel=8")).ends_with(" no5lvl loglevel=8"));
        assert!(!kernel_append(&run(2), None).contains("no5lvl"));
    }
}
