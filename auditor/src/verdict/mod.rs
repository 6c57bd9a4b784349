//! Verdicts: a flow's two ends as documented services, judged against the allowlist.
//! `Judge::judge` is the per-flow path: two identity lookups and one rule-index lookup, no
//! allocation beyond two reference-count increments.

pub mod baseline;
pub mod explain;
pub mod render;

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use allowlist::{Allowlist, Lookup, Outcome, Overrides, RuleIndex, Transport};

use crate::{
    capture::Direction,
    edge::MeshLeg,
    identity::{LocalEndpoint, Resolved, Resolver, mesh::Mesh},
    model::{FlowView, Resolution, Verdict},
};
pub use baseline::Baseline;

#[derive(Debug, Clone)]
pub struct Judgement<'p> {
    pub verdict: Verdict,
    pub src: Option<Resolved>,
    pub dst: Option<Resolved>,
    /// The port judged: the service's port for mesh upstreams, else the one connected to.
    pub port: u16,
    /// The rule-index lookup, when both ends were documented services.
    pub lookup: Option<Lookup<'p>>,
    /// For `platform`: the baseline entry that allows it.
    pub platform: Option<Arc<str>>,
    /// When a mesh sidecar made (or accepted) it: which leg.
    pub mesh_leg: Option<MeshLeg>,
    /// Egress: the DNS name the destination was judged by (the one an entry claimed), or
    /// when none claimed one, the name the source asked for.
    pub domain: Option<Arc<str>>,
    /// Egress, when DNS answers were captured: resolved or used bare.
    pub resolution: Option<Resolution>,
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

/// The files a judge is loaded from: the documented allowlist and the inventory, with the
/// deployment's overrides and the platform baseline when given. Their digests are the
/// provenance of every judgement (`crate::provenance::Inputs`).
#[derive(Debug, Clone)]
pub struct InputFiles {
    pub allowlist: std::path::PathBuf,
    pub inventory: std::path::PathBuf,
    pub overrides: Option<std::path::PathBuf>,
    pub baseline: Option<std::path::PathBuf>,
}

/// Loads the allowlist, overrides, inventory and platform baseline into a judge. Returns
/// warnings a user should see (inventory names the allowlist does not know).
pub fn load_judge(
    files: &InputFiles,
    kube: Option<&std::sync::Arc<crate::identity::kubernetes::KubeState>>,
) -> anyhow::Result<(Judge, Vec<String>)> {
    let list = allowlist::file::load(&files.allowlist)?;
    let ovr = match files.overrides.as_deref() {
        Some(o) => allowlist::overrides::load(o, &list)?,
        None => Overrides::default(),
    };
    let inventory = crate::identity::Inventory::load(&files.inventory)?;
    let warnings = inventory
        .entries()
        .filter(|(name, _)| !list.documents(name))
        .map(|(name, _)| format!("{}: {name:?} is not a service of the allowlist: its flows will be undocumented_egress", inventory.origin()))
        .collect();
    let documented = |name: &str| list.documents(name);
    let baseline = match files.baseline.as_deref() {
        Some(p) => Baseline::load(p, &inventory, &documented, kube.cloned())?,
        None => Baseline::default(),
    };
    let mesh = inventory.mesh().cloned();
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
    let mut judge = Judge::new(list, &ovr, Resolver::new(sources));
    judge.baseline = baseline;
    judge.mesh = mesh;
    Ok((judge, warnings))
}

pub struct Judge {
    pub allowlist: Allowlist,
    pub index: RuleIndex,
    pub resolver: Resolver,
    /// Platform traffic the documents do not list (empty: none is allowed).
    pub baseline: Baseline,
    /// The service mesh's sidecar, when the inventory declares one.
    pub mesh: Option<Mesh>,
}

impl Judge {
    pub fn new(allowlist: Allowlist, overrides: &Overrides, resolver: Resolver) -> Judge {
        let index = RuleIndex::new(&allowlist, overrides);
        Judge {
            allowlist,
            index,
            resolver,
            baseline: Baseline::default(),
            mesh: None,
        }
    }

