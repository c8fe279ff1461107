//! The `--amplify` value of thp-race: race-window amplification through
//! mmrace.ko's injection points (debugfs `inject/`). The driver arms and
//! disarms them (the driver's `inject` module); this is the typed value.
//!
//! The value is one or more items separated by `;`, each a comma-separated
//! list of `KEY=VALUE` words:
//!
//! - `delay_us=1000,every_nth=1`: the built-in point, the entry of
//!   `__split_huge_pmd()` (the unlocked window before the page-table lock),
//!   with the module's global knobs;
//! - `at=SYMBOL[+OFFSET],delay_us=50,probability_pct=10`: a point at any
//!   kernel function (OFFSET in bytes, decimal or `0x` hex), with its own
//!   knobs;
//! - `op=OP,delay_us=50,every_nth=1`: a point at the entry of an operation
//!   of the module's table (`mmrace_ops.h`, [`crate::ops`]), which is
//!   `at=` its kernel function (`op=pmd_split` is `at=__split_huge_pmd`);
//! - `random[,delay_us=N][,probability_pct=N][,every_nth=N]`: short delays
//!   (default `delay_us=20,probability_pct=5`) at each function of the
//!   driver's curated list of mm functions the parties hit
//!   (`inject::RANDOM_POINTS`), in the style of KCSAN's randomised udelay.
//!
//! e.g. `random;at=zap_huge_pmd,delay_us=50,probability_pct=10`. Each item
//! delays a call by `delay_us` microseconds when `every_nth` (every Nth
//! call) or `probability_pct` (a chance per call) picks it, so `delay_us`
//! and one of the two must be above 0. The module caps the knobs (and
//! refuses values over the cap). Neither `;`, `,`, `=` nor `+` needs
//! quoting on a kernel command line.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The knobs, in the order they are written (`delay_us` last: it arms).
pub const KNOBS: [&str; 3] = ["every_nth", "probability_pct", "delay_us"];

/// `random`'s knobs when the item leaves them out.
pub const RANDOM_DEFAULT: Knobs = Knobs {
    delay_us: 20,
    every_nth: 0,
    probability_pct: 5,
};

/// One point's knobs, as the module's `inject/` files name them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knobs {
    pub delay_us: u64,
    pub every_nth: u64,
    pub probability_pct: u64,
}

impl Knobs {
    /// The knob called `name` (one of [`KNOBS`]).
    pub fn get(&self, name: &str) -> Option<u64> {
        match name {
            "delay_us" => Some(self.delay_us),
            "every_nth" => Some(self.every_nth),
            "probability_pct" => Some(self.probability_pct),
            _ => None,
        }
    }

    /// Sets the knob called `name`; false if there is none.
    pub fn set(&mut self, name: &str, value: u64) -> bool {
        match self.slot(name) {
            Some(k) => {
                *k = value;
                true
            }
            None => false,
        }
    }

    fn slot(&mut self, name: &str) -> Option<&mut u64> {
        match name {
            "delay_us" => Some(&mut self.delay_us),
            "every_nth" => Some(&mut self.every_nth),
            "probability_pct" => Some(&mut self.probability_pct),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.delay_us == 0 {
            return Err("delay_us must be set and above 0 (e.g. delay_us=200,every_nth=1)".into());
        }
        if self.every_nth == 0 && self.probability_pct == 0 {
            return Err(
                "set every_nth or probability_pct too: with both 0 nothing is delayed".into(),
            );
        }
        Ok(())
    }
}

/// `delay_us=N,every_nth=N,probability_pct=N`, the knobs above 0 only.
impl fmt::Display for Knobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (name, v) in [
            ("delay_us", self.delay_us),
            ("every_nth", self.every_nth),
            ("probability_pct", self.probability_pct),
        ] {
            if v > 0 {
                write!(f, "{sep}{name}={v}")?;
                sep = ",";
            }
        }
        Ok(())
    }
}

/// A kernel address by name, as `inject/add` takes it: `SYMBOL[+OFFSET]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub symbol: String,
    pub offset: u32,
}

