//! Generates `counters::name`: one `&str` constant per counter of
//! module/mmrace_counters.h, and `ops::name` / `ops::kind`: one constant per
//! operation and memory kind of module/mmrace_ops.h, so userspace names them
//! by constants the compiler checks against the module's one list, never by
//! string literals.

use std::fmt::Write;

/// One `pub const NAME: &str = "name";` per `PREFIX(name, ...)` line of
/// `header`, written to `OUT_DIR/out`.
fn constants(header: &str, prefix: &str, what: &str, out: &str) {
    println!("cargo:rerun-if-changed={header}");
    let text = std::fs::read_to_string(header).expect(header);
    let mut code = String::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix(prefix) else {
            continue;
        };
        let name = rest.split(',').next().unwrap_or_default().trim();
        let _ = writeln!(
            code,
            "/// The `{name}` {what}.\npub const {}: &str = \"{name}\";",
            name.to_uppercase()
        );
    }
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join(out);
    std::fs::write(dest, code).unwrap();
}

fn main() {
    constants(
        "../../module/mmrace_counters.h",
        "MMRACE_COUNTER(",
        "counter",
        "counter_names.rs",
    );
    constants(
        "../../module/mmrace_ops.h",
        "MMRACE_OP(",
        "operation",
        "op_names.rs",
    );
    constants(
        "../../module/mmrace_ops.h",
        "MMRACE_KIND(",
        "memory kind",
        "kind_names.rs",
    );
}
