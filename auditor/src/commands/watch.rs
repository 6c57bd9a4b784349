//! The `watch` lines `auditor capture` writes into its stream between flow records, and
//! `auditor replay` reads: what the capture watched, so a replay's period and coverage
//! come from what was watched, never from the records' own times.
//!
//! `{"watch":{"node":N,"auditor_version":V,"kernel":K,"start":T0,"end":T1,"drops":{..}}}`:
//! the flow records before it in the stream are complete for [start, end], and `drops`
//! is what the kernel dropped in that span.

use crate::edge::Drops;

/// One `watch` line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchLine {
    pub watch: Watch,
}

/// A span a capture watched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    pub node: String,
    pub auditor_version: String,
    pub kernel: String,
    /// RFC 3339 UTC with milliseconds.
    pub start: String,
    pub end: String,
    pub drops: Drops,
}
