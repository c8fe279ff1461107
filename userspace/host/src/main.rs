//! mmrace-host: boots the mmrace test kernel in QEMU, watches the guest and
//! judges whether the kernel survived the scenario.
//!
//! Exit codes: 0 clean, 1 kernel problem or hang, 2 harness or usage error,
//! 3 a program run by `exec` or `selftests-mm` failed, 125 (`series`) a kernel
//! series did not build.

use clap::Parser;
use mmrace_host::fleet::{
    batch, bench, bench_run, bisect, bisect_run, lava, matrix, matrix_run, merge, qemu_run, series,
};
use mmrace_host::judge::saved;
use mmrace_host::out::{check, coverage};
use mmrace_host::vm::{interrupt, run};
use mmrace_host::{args, hunt};

/// The command line; on an error, clap's message (with the scenario names
/// for an unknown scenario) and its exit code (2; 0 for --help).
fn parse() -> args::Cli {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args::Cli::try_parse_from(&argv).unwrap_or_else(|e| {
        let _ = e.print();
        let command = argv.get(1).and_then(|c| c.to_str());
        if let Some(note) = args::error_note(&e, command) {
            eprintln!("mmrace: {note}");
        }
        std::process::exit(e.exit_code())
    })
}

fn main() {
    let cli = parse();
    let code = match cli.command {
        args::Command::Run(a) if a.check_only => run::check_only(&a),
        args::Command::Batch(a) if a.run.check_only => run::check_only(&a.run),
        args::Command::ExportLava(a) if a.run.check_only => run::check_only(&a.run),
        args::Command::Run(a) => {
            let stop = interrupt::install();
            run::run(&a, &stop).unwrap_or_else(|e| {
                eprintln!("mmrace: {e:#}");
                2
            })
        }
        args::Command::Batch(a) => {
            let stop = interrupt::install();
            batch::batch(&a, &stop).unwrap_or_else(|e| {
                eprintln!("mmrace: {e:#}");
                2
            })
        }
        args::Command::Hunt(a) => {
            let stop = interrupt::install();
            hunt::hunt(&a, &stop).unwrap_or_else(|e| {
                eprintln!("mmrace: {e:#}");
                2
            })
        }
        args::Command::HuntRun(a) => {
            let stop = interrupt::install();
            hunt::setup::hunt_run(&a, &stop)
        }
        args::Command::HuntReport(a) => hunt::report_only(&a.campaign),
        args::Command::Judge(a) => saved::judge(&a),
        args::Command::Merge(a) => merge::merge(&a),
        args::Command::ExportLava(a) => lava::export(&a),
        args::Command::BisectPlan(a) => bisect::plan_cmd(&a),
        args::Command::BisectReport(a) => bisect::report_cmd(&a),
        args::Command::BisectRun(a) => bisect_run::bisect_run(&a),
        args::Command::Matrix(a) => matrix::matrix_cmd(&a),
        args::Command::MatrixRun(a) => {
            let stop = interrupt::install();
            matrix_run::matrix_run(&a, &stop)
        }
        args::Command::Build(a) => mmrace_host::fleet::build::build_cmd(&a),
        args::Command::QemuRun(a) => {
            let stop = interrupt::install();
            qemu_run::qemu_run(&a, &stop)
        }
        args::Command::Series(a) => series::series_cmd(&a),
        args::Command::BenchRun(a) => bench_run::bench_run(&a),
        args::Command::BenchSummary(a) => bench::main(&a),
        args::Command::VariantExpect(a) => mmrace_host::variants::print_expect(&a.patch),
        args::Command::Check(a) => check::main(&a.report, &a.checks),
        args::Command::Coverage(a) => coverage::main(&a.reports, a.by_kind),
        args::Command::SelftestsMmBinaries => {
            for b in mmrace_proto::spec::selftests_mm::binaries() {
                println!("{b}");
            }
            0
        }
        args::Command::NeedsDisk(a) => match mmrace_proto::spec::Scenario::parse(&a.scenario.words)
        {
            Ok(s) => i32::from(!s.needs_disk()),
            Err(e) => {
                eprintln!("{e}");
                2
            }
        },
    };
    std::process::exit(code);
}
