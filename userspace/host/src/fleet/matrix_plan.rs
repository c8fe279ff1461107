//! What `make matrix` runs: its rows (the clean kernel and each kernel
//! variant), each row's configurations and the scenario words of each,
//! from the settings and the variant patches' headers. Pure: the cells are
//! driven by [`crate::fleet::matrix_run`], the table is
//! [`crate::fleet::matrix`].

use crate::judge::expect::Expect;
use crate::variants::Header;
use std::path::Path;

/// The configurations a variant without a `Scenarios:` line gets.
pub const DEFAULT_CONFIGS: [&str; 3] = ["shell-baseline", "thp-race", "thp-race-amplified"];
/// Each variant's own best configuration (its header's `Best:` line),
/// named `best-VARIANT`.
pub const BEST: &str = "best";
/// The configurations known by name.
const NAMED: [&str; 7] = [
    "shell-baseline",
    "thp-race",
    "thp-race-amplified",
    "oom-stall",
    "smoke",
    "pairs",
    BEST,
];
/// oom-stall's guest memory, MiB: smaller, for the OOM killer to come
/// sooner.
const OOM_MEM_MIB: u64 = 1024;

/// A column of the matrix: its name (the cell's directory) and the
/// scenario words its batches run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub name: String,
    pub words: Vec<String>,
}

impl Config {
    /// A configuration as a variant's `Scenarios:` line names it: a known
    /// name, `NAME=WORDS` (commas for spaces), or a scenario's own name.
    pub fn of_spec(spec: &str, amplify: &str) -> Config {
        let (name, words) = match spec.split_once('=') {
            Some((name, words)) => (name, words.split(',').map(str::to_string).collect()),
            None if spec == "thp-race-amplified" => (
                spec,
                vec!["thp-race".into(), "--amplify".into(), amplify.into()],
            ),
            None => (spec, vec![spec.to_string()]),
        };
        let words = words
            .into_iter()
            .filter(|w: &String| !w.is_empty())
            .collect();
        Config {
            name: name.to_string(),
            words,
        }
    }

    /// A configuration of MATRIX_CONFIGS, checked: a known name or
    /// `NAME=WORDS`.
    pub fn setting(spec: &str, amplify: &str) -> Result<Config, String> {
        match spec.split_once('=') {
            None if NAMED.contains(&spec) => Ok(Config::of_spec(spec, amplify)),
            None => Err(format!("MATRIX_CONFIGS: unknown configuration '{spec}' (shell-baseline, thp-race, thp-race-amplified, oom-stall, smoke, pairs, best or NAME=scenario,words)")),
            Some((name, _)) if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') => {
                Err(format!("MATRIX_CONFIGS: '{spec}': the name before = is letters, digits and -"))
            }
            Some((_, words)) if words.is_empty() || !words.chars().all(|c| c.is_ascii_alphanumeric() || "_=,.:+-".contains(c)) => {
                Err(format!("MATRIX_CONFIGS: '{spec}': the words after = are scenario words joined by commas"))
            }
            Some(_) => Ok(Config::of_spec(spec, amplify)),
        }
    }

    /// Its guest's memory, MiB: `given`, or the run's default (None);
    /// every oom-stall configuration's is [`OOM_MEM_MIB`].
    pub fn mem_mib(&self, given: Option<u64>) -> Option<u64> {
        if self.scenario() == "oom-stall" {
            Some(OOM_MEM_MIB)
        } else {
            given
        }
    }

    /// The scenario its words run (`pairs` for `pairs-all=pairs,...`).
    pub fn scenario(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// The XFS image its runs attach (oom-stall's writers, pairs'
    /// O_DIRECT and XFS kinds: every scenario that uses the disk), under
    /// the matrix directory, one per scenario.
    pub fn disk_image(&self) -> Option<String> {
        let s = mmrace_proto::spec::Scenario::parse(&self.words).ok()?;
        s.needs_disk().then(|| format!("{}.img", s.name()))
    }

    /// The seed's shell procedure: its initramfs gets busybox, the writer
    /// and the script.
    pub fn is_shell_baseline(&self) -> bool {
        self.name == "shell-baseline"
    }
}

/// MATRIX_AMPLIFY: `key=value,...`.
pub fn check_amplify(amplify: &str) -> Result<(), String> {
    if amplify
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_=,".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "MATRIX_AMPLIFY: only key=value,... please, got '{amplify}'"
        ))
    }
}

/// A row's kernel: the clean one or a variant, with the title pattern of
/// its catches.
#[derive(Debug, Clone)]
pub struct Row {
    /// `clean`, or kernel/variants/NAME.patch.
    pub variant: String,
    /// The variant's `Expect:` pattern; None for the clean kernel (any
    /// finding there is a false positive).
    pub expect: Option<Expect>,
    pub configs: Vec<Config>,
}

