//! The inventory file: where each documented service runs in one deployment — addresses
//! and CIDRs, optionally process names and cgroup path patterns — plus the external
//! destinations the deployment knows and its service-mesh loopback upstreams.
//!
//! ```yaml
//! version: 1
//! services:
//!   Tenant Service:
//!     addresses: [10.0.1.0/24, "fd00::10"]
//!     processes: [tenant]
//!     cgroups: ["/kubepods/*/tenant-*"]
//!   Redis:
//!     dns: ["*.redis.cache.windows.net"]
//! externals:
//!   Object storage:
//!     addresses: [203.0.113.0/24]
//!     dns: [mybucket.s3.eu-west-1.amazonaws.com, "**.storage.corp.example.com"]
//! mesh_upstreams:            # a connect to 127.0.0.1:PORT is a connect to SERVICE
//!   - {port: 9100, service: Config Service}
//! mesh:                      # the sidecar: its connections are mesh legs
//!   sidecar: {processes: [envoy]}
//!   inbound_ports: [20000]
//! ```
//!
//! A service may also declare the ports its pods expose to the platform, `probe_ports`
//! (kubelet probes) and `metrics_ports` (Prometheus): the platform baseline's
//! `declared_ports` entries match them (in Kubernetes mode the pod spec says it).
//!
//! `dns:` names an entry by the DNS names its clients resolve (`*` is one label, `**` one
//! or more; the syntax and the public-suffix rules are in `crate::dns::pattern`). A
//! service or external may have addresses, names, or both; an external needs one of
//! them. A name is one entry's: two entries claiming one exact name, or two equally
//! specific wildcard patterns that match a common name, are refused at load (see
//! `dns_names`); otherwise the most specific pattern wins.
//!
//! Loopback addresses are honoured as written: an entry that lists `127.0.1.6` (or
//! `127.0.0.0/8`, or `::1`) identifies connections from and to that address. A loopback
//! connect to a port declared in `mesh_upstreams` is that upstream first, whatever the
//! address entries say, because in a pod it is the sidecar listener, not the service.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
};

use allowlist::FileError;
use ipnet::IpNet;
use serde::Deserialize;
use serde_saphyr::Spanned;

// `Inventory::declared_ports` hands these out: its callers name them here.
pub use super::cluster::DeclaredPorts;
use super::{
    IdentitySource, LocalEndpoint, Resolved, Via,
    cluster::KubeSelector,
    dns_names::{At, DnsNames},
};
use crate::dns::pattern::DnsPattern;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor inventory")]
struct RawInventory {
    version: u32,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawService>")]
    services: BTreeMap<String, Spanned<RawService>>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawExternal>")]
    externals: BTreeMap<String, Spanned<RawExternal>>,
    #[serde(default)]
    #[schemars(with = "Vec<RawUpstream>")]
    mesh_upstreams: Vec<Spanned<RawUpstream>>,
    #[serde(default)]
    #[schemars(with = "Option<super::mesh::RawMesh>")]
    mesh: Option<Spanned<super::mesh::RawMesh>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    processes: Vec<String>,
    #[serde(default)]
    cgroups: Vec<String>,
    /// Where the service runs in Kubernetes (used by `auditor run --kubernetes`).
    #[serde(default)]
    kubernetes: Option<KubeSelector>,
    /// Ports the kubelet probes (what the pod spec declares as probes).
    #[serde(default)]
    probe_ports: Vec<u16>,
    /// Ports Prometheus scrapes.
    #[serde(default)]
    metrics_ports: Vec<u16>,
    /// DNS names its clients resolve to reach it: exact names, or patterns where `*` is
    /// one label and `**` one or more (`*.redis.cache.windows.net`; quote a pattern that
    /// begins with `*`, which YAML would read as an alias). A pattern that covers a public
    /// suffix, such as `*.com` or `**.s3.amazonaws.com`, is refused.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    dns: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawExternal {
    /// Its IP addresses and CIDRs. An external needs addresses, dns names, or both.
    #[serde(default)]
    addresses: Vec<String>,
    /// DNS names it is reached by: exact names, or patterns where `*` is one label and
    /// `**` one or more (`mybucket.s3.eu-west-1.amazonaws.com`, `"*.redis.cache.windows.net"`:
    /// quote a pattern that begins with `*`, which YAML would read as an alias). A pattern
    /// that covers a public suffix, such as `*.com` or `**.s3.amazonaws.com`, is refused.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    dns: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    /// The loopback port the client connects to inside its own pod.
    port: u16,
    service: String,
    /// The service's real port, when the sidecar listener uses another one.
    #[serde(default)]
    service_port: Option<u16>,
}

