//! `run`'s options (which `batch`, `export-lava` and `hunt` take too) and
//! the checks that turn them into the run's spec.

use super::shared::MachineArgs;
use super::{scenario_names, utc_stamp, valid_run_id, UsageError};
use clap::Args;
use mmrace_proto::spec::{CrashTest, GuestSpec, KernelProfile, KernelSpec, RunSpec, Scenario};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The kernel image (bzImage).
    #[arg(long, value_name = "PATH", required_unless_present = "check_only")]
    kernel: Option<PathBuf>,
    /// The initramfs holding the driver as /init.
    #[arg(long, value_name = "PATH", required_unless_present = "check_only")]
    initrd: Option<PathBuf>,
    /// Only check the options and the scenario words: build the run's spec
    /// as the run would, print it (JSON) and exit 0, or 2 with the reason.
    /// Nothing is booted; --kernel and --initrd may be left out (the
    /// scripts check the settings this way before building anything).
    #[arg(long)]
    pub check_only: bool,
    /// The scenario and its options, after every option of `run`
    /// (`... --seed 7 thp-race --no-splitter`). See `mmrace-driver help`.
    #[command(subcommand)]
    pub scenario: Option<Scenario>,
    /// Run this RunSpec (JSON, e.g. a report.json's `spec`) instead of a
    /// scenario named here. Options given here override its values.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Seed of the scenario's choices [default: random; always recorded].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Seconds the scenario runs [default: 30; caps exec (600) and
    /// selftests-mm (1800), which end when their programs do]; sizes the
    /// overall timeout.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Milliseconds between two counter snapshots [default: 1000].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: Option<u64>,
    /// Unload and reload mmrace.ko this many times during the run.
    #[arg(long, value_name = "N")]
    pub reload_module: Option<u32>,
    /// Crash or hang the guest on purpose (proves the host catches it).
    #[arg(long, value_enum, value_name = "HOW")]
    pub crash_test: Option<CrashTest>,
    /// The kernel's series (KERNEL_SERIES), recorded in the spec.
    #[arg(long, value_name = "NAME")]
    pub kernel_series: Option<String>,
    /// The kernel variant (KERNEL_VARIANT), recorded in the spec.
    #[arg(long, value_name = "NAME")]
    pub kernel_variant: Option<String>,
    /// The kernel's sanitizer profile (KERNEL_PROFILE), recorded in the spec.
    #[arg(long, value_enum, value_name = "NAME")]
    pub kernel_profile: Option<KernelProfile>,
    #[command(flatten)]
    pub machine: MachineArgs,
    /// Extra raw disk image, attached as a virtio-blk device.
    #[arg(long, value_name = "PATH")]
    pub disk: Option<PathBuf>,
    /// Where run directories are created.
    #[arg(long, value_name = "DIR", default_value = "build/results")]
    pub results_dir: PathBuf,
    /// Name of this run's directory [default: UTC time, scenario and seed].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// Seconds both console channels may stay silent before the run is a hang.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub hang_timeout: u64,
    /// Seconds the guest gets, once the verdict is decided (a kernel
    /// finding on the console, or an oracle's), to print the rest before
    /// QEMU is stopped.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub after_finding: u64,
    /// Seconds the guest may take to start the driver [default: 300 under
    /// TCG, 60 under KVM].
    #[arg(long, value_name = "SECS")]
    pub boot_timeout: Option<u64>,
    /// Extra kernel command line parameters.
    #[arg(long, value_name = "STRING", allow_hyphen_values = true)]
    pub extra_append: Option<String>,
    /// Do not echo the guest console to the terminal (console.log has it).
    #[arg(long)]
    pub quiet: bool,

    // For tests and unusual hosts; hidden from --help.
    /// The QEMU binary.
    #[arg(long, hide = true, default_value = "qemu-system-x86_64")]
    pub qemu_binary: String,
    /// The KVM device `auto` checks.
    #[arg(long, hide = true, default_value = "/dev/kvm")]
    pub kvm_device: PathBuf,
    /// Seconds KVM gets to reach the kernel banner before `auto` gives up on it.
    #[arg(long, hide = true, default_value_t = 30)]
    pub kvm_probe_timeout: u64,
    /// Seconds added to boot timeout + duration for the overall deadline.
    #[arg(long, hide = true, default_value_t = 120)]
    pub deadline_slack: u64,
}

/// Default boot timeouts: TCG boots a 2-node guest in well under a minute
/// on a loaded host; the margin is for much slower CI machines.
pub const BOOT_TIMEOUT_TCG: u64 = 300;

pub const BOOT_TIMEOUT_KVM: u64 = 60;

const MIN_MEM_MIB: u64 = 256;

fn need_file(what: &str, p: &Path) -> Result<(), UsageError> {
    if p.is_file() {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{what} {} is not a readable file",
            p.display()
        )))
    }
}

