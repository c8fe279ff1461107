//! A finding: what a run found, in the one shape every consumer keys on:
//! its class (a crash pattern's, an oracle's or a verdict's), its title,
//! the faulting frame the title names and the signature two runs share
//! when they found the same bug ([`Identity`]). The console match that
//! carries a console report's excerpt ([`crate::judge::scan::ConsoleFinding`]),
//! the verdict ([`crate::judge::verdict::Judgement`]), report.json, a
//! batch's rows and other findings ([`crate::fleet::merge`]), the matrix,
//! bisect and a hunt's findings all hold this type.
//!
//! Files keep a finding as they always did, so old ones still read back:
//! report.json as `class` and an `identity` object ([`InReport`]), a
//! merged.json row as `class`, `title`, `frame`, `signature` at its top
//! level ([`InRow`]), each null when the run found nothing.

use crate::judge::title::Identity;
use serde::{Deserialize, Deserializer, Serialize};

/// What a run found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// A crash pattern's class (`bug`, `warning`...), an oracle's
    /// (`data-corruption`, `taint`, an OOM stall's) or a verdict's (`hang`,
    /// `guest-died`, `driver-failed`...); empty where a file did not keep it.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub class: String,
    /// Title, frame and signature (empty in files written before titles).
    #[serde(flatten)]
    pub identity: Identity,
}

impl Finding {
    pub fn new(class: &str, identity: Identity) -> Finding {
        Finding {
            class: class.to_string(),
            identity,
        }
    }

    /// The title; None for a finding recorded before titles existed.
    pub fn title(&self) -> Option<&str> {
        Some(self.identity.title.as_str()).filter(|t| !t.is_empty())
    }

    /// The signature; None for a finding recorded before titles existed.
    pub fn signature(&self) -> Option<&str> {
        Some(self.identity.signature.as_str()).filter(|s| !s.is_empty())
    }

    /// The class; None where a file did not keep it.
    pub fn class(&self) -> Option<&str> {
        Some(self.class.as_str()).filter(|c| !c.is_empty())
    }
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A run's finding as report.json keeps it: `class` and `identity` (absent
/// from reports written before titles), both null when the run was clean.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ReportKeys", into = "ReportKeys")]
pub struct InReport(pub Option<Finding>);

#[derive(Serialize, Deserialize)]
struct ReportKeys {
    class: Option<String>,
    #[serde(default)]
    identity: Option<Identity>,
}

impl From<ReportKeys> for InReport {
    fn from(k: ReportKeys) -> InReport {
        InReport(match (k.class, k.identity) {
            (None, None) => None,
            (class, identity) => Some(Finding {
                class: class.unwrap_or_default(),
                identity: identity.unwrap_or_default(),
            }),
        })
    }
}

impl From<InReport> for ReportKeys {
    fn from(f: InReport) -> ReportKeys {
        match f.0 {
            None => ReportKeys {
                class: None,
                identity: None,
            },
            Some(f) => ReportKeys {
                class: f.class().map(str::to_string),
                identity: f.title().is_some().then_some(f.identity),
            },
        }
    }
}

/// A run's finding as a merged.json row keeps it: `class`, `title`,
/// `frame` and `signature` at the row's level, null when the run was clean.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RowKeys", into = "RowKeys")]
pub struct InRow(pub Option<Finding>);

#[derive(Serialize, Deserialize)]
struct RowKeys {
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frame: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

impl From<RowKeys> for InRow {
    fn from(k: RowKeys) -> InRow {
        InRow(match (k.class, k.title) {
            (None, None) => None,
            (class, title) => Some(Finding {
                class: class.unwrap_or_default(),
                identity: Identity {
                    title: title.unwrap_or_default(),
                    frame: k.frame,
                    signature: k.signature.unwrap_or_default(),
                },
            }),
        })
    }
}

impl From<InRow> for RowKeys {
    fn from(f: InRow) -> RowKeys {
        let f = f.0.as_ref();
        let text = |s: Option<&str>| s.map(str::to_string);
        RowKeys {
            class: text(f.and_then(Finding::class)),
            title: text(f.and_then(Finding::title)),
            frame: f.and_then(|f| f.identity.frame.clone()),
            signature: text(f.and_then(Finding::signature)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn warning() -> Finding {
        Finding::new(
            "warning",
            Identity::new("WARNING", Some("__split_huge_pmd".into())),
        )
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Report {
        #[serde(flatten)]
        found: InReport,
        verdict: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        #[serde(flatten)]
        found: InRow,
        run_id: String,
    }

    #[test]
    fn report_json_keeps_class_and_identity() {
        let r = Report {
            found: InReport(Some(warning())),
            verdict: "kernel-problem".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["class"], "warning");
        assert_eq!(v["identity"]["title"], "WARNING in __split_huge_pmd");
        assert_eq!(v["identity"]["frame"], "__split_huge_pmd");
        assert_eq!(serde_json::from_value::<Report>(v).unwrap(), r);
        // Clean: both null; they read back as no finding.
        let clean = Report {
            found: InReport(None),
            verdict: "clean".into(),
        };
        let v = serde_json::to_value(&clean).unwrap();
        assert_eq!((&v["class"], &v["identity"]), (&json!(null), &json!(null)));
        assert_eq!(serde_json::from_value::<Report>(v).unwrap(), clean);
        // Written before titles: a class, no identity.
        let old: Report =
            serde_json::from_value(json!({"class": "panic", "verdict": "kernel-problem"})).unwrap();
        let f = old.found.0.unwrap();
        assert_eq!(
            (f.class(), f.title(), f.signature()),
            (Some("panic"), None, None)
        );
    }

    #[test]
    fn a_merged_row_keeps_its_flat_keys() {
        let r = Row {
            found: InRow(Some(warning())),
            run_id: "r1".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["title"], "WARNING in __split_huge_pmd");
        assert_eq!(v["signature"], warning().identity.signature);
        assert_eq!(
            (&v["class"], &v["frame"]),
            (&json!("warning"), &json!("__split_huge_pmd"))
        );
        assert_eq!(serde_json::from_value::<Row>(v).unwrap(), r);
        let clean = Row {
            found: InRow(None),
            run_id: "r2".into(),
        };
        let v = serde_json::to_value(&clean).unwrap();
        assert_eq!(
            v,
            json!({"class": null, "title": null, "signature": null, "run_id": "r2"})
        );
        assert_eq!(serde_json::from_value::<Row>(v).unwrap(), clean);
        // A row written before titles: its class alone.
        let old: Row = serde_json::from_value(json!({"class": "hang", "run_id": "r3"})).unwrap();
        assert_eq!(old.found.0.unwrap().title(), None);
    }

    #[test]
    fn a_null_class_reads_as_none() {
        let f: Finding =
            serde_json::from_value(json!({"class": null, "title": "t", "signature": "s"})).unwrap();
        assert_eq!((f.class(), f.title()), (None, Some("t")));
    }
}
