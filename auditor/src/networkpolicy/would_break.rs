//! "What would break": before the generated policies are applied, the observed
//! connections of a store judged against them. Those they would deny (today's violations,
//! now "these will fail", and allowed traffic on rows the policies cannot express), the
//! violations they would still let through (and why), and the documented rows they allow
//! that were never observed (stale documentation, candidates to remove). Connections are
//! named in the one edge vocabulary (`crate::edge::Edge`), aggregated over nodes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::{Generated, NetPolicy, Peer, Side};
use crate::{
    edge::{Edge, EdgeKey, Endpoint},
    store::{RowObservation, StoredEdge},
};

/// An observed edge the policies would deny.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Broken {
    #[serde(flatten)]
    pub edge: Edge,
    /// The policies that would deny it, `namespace/name`.
    pub denied_by: Vec<String>,
}

/// An observed violation the policies would still let through.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NotStopped {
    #[serde(flatten)]
    pub edge: Edge,
    pub reason: String,
}

/// A documented row the policies allow, never observed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StaleRow {
    /// The documented connection number.
    pub rule: u32,
    /// Its documented source and destination services.
    pub src: String,
    pub dst: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(title = "auditor networkpolicy: what would break")]
pub struct WouldBreak {
    /// `auditor-would-break/1`.
    pub schema: String,
    /// Observed connections the generated policies would deny.
    pub would_break: Vec<Broken>,
    /// Observed violations the generated policies would still let through, and why.
    pub not_stopped: Vec<NotStopped>,
    /// Documented rows the policies allow that were never observed.
    pub never_observed: Vec<StaleRow>,
}

pub const SCHEMA: &str = "auditor-would-break/1";

/// The JSON Schema of `--would-break` (docs/would-break.schema.json).
pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(WouldBreak);
    schema.insert(
        "$comment".into(),
        "Generated from auditor/src/networkpolicy/would_break.rs and auditor/src/edge.rs by `auditor schema would-break`; do not edit."
            .into(),
    );
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}

/// `cites`: the edge cites the baseline entry the peer's rule admits.
fn peer_matches(peer: &Peer, end: &Endpoint, port: u16, cites: bool) -> bool {
    match peer {
        Peer::Pods { service, .. } => end.service.as_deref() == Some(service),
        Peer::Block { service, net } => {
            end.service.as_deref() == Some(service)
                || end.addr.is_some_and(|a| net.contains(&a.to_canonical()))
        }
        // kube-dns pods are not in the inventory: an unattributed destination on port 53
        // is taken as DNS, else every lookup would be listed as breaking.
        Peer::Dns(_) => end.service.is_none() && port == 53,
        // A baseline entry's addresses: the end's address decides.
        Peer::Cidr(net) => end.addr.is_some_and(|a| net.contains(&a.to_canonical())),
        Peer::Any => true,
        // A baseline entry's pods: an edge carries no pod labels; the judge matched the
        // entry's ends when it gave the edge its verdict, so only an edge citing the
        // entry is taken as these pods.
        Peer::Selector { .. } => cites,
    }
}

/// True when `p` allows `e` (the peer is the end `p` does not select).
fn allows(g: &Generated, p: &NetPolicy, e: &Edge) -> bool {
    let port = e.dst.port.unwrap_or(0);
    let peer_end = match p.side {
        Side::Ingress => &e.src,
        Side::Egress => &e.dst,
    };
    // Traffic to and from a pod's own node is always admitted: an entry whose other end
    // is the node (the kubelet's probes, a node agent) needs no rule.
    if e.platform
        .as_ref()
        .is_some_and(|x| g.node_admitted.contains(x))
    {
        return true;
    }
    p.rules.iter().any(|r| {
        let cites = r.entry.is_some() && e.platform == r.entry;
        r.allows_port(e.transport, port)
            && r.peers
                .iter()
                .any(|x| peer_matches(x, peer_end, port, cites))
    })
}

/// The policies that deny `e` (empty: allowed, or nothing isolates its ends).
pub fn denied_by(g: &Generated, e: &Edge) -> Vec<String> {
    let mut out = Vec::new();
    let sides = [(Side::Egress, &e.src), (Side::Ingress, &e.dst)];
    for (side, end) in sides {
        if let Some(p) = end.service.as_deref().and_then(|s| g.policy(s, side))
            && !allows(g, p, e)
        {
            out.push(format!("{}/{}", p.namespace, p.name));
        }
    }
    out
}

fn why_not_stopped(g: &Generated, e: &Edge, egress: bool) -> String {
    let dst = e.dst.service.as_deref();
    let src = e.src.service.as_deref();
    let ingress = match dst {
        None => "its destination is not a documented service, so no ingress policy selects it"
            .to_string(),
        Some(d) if g.policy(d, Side::Ingress).is_none() => {
            format!("{d} has no pods in the inventory to isolate")
        }
        Some(d) => format!("{d}'s ingress policy allows it"),
    };
    let egress = match (egress, src) {
        (false, _) => "egress is not isolated (--egress)".to_string(),
        (true, None) => "its source is not attributed, so no egress policy selects it".to_string(),
        (true, Some(s)) if g.policy(s, Side::Egress).is_none() => {
            format!("{s} has no pods in the inventory to isolate")
        }
        (true, Some(s)) => format!("{s}'s egress policy allows it"),
    };
    format!("{ingress}; {egress}")
}

