//! Names for addresses: the DNS answers each pod's sockets received, turned into the names
//! that pod knew each address by, with time.
//!
//! - `answer` reads one DNS message (UDP datagram or one TCP-framed message) into the
//!   addresses it names, following CNAME chains.
//! - `tcp` reassembles DNS over TCP from the segments the kernel copied.
//! - `names` is the table: per (network namespace, address), the names with their expiry
//!   (TTL plus a grace window), bounded, kept with the store across restarts.
//! - `pattern` is the inventory's `dns:` patterns (`*` one label, `**` one or more), with
//!   the refusal of patterns that cover a public suffix.
//!
//! The kernel side (`auditor-ebpf/src/dns.rs`) copies answers into the same ring buffer
//! as the flow records, so an answer always reaches user space before the connect that
//! follows it.

pub mod answer;
pub mod names;
pub mod pattern;
pub mod record;
pub mod tcp;

use std::net::IpAddr;

use ipnet::IpNet;

pub use names::{NameHit, NameLimits, NameTable};
pub use record::{AnswerRecord, PacketError, PacketReader};

/// The names an egress flow's destination had for its source, and whether it had any.
#[derive(Debug, Default)]
pub struct FlowNames {
    pub hits: Vec<NameHit>,
    pub names: Vec<std::sync::Arc<str>>,
    /// None when it cannot be known: DNS not captured, not egress, a loopback
    /// destination (a pod's own sidecar or cache), or a flow without its namespace.
    pub resolution: Option<crate::model::Resolution>,
}

/// The names `rec`'s source pod knew its destination by at `at_ms`.
pub fn flow_names(
    names: Option<&mut Names>,
    rec: &crate::capture::FlowRecord,
    at_ms: i64,
) -> FlowNames {
    use crate::{capture::Direction, model::Resolution};
    let Some(names) = names else {
        return FlowNames::default();
    };
    // With no trusted resolver nothing can be learned: every flow would look bare, which
    // is not what was observed. Unknown, then.
    if !names.trusts_any() {
        return FlowNames::default();
    }
    let dst = rec.dst_addr.to_canonical();
    if rec.direction != Direction::Egress
        || rec.netns_cookie == 0
        || dst.is_loopback()
        || dst.is_unspecified()
    {
        return FlowNames::default();
    }
    let held = rec.hook == auditor_common::Hook::Existing.name();
    let hits = names.names_at(rec.netns_cookie, dst, at_ms, held);
    let resolution = Some(if hits.is_empty() {
        Resolution::Bare
    } else {
        Resolution::Dns
    });
    FlowNames {
        names: hits.iter().map(|h| h.name.clone()).collect(),
        hits,
        resolution,
    }
}

/// What became of one answer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerUse {
    /// From a trusted resolver to a socket that asked it: its names are learned.
    Learned,
    /// From a server that is not a trusted resolver: recorded, counted, never used. A pod
    /// that asks its own server for a documented name must not make that server's
    /// address the documented service.
    Untrusted,
    /// To a socket that sent no query to that server: counted and ignored.
    Unsolicited,
    /// NXDOMAIN, NODATA or no address (search-domain expansion makes many): nothing to learn.
    Empty,
}

impl AnswerUse {
    /// The stable name it is counted under (`auditor_dns_answers_total{use}`).
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerUse::Learned => "learned",
            AnswerUse::Untrusted => "untrusted",
            AnswerUse::Unsolicited => "unsolicited",
            AnswerUse::Empty => "empty",
        }
    }
}

/// The names every pod of the node resolved, learned from trusted answers only: what
/// the daemon and `auditor replay` judge egress with.
pub struct Names {
    table: NameTable,
    /// `--dns-resolver`: the cluster DNS and node-local cache addresses. The platform
    /// baseline's DNS entry adds its own (the caller's `trusted`).
    resolvers: Vec<IpNet>,
    /// The platform baseline names DNS servers (see `trusts_any`).
    baseline_servers: bool,
}

impl Names {
    pub fn new(limits: NameLimits, resolvers: Vec<IpNet>) -> Names {
        Names {
            table: NameTable::new(limits),
            resolvers,
            baseline_servers: false,
        }
    }

    /// Takes one answer: learns its names when a trusted resolver gave them to a socket
    /// that asked. `trusted` is the platform baseline's say on the server.
    pub fn answer(&mut self, rec: &AnswerRecord, trusted: &dyn Fn(IpAddr) -> bool) -> AnswerUse {
        let resolver = rec.resolver.to_canonical();
        if !rec.solicited || rec.netns_cookie == 0 {
            AnswerUse::Unsolicited
        } else if !(self.resolvers.iter().any(|n| n.contains(&resolver)) || trusted(resolver)) {
            AnswerUse::Untrusted
        } else if rec.answers.is_empty() {
            AnswerUse::Empty
        } else {
            for r in rec.resolutions() {
                self.table.learn(rec.netns_cookie, &r, resolver, rec.time);
            }
            AnswerUse::Learned
        }
    }

    /// The names the pod in `netns` knew `addr` by for a connection seen at `at_ms`
    /// (`held`: found open, not opened then).
    pub fn names_at(&mut self, netns: u64, addr: IpAddr, at_ms: i64, held: bool) -> Vec<NameHit> {
        self.table.names_at(netns, addr.to_canonical(), at_ms, held)
    }

    /// Whether any resolver is trusted at all (`--dns-resolver`, or the platform
    /// baseline's DNS servers as last told by `set_baseline_servers`): without one no
    /// name is ever learned, and no flow can be said to be resolved or bare.
    pub fn trusts_any(&self) -> bool {
        !self.resolvers.is_empty() || self.baseline_servers
    }

    /// Whether the platform baseline in force names DNS servers (it may change on reload).
    pub fn set_baseline_servers(&mut self, names_servers: bool) {
        self.baseline_servers = names_servers;
    }

    pub fn table(&self) -> &NameTable {
        &self.table
    }

    pub fn table_mut(&mut self) -> &mut NameTable {
        &mut self.table
    }
}
