//! The report's DNS names (issue 26): per documented service the names it was reached by,
//! undocumented egress by name, egress by bare address, when and from which resolver each
//! name was learned; and "unknown", never "none", where no egress carries a DNS mark.
//! Stores are written through the Store API as the daemon writes them.

use std::net::IpAddr;

use auditor::{
    edge::{Direction, Edge, Endpoint, Transport},
    model::{Resolution, Verdict},
    report::{self, Report},
    store::{Batch, CoverageUpdate, Store},
};

const ALLOWLIST: &str = include_str!("../../allowlist/voice-microservices.yaml");
const RESOLVER: &str = "10.96.0.10";

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "auditor-report-names-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// GES's egress to `dst`, `count` connections.
fn egress(verdict: Verdict, dst: Endpoint, count: u64) -> Edge {
    Edge {
        verdict,
        rules: if verdict == Verdict::Allowed {
            vec![24]
        } else {
            vec![]
        },
        transport: Transport::Tcp,
        direction: Direction::Egress,
        documented: None,
        platform: None,
        mesh_leg: None,
        src: Endpoint {
            service: Some("GES".into()),
            ..Endpoint::default()
        },
        dst,
        process: None,
        count,
        first_seen: 1_000,
        last_seen: 2_000_000,
    }
}

fn to(
    service: Option<&str>,
    addr: &str,
    port: u16,
    domain: Option<&str>,
    resolution: Option<Resolution>,
) -> Endpoint {
    Endpoint {
        service: service.map(Into::into),
        addr: Some(addr.parse().unwrap()),
        port: Some(port),
        domain: domain.map(Into::into),
        resolution,
        ..Endpoint::default()
    }
}

/// One node's hour. With `marks`, DNS was captured: Redis reached by two names, an
/// undocumented name, a bare address outside, and two bare ones the list leaves out (a
/// pod's address, loopback). Without, the same traffic as an older daemon stores it.
fn store(path: &std::path::Path, node: &str, marks: bool) {
    let mut s = Store::open(path).unwrap();
    let list = allowlist::file::parse(ALLOWLIST, "a.yaml").unwrap();
    s.set_allowlist(&allowlist::file::to_json(&list)).unwrap();
    let dns = marks.then_some(Resolution::Dns);
    let bare = marks.then_some(Resolution::Bare);
    let named = |d: &'static str| marks.then_some(d);
    let mut b = Batch::default();
    let redis = |addr: &str, name: &'static str, count: u64| {
        egress(
            Verdict::Allowed,
            to(Some("Redis"), addr, 6379, named(name), dns),
            count,
        )
    };
    b.add_edge(redis("10.0.9.1", "a.redis.example", 12));
    // Another source by the same name: its answers are the same, not counted again.
    let mut tenant = redis("10.0.9.1", "a.redis.example", 1);
    tenant.src.service = Some("Tenant Service".into());
    b.add_edge(tenant);
    b.add_edge(redis("10.0.9.2", "b.redis.example", 3));
    b.add_edge(egress(
        Verdict::UndocumentedEgress,
        to(None, "198.51.100.7", 443, named("evil.example"), dns),
        4,
    ));
    b.add_edge(egress(
        Verdict::UndocumentedEgress,
        to(None, "203.0.113.9", 443, None, bare),
        2,
    ));
    let mut pod = to(None, "10.244.1.9", 8080, None, bare);
    pod.namespace = Some("voice".into());
    pod.pod = Some("tenant-1".into());
    b.add_edge(egress(Verdict::UndocumentedEgress, pod, 1));
    b.add_edge(egress(
        Verdict::UndocumentedEgress,
        to(None, "127.0.0.1", 9999, None, bare),
        1,
    ));
    if marks {
        let resolver: IpAddr = RESOLVER.parse().unwrap();
        b.add_learned("a.redis.example", resolver, 500);
        b.add_learned("a.redis.example", resolver, 900_000);
        b.add_learned("evil.example", resolver, 800);
    }
    b.coverage = Some(CoverageUpdate {
        session_start_ms: 0,
        start_ms: 0,
        end_ms: 3_600_000,
        ..Default::default()
    });
    s.commit(node, &b).unwrap();
}

