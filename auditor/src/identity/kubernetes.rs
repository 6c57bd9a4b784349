//! Identity from the Kubernetes API: the connecting container's pod (by its cgroup, which
//! names the pod UID, also for hostNetwork pods) and the destination's Service (by
//! ClusterIP or an EndpointSlice address) or pod (by pod IP). Documented services are
//! matched by the inventory's `kubernetes:` selectors (namespace + labels, or a Service).
//!
//! Sized for large clusters: a daemon keeps what its node needs, not the cluster.
//! - Pods: only this node's (field selector `spec.nodeName=NODE`), in full: the sources
//!   (by cgroup) and their IPs.
//! - Pod metadata, cluster-wide (metadata-only watch: namespace, name, labels, owners;
//!   no spec or status): what a destination pod needs to match an inventory selector.
//! - Services (ClusterIPs, selectors) and EndpointSlices: destination addresses. An
//!   endpoint's `targetRef` names its pod, whose metadata gives the labels. A pod on
//!   another node that no EndpointSlice lists is not identified by its IP (a pod's IP is
//!   only in its status, which a metadata watch does not carry).
//!
//! The watchers keep no object cache of their own (no reflector store): their events keep
//! the compact indexes here. A relist (after 410 Gone) replaces a kind's index at once. A
//! pod IP belongs to the newest live pod that has it: a deleted or finished pod gives its
//! IP up, so a reused IP is never attributed to the pod that had it before.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use futures_util::StreamExt;
use k8s_openapi::{
    api::{
        core::v1::{Pod, Service},
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api, Client, ResourceExt,
    core::PartialObjectMeta,
    runtime::{WatchStreamExt, watcher},
};

use super::{IdentitySource, LocalEndpoint, Resolved, Via};

/// How the inventory names a documented service in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeSelector {
    pub namespace: String,
    /// Pod labels (all must match). Also matches a Service whose selector includes them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A Service by name; its pods and ClusterIP are this documented service.
    #[serde(default)]
    pub service: Option<String>,
}

/// Where in the cluster an endpoint is (carried into verdicts, events and the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sRef {
    pub namespace: String,
    pub pod: Option<String>,
    pub service: Option<String>,
    pub workload: Option<String>,
}

/// A pod of this node, in full. `k8s` is built once here, so that a lookup hands out
/// an `Arc` instead of allocating a `K8sRef` per flow.
#[derive(Debug, Clone)]
struct PodInfo {
    uid: String,
    k8s: Arc<K8sRef>,
    labels: BTreeMap<String, String>,
    ips: Vec<IpAddr>,
    created: String,
    live: bool,
    /// The ports its spec declares to the platform: probes, and metrics.
    declared: super::inventory::DeclaredPorts,
}

#[derive(Debug, Clone)]
struct SvcInfo {
    k8s: Arc<K8sRef>,
    selector: BTreeMap<String, String>,
    cluster_ips: Vec<IpAddr>,
}

/// (namespace, name) of an object. Shared strings: the thousands of endpoint entries
/// that name a Service or a pod hold a reference, not a copy of their names.
type ObjKey = (Arc<str>, Arc<str>);

fn obj_key(namespace: &str, name: &str) -> ObjKey {
    (namespace.into(), name.into())
}

/// A pod's labels, shared by every pod that has the same set (the replicas of one
/// ReplicaSet do): most of what a pod's metadata costs.
type Labels = Arc<BTreeMap<String, String>>;

/// A pod anywhere in the cluster, from its metadata only.
#[derive(Debug, Clone)]
struct PodMeta {
    k8s: Arc<K8sRef>,
    labels: Labels,
}

/// The label sets pods have, each held once (see `Labels`). A set no pod has any more is
/// dropped when the table has doubled since the last sweep, so churn cannot grow it.
#[derive(Default)]
struct LabelSets {
    sets: std::collections::HashSet<Labels>,
    swept_at: usize,
}

