//! The `--amplify` value of thp-race: race-window amplification through
//! mmrace.ko's `inject/` knobs, e.g. `delay_us=200,every_nth=1`. The driver
//! arms and disarms the knobs (`scenario::thp_race::amplify`); this is the
//! typed value both sides agree on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The knobs, in the order they are written (`delay_us` last: it arms).
pub const KNOBS: [&str; 3] = ["every_nth", "probability_pct", "delay_us"];

/// The parsed `--amplify` value: knob name to value. In a RunSpec it is
/// the same text as on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Spec(pub BTreeMap<String, u64>);

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut m = BTreeMap::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: want KNOB=VALUE"))?;
            if !KNOBS.contains(&k) {
                return Err(format!("unknown knob {k:?} (knobs: {})", KNOBS.join(", ")));
            }
            let v: u64 = v
                .parse()
                .map_err(|_| format!("{k}={v:?}: not a whole number"))?;
            m.insert(k.to_string(), v);
        }
        if m.get("delay_us").copied().unwrap_or(0) == 0 {
            return Err("delay_us must be set and above 0 (e.g. delay_us=200,every_nth=1)".into());
        }
        if m.get("every_nth").copied().unwrap_or(0) == 0
            && m.get("probability_pct").copied().unwrap_or(0) == 0
        {
            return Err(
                "set every_nth or probability_pct too: with both 0 nothing is delayed".into(),
            );
        }
        Ok(Spec(m))
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.write_str(&items.join(","))
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

    #[test]
    fn parses_specs() {
        let s: Spec = "delay_us=200,every_nth=1".parse().unwrap();
        assert_eq!(s.0["delay_us"], 200);
        assert_eq!(s.0["every_nth"], 1);
        let s: Spec = " delay_us=5 , probability_pct=50 ".parse().unwrap();
        assert_eq!(s.0["probability_pct"], 50);
        for bad in [
            "",
            "delay_us=0,every_nth=1",
            "delay_us=200",
            "delay=200,every_nth=1",
            "delay_us=-1,every_nth=1",
            "delay_us,every_nth=1",
            "delay_us=1e3,every_nth=1",
        ] {
            assert!(bad.parse::<Spec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn text_round_trip() {
        let s: Spec = "every_nth=3,delay_us=20".parse().unwrap();
        assert_eq!(s.to_string().parse::<Spec>().unwrap(), s);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"delay_us=20,every_nth=3\"");
        assert_eq!(serde_json::from_str::<Spec>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Spec>("\"delay_us=0\"").is_err());
    }
}