/// Longest-prefix match over one address family, one hash probe per prefix length in use
/// (deployments use few lengths: /32, /24, /16 …), longest first.
#[derive(Debug, Default, Clone)]
struct PrefixTable {
    lengths: Vec<u8>,
    map: HashMap<(u128, u8), u32>,
}

impl PrefixTable {
    fn mask(bits: u8, len: u8, addr: u128) -> u128 {
        if len == 0 {
            return 0;
        }
        let keep = u128::MAX << (128 - len as u32);
        // v4 addresses sit in the low 32 bits: shift the mask down.
        if bits == 32 {
            addr & (keep >> 96)
        } else {
            addr & keep
        }
    }

    fn insert(&mut self, bits: u8, addr: u128, len: u8, id: u32) -> Option<u32> {
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        self.map.insert((Self::mask(bits, len, addr), len), id)
    }

    fn lookup(&self, bits: u8, addr: u128) -> Option<(u32, u8)> {
        self.lengths.iter().find_map(|&len| {
            self.map
                .get(&(Self::mask(bits, len, addr), len))
                .map(|&id| (id, len))
        })
    }
}

/// What a name in the inventory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Service,
    External,
}

#[derive(Debug, Clone)]
pub struct Inventory {
    origin: String,
    names: Vec<Arc<str>>,
    kinds: Vec<EntryKind>,
    v4: PrefixTable,
    v6: PrefixTable,
    processes: HashMap<String, u32>,
    cgroups: globset::GlobSet,
    cgroup_owner: Vec<(u32, usize)>, // pattern index -> (id, specificity)
    upstreams: HashMap<u16, (u32, u16)>,
    kube: Vec<(Arc<str>, KubeSelector)>,
    /// Each entry's addresses as written (by id): NetworkPolicy `ipBlock`s need them.
    nets: Vec<Vec<IpNet>>,
    declared: HashMap<Arc<str>, DeclaredPorts>,
    mesh: Option<super::mesh::Mesh>,
    /// The `dns:` names and patterns, to entry ids.
    dns: DnsNames,
}

/// The entry that declared an address, and where: a duplicate names it.
#[derive(Debug, Clone, Copy)]
struct Owner {
    id: u32,
    line: u64,
    column: u64,
}

fn err<T>(origin: &str, at: &Spanned<T>, message: String) -> FileError {
    FileError::at(origin, at, message)
}

/// The largest inventory read, in YAML nodes (maps, sequences and scalars): an entry
/// `name: {addresses: [a]}` is five, so about 400,000 such entries. Documented in README.
pub const MAX_INVENTORY_NODES: usize = 2_000_000;

