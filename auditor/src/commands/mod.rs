//! Command handlers: each takes its validated arguments and does one job.

pub mod allowlist;
pub mod networkpolicy;
pub mod report;
pub mod verdicts;
