//! The platform baseline: the traffic every cluster carries that no architecture document
//! lists (name resolution through kube-dns, kubelet probes, Prometheus scrapes, mesh
//! agents on the node), as a reviewed file of named entries, apart from the documented
//! allowlist. A flow an entry matches gets the verdict `platform`, citing the entry by
//! name, and is never counted as an observation of a documented row.
//!
//! ```yaml
//! version: 1
//! entries:
//!   - name: dns
//!     description: Every pod resolves names through kube-dns.
//!     from: {any: true}
//!     to:
//!       kubernetes: [{namespace: kube-system, service: kube-dns}]
//!       addresses: [10.96.0.10]
//!     transport: both
//!     ports: [53]
//!   - name: kubelet-probes
//!     description: The kubelet probes the ports each pod spec declares as probes.
//!     from: {processes: [kubelet], addresses: [10.0.0.0/24]}
//!     to: {any: true}
//!     transport: tcp
//!     declared_ports: probes
//! ```
//!
//! An entry can never allow a connection between two documented services. At load, an
//! entry whose two ends could both be documented services (by the inventory's addresses,
//! process names or Kubernetes selectors, or `any`) is refused with the reason; when
//! judging, a flow whose two ends are documented services never reaches the baseline.

use std::{net::IpAddr, sync::Arc};

use allowlist::{FileError, file::PortItem, model::PortSpec};
use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{
    capture::Direction,
    identity::{
        Resolved,
        inventory::{DeclaredPorts, Inventory},
        kubernetes::{KubeSelector, KubeState},
    },
    model::FlowView,
};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor platform baseline")]
pub(crate) struct RawBaseline {
    /// Format version; currently 1.
    version: u32,
    /// The reviewed platform entries, each with a name its flows cite.
    #[schemars(with = "Vec<RawEntry>")]
    entries: Vec<Spanned<RawEntry>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    /// The name every flow it allows cites: lower case letters, digits and '-'.
    name: String,
    /// What this traffic is and why the platform needs it (for the reviewer).
    description: String,
    /// The connecting side.
    from: RawPeer,
    /// The accepting side.
    to: RawPeer,
    transport: RawTransport,
    /// Destination ports: 53, "8500-8502". Give this or `declared_ports`.
    #[serde(default)]
    ports: Vec<PortItem>,
    /// The ports the destination declares: `probes` (the pod spec's probes in Kubernetes
    /// mode, the inventory's `probe_ports` otherwise) or `metrics` (`prometheus.io/port`
    /// or a container port named `metrics`/`http-metrics`; the inventory's `metrics_ports`).
    #[serde(default)]
    declared_ports: Option<Declared>,
}

/// One side of an entry. It matches when any of what it lists matches.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    /// Any end at all (then nothing else may be listed).
    #[serde(default)]
    any: bool,
    /// This node's own addresses: those of the network namespace the auditor runs in
    /// (the host's, for the DaemonSet). Where the kubelet probes from, and where a node
    /// agent (Consul, a log shipper) listens.
    #[serde(default)]
    node: bool,
    /// IP addresses and CIDRs.
    #[serde(default)]
    addresses: Vec<String>,
    /// Command names of a process on this node (the connecting process, or the
    /// accepting one).
    #[serde(default)]
    processes: Vec<String>,
    /// Pods (by namespace and labels) or a Service (its ClusterIP and endpoints), in
    /// Kubernetes mode.
    #[serde(default)]
    kubernetes: Vec<KubeSelector>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum RawTransport {
    Tcp,
    Udp,
    Both,
}

/// Which declared ports an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Declared {
    Probes,
    Metrics,
}

#[derive(Debug, Clone, Default)]
struct Peer {
    any: bool,
    /// `node: true`, kept apart from `listed`: `auditor networkpolicy` runs off the node,
    /// where this machine's addresses are not the node's.
    node: bool,
    /// The addresses and CIDRs the entry lists.
    listed: Vec<IpNet>,
    /// `listed`, and this node's addresses with `node: true`: what a flow is matched on.
    nets: Vec<IpNet>,
    processes: Vec<String>,
    kubernetes: Vec<KubeSelector>,
}

