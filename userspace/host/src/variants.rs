//! The kernel variant library (`kernel/variants/NAME.patch`): each
//! patch's header, the lines above the diff (before the first `---`),
//! parsed here and nowhere else:
//!
//! - `Expect: REGEX`: the titles of the findings its race causes (the
//!   matrix counts a run as a catch only when its title matches);
//! - `Scenarios: NAME...`: the matrix configurations it gets by default;
//! - `Class: ...`: what kind of bug it is (the OOM path gets oom-stall);
//! - `Best: SCENARIO WORDS...`: the configuration that has caught it best
//!   so far (`make matrix MATRIX_CONFIGS=best` runs it), or
//!   `Best-tried: SCENARIO WORDS...` when no configuration has caught it
//!   yet: the best tried. The words are a scenario's, as `./mmrace run
//!   SCENARIO=... ARGS=...` takes them, without commas (`--pair a --pair
//!   b`, not `--pair a,b`: MATRIX_CONFIGS joins words with commas).
//!
//! `scripts/build-kernel.sh` leaves the `Best` lines out of the kernel's
//! cache key (they do not shape the kernel); every other header line is in
//! it.

use crate::judge::expect::Expect;
use anyhow::{bail, Context};
use std::path::Path;

const EXPECT: &str = "Expect:";
const SCENARIOS: &str = "Scenarios:";
const CLASS: &str = "Class:";
const BEST: &str = "Best:";
const BEST_TRIED: &str = "Best-tried:";

/// A variant's best configuration: scenario words, and whether it has
/// caught the variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Best {
    pub words: Vec<String>,
    /// False for a `Best-tried:` line: nothing has caught it yet.
    pub caught: bool,
}

impl Best {
    /// The words of a `Best:` line, checked: a scenario's arguments, as
    /// its own parser takes them, without commas.
    fn parse(line: &str, caught: bool) -> anyhow::Result<Best> {
        let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        if words.is_empty() {
            bail!("no scenario words");
        }
        if let Some(w) = words.iter().find(|w| w.contains(',')) {
            bail!("'{w}': one word per value, without commas (--pair a --pair b)");
        }
        mmrace_proto::spec::Scenario::parse(&words).map_err(|e| {
            anyhow::anyhow!(
                "'{}' are not a scenario's arguments: {}",
                words.join(" "),
                e.render().to_string().lines().next().unwrap_or_default()
            )
        })?;
        Ok(Best { words, caught })
    }
}

/// A variant patch's header.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub expect: Option<Expect>,
    /// The `Scenarios:` line's names; None without the line.
    pub scenarios: Option<Vec<String>>,
    /// The `Class:` line; None without one.
    pub class: Option<String>,
    pub best: Option<Best>,
}

impl Header {
    /// The header of a patch's text; an error names the bad line.
    pub fn parse(text: &str) -> anyhow::Result<Header> {
        let mut h = Header::default();
        for line in text.lines().take_while(|l| !l.starts_with("---")) {
            if let Some(p) = line.strip_prefix(EXPECT) {
                h.expect = Some(Expect::new(p.trim()).with_context(|| format!("{EXPECT} line"))?);
            } else if let Some(s) = line.strip_prefix(SCENARIOS) {
                h.scenarios = Some(s.split_whitespace().map(str::to_string).collect());
            } else if let Some(c) = line.strip_prefix(CLASS) {
                h.class = Some(c.trim().to_string());
            } else if let Some((rest, caught)) = line
                .strip_prefix(BEST)
                .map(|r| (r, true))
                .or_else(|| line.strip_prefix(BEST_TRIED).map(|r| (r, false)))
            {
                if h.best.is_some() {
                    bail!("more than one {BEST} or {BEST_TRIED} line");
                }
                let key = if caught { BEST } else { BEST_TRIED };
                h.best = Some(Best::parse(rest, caught).with_context(|| format!("{key} line"))?);
            }
        }
        Ok(h)
    }

