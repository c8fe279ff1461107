//! `mmrace-host matrix DIR`: the detection matrix of `make matrix`
//! (scripts/matrix.sh): every kernel variant against every configuration
//! (the seed's shell procedure, thp-race, thp-race amplified, oom-stall where
//! it applies), each cell a batch of seeded runs. It reads the cells'
//! merged.json files (`DIR/<variant>/<config>/`, or
//! `DIR/<series>/<variant>/<config>/` for a matrix over several kernel
//! series, a row per variant and series; `not-built` marking a variant that
//! did not build, e.g. a patch that does not apply to a series), prints the table and the goal against the
//! matrix's own numbers, and writes matrix.json and matrix.svg (a heat map
//! of the catch probability).
//!
//! The clean kernel's row is the false-positive rate: there, a catch is a
//! false alarm.

use crate::args::MatrixArgs;
use crate::fleet::merge::{Merged, OtherFinding, MERGED_JSON};
use crate::fleet::series::NOT_BUILT;
use crate::fleet::stats::{Proportion, Spread};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// The row of the unpatched kernel.
pub const CLEAN: &str = "clean";
/// Configurations in display order; others follow alphabetically.
pub const CONFIG_ORDER: &[&str] = &[
    "shell-baseline",
    "thp-race",
    "thp-race-amplified",
    "pairs",
    "oom-stall",
    "smoke",
];
/// The seed's own procedure: shown beside mmrace, not part of its goal.
pub const BASELINE: &str = "shell-baseline";
/// A variant's own best configuration (its patch's `Best:` line) is
/// named this and the variant.
pub const BEST_PREFIX: &str = "best-";
/// Not a race finder: the variant's race-only check (must stay clean).
pub const SMOKE: &str = "smoke";

/// The goal of issue 9: every variant caught in at least 9 of 10 seeds
/// within 60 s, median time to catch 10 s or less; no false positive.
pub const GOAL_FRACTION: f64 = 0.9;
pub const GOAL_WITHIN_S: f64 = 60.0;
pub const GOAL_MEDIAN_S: f64 = 10.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub variant: String,
    /// The kernel series of the cell's row; empty for a matrix of one.
    #[serde(default)]
    pub series: String,
    pub config: String,
    /// None when the variant did not build.
    pub built: bool,
    pub runs: usize,
    pub caught: u32,
    pub missed: u32,
    pub harness_errors: u32,
    pub catch_probability: Proportion,
    /// Runs that caught it within [`GOAL_WITHIN_S`].
    pub caught_within_goal: u32,
    pub time_to_catch: Spread,
    pub time_to_first_race: Spread,
    /// The title pattern a catch had to match (the variant's `Expect:`);
    /// None: any finding counted (the clean row, where any is a false
    /// positive).
    #[serde(default)]
    pub expect: Option<String>,
    /// Findings of the cell's runs that did not match: not catches.
    #[serde(default)]
    pub other_findings: Vec<OtherFinding>,
}

impl Cell {
    fn new(series: &str, variant: &str, config: &str, m: Option<&Merged>) -> Cell {
        let empty = Proportion::new(0, 0);
        match m {
            None => Cell {
                variant: variant.into(),
                series: series.into(),
                config: config.into(),
                built: false,
                runs: 0,
                caught: 0,
                missed: 0,
                harness_errors: 0,
                catch_probability: empty,
                caught_within_goal: 0,
                time_to_catch: Spread::of([]),
                time_to_first_race: Spread::of([]),
                expect: None,
                other_findings: Vec::new(),
            },
            Some(m) => Cell {
                variant: variant.into(),
                series: series.into(),
                config: config.into(),
                built: true,
                runs: m.runs.len(),
                caught: m.caught,
                missed: m.missed,
                harness_errors: m.harness_errors,
                catch_probability: m.catch_probability,
                caught_within_goal: m
                    .runs
                    .iter()
                    .filter(|r| {
                        r.caught() && r.catch.to_catch_s.is_some_and(|t| t <= GOAL_WITHIN_S)
                    })
                    .count() as u32,
                time_to_catch: m.time_to_catch,
                time_to_first_race: m.time_to_first_race,
                expect: m.expect.clone(),
                other_findings: m.other_findings.clone(),
            },
        }
    }

