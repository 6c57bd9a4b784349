//! The violation edge: (verdict, source, destination, transport, port), in one place. Its
//! key, its two ends, the example process, what the allowlist documents between the two
//! services, and the kernel drops that make a period not fully audited. The store, the
//! alert edges, the metrics, the events and the report all use these types, so they
//! name an edge the same way: the vocabulary of `docs/event.schema.json`.
//!
//! A connection pool reconnecting 10,000 times is one edge: one event, a count of 10,000.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

pub use crate::capture::{Direction, Transport};
use crate::model::{Millis, Resolution, Verdict};

/// One end of a connection. `service` is the documented service; the Kubernetes fields
/// are there when the cluster identified the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The documented service, or null when the end could not be attributed.
    pub service: Option<String>,
    /// The IP address, when known.
    pub addr: Option<IpAddr>,
    /// Destination only: the port judged (the service's port; for a mesh upstream, the
    /// port the sidecar forwards to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Destination only, for mesh upstreams: the port actually connected to, when it is
    /// not `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_port: Option<u16>,
    /// Kubernetes namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kubernetes pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Kubernetes workload, as Kind/name (e.g. Deployment/tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Kubernetes Service, when the end was a Service's ClusterIP or endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_service: Option<String>,
    /// How the end was identified (cgroup, process, address/N, netns, mesh-upstream:P,
    /// k8s-pod, k8s-service, k8s-endpoint, dns:PATTERN: the inventory's `dns:` pattern or
    /// the Kubernetes ExternalName that matched a name the source resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Destination only (ECS `destination.domain`): the DNS name the source's own pod
    /// resolved this address by when it connected, from a trusted resolver. The name a
    /// documented entry claimed, else the name asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Destination of egress only, when DNS answers were captured: `dns` when the source
    /// resolved the address (`domain` says by which name), `bare` when it used the
    /// address without resolving it (a hard-coded IP, DNS over HTTPS, an untrusted
    /// resolver's answer). Absent when DNS was not captured: unknown, not bare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
}

impl Endpoint {
    /// The name an edge knows this end by: the service, else the address, else "unknown".
    pub fn name(&self) -> String {
        match (&self.service, self.addr) {
            (Some(s), _) => s.clone(),
            (None, Some(a)) => a.to_string(),
            (None, None) => "unknown".into(),
        }
    }

    /// The name with the DNS name the end was reached by, for humans: "203.0.113.9
    /// (evil.example)", "Redis (x.redis.example)"; the name alone when it had none.
    pub fn name_and_domain(&self) -> String {
        match &self.domain {
            Some(d) => format!("{} ({d})", self.name()),
            None => self.name(),
        }
    }

    /// "voice/tenant-7d9f (Deployment/tenant)": where in the cluster, for humans.
    pub fn k8s_text(&self) -> Option<String> {
        let ns = self.namespace.as_deref()?;
        let name = self.pod.as_deref().or(self.k8s_service.as_deref())?;
        Some(match &self.workload {
            Some(w) => format!("{ns}/{name} ({w})"),
            None => format!("{ns}/{name}"),
        })
    }
}

/// The process on this node that made (or accepted) the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// Process id (the thread group id).
    pub pid: u32,
    /// The process's command name (the kernel's comm, at most 15 bytes).
    pub comm: String,
    /// cgroup v2 path, when it could be resolved.
    pub cgroup: Option<String>,
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.comm, self.pid)
    }
}

/// What the allowlist documents between the two services, for drift: the rows' ports
/// ("6379*" style as documented, `any`, `unknown`) and transport(s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Documented {
    pub ports: Vec<String>,
    /// "tcp", "udp", or "tcp/udp".
    pub transport: String,
}

impl std::fmt::Display for Documented {
    /// "tcp/9100, 9101".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.transport, self.ports.join(", "))
    }
}

/// A service mesh sidecar's own connection, carrying an application connection that was
/// judged at its app leg: judged on the service pair only, and never counted as an
/// observation of a documented row.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MeshLeg {
    /// Sidecar to the destination pod's sidecar (its inbound port).
    Transport,
    /// Sidecar to the application in its own pod (loopback).
    Delivery,
}

impl MeshLeg {
    pub fn as_str(self) -> &'static str {
        match self {
            MeshLeg::Transport => "transport",
            MeshLeg::Delivery => "delivery",
        }
    }
}

/// What identifies an edge: one per (verdict, source, destination, transport, port), and
/// per DNS name the destination was reached by, so a report can count each name. The
/// ends are named as `Endpoint::name` names them; the name never becomes a metric label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EdgeKey {
    pub verdict: Verdict,
    pub src: String,
    pub dst: String,
    pub transport: Transport,
    pub port: u16,
    pub domain: Option<String>,
}

