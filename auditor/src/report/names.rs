//! The report's DNS names (`Names`): built from a store's edges and the names it learned,
//! combined across reports, and the sentence every format prints. Only what the edges'
//! destinations carry is told: a node whose egress carries no DNS mark has unknown
//! names, never "none found".

use std::collections::{BTreeMap, BTreeSet};

use super::model::{BareEgress, DomainUse, Learned, NamedEgress, Names, Seen, ServiceNames};
use crate::{
    edge::{Edge, OVERFLOW},
    model::Resolution,
    store::{LearnedName, StoredEdge},
};

/// The names of a store's edges in the period, with the learning of each name.
pub(super) fn from_store(edges: &[StoredEdge], learned: &[LearnedName]) -> Names {
    let mut names = Names {
        nodes: edges
            .iter()
            .filter(|e| e.edge.dst.resolution.is_some())
            .map(|e| e.node.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        statement: String::new(),
        services: Vec::new(),
        undocumented: Vec::new(),
        bare: Vec::new(),
    };
    let learning = |node: &str, domain: &str| -> Vec<Learned> {
        learned
            .iter()
            .filter(|l| l.node == node && l.name == domain)
            .map(|l| Learned {
                node: l.node.clone(),
                resolver: l.resolver,
                answers: l.answers,
                first_learned: l.first_learned_ms,
                last_learned: l.last_learned_ms,
            })
            .collect()
    };
    for StoredEdge { node, edge: e } in edges {
        let seen = || Seen {
            count: e.count,
            first_seen: e.first_seen,
            last_seen: e.last_seen,
            nodes: vec![node.clone()],
        };
        if let (Some(service), Some(domain)) = (&e.dst.service, &e.dst.domain)
            && service != OVERFLOW
        {
            names.services.push(ServiceNames {
                service: service.clone(),
                domains: vec![DomainUse {
                    domain: domain.clone(),
                    seen: seen(),
                    learned: Vec::new(),
                }],
            });
        }
        if let Some(domain) = &e.dst.domain
            && e.verdict.is_violation()
        {
            names.undocumented.push(NamedEgress {
                verdict: e.verdict,
                src: e.src.name(),
                domain: domain.clone(),
                dst: e.dst.name(),
                transport: e.transport,
                port: e.dst.port.unwrap_or(0),
                seen: seen(),
                learned: Vec::new(),
            });
        }
        if let Some(addr) = bare_outside(e) {
            names.bare.push(BareEgress {
                verdict: e.verdict,
                src: e.src.name(),
                addr,
                service: e.dst.service.clone(),
                transport: e.transport,
                port: e.dst.port.unwrap_or(0),
                seen: seen(),
            });
        }
    }
    // The learning once per name and node, after the edges are united: two edges by one
    // name must not count its answers twice.
    finish(&mut names, &[]);
    for d in names.services.iter_mut().flat_map(|s| &mut s.domains) {
        d.learned = d
            .seen
            .nodes
            .iter()
            .flat_map(|n| learning(n, &d.domain))
            .collect();
    }
    for u in &mut names.undocumented {
        u.learned = u
            .seen
            .nodes
            .iter()
            .flat_map(|n| learning(n, &u.domain))
            .collect();
    }
    names
}

/// The address of an edge used bare to somewhere outside the cluster: no Kubernetes
/// identity (a pod or Service is the cluster's own) and not loopback (a process talking
/// to itself resolves nothing).
fn bare_outside(e: &Edge) -> Option<std::net::IpAddr> {
    let d = &e.dst;
    let in_cluster = d.namespace.is_some() || d.pod.is_some() || d.k8s_service.is_some();
    let addr = d.addr?;
    (d.resolution == Some(Resolution::Bare) && !in_cluster && !addr.is_loopback()).then_some(addr)
}

/// Names for a source that holds none (Prometheus series never carry a name): unknown.
pub(super) fn unknown() -> Names {
    Names {
        nodes: Vec::new(),
        statement: String::new(),
        services: Vec::new(),
        undocumented: Vec::new(),
        bare: Vec::new(),
    }
}

/// Two reports' names as one (the lists are united by `finish`). A report before
/// `auditor-report/5` has none: its nodes' names are unknown.
pub(super) fn combine(a: Option<Names>, b: Option<Names>) -> Option<Names> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x),
        (Some(mut a), Some(b)) => {
            a.nodes.extend(b.nodes);
            a.services.extend(b.services);
            a.undocumented.extend(b.undocumented);
            a.bare.extend(b.bare);
            Some(a)
        }
    }
}