impl LabelSets {
    fn intern(&mut self, labels: &BTreeMap<String, String>) -> Labels {
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
struct AddrEntry {
    /// The Service whose ClusterIP it is.
    cluster_ip: Option<Arc<SvcInfo>>,
    /// The live pod of this node that has it.
    pod: Option<Arc<PodInfo>>,
    /// The pod an EndpointSlice's targetRef names for it, when its metadata is known.
    endpoint_pod: Option<Arc<PodMeta>>,
    /// The Service an EndpointSlice lists it for, when that Service is known.
    endpoint_svc: Option<Arc<SvcInfo>>,
}

/// IpAddr keys hashed with foldhash rather than SipHash: the keys come from the API
/// server, not from the traffic, and lookups are on the per-flow path.
type AddrMap<V> = foldhash::HashMap<IpAddr, V>;

#[derive(Default)]
struct Indexes {
    pods: HashMap<String, Arc<PodInfo>>,
    pod_by_ip: HashMap<IpAddr, String>,
    services: HashMap<ObjKey, Arc<SvcInfo>>,
    svc_by_ip: HashMap<IpAddr, ObjKey>,
    /// EndpointSlice name -> (service key, its addresses): to drop them when it changes.
    slices: HashMap<ObjKey, (ObjKey, Vec<IpAddr>)>,
    svc_by_endpoint: HashMap<IpAddr, ObjKey>,
    /// An endpoint address -> the pod its `targetRef` names.
    pod_by_endpoint: HashMap<IpAddr, ObjKey>,
    /// The reverse of `pod_by_endpoint`: a pod -> the endpoint addresses naming it, so a
    /// change of its metadata refreshes those without a scan of every endpoint.
    endpoints_of_pod: HashMap<ObjKey, Vec<IpAddr>>,
    /// Every pod's metadata, by (namespace, name).
    pod_meta: HashMap<ObjKey, Arc<PodMeta>>,
    label_sets: LabelSets,
    /// The one index lookups read (live index only; a staging copy leaves it empty).
    by_addr: AddrMap<AddrEntry>,
    /// Addresses the last event may have changed: refreshed in `by_addr` by the caller.
    touched: Vec<IpAddr>,
}

/// The cluster state the watchers keep. Shared by every `KubeIdentity` (one per policy
/// generation), so a reload does not restart the watchers.
#[derive(Default)]
pub struct KubeState {
    idx: RwLock<Indexes>,
    synced: [AtomicBool; SLOTS],
}

/// Watched kinds: this node's pods, every pod's metadata, Services, EndpointSlices.
const SLOTS: usize = 4;
const POD_META: usize = 3;

impl KubeState {
    /// True once pods, pod metadata, services and endpoint slices have all been listed.
    pub fn synced(&self) -> bool {
        self.synced.iter().all(|s| s.load(Ordering::Relaxed))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Indexes> {
        self.idx.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Indexes> {
        self.idx.read().unwrap_or_else(|e| e.into_inner())
    }
}

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
    pub fn declared_ports(&self, addr: IpAddr) -> Option<super::inventory::DeclaredPorts> {
        let idx = self.read();
        let pod = idx.pod_by_ip.get(&addr).and_then(|u| idx.pods.get(u))?;
        Some(pod.declared.clone())
    }
}

/// The watchers' events, applied to an index: the live one, or a relist's staging copy.
impl Indexes {
    fn apply_pod(&mut self, pod: &Pod) {
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

    fn delete_pod(&mut self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        let idx = self;
        unindex_pod(idx, &uid);
        idx.pods.remove(&uid);
    }

    fn apply_service(&mut self, svc: &Service) {
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
        idx.services.insert(key, info);
    }

    fn delete_service(&mut self, svc: &Service) {
        let key = obj_key(&svc.namespace().unwrap_or_default(), &svc.name_any());
        let idx = self;
        unindex_service(idx, &key);
        idx.services.remove(&key);
    }

    fn apply_slice(&mut self, s: &EndpointSlice) {
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

    /// Points an endpoint address at a pod (or at none), keeping `endpoints_of_pod` the
    /// reverse of `pod_by_endpoint`.
    fn set_endpoint_pod(&mut self, ip: IpAddr, pod: Option<ObjKey>) {
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

    fn apply_pod_meta(&mut self, p: &PartialObjectMeta<Pod>) {
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

    fn delete_pod_meta(&mut self, p: &PartialObjectMeta<Pod>) {
        let key = obj_key(&p.namespace().unwrap_or_default(), &p.name_any());
        self.touch_endpoints_of_pod(&key);
        self.pod_meta.remove(&key);
    }

    /// The endpoint addresses whose targetRef is this pod (its metadata changed). Only
    /// on the live index: a staging copy's `by_addr` is rebuilt whole after the list.
    fn touch_endpoints_of_pod(&mut self, key: &ObjKey) {
        if let Some(ips) = self.endpoints_of_pod.get(key) {
            self.touched.extend(ips.iter().copied());
        }
    }

    /// What the per-kind maps say about `addr`, resolved to the objects.
    fn entry_of(&self, addr: &IpAddr) -> AddrEntry {
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
    fn refresh_touched(&mut self) {
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for ip in touched.drain(..) {
            self.refresh(ip);
        }
        self.touched = touched;
    }

    /// `by_addr` from scratch (after a relist replaced a kind).
    fn rebuild_by_addr(&mut self) {
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

    fn delete_slice(&mut self, s: &EndpointSlice) {
        let idx = self;
        remove_slice(
            idx,
            &obj_key(&s.namespace().unwrap_or_default(), &s.name_any()),
        );
    }
}

fn unindex_pod(idx: &mut Indexes, uid: &str) {
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
fn unindex_service(idx: &mut Indexes, key: &ObjKey) {
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

fn remove_slice(idx: &mut Indexes, key: &ObjKey) {
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
fn declared_ports(pod: &Pod) -> super::inventory::DeclaredPorts {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let mut out = super::inventory::DeclaredPorts::default();
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
    SvcInfo {
        k8s: Arc::new(K8sRef {
            namespace: svc.namespace().unwrap_or_default(),
            pod: None,
            service: Some(svc.name_any()),
            workload: None,
        }),
        selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
        cluster_ips: ips,
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
}

/// Starts the four watchers on the current runtime; they run until the process ends,
/// retrying with backoff when the API server is away. `node`: this node's name as
/// Kubernetes knows it (the pod's spec.nodeName); only its pods are watched in full.
/// None watches every pod in full (a daemon that is not on a node of the cluster).
pub fn start_watchers(client: Client, state: Arc<KubeState>, node: Option<&str>) {
    let pods: Api<Pod> = Api::all(client.clone());
    let pod_meta: Api<PartialObjectMeta<Pod>> = Api::all(client.clone());
    let services: Api<Service> = Api::all(client.clone());
    let slices: Api<EndpointSlice> = Api::all(client);
    let own = match node {
        Some(n) => watcher::Config::default().fields(&format!("spec.nodeName={n}")),
        None => watcher::Config::default(),
    };
    spawn_watch(
        pods,
        own,
        state.clone(),
        0,
        Indexes::apply_pod,
        Indexes::delete_pod,
        "pods",
    );
    spawn_watch(
        pod_meta,
        watcher::Config::default(),
        state.clone(),
        POD_META,
        Indexes::apply_pod_meta,
        Indexes::delete_pod_meta,
        "pod metadata",
    );
    spawn_watch(
        services,
        watcher::Config::default(),
        state.clone(),
        1,
        Indexes::apply_service,
        Indexes::delete_service,
        "services",
    );
    spawn_watch(
        slices,
        watcher::Config::default(),
        state,
        2,
        Indexes::apply_slice,
        Indexes::delete_slice,
        "endpointslices",
    );
}

fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    state: Arc<KubeState>,
    slot: usize,
    apply: fn(&mut Indexes, &K),
    delete: fn(&mut Indexes, &K),
    what: &'static str,
) where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    tokio::spawn(async move {
        // No reflector store: the indexes are the cache (a store would hold every
        // object in full, twice the memory for nothing).
        let mut stream = watcher(api, config).default_backoff().boxed();
        // A (re)list is applied to a staging index, which then replaces this kind's
        // part of the live one: what is not in the list is gone. Objects are indexed as
        // they arrive, never held in full (at 10,000 pods that was the daemon's peak).
        let mut staging: Option<Indexes> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o)) => {
                    let mut idx = state.write();
                    apply(&mut idx, &o);
                    idx.refresh_touched();
                }
                Ok(watcher::Event::Delete(o)) => {
                    let mut idx = state.write();
                    delete(&mut idx, &o);
                    idx.refresh_touched();
                }
                Ok(watcher::Event::Init) => staging = Some(Indexes::default()),
                Ok(watcher::Event::InitApply(o)) => {
                    let s = staging.get_or_insert_with(Indexes::default);
                    apply(s, &o);
                    // A staging copy has no `by_addr`: it is rebuilt at InitDone.
                    s.touched.clear();
                }
                Ok(watcher::Event::InitDone) => {
                    let mut listed = staging.take().unwrap_or_default();
                    let objects = {
                        let mut live = state.write();
                        let n = take_kind(slot, &mut live, &mut listed);
                        live.rebuild_by_addr();
                        n
                    };
                    // The replaced part is freed outside the lock.
                    drop(listed);
                    // Parsing the list (its pages and objects) took far more heap than
                    // the index keeps; without this, RSS stays at that peak for good.
                    crate::memory::release_freed_memory();
                    state.synced[slot].store(true, Ordering::Relaxed);
                    tracing::info!(kind = what, objects, "kubernetes cache synced");
                }
                Err(e) => tracing::warn!(kind = what, error = %e, "kubernetes watch; retrying"),
            }
        }
    });
}

/// Replaces one kind's part of the live index with a relist's (after a start, or 410
/// Gone); returns how many objects the list had.
fn take_kind(slot: usize, live: &mut Indexes, listed: &mut Indexes) -> usize {
    use std::mem::swap;
    match slot {
        0 => {
            swap(&mut live.pods, &mut listed.pods);
            swap(&mut live.pod_by_ip, &mut listed.pod_by_ip);
            live.pods.len()
        }
        1 => {
            swap(&mut live.services, &mut listed.services);
            swap(&mut live.svc_by_ip, &mut listed.svc_by_ip);
            live.services.len()
        }
        POD_META => {
            swap(&mut live.pod_meta, &mut listed.pod_meta);
            // The listed pods' label sets are interned in the staging copy's table.
            swap(&mut live.label_sets, &mut listed.label_sets);
            live.pod_meta.len()
        }
        _ => {
            swap(&mut live.slices, &mut listed.slices);
            swap(&mut live.svc_by_endpoint, &mut listed.svc_by_endpoint);
            swap(&mut live.pod_by_endpoint, &mut listed.pod_by_endpoint);
            swap(&mut live.endpoints_of_pod, &mut listed.endpoints_of_pod);
            live.slices.len()
        }
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
