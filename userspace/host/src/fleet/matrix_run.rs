//! `mmrace-host matrix-run` (`make matrix`, scripts/matrix.sh): drives the
//! detection matrix's cells. Every setting is checked first (each
//! configuration through the options its batches get), then the kernels
//! are built ([`crate::fleet::build`]), a row at a time, and each cell is a
//! batch (`mmrace-host batch`, its output in `<variant>/<config>.out`);
//! the table is [`crate::fleet::matrix`]'s.

use crate::args::{MachineArgs, MatrixArgs, MatrixRunArgs};
use crate::fleet::build::{
    log, recorded_series, run_self, BuildError, Builder, KernelWant, Output, Target,
};
use crate::fleet::matrix::matrix_cmd;
use crate::fleet::matrix_plan::{self, Config, Row};
use crate::fleet::series::NOT_BUILT;
use crate::fleet::settings;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A matrix checked and ready to build: its rows, its series, where its
/// results go.
struct Matrix<'a> {
    a: &'a MatrixRunArgs,
    rows: Vec<Row>,
    series: Vec<String>,
    out: PathBuf,
    builder: Builder,
}

/// One cell's batch: the row, the configuration and, once built, the
/// images and the disk.
struct Cell<'a> {
    row: &'a Row,
    config: &'a Config,
    series: &'a str,
    images: Option<(&'a Path, &'a Path)>,
    disk: Option<&'a Path>,
    results: Option<&'a Path>,
}

/// The `matrix-run` subcommand; returns the exit code: 0 the matrix is
/// complete, 2 a harness or usage error (125 when a single series' own
/// kernel does not build).
pub fn matrix_run(a: &MatrixRunArgs, stop: &AtomicBool) -> i32 {
    let m = match Matrix::checked(a) {
        Ok(m) => m,
        Err(e) => {
            log(&format!("error: {e}"));
            return 2;
        }
    };
    if a.check_only {
        return 0;
    }
    m.run(stop).unwrap_or_else(|e| {
        log(&format!("error: {}", e.reason()));
        e.exit_code()
    })
}

/// The options a cell's batch gets, then the scenario words; without
/// images, `--check-only` (nothing is built yet).
fn batch_argv(a: &MatrixRunArgs, c: &Cell) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["mmrace-host".into(), "batch".into()];
    let mut opt = |k: &str, val: OsString| {
        v.push(k.into());
        v.push(val);
    };
    match c.images {
        Some((kernel, initrd)) => {
            opt("--kernel", kernel.into());
            opt("--initrd", initrd.into());
        }
        None => v.push("--check-only".into()),
    }
    let mut opt = |k: &str, val: String| {
        v.push(k.into());
        v.push(val.into());
    };
    opt("--seed", a.seed.to_string());
    opt("--duration", a.cap.to_string());
    if let Some(s) = a.after_finding {
        opt("--after-finding", s.to_string());
    }
    opt("--kernel-series", c.series.to_string());
    let machine = MachineArgs {
        mem_mib: c.config.mem_mib(a.machine.mem_mib),
        ..a.machine.clone()
    };
    v.extend(machine.words().into_iter().map(OsString::from));
    let mut opt = |k: &str, val: String| {
        v.push(k.into());
        v.push(val.into());
    };
    if let Some(v) = c.row.kernel_variant() {
        opt("--kernel-variant", v.to_string());
    }
    opt("--runs", a.seeds.to_string());
    if let Some(j) = a.jobs.jobs {
        opt("--jobs", j.to_string());
    }
    if let Some(e) = &c.row.expect {
        opt("--expect", e.pattern().to_string());
    }
    if let Some(d) = c.results {
        opt("--results-dir", d.display().to_string());
    }
    opt("--run-id", c.config.name.clone());
    if let Some(d) = c.disk {
        opt("--disk", d.display().to_string());
    }
    v.extend(c.config.words.iter().map(OsString::from));
    v
}

/// Every configuration of the rows, with the options its cells' batches
/// get: a bad word in a NAME=WORDS, a bad CPUS or JOBS stop here.
fn check_configs(a: &MatrixRunArgs, rows: &[Row], series: &str) -> Result<(), String> {
    let row = Row {
        variant: "clean".into(),
        expect: None,
        configs: Vec::new(),
    };
    for config in &matrix_plan::all_configs(rows) {
        let cell = Cell {
            row: &row,
            config,
            series,
            images: None,
            disk: None,
            results: None,
        };
        crate::fleet::batch::check_argv(&batch_argv(a, &cell)).map_err(|e| {
                format!(
                    "{e}\nmatrix: configuration '{}' (scenario words: {}), with the settings above: refused",
                    config.name,
                    config.words.join(" ")
                )
            })?;
    }
    Ok(())
}

