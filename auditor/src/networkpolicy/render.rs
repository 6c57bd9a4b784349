//! The policies as Kubernetes objects: `networking.k8s.io/v1` NetworkPolicy, as YAML a
//! user can `kubectl apply` (one multi-document stream, or one file per policy). Each
//! document starts with comments saying what it allows and why (the documented rows, the
//! lint warnings on them); the same reasons are annotations, so `kubectl describe` shows
//! them once applied, where comments are gone.

use serde_json::{Map, Value, json};

use super::{Generated, NetPolicy, Peer, PortRange, Side};

/// Annotation and label keys. `auditor/` is a valid prefix (a DNS subdomain) that says
/// whose they are without claiming a domain.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
const CONNECTIONS: &str = "auditor/connections";
const SERVICE: &str = "auditor/service";

fn labels_json(labels: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn namespace_selector(ns: &str) -> Value {
    json!({"matchLabels": {"kubernetes.io/metadata.name": ns}})
}

fn peer_json(p: &Peer) -> Value {
    match p {
        // Both selectors in ONE peer: pods with these labels in that namespace (AND).
        Peer::Pods {
            namespace, labels, ..
        } => json!({
            "namespaceSelector": namespace_selector(namespace),
            "podSelector": {"matchLabels": labels_json(labels)},
        }),
        Peer::Dns(d) => json!({
            "namespaceSelector": namespace_selector(&d.namespace),
            "podSelector": {"matchLabels": labels_json(&d.labels)},
        }),
        Peer::Block { net, .. } => json!({"ipBlock": {"cidr": net.to_string()}}),
    }
}

fn port_json(p: &PortRange) -> Value {
    let mut m = Map::new();
    m.insert(
        "protocol".into(),
        Value::String(p.transport.as_str().to_ascii_uppercase()),
    );
    m.insert("port".into(), p.first.into());
    if p.last != p.first {
        m.insert("endPort".into(), p.last.into());
    }
    Value::Object(m)
}

/// The Kubernetes object for one policy.
pub fn object(p: &NetPolicy, document: Option<&str>) -> Value {
    let side = p.side.as_str();
    let mut annotations = Map::new();
    let rows: Vec<String> = {
        let mut r: Vec<u32> = p.rules.iter().flat_map(|r| r.rows.clone()).collect();
        r.sort_unstable();
        r.dedup();
        r.iter().map(u32::to_string).collect()
    };
    annotations.insert(CONNECTIONS.into(), Value::String(rows.join(",")));
    annotations.insert(SERVICE.into(), Value::String(p.service.clone()));
    if let Some(d) = document {
        annotations.insert("auditor/document".into(), Value::String(d.to_string()));
    }
    for (i, r) in p.rules.iter().enumerate() {
        annotations.insert(format!("auditor/{side}-{i}"), Value::String(r.why.clone()));
    }
    let rules: Vec<Value> = p
        .rules
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert(
                match p.side {
                    Side::Ingress => "from",
                    Side::Egress => "to",
                }
                .into(),
                Value::Array(r.peers.iter().map(peer_json).collect()),
            );
            // No `ports` at all is every port: only where the document says "any".
            if !r.any_port {
                m.insert(
                    "ports".into(),
                    Value::Array(r.ports.iter().map(port_json).collect()),
                );
            }
            Value::Object(m)
        })
        .collect();
    let mut spec = Map::new();
    spec.insert(
        "podSelector".into(),
        json!({"matchLabels": labels_json(&p.labels)}),
    );
    spec.insert(
        "policyTypes".into(),
        json!([match p.side {
            Side::Ingress => "Ingress",
            Side::Egress => "Egress",
        }]),
    );
    // An empty list isolates and allows nothing: a service nothing may reach.
    spec.insert(side.into(), Value::Array(rules));
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": p.name,
            "namespace": p.namespace,
            "labels": {MANAGED_BY: "auditor"},
            "annotations": annotations,
        },
        "spec": spec,
    })
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
    allowlist::yaml::emit_document(&object(p, document), &mut out);
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
        "Each rule is a documented connection (annotation auditor/<side>-<n>); re-generate, do not edit.",
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
