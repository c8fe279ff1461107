//! What a hunt writes for people: each finding's reproducer, and the
//! campaign report (report.html; campaign.json is the data).

use super::campaign::{Campaign, FindingRecord};
use super::tables::{self, CampaignReport};
use crate::fleet::build::Target;
use mmrace_proto::spec::{KernelProfile, RunSpec, Scenario};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub const FINDINGS_DIR: &str = "findings";
pub const REPRODUCER: &str = "REPRODUCER.md";
pub const REPORT_HTML: &str = "report.html";

/// The scenario's option words, when they can be given as ARGS; None when
/// only the spec file says them.
fn scenario_words(s: &Scenario) -> Option<Vec<String>> {
    match s {
        Scenario::ThpRace(a) => Some(a.to_words()),
        Scenario::Pairs(a) => Some(a.to_words()),
        Scenario::OomStall(a) if *a == Default::default() => Some(Vec::new()),
        Scenario::Smoke(a) if *a == Default::default() => Some(Vec::new()),
        _ => None,
    }
}

/// `'it'\''s'` for the shell.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,/=+:".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The settings of `./mmrace run` (and `make bisect`) that name the kernel
/// and the guest.
fn kernel_settings(t: &Target, spec: &RunSpec) -> Vec<String> {
    let mut v = vec![format!("KERNEL_SERIES={}", quote(&t.series))];
    if let Some(p) = t.profile.filter(|p| *p != KernelProfile::Default) {
        v.push(format!("KERNEL_PROFILE={}", p.name()));
    }
    if let Some(var) = &t.variant {
        v.push(format!("KERNEL_VARIANT={}", quote(var)));
    }
    let d = RunSpec::new(spec.scenario.clone(), 0, 0).guest;
    if spec.guest.cpus != d.cpus {
        v.push(format!("CPUS={}", spec.guest.cpus));
    }
    if spec.guest.mem_mib != 2048 {
        v.push(format!("MEM_MIB={}", spec.guest.mem_mib));
    }
    v
}

/// The scenario settings: SCENARIO, ARGS, SEED, DURATION.
fn scenario_settings(spec: &RunSpec) -> Option<Vec<String>> {
    let words = scenario_words(&spec.scenario)?;
    let mut v = vec![format!("SCENARIO={}", spec.scenario.name())];
    if !words.is_empty() {
        v.push(format!("ARGS={}", quote(&words.join(" "))));
    }
    v.push(format!("SEED={}", spec.seed));
    v.push(format!("DURATION={}", spec.duration_s));
    Some(v)
}

/// The reproducer's text.
pub fn reproducer_text(f: &FindingRecord, t: &Target, spec_file: &Path) -> String {
    let r = &f.repro;
    let spec = &r.best;
    let mut s = format!("# {}\n\n", f.title());
    let _ = writeln!(s, "- signature: `{}`", f.signature());
    let _ = writeln!(s, "- triage: {}", f.triage.describe());
    let _ = writeln!(s, "- kernel: {} (`{}`)", t.label(), t.kernel.display());
    let config = t
        .kernel
        .ancestors()
        .nth(4)
        .map(|k| k.join(".config"))
        .filter(|c| c.is_file());
    match config {
        Some(c) => {
            let _ = writeln!(s, "- kernel config: `{}`", c.display());
        }
        None => {
            let _ = writeln!(
                s,
                "- kernel config: kernel/mmrace.config{} (scripts/build-kernel.sh)",
                t.profile
                    .filter(|p| *p != KernelProfile::Default)
                    .map(|p| format!(" + kernel/profiles/{}.config", p.name()))
                    .unwrap_or_default()
            );
        }
    }
    let _ = writeln!(s, "- first found by: `{}`", f.first_run.display());
    let _ = writeln!(s, "- exploring runs that found it: {}", f.hits);
    match &r.estimate {
        Some(p) => {
            let _ = writeln!(
                s,
                "- reproduction of the first run (same spec, same seed): {} (95 % Wilson interval)",
                p.describe()
            );
        }
        None => {
            let _ = writeln!(s, "- reproduction: not measured");
        }
    }
    if r.estimate.is_some() {
        let best = r
            .best_estimate
            .map(|p| p.describe())
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "- minimal run: parts dropped {:?}, needed {:?}; it reproduces {best}",
            r.removed, r.needed
        );
    }
    if let Some(note) = &r.note {
        let _ = writeln!(s, "- note: {note}");
    }
    s.push_str("\n## Run it\n\n```\n");
    let kernel = kernel_settings(t, spec);
    match scenario_settings(spec) {
        Some(sc) => {
            let _ = writeln!(s, "./mmrace run {} {}", kernel.join(" "), sc.join(" "));
        }
        None => {
            let _ = writeln!(
                s,
                "mmrace-host run --kernel {} --initrd {} --spec {}",
                t.kernel.display(),
                t.initrd.display(),
                spec_file.display()
            );
        }
    }
    s.push_str("```\n\nThe whole run, for `mmrace-host run --spec`: ");
    let _ = writeln!(s, "`{}`.", spec_file.display());
    s.push_str("\n## Bisect it\n\n```\n");
    let sc = scenario_settings(spec)
        .map(|v| {
            v.into_iter()
                .filter(|w| !w.starts_with("SEED="))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("SCENARIO={}", spec.scenario.name()));
    let _ = writeln!(
        s,
        "make bisect KERNEL_SRC=<linux git tree> GOOD=<rev> BAD=<rev> {sc} EXPECT={}",
        quote(&format!("^{}$", regex::escape(f.title())))
    );
    s.push_str("```\n\n## Console\n\n```\n");
    for l in &f.excerpt {
        let _ = writeln!(s, "{}", crate::vm::monitor::printable(l));
    }
    s.push_str("```\n");
    s
}