impl<'a> Matrix<'a> {
    /// Every setting, checked before anything is built.
    fn checked(a: &'a MatrixRunArgs) -> Result<Matrix<'a>, String> {
        let variants_dir = a.mmrace_root.join("kernel/variants");
        let variants = if a.variants.is_empty() {
            matrix_plan::default_variants(&variants_dir)
        } else {
            a.variants.clone()
        };
        let configs: Vec<String> = if a.configs.is_empty() {
            matrix_plan::DEFAULT_CONFIGS.map(String::from).to_vec()
        } else {
            a.configs.clone()
        };
        let rows = matrix_plan::rows(&variants_dir, &variants, &configs, &a.amplify)?;
        let own = a.own.kdir.is_some() || a.own.kernel_src.is_some();
        let series = settings::series_list(&a.series, own)?;
        settings::profile(&a.mmrace_root, a.own.kernel_profile, a.own.kdir.as_deref())?;
        check_configs(a, &rows, &series[0])?;
        let id =
            a.id.clone()
                .unwrap_or_else(|| crate::args::utc_stamp(crate::vm::run::unix_now()));
        let out = a.mmrace_root.join(format!("build/results/matrix-{id}"));
        if out.exists() {
            return Err(format!(
                "{} already exists: pick another MATRIX_ID",
                out.display()
            ));
        }
        Ok(Matrix {
            a,
            rows,
            series,
            out,
            builder: Builder::new(&a.mmrace_root),
        })
    }

    fn multi(&self) -> bool {
        self.series.len() > 1
    }

    /// The series a single series' runs record.
    fn recorded_series(&self) -> String {
        recorded_series(&self.a.own, &self.series[0])
    }

    /// The kernel of `series` and `variant`.
    fn want(&self, series: &str, variant: Option<&str>) -> KernelWant {
        KernelWant::of(
            &self.a.own,
            series,
            self.multi(),
            variant.map(str::to_string),
        )
    }

    /// The toolchain, the driver and, for one series, its clean kernel
    /// (whose failure stops the matrix); for several, every series'
    /// source (one the archive lacks is a usage error).
    fn prepare(&self) -> Result<(PathBuf, Option<Target>), BuildError> {
        let b = &self.builder;
        b.toolchain(
            &self.series[0],
            self.a.own.kernel_profile,
            self.a.own.kdir.is_some(),
        )?;
        let driver = b.driver()?;
        if self.multi() {
            for s in &self.series {
                b.kernel_src(s)?;
            }
            return Ok((driver, None));
        }
        let want = self.want(&self.series[0], None);
        let series = self.recorded_series();
        let base = b.base_target(&want, self.a.own.kdir.as_deref(), &driver, &series)?;
        Ok((driver, Some(base)))
    }

    /// A row's kernel on `series`: the clean one of a single series is
    /// built already.
    fn row_target(
        &self,
        row: &Row,
        series: &str,
        driver: &Path,
        base: Option<&Target>,
    ) -> Result<Target, BuildError> {
        match base {
            Some(base) if row.is_clean() => Ok(base.clone()),
            Some(_) => {
                let want = self.want(series, row.kernel_variant());
                self.builder.target(&want, driver, &self.recorded_series())
            }
            None => {
                let want = self.want(series, row.kernel_variant());
                self.builder.target(&want, driver, series)
            }
        }
    }

    fn cells(&self) -> usize {
        let per_series: usize = self.rows.iter().map(|r| r.configs.len()).sum();
        per_series * self.series.len()
    }

    /// The matrix's first log line: rows, seeds, cells, where.
    fn announce(&self) {
        log(&format!(
            "matrix {}: variants {}{}; {} seeds from {}, {}s cap; {} cells; results in {}",
            self.out
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .trim_start_matches("matrix-"),
            self.rows
                .iter()
                .map(|r| r.variant.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            if self.multi() {
                format!("; series {}", self.series.join(" "))
            } else {
                String::new()
            },
            self.a.seeds,
            self.a.seed,
            self.a.cap,
            self.cells(),
            self.out.display()
        ));
    }

    /// Builds and runs every cell, then the table.
    fn run(&self, stop: &AtomicBool) -> Result<i32, BuildError> {
        std::fs::create_dir_all(&self.out)
            .map_err(|e| BuildError::Harness(format!("{}: {e}", self.out.display())))?;
        let t0 = Instant::now();
        let (driver, base) = self.prepare()?;
        self.announce();
        let mut progress = Progress { done: 0, t0 };
        'all: for s in &self.series {
            let dir = if self.multi() {
                self.out.join(s)
            } else {
                self.out.clone()
            };
            for row in &self.rows {
                if stop.load(Ordering::SeqCst) {
                    break 'all;
                }
                self.run_row(row, s, &dir, &driver, base.as_ref(), &mut progress)?;
            }
        }
        let _ = std::fs::remove_file(self.out.join("oom-stall.img"));
        log(&format!("matrix: {} s in all", t0.elapsed().as_secs()));
        let series = if self.multi() {
            self.series.clone()
        } else {
            Vec::new()
        };
        let code = matrix_cmd(&MatrixArgs {
            dir: self.out.clone(),
            series,
        });
        Ok(if stop.load(Ordering::SeqCst) { 2 } else { code })
    }

    /// One row: its kernel (or its "not built" mark), then its cells.
    fn run_row(
        &self,
        row: &Row,
        series: &str,
        dir: &Path,
        driver: &Path,
        base: Option<&Target>,
        progress: &mut Progress,
    ) -> Result<(), BuildError> {
        let label = if self.multi() {
            format!("{} on {series}", row.variant)
        } else {
            row.variant.clone()
        };
        let vdir = dir.join(&row.variant);
        let mkdir = |d: &Path| {
            std::fs::create_dir_all(d)
                .map_err(|e| BuildError::Harness(format!("{}: {e}", d.display())))
        };
        let target = match self.row_target(row, series, driver, base) {
            Ok(t) if t.kernel.exists() => t,
            _ => {
                log(&format!("matrix: {label} did not build: its row says so"));
                mkdir(&vdir)?;
                std::fs::write(vdir.join(NOT_BUILT), "")
                    .map_err(|e| BuildError::Harness(e.to_string()))?;
                for c in &row.configs {
                    mkdir(&vdir.join(&c.name))?;
                }
                progress.done += row.configs.len();
                return Ok(());
            }
        };
        mkdir(&vdir)?;
        for config in &row.configs {
            progress.done += 1;
            self.run_cell(row, config, &label, &target, &vdir, progress)?;
        }
        Ok(())
    }

    /// A cell's initramfs (the shell baseline's has the seed's programs)
    /// and its fresh XFS image, if its scenario needs one.
    fn cell_inputs(
        &self,
        config: &Config,
        target: &Target,
    ) -> Result<(PathBuf, Option<PathBuf>), BuildError> {
        let initrd = if config.is_shell_baseline() {
            self.builder.bench_initrd(&target.kdir, &target.initrd)?
        } else {
            target.initrd.clone()
        };
        let disk = match config.disk_image() {
            Some(img) => Some(
                self.builder
                    .xfs_disk(&self.out.join(&img), self.a.disk_mib)?,
            ),
            None => None,
        };
        Ok((initrd, disk))
    }

    /// One cell: its initramfs and disk, then its batch.
    fn run_cell(
        &self,
        row: &Row,
        config: &Config,
        label: &str,
        target: &Target,
        vdir: &Path,
        progress: &Progress,
    ) -> Result<(), BuildError> {
        let (initrd, disk) = self.cell_inputs(config, target)?;
        log(&format!(
            "matrix: cell {}/{}: {label} x {} ({} s so far)",
            progress.done,
            self.cells(),
            config.name,
            progress.t0.elapsed().as_secs()
        ));
        let cell = Cell {
            row,
            config,
            series: &target.series,
            images: Some((&target.kernel, &initrd)),
            disk: disk.as_deref(),
            results: Some(vdir),
        };
        let out_file = vdir.join(format!("{}.out", config.name));
        let rc = run_self(&batch_argv(self.a, &cell), Output::File(&out_file))?;
        // 0 clean, 1 caught: both are results; 2 is the harness.
        if rc > 1 {
            log(&format!(
                "matrix: {label} x {}: harness errors (exit {rc}), see {}",
                config.name,
                out_file.display()
            ));
        }
        log(&format!(
            "matrix: {label} x {}: {}",
            config.name,
            outcome_line(&out_file)
        ));
        Ok(())
    }
}

/// Cells done so far, and since when.
struct Progress {
    done: usize,
    t0: Instant,
}

/// The batch's catch probability line, else its last line.
fn outcome_line(out_file: &Path) -> String {
    let text = std::fs::read_to_string(out_file).unwrap_or_default();
    text.lines()
        .find(|l| l.contains("catch probability"))
        .or_else(|| text.lines().last())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser as _;

    fn args(extra: &[&str]) -> MatrixRunArgs {
        let mut argv = vec!["mmrace-host", "matrix-run", "--mmrace-root", "/r"];
        argv.extend(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::MatrixRun(a) => *a,
            _ => unreachable!(),
        }
    }

    fn try_cli(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut argv = vec!["mmrace-host", "matrix-run", "--mmrace-root", "/r"];
        argv.extend(extra);
        Cli::try_parse_from(argv)
    }

    fn row(variant: &str) -> Row {
        Row {
            variant: variant.into(),
            expect: (variant != "clean")
                .then(|| crate::judge::expect::Expect::new("^WARNING").unwrap()),
            configs: Vec::new(),
        }
    }

    #[test]
    fn a_cells_batch_gets_the_matrix_settings() {
        let a = args(&[
            "--seeds",
            "2",
            "--cap",
            "30",
            "--seed",
            "21",
            "--jobs",
            "2",
            "--after-finding",
            "5",
        ]);
        let config = Config::setting("oom-stall", &a.amplify).unwrap();
        let r = row("v");
        let cell = Cell {
            row: &r,
            config: &config,
            series: "7.3",
            images: Some((Path::new("/k"), Path::new("/i"))),
            disk: Some(Path::new("/d.img")),
            results: Some(Path::new("/out/v")),
        };
        let argv: Vec<String> = batch_argv(&a, &cell)
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        let want = "mmrace-host batch --kernel /k --initrd /i --seed 21 --duration 30 \
                    --after-finding 5 --kernel-series 7.3 --accel auto --mem-mib 1024 \
                    --kernel-variant v --runs 2 --jobs 2 --expect ^WARNING \
                    --results-dir /out/v --run-id oom-stall --disk /d.img oom-stall";
        assert_eq!(argv.join(" "), want);
        let checked = Cell {
            images: None,
            disk: None,
            results: None,
            ..cell
        };
        assert!(crate::fleet::batch::check_argv(&batch_argv(&a, &checked)).is_ok());
    }

    /// MATRIX_CONFIGS=best over the whole library: every variant's `Best:`
    /// line checked as its cell's batch (and the clean row's) gets it.
    #[test]
    fn every_best_line_is_a_cells_batch() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut a = args(&["--config", "best", "--id", "unit-test-best-check"]);
        a.mmrace_root = root.clone();
        let m = Matrix::checked(&a).unwrap_or_else(|e| panic!("{e}"));
        let n = settings::variant_names(&root).len();
        assert!(n > 0 && m.rows.len() == n + 1);
        assert!(m.rows[0].is_clean() && m.rows[0].configs.len() == n);
        for r in &m.rows[1..] {
            let names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, [format!("best-{}", r.variant)]);
        }
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let a = args(&["--config", "x=thp-race,--bogus"]);
        let config = Config::setting(&a.configs[0], &a.amplify).unwrap();
        let r = row("clean");
        let cell = Cell {
            row: &r,
            config: &config,
            series: "7.3",
            images: None,
            disk: None,
            results: None,
        };
        assert!(crate::fleet::batch::check_argv(&batch_argv(&a, &cell)).is_err());
        let e = Matrix::checked(&args(&[
            "--series",
            "7.2",
            "--series",
            "7.2",
            "--variant",
            "clean",
        ]))
        .err()
        .unwrap();
        assert!(e.contains("lists 7.2 twice"), "{e}");
        let a = args(&[
            "--kernel-profile",
            "kasan",
            "--kdir",
            "/k",
            "--variant",
            "clean",
        ]);
        let e = Matrix::checked(&a).err().unwrap();
        assert!(e.contains("a kernel of your own"), "{e}");
        assert!(try_cli(&["--kernel-profile", "nosuch"]).is_err());
    }
}
