//! A NetworkPolicy evaluator, for tests only: what `networking.k8s.io/v1` NetworkPolicy
//! objects allow, written from the Kubernetes documentation
//! (https://kubernetes.io/docs/concepts/services-networking/network-policies/), not from
//! auditor's generator, so the generated YAML is checked by what it means.
//!
//! - A pod is isolated for ingress (egress) when any policy in its namespace selects it
//!   (`podSelector`) and has `Ingress` (`Egress`) in `policyTypes`; without
//!   `policyTypes`, `Ingress` always, and `Egress` when the policy has an `egress` section.
//! - A connection is allowed when the source's egress allows it (or the source is not
//!   isolated for egress, or is outside the cluster) AND the destination's ingress allows
//!   it (likewise). Policies are additive: any selecting policy's rule allowing it is enough.
//! - A rule matches when one of its peers matches (no `from`/`to`, or an empty one: every
//!   peer) and one of its ports matches (no `ports`: every port).
//! - A peer with `namespaceSelector` AND `podSelector` selects the pods matching the pod
//!   selector in the namespaces matching the namespace selector; `podSelector` alone, pods
//!   of the policy's namespace; `namespaceSelector` alone, every pod of those namespaces.
//!   Namespaces carry the label `kubernetes.io/metadata.name`.
//! - `ipBlock`: addresses in `cidr` and not in any of `except`.
//! - A port: `protocol` (default TCP), `port` (absent: every port), `endPort` (a range).

use std::{collections::BTreeMap, net::IpAddr};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub ip: IpAddr,
}

/// One end of a connection.
#[derive(Debug, Clone, Copy)]
pub enum End<'a> {
    Pod(&'a Pod),
    /// An address outside the cluster: no policy selects it.
    Outside(IpAddr),
}

impl End<'_> {
    fn ip(&self) -> IpAddr {
        match self {
            End::Pod(p) => p.ip,
            End::Outside(a) => *a,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

pub struct Cluster {
    pub policies: Vec<Value>,
    /// Which policies select a pod (namespace, labels, direction): a test asks for
    /// thousands of connections between the same few pods.
    selecting: std::cell::RefCell<std::collections::HashMap<(String, String, bool), Vec<usize>>>,
}

fn selector_matches(sel: &Value, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = sel["matchLabels"].as_object().is_none_or(|m| {
        m.iter()
            .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str())
    });
    let by_expressions = sel["matchExpressions"].as_array().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let key = e["key"].as_str().expect("matchExpressions key");
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|v| v.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let value = labels.get(key).map(String::as_str);
            match e["operator"].as_str().expect("operator") {
                "In" => value.is_some_and(|v| values.contains(&v)),
                "NotIn" => value.is_none_or(|v| !values.contains(&v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                other => panic!("unknown selector operator {other}"),
            }
        })
    });
    by_labels && by_expressions
}

/// `addr` in `cidr` ("10.0.0.0/8", "2001:db8::/32").
pub fn cidr_contains(cidr: &str, addr: IpAddr) -> bool {
    let (net, len) = cidr.split_once('/').expect("a CIDR has a prefix length");
    let net: IpAddr = net.parse().expect("CIDR address");
    let len: u32 = len.parse().expect("CIDR length");
    let (a, n, bits) = match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    assert!(len <= bits, "{cidr}: prefix too long");
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    (a >> shift) == (n >> shift)
}

fn ns_labels(ns: &str) -> BTreeMap<String, String> {
    [("kubernetes.io/metadata.name".to_string(), ns.to_string())].into()
}

fn policy_types(p: &Value) -> Vec<Direction> {
    match p["spec"]["policyTypes"].as_array() {
        Some(types) => types
            .iter()
            .map(|t| match t.as_str() {
                Some("Ingress") => Direction::Ingress,
                Some("Egress") => Direction::Egress,
                other => panic!("policyTypes entry {other:?}"),
            })
            .collect(),
        None => {
            let mut t = vec![Direction::Ingress];
            if !p["spec"]["egress"].is_null() {
                t.push(Direction::Egress);
            }
            t
        }
    }
}

