//! Egress judged by the names each pod resolved, on the real kernel with real resolvers.
//!
//! Debian's dnsmasq plays the cluster DNS (records for the documented externals, 2 s TTLs)
//! and a node-local cache that forwards to it and is every pod's resolver; a third
//! dnsmasq is an attacker's own resolver. Pods are network namespaces. What a user checks:
//! - the managed Redis moves to a new address mid-test and connections before and after
//!   are both Redis (no unknown_destination);
//! - a CNAME chain (redis.voice.svc.cluster.local → x.redis.example → address) names it;
//! - an undocumented name's violation carries the name, in the events and the report;
//! - an answer from the attacker's resolver never makes its address Redis;
//! - an answer over 512 bytes comes over TCP and still names its address;
//! - a TTL runs out after its grace window, and not before;
//! - one address, two pods, two names: each flow by its own pod's name;
//! - a daemon restarted under a held connection keeps its name;
//! - an answer over IPv6 names its address like any other.

use std::{
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::Duration,
};

use auditor_tests::{
    kernel_tests_enabled,
    lab::Lab,
    services::{Daemon, metric, wait_for},
    workspace_bin,
};
use serde_json::Value;

/// The pods and servers, in `Lab` order: host i is 198.18.0.(i+1).
const HOSTS: [&str; 16] = [
    "cluster-dns", // .1
    "node-cache",  // .2
    "evil",        // .3: an attacker's resolver and endpoint
    "redis-a",     // .4: the managed Redis, before it moves
    "redis-b",     // .5: after
    "undoc",       // .6: a host reached by a name no entry claims
    "cdn",         // .7: one address, two names
    "is-a",        // .8: Interaction Server pods
    "is-tcp",      // .9
    "rq-ttl-in",   // .10: Voice RQ Service pods
    "rq-ttl-out",  // .11
    "is-cdn",      // .12
    "voicemail",   // .13
    "is-held",     // .14
    "is-evil",     // .15
    "is-v6",       // .16: asks over IPv6
];

const TTL_SECS: u64 = 2;
/// Wide enough that a connect 3 s after its answer (a process started in a namespace on a
/// loaded 2-core machine) is still inside TTL and grace: 3 s of margin.
const GRACE_SECS: u64 = 4;
const GRACE: &str = "4s";

fn addr(lab: &Lab, host: &str) -> String {
    lab.host(host).v4.to_string()
}

