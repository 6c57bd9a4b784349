//! The platform baseline and service-mesh legs, as a user meets them: a baseline file and
//! an inventory with a mesh section, judged by `auditor replay`, kept with `--store`, and
//! reported. Platform flows cite their entry by name, sit in their own report section and
//! never count as documented rows; mesh legs are judged on the service pair only and
//! never count as a second observation; an entry that could allow a connection between
//! two documented services is refused at load, with FILE:LINE:COLUMN and the reason.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

const AUDITOR: &str = env!("CARGO_BIN_EXE_auditor");

mod common;
use common::root;

fn dir(name: &str) -> PathBuf {
    common::dir("platform", name)
}

const INVENTORY: &str = r#"version: 1
services:
  Tenant Service:
    addresses: [10.0.1.0/24]
    probe_ports: [8080]
    metrics_ports: [9102]
  Config Service:
    addresses: [10.0.2.0/24]
    processes: [config-svc]
    kubernetes: {namespace: voice, labels: {app: config}}
  Genesys Engagement Service:
    addresses: [10.0.3.0/24]
  Redis:
    addresses: [10.0.5.0/24]
mesh_upstreams:
  - {port: 9100, service: Config Service}
mesh:
  sidecar: {processes: [mesh-sidecar]}
  inbound_ports: [20000]
"#;

const BASELINE: &str = r#"version: 1
entries:
  - name: dns
    description: Every pod resolves names through kube-dns.
    from: {any: true}
    to: {addresses: [10.96.0.10]}
    transport: both
    ports: [53]
  - name: kubelet-probes
    description: The kubelet probes the ports each pod declares as probes.
    from: {addresses: [10.0.0.1]}
    to: {any: true}
    transport: tcp
    declared_ports: probes
  - name: metrics-scrape
    description: Prometheus scrapes the ports each pod declares for metrics.
    from: {processes: [prometheus]}
    to: {any: true}
    transport: tcp
    declared_ports: metrics
"#;

fn rec(transport: &str, direction: &str, comm: &str, src: &str, dst: &str, port: u16) -> String {
    format!(
        r#"{{"time":"2026-11-26T10:00:00Z","transport":"{transport}","direction":"{direction}","comm":"{comm}","src_addr":"{src}","dst_addr":"{dst}","dst_port":{port}}}"#
    )
}

fn auditor(args: &[&str], d: &std::path::Path) -> std::process::Output {
    Command::new(AUDITOR)
        .args(args)
        .current_dir(d)
        .output()
        .unwrap()
}

fn policy_args(d: &std::path::Path) -> Vec<String> {
    vec![
        "--allowlist".into(),
        root()
            .join("allowlist/voice-microservices.yaml")
            .display()
            .to_string(),
        "--inventory".into(),
        d.join("inventory.yaml").display().to_string(),
        "--baseline".into(),
        d.join("baseline.yaml").display().to_string(),
    ]
}

