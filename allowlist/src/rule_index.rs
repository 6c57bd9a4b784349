//! The rule index: the lookup the verdict engine runs for every flow. Given (source
//! service, destination service, transport, port), which documented rows allow it, or why
//! none does. Built once per allowlist + overrides; a lookup is a matrix index and a scan
//! of a few rules, with no allocation. (It was `Policy`: "policy" now means only what a
//! flow is judged against, the allowlist with its overrides, inventory and baseline.)

use std::collections::HashMap;

use crate::{
    model::{Allowlist, PortSpec, Ports, Transport},
    overrides::Overrides,
};

pub type ServiceId = u32;

/// Where a rule's ports come from in this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortBasis {
    /// As documented.
    Documented,
    /// A configurable (*) or unknown port, replaced by the deployment's overrides.
    Override,
    /// The document allows any port.
    Any,
    /// The document gives no port and the overrides do not either: any port matches,
    /// but the match cannot be verified.
    Unverified,
}

/// One documented connection as this deployment applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Index into `Allowlist::connections`.
    pub index: usize,
    pub number: Option<u32>,
    pub transport: Transport,
    /// False when the document does not say which transport the row uses (its protocol is
    /// unknown): the row then has a rule on each transport, and neither is verified.
    pub transport_verified: bool,
    /// Effective ports (empty when `basis` is Any or Unverified).
    pub ports: Vec<PortSpec>,
    pub basis: PortBasis,
}

impl Rule {
    pub fn allows_port(&self, port: u16) -> bool {
        match self.basis {
            PortBasis::Any | PortBasis::Unverified => true,
            _ => self.ports.iter().any(|p| p.contains(port)),
        }
    }
}

/// Why a flow between two known services is or is not documented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A row allows this transport and port. `rules()`: the rows that match.
    Allowed,
    /// The services have rows on this transport, but not for this port. `rules()`: those rows.
    OtherPorts,
    /// Rows exist for this port (or at all) only over the other transport. `rules()`: those rows.
    OtherTransport,
    /// No row connects the two services in this direction.
    NoEdge,
}

#[derive(Debug, Clone, Copy)]
pub struct Lookup<'p> {
    pub outcome: Outcome,
    edge: &'p [Rule],
    /// Which of `edge` the outcome refers to (edges with more than 64 rows are not
    /// expected; beyond that the mask saturates to "all").
    mask: u64,
}

impl<'p> Lookup<'p> {
    pub fn rules(&self) -> impl Iterator<Item = &'p Rule> + '_ {
        self.edge
            .iter()
            .enumerate()
            .filter(|(i, _)| *i >= 64 || self.mask & (1 << i) != 0)
            .map(|(_, r)| r)
    }