/// Judges a store's observations against the generated policies.
pub fn judge(
    g: &Generated,
    edges: &[StoredEdge],
    rows: &[RowObservation],
    egress: bool,
) -> WouldBreak {
    // One edge per key over every node: the same connection seen on two nodes is one line.
    let mut merged: BTreeMap<EdgeKey, Edge> = BTreeMap::new();
    for s in edges {
        merged
            .entry(s.edge.key())
            .and_modify(|e| e.add(&s.edge))
            .or_insert_with(|| s.edge.clone());
    }
    let mut would_break = Vec::new();
    let mut not_stopped = Vec::new();
    for e in merged.into_values() {
        let denied = denied_by(g, &e);
        if !denied.is_empty() {
            would_break.push(Broken {
                edge: e,
                denied_by: denied,
            });
        } else if e.verdict.is_violation() {
            not_stopped.push(NotStopped {
                reason: why_not_stopped(g, &e, egress),
                edge: e,
            });
        }
    }
    let observed: BTreeSet<u32> = rows.iter().map(|r| r.rule).collect();
    let never_observed = g
        .policies
        .iter()
        .flat_map(|p| p.rules.iter())
        .flat_map(|r| r.rows.iter().copied().map(move |n| (n, r)))
        .filter(|(n, _)| !observed.contains(n))
        .map(|(n, r)| {
            (
                n,
                StaleRow {
                    rule: n,
                    src: r.src.clone(),
                    dst: r.dst.clone(),
                },
            )
        })
        .collect::<BTreeMap<u32, StaleRow>>()
        .into_values()
        .collect();
    WouldBreak {
        schema: SCHEMA.into(),
        would_break,
        not_stopped,
        never_observed,
    }
}

/// For humans, on stderr.
pub fn text(w: &WouldBreak) -> String {
    let mut out = String::new();
    let end = |e: &Endpoint| e.name();
    // The destination with the DNS name it was reached by, when it was.
    let dst = |e: &Endpoint| e.name_and_domain();
    out.push_str(&format!(
        "what would break: {} observed connection edge(s) the policies would deny\n",
        w.would_break.len()
    ));
    for b in &w.would_break {
        out.push_str(&format!(
            "  {}{} {} → {} {}/{}: {} connection(s), last seen {}; rows {}; denied by {}\n",
            b.edge.verdict.as_str(),
            b.edge
                .platform
                .as_ref()
                .map(|x| format!(" (baseline entry {x})"))
                .unwrap_or_default(),
            end(&b.edge.src),
            dst(&b.edge.dst),
            b.edge.transport,
            b.edge.dst.port.unwrap_or(0),
            b.edge.count,
            crate::model::time::rfc3339_seconds(b.edge.last_seen),
            b.edge.rules_label(),
            b.denied_by.join(", ")
        ));
    }
    if !w.not_stopped.is_empty() {
        out.push_str(&format!(
            "violations the policies would NOT stop: {}\n",
            w.not_stopped.len()
        ));
        for n in &w.not_stopped {
            out.push_str(&format!(
                "  {} {} → {} {}/{}: {} connection(s), last seen {}: {}\n",
                n.edge.verdict.as_str(),
                end(&n.edge.src),
                dst(&n.edge.dst),
                n.edge.transport,
                n.edge.dst.port.unwrap_or(0),
                n.edge.count,
                crate::model::time::rfc3339_seconds(n.edge.last_seen),
                n.reason
            ));
        }
    }
    if !w.never_observed.is_empty() {
        out.push_str(&format!(
            "documented and allowed, never observed (stale documentation?): rows {}\n",
            w.never_observed
                .iter()
                .map(|r| r.rule.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        identity::Inventory,
        model::Resolution,
        networkpolicy::{DnsPeer, Options, generate},
    };

    /// An undocumented egress by name: what would break says by which name, in its JSON
    /// (`dst.domain`, `dst.resolution`) and its text.
    #[test]
    fn a_flow_reached_by_name_keeps_its_name_and_mark() {
        let list = allowlist::file::parse(
            "version: 1
services:
- {name: A, kind: service}
- {name: B, kind: service}
connections:
- {number: 1, source: A, destination: B, protocol: TCP, transport: tcp, ports: [80]}
",
            "a.yaml",
        )
        .unwrap();
        let inv = Inventory::parse(
            "version: 1
services:
  A: {kubernetes: {namespace: apps, labels: {app: a}}}
  B: {kubernetes: {namespace: data, labels: {app: b}}}
",
            "i.yaml",
        )
        .unwrap();
        let g = generate(
            &list,
            &allowlist::Overrides::default(),
            &inv,
            &Options {
                egress: true,
                dns: Some(DnsPeer::kube_dns()),
            },
            None,
        );
        // GES is not in this list: A makes the call, to an address reached by name.
        let mut edge = crate::edge::test_edge(3, 0);
        edge.src.service = Some("A".into());
        edge.dst = Endpoint {
            addr: Some("198.51.100.7".parse().unwrap()),
            port: Some(443),
            domain: Some("evil.example".into()),
            resolution: Some(Resolution::Dns),
            ..Endpoint::default()
        };
        let w = judge(
            &g,
            &[StoredEdge {
                node: "n1".into(),
                edge,
            }],
            &[],
            true,
        );
        let json = serde_json::to_value(&w).unwrap();
        let dst = &json["would_break"][0]["dst"];
        assert_eq!(dst["domain"], "evil.example", "{json}");
        assert_eq!(dst["resolution"], "dns", "{json}");
        let text = text(&w);
        assert!(
            text.contains("A → 198.51.100.7 (evil.example) tcp/443"),
            "{text}"
        );
    }
}