fn dnsmasq(lab: &Lab, host: &str, extra: &[String], log: &Path) -> Child {
    let mut args: Vec<String> = [
        "--keep-in-foreground",
        "--conf-file=",
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--log-queries",
        "--log-facility=-",
        "--pid-file=",
        "--user=root",
        "--group=root",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--listen-address={}", addr(lab, host)));
    args.extend(extra.iter().cloned());
    let f = std::fs::File::create(log).unwrap();
    lab.command(host, Path::new("/usr/sbin/dnsmasq"), &[])
        .args(&args)
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .expect("dnsmasq")
}

/// Runs the peer in `host`; its trimmed stdout, or the failure.
fn peer(lab: &Lab, host: &str, args: &[&str]) -> Result<String, String> {
    let out = lab
        .command(host, &workspace_bin("auditor-peer"), args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `host` resolves `name` through `server` (UDP, TCP when truncated): the address.
fn resolve(lab: &Lab, host: &str, server: &str, name: &str) -> String {
    let server = addr(lab, server);
    wait_for(
        &format!("{host} to resolve {name}"),
        Duration::from_secs(10),
        || peer(lab, host, &["resolve", &server, name, "auto"]).ok(),
    )
}

fn connect(lab: &Lab, host: &str, to: &str, port: u16) {
    peer(lab, host, &["connect", to, &port.to_string()])
        .unwrap_or_else(|e| panic!("{host} -> {to}:{port}: {e}"));
}

fn hosts_file(lab: &Lab, redis: &str) -> String {
    let mut lines = vec![
        format!("{redis} x.redis.example"),
        format!("{} big.redis.example", addr(lab, "redis-a")),
        format!("{} unknown.example", addr(lab, "undoc")),
        format!("{} bucket.blob.example", addr(lab, "cdn")),
        format!("{} other.cdn.example", addr(lab, "cdn")),
    ];
    // 40 more addresses (no host behind them): the answer outgrows 512 bytes.
    lines.extend((1..=40).map(|i| format!("198.18.1.{i} big.redis.example")));
    lines.join("\n") + "\n"
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The stored edges of node `dns-lab` (kept across the daemon's runs).
fn stored(dir: &Path) -> Vec<auditor::edge::Edge> {
    let store = auditor::store::Store::open_existing(&dir.join("store.db")).expect("store");
    store
        .edges(None, None)
        .expect("edges")
        .into_iter()
        .filter(|e| e.node == "dns-lab")
        .map(|e| e.edge)
        .collect()
}

fn describe(edges: &[auditor::edge::Edge]) -> String {
    edges
        .iter()
        .map(|e| {
            format!(
                "{} {} -> {} ({:?} {:?}) :{} x{}",
                e.verdict.as_str(),
                e.src.name(),
                e.dst.name(),
                e.dst.domain,
                e.dst.resolution,
                e.dst.port.unwrap_or(0),
                e.count
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn egress_is_judged_by_the_names_each_pod_resolved() {
    if !kernel_tests_enabled("egress_is_judged_by_the_names_each_pod_resolved") {
        return;
    }
    assert!(
        Path::new("/usr/sbin/dnsmasq").exists(),
        "/usr/sbin/dnsmasq is missing: `cargo xtask setup` installs dnsmasq-base"
    );
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = std::env::temp_dir().join(format!("auditor-dns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lab = Lab::new(&HOSTS).expect("lab");
    let a = |h: &str| addr(&lab, h);

    // The deployment: pods by address; Redis and object storage by name only.
    let inventory = format!(
        "version: 1\nservices:\n  \"Interaction Server\": {{addresses: [{}]}}\n  \"Voice RQ Service\": {{addresses: [{}, {}]}}\n  \"Voicemail\": {{addresses: [{}]}}\nexternals:\n  Redis: {{dns: [\"*.redis.example\"]}}\n  \"Object storage\": {{dns: [\"bucket.blob.example\"]}}\n",
        ["is-a", "is-tcp", "is-cdn", "is-held", "is-evil", "is-v6"]
            .map(&a)
            .join(", "),
        a("rq-ttl-in"),
        a("rq-ttl-out"),
        a("voicemail"),
    );
    std::fs::write(dir.join("inventory.yaml"), inventory).unwrap();
    std::fs::write(dir.join("overrides.yaml"), "rows:\n  24: [443]\n").unwrap();
    // The cluster's resolvers: pods' queries to them are platform traffic, and their
    // answers are the trusted ones.
    std::fs::write(
        dir.join("baseline.yaml"),
        format!(
            "version: 1\nentries:\n  - name: dns\n    description: Pods resolve through the node-local cache, which asks the cluster DNS.\n    from: {{any: true}}\n    to: {{addresses: [{}, {}, \"{}\"]}}\n    transport: both\n    ports: [53]\n",
            a("cluster-dns"),
            a("node-cache"),
            lab.host("node-cache").v6
        ),
    )
    .unwrap();

    // The resolvers.
    std::fs::write(dir.join("hosts"), hosts_file(&lab, &a("redis-a"))).unwrap();
    let cluster_dns = dnsmasq(
        &lab,
        "cluster-dns",
        &[
            format!("--local-ttl={TTL_SECS}"),
            format!("--addn-hosts={}", dir.join("hosts").display()),
            format!("--cname=redis.voice.svc.cluster.local,x.redis.example,{TTL_SECS}"),
        ],
        &dir.join("cluster-dns.log"),
    );
    let node_cache = dnsmasq(
        &lab,
        "node-cache",
        &[
            format!("--server={}", a("cluster-dns")),
            format!("--listen-address={}", lab.host("node-cache").v6),
        ],
        &dir.join("node-cache.log"),
    );
    let evil_dns = dnsmasq(
        &lab,
        "evil",
        &[format!("--address=/x.redis.example/{}", a("evil"))],
        &dir.join("evil-dns.log"),
    );
    let hup = [cluster_dns.id(), node_cache.id()];
    let _resolvers = Guard(vec![cluster_dns, node_cache, evil_dns]);
    // Listeners: the two Redis addresses, the undocumented host, the CDN, the attacker.
    // Redis holds what it accepts open, as a server of a connection pool does.
    let mut servers = Vec::new();
    for (host, port, kind) in [
        ("redis-a", 6379, "hold"),
        ("redis-b", 6379, "hold"),
        ("undoc", 443, "serve"),
        ("cdn", 443, "serve"),
        ("evil", 6379, "serve"),
    ] {
        let endpoint = match kind {
            "hold" => format!("accept:{}:{port}", a(host)),
            _ => format!("tcp:{}:{port}", a(host)),
        };
        servers.push(auditor_tests::peer::serve(
            &lab,
            host,
            &[kind, "120", &endpoint],
        ));
    }
    let _servers = Guard(servers);
    // The resolvers answer before anything is audited.
    resolve(&lab, "is-a", "node-cache", "x.redis.example");

    let args = |events: &str| -> Vec<String> {
        [
            "--allowlist",
            &root
                .join("allowlist/voice-microservices.yaml")
                .display()
                .to_string(),
            "--inventory",
            &dir.join("inventory.yaml").display().to_string(),
            "--overrides",
            &dir.join("overrides.yaml").display().to_string(),
            "--baseline",
            &dir.join("baseline.yaml").display().to_string(),
            "--store",
            &dir.join("store.db").display().to_string(),
            "--store-flush",
            "1s",
            "--events",
            &dir.join(events).display().to_string(),
            "--node",
            "dns-lab",
            "--scope",
            "198.18.0.0/16",
            "--dns-grace",
            GRACE,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let daemon = Daemon::start(&args("events1.jsonl"), dir.join("daemon1.log")).expect("daemon");
    // `auditor capture` beside it: its stream must carry the answers, for a replay.
    let capture = auditor_tests::capture::CaptureProc::start(&["--node", "dns-lab"])
        .expect("auditor capture");

    // A CNAME chain to the managed Redis, then the move to a new address.
    let before = resolve(&lab, "is-a", "node-cache", "redis.voice.svc.cluster.local");
    assert_eq!(before, a("redis-a"));
    connect(&lab, "is-a", &before, 6379);
    std::fs::write(dir.join("hosts"), hosts_file(&lab, &a("redis-b"))).unwrap();
    for pid in &hup {
        // dnsmasq re-reads its hosts files and empties its cache on SIGHUP.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .expect("SIGHUP dnsmasq");
    }
    let after = wait_for("the record to move", Duration::from_secs(10), || {
        let got = resolve(&lab, "is-a", "node-cache", "redis.voice.svc.cluster.local");
        (got == a("redis-b")).then_some(got)
    });
    connect(&lab, "is-a", &after, 6379);

    // An answer over 512 bytes: truncated over UDP, asked again over TCP.
    // (Any of its 41 addresses comes first: dnsmasq rotates them.)
    resolve(&lab, "is-tcp", "node-cache", "big.redis.example");
    connect(&lab, "is-tcp", &a("redis-a"), 6379);

    // A name no entry claims.
    let undoc = resolve(&lab, "is-a", "node-cache", "unknown.example");
    connect(&lab, "is-a", &undoc, 443);

    // The attacker's own resolver names its own address for the documented name.
    let evil = resolve(&lab, "is-evil", "evil", "x.redis.example");
    assert_eq!(evil, a("evil"));
    connect(&lab, "is-evil", &evil, 6379);

    // TTL 2 s, grace 4 s: a connect 3 s after the answer is still by name; 8 s after, not.
    let ttl_in = resolve(&lab, "rq-ttl-in", "node-cache", "x.redis.example");
    let ttl_out = resolve(&lab, "rq-ttl-out", "node-cache", "x.redis.example");
    std::thread::sleep(Duration::from_secs(3));
    connect(&lab, "rq-ttl-in", &ttl_in, 6379);
    std::thread::sleep(Duration::from_secs(TTL_SECS + GRACE_SECS + 2 - 3));
    connect(&lab, "rq-ttl-out", &ttl_out, 6379);

    // Asked over IPv6: the answer's packet is IPv6, the address in it IPv4.
    let v6_cache = lab.host("node-cache").v6.to_string();
    let over_v6 = wait_for(
        "is-v6 to resolve over IPv6",
        Duration::from_secs(10),
        || {
            peer(
                &lab,
                "is-v6",
                &["resolve", &v6_cache, "x.redis.example", "auto"],
            )
            .ok()
        },
    );
    connect(&lab, "is-v6", &over_v6, 6379);

    // One address, two pods, two names.
    let cdn1 = resolve(&lab, "voicemail", "node-cache", "bucket.blob.example");
    let cdn2 = resolve(&lab, "is-cdn", "node-cache", "other.cdn.example");
    assert_eq!(
        (cdn1.as_str(), cdn2.as_str()),
        (a("cdn").as_str(), a("cdn").as_str())
    );
    connect(&lab, "voicemail", &cdn1, 443);
    connect(&lab, "is-cdn", &cdn2, 443);

    // A pool opened now and held across a restart of the daemon.
    let held_to = resolve(&lab, "is-held", "node-cache", "x.redis.example");
    let mut held = lab
        .command(
            "is-held",
            &workspace_bin("auditor-peer"),
            &["hold", "60", &format!("tcp:{held_to}:6379")],
        )
        .stdout(Stdio::piped())
        .spawn()
        .expect("hold");
    std::thread::sleep(Duration::from_secs(1));

    let m = wait_for(
        "answers learned and judged",
        Duration::from_secs(20),
        || {
            let m = daemon.metrics();
            metric(&m, "auditor_dns_answers_total", &[("use", "untrusted")])
                .filter(|n| *n >= 1.0)
                .map(|_| m)
        },
    );
    assert!(
        metric(
            &m,
            "auditor_dns_answers_total",
            &[("use", "learned"), ("transport", "udp")]
        )
        .unwrap_or(0.0)
            >= 8.0,
        "{m}"
    );
    // The long answer came over TCP, reassembled, and was learned.
    assert!(
        metric(
            &m,
            "auditor_dns_answers_total",
            &[("use", "learned"), ("transport", "tcp")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{m}"
    );
    daemon.stop().expect("clean stop");
    let captured = capture.stop().expect("capture");
    let lab_line = |v: &Value| {
        let in_lab = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .is_some_and(|a| a.starts_with("198.18."))
        };
        v.get("watch").is_some()
            || in_lab("/dns/resolver")
            || v.pointer("/dns/resolver")
                .and_then(Value::as_str)
                .is_some_and(|a| a.starts_with("fd00:a0d1:7e57:"))
            || in_lab("/src_addr")
            || in_lab("/dst_addr")
    };
    // The daemon's own work (it enters pods' namespaces to learn their addresses) is not
    // the lab's traffic: the capture sees the daemon, which only skips itself. Nor are
    // the resolvers' own sends (answers, and the cache's questions to the cluster DNS):
    // the example keeps the pods' traffic and the answers they received.
    let lines: Vec<&Value> = captured
        .lines
        .iter()
        .filter(|v| lab_line(v) && v["comm"] != "auditor" && v["comm"] != "dnsmasq")
        .collect();
    let chain = lines.iter().find(|v| {
        v.pointer("/dns/question").and_then(Value::as_str) == Some("redis.voice.svc.cluster.local")
    });
    let chain = chain.unwrap_or_else(|| panic!("no dns line for the CNAME chain: {lines:?}"));
    assert_eq!(
        chain.pointer("/dns/answers/0/names"),
        Some(&serde_json::json!([
            "redis.voice.svc.cluster.local",
            "x.redis.example"
        ])),
        "{chain}"
    );
    assert!(captured.watches.iter().all(|w| w["watch"]["dns"] == true));
    let v6 = lab.host("node-cache").v6.to_string();
    assert!(
        lines
            .iter()
            .any(|v| v.pointer("/dns/resolver").and_then(Value::as_str) == Some(v6.as_str())),
        "no answer captured from the cache's IPv6 address {v6}"
    );
    // `AUDITOR_RECORD_DNS_EXAMPLE=PATH` keeps the lab's part of the stream: how
    // examples/flows-dns.jsonl was recorded.
    if let Some(path) = std::env::var_os("AUDITOR_RECORD_DNS_EXAMPLE") {
        let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(path, text).expect("writing the example recording");
    }

    let edges = stored(&dir);
    let all = describe(&edges);
    let find = |verdict: &str, src: &str, dst: &str, domain: Option<&str>| {
        edges.iter().find(|e| {
            e.verdict.as_str() == verdict
                && e.src.name() == src
                && e.dst.name() == dst
                && e.dst.domain.as_deref() == domain
        })
    };
    // Before and after the move: Redis, by the name the chain ended at.
    let redis = find(
        "allowed",
        "Interaction Server",
        "Redis",
        Some("x.redis.example"),
    )
    .unwrap_or_else(|| panic!("Interaction Server -> Redis by name:\n{all}"));
    assert!(
        redis.count >= 2,
        "both connections, before and after the move:\n{all}"
    );
    for moved in [a("redis-a"), a("redis-b")] {
        assert!(
            !edges
                .iter()
                .any(|e| e.verdict.as_str() == "unknown_destination"
                    && e.src.name() == "Interaction Server"
                    && e.dst.name() == moved),
            "Interaction Server -> {moved} must be Redis:\n{all}"
        );
    }
    // Over IPv6: one more Interaction Server pod whose flow is Redis by name.
    assert!(
        !edges.iter().any(|e| e.src.name() == "Interaction Server"
            && e.dst.addr.map(|x| x.to_string()) == Some(over_v6.clone())
            && e.verdict.as_str() != "allowed"),
        "is-v6's connect, named through an IPv6 answer, must be Redis:\n{all}"
    );
    // Over TCP.
    assert!(
        find(
            "allowed",
            "Interaction Server",
            "Redis",
            Some("big.redis.example")
        )
        .is_some(),
        "the TCP answer named redis-a:\n{all}"
    );
    // The undocumented name, carried.
    let undoc_edge = find(
        "unknown_destination",
        "Interaction Server",
        &a("undoc"),
        Some("unknown.example"),
    )
    .unwrap_or_else(|| panic!("the undocumented name:\n{all}"));
    assert_eq!(
        undoc_edge.dst.resolution,
        Some(auditor::model::Resolution::Dns)
    );
    // The attacker's answer named nothing: the flow is by bare address, not Redis.
    let evil_edge = find(
        "unknown_destination",
        "Interaction Server",
        &a("evil"),
        None,
    )
    .unwrap_or_else(|| panic!("the attacker's address:\n{all}"));
    assert_eq!(
        evil_edge.dst.resolution,
        Some(auditor::model::Resolution::Bare)
    );
    assert!(
        !edges
            .iter()
            .any(|e| e.dst.addr.map(|x| x.to_string()) == Some(a("evil"))
                && e.dst.service.as_deref() == Some("Redis")),
        "{all}"
    );
    // TTL and grace.
    assert!(
        find(
            "allowed",
            "Voice RQ Service",
            "Redis",
            Some("x.redis.example")
        )
        .is_some(),
        "3 s after a 2 s answer, within the 4 s grace:\n{all}"
    );
    let expired = find("unknown_destination", "Voice RQ Service", &ttl_out, None)
        .unwrap_or_else(|| panic!("8 s after the answer, past TTL and grace:\n{all}"));
    assert_eq!(
        expired.dst.resolution,
        Some(auditor::model::Resolution::Bare)
    );
    // One address, two pods, two names.
    assert!(
        find(
            "allowed",
            "Voicemail",
            "Object storage",
            Some("bucket.blob.example")
        )
        .is_some(),
        "{all}"
    );
    assert!(
        find(
            "unknown_destination",
            "Interaction Server",
            &a("cdn"),
            Some("other.cdn.example")
        )
        .is_some(),
        "{all}"
    );
    // The events carry the names too.
    let ev = events(&dir.join("events1.jsonl"));
    let domains: Vec<&str> = ev
        .iter()
        .filter_map(|e| e.pointer("/dst/domain").and_then(Value::as_str))
        .collect();
    assert!(domains.contains(&"unknown.example"), "{ev:?}");
    assert!(domains.contains(&"other.cdn.example"), "{ev:?}");
    // Which resolver gave which name, kept.
    let store = auditor::store::Store::open_existing(&dir.join("store.db")).unwrap();
    let learned = store.learned(None, None).unwrap();
    assert!(
        learned
            .iter()
            .any(|l| l.name == "big.redis.example" && l.resolver.to_string() == a("node-cache")),
        "{learned:?}"
    );
    drop(store);
    // The report names them.
    let report = std::process::Command::new(workspace_bin("auditor"))
        .args(["report", "--store"])
        .arg(dir.join("store.db"))
        .args(["--format", "markdown"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(report.contains("unknown.example"), "{report}");
    assert!(report.contains("x.redis.example"), "{report}");

    // Restart under the held connection, after its name's TTL and grace ran out: the
    // connection found open at start keeps its name.
    std::thread::sleep(Duration::from_secs(TTL_SECS + GRACE_SECS + 1));
    let daemon = Daemon::start(&args("events2.jsonl"), dir.join("daemon2.log")).expect("restart");
    wait_for(
        "the held connection judged as Redis after the restart",
        Duration::from_secs(20),
        || {
            metric(
                &daemon.metrics(),
                "auditor_connections_total",
                &[("verdict", "allowed"), ("rules", "7")],
            )
        },
    );
    daemon.stop().expect("clean stop");
    let _ = held.kill();
    let _ = held.wait();
    let after_restart = events(&dir.join("events2.jsonl"));
    assert!(
        !after_restart
            .iter()
            .any(|e| e.pointer("/dst/addr").and_then(Value::as_str) == Some(held_to.as_str())),
        "the held connection alarmed after the restart: {after_restart:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills its processes when the test ends, however it ends.
struct Guard(Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
