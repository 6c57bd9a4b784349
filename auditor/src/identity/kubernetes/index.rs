//! The compact indexes the Kubernetes watchers keep, in place of an object cache: per
//! kind (this node's pods, every pod's metadata, Services, EndpointSlices) the few fields
//! identity needs, and `by_addr`, the one map a lookup probes, derived from them. Watch
//! events change the per-kind maps (`objects.rs`); this file keeps what is derived from
//! them consistent.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
};

use super::K8sRef;
use crate::identity::cluster::DeclaredPorts;

/// A pod of this node, in full. `k8s` is built once here, so that a lookup hands out
/// an `Arc` instead of allocating a `K8sRef` per flow.
#[derive(Debug, Clone)]
pub(super) struct PodInfo {
    pub(super) uid: String,
    pub(super) k8s: Arc<K8sRef>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) ips: Vec<IpAddr>,
    pub(super) created: String,
    pub(super) live: bool,
    /// The ports its spec declares to the platform: probes, and metrics.
    pub(super) declared: DeclaredPorts,
}

#[derive(Debug, Clone)]
pub(super) struct SvcInfo {
    pub(super) k8s: Arc<K8sRef>,
    pub(super) selector: BTreeMap<String, String>,
    pub(super) cluster_ips: Vec<IpAddr>,
    /// For a `type: ExternalName` Service, the names it is known by.
    pub(super) external: Option<ExternalName>,
}

/// The two DNS names of an ExternalName Service: its own (`NAME.NAMESPACE.svc.` and the
/// cluster domain), which the cluster DNS answers with a CNAME to the other, its
/// `spec.externalName`. Both lower-case, without a trailing dot.
#[derive(Debug, Clone)]
pub(super) struct ExternalName {
    pub(super) own: Arc<str>,
    pub(super) target: Arc<str>,
}

/// The cluster domain Service names end with. Kubernetes lets a cluster choose another
/// (the kubelet's `clusterDomain`); the API does not say which, so the default is assumed.
pub(super) const CLUSTER_DOMAIN: &str = "cluster.local";

/// (namespace, name) of an object. Shared strings: the thousands of endpoint entries
/// that name a Service or a pod hold a reference, not a copy of their names.
pub(super) type ObjKey = (Arc<str>, Arc<str>);

pub(super) fn obj_key(namespace: &str, name: &str) -> ObjKey {
    (namespace.into(), name.into())
}

/// A pod's labels, shared by every pod that has the same set (the replicas of one
/// ReplicaSet do): most of what a pod's metadata costs.
pub(super) type Labels = Arc<BTreeMap<String, String>>;

/// A pod anywhere in the cluster, from its metadata only.
#[derive(Debug, Clone)]
pub(super) struct PodMeta {
    pub(super) k8s: Arc<K8sRef>,
    pub(super) labels: Labels,
}

/// The label sets pods have, each held once (see `Labels`). A set no pod has any more is
/// dropped when the table has doubled since the last sweep, so churn cannot grow it.
#[derive(Default)]
pub(super) struct LabelSets {
    sets: std::collections::HashSet<Labels>,
    swept_at: usize,
}

impl LabelSets {
    pub(super) fn intern(&mut self, labels: &BTreeMap<String, String>) -> Labels {
        if let Some(l) = self.sets.get(labels) {
            return l.clone();
        }
        if self.sets.len() >= 2 * self.swept_at.max(512) {
            self.sets.retain(|l| Arc::strong_count(l) > 1);
            self.swept_at = self.sets.len();
        }
        let l = Arc::new(labels.clone());
        self.sets.insert(l.clone());
        l
    }
}

