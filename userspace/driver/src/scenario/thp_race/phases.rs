//! `--phase-ms`: swarm testing over time. Every phase the seed draws a
//! random subset of the enabled parties (each on with probability 1/2, at
//! least two), and only those run until the next phase; the others idle.
//! On two vCPUs every party that runs takes time slices from the others
//! (the racers above all, who need both vCPUs at once), so all parties at
//! once hit each path less often than a few at a time; and, as in swarm
//! testing (Groce et al., ISSTA 2012), some bugs need a party to be absent.
//! A run of several phases still meets every party.
//!
//! The active set lives in a shared page (a bit per party) that the driver's
//! party threads and the writer child's threads both read. The writer's
//! memset and the kill/restart cycle always run (they are the seed's).

use crate::shared::slots::SharedSlots;
use mmrace_proto::results::thp_race::Phase;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The parties phases switch, in bit order: first those of the writer
/// child, then those the driver runs in its own threads
/// ([`driver_parties`]).
pub const NAMES: [&str; 10] = [
    "racers",
    "refault",
    "churn",
    "fork",
    "clear_refs",
    "migrate",
    "splitter",
    "proc_walk",
    "move_pages",
    "madvise",
];

/// The parties the driver runs in its own threads, each with its own
/// error and op statistics: the tail of [`NAMES`].
pub fn driver_parties() -> &'static [&'static str] {
    &NAMES[4..]
}

/// How often an idle party looks again.
const IDLE: Duration = Duration::from_millis(5);

/// The active set, shared with the writer child. Cloning shares it.
#[derive(Clone)]
pub struct Phases(Arc<SharedSlots>);

impl std::fmt::Debug for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Phases({:#x})", self.mask())
    }
}

impl PartialEq for Phases {
    fn eq(&self, other: &Phases) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Phases {}

fn bit(name: &str) -> Option<u64> {
    // Extra migrate threads ("migrate1"...) follow "migrate".
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
    NAMES.iter().position(|n| *n == base).map(|i| 1 << i)
}

impl Phases {
    /// Every party active until the first [`Phases::set`].
    pub fn new() -> anyhow::Result<Phases> {
        let p = Phases(Arc::new(SharedSlots::new(1)?));
        p.0.get(0).store(u64::MAX, Ordering::Relaxed);
        Ok(p)
    }

    pub fn mask(&self) -> u64 {
        self.0.get(0).load(Ordering::Relaxed)
    }

    pub fn set(&self, mask: u64) {
        self.0.get(0).store(mask, Ordering::Relaxed);
    }

    /// Whether `name` may run now (parties phases do not know always may).
    pub fn active(&self, name: &str) -> bool {
        bit(name).is_none_or(|b| self.mask() & b != 0)
    }

    /// Waits until `name` may run; false when `give_up` says so first.
    pub fn wait(&self, name: &str, mut give_up: impl FnMut() -> bool) -> bool {
        while !self.active(name) {
            if give_up() {
                return false;
            }
            std::thread::sleep(IDLE);
        }
        true
    }
}

/// Waits for `name`'s phase when there are phases.
pub fn wait(phases: Option<&Phases>, name: &str, give_up: impl FnMut() -> bool) -> bool {
    phases.is_none_or(|p| p.wait(name, give_up))
}

/// Draws the next phase's active set from `enabled` (party names in
/// [`NAMES`]): each on with probability 1/2, at least two (or all of them
/// when there are fewer).
pub fn draw(rng: &mut crate::shared::rng::Rng, enabled: &[&'static str]) -> Vec<&'static str> {
    if enabled.len() <= 2 {
        return enabled.to_vec();
    }
    loop {
        let on: Vec<&'static str> = enabled
            .iter()
            .copied()
            .filter(|_| rng.below(2) == 0)
            .collect();
        if on.len() >= 2 {
            return on;
        }
    }
}

/// The mask of a set of names.
pub fn mask_of(names: &[&str]) -> u64 {
    names.iter().filter_map(|n| bit(n)).fold(0, |m, b| m | b)
}

/// The record of one phase.
pub fn record(t_ms: u64, on: &[&str]) -> Phase {
    Phase {
        t_ms,
        active: on.iter().map(|s| s.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::rng::Rng;

    #[test]
    fn masks_gate_named_parties_only() {
        let p = Phases::new().unwrap();
        assert!(p.active("racers") && p.active("writer"));
        p.set(mask_of(&["migrate", "proc_walk"]));
        assert!(p.active("migrate") && p.active("migrate2") && p.active("proc_walk"));
        assert!(!p.active("racers") && !p.active("madvise"));
        assert!(p.active("writer"), "the writer is never switched off");
        let mut n = 0;
        assert!(!p.wait("racers", || {
            n += 1;
            n > 1
        }));
        assert!(wait(None, "racers", || true));
    }

    #[test]
    fn draws_are_replayable_subsets_of_at_least_two() {
        let enabled = ["racers", "clear_refs", "migrate", "fork", "madvise"];
        let mut a = Rng::stream(4, "phases", 0);
        let mut b = Rng::stream(4, "phases", 0);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let on = draw(&mut a, &enabled);
            assert_eq!(on, draw(&mut b, &enabled));
            assert!(on.len() >= 2 && on.iter().all(|n| enabled.contains(n)));
            seen.insert(on);
        }
        assert!(seen.len() > 15, "{}", seen.len());
        assert_eq!(draw(&mut a, &["racers"]), ["racers"]);
        // The child shares the page.
        let p = Phases::new().unwrap();
        p.set(0);
        // SAFETY: the child only reads an atomic and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = if p.active("racers") { 1 } else { 0 };
            // SAFETY: ends the forked test child.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }
}