fn peer_matches(peer: &Value, policy_ns: &str, end: End<'_>) -> bool {
    if let Some(block) = peer.get("ipBlock") {
        let ip = end.ip();
        let excepted = block["except"]
            .as_array()
            .is_some_and(|ex| ex.iter().any(|c| cidr_contains(c.as_str().unwrap(), ip)));
        return cidr_contains(block["cidr"].as_str().expect("ipBlock.cidr"), ip) && !excepted;
    }
    let End::Pod(pod) = end else {
        // Selectors select pods; an address outside the cluster is matched by ipBlock only.
        return false;
    };
    let ns_ok = match peer.get("namespaceSelector") {
        Some(sel) => selector_matches(sel, &ns_labels(&pod.namespace)),
        None => pod.namespace == policy_ns,
    };
    let pod_ok = peer
        .get("podSelector")
        .is_none_or(|sel| selector_matches(sel, &pod.labels));
    ns_ok && pod_ok
}

fn port_matches(port: &Value, protocol: &str, number: u16) -> bool {
    let proto = port["protocol"].as_str().unwrap_or("TCP");
    if !proto.eq_ignore_ascii_case(protocol) {
        return false;
    }
    match &port["port"] {
        Value::Null => true,
        Value::Number(n) => {
            let first = n.as_u64().expect("port number") as u16;
            let last = port["endPort"].as_u64().map_or(first, |e| e as u16);
            (first..=last).contains(&number)
        }
        other => panic!("named port {other} needs the pod's container ports: not generated"),
    }
}

impl Cluster {
    pub fn new(policies: Vec<Value>) -> Cluster {
        for p in &policies {
            assert_eq!(p["apiVersion"], "networking.k8s.io/v1", "{p}");
            assert_eq!(p["kind"], "NetworkPolicy", "{p}");
        }
        Cluster {
            policies,
            selecting: Default::default(),
        }
    }

