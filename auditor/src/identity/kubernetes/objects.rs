//! Kubernetes objects into our index entries: what each watched kind's apply and delete
//! events change in the indexes, and the conversion of a Pod (its IPs, owner, declared
//! ports) and a Service (its ClusterIPs, selector) into the entries kept for them.

use std::{net::IpAddr, sync::Arc};

use k8s_openapi::{
    api::{
        core::v1::{Pod, Service},
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{ResourceExt, core::PartialObjectMeta};

use super::{
    K8sRef,
    index::{
        CLUSTER_DOMAIN, ExternalName, Indexes, ObjKey, PodInfo, PodMeta, SvcInfo, obj_key,
        remove_slice, unindex_pod, unindex_service,
    },
};
use crate::identity::cluster::DeclaredPorts;

/// The watchers' events, applied to an index: the live one, or a relist's staging copy.
impl Indexes {
    pub(super) fn apply_pod(&mut self, pod: &Pod) {
        let info = Arc::new(pod_info(pod));
        let idx = self;
        unindex_pod(idx, &info.uid);
        if info.live {
            for ip in &info.ips {
                // Two live pods with one IP (events out of order): the newer one has it.
                let keep_other = idx
                    .pod_by_ip
                    .get(ip)
                    .and_then(|u| idx.pods.get(u))
                    .is_some_and(|other| other.created > info.created);
                if !keep_other {
                    idx.pod_by_ip.insert(*ip, info.uid.clone());
                }
            }
        }
        idx.touched.extend(info.ips.iter().copied());
        idx.pods.insert(info.uid.clone(), info);
    }

    pub(super) fn delete_pod(&mut self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        let idx = self;
        unindex_pod(idx, &uid);
        idx.pods.remove(&uid);
    }

    pub(super) fn apply_service(&mut self, svc: &Service) {
        let info = Arc::new(svc_info(svc));
        let key = obj_key(
            &info.k8s.namespace,
            info.k8s.service.as_deref().unwrap_or_default(),
        );
        let idx = self;
        unindex_service(idx, &key);
        for ip in &info.cluster_ips {
            idx.svc_by_ip.insert(*ip, key.clone());
            idx.touched.push(*ip);
        }
        if let Some(e) = &info.external {
            let keys = idx
                .svc_by_external_name
                .entry(e.target.clone())
                .or_default();
            if let Err(at) = keys.binary_search(&key) {
                keys.insert(at, key.clone());
            }
        }
        idx.services.insert(key, info);
    }

    pub(super) fn delete_service(&mut self, svc: &Service) {
        let key = obj_key(&svc.namespace().unwrap_or_default(), &svc.name_any());
        let idx = self;
        unindex_service(idx, &key);
        idx.services.remove(&key);
    }

    pub(super) fn apply_slice(&mut self, s: &EndpointSlice) {
        let ns: Arc<str> = s.namespace().unwrap_or_default().into();
        let Some(svc) = s.labels().get("kubernetes.io/service-name") else {
            return;
        };
        let svc: ObjKey = (ns.clone(), svc.as_str().into());
        // Each address, and the pod its endpoint's targetRef names (if a pod).
        let mut ips: Vec<(IpAddr, Option<ObjKey>)> = Vec::new();
        for e in &s.endpoints {
            let pod = e
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| {
                    let pod_ns = match r.namespace.as_deref() {
                        Some(n) if n != &*ns => n.into(),
                        _ => ns.clone(),
                    };
                    Some((pod_ns, r.name.as_deref()?.into()))
                });
            for a in &e.addresses {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    ips.push((ip.to_canonical(), pod.clone()));
                }
            }
        }
        let idx = self;
        let slice: ObjKey = (ns, s.name_any().into());
        remove_slice(idx, &slice);
        for (ip, pod) in ips.iter_mut() {
            idx.touched.push(*ip);
            idx.svc_by_endpoint.insert(*ip, svc.clone());
            if let Some(p) = pod.take() {
                idx.set_endpoint_pod(*ip, Some(p));
            }
        }
        idx.slices
            .insert(slice, (svc, ips.into_iter().map(|(ip, _)| ip).collect()));
    }

    pub(super) fn apply_pod_meta(&mut self, p: &PartialObjectMeta<Pod>) {
        let key = obj_key(&p.namespace().unwrap_or_default(), &p.name_any());
        let meta = Arc::new(PodMeta {
            k8s: Arc::new(K8sRef {
                namespace: key.0.to_string(),
                pod: Some(key.1.to_string()),
                service: None,
                workload: workload(&p.metadata),
            }),
            labels: self.label_sets.intern(p.labels()),
        });
        self.touch_endpoints_of_pod(&key);
        self.pod_meta.insert(key, meta);
    }

    pub(super) fn delete_pod_meta(&mut self, p: &PartialObjectMeta<Pod>) {
        let key = obj_key(&p.namespace().unwrap_or_default(), &p.name_any());
        self.touch_endpoints_of_pod(&key);
        self.pod_meta.remove(&key);
    }

    pub(super) fn delete_slice(&mut self, s: &EndpointSlice) {
        let idx = self;
        remove_slice(
            idx,
            &obj_key(&s.namespace().unwrap_or_default(), &s.name_any()),
        );
    }
}

