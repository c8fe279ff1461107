//! `mmrace-driver`: `/init` of the mmrace test guest, or an ordinary program
//! on a test machine after `insmod mmrace.ko`. See [`mmrace_driver::run`].

fn main() {
    std::process::exit(mmrace_driver::run::main());
}
