//! Every verdict, table-driven, with the bundled Voice Microservices allowlist and a
//! small inventory: what a user checks when they ask "why was this flagged?".

use std::net::IpAddr;

use allowlist::{Overrides, file, overrides};
use auditor::{
    capture::{Direction, FlowRecord, Transport},
    identity::{Inventory, Resolver},
    model::{FlowView, Verdict},
    verdict::{Judge, Twins, render::verdict_json},
};

const ALLOWLIST: &str = include_str!("../../allowlist/voice-microservices.yaml");

const INVENTORY: &str = r#"
version: 1
services:
  Tenant Service:
    addresses: [10.0.1.0/24]
  Config Service:
    addresses: [10.0.2.0/24]
  Genesys Engagement Service:
    addresses: [10.0.3.10]
  ORS:
    addresses: [10.0.4.0/24]
  Redis:
    addresses: [10.0.5.0/24]
  Voice SIP Proxy Service:
    addresses: [10.0.6.0/24, "fd00:6::/64"]
  WebRTC Media Service:
    addresses: [10.0.7.0/24, "fd00:7::/64"]
  Voice RQ Service:
    addresses: [10.0.8.0/24]
    processes: [rq-service]
  FrontEnd Service:
    addresses: [10.0.9.0/24]
  Voicemail:
    addresses: [10.0.10.0/24]
    cgroups: ["/kubepods/*/voicemail-*"]
  Dial Plan Service:
    addresses: [10.0.10.128/25]
externals:
  Object storage:
    addresses: [203.0.113.0/28]
mesh_upstreams:
  - {port: 9100, service: Config Service}
  - {port: 9101, service: FrontEnd Service}
"#;

fn judge_with(overrides_yaml: &str) -> Judge {
    let list = file::parse(ALLOWLIST, "voice-microservices.yaml").unwrap();
    let o = if overrides_yaml.is_empty() {
        Overrides::default()
    } else {
        overrides::parse(overrides_yaml, "o.yaml", &list).unwrap()
    };
    let inv = Inventory::parse(INVENTORY, "inventory.yaml").unwrap();
    Judge::new(list, &o, Resolver::new(vec![Box::new(inv)]))
}

fn flow(transport: Transport, src: Option<&str>, dst: &str, port: u16) -> FlowRecord {
    FlowRecord {
        time: Some("2026-11-26T00:00:00Z".into()),
        new: true,
        transport,
        direction: Direction::Egress,
        src_addr: src.map(|s| s.parse().unwrap()),
        dst_addr: dst.parse().unwrap(),
        dst_port: port,
        count: 1,
        first_seen: None,
        pid: 1,
        tgid: 1,
        uid: 0,
        comm: String::new(),
        cgroup_id: 0,
        netns_cookie: 0,
        hook: String::new(),
        cgroup: None,
        netns_addrs: Vec::new(),
    }
}

fn tcp(src: &str, dst: &str, port: u16) -> FlowRecord {
    flow(Transport::Tcp, Some(src), dst, port)
}
fn udp(src: &str, dst: &str, port: u16) -> FlowRecord {
    flow(Transport::Udp, Some(src), dst, port)
}

struct Case {
    name: &'static str,
    flow: FlowRecord,
    verdict: Verdict,
    rules: &'static [u32],
    src: Option<&'static str>,
    dst: Option<&'static str>,
}

fn run(judge: &Judge, cases: Vec<Case>) {
    for c in cases {
        let j = judge.judge(&FlowView::of(&c.flow));
        assert_eq!(j.verdict, c.verdict, "{}: verdict", c.name);
        assert_eq!(j.rules(), c.rules.to_vec(), "{}: rules", c.name);
        assert_eq!(
            j.src.as_ref().map(|r| r.service.as_ref()),
            c.src,
            "{}: source",
            c.name
        );
        assert_eq!(
            j.dst.as_ref().map(|r| r.service.as_ref()),
            c.dst,
            "{}: destination",
            c.name
        );
    }
}

