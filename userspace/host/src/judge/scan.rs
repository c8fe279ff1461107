//! Reads a kernel console line by line and keeps what the verdict needs:
//! the findings of [`crate::judge::patterns`] with their excerpts, and whether the
//! kernel booted and powered off.
//!
//! The live monitor and `mmrace-host judge` both feed lines through this one
//! type, so a log judged after the fact gets exactly the verdict the run got.
//! Line numbers count from 1 and are those of `console.log`, which holds one
//! console line per line.

use crate::judge::finding::Finding;
use crate::judge::patterns::{self, Blame};
use crate::judge::title::{self, Identity, TitleRule};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Lines kept after the matching one: enough for a BUG's registers and the
/// top of its call trace.
pub const EXCERPT_AFTER: usize = 30;

/// Lines kept before it: a VM_BUG_ON_FOLIO dumps the folio (flags, mapcount,
/// "page dumped because: ...") *before* its "kernel BUG at" line, and that
/// dump is what tells the assertions apart.
pub const CONTEXT_BEFORE: usize = 12;

/// Lines a finding's title may look at (its first line included): more
/// than the excerpt, since a lockdep report's call trace can start 40 lines
/// down.
pub const TITLE_WINDOW: usize = 80;

/// More findings than this add nothing (a storm of the same WARN).
const MAX_FINDINGS: usize = 20;

/// The kernel's first line; its presence means the kernel got control.
pub const BANNER: &str = "Linux version";

/// What the kernel prints right before a clean power-off.
const POWER_OFF: &str = "reboot: Power down";

/// mmrace.ko's last line at load (`pr_info!("{VERSION} loaded")`, which
/// the kernel prefixes with the module name): the driver loads the module
/// right before the scenario starts, so its time stamp is the run's zero.
fn is_module_loaded(line: &str) -> bool {
    line.contains("mmrace: mmrace ") && line.trim_end().ends_with(" loaded")
}

/// The printk time stamp of a console line (`[   12.345678] ...`), in
/// seconds; None without CONFIG_PRINTK_TIME.
pub fn kernel_time(line: &str) -> Option<f64> {
    let rest = &line[line.find('[')? + 1..];
    rest[..rest.find(']')?].trim().parse().ok()
}

/// One console line with its number in console.log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberedLine {
    pub line_no: usize,
    pub text: String,
}

/// A match of the pattern table: the finding (its class the pattern's;
/// title, frame and signature from the excerpt, absent from reports
/// written before titles existed) and the console lines around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleFinding {
    #[serde(flatten)]
    pub finding: Finding,
    pub blame: Blame,
    /// Up to [`CONTEXT_BEFORE`] lines before the matching one.
    pub before: Vec<NumberedLine>,
    /// The matching line and up to [`EXCERPT_AFTER`] lines after it.
    pub excerpt: Vec<NumberedLine>,
}

impl ConsoleFinding {
    /// The line that matched.
    pub fn first_line(&self) -> &NumberedLine {
        &self.excerpt[0]
    }

    /// Titles the finding from the lines of its report seen so far.
    fn retitle(&mut self, rule: TitleRule, window: &[String]) {
        let lines: Vec<&str> = window.iter().map(String::as_str).collect();
        self.finding.identity = title::identify(rule, &lines);
    }
}

#[derive(Debug, Default)]
pub struct ConsoleScan {
    lines: usize,
    findings: Vec<ConsoleFinding>,
    /// The title rule of the last finding, and the lines of its report
    /// (up to [`TITLE_WINDOW`]) while they come.
    open_rule: Option<TitleRule>,
    title_window: Vec<String>,
    banner_line: Option<usize>,
    module_loaded_at: Option<f64>,
    powered_off: bool,
    recent: VecDeque<NumberedLine>,
}

impl ConsoleScan {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next console line (without its newline).
    ///
    /// A match inside the excerpt window of the previous finding belongs to
    /// the same splat (the Oops after a `kernel BUG at`, the panic after an
    /// Oops) and is not a finding of its own.
    pub fn feed(&mut self, line: &str) {
        self.lines += 1;
        let line_no = self.lines;
        if self.banner_line.is_none() && line.contains(BANNER) {
            self.banner_line = Some(line_no);
        }
        if line.contains(POWER_OFF) {
            self.powered_off = true;
        }
        if self.module_loaded_at.is_none() && is_module_loaded(line) {
            self.module_loaded_at = kernel_time(line);
        }
        let numbered = || NumberedLine {
            line_no,
            text: line.to_string(),
        };
        self.grow_title(line);
        if let Some(open) = self.findings.last_mut() {
            if open.excerpt.len() <= EXCERPT_AFTER {
                open.excerpt.push(numbered());
                return;
            }
        }
        if self.findings.len() < MAX_FINDINGS {
            if let Some(p) = patterns::classify(line) {
                let mut f = ConsoleFinding {
                    finding: Finding::new(p.class, Identity::default()),
                    blame: p.blame,
                    before: self.recent.drain(..).collect(),
                    excerpt: vec![numbered()],
                };
                self.title_window = vec![line.to_string()];
                f.retitle(p.title, &self.title_window);
                self.findings.push(f);
                self.open_rule = Some(p.title);
                return;
            }
        }
        if self.recent.len() == CONTEXT_BEFORE {
            self.recent.pop_front();
        }
        self.recent.push_back(numbered());
    }

