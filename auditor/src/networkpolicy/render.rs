//! The policies as Kubernetes objects: `networking.k8s.io/v1` NetworkPolicy, as YAML a
//! user can `kubectl apply` (one multi-document stream, or one file per policy). Each
//! document starts with comments saying what it allows and why (the documented rows, the
//! lint warnings on them); the same reasons are annotations, so `kubectl describe` shows
//! them once applied, where comments are gone.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::networking::v1::{
        IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
        NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use super::{Generated, NetPolicy, Peer, PortRange, Side};

/// Annotation and label keys. `auditor/` is a valid prefix (a DNS subdomain) that says
/// whose they are without claiming a domain.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const CONNECTIONS: &str = "auditor/connections";
const SERVICE: &str = "auditor/service";
/// The platform baseline entries a policy admits, as `auditor/connections` lists rows.
const BASELINE: &str = "auditor/baseline";

/// Pods with exactly these labels (an empty map is every pod: `matchLabels: {}`).
fn match_labels(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        ..LabelSelector::default()
    }
}

fn namespace_selector(ns: &str) -> LabelSelector {
    match_labels(&BTreeMap::from([(
        "kubernetes.io/metadata.name".to_string(),
        ns.to_string(),
    )]))
}

fn peer(p: &Peer) -> NetworkPolicyPeer {
    match p {
        // Both selectors in ONE peer: pods with these labels in that namespace (AND).
        Peer::Pods {
            namespace, labels, ..
        } => NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(namespace)),
            pod_selector: Some(match_labels(labels)),
            ..NetworkPolicyPeer::default()
        },
        Peer::Dns(d) => NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(&d.namespace)),
            pod_selector: Some(match_labels(&d.labels)),
            ..NetworkPolicyPeer::default()
        },
        Peer::Selector { namespace, labels } => NetworkPolicyPeer {
            namespace_selector: Some(namespace_selector(namespace)),
            pod_selector: Some(match_labels(labels)),
            ..NetworkPolicyPeer::default()
        },
        // Never rendered as a peer: a rule with it has no `from`/`to` (every peer).
        Peer::Any => NetworkPolicyPeer::default(),
        Peer::Block { net, .. } | Peer::Cidr(net) => NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: net.to_string(),
                except: None,
            }),
            ..NetworkPolicyPeer::default()
        },
    }
}

fn port(p: &PortRange) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some(p.transport.as_str().to_ascii_uppercase()),
        port: Some(IntOrString::Int(p.first.into())),
        end_port: (p.last != p.first).then_some(p.last.into()),
    }
}

/// The Kubernetes object for one policy.
pub fn object(p: &NetPolicy, document: Option<&str>) -> NetworkPolicy {
    let side = p.side.as_str();
    let rows: Vec<String> = {
        let mut r: Vec<u32> = p.rules.iter().flat_map(|r| r.rows.clone()).collect();
        r.sort_unstable();
        r.dedup();
        r.iter().map(u32::to_string).collect()
    };
    let mut annotations = BTreeMap::from([
        (CONNECTIONS.to_string(), rows.join(",")),
        (SERVICE.to_string(), p.service.clone()),
    ]);
    if let Some(d) = document {
        annotations.insert("auditor/document".into(), d.to_string());
    }
    let entries: std::collections::BTreeSet<&str> =
        p.rules.iter().filter_map(|r| r.entry.as_deref()).collect();
    if !entries.is_empty() {
        annotations.insert(
            BASELINE.to_string(),
            entries.into_iter().collect::<Vec<_>>().join(","),
        );
    }
    for (i, r) in p.rules.iter().enumerate() {
        annotations.insert(format!("auditor/{side}-{i}"), r.why.clone());
    }
    // No `ports` at all is every port: only where the document says "any".
    let rules = p.rules.iter().map(|r| {
        // No `from`/`to` is every peer: a baseline entry's `any: true`.
        let peers = (!r.peers.contains(&Peer::Any)).then(|| r.peers.iter().map(peer).collect());
        let ports = (!r.any_port).then(|| r.ports.iter().map(port).collect());
        (peers, ports)
    });
    // An empty list isolates and allows nothing: a service nothing may reach.
    let (ingress, egress, policy_type) = match p.side {
        Side::Ingress => (
            Some(
                rules
                    .map(|(from, ports)| NetworkPolicyIngressRule { from, ports })
                    .collect(),
            ),
            None,
            "Ingress",
        ),
        Side::Egress => (
            None,
            Some(
                rules
                    .map(|(to, ports)| NetworkPolicyEgressRule { to, ports })
                    .collect(),
            ),
            "Egress",
        ),
    };
    NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(p.name.clone()),
            namespace: Some(p.namespace.clone()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.to_string(),
                "auditor".to_string(),
            )])),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(match_labels(&p.labels)),
            policy_types: Some(vec![policy_type.to_string()]),
            ingress,
            egress,
        }),
    }
}

fn comment(line: &str, out: &mut String) {
    // A comment is one line: a newline in a reason would end it.
    out.push_str("# ");
    out.push_str(&line.replace(['\n', '\r'], " "));
    out.push('\n');
}

/// One policy as a YAML document, with its comments.
pub fn document(p: &NetPolicy, document: Option<&str>) -> String {
    let mut out = String::new();
    let labels = super::labels_text(&p.labels);
    comment(
        &format!(
            "{}/{}: {} of {} (pods {labels}) isolated: only the documented connections{}",
            p.namespace,
            p.name,
            p.side.as_str(),
            p.service,
            if p.rules.is_empty() {
                " (none: nothing may connect)"
            } else {
                ":"
            }
        ),
        &mut out,
    );
    for (i, r) in p.rules.iter().enumerate() {
        comment(&format!("  {}[{i}] {}", p.side.as_str(), r.why), &mut out);
    }
    for l in &p.lints {
        comment(&format!("  {l}"), &mut out);
    }
    let object = serde_json::to_value(object(p, document)).expect("a NetworkPolicy serialises");
    allowlist::yaml::emit_document(&object, &mut out);
    out
}

/// The header: what generated this, and every row it could not express.
pub fn header(g: &Generated) -> String {
    let mut out = String::new();
    comment(
        &format!(
            "NetworkPolicies generated by `auditor networkpolicy` from the documented architecture{}.",
            g.document
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
        &mut out,
    );
    comment(
        "Each rule is a documented connection, or a platform baseline entry (annotation auditor/<side>-<n>); re-generate, do not edit.",
        &mut out,
    );
    if !g.skipped.is_empty() {
        comment(
            "Not expressed (a NetworkPolicy cannot say it, or the inventory does not tell):",
            &mut out,
        );
        for s in &g.skipped {
            comment(&format!("  {s}"), &mut out);
        }
    }
    if !g.lints.is_empty() {
        comment(
            "Lint warnings on the documented rows (generated as documented):",
            &mut out,
        );
        for l in &g.lints {
            comment(&format!("  {l}"), &mut out);
        }
    }
    out
}

/// Every policy in one multi-document stream.
pub fn stream(g: &Generated) -> String {
    let mut out = header(g);
    for p in &g.policies {
        out.push_str("---\n");
        out.push_str(&document(p, g.document.as_deref()));
    }
    out
}

/// One file per policy: (file name, content). Names are unique per namespace, so the
/// namespace is part of the file name.
pub fn files(g: &Generated) -> Vec<(String, String)> {
    g.policies
        .iter()
        .map(|p| {
            (
                format!("{}_{}.yaml", p.namespace, p.name),
                format!("{}{}", header(g), document(p, g.document.as_deref())),
            )
        })
        .collect()
}
