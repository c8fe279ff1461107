//! The kernel command line, as the guest's `/init` sees it in /proc/cmdline.
//!
//! The host passes the driver's arguments as one parameter,
//! `mmrace.argv="--duration 20 --seed 7 smoke"`. The kernel keeps such
//! dotted parameters away from init's argv (they look like module
//! parameters), so the driver reads /proc/cmdline itself. Quoting follows the
//! kernel's own rule: double quotes group words and are dropped, there is no
//! escape character.

use anyhow::{bail, Result};

/// The parameter that carries the driver's arguments.
pub const ARGV_KEY: &str = "mmrace.argv";

/// Splits a kernel command line into `(key, value)` parameters; a parameter
/// without `=` has value `None`. An unterminated quote is an error: the
/// kernel would take the rest of the line as one value, but for mmrace it
/// means the host built a broken command line, and silently running
/// something else would hide that.
pub fn parse(line: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut params = Vec::new();
    let mut chars = line.trim_end_matches(['\n', '\0']).chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(params);
        }
        let mut word = String::new();
        let mut quoted = false;
        // Byte offset of the first '=', quoted or not (as the kernel's
        // next_arg does, so `"key=a b"` works too).
        let mut eq = None;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() && !quoted {
                break;
            }
            chars.next();
            match c {
                '"' => quoted = !quoted,
                '=' if eq.is_none() => {
                    eq = Some(word.len());
                    word.push(c);
                }
                _ => word.push(c),
            }
        }
        if quoted {
            bail!("unterminated double quote in kernel command line: {line:?}");
        }
        params.push(match eq {
            Some(i) => (word[..i].to_string(), Some(word[i + 1..].to_string())),
            None => (word, None),
        });
    }
}

/// The value of the last `key=...` on `line` (the kernel, too, lets a later
/// parameter override an earlier one), or `None` if absent.
pub fn value(line: &str, key: &str) -> Result<Option<String>> {
    Ok(parse(line)?
        .into_iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.unwrap_or_default()))
}

/// The driver's argv from `line`: program name, then the words of
/// `mmrace.argv`. `None` if the parameter is absent.
pub fn driver_argv(line: &str) -> Result<Option<Vec<String>>> {
    Ok(value(line, ARGV_KEY)?.map(|v| {
        std::iter::once("mmrace-driver".to_string())
            .chain(v.split_whitespace().map(str::to_string))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_value_among_other_parameters() {
        let line = "console=ttyS0 mmrace.argv=\"--duration 5 smoke\" panic=-1 quiet\n";
        assert_eq!(
            driver_argv(line).unwrap().unwrap(),
            ["mmrace-driver", "--duration", "5", "smoke"]
        );
        assert_eq!(value(line, "console").unwrap().as_deref(), Some("ttyS0"));
        assert_eq!(value(line, "panic").unwrap().as_deref(), Some("-1"));
        assert_eq!(value(line, "quiet").unwrap().as_deref(), Some(""));
    }

    #[test]
    fn quoted_value_first_and_last() {
        let argv = driver_argv("mmrace.argv=\"--duration 5 smoke\" console=ttyS0").unwrap();
        assert_eq!(argv.unwrap(), ["mmrace-driver", "--duration", "5", "smoke"]);
        let argv = driver_argv("console=ttyS0 mmrace.argv=\"smoke\"").unwrap();
        assert_eq!(argv.unwrap(), ["mmrace-driver", "smoke"]);
    }

    #[test]
    fn whole_parameter_quoted_and_extra_spaces() {
        let argv = driver_argv("  \"mmrace.argv=--seed  7   smoke \"  ").unwrap();
        assert_eq!(argv.unwrap(), ["mmrace-driver", "--seed", "7", "smoke"]);
    }

    #[test]
    fn unquoted_single_word() {
        let argv = driver_argv("mmrace.argv=smoke").unwrap();
        assert_eq!(argv.unwrap(), ["mmrace-driver", "smoke"]);
    }

    #[test]
    fn equals_inside_value_is_kept() {
        let line = "mmrace.argv=\"--wire=/dev/hvc0 smoke\" root=LABEL=x";
        assert_eq!(
            driver_argv(line).unwrap().unwrap(),
            ["mmrace-driver", "--wire=/dev/hvc0", "smoke"]
        );
        assert_eq!(value(line, "root").unwrap().as_deref(), Some("LABEL=x"));
    }

    #[test]
    fn later_parameter_wins() {
        let line = "mmrace.argv=\"smoke\" mmrace.argv=\"thp-race\"";
        assert_eq!(
            driver_argv(line).unwrap().unwrap(),
            ["mmrace-driver", "thp-race"]
        );
    }

    #[test]
    fn missing_key() {
        assert_eq!(driver_argv("console=ttyS0 quiet").unwrap(), None);
        assert_eq!(driver_argv("").unwrap(), None);
        // A prefix of the key is another parameter.
        assert_eq!(driver_argv("mmrace.argvx=smoke mmrace=1").unwrap(), None);
    }

    #[test]
    fn empty_value_gives_bare_program_name() {
        assert_eq!(
            driver_argv("mmrace.argv=\"\"").unwrap().unwrap(),
            ["mmrace-driver"]
        );
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let err = driver_argv("console=ttyS0 mmrace.argv=\"--duration 5 smoke").unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
    }
}