impl Inventory {
    pub fn load(path: &std::path::Path) -> Result<Inventory, FileError> {
        let (text, origin) = allowlist::file::read_source(path)?;
        Inventory::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Inventory, FileError> {
        // saphyr's default budget (250,000 nodes) stops near 50,000 entries; a node's
        // inventory can be larger. The bound stays: it is what keeps a hostile or runaway
        // file from taking the daemon's memory.
        let mut budget = serde_saphyr::Budget::default();
        budget.max_nodes = MAX_INVENTORY_NODES;
        budget.max_events = 2 * MAX_INVENTORY_NODES;
        let mut options = serde_saphyr::Options::default();
        options.budget = Some(budget);
        let raw: RawInventory = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let mut fe = FileError::from_saphyr(origin, text, &e);
            if fe.message.contains("budget breached") {
                fe.message = format!(
                    "the inventory is larger than auditor reads: more than {MAX_INVENTORY_NODES} \
                     YAML nodes (about {} entries of one address each) ({}); \
                     describe address ranges with CIDRs, or split the nodes' inventories",
                    MAX_INVENTORY_NODES / 5,
                    fe.message
                );
            }
            fe
        })?;
        if raw.version != 1 {
            return Err(FileError::at_start(
                origin,
                format!(
                    "inventory version {} is not supported (expected 1)",
                    raw.version
                ),
            ));
        }
        let mut inv = Inventory {
            origin: origin.to_string(),
            names: Vec::new(),
            kinds: Vec::new(),
            v4: PrefixTable::default(),
            v6: PrefixTable::default(),
            processes: HashMap::new(),
            cgroups: globset::GlobSet::empty(),
            cgroup_owner: Vec::new(),
            upstreams: HashMap::new(),
            kube: Vec::new(),
            nets: Vec::new(),
            declared: HashMap::new(),
            mesh: None,
            dns: DnsNames::default(),
        };
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut owners: HashMap<IpNet, Owner> = HashMap::new();
        let mut globs = globset::GlobSetBuilder::new();
        for (name, s) in &raw.services {
            let id = inv.add_entry(
                name,
                s,
                EntryKind::Service,
                &s.value.addresses,
                &mut ids,
                &mut owners,
            )?;
            inv.add_dns(id, &s.value.dns, text)?;
        }
        for (name, e) in &raw.externals {
            if e.value.addresses.is_empty() && e.value.dns.is_empty() {
                return Err(err(
                    origin,
                    e,
                    format!(
                        "{name}: an external needs its addresses, its dns names, or both \
                         (addresses: [203.0.113.0/24], dns: [\"*.example.com\"])"
                    ),
                ));
            }
            let id = inv.add_entry(
                name,
                e,
                EntryKind::External,
                &e.value.addresses,
                &mut ids,
                &mut owners,
            )?;
            inv.add_dns(id, &e.value.dns, text)?;
        }
        inv.dns.check_ties(origin, &inv.names)?;
        for (name, s) in &raw.services {
            let id = ids[&allowlist::names::clean(name)];
            if let Some(k) = &s.value.kubernetes {
                if k.labels.is_empty() && k.service.is_none() {
                    return Err(err(
                        origin,
                        s,
                        format!("{name}: a kubernetes selector needs labels or a service"),
                    ));
                }
                inv.kube.push((inv.names[id as usize].clone(), k.clone()));
            }
            if !s.value.probe_ports.is_empty() || !s.value.metrics_ports.is_empty() {
                inv.declared.insert(
                    inv.names[id as usize].clone(),
                    DeclaredPorts {
                        probes: s.value.probe_ports.clone(),
                        metrics: s.value.metrics_ports.clone(),
                    },
                );
            }
            for p in &s.value.processes {
                if let Some(prev) = inv.processes.insert(p.clone(), id)
                    && prev != id
                {
                    return Err(err(
                        origin,
                        s,
                        format!(
                            "process {p:?} is declared for both {} and {}",
                            inv.names[prev as usize], inv.names[id as usize]
                        ),
                    ));
                }
            }
            for pattern in &s.value.cgroups {
                let glob = globset::GlobBuilder::new(pattern)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| err(origin, s, format!("cgroup pattern {pattern:?}: {e}")))?;
                globs.add(glob);
                let specificity = pattern.chars().filter(|c| !matches!(c, '*' | '?')).count();
                inv.cgroup_owner.push((id, specificity));
            }
        }
        inv.cgroups = globs.build().map_err(|e| FileError {
            origin: origin.into(),
            line: 0,
            column: 0,
            message: format!("cgroup patterns: {e}"),
        })?;
        for u in &raw.mesh_upstreams {
            let name = allowlist::names::clean(&u.value.service);
            let id = match ids.get(&name) {
                Some(&id) => id,
                None => {
                    // A documented service reached only through the mesh needs no addresses.
                    let id = inv.names.len() as u32;
                    ids.insert(name.clone(), id);
                    inv.names.push(name.clone().into());
                    inv.kinds.push(EntryKind::Service);
                    inv.nets.push(Vec::new());
                    id
                }
            };
            if u.value.port == 0 {
                return Err(err(origin, u, "mesh upstream port 0 is not a port".into()));
            }
            if inv
                .upstreams
                .insert(
                    u.value.port,
                    (id, u.value.service_port.unwrap_or(u.value.port)),
                )
                .is_some()
            {
                return Err(err(
                    origin,
                    u,
                    format!("mesh upstream port {} is declared twice", u.value.port),
                ));
            }
        }
        if let Some(m) = &raw.mesh {
            inv.mesh = Some(super::mesh::Mesh::new(origin, m)?);
        }
        Ok(inv)
    }

    fn add_entry<T>(
        &mut self,
        name: &str,
        span: &Spanned<T>,
        kind: EntryKind,
        addresses: &[String],
        ids: &mut HashMap<String, u32>,
        owners: &mut HashMap<IpNet, Owner>,
    ) -> Result<u32, FileError> {
        let origin = self.origin.clone();
        let clean = allowlist::names::clean(name);
        if clean.is_empty() {
            return Err(err(&origin, span, "a service with an empty name".into()));
        }
        if ids.contains_key(&clean) {
            return Err(err(
                &origin,
                span,
                format!("{clean:?} is declared twice (services and externals share one namespace)"),
            ));
        }
        let id = self.names.len() as u32;
        ids.insert(clean.clone(), id);
        self.names.push(clean.clone().into());
        self.kinds.push(kind);
        self.nets.push(Vec::new());
        for a in addresses {
            let net: IpNet = a
                .parse::<IpNet>()
                .or_else(|_| a.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    err(
                        &origin,
                        span,
                        format!("{clean}: {a:?} is not an IP address or CIDR"),
                    )
                })?
                .trunc();
            self.nets[id as usize].push(net);
            let here = Owner {
                id,
                line: span.referenced.line(),
                column: span.referenced.column(),
            };
            if let Some(prev) = owners.insert(net, here)
                && prev.id != id
            {
                // Entries are read in name order, not file order: blame the one written
                // later, the duplicate, and name the line of the first.
                let (first, second) = if (prev.line, prev.column) <= (here.line, here.column) {
                    (prev, here)
                } else {
                    (here, prev)
                };
                return Err(FileError {
                    origin,
                    line: second.line,
                    column: second.column,
                    message: format!(
                        "{}: {net} is already declared for {} (line {})",
                        self.names[second.id as usize], self.names[first.id as usize], first.line
                    ),
                });
            }
            match net {
                IpNet::V4(n) => self
                    .v4
                    .insert(32, u32::from(n.addr()) as u128, n.prefix_len(), id),
                IpNet::V6(n) => self
                    .v6
                    .insert(128, u128::from(n.addr()), n.prefix_len(), id),
            };
        }
        Ok(id)
    }

    /// Entry `id`'s `dns:` patterns, each checked where it is written (`text`: the file).
    fn add_dns(
        &mut self,
        id: u32,
        patterns: &[Spanned<String>],
        text: &str,
    ) -> Result<(), FileError> {
        for p in patterns {
            let at = At {
                line: p.referenced.line(),
                column: p.referenced.column(),
            };
            let pattern = DnsPattern::parse(&p.value).map_err(|e| FileError {
                origin: self.origin.clone(),
                line: at.line,
                column: column_in(text, p, e.offset),
                message: format!(
                    "{}: dns {:?}: {}",
                    self.names[id as usize], p.value, e.reason
                ),
            })?;
            self.dns
                .insert(pattern, id, at, &self.origin, &self.names)?;
        }
        Ok(())
    }

    /// The `kubernetes:` selectors, by documented service name.
    pub fn kube_selectors(&self) -> Vec<(Arc<str>, KubeSelector)> {
        self.kube.clone()
    }

    /// The addresses and CIDRs an entry lists (empty when it has none, or is unknown).
    pub fn networks(&self, name: &str) -> &[IpNet] {
        self.names
            .iter()
            .position(|n| n.as_ref() == name)
            .map_or(&[], |id| &self.nets[id])
    }

    /// The services reached through a loopback mesh upstream: (loopback port, service).
    pub fn mesh_upstreams(&self) -> Vec<(u16, &str)> {
        let mut out: Vec<(u16, &str)> = self
            .upstreams
            .iter()
            .map(|(&port, &(id, _))| (port, self.names[id as usize].as_ref()))
            .collect();
        out.sort_unstable();
        out
    }

    /// The mesh section, when the deployment runs a service mesh.
    pub fn mesh(&self) -> Option<&super::mesh::Mesh> {
        self.mesh.as_ref()
    }

    /// The platform ports each service declares, by service name.
    pub fn declared_ports(&self) -> &HashMap<Arc<str>, DeclaredPorts> {
        &self.declared
    }

    /// The entries whose declared networks overlap `net`.
    pub fn overlapping(&self, net: &IpNet) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .nets
            .iter()
            .enumerate()
            .filter(|(_, nets)| {
                nets.iter()
                    .any(|n| n.contains(&net.network()) || net.contains(&n.network()))
            })
            .map(|(id, _)| self.names[id].as_ref())
            .collect();
        out.dedup();
        out
    }

    /// The entry a process name is declared for.
    pub fn process_owner(&self, comm: &str) -> Option<&str> {
        self.processes
            .get(comm)
            .map(|id| self.names[*id as usize].as_ref())
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every name the inventory declares, with its kind.
    pub fn entries(&self) -> impl Iterator<Item = (&str, EntryKind)> {
        self.names
            .iter()
            .map(|n| n.as_ref())
            .zip(self.kinds.iter().copied())
    }

    fn by_address(&self, addr: IpAddr) -> Option<(u32, u8)> {
        match addr.to_canonical() {
            IpAddr::V4(a) => self.v4.lookup(32, u32::from(a) as u128),
            IpAddr::V6(a) => self.v6.lookup(128, u128::from(a)),
        }
    }

    fn resolved(&self, id: u32, via: Via) -> Resolved {
        Resolved {
            service: self.names[id as usize].clone(),
            via,
            port: None,
            k8s: None,
        }
    }
}

