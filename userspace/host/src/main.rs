//! mmrace-host: boots the mmrace test kernel in QEMU, watches the guest and
//! judges whether the kernel survived the scenario.
//!
//! Exit codes: 0 clean, 1 kernel problem or hang, 2 harness or usage error,
//! 3 a program run by `exec` or `selftests-mm` failed.

mod accel;
mod args;
mod check;
mod interrupt;
mod judge;
mod ktap;
mod messages;
mod monitor;
mod patterns;
mod qemu;
mod report;
mod run;
mod scan;
mod suite;
mod summary;
mod verdict;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let code = match cli.command {
        args::Command::Run(a) => {
            let stop = interrupt::install();
            run::run(&a, &stop).unwrap_or_else(|e| {
                eprintln!("mmrace: {e:#}");
                2
            })
        }
        args::Command::Judge(a) => judge::judge(&a),
        args::Command::Check(a) => check::main(&a.report, &a.checks),
        args::Command::SelftestsMmBinaries => {
            for b in mmrace_proto::spec::selftests_mm::binaries() {
                println!("{b}");
            }
            0
        }
    };
    std::process::exit(code);
}