/// An edge as it is told: key, counts, first/last seen, and an example (the ends and the
/// process of its first sighting). A single sighting is an `Edge` of count N; adding
/// edges of the same key aggregates them. Serialised, it is the body of an event and of
/// a report's violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Edge {
    pub verdict: Verdict,
    /// The documented connection numbers it relates to: the rows that allow it, or for
    /// drift the rows it drifted from.
    pub rules: Vec<u32>,
    pub transport: Transport,
    /// For a violation: whether the example's process connected out (egress) or
    /// accepted (ingress).
    pub direction: Direction,
    /// What the rows in `rules` document (drift only), else null.
    pub documented: Option<Documented>,
    /// For `platform`: the name of the platform baseline entry that allows it (a
    /// platform flow never cites a documented row); else null.
    #[serde(default)]
    pub platform: Option<String>,
    /// A service mesh sidecar's leg (`transport` or `delivery`), judged on the service
    /// pair only and never counted as an observation of a row; null for other flows.
    #[serde(default)]
    pub mesh_leg: Option<MeshLeg>,
    pub src: Endpoint,
    /// Its `port` is the edge's port.
    pub dst: Endpoint,
    /// An example process on the node.
    pub process: Option<Process>,
    /// Connections.
    pub count: u64,
    /// RFC 3339.
    #[serde(with = "crate::model::time::as_rfc3339")]
    #[schemars(with = "String")]
    pub first_seen: Millis,
    /// RFC 3339.
    #[serde(with = "crate::model::time::as_rfc3339")]
    #[schemars(with = "String")]
    pub last_seen: Millis,
}

/// Name of both ends of an overflow edge (`Edge::overflow`), in every output.
pub const OVERFLOW: &str = "_other";

impl Edge {
    pub fn key(&self) -> EdgeKey {
        EdgeKey {
            verdict: self.verdict,
            src: self.src.name(),
            dst: self.dst.name(),
            transport: self.transport,
            port: self.dst.port.unwrap_or(0),
            domain: self.dst.domain.clone(),
        }
    }

    /// Adds `other` (same key): counts add, the period widens, the latest rules and
    /// documentation win, the first example stays.
    pub fn add(&mut self, other: &Edge) {
        self.count += other.count;
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.rules.clone_from(&other.rules);
        self.documented.clone_from(&other.documented);
        self.platform.clone_from(&other.platform);
        self.mesh_leg = other.mesh_leg.or(self.mesh_leg);
        if self.process.is_none() {
            self.process.clone_from(&other.process);
        }
    }

    /// "tenant (pid 42) in pod voice/tenant-7d9f (Deployment/tenant)": the example, for humans.
    pub fn example_text(&self) -> String {
        let Some(p) = &self.process else {
            return "?".into();
        };
        match (self.src.k8s_text(), &p.cgroup) {
            (Some(pod), _) => format!("{p} in pod {pod}"),
            (None, Some(c)) => format!("{p} in cgroup {c}"),
            (None, None) => p.to_string(),
        }
    }

    /// The rows it relates to and what they document, "26 (documented tcp/9100)";
    /// `none` when it relates to no documented row.
    pub fn cited_rows(&self, none: &str) -> String {
        if self.rules.is_empty() {
            return none.to_string();
        }
        let rows = self
            .rules
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        match &self.documented {
            Some(d) => format!("{rows} (documented {d})"),
            None => rows,
        }
    }

    /// The edge this one is counted in once `--max-violation-series` distinct edges are
    /// held: same verdict and transport, both ends named `_other`, port 0, no rules. One
    /// per verdict and transport, so memory, series and store rows stay bounded under a
    /// scan, and every connection is still counted (in aggregate). The first example
    /// process stays, as it does for any edge.
    pub fn overflow(&self) -> Edge {
        let end = || Endpoint {
            service: Some(OVERFLOW.into()),
            ..Endpoint::default()
        };
        Edge {
            verdict: self.verdict,
            rules: Vec::new(),
            transport: self.transport,
            direction: self.direction,
            documented: None,
            src: end(),
            dst: end(),
            process: self.process.clone(),
            count: self.count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            platform: self.platform.clone(),
            mesh_leg: self.mesh_leg,
        }
    }

    /// True for an edge made by `overflow`.
    pub fn is_overflow(&self) -> bool {
        self.src.service.as_deref() == Some(OVERFLOW)
            && self.dst.service.as_deref() == Some(OVERFLOW)
            && self.dst.port.is_none()
    }

    /// "26" or "26,27" or "none": the rules as one label value.
    pub fn rules_label(&self) -> String {
        rules_label(&self.rules)
    }
}

