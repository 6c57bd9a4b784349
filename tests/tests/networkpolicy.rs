//! `auditor networkpolicy`, tested by what the generated policies mean (the evaluator in
//! tests/src/netpol.rs, written from the Kubernetes documentation), not by snapshot: on the
//! bundled architecture every documented in-cluster connection is allowed, every
//! documented destination isolated, and nothing undocumented allowed; a held-back
//! inventory behaves the same; "what would break" on the demo's store lists exactly the
//! violations the policies deny; and Kubernetes' own schemas accept the output.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use allowlist::{PortBasis, Transport};
use auditor_tests::{
    netpol::{Cluster, Direction, End, Pod},
    setup_tool, workspace_bin,
};
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const ALLOWLIST: &str = "allowlist/voice-microservices.yaml";
const OVERRIDES: &str = "examples/overrides.yaml";
const INVENTORY: &str = "examples/inventory-kubernetes.yaml";
const HELD_BACK: &str = "tests/fixtures/inventory-k8s-spread.yaml";
const CHART_BASELINE: &str = "deploy/chart/auditor/files/baseline.yaml";

fn root(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("auditor-np-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn auditor(args: &[&str]) -> Output {
    Command::new(workspace_bin("auditor"))
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("auditor binary (cargo build -p auditor)")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `auditor networkpolicy` and returns its YAML (stdout) and stderr.
fn networkpolicy(inventory: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "networkpolicy",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        inventory,
        "--overrides",
        OVERRIDES,
    ];
    args.extend(extra);
    let out = auditor(&args);
    assert!(out.status.success(), "{}", text(&out));
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn parse(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_str_multiple::<Value, Vec<Value>>(yaml).expect("the output is YAML")
}

/// The deployment as the inventory describes it, read here on its own: one pod per
/// in-cluster service, an address inside each external's first CIDR.
struct World {
    pods: BTreeMap<String, Pod>,
    externals: BTreeMap<String, IpAddr>,
    dns: Pod,
}

fn an_address_in(cidr: &str) -> IpAddr {
    let (net, len) = cidr.split_once('/').unwrap_or((cidr, "128"));
    let net: IpAddr = net.parse().unwrap();
    let host = |bits: u32| len.parse::<u32>().unwrap() < bits;
    match net {
        IpAddr::V4(a) if host(32) => IpAddr::V4((u32::from(a) + 1).into()),
        IpAddr::V6(a) if host(128) => IpAddr::V6((u128::from(a) + 1).into()),
        a => a,
    }
}

fn world(inventory: &str) -> World {
    let inv: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root(inventory)).unwrap()).unwrap();
    let mut pods = BTreeMap::new();
    for (i, (name, s)) in inv["services"].as_object().unwrap().iter().enumerate() {
        let k = &s["kubernetes"];
        let labels = k["labels"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        pods.insert(
            name.clone(),
            Pod {
                namespace: k["namespace"].as_str().unwrap().into(),
                labels,
                // The pod network: in no external's CIDR.
                ip: format!("10.244.{}.{}", i / 200, i % 200 + 10)
                    .parse()
                    .unwrap(),
            },
        );
    }
    let externals = inv["externals"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, e)| {
            (
                n.clone(),
                an_address_in(e["addresses"][0].as_str().unwrap()),
            )
        })
        .collect();
    let dns = Pod {
        namespace: "kube-system".into(),
        labels: [("k8s-app".to_string(), "kube-dns".to_string())].into(),
        ip: "10.96.0.10".parse().unwrap(),
    };
    World {
        pods,
        externals,
        dns,
    }
}

impl World {
    fn end(&self, service: &str) -> End<'_> {
        match self.pods.get(service) {
            Some(p) => End::Pod(p),
            None => End::Outside(self.externals[service]),
        }
    }
}

fn proto(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "TCP",
        Transport::Udp => "UDP",
    }
}

fn documented() -> (allowlist::Allowlist, allowlist::RuleIndex) {
    let list = allowlist::file::load(&root(ALLOWLIST)).unwrap();
    let ovr = allowlist::overrides::load(&root(OVERRIDES), &list).unwrap();
    let policy = allowlist::RuleIndex::new(&list, &ovr);
    (list, policy)
}

