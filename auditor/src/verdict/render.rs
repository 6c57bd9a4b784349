//! A judgement in the one vocabulary (`crate::edge`): the `Edge` of one flow record. It is
//! what `auditor replay` prints, one JSON object per line, and what the daemon's sinks
//! receive for every record.

use super::{Judge, Judgement};
use crate::{
    capture::FlowRecord,
    edge::{Documented, Edge, Endpoint, Process},
    identity::Resolved,
    model::{Millis, Verdict, time::unix_ms},
};

/// An end as identity resolved it (or did not), at `addr`.
pub fn endpoint(r: Option<&Resolved>, addr: Option<std::net::IpAddr>) -> Endpoint {
    let k8s = r.and_then(|r| r.k8s.as_deref());
    Endpoint {
        service: r.map(|r| r.service.to_string()),
        addr,
        port: None,
        connected_port: None,
        namespace: k8s.map(|k| k.namespace.clone()),
        pod: k8s.and_then(|k| k.pod.clone()),
        workload: k8s.and_then(|k| k.workload.clone()),
        k8s_service: k8s.and_then(|k| k.service.clone()),
        via: r.map(|r| r.via.to_string()),
        domain: None,
        resolution: None,
    }
}

/// Port sets of the rules a verdict refers to, as documented ("6379*", "9092"); None when
/// it was allowed or nothing is documented between the two services.
pub fn documented(judge: &Judge, j: &Judgement<'_>) -> Option<Documented> {
    let lookup = j.lookup.as_ref()?;
    if j.verdict == Verdict::Allowed || lookup.rules().next().is_none() {
        return None;
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
    Some(Documented {
        ports,
        transport: transports.join("/"),
    })
}

/// The judged flow as an edge of `flow.count` connections seen from `first_seen` to
/// `last_seen`.
pub fn edge(
    judge: &Judge,
    j: &Judgement<'_>,
    flow: &FlowRecord,
    first_seen: Millis,
    last_seen: Millis,
) -> Edge {
    let mut dst = endpoint(j.dst.as_ref(), Some(flow.dst_addr));
    dst.port = Some(j.port);
    dst.connected_port = (j.port != flow.dst_port).then_some(flow.dst_port);
    dst.domain = j.domain.as_deref().map(str::to_string);
    dst.resolution = j.resolution;
    Edge {
        verdict: j.verdict,
        rules: j.rules(),
        transport: flow.transport,
        direction: flow.direction,
        documented: documented(judge, j),
        platform: j.platform.as_deref().map(str::to_string),
        mesh_leg: j.mesh_leg,
        src: endpoint(j.src.as_ref(), flow.src_addr),
        dst,
        process: Some(Process {
            pid: flow.tgid,
            comm: flow.comm.clone(),
            cgroup: flow.cgroup.clone(),
        }),
        count: flow.count,
        first_seen,
        last_seen,
    }
}

/// What `auditor replay` judges one record as: its edge, timed by the record's own
/// times. Replay settles them first (a record without `time` is timed at the end of its
/// capture's watch span, and one that cannot be placed is refused), so "now" is only a
/// fallback for other callers.
pub fn replayed_edge(judge: &Judge, j: &Judgement<'_>, flow: &FlowRecord) -> Edge {
    let now = unix_ms(std::time::SystemTime::now());
    let ms = |t: &str| crate::model::time::parse_rfc3339(t).unwrap_or(now);
    let last = flow.time.as_deref().map_or(now, ms);
    let first = flow.first_seen.as_deref().map_or(last, ms);
    edge(judge, j, flow, first, last)
}

/// `replayed_edge` as the JSON line replay prints.
pub fn verdict_json(judge: &Judge, j: &Judgement<'_>, flow: &FlowRecord) -> serde_json::Value {
    serde_json::to_value(replayed_edge(judge, j, flow)).expect("an edge serialises")
}
