//! The oracles' shared vocabulary: the stamp every verified 4 KiB page or
//! file record carries, the corruption report the driver sends when a stamp
//! is wrong, and the kernel's taint flags.
//!
//! One stamp format for every scenario (the thp-race writer's region, the
//! racers' region, smoke's pages, oom-stall's file records), so one verifier
//! decodes them all and the host prints them the same way.
//!
//! A stamp is the first [`STAMP_WORDS`] 64-bit words of its page:
//!
//! | word | holds |
//! | --- | --- |
//! | 0 | `MAGIC << 48 \| region << 32 \| page index` |
//! | 1 | generation (the writer's pass, the racers' round, the oom round) |
//! | 2 | `check(word0, word1)`: tells a torn or scribbled stamp apart |
//! | 3 | the fill word, repeated: the page's last word must equal it |
//!
//! The rest of the page is filled with the byte `fill_byte(generation)`
//! (a plain memset, so a stamped writer keeps the seed's store pattern), and
//! the page's last word must read back as that byte repeated: a page whose
//! head was restored but whose tail was not (or the reverse) is caught too.
//! A page that reads all zero is [`Found::Zero`]: never written, or zapped.

use serde::{Deserialize, Serialize};

/// Bytes per stamped unit: one base page, one file record.
pub const UNIT: usize = 4096;
/// Words at the start of a unit that form its stamp.
pub const STAMP_WORDS: usize = 4;
/// Word 0's top 16 bits.
pub const MAGIC: u64 = 0x6d72; // "mr"

/// The regions stamps name (word 0 bits 32..48).
pub mod region {
    /// thp-race: the seed's writer mapping.
    pub const WRITER: u16 = 1;
    /// thp-race: the racers' region.
    pub const RACERS: u16 = 2;
    /// smoke: its THP pages.
    pub const SMOKE: u16 = 3;
    /// oom-stall: records of file writer 0 (writer 1 is `OOM_FILE + 1`).
    pub const OOM_FILE: u16 = 4;
    /// pairs: the round's object (writer 1 of oom-stall is 5).
    pub const PAIRS: u16 = 6;

    pub fn name(r: u16) -> String {
        match r {
            WRITER => "thp-race writer".into(),
            RACERS => "thp-race racers".into(),
            SMOKE => "smoke".into(),
            r if r == OOM_FILE || r == OOM_FILE + 1 => {
                format!("oom-stall file writer {}", r - OOM_FILE)
            }
            PAIRS => "pairs object".into(),
            r => format!("region {r}"),
        }
    }
}

/// What a unit should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub region: u16,
    /// Page index in the region (record index for a file writer).
    pub page: u32,
    pub generation: u64,
}

/// splitmix64's finaliser: every input bit moves every output bit.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn check(w0: u64, w1: u64) -> u64 {
    mix(w0 ^ mix(w1)) | 1 // never 0, so a zero page is never a valid stamp
}

/// The byte the rest of a unit of this generation is filled with. Never 0.
pub fn fill_byte(generation: u64) -> u8 {
    (generation % 255) as u8 + 1
}

/// `fill_byte` repeated over a word.
pub fn fill_word(generation: u64) -> u64 {
    u64::from_ne_bytes([fill_byte(generation); 8])
}

impl Stamp {
    /// The stamp words.
    pub fn words(&self) -> [u64; STAMP_WORDS] {
        let w0 = (MAGIC << 48) | (u64::from(self.region) << 32) | u64::from(self.page);
        let w1 = self.generation;
        [w0, w1, check(w0, w1), fill_word(self.generation)]
    }
}

/// What a unit held, decoded from its stamp words and its last word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Found {
    /// A whole, valid stamp (which may still be the wrong one).
    Stamp(Stamp),
    /// All stamp words and the last word zero.
    Zero,
    /// Anything else: torn, half-written, scribbled over. The raw words.
    Garbage {
        words: [u64; STAMP_WORDS],
        last: u64,
    },
}

