//! From the documented architecture to enforcement: Kubernetes `networking.k8s.io/v1`
//! NetworkPolicy objects generated from the allowlist (what the documents say), not from
//! observed traffic (which would turn today's violations into policy).
//!
//! The model here is what the policies mean, rule by rule, with the documented rows each
//! rule exists for; `render` writes it as YAML and `would_break` judges a store's observed
//! connections against it. Rows a NetworkPolicy cannot express are never silently
//! widened: they are skipped, each with a warning that says why.

pub mod render;
pub mod would_break;

use std::collections::{BTreeMap, BTreeSet};

use allowlist::{Allowlist, Overrides, PortBasis, Transport, lint::Finding};
use ipnet::IpNet;

use crate::{
    identity::{Inventory, cluster::KubeSelector, inventory::EntryKind},
    verdict::baseline::{Baseline, Declared, Entry, EntryEnd, EntryPorts},
};

/// Where the documented services' pods may resolve names: egress to it is allowed in every
/// egress policy, since without DNS no documented connection by name would work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPeer {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl DnsPeer {
    /// kube-dns as kubeadm, GKE, EKS and AKS label it (CoreDNS keeps the label).
    pub fn kube_dns() -> DnsPeer {
        DnsPeer {
            namespace: "kube-system".into(),
            labels: [("k8s-app".to_string(), "kube-dns".to_string())].into(),
        }
    }

    /// `NAMESPACE/KEY=VALUE[,KEY=VALUE...]`, or `none`.
    pub fn parse(text: &str) -> Result<Option<DnsPeer>, String> {
        if text == "none" {
            return Ok(None);
        }
        let usage = || {
            format!(
                "{text:?}: give NAMESPACE/KEY=VALUE[,KEY=VALUE...] (e.g. kube-system/k8s-app=kube-dns), or none"
            )
        };
        let (ns, labels) = text.split_once('/').ok_or_else(usage)?;
        let labels: Option<BTreeMap<String, String>> = labels
            .split(',')
            .map(|kv| {
                kv.split_once('=')
                    .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        match labels {
            Some(labels) if !ns.is_empty() && !labels.is_empty() => Ok(Some(DnsPeer {
                namespace: ns.to_string(),
                labels,
            })),
            _ => Err(usage()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Isolate egress too (ingress always is).
    pub egress: bool,
    /// DNS egress allowed in every egress policy; None: not allowed.
    pub dns: Option<DnsPeer>,
}

/// Which way a policy isolates its pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Ingress,
    Egress,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Ingress => "ingress",
            Side::Egress => "egress",
        }
    }
}

/// The other end of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A documented service's pods: `namespaceSelector` on its namespace AND `podSelector`
    /// on its labels, in one peer.
    Pods {
        service: String,
        namespace: String,
        labels: BTreeMap<String, String>,
    },
    /// The cluster DNS.
    Dns(DnsPeer),
    /// An external's addresses, one `ipBlock` each.
    Block { service: String, net: IpNet },
    /// A baseline entry's pods (namespace AND labels), e.g. Prometheus's.
    Selector {
        namespace: String,
        labels: BTreeMap<String, String>,
    },
    /// A baseline entry's addresses, one `ipBlock` each.
    Cidr(IpNet),
    /// Every peer (a baseline entry's `any: true`): the rule has no `from`/`to`.
    Any,
}

impl Peer {
    pub fn service(&self) -> Option<&str> {
        match self {
            Peer::Pods { service, .. } | Peer::Block { service, .. } => Some(service),
            _ => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Peer::Pods { service, .. } | Peer::Block { service, .. } => service.clone(),
            Peer::Dns(d) => format!("{}/{}", d.namespace, labels_text(&d.labels)),
            Peer::Selector { namespace, labels } => {
                format!("{namespace}/{}", labels_text(labels))
            }
            Peer::Cidr(n) => n.to_string(),
            Peer::Any => "any".into(),
        }
    }
}

