//! The daemon's user-space cost per DNS answer and per named flow, on the path the daemon
//! takes: the kernel's packet read into an answer record (a CNAME chain to two addresses,
//! as a managed Redis answers), learned into a name table already holding 100,000
//! names, and a flow's lookup of the names its pod resolved.
//! Run: `cargo bench -p auditor --bench dns` (or `cargo xtask bench dns`).

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    str::FromStr,
};

use auditor::{
    capture::{Transport, record::DnsPacketRecord},
    dns::{NameLimits, Names, PacketReader, answer::Resolution},
};
use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::{
    op::{Message, OpCode, Query},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, CNAME},
    },
};

const RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10));

fn answer_bytes() -> Vec<u8> {
    let name = |s: &str| Name::from_str(s).unwrap();
    let mut m = Message::response(0x1234, OpCode::Query);
    m.add_query(Query::query(
        name("redis.voice.svc.cluster.local."),
        RecordType::A,
    ));
    m.add_answers([
        Record::from_rdata(
            name("redis.voice.svc.cluster.local."),
            30,
            RData::CNAME(CNAME(name("x.redis.example."))),
        ),
        Record::from_rdata(
            name("x.redis.example."),
            5,
            RData::A(A(Ipv4Addr::new(203, 0, 113, 7))),
        ),
        Record::from_rdata(
            name("x.redis.example."),
            5,
            RData::A(A(Ipv4Addr::new(203, 0, 113, 8))),
        ),
    ]);
    m.to_vec().unwrap()
}

fn packet(payload: Vec<u8>) -> DnsPacketRecord {
    DnsPacketRecord {
        time_ms: 1_800_000_000_000,
        netns_cookie: 4242,
        cgroup_id: 7,
        tgid: 100,
        server: SocketAddr::new(RESOLVER, 53),
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 5)), 40000),
        transport: Transport::Udp,
        tcp_seq: 0,
        solicited: true,
        wire_len: payload.len() as u32,
        payload,
    }
}

/// A table holding 100,000 names of 1,000 pods: the lookups and inserts pay a full table.
fn full_names() -> Names {
    let mut names = Names::new(NameLimits::default(), vec![RESOLVER.into()]);
    for i in 0..100_000u32 {
        let r = Resolution {
            addr: IpAddr::V4(Ipv4Addr::from(0x0a80_0000 + i)),
            names: vec![format!("svc-{}.ns-{}.example", i % 5_000, i % 50)],
            ttl: 30,
        };
        names
            .table_mut()
            .learn(u64::from(i % 1_000), &r, RESOLVER, 1_800_000_000_000);
    }
    names
}

fn bench(c: &mut Criterion) {
    let bytes = answer_bytes();
    let mut group = c.benchmark_group("dns");
    group.throughput(criterion::Throughput::Elements(1));
    let mut reader = PacketReader::default();
    group.bench_function("read one answer packet", |b| {
        b.iter(|| black_box(reader.read(black_box(&packet(bytes.clone())))))
    });
    let record = reader.read(&packet(bytes.clone())).remove(0).unwrap();
    let mut names = full_names();
    group.bench_function("learn one answer (table at 100,000 names)", |b| {
        b.iter(|| black_box(names.answer(black_box(&record), &|_| false)))
    });
    let addr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    group.bench_function("names of one flow's destination", |b| {
        b.iter(|| black_box(names.names_at(4242, black_box(addr), 1_800_000_001_000, false)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
