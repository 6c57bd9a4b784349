//! The DNS answer record: what `auditor capture` prints for each answer a socket received
//! (one `{"dns": …}` line), what `auditor replay` reads back, and what the daemon learns
//! names from. `PacketReader` makes them from the kernel's packets.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{
    answer::{self, AnswerError},
    tcp::{StreamKey, TcpStreams},
};
use crate::{
    capture::{Transport, record::DnsPacketRecord},
    model::time::{Millis, as_rfc3339},
};

/// One DNS answer a socket of the node received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRecord {
    /// When it arrived (RFC 3339).
    #[serde(with = "as_rfc3339")]
    #[schemars(with = "String")]
    pub time: Millis,
    /// The querying socket's network namespace cookie: the pod whose names these are.
    /// 0 when no socket of that namespace asked this server (unsolicited).
    pub netns_cookie: u64,
    /// The querying process's cgroup v2 id and process id (0 when unsolicited).
    #[serde(default)]
    pub cgroup_id: u64,
    #[serde(default)]
    pub tgid: u32,
    /// The server that answered.
    pub resolver: IpAddr,
    #[serde(default = "udp")]
    pub transport: Transport,
    /// The receiving socket had sent a query to this server.
    pub solicited: bool,
    /// The name asked for, lower-case, without the trailing dot.
    #[serde(default)]
    pub question: Option<String>,
    /// Each address the answer gave, with the chain of names that led to it.
    #[serde(default)]
    pub answers: Vec<AddressAnswer>,
}

fn udp() -> Transport {
    Transport::Udp
}

/// One address of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressAnswer {
    pub addr: IpAddr,
    /// The question name first, then each CNAME target in chain order.
    pub names: Vec<String>,
    /// Seconds: the least TTL along the chain.
    pub ttl: u32,
}

/// Bounds on a recorded answer (what the kernel and `answer::read` can hand out, with room):
/// a recording is input like any other, so a hand-made line cannot make a name of a
/// megabyte or an answer of a million addresses.
const MAX_ADDRESSES: usize = 256;
const MAX_NAME_BYTES: usize = 1024;

impl AnswerRecord {
    /// Why a recorded answer cannot be taken, if it cannot: a name that is not what
    /// `answer::display_name` writes (printable ASCII, lower case, bounded), a chain
    /// longer than `answer::MAX_CHAIN`, or too many addresses.
    pub fn check(&self) -> Result<(), String> {
        if self.answers.len() > MAX_ADDRESSES {
            return Err(format!(
                "{} addresses in one answer (at most {MAX_ADDRESSES})",
                self.answers.len()
            ));
        }
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.len() <= MAX_NAME_BYTES
                && n.bytes()
                    .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
        };
        for a in &self.answers {
            if a.names.is_empty() || a.names.len() > super::answer::MAX_CHAIN {
                return Err(format!(
                    "{}: a chain of {} names (1 to {})",
                    a.addr,
                    a.names.len(),
                    super::answer::MAX_CHAIN
                ));
            }
            if let Some(n) = a.names.iter().find(|n| !name_ok(n)) {
                return Err(format!(
                    "{}: {n:?} is not a name as capture writes it (lower-case printable ASCII, at most {MAX_NAME_BYTES} bytes)",
                    a.addr
                ));
            }
        }
        if let Some(q) = &self.question
            && !name_ok(q)
        {
            return Err(format!("question {q:?} is not a name as capture writes it"));
        }
        Ok(())
    }

    /// The resolutions as the name table takes them.
    pub fn resolutions(&self) -> impl Iterator<Item = answer::Resolution> + '_ {
        self.answers.iter().map(|a| answer::Resolution {
            addr: a.addr,
            names: a.names.clone(),
            ttl: a.ttl,
        })
    }
}

/// A DNS packet that gave no answer record.
#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    /// The datagram was longer than the kernel copies (`DNS_PAYLOAD_MAX`).
    #[error(
        "a DNS datagram longer than the kernel copies ({} bytes)",
        auditor_common::DNS_PAYLOAD_MAX
    )]
    Truncated,
    #[error("an unreadable DNS message: {0}")]
    Unreadable(AnswerError),
}

impl PacketError {
    /// The stable name it is counted under (`auditor_dns_unreadable_total{reason}`).
    pub fn kind(&self) -> &'static str {
        match self {
            PacketError::Truncated => "copied_in_part",
            PacketError::Unreadable(e) => e.kind(),
        }
    }
}

/// DNS over TCP streams followed at once, and bytes buffered per stream: a DNS message
/// is at most 64 KiB, and a node has few resolver connections open at a time.
const TCP_STREAMS: usize = 1024;
const TCP_BUFFERED: usize = 64 * 1024 + 2;

/// Turns the kernel's DNS packets into answer records: UDP datagrams directly, TCP
/// segments through reassembly. Every packet it cannot read is an `AnswerError`.
pub struct PacketReader {
    tcp: TcpStreams,
}

impl Default for PacketReader {
    fn default() -> Self {
        PacketReader {
            tcp: TcpStreams::new(TCP_STREAMS, TCP_BUFFERED),
        }
    }
}

impl PacketReader {
    /// The answers in one packet (none for a TCP segment that completes no message).
    pub fn read(&mut self, p: &DnsPacketRecord) -> Vec<Result<AnswerRecord, PacketError>> {
        let messages = match p.transport {
            Transport::Udp if !p.complete() => return vec![Err(PacketError::Truncated)],
            Transport::Udp => vec![p.payload.clone()],
            Transport::Tcp => {
                let key = StreamKey {
                    netns_cookie: p.netns_cookie,
                    local: p.local,
                    remote: p.server,
                };
                self.tcp
                    .push(key, p.tcp_seq, &p.payload, p.complete(), p.time_ms)
            }
        };
        messages
            .iter()
            .map(|m| {
                let a = answer::read(m).map_err(PacketError::Unreadable)?;
                Ok(AnswerRecord {
                    time: p.time_ms,
                    netns_cookie: p.netns_cookie,
                    cgroup_id: p.cgroup_id,
                    tgid: p.tgid,
                    resolver: p.server.ip().to_canonical(),
                    transport: p.transport,
                    solicited: p.solicited,
                    question: a.question,
                    answers: a
                        .resolutions
                        .into_iter()
                        .map(|r| AddressAnswer {
                            addr: r.addr.to_canonical(),
                            names: r.names,
                            ttl: r.ttl,
                        })
                        .collect(),
                })
            })
            .collect()
    }

    pub fn tcp(&self) -> &TcpStreams {
        &self.tcp
    }
}