/// One side of an entry as the file gives it, for `auditor networkpolicy`, which turns
/// entries into NetworkPolicy rules.
#[derive(Debug, Clone, Copy)]
pub struct EntryEnd<'a> {
    pub any: bool,
    pub node: bool,
    pub addresses: &'a [IpNet],
    pub processes: &'a [String],
    pub kubernetes: &'a [KubeSelector],
}

/// An entry's destination ports as the file gives them.
#[derive(Debug, Clone, Copy)]
pub enum EntryPorts<'a> {
    Listed(&'a [PortSpec]),
    Declared(Declared),
}

impl Peer {
    fn view(&self) -> EntryEnd<'_> {
        EntryEnd {
            any: self.any,
            node: self.node,
            addresses: &self.listed,
            processes: &self.processes,
            kubernetes: &self.kubernetes,
        }
    }
}

impl Entry {
    /// The connecting side.
    pub fn from_end(&self) -> EntryEnd<'_> {
        self.from.view()
    }

    /// The accepting side.
    pub fn to_end(&self) -> EntryEnd<'_> {
        self.to.view()
    }

    pub fn transports(&self) -> Vec<allowlist::Transport> {
        let mut t = Vec::new();
        if self.tcp {
            t.push(allowlist::Transport::Tcp);
        }
        if self.udp {
            t.push(allowlist::Transport::Udp);
        }
        t
    }

    pub fn ports(&self) -> EntryPorts<'_> {
        match &self.ports {
            PortMatch::Listed(l) => EntryPorts::Listed(l),
            PortMatch::Declared(d) => EntryPorts::Declared(*d),
        }
    }
}

#[derive(Debug, Clone)]
enum PortMatch {
    Listed(Vec<PortSpec>),
    Declared(Declared),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Arc<str>,
    pub description: String,
    from: Peer,
    to: Peer,
    tcp: bool,
    udp: bool,
    ports: PortMatch,
}

/// One end of a flow as the baseline sees it: its address(es), and the command name when
/// it is a process on this node.
struct EndFacts<'a> {
    addrs: Vec<IpAddr>,
    comm: Option<&'a str>,
}

impl Peer {
    fn matches(&self, end: &EndFacts<'_>, kube: Option<&KubeState>) -> bool {
        self.any
            || end
                .comm
                .is_some_and(|c| self.processes.iter().any(|p| p == c))
            || end.addrs.iter().any(|a| {
                let a = a.to_canonical();
                self.nets.iter().any(|n| n.contains(&a))
                    || kube
                        .is_some_and(|k| self.kubernetes.iter().any(|s| k.selector_matches(a, s)))
            })
    }

    /// Why this side could be a documented service, if it could.
    fn could_be_documented(
        &self,
        inventory: &Inventory,
        documented: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        if self.any {
            return Some("any end".into());
        }
        for n in &self.nets {
            if let Some(s) = inventory.overlapping(n).into_iter().find(|s| documented(s)) {
                return Some(format!("{n} is {s}'s"));
            }
        }
        for p in &self.processes {
            if let Some(s) = inventory.process_owner(p).filter(|s| documented(s)) {
                return Some(format!("process {p:?} is {s}"));
            }
        }
        for k in &self.kubernetes {
            if let Some((s, _)) = inventory.kube_selectors().iter().find(|(s, d)| {
                // Labels that do not contradict the documented selector's may select
                // the same pods.
                let compatible = k
                    .labels
                    .iter()
                    .all(|(key, v)| d.labels.get(key).is_none_or(|dv| dv == v));
                documented(s)
                    && d.namespace == k.namespace
                    && match &k.service {
                        Some(svc) => d.service.as_ref() == Some(svc),
                        None => compatible,
                    }
            }) {
                return Some(format!(
                    "kubernetes selector in namespace {} can select {s}'s pods",
                    k.namespace
                ));
            }
        }
        None
    }
}

