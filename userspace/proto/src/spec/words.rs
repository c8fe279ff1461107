//! A scenario's options as the command-line words that give them, read off
//! their serde form: every field that differs from the defaults becomes
//! `--field-name VALUE` (a list joined by commas, a `true` switch alone).
//! The option structs name their clap flags after their fields and their
//! values' serde names are the clap value names (kebab-case), so the words
//! parse back to the same options; each scenario's tests check that.

use serde::Serialize;
use serde_json::Value;

/// One value as an option's argument; None for "leave it out".
fn value_word(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Bool(_) => None,
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(value_word)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Value::Object(_) => None,
    }
}

/// The words that turn `defaults` into `options` on a command line.
pub fn differing<T: Serialize>(options: &T, defaults: &T) -> Vec<String> {
    let (Ok(Value::Object(o)), Ok(Value::Object(d))) = (
        serde_json::to_value(options),
        serde_json::to_value(defaults),
    ) else {
        return Vec::new();
    };
    let mut w = Vec::new();
    for (key, v) in &o {
        if d.get(key) == Some(v) {
            continue;
        }
        let flag = format!("--{}", key.replace('_', "-"));
        match v {
            Value::Bool(true) => w.push(flag),
            Value::Bool(false) | Value::Null => {}
            _ => {
                if let Some(arg) = value_word(v) {
                    w.extend([flag, arg]);
                }
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize, Default)]
    struct Opts {
        on: bool,
        count: u32,
        list: Vec<String>,
        maybe: Option<u8>,
        snake_case: u8,
    }

    #[test]
    fn only_what_differs_in_flag_form() {
        let d = Opts::default();
        assert!(differing(&d, &d).is_empty());
        let o = Opts {
            on: true,
            count: 3,
            list: vec!["a".into(), "b-c".into()],
            maybe: Some(7),
            snake_case: 1,
        };
        assert_eq!(
            differing(&o, &d).join(" "),
            "--count 3 --list a,b-c --maybe 7 --on --snake-case 1"
        );
    }
}