impl Found {
    /// Decodes a unit from its first words and its last word.
    pub fn decode(words: [u64; STAMP_WORDS], last: u64) -> Found {
        if words == [0; STAMP_WORDS] && last == 0 {
            return Found::Zero;
        }
        let [w0, w1, w2, w3] = words;
        if w0 >> 48 == MAGIC && w2 == check(w0, w1) && w3 == fill_word(w1) && last == w3 {
            return Found::Stamp(Stamp {
                region: ((w0 >> 32) & 0xffff) as u16,
                page: w0 as u32,
                generation: w1,
            });
        }
        Found::Garbage { words, last }
    }

    pub fn describe(&self) -> String {
        match self {
            Found::Stamp(s) => s.describe(),
            Found::Zero => "zero".into(),
            Found::Garbage { words, last } => format!(
                "garbage {:#x} {:#x} {:#x} {:#x} .. {:#x}",
                words[0], words[1], words[2], words[3], last
            ),
        }
    }
}

impl Stamp {
    pub fn describe(&self) -> String {
        format!(
            "{} page {} generation {}",
            region::name(self.region),
            self.page,
            self.generation
        )
    }
}

/// What a unit must hold at a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Expected {
    Stamp(Stamp),
    /// Zapped or never written: all zero.
    Zero,
}

impl Expected {
    pub fn matches(&self, found: &Found) -> bool {
        match (self, found) {
            (Expected::Stamp(e), Found::Stamp(f)) => e == f,
            (Expected::Zero, Found::Zero) => true,
            _ => false,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Expected::Stamp(s) => s.describe(),
            Expected::Zero => "zero".into(),
        }
    }
}

/// One recent operation of a party, for a corruption report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentOp {
    /// Guest ms (driver time) when the operation started.
    pub t_ms: u64,
    pub op: String,
    /// The address or page it worked on (0: the whole region / process).
    pub addr: u64,
}

/// A stamp that did not read back as expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corruption {
    /// Guest ms (driver time) of the check that failed.
    pub t_ms: u64,
    /// Which check: `writer-pass`, `racer-round`, `smoke`, `oom-file`...
    pub check: String,
    pub region: String,
    /// Virtual address of the unit (byte offset in the file for records).
    pub vaddr: u64,
    /// Page (record) index in the region.
    pub page: u64,
    pub expected: Expected,
    pub found: Found,
    /// The last operations of every party, newest last, by party.
    pub recent_ops: std::collections::BTreeMap<String, Vec<RecentOp>>,
    /// What the check was in the middle of (pairs: the pair, the object
    /// kind and the round).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl Corruption {
    /// One line: where, what was expected and what was found.
    pub fn line(&self) -> String {
        let context = self
            .context
            .as_ref()
            .map_or_else(String::new, |c| format!(" [{c}]"));
        format!(
            "{}{context} at {:#x} (page {}) in {}: expected {}, found {} (guest {:.3} s)",
            self.check,
            self.vaddr,
            self.page,
            self.region,
            self.expected.describe(),
            self.found.describe(),
            self.t_ms as f64 / 1000.0
        )
    }
}

/// A stall the driver itself saw (the kernel printed nothing yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StallKind {
    /// An OOM victim was not gone long after the kill: the OOM killer
    /// waits for it and kills nothing else.
    OomDeadlock,
    /// No OOM kill came within the round's time under pressure, and the
    /// victim, SIGKILLed by the driver, was not gone long after: a task
    /// with a fatal signal stuck in the kernel while memory is short (not
    /// an OOM victim, so no reserves and no reaper help it).
    KilledNotGone,
}

impl StallKind {
    /// The verdict class.
    pub fn class(self) -> &'static str {
        match self {
            StallKind::OomDeadlock => "oom-deadlock",
            StallKind::KilledNotGone => "killed-not-gone",
        }
    }
}

/// The data oracle's totals for a run (in the Result's data and sent with
/// the last corruption count).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSummary {
    /// Units checked, all checks together.
    pub verified: u64,
    /// Mismatches found; only the first [`MAX_REPORTED`] are sent in full.
    pub mismatches: u64,
    pub reported: u64,
}

