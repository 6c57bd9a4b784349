//! Lookups that answer identity from the indexes: which documented service (by the
//! inventory's `kubernetes:` selectors) a local process (by its cgroup's pod UID, or its
//! pod's IP) or a remote address (ClusterIP, pod IP, endpoint) is.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc};

use super::{
    KubeSelector, KubeState,
    index::{CLUSTER_DOMAIN, Indexes, ObjKey, PodInfo, PodMeta, SvcInfo, obj_key},
};
use crate::identity::{IdentitySource, LocalEndpoint, Resolved, Via, cluster::DeclaredPorts};

impl KubeState {
    /// True when `addr` is a pod or Service `sel` names: a pod in its namespace with its
    /// labels (or selected by its Service), the Service's ClusterIP, or an endpoint. A pod
    /// of this node is known by its IP; a pod elsewhere by the EndpointSlice that lists it.
    pub fn selector_matches(&self, addr: IpAddr, sel: &KubeSelector) -> bool {
        let idx = self.read();
        let svc = sel
            .service
            .as_ref()
            .and_then(|n| idx.services.get(&obj_key(&sel.namespace, n)));
        let named = |k: &ObjKey| *k.0 == *sel.namespace && sel.service.as_deref() == Some(&*k.1);
        if idx.svc_by_ip.get(&addr).is_some_and(named)
            || idx.svc_by_endpoint.get(&addr).is_some_and(named)
        {
            return true;
        }
        let pod = idx
            .pod_by_ip
            .get(&addr)
            .and_then(|u| idx.pods.get(u))
            .map(|p| (&p.k8s.namespace, &p.labels))
            .or_else(|| {
                idx.pod_by_endpoint
                    .get(&addr)
                    .and_then(|k| idx.pod_meta.get(k))
                    .map(|m| (&m.k8s.namespace, &*m.labels))
            });
        pod.is_some_and(|(namespace, labels)| {
            *namespace == sel.namespace
                && ((sel.service.is_none()
                    && sel.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
                    || (!sel.labels.is_empty() && subset(&sel.labels, labels))
                    || svc.is_some_and(|s| subset(&s.selector, labels)))
        })
    }

    /// The ports the live pod of this node at `addr` declares to the platform (the
    /// kubelet probes and scrapes the pods of its own node, whose specs we hold).
    pub fn declared_ports(&self, addr: IpAddr) -> Option<DeclaredPorts> {
        let idx = self.read();
        let pod = idx.pod_by_ip.get(&addr).and_then(|u| idx.pods.get(u))?;
        Some(pod.declared.clone())
    }
}

/// The pod UID in a kubelet cgroup path, for both drivers:
/// cgroupfs `/kubepods/burstable/pod1b2c…-…/<container>` and systemd
/// `/kubepods.slice/…/kubepods-burstable-pod1b2c…_…slice/cri-containerd-<id>.scope`.
pub fn pod_uid_from_cgroup(path: &str) -> Option<String> {
    path.split('/').find_map(|seg| {
        let seg = seg.strip_suffix(".slice").unwrap_or(seg);
        let at = seg.rfind("pod")?;
        let uid = &seg[at + 3..];
        let normal = uid.replace('_', "-").to_ascii_lowercase();
        let ok = normal.len() == 36
            && normal.char_indices().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        ok.then_some(normal)
    })
}

fn subset(want: &BTreeMap<String, String>, have: &BTreeMap<String, String>) -> bool {
    !want.is_empty() && want.iter().all(|(k, v)| have.get(k) == Some(v))
}

/// A view of the cluster state with one policy generation's selectors.
pub struct KubeIdentity {
    state: Arc<KubeState>,
    selectors: Vec<(Arc<str>, KubeSelector)>,
}

impl KubeIdentity {
    pub fn new(state: Arc<KubeState>, selectors: Vec<(Arc<str>, KubeSelector)>) -> KubeIdentity {
        KubeIdentity { state, selectors }
    }