impl Row {
    pub fn is_clean(&self) -> bool {
        self.variant == "clean"
    }

    /// The kernel variant its kernel is built with.
    pub fn kernel_variant(&self) -> Option<&str> {
        (!self.is_clean()).then_some(self.variant.as_str())
    }
}

/// A variant's configurations, as specs: its `Scenarios:` line (with the
/// `NAME=WORDS` configurations of `defaults` that run a scenario it
/// names), else the defaults plus oom-stall when its `Class:` line names
/// the OOM path.
pub fn variant_specs(header: &Header, defaults: &[String]) -> Vec<String> {
    if let Some(own) = &header.scenarios {
        // MATRIX_CONFIGS of your own (NAME=WORDS) that run a scenario the
        // line names run too: `pairs-swarm=pairs,--swarm` on a "pairs"
        // variant.
        let custom = defaults.iter().filter(|d| {
            d.split_once('=').is_some_and(|(_, words)| {
                own.iter()
                    .any(|o| words.split(',').next() == Some(o.as_str()))
            })
        });
        return own.iter().chain(custom).cloned().collect();
    }
    let mut specs = defaults.to_vec();
    if header.oom_class() {
        specs.push("oom-stall".into());
    }
    specs
}

/// The spec of a variant's `Best:` (or `Best-tried:`) line, as
/// `best-VARIANT=WORDS`: the configuration MATRIX_CONFIGS=best gives its
/// row, and the clean row beside it.
pub fn best_spec(variant: &str, header: &Header) -> Result<String, String> {
    let best = header.best.as_ref().ok_or_else(|| {
        format!(
            "MATRIX_CONFIGS=best: kernel/variants/{variant}.patch has no Best: or Best-tried: line"
        )
    })?;
    Ok(format!("{BEST}-{variant}={}", best.words.join(",")))
}