fn pod_info(pod: &Pod) -> PodInfo {
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    let mut ips: Vec<IpAddr> = status
        .and_then(|s| s.pod_ips.as_ref())
        .map(|v| v.iter().filter_map(|p| p.ip.parse().ok()).collect())
        .unwrap_or_default();
    if let Some(ip) = status
        .and_then(|s| s.pod_ip.as_deref())
        .and_then(|i| i.parse().ok())
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    PodInfo {
        uid: pod.uid().unwrap_or_default(),
        k8s: Arc::new(K8sRef {
            namespace: pod.namespace().unwrap_or_default(),
            pod: Some(pod.name_any()),
            service: None,
            workload: workload(&pod.metadata),
        }),
        labels: pod.labels().clone(),
        // A hostNetwork pod's IP is the node's, shared by many: never an identity.
        ips: if host_network { Vec::new() } else { ips },
        created: pod
            .creation_timestamp()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        live: !matches!(phase, "Succeeded" | "Failed"),
        declared: declared_ports(pod),
    }
}

/// The ports a pod declares to the platform: what its containers' liveness, readiness
/// and startup probes reach (HTTP, TCP, gRPC; a named port through the container's
/// ports), and its metrics port (`prometheus.io/port`, or a container port named
/// `metrics` or `http-metrics`).
fn declared_ports(pod: &Pod) -> DeclaredPorts {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let mut out = DeclaredPorts::default();
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    for c in containers {
        let named = |n: &str| {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(n))
                .and_then(|p| u16::try_from(p.container_port).ok())
        };
        let port = |p: &IntOrString| match p {
            IntOrString::Int(i) => u16::try_from(*i).ok(),
            IntOrString::String(n) => named(n),
        };
        for probe in [&c.liveness_probe, &c.readiness_probe, &c.startup_probe]
            .into_iter()
            .flatten()
        {
            let p = probe
                .http_get
                .as_ref()
                .and_then(|h| port(&h.port))
                .or_else(|| probe.tcp_socket.as_ref().and_then(|t| port(&t.port)))
                .or_else(|| probe.grpc.as_ref().and_then(|g| u16::try_from(g.port).ok()));
            if let Some(p) = p.filter(|p| !out.probes.contains(p)) {
                out.probes.push(p);
            }
        }
        for n in ["metrics", "http-metrics"] {
            if let Some(p) = named(n).filter(|p| !out.metrics.contains(p)) {
                out.metrics.push(p);
            }
        }
    }
    if let Some(p) = pod
        .annotations()
        .get("prometheus.io/port")
        .and_then(|p| p.parse().ok())
        .filter(|p| !out.metrics.contains(p))
    {
        out.metrics.push(p);
    }
    out
}

/// "Deployment/name" from the owner chain as far as the pod's metadata shows it.
fn workload(meta: &ObjectMeta) -> Option<String> {
    let owner = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    if owner.kind == "ReplicaSet"
        && let Some(hash) = meta
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-template-hash"))
        && let Some(deploy) = owner.name.strip_suffix(&format!("-{hash}"))
    {
        return Some(format!("Deployment/{deploy}"));
    }
    Some(format!("{}/{}", owner.kind, owner.name))
}