    /// `3/5 4.1s<9.0 [.23-.88]`
    fn text(&self) -> String {
        if !self.built {
            return "not built".into();
        }
        let p = &self.catch_probability;
        let t = match (self.time_to_catch.median, self.time_to_catch.max) {
            (Some(m), Some(x)) => format!(" {m:.1}/{x:.1}s"),
            _ => String::new(),
        };
        let h = if self.harness_errors > 0 {
            format!(" +{}err", self.harness_errors)
        } else {
            String::new()
        };
        let others: u32 = self.other_findings.iter().map(|o| o.runs).sum();
        let o = if others > 0 {
            format!(" +{others}other")
        } else {
            String::new()
        };
        format!("{}/{}{t} [{:.2}-{:.2}]{h}{o}", p.k, p.n, p.lo, p.hi)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantGoal {
    pub variant: String,
    /// Its row's kernel series; empty for a matrix of one.
    #[serde(default)]
    pub series: String,
    /// The mmrace configuration that did best (most catches within the
    /// goal's time, then the lowest median).
    pub best_config: Option<String>,
    pub within_goal: Proportion,
    pub median_s: Option<f64>,
    pub met: bool,
    /// The shell baseline's cell, side by side.
    pub baseline: Option<Proportion>,
    pub baseline_median_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub variants: Vec<VariantGoal>,
    /// Catches on the clean kernel, over every mmrace configuration.
    pub false_positives: Proportion,
    pub met: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub variants: Vec<String>,
    /// The kernel series, in the order asked for; empty for a matrix of
    /// one series (its cells' `series` are empty too).
    #[serde(default)]
    pub series: Vec<String>,
    pub configs: Vec<String>,
    pub cells: Vec<Cell>,
    pub goal: Goal,
}

/// What the table and the heat map show: their columns, their rows
/// (variant, series) and each row's cells (None: not run).
struct Grid<'a> {
    columns: Vec<String>,
    rows: Vec<(String, String)>,
    cells: Vec<Vec<Option<&'a Cell>>>,
}

fn is_mmrace(config: &str) -> bool {
    config != BASELINE && config != SMOKE
}

/// One cell as read: its series (empty for a matrix of one), variant,
/// configuration, and merged result (None if its kernel was not built).
pub type CellInput = (String, String, String, Option<Merged>);

impl Matrix {
    /// `series`: the kernel series in the order to show (empty for a
    /// matrix of one series).
    pub fn assemble(series: &[String], cells: Vec<CellInput>) -> Matrix {
        let mut variants: Vec<String> = cells.iter().map(|c| c.1.clone()).collect();
        variants.sort();
        variants.dedup();
        // The clean kernel first: it is the reference row.
        if let Some(i) = variants.iter().position(|v| v == CLEAN) {
            let c = variants.remove(i);
            variants.insert(0, c);
        }
        let mut configs: Vec<String> = cells.iter().map(|c| c.2.clone()).collect();
        configs.sort_by_key(|c| {
            (
                CONFIG_ORDER
                    .iter()
                    .position(|o| o == c)
                    .unwrap_or(CONFIG_ORDER.len()),
                c.clone(),
            )
        });
        configs.dedup();
        let cells: Vec<Cell> = cells
            .iter()
            .map(|(s, v, c, m)| Cell::new(s, v, c, m.as_ref()))
            .collect();
        let mut m = Matrix {
            variants,
            series: series.to_vec(),
            configs,
            cells,
            goal: Goal {
                variants: Vec::new(),
                false_positives: Proportion::new(0, 0),
                met: false,
            },
        };
        m.goal = goal(&m.rows(), &m.cells);
        m
    }

    /// The table's rows, (variant, series): each variant's series side by
    /// side, the clean kernel's first.
    pub fn rows(&self) -> Vec<(String, String)> {
        let one = [String::new()];
        let series: &[String] = if self.series.is_empty() {
            &one
        } else {
            &self.series
        };
        self.variants
            .iter()
            .flat_map(|v| series.iter().map(move |s| (v.clone(), s.clone())))
            .filter(|(v, s)| self.cells.iter().any(|c| c.variant == *v && c.series == *s))
            .collect()
    }

    pub fn cell(&self, variant: &str, series: &str, config: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.variant == variant && c.series == series && c.config == config)
    }

    /// A row's label: the variant, and its series in a matrix of several.
    fn row_label(&self, variant: &str, series: &str) -> String {
        if self.series.is_empty() {
            variant.to_string()
        } else {
            format!("{variant} ({series})")
        }
    }

