//! A hunt campaign's state: its settings, which runs it did, and its
//! findings by signature, with each one's reproduction and minimisation.
//! It lives in `DIR/campaign.json`, rewritten (atomically) after every run,
//! so a campaign survives an interruption and resumes.

use super::plan::Settings;
use super::repro::{ReproState, Which};
use super::triage::{self, Triage};
use crate::judge::finding::Finding;
use crate::judge::verdict::Verdict;
use crate::out::report::Report;
use anyhow::Context;
use mmrace_proto::spec::RunSpec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub const CAMPAIGN_JSON: &str = "campaign.json";
/// Console lines of the first run kept with a finding.
const EXCERPT_LINES: usize = 40;

/// One finding, by signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// Its class, title, frame and signature (campaign.json's `class`,
    /// `title`, `frame`, `signature`).
    #[serde(flatten)]
    pub finding: Finding,
    pub triage: Triage,
    /// The target it was found on (index into the settings' targets).
    pub target: usize,
    /// The run directory that found it first, and every run that found it.
    pub first_run: PathBuf,
    pub runs: Vec<PathBuf>,
    /// Exploring runs that found it (reruns excluded).
    pub hits: u32,
    /// The first run's console from the finding's first line.
    pub excerpt: Vec<String>,
    pub repro: ReproState,
    /// Where its reproducer was written, once it was.
    pub reproducer: Option<PathBuf>,
}

impl FindingRecord {
    pub fn title(&self) -> &str {
        &self.finding.identity.title
    }

    /// Its key in the campaign.
    pub fn signature(&self) -> &str {
        &self.finding.identity.signature
    }
}

/// Counts of the exploring runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub runs: u64,
    pub clean: u64,
    pub found: u64,
    pub harness_errors: u64,
    pub reruns: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub settings: Settings,
    /// Exploring run indices done (a run interrupted is not done: a resumed
    /// campaign runs it again).
    pub done: BTreeSet<u64>,
    pub tally: Tally,
    /// Hunting time over every session, seconds.
    pub elapsed_s: f64,
    pub findings: BTreeMap<String, FindingRecord>,
    /// Harness errors by their title, for the report.
    pub harness: BTreeMap<String, u64>,
}

/// A run of the campaign: exploring index `i`, or a rerun of a finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    Explore { index: u64 },
    Rerun { signature: String, which: Which },
}

impl Campaign {
    pub fn new(settings: Settings) -> Campaign {
        Campaign {
            settings,
            done: BTreeSet::new(),
            tally: Tally::default(),
            elapsed_s: 0.0,
            findings: BTreeMap::new(),
            harness: BTreeMap::new(),
        }
    }

    pub fn load(dir: &Path) -> anyhow::Result<Option<Campaign>> {
        let p = dir.join(CAMPAIGN_JSON);
        match std::fs::read_to_string(&p) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{}: not a campaign", p.display()))
                .map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    /// Writes campaign.json through a temporary file and a rename: an
    /// interruption leaves the old one or the new one, never half of one.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(format!(".{CAMPAIGN_JSON}.tmp"));
        let json = serde_json::to_string_pretty(self).expect("serializes") + "\n";
        std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(CAMPAIGN_JSON))?;
        Ok(())
    }

    /// Takes a finished run. `report`: its directory and report (None for
    /// a run that left none); `target` and `spec`: what it ran. Returns the
    /// signature of a finding seen for the first time.
    pub fn record(
        &mut self,
        task: &Task,
        target: usize,
        result: Option<&(PathBuf, Report)>,
    ) -> Option<String> {
        let Some((dir, r)) = result else {
            self.count(task, |t| t.harness_errors += 1);
            self.mark_done(task);
            *self.harness.entry("no report".into()).or_default() += 1;
            return None;
        };
        if r.ending == crate::judge::verdict::Ending::Interrupted {
            return None;
        }
        self.mark_done(task);
        let found = matches!(
            r.verdict,
            Verdict::KernelProblem | Verdict::Hang | Verdict::TestFailed
        );
        // A finding recorded before titles has no signature: it is keyed
        // as a harness error's title would be, by none.
        let id = r.found().filter(|f| f.signature().is_some());
        if let Task::Rerun { signature, which } = task {
            self.tally.reruns += 1;
            let same = found && id.is_some_and(|f| f.identity.signature == *signature);
            if let Some(f) = self.findings.get_mut(signature) {
                f.repro.record(which, same);
                if same {
                    f.runs.push(dir.clone());
                }
            }
        } else {
            self.count(task, |t| match r.verdict {
                Verdict::Clean => t.clean += 1,
                Verdict::HarnessError => t.harness_errors += 1,
                _ => t.found += 1,
            });
        }
        if r.verdict == Verdict::HarnessError {
            let title =
                id.map_or_else(|| "harness error".to_string(), |f| f.identity.title.clone());
            *self.harness.entry(title).or_default() += 1;
            return None;
        }
        let id = id.filter(|_| found)?;
        let explore = matches!(task, Task::Explore { .. });
        if let Some(f) = self.findings.get_mut(&id.identity.signature) {
            if explore {
                f.hits += 1;
                f.runs.push(dir.clone());
            }
            return None;
        }
        let console = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
        let spec = r.meta.spec.clone()?;
        self.findings.insert(
            id.identity.signature.clone(),
            FindingRecord {
                finding: id.clone(),
                triage: triage::triage(r, &console),
                target,
                first_run: dir.clone(),
                runs: vec![dir.clone()],
                hits: u32::from(explore),
                excerpt: excerpt(r),
                repro: ReproState::new(spec, self.settings.repro_runs),
                reproducer: None,
            },
        );
        Some(id.identity.signature.clone())
    }

    fn count(&mut self, task: &Task, f: impl FnOnce(&mut Tally)) {
        if let Task::Explore { .. } = task {
            self.tally.runs += 1;
            f(&mut self.tally);
        }
    }

    fn mark_done(&mut self, task: &Task) {
        if let Task::Explore { index } = task {
            self.done.insert(*index);
        }
    }

    /// The reruns the findings still want: (signature, which, spec, how
    /// many more).
    pub fn wanted(&self) -> Vec<(String, Which, RunSpec, u32)> {
        self.findings
            .values()
            .filter_map(|f| {
                f.repro
                    .want()
                    .map(|(w, s, n)| (f.signature().to_string(), w, s, n))
            })
            .collect()
    }
}

/// The lines of a report's finding (or its reason, without one).
fn excerpt(r: &Report) -> Vec<String> {
    match &r.finding {
        Some(f) => f
            .before
            .iter()
            .filter(|l| l.text.contains("page dumped because:"))
            .chain(&f.excerpt)
            .take(EXCERPT_LINES)
            .map(|l| l.text.clone())
            .collect(),
        None => vec![r.reason.clone()],
    }
}