#[test]
fn platform_flows_cite_their_entry_and_mesh_legs_are_judged_on_the_pair() {
    let d = dir("judge");
    std::fs::write(d.join("inventory.yaml"), INVENTORY).unwrap();
    std::fs::write(d.join("baseline.yaml"), BASELINE).unwrap();
    // (record, verdict, platform entry, mesh leg, rules)
    type Case<'a> = (String, &'a str, Option<&'a str>, Option<&'a str>, Vec<u64>);
    let cases: Vec<Case> = vec![
        // DNS from a documented service, both transports; another port is not DNS.
        (
            rec("udp", "egress", "tenant", "10.0.1.5", "10.96.0.10", 53),
            "platform",
            Some("dns"),
            None,
            vec![],
        ),
        (
            rec("tcp", "egress", "tenant", "10.0.1.5", "10.96.0.10", 53),
            "platform",
            Some("dns"),
            None,
            vec![],
        ),
        (
            rec("tcp", "egress", "tenant", "10.0.1.5", "10.96.0.10", 54),
            "unknown_destination",
            None,
            None,
            vec![],
        ),
        // The kubelet probes a declared probe port (seen at the pod: ingress); another
        // port from the node is no probe.
        (
            rec("tcp", "ingress", "tenant", "10.0.0.1", "10.0.1.5", 8080),
            "platform",
            Some("kubelet-probes"),
            None,
            vec![],
        ),
        (
            rec("tcp", "ingress", "tenant", "10.0.0.1", "10.0.1.5", 9999),
            "unknown_source",
            None,
            None,
            vec![],
        ),
        // Prometheus scrapes the declared metrics port, and nothing else.
        (
            rec(
                "tcp",
                "egress",
                "prometheus",
                "10.0.200.5",
                "10.0.1.5",
                9102,
            ),
            "platform",
            Some("metrics-scrape"),
            None,
            vec![],
        ),
        (
            rec(
                "tcp",
                "egress",
                "prometheus",
                "10.0.200.5",
                "10.0.1.5",
                9103,
            ),
            "unknown_source",
            None,
            None,
            vec![],
        ),
        // Between two documented services the baseline is never consulted: a process
        // named prometheus in Tenant's pod, to Config's metrics port, stays a drift.
        (
            rec("tcp", "egress", "prometheus", "10.0.1.5", "10.0.2.5", 9102),
            "port_drift",
            None,
            None,
            vec![26],
        ),
        // Mesh: the app leg (loopback upstream) is the documented row; the sidecar's
        // transport leg to Config's sidecar port is judged on the pair; its delivery into
        // Config's own pod stays inside the service.
        (
            rec("tcp", "egress", "tenant", "127.0.0.1", "127.0.0.1", 9100)
                .replace('}', r#","netns_addrs":["10.0.1.5"]}"#),
            "allowed",
            None,
            None,
            vec![26],
        ),
        (
            rec(
                "tcp",
                "egress",
                "mesh-sidecar",
                "10.0.1.5",
                "10.0.2.5",
                20000,
            ),
            "allowed",
            None,
            Some("transport"),
            vec![26],
        ),
        // The far end of a transport leg whose connect this node did not see.
        (
            rec(
                "tcp",
                "ingress",
                "mesh-sidecar",
                "10.0.1.6",
                "10.0.2.5",
                20000,
            ),
            "allowed",
            None,
            Some("transport"),
            vec![26],
        ),
        (
            rec(
                "tcp",
                "egress",
                "mesh-sidecar",
                "10.0.2.5",
                "127.0.0.1",
                9100,
            ),
            "allowed",
            None,
            Some("delivery"),
            vec![],
        ),
        // Delivered to the pod's own address, on the app's port: the same.
        (
            rec(
                "tcp",
                "egress",
                "mesh-sidecar",
                "10.0.2.6",
                "10.0.2.6",
                9100,
            ),
            "allowed",
            None,
            Some("delivery"),
            vec![],
        ),
        // A transport leg between services no row connects is undocumented.
        (
            rec(
                "tcp",
                "egress",
                "mesh-sidecar",
                "10.0.3.5",
                "10.0.5.5",
                20000,
            ),
            "undocumented_egress",
            None,
            Some("transport"),
            vec![],
        ),
        // Not a sidecar: the sidecar port is a port like any other.
        (
            rec("tcp", "egress", "tenant", "10.0.1.5", "10.0.2.5", 20000),
            "port_drift",
            None,
            None,
            vec![26],
        ),
    ];
    let flows: String = cases.iter().map(|c| format!("{}\n", c.0)).collect();
    std::fs::write(d.join("flows.jsonl"), &flows).unwrap();
    let mut args: Vec<String> = vec!["replay".into()];
    args.extend(policy_args(&d));
    args.extend(["--store".into(), "store.db".into(), "flows.jsonl".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = auditor(&args, &d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), cases.len());
    for (c, v) in cases.iter().zip(&verdicts) {
        assert_eq!(v["verdict"], c.1, "{}: {v}", c.0);
        assert_eq!(v["platform"].as_str(), c.2, "{}: {v}", c.0);
        assert_eq!(v["mesh_leg"].as_str(), c.3, "{}: {v}", c.0);
        let rules: Vec<u64> = v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_u64().unwrap())
            .collect();
        assert_eq!(rules, c.4, "{}: {v}", c.0);
    }
    // The delivery leg's destination is the service in whose pod it stays.
    assert_eq!(verdicts[11]["dst"]["service"], "Config Service");

    // The report: platform flows in their own section, by entry, with counts; row 26
    // observed once (the app leg), not three times; mesh legs counted apart.
    let out = auditor(&["report", "--store", "store.db", "--format", "json"], &d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let platform: Vec<(String, u64)> = r["platform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["entry"].as_str().unwrap().to_string(),
                p["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        platform,
        vec![
            ("dns".into(), 2),
            ("kubelet-probes".into(), 1),
            ("metrics-scrape".into(), 1)
        ]
    );
    assert_eq!(r["summary"]["platform_connections"], 4);
    assert_eq!(r["summary"]["mesh_leg_connections"], 5);
    let row26 = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == 26)
        .unwrap();
    assert_eq!(
        row26["count"], 1,
        "the app leg alone observes row 26: {row26}"
    );
    assert_eq!(r["summary"]["documented_observed"], 1);
    let violations = r["violations"].as_array().unwrap();
    assert!(violations.iter().all(|v| v["verdict"] != "platform"));
    assert_eq!(violations.len(), 6, "{violations:#?}");
    let md = auditor(
        &["report", "--store", "store.db", "--format", "markdown"],
        &d,
    );
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("## Platform traffic (baseline)"), "{md}");
    assert!(md.contains("| kubelet-probes | 1 | 1 |"), "{md}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// `auditor explain` with this baseline; returns (exit ok, stderr).
fn check_baseline(name: &str, baseline: &str) -> (bool, String) {
    let d = dir(name);
    std::fs::write(d.join("inventory.yaml"), INVENTORY).unwrap();
    std::fs::write(d.join("baseline.yaml"), baseline).unwrap();
    let mut args: Vec<String> = vec!["explain".into()];
    args.extend(policy_args(&d));
    args.extend([
        "--from".into(),
        "10.0.1.5".into(),
        "--to".into(),
        "10.0.2.5:9100".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = auditor(&args, &d);
    std::fs::remove_dir_all(&d).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn an_entry_that_could_allow_two_documented_services_is_refused_at_load() {
    let (ok, err) = check_baseline("valid", BASELINE);
    assert!(ok, "the example baseline loads: {err}");
    let entry = |from: &str, to: &str| {
        format!(
            "version: 1\nentries:\n  - name: wide\n    description: too wide\n    from: {from}\n    to: {to}\n    transport: tcp\n    ports: [9100]\n"
        )
    };
    for (from, to, why) in [
        ("{any: true}", "{any: true}", "from: any end; to: any end"),
        (
            "{any: true}",
            "{addresses: [10.0.2.0/16]}",
            "10.0.0.0/16 is",
        ),
        (
            "{processes: [config-svc]}",
            "{addresses: [10.0.1.7]}",
            "process \"config-svc\" is Config Service",
        ),
        (
            "{addresses: [10.0.3.9]}",
            "{kubernetes: [{namespace: voice}]}",
            "kubernetes selector in namespace voice can select Config Service's pods",
        ),
    ] {
        let (ok, err) = check_baseline("wide", &entry(from, to));
        assert!(!ok, "{from} -> {to} must be refused");
        assert!(
            err.contains("baseline.yaml:3:5: entry \"wide\" would allow connections between two documented services")
                && err.contains(why),
            "{from} -> {to}: {err}"
        );
    }
    // Pods no documented selector can select (another namespace) are platform ends.
    let (ok, err) = check_baseline(
        "kube",
        &entry(
            "{kubernetes: [{namespace: monitoring, labels: {app: prometheus}}]}",
            "{any: true}",
        ),
    );
    assert!(ok, "{err}");
}

#[test]
fn baseline_files_are_strict_and_errors_say_file_line_column() {
    for (text, want) in [
        (
            "version: 1\nentries:\n  - name: dns\n    description: d\n    from: {any: true}\n    to: {any: true}\n    transport: tcp\n    ports: [53]\n    porst: [54]\n",
            "baseline.yaml:9:5: unknown field `porst`",
        ),
        (
            "version: 1\nentries:\n  - name: DNS!\n    description: d\n    from: {any: true}\n    to: {addresses: [10.96.0.10]}\n    transport: tcp\n    ports: [53]\n",
            "baseline.yaml:3:5: entry name \"DNS!\"",
        ),
        (
            "version: 1\nentries:\n  - name: dns\n    description: \"\"\n    from: {any: true}\n    to: {addresses: [10.96.0.10]}\n    transport: tcp\n    ports: [53]\n",
            "a description is required",
        ),
        (
            "version: 1\nentries:\n  - name: dns\n    description: d\n    from: {any: true}\n    to: {addresses: [10.96.0.10]}\n    transport: tcp\n",
            "give `ports` or `declared_ports`",
        ),
        (
            "version: 1\nentries:\n  - name: dns\n    description: d\n    from: {any: true}\n    to: {addresses: [10.96.0.10]}\n    transport: sctp\n    ports: [53]\n",
            "baseline.yaml:7:16",
        ),
        (
            "version: 1\nentries:\n  - name: dns\n    description: d\n    from: {any: true, addresses: [10.0.0.1]}\n    to: {addresses: [10.96.0.10]}\n    transport: tcp\n    ports: [53]\n",
            "`from` says `any` and lists ends too",
        ),
        (
            "version: 2\nentries: []\n",
            "baseline.yaml:1:1: baseline version 2 is not supported",
        ),
    ] {
        let (ok, err) = check_baseline("strict", text);
        assert!(!ok, "{text}");
        assert!(err.contains(want), "want {want:?} in: {err}");
    }
}

#[test]
fn the_committed_baseline_schema_is_current() {
    let out = Command::new(AUDITOR)
        .args(["schema", "baseline"])
        .output()
        .unwrap();
    let committed = std::fs::read_to_string(root().join("docs/baseline.schema.json")).unwrap();
    assert!(
        committed == String::from_utf8(out.stdout).unwrap(),
        "docs/baseline.schema.json is stale: run `cargo xtask render`"
    );
}