/// Corruption messages sent in full per run; the rest are counted.
pub const MAX_REPORTED: usize = 8;

/// The kernel's taint flags (Documentation/admin-guide/tainted-kernels.rst):
/// bit, letter, meaning.
pub const TAINT_FLAGS: [(u32, char, &str); 20] = [
    (0, 'P', "proprietary module was loaded"),
    (1, 'F', "module was force loaded"),
    (2, 'S', "kernel running on an out of specification system"),
    (3, 'R', "module was force unloaded"),
    (4, 'M', "processor reported a Machine Check Exception (MCE)"),
    (5, 'B', "bad page referenced or some unexpected page flags"),
    (6, 'U', "taint requested by userspace application"),
    (
        7,
        'D',
        "kernel died recently, i.e. there was an OOPS or BUG",
    ),
    (8, 'A', "an ACPI table was overridden by user"),
    (9, 'W', "kernel issued warning"),
    (10, 'C', "staging driver was loaded"),
    (11, 'I', "workaround for bug in platform firmware applied"),
    (
        12,
        'O',
        "externally-built (\"out-of-tree\") module was loaded",
    ),
    (13, 'E', "unsigned module was loaded"),
    (14, 'L', "soft lockup occurred"),
    (15, 'K', "kernel has been live patched"),
    (16, 'X', "auxiliary taint, defined for and used by distros"),
    (
        17,
        'T',
        "kernel was built with the struct randomization plugin",
    ),
    (18, 'N', "an in-kernel test has been run"),
    (
        19,
        'J',
        "userspace used a mutating debug operation in fwctl",
    ),
];

/// Taint bits that loading mmrace.ko itself sets: not findings. O and E
/// (an out-of-tree, unsigned module), and N: on a kernel with KUnit, the
/// kernel runs the module's own test suites when it loads.
pub const TAINT_EXPECTED: u64 = (1 << 12) | (1 << 13) | (1 << 18);

/// `W D` style letters of the set bits (unknown bits as `bit N`).
pub fn taint_letters(mask: u64) -> String {
    let mut out: Vec<String> = Vec::new();
    for bit in 0..64u32 {
        if mask & (1 << bit) == 0 {
            continue;
        }
        match TAINT_FLAGS.iter().find(|(b, _, _)| *b == bit) {
            Some((_, c, _)) => out.push(c.to_string()),
            None => out.push(format!("bit{bit}")),
        }
    }
    out.join(" ")
}

/// Each set bit with its meaning: `W (kernel issued warning)`.
pub fn taint_describe(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|b| mask & (1 << b) != 0)
        .map(|bit| match TAINT_FLAGS.iter().find(|(b, _, _)| *b == bit) {
            Some((_, c, m)) => format!("{c} ({m})"),
            None => format!("bit {bit} (unknown to this mmrace)"),
        })
        .collect()
}

/// Taint bits in `now` that were not in `base`, minus the expected O, E and N.
pub fn new_taint(base: u64, now: u64) -> u64 {
    now & !base & !TAINT_EXPECTED
}

/// The taint oracle's judgement of a run, from the masks its snapshots
/// carried: the first snapshot is the baseline (taken right after
/// mmrace.ko loaded), each later one is compared with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaintReport {
    /// The mask at the first snapshot that had one.
    pub start: Option<u64>,
    /// The mask at the last snapshot that had one.
    pub end: Option<u64>,
    /// Bits set since the start, other than O, E and N; 0 when none.
    pub new: u64,
    /// `new` as letters (`W`, `D W`...).
    pub letters: String,
    /// `new` bit by bit with the kernel's meaning.
    pub flags: Vec<String>,
    /// Guest ms of the first snapshot that showed a new bit.
    pub first_t_ms: Option<u64>,
}