/// One allowed port, or range of ports (`endPort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortRange {
    pub transport: Transport,
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(&self, transport: Transport, port: u16) -> bool {
        self.transport == transport && (self.first..=self.last).contains(&port)
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}/{}", self.transport, self.first)
        } else {
            write!(f, "{}/{}-{}", self.transport, self.first, self.last)
        }
    }
}

/// One ingress or egress rule: the documented row(s) it exists for, its peers, its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Documented connection numbers (empty for the DNS rule).
    pub rows: Vec<u32>,
    /// The documented source and destination ("" for the DNS rule).
    pub src: String,
    pub dst: String,
    /// Why it exists, for humans: "row 1: CX Contact → Tenant Service, tcp/5050, tcp/8888".
    pub why: String,
    pub peers: Vec<Peer>,
    /// Empty with `any_port`: the document allows any port.
    pub ports: Vec<PortRange>,
    pub any_port: bool,
    /// The platform baseline entry the rule admits (its rows are empty).
    pub entry: Option<String>,
}

impl Rule {
    pub fn allows_port(&self, transport: Transport, port: u16) -> bool {
        self.any_port || self.ports.iter().any(|p| p.contains(transport, port))
    }
}

/// One NetworkPolicy: the pods of one documented service, isolated in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    pub name: String,
    pub service: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub side: Side,
    pub rules: Vec<Rule>,
    /// Lint findings on the rows of its rules, repeated as comments.
    pub lints: Vec<String>,
}

/// A documented row (or part of one) the policies cannot express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub row: Option<u32>,
    pub side: Option<Side>,
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.row, self.side) {
            (Some(r), Some(s)) => write!(f, "row {r} ({}): {}", s.as_str(), self.reason),
            (Some(r), None) => write!(f, "row {r}: {}", self.reason),
            (None, _) => f.write_str(&self.reason),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub policies: Vec<NetPolicy>,
    pub skipped: Vec<Skipped>,
    pub lints: Vec<Finding>,
    /// Documented rows with at least one generated rule.
    pub expressed_rows: BTreeSet<u32>,
    pub document: Option<String>,
    /// Baseline entries whose other end is the node: Kubernetes admits traffic to and
    /// from a pod's own node without a rule (the kubelet's probes, a node agent).
    pub node_admitted: BTreeSet<String>,
}

impl Generated {
    pub fn policy(&self, service: &str, side: Side) -> Option<&NetPolicy> {
        self.policies
            .iter()
            .find(|p| p.service == service && p.side == side)
    }
}

/// "Tenant Service" → "tenant-service": a DNS label (RFC 1123) for the policy name.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    // "auditor-ingress-" is 16 characters; a name is a DNS subdomain (253) but keep it a
    // label (63) so it also fits where names become labels.
    out.chars()
        .take(44)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// What the inventory says about where a documented service is.
enum Place<'i> {
    Pods(&'i KubeSelector),
    /// Selected by Service name only: NetworkPolicy selects pods by labels.
    ServiceOnly(&'i KubeSelector),
    External(&'i [IpNet]),
    /// A service (not an external) known only by addresses.
    AddressOnly,
    /// Reached only through a loopback mesh upstream.
    Mesh(u16),
    Unknown,
}

fn place<'i>(
    inv: &'i Inventory,
    kube: &'i BTreeMap<String, KubeSelector>,
    kinds: &BTreeMap<&str, EntryKind>,
    mesh: &BTreeMap<&str, u16>,
    service: &str,
) -> Place<'i> {
    if let Some(k) = kube.get(service) {
        return if k.labels.is_empty() {
            Place::ServiceOnly(k)
        } else {
            Place::Pods(k)
        };
    }
    match kinds.get(service) {
        Some(EntryKind::External) => Place::External(inv.networks(service)),
        Some(EntryKind::Service) if !inv.networks(service).is_empty() => Place::AddressOnly,
        _ => match mesh.get(service) {
            Some(&port) => Place::Mesh(port),
            None => Place::Unknown,
        },
    }
}

