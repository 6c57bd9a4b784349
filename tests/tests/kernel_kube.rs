//! `auditor run --kubernetes` on the real kernel: network namespaces stand in for pods,
//! their processes sit in cgroups shaped like kubelet's pod cgroups, and the fake API
//! server describes them. Flows must be attributed to the right pods and Services, with
//! the same verdicts a file inventory of the same addresses gives.

use std::{collections::BTreeSet, path::PathBuf, process::Command, time::Duration};

use auditor_tests::peer::{peer_bin, serve};
use auditor_tests::{
    capture::CaptureProc,
    events::read_valid,
    fake_kube::{FakeKube, Kind, endpoint_slice, pod, service},
    kernel_tests_enabled,
    lab::{Lab, ip},
    services::{Daemon, metric, wait_for},
    workspace_bin,
};
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Kubelet-style pod cgroups (systemd driver) under the cgroup v2 root; removed on drop.
struct PodCgroups {
    dirs: Vec<PathBuf>,
}

impl PodCgroups {
    fn create(uids: &[&str]) -> PodCgroups {
        let mounts = auditor::capture::mounts::read_mountinfo().unwrap();
        let root = auditor::capture::mounts::cgroup2_root(&mounts).expect("cgroup v2");
        let base = root.join("kubepods.slice/kubepods-besteffort.slice");
        let mut dirs = Vec::new();
        for uid in uids {
            let pod = base.join(format!(
                "kubepods-besteffort-pod{}.slice",
                uid.replace('-', "_")
            ));
            let scope = pod.join(format!("cri-containerd-{}.scope", &uid[..8]));
            std::fs::create_dir_all(&scope).unwrap();
            dirs.push(scope);
            dirs.push(pod);
        }
        dirs.push(base.clone());
        dirs.push(root.join("kubepods.slice"));
        PodCgroups { dirs }
    }

    fn scope(&self, i: usize) -> &PathBuf {
        &self.dirs[i * 2]
    }
}

