//! The watchers: one task per watched kind that applies its events to the live index,
//! and replaces the kind's part of it after each (re)list.

use std::sync::{Arc, atomic::Ordering};

use futures_util::StreamExt;
use k8s_openapi::api::{
    core::v1::{Pod, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client,
    core::PartialObjectMeta,
    runtime::{WatchStreamExt, watcher},
};

use super::{KubeState, POD_META, index::Indexes};

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
            swap(
                &mut live.svc_by_external_name,
                &mut listed.svc_by_external_name,
            );
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
