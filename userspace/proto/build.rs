//! Generates `counters::name`: one `&str` constant per counter of
//! module/mmrace_counters.h, so userspace names counters by constants the
//! compiler checks against the module's one list, never by string literals.

use std::fmt::Write;

fn main() {
    let header = "../../module/mmrace_counters.h";
    println!("cargo:rerun-if-changed={header}");
    let text = std::fs::read_to_string(header).expect("module/mmrace_counters.h");
    let mut out = String::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("MMRACE_COUNTER(") else {
            continue;
        };
        let name = rest.split(',').next().unwrap_or_default().trim();
        let _ = writeln!(
            out,
            "/// The `{name}` counter.\npub const {}: &str = \"{name}\";",
            name.to_uppercase()
        );
    }
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("counter_names.rs");
    std::fs::write(dest, out).unwrap();
}
