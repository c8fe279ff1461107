//! The kernel command line, as the guest's `/init` sees it in /proc/cmdline.
//!
//! The host passes the run as one parameter, `mmrace.spec=BASE64`
//! ([`mmrace_proto::spec::CMDLINE_KEY`]). The kernel keeps such dotted
//! parameters away from init's argv (they look like module parameters), so
//! the driver reads /proc/cmdline itself. Quoting follows the kernel's own
//! rule: double quotes group words and are dropped, there is no escape
//! character.

use anyhow::{bail, Result};

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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "mmrace.spec";

    #[test]
    fn quoted_value_among_other_parameters() {
        let line = "console=ttyS0 mmrace.spec=\"a b\" panic=-1 quiet\n";
        assert_eq!(value(line, KEY).unwrap().as_deref(), Some("a b"));
        assert_eq!(value(line, "console").unwrap().as_deref(), Some("ttyS0"));
        assert_eq!(value(line, "panic").unwrap().as_deref(), Some("-1"));
        assert_eq!(value(line, "quiet").unwrap().as_deref(), Some(""));
    }

    #[test]
    fn first_last_and_whole_parameter_quoted() {
        assert_eq!(
            value("mmrace.spec=eyJ4Ijo console=ttyS0", KEY)
                .unwrap()
                .as_deref(),
            Some("eyJ4Ijo")
        );
        assert_eq!(
            value("console=ttyS0 mmrace.spec=abc", KEY)
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert_eq!(
            value("  \"mmrace.spec=a  b \"  ", KEY).unwrap().as_deref(),
            Some("a  b ")
        );
    }

    #[test]
    fn equals_inside_value_is_kept() {
        let line = "mmrace.spec=a=b root=LABEL=x";
        assert_eq!(value(line, KEY).unwrap().as_deref(), Some("a=b"));
        assert_eq!(value(line, "root").unwrap().as_deref(), Some("LABEL=x"));
    }

    #[test]
    fn later_parameter_wins() {
        let line = "mmrace.spec=one mmrace.spec=two";
        assert_eq!(value(line, KEY).unwrap().as_deref(), Some("two"));
    }

    #[test]
    fn missing_key() {
        assert_eq!(value("console=ttyS0 quiet", KEY).unwrap(), None);
        assert_eq!(value("", KEY).unwrap(), None);
        // A prefix of the key is another parameter.
        assert_eq!(value("mmrace.specx=a mmrace=1", KEY).unwrap(), None);
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let err = value("console=ttyS0 mmrace.spec=\"abc", KEY).unwrap_err();
        assert!(err.to_string().contains("unterminated"), "{err}");
    }
}