/// Everything the indexes below say about one address, resolved to the objects: a
/// lookup is one probe of `Indexes::by_addr` (an unknown address, most of them, used
/// to miss four large maps, each a cache miss). It is derived: always what the per-kind
/// maps give for that address (`Indexes::entry_of`), refreshed for the addresses each
/// watch event touches, rebuilt after a relist.
#[derive(Debug, Default)]
pub(super) struct AddrEntry {
    /// The Service whose ClusterIP it is.
    pub(super) cluster_ip: Option<Arc<SvcInfo>>,
    /// The live pod of this node that has it.
    pub(super) pod: Option<Arc<PodInfo>>,
    /// The pod an EndpointSlice's targetRef names for it, when its metadata is known.
    pub(super) endpoint_pod: Option<Arc<PodMeta>>,
    /// The Service an EndpointSlice lists it for, when that Service is known.
    pub(super) endpoint_svc: Option<Arc<SvcInfo>>,
}

/// IpAddr keys hashed with foldhash rather than SipHash: the keys come from the API
/// server, not from the traffic, and lookups are on the per-flow path.
pub(super) type AddrMap<V> = foldhash::HashMap<IpAddr, V>;

#[derive(Default)]
pub(super) struct Indexes {
    pub(super) pods: HashMap<String, Arc<PodInfo>>,
    pub(super) pod_by_ip: HashMap<IpAddr, String>,
    pub(super) services: HashMap<ObjKey, Arc<SvcInfo>>,
    pub(super) svc_by_ip: HashMap<IpAddr, ObjKey>,
    /// An ExternalName Service's `externalName` -> the Services that have it (sorted).
    pub(super) svc_by_external_name: HashMap<Arc<str>, Vec<ObjKey>>,
    /// EndpointSlice name -> (service key, its addresses): to drop them when it changes.
    pub(super) slices: HashMap<ObjKey, (ObjKey, Vec<IpAddr>)>,
    pub(super) svc_by_endpoint: HashMap<IpAddr, ObjKey>,
    /// An endpoint address -> the pod its `targetRef` names.
    pub(super) pod_by_endpoint: HashMap<IpAddr, ObjKey>,
    /// The reverse of `pod_by_endpoint`: a pod -> the endpoint addresses naming it, so a
    /// change of its metadata refreshes those without a scan of every endpoint.
    pub(super) endpoints_of_pod: HashMap<ObjKey, Vec<IpAddr>>,
    /// Every pod's metadata, by (namespace, name).
    pub(super) pod_meta: HashMap<ObjKey, Arc<PodMeta>>,
    pub(super) label_sets: LabelSets,
    /// The one index lookups read (live index only; a staging copy leaves it empty).
    pub(super) by_addr: AddrMap<AddrEntry>,
    /// Addresses the last event may have changed: refreshed in `by_addr` by the caller.
    pub(super) touched: Vec<IpAddr>,
}

/// Upkeep of the derived lookup index (`by_addr`) and of the reverse maps, whatever
/// event changed the per-kind maps.
impl Indexes {
    /// Points an endpoint address at a pod (or at none), keeping `endpoints_of_pod` the
    /// reverse of `pod_by_endpoint`.
    pub(super) fn set_endpoint_pod(&mut self, ip: IpAddr, pod: Option<ObjKey>) {
        let old = match pod {
            Some(p) => {
                let ips = self.endpoints_of_pod.entry(p.clone()).or_default();
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
                self.pod_by_endpoint
                    .insert(ip, p.clone())
                    .filter(|o| *o != p)
            }
            None => self.pod_by_endpoint.remove(&ip),
        };
        if let Some(old) = old
            && let Some(ips) = self.endpoints_of_pod.get_mut(&old)
        {
            ips.retain(|i| *i != ip);
            if ips.is_empty() {
                self.endpoints_of_pod.remove(&old);
            }
        }
    }

    /// The endpoint addresses whose targetRef is this pod (its metadata changed). Only
    /// on the live index: a staging copy's `by_addr` is rebuilt whole after the list.
    pub(super) fn touch_endpoints_of_pod(&mut self, key: &ObjKey) {
        if let Some(ips) = self.endpoints_of_pod.get(key) {
            self.touched.extend(ips.iter().copied());
        }
    }