    /// Both ends of a flow. Egress: the local process connected out; its destination is
    /// who the names its own pod resolved the address by say, else who the address says.
    /// Ingress: a peer connected to a local process, judged from the receiving service's
    /// side. Also the name the destination was judged by.
    pub fn ends(&self, f: &FlowView<'_>) -> (Option<Resolved>, Option<Resolved>, Option<Arc<str>>) {
        match f.direction {
            Direction::Egress => {
                let local = LocalEndpoint {
                    addr: f.src_addr,
                    comm: f.comm,
                    cgroup: f.cgroup,
                    netns_addrs: f.netns_addrs,
                };
                let (dst, domain) = match self.resolver.named(f.dst_names, f.dst_port) {
                    Some((named, i)) => (Some(named), f.dst_names.get(i).cloned()),
                    None => (
                        self.resolver.remote(f.dst_addr, f.dst_port),
                        f.dst_names.first().cloned(),
                    ),
                };
                (self.resolver.local(&local), dst, domain)
            }
            Direction::Ingress => {
                let local = LocalEndpoint {
                    addr: Some(f.dst_addr),
                    comm: f.comm,
                    cgroup: f.cgroup,
                    netns_addrs: f.netns_addrs,
                };
                let src = f.src_addr.and_then(|a| self.resolver.remote(a, 0));
                (src, self.resolver.local(&local), None)
            }
        }
    }

    /// The verdict: a mesh sidecar's leg on the service pair only; any other flow against
    /// the documented rows; and a violation that is not between two documented services
    /// against the platform baseline.
    pub fn judge(&self, f: &FlowView<'_>) -> Judgement<'_> {
        let (src, mut dst, domain) = self.ends(f);
        let mesh_leg = self.mesh.as_ref().and_then(|m| m.leg(f));
        if mesh_leg == Some(MeshLeg::Delivery) {
            // The sidecar hands the connection to the app in its own pod.
            dst.clone_from(&src);
        }
        let port = dst.as_ref().and_then(|d| d.port).unwrap_or(f.dst_port);
        let mut j = Judgement {
            verdict: Verdict::UnknownSource,
            src,
            dst,
            port,
            lookup: None,
            platform: None,
            mesh_leg,
            domain,
            resolution: f.resolution,
        };
        self.judge_documented(f, &mut j);
        // Platform traffic: only a violation, only when an end is not a documented
        // service (so no entry can allow a service-to-service connection), never a leg.
        if j.verdict.is_violation()
            && j.lookup.is_none()
            && mesh_leg.is_none()
            && let Some(e) = self.baseline.matching(f, j.dst.as_ref())
        {
            j.verdict = Verdict::Platform;
            j.platform = Some(e.name.clone());
        }
        j
    }

    fn judge_documented<'p>(&'p self, f: &FlowView<'_>, j: &mut Judgement<'p>) {
        let (Some(src), Some(dst)) = (&j.src, &j.dst) else {
            j.verdict = if j.src.is_none() {
                Verdict::UnknownSource
            } else {
                Verdict::UnknownDestination
            };
            return;
        };
        let (Some(s), Some(d)) = (
            self.index.service_id(&src.service),
            self.index.service_id(&dst.service),
        ) else {
            // Known to the inventory, absent from the documentation.
            j.verdict = Verdict::UndocumentedEgress;
            return;
        };
        let lookup = match j.mesh_leg {
            // Inside one pod: nothing crosses between services.
            Some(MeshLeg::Delivery) if s == d => {
                j.verdict = Verdict::Allowed;
                return;
            }
            // The port was judged at the app leg: the pair alone.
            Some(_) => self.index.lookup_pair(s, d),
            None => self.index.lookup(s, d, f.transport, j.port),
        };
        j.verdict = match lookup.outcome {
            Outcome::Allowed => Verdict::Allowed,
            Outcome::OtherPorts => Verdict::PortDrift,
            Outcome::OtherTransport => Verdict::ProtocolDrift,
            Outcome::NoEdge => Verdict::UndocumentedEgress,
        };
        j.lookup = Some(lookup);
    }
}

/// A connection between two processes on one node is seen twice: the client's egress and
/// the server's ingress. It is one connection: whichever side is seen first owns it.
#[derive(Default)]
pub struct Twins {
    owner: HashMap<TwinKey, Direction>,
    /// The generation before `owner`: both sightings of a connection arrive within a
    /// record interval or two, so two generations are enough to pair them.
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
