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
//!
//! `index.rs` holds the indexes, `objects.rs` turns watched objects into their entries,
//! `resolve.rs` answers lookups from them, `watch.rs` runs the watchers.

mod index;
mod objects;
mod resolve;
mod watch;

use std::sync::{
    RwLock,
    atomic::{AtomicBool, Ordering},
};

// A module's API names these types (`KubeIdentity::new` takes selectors, `Resolved`
// carries a `K8sRef`); they are defined below identity's sources, so that the inventory
// can name them without importing this module.
pub use super::cluster::{K8sRef, KubeSelector};
pub use resolve::{KubeIdentity, pod_uid_from_cgroup};
pub use watch::start_watchers;

use index::Indexes;

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
