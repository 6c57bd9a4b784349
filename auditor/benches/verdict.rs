//! The per-flow verdict path (resolve both ends + policy lookup) with the bundled 60-row
//! allowlist and an inventory of 10,000 entries. Target: <= 300 ns median per flow.
//! And the daemon's whole user-space path per flow record: the ring buffer's bytes
//! decoded, made a record, judged, made an edge and serialised as its JSON event.
//! Run: `cargo bench -p auditor --bench verdict` (or `cargo xtask bench verdict`).

use std::{fmt::Write, hint::black_box, net::Ipv4Addr};

use allowlist::{Overrides, file};
use auditor::{
    capture::Direction,
    identity::{Inventory, Resolver},
    model::FlowView,
    verdict::Judge,
};
use criterion::{Criterion, criterion_group, criterion_main};

const ALLOWLIST: &str = include_str!("../../allowlist/voice-microservices.yaml");
const ENTRIES: usize = 10_000;

/// 10,000 address entries spread over the documented services: per-pod /32s (most of
/// them, as a Kubernetes-derived inventory would have) and a /24 per service.
fn inventory(services: &[String]) -> (String, Vec<Vec<Ipv4Addr>>) {
    let mut yaml = String::from("version: 1\nservices:\n");
    let mut addrs: Vec<Vec<Ipv4Addr>> = vec![Vec::new(); services.len()];
    let n = services.len();
    for (i, name) in services.iter().enumerate() {
        // Exactly ENTRIES in all: one /24 and the rest /32s, the remainder spread evenly.
        let count = ENTRIES / n + usize::from(i < ENTRIES % n);
        let _ = write!(
            yaml,
            "  {name:?}:\n    addresses: [\"10.{}.0.0/24\"",
            100 + i
        );
        for k in 0..count - 1 {
            let a = Ipv4Addr::new(10, i as u8, (k / 250) as u8, (k % 250 + 1) as u8);
            let _ = write!(yaml, ", \"{a}\"");
            addrs[i].push(a);
        }
        yaml.push_str("]\n");
    }
    (yaml, addrs)
}

fn bench(c: &mut Criterion) {
    let list = file::parse(ALLOWLIST, "voice-microservices.yaml").expect("allowlist");
    let services: Vec<String> = list.services.iter().map(|s| s.name.clone()).collect();
    let (yaml, addrs) = inventory(&services);
    let inv = Inventory::parse(&yaml, "bench-inventory.yaml").expect("inventory");
    // Flows along every documented connection (allowed), the same on a wrong port (drift),
    // and to an unknown address: the daemon's usual mix.
    let mut flows = Vec::new();
    for (i, conn) in list.connections.iter().enumerate() {
        let s = services.iter().position(|n| *n == conn.source).unwrap();
        let d = services
            .iter()
            .position(|n| *n == conn.destination)
            .unwrap();
        let port = conn.ports.listed().first().map_or(443, |p| p.first);
        let src = addrs[s][i % addrs[s].len()];
        let dst = addrs[d][(i * 7) % addrs[d].len()];
        // A row on both transports is driven on its first.
        let transport = conn.transport.list()[0];
        flows.push((transport, src, dst, port));
        flows.push((transport, src, dst, port.wrapping_add(1)));
        flows.push((
            transport,
            src,
            Ipv4Addr::new(192, 0, 2, (i % 250) as u8),
            port,
        ));
    }
    let judge = Judge::new(
        list,
        &Overrides::default(),
        Resolver::new(vec![Box::new(inv)]),
    );
    let views: Vec<FlowView<'_>> = flows
        .iter()
        .map(|&(transport, src, dst, port)| FlowView {
            transport,
            direction: Direction::Egress,
            src_addr: Some(src.into()),
            dst_addr: dst.into(),
            dst_port: port,
            comm: "",
            cgroup: None,
            netns_addrs: &[],
            dst_names: &[],
            resolution: None,
        })
        .collect();
    let mut group = c.benchmark_group("verdict");
    group.throughput(criterion::Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("judge_one_flow_60_rows_10k_inventory", |b| {
        b.iter(|| {
            i = (i + 1) % views.len();
            black_box(judge.judge(black_box(&views[i])).verdict)
        })
    });
    // The same flows as the kernel hands them over: raw ring-buffer records.
    let clock = auditor::capture::record::Clock::now();
    let raw: Vec<Vec<u8>> = flows
        .iter()
        .map(|&(transport, src, dst, port)| ring_bytes(transport, src, dst, port))
        .collect();
    let mut k = 0;
    group.bench_function("flow_record_decoded_judged_and_serialised", |b| {
        b.iter(|| {
            k = (k + 1) % raw.len();
            let ev = auditor::capture::record::decode(black_box(&raw[k])).expect("decodes");
            let rec = auditor::capture::record::FlowRecord::from_event(&ev, true, &clock)
                .expect("a flow record");
            let view = FlowView::of(&rec);
            let j = judge.judge(&view);
            let edge = auditor::verdict::render::edge(&judge, &j, &rec, 0, 0);
            black_box(serde_json::to_vec(&edge).expect("serialises"))
        })
    });
    group.finish();
}

/// One flow record as the kernel writes it into the ring buffer.
fn ring_bytes(
    transport: auditor::capture::Transport,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    port: u16,
) -> Vec<u8> {
    let mut local = [0u8; 16];
    local[..4].copy_from_slice(&src.octets());
    let mut remote = [0u8; 16];
    remote[..4].copy_from_slice(&dst.octets());
    let ev = auditor_common::FlowEvent {
        key: auditor_common::FlowKey {
            local_addr: local,
            remote_addr: remote,
            netns_cookie: 4096,
            cgroup_id: 7,
            tgid: 4242,
            port,
            family: auditor_common::AF_INET,
            transport: match transport {
                auditor::capture::Transport::Tcp => auditor_common::IPPROTO_TCP,
                auditor::capture::Transport::Udp => auditor_common::IPPROTO_UDP,
            },
            direction: auditor_common::DIRECTION_EGRESS,
            _pad1: 0,
            _pad2: 0,
            _pad4: 0,
        },
        first_seen_ns: 1_000,
        last_seen_ns: 2_000,
        count: 3,
        pid: 4242,
        uid: 0,
        comm: *b"voice-agent\0\0\0\0\0",
        hook: auditor_common::HOOK_TCP_ACTIVE,
        flags: 0,
        _pad: 0,
        epoch: 1,
    };
    // SAFETY: FlowEvent is repr(C) plain data with explicit padding fields.
    unsafe {
        std::slice::from_raw_parts(
            (&raw const ev).cast::<u8>(),
            std::mem::size_of::<auditor_common::FlowEvent>(),
        )
    }
    .to_vec()
}

criterion_group!(benches, bench);
criterion_main!(benches);