impl RunArgs {
    /// The run these options describe: `--spec`'s, or a new one for the
    /// scenario named here, with every option given here applied.
    /// `random_seed` is the seed when neither names one.
    pub fn run_spec(&self, random_seed: u64) -> Result<RunSpec, UsageError> {
        let mut spec = match (&self.spec, &self.scenario) {
            (Some(_), Some(s)) => {
                return Err(UsageError(format!(
                    "--spec and the scenario {} both name the run: give one",
                    s.name()
                )))
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| UsageError(format!("--spec {}: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(|e| {
                    UsageError(format!("--spec {}: not a RunSpec: {e}", path.display()))
                })?
            }
            (None, Some(scenario)) => {
                RunSpec::new(scenario.clone(), random_seed, scenario.default_duration_s())
            }
            (None, None) => {
                return Err(UsageError(format!(
                    "name a scenario ({}; e.g. `mmrace-host run ... smoke`) or give --spec FILE",
                    scenario_names().join(", ")
                )))
            }
        };
        let set = |field: &mut u64, v: Option<u64>| *field = v.unwrap_or(*field);
        set(&mut spec.seed, self.seed);
        set(&mut spec.duration_s, self.duration);
        set(&mut spec.interval_ms, self.interval_ms);
        spec.reload_module = self.reload_module.unwrap_or(spec.reload_module);
        spec.crash_test = self.crash_test.or(spec.crash_test);
        let k = &mut spec.kernel;
        *k = KernelSpec {
            series: self.kernel_series.clone().unwrap_or(k.series.clone()),
            variant: self.kernel_variant.clone().or(k.variant.clone()),
            profile: self.kernel_profile.or(k.profile),
        };
        let (g, m) = (&mut spec.guest, &self.machine);
        *g = GuestSpec {
            cpus: m.cpus.unwrap_or(g.cpus),
            mem_mib: m.mem_mib.unwrap_or(g.mem_mib),
            node0_pct: m.node0_pct.unwrap_or(g.node0_pct),
        };
        validate_guest(&spec.guest)?;
        Ok(spec)
    }

    /// Checks every value that does not need QEMU to check.
    pub fn validate(&self) -> Result<(), UsageError> {
        let bad = |m: String| Err(UsageError(m));
        if self.hang_timeout == 0 {
            return bad("--hang-timeout must be at least 1 second".into());
        }
        if self.boot_timeout == Some(0) {
            return bad("--boot-timeout must be at least 1 second".into());
        }
        if self
            .extra_append
            .as_deref()
            .is_some_and(|e| e.contains('\n'))
        {
            return bad("--extra-append cannot contain newlines".into());
        }
        if let Some(id) = &self.run_id {
            if !valid_run_id(id) {
                return bad(format!(
                    "--run-id {id:?}: use letters, digits and ._-+ (and not 'latest')"
                ));
            }
        }
        for (flag, file) in [("--kernel", &self.kernel), ("--initrd", &self.initrd)] {
            match file {
                Some(f) => need_file(flag, f)?,
                None if self.check_only => {}
                None => return bad(format!("{flag} is needed")),
            }
        }
        if let Some(d) = &self.disk {
            need_file("--disk", d)?;
        }
        Ok(())
    }

    /// The kernel image (empty with `--check-only` and no `--kernel`).
    pub fn kernel(&self) -> &Path {
        self.kernel.as_deref().unwrap_or(Path::new(""))
    }

    /// The initramfs (empty with `--check-only` and no `--initrd`).
    pub fn initrd(&self) -> &Path {
        self.initrd.as_deref().unwrap_or(Path::new(""))
    }

    /// Points the run at another kernel image and initramfs (a campaign's
    /// target).
    pub fn set_images(&mut self, kernel: &Path, initrd: &Path) {
        self.kernel = Some(kernel.to_path_buf());
        self.initrd = Some(initrd.to_path_buf());
    }

    pub fn hang_timeout(&self) -> Duration {
        Duration::from_secs(self.hang_timeout)
    }

    pub fn boot_timeout_for(&self, accel: crate::vm::accel::Accel) -> u64 {
        self.boot_timeout.unwrap_or(match accel {
            crate::vm::accel::Accel::Kvm => BOOT_TIMEOUT_KVM,
            crate::vm::accel::Accel::Tcg => BOOT_TIMEOUT_TCG,
        })
    }

    /// The run id: the given one, or `YYYYmmdd-HHMMSS-<scenario>-s<seed>`.
    pub fn run_id_at(&self, spec: &RunSpec, unix_secs: u64) -> String {
        match &self.run_id {
            Some(id) => id.clone(),
            None => format!(
                "{}-{}-s{}",
                utc_stamp(unix_secs),
                spec.scenario.name(),
                spec.seed
            ),
        }
    }
}

/// The guest shape QEMU and the two-node layout can take.
fn validate_guest(g: &GuestSpec) -> Result<(), UsageError> {
    if g.cpus < 2 || !g.cpus.is_multiple_of(2) {
        return Err(UsageError(format!(
            "--cpus {}: need an even number >= 2 (half the CPUs go to each NUMA node)",
            g.cpus
        )));
    }
    if g.mem_mib < MIN_MEM_MIB || !g.mem_mib.is_multiple_of(2) {
        return Err(UsageError(format!(
            "--mem-mib {}: need an even number >= {MIN_MEM_MIB} (half goes to each NUMA node)",
            g.mem_mib
        )));
    }
    if !(10..=90).contains(&g.node0_pct) {
        return Err(UsageError(format!(
            "node0_pct {}: need 10..=90",
            g.node0_pct
        )));
    }
    Ok(())
}