/// The peers for `service` at the other end of a rule, or why there are none.
fn peers_of(p: &Place<'_>, service: &str) -> Result<Vec<Peer>, String> {
    match p {
        Place::Pods(k) => Ok(vec![Peer::Pods {
            service: service.to_string(),
            namespace: k.namespace.clone(),
            labels: k.labels.clone(),
        }]),
        Place::ServiceOnly(k) => Err(format!(
            "{service} is inventoried by Service name only ({}/{}): a NetworkPolicy selects pods by labels; add its pods' labels to the inventory",
            k.namespace,
            k.service.as_deref().unwrap_or("?")
        )),
        Place::External([]) => Err(format!(
            "the external {service} has no addresses in the inventory: there is no ipBlock to allow (a NetworkPolicy cannot name DNS names)"
        )),
        Place::External(nets) => Ok(nets
            .iter()
            .map(|n| Peer::Block {
                service: service.to_string(),
                net: *n,
            })
            .collect()),
        Place::AddressOnly => Err(format!(
            "{service} is inventoried by address only: pod addresses change, so an ipBlock would not follow it; give it a `kubernetes:` namespace and labels"
        )),
        Place::Mesh(port) => Err(format!(
            "{service} is reached through the loopback mesh upstream 127.0.0.1:{port}: loopback is not network traffic a NetworkPolicy sees"
        )),
        Place::Unknown => Err(format!("{service} is not in the inventory")),
    }
}