impl TaintReport {
    /// From `(t_ms, mask)` of every snapshot, in order (None: unreadable).
    pub fn from_snapshots(masks: impl IntoIterator<Item = (u64, Option<u64>)>) -> TaintReport {
        let mut r = TaintReport::default();
        for (t_ms, mask) in masks {
            let Some(m) = mask else { continue };
            let base = *r.start.get_or_insert(m);
            r.end = Some(m);
            let new = new_taint(base, m);
            if new != 0 && r.first_t_ms.is_none() {
                r.first_t_ms = Some(t_ms);
            }
            r.new |= new;
        }
        r.letters = taint_letters(r.new);
        r.flags = taint_describe(r.new);
        r
    }

    /// One line for the verdict's reason.
    pub fn line(&self) -> String {
        format!(
            "the kernel became tainted {} ({}) at guest {:.1} s",
            self.letters,
            self.flags.join(", "),
            self.first_t_ms.unwrap_or(0) as f64 / 1000.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(stamp: &Stamp) -> ([u64; STAMP_WORDS], u64) {
        let w = stamp.words();
        (w, w[3])
    }

    #[test]
    fn stamps_round_trip_and_zero_is_not_a_stamp() {
        let s = Stamp {
            region: region::RACERS,
            page: 511,
            generation: 77,
        };
        let (w, last) = unit(&s);
        assert_eq!(Found::decode(w, last), Found::Stamp(s));
        assert!(Expected::Stamp(s).matches(&Found::decode(w, last)));
        assert_eq!(Found::decode([0; 4], 0), Found::Zero);
        assert!(Expected::Zero.matches(&Found::Zero));
        assert!(!Expected::Zero.matches(&Found::Stamp(s)));
        // An older generation is a valid stamp, but not the expected one.
        let old = Stamp {
            generation: 76,
            ..s
        };
        let (w, last) = unit(&old);
        assert!(!Expected::Stamp(s).matches(&Found::decode(w, last)));
        for g in 0..1000 {
            assert_ne!(fill_byte(g), 0);
        }
    }

    #[test]
    fn torn_units_are_garbage() {
        let s = Stamp {
            region: region::WRITER,
            page: 3,
            generation: 9,
        };
        let (mut w, last) = unit(&s);
        // Tail from an older pass: head restored, tail not.
        assert!(matches!(
            Found::decode(w, fill_word(8)),
            Found::Garbage { .. }
        ));
        // Tail zero (a half-copied page).
        assert!(matches!(Found::decode(w, 0), Found::Garbage { .. }));
        // One flipped bit in the generation.
        w[1] ^= 4;
        assert!(matches!(Found::decode(w, last), Found::Garbage { .. }));
        assert!(Found::decode(w, last).describe().starts_with("garbage"));
    }

    #[test]
    fn taint_letters_follow_the_kernel_table() {
        assert_eq!(taint_letters(0), "");
        assert_eq!(taint_letters((1 << 9) | (1 << 7)), "D W");
        assert_eq!(taint_letters(TAINT_EXPECTED), "O E N");
        assert_eq!(taint_letters(1 << 40), "bit40");
        assert_eq!(new_taint(0, TAINT_EXPECTED | (1 << 9)), 1 << 9);
        assert_eq!(new_taint(1 << 9, 1 << 9), 0);
        assert_eq!(taint_describe(1 << 14), ["L (soft lockup occurred)"]);
        let r = TaintReport::from_snapshots([
            (0, None),
            (1000, Some(TAINT_EXPECTED)),
            (2000, Some(TAINT_EXPECTED)),
            (3000, Some(TAINT_EXPECTED | (1 << 9))),
            (4000, Some(TAINT_EXPECTED | (1 << 9))),
        ]);
        assert_eq!(
            (r.new, r.first_t_ms, r.letters.as_str()),
            (1 << 9, Some(3000), "W")
        );
        assert!(
            r.line().contains("W (kernel issued warning)"),
            "{}",
            r.line()
        );
        // Present from the start (a boot-time WARN): not this run's doing.
        let r = TaintReport::from_snapshots([(1, Some(1 << 9)), (2, Some(1 << 9))]);
        assert_eq!(r.new, 0);
        // Bits in order and unique.
        for (i, (b, _, _)) in TAINT_FLAGS.iter().enumerate() {
            assert_eq!(*b as usize, i);
        }
    }
}