/// The name of the built-in entry that `auditor run` adds for its own traffic.
pub const AUDITOR_ENTRY: &str = "auditor";

/// The daemon's own traffic as the kernel sees it from the other end: the kernel skips the
/// auditor's own process, but not Prometheus connecting to it, nor an Alertmanager or a
/// Kubernetes API server on this node accepting its connections.
#[derive(Debug, Clone, Default)]
pub struct AuditorSelf {
    /// Where `auditor run` listens (metrics, health, /report): what Prometheus scrapes.
    pub listen: Option<std::net::SocketAddr>,
    /// What it connects to: Alertmanager, the Kubernetes API server (resolved at start).
    pub upstreams: Vec<std::net::SocketAddr>,
}

/// The loaded baseline: entries in file order; the first that matches wins.
#[derive(Clone, Default)]
pub struct Baseline {
    origin: String,
    entries: Vec<Entry>,
    /// The inventory's declared ports, by service (file mode).
    declared: std::collections::HashMap<Arc<str>, DeclaredPorts>,
    kube: Option<Arc<KubeState>>,
}

impl Baseline {
    pub fn load(
        path: &std::path::Path,
        inventory: &Inventory,
        documented: &dyn Fn(&str) -> bool,
        kube: Option<Arc<KubeState>>,
    ) -> Result<Baseline, FileError> {
        let (text, origin) = allowlist::file::read_source(path)?;
        Baseline::parse(&text, &origin, inventory, documented, kube)
    }

