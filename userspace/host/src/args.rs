//! The command line, and the checks that turn bad values into a clear
//! message and exit code 2 before anything is started.

use crate::accel::AccelChoice;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "mmrace-host",
    version,
    about = "Boots the mmrace test kernel in QEMU, watches the guest, judges the run",
    after_help = "Exit codes: 0 clean, 1 kernel problem or hang, 2 harness or usage error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Boot the guest, run a scenario, write the results and judge the run.
    Run(Box<RunArgs>),
    /// Re-judge an existing console log (from a run or a real machine's
    /// serial console) with the same rules as `run`.
    Judge(JudgeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// The kernel image (bzImage).
    #[arg(long, value_name = "PATH")]
    pub kernel: PathBuf,
    /// The initramfs holding the driver as /init.
    #[arg(long, value_name = "PATH")]
    pub initrd: PathBuf,
    /// Arguments for the guest driver, passed verbatim
    /// (e.g. "--duration 20 --seed 7 smoke").
    #[arg(long, value_name = "STRING", allow_hyphen_values = true)]
    pub driver_args: String,
    /// Scenario name, recorded in the report.
    #[arg(long, value_name = "NAME")]
    pub scenario: String,
    /// Seed, recorded in the report.
    #[arg(long, value_name = "N")]
    pub seed: u64,
    /// Scenario duration in seconds: recorded, and sizes the overall timeout.
    #[arg(long, value_name = "SECS")]
    pub duration: u64,
    /// Accelerator; auto tries KVM and falls back to TCG.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Guest CPUs, split evenly between the two NUMA nodes (even, >= 2).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub cpus: u32,
    /// Guest memory in MiB, split evenly between the two NUMA nodes.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub mem_mib: u64,
    /// Node 0's share of the guest memory in percent (10..=90); node 1 gets
    /// the rest.
    #[arg(long, value_name = "PCT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(10..=90))]
    pub node0_pct: u32,
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

#[derive(Args, Debug, Clone)]
pub struct JudgeArgs {
    /// The console log to judge.
    pub console_log: PathBuf,
    /// The driver's protocol log (wire.log) of the same run, if separate.
    #[arg(long, value_name = "PATH")]
    pub wire: Option<PathBuf>,
    /// Print the report as JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Default boot timeouts: TCG boots a 2-node guest in well under a minute
/// on a loaded host; the margin is for much slower CI machines.
pub const BOOT_TIMEOUT_TCG: u64 = 300;
pub const BOOT_TIMEOUT_KVM: u64 = 60;

const MIN_MEM_MIB: u64 = 256;

/// A usage error: printed as is, exit code 2.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

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

/// Whether `id` can name a directory under the results dir (and is not the
/// `latest` link).
fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id != "latest"
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
}

impl RunArgs {
    /// Checks every value that does not need QEMU to check.
    pub fn validate(&self) -> Result<(), UsageError> {
        let bad = |m: String| Err(UsageError(m));
        if self.cpus < 2 || !self.cpus.is_multiple_of(2) {
            return bad(format!(
                "--cpus {}: need an even number >= 2 (half the CPUs go to each NUMA node)",
                self.cpus
            ));
        }
        if self.mem_mib < MIN_MEM_MIB || !self.mem_mib.is_multiple_of(2) {
            return bad(format!(
                "--mem-mib {}: need an even number >= {MIN_MEM_MIB} (half goes to each NUMA node)",
                self.mem_mib
            ));
        }
        if self.hang_timeout == 0 {
            return bad("--hang-timeout must be at least 1 second".into());
        }
        if self.boot_timeout == Some(0) {
            return bad("--boot-timeout must be at least 1 second".into());
        }
        if self.driver_args.contains(['"', '\n']) {
            return bad(format!(
                "--driver-args {:?}: the kernel command line cannot carry '\"' or newlines",
                self.driver_args
            ));
        }
        if self
            .extra_append
            .as_deref()
            .is_some_and(|e| e.contains('\n'))
        {
            return bad("--extra-append cannot contain newlines".into());
        }
        if self.scenario.trim().is_empty() {
            return bad("--scenario cannot be empty".into());
        }
        if let Some(id) = &self.run_id {
            if !valid_run_id(id) {
                return bad(format!(
                    "--run-id {id:?}: use letters, digits and ._-+ (and not 'latest')"
                ));
            }
        }
        need_file("--kernel", &self.kernel)?;
        need_file("--initrd", &self.initrd)?;
        if let Some(d) = &self.disk {
            need_file("--disk", d)?;
        }
        Ok(())
    }

    pub fn hang_timeout(&self) -> Duration {
        Duration::from_secs(self.hang_timeout)
    }

    pub fn boot_timeout_for(&self, accel: crate::accel::Accel) -> u64 {
        self.boot_timeout.unwrap_or(match accel {
            crate::accel::Accel::Kvm => BOOT_TIMEOUT_KVM,
            crate::accel::Accel::Tcg => BOOT_TIMEOUT_TCG,
        })
    }

    /// The run id: the given one, or `YYYYmmdd-HHMMSS-<scenario>-s<seed>`.
    pub fn run_id_at(&self, unix_secs: u64) -> String {
        if let Some(id) = &self.run_id {
            return id.clone();
        }
        let scenario: String = self
            .scenario
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}-{scenario}-s{}", utc_stamp(unix_secs), self.seed)
    }
}