fn report_of(name: &str, node: &str, marks: bool) -> Report {
    let d = dir(name);
    store(&d.join("s.db"), node, marks);
    let r = report::from_store(
        &Store::open_existing(&d.join("s.db")).unwrap(),
        None,
        None,
        None,
    )
    .unwrap();
    std::fs::remove_dir_all(d).unwrap();
    r
}

#[test]
fn names_are_listed_per_service_undocumented_and_bare_with_their_learning() {
    let r = report_of("named", "node-a", true);
    assert_eq!(r.schema, report::SCHEMA);
    let n = r.names.as_ref().expect("a store report has names");
    assert_eq!(n.nodes, vec!["node-a".to_string()]);
    assert!(
        n.statement.starts_with("DNS names observed on node-a"),
        "{}",
        n.statement
    );

    assert_eq!(n.services.len(), 1, "{:?}", n.services);
    let redis = &n.services[0];
    assert_eq!(redis.service, "Redis");
    let names: Vec<(&str, u64)> = redis
        .domains
        .iter()
        .map(|d| (d.domain.as_str(), d.seen.count))
        .collect();
    assert_eq!(names, vec![("a.redis.example", 13), ("b.redis.example", 3)]);
    let a = &redis.domains[0];
    assert_eq!(a.learned.len(), 1, "{:?}", a.learned);
    assert_eq!(a.learned[0].resolver.to_string(), RESOLVER);
    assert_eq!(a.learned[0].answers, 2);
    assert_eq!(
        (a.learned[0].first_learned, a.learned[0].last_learned),
        (500, 900_000)
    );
    assert!(redis.domains[1].learned.is_empty());

    assert_eq!(n.undocumented.len(), 1, "{:?}", n.undocumented);
    let u = &n.undocumented[0];
    assert_eq!(
        (u.verdict, u.src.as_str(), u.domain.as_str(), u.dst.as_str()),
        (
            Verdict::UndocumentedEgress,
            "GES",
            "evil.example",
            "198.51.100.7"
        )
    );
    assert_eq!((u.port, u.seen.count, u.learned.len()), (443, 4, 1));

    // Only the bare address outside: not the pod's, not loopback.
    let bare: Vec<(String, u64)> = n
        .bare
        .iter()
        .map(|b| (b.addr.to_string(), b.seen.count))
        .collect();
    assert_eq!(bare, vec![("203.0.113.9".to_string(), 2)]);
}