#[test]
fn every_verdict_from_the_bundled_allowlist() {
    let j = judge_with("");
    run(
        &j,
        vec![
            Case {
                name: "row 10: GES -> ORS 9098",
                flow: tcp("10.0.3.10", "10.0.4.5", 9098),
                verdict: Verdict::Allowed,
                rules: &[10],
                src: Some("Genesys Engagement Service"),
                dst: Some("ORS"),
            },
            Case {
                name: "row 10's text: GES -> Redis 6379 has no row",
                flow: tcp("10.0.3.10", "10.0.5.5", 6379),
                verdict: Verdict::UndocumentedEgress,
                rules: &[],
                src: Some("Genesys Engagement Service"),
                dst: Some("Redis"),
            },
            Case {
                name: "row 57: SIP/UDP 5070",
                flow: udp("10.0.6.1", "10.0.7.1", 5070),
                verdict: Verdict::Allowed,
                rules: &[57],
                src: Some("Voice SIP Proxy Service"),
                dst: Some("WebRTC Media Service"),
            },
            Case {
                name: "row 57 over IPv6",
                flow: udp("fd00:6::1", "fd00:7::1", 5070),
                verdict: Verdict::Allowed,
                rules: &[57],
                src: Some("Voice SIP Proxy Service"),
                dst: Some("WebRTC Media Service"),
            },
            Case {
                name: "row 57 over TCP",
                flow: tcp("10.0.6.1", "10.0.7.1", 5070),
                verdict: Verdict::ProtocolDrift,
                rules: &[57],
                src: Some("Voice SIP Proxy Service"),
                dst: Some("WebRTC Media Service"),
            },
            Case {
                name: "row 26: Tenant -> Config 9100",
                flow: tcp("10.0.1.7", "10.0.2.7", 9100),
                verdict: Verdict::Allowed,
                rules: &[26],
                src: Some("Tenant Service"),
                dst: Some("Config Service"),
            },
            Case {
                name: "row 26 on 9200",
                flow: tcp("10.0.1.7", "10.0.2.7", 9200),
                verdict: Verdict::PortDrift,
                rules: &[26],
                src: Some("Tenant Service"),
                dst: Some("Config Service"),
            },
            Case {
                name: "row 6 documented 6379",
                flow: tcp("10.0.8.1", "10.0.5.1", 6379),
                verdict: Verdict::Allowed,
                rules: &[6],
                src: Some("Voice RQ Service"),
                dst: Some("Redis"),
            },
            Case {
                name: "ORS -> Redis matches rows 45-47",
                flow: tcp("10.0.4.1", "10.0.5.1", 6379),
                verdict: Verdict::Allowed,
                rules: &[45, 46, 47],
                src: Some("ORS"),
                dst: Some("Redis"),
            },
            Case {
                name: "unknown destination",
                flow: tcp("10.0.1.7", "198.51.100.9", 443),
                verdict: Verdict::UnknownDestination,
                rules: &[],
                src: Some("Tenant Service"),
                dst: None,
            },
            Case {
                name: "unknown source",
                flow: tcp("192.0.2.1", "10.0.2.7", 9100),
                verdict: Verdict::UnknownSource,
                rules: &[],
                src: None,
                dst: Some("Config Service"),
            },
            Case {
                name: "unbound UDP with no namespace info",
                flow: flow(Transport::Udp, None, "10.0.7.1", 5070),
                verdict: Verdict::UnknownSource,
                rules: &[],
                src: None,
                dst: Some("WebRTC Media Service"),
            },
            Case {
                name: "row 24: no port documented, none overridden: unverified but allowed",
                flow: tcp("10.0.10.3", "203.0.113.4", 443),
                verdict: Verdict::Allowed,
                rules: &[24],
                src: Some("Voicemail"),
                dst: Some("Object storage"),
            },
            Case {
                name: "longest prefix wins: 10.0.10.200 is Dial Plan, not Voicemail",
                flow: tcp("10.0.10.200", "10.0.2.7", 9100),
                verdict: Verdict::Allowed,
                rules: &[22],
                src: Some("Dial Plan Service"),
                dst: Some("Config Service"),
            },
        ],
    );
}