    /// The header of a patch file.
    pub fn of_patch(patch: &Path) -> anyhow::Result<Header> {
        let text = std::fs::read_to_string(patch)
            .with_context(|| format!("reading {}", patch.display()))?;
        Header::parse(&text).with_context(|| patch.display().to_string())
    }

    /// Whether its `Class:` line names the OOM path.
    pub fn oom_class(&self) -> bool {
        self.class
            .as_deref()
            .is_some_and(|c| c.to_ascii_lowercase().contains("oom"))
    }
}

/// The `variant-expect` subcommand: prints the patch's `Expect:` pattern.
pub fn print_expect(patch: &Path) -> i32 {
    match Header::of_patch(patch) {
        Ok(Header {
            expect: Some(e), ..
        }) => {
            println!("{}", e.pattern());
            0
        }
        Ok(_) => {
            eprintln!(
                "mmrace: {}: no {EXPECT} line above the first ---",
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
    use std::path::PathBuf;

    /// The library's directory.
    fn variants_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kernel/variants")
    }

    /// Variant `v`'s `Expect:` line.
    fn expect_of(v: &str) -> Expect {
        let h = Header::of_patch(&variants_dir().join(format!("{v}.patch"))).unwrap();
        h.expect.unwrap()
    }

    /// `v`'s line takes every title of `yes` and none of `no`.
    fn takes(v: &str, yes: &[&str], no: &[&str]) {
        let e = expect_of(v);
        for t in yes {
            assert!(e.matches(t), "{v}: {t}");
        }
        for t in no {
            assert!(!e.matches(t), "{v}: {t}");
        }
    }

    #[test]
    fn a_header_and_its_lines() {
        let h = Header::parse(
            "mmrace kernel variant: x\nClass: the OOM reaper.\nExpect: ^WARNING in x$\n\
             Scenarios: pairs thp-race\nBest: pairs --pair store --pair migrate-pages --kind anon\n\
             ---\nBest: nonsense\n",
        )
        .unwrap();
        assert_eq!(h.expect.unwrap().pattern(), "^WARNING in x$");
        assert_eq!(h.scenarios.unwrap(), ["pairs", "thp-race"]);
        assert!(h.class.is_some() && Header::parse("Class: OOM\n---\n").unwrap().oom_class());
        let b = h.best.unwrap();
        assert!(b.caught);
        assert_eq!(
            b.words.join(" "),
            "pairs --pair store --pair migrate-pages --kind anon"
        );
        let t = Header::parse("Best-tried: thp-race --no-fork\n---\n").unwrap();
        assert!(!t.best.unwrap().caught);
        let none = Header::parse("Class: a recheck\n---\nExpect: x\n").unwrap();
        assert!(none.expect.is_none() && none.best.is_none() && !none.oom_class());
    }

    #[test]
    fn bad_lines_are_refused_with_the_reason() {
        for (text, why) in [
            ("Expect: in (unclosed\n---\n", "not a regular expression"),
            ("Best: pairs --pair a,b\n---\n", "without commas"),
            (
                "Best: pairs --no-such-option\n---\n",
                "not a scenario's arguments",
            ),
            ("Best: nosuchscenario\n---\n", "not a scenario's arguments"),
            ("Best:\n---\n", "no scenario words"),
            (
                "Best: thp-race\nBest-tried: thp-race\n---\n",
                "more than one",
            ),
        ] {
            let e = format!("{:#}", Header::parse(text).unwrap_err());
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }

    /// Every variant patch says what it causes (`Expect:`) and its best
    /// configuration (`Best:` or `Best-tried:`), each valid: a pattern,
    /// and a scenario's arguments.
    #[test]
    fn every_variant_patch_has_expect_and_best_lines() {
        let dir = variants_dir();
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "patch") {
                let h = Header::of_patch(&p).unwrap_or_else(|e| panic!("{e:#}"));
                assert!(h.expect.is_some(), "{}: no {EXPECT} line", p.display());
                assert!(
                    h.best.is_some(),
                    "{}: no {BEST} or {BEST_TRIED} line",
                    p.display()
                );
                n += 1;
            }
        }
        assert!(n > 0, "no patches in {}", dir.display());
    }

    /// The data-corruption variants expect their lost stores wherever
    /// they are seen: thp-race's writer or a pairs object (titles as the
    /// goal matrix of 2026-12-07 saw them), and nothing else.
    #[test]
    fn the_lost_store_variants_expect_both_scenarios_titles() {
        for v in ["migration-pmd-late-flush", "lost-writes-on-migrate"] {
            takes(
                v,
                &[
                    "data corruption: lost write in pairs object (store+move-pages on populated anon)",
                    "data corruption: lost page (reads zero) in thp-race writer",
                    "data corruption: torn or foreign data in thp-race writer",
                ],
                &["BUG: unable to handle page fault in stable_tree_append"],
            );
        }
    }

    /// The two lines widened in session 11 to their bugs' titles on
    /// today's test kernel (seen in the goal matrix of 2026-12-07):
    /// clear-refs-pmd-unlocked's stale pmd freed under page_table_check
    /// (at the THP's free, or, written back after it, at the stale pmd's
    /// set or zap: session 12; or a freed THP isolated by move_pages
    /// through it: session 13; from the patch, not from counts),
    /// split-freeze-any-count's lru_add_split_folio() WARN inlined into
    /// its caller. Their other findings stay out.
    #[test]
    fn the_widened_lines_take_their_bugs_titles_only() {
        takes(
            "clear-refs-pmd-unlocked",
            &[
                "kernel BUG in __page_table_check_zero",
                "kernel BUG in page_table_check_clear",
                "kernel BUG in page_table_check_set",
                "kernel BUG in folio_isolate_lru",
                "WARNING in pmdp_invalidate",
                "BUG: Bad page state in free_unref_folios",
            ],
            &[
                "kernel BUG in __page_table_check_zero_x",
                "kernel BUG in page_table_check_pmd_set",
                "kernel BUG in folio_isolate_lru_x",
                "WARNING in folio_isolate_lru",
                "WARNING in do_wp_page",
                "WARNING in __split_huge_pmd_locked",
            ],
        );
        takes(
            "split-freeze-any-count",
            &[
                "WARNING in __folio_freeze_and_split_unmapped",
                "BUG: Bad page state in tlb_batch_pages_flush",
                "WARNING in lru_add_split_folio",
            ],
            &[
                "WARNING in folio_remove_rmap_ptes",
                "kernel BUG in do_huge_pmd_wp_page",
                "Oops: Bad pagetable",
            ],
        );
    }

    /// The two lines widened in session 12 to the titles their probes
    /// and `pairs` lines saw: the failed collapse's pfn-0 pte table read
    /// by a user access (x86 pgtable_bad()), and smaps' migration entry
    /// decoded after its migration ended. Other titles stay out.
    #[test]
    fn the_session_12_lines_take_their_bugs_titles_only() {
        let smaps = ["WARNING in softleaf_to_page", "kernel BUG in smaps_account"];
        takes(
            "collapse-pmd-check-before-vma-lock",
            &[
                "Oops: Bad pagetable",
                "BUG: Bad page map in __zap_vma_range",
            ],
            &smaps,
        );
        takes(
            "smaps-pmd-unlocked",
            &smaps,
            &["Oops: Bad pagetable", "WARNING in softleaf_to_page_x"],
        );
    }

    /// migrate-ignore-pin's missing reference check with ksmd as the
    /// holder (session 13, from mm/ksm.c and mm/migrate.c, not from
    /// counts): the migrated KSM folio's stable node is NULL when ksmd
    /// appends to it. Other ksmd or migration titles stay out.
    #[test]
    fn migrate_ignore_pin_takes_ksmd_s_null_stable_node() {
        takes(
            "migrate-ignore-pin",
            &[
                "BUG: unable to handle kernel NULL pointer dereference in stable_tree_append",
                "data corruption: lost write in pairs object (odirect+migrate-pages on small anon)",
            ],
            &[
                "BUG: unable to handle page fault in stable_tree_append",
                "BUG: unable to handle kernel NULL pointer dereference in stable_tree_search",
                "kernel BUG in folio_migrate_ksm",
            ],
        );
    }
}
