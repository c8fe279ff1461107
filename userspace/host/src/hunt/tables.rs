//! The campaign report's tables beyond the findings: runs per
//! configuration, the meets coverage over time (an SVG curve), when each
//! finding was first seen and, on a variant's kernel, whether its title is
//! the one the variant's header expects. Also as JSON
//! (`campaign-report.json`), for scripts and for docs.

use super::campaign::{Campaign, FindingRecord};
use super::history::{ConfigTally, CoveragePoint, History};
use crate::fleet::build::Target;
use crate::judge::finding::Finding;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const REPORT_JSON: &str = "campaign-report.json";

/// A finding's row beyond what campaign.json has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingRow {
    /// Its class, title, frame and signature.
    #[serde(flatten)]
    pub finding: Finding,
    pub target: String,
    pub hits: u32,
    /// Hours into the campaign of the run that found it first.
    pub first_seen_h: Option<f64>,
    /// On a variant's kernel: whether the title matches its `Expect:`
    /// (None on the clean kernel, or without a readable header).
    pub expected: Option<bool>,
    pub reproduction: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigRow {
    pub target: String,
    pub scenario: String,
    #[serde(flatten)]
    pub tally: ConfigTally,
}

/// What the report shows, as data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignReport {
    pub hours: f64,
    pub configs: Vec<ConfigRow>,
    pub coverage: Vec<CoveragePoint>,
    pub findings: Vec<FindingRow>,
}

/// The variant's patch: `$MMRACE_ROOT/kernel/variants/NAME.patch` (every
/// script exports MMRACE_ROOT), else relative to the working directory.
fn variant_patch(name: &str) -> PathBuf {
    let root = std::env::var_os("MMRACE_ROOT").map_or_else(|| PathBuf::from("."), PathBuf::from);
    root.join("kernel/variants").join(format!("{name}.patch"))
}

fn expected(f: &FindingRecord, t: Option<&Target>) -> Option<bool> {
    let v = t?.variant.as_deref()?;
    let e = crate::variants::Header::of_patch(&variant_patch(v))
        .ok()?
        .expect?;
    Some(e.matches(f.title()))
}

fn run_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl CampaignReport {
    pub fn new(c: &Campaign, h: &History) -> CampaignReport {
        let targets = &c.settings.targets;
        let configs = h
            .per_config(targets)
            .into_iter()
            .map(|((target, scenario), tally)| ConfigRow {
                target,
                scenario,
                tally,
            })
            .collect();
        let mut findings: Vec<FindingRow> = c
            .findings
            .values()
            .map(|f| {
                let t = targets.get(f.target);
                FindingRow {
                    finding: f.finding.clone(),
                    target: t.map(Target::label).unwrap_or_default(),
                    hits: f.hits,
                    first_seen_h: h.hours_into(&run_name(&f.first_run)),
                    expected: expected(f, t),
                    reproduction: f.repro.estimate.map(|p| p.describe()),
                }
            })
            .collect();
        findings.sort_by(|a, b| {
            a.first_seen_h
                .partial_cmp(&b.first_seen_h)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        CampaignReport {
            hours: c.elapsed_s / 3600.0,
            configs,
            coverage: h.coverage(),
            findings,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("serializes") + "\n"
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The runs-per-configuration table.
pub fn configs_html(r: &CampaignReport) -> String {
    let mut s = String::from(
        "<h2>Runs per configuration</h2>\n<table><tr><th>kernel</th><th>scenario</th>\
         <th>runs</th><th>clean</th><th>found</th><th>harness errors</th><th>guest hours</th></tr>\n",
    );
    for c in &r.configs {
        let t = &c.tally;
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            esc(&c.target),
            esc(&c.scenario),
            t.runs,
            t.clean,
            t.found,
            t.harness_errors,
            t.guest_s / 3600.0
        );
    }
    s.push_str("</table>\n");
    s
}

/// When each finding was first seen, and whether it is its variant's.
pub fn first_seen_html(r: &CampaignReport) -> String {
    let mut s = String::from(
        "<h2>First seen</h2>\n<table><tr><th>hours in</th><th>title</th><th>kernel</th>\
         <th>the variant's expected title</th></tr>\n",
    );
    for f in &r.findings {
        let when = f
            .first_seen_h
            .map(|h| format!("{h:.2}"))
            .unwrap_or_else(|| "-".into());
        let exp = match f.expected {
            Some(true) => "yes",
            Some(false) => "no (another finding)",
            None => "-",
        };
        let _ = writeln!(
            s,
            "<tr><td>{when}</td><td>{}</td><td>{}</td><td>{exp}</td></tr>",
            esc(&f.finding.identity.title),
            esc(&f.target)
        );
    }
    s.push_str("</table>\n");
    s
}

const W: f64 = 640.0;
const H: f64 = 240.0;
const PAD: f64 = 40.0;

fn polyline(points: &[(f64, f64)], color: &str) -> String {
    let p: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    format!(
        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
        p.join(" ")
    )
}

/// The meets coverage curve: distinct module-operation pairs met (at
/// least once, at least ten times) over the campaign's hours.
pub fn coverage_svg(points: &[CoveragePoint]) -> String {
    let Some(last) = points.last() else {
        return "<h2>Meets coverage over time</h2>\n<p>No run counted meets.</p>\n".into();
    };
    let xmax = last.hours.max(1e-6);
    let ymax = points.iter().map(|p| p.met).max().unwrap_or(1).max(1) as f64;
    let xy = |h: f64, n: usize| {
        (
            PAD + h / xmax * (W - 2.0 * PAD),
            H - PAD - n as f64 / ymax * (H - 2.0 * PAD),
        )
    };
    let met: Vec<_> = points.iter().map(|p| xy(p.hours, p.met)).collect();
    let met10: Vec<_> = points.iter().map(|p| xy(p.hours, p.met_10)).collect();
    format!(
        "<h2>Meets coverage over time</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\">\
         <rect x=\"{PAD}\" y=\"{PAD}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\
         {}{}\
         <text x=\"{PAD}\" y=\"{}\" font-size=\"11\">0 h</text>\
         <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{xmax:.2} h</text>\
         <text x=\"2\" y=\"{}\" font-size=\"11\">{ymax}</text>\
         <text x=\"{}\" y=\"20\" font-size=\"12\" fill=\"#1f77b4\">module-op pairs met (end: {})</text>\
         <text x=\"{}\" y=\"34\" font-size=\"12\" fill=\"#d62728\">met &gt;= 10 times (end: {})</text>\
         </svg>\n",
        W - 2.0 * PAD,
        H - 2.0 * PAD,
        polyline(&met, "#1f77b4"),
        polyline(&met10, "#d62728"),
        H - PAD + 14.0,
        W - PAD,
        H - PAD + 14.0,
        PAD + 4.0,
        PAD,
        last.met,
        PAD,
        last.met_10
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_both_curves_and_their_ends() {
        let pts = [
            CoveragePoint {
                hours: 0.1,
                met: 10,
                met_10: 2,
            },
            CoveragePoint {
                hours: 0.5,
                met: 40,
                met_10: 12,
            },
        ];
        let s = coverage_svg(&pts);
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("(end: 40)") && s.contains("(end: 12)"), "{s}");
        let empty = coverage_svg(&[]);
        assert!(
            empty.contains("No run counted meets") && empty.contains("<h2>"),
            "{empty}"
        );
    }
}