    pub fn parse(
        text: &str,
        origin: &str,
        inventory: &Inventory,
        documented: &dyn Fn(&str) -> bool,
        kube: Option<Arc<KubeState>>,
    ) -> Result<Baseline, FileError> {
        let raw: RawBaseline =
            serde_saphyr::from_str(text).map_err(|e| FileError::from_saphyr(origin, text, &e))?;
        if raw.version != FORMAT_VERSION {
            return Err(FileError::at_start(
                origin,
                format!(
                    "baseline version {} is not supported (expected {FORMAT_VERSION})",
                    raw.version
                ),
            ));
        }
        let mut entries: Vec<Entry> = Vec::new();
        for e in &raw.entries {
            let fail = |message: String| FileError::at(origin, e, message);
            let r = &e.value;
            let name = r.name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(fail(format!(
                    "entry name {:?}: use lower case letters, digits and '-' (flows cite it)",
                    r.name
                )));
            }
            if entries.iter().any(|x| &*x.name == name) {
                return Err(fail(format!("entry {name:?} is declared twice")));
            }
            if r.description.trim().is_empty() {
                return Err(fail(format!(
                    "entry {name:?}: a description is required (say what the traffic is and why it is needed)"
                )));
            }
            let from = peer(&r.from, name, "from").map_err(&fail)?;
            let to = peer(&r.to, name, "to").map_err(&fail)?;
            let ports = match (&r.ports[..], r.declared_ports) {
                ([], Some(d)) => PortMatch::Declared(d),
                ([], None) => {
                    return Err(fail(format!(
                        "entry {name:?}: give `ports` or `declared_ports` (an entry never allows every port)"
                    )));
                }
                (_, Some(_)) => {
                    return Err(fail(format!(
                        "entry {name:?}: give `ports` or `declared_ports`, not both"
                    )));
                }
                (list, None) => {
                    if list.iter().any(|p| p.0.configurable) {
                        return Err(fail(format!(
                            "entry {name:?}: a baseline port is what the platform uses; `*` (configurable) has no meaning here"
                        )));
                    }
                    PortMatch::Listed(list.iter().map(|p| p.0).collect())
                }
            };
            if let (Some(a), Some(b)) = (
                from.could_be_documented(inventory, documented),
                to.could_be_documented(inventory, documented),
            ) {
                return Err(fail(format!(
                    "entry {name:?} would allow connections between two documented services \
                     (from: {a}; to: {b}); the baseline is for platform traffic only: document \
                     such a connection in the allowlist, or narrow `from`/`to`"
                )));
            }
            entries.push(Entry {
                name: name.into(),
                description: r.description.trim().to_string(),
                from,
                to,
                tcp: r.transport != RawTransport::Udp,
                udp: r.transport != RawTransport::Tcp,
                ports,
            });
        }
        Ok(Baseline {
            origin: origin.to_string(),
            entries,
            declared: inventory.declared_ports().clone(),
            kube,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry that allows this flow, if any. The caller never asks for a flow whose
    /// two ends are documented services.
    pub fn matching(&self, f: &FlowView<'_>, dst: Option<&Resolved>) -> Option<&Entry> {
        if self.entries.is_empty() {
            return None;
        }
        let local_addrs = |a: Option<IpAddr>| {
            let mut v: Vec<IpAddr> = a.into_iter().filter(|a| !a.is_unspecified()).collect();
            v.extend(f.netns_addrs.iter().copied());
            v
        };
        let (from, to) = match f.direction {
            Direction::Egress => (
                EndFacts {
                    addrs: local_addrs(f.src_addr),
                    comm: Some(f.comm),
                },
                EndFacts {
                    addrs: vec![f.dst_addr],
                    comm: None,
                },
            ),
            Direction::Ingress => (
                EndFacts {
                    addrs: f.src_addr.into_iter().collect(),
                    comm: None,
                },
                EndFacts {
                    addrs: local_addrs(Some(f.dst_addr)),
                    comm: Some(f.comm),
                },
            ),
        };
        let kube = self.kube.as_deref();
        self.entries.iter().find(|e| {
            let transport_ok = match f.transport {
                allowlist::Transport::Tcp => e.tcp,
                _ => e.udp,
            };
            transport_ok
                && self.port_ok(e, f, dst)
                && e.from.matches(&from, kube)
                && e.to.matches(&to, kube)
        })
    }

    /// Adds the built-in `auditor` entries after the file's (which win): anything
    /// connecting to the daemon's listener, and this node (its addresses, loopback
    /// included) connecting to the daemon's upstreams on their ports. So the auditor's
    /// own traffic is platform traffic the report shows under `auditor`, never a
    /// violation, never an alert. The second entry cannot tell the auditor from another
    /// process of this node talking to the same Alertmanager or API server: both are this
    /// node's traffic to the platform's own services.
    pub fn add_auditor(&mut self, me: &AuditorSelf) {
        let here = || -> Vec<IpNet> {
            let mut nets: Vec<IpNet> = crate::capture::netns::addrs_here()
                .into_iter()
                .map(IpNet::from)
                .collect();
            nets.extend(
                ["127.0.0.0/8", "::1/128"]
                    .iter()
                    .filter_map(|n| n.parse::<IpNet>().ok()),
            );
            nets
        };
        let peer = |nets: Vec<IpNet>| Peer {
            listed: nets.clone(),
            nets,
            ..Peer::default()
        };
        let entry = |description: &str, from: Peer, to: Peer, port: u16| Entry {
            name: AUDITOR_ENTRY.into(),
            description: description.into(),
            from,
            to,
            tcp: true,
            udp: false,
            ports: PortMatch::Listed(vec![PortSpec::single(port, false)]),
        };
        if let Some(listen) = me.listen {
            let to = if listen.ip().is_unspecified() {
                here()
            } else {
                vec![IpNet::from(listen.ip().to_canonical())]
            };
            self.entries.push(entry(
                "Scrapes and requests to the auditor's own listener (metrics, health, /report).",
                Peer {
                    any: true,
                    ..Peer::default()
                },
                peer(to),
                listen.port(),
            ));
        }
        for up in &me.upstreams {
            self.entries.push(entry(
                "The auditor's own connections to its Alertmanager and Kubernetes API server, seen where they are accepted.",
                peer(here()),
                peer(vec![IpNet::from(up.ip().to_canonical())]),
                up.port(),
            ));
        }
    }

    /// Whether any entry names DNS servers (see `dns_server`).
    pub fn names_dns_servers(&self) -> bool {
        !self.dns_entries().is_empty()
    }

    /// The entries that name DNS servers (see `dns_server`), by name, with the networks
    /// they list: what `auditor run` logs as trusted at start.
    pub fn dns_entries(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| {
                !e.to.any
                    && matches!(&e.ports, PortMatch::Listed(l) if l.iter().any(|p| p.contains(auditor_common::DNS_PORT)))
            })
            .map(|e| {
                let nets: Vec<String> = e.to.nets.iter().map(ToString::to_string).collect();
                format!(
                    "{} ({}{})",
                    e.name,
                    nets.join(", "),
                    if e.to.kubernetes.is_empty() {
                        ""
                    } else {
                        "; Kubernetes Services"
                    }
                )
            })
            .collect()
    }

    /// The entry that names `server` as a DNS server: it lists port 53 and names its
    /// destination (addresses or Kubernetes Services; `any` names no server). Such a
    /// server is a trusted resolver: the names its answers give are used for verdicts.
    pub fn dns_server(&self, server: IpAddr) -> Option<&Entry> {
        let end = EndFacts {
            addrs: vec![server],
            comm: None,
        };
        let kube = self.kube.as_deref();
        self.entries.iter().find(|e| {
            let lists_53 = match &e.ports {
                PortMatch::Listed(l) => l.iter().any(|p| p.contains(auditor_common::DNS_PORT)),
                PortMatch::Declared(_) => false,
            };
            lists_53 && !e.to.any && e.to.matches(&end, kube)
        })
    }

    fn port_ok(&self, e: &Entry, f: &FlowView<'_>, dst: Option<&Resolved>) -> bool {
        match &e.ports {
            PortMatch::Listed(l) => l.iter().any(|p| p.contains(f.dst_port)),
            PortMatch::Declared(which) => {
                let from_pod = self
                    .kube
                    .as_ref()
                    .and_then(|k| k.declared_ports(f.dst_addr.to_canonical()));
                let declared =
                    from_pod.or_else(|| dst.and_then(|d| self.declared.get(&d.service)).cloned());
                declared.is_some_and(|d| match which {
                    Declared::Probes => d.probes.contains(&f.dst_port),
                    Declared::Metrics => d.metrics.contains(&f.dst_port),
                })
            }
        }
    }
}

fn peer(raw: &RawPeer, entry: &str, side: &str) -> Result<Peer, String> {
    let listed = raw.node
        || !raw.addresses.is_empty()
        || !raw.processes.is_empty()
        || !raw.kubernetes.is_empty();
    if raw.any && listed {
        return Err(format!(
            "entry {entry:?}: `{side}` says `any` and lists ends too; give one or the other"
        ));
    }
    if !raw.any && !listed {
        return Err(format!(
            "entry {entry:?}: `{side}` matches nothing (say `node: true`, list addresses, processes or kubernetes, or say `any: true`)"
        ));
    }
    let mut nets = Vec::new();
    for a in &raw.addresses {
        let net = a
            .parse::<IpNet>()
            .or_else(|_| a.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("entry {entry:?}: {side}: {a:?} is not an IP address or CIDR"))?;
        nets.push(net.trunc());
    }
    let listed = nets.clone();
    if raw.node {
        nets.extend(
            crate::capture::netns::addrs_here()
                .into_iter()
                .map(IpNet::from),
        );
    }
    for k in &raw.kubernetes {
        if k.namespace.is_empty() {
            return Err(format!(
                "entry {entry:?}: {side}: a kubernetes selector needs a namespace"
            ));
        }
    }
    Ok(Peer {
        any: raw.any,
        node: raw.node,
        listed,
        nets,
        processes: raw.processes.clone(),
        kubernetes: raw.kubernetes.clone(),
    })
}

/// The baseline file's JSON Schema (docs/baseline.schema.json is this, checked by a test).
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(RawBaseline);
    schema.insert(
        "$comment".into(),
        "Generated from auditor/src/verdict/baseline.rs by `auditor schema baseline`; do not edit."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}
