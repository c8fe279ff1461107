//! Many runs: a batch of seeds, the merge of their results, series side by
//! side, the detection matrix, the race-aware bisection, the bench summary,
//! the LAVA export and log, and the statistics they share.

pub mod batch;
pub mod bench;
pub mod bench_run;
pub mod bisect;
pub mod bisect_run;
pub mod build;
pub mod lava;
pub mod lava_log;
pub mod matrix;
pub mod matrix_plan;
pub mod matrix_run;
pub mod merge;
pub mod qemu_run;
pub mod series;
pub mod settings;
pub mod stats;