    /// The policies that select `pod` for `dir`.
    pub fn selecting<'a>(&'a self, pod: &Pod, dir: Direction) -> impl Iterator<Item = &'a Value> {
        let key = (
            pod.namespace.clone(),
            format!("{:?}", pod.labels),
            dir == Direction::Ingress,
        );
        let indices = self
            .selecting
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| {
                (0..self.policies.len())
                    .filter(|&i| {
                        let p = &self.policies[i];
                        p["metadata"]["namespace"].as_str() == Some(pod.namespace.as_str())
                            && selector_matches(&p["spec"]["podSelector"], &pod.labels)
                            && policy_types(p).contains(&dir)
                    })
                    .collect()
            })
            .clone();
        indices.into_iter().map(|i| &self.policies[i])
    }

    pub fn isolated(&self, pod: &Pod, dir: Direction) -> bool {
        self.selecting(pod, dir).next().is_some()
    }

    /// Does `pod`'s side allow the connection with `other` (for `dir`)?
    fn side_allows(
        &self,
        pod: &Pod,
        dir: Direction,
        other: End<'_>,
        protocol: &str,
        port: u16,
    ) -> bool {
        let (key, peers_key) = match dir {
            Direction::Ingress => ("ingress", "from"),
            Direction::Egress => ("egress", "to"),
        };
        let mut selecting = self.selecting(pod, dir).peekable();
        if selecting.peek().is_none() {
            return true;
        }
        selecting.any(|p| {
            let ns = p["metadata"]["namespace"].as_str().unwrap();
            p["spec"][key].as_array().is_some_and(|rules| {
                rules.iter().any(|r| {
                    let peers_ok = match r[peers_key].as_array() {
                        None => true,
                        Some(peers) if peers.is_empty() => true,
                        Some(peers) => peers.iter().any(|peer| peer_matches(peer, ns, other)),
                    };
                    let ports_ok = match r["ports"].as_array() {
                        None => true,
                        Some(ports) if ports.is_empty() => true,
                        Some(ports) => ports.iter().any(|x| port_matches(x, protocol, port)),
                    };
                    peers_ok && ports_ok
                })
            })
        })
    }

    /// Is a connection from `src` to `dst` on `protocol` ("TCP", "UDP") `port` allowed?
    pub fn allowed(&self, src: End<'_>, dst: End<'_>, protocol: &str, port: u16) -> bool {
        let egress = match src {
            End::Pod(p) => self.side_allows(p, Direction::Egress, dst, protocol, port),
            End::Outside(_) => true,
        };
        let ingress = match dst {
            End::Pod(p) => self.side_allows(p, Direction::Ingress, src, protocol, port),
            End::Outside(_) => true,
        };
        egress && ingress
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(ns: &str, app: &str, ip: &str) -> Pod {
        Pod {
            namespace: ns.into(),
            labels: [("app".to_string(), app.to_string())].into(),
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn the_documentations_examples_read_as_documented() {
        let (db, web, other) = (
            pod("prod", "db", "10.0.0.1"),
            pod("prod", "web", "10.0.0.2"),
            pod("dev", "web", "10.0.1.2"),
        );
        // Not isolated: everything allowed.
        let none = Cluster::new(vec![]);
        assert!(none.allowed(End::Pod(&web), End::Pod(&db), "TCP", 1));
        let c = Cluster::new(vec![json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "db", "namespace": "prod"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                     "ports": [{"protocol": "TCP", "port": 5432}]},
                    {"from": [{"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}}],
                     "ports": [{"port": 30000, "endPort": 30010}]},
                    {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dev"}},
                               "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}}],
                     "ports": [{"protocol": "UDP", "port": 53}]}
                ]
            }
        })]);
        assert!(c.isolated(&db, Direction::Ingress));
        assert!(
            !c.isolated(&db, Direction::Egress),
            "no egress section, no policyTypes"
        );
        assert!(c.allowed(End::Pod(&web), End::Pod(&db), "TCP", 5432));
        assert!(
            !c.allowed(End::Pod(&web), End::Pod(&db), "UDP", 5432),
            "protocol"
        );
        assert!(
            !c.allowed(End::Pod(&web), End::Pod(&db), "TCP", 5433),
            "port"
        );
        // podSelector alone: the policy's namespace only.
        assert!(!c.allowed(End::Pod(&other), End::Pod(&db), "TCP", 5432));
        // namespaceSelector AND podSelector.
        assert!(c.allowed(End::Pod(&other), End::Pod(&db), "UDP", 53));
        assert!(!c.allowed(End::Pod(&web), End::Pod(&db), "UDP", 53));
        let out = |a: &str| End::Outside(a.parse().unwrap());
        assert!(
            c.allowed(out("172.17.2.9"), End::Pod(&db), "TCP", 30010),
            "endPort"
        );
        assert!(!c.allowed(out("172.17.2.9"), End::Pod(&db), "TCP", 30011));
        assert!(
            !c.allowed(out("172.17.1.9"), End::Pod(&db), "TCP", 30000),
            "except"
        );
        assert!(
            c.allowed(End::Pod(&db), End::Pod(&web), "TCP", 1),
            "web not isolated"
        );
        // Egress isolation with an empty list: nothing out.
        let deny_out = Cluster::new(vec![json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "x", "namespace": "prod"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": []}
        })]);
        assert!(!deny_out.allowed(End::Pod(&web), out("8.8.8.8"), "UDP", 53));
        assert!(deny_out.allowed(End::Pod(&other), out("8.8.8.8"), "UDP", 53));
        assert!(cidr_contains(
            "2001:db8::/32",
            "2001:db8:1::5".parse().unwrap()
        ));
        assert!(!cidr_contains("2001:db8::/32", "10.0.0.1".parse().unwrap()));
    }
}