/// The (src, dst, transport, port) pairs the documents allow: every documented port of
/// every row, ranges at both ends.
fn documented_pairs() -> Vec<(u32, String, String, Transport, u16)> {
    let (list, policy) = documented();
    let mut out = Vec::new();
    for (i, c) in list.connections.iter().enumerate() {
        let (s, d) = (
            policy.service_id(&c.source).unwrap(),
            policy.service_id(&c.destination).unwrap(),
        );
        for r in policy.edge(s, d).iter().filter(|r| r.index == i) {
            assert_ne!(r.basis, PortBasis::Unverified, "{c:?}: overrides give it");
            for p in &r.ports {
                for port in [p.first, p.last] {
                    out.push((
                        c.number.unwrap(),
                        c.source.clone(),
                        c.destination.clone(),
                        r.transport,
                        port,
                    ));
                }
            }
        }
    }
    out
}

/// What the acceptance asks of one inventory; returns the allowed grid (service pairs ×
/// transports × every documented port and a few others) to compare inventories.
fn check_architecture(
    inventory: &str,
    extra: &[&str],
) -> BTreeSet<(String, String, &'static str, u16)> {
    let mut args = vec!["--egress"];
    args.extend(extra);
    let (yaml, _) = networkpolicy(inventory, &args);
    let cluster = Cluster::new(parse(&yaml));
    let w = world(inventory);
    let pairs = documented_pairs();
    // Every documented (row, port) pair is allowed: in the cluster, and to the externals.
    let mut in_cluster = 0;
    for (row, src, dst, t, port) in &pairs {
        let allowed = cluster.allowed(w.end(src), w.end(dst), proto(*t), *port);
        assert!(
            allowed,
            "{inventory}: row {row} {src} → {dst} {t}/{port} is denied"
        );
        if w.pods.contains_key(src) && w.pods.contains_key(dst) {
            in_cluster += 1;
        }
    }
    assert!(
        in_cluster >= 100,
        "{in_cluster} in-cluster pairs: the fixture lost services"
    );
    // Every documented destination in the cluster is isolated, and with --egress every source.
    let (list, policy) = documented();
    for c in &list.connections {
        if let Some(p) = w.pods.get(&c.destination) {
            assert!(
                cluster.isolated(p, Direction::Ingress),
                "{} not isolated",
                c.destination
            );
        }
        if let Some(p) = w.pods.get(&c.source) {
            assert!(
                cluster.isolated(p, Direction::Egress),
                "{} egress not isolated",
                c.source
            );
        }
    }
    // The demo's violations, and the issue's: denied.
    let svc = |n: &str| End::Pod(&w.pods[n]);
    for (src, dst, port) in [
        ("Genesys Engagement Service", "Redis", 6379),
        ("Tenant Service", "Config Service", 9200),
        ("Voicemail", "Kafka", 9092),
    ] {
        assert!(
            !cluster.allowed(svc(src), svc(dst), "TCP", port),
            "{inventory}: {src} → {dst} {port} is allowed"
        );
    }
    assert!(!cluster.allowed(
        svc("Voice SIP Proxy Service"),
        svc("WebRTC Media Service"),
        "TCP",
        5070
    ));
    let outside: IpAddr = "192.0.2.200".parse().unwrap();
    assert!(!cluster.allowed(svc("Tenant Service"), End::Outside(outside), "TCP", 443));
    assert!(!cluster.allowed(End::Outside(outside), svc("Tenant Service"), "TCP", 8888));
    // DNS egress, and only DNS, to kube-dns.
    assert!(cluster.allowed(svc("Tenant Service"), End::Pod(&w.dns), "UDP", 53));
    assert!(!cluster.allowed(svc("Tenant Service"), End::Pod(&w.dns), "TCP", 9153));
    // Nothing undocumented: over every pair of ends, every documented port and its
    // neighbours, an allowed connection is one the documents allow.
    let mut ports: BTreeSet<u16> = pairs.iter().map(|p| p.4).collect();
    ports.extend(
        ports
            .clone()
            .iter()
            .flat_map(|p| [p.saturating_sub(1), p.saturating_add(1)]),
    );
    let mut names: Vec<&String> = w.pods.keys().chain(w.externals.keys()).collect();
    names.sort();
    let mut grid = BTreeSet::new();
    for s in &names {
        for d in &names {
            for t in [Transport::Tcp, Transport::Udp] {
                for &port in &ports {
                    if !cluster.allowed(w.end(s), w.end(d), proto(t), port) {
                        continue;
                    }
                    let both_outside = !w.pods.contains_key(*s) && !w.pods.contains_key(*d);
                    let lookup = policy.lookup_names(s, d, t, port).unwrap();
                    assert!(
                        both_outside || lookup.outcome == allowlist::Outcome::Allowed,
                        "{inventory}: {s} → {d} {t}/{port} is allowed but not documented"
                    );
                    grid.insert((s.to_string(), d.to_string(), proto(t), port));
                }
            }
        }
    }
    grid
}