#[test]
fn every_format_shows_the_names_and_the_violation_by_name() {
    let mut r = report_of("formats", "node-a", true);
    report::seal(&mut r);

    let md = report::markdown::render(&r);
    assert!(md.contains("## DNS names"), "{md}");
    assert!(md.contains("| Redis | a.redis.example | 13 |"), "{md}");
    assert!(
        md.contains("from 10.96.0.10 on node-a: 2 answer\\(s\\)"),
        "{md}"
    );
    assert!(
        md.contains("| evil.example | 198.51.100.7 | tcp/443 | 4 |"),
        "{md}"
    );
    assert!(md.contains("| 203.0.113.9 | - | tcp/443 | 2 |"), "{md}");
    assert!(md.contains("| 198.51.100.7 \\(evil.example\\) |"), "{md}");

    let html = report::html::render(&r);
    for want in [
        "<table id=\"names-services\">",
        "<td>a.redis.example</td><td>13</td>",
        "<td>evil.example</td><td>198.51.100.7</td>",
        "<table id=\"names-bare\">",
        "<td>203.0.113.9</td>",
        "<td>198.51.100.7 (evil.example)</td>",
        "from 10.96.0.10 on node-a: 2 answer(s)",
    ] {
        assert!(html.contains(want), "{want} not in {html}");
    }

    let junit = report::junit::render(&r);
    for want in [
        "<property name=\"names_by_service\" value=\"Redis: a.redis.example (13 connection(s); learned from 10.96.0.10 on node-a: 2 answer(s)",
        "<property name=\"undocumented_egress_by_name\" value=\"undocumented_egress GES -&gt; evil.example (198.51.100.7) tcp/443: 4 connection(s)",
        "<property name=\"egress_by_bare_address\" value=\"undocumented_egress GES -&gt; 203.0.113.9 tcp/443: 2 connection(s)\"/>",
        "name=\"undocumented_egress GES -&gt; 198.51.100.7 (evil.example) tcp/443\"",
    ] {
        assert!(junit.contains(want), "{want} not in {junit}");
    }

    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(
        json["names"]["services"][0]["domains"][0]["domain"],
        "a.redis.example"
    );
    assert_eq!(
        json["names"]["undocumented"][0]["learned"][0]["resolver"],
        RESOLVER
    );
    assert_eq!(json["names"]["bare"][0]["addr"], "203.0.113.9");
    // The violation itself carries the name and the mark.
    let v = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["dst"]["addr"] == "198.51.100.7")
        .unwrap();
    assert_eq!(
        (&v["dst"]["domain"], &v["dst"]["resolution"]),
        (&"evil.example".into(), &"dns".into())
    );
    // Written and read back, it is the same report and its digest still holds.
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
    assert_eq!(report::compute_digest(&back), r.digest.clone().unwrap());
}

#[test]
fn without_dns_marks_names_are_unknown_not_none() {
    let r = report_of("unmarked", "node-a", false);
    let n = r.names.as_ref().unwrap();
    assert!(n.nodes.is_empty());
    assert!(
        n.statement.starts_with("DNS names unknown:"),
        "{}",
        n.statement
    );
    // Nothing is listed, not even the bare-looking edges: bare was never observed.
    assert!(n.services.is_empty() && n.undocumented.is_empty() && n.bare.is_empty());

    let md = report::markdown::render(&r);
    assert!(md.contains("## DNS names\n\nDNS names unknown:"), "{md}");
    assert!(!md.contains("Egress by bare address"), "{md}");
    let html = report::html::render(&r);
    assert!(
        html.contains("<p id=\"names\">DNS names unknown:"),
        "{html}"
    );
    assert!(!html.contains("names-bare"), "{html}");
    let junit = report::junit::render(&r);
    assert!(
        junit.contains("<property name=\"names\" value=\"DNS names unknown:"),
        "{junit}"
    );
    assert!(!junit.contains("egress_by_bare_address"), "{junit}");
}

#[test]
fn merged_reports_unite_names_and_say_where_they_are_unknown() {
    let mut a = report_of("merge-a", "node-a", true);
    let mut b = report_of("merge-b", "node-b", true);
    let mut c = report_of("merge-c", "node-c", false);
    // A report of the layout before names (auditor-report/4) still merges: its node's
    // names are unknown.
    c.schema = "auditor-report/4".into();
    c.names = None;
    for r in [&mut a, &mut b, &mut c] {
        report::seal(r);
    }
    let m = report::merge(vec![
        ("a.json".into(), a),
        ("b.json".into(), b),
        ("c.json".into(), c),
    ])
    .unwrap();
    assert_eq!(m.schema, report::SCHEMA);
    let n = m.names.unwrap();
    assert_eq!(n.nodes, vec!["node-a".to_string(), "node-b".to_string()]);
    let a = &n.services[0].domains[0];
    assert_eq!((a.domain.as_str(), a.seen.count), ("a.redis.example", 26));
    assert_eq!(
        a.seen.nodes,
        vec!["node-a".to_string(), "node-b".to_string()]
    );
    assert_eq!(a.learned.len(), 2, "one per node: {:?}", a.learned);
    assert_eq!((n.undocumented[0].seen.count, n.bare[0].seen.count), (8, 4));
    assert!(n.statement.contains("Unknown on node-c"), "{}", n.statement);
}
