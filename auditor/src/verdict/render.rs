//! Verdicts as JSON lines (what `auditor replay` prints and the daemon's events carry).

use serde_json::{Value, json};

use super::{Judge, Judgement, Verdict};
use crate::{capture::FlowRecord, identity::Resolved};

fn side(r: Option<&Resolved>, addr: Option<std::net::IpAddr>) -> Value {
    let mut v = json!({
        "service": r.map(|r| r.service.as_ref()),
        "addr": addr,
        "via": r.map(|r| r.via.to_string()),
    });
    if let Some(k) = r.and_then(|r| r.k8s.as_deref()) {
        v["k8s"] = k8s_json(k);
    }
    v
}

/// Namespace, pod, Service and workload of an endpoint the cluster identified.
pub fn k8s_json(k: &crate::identity::kubernetes::K8sRef) -> Value {
    json!({ "namespace": k.namespace, "pod": k.pod, "service": k.service, "workload": k.workload })
}

/// "voice/voice-config-7d9f (Deployment/voice-config)", for examples in events and the store.
pub fn k8s_text(k: &crate::identity::kubernetes::K8sRef) -> String {
    let name = k.pod.as_deref().or(k.service.as_deref()).unwrap_or("?");
    match &k.workload {
        Some(w) => format!("{}/{name} ({w})", k.namespace),
        None => format!("{}/{name}", k.namespace),
    }
}

/// Port sets of the rules a verdict refers to, as documented ("6379*", "9092").
pub fn documented(judge: &Judge, j: &Judgement<'_>) -> Value {
    let Some(lookup) = &j.lookup else {
        return Value::Null;
    };
    // Nothing documented between the two (or it was allowed): nothing to cite.
    if j.verdict == Verdict::Allowed || lookup.rules().next().is_none() {
        return Value::Null;
    }
    let mut ports: Vec<String> = Vec::new();
    let mut transports: Vec<&str> = Vec::new();
    for rule in lookup.rules() {
        let c = &judge.allowlist.connections[rule.index];
        let effective: Vec<String> = match rule.basis {
            allowlist::PortBasis::Any => vec!["any".into()],
            allowlist::PortBasis::Unverified => vec!["unknown".into()],
            _ => rule.ports.iter().map(ToString::to_string).collect(),
        };
        for p in effective {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        if !transports.contains(&c.transport.as_str()) {
            transports.push(c.transport.as_str());
        }
    }
    json!({ "ports": ports, "transport": transports.join("/") })
}

pub fn verdict_json(judge: &Judge, j: &Judgement<'_>, flow: &FlowRecord) -> Value {
    let rules = j.rules();
    let mut dst = side(j.dst.as_ref(), Some(flow.dst_addr));
    dst["port"] = json!(flow.dst_port);
    if j.port != flow.dst_port {
        dst["service_port"] = json!(j.port);
    }
    json!({
        "verdict": j.verdict.as_str(),
        "rule": rules.first(),
        "rules": rules,
        "transport": flow.transport,
        "direction": flow.direction,
        "src": side(j.src.as_ref(), flow.src_addr),
        "dst": dst,
        "documented": documented(judge, j),
        "count": flow.count,
        "time": flow.time,
        "comm": flow.comm,
        "pid": flow.tgid,
    })
}