    /// Whether every configuration is a variant's own best one
    /// (`best-VARIANT`, MATRIX_CONFIGS=best) of a row: then each has two
    /// cells, its variant's and the clean kernel's.
    fn is_best_matrix(&self) -> bool {
        !self.configs.is_empty()
            && self.configs.iter().all(|c| {
                c.strip_prefix(BEST_PREFIX)
                    .is_some_and(|v| self.variants.iter().any(|x| x == v))
            })
    }

    /// The table's columns and its rows' cell texts: a column per
    /// configuration, or for a best matrix, each variant's own best
    /// configuration beside the clean kernel in that configuration.
    fn grid(&self) -> Grid<'_> {
        let rows = self.rows();
        if self.is_best_matrix() {
            let rows: Vec<_> = rows.into_iter().filter(|(v, _)| v != CLEAN).collect();
            let cells = rows
                .iter()
                .map(|(v, s)| {
                    let c = format!("{BEST_PREFIX}{v}");
                    vec![self.cell(v, s, &c), self.cell(CLEAN, s, &c)]
                })
                .collect();
            let columns = vec![
                "its best configuration".into(),
                "clean kernel, same configuration".into(),
            ];
            return Grid {
                columns,
                rows,
                cells,
            };
        }
        let cells = rows
            .iter()
            .map(|(v, s)| self.configs.iter().map(|c| self.cell(v, s, c)).collect())
            .collect();
        Grid {
            columns: self.configs.clone(),
            rows,
            cells,
        }
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let Grid {
            columns: configs,
            rows,
            cells,
        } = self.grid();
        let texts: Vec<Vec<String>> = cells
            .iter()
            .map(|row| {
                row.iter()
                    .map(|c| c.map(Cell::text).unwrap_or_else(|| "-".into()))
                    .collect()
            })
            .collect();
        let vw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(7);
        // The series column, in a matrix of several.
        let sw = if self.series.is_empty() {
            None
        } else {
            Some(rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6))
        };
        let widths: Vec<usize> = (0..configs.len())
            .map(|j| {
                texts
                    .iter()
                    .map(|row| row[j].len())
                    .chain([configs[j].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut line = format!("{:<vw$}", "variant");
        if let Some(sw) = sw {
            let _ = write!(line, "  {:<sw$}", "series");
        }
        for (c, w) in configs.iter().zip(&widths) {
            let _ = write!(line, "  {c:<w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        for ((v, s), row) in rows.iter().zip(&texts) {
            let mut line = format!("{v:<vw$}");
            if let Some(sw) = sw {
                let _ = write!(line, "  {s:<sw$}");
            }
            for (t, w) in row.iter().zip(&widths) {
                let _ = write!(line, "  {t:<w$}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out.push_str(
            "cells: caught/runs, median/max time to catch (s), 95 % Wilson interval of the catch probability; a catch is a finding whose title matches the variant's Expect: (+N other: findings that did not)\n",
        );
        out.push_str(&self.other_findings_text());
        out
    }

    /// Each cell's other findings, by title: what the runs found instead.
    pub fn other_findings_text(&self) -> String {
        let mut out = String::new();
        for c in self.cells.iter().filter(|c| !c.other_findings.is_empty()) {
            let _ = writeln!(
                out,
                "other findings of {} x {} (expected /{}/):",
                self.row_label(&c.variant, &c.series),
                c.config,
                c.expect.as_deref().unwrap_or("")
            );
            for o in &c.other_findings {
                let _ = writeln!(out, "  {} run(s): {}", o.runs, o.title());
            }
        }
        out
    }

    pub fn goal_text(&self) -> String {
        let mut out = String::new();
        let g = &self.goal;
        let _ = writeln!(
            out,
            "goal: every variant caught in >= {:.0} % of seeds within {GOAL_WITHIN_S:.0} s, median <= {GOAL_MEDIAN_S:.0} s; 0 false positives on {CLEAN}",
            GOAL_FRACTION * 100.0
        );
        let secs = |s: Option<f64>| s.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "-".into());
        for v in &g.variants {
            let base = match &v.baseline {
                Some(b) => format!(
                    "shell baseline {}/{} (median {})",
                    b.k,
                    b.n,
                    secs(v.baseline_median_s)
                ),
                None => "shell baseline not run".into(),
            };
            let _ = writeln!(
                out,
                "  {} {:<34} best {:<20} within {GOAL_WITHIN_S:.0} s {}/{}, median {:<8} | {base}",
                if v.met { "MET " } else { "MISS" },
                self.row_label(&v.variant, &v.series),
                v.best_config.as_deref().unwrap_or("-"),
                v.within_goal.k,
                v.within_goal.n,
                secs(v.median_s),
            );
        }
        let fp = &g.false_positives;
        let _ = writeln!(
            out,
            "  {} false positives on {CLEAN}: {}/{} runs",
            if fp.k == 0 && fp.n > 0 {
                "MET "
            } else {
                "MISS"
            },
            fp.k,
            fp.n
        );
        let met = g.variants.iter().filter(|v| v.met).count();
        let _ = writeln!(
            out,
            "goal {}: {met} of {} variants met it; {} false positives",
            if g.met { "MET" } else { "NOT MET" },
            g.variants.len(),
            fp.k
        );
        out
    }

    /// The heat map: a row per variant, a column per configuration, each
    /// cell shaded by its catch probability and labelled with caught/runs
    /// and the median time to catch.
    pub fn svg(&self) -> String {
        let Grid {
            columns,
            rows,
            cells,
        } = self.grid();
        let (left, top, cw, ch) = (260.0, 70.0, 170.0, 34.0);
        let cw = if self.is_best_matrix() { 260.0 } else { cw };
        let w = left + cw * columns.len() as f64 + 20.0;
        let h = top + ch * rows.len() as f64 + 60.0;
        let mut s = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="10" y="22" font-size="14">mmrace detection matrix: catch probability per variant and configuration</text>
<text x="10" y="40" fill="#555">cell: caught/runs, median time to catch; colour: share of runs that caught it (clean row: false positives)</text>
"##
        );
        for (j, c) in columns.iter().enumerate() {
            let x = left + cw * j as f64 + cw / 2.0;
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
                top - 8.0,
                xml(c)
            );
        }
        for (i, ((v, series), row)) in rows.iter().zip(&cells).enumerate() {
            let y = top + ch * i as f64;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                left - 8.0,
                y + ch / 2.0 + 4.0,
                xml(&self.row_label(v, series))
            );
            for (j, cell) in row.iter().enumerate() {
                let x = left + cw * j as f64;
                let (fill, label) = match cell {
                    Some(cell) if cell.built && cell.catch_probability.n > 0 => {
                        let p = cell.catch_probability.p.unwrap_or(0.0);
                        let t = cell
                            .time_to_catch
                            .median
                            .map(|m| format!(", {m:.1} s"))
                            .unwrap_or_default();
                        (
                            heat(p),
                            format!("{}/{}{t}", cell.caught, cell.catch_probability.n),
                        )
                    }
                    Some(cell) if !cell.built => ("#dddddd".to_string(), "not built".to_string()),
                    _ => ("#eeeeee".to_string(), "-".to_string()),
                };
                let _ = writeln!(
                    s,
                    r#"<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="{fill}" stroke="white"/><text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                    x + cw / 2.0,
                    y + ch / 2.0 + 4.0,
                    xml(&label)
                );
            }
        }
        let ly = top + ch * rows.len() as f64 + 25.0;
        for k in 0..=10 {
            let p = f64::from(k) / 10.0;
            let x = left + 20.0 * f64::from(k);
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{ly}" width="20" height="12" fill="{}"/>"#,
                heat(p)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">caught 0</text><text x="{}" y="{}">1</text>"#,
            left - 4.0,
            ly + 10.0,
            left + 224.0,
            ly + 10.0
        );
        s.push_str("</svg>\n");
        s
    }
}

/// White (never caught) to red (always).
fn heat(p: f64) -> String {
    let p = p.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64| (a + (b - a) * p).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        lerp(247.0, 215.0),
        lerp(247.0, 48.0),
        lerp(247.0, 31.0)
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The goal for each row (variant, series) but the clean kernel's.
fn goal(rows: &[(String, String)], cells: &[Cell]) -> Goal {
    let mut per = Vec::new();
    for (v, series) in rows.iter().filter(|(v, _)| v != CLEAN) {
        let row = |c: &&Cell| c.variant == *v && c.series == *series;
        let best = cells
            .iter()
            .filter(row)
            .filter(|c| c.built && is_mmrace(&c.config) && c.runs > 0)
            .max_by(|a, b| {
                let fa = f64::from(a.caught_within_goal) / a.catch_probability.n.max(1) as f64;
                let fb = f64::from(b.caught_within_goal) / b.catch_probability.n.max(1) as f64;
                fa.total_cmp(&fb).then_with(|| {
                    // Lower median is better.
                    let ma = a.time_to_catch.median.unwrap_or(f64::INFINITY);
                    let mb = b.time_to_catch.median.unwrap_or(f64::INFINITY);
                    mb.total_cmp(&ma)
                })
            });
        let base = cells
            .iter()
            .filter(row)
            .find(|c| c.config == BASELINE && c.built);
        let (within, median) = match best {
            Some(b) => (
                Proportion::new(b.caught_within_goal, b.catch_probability.n),
                b.time_to_catch.median,
            ),
            None => (Proportion::new(0, 0), None),
        };
        let met = within.n > 0
            && within.p.unwrap_or(0.0) >= GOAL_FRACTION
            && median.is_some_and(|m| m <= GOAL_MEDIAN_S);
        per.push(VariantGoal {
            variant: v.clone(),
            series: series.clone(),
            best_config: best.map(|b| b.config.clone()),
            within_goal: within,
            median_s: median,
            met,
            baseline: base.map(|b| b.catch_probability),
            baseline_median_s: base.and_then(|b| b.time_to_catch.median),
        });
    }
    let (fk, fnn) = cells
        .iter()
        .filter(|c| c.variant == CLEAN && is_mmrace(&c.config))
        .fold((0, 0), |(k, n), c| {
            (k + c.caught, n + c.catch_probability.n)
        });
    let false_positives = Proportion::new(fk, fnn);
    let met = !per.is_empty() && per.iter().all(|v| v.met) && fk == 0 && fnn > 0;
    Goal {
        variants: per,
        false_positives,
        met,
    }
}

/// Reads `DIR/<variant>/<config>/merged.json`, or with `series`
/// `DIR/<series>/<variant>/<config>/merged.json` for each.
pub fn load(dir: &Path, series: &[String]) -> anyhow::Result<Matrix> {
    let mut cells = Vec::new();
    if series.is_empty() {
        load_variants(dir, "", &mut cells)?;
    } else {
        for s in series {
            load_variants(&dir.join(s), s, &mut cells)?;
        }
    }
    anyhow::ensure!(
        !cells.is_empty(),
        "{}: no cells ({}<variant>/<config>/{MERGED_JSON})",
        dir.display(),
        if series.is_empty() { "" } else { "<series>/" }
    );
    Ok(Matrix::assemble(series, cells))
}

/// The cells under `dir/<variant>/<config>/`, of kernel series `series`.
fn load_variants(dir: &Path, series: &str, cells: &mut Vec<CellInput>) -> anyhow::Result<()> {
    let sorted = |d: &Path| -> anyhow::Result<Vec<std::path::PathBuf>> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .map_err(|e| anyhow::anyhow!("{}: {e}", d.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        v.sort();
        Ok(v)
    };
    for vdir in sorted(dir)? {
        let variant = vdir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let not_built = vdir.join(NOT_BUILT).exists();
        for cdir in sorted(&vdir)? {
            let config = cdir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let merged = cdir.join(MERGED_JSON);
            let m = if not_built || !merged.exists() {
                None
            } else {
                let text = std::fs::read_to_string(&merged)?;
                Some(
                    serde_json::from_str::<Merged>(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", merged.display()))?,
                )
            };
            if m.is_some() || not_built {
                cells.push((series.to_string(), variant.clone(), config, m));
            }
        }
    }
    Ok(())
}

/// The `matrix` subcommand.
pub fn matrix_cmd(a: &MatrixArgs) -> i32 {
    match load(&a.dir, &a.series) {
        Ok(m) => {
            let json = serde_json::to_string_pretty(&m).expect("serializes") + "\n";
            let written = std::fs::write(a.dir.join("matrix.json"), json)
                .and_then(|()| std::fs::write(a.dir.join("matrix.svg"), m.svg()))
                .and_then(|()| {
                    std::fs::write(a.dir.join("matrix.txt"), m.table() + &m.goal_text())
                });
            if let Err(e) = written {
                eprintln!("mmrace: matrix: cannot write into {}: {e}", a.dir.display());
                return 2;
            }
            crate::out::summary::emit(&(m.table() + &m.goal_text()));
            eprintln!(
                "mmrace: matrix.json, matrix.txt and matrix.svg in {}",
                a.dir.display()
            );
            0
        }
        Err(e) => {
            eprintln!("mmrace: matrix: {e:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::merge::tests::merged;

    fn sample() -> Matrix {
        let c =
            |v: &str, c: &str, m: Option<Merged>| (String::new(), v.to_string(), c.to_string(), m);
        Matrix::assemble(
            &[],
            vec![
                c("pmd-trust", "thp-race", Some(merged(10, 0, 0))),
                c("pmd-trust", "shell-baseline", Some(merged(1, 9, 0))),
                c("pmd-trust", "thp-race-amplified", Some(merged(8, 2, 0))),
                c("slow-one", "thp-race", Some(merged(3, 7, 0))),
                c("broken", "thp-race", None),
                c("clean", "thp-race", Some(merged(0, 10, 0))),
                c("clean", "thp-race-amplified", Some(merged(0, 10, 1))),
            ],
        )
    }

    #[test]
    fn other_findings_are_listed_never_caught() {
        use crate::fleet::merge::tests::merged;
        use crate::judge::expect::Expect;
        let mut m = merged(3, 1, 0);
        m.runs[1].found.0.as_mut().expect("a finding").identity =
            crate::judge::title::Identity::plain("WARNING in elsewhere");
        m.recount(Some(&Expect::new("^kernel BUG").unwrap()));
        let mx = Matrix::assemble(
            &[],
            vec![(String::new(), "v".into(), "thp-race".into(), Some(m))],
        );
        let c = mx.cell("v", "", "thp-race").unwrap();
        assert_eq!((c.caught, c.catch_probability.n), (2, 4));
        assert_eq!(c.caught_within_goal, 2);
        let t = mx.table();
        assert!(t.contains("2/4 ") && t.contains("+1other"), "{t}");
        assert!(
            t.contains("other findings of v x thp-race (expected /^kernel BUG/):\n  1 run(s): WARNING in elsewhere\n"),
            "{t}"
        );
    }

    #[test]
    fn orders_rows_and_columns() {
        let m = sample();
        assert_eq!(m.variants, ["clean", "broken", "pmd-trust", "slow-one"]);
        assert_eq!(
            m.configs,
            ["shell-baseline", "thp-race", "thp-race-amplified"]
        );
    }

    #[test]
    fn goal_against_own_numbers() {
        let m = sample();
        // merged(): run i catches at 1 + i s, so 10 of 10 within 60 s,
        // median 5.5 s.
        let pmd = &m.goal.variants[1];
        assert_eq!(pmd.variant, "pmd-trust");
        assert_eq!(pmd.best_config.as_deref(), Some("thp-race"));
        assert_eq!((pmd.within_goal.k, pmd.within_goal.n), (10, 10));
        assert_eq!(pmd.median_s, Some(5.5));
        assert!(pmd.met);
        assert_eq!(pmd.baseline.map(|b| b.k), Some(1));
        let slow = &m.goal.variants[2];
        assert!(!slow.met);
        assert!(
            !m.goal.variants[0].met,
            "a variant that did not build misses"
        );
        assert_eq!(
            (m.goal.false_positives.k, m.goal.false_positives.n),
            (0, 20)
        );
        assert!(!m.goal.met);
        let text = m.goal_text();
        assert!(text.contains("MET  pmd-trust"), "{text}");
        assert!(text.contains("within 60 s 10/10, median 5.5 s"), "{text}");
        assert!(
            text.contains("shell baseline 1/10 (median 1.0 s)"),
            "{text}"
        );
        assert!(
            text.contains("goal NOT MET: 1 of 3 variants met it; 0 false positives"),
            "{text}"
        );
    }

    #[test]
    fn table_and_svg() {
        let m = sample();
        let t = m.table();
        assert!(
            t.lines()
                .next()
                .unwrap()
                .starts_with("variant    shell-baseline"),
            "{t}"
        );
        assert!(t.contains("10/10 5.5/10.0s [0.72-1.00]"), "{t}");
        assert!(t.contains("not built"), "{t}");
        assert!(t.contains("0/10 [0.00-0.28] +1err"), "{t}");
        let s = m.svg();
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<rect x=").count(), 4 * 3 + 11);
        assert!(s.contains(&format!("fill=\"{}\"", heat(1.0))));
        assert_eq!(heat(0.0), "#f7f7f7");
        assert_eq!(heat(1.0), "#d7301f");
    }

    /// MATRIX_CONFIGS=best: a row per variant, its own best configuration
    /// beside the clean kernel's cell in it; the goal and false positives
    /// as ever.
    #[test]
    fn a_best_matrix_is_shown_a_row_per_variant() {
        let c =
            |v: &str, c: &str, m: Option<Merged>| (String::new(), v.to_string(), c.to_string(), m);
        let m = Matrix::assemble(
            &[],
            vec![
                c("pmd-trust", "best-pmd-trust", Some(merged(10, 0, 0))),
                c("slow-one", "best-slow-one", Some(merged(3, 7, 0))),
                c("clean", "best-pmd-trust", Some(merged(0, 2, 0))),
                c("clean", "best-slow-one", Some(merged(0, 2, 0))),
            ],
        );
        assert!(m.is_best_matrix());
        let t = m.table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("variant    its best configuration"),
            "{t}"
        );
        assert!(lines[0].contains("clean kernel, same configuration"), "{t}");
        assert!(lines[1].starts_with("pmd-trust  10/10 5.5/10.0s"), "{t}");
        assert!(lines[1].contains("0/2 [0.00-0.66]"), "{t}");
        assert!(lines[2].starts_with("slow-one   3/10"), "{t}");
        assert!(!t.lines().any(|l| l.starts_with("clean")), "{t}");
        assert_eq!((m.goal.false_positives.k, m.goal.false_positives.n), (0, 4));
        assert!(m.goal.variants[0].met && !m.goal.variants[1].met);
        // The heat map likewise: two rows of two cells, and the legend.
        assert_eq!(m.svg().matches("<rect x=").count(), 2 * 2 + 11);
        // Another configuration beside them: the ordinary table.
        assert!(!sample().is_best_matrix());
    }

    /// A fixture matrix directory over two series, as scripts/matrix.sh
    /// writes it: the variant's patch does not apply to 7.2.
    #[test]
    fn rows_per_variant_and_series_from_dirs() {
        let d = std::env::temp_dir().join(format!("mmrace-matrix-series-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let cell = |series: &str, variant: &str, config: &str, m: &Merged| {
            let dir = d.join(series).join(variant).join(config);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(MERGED_JSON), m.to_json()).unwrap();
        };
        cell("7.3", "clean", "thp-race", &merged(0, 2, 0));
        cell("7.3", "pmd-trust", "thp-race", &merged(2, 0, 0));
        cell("7.2", "clean", "thp-race", &merged(0, 2, 0));
        let nb = d.join("7.2/pmd-trust");
        std::fs::create_dir_all(nb.join("thp-race")).unwrap();
        std::fs::write(nb.join(NOT_BUILT), "").unwrap();
        let series = vec!["7.2".to_string(), "7.3".to_string()];
        let m = load(&d, &series).unwrap();
        assert_eq!(m.series, series);
        assert_eq!(m.variants, ["clean", "pmd-trust"]);
        assert_eq!(
            m.rows(),
            [
                ("clean", "7.2"),
                ("clean", "7.3"),
                ("pmd-trust", "7.2"),
                ("pmd-trust", "7.3")
            ]
            .map(|(v, s)| (v.to_string(), s.to_string()))
        );
        assert!(!m.cell("pmd-trust", "7.2", "thp-race").unwrap().built);
        let built = m.cell("pmd-trust", "7.3", "thp-race").unwrap();
        assert!(built.built && built.caught == 2);
        let t = m.table();
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("variant    series  thp-race"), "{t}");
        assert!(lines[3].starts_with("pmd-trust  7.2     not built"), "{t}");
        assert!(lines[4].starts_with("pmd-trust  7.3     2/2"), "{t}");
        // The goal per row: met on 7.3, missed where it was not built;
        // false positives over both clean rows.
        let g: Vec<(&str, bool)> = m
            .goal
            .variants
            .iter()
            .map(|v| (v.series.as_str(), v.met))
            .collect();
        assert_eq!(g, [("7.2", false), ("7.3", true)]);
        assert_eq!((m.goal.false_positives.k, m.goal.false_positives.n), (0, 4));
        let text = m.goal_text();
        assert!(text.contains("MET  pmd-trust (7.3)"), "{text}");
        assert!(text.contains("MISS pmd-trust (7.2)"), "{text}");
        assert!(m.svg().contains(">pmd-trust (7.2)</text>"));
        assert_eq!(m.svg().matches("<rect x=").count(), 4 + 11);
        // The same directory read as one series finds no cells at the top.
        assert!(load(&d, &[]).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
