//! The meets options `thp-race` and `pairs` share, one struct flattened
//! into both (on the command line and in the spec's JSON, where its fields
//! sit beside the scenario's own).

use crate::meets::{MeetsPlan, DEFAULT_DUTY_PCT, SAMPLE_PERIOD_MS};
use serde::{Deserialize, Serialize};

#[derive(clap::Args, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeetsArgs {
    /// Disarm mmrace.ko's meets probes for the run (meets_enable=0): to
    /// measure what counting meets costs; `pairs` then steers round-robin
    /// over the least run.
    #[arg(long)]
    pub no_meets: bool,
    /// Percent of the run the meets probes are armed, from the start of
    /// every `--meets-period-s` (0: off, 100: the whole run); the meets are
    /// then a sample, and `pairs` steers by the slices that ran wholly
    /// armed.
    #[arg(long, default_value_t = DEFAULT_DUTY_PCT, value_name = "PCT",
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub meets_duty: u8,
    /// The sampling period of `--meets-duty`, in seconds: the probes
    /// are armed for its first PCT %. 0 (the default): the whole run, so
    /// the probes are armed once, for the run's first PCT %.
    #[arg(long, default_value_t = SAMPLE_PERIOD_MS / 1000, value_name = "S",
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub meets_period_s: u64,
    /// Do not count alias overlaps (mmrace.ko's `meets_alias` parameter
    /// off): to measure what counting them costs; meets and near meets are
    /// counted as before.
    /// (Left out of the JSON when off: the spec rides on the kernel
    /// command line, which has little room.)
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub meets_no_alias: bool,
}

crate::spec::clap_default!(MeetsArgs);

impl MeetsArgs {
    /// When the run arms the meets probes.
    pub fn plan(&self) -> MeetsPlan {
        MeetsPlan::of(self.no_meets, self.meets_duty, self.meets_period_s)
    }

    /// The option words that give these options (only those that differ
    /// from the defaults).
    pub fn to_words(&self) -> Vec<String> {
        let d = MeetsArgs::default();
        let mut w = Vec::new();
        if self.no_meets {
            w.push("--no-meets".to_string());
        }
        if self.meets_duty != d.meets_duty {
            w.extend(["--meets-duty".to_string(), self.meets_duty.to_string()]);
        }
        if self.meets_no_alias {
            w.push("--meets-no-alias".to_string());
        }
        if self.meets_period_s != d.meets_period_s {
            w.extend([
                "--meets-period-s".to_string(),
                self.meets_period_s.to_string(),
            ]);
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Outer {
        #[arg(long)]
        own: bool,
        #[command(flatten)]
        #[serde(flatten)]
        meets: MeetsArgs,
    }

    #[test]
    fn flattened_it_keeps_the_json_flat_and_refuses_unknown_keys() {
        use clap::Parser as _;
        let o = Outer::parse_from(["x", "--own", "--meets-duty", "50", "--no-meets"]);
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(
            json,
            r#"{"own":true,"no_meets":true,"meets_duty":50,"meets_period_s":0}"#
        );
        assert_eq!(serde_json::from_str::<Outer>(&json).unwrap(), o);
        let partial: Outer = serde_json::from_str(r#"{"meets_duty":30}"#).unwrap();
        assert_eq!((partial.own, partial.meets.meets_duty), (false, 30));
        assert_eq!(
            partial.meets.meets_period_s,
            MeetsArgs::default().meets_period_s
        );
        assert!(serde_json::from_str::<Outer>(r#"{"bogus":1}"#).is_err());
        assert_eq!(o.meets.to_words(), ["--no-meets", "--meets-duty", "50"]);
        assert_eq!(o.meets.plan(), MeetsPlan::Off);
        let n = Outer::parse_from(["x", "--meets-no-alias"]);
        assert!(n.meets.meets_no_alias);
        assert_eq!(n.meets.to_words(), ["--meets-no-alias"]);
    }
}