impl Target {
    pub fn new(symbol: &str) -> Target {
        Target {
            symbol: symbol.to_string(),
            offset: 0,
        }
    }
}

impl Target {
    /// The entry of the module operation `op`: its kernel function.
    pub fn at_op(op: &str) -> Result<Target, String> {
        crate::ops::op_defs()
            .iter()
            .find(|d| d.name == op)
            .map(|d| Target::new(d.symbol))
            .ok_or_else(|| {
                format!("op={op}: not an operation of module/mmrace_ops.h (see `ops` in debugfs)")
            })
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (symbol, offset) = match s.split_once('+') {
            None => (s, 0),
            Some((sym, off)) => {
                let parsed = match off.strip_prefix("0x") {
                    Some(hex) => u32::from_str_radix(hex, 16),
                    None => off.parse(),
                };
                match parsed {
                    Ok(o) if off.starts_with(|c: char| c.is_ascii_digit()) => (sym, o),
                    _ => return Err(format!("at={s}: the offset {off:?} is not a number")),
                }
            }
        };
        // The characters kallsyms names are made of (`foo.constprop.0`).
        if symbol.is_empty()
            || !symbol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(format!(
                "at={s}: want a kernel symbol, e.g. at=zap_huge_pmd"
            ));
        }
        Ok(Target {
            symbol: symbol.to_string(),
            offset,
        })
    }
}

/// `SYMBOL` or `SYMBOL+0xOFFSET`, as the module's `inject/points` names it.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            0 => f.write_str(&self.symbol),
            o => write!(f, "{}+{o:#x}", self.symbol),
        }
    }
}

/// One `;`-separated item of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// No `at=`: the built-in point with the global knobs.
    Builtin(Knobs),
    /// `at=SYMBOL[+OFFSET]`: a point of its own.
    At(Target, Knobs),
    /// `random`: every function of the curated list, these knobs each.
    Random(Knobs),
}

impl Item {
    pub fn knobs(&self) -> &Knobs {
        match self {
            Item::Builtin(k) | Item::At(_, k) | Item::Random(k) => k,
        }
    }

    fn parse(s: &str) -> Result<Item, String> {
        let mut words = s.split(',').map(str::trim).filter(|w| !w.is_empty());
        let mut random = false;
        let mut at = None;
        let mut knobs = Knobs::default();
        let mut seen = Vec::new();
        if s.trim_start().starts_with("random") {
            match words.next() {
                Some("random") => random = true,
                w => return Err(format!("{w:?}: `random` takes knobs after a comma")),
            }
        }
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("{w:?}: want KNOB=VALUE, at=SYMBOL or op=OP"))?;
            if seen.contains(&k)
                || (k == "at" && seen.contains(&"op"))
                || (k == "op" && seen.contains(&"at"))
            {
                return Err(format!("{k} given twice, or with at=/op=, in {s:?}"));
            }
            seen.push(k);
            if k == "at" || k == "op" {
                if random {
                    return Err(format!("{s:?}: `random` picks its own points, no {k}="));
                }
                at = Some(match k {
                    "at" => v.parse::<Target>()?,
                    _ => Target::at_op(v)?,
                });
                continue;
            }
            let slot = knobs.slot(k).ok_or_else(|| {
                format!(
                    "unknown knob {k:?} (at=SYMBOL[+OFFSET], random, or knobs: {})",
                    KNOBS.join(", ")
                )
            })?;
            *slot = v
                .parse()
                .map_err(|_| format!("{k}={v:?}: not a whole number"))?;
        }
        if random {
            if !seen.contains(&"delay_us") {
                knobs.delay_us = RANDOM_DEFAULT.delay_us;
            }
            if !seen.contains(&"every_nth") && !seen.contains(&"probability_pct") {
                knobs.probability_pct = RANDOM_DEFAULT.probability_pct;
            }
        }
        knobs.check()?;
        Ok(match (random, at) {
            (true, _) => Item::Random(knobs),
            (false, Some(t)) => Item::At(t, knobs),
            (false, None) => Item::Builtin(knobs),
        })
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Builtin(k) => write!(f, "{k}"),
            Item::At(t, k) => write!(f, "at={t},{k}"),
            Item::Random(k) => write!(f, "random,{k}"),
        }
    }
}

