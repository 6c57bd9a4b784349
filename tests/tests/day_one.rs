//! Day one on a real cluster, on the real kernel: the demo's architecture (60 documented
//! connections, four planted violations) with the traffic every cluster also carries.
//! A real DNS server (Debian's dnsmasq) plays kube-dns and every pod resolves its
//! documented peer's name before connecting (UDP, and TCP for some); a "node" probes
//! every pod's port each second (the kubelet); the real Prometheus scrapes every pod's
//! metrics port each second; three documented rows go through a service mesh (app →
//! loopback upstream, sidecar → the destination's sidecar port, sidecar → app).
//!
//! What a user checks on day one: the report shows exactly the four planted violations,
//! 60 of 60 documented rows observed (the mesh rows once each, not once per leg), the
//! platform traffic in its own section by baseline entry, and Alertmanager holds four
//! alerts — not hundreds.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use auditor_tests::{
    kernel_tests_enabled,
    services::{Daemon, alertmanager, http_json, metric, wait_for},
    topology::{
        Architecture, OVERRIDES, PLANTED, Servers, ViolationKey, end_name, spawn_ready,
        violation_keys, wait_stored,
    },
    workspace_bin,
};
use serde_json::Value;

/// Every pod's metrics endpoint (Prometheus scrapes it).
const METRICS_PORT: u16 = 9779;
/// The sidecar's inbound port (Consul Connect's default range starts here).
const SIDECAR_PORT: u16 = 20000;
/// The documented rows that go through the mesh: distinct destinations, so each
/// destination sidecar delivers to one app port.
const MESH_ROWS: [u32; 3] = [1, 26, 30];
/// How long background processes may run at most.
const BACKGROUND_SECS: u64 = 180;

/// "Config Service" -> "config-service.voice.svc.cluster.local".
fn dns_name(service: &str) -> String {
    let mut n: String = service
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while n.contains("--") {
        n = n.replace("--", "-");
    }
    format!("{}.voice.svc.cluster.local", n.trim_matches('-'))
}

fn upstream_port(row: u32) -> u16 {
    21000 + row as u16
}

