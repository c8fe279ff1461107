//! Which findings are *the* catch: a pattern (regex) of finding titles.
//!
//! A kernel variant says what its race causes in an `Expect:` line of its
//! patch header ([`crate::variants`] parses it); the matrix's cells pass
//! it to their batches (`--expect`) and a bisection passes the title of the
//! finding it started from. A run whose finding's title does not match is
//! an *other finding*: listed, never a catch.

use anyhow::{bail, Context};
use regex::Regex;

#[derive(Debug, Clone)]
pub struct Expect {
    pattern: String,
    re: Regex,
}

impl Expect {
    /// A pattern, unanchored (as `grep -E`): "WARNING in __split_huge_pmd".
    pub fn new(pattern: &str) -> anyhow::Result<Expect> {
        if pattern.trim().is_empty() {
            bail!("an empty title pattern would match every finding");
        }
        let re = Regex::new(pattern)
            .with_context(|| format!("{pattern:?} is not a regular expression"))?;
        Ok(Expect {
            pattern: pattern.to_string(),
            re,
        })
    }

    /// For clap.
    pub fn parse(pattern: &str) -> Result<Expect, String> {
        Expect::new(pattern).map_err(|e| format!("{e:#}"))
    }

    /// Exactly this title (a bisection's "the finding it started from").
    pub fn exactly(title: &str) -> Expect {
        Expect::new(&format!("^{}$", regex::escape(title))).expect("an escaped title is a regex")
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn matches(&self, title: &str) -> bool {
        self.re.is_match(title)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_exact_titles() {
        let e = Expect::new("WARNING in (__)?split_huge_pmd").unwrap();
        assert!(e.matches("WARNING in __split_huge_pmd"));
        assert!(e.matches("WARNING in __split_huge_pmd_locked"));
        assert!(!e.matches("kernel BUG in __split_huge_pmd_locked"));
        let x = Expect::exactly("KASAN: use-after-free Read in f (g)");
        assert!(x.matches("KASAN: use-after-free Read in f (g)"));
        assert!(!x.matches("KASAN: use-after-free Read in f (g) and more"));
        assert!(Expect::new("  ").is_err());
        let e = Expect::new("in (unclosed").unwrap_err().to_string();
        assert!(e.contains("not a regular expression"), "{e}");
    }
}
