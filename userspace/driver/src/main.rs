//! `mmrace-driver`: `/init` of the mmrace test guest, or an ordinary program
//! on a test machine after `insmod mmrace.ko`. PID 1 duties are
//! [`mmrace_driver::init`]'s, a run is [`mmrace_driver::run`]'s: this file
//! picks one, so neither needs the other's entry point.

use clap::Parser;
use mmrace_driver::cli::Cli;
use mmrace_driver::output::Output;
use mmrace_driver::{init, run};

fn main() {
    std::process::exit(entry());
}

/// PID 1 duties in the guest, else a plain run.
fn entry() -> i32 {
    if nix::unistd::getpid().as_raw() == 1 {
        init::main();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let out = match &cli.wire {
        None => Output::stdout(),
        Some(path) => match Output::to_path(path) {
            Ok(out) => out,
            Err(e) => {
                eprintln!("mmrace-driver: cannot open --wire {}: {e}", path.display());
                return run::EXIT_USAGE;
            }
        },
    };
    run::run(&cli, out)
}
