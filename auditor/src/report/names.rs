//! The report's DNS names (`Names`): built from a store's edges and the names it learned,
//! combined across reports, and the sentence every format prints. Only what the edges'
//! destinations carry is told: a node whose egress carries no DNS mark has unknown
//! names, never "none found".

use std::collections::{BTreeMap, BTreeSet};

use super::model::{BareEgress, DomainUse, Learned, NamedEgress, Names, ServiceNames};
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
        if let (Some(service), Some(domain)) = (&e.dst.service, &e.dst.domain)
            && service != OVERFLOW
        {
            names.services.push(ServiceNames {
                service: service.clone(),
                domains: vec![DomainUse {
                    domain: domain.clone(),
                    count: e.count,
                    first_seen: e.first_seen,
                    last_seen: e.last_seen,
                    nodes: vec![node.clone()],
                    learned: learning(node, domain),
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
                count: e.count,
                first_seen: e.first_seen,
                last_seen: e.last_seen,
                nodes: vec![node.clone()],
                learned: learning(node, domain),
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
                count: e.count,
                first_seen: e.first_seen,
                last_seen: e.last_seen,
                nodes: vec![node.clone()],
            });
        }
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
    let mut services: BTreeMap<String, BTreeMap<String, DomainUse>> = BTreeMap::new();
    for s in std::mem::take(&mut n.services) {
        let by = services.entry(s.service).or_default();
        for d in s.domains {
            match by.get_mut(&d.domain) {
                Some(m) => {
                    m.count += d.count;
                    m.first_seen = m.first_seen.min(d.first_seen);
                    m.last_seen = m.last_seen.max(d.last_seen);
                    m.nodes.extend(d.nodes);
                    m.learned.extend(d.learned);
                }
                None => {
                    by.insert(d.domain.clone(), d);
                }
            }
        }
    }
    n.services = services
        .into_iter()
        .map(|(service, by)| {
            let mut domains: Vec<DomainUse> = by.into_values().collect();
            for d in &mut domains {
                tidy(&mut d.nodes);
                d.learned = united(std::mem::take(&mut d.learned));
            }
            domains.sort_by(|a, b| b.count.cmp(&a.count).then(a.domain.cmp(&b.domain)));
            ServiceNames { service, domains }
        })
        .collect();

    let mut undocumented: BTreeMap<_, NamedEgress> = BTreeMap::new();
    for u in std::mem::take(&mut n.undocumented) {
        let key = (
            u.verdict,
            u.src.clone(),
            u.domain.clone(),
            u.dst.clone(),
            u.transport,
            u.port,
        );
        match undocumented.get_mut(&key) {
            Some(m) => {
                m.count += u.count;
                m.first_seen = m.first_seen.min(u.first_seen);
                m.last_seen = m.last_seen.max(u.last_seen);
                m.nodes.extend(u.nodes);
                m.learned.extend(u.learned);
            }
            None => {
                undocumented.insert(key, u);
            }
        }
    }
    n.undocumented = undocumented.into_values().collect();
    for u in &mut n.undocumented {
        tidy(&mut u.nodes);
        u.learned = united(std::mem::take(&mut u.learned));
    }
    n.undocumented
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.domain.cmp(&b.domain)));

    let mut bare: BTreeMap<_, BareEgress> = BTreeMap::new();
    for x in std::mem::take(&mut n.bare) {
        let key = (x.verdict, x.src.clone(), x.addr, x.transport, x.port);
        match bare.get_mut(&key) {
            Some(m) => {
                m.count += x.count;
                m.first_seen = m.first_seen.min(x.first_seen);
                m.last_seen = m.last_seen.max(x.last_seen);
                m.nodes.extend(x.nodes);
            }
            None => {
                bare.insert(key, x);
            }
        }
    }
    n.bare = bare.into_values().collect();
    for x in &mut n.bare {
        tidy(&mut x.nodes);
    }
    n.bare
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.addr.cmp(&b.addr)));
    n.statement = statement(n, report_nodes);
}

fn tidy(nodes: &mut Vec<String>) {
    nodes.sort();
    nodes.dedup();
}

/// One entry per (node, resolver): answers add, the span widens (two reports of one node
/// cover different times: merging refuses overlaps).
fn united(learned: Vec<Learned>) -> Vec<Learned> {
    let mut by: BTreeMap<(String, std::net::IpAddr), Learned> = BTreeMap::new();
    for l in learned {
        match by.get_mut(&(l.node.clone(), l.resolver)) {
            Some(m) => {
                m.answers += l.answers;
                m.first_learned = m.first_learned.min(l.first_learned);
                m.last_learned = m.last_learned.max(l.last_learned);
            }
            None => {
                by.insert((l.node.clone(), l.resolver), l);
            }
        }
    }
    by.into_values().collect()
}

/// What the names section can claim: known where some egress carried a DNS mark, and
/// unknown elsewhere, with why.
fn statement(n: &Names, report_nodes: &[String]) -> String {
    const WHY: &str = "no egress there carries a DNS mark: DNS answers were not captured, \
                       the store is from before names were kept, or the report came from \
                       Prometheus, whose series never carry names";
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