fn svc_info(svc: &Service) -> SvcInfo {
    let spec = svc.spec.as_ref();
    let mut ips: Vec<IpAddr> = spec
        .and_then(|s| s.cluster_ips.as_ref())
        .map(|v| v.iter().filter_map(|i| i.parse().ok()).collect())
        .unwrap_or_default();
    if let Some(ip) = spec
        .and_then(|s| s.cluster_ip.as_deref())
        .and_then(|i| i.parse().ok())
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    let namespace = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let external = spec
        .filter(|s| s.type_.as_deref() == Some("ExternalName"))
        .and_then(|s| s.external_name.as_deref())
        .map(|t| t.strip_suffix('.').unwrap_or(t).to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .map(|target| ExternalName {
            own: format!("{name}.{namespace}.svc.{CLUSTER_DOMAIN}")
                .to_ascii_lowercase()
                .into(),
            target: target.into(),
        });
    SvcInfo {
        k8s: Arc::new(K8sRef {
            namespace,
            pod: None,
            service: Some(name),
            workload: None,
        }),
        selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
        cluster_ips: ips,
        external,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_meta(name: &str, app: &str) -> PartialObjectMeta<Pod> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": {"namespace": "shop", "name": name, "labels": {"app": app}}
        }))
        .expect("pod metadata")
    }

    fn slice(endpoints: &[(&str, &str)]) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"namespace": "shop", "name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
            "endpoints": endpoints.iter().map(|(ip, pod)| serde_json::json!({
                "addresses": [ip], "targetRef": {"kind": "Pod", "namespace": "shop", "name": pod}
            })).collect::<Vec<_>>()
        }))
        .expect("endpoint slice")
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    /// The app label of the pod an endpoint address resolves to, from the lookup index.
    fn endpoint_app(idx: &Indexes, addr: &str) -> Option<String> {
        let e = idx.by_addr.get(&ip(addr))?;
        e.endpoint_pod.as_ref()?.labels.get("app").cloned()
    }

    /// The lookup index is what the per-kind maps say, and `endpoints_of_pod` is the
    /// exact reverse of `pod_by_endpoint`.
    fn assert_consistent(idx: &Indexes) {
        for (addr, e) in &idx.by_addr {
            let want = idx.entry_of(addr);
            let same = |a: &Option<Arc<PodMeta>>, b: &Option<Arc<PodMeta>>| match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            assert!(
                same(&e.endpoint_pod, &want.endpoint_pod),
                "{addr}: stale pod"
            );
            assert_eq!(
                e.endpoint_svc.is_some(),
                want.endpoint_svc.is_some(),
                "{addr}"
            );
        }
        let mut reverse = 0;
        for (pod, ips) in &idx.endpoints_of_pod {
            assert!(!ips.is_empty(), "{pod:?}: an empty entry is kept");
            for a in ips {
                assert_eq!(idx.pod_by_endpoint.get(a), Some(pod), "{a}");
                reverse += 1;
            }
        }
        assert_eq!(reverse, idx.pod_by_endpoint.len());
    }

    #[test]
    fn endpoint_pods_follow_label_and_slice_changes() {
        let mut idx = Indexes::default();
        let step = |idx: &mut Indexes| {
            idx.refresh_touched();
            assert_consistent(idx);
        };
        // A headless Service: its endpoints are its only addresses.
        idx.apply_service(
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"namespace": "shop", "name": "web"},
                "spec": {"clusterIP": "None", "selector": {"app": "cart"}}
            }))
            .expect("service"),
        );
        idx.apply_pod_meta(&pod_meta("p1", "cart"));
        idx.apply_pod_meta(&pod_meta("p2", "cart"));
        idx.apply_slice(&slice(&[("10.0.0.1", "p1"), ("10.0.0.2", "p2")]));
        step(&mut idx);
        assert_eq!(endpoint_app(&idx, "10.0.0.1").as_deref(), Some("cart"));
        // Replicas with one label set share it.
        let (a, b) = (
            &idx.pod_meta[&obj_key("shop", "p1")],
            &idx.pod_meta[&obj_key("shop", "p2")],
        );
        assert!(Arc::ptr_eq(&a.labels, &b.labels));

        // A pod's labels change: its endpoint resolves with the new ones.
        idx.apply_pod_meta(&pod_meta("p1", "checkout"));
        step(&mut idx);
        assert_eq!(endpoint_app(&idx, "10.0.0.1").as_deref(), Some("checkout"));
        assert_eq!(endpoint_app(&idx, "10.0.0.2").as_deref(), Some("cart"));

        // The slice changes: .1 is p2's now, p1 moved to .3, .2 is gone.
        idx.apply_slice(&slice(&[("10.0.0.1", "p2"), ("10.0.0.3", "p1")]));
        step(&mut idx);
        assert_eq!(endpoint_app(&idx, "10.0.0.1").as_deref(), Some("cart"));
        assert_eq!(endpoint_app(&idx, "10.0.0.3").as_deref(), Some("checkout"));
        assert!(!idx.by_addr.contains_key(&ip("10.0.0.2")));
        assert_eq!(
            idx.endpoints_of_pod[&obj_key("shop", "p1")],
            vec![ip("10.0.0.3")]
        );

        // p1's labels change again: its new address follows, its old one (p2's) does not.
        idx.apply_pod_meta(&pod_meta("p1", "payments"));
        step(&mut idx);
        assert_eq!(endpoint_app(&idx, "10.0.0.3").as_deref(), Some("payments"));
        assert_eq!(endpoint_app(&idx, "10.0.0.1").as_deref(), Some("cart"));

        // The pod's metadata is deleted: its endpoint keeps its Service, not the pod.
        idx.delete_pod_meta(&pod_meta("p1", "payments"));
        step(&mut idx);
        let e = &idx.by_addr[&ip("10.0.0.3")];
        assert!(e.endpoint_pod.is_none() && e.endpoint_svc.is_some());

        // The slice is deleted: nothing is left of it.
        idx.delete_slice(&slice(&[]));
        step(&mut idx);
        assert!(idx.by_addr.is_empty());
        assert!(idx.pod_by_endpoint.is_empty() && idx.endpoints_of_pod.is_empty());
    }
}
