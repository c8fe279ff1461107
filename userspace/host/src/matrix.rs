//! `mmrace-host matrix DIR`: the detection matrix of `make matrix`
//! (scripts/matrix.sh): every kernel variant against every configuration
//! (the seed's shell procedure, thp-race, thp-race amplified, oom-stall where
//! it applies), each cell a batch of seeded runs. It reads the cells'
//! merged.json files (`DIR/<variant>/<config>/`, `not-built` marking a
//! variant that did not build), prints the table and the goal against the
//! matrix's own numbers, and writes matrix.json and matrix.svg (a heat map
//! of the catch probability).
//!
//! The clean kernel's row is the false-positive rate: there, a catch is a
//! false alarm.

use crate::args::MatrixArgs;
use crate::merge::{Merged, MERGED_JSON};
use crate::stats::{Proportion, Spread};
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
    "oom-stall",
    "smoke",
];
/// The seed's own procedure: shown beside mmrace, not part of its goal.
pub const BASELINE: &str = "shell-baseline";
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
}

impl Cell {
    fn new(variant: &str, config: &str, m: Option<&Merged>) -> Cell {
        let empty = Proportion::new(0, 0);
        match m {
            None => Cell {
                variant: variant.into(),
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
            },
            Some(m) => Cell {
                variant: variant.into(),
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
        format!("{}/{}{t} [{:.2}-{:.2}]{h}", p.k, p.n, p.lo, p.hi)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantGoal {
    pub variant: String,
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
    pub configs: Vec<String>,
    pub cells: Vec<Cell>,
    pub goal: Goal,
}

fn is_mmrace(config: &str) -> bool {
    config != BASELINE && config != SMOKE
}

impl Matrix {
    /// `cells`: (variant, config, its merged result or None if not built).
    pub fn assemble(cells: Vec<(String, String, Option<Merged>)>) -> Matrix {
        let mut variants: Vec<String> = cells.iter().map(|c| c.0.clone()).collect();
        variants.sort();
        variants.dedup();
        // The clean kernel first: it is the reference row.
        if let Some(i) = variants.iter().position(|v| v == CLEAN) {
            let c = variants.remove(i);
            variants.insert(0, c);
        }
        let mut configs: Vec<String> = cells.iter().map(|c| c.1.clone()).collect();
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
            .map(|(v, c, m)| Cell::new(v, c, m.as_ref()))
            .collect();
        let goal = goal(&variants, &cells);
        Matrix {
            variants,
            configs,
            cells,
            goal,
        }
    }

    pub fn cell(&self, variant: &str, config: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.variant == variant && c.config == config)
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let texts: Vec<Vec<String>> = self
            .variants
            .iter()
            .map(|v| {
                self.configs
                    .iter()
                    .map(|c| {
                        self.cell(v, c)
                            .map(Cell::text)
                            .unwrap_or_else(|| "-".into())
                    })
                    .collect()
            })
            .collect();
        let vw = self
            .variants
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(7);
        let widths: Vec<usize> = (0..self.configs.len())
            .map(|j| {
                texts
                    .iter()
                    .map(|row| row[j].len())
                    .chain([self.configs[j].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut line = format!("{:<vw$}", "variant");
        for (c, w) in self.configs.iter().zip(&widths) {
            let _ = write!(line, "  {c:<w$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        for (v, row) in self.variants.iter().zip(&texts) {
            let mut line = format!("{v:<vw$}");
            for (t, w) in row.iter().zip(&widths) {
                let _ = write!(line, "  {t:<w$}");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out.push_str(
            "cells: caught/runs, median/max time to catch (s), 95 % Wilson interval of the catch probability\n",
        );
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
                v.variant,
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
        let (left, top, cw, ch) = (260.0, 70.0, 170.0, 34.0);
        let w = left + cw * self.configs.len() as f64 + 20.0;
        let h = top + ch * self.variants.len() as f64 + 60.0;
        let mut s = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="white"/>
<text x="10" y="22" font-size="14">mmrace detection matrix: catch probability per variant and configuration</text>
<text x="10" y="40" fill="#555">cell: caught/runs, median time to catch; colour: share of runs that caught it (clean row: false positives)</text>
"##
        );
        for (j, c) in self.configs.iter().enumerate() {
            let x = left + cw * j as f64 + cw / 2.0;
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
                top - 8.0,
                xml(c)
            );
        }
        for (i, v) in self.variants.iter().enumerate() {
            let y = top + ch * i as f64;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                left - 8.0,
                y + ch / 2.0 + 4.0,
                xml(v)
            );
            for (j, c) in self.configs.iter().enumerate() {
                let x = left + cw * j as f64;
                let cell = self.cell(v, c);
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
        let ly = top + ch * self.variants.len() as f64 + 25.0;
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

fn goal(variants: &[String], cells: &[Cell]) -> Goal {
    let mut per = Vec::new();
    for v in variants.iter().filter(|v| *v != CLEAN) {
        let best = cells
            .iter()
            .filter(|c| c.variant == *v && c.built && is_mmrace(&c.config) && c.runs > 0)
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
            .find(|c| c.variant == *v && c.config == BASELINE && c.built);
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

/// Reads `DIR/<variant>/<config>/merged.json`.
pub fn load(dir: &Path) -> anyhow::Result<Matrix> {
    let mut cells = Vec::new();
    let sorted = |d: &Path| -> anyhow::Result<Vec<std::path::PathBuf>> {
        let mut v: Vec<_> = std::fs::read_dir(d)?
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
        let not_built = vdir.join("not-built").exists();
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
                cells.push((variant.clone(), config, m));
            }
        }
    }
    anyhow::ensure!(
        !cells.is_empty(),
        "{}: no cells (<variant>/<config>/{MERGED_JSON})",
        dir.display()
    );
    Ok(Matrix::assemble(cells))
}

/// The `matrix` subcommand.
pub fn matrix_cmd(a: &MatrixArgs) -> i32 {
    match load(&a.dir) {
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
            crate::summary::emit(&(m.table() + &m.goal_text()));
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
    use crate::merge::tests::merged;

    fn sample() -> Matrix {
        let c = |v: &str, c: &str, m: Option<Merged>| (v.to_string(), c.to_string(), m);
        Matrix::assemble(vec![
            c("pmd-trust", "thp-race", Some(merged(10, 0, 0))),
            c("pmd-trust", "shell-baseline", Some(merged(1, 9, 0))),
            c("pmd-trust", "thp-race-amplified", Some(merged(8, 2, 0))),
            c("slow-one", "thp-race", Some(merged(3, 7, 0))),
            c("broken", "thp-race", None),
            c("clean", "thp-race", Some(merged(0, 10, 0))),
            c("clean", "thp-race-amplified", Some(merged(0, 10, 1))),
        ])
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
}