/// The parsed `--amplify` value, its items in the order given. In a
/// RunSpec it is the same text as on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Spec(pub Vec<Item>);

impl Spec {
    /// The built-in point's knobs, if an item sets them.
    pub fn builtin(&self) -> Option<&Knobs> {
        self.0.iter().find_map(|i| match i {
            Item::Builtin(k) => Some(k),
            _ => None,
        })
    }

    /// The `at=` points, in the order given.
    pub fn at(&self) -> impl Iterator<Item = (&Target, &Knobs)> {
        self.0.iter().filter_map(|i| match i {
            Item::At(t, k) => Some((t, k)),
            _ => None,
        })
    }

    /// The knobs of `random`, if it is asked for.
    pub fn random(&self) -> Option<&Knobs> {
        self.0.iter().find_map(|i| match i {
            Item::Random(k) => Some(k),
            _ => None,
        })
    }
}

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let items = s
            .split(';')
            .filter(|i| !i.trim().is_empty())
            .map(Item::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if items.is_empty() {
            return Err("empty: e.g. delay_us=1000,every_nth=1, or at=zap_huge_pmd,delay_us=50,probability_pct=10, or random".into());
        }
        let spec = Spec(items);
        if spec
            .0
            .iter()
            .filter(|i| matches!(i, Item::Builtin(_)))
            .count()
            > 1
        {
            return Err(
                "more than one item without at=: the built-in point has one set of knobs".into(),
            );
        }
        if spec
            .0
            .iter()
            .filter(|i| matches!(i, Item::Random(_)))
            .count()
            > 1
        {
            return Err("`random` given twice".into());
        }
        let mut targets: Vec<&Target> = spec.at().map(|(t, _)| t).collect();
        targets.sort();
        if let Some(w) = targets.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("at={} given twice", w[0]));
        }
        Ok(spec)
    }
}

/// The items joined by `;`; parses back to the same value.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, item) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(";")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

impl TryFrom<String> for Spec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Spec> for String {
    fn from(s: Spec) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs(delay_us: u64, every_nth: u64, probability_pct: u64) -> Knobs {
        Knobs {
            delay_us,
            every_nth,
            probability_pct,
        }
    }

    #[test]
    fn parses_the_builtin_point() {
        let s: Spec = "delay_us=200,every_nth=1".parse().unwrap();
        assert_eq!(s.0, [Item::Builtin(knobs(200, 1, 0))]);
        assert_eq!(s.builtin(), Some(&knobs(200, 1, 0)));
        let s: Spec = " delay_us=5 , probability_pct=50 ".parse().unwrap();
        assert_eq!(s.builtin().unwrap().probability_pct, 50);
        assert_eq!(s.builtin().unwrap().get("probability_pct"), Some(50));
        assert!(s.random().is_none() && s.at().next().is_none());
    }