    fn documented_pod(
        &self,
        idx: &Indexes,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<Arc<str>> {
        self.selectors
            .iter()
            .find(|(_, s)| {
                s.namespace == namespace
                    && (subset(&s.labels, labels)
                        || s.service
                            .as_ref()
                            .and_then(|n| idx.services.get(&obj_key(&s.namespace, n)))
                            .is_some_and(|svc| subset(&svc.selector, labels)))
            })
            .map(|(n, _)| n.clone())
    }

    fn documented_service(&self, svc: &SvcInfo) -> Option<Arc<str>> {
        self.selectors
            .iter()
            .find(|(_, s)| {
                s.namespace == svc.k8s.namespace
                    && (s.service == svc.k8s.service || subset(&s.labels, &svc.selector))
            })
            .map(|(n, _)| n.clone())
    }

    fn pod_resolved(&self, idx: &Indexes, pod: &PodInfo, via: Via) -> Option<Resolved> {
        let service = self.documented_pod(idx, &pod.k8s.namespace, &pod.labels)?;
        Some(Resolved {
            service,
            via,
            port: None,
            k8s: Some(pod.k8s.clone()),
        })
    }

    /// A pod on another node, known by an endpoint's targetRef and its metadata.
    fn pod_meta_resolved(&self, idx: &Indexes, pod: &PodMeta) -> Option<Resolved> {
        let service = self.documented_pod(idx, &pod.k8s.namespace, &pod.labels)?;
        Some(Resolved {
            service,
            via: Via::KubePod,
            port: None,
            k8s: Some(pod.k8s.clone()),
        })
    }

    fn service_resolved(&self, svc: &SvcInfo, via: Via) -> Option<Resolved> {
        Some(Resolved {
            service: self.documented_service(svc)?,
            via,
            port: None,
            k8s: Some(svc.k8s.clone()),
        })
    }

    /// ClusterIP first (a virtual IP names one Service), then pod IP, then an endpoint
    /// (its pod if that is documented, else its Service). One probe of `by_addr`.
    fn by_ip(&self, idx: &Indexes, addr: IpAddr) -> Option<Resolved> {
        let e = idx.by_addr.get(&addr.to_canonical())?;
        if let Some(svc) = &e.cluster_ip {
            return self.service_resolved(svc, Via::KubeService);
        }
        if let Some(pod) = &e.pod {
            return self.pod_resolved(idx, pod, Via::KubePod);
        }
        if let Some(r) = e
            .endpoint_pod
            .as_deref()
            .and_then(|p| self.pod_meta_resolved(idx, p))
        {
            return Some(r);
        }
        self.service_resolved(e.endpoint_svc.as_deref()?, Via::KubeEndpoint)
    }
}

impl IdentitySource for KubeIdentity {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn local(&self, ep: &LocalEndpoint<'_>) -> Option<Resolved> {
        let idx = self.state.read();
        if let Some(pod) = ep
            .cgroup
            .and_then(pod_uid_from_cgroup)
            .and_then(|uid| idx.pods.get(&uid))
        {
            return self.pod_resolved(&idx, pod, Via::Cgroup);
        }
        let addrs = ep.addr.into_iter().chain(ep.netns_addrs.iter().copied());
        for a in addrs.filter(|a| !a.to_canonical().is_loopback() && !a.is_unspecified()) {
            if let Some(pod) = idx
                .by_addr
                .get(&a.to_canonical())
                .and_then(|e| e.pod.as_deref())
            {
                return self.pod_resolved(&idx, pod, Via::KubePod);
            }
        }
        None
    }

    fn remote(&self, addr: IpAddr, _port: u16) -> Option<Resolved> {
        if addr.to_canonical().is_loopback() {
            return None;
        }
        self.by_ip(&self.state.read(), addr)
    }

