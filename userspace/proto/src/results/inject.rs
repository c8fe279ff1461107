//! What an amplified run reports about mmrace.ko's injection points: the
//! points armed and skipped, and the module's `inject/points` lines.

use crate::spec::amplify::{Knobs, Spec};
use serde::{Deserialize, Serialize};

/// Which `--amplify` item asked for a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// An item without `at=`: the built-in point, with the global knobs.
    Builtin,
    At,
    Random,
}

/// A point the run armed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmedPoint {
    /// `SYMBOL[+0xOFFSET]`, as in `inject/points`.
    pub point: String,
    pub from: Origin,
    #[serde(flatten)]
    pub knobs: Knobs,
}

/// A `random` point the module refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedPoint {
    pub point: String,
    /// The errno's name, e.g. `ENOENT`.
    pub errno: String,
    /// What the errno means here.
    pub why: String,
}

/// A point's state in `inject/points`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointState {
    /// Its handler runs.
    Armed,
    /// The built-in point while the global `delay_us` is 0.
    Idle,
    /// The built-in point could not be registered on this kernel.
    Failed,
}

/// One line of mmrace.ko's `inject/points`:
/// `NAME STATE [ERRNO] CALLS DELAYS delay_us=N every_nth=N probability_pct=N`
/// (ERRNO only after `failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointRow {
    pub point: String,
    pub state: PointState,
    /// The registration error of a `failed` point (negative).
    pub errno: Option<i32>,
    /// Calls seen while armed.
    pub calls: u64,
    /// Those that were delayed.
    pub delays: u64,
    #[serde(flatten)]
    pub knobs: Knobs,
}

impl PointRow {
    /// Reads one line; `None` for a line of another shape.
    pub fn parse(line: &str) -> Option<PointRow> {
        let mut w = line.split_whitespace();
        let point = w.next()?.to_string();
        let (state, errno) = match w.next()? {
            "armed" => (PointState::Armed, None),
            "idle" => (PointState::Idle, None),
            "failed" => (PointState::Failed, Some(w.next()?.parse().ok()?)),
            _ => return None,
        };
        let calls = w.next()?.parse().ok()?;
        let delays = w.next()?.parse().ok()?;
        let mut knobs = Knobs::default();
        for kv in w {
            let (k, v) = kv.split_once('=')?;
            knobs.set(k, v.parse().ok()?);
        }
        Some(PointRow {
            point,
            state,
            errno,
            calls,
            delays,
            knobs,
        })
    }
}

/// thp-race's `amplify` result: what `--amplify` asked for and got, and
/// the points' counts at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmplifyReport {
    pub spec: Spec,
    pub armed: Vec<ArmedPoint>,
    pub skipped: Vec<SkippedPoint>,
    /// `inject/points` at the end of the run, before disarming.
    pub points: Vec<PointRow>,
}

impl AmplifyReport {
    /// Armed points that saw calls.
    pub fn hit(&self) -> usize {
        self.points
            .iter()
            .filter(|p| p.state == PointState::Armed && p.calls > 0)
            .count()
    }

    /// Calls delayed, all points together.
    pub fn delays(&self) -> u64 {
        self.points.iter().map(|p| p.delays).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_points_lines() {
        let r = PointRow::parse(
            "__split_huge_pmd armed 1234 56 delay_us=1000 every_nth=1 probability_pct=0",
        )
        .unwrap();
        assert_eq!(
            (r.point.as_str(), r.state, r.errno, r.calls, r.delays),
            ("__split_huge_pmd", PointState::Armed, None, 1234, 56)
        );
        assert_eq!((r.knobs.delay_us, r.knobs.every_nth), (1000, 1));
        let r = PointRow::parse(
            "__split_huge_pmd failed -2 0 0 delay_us=0 every_nth=0 probability_pct=0",
        )
        .unwrap();
        assert_eq!((r.state, r.errno), (PointState::Failed, Some(-2)));
        let r = PointRow::parse(
            "zap_huge_pmd+0x10 idle 9 1 delay_us=50 every_nth=0 probability_pct=10",
        )
        .unwrap();
        assert_eq!(
            (r.point.as_str(), r.state, r.knobs.probability_pct),
            ("zap_huge_pmd+0x10", PointState::Idle, 10)
        );
        for bad in [
            "zap_huge_pmd armed x 1",
            "zap_huge_pmd busy 1 1",
            "",
            "x armed 1 1 d",
        ] {
            assert!(PointRow::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = AmplifyReport {
            spec: "random".parse().unwrap(),
            armed: vec![ArmedPoint {
                point: "zap_huge_pmd".into(),
                from: Origin::Random,
                knobs: crate::spec::amplify::RANDOM_DEFAULT,
            }],
            skipped: vec![SkippedPoint {
                point: "unmap_folio".into(),
                errno: "ENOENT".into(),
                why: "no such symbol on this kernel".into(),
            }],
            points: vec![PointRow::parse(
                "zap_huge_pmd armed 9 1 delay_us=20 every_nth=0 probability_pct=5",
            )
            .unwrap()],
        };
        assert_eq!((r.hit(), r.delays()), (1, 1));
        let mut idle = r.clone();
        idle.points.push(
            PointRow::parse("__split_huge_pmd idle 5 2 delay_us=0 every_nth=0 probability_pct=0")
                .unwrap(),
        );
        idle.points.push(
            PointRow::parse("move_huge_pmd armed 0 0 delay_us=1 every_nth=1 probability_pct=0")
                .unwrap(),
        );
        assert_eq!((idle.hit(), idle.delays()), (1, 3));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["armed"][0]["from"], "random");
        assert_eq!(json["armed"][0]["delay_us"], 20);
        assert_eq!(json["points"][0]["state"], "armed");
        assert_eq!(serde_json::from_value::<AmplifyReport>(json).unwrap(), r);
    }
}