/// Each spec once, in the order first named.
fn unique(specs: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = Vec::new();
    for s in specs {
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen
}

/// A MATRIX_CONFIGS entry `VARIANT:SPEC` is SPEC for that variant only
/// (a `:` before any `=`); a plain entry is for every variant.
pub fn split_variant(spec: &str) -> (Option<&str>, &str) {
    match (spec.find(':'), spec.find('=')) {
        (Some(c), e) if e.is_none_or(|e| c < e) => (Some(&spec[..c]), &spec[c + 1..]),
        _ => (None, spec),
    }
}

/// The rows of MATRIX_VARIANTS (`clean` and names of
/// `variants_dir/NAME.patch`) over the configurations MATRIX_CONFIGS;
/// the clean row runs every configuration any row runs (its catches are
/// false positives). A variant named by `VARIANT:SPEC` entries runs those
/// instead of its header's or the plain entries.
pub fn rows(
    variants_dir: &Path,
    variants: &[String],
    configs: &[String],
    amplify: &str,
) -> Result<Vec<Row>, String> {
    check_amplify(amplify)?;
    let mut plain = Vec::new();
    let mut own_of: Vec<(&str, String)> = Vec::new();
    for c in configs {
        let (variant, spec) = split_variant(c);
        Config::setting(spec, amplify)?;
        match variant {
            Some(v) if v == "clean" || !variants.iter().any(|x| x == v) => {
                return Err(format!(
                    "MATRIX_CONFIGS: '{c}': {v} is not a variant of MATRIX_VARIANTS"
                ))
            }
            Some(v) => own_of.push((v, spec.to_string())),
            None => plain.push(spec.to_string()),
        }
    }
    // `best`: each variant's Best: line; alone, nothing else.
    let want_best = plain.iter().any(|p| p == BEST);
    plain.retain(|p| p != BEST);
    let configs = &plain[..];
    let mut specs = Vec::new();
    let mut rows = Vec::new();
    for v in variants.iter().filter(|v| *v != "clean") {
        let patch = variants_dir.join(format!("{v}.patch"));
        if !patch.is_file() {
            return Err(format!("MATRIX_VARIANTS: no kernel/variants/{v}.patch"));
        }
        let header = Header::of_patch(&patch).map_err(|e| format!("{e:#}"))?;
        let expect = header
            .expect
            .clone()
            .ok_or_else(|| format!("{}: no Expect: line", patch.display()))?;
        let named: Vec<String> = own_of
            .iter()
            .filter(|(x, _)| x == v)
            .map(|(_, s)| match s == BEST {
                true => best_spec(v, &header),
                false => Ok(s.clone()),
            })
            .collect::<Result<_, _>>()?;
        let own = match (named.is_empty(), want_best) {
            (false, _) => unique(named),
            (true, false) => unique(variant_specs(&header, configs)),
            (true, true) if configs.is_empty() => vec![best_spec(v, &header)?],
            (true, true) => unique(
                std::iter::once(best_spec(v, &header)?).chain(variant_specs(&header, configs)),
            ),
        };
        specs.push(own.clone());
        rows.push((v.clone(), Some(expect), own));
    }
    let clean = unique(configs.iter().cloned().chain(specs.into_iter().flatten()));
    if clean.is_empty() {
        return Err("MATRIX_CONFIGS: no configuration to run (best takes each variant's Best: line: name a variant in MATRIX_VARIANTS)".into());
    }
    let mut out = Vec::new();
    let mut variant_rows = rows.into_iter();
    for v in variants {
        let (variant, expect, specs) = if v == "clean" {
            (v.clone(), None, clean.clone())
        } else {
            variant_rows.next().expect("a row per variant")
        };
        let configs = specs.iter().map(|s| Config::of_spec(s, amplify)).collect();
        out.push(Row {
            variant,
            expect,
            configs,
        });
    }
    Ok(out)
}

/// Every configuration of the rows, once each (by spec), sorted by name:
/// what the settings check runs each through.
pub fn all_configs(rows: &[Row]) -> Vec<Config> {
    let mut all: Vec<Config> = Vec::new();
    for c in rows.iter().flat_map(|r| &r.configs) {
        if !all.contains(c) {
            all.push(c.clone());
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name).then(a.words.cmp(&b.words)));
    all
}

/// The default MATRIX_VARIANTS: clean and every patch in `variants_dir`,
/// by name.
pub fn default_variants(variants_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(variants_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".patch").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    std::iter::once("clean".to_string()).chain(names).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMP: &str = "delay_us=1000,every_nth=1";

    fn specs(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn configs_and_their_words() {
        let c = Config::setting("thp-race-amplified", AMP).unwrap();
        assert_eq!(c.words, specs(&["thp-race", "--amplify", AMP]));
        let c = Config::setting("narrow=thp-race,--no-churn,--phase-ms,0", AMP).unwrap();
        assert_eq!(c.name, "narrow");
        assert_eq!(
            c.words,
            specs(&["thp-race", "--no-churn", "--phase-ms", "0"])
        );
        assert_eq!(
            Config::setting("oom-stall", AMP)
                .unwrap()
                .mem_mib(Some(2048)),
            Some(1024)
        );
        let pairs = Config::setting("pairs", AMP).unwrap();
        assert_eq!(
            (pairs.mem_mib(Some(2048)), pairs.mem_mib(None)),
            (Some(2048), None)
        );
        let disk = |spec: &str| Config::setting(spec, AMP).unwrap().disk_image();
        assert_eq!(disk("pairs").as_deref(), Some("pairs.img"));
        assert_eq!(
            disk("wide=pairs,--kinds,anon").as_deref(),
            Some("pairs.img")
        );
        assert_eq!(disk("oom-stall").as_deref(), Some("oom-stall.img"));
        assert_eq!(disk("thp-race"), None);
        assert_eq!(disk("narrow=thp-race,--no-churn"), None);
        for bad in ["bogus", "Big=thp-race", "=thp-race", "x=", "x=thp race"] {
            assert!(Config::setting(bad, AMP).is_err(), "{bad}");
        }
        assert!(check_amplify("delay_us=1000").is_ok());
        assert!(check_amplify("delay_us=1000 every").is_err());
    }

    #[test]
    fn a_variant_gets_its_scenarios_line_or_the_defaults() {
        let variant_specs =
            |text: &str, d: &[String]| variant_specs(&Header::parse(text).unwrap(), d);
        let d = specs(&DEFAULT_CONFIGS);
        let own = "Subject: x\nScenarios: pairs thp-race\n---\nScenarios: no\n";
        assert_eq!(variant_specs(own, &d), specs(&["pairs", "thp-race"]));
        let oom = "Class: the OOM reaper path.\n---\n";
        assert_eq!(variant_specs(oom, &d).last().unwrap(), "oom-stall");
        let plain = "Class: a recheck.\n---\nClass: oom\n";
        assert_eq!(variant_specs(plain, &d), d);
        // Your own configurations of a scenario the line names come along.
        let mine = specs(&[
            "pairs-swarm=pairs,--swarm",
            "narrow=thp-race,--no-fork",
            "smoke",
        ]);
        let pairs_only = "Scenarios: pairs\n---\n";
        assert_eq!(
            variant_specs(pairs_only, &mine),
            specs(&["pairs", "pairs-swarm=pairs,--swarm"])
        );
    }

    #[test]
    fn the_clean_row_runs_what_any_row_runs() {
        let dir = std::env::temp_dir().join(format!("mmrace-mplan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.patch"),
            "Expect: ^WARNING in x$\nScenarios: pairs thp-race\n---\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("b.patch"),
            "Class: the OOM path\nExpect: ^OOM\n---\n",
        )
        .unwrap();
        std::fs::write(dir.join("c.patch"), "Class: none\n---\n").unwrap();
        let rows = rows(
            &dir,
            &specs(&["clean", "a", "b"]),
            &specs(&["thp-race"]),
            AMP,
        )
        .unwrap();
        let names = |r: &Row| r.configs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&rows[0]), specs(&["thp-race", "pairs", "oom-stall"]));
        assert_eq!(names(&rows[1]), specs(&["pairs", "thp-race"]));
        assert_eq!(names(&rows[2]), specs(&["thp-race", "oom-stall"]));
        assert!(rows[0].expect.is_none() && rows[0].kernel_variant().is_none());
        assert_eq!(rows[1].expect.as_ref().unwrap().pattern(), "^WARNING in x$");
        assert_eq!(all_configs(&rows).len(), 3);
        let e = super::rows(&dir, &specs(&["nope"]), &[], AMP).unwrap_err();
        assert!(e.contains("no kernel/variants/nope.patch"), "{e}");
        let e = super::rows(&dir, &specs(&["c"]), &[], AMP).unwrap_err();
        assert!(e.contains("no Expect: line"), "{e}");
        assert_eq!(default_variants(&dir), specs(&["clean", "a", "b", "c"]));
        let rows = super::rows(
            &dir,
            &specs(&["clean", "a", "b"]),
            &specs(&["thp-race", "a:forced=pairs,--pair,store,--pair,split"]),
            AMP,
        )
        .unwrap();
        assert_eq!(names(&rows[1]), specs(&["forced"]));
        assert_eq!(names(&rows[2]), specs(&["thp-race", "oom-stall"]));
        assert_eq!(names(&rows[0]), specs(&["thp-race", "forced", "oom-stall"]));
        assert_eq!(
            rows[1].configs[0].disk_image().as_deref(),
            Some("pairs.img")
        );
        for bad in ["c:thp-race", "clean:thp-race", "a:bogus"] {
            assert!(
                super::rows(&dir, &specs(&["a"]), &specs(&[bad]), AMP).is_err(),
                "{bad}"
            );
        }
        assert_eq!(split_variant("x=pairs,--a:b"), (None, "x=pairs,--a:b"));
        // best: each variant its Best: line (best-VARIANT), the clean row
        // all of them; a variant without one is refused.
        std::fs::write(
            dir.join("d.patch"),
            "Expect: ^x$\nScenarios: pairs\nBest: pairs --pair store --pair migrate-pages --kind anon\n---\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("e.patch"),
            "Class: OOM\nExpect: ^OOM\nBest-tried: oom-stall\n---\n",
        )
        .unwrap();
        let best = |configs: &[&str]| {
            super::rows(&dir, &specs(&["clean", "d", "e"]), &specs(configs), AMP)
        };
        let rows = best(&["best"]).unwrap();
        assert_eq!(names(&rows[1]), specs(&["best-d"]));
        assert_eq!(
            rows[1].configs[0].words,
            specs(&[
                "pairs",
                "--pair",
                "store",
                "--pair",
                "migrate-pages",
                "--kind",
                "anon"
            ])
        );
        assert_eq!(names(&rows[2]), specs(&["best-e"]));
        assert_eq!(rows[2].configs[0].mem_mib(Some(2048)), Some(1024));
        assert_eq!(names(&rows[0]), specs(&["best-d", "best-e"]));
        let rows = best(&["best", "thp-race"]).unwrap();
        assert_eq!(names(&rows[1]), specs(&["best-d", "pairs"]));
        assert_eq!(names(&rows[2]), specs(&["best-e", "thp-race", "oom-stall"]));
        let rows = best(&["thp-race", "e:best"]).unwrap();
        assert_eq!(names(&rows[2]), specs(&["best-e"]));
        let e = super::rows(&dir, &specs(&["clean", "a"]), &specs(&["best"]), AMP).unwrap_err();
        assert!(e.contains("a.patch has no Best:"), "{e}");
        let e = super::rows(&dir, &specs(&["clean"]), &specs(&["best"]), AMP).unwrap_err();
        assert!(e.contains("no configuration to run"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
