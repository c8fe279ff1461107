//! Which findings are *the* catch: a pattern (regex) of finding titles.
//!
//! A kernel variant says what its race causes in an `Expect:` line of its
//! patch header (the lines before the first `---`); the matrix's cells pass
//! it to their batches (`--expect`) and a bisection passes the title of the
//! finding it started from. A run whose finding's title does not match is
//! an *other finding*: listed, never a catch.

use anyhow::{bail, Context};
use regex::Regex;
use std::path::Path;

/// The header line naming a variant's expected titles.
pub const HEADER_KEY: &str = "Expect:";

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

    /// The `Expect:` line of a variant patch's header; None without one.
    pub fn of_patch(patch: &Path) -> anyhow::Result<Option<Expect>> {
        let text = std::fs::read_to_string(patch)
            .with_context(|| format!("reading {}", patch.display()))?;
        let line = text
            .lines()
            .take_while(|l| !l.starts_with("---"))
            .find_map(|l| l.strip_prefix(HEADER_KEY));
        match line {
            None => Ok(None),
            Some(p) => Expect::new(p.trim())
                .map(Some)
                .with_context(|| format!("{}: {HEADER_KEY} line", patch.display())),
        }
    }
}

/// The `variant-expect` subcommand: prints the patch's pattern.
pub fn print_of_patch(patch: &Path) -> i32 {
    match Expect::of_patch(patch) {
        Ok(Some(e)) => {
            println!("{}", e.pattern());
            0
        }
        Ok(None) => {
            eprintln!(
                "mmrace: {}: no {HEADER_KEY} line above the first ---",
                patch.display()
            );
            2
        }
        Err(e) => {
            eprintln!("mmrace: {e:#}");
            2
        }
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

    /// Every variant patch says what it causes, and says it as a valid
    /// pattern, in its header.
    #[test]
    fn every_variant_patch_has_an_expect_line() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel/variants");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "patch") {
                let expect = Expect::of_patch(&p).unwrap();
                assert!(expect.is_some(), "{}: no {HEADER_KEY} line", p.display());
                n += 1;
            }
        }
        assert!(n > 0, "no patches in {}", dir.display());
    }
}
