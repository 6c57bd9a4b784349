//! Identity from the Kubernetes API against a server speaking its wire format (list,
//! watch with resourceVersion, bookmarks, 410 Gone and relist, ADDED/MODIFIED/DELETED):
//! pods by cgroup and IP, Services by ClusterIP and EndpointSlice, and no
//! misattribution when a pod's IP is reused. Needs no root.

use std::{net::IpAddr, sync::Arc, time::Duration};

use auditor::identity::{
    IdentitySource, Inventory, LocalEndpoint, Via,
    kubernetes::{KubeIdentity, KubeState, start_watchers},
};
use auditor_tests::fake_kube::{
    FakeKube, Kind, endpoint_slice, endpoint_slice_of_pods, pod, service,
};

const CONFIG_UID: &str = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d";
const TENANT_UID: &str = "2c3d4e5f-6071-4b8c-9dae-1f2a3b4c5d6e";
const REDIS_UID: &str = "3d4e5f60-7182-4c9d-8ebf-2a3b4c5d6e7f";

const INVENTORY: &str = "version: 1
services:
  Config Service:
    kubernetes: {namespace: voice, labels: {app.kubernetes.io/name: voice-config}}
  Tenant Service:
    kubernetes: {namespace: voice, labels: {app.kubernetes.io/name: tenant}}
  Redis:
    kubernetes: {namespace: voice, service: redis}
";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Watchers on `fake` as the daemon on `node` runs them, once their caches have synced.
async fn synced_state(fake: &FakeKube, node: &str) -> Arc<KubeState> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let state = Arc::new(KubeState::default());
    start_watchers(
        kube::Client::try_from(config).unwrap(),
        state.clone(),
        Some(node),
    );
    until("the caches to sync", || state.synced().then_some(())).await;
    state
}

fn cgroup_of(uid: &str) -> String {
    format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-0123abcd.scope",
        uid.replace('-', "_")
    )
}