/// Writes `findings/<signature>/REPRODUCER.md` and the minimal run's
/// `spec.json`; returns the reproducer's path.
pub fn write_reproducer(
    campaign_dir: &Path,
    f: &FindingRecord,
    t: &Target,
) -> std::io::Result<PathBuf> {
    let dir = campaign_dir.join(FINDINGS_DIR).join(f.signature());
    std::fs::create_dir_all(&dir)?;
    let spec_file = dir.join(crate::vm::run::SPEC);
    let json = serde_json::to_string_pretty(&f.repro.best).expect("serializes") + "\n";
    std::fs::write(&spec_file, json)?;
    let path = dir.join(REPRODUCER);
    std::fs::write(&path, reproducer_text(f, t, &spec_file))?;
    Ok(path)
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The campaign report: tallies, a row per finding, then `tables`' runs per
/// configuration, coverage curve and first-seen table.
pub fn report_html(c: &Campaign, r: &CampaignReport) -> String {
    let t = &c.tally;
    let mut s = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mmrace hunt</title>\n\
         <style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}\
         table{border-collapse:collapse}pre{font-size:11px;margin:0}</style></head><body>\n",
    );
    let _ = writeln!(
        s,
        "<h1>mmrace hunt</h1>\n<p>seed {}, {:.1} h hunted; {} exploring runs: {} clean, {} found something, {} harness errors; {} reruns</p>",
        c.settings.seed,
        c.elapsed_s / 3600.0,
        t.runs,
        t.clean,
        t.found,
        t.harness_errors,
        t.reruns
    );
    let targets: Vec<String> = c.settings.targets.iter().map(Target::label).collect();
    let _ = writeln!(
        s,
        "<p>kernels: {}; mix: {}; {} s per run</p>",
        html(&targets.join(", ")),
        html(&c.settings.mix.join("; ")),
        c.settings.duration_s
    );
    s.push_str("<table><tr><th>title</th><th>signature</th><th>triage</th><th>kernel</th><th>hits</th><th>reproduction</th><th>reproducer</th></tr>\n");
    let mut findings: Vec<&FindingRecord> = c.findings.values().collect();
    findings.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.title().cmp(b.title())));
    for f in findings {
        let repro = f
            .repro
            .estimate
            .map(|p| p.describe())
            .unwrap_or_else(|| "-".into());
        let link = match &f.reproducer {
            Some(_) => format!(
                "<a href=\"{FINDINGS_DIR}/{}/{REPRODUCER}\">{REPRODUCER}</a>",
                f.signature()
            ),
            None => "pending".into(),
        };
        let label = c
            .settings
            .targets
            .get(f.target)
            .map(Target::label)
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{link}</td></tr>",
            html(f.title()),
            f.signature(),
            html(&f.triage.describe()),
            html(&label),
            f.hits,
            html(&repro)
        );
    }
    s.push_str("</table>\n");
    s.push_str(&tables::configs_html(r));
    s.push_str(&tables::coverage_svg(&r.coverage));
    s.push_str(&tables::first_seen_html(r));
    if !c.harness.is_empty() {
        s.push_str("<h2>Harness errors</h2><ul>\n");
        for (title, n) in &c.harness {
            let _ = writeln!(s, "<li>{n} &times; {}</li>", html(title));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</body></html>\n");
    s
}

/// The text summary printed at the end of a session.
pub fn summary(c: &Campaign, dir: &Path) -> String {
    let t = &c.tally;
    let mut s = format!(
        "mmrace: hunt {}: {} exploring runs ({} clean, {} found, {} harness errors), {} reruns, {:.2} h in all\n",
        dir.display(),
        t.runs,
        t.clean,
        t.found,
        t.harness_errors,
        t.reruns,
        c.elapsed_s / 3600.0
    );
    for f in c.findings.values() {
        let _ = writeln!(
            s,
            "  {} {:<60} hits {:>3}  repro {:<24} {}",
            f.signature(),
            f.title(),
            f.hits,
            f.repro
                .estimate
                .map(|p| format!("{}/{}", p.k, p.n))
                .unwrap_or_else(|| "-".into()),
            f.triage.describe()
        );
    }
    let _ = writeln!(s, "mmrace: report: {}", dir.join(REPORT_HTML).display());
    s
}