/// Generates the policies the documents describe, for the deployment the inventory maps.
pub fn generate(
    list: &Allowlist,
    overrides: &Overrides,
    inv: &Inventory,
    opts: &Options,
    baseline: Option<&Baseline>,
) -> Generated {
    let policy = allowlist::RuleIndex::new(list, overrides);
    let kube: BTreeMap<String, KubeSelector> = inv
        .kube_selectors()
        .into_iter()
        .map(|(n, k)| (n.to_string(), k))
        .collect();
    let kinds: BTreeMap<&str, EntryKind> = inv.entries().collect();
    let mesh: BTreeMap<&str, u16> = inv
        .mesh_upstreams()
        .into_iter()
        .map(|(p, s)| (s, p))
        .collect();
    let lints = allowlist::lint::lint_with_overrides(list, overrides);
    let mut skipped = Vec::new();
    let mut policies: Vec<NetPolicy> = Vec::new();
    let mut names: BTreeSet<(String, String)> = BTreeSet::new();
    // Every service with pods in the inventory is isolated, also one nothing may reach:
    // that is what "only the documented connections" means.
    let sides: &[Side] = if opts.egress {
        &[Side::Ingress, Side::Egress]
    } else {
        &[Side::Ingress]
    };
    for (service, k) in &kube {
        if k.labels.is_empty() {
            skipped.push(Skipped {
                row: None,
                side: None,
                reason: format!(
                    "{service}: inventoried by Service name only ({}/{}): not isolated, a NetworkPolicy selects pods by labels",
                    k.namespace,
                    k.service.as_deref().unwrap_or("?")
                ),
            });
            continue;
        }
        if !is_dns_label(&k.namespace) {
            skipped.push(Skipped {
                row: None,
                side: None,
                reason: format!(
                    "{service}: {:?} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63): not isolated",
                    k.namespace
                ),
            });
            continue;
        }
        for &side in sides {
            let base = format!("auditor-{}-{}", side.as_str(), slug(service));
            let mut name = base.clone();
            let mut n = 2;
            while !names.insert((k.namespace.clone(), name.clone())) {
                name = format!("{base}-{n}");
                n += 1;
            }
            let mut rules = Vec::new();
            if side == Side::Egress
                && let Some(dns) = &opts.dns
            {
                rules.push(Rule {
                    rows: Vec::new(),
                    src: String::new(),
                    dst: String::new(),
                    why: format!("DNS: {}/{}", dns.namespace, labels_text(&dns.labels)),
                    peers: vec![Peer::Dns(dns.clone())],
                    ports: [Transport::Udp, Transport::Tcp]
                        .map(|t| PortRange {
                            transport: t,
                            first: 53,
                            last: 53,
                        })
                        .to_vec(),
                    any_port: false,
                    entry: None,
                });
            }
            policies.push(NetPolicy {
                name,
                service: service.clone(),
                namespace: k.namespace.clone(),
                labels: k.labels.clone(),
                side,
                rules,
                lints: Vec::new(),
            });
        }
    }
    let mut expressed_rows = BTreeSet::new();
    for (index, c) in list.connections.iter().enumerate() {
        let row_rules: Vec<&allowlist::Rule> = match (
            policy.service_id(&c.source),
            policy.service_id(&c.destination),
        ) {
            (Some(s), Some(d)) => policy
                .edge(s, d)
                .iter()
                .filter(|r| r.index == index)
                .collect(),
            _ => Vec::new(),
        };
        let Some(first) = row_rules.first() else {
            continue;
        };
        let skip = |side: Option<Side>, reason: String| Skipped {
            row: c.number,
            side,
            reason,
        };
        let (ports, any_port) = match first.basis {
            PortBasis::Unverified => {
                skipped.push(skip(
                    None,
                    format!(
                        "{} → {}: the document gives no port and the overrides do not either: the rule would have to allow every port (give it in the overrides: `rows: {{{}: [PORT]}}`)",
                        c.source,
                        c.destination,
                        c.number.map_or("N".into(), |n| n.to_string())
                    ),
                ));
                continue;
            }
            PortBasis::Any => (Vec::new(), true),
            PortBasis::Documented | PortBasis::Override => {
                let mut ports: Vec<PortRange> = row_rules
                    .iter()
                    .flat_map(|r| {
                        r.ports.iter().map(|p| PortRange {
                            transport: r.transport,
                            first: p.first,
                            last: p.last,
                        })
                    })
                    .collect();
                ports.sort_unstable();
                ports.dedup();
                (ports, false)
            }
        };
        let port_text = if any_port {
            "any port".to_string()
        } else {
            ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let unverified_transport = if c.transport.verified() {
            ""
        } else {
            " (transport not documented: both)"
        };
        let why = format!(
            "{}: {} → {}, {port_text}{unverified_transport}",
            c.label(),
            c.source,
            c.destination
        );
        let src = place(inv, &kube, &kinds, &mesh, &c.source);
        let dst = place(inv, &kube, &kinds, &mesh, &c.destination);
        for &side in sides {
            // The policy is on the side whose pods it selects; the peer is the other end.
            let (own, own_name, other, other_name) = match side {
                Side::Ingress => (&dst, &c.destination, &src, &c.source),
                Side::Egress => (&src, &c.source, &dst, &c.destination),
            };
            let Place::Pods(_) = own else {
                // Nothing to isolate on this side; say so only where it matters to the row.
                let why_not = match own {
                    // Egress to, or ingress from, outside the cluster: not ours to police.
                    Place::External(_) => None,
                    Place::ServiceOnly(_) => None, // warned once above
                    p => peers_of(p, own_name).err(),
                };
                if let Some(reason) = why_not {
                    skipped.push(skip(Some(side), format!("{reason}: not isolated")));
                }
                continue;
            };
            match peers_of(other, other_name) {
                Ok(peers) => {
                    let p = policies
                        .iter_mut()
                        .find(|p| p.service == *own_name && p.side == side)
                        .expect("a policy per selected service and side");
                    p.rules.push(Rule {
                        rows: c.number.into_iter().collect(),
                        src: c.source.clone(),
                        dst: c.destination.clone(),
                        why: why.clone(),
                        peers,
                        ports: ports.clone(),
                        any_port,
                        entry: None,
                    });
                    expressed_rows.extend(c.number);
                }
                Err(reason) => skipped.push(skip(Some(side), reason)),
            }
        }
    }
    let mut node_admitted = BTreeSet::new();
    if let Some(b) = baseline {
        platform_rules(b, inv, &mut policies, &mut skipped, &mut node_admitted);
    }
    for p in &mut policies {
        let rows: BTreeSet<u32> = p.rules.iter().flat_map(|r| r.rows.clone()).collect();
        p.lints = lints
            .iter()
            .filter(|f| f.rows.iter().any(|r| rows.contains(r)))
            .map(ToString::to_string)
            .collect();
    }
    Generated {
        policies,
        skipped,
        lints,
        expressed_rows,
        document: list.document.title.clone(),
        node_admitted,
    }
}

/// True when the selector selects (at least) every pod of the policy's service.
fn selects_all_of(sel: &KubeSelector, p: &NetPolicy, inv_service: Option<&str>) -> bool {
    sel.namespace == p.namespace
        && match &sel.service {
            Some(svc) => sel.labels.is_empty() && inv_service == Some(svc.as_str()),
            None => sel.labels.iter().all(|(k, v)| p.labels.get(k) == Some(v)),
        }
}

/// An entry whose traffic is the replies of another entry's (the cluster DNS answering
/// on the asker's ephemeral port: the kernel sees the answer as a send of its own). A
/// NetworkPolicy admits the replies of an admitted connection, so it needs no rule, and
/// a rule would open every ephemeral port to those pods.
fn replies_to<'b>(e: &Entry, b: &'b Baseline) -> Option<&'b Entry> {
    let from = e.from_end();
    if from.any || from.node || !from.addresses.is_empty() || !from.processes.is_empty() {
        return None;
    }
    if from.kubernetes.is_empty() || !e.to_end().any {
        return None;
    }
    b.entries().iter().find(|f| {
        f.name != e.name
            && e.transports().iter().all(|t| f.transports().contains(t))
            && from
                .kubernetes
                .iter()
                .all(|k| f.to_end().kubernetes.contains(k))
    })
}