    /// What the per-kind maps say about `addr`, resolved to the objects.
    pub(super) fn entry_of(&self, addr: &IpAddr) -> AddrEntry {
        AddrEntry {
            cluster_ip: self
                .svc_by_ip
                .get(addr)
                .and_then(|k| self.services.get(k))
                .cloned(),
            pod: self
                .pod_by_ip
                .get(addr)
                .and_then(|u| self.pods.get(u))
                .cloned(),
            endpoint_pod: self
                .pod_by_endpoint
                .get(addr)
                .and_then(|k| self.pod_meta.get(k))
                .cloned(),
            endpoint_svc: self
                .svc_by_endpoint
                .get(addr)
                .and_then(|k| self.services.get(k))
                .cloned(),
        }
    }

    fn refresh(&mut self, addr: IpAddr) {
        let e = self.entry_of(&addr);
        if e.cluster_ip.is_none()
            && e.pod.is_none()
            && e.endpoint_pod.is_none()
            && e.endpoint_svc.is_none()
        {
            self.by_addr.remove(&addr);
        } else {
            self.by_addr.insert(addr, e);
        }
    }

    /// Brings `by_addr` up to date with the addresses the last event touched.
    pub(super) fn refresh_touched(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for ip in touched.drain(..) {
            self.refresh(ip);
        }
        self.touched = touched;
    }

    /// `by_addr` from scratch (after a relist replaced a kind).
    pub(super) fn rebuild_by_addr(&mut self) {
        self.touched.clear();
        let mut addrs: Vec<IpAddr> = self
            .svc_by_ip
            .keys()
            .chain(self.pod_by_ip.keys())
            .chain(self.pod_by_endpoint.keys())
            .chain(self.svc_by_endpoint.keys())
            .copied()
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut by_addr = AddrMap::default();
        by_addr.reserve(addrs.len());
        for a in addrs {
            by_addr.insert(a, self.entry_of(&a));
        }
        self.by_addr = by_addr;
    }
}

pub(super) fn unindex_pod(idx: &mut Indexes, uid: &str) {
    let touched = &mut idx.touched;
    idx.pod_by_ip.retain(|ip, u| {
        let keep = u != uid;
        if !keep {
            touched.push(*ip);
        }
        keep
    });
}

/// Drops a Service's ClusterIPs; touches them and its endpoints' addresses (whose
/// `endpoint_svc` is this Service's object).
pub(super) fn unindex_service(idx: &mut Indexes, key: &ObjKey) {
    if let Some(target) = idx
        .services
        .get(key)
        .and_then(|s| s.external.as_ref())
        .map(|e| e.target.clone())
        && let Some(keys) = idx.svc_by_external_name.get_mut(&target)
    {
        keys.retain(|k| k != key);
        if keys.is_empty() {
            idx.svc_by_external_name.remove(&target);
        }
    }
    let touched = &mut idx.touched;
    idx.svc_by_ip.retain(|ip, k| {
        let keep = k != key;
        if !keep {
            touched.push(*ip);
        }
        keep
    });
    for (svc, ips) in idx.slices.values() {
        if svc == key {
            touched.extend(ips.iter().copied());
        }
    }
}

pub(super) fn remove_slice(idx: &mut Indexes, key: &ObjKey) {
    if let Some((svc, ips)) = idx.slices.remove(key) {
        idx.touched.extend(ips.iter().copied());
        for ip in ips {
            if idx.svc_by_endpoint.get(&ip) == Some(&svc) {
                idx.svc_by_endpoint.remove(&ip);
                idx.set_endpoint_pod(ip, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn unused_label_sets_are_swept() {
        let mut sets = LabelSets::default();
        let mut held = Vec::new();
        for i in 0..5000 {
            let l = sets.intern(&BTreeMap::from([("generation".to_string(), i.to_string())]));
            // Only the last 10 stay in use, as after churn.
            held.push(l);
            if held.len() > 10 {
                held.remove(0);
            }
        }
        assert!(sets.sets.len() <= 2 * 512, "{} sets kept", sets.sets.len());
        for l in &held {
            assert!(sets.sets.contains(l));
        }
    }
}