#[test]
fn configurable_ports_use_the_deployment_overrides() {
    let j = judge_with("services:\n  Redis: [6380]\n");
    run(
        &j,
        vec![
            Case {
                name: "row 6 on the overridden 6380",
                flow: tcp("10.0.8.1", "10.0.5.1", 6380),
                verdict: Verdict::Allowed,
                rules: &[6],
                src: Some("Voice RQ Service"),
                dst: Some("Redis"),
            },
            Case {
                name: "row 6 on the documented 6379 is now drift",
                flow: tcp("10.0.8.1", "10.0.5.1", 6379),
                verdict: Verdict::PortDrift,
                rules: &[6],
                src: Some("Voice RQ Service"),
                dst: Some("Redis"),
            },
        ],
    );
    let rec = tcp("10.0.8.1", "10.0.5.1", 6379);
    let v = verdict_json(&j, &j.judge(&FlowView::of(&rec)), &rec);
    assert_eq!(v["documented"]["ports"], serde_json::json!(["6380"]), "{v}");
    assert_eq!(
        (&v["verdict"], &v["rules"][0]),
        (&"port_drift".into(), &6.into())
    );
}

#[test]
fn mesh_upstreams_on_loopback_are_the_service_behind_them() {
    let j = judge_with("");
    // Inside the Tenant pod: 127.0.0.1 -> 127.0.0.1:9100 is Tenant -> Config Service.
    let mut rec = tcp("127.0.0.1", "127.0.0.1", 9100);
    rec.netns_addrs = vec!["10.0.1.7".parse().unwrap()];
    run(
        &j,
        vec![
            Case {
                name: "mesh to Config",
                flow: rec.clone(),
                verdict: Verdict::Allowed,
                rules: &[26],
                src: Some("Tenant Service"),
                dst: Some("Config Service"),
            },
            Case {
                name: "mesh to FrontEnd",
                flow: {
                    let mut r = rec.clone();
                    r.dst_port = 9101;
                    r
                },
                verdict: Verdict::Allowed,
                rules: &[31],
                src: Some("Tenant Service"),
                dst: Some("FrontEnd Service"),
            },
            Case {
                name: "a loopback port that is no upstream",
                flow: {
                    let mut r = rec.clone();
                    r.dst_port = 9999;
                    r
                },
                verdict: Verdict::UnknownDestination,
                rules: &[],
                src: Some("Tenant Service"),
                dst: None,
            },
        ],
    );
    let v = verdict_json(&j, &j.judge(&FlowView::of(&rec)), &rec);
    assert_eq!(v["dst"]["via"], "mesh-upstream:9100");
    assert_eq!(v["src"]["via"], "netns");
}

#[test]
fn loopback_addresses_listed_in_the_inventory_are_honoured() {
    // A deployment whose services listen on their own loopback addresses (one host, or
    // tests): the entries are taken as written, and mesh upstreams still come first.
    let list = file::parse(ALLOWLIST, "voice-microservices.yaml").unwrap();
    let inv = Inventory::parse(
        "version: 1\nservices:\n  Tenant Service: {addresses: [127.0.1.1]}\n  \
         Config Service: {addresses: [127.0.1.2]}\n  FrontEnd Service: {addresses: [\"::1\"]}\n\
         mesh_upstreams:\n  - {port: 9101, service: FrontEnd Service}\n",
        "inventory.yaml",
    )
    .unwrap();
    let j = Judge::new(
        list,
        &Overrides::default(),
        Resolver::new(vec![Box::new(inv)]),
    );
    run(
        &j,
        vec![
            Case {
                name: "loopback service to loopback service",
                flow: tcp("127.0.1.1", "127.0.1.2", 9100),
                verdict: Verdict::Allowed,
                rules: &[26],
                src: Some("Tenant Service"),
                dst: Some("Config Service"),
            },
            Case {
                name: "a declared upstream port wins over the address entries",
                flow: tcp("127.0.1.1", "127.0.1.2", 9101),
                verdict: Verdict::Allowed,
                rules: &[31],
                src: Some("Tenant Service"),
                dst: Some("FrontEnd Service"),
            },
            Case {
                name: "loopback not listed stays unknown",
                flow: tcp("127.0.1.1", "127.0.9.9", 9100),
                verdict: Verdict::UnknownDestination,
                rules: &[],
                src: Some("Tenant Service"),
                dst: None,
            },
        ],
    );
}

