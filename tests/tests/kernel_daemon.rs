//! `auditor run` with the real parts around it: the kernel, processes in network
//! namespaces, Debian's Prometheus (scraping and evaluating deploy/chart/auditor/files/prometheus-rules.yaml)
//! and Alertmanager. What a user checks: one event, the right counter, one alert with
//! labels that route, the store intact after kill -9, a bad reload rejected.

use std::{path::PathBuf, sync::Mutex, time::Duration};

use auditor_tests::peer::{client, serve};
use auditor_tests::{
    events::read_valid,
    kernel_tests_enabled,
    lab::{Lab, VoiceLab},
    services::{Daemon, alertmanager, http_json, metric, prometheus, prometheus_nodes, wait_for},
    workspace_bin,
};
use serde_json::Value;

static KERNEL: Mutex<()> = Mutex::new(());
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const GES: &str = "Genesys Engagement Service";

/// A lab where namespaces play GES, Redis, Tenant Service and Config Service, with the
/// matching inventory written next to the store.
struct Setup {
    lab: Lab,
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Setup {
        let VoiceLab { lab, dir } = VoiceLab::new(&format!("daemon-{name}"));
        Setup { lab, dir }
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--allowlist".into(),
            self.dir.join("allowlist.yaml").display().to_string(),
            "--inventory".into(),
            self.dir.join("inventory.yaml").display().to_string(),
            "--store".into(),
            self.dir.join("store.db").display().to_string(),
            "--events".into(),
            self.dir.join("events.jsonl").display().to_string(),
            "--node".into(),
            "node-a".into(),
            "--reload-poll".into(),
            "200ms".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    fn addr(&self, host: &str) -> String {
        self.lab.host(host).v4.to_string()
    }

    /// GES connects to Redis on 6379 `n` times: undocumented (row 10's text, not a row).
    fn ges_to_redis(&self, n: u32) {
        let server = serve(
            &self.lab,
            "redis",
            &["listen", "tcp", &self.addr("redis"), "6379", &n.to_string()],
        );
        client(
            &self.lab,
            "ges",
            &["connect-many", &self.addr("redis"), "6379", &n.to_string()],
        );
        let mut server = server;
        assert!(server.wait().unwrap().success());
    }

    /// Tenant Service -> Config Service 9100: documented (row 26).
    fn tenant_to_config(&self) {
        let mut server = serve(
            &self.lab,
            "config",
            &["listen", "tcp", &self.addr("config"), "9100", "1"],
        );
        client(
            &self.lab,
            "tenant",
            &["connect", &self.addr("config"), "9100"],
        );
        assert!(server.wait().unwrap().success());
    }

    /// Events about the lab's connections. The daemon audits the whole machine, the test's
    /// own HTTP polling included; those events are real but not this test's subject. Every
    /// event, ours or not, must validate against docs/event.schema.json.
    fn events(&self) -> Vec<Value> {
        let ours: Vec<String> = self.lab.hosts.iter().map(|h| h.v4.to_string()).collect();
        read_valid(&self.dir.join("events.jsonl"))
            .into_iter()
            .filter(|e| ours.iter().any(|a| e["dst"]["addr"] == a.as_str()))
            .collect()
    }

    fn stored_edge(&self, verdict: &str, src: &str, dst: &str) -> Option<u64> {
        let store =
            auditor::store::Store::open_existing(&self.dir.join("store.db")).expect("store opens");
        store
            .edges(None, None)
            .unwrap()
            .into_iter()
            .map(|e| e.edge)
            .find(|e| {
                let k = e.key();
                k.verdict.as_str() == verdict && k.src == src && k.dst == dst
            })
            .map(|e| e.count)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn violations(d: &Daemon) -> Option<f64> {
    metric(
        &d.metrics(),
        "auditor_violations_total",
        &[("src", GES), ("dst", "Redis"), ("port", "6379")],
    )
}

#[test]
fn a_violation_shows_up_once_in_events_metrics_alertmanager_and_the_rules() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled(
        "a_violation_shows_up_once_in_events_metrics_alertmanager_and_the_rules",
    ) {
        return;
    }
    let s = Setup::new("alerts");
    let am = alertmanager().expect("alertmanager");
    let daemon = Daemon::start(
        &s.args(&["--alertmanager", &am.url(), "--alert-resend", "2s"]),
        s.dir.join("daemon.log"),
    )
    .expect("daemon");
    let prom = prometheus(
        &format!("127.0.0.1:{}", daemon.port),
        &PathBuf::from(ROOT).join("deploy/chart/auditor/files/prometheus-rules.yaml"),
        &am,
    )
    .expect("prometheus");

    s.tenant_to_config();
    s.ges_to_redis(1000);

    // The counter counts connections: all 1000.
    wait_for(
        "1000 violations in the daemon's metrics",
        Duration::from_secs(30),
        || violations(&daemon).filter(|v| *v >= 1000.0),
    );
    assert_eq!(violations(&daemon), Some(1000.0));
    let m = daemon.metrics();
    assert_eq!(
        metric(
            &m,
            "auditor_connections_total",
            &[("verdict", "allowed"), ("rules", "26")]
        ),
        Some(1.0),
        "{m}"
    );

    // Exactly one event for the edge, and none for the documented connection.
    let events = s.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(
        (
            &e["verdict"],
            &e["src"]["service"],
            &e["dst"]["service"],
            &e["dst"]["port"],
            &e["node"]
        ),
        (
            &"undocumented_egress".into(),
            &GES.into(),
            &"Redis".into(),
            &6379.into(),
            &"node-a".into()
        )
    );
    assert_eq!(e["process"]["comm"], "auditor-peer");
    assert_eq!(e["src"]["addr"], s.addr("ges").as_str());
    assert_eq!(e["transport"], "tcp");
    assert_eq!(e["direction"], "egress");
    assert_eq!(e["notice"], "new");
    assert_eq!(e["id"].as_str().map(str::len), Some(32), "{e}");

    // Alertmanager: one alert from the daemon, one from the Prometheus rule, labels that route.
    let alerts = wait_for(
        "both alerts in Alertmanager",
        Duration::from_secs(60),
        || {
            let a = http_json(&format!("{}/api/v2/alerts", am.url())).ok()?;
            let list = a.as_array()?.clone();
            let names: Vec<&str> = list
                .iter()
                .filter(|x| x["labels"]["src"] == GES)
                .filter_map(|x| x["labels"]["alertname"].as_str())
                .collect();
            (names.contains(&"AuditorUndocumentedConnection")
                && names.contains(&"AuditorViolationEdgeActive"))
            .then_some(list)
        },
    );
    for name in [
        "AuditorUndocumentedConnection",
        "AuditorViolationEdgeActive",
    ] {
        // The machine's own loopback traffic (scrapes, this test's polling) raises alerts
        // too; exactly one per alert name is about the lab's edge.
        let mine: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == name && a["labels"]["src"] == GES)
            .collect();
        assert_eq!(mine.len(), 1, "{name}: {alerts:#?}");
        let l = &mine[0]["labels"];
        assert_eq!(
            (
                &l["verdict"],
                &l["src"],
                &l["dst"],
                &l["port"],
                &l["transport"],
                &l["rules"],
                &l["node"]
            ),
            (
                &"undocumented_egress".into(),
                &GES.into(),
                &"Redis".into(),
                &"6379".into(),
                &"tcp".into(),
                &"none".into(),
                &"node-a".into()
            ),
            "{name}: {}",
            mine[0]
        );
    }
    // Prometheus sees the same count.
    let query = format!(
        "{}/api/v1/query?query=auditor_violations_total%7Bsrc%3D%22{}%22%7D",
        prom.url(),
        GES.replace(' ', "%20")
    );
    wait_for("Prometheus to scrape 1000", Duration::from_secs(30), || {
        let q = http_json(&query).ok()?;
        (q["data"]["result"][0]["value"][1] == "1000").then_some(())
    });

    // The auditor's own traffic: Prometheus scraping it and its posts to Alertmanager are
    // platform traffic under the built-in `auditor` entry, never a violation or an alert.
    let m = daemon.metrics();
    assert!(
        metric(
            &m,
            "auditor_connections_total",
            &[("verdict", "platform"), ("platform", "auditor")]
        )
        .is_some_and(|n| n >= 2.0),
        "the scrapes of the daemon and its posts are platform `auditor`: {m}"
    );
    let am_port: u16 = am.url().rsplit(':').next().unwrap().parse().unwrap();
    let own: Vec<Value> = read_valid(&s.dir.join("events.jsonl"))
        .into_iter()
        .filter(|e| {
            let port = e["dst"]["port"].as_u64();
            port == Some(u64::from(daemon.port)) || port == Some(u64::from(am_port))
        })
        .collect();
    assert!(
        own.is_empty(),
        "the auditor alarmed on its own traffic: {own:#?}"
    );
    let alerts = http_json(&format!("{}/api/v2/alerts", am.url())).unwrap();
    let own_alerts: Vec<&Value> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            [daemon.port.to_string(), am_port.to_string()]
                .contains(&a["labels"]["port"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert!(own_alerts.is_empty(), "{own_alerts:#?}");

    daemon.stop().expect("clean stop");
    assert_eq!(
        s.stored_edge("undocumented_egress", GES, "Redis"),
        Some(1000),
        "the store counts every connection"
    );
    assert_eq!(
        s.stored_edge("allowed", "Tenant Service", "Config Service"),
        Some(1)
    );
}

#[test]
fn the_store_keeps_what_it_acknowledged_through_kill_9() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("the_store_keeps_what_it_acknowledged_through_kill_9") {
        return;
    }
    let s = Setup::new("kill9");
    let daemon = Daemon::start(&s.args(&[]), s.dir.join("daemon1.log")).expect("daemon");
    s.ges_to_redis(200);
    // Acknowledged means committed: wait until the store file holds all 200 (the
    // machine's other traffic is audited too, so the commit counter alone proves nothing).
    wait_for("200 connections committed", Duration::from_secs(30), || {
        (s.stored_edge("undocumented_egress", GES, "Redis") == Some(200)).then_some(())
    });
    daemon.kill();

    // A restart on the same store: what was acknowledged is there, and counting goes on.
    let daemon =
        Daemon::start(&s.args(&[]), s.dir.join("daemon2.log")).expect("restart on the same store");
    assert_eq!(
        s.stored_edge("undocumented_egress", GES, "Redis"),
        Some(200)
    );
    s.ges_to_redis(100);
    wait_for("100 more acknowledged", Duration::from_secs(30), || {
        metric(
            &daemon.metrics(),
            "auditor_store_acknowledged_connections_total",
            &[],
        )
        .filter(|v| *v >= 100.0)
    });
    daemon.stop().expect("clean stop");
    assert_eq!(
        s.stored_edge("undocumented_egress", GES, "Redis"),
        Some(300)
    );
    // Each run is a coverage interval.
    let store = auditor::store::Store::open_existing(&s.dir.join("store.db")).unwrap();
    assert!(store.coverage(None, None).unwrap().len() >= 2);
}

#[test]
fn a_bad_reload_is_rejected_and_the_old_policy_keeps_running() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("a_bad_reload_is_rejected_and_the_old_policy_keeps_running") {
        return;
    }
    let s = Setup::new("reload");
    let daemon = Daemon::start(&s.args(&[]), s.dir.join("daemon.log")).expect("daemon");
    let reloads = |result: &str| {
        metric(
            &daemon.metrics(),
            "auditor_reloads_total",
            &[("result", result)],
        )
        .unwrap_or(0.0)
    };
    let generation = || metric(&daemon.metrics(), "auditor_policy_generation", &[]).unwrap_or(0.0);
    assert_eq!(generation(), 1.0);

    // A typo in the allowlist: rejected, logged with file:line:column, generation unchanged.
    let path = s.dir.join("allowlist.yaml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replacen("  protocol: HTTP\n", "  protocl: HTTP\n", 1),
    )
    .unwrap();
    wait_for("a rejected reload", Duration::from_secs(20), || {
        (reloads("failure") >= 1.0).then_some(())
    });
    assert_eq!(generation(), 1.0);
    assert!(
        daemon.log_text().contains("unknown field `protocl`"),
        "{}",
        daemon.log_text()
    );

    // The old policy still judges: the documented connection raises nothing.
    s.tenant_to_config();
    wait_for(
        "the allowed connection counted",
        Duration::from_secs(20),
        || {
            metric(
                &daemon.metrics(),
                "auditor_connections_total",
                &[("verdict", "allowed"), ("rules", "26")],
            )
        },
    );
    assert!(s.events().is_empty(), "{:#?}", s.events());

    // Fixed, and reloaded by SIGHUP as well as by the change.
    std::fs::write(&path, &good).unwrap();
    wait_for("a good reload", Duration::from_secs(20), || {
        (generation() >= 2.0).then_some(())
    });
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for("SIGHUP reload", Duration::from_secs(20), || {
        (generation() >= 3.0).then_some(())
    });
    daemon.stop().expect("clean stop");
}

#[test]
fn the_cluster_report_collects_every_nodes_report_over_http() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("the_cluster_report_collects_every_nodes_report_over_http") {
        return;
    }
    let s = Setup::new("collect");
    // Two daemons stand for two nodes, each with its own store. Each store first holds a
    // recording of the last half hour (replayed), so that the cluster report's chain has
    // periods that end on the store's five-minute buckets without the test waiting for
    // them.
    let node = |name: &str| {
        let store = s.dir.join(format!("{name}.db"));
        seed_half_an_hour(&s, name, &store);
        let mut a = s.args(&[]);
        let at = |flag: &str, a: &Vec<String>| a.iter().position(|x| x == flag).unwrap() + 1;
        let (i, j) = (at("--node", &a), at("--store", &a));
        a[i] = name.into();
        a[j] = store.display().to_string();
        Daemon::start(&a, s.dir.join(format!("{name}.log"))).expect("daemon")
    };
    let (a, b) = (node("node-a"), node("node-b"));
    s.tenant_to_config();
    // Each node's own report must show the connection stored before collecting (other
    // traffic on the machine is audited too, so a bare commit count proves nothing).
    for d in [&a, &b] {
        wait_for(
            "row 26 in the node's report",
            Duration::from_secs(30),
            || {
                let r = http_json(&format!("{}/report", d.url())).ok()?;
                r["rows"]
                    .as_array()?
                    .iter()
                    .any(|x| x["rule"] == 26 && x["observed"] == true)
                    .then_some(())
            },
        );
    }
    let out = std::process::Command::new(workspace_bin("auditor"))
        .args([
            "report",
            "--collect",
            &a.url(),
            "--collect",
            &b.url(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["nodes"], serde_json::json!(["node-a", "node-b"]));
    let row26 = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["rule"] == 26)
        .unwrap();
    assert_eq!(
        (&row26["observed"], &row26["count"]),
        (&true.into(), &2.into()),
        "one connection, seen by both nodes' probes"
    );
    assert_eq!(row26["nodes"], serde_json::json!(["node-a", "node-b"]));
    the_cronjob_keeps_a_chain(&s, &[a.url(), b.url()]);
    a.stop().unwrap();
    b.stop().unwrap();
}

/// Connections the seeded recording holds per node (`seed_half_an_hour`).
const SEEDED: u64 = 20;

/// A recording replayed into a node's store: one connection a minute from 25 to 6 minutes
/// ago, from an address no inventory knows (an `unknown_source` edge that touches no
/// documented row), watched throughout.
fn seed_half_an_hour(s: &Setup, node: &str, store: &std::path::Path) {
    let now = std::time::SystemTime::now();
    let at = |ago_min: u64| auditor::model::time::rfc3339(now - Duration::from_secs(ago_min * 60));
    let mut lines = vec![format!(
        r#"{{"watch":{{"node":"{node}","auditor_version":"test","kernel":"test","start":"{}","end":"{}","drops":{{"ringbuf_full":0,"connections_lost":0,"flow_insert_failed":0}}}}}}"#,
        at(26),
        at(5)
    )];
    for ago in (6..6 + SEEDED).rev() {
        lines.push(format!(
            r#"{{"time":"{}","transport":"tcp","src_addr":"198.51.100.7","dst_addr":"203.0.113.9","dst_port":443}}"#,
            at(ago)
        ));
    }
    let flows = s.dir.join(format!("{node}-seed.jsonl"));
    std::fs::write(&flows, lines.join("\n") + "\n").unwrap();
    let o = std::process::Command::new(workspace_bin("auditor"))
        .arg("replay")
        .arg("--allowlist")
        .arg(s.dir.join("allowlist.yaml"))
        .arg("--inventory")
        .arg(s.dir.join("inventory.yaml"))
        .arg("--store")
        .arg(store)
        .args(["--node", node])
        .arg(&flows)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The chart's CronJob script, as helm renders it with signing and exceptions, run twice
/// by /bin/sh against the daemons (first 12 minutes behind now, then 1 s): two signed
/// reports that `verify --chain` accepts, each seeded connection counted in exactly one
/// of them, and the newest rendered as HTML with its controls and the exceptions.
fn the_cronjob_keeps_a_chain(s: &Setup, daemons: &[String]) {
    let exceptions = format!(
        "exceptions:\n  - id: EXC-1\n    src: {GES}\n    dst: Redis\n    port: 6379\n    reason: session cache\n    owner: voice@example.com\n    expires: 2099-01-01\n"
    );
    // The chart's objects, rendered with this lag; None when helm is missing.
    let render = |lag: &str| -> Option<Vec<Value>> {
        let rendered = auditor_tests::helm_template(&[
            "--set",
            &format!("clusterReport.lag={lag}"),
            "--set",
            "clusterReport.signingKeySecret=signing",
            "--set-string",
            &format!("clusterReport.exceptions={exceptions}"),
        ])?;
        Some(serde_saphyr::from_str_multiple(&rendered.unwrap()).unwrap())
    };
    let find = |docs: &[Value], kind: &str, name: &str| -> Value {
        docs.iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name}"))
            .clone()
    };
    let (Some(behind), Some(now)) = (render("12m"), render("1s")) else {
        return;
    };
    // What the ConfigMap mounts at /etc/auditor.
    let mounted = find(&now, "ConfigMap", "auditor-policy")["data"]["exceptions.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = s.dir.join("cronjob");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("exceptions.yaml"), mounted).unwrap();
    for args in [
        &["genpkey", "-algorithm", "ed25519", "-out", "key.pem"][..],
        &["pkey", "-in", "key.pem", "-pubout", "-out", "key.pub.pem"],
    ] {
        let o = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
    }
    let collect: Vec<String> = daemons.iter().map(|u| format!("--collect {u}")).collect();
    let bin = workspace_bin("auditor").display().to_string();
    for docs in [&behind, &now] {
        let job = find(docs, "CronJob", "auditor-cluster-report");
        let script =
            job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][0]
                .as_str()
                .unwrap()
                .replace("auditor report", &format!("{bin} report"))
                .replace(
                    "--collect http://auditor-nodes.auditor.svc:9977",
                    &collect.join(" "),
                )
                .replace(
                    "/etc/auditor-signing/key.pem",
                    &dir.join("key.pem").display().to_string(),
                )
                .replace(
                    "/etc/auditor/exceptions.yaml",
                    &dir.join("exceptions.yaml").display().to_string(),
                )
                .replace("/reports", &dir.join("reports").display().to_string());
        assert!(
            !script.contains("svc:"),
            "every part of the script runs here: {script}"
        );
        let o = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = std::process::Command::new(&bin)
        .args(["report", "verify", "--chain"])
        .arg(dir.join("reports/chain"))
        .arg("--key")
        .arg(dir.join("key.pub.pem"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    eprintln!("the CronJob's chain: {said}");
    assert!(
        o.status.success() && said.contains("verified: 2 reports"),
        "{said}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Consecutive periods on the buckets: every seeded connection in exactly one report.
    let mut seeded = 0;
    for entry in std::fs::read_dir(dir.join("reports/chain")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let r: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            seeded += r["violations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["src"]["addr"] == "198.51.100.7")
                .map(|v| v["count"].as_u64().unwrap())
                .sum::<u64>();
        }
    }
    assert_eq!(
        seeded,
        2 * SEEDED,
        "both nodes' seeded connections, each counted once"
    );
    let html = std::fs::read_to_string(dir.join("reports/cluster.html")).unwrap();
    assert!(
        html.contains("<h2>Controls</h2>") && html.contains("EXC-1"),
        "{html}"
    );
}

type LabEvidence = (Vec<(u64, u64)>, Vec<(String, u64)>);

/// The lab's documented rows and violation edges in a report, with their counts:
/// (observed row numbers with counts, violation edges with counts). Other traffic on the
/// machine (the test's own HTTP, Prometheus' scrapes) is audited too and left out.
fn lab_evidence(s: &Setup, r: &Value) -> LabEvidence {
    let ours: Vec<String> = [GES, "Redis", "Tenant Service", "Config Service"]
        .iter()
        .map(|n| n.to_string())
        .chain(s.lab.hosts.iter().map(|h| h.v4.to_string()))
        .collect();
    let name = |e: &Value| {
        e["service"]
            .as_str()
            .map(String::from)
            .or_else(|| e["addr"].as_str().map(String::from))
            .unwrap_or_else(|| "unknown".into())
    };
    let mut rows: Vec<(u64, u64)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["observed"] == true)
        .map(|x| (x["rule"].as_u64().unwrap(), x["count"].as_u64().unwrap()))
        .collect();
    rows.sort();
    let mut edges: Vec<(String, u64)> = r["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| ours.contains(&name(&v["src"])) || ours.contains(&name(&v["dst"])))
        .map(|v| {
            (
                format!(
                    "{} {} -> {} {}/{}",
                    v["verdict"].as_str().unwrap(),
                    name(&v["src"]),
                    name(&v["dst"]),
                    v["transport"].as_str().unwrap(),
                    v["dst"]["port"]
                ),
                v["count"].as_u64().unwrap(),
            )
        })
        .collect();
    edges.sort();
    (rows, edges)
}

#[test]
fn the_cluster_report_from_prometheus_agrees_with_the_daemons_own() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("the_cluster_report_from_prometheus_agrees_with_the_daemons_own") {
        return;
    }
    let s = Setup::new("prometheus-report");
    let since = auditor::model::time::rfc3339(std::time::SystemTime::now());
    let node = |name: &str| {
        let mut a = s.args(&[]);
        let at = |flag: &str, a: &Vec<String>| a.iter().position(|x| x == flag).unwrap() + 1;
        let (i, j) = (at("--node", &a), at("--store", &a));
        a[i] = name.into();
        a[j] = s.dir.join(format!("{name}.db")).display().to_string();
        Daemon::start(&a, s.dir.join(format!("{name}.log"))).expect("daemon")
    };
    let (a, b) = (node("node-a"), node("node-b"));
    let prom = prometheus_nodes(&[
        ("node-a", format!("127.0.0.1:{}", a.port)),
        ("node-b", format!("127.0.0.1:{}", b.port)),
    ])
    .expect("prometheus");
    // Documented (row 26) and undocumented (GES -> Redis 6379) traffic, seen by both.
    s.tenant_to_config();
    s.ges_to_redis(25);
    let edge = [("src", GES), ("dst", "Redis"), ("port", "6379")];
    for d in [&a, &b] {
        wait_for(
            "the lab's traffic in /metrics",
            Duration::from_secs(30),
            || (violations(d)? >= 25.0).then_some(()),
        );
        wait_for(
            "row 26 in the node's store",
            Duration::from_secs(30),
            || {
                let r = http_json(&format!("{}/report", d.url())).ok()?;
                r["rows"]
                    .as_array()?
                    .iter()
                    .any(|x| x["rule"] == 26 && x["observed"] == true)
                    .then_some(())
            },
        );
    }
    // Prometheus has scraped each daemon's final counts.
    let query = |q: &str| {
        http_json(&format!(
            "{}/api/v1/query?query={}",
            prom.url(),
            q.bytes()
                .map(|c| if c.is_ascii_alphanumeric() || c == b'_' {
                    (c as char).to_string()
                } else {
                    format!("%{c:02X}")
                })
                .collect::<String>()
        ))
        .ok()
    };
    for (n, d) in [("node-a", &a), ("node-b", &b)] {
        let want = metric(&d.metrics(), "auditor_violations_total", &edge).unwrap();
        wait_for(
            "Prometheus to scrape the final counts",
            Duration::from_secs(30),
            || {
                let r = query(&format!(
                    "auditor_violations_total{{node=\"{n}\",src=\"{GES}\",dst=\"Redis\"}}"
                ))?;
                let got: f64 = r["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
                (got == want).then_some(())
            },
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let report = |args: &[&str]| -> Value {
        let out = std::process::Command::new(workspace_bin("auditor"))
            .arg("report")
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "auditor report {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let collected = report(&["--collect", &a.url(), "--collect", &b.url()]);
    let list = s.dir.join("allowlist.yaml").display().to_string();
    let from_prom = report(&[
        "--prometheus",
        &prom.url(),
        "--allowlist",
        &list,
        "--since",
        &since,
    ]);
    let (rows, edges) = lab_evidence(&s, &from_prom);
    assert_eq!((rows.clone(), edges.clone()), lab_evidence(&s, &collected));
    assert!(rows.iter().any(|&(n, c)| n == 26 && c == 2), "{rows:?}");
    assert!(
        edges.iter().any(|(e, c)| e.contains("Redis") && *c == 50),
        "25 connections seen by both nodes: {edges:?}"
    );
    assert_eq!(from_prom["nodes"], serde_json::json!(["node-a", "node-b"]));
    // It says what it cannot know, and its coverage comes from the scrapes.
    assert!(
        from_prom["limits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("example processes")),
        "{}",
        from_prom["limits"]
    );
    assert!(from_prom["coverage"]["watched_seconds"].as_f64().unwrap() > 0.0);
    // Another allowlist than the daemons judged against is refused, not credited.
    let other = s.dir.join("other.yaml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&list)
            .unwrap()
            .replacen("9100", "9101", 1),
    )
    .unwrap();
    let out = std::process::Command::new(workspace_bin("auditor"))
        .args(["report", "--prometheus", &prom.url(), "--allowlist"])
        .arg(&other)
        .args(["--since", &since])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("not the allowlist the daemons judged against"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.stop().unwrap();
    b.stop().unwrap();
}

#[test]
fn an_alert_resolves_in_alertmanager_once_its_edge_goes_quiet() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled("an_alert_resolves_in_alertmanager_once_its_edge_goes_quiet") {
        return;
    }
    let s = Setup::new("resolve");
    let am = alertmanager().expect("alertmanager");
    let daemon = Daemon::start(
        &s.args(&[
            "--alertmanager",
            &am.url(),
            "--alert-resend",
            "1s",
            "--resolve-after",
            "3s",
        ]),
        s.dir.join("daemon.log"),
    )
    .expect("daemon");
    s.ges_to_redis(3);
    let ours = |active: bool| -> Option<Value> {
        let url = format!(
            "{}/api/v2/alerts?active={active}&silenced=false&inhibited=false&unprocessed=false",
            am.url()
        );
        let list = http_json(&url).ok()?;
        let l = list.as_array()?;
        let mut mine = l.iter().filter(|a| {
            a["labels"]["src"] == GES && a["labels"]["alertname"] == "AuditorUndocumentedConnection"
        });
        mine.next().cloned()
    };
    let firing = wait_for("the alert to fire", Duration::from_secs(30), || ours(true));
    assert_eq!(firing["status"]["state"], "active", "{firing}");
    // No more connections: after --resolve-after the daemon sends endsAt = now.
    wait_for("the alert to resolve", Duration::from_secs(30), || {
        ours(true).is_none().then_some(())
    });
    let m = daemon.metrics();
    assert!(
        metric(
            &m,
            "auditor_alertmanager_posts_total",
            &[("result", "success")]
        )
        .unwrap_or(0.0)
            >= 2.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "auditor_alertmanager_posts_total",
            &[("result", "failure")]
        ),
        None,
        "{m}"
    );
    daemon.stop().unwrap();
}

/// `auditor report` on stores a real `auditor run` wrote: the CI gate passes on a clean
/// store and fails on one with a violation; the report names the files it was judged
/// against by their sha256; another allowlist is refused; JUnit parses; merging the same
/// report twice counts it once.
#[test]
fn reports_of_a_real_run_gate_ci_name_their_inputs_and_refuse_other_allowlists() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled(
        "reports_of_a_real_run_gate_ci_name_their_inputs_and_refuse_other_allowlists",
    ) {
        return;
    }
    let s = Setup::new("gate");
    // Only the lab's flows are judged: the machine's other traffic is not this test's.
    let scope: Vec<String> = s.lab.hosts.iter().map(|h| format!("{}/32", h.v4)).collect();
    let scope = scope.join(",");
    let report = |args: &[&str]| {
        std::process::Command::new(workspace_bin("auditor"))
            .arg("report")
            .arg("--store")
            .arg(s.dir.join("store.db"))
            .args(args)
            .current_dir(&s.dir)
            .output()
            .unwrap()
    };
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();

    let daemon =
        Daemon::start(&s.args(&["--scope", &scope]), s.dir.join("d1.log")).expect("daemon");
    s.tenant_to_config();
    wait_for(
        "the documented connection stored",
        Duration::from_secs(30),
        || s.stored_edge("allowed", "Tenant Service", "Config Service"),
    );
    daemon.stop().expect("clean stop");

    // Clean: the gate passes.
    let out = report(&["--fail-on", "violations", "-o", "clean.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("clean.json")).unwrap()).unwrap();
    let sha = |f: &str| auditor::provenance::sha256_hex(&std::fs::read(s.dir.join(f)).unwrap());
    assert_eq!(r["inputs"][0]["allowlist_sha256"], sha("allowlist.yaml"));
    assert_eq!(r["inputs"][0]["inventory_sha256"], sha("inventory.yaml"));
    assert_eq!(r["inputs"][0]["auditor_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["auditor_version"], env!("CARGO_PKG_VERSION"));
    let (since, until) = (
        r["period"]["since"].as_str().unwrap(),
        r["period"]["until"].as_str().unwrap(),
    );
    assert!(
        since.starts_with("20") && until.starts_with("20") && since < until,
        "{since} {until}"
    );
    assert!(r["coverage"]["fraction"].as_f64().unwrap() > 0.5);
    assert_eq!(r["summary"]["violation_edges"], 0);

    // The same store with a violation: the gate fails (1), the report is still written.
    let daemon =
        Daemon::start(&s.args(&["--scope", &scope]), s.dir.join("d2.log")).expect("daemon");
    s.ges_to_redis(3);
    wait_for("the violation stored", Duration::from_secs(30), || {
        s.stored_edge("undocumented_egress", GES, "Redis")
    });
    daemon.stop().expect("clean stop");
    let out = report(&["--fail-on", "violations", "-o", "bad.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", err(&out));
    assert!(s.dir.join("bad.json").exists());
    // Two runs, a gap between them: "unaudited" holds too.
    let out = report(&["--fail-on", "unaudited"]);
    assert_eq!(out.status.code(), Some(1), "{}", err(&out));

    // JUnit: 60 row testcases; one failed testcase for the one violation edge.
    let out = report(&["-o", "junit.xml"]);
    assert!(out.status.success(), "{}", err(&out));
    let py = "import sys, xml.etree.ElementTree as ET\n\
              r = ET.parse(sys.argv[1]).getroot()\n\
              rows = r.findall(\"./testsuite[@name='documented connections']/testcase\")\n\
              v = r.findall(\"./testsuite[@name='violations']/testcase\")\n\
              print(len(rows), len([t for t in v if t.find('failure') is not None]))";
    let parsed = std::process::Command::new("python3")
        .args(["-c", py])
        .arg(s.dir.join("junit.xml"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout).trim(),
        "60 1",
        "{}",
        err(&parsed)
    );

    // Another allowlist (the issue's two-row Web -> API): refused, never credited by number.
    std::fs::write(
        s.dir.join("other.yaml"),
        "version: 1\nservices:\n- name: Web\n  kind: service\n- name: API\n  kind: service\n\
         connections:\n- number: 1\n  source: Web\n  destination: API\n  protocol: HTTPS\n  transport: tcp\n  ports: [443]\n  classification: intra-cluster\n  description: Web calls the API.\n\
         - number: 2\n  source: API\n  destination: Web\n  protocol: HTTP\n  transport: tcp\n  ports: [80]\n  classification: intra-cluster\n  description: Callbacks.\n",
    )
    .unwrap();
    let out = report(&["--allowlist", "other.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(
        err(&out).contains("is not the allowlist this store's observations were judged against")
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("documented connections observed"));

    // `--merge a.json a.json` counts once.
    let out = std::process::Command::new(workspace_bin("auditor"))
        .args([
            "report", "--merge", "bad.json", "bad.json", "--format", "json",
        ])
        .current_dir(&s.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", err(&out));
    let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
    let one: Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.join("bad.json")).unwrap()).unwrap();
    assert_eq!(
        merged["summary"]["violating_connections"],
        one["summary"]["violating_connections"]
    );
    assert_eq!(
        merged["coverage"]["watched_seconds"],
        one["coverage"]["watched_seconds"]
    );
}

/// A pooled connection made before the daemon started (an upgrade, a restart, a node
/// where the auditor came after the workload): its documented row is observed, and the
/// report says on what evidence ("active": held open, none opened in the period).
#[test]
fn a_row_whose_only_connection_predates_the_daemon_is_observed_as_active() {
    let _serial = KERNEL.lock().unwrap_or_else(|e| e.into_inner());
    if !kernel_tests_enabled(
        "a_row_whose_only_connection_predates_the_daemon_is_observed_as_active",
    ) {
        return;
    }
    let s = Setup::new("active");
    let scope: Vec<String> = s.lab.hosts.iter().map(|h| format!("{}/32", h.v4)).collect();
    let scope = scope.join(",");
    // Row 26, Tenant Service -> Config Service 9100, held open from before the start.
    let config = serve(
        &s.lab,
        "config",
        &["hold", "60", &format!("accept:{}:9100", s.addr("config"))],
    );
    let tenant = serve(
        &s.lab,
        "tenant",
        &["hold", "60", &format!("tcp:{}:9100", s.addr("config"))],
    );
    let daemon = Daemon::start(&s.args(&["--scope", &scope]), s.dir.join("d.log")).expect("daemon");
    // Found by the BPF socket iterator, the default on a kernel with BTF and iterators.
    let metrics = daemon.metrics();
    assert!(
        metrics.contains("auditor_open_sockets_method{method=\"iterator\"} 1"),
        "{metrics}"
    );
    daemon.stop().expect("clean stop");
    for mut c in [config, tenant] {
        let _ = c.kill();
        let _ = c.wait();
    }

    let out = std::process::Command::new(workspace_bin("auditor"))
        .args(["report", "--format", "json", "--store"])
        .arg(s.dir.join("store.db"))
        .current_dir(&s.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = r["rows"].as_array().expect("rows");
    let row = |n: u64| {
        rows.iter()
            .find(|x| x["rule"] == n)
            .unwrap_or_else(|| panic!("row {n} in {r:#}"))
    };
    let held = row(26);
    assert_eq!(
        (&held["observed"], &held["evidence"], &held["count"]),
        (&true.into(), &"active".into(), &0.into()),
        "{held:#}"
    );
    assert_eq!(held["nodes"], serde_json::json!(["node-a"]), "{held:#}");
    // No other row of the lab is credited, and none as opened: nothing was opened.
    let credited: Vec<&Value> = rows.iter().filter(|x| x["observed"] == true).collect();
    assert_eq!(credited.len(), 1, "{credited:#?}");
    assert!(rows.iter().all(|x| x["evidence"] != "opened"), "{rows:#?}");
}