pub fn rules_label(rules: &[u32]) -> String {
    if rules.is_empty() {
        "none".into()
    } else {
        rules
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What the kernel lost in a period, and the pressure it was under. A period with any
/// connection lost is not fully audited; the two pressure figures lost nothing.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Drops {
    /// Records the ring buffer had no room for. Nothing lost: the drain of the epoch's
    /// flow map delivered their connections.
    pub ringbuf_full: u64,
    /// Connections lost: counted by the kernel but never delivered (an epoch's flow map
    /// was full, and so was the ring buffer). Exact. In a recording, store or report made
    /// before the flow maps had epochs, it counts what may have lost connections then:
    /// the flows the LRU flow map evicted (`lru_evictions`, read as this field), and in a
    /// recording's or store's figures, its full ring buffers and refused inserts too.
    #[serde(alias = "lru_evictions")]
    pub connections_lost: u64,
    /// Sightings an epoch's full flow map could not hold. Nothing lost: each went through
    /// the ring buffer on its own (with that full too, it is in `connections_lost`).
    pub flow_insert_failed: u64,
}

impl Drops {
    /// What makes a period not fully audited.
    pub fn lost(&self) -> u64 {
        self.connections_lost
    }

    pub fn add(&mut self, other: &Drops) {
        self.ringbuf_full += other.ringbuf_full;
        self.connections_lost += other.connections_lost;
        self.flow_insert_failed += other.flow_insert_failed;
    }
}

/// The edge the unit tests share: GES -> Redis tcp/6379, undocumented, by process `ges`
/// (pid 7), `count` connections at `at` (unix ms).
#[cfg(test)]
pub(crate) fn test_edge(count: u64, at: Millis) -> Edge {
    Edge {
        verdict: Verdict::UndocumentedEgress,
        rules: vec![],
        transport: Transport::Tcp,
        direction: Direction::Egress,
        documented: None,
        platform: None,
        mesh_leg: None,
        src: Endpoint {
            service: Some("GES".into()),
            ..Endpoint::default()
        },
        dst: Endpoint {
            service: Some("Redis".into()),
            port: Some(6379),
            ..Endpoint::default()
        },
        process: Some(Process {
            pid: 7,
            comm: "ges".into(),
            cgroup: None,
        }),
        count,
        first_seen: at,
        last_seen: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(count: u64, at: Millis) -> Edge {
        Edge {
            verdict: Verdict::PortDrift,
            rules: vec![26],
            transport: Transport::Tcp,
            direction: Direction::Egress,
            documented: Some(Documented {
                ports: vec!["9100".into()],
                transport: "tcp".into(),
            }),
            platform: None,
            mesh_leg: None,
            src: Endpoint {
                service: Some("Tenant Service".into()),
                ..Endpoint::default()
            },
            dst: Endpoint {
                service: Some("Config Service".into()),
                addr: Some("10.0.2.7".parse().unwrap()),
                port: Some(9200),
                ..Endpoint::default()
            },
            process: Some(Process {
                pid: 42,
                comm: "tenant".into(),
                cgroup: None,
            }),
            count,
            first_seen: at,
            last_seen: at,
        }
    }

    #[test]
    fn edges_of_one_key_add_up_and_round_trip_as_json() {
        let mut e = edge(2, 5_000);
        e.add(&edge(3, 1_000));
        assert_eq!((e.count, e.first_seen, e.last_seen), (5, 1_000, 5_000));
        assert_eq!(e.key().port, 9200);
        assert_eq!(e.key().dst, "Config Service");
        assert_eq!(e.cited_rows("-"), "26 (documented tcp/9100)");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["first_seen"], "1970-01-01T00:00:01.000Z");
        assert_eq!(json["dst"]["port"], 9200);
        let back: Edge = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn an_unknown_end_is_named_by_its_address() {
        let e = Endpoint {
            addr: Some("198.18.0.9".parse().unwrap()),
            ..Endpoint::default()
        };
        assert_eq!(e.name(), "198.18.0.9");
        assert_eq!(Endpoint::default().name(), "unknown");
    }

    #[test]
    fn an_overflow_edge_keeps_verdict_transport_and_count_and_names_no_end() {
        let e = edge(3, 1_000);
        let o = e.overflow();
        assert!(o.is_overflow() && !e.is_overflow());
        let k = o.key();
        assert_eq!(
            (
                k.verdict,
                k.src.as_str(),
                k.dst.as_str(),
                k.transport,
                k.port
            ),
            (Verdict::PortDrift, OVERFLOW, OVERFLOW, Transport::Tcp, 0)
        );
        assert_eq!((o.count, o.rules_label()), (3, "none".to_string()));
        let mut other = edge(2, 2_000);
        other.dst.port = Some(9300);
        assert_eq!(
            other.overflow().key(),
            k,
            "all of one verdict and transport meet"
        );
    }

    #[test]
    fn drops_add_up_and_only_lost_connections_are_lost() {
        let mut d = Drops {
            ringbuf_full: 1,
            ..Drops::default()
        };
        assert_eq!(d.lost(), 0, "a full ring buffer lost nothing");
        d.add(&Drops {
            connections_lost: 2,
            flow_insert_failed: 3,
            ..Drops::default()
        });
        assert_eq!(
            (
                d.ringbuf_full,
                d.connections_lost,
                d.flow_insert_failed,
                d.lost()
            ),
            (1, 2, 3, 2)
        );
        // A recording made before the epochs names its evictions `lru_evictions`.
        let old: Drops =
            serde_json::from_str(r#"{"ringbuf_full":0,"lru_evictions":4,"flow_insert_failed":0}"#)
                .unwrap();
        assert_eq!(old.lost(), 4);
    }
}