fn service_of(id: &KubeIdentity, addr: &str) -> Option<String> {
    id.remote(ip(addr), 9100).map(|r| r.service.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_identifies_pods_and_services_and_a_reused_ip_is_not_misattributed() {
    let fake = FakeKube::start();
    let created = |n: u32| format!("2026-11-26T00:{n:02}:00Z");
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "voice-config-7d9f8b6c5-abcde",
            CONFIG_UID,
            "voice-config",
            "10.244.1.5",
            "node-a",
            &created(1),
        ),
    );
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "tenant-7d9f8b6c5-fghij",
            TENANT_UID,
            "tenant",
            "10.244.1.6",
            "node-a",
            &created(1),
        ),
    );
    fake.apply(
        Kind::Service,
        service("voice", "voice-config", "voice-config", "10.96.0.10", 9100),
    );
    fake.apply(
        Kind::Service,
        service("voice", "redis", "redis", "10.96.0.20", 6379),
    );
    fake.apply(
        Kind::EndpointSlice,
        endpoint_slice("voice", "voice-config", &["10.244.1.5"], 9100),
    );

    let state = synced_state(&fake, "node-a").await;

    let inv = Inventory::parse(INVENTORY, "inventory.yaml").unwrap();
    let id = KubeIdentity::new(state.clone(), inv.kube_selectors());

    // A ClusterIP is the Service; a pod IP is the pod, with its workload.
    let svc = id.remote(ip("10.96.0.10"), 9100).expect("ClusterIP");
    assert_eq!(
        (svc.service.as_ref(), svc.via),
        ("Config Service", Via::KubeService)
    );
    assert_eq!(
        svc.k8s.as_ref().unwrap().service.as_deref(),
        Some("voice-config")
    );
    let p = id.remote(ip("10.244.1.5"), 9100).expect("pod IP");
    assert_eq!(
        (p.service.as_ref(), p.via),
        ("Config Service", Via::KubePod)
    );
    let k = p.k8s.as_ref().unwrap();
    assert_eq!(
        (
            k.namespace.as_str(),
            k.pod.as_deref(),
            k.workload.as_deref()
        ),
        (
            "voice",
            Some("voice-config-7d9f8b6c5-abcde"),
            Some("Deployment/voice-config")
        )
    );
    // The connecting container, by the pod UID in its cgroup path.
    let cg = cgroup_of(TENANT_UID);
    let src = id
        .local(&LocalEndpoint {
            cgroup: Some(&cg),
            ..LocalEndpoint::default()
        })
        .expect("cgroup");
    assert_eq!(
        (src.service.as_ref(), src.via),
        ("Tenant Service", Via::Cgroup)
    );
    // A Service named in the inventory: its ClusterIP and the pods it selects.
    assert_eq!(service_of(&id, "10.96.0.20").as_deref(), Some("Redis"));
    assert_eq!(
        service_of(&id, "10.244.9.9"),
        None,
        "an unknown IP is nobody"
    );

    // The config pod is deleted and its IP reused by a Redis pod: the IP is Redis now.
    fake.delete(Kind::Pod, "voice", "voice-config-7d9f8b6c5-abcde");
    // As the endpoints controller does: the Service's slice loses the deleted pod.
    fake.apply(
        Kind::EndpointSlice,
        endpoint_slice("voice", "voice-config", &[], 9100),
    );
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "redis-7d9f8b6c5-klmno",
            REDIS_UID,
            "redis",
            "10.244.1.5",
            "node-a",
            &created(5),
        ),
    );
    until("the reused IP to be Redis's", || {
        (service_of(&id, "10.244.1.5").as_deref() == Some("Redis")).then_some(())
    })
    .await;

    // Out of order: the old pod's late update (still claiming the IP) must not take it back.
    let mut late = pod(
        "voice",
        "voice-config-7d9f8b6c5-abcde",
        CONFIG_UID,
        "voice-config",
        "10.244.1.5",
        "node-a",
        &created(1),
    );
    late["status"]["phase"] = "Running".into();
    fake.apply(Kind::Pod, late);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        service_of(&id, "10.244.1.5").as_deref(),
        Some("Redis"),
        "an older pod took a reused IP back"
    );
    fake.delete(Kind::Pod, "voice", "voice-config-7d9f8b6c5-abcde");

    // A finished pod gives its IP up.
    let mut done = pod(
        "voice",
        "redis-7d9f8b6c5-klmno",
        REDIS_UID,
        "redis",
        "10.244.1.5",
        "node-a",
        &created(5),
    );
    done["status"]["phase"] = "Succeeded".into();
    fake.apply(Kind::Pod, done);
    until("the finished pod's IP to be free", || {
        service_of(&id, "10.244.1.5").is_none().then_some(())
    })
    .await;

    // The tenant pod goes while the watches are cut and its event is compacted away:
    // only the relist after 410 Gone can tell, and then the cgroup names nobody.
    let relists = fake.relists();
    fake.delete_unseen(Kind::Pod, "voice", "tenant-7d9f8b6c5-fghij");
    until("a relist after 410 Gone", || {
        (fake.relists() > relists).then_some(())
    })
    .await;
    until("the vanished pod to be forgotten", || {
        id.local(&LocalEndpoint {
            cgroup: Some(&cg),
            ..LocalEndpoint::default()
        })
        .is_none()
        .then_some(())
    })
    .await;
    assert!(fake.watches_served() >= 6, "watches were re-established");
}

