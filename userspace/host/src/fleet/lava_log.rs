//! The way back from LAVA: `merge` reads a LAVA job log (the dispatcher's
//! YAML log, `output.yaml` on a server) by judging its console lines with
//! the same rules as a run. The export is [`crate::fleet::lava`]'s.

use serde_json::Value;

/// The console lines of a LAVA job log: its `target` records, in order.
/// Each record is one line of YAML in double-quoted flow style (`- ` in
/// front on a server's output.yaml); YAML's escapes beyond JSON's are
/// turned into JSON ones before parsing. The dispatcher writes every `"` of
/// a console line as `\"` (lava_dispatcher/shell.py, "for YAML syntax"),
/// which is undone here.
pub fn console_lines(log: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Record {
        lvl: String,
        msg: Value,
    }
    log.lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("- ").unwrap_or(l);
            if !l.starts_with('{') || !l.contains(r#""lvl": "target""#) {
                return None;
            }
            let r: Record = serde_json::from_str(&yaml_escapes_to_json(l)).ok()?;
            match (r.lvl.as_str(), r.msg) {
                ("target", Value::String(s)) => Some(s.replace("\\\"", "\"")),
                _ => None,
            }
        })
        .collect()
}

/// `\xHH`, `\e`, `\0`, `\N`, `\_`, `\L`, `\P` and `\ ` (YAML) as JSON.
fn yaml_escapes_to_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        match e {
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push_str(&format!("\\u00{hex}"));
            }
            'e' => out.push_str("\\u001b"),
            '0' => out.push_str("\\u0000"),
            'a' => out.push_str("\\u0007"),
            'v' => out.push_str("\\u000b"),
            'N' => out.push_str("\\u0085"),
            '_' => out.push_str("\\u00a0"),
            'L' => out.push_str("\\u2028"),
            'P' => out.push_str("\\u2029"),
            ' ' => out.push(' '),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_target_lines_of_a_lava_log() {
        let log = concat!(
            "- {\"dt\": \"2026-12-01T13:00:00\", \"lvl\": \"info\", \"msg\": \"start\"}\n",
            "- {\"dt\": \"2026-12-01T13:00:01\", \"lvl\": \"target\", \"msg\": \"[    0.000000] Linux version 7.3.4\"}\n",
            "{\"dt\": \"2026-12-01T13:00:02\", \"lvl\": \"target\", \"msg\": \"esc \\e[0m \\x41 tab\\tend\"}\n",
            "{\"dt\": \"2026-12-01T13:00:02\", \"lvl\": \"target\", \"msg\": \"@@MMRACE@@ {\\\\\\\"type\\\\\\\":1}\"}\n",
            "- {\"dt\": \"2026-12-01T13:00:03\", \"lvl\": \"results\", \"msg\": {\"case\": \"x\"}}\n",
        );
        assert_eq!(
            console_lines(log),
            [
                "[    0.000000] Linux version 7.3.4",
                "esc \u{1b}[0m A tab\tend",
                "@@MMRACE@@ {\"type\":1}"
            ]
        );
    }
}