    /// The documented numbers of `rules()`, in table order.
    pub fn numbers(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for n in self.rules().filter_map(|r| r.number) {
            // A row on both transports has two rules.
            if out.last() != Some(&n) {
                out.push(n);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct RuleIndex {
    names: Vec<String>,
    ids: HashMap<String, ServiceId>,
    /// `edges[src * n + dst]` = range into `rules`.
    edges: Vec<(u32, u32)>,
    rules: Vec<Rule>,
}

pub(crate) fn effective(
    ports: &Ports,
    row_override: Option<&Vec<PortSpec>>,
    service_override: Option<&Vec<PortSpec>>,
) -> (Vec<PortSpec>, PortBasis) {
    let chosen = row_override.or(service_override);
    match ports {
        Ports::Any { .. } => (Vec::new(), PortBasis::Any),
        Ports::Unknown { .. } => match chosen {
            Some(p) => (p.clone(), PortBasis::Override),
            None => (Vec::new(), PortBasis::Unverified),
        },
        Ports::Listed(list) => {
            let Some(replacement) = chosen.filter(|_| list.iter().any(|p| p.configurable)) else {
                return (list.clone(), PortBasis::Documented);
            };
            let mut out: Vec<PortSpec> = list.iter().copied().filter(|p| !p.configurable).collect();
            out.extend(replacement.iter().copied());
            (out, PortBasis::Override)
        }
    }
}

impl RuleIndex {
    pub fn new(allowlist: &Allowlist, overrides: &Overrides) -> RuleIndex {
        let mut names = Vec::new();
        let mut ids = HashMap::new();
        let mut intern = |name: &str, names: &mut Vec<String>| -> ServiceId {
            *ids.entry(name.to_string()).or_insert_with(|| {
                names.push(name.to_string());
                (names.len() - 1) as ServiceId
            })
        };
        for s in &allowlist.services {
            intern(&s.name, &mut names);
        }
        for c in &allowlist.connections {
            intern(&c.source, &mut names);
            intern(&c.destination, &mut names);
        }
        // Aliases resolve to their service's id.
        for s in &allowlist.services {
            let id = ids[&s.name];
            for a in &s.aliases {
                ids.entry(a.clone()).or_insert(id);
            }
        }
        let n = names.len();
        let mut per_edge: Vec<Vec<Rule>> = vec![Vec::new(); n * n];
        for (index, c) in allowlist.connections.iter().enumerate() {
            let (s, d) = (ids[&c.source] as usize, ids[&c.destination] as usize);
            let row = c.number.and_then(|num| overrides.rows.get(&num));
            let (ports, basis) = effective(&c.ports, row, overrides.services.get(&c.destination));
            // A row on both transports (or an unknown one) is one rule per transport.
            for &transport in c.transport.list() {
                per_edge[s * n + d].push(Rule {
                    index,
                    number: c.number,
                    transport,
                    transport_verified: c.transport.verified(),
                    ports: ports.clone(),
                    basis,
                });
            }
        }
        let mut edges = Vec::with_capacity(n * n);
        let mut rules = Vec::new();
        for e in per_edge {
            edges.push((rules.len() as u32, e.len() as u32));
            rules.extend(e);
        }
        RuleIndex {
            names,
            ids,
            edges,
            rules,
        }
    }

    /// The documented rows this deployment judges on any port without the document
    /// saying so (`PortBasis::Unverified`: the document gives no port and the overrides
    /// none), by number, in table order. A row the document allows "Any" port is not
    /// among them: any port is what it documents.
    pub fn port_unverified_rules(&self) -> Vec<u32> {
        let mut out: Vec<(usize, u32)> = self
            .rules
            .iter()
            .filter(|r| r.basis == PortBasis::Unverified)
            .filter_map(|r| Some((r.index, r.number?)))
            .collect();
        out.sort();
        out.dedup();
        out.into_iter().map(|(_, n)| n).collect()
    }

    /// The id of a service by name or alias.
    pub fn service_id(&self, name: &str) -> Option<ServiceId> {
        self.ids.get(name).copied()
    }

    pub fn service_name(&self, id: ServiceId) -> &str {
        &self.names[id as usize]
    }

    pub fn service_count(&self) -> usize {
        self.names.len()
    }

    /// Every rule from `src` to `dst`, in table order.
    pub fn edge(&self, src: ServiceId, dst: ServiceId) -> &[Rule] {
        let n = self.names.len();
        match self.edges.get(src as usize * n + dst as usize) {
            Some(&(start, len)) if (src as usize) < n && (dst as usize) < n => {
                &self.rules[start as usize..(start + len) as usize]
            }
            _ => &[],
        }
    }

    pub fn lookup(
        &self,
        src: ServiceId,
        dst: ServiceId,
        transport: Transport,
        port: u16,
    ) -> Lookup<'_> {
        let edge = self.edge(src, dst);
        let mask_of = |pred: &dyn Fn(&Rule) -> bool| -> u64 {
            edge.iter()
                .enumerate()
                .filter(|(_, r)| pred(r))
                .fold(0u64, |m, (i, _)| if i < 64 { m | 1 << i } else { m })
        };
        let allowed = mask_of(&|r| r.transport == transport && r.allows_port(port));
        if allowed != 0 {
            return Lookup {
                outcome: Outcome::Allowed,
                edge,
                mask: allowed,
            };
        }
        let other_transport_port = mask_of(&|r| r.transport != transport && r.allows_port(port));
        if other_transport_port != 0 {
            return Lookup {
                outcome: Outcome::OtherTransport,
                edge,
                mask: other_transport_port,
            };
        }
        let same_transport = mask_of(&|r| r.transport == transport);
        if same_transport != 0 {
            return Lookup {
                outcome: Outcome::OtherPorts,
                edge,
                mask: same_transport,
            };
        }
        if !edge.is_empty() {
            return Lookup {
                outcome: Outcome::OtherTransport,
                edge,
                mask: mask_of(&|_| true),
            };
        }
        Lookup {
            outcome: Outcome::NoEdge,
            edge,
            mask: 0,
        }
    }

    /// The pair alone, port and transport aside: Allowed (every row from `src` to `dst`)
    /// when any row documents the pair, else NoEdge. A service-mesh transport leg is
    /// judged so: its port is the sidecar's, the app's port was judged at the app leg.
    pub fn lookup_pair(&self, src: ServiceId, dst: ServiceId) -> Lookup<'_> {
        let edge = self.edge(src, dst);
        let mask = (0..edge.len()).fold(0u64, |m, i| if i < 64 { m | 1 << i } else { m });
        Lookup {
            outcome: if edge.is_empty() {
                Outcome::NoEdge
            } else {
                Outcome::Allowed
            },
            edge,
            mask,
        }
    }

    /// `lookup` by names (or aliases); None when either name is not in the allowlist.
    pub fn lookup_names(
        &self,
        src: &str,
        dst: &str,
        transport: Transport,
        port: u16,
    ) -> Option<Lookup<'_>> {
        Some(self.lookup(
            self.service_id(src)?,
            self.service_id(dst)?,
            transport,
            port,
        ))
    }
}