    /// An ExternalName Service is a name of the documented service its selector maps it
    /// to: its own name (`NAME.NAMESPACE.svc.cluster.local`) and its `externalName`. A
    /// Service of another type is known by its ClusterIP and endpoints instead.
    fn named(&self, name: &str, _port: u16) -> Option<Resolved> {
        let idx = self.state.read();
        let by_own = name
            .strip_suffix(CLUSTER_DOMAIN)
            .and_then(|r| r.strip_suffix(".svc."))
            .and_then(|r| r.split_once('.'))
            .filter(|(_, ns)| !ns.contains('.'))
            .and_then(|(svc, ns)| idx.services.get(&obj_key(ns, svc)))
            .filter(|s| s.external.is_some());
        if let Some(svc) = by_own {
            let own = svc.external.as_ref().map(|e| e.own.clone())?;
            return self.service_resolved(svc, Via::Dns { pattern: own });
        }
        idx.svc_by_external_name
            .get(name)?
            .iter()
            .filter_map(|k| idx.services.get(k))
            .find_map(|svc| {
                let target = svc.external.as_ref()?.target.clone();
                self.service_resolved(svc, Via::Dns { pattern: target })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str, spec: serde_json::Value) -> k8s_openapi::api::core::v1::Service {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": "voice", "name": name},
            "spec": spec,
        }))
        .expect("service")
    }

    /// An ExternalName Service the inventory maps to a documented service is that
    /// service by its own name and by its externalName; another Service, or one the
    /// inventory does not map, is not a name.
    #[test]
    fn an_external_name_service_is_a_name_of_its_service() {
        let state = Arc::new(KubeState::default());
        {
            let mut idx = state.write();
            idx.apply_service(&service(
                "redis",
                serde_json::json!({"type": "ExternalName", "externalName": "Voice.Redis.Cache.Windows.Net."}),
            ));
            idx.apply_service(&service(
                "other",
                serde_json::json!({"type": "ExternalName", "externalName": "db.example.org"}),
            ));
            idx.apply_service(&service(
                "web",
                serde_json::json!({"clusterIP": "10.96.0.10", "selector": {"app": "web"}}),
            ));
            idx.refresh_touched();
        }
        let selector = |service: &str| KubeSelector {
            namespace: "voice".into(),
            labels: BTreeMap::new(),
            service: Some(service.into()),
        };
        let kube = KubeIdentity::new(
            state.clone(),
            vec![
                ("Redis".into(), selector("redis")),
                ("Web".into(), selector("web")),
            ],
        );
        let named = |n: &str| {
            kube.named(n, 6380).map(|r| {
                (
                    r.service.to_string(),
                    r.via.to_string(),
                    r.k8s.and_then(|k| k.service.clone()),
                )
            })
        };
        let redis = |via: &str| {
            Some((
                "Redis".to_string(),
                via.to_string(),
                Some("redis".to_string()),
            ))
        };
        assert_eq!(
            named("redis.voice.svc.cluster.local"),
            redis("dns:redis.voice.svc.cluster.local")
        );
        assert_eq!(
            named("voice.redis.cache.windows.net"),
            redis("dns:voice.redis.cache.windows.net")
        );
        // Not documented, or not an ExternalName, or not a Service name.
        assert_eq!(named("other.voice.svc.cluster.local"), None);
        assert_eq!(named("db.example.org"), None);
        assert_eq!(named("web.voice.svc.cluster.local"), None);
        assert_eq!(named("redis.voice.svc.example.local"), None);
        assert_eq!(named("a.redis.voice.svc.cluster.local"), None);

        // The Service becomes a ClusterIP one: its names go.
        {
            let mut idx = state.write();
            idx.apply_service(&service(
                "redis",
                serde_json::json!({"clusterIP": "10.96.0.11"}),
            ));
            idx.refresh_touched();
        }
        assert_eq!(named("voice.redis.cache.windows.net"), None);
        assert_eq!(named("redis.voice.svc.cluster.local"), None);
        assert!(
            !state
                .read()
                .svc_by_external_name
                .contains_key("voice.redis.cache.windows.net")
        );
    }

    #[test]
    fn pod_uids_from_both_cgroup_drivers() {
        assert_eq!(
            pod_uid_from_cgroup("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_4a7b_8c9d_0e1f2a3b4c5d.slice/cri-containerd-abc.scope").as_deref(),
            Some("1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d")
        );
        assert_eq!(
            pod_uid_from_cgroup(
                "/kubepods/besteffort/pod1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d/0123abcd"
            )
            .as_deref(),
            Some("1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d")
        );
        assert_eq!(pod_uid_from_cgroup("/system.slice/sshd.service"), None);
        assert_eq!(pod_uid_from_cgroup("/kubepods/podnot-a-uid"), None);
    }
}