/// Starts `program` in `host`'s namespace with its output in `log`.
fn spawn_logged(
    arch: &Architecture,
    host: &str,
    program: &Path,
    args: &[&str],
    log: &Path,
) -> std::process::Child {
    let f = std::fs::File::create(log).unwrap();
    arch.lab
        .command(host, program, args)
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

/// Runs the peer; its trimmed stdout when it succeeded.
fn peer_output(arch: &Architecture, peer: &Path, host: &str, args: &[&str]) -> Option<String> {
    let out = arch.lab.command(host, peer, args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn day_one_shows_the_planted_violations_and_platform_traffic_apart() {
    if !kernel_tests_enabled("day_one_shows_the_planted_violations_and_platform_traffic_apart") {
        return;
    }
    for bin in ["/usr/sbin/dnsmasq", "/usr/bin/prometheus"] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: `cargo xtask setup` installs dnsmasq-base and prometheus"
        );
    }
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let peer = workspace_bin("auditor-peer");
    let dir = std::env::temp_dir().join(format!("auditor-day-one-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let arch = Architecture::new(&root, &["kube-dns", "node", "prometheus"]).expect("lab");
    let addr = |h: &str| arch.addr(h);
    let (dns, node, prom) = (addr("kube-dns"), addr("node"), addr("prometheus"));
    let mesh: Vec<&allowlist::Connection> = arch
        .list
        .connections
        .iter()
        .filter(|c| c.number.is_some_and(|n| MESH_ROWS.contains(&n)))
        .collect();
    assert_eq!(mesh.len(), 3);

    // Listeners: the documented ports, and every pod's metrics endpoint.
    let mut listen = arch.listeners();
    for s in &arch.services {
        let h = arch.host_of(s).to_string();
        let ep = format!("http:{}:{METRICS_PORT}", addr(&h));
        listen.entry(h).or_default().insert(ep);
    }
    // The kubelet probes each pod's first TCP port (its metrics port when it serves
    // nothing else): what its pod spec would declare as the probe.
    let probe_port: BTreeMap<String, u16> = arch
        .services
        .iter()
        .map(|s| {
            let eps = &listen[arch.host_of(s)];
            let first_tcp = eps
                .iter()
                .filter(|e| e.starts_with("tcp:"))
                .filter_map(|e| e.rsplit(':').next()?.parse().ok())
                .next();
            (s.clone(), first_tcp.unwrap_or(METRICS_PORT))
        })
        .collect();

    // The deployment's files: the inventory declares the probe and metrics ports and the
    // mesh; the baseline is what a platform team reviews.
    let mut tail = String::from("mesh_upstreams:\n");
    for c in &mesh {
        tail.push_str(&format!(
            "  - {{port: {}, service: {:?}, service_port: {}}}\n",
            upstream_port(c.number.unwrap()),
            c.destination,
            auditor_tests::topology::port_of(c)
        ));
    }
    tail.push_str(&format!(
        "mesh:\n  sidecar: {{processes: [mesh-sidecar]}}\n  inbound_ports: [{SIDECAR_PORT}]\n"
    ));
    let inventory = arch.inventory(
        |s| {
            format!(
                ", probe_ports: [{}], metrics_ports: [{METRICS_PORT}]",
                probe_port[s]
            )
        },
        &tail,
    );
    std::fs::write(dir.join("inventory.yaml"), inventory).unwrap();
    std::fs::write(dir.join("overrides.yaml"), OVERRIDES).unwrap();
    let entry = |name: &str, what: &str, from: &str, to: &str, transport: &str, ports: &str| {
        format!(
            "  - name: {name}\n    description: {what}\n    from: {from}\n    to: {to}\n    transport: {transport}\n    {ports}\n"
        )
    };
    let baseline = [
        "version: 1\nentries:\n".to_string(),
        entry(
            "dns",
            "Every pod resolves names through kube-dns.",
            "{any: true}",
            &format!("{{addresses: [{dns}]}}"),
            "both",
            "ports: [53]",
        ),
        entry(
            "dns-replies",
            "kube-dns answers each query with a datagram to the asking socket.",
            &format!("{{addresses: [{dns}]}}"),
            "{any: true}",
            "udp",
            "ports: [\"1024-65535\"]",
        ),
        entry(
            "kubelet-probes",
            "The kubelet probes, from the node, the ports each pod declares as probes.",
            &format!("{{addresses: [{node}]}}"),
            "{any: true}",
            "tcp",
            "declared_ports: probes",
        ),
        entry(
            "metrics-scrape",
            "Prometheus scrapes the metrics port each pod declares.",
            &format!("{{processes: [prometheus], addresses: [{prom}]}}"),
            "{any: true}",
            "tcp",
            "declared_ports: metrics",
        ),
    ]
    .concat();
    std::fs::write(dir.join("baseline.yaml"), baseline).unwrap();

    // kube-dns: dnsmasq answering every service's name, nothing else (no upstream).
    let mut background = Servers::default();
    let mut dns_args: Vec<String> = [
        "--keep-in-foreground",
        "--conf-file=",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--log-facility=-",
        "--pid-file=",
        "--user=root",
        "--group=root",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    dns_args.push(format!("--listen-address={dns}"));
    for s in &arch.services {
        dns_args.push(format!(
            "--host-record={},{}",
            dns_name(s),
            addr(arch.host_of(s))
        ));
    }
    let dns_refs: Vec<&str> = dns_args.iter().map(String::as_str).collect();
    background.0.push(spawn_logged(
        &arch,
        "kube-dns",
        Path::new("/usr/sbin/dnsmasq"),
        &dns_refs,
        &dir.join("dnsmasq.log"),
    ));
    let _servers = arch
        .serve(&peer, &listen, BACKGROUND_SECS)
        .expect("listeners");
    // dnsmasq answers before anything is audited (this check is not day-one traffic).
    let probe_name = dns_name(&arch.services[0]);
    wait_for("dnsmasq to answer", Duration::from_secs(15), || {
        peer_output(
            &arch,
            &peer,
            "kube-dns",
            &["resolve", &dns, &probe_name, "udp"],
        )
    });
    // The sidecars: one per pod on a mesh row's either end.
    let mut forwards: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &mesh {
        let (src, dst) = (arch.host_of(&c.source), arch.host_of(&c.destination));
        forwards.entry(src.to_string()).or_default().push(format!(
            "fwd:127.0.0.1:{}:{}:{SIDECAR_PORT}",
            upstream_port(c.number.unwrap()),
            addr(dst)
        ));
        forwards.entry(dst.to_string()).or_default().push(format!(
            "fwd:{a}:{SIDECAR_PORT}:{a}:{}",
            auditor_tests::topology::port_of(c),
            a = addr(dst)
        ));
    }
    for (h, fwd) in &forwards {
        let secs = BACKGROUND_SECS.to_string();
        let mut args = vec!["sidecar", secs.as_str(), "mesh-sidecar"];
        args.extend(fwd.iter().map(String::as_str));
        background
            .0
            .push(spawn_ready(arch.lab.command(h, &peer, &args), "a sidecar").unwrap());
    }

    let am = alertmanager().expect("alertmanager");
    let path = |f: &str| dir.join(f).display().to_string();
    let daemon_args: Vec<String> = vec![
        "--allowlist".into(),
        root.join("allowlist/voice-microservices.yaml")
            .display()
            .to_string(),
        "--inventory".into(),
        path("inventory.yaml"),
        "--overrides".into(),
        path("overrides.yaml"),
        "--baseline".into(),
        path("baseline.yaml"),
        "--store".into(),
        path("store.db"),
        "--events".into(),
        path("events.jsonl"),
        "--alertmanager".into(),
        am.url(),
        "--node".into(),
        "day-one".into(),
        "--scope".into(),
        "198.18.0.0/24".into(),
    ];
    let daemon = Daemon::start(&daemon_args, dir.join("auditor.log")).expect("auditor run");

    // From here on, everything is audited. The platform: the kubelet and Prometheus.
    let targets: Vec<String> = arch
        .services
        .iter()
        .map(|s| format!("{}:{}", addr(arch.host_of(s)), probe_port[s]))
        .collect();
    let secs = BACKGROUND_SECS.to_string();
    let mut probe_args = vec!["probe", secs.as_str(), "1000"];
    probe_args.extend(targets.iter().map(String::as_str));
    background
        .0
        .push(spawn_ready(arch.lab.command("node", &peer, &probe_args), "the kubelet").unwrap());
    let scrape: Vec<String> = arch
        .services
        .iter()
        .map(|s| format!("'{}:{METRICS_PORT}'", addr(arch.host_of(s))))
        .collect();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs: [{{job_name: pods, static_configs: [{{targets: [{}]}}]}}]\n",
            scrape.join(", ")
        ),
    )
    .unwrap();
    background.0.push(spawn_logged(
        &arch,
        "prometheus",
        Path::new("/usr/bin/prometheus"),
        &[
            &format!("--config.file={}", path("prometheus.yml")),
            &format!("--storage.tsdb.path={}", path("tsdb")),
            "--web.listen-address=127.0.0.1:9090",
        ],
        &dir.join("prometheus.log"),
    ));

    // The application traffic: each pod resolves its peer's name, then connects; the
    // mesh rows go app -> loopback upstream (Consul Connect: no lookup).
    let mut foreground = 0u64;
    let mut lookups = 0u64;
    let mut resolve = |from: &str, service: &str| {
        // One lookup in five over TCP, as resolvers do when a UDP answer is truncated.
        let proto = if lookups % 5 == 4 { "tcp" } else { "udp" };
        lookups += 1;
        let got = peer_output(
            &arch,
            &peer,
            from,
            &["resolve", &dns, &dns_name(service), proto],
        );
        assert_eq!(
            got.as_deref(),
            Some(addr(arch.host_of(service)).as_str()),
            "{from} resolving {service} over {proto}"
        );
    };
    for c in &arch.list.connections {
        let src = arch.host_of(&c.source);
        let args = if mesh.iter().any(|m| m.number == c.number) {
            vec![
                "connect".to_string(),
                "127.0.0.1".into(),
                upstream_port(c.number.unwrap()).to_string(),
            ]
        } else {
            resolve(src, &c.destination);
            arch.row_args(c)
        };
        assert!(
            arch.run_peer(&peer, src, &args).unwrap(),
            "row {:?}: {args:?} from {src}",
            c.number
        );
        foreground += 1;
    }
    for v in &PLANTED {
        if v.to != auditor_tests::topology::STRANGER {
            resolve(arch.host_of(v.from), v.to);
        }
        assert!(
            arch.run_peer(&peer, arch.host_of(v.from), &arch.planted_args(v))
                .unwrap()
        );
        foreground += 1;
    }
    wait_stored(&daemon, foreground, Duration::from_secs(30)).unwrap();
    // Every pod scraped and probed at least twice before the platform stops.
    let platform = |entry: &str| {
        metric(
            &daemon.metrics(),
            "auditor_connections_total",
            &[("verdict", "platform"), ("platform", entry)],
        )
        .unwrap_or(0.0) as u64
    };
    let pods = arch.services.len() as u64;
    wait_for("two scrapes of every pod", Duration::from_secs(30), || {
        (platform("metrics-scrape") >= 2 * pods).then_some(())
    });
    wait_for("two probes of every pod", Duration::from_secs(30), || {
        (platform("kubelet-probes") >= 2 * pods).then_some(())
    });
    drop(background);
    // What the kernel still holds reaches the store: wait until it stops growing.
    let acked = || {
        metric(
            &daemon.metrics(),
            "auditor_store_acknowledged_connections_total",
            &[],
        )
        .unwrap_or(0.0) as u64
    };
    let mut last = acked();
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let now = acked();
        if now == last {
            break;
        }
        last = now;
    }
    // Alerts: Alertmanager's count once the daemon has told it everything it will.
    let alerts = || {
        http_json(&format!("{}/api/v2/alerts", am.url()))
            .ok()
            .and_then(|a| a.as_array().map(Vec::len))
            .unwrap_or(0)
    };
    wait_for(
        "the alerts to reach Alertmanager",
        Duration::from_secs(20),
        || (alerts() >= PLANTED.len()).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(3));
    let alerts_raised = alerts();
    daemon.stop().expect("auditor run stops cleanly");

    let out = Command::new(workspace_bin("auditor"))
        .args(["report", "--store"])
        .arg(dir.join("store.db"))
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();

    // The figures a user looks at first.
    let entries: Vec<(String, u64, usize)> = r["platform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["entry"].as_str().unwrap().to_string(),
                p["connections"].as_u64().unwrap(),
                p["flows"].as_array().unwrap().len(),
            )
        })
        .collect();
    println!("day one: alerts raised {alerts_raised} (target 4)");
    for (e, n, flows) in &entries {
        println!("day one: platform {e}: {n} connection(s) in {flows} flow(s)");
    }
    println!(
        "day one: mesh legs {} connection(s); documented rows observed {} of {}; DNS lookups {lookups}",
        r["summary"]["mesh_leg_connections"],
        r["summary"]["documented_observed"],
        r["summary"]["documented_connections"]
    );
    println!(
        "day one: {}",
        r["summary"]["headline"].as_str().unwrap_or("")
    );

    // Exactly the planted violations, nothing else.
    let got = violation_keys(&r);
    let mut want: Vec<ViolationKey> = PLANTED
        .iter()
        .map(|p| {
            let dst = if p.to == auditor_tests::topology::STRANGER {
                addr(p.to)
            } else {
                p.to.to_string()
            };
            (
                p.verdict.to_string(),
                p.from.to_string(),
                dst,
                u64::from(p.port),
                p.rules.iter().map(|&n| u64::from(n)).collect(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(
        got, want,
        "exactly the planted violations: {:#?}",
        r["violations"]
    );
    assert_eq!(alerts_raised, 4, "one alert per planted violation");

    // Every documented row observed; a mesh row once (its app leg), not once per leg.
    assert_eq!(r["summary"]["documented_observed"], 60);
    for row in r["rows"].as_array().unwrap() {
        assert_eq!(row["observed"], true, "row {} never observed", row["rule"]);
        if row["rule"]
            .as_u64()
            .is_some_and(|n| MESH_ROWS.contains(&(n as u32)))
        {
            assert_eq!(row["count"], 1, "mesh row {}: {row}", row["rule"]);
        }
    }
    assert!(
        r["summary"]["mesh_leg_connections"].as_u64().unwrap() >= 2 * MESH_ROWS.len() as u64,
        "a transport and a delivery leg per mesh row"
    );

    // The platform traffic, in its own section, by entry, with counts: every pod's name
    // lookups, every pod probed and scraped.
    let by_entry: BTreeMap<&str, &Value> = r["platform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["entry"].as_str().unwrap(), p))
        .collect();
    assert!(by_entry["dns"]["connections"].as_u64().unwrap() >= lookups);
    for entry in ["kubelet-probes", "metrics-scrape"] {
        let reached: BTreeSet<String> = by_entry[entry]["flows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| end_name(&f["dst"]))
            .collect();
        assert_eq!(
            reached.len(),
            arch.services.len(),
            "{entry} reached every pod: {reached:?}"
        );
    }
    for p in r["platform"].as_array().unwrap() {
        for f in p["flows"].as_array().unwrap() {
            assert_eq!(f["verdict"], "platform");
            assert_eq!(
                f["rules"],
                serde_json::json!([]),
                "a platform flow cites no row"
            );
        }
    }
    drop(am);
    let _ = std::fs::remove_dir_all(&dir);
}