    /// One more line for the open finding's title, if its window is open.
    fn grow_title(&mut self, line: &str) {
        let (Some(rule), Some(open)) = (self.open_rule, self.findings.last_mut()) else {
            return;
        };
        if self.title_window.len() >= TITLE_WINDOW {
            self.open_rule = None;
            return;
        }
        self.title_window.push(line.to_string());
        open.retitle(rule, &self.title_window);
    }

    /// Feeds every line of a whole log.
    #[cfg(test)]
    pub fn feed_text(&mut self, text: &str) {
        for line in text.lines() {
            self.feed(line);
        }
    }

    /// All findings in console order; the first decides the verdict.
    pub fn findings(&self) -> &[ConsoleFinding] {
        &self.findings
    }

    pub fn first_finding(&self) -> Option<&ConsoleFinding> {
        self.findings.first()
    }

    /// Whether the kernel printed its banner: it booted at all.
    pub fn booted(&self) -> bool {
        self.banner_line.is_some()
    }

    /// Whether the kernel announced a power-off (the driver's clean exit).
    pub fn powered_off(&self) -> bool {
        self.powered_off
    }

    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Kernel time (s) at which mmrace.ko first said it was loaded.
    pub fn module_loaded_at(&self) -> Option<f64> {
        self.module_loaded_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lines_and_cuts_excerpt() {
        let mut s = ConsoleScan::new();
        s.feed("[    0.000000] Linux version 7.3.4");
        s.feed("[    5.000000] kernel BUG at mm/huge_memory.c:3050!");
        for i in 0..40 {
            s.feed(&format!("[    5.1] line {i}"));
        }
        assert!(s.booted());
        let f = s.first_finding().unwrap();
        assert_eq!(f.finding.class, "BUG");
        assert_eq!(f.first_line().line_no, 2);
        assert_eq!(f.excerpt.len(), EXCERPT_AFTER + 1);
        assert_eq!(f.excerpt.last().unwrap().line_no, 2 + EXCERPT_AFTER);
        assert_eq!(f.before.len(), 1);
        assert_eq!(s.lines(), 42);
    }

    #[test]
    fn keeps_the_folio_dump_before_the_bug_line() {
        let mut s = ConsoleScan::new();
        for i in 0..20 {
            s.feed(&format!("boot line {i}"));
        }
        s.feed("page dumped because: VM_BUG_ON_FOLIO(!folio_test_locked(folio))");
        s.feed("kernel BUG at mm/huge_memory.c:3050!");
        let f = s.first_finding().unwrap();
        assert_eq!(f.before.len(), CONTEXT_BEFORE);
        assert_eq!(f.before.first().unwrap().line_no, 22 - CONTEXT_BEFORE);
        assert!(f.before.last().unwrap().text.contains("VM_BUG_ON_FOLIO"));
        assert_eq!(f.first_line().line_no, 22);
    }

    #[test]
    fn same_splat_is_one_finding_a_later_one_is_another() {
        let mut s = ConsoleScan::new();
        s.feed("kernel BUG at mm/huge_memory.c:3050!");
        s.feed("Oops: invalid opcode: 0000 [#1] SMP");
        for _ in 0..EXCERPT_AFTER {
            s.feed("filler");
        }
        s.feed("WARNING: CPU: 1 PID: 2 at mm/rmap.c:1 x+0x1/0x2");
        let classes: Vec<_> = s
            .findings()
            .iter()
            .map(|f| f.finding.class.as_str())
            .collect();
        assert_eq!(classes, ["BUG", "WARNING"]);
    }

    #[test]
    fn kernel_time_and_module_load() {
        assert_eq!(kernel_time("[   12.345678] BUG: x"), Some(12.345678));
        assert_eq!(kernel_time("no stamp"), None);
        assert_eq!(kernel_time("[ abc] x"), None);
        let mut s = ConsoleScan::new();
        s.feed("[    1.000000] mmrace: probe x not attached (-2): its counters stay at 0");
        assert_eq!(s.module_loaded_at(), None);
        s.feed("[    2.500000] mmrace: mmrace 0.1.0 debugfs 1 loaded");
        s.feed("[    9.000000] mmrace: mmrace 0.1.0 debugfs 1 loaded");
        assert_eq!(s.module_loaded_at(), Some(2.5));
    }

    #[test]
    fn sees_power_off_and_missing_banner() {
        let mut s = ConsoleScan::new();
        s.feed_text("mmrace: done\n[ 9.0] reboot: Power down\n");
        assert!(s.powered_off());
        assert!(!s.booted());
        assert!(s.findings().is_empty());
    }
}