/// A daemon watches its own node's pods in full and no other's: a pod elsewhere is known
/// only by its metadata and, as a destination, through the EndpointSlice that lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_nodes_own_pods_are_watched_in_full() {
    const REMOTE_UID: &str = "4e5f6071-8293-4dae-9fc0-3b4c5d6e7f80";
    const LONE_UID: &str = "5f607182-93a4-4ebf-a0d1-4c5d6e7f8091";
    let fake = FakeKube::start();
    let t = "2026-11-26T00:01:00Z";
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "tenant-7d9f8b6c5-fghij",
            TENANT_UID,
            "tenant",
            "10.244.1.6",
            "node-a",
            t,
        ),
    );
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "voice-config-7d9f8b6c5-remote",
            REMOTE_UID,
            "voice-config",
            "10.244.2.5",
            "node-b",
            t,
        ),
    );
    // On node-b and behind no Service.
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "tenant-7d9f8b6c5-lone",
            LONE_UID,
            "tenant",
            "10.244.2.9",
            "node-b",
            t,
        ),
    );
    fake.apply(
        Kind::Service,
        service("voice", "voice-config", "voice-config", "10.96.0.10", 9100),
    );
    fake.apply(
        Kind::EndpointSlice,
        endpoint_slice_of_pods(
            "voice",
            "voice-config",
            "voice-config-x1",
            &[("10.244.2.5", "voice-config-7d9f8b6c5-remote", "node-b")],
            9100,
        ),
    );
    let state = synced_state(&fake, "node-a").await;
    let inv = Inventory::parse(INVENTORY, "inventory.yaml").unwrap();
    let id = KubeIdentity::new(state.clone(), inv.kube_selectors());

    // Every full pod request asked the API server for node-a's pods only.
    let asked = fake.pod_selectors();
    assert!(asked.iter().any(|(_, meta)| !meta), "{asked:?}");
    for (selector, meta) in &asked {
        if !meta {
            assert_eq!(selector, "spec.nodeName=node-a", "{asked:?}");
        }
    }
    let by_cgroup = |uid: &str| {
        let cg = cgroup_of(uid);
        id.local(&LocalEndpoint {
            cgroup: Some(&cg),
            ..LocalEndpoint::default()
        })
        .map(|r| r.service.to_string())
    };
    assert_eq!(by_cgroup(TENANT_UID).as_deref(), Some("Tenant Service"));
    assert_eq!(
        by_cgroup(REMOTE_UID),
        None,
        "a pod of node-b was watched in full"
    );
    // A destination pod on node-b: its endpoint names it, its metadata gives its labels.
    let p = id.remote(ip("10.244.2.5"), 9100).expect("endpoint pod");
    assert_eq!(
        (p.service.as_ref(), p.via),
        ("Config Service", Via::KubePod)
    );
    let k = p.k8s.as_ref().unwrap();
    assert_eq!(
        (k.pod.as_deref(), k.workload.as_deref()),
        (
            Some("voice-config-7d9f8b6c5-remote"),
            Some("Deployment/voice-config")
        )
    );
    // Its labels change: the metadata watch follows.
    let mut relabelled = pod(
        "voice",
        "voice-config-7d9f8b6c5-remote",
        REMOTE_UID,
        "tenant",
        "10.244.2.5",
        "node-b",
        t,
    );
    relabelled["metadata"]["labels"]["app.kubernetes.io/name"] = "tenant".into();
    fake.apply(Kind::Pod, relabelled);
    until("the relabelled pod to be Tenant Service", || {
        (service_of(&id, "10.244.2.5").as_deref() == Some("Tenant Service")).then_some(())
    })
    .await;
    // A pod of node-b no EndpointSlice lists is not known by its IP.
    assert_eq!(service_of(&id, "10.244.2.9"), None);
}

/// A large cluster's lists come in pages (the watcher asks for 500 at a time, and the
/// API server, like the fake, answers with a continue token): every page is indexed,
/// pod metadata included, and nothing of the first page is lost to the later ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_in_pages_is_indexed_whole() {
    let fake = FakeKube::start();
    const N: usize = 1_201; // three pages of 500
    let addr = |i: usize| format!("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256);
    for i in 0..N {
        let name = format!("app-{i}");
        fake.apply(
            Kind::Pod,
            pod(
                "shop",
                &format!("{name}-7d9f8b6c5-abcde"),
                &format!("{i:08x}-0000-4000-8000-000000000000"),
                &name,
                &addr(i),
                "node-b",
                "2026-11-26T00:00:00Z",
            ),
        );
        fake.apply(
            Kind::Service,
            service(
                "shop",
                &name,
                &name,
                &format!("10.96.{}.{}", i / 256, i % 256),
                80,
            ),
        );
        let member = (
            addr(i),
            format!("{name}-7d9f8b6c5-abcde"),
            "node-b".to_string(),
        );
        fake.apply(
            Kind::EndpointSlice,
            endpoint_slice_of_pods(
                "shop",
                &name,
                &format!("{name}-x"),
                &[(&member.0, &member.1, &member.2)],
                80,
            ),
        );
    }
    let state = synced_state(&fake, "node-a").await;

    // Each Service by its ClusterIP, and each pod on another node through its endpoint
    // and its metadata (its labels): the first, a middle and the last of each list.
    for i in [0, 499, 500, 999, 1000, N - 1] {
        let name = format!("app-{i}");
        let by_service = auditor::identity::kubernetes::KubeSelector {
            namespace: "shop".into(),
            labels: Default::default(),
            service: Some(name.clone()),
        };
        let by_labels = auditor::identity::kubernetes::KubeSelector {
            namespace: "shop".into(),
            labels: [("app.kubernetes.io/name".to_string(), name.clone())].into(),
            service: None,
        };
        let cluster_ip = ip(&format!("10.96.{}.{}", i / 256, i % 256));
        assert!(
            state.selector_matches(cluster_ip, &by_service),
            "{name}'s ClusterIP"
        );
        assert!(
            state.selector_matches(ip(&addr(i)), &by_labels),
            "{name}'s pod"
        );
    }
    assert_eq!(fake.relists(), 4, "one list (of pages) per watched kind");
    // This node's pods (none): one page; pod metadata, Services, EndpointSlices: three.
    assert_eq!(fake.list_pages(), 1 + 3 * 3);
}