#[test]
fn the_bundled_architecture_is_enforced_as_documented_and_a_held_back_inventory_the_same() {
    let demo = check_architecture(INVENTORY, &[]);
    let held_back = check_architecture(HELD_BACK, &[]);
    assert_eq!(
        demo, held_back,
        "the two inventories allow different connections"
    );
    // The platform baseline adds platform traffic, never a connection between services.
    let with_baseline = check_architecture(INVENTORY, &["--baseline", CHART_BASELINE]);
    assert_eq!(
        demo, with_baseline,
        "the baseline changed what services may do"
    );
}

#[test]
fn ingress_only_isolates_ingress_and_names_its_rows() {
    let (yaml, stderr) = networkpolicy(INVENTORY, &[]);
    let docs = parse(&yaml);
    assert!(
        docs.iter()
            .all(|d| d["spec"]["policyTypes"] == serde_json::json!(["Ingress"]))
    );
    let redis = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "auditor-ingress-redis")
        .expect("Redis's policy");
    assert_eq!(redis["metadata"]["namespace"], "voice-data");
    // kubectl describe shows why each rule exists: its documented row.
    assert_eq!(
        redis["metadata"]["annotations"]["auditor/ingress-0"],
        "row 6: Voice RQ Service → Redis, tcp/6379"
    );
    let rows = redis["metadata"]["annotations"]["auditor/connections"]
        .as_str()
        .unwrap();
    assert!(
        rows.split(',').any(|r| r == "45") && rows.split(',').any(|r| r == "9"),
        "{rows}"
    );
    // The reversed rows are generated as documented, their lint repeated as a comment.
    let before_tenant = yaml
        .split("name: auditor-ingress-tenant-service")
        .next()
        .unwrap();
    let tenant_comments = before_tenant.rsplit("---").next().unwrap();
    assert!(
        tenant_comments.contains("warning[reversed-datastore]: row 14"),
        "{tenant_comments}"
    );
    assert!(
        stderr.contains("warning[reversed-datastore]: row 55"),
        "{stderr}"
    );
    // One file per policy with -o DIR: the same objects.
    let dir = tmp("dir");
    let out = auditor(&[
        "networkpolicy",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        INVENTORY,
        "--overrides",
        OVERRIDES,
        "-o",
        &format!("{}/", dir.join("policies").display()),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut from_files: Vec<Value> = std::fs::read_dir(dir.join("policies"))
        .unwrap()
        .flat_map(|f| parse(&std::fs::read_to_string(f.unwrap().path()).unwrap()))
        .collect();
    let key = |v: &Value| v["metadata"]["name"].as_str().unwrap().to_string();
    from_files.sort_by_key(key);
    let mut docs = docs;
    docs.sort_by_key(key);
    assert_eq!(from_files, docs);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rows_it_cannot_express_are_skipped_with_why() {
    let dir = tmp("skip");
    let inv = dir.join("inventory.yaml");
    // Config Service only by address, Voicemail reached through a mesh upstream, no overrides.
    let mut text_inv = std::fs::read_to_string(root(INVENTORY)).unwrap();
    text_inv = text_inv.replace(
        "    kubernetes: {namespace: voice, labels: {app: config-service}}\n",
        "",
    );
    text_inv = text_inv.replace(
        "  \"Voicemail\":\n    addresses: [198.18.0.14]\n    kubernetes: {namespace: voice, labels: {app: voicemail}}\n",
        "",
    );
    text_inv.push_str("mesh_upstreams:\n  - {port: 9081, service: Voicemail}\n");
    std::fs::write(&inv, text_inv).unwrap();
    let out = auditor(&[
        "networkpolicy",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        inv.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let yaml = String::from_utf8_lossy(&out.stdout);
    for (row, why) in [
        ("row 59:", "the rule would have to allow every port"),
        (
            "row 19 (ingress):",
            "Voicemail is reached through the loopback mesh upstream 127.0.0.1:9081",
        ),
        (
            "row 26 (ingress):",
            "Config Service is inventoried by address only",
        ),
        (
            "row 18 (ingress):",
            "Voicemail is reached through the loopback mesh upstream",
        ),
    ] {
        assert!(
            stderr.lines().any(|l| l.contains(row) && l.contains(why)),
            "{row} {why}:\n{stderr}"
        );
        assert!(
            yaml.lines()
                .any(|l| l.starts_with('#') && l.contains(row) && l.contains(why))
        );
    }
    assert!(!yaml.contains("auditor-ingress-config-service"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The demo's store: the recorded flows replayed as `auditor replay --store` keeps them.
fn demo_store(dir: &Path, flows: &Path) -> (PathBuf, Vec<Value>) {
    let store = dir.join("store.db");
    let out = auditor(&[
        "replay",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        "examples/inventory.yaml",
        "--overrides",
        OVERRIDES,
        "--store",
        store.to_str().unwrap(),
        flows.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let verdicts = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (store, verdicts)
}

/// `--would-break` JSON, validated against the committed schema (which must be current).
fn read_would_break(path: &Path) -> Value {
    let committed = std::fs::read_to_string(root("docs/would-break.schema.json")).unwrap();
    let current = auditor(&["schema", "would-break"]);
    assert!(
        committed.as_bytes() == current.stdout,
        "docs/would-break.schema.json is stale: run `cargo xtask render`"
    );
    let schema: Value = serde_json::from_str(&committed).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
    assert_eq!(report["schema"], "auditor-would-break/1");
    report
}

fn edge_key(v: &Value) -> (String, String, String, String, u64) {
    let end = |e: &Value| {
        e["service"]
            .as_str()
            .map_or_else(|| e["addr"].as_str().unwrap().to_string(), str::to_string)
    };
    (
        v["verdict"].as_str().unwrap().into(),
        end(&v["src"]),
        end(&v["dst"]),
        v["transport"].as_str().unwrap().into(),
        v["dst"]["port"].as_u64().unwrap(),
    )
}

#[test]
fn what_would_break_on_the_demo_is_exactly_its_violations_the_policies_deny() {
    let dir = tmp("break");
    let (store, verdicts) = demo_store(&dir, &root("examples/flows.jsonl"));
    let violations: BTreeSet<_> = verdicts
        .iter()
        .filter(|v| v["verdict"] != "allowed")
        .map(edge_key)
        .collect();
    assert_eq!(violations.len(), 4, "the demo plants four");
    let w = world(INVENTORY);
    for egress in [false, true] {
        let json = dir.join(format!("would-break-{egress}.json"));
        let mut args = vec![
            "networkpolicy",
            "--allowlist",
            ALLOWLIST,
            "--inventory",
            INVENTORY,
            "--overrides",
            OVERRIDES,
            "--store",
            store.to_str().unwrap(),
            "--would-break",
            json.to_str().unwrap(),
            "--fail-on",
            "would-break",
        ];
        if egress {
            args.push("--egress");
        }
        let out = auditor(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "--fail-on would-break: {}",
            text(&out)
        );
        let yaml = String::from_utf8(out.stdout).unwrap();
        let cluster = Cluster::new(parse(&yaml));
        // What the evaluator says the policies deny, flow by flow.
        let addr_end = |e: &Value| -> End<'_> {
            match e["service"].as_str() {
                Some(s) => w.end(s),
                None => End::Outside(e["addr"].as_str().unwrap().parse().unwrap()),
            }
        };
        let mut denied = BTreeSet::new();
        for v in &verdicts {
            let t = v["transport"].as_str().unwrap().to_ascii_uppercase();
            let port = v["dst"]["port"].as_u64().unwrap() as u16;
            if !cluster.allowed(addr_end(&v["src"]), addr_end(&v["dst"]), &t, port) {
                assert_ne!(
                    v["verdict"], "allowed",
                    "a documented flow would break: {v}"
                );
                denied.insert(edge_key(v));
            }
        }
        let mut expressible = violations.clone();
        if !egress {
            // Only egress isolation can stop a connection to an unknown address.
            expressible.retain(|k| k.0 != "unknown_destination");
        }
        assert_eq!(denied, expressible, "egress {egress}");
        let report = read_would_break(&json);
        let listed: BTreeSet<_> = report["would_break"]
            .as_array()
            .unwrap()
            .iter()
            .map(edge_key)
            .collect();
        assert_eq!(listed, expressible, "egress {egress}: {report:#}");
        for b in report["would_break"].as_array().unwrap() {
            assert_eq!(b["count"], 1, "{b}");
            assert!(b["last_seen"].as_str().unwrap().starts_with("2026-"), "{b}");
            assert!(!b["denied_by"].as_array().unwrap().is_empty(), "{b}");
        }
        let not_stopped: BTreeSet<_> = report["not_stopped"]
            .as_array()
            .unwrap()
            .iter()
            .map(edge_key)
            .collect();
        assert_eq!(
            not_stopped,
            violations.difference(&expressible).cloned().collect(),
            "egress {egress}"
        );
        assert_eq!(
            report["never_observed"],
            serde_json::json!([]),
            "the demo uses every row"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("undocumented_egress Genesys Engagement Service → Redis tcp/6379: 1 connection(s), last seen 2026-"),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn documented_rows_never_observed_are_listed_as_stale() {
    let dir = tmp("stale");
    // The recording without Designer Application Server → Digital Channels (row 33, to
    // 198.18.0.23:80).
    let flows: String = std::fs::read_to_string(root("examples/flows.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"dst_addr\":\"198.18.0.23\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("flows.jsonl"), flows).unwrap();
    let (store, _) = demo_store(&dir, &dir.join("flows.jsonl"));
    let json = dir.join("wb.json");
    let out = auditor(&[
        "networkpolicy",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        INVENTORY,
        "--overrides",
        OVERRIDES,
        "--store",
        store.to_str().unwrap(),
        "--would-break",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "without --fail-on: {}", text(&out));
    let report = read_would_break(&json);
    assert_eq!(
        report["never_observed"],
        serde_json::json!([{"rule": 33, "src": "Designer Application Server", "dst": "Digital Channels"}])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn kubernetes_accepts_the_policies() {
    let Some(validate) = setup_tool("venv/bin/kubernetes-validate") else {
        return;
    };
    // The newest version it knows is its default.
    let help = Command::new(&validate).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    let newest = help
        .split("Defaults to")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("kubernetes-validate --help names its default version")
        .to_string();
    let dir = tmp("validate");
    // With the baseline too: its rules have no `from`/`to` (`any: true`) or a peer of
    // pods outside the inventory.
    for (i, (inventory, extra)) in [
        (INVENTORY, &[][..]),
        (HELD_BACK, &[][..]),
        (INVENTORY, &["--baseline", CHART_BASELINE][..]),
    ]
    .iter()
    .enumerate()
    {
        let mut args = vec!["--egress"];
        args.extend(*extra);
        let (yaml, _) = networkpolicy(inventory, &args);
        let names: Vec<String> = parse(&yaml)
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        let file = dir.join(format!("policies-{i}.yaml"));
        std::fs::write(&file, &yaml).unwrap();
        for version in ["1.30.0", newest.as_str()] {
            let out = Command::new(&validate)
                .args(["--strict", "-k", version])
                .arg(&file)
                .output()
                .unwrap();
            let t = text(&out);
            assert!(
                out.status.success(),
                "{inventory} on Kubernetes {version}:\n{t}"
            );
            for n in &names {
                assert!(
                    t.contains(&format!("passed for resource networkpolicy/{n} ")),
                    "{n} was not validated against {version}:\n{t}"
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_port_range_is_one_port_with_end_port_and_any_port_is_no_ports() {
    let dir = tmp("range");
    std::fs::write(
        dir.join("allowlist.yaml"),
        "version: 1
services:
- {name: Media, kind: service}
- {name: Relay, kind: service}
connections:
- {number: 1, source: Media, destination: Relay, protocol: RTP, transport: udp, ports: [\"20000-45000\"]}
- {number: 2, source: Relay, destination: Media, protocol: TCP, transport: tcp, ports: {any: Any}}
",
    )
    .unwrap();
    std::fs::write(
        dir.join("inventory.yaml"),
        "version: 1
services:
  Media: {kubernetes: {namespace: media, labels: {app: media}}}
  Relay: {kubernetes: {namespace: edge, labels: {app: relay}}}
",
    )
    .unwrap();
    let out = auditor(&[
        "networkpolicy",
        "--allowlist",
        dir.join("allowlist.yaml").to_str().unwrap(),
        "--inventory",
        dir.join("inventory.yaml").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let docs = parse(&String::from_utf8_lossy(&out.stdout));
    let relay = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "auditor-ingress-relay")
        .unwrap();
    assert_eq!(
        relay["spec"]["ingress"][0]["ports"],
        serde_json::json!([{"protocol": "UDP", "port": 20000, "endPort": 45000}])
    );
    let cluster = Cluster::new(docs);
    let pod = |ns: &str, app: &str, ip: &str| Pod {
        namespace: ns.into(),
        labels: [("app".to_string(), app.to_string())].into(),
        ip: ip.parse().unwrap(),
    };
    let (media, relay) = (
        pod("media", "media", "10.244.0.1"),
        pod("edge", "relay", "10.244.0.2"),
    );
    for (port, allowed) in [(19999, false), (20000, true), (45000, true), (45001, false)] {
        assert_eq!(
            cluster.allowed(End::Pod(&media), End::Pod(&relay), "UDP", port),
            allowed,
            "udp/{port}"
        );
    }
    assert!(!cluster.allowed(End::Pod(&media), End::Pod(&relay), "TCP", 20000));
    // "Any" port documented: every port, from Relay only.
    assert!(cluster.allowed(End::Pod(&relay), End::Pod(&media), "TCP", 1));
    assert!(!cluster.allowed(End::Pod(&media), End::Pod(&media), "TCP", 1));
    if let Some(validate) = setup_tool("venv/bin/kubernetes-validate") {
        std::fs::write(dir.join("np.yaml"), &out.stdout).unwrap();
        let v = Command::new(validate)
            .args(["--strict", "-k", "1.30.0"])
            .arg(dir.join("np.yaml"))
            .output()
            .unwrap();
        assert!(v.status.success(), "{}", text(&v));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Kubernetes inventory with the metrics ports Redis's pods declare (a redis_exporter
/// sidecar on 9121), as a user adds them for the baseline's `metrics-scrape`.
fn inventory_with_metrics(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root(INVENTORY)).unwrap();
    let redis = "    kubernetes: {namespace: voice-data, labels: {app: redis}}\n";
    assert!(text.contains(redis), "the fixture changed");
    let path = dir.join("inventory.yaml");
    std::fs::write(
        &path,
        text.replace(redis, &format!("{redis}    metrics_ports: [9121]\n")),
    )
    .unwrap();
    path
}

#[test]
fn the_chart_baseline_admits_prometheus_scrapes_and_nothing_else() {
    let dir = tmp("baseline");
    let inv = inventory_with_metrics(&dir);
    let (yaml, stderr) = networkpolicy(
        inv.to_str().unwrap(),
        &["--egress", "--baseline", CHART_BASELINE],
    );
    let docs = parse(&yaml);
    let cluster = Cluster::new(docs.clone());
    let w = world(INVENTORY);
    let pod = |ns: &str, labels: &[(&str, &str)], ip: &str| Pod {
        namespace: ns.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ip: ip.parse().unwrap(),
    };
    // As the chart's baseline identifies Prometheus: namespace monitoring, its name label.
    let prometheus = pod(
        "monitoring",
        &[("app.kubernetes.io/name", "prometheus"), ("pod", "0")],
        "10.245.0.5",
    );
    let grafana = pod(
        "monitoring",
        &[("app.kubernetes.io/name", "grafana")],
        "10.245.0.6",
    );
    let elsewhere = pod(
        "default",
        &[("app.kubernetes.io/name", "prometheus")],
        "10.245.0.7",
    );
    let redis = End::Pod(&w.pods["Redis"]);
    assert!(
        cluster.allowed(End::Pod(&prometheus), redis, "TCP", 9121),
        "the scrape of Redis's declared metrics port is denied"
    );
    // Only the declared port, only over TCP, only from Prometheus's pods, only to the
    // service that declares it.
    for (src, dst, proto, port) in [
        (End::Pod(&prometheus), redis, "TCP", 6379),
        (End::Pod(&prometheus), redis, "TCP", 9122),
        (End::Pod(&prometheus), redis, "UDP", 9121),
        (End::Pod(&grafana), redis, "TCP", 9121),
        (End::Pod(&elsewhere), redis, "TCP", 9121),
        (End::Pod(&w.pods["Tenant Service"]), redis, "TCP", 9121),
        (
            End::Pod(&prometheus),
            End::Pod(&w.pods["Tenant Service"]),
            "TCP",
            9121,
        ),
    ] {
        assert!(
            !cluster.allowed(src, dst, proto, port),
            "{src:?} → {dst:?} {proto}/{port} is allowed"
        );
    }
    // DNS comes from the baseline's `dns` entry (its pods by labels), and only DNS.
    let tenant = End::Pod(&w.pods["Tenant Service"]);
    assert!(cluster.allowed(tenant, End::Pod(&w.dns), "UDP", 53));
    assert!(cluster.allowed(tenant, End::Pod(&w.dns), "TCP", 53));
    assert!(!cluster.allowed(tenant, End::Pod(&w.dns), "TCP", 9153));
    // Every rule says where it comes from.
    let redis_policy = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "auditor-ingress-redis")
        .unwrap();
    let notes = redis_policy["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(notes["auditor/baseline"], "metrics-scrape");
    assert!(
        notes.values().any(|v| v
            == "baseline metrics-scrape: monitoring/app.kubernetes.io/name=prometheus → Redis, tcp/9121"),
        "{notes:#?}"
    );
    // What the baseline says and a NetworkPolicy does not: said, not dropped.
    for line in [
        "baseline entry dns-replies: the replies to entry dns",
        "baseline entry metrics-scrape (ingress): processes prometheus (a NetworkPolicy does not see processes): only the rest",
        "baseline entry metrics-scrape (ingress): no declared port in the inventory",
    ] {
        assert!(stderr.contains(line), "{line}:\n{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_baseline_flag_given_is_read_or_refused() {
    let dir = tmp("flags");
    let base = [
        "networkpolicy",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        INVENTORY,
        "--overrides",
        OVERRIDES,
    ];
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend(extra);
        auditor(&args)
    };
    let missing = dir.join("no-such-baseline.yaml");
    let bad = dir.join("bad-baseline.yaml");
    std::fs::write(&bad, "version: 1\nentries:\n  - name: Bad Name\n").unwrap();
    let disagree = dir.join("dns-elsewhere.yaml");
    std::fs::write(
        &disagree,
        "version: 1\nentries:\n  - name: dns\n    description: CoreDNS of this cluster.\n    from: {any: true}\n    to: {kubernetes: [{namespace: dns, labels: {app: coredns}}]}\n    transport: both\n    ports: [53]\n",
    )
    .unwrap();
    for (extra, says) in [
        (
            vec!["--baseline", missing.to_str().unwrap()],
            missing.display().to_string(),
        ),
        (
            vec!["--baseline", bad.to_str().unwrap()],
            bad.display().to_string(),
        ),
        // Given and not used: DNS is only in egress policies.
        (
            vec!["--dns", "kube-system/k8s-app=kube-dns"],
            "--egress".to_string(),
        ),
        // The baseline and --dns name different DNS pods: neither is dropped silently.
        (
            vec![
                "--egress",
                "--baseline",
                disagree.to_str().unwrap(),
                "--dns",
                "kube-system/k8s-app=kube-dns",
            ],
            "disagrees".to_string(),
        ),
        (
            vec![
                "--egress",
                "--baseline",
                disagree.to_str().unwrap(),
                "--dns",
                "none",
            ],
            "disagrees".to_string(),
        ),
    ] {
        let out = run(&extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{extra:?}: wrote policies");
        assert!(text(&out).contains(&says), "{extra:?}: {}", text(&out));
    }
    // The baseline's own DNS pods, used: egress to them, not to kube-dns.
    let out = run(&["--egress", "--baseline", disagree.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let cluster = Cluster::new(parse(&String::from_utf8(out.stdout).unwrap()));
    let w = world(INVENTORY);
    let coredns = Pod {
        namespace: "dns".into(),
        labels: [("app".to_string(), "coredns".to_string())].into(),
        ip: "10.245.1.1".parse().unwrap(),
    };
    let tenant = End::Pod(&w.pods["Tenant Service"]);
    assert!(cluster.allowed(tenant, End::Pod(&coredns), "UDP", 53));
    assert!(!cluster.allowed(tenant, End::Pod(&w.dns), "UDP", 53));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn platform_traffic_the_policies_would_deny_is_what_would_break() {
    let dir = tmp("platform");
    // The recording plus Prometheus (a process on a node, by name) scraping Redis on its
    // declared 9121 and Tenant Service on 9100, which only the replay's inventory
    // declares: the policies' inventory does not, so that scrape would break.
    let mut flows = std::fs::read_to_string(root("examples/flows.jsonl")).unwrap();
    // And the kubelet (by name) probing Redis on its probe port: from the node, which
    // Kubernetes always admits, so it breaks nothing.
    for (comm, src, dst, port) in [
        ("prometheus", "10.245.0.5", "198.18.0.8", 9121),
        ("prometheus", "10.245.0.5", "198.18.0.2", 9100),
        ("kubelet", "10.0.0.4", "198.18.0.8", 8080),
    ] {
        flows.push_str(&format!(
            "{{\"time\":\"2026-11-26T21:56:52Z\",\"new\":true,\"transport\":\"tcp\",\"direction\":\"egress\",\"src_addr\":\"{src}\",\"dst_addr\":\"{dst}\",\"dst_port\":{port},\"count\":1,\"first_seen\":\"2026-11-26T21:56:52Z\",\"pid\":4242,\"tgid\":4242,\"uid\":65534,\"comm\":\"{comm}\",\"cgroup_id\":1,\"netns_cookie\":200,\"hook\":\"tcp_active\",\"cgroup\":\"/\"}}\n"
        ));
    }
    std::fs::write(dir.join("flows.jsonl"), flows).unwrap();
    let replay_inv = dir.join("replay-inventory.yaml");
    let text_inv = std::fs::read_to_string(root("examples/inventory.yaml")).unwrap();
    let declared = text_inv
        .replace(
            "\"Redis\": {addresses: [198.18.0.8]}",
            "\"Redis\": {addresses: [198.18.0.8], metrics_ports: [9121], probe_ports: [8080]}",
        )
        .replace(
            "\"Tenant Service\": {addresses: [198.18.0.2]}",
            "\"Tenant Service\": {addresses: [198.18.0.2], metrics_ports: [9100]}",
        );
    assert_ne!(declared, text_inv, "the fixture changed");
    std::fs::write(&replay_inv, declared).unwrap();
    let store = dir.join("store.db");
    let out = auditor(&[
        "replay",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        replay_inv.to_str().unwrap(),
        "--overrides",
        OVERRIDES,
        "--baseline",
        CHART_BASELINE,
        "--store",
        store.to_str().unwrap(),
        dir.join("flows.jsonl").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let platform: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["verdict"] == "platform")
        .collect();
    let entries: Vec<&str> = platform
        .iter()
        .map(|v| v["platform"].as_str().unwrap())
        .collect();
    assert_eq!(
        entries,
        ["metrics-scrape", "metrics-scrape", "kubelet-probes"],
        "{platform:#?}"
    );
    let inv = inventory_with_metrics(&dir);
    let json = dir.join("wb.json");
    let out = auditor(&[
        "networkpolicy",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        inv.to_str().unwrap(),
        "--overrides",
        OVERRIDES,
        "--baseline",
        CHART_BASELINE,
        "--store",
        store.to_str().unwrap(),
        "--would-break",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report = read_would_break(&json);
    let broken: Vec<&Value> = report["would_break"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["verdict"] == "platform")
        .collect();
    assert_eq!(broken.len(), 1, "{report:#}");
    assert_eq!(broken[0]["platform"], "metrics-scrape");
    assert_eq!(broken[0]["dst"]["service"], "Tenant Service");
    assert_eq!(broken[0]["dst"]["port"], 9100);
    assert_eq!(
        broken[0]["denied_by"],
        serde_json::json!(["voice/auditor-ingress-tenant-service"])
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "platform (baseline entry metrics-scrape) 10.245.0.5 → Tenant Service tcp/9100"
        ),
        "{stderr}"
    );
    // Without the baseline, the scrape of Redis breaks too: nothing admits it.
    let out = auditor(&[
        "networkpolicy",
        "--allowlist",
        ALLOWLIST,
        "--inventory",
        inv.to_str().unwrap(),
        "--overrides",
        OVERRIDES,
        "--store",
        store.to_str().unwrap(),
        "--would-break",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let report = read_would_break(&json);
    let ports: BTreeSet<u64> = report["would_break"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["verdict"] == "platform")
        .map(|b| b["dst"]["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, BTreeSet::from([8080, 9100, 9121]), "{report:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}
