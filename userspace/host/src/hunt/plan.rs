//! What a hunt runs: its kernels (targets), its mix of scenarios, and the
//! run each index of the campaign draws from them.
//!
//! Run `i` of a campaign of seed `S` draws its target, its scenario and its
//! run's seed from the stream `(S, "hunt", i)`: the same campaign always
//! draws the same runs, so an interrupted one resumes exactly where it
//! stopped, and any run can be replayed from its spec.

use crate::fleet::build::Target;
use anyhow::bail;
use mmrace_proto::rng::Rng;
use mmrace_proto::spec::{RunSpec, Scenario};
use serde::{Deserialize, Serialize};

/// What a campaign was started with; a resumed one keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub seed: u64,
    pub targets: Vec<Target>,
    /// The scenarios' words, as given (`thp-race --swarm`).
    pub mix: Vec<String>,
    pub duration_s: u64,
    pub repro_runs: u32,
    /// Guest vCPUs and memory when not the scenario's defaults (oom-stall
    /// keeps its own smaller memory unless one is given).
    #[serde(default)]
    pub cpus: Option<u32>,
    #[serde(default)]
    pub mem_mib: Option<u64>,
}

/// Guest memory of an oom-stall run, as `make matrix` gives it: less memory
/// brings the OOM killer sooner.
pub const OOM_STALL_MEM_MIB: u64 = 1024;

/// A scenario of the mix, as words (`thp-race --swarm`), parsed.
pub fn parse_mix(words: &[String]) -> anyhow::Result<Vec<Scenario>> {
    if words.is_empty() {
        bail!("the mix is empty: give --mix WORDS (e.g. --mix 'thp-race --swarm')");
    }
    words
        .iter()
        .map(|w| {
            let split: Vec<String> = w.split_whitespace().map(str::to_string).collect();
            Scenario::parse(&split).map_err(|e| {
                anyhow::anyhow!(
                    "--mix {w:?}: not a scenario of this driver: {}",
                    e.to_string().lines().next().unwrap_or("")
                )
            })
        })
        .collect()
}

/// The run campaign index `i` draws (guest sizes from `s`).
pub fn draw(s: &Settings, i: u64, mix: &[Scenario]) -> (usize, RunSpec) {
    let mut rng = Rng::stream(s.seed, "hunt", i);
    let t = rng.below(s.targets.len() as u64) as usize;
    let scenario = mix[rng.below(mix.len() as u64) as usize].clone();
    let run_seed = rng.next_u64() & ((1 << 53) - 1);
    let mut spec = RunSpec::new(scenario, run_seed, s.duration_s);
    spec.kernel = s.targets[t].kernel_spec();
    if matches!(spec.scenario, Scenario::OomStall(_)) {
        spec.guest.mem_mib = OOM_STALL_MEM_MIB;
    }
    spec.guest.cpus = s.cpus.unwrap_or(spec.guest.cpus);
    spec.guest.mem_mib = s.mem_mib.unwrap_or(spec.guest.mem_mib);
    (t, spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(v: Option<&str>) -> Target {
        Target {
            series: "7.3".into(),
            profile: None,
            variant: v.map(str::to_string),
            kernel: "/k".into(),
            initrd: "/i".into(),
            kdir: Default::default(),
            module: Default::default(),
        }
    }

    #[test]
    fn draws_are_deterministic_and_cover_the_mix() {
        let targets = [target(None), target(Some("warn-once-only"))];
        let words = vec!["thp-race --swarm".to_string(), "oom-stall".to_string()];
        let mix = parse_mix(&words).unwrap();
        let mut settings = Settings {
            seed: 9,
            targets: targets.to_vec(),
            mix: words,
            duration_s: 30,
            repro_runs: 0,
            cpus: None,
            mem_mib: None,
        };
        let a: Vec<_> = (0..40).map(|i| draw(&settings, i, &mix)).collect();
        let b: Vec<_> = (0..40).map(|i| draw(&settings, i, &mix)).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|(t, _)| *t == 0) && a.iter().any(|(t, _)| *t == 1));
        assert!(a.iter().any(|(_, s)| s.scenario.name() == "oom-stall"));
        let (t, s) = a
            .iter()
            .find(|(_, s)| s.scenario.name() == "oom-stall")
            .unwrap();
        assert_eq!(s.guest.mem_mib, OOM_STALL_MEM_MIB);
        assert_eq!(s.kernel.variant, targets[*t].variant);
        assert_ne!(a[0].1.seed, a[1].1.seed);
        assert_eq!(targets[1].label(), "7.3 variant warn-once-only");
        settings.cpus = Some(4);
        assert_eq!(draw(&settings, 0, &mix).1.guest.cpus, 4);
    }

    #[test]
    fn bad_mix_is_a_clear_error() {
        let e = parse_mix(&["no-such-scenario".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a scenario of this driver"), "{e}");
        assert!(parse_mix(&[]).is_err());
    }
}