/// The other end of a baseline entry as peers, what of it is not expressed, and whether
/// it is the node (admitted without a rule).
fn entry_peers(end: EntryEnd<'_>) -> (Vec<Peer>, Vec<String>, bool) {
    if end.any {
        return (vec![Peer::Any], Vec::new(), false);
    }
    let mut peers = Vec::new();
    let mut dropped = Vec::new();
    for k in end.kubernetes {
        if k.service.is_some() && k.labels.is_empty() {
            dropped.push(format!(
                "the Service {}/{} (a NetworkPolicy selects pods by labels)",
                k.namespace,
                k.service.as_deref().unwrap_or("?")
            ));
        } else {
            peers.push(Peer::Selector {
                namespace: k.namespace.clone(),
                labels: k.labels.clone(),
            });
        }
    }
    peers.extend(end.addresses.iter().map(|n| Peer::Cidr(*n)));
    if !end.processes.is_empty() {
        dropped.push(format!(
            "processes {} (a NetworkPolicy does not see processes)",
            end.processes.join(", ")
        ));
    }
    // Kubernetes always admits traffic to and from the node a pod runs on: the node
    // needs no rule (and has no address known here).
    (peers, dropped, end.node && end.kubernetes.is_empty())
}

/// The rules the platform baseline adds: for each isolated service, each entry whose
/// selected end covers its pods, from (or to) the entry's other end, on the entry's ports
/// or the ports the service declares in the inventory.
fn platform_rules(
    b: &Baseline,
    inv: &Inventory,
    policies: &mut [NetPolicy],
    skipped: &mut Vec<Skipped>,
    node_admitted: &mut BTreeSet<String>,
) {
    let kube: BTreeMap<String, KubeSelector> = inv
        .kube_selectors()
        .into_iter()
        .map(|(n, k)| (n.to_string(), k))
        .collect();
    // One note per entry and side, not one per policy.
    let mut notes: BTreeMap<(String, Side), BTreeSet<String>> = BTreeMap::new();
    let mut undeclared: BTreeMap<(String, Side), Vec<String>> = BTreeMap::new();
    for e in b.entries() {
        if let Some(f) = replies_to(e, b) {
            skipped.push(Skipped {
                row: None,
                side: None,
                reason: format!(
                    "baseline entry {}: the replies to entry {} (a NetworkPolicy admits the replies of an admitted connection): no rule",
                    e.name, f.name
                ),
            });
            continue;
        }
        for p in policies.iter_mut() {
            let (own, other) = match p.side {
                Side::Ingress => (e.to_end(), e.from_end()),
                Side::Egress => (e.from_end(), e.to_end()),
            };
            let inv_service = kube.get(&p.service).and_then(|k| k.service.as_deref());
            if !(own.any
                || own
                    .kubernetes
                    .iter()
                    .any(|k| selects_all_of(k, p, inv_service)))
            {
                continue;
            }
            let key = (e.name.to_string(), p.side);
            let ports: Vec<PortRange> = match e.ports() {
                EntryPorts::Listed(l) => e
                    .transports()
                    .into_iter()
                    .flat_map(|t| {
                        l.iter().map(move |s| PortRange {
                            transport: t,
                            first: s.first,
                            last: s.last,
                        })
                    })
                    .collect(),
                EntryPorts::Declared(which) => {
                    let d = inv.declared_ports().get(p.service.as_str());
                    let list = d.map_or(&[][..], |d| match which {
                        Declared::Probes => &d.probes[..],
                        Declared::Metrics => &d.metrics[..],
                    });
                    e.transports()
                        .into_iter()
                        .flat_map(|t| {
                            list.iter().map(move |&port| PortRange {
                                transport: t,
                                first: port,
                                last: port,
                            })
                        })
                        .collect()
                }
            };
            let (peers, dropped, node_implicit) = entry_peers(other);
            notes.entry(key.clone()).or_default().extend(dropped);
            if node_implicit {
                node_admitted.insert(e.name.to_string());
            }
            // Nothing a rule could name (the node, admitted anyway; processes): no rule,
            // whatever the ports.
            if peers.is_empty() {
                continue;
            }
            if ports.is_empty() {
                if let EntryPorts::Declared(_) = e.ports() {
                    undeclared.entry(key).or_default().push(p.service.clone());
                }
                continue;
            }
            let mut ports = ports;
            ports.sort_unstable();
            ports.dedup();
            let why = format!(
                "baseline {}: {} → {}, {}",
                e.name,
                match p.side {
                    Side::Ingress => peers.iter().map(Peer::text).collect::<Vec<_>>().join(" | "),
                    Side::Egress => p.service.clone(),
                },
                match p.side {
                    Side::Ingress => p.service.clone(),
                    Side::Egress => peers.iter().map(Peer::text).collect::<Vec<_>>().join(" | "),
                },
                ports
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            p.rules.push(Rule {
                rows: Vec::new(),
                src: String::new(),
                dst: String::new(),
                why,
                peers,
                ports,
                any_port: false,
                entry: Some(e.name.to_string()),
            });
        }
    }
    for ((entry, side), dropped) in notes {
        if !dropped.is_empty() {
            skipped.push(Skipped {
                row: None,
                side: Some(side),
                reason: format!(
                    "baseline entry {entry} ({}): {}: only the rest of the entry is admitted",
                    side.as_str(),
                    dropped.into_iter().collect::<Vec<_>>().join("; ")
                ),
            });
        }
    }
    for ((entry, side), services) in undeclared {
        skipped.push(Skipped {
            row: None,
            side: Some(side),
            reason: format!(
                "baseline entry {entry} ({}): no declared port in the inventory (probe_ports/metrics_ports) for {}: nothing admitted to them",
                side.as_str(),
                services.join(", ")
            ),
        });
    }
}

pub(crate) fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWLIST: &str = "version: 1
services:
- {name: A, kind: service}
- {name: B, kind: service}
- {name: Store, kind: external}
connections:
- {number: 1, source: A, destination: B, protocol: TCP, transport: tcp, ports: [80, \"20000-20010\"]}
- {number: 2, source: A, destination: B, protocol: X, transport: tcp, ports: {unknown: N/A}}
- {number: 3, source: A, destination: Store, protocol: TCP, transport: tcp, ports: [443]}
- {number: 4, source: B, destination: A, protocol: SIP, transport: both, ports: [5060]}
- {number: 5, source: Store, destination: B, protocol: TCP, transport: tcp, ports: [9000]}
";

    fn generated(inventory: &str, egress: bool) -> Generated {
        let list = allowlist::file::parse(ALLOWLIST, "a.yaml").unwrap();
        let inv = Inventory::parse(inventory, "i.yaml").unwrap();
        generate(
            &list,
            &Overrides::default(),
            &inv,
            &Options {
                egress,
                dns: Some(DnsPeer::kube_dns()),
            },
            None,
        )
    }

    const INVENTORY: &str = "version: 1
services:
  A: {kubernetes: {namespace: apps, labels: {app: a}}}
  B: {kubernetes: {namespace: data, labels: {app: b}}}
externals:
  Store: {addresses: [203.0.113.0/24]}
";

    #[test]
    fn rows_become_rules_with_ranges_transports_and_reasons_for_the_rest() {
        let g = generated(INVENTORY, true);
        let b_in = g.policy("B", Side::Ingress).unwrap();
        assert_eq!(b_in.name, "auditor-ingress-b");
        assert_eq!(b_in.rules.len(), 2, "row 2 has no port: skipped");
        assert_eq!(b_in.rules[0].rows, vec![1]);
        assert_eq!(
            b_in.rules[0]
                .ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["tcp/80", "tcp/20000-20010"]
        );
        let a_in = g.policy("A", Side::Ingress).unwrap();
        assert_eq!(
            a_in.rules[0]
                .ports
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["tcp/5060", "udp/5060"],
            "a row on both transports allows both"
        );
        let a_out = g.policy("A", Side::Egress).unwrap();
        assert!(matches!(a_out.rules[0].peers[0], Peer::Dns(_)));
        let to_store = a_out.rules.iter().find(|r| r.rows == [3]).unwrap();
        assert_eq!(
            to_store.peers,
            vec![Peer::Block {
                service: "Store".into(),
                net: "203.0.113.0/24".parse().unwrap()
            }]
        );
        // From outside the cluster: the external's addresses, as ipBlocks.
        let from_store = b_in.rules.iter().find(|r| r.rows == [5]).unwrap();
        assert!(
            matches!(&from_store.peers[..], [Peer::Block { net, .. }] if net.to_string() == "203.0.113.0/24")
        );
        let row2: Vec<_> = g.skipped.iter().filter(|s| s.row == Some(2)).collect();
        assert_eq!(row2.len(), 1, "{:?}", g.skipped);
        assert!(row2[0].reason.contains("every port"), "{}", row2[0]);
        assert!(!g.expressed_rows.contains(&2));
    }

    #[test]
    fn address_only_and_mesh_services_are_skipped_with_why() {
        let g = generated(
            "version: 1
services:
  A: {addresses: [10.0.0.1]}
  B: {kubernetes: {namespace: data, labels: {app: b}}}
mesh_upstreams:
  - {port: 9100, service: Store}
",
            true,
        );
        let text: Vec<String> = g.skipped.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("row 1 (ingress)") && t.contains("address only")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("row 4 (egress)") && t.contains("address only")),
            "{text:?}"
        );
        // Row 3 starts at A, which has no pods to isolate: its skip names A, not Store.
        assert!(
            text.iter().any(|t| t.starts_with("row 3 (egress)")),
            "{text:?}"
        );
        assert!(g.policy("A", Side::Ingress).is_none());
        assert!(g.policy("B", Side::Ingress).unwrap().rules.is_empty());
    }

    #[test]
    fn dns_peer_parses_or_says_how() {
        assert_eq!(
            DnsPeer::parse("kube-system/k8s-app=kube-dns").unwrap(),
            Some(DnsPeer::kube_dns())
        );
        assert_eq!(DnsPeer::parse("none").unwrap(), None);
        for bad in ["kube-system", "/a=b", "ns/a", "ns/=b"] {
            assert!(
                DnsPeer::parse(bad)
                    .unwrap_err()
                    .contains("NAMESPACE/KEY=VALUE")
            );
        }
        assert_eq!(
            slug("Genesys Web Services and Applications"),
            "genesys-web-services-and-applications"
        );
        assert_eq!(slug("External/customer"), "external-customer");
    }
}
