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
    #[serde(deserialize_with = "recorded_drops")]
    pub drops: Drops,
    /// DNS answers were captured in this span (absent in recordings made before them).
    #[serde(default)]
    pub dns: bool,
    /// DNS packets the kernel lost in this span (ring buffer full, or longer than it
    /// copies): a replay calls no flow of the span or after it bare.
    #[serde(default)]
    pub dns_lost: u64,
}

/// `drops` as recorded. A recording made before the flow maps' epochs says
/// `lru_evictions`; then a full ring buffer or a refused insert could lose connections
/// too, so all three count as lost (as in a store of that time).
fn recorded_drops<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Drops, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Recorded {
        ringbuf_full: u64,
        flow_insert_failed: u64,
        connections_lost: Option<u64>,
        lru_evictions: Option<u64>,
    }
    let r = <Recorded as serde::Deserialize>::deserialize(d)?;
    let connections_lost = match (r.connections_lost, r.lru_evictions) {
        (Some(lost), None) => lost,
        (None, Some(evicted)) => evicted + r.ringbuf_full + r.flow_insert_failed,
        _ => {
            return Err(serde::de::Error::custom(
                "drops needs connections_lost (or, in a recording made before epochs, lru_evictions)",
            ));
        }
    };
    Ok(Drops {
        ringbuf_full: r.ringbuf_full,
        connections_lost,
        flow_insert_failed: r.flow_insert_failed,
    })
}

/// One `{"dns": …}` line: an answer a socket of the node received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsLine {
    pub dns: crate::dns::AnswerRecord,
}
