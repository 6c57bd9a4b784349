//! The `watch` lines `auditor capture` writes into its stream between flow records, and
//! `auditor replay` reads: what the capture watched, so a replay's period and coverage
//! come from what was watched, never from the records' own times.
//!
//! `{"watch":{"node":N,"auditor_version":V,"kernel":K,"start":T0,"end":T1,"drops":{..},"dns":true,"dns_lost":0}}`:
//! the flow records before it in the stream are complete for [start, end], and `drops`
//! is what the kernel dropped in that span; `dns` says the capture also copied DNS
//! answers (`{"dns":{…}}` lines), so a replay can tell a flow used bare from one whose
//! name was simply not recorded.

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
    /// DNS answers were captured in this span (absent in recordings made before them).
    #[serde(default)]
    pub dns: bool,
    /// DNS packets the kernel lost in this span (ring buffer full, or longer than it
    /// copies): a replay calls no flow of the span or after it bare.
    #[serde(default)]
    pub dns_lost: u64,
}

/// One `{"dns": …}` line: an answer a socket of the node received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsLine {
    pub dns: crate::dns::AnswerRecord,
}