#[test]
fn cgroup_then_process_then_address_for_the_source() {
    let j = judge_with("");
    let mut by_process = tcp("10.0.1.7", "10.0.5.1", 6379); // Tenant's address...
    by_process.comm = "rq-service".into(); // ...but the RQ process
    let mut by_cgroup = by_process.clone();
    by_cgroup.cgroup = Some("/kubepods/burstable/voicemail-7d9f".into());
    run(
        &j,
        vec![
            Case {
                name: "process beats address",
                flow: by_process,
                verdict: Verdict::Allowed,
                rules: &[6],
                src: Some("Voice RQ Service"),
                dst: Some("Redis"),
            },
            Case {
                name: "cgroup beats process",
                flow: by_cgroup,
                verdict: Verdict::Allowed,
                rules: &[29],
                src: Some("Voicemail"),
                dst: Some("Redis"),
            },
        ],
    );
}

#[test]
fn passive_opens_are_judged_from_the_receiver_and_twins_count_once() {
    let j = judge_with("");
    let egress = tcp("10.0.1.7", "10.0.2.7", 9100);
    let mut ingress = egress.clone();
    ingress.direction = Direction::Ingress;
    // The receiving side alone judges the same way.
    let v = j.judge(&FlowView::of(&ingress));
    assert_eq!((v.verdict, v.rules()), (Verdict::Allowed, vec![26]));
    assert_eq!(v.dst.unwrap().service.as_ref(), "Config Service");
    // Seen at both ends on one node: one connection.
    let mut twins = Twins::default();
    assert!(!twins.is_twin(&FlowView::of(&egress)));
    assert!(twins.is_twin(&FlowView::of(&ingress)));
    assert!(
        !twins.is_twin(&FlowView::of(&egress)),
        "repeat records of the owning side still count"
    );
    let other: IpAddr = "10.0.1.8".parse().unwrap();
    let mut from_elsewhere = ingress.clone();
    from_elsewhere.src_addr = Some(other);
    assert!(!twins.is_twin(&FlowView::of(&from_elsewhere)));
}

#[test]
fn inventory_errors_say_file_line_column() {
    let e = Inventory::parse(
        "version: 1\nservices:\n  A:\n    adresses: [10.0.0.1]\n",
        "inv.yaml",
    )
    .unwrap_err();
    assert_eq!((e.line, e.column), (4, 5), "{e}");
    assert!(
        e.to_string().starts_with("inv.yaml:4:5:") && e.message.contains("adresses"),
        "{e}"
    );
    let e = Inventory::parse(
        "version: 1\nservices:\n  A:\n    addresses: [10.0.0.300]\n",
        "inv.yaml",
    )
    .unwrap_err();
    assert!(e.message.contains("not an IP address"), "{e}");
    let e = Inventory::parse("version: 1\nservices:\n  A:\n    addresses: [10.0.0.0/24]\n  B:\n    addresses: [10.0.0.9/24]\n", "inv.yaml").unwrap_err();
    assert!(e.message.contains("already declared for A"), "{e}");
    let e = Inventory::parse(
        "version: 1\nservices:\n  A:\n    processes: [x]\n  B:\n    processes: [x]\n",
        "inv.yaml",
    )
    .unwrap_err();
    assert!(e.message.contains("both A and B"), "{e}");
    let e = Inventory::parse(
        "version: 1\nmesh_upstreams:\n  - {port: 1, service: A}\n  - {port: 1, service: B}\n",
        "inv.yaml",
    )
    .unwrap_err();
    assert!(e.message.contains("declared twice") && e.line == 4, "{e}");
}