impl Drop for PodCgroups {
    fn drop(&mut self) {
        // Leaf first; a cgroup can only go once its processes have.
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn client_in_pod(lab: &Lab, host: &str, cgroup: &std::path::Path, args: &[&str]) {
    let out = lab
        .command_in_cgroup(host, &peer_bin(), args, cgroup)
        .output()
        .expect("client");
    assert!(
        out.status.success(),
        "client {host} {args:?} failed: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

const TENANT: &str = "2c3d4e5f-6071-4b8c-9dae-1f2a3b4c5d6e";
const CONFIG: &str = "1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d";
const GES: &str = "4e5f6071-8293-4dae-9fc0-3b4c5d6e7f80";
const REDIS: &str = "3d4e5f60-7182-4c9d-8ebf-2a3b4c5d6e7f";

#[test]
fn kubernetes_identity_attributes_pods_and_services_like_the_file_inventory() {
    if !kernel_tests_enabled(
        "kubernetes_identity_attributes_pods_and_services_like_the_file_inventory",
    ) {
        return;
    }
    let lab = Lab::new(&["tenant", "config", "ges", "redis"]).expect("lab");
    let a = |h: &str| lab.host(h).v4.to_string();
    // The voice-config Service's ClusterIP: an address the config "pod" answers on, as
    // kube-proxy would make it reach the pod.
    let cluster_ip = "198.18.0.102";
    ip(&[
        "-n",
        &lab.host("config").netns,
        "addr",
        "add",
        &format!("{cluster_ip}/32"),
        "dev",
        "eth0",
    ])
    .unwrap();
    for h in ["tenant", "ges", "redis"] {
        ip(&[
            "-n",
            &lab.host(h).netns,
            "route",
            "add",
            &format!("{cluster_ip}/32"),
            "dev",
            "eth0",
        ])
        .unwrap();
    }
    let cgroups = PodCgroups::create(&[TENANT, GES]);

    let fake = FakeKube::start();
    let t0 = "2026-11-26T00:00:00Z";
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "tenant-7d9f8b6c5-aaaaa",
            TENANT,
            "tenant",
            &a("tenant"),
            "node-a",
            t0,
        ),
    );
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "voice-config-7d9f8b6c5-bbbbb",
            CONFIG,
            "voice-config",
            &a("config"),
            "node-a",
            t0,
        ),
    );
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "ges-7d9f8b6c5-ccccc",
            GES,
            "ges",
            &a("ges"),
            "node-a",
            t0,
        ),
    );
    fake.apply(
        Kind::Pod,
        pod(
            "voice",
            "redis-7d9f8b6c5-ddddd",
            REDIS,
            "redis",
            &a("redis"),
            "node-a",
            t0,
        ),
    );
    fake.apply(
        Kind::Service,
        service("voice", "voice-config", "voice-config", cluster_ip, 9100),
    );
    fake.apply(
        Kind::EndpointSlice,
        endpoint_slice("voice", "voice-config", &[&a("config")], 9100),
    );

    let dir = std::env::temp_dir().join(format!("auditor-kube-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("kubeconfig"), fake.kubeconfig()).unwrap();
    std::fs::write(
        dir.join("k8s-inventory.yaml"),
        "version: 1\nservices:\n  Tenant Service: {kubernetes: {namespace: voice, labels: {app.kubernetes.io/name: tenant}}}\n  \
         Config Service: {kubernetes: {namespace: voice, service: voice-config}}\n  \
         Genesys Engagement Service: {kubernetes: {namespace: voice, labels: {app.kubernetes.io/name: ges}}}\n  \
         Redis: {kubernetes: {namespace: voice, labels: {app.kubernetes.io/name: redis}}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("file-inventory.yaml"),
        format!(
            "version: 1\nservices:\n  Tenant Service: {{addresses: [{}]}}\n  Config Service: {{addresses: [{}, {cluster_ip}]}}\n  \
             Genesys Engagement Service: {{addresses: [{}]}}\n  Redis: {{addresses: [{}]}}\n",
            a("tenant"), a("config"), a("ges"), a("redis")
        ),
    )
    .unwrap();

    let capture = CaptureProc::start(&[]).expect("capture");
    let args: Vec<String> = [
        "--allowlist",
        &format!("{ROOT}/allowlist/voice-microservices.yaml"),
        "--inventory",
        &dir.join("k8s-inventory.yaml").display().to_string(),
        "--kubernetes",
        "--scope",
        "198.18.0.0/24",
        "--node",
        "node-a",
        "--store",
        &dir.join("store.db").display().to_string(),
        "--events",
        &dir.join("events.jsonl").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let kubeconfig = dir.join("kubeconfig").display().to_string();
    // /readyz waits for the cluster caches: ready means the pods are known.
    let daemon = Daemon::start_env(
        &workspace_bin("auditor"),
        &args,
        dir.join("daemon.log"),
        &[("KUBECONFIG", &kubeconfig)],
    )
    .expect("daemon");

    let mut servers = vec![
        serve(&lab, "config", &["listen", "tcp", "0.0.0.0", "9100", "1"]),
        serve(
            &lab,
            "config",
            &["listen", "tcp", &a("config"), "9200", "1"],
        ),
        serve(&lab, "redis", &["listen", "tcp", &a("redis"), "6379", "1"]),
    ];
    client_in_pod(
        &lab,
        "tenant",
        cgroups.scope(0),
        &["connect", cluster_ip, "9100"],
    );
    client_in_pod(
        &lab,
        "tenant",
        cgroups.scope(0),
        &["connect", &a("config"), "9200"],
    );
    client_in_pod(
        &lab,
        "ges",
        cgroups.scope(1),
        &["connect", &a("redis"), "6379"],
    );
    for s in &mut servers {
        assert!(s.wait().unwrap().success());
    }
    wait_for("three stored connections", Duration::from_secs(30), || {
        metric(
            &daemon.metrics(),
            "auditor_store_acknowledged_connections_total",
            &[],
        )
        .filter(|v| *v >= 3.0)
    });
    daemon.stop().expect("clean stop");
    let captured = capture.stop().expect("capture");

    // The daemon's verdicts, by edge.
    let store = auditor::store::Store::open_existing(&dir.join("store.db")).unwrap();
    let kube_edges: BTreeSet<(String, String, String, u16)> = store
        .edges(None, None)
        .unwrap()
        .into_iter()
        .map(|e| {
            let k = e.edge.key();
            (k.verdict.as_str().to_string(), k.src, k.dst, k.port)
        })
        .collect();
    let want: BTreeSet<(String, String, String, u16)> = [
        ("allowed", "Tenant Service", "Config Service", 9100),
        ("port_drift", "Tenant Service", "Config Service", 9200),
        (
            "undocumented_egress",
            "Genesys Engagement Service",
            "Redis",
            6379,
        ),
    ]
    .iter()
    .map(|(v, s, d, p)| (v.to_string(), s.to_string(), d.to_string(), *p))
    .collect();
    assert_eq!(kube_edges, want);

    // The events name the pods, their workloads, and the Service connected to.
    let events: Vec<Value> = read_valid(&dir.join("events.jsonl"));
    let drift = events
        .iter()
        .find(|e| e["verdict"] == "port_drift")
        .expect("port drift event");
    let k8s = |end: &Value| {
        (
            end["namespace"].clone(),
            end["pod"].clone(),
            end["workload"].clone(),
        )
    };
    assert_eq!(
        k8s(&drift["src"]),
        (
            "voice".into(),
            "tenant-7d9f8b6c5-aaaaa".into(),
            "Deployment/tenant".into()
        ),
        "{drift}"
    );
    assert_eq!(
        k8s(&drift["dst"]),
        (
            "voice".into(),
            "voice-config-7d9f8b6c5-bbbbb".into(),
            "Deployment/voice-config".into()
        ),
        "{drift}"
    );
    let undoc = events
        .iter()
        .find(|e| e["verdict"] == "undocumented_egress")
        .expect("undocumented event");
    assert_eq!(
        k8s(&undoc["src"]),
        (
            "voice".into(),
            "ges-7d9f8b6c5-ccccc".into(),
            "Deployment/ges".into()
        ),
        "{undoc}"
    );
    let allowed_pod = store
        .edges(None, None)
        .unwrap()
        .into_iter()
        .find(|e| e.edge.verdict.as_str() == "allowed")
        .unwrap()
        .edge
        .src
        .k8s_text();
    assert_eq!(
        allowed_pod.as_deref(),
        Some("voice/tenant-7d9f8b6c5-aaaaa (Deployment/tenant)")
    );

    // The same flows through the file inventory give the same verdicts.
    let lab_addrs: Vec<String> = lab
        .hosts
        .iter()
        .map(|h| h.v4.to_string())
        .chain([cluster_ip.to_string()])
        .collect();
    let lines: Vec<String> = captured
        .records
        .iter()
        .filter(|r| {
            r["direction"] == "egress" && lab_addrs.iter().any(|a| r["dst_addr"] == a.as_str())
        })
        .map(Value::to_string)
        .collect();
    std::fs::write(dir.join("flows.jsonl"), lines.join("\n") + "\n").unwrap();
    let replay = Command::new(workspace_bin("auditor"))
        .args([
            "replay",
            "--allowlist",
            &format!("{ROOT}/allowlist/voice-microservices.yaml"),
            "--inventory",
        ])
        .arg(dir.join("file-inventory.yaml"))
        .arg(dir.join("flows.jsonl"))
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let file_edges: BTreeSet<(String, String, String, u16)> =
        String::from_utf8_lossy(&replay.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| {
                (
                    v["verdict"].as_str().unwrap().to_string(),
                    v["src"]["service"].as_str().unwrap_or("?").to_string(),
                    v["dst"]["service"].as_str().unwrap_or("?").to_string(),
                    v["dst"]["port"].as_u64().unwrap() as u16,
                )
            })
            .collect();
    assert_eq!(
        file_edges, kube_edges,
        "the cluster and the file give the same verdicts"
    );
    drop(cgroups);
    std::fs::remove_dir_all(&dir).unwrap();
}
