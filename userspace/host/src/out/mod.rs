//! What a run writes and prints: report.json, results.ktap, the human
//! summary (with its sections for suites, pairs and meets),
//! `mmrace-host check` on a report, and `mmrace-host coverage` over reports.

pub mod check;
pub mod coverage;
pub mod ktap;
pub mod meets;
pub mod pairs;
pub mod report;
pub mod suite;
pub mod summary;