/// The column of byte `offset` of a scalar's text: the scalar's own column, past its
/// opening quote if it has one. Exact for a plain scalar, and for a quoted one without
/// escapes before the fault (columns count characters, as saphyr's do).
fn column_in(text: &str, scalar: &Spanned<String>, offset: usize) -> u64 {
    let (line, column) = (scalar.referenced.line(), scalar.referenced.column());
    let quoted = text
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .and_then(|l| l.chars().nth(column.saturating_sub(1) as usize))
        .is_some_and(|c| c == '"' || c == '\'');
    let before = scalar
        .value
        .char_indices()
        .take_while(|&(i, _)| i < offset)
        .count() as u64;
    column + u64::from(quoted) + before
}

fn is_loopback(a: IpAddr) -> bool {
    a.to_canonical().is_loopback()
}

impl IdentitySource for Inventory {
    fn name(&self) -> &str {
        "inventory"
    }

    fn local(&self, ep: &LocalEndpoint<'_>) -> Option<Resolved> {
        if let Some(cg) = ep.cgroup {
            let best = self
                .cgroups
                .matches(cg)
                .into_iter()
                .map(|i| self.cgroup_owner[i])
                .max_by_key(|&(_, spec)| spec);
            if let Some((id, _)) = best {
                return Some(self.resolved(id, Via::Cgroup));
            }
        }
        if let Some(&id) = self.processes.get(ep.comm) {
            return Some(self.resolved(id, Via::Process));
        }
        // A loopback address identifies the source only when the inventory lists it.
        if let Some(addr) = ep.addr.filter(|a| !a.is_unspecified())
            && let Some((id, len)) = self.by_address(addr)
        {
            return Some(self.resolved(id, Via::Address { prefix_len: len }));
        }
        // Loopback or unknown source address: the namespace's own addresses say who it is,
        // when they all belong to one service.
        let mut found: Option<u32> = None;
        for a in ep.netns_addrs.iter().filter(|a| !is_loopback(**a)) {
            match (self.by_address(*a), found) {
                (Some((id, _)), None) => found = Some(id),
                (Some((id, _)), Some(f)) if id != f => return None,
                _ => {}
            }
        }
        found.map(|id| self.resolved(id, Via::Netns))
    }

