//! Verdicts: a flow's two ends as documented services, judged against the allowlist.
//! `Judge::judge` is the per-flow path: two identity lookups and one policy lookup, no
//! allocation beyond two reference-count increments.

pub mod explain;
pub mod render;

use std::{collections::HashMap, net::IpAddr};

use allowlist::{Allowlist, Lookup, Outcome, Overrides, Policy, Transport};

use crate::{
    capture::{Direction, FlowRecord},
    identity::{LocalEndpoint, Resolved, Resolver},
};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A documented connection allows it.
    Allowed,
    /// The services have a documented connection on this transport, not on this port.
    PortDrift,
    /// Documented on this port, but over the other transport.
    ProtocolDrift,
    /// Both ends are known; no documented connection between them.
    UndocumentedEgress,
    /// The source is known; the destination is neither in the inventory nor a documented external.
    UnknownDestination,
    /// The source could not be attributed.
    UnknownSource,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::PortDrift => "port_drift",
            Verdict::ProtocolDrift => "protocol_drift",
            Verdict::UndocumentedEgress => "undocumented_egress",
            Verdict::UnknownDestination => "unknown_destination",
            Verdict::UnknownSource => "unknown_source",
        }
    }

    pub fn is_violation(self) -> bool {
        self != Verdict::Allowed
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::Allowed,
            Verdict::PortDrift,
            Verdict::ProtocolDrift,
            Verdict::UndocumentedEgress,
            Verdict::UnknownDestination,
            Verdict::UnknownSource,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// What the judge needs from a flow (borrowed from a `FlowRecord` or built by the daemon).
#[derive(Debug, Clone, Copy)]
pub struct FlowView<'a> {
    pub transport: Transport,
    pub direction: Direction,
    pub src_addr: Option<IpAddr>,
    pub dst_addr: IpAddr,
    pub dst_port: u16,
    pub comm: &'a str,
    pub cgroup: Option<&'a str>,
    pub netns_addrs: &'a [IpAddr],
}