/// `YYYYmmdd-HHMMSS` in UTC, from the Unix time (no calendar crate needed:
/// the civil-from-days algorithm of Howard Hinnant).
pub fn utc_stamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `run` with valid required options, `extra` (flag, value
    /// pairs or lone switches) replacing or adding to them.
    fn parse(extra: &[&str]) -> RunArgs {
        let exe = std::env::current_exe().unwrap();
        let exe = exe.to_str().unwrap();
        let mut opts: Vec<(&str, Option<&str>)> = vec![
            ("--kernel", Some(exe)),
            ("--initrd", Some(exe)),
            ("--driver-args", Some("--duration 5 smoke")),
            ("--scenario", Some("smoke")),
            ("--seed", Some("7")),
            ("--duration", Some("5")),
        ];
        let mut it = extra.iter().peekable();
        while let Some(flag) = it.next() {
            let value = it
                .next_if(|v| !v.starts_with("--") || *flag == "--driver-args")
                .copied();
            match opts.iter_mut().find(|(f, _)| f == flag) {
                Some(o) => o.1 = value,
                None => opts.push((flag, value)),
            }
        }
        let mut argv = vec!["mmrace-host", "run"];
        for (f, v) in opts {
            argv.push(f);
            argv.extend(v);
        }
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(r) => *r,
            Command::Judge(_) => unreachable!(),
        }
    }

    #[test]
    fn defaults_validate() {
        let a = parse(&[]);
        assert_eq!((a.cpus, a.mem_mib, a.hang_timeout), (2, 2048, 120));
        assert_eq!(a.accel, AccelChoice::Auto);
        assert_eq!(a.driver_args, "--duration 5 smoke");
        assert_eq!(a.validate(), Ok(()));
        assert_eq!(a.boot_timeout_for(crate::accel::Accel::Tcg), 300);
    }

    #[test]
    fn rejects_bad_values() {
        for (extra, needle) in [
            (&["--cpus", "3"][..], "--cpus 3"),
            (&["--cpus", "0"][..], "--cpus 0"),
            (&["--mem-mib", "0"][..], "--mem-mib 0"),
            (&["--mem-mib", "1025"][..], "--mem-mib 1025"),
            (&["--hang-timeout", "0"][..], "--hang-timeout"),
            (&["--boot-timeout", "0"][..], "--boot-timeout"),
            (&["--run-id", "../x"][..], "--run-id"),
            (&["--run-id", "latest"][..], "--run-id"),
            (
                &["--kernel", "/nonexistent/bzImage"][..],
                "--kernel /nonexistent/bzImage",
            ),
            (&["--initrd", "/nonexistent/initrd"][..], "--initrd"),
            (&["--disk", "/nonexistent/disk"][..], "--disk"),
            (&["--driver-args", "say \"hi\""][..], "--driver-args"),
        ] {
            let err = parse(extra).validate().unwrap_err();
            assert!(err.0.contains(needle), "{extra:?}: {err}");
        }
    }

    #[test]
    fn clap_rejects_unknown_accel_with_usage_code() {
        let err = Cli::try_parse_from(["mmrace-host", "run", "--accel", "xen"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn default_run_id_is_utc_scenario_seed() {
        let a = parse(&["--scenario", "thp race"]);
        // 2026-11-22 02:58:07 UTC
        assert_eq!(a.run_id_at(1_795_316_287), "20261122-025807-thp_race-s7");
        assert_eq!(parse(&["--run-id", "mine"]).run_id_at(0), "mine");
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000");
    }
}