    fn remote(&self, addr: IpAddr, port: u16) -> Option<Resolved> {
        if is_loopback(addr)
            && let Some(&(id, service_port)) = self.upstreams.get(&port)
        {
            return Some(Resolved {
                service: self.names[id as usize].clone(),
                via: Via::MeshUpstream { port },
                port: Some(service_port),
                k8s: None,
            });
        }
        // Any other address, loopback included, is what the inventory lists it as.
        self.by_address(addr)
            .map(|(id, len)| self.resolved(id, Via::Address { prefix_len: len }))
    }

    /// The entry a `dns:` pattern names `name` for. A name carries no port: the entry's
    /// rows judge the port.
    fn named(&self, name: &str, _port: u16) -> Option<Resolved> {
        let lower;
        let mut name = name.strip_suffix('.').unwrap_or(name);
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            name = &lower;
        }
        let (id, pattern) = self.dns.lookup(name)?;
        Some(self.resolved(
            id,
            Via::Dns {
                pattern: pattern.clone(),
            },
        ))
    }
}

/// The JSON Schema of the inventory file (`auditor schema inventory`,
/// docs/inventory.schema.json), from the same types the loader reads.
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(RawInventory);
    schema.insert(
        "$comment".into(),
        "Generated from auditor/src/identity/inventory.rs by `auditor schema inventory`; do not edit."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// 60,000 entries (past saphyr's default budget of 250,000 nodes) load.
    #[test]
    fn a_large_inventory_loads() {
        let mut text = String::from("version: 1\nservices:\n");
        for i in 0..60_000u32 {
            let [_, a, b, c] = i.to_be_bytes();
            text.push_str(&format!("  s{i}: {{addresses: [10.{a}.{b}.{c}]}}\n"));
        }
        let inv = Inventory::parse(&text, "big.yaml").unwrap_or_else(|e| panic!("{e}"));
        drop(inv);
    }
}