impl<'a> FlowView<'a> {
    pub fn of(r: &'a FlowRecord) -> FlowView<'a> {
        FlowView {
            transport: r.transport,
            direction: r.direction,
            src_addr: r.src_addr,
            dst_addr: r.dst_addr,
            dst_port: r.dst_port,
            comm: &r.comm,
            cgroup: r.cgroup.as_deref(),
            netns_addrs: &r.netns_addrs,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Judgement<'p> {
    pub verdict: Verdict,
    pub src: Option<Resolved>,
    pub dst: Option<Resolved>,
    /// The port judged: the service's port for mesh upstreams, else the one connected to.
    pub port: u16,
    /// The policy lookup, when both ends were documented services.
    pub lookup: Option<Lookup<'p>>,
}

impl Judgement<'_> {
    /// The documented connection numbers this verdict relates to: the rows that allow
    /// it, or for drift the rows it drifted from.
    pub fn rules(&self) -> Vec<u32> {
        self.lookup
            .as_ref()
            .map(Lookup::numbers)
            .unwrap_or_default()
    }
}

/// Loads the allowlist, overrides and inventory into a judge. Returns warnings a user
/// should see (inventory names the allowlist does not know).
pub fn load_judge(
    allowlist_path: &std::path::Path,
    inventory_path: &std::path::Path,
    overrides_path: Option<&std::path::Path>,
    kube: Option<&std::sync::Arc<crate::identity::kubernetes::KubeState>>,
) -> anyhow::Result<(Judge, Vec<String>)> {
    let list = allowlist::file::load(allowlist_path)?;
    let ovr = match overrides_path {
        Some(o) => allowlist::overrides::load(o, &list)?,
        None => Overrides::default(),
    };
    let inventory = crate::identity::Inventory::load(inventory_path)?;
    let warnings = inventory
        .entries()
        .filter(|(name, _)| list.service(name).is_none() && !list.services.iter().any(|s| s.aliases.iter().any(|a| a == name)))
        .map(|(name, _)| format!("{}: {name:?} is not a service of the allowlist: its flows will be undocumented_egress", inventory.origin()))
        .collect();
    // The cluster knows pods and Services first; the file adds what it alone knows
    // (externals, mesh upstreams, hosts outside the cluster).
    let mut sources: Vec<Box<dyn crate::identity::IdentitySource>> = Vec::new();
    if let Some(state) = kube {
        sources.push(Box::new(crate::identity::kubernetes::KubeIdentity::new(
            state.clone(),
            inventory.kube_selectors(),
        )));
    }
    sources.push(Box::new(inventory));
    Ok((Judge::new(list, &ovr, Resolver::new(sources)), warnings))
}

pub struct Judge {
    pub allowlist: Allowlist,
    pub policy: Policy,
    pub resolver: Resolver,
}

impl Judge {
    pub fn new(allowlist: Allowlist, overrides: &Overrides, resolver: Resolver) -> Judge {
        let policy = Policy::new(&allowlist, overrides);
        Judge {
            allowlist,
            policy,
            resolver,
        }
    }

    /// Both ends of a flow. Egress: the local process connected out. Ingress: a peer
    /// connected to a local process, judged from the receiving service's side.
    pub fn ends(&self, f: &FlowView<'_>) -> (Option<Resolved>, Option<Resolved>) {
        match f.direction {
            Direction::Egress => {
                let local = LocalEndpoint {
                    addr: f.src_addr,
                    comm: f.comm,
                    cgroup: f.cgroup,
                    netns_addrs: f.netns_addrs,
                };
                (
                    self.resolver.local(&local),
                    self.resolver.remote(f.dst_addr, f.dst_port),
                )
            }
            Direction::Ingress => {
                let local = LocalEndpoint {
                    addr: Some(f.dst_addr),
                    comm: f.comm,
                    cgroup: f.cgroup,
                    netns_addrs: f.netns_addrs,
                };
                let src = f.src_addr.and_then(|a| self.resolver.remote(a, 0));
                (src, self.resolver.local(&local))
            }
        }
    }

    pub fn judge(&self, f: &FlowView<'_>) -> Judgement<'_> {
        let (src, dst) = self.ends(f);
        let port = dst.as_ref().and_then(|d| d.port).unwrap_or(f.dst_port);
        let mut j = Judgement {
            verdict: Verdict::UnknownSource,
            src,
            dst,
            port,
            lookup: None,
        };
        let (Some(src), Some(dst)) = (&j.src, &j.dst) else {
            j.verdict = if j.src.is_none() {
                Verdict::UnknownSource
            } else {
                Verdict::UnknownDestination
            };
            return j;
        };
        let (Some(s), Some(d)) = (
            self.policy.service_id(&src.service),
            self.policy.service_id(&dst.service),
        ) else {
            // Known to the inventory, absent from the documentation.
            j.verdict = Verdict::UndocumentedEgress;
            return j;
        };
        let lookup = self.policy.lookup(s, d, f.transport, port);
        j.verdict = match lookup.outcome {
            Outcome::Allowed => Verdict::Allowed,
            Outcome::OtherPorts => Verdict::PortDrift,
            Outcome::OtherTransport => Verdict::ProtocolDrift,
            Outcome::NoEdge => Verdict::UndocumentedEgress,
        };
        j.lookup = Some(lookup);
        j
    }
}

/// A connection between two processes on one node is seen twice: the client's egress and
/// the server's ingress. It is one connection: whichever side is seen first owns it.
#[derive(Default)]
pub struct Twins {
    owner: HashMap<TwinKey, Direction>,
    /// The generation before `owner`: both sightings of a connection arrive within a
    /// report interval or two, so two generations are enough to pair them.
    previous: HashMap<TwinKey, Direction>,
}

type TwinKey = (Transport, Option<IpAddr>, IpAddr, u16);

/// Connections remembered per generation. At this many a new generation starts and the
/// one before is dropped: memory stays at two generations (about 6 MB) however many
/// distinct connections a node sees, where one table of 1M entries held about 50 MB.
const TWINS_GENERATION: usize = 1 << 16;

impl Twins {
    /// True when this flow is the second sighting of a connection already judged.
    pub fn is_twin(&mut self, f: &FlowView<'_>) -> bool {
        // UDP too: a datagram is seen sent (egress) and received (ingress, recvmsg).
        let key = (
            f.transport,
            f.src_addr.map(|a| a.to_canonical()),
            f.dst_addr.to_canonical(),
            f.dst_port,
        );
        if let Some(first) = self.previous.get(&key) {
            return *first != f.direction;
        }
        if self.owner.len() >= TWINS_GENERATION && !self.owner.contains_key(&key) {
            self.previous = std::mem::take(&mut self.owner);
        }
        *self.owner.entry(key).or_insert(f.direction) != f.direction
    }
}