/// Unites the entries of one key (across edges and nodes), orders them, and says what
/// is known: every report input ends here.
pub(super) fn finish(n: &mut Names, report_nodes: &[String]) {
    n.nodes.sort();
    n.nodes.dedup();
    let mut by_service: BTreeMap<String, Vec<DomainUse>> = BTreeMap::new();
    for s in std::mem::take(&mut n.services) {
        by_service.entry(s.service).or_default().extend(s.domains);
    }
    n.services = by_service
        .into_iter()
        .map(|(service, domains)| {
            let mut domains = united(
                domains,
                |d| d.domain.clone(),
                |m, d| {
                    m.seen.add(d.seen);
                    m.learned = learned_united([std::mem::take(&mut m.learned), d.learned]);
                },
            );
            domains.sort_by(|a, b| {
                b.seen
                    .count
                    .cmp(&a.seen.count)
                    .then(a.domain.cmp(&b.domain))
            });
            ServiceNames { service, domains }
        })
        .collect();
    n.undocumented = united(
        std::mem::take(&mut n.undocumented),
        |u| {
            (
                u.verdict,
                u.src.clone(),
                u.domain.clone(),
                u.dst.clone(),
                u.transport,
                u.port,
            )
        },
        |m, u| {
            m.seen.add(u.seen);
            m.learned = learned_united([std::mem::take(&mut m.learned), u.learned]);
        },
    );
    n.undocumented.sort_by(|a, b| {
        b.seen
            .count
            .cmp(&a.seen.count)
            .then(a.domain.cmp(&b.domain))
    });
    n.bare = united(
        std::mem::take(&mut n.bare),
        |x| (x.verdict, x.src.clone(), x.addr, x.transport, x.port),
        |m, x| m.seen.add(x.seen),
    );
    n.bare
        .sort_by(|a, b| b.seen.count.cmp(&a.seen.count).then(a.addr.cmp(&b.addr)));
    n.statement = statement(n, report_nodes);
}

/// One entry per key, in key order, the others added to it by `add`.
fn united<T, K: Ord>(items: Vec<T>, key: impl Fn(&T) -> K, add: impl Fn(&mut T, T)) -> Vec<T> {
    let mut by: BTreeMap<K, T> = BTreeMap::new();
    for item in items {
        match by.entry(key(&item)) {
            std::collections::btree_map::Entry::Occupied(mut o) => add(o.get_mut(), item),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(item);
            }
        }
    }
    by.into_values().collect()
}

/// One learning per (node, resolver): answers add, the span widens (two reports of one
/// node cover different times: merging refuses overlaps).
fn learned_united<const N: usize>(parts: [Vec<Learned>; N]) -> Vec<Learned> {
    united(
        parts.into_iter().flatten().collect(),
        |l| (l.node.clone(), l.resolver),
        |m, l| {
            m.answers += l.answers;
            m.first_learned = m.first_learned.min(l.first_learned);
            m.last_learned = m.last_learned.max(l.last_learned);
        },
    )
}

/// What the names section can claim: known where some egress carried a DNS mark, and
/// unknown elsewhere, with why.
fn statement(n: &Names, report_nodes: &[String]) -> String {
    const WHY: &str = "no egress there carries a DNS mark: DNS answers were not captured, \
                       no trusted resolver was given (--dns-resolver, or a baseline entry \
                       for port 53), the store is from before names were kept, or the \
                       report came from Prometheus, whose series never carry names";
    if n.nodes.is_empty() {
        return format!(
            "DNS names unknown: {WHY}. Nothing here says whether egress was reached by name \
             or by bare address."
        );
    }
    let named: usize = n.services.iter().map(|s| s.domains.len()).sum();
    let mut s = format!(
        "DNS names observed on {}: {} documented service(s) reached by {named} name(s); \
         {} undocumented egress edge(s) by name; {} egress edge(s) by bare address.",
        n.nodes.join(", "),
        n.services.len(),
        n.undocumented.len(),
        n.bare.len()
    );
    let unknown: Vec<&str> = report_nodes
        .iter()
        .filter(|r| !n.nodes.contains(r))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        s.push_str(&format!(" Unknown on {} ({WHY}).", unknown.join(", ")));
    }
    s
}