    #[test]
    fn parses_points_and_random() {
        let s: Spec =
            "at=zap_huge_pmd,delay_us=50,probability_pct=10;at=move_huge_pmd+0x1a,delay_us=20,every_nth=3"
                .parse()
                .unwrap();
        let at: Vec<_> = s.at().map(|(t, k)| (t.to_string(), *k)).collect();
        assert_eq!(
            at,
            [
                ("zap_huge_pmd".to_string(), knobs(50, 0, 10)),
                ("move_huge_pmd+0x1a".to_string(), knobs(20, 3, 0)),
            ]
        );
        assert!(s.builtin().is_none());
        let t: Target = "foo.constprop.0+26".parse().unwrap();
        assert_eq!((t.symbol.as_str(), t.offset), ("foo.constprop.0", 26));
        // op= is at= the operation's kernel function.
        let s: Spec = "op=pmd_split,delay_us=50,every_nth=1".parse().unwrap();
        assert_eq!(
            s.0,
            [Item::At(Target::new("__split_huge_pmd"), knobs(50, 1, 0))]
        );
        assert_eq!(s.to_string(), "at=__split_huge_pmd,delay_us=50,every_nth=1");
        for bad in [
            "op=no_such_op,delay_us=1,every_nth=1",
            "op=pmd_split,at=zap_huge_pmd,delay_us=1,every_nth=1",
            "at=zap_huge_pmd,op=pmd_split,delay_us=1,every_nth=1",
            "random,op=pmd_split",
        ] {
            assert!(bad.parse::<Spec>().is_err(), "{bad}");
        }
        // The knobs may come before at=.
        let s: Spec = "delay_us=7,every_nth=2,at=change_huge_pmd".parse().unwrap();
        assert_eq!(
            s.0,
            [Item::At(Target::new("change_huge_pmd"), knobs(7, 2, 0))]
        );

        let s: Spec = "random".parse().unwrap();
        assert_eq!(s.random(), Some(&RANDOM_DEFAULT));
        let s: Spec = "random,delay_us=40".parse().unwrap();
        assert_eq!(s.random(), Some(&knobs(40, 0, 5)));
        let s: Spec = "random,every_nth=100".parse().unwrap();
        assert_eq!(s.random(), Some(&knobs(20, 100, 0)));
        let s: Spec = "delay_us=1000,every_nth=1;random,probability_pct=2;at=zap_huge_pmd,delay_us=9,every_nth=1"
            .parse()
            .unwrap();
        assert_eq!(s.builtin(), Some(&knobs(1000, 1, 0)));
        assert_eq!(s.random(), Some(&knobs(20, 0, 2)));
        assert_eq!(s.at().count(), 1);
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            "",
            ";",
            "delay_us=0,every_nth=1",
            "delay_us=200",
            "delay=200,every_nth=1",
            "delay_us=-1,every_nth=1",
            "delay_us,every_nth=1",
            "delay_us=1e3,every_nth=1",
            "delay_us=1,delay_us=2,every_nth=1",
            "at=,delay_us=1,every_nth=1",
            "at=zap huge,delay_us=1,every_nth=1",
            "at=zap_huge_pmd+,delay_us=1,every_nth=1",
            "at=zap_huge_pmd+x1,delay_us=1,every_nth=1",
            "at=zap_huge_pmd+-1,delay_us=1,every_nth=1",
            "at=zap_huge_pmd,at=move_huge_pmd,delay_us=1,every_nth=1",
            "at=zap_huge_pmd,delay_us=1",
            "at=zap_huge_pmd,delay_us=1,every_nth=1;at=zap_huge_pmd,delay_us=2,every_nth=1",
            "delay_us=1,every_nth=1;delay_us=2,every_nth=1",
            "random;random",
            "random,at=zap_huge_pmd",
            "randomly",
            "random,delay_us=0",
            "random,speed=3",
        ] {
            assert!(bad.parse::<Spec>().is_err(), "{bad}");
        }
        let e = "at=zap_huge_pmd,delay=3".parse::<Spec>().unwrap_err();
        assert!(e.contains("delay_us") && e.contains("at="), "{e}");
    }

    #[test]
    fn text_round_trip() {
        for text in [
            "every_nth=3,delay_us=20",
            "random",
            " at=zap_huge_pmd+16 , delay_us=5,probability_pct=1 ; random,delay_us=3 ",
        ] {
            let s: Spec = text.parse().unwrap();
            assert_eq!(s.to_string().parse::<Spec>().unwrap(), s, "{text}");
        }
        let s: Spec = "every_nth=3,delay_us=20;at=zap_huge_pmd+16,delay_us=5,every_nth=1"
            .parse()
            .unwrap();
        assert_eq!(
            s.to_string(),
            "delay_us=20,every_nth=3;at=zap_huge_pmd+0x10,delay_us=5,every_nth=1"
        );
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            "\"delay_us=20,every_nth=3;at=zap_huge_pmd+0x10,delay_us=5,every_nth=1\""
        );
        assert_eq!(serde_json::from_str::<Spec>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Spec>("\"delay_us=0\"").is_err());
        assert_eq!(
            "random".parse::<Spec>().unwrap().to_string(),
            "random,delay_us=20,probability_pct=5"
        );
    }
}
