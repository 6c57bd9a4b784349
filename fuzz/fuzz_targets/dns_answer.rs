//! Any bytes, as one DNS answer and as a DNS-over-TCP stream cut into segments: the reader
//! gives an answer or an error with a kind, never a panic; every name it gives is printable
//! ASCII; what it names goes into a small name table and is looked up again within its cap.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use auditor::dns::answer;
use auditor::dns::names::{NameLimits, NameTable};
use auditor::dns::tcp::{StreamKey, TcpStreams};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let resolver = IpAddr::from([10, 96, 0, 10]);
    let mut table = NameTable::new(NameLimits { max_names: 64, ..NameLimits::default() });
    let mut check = |message: &[u8]| match answer::read(message) {
        Ok(a) => {
            for r in &a.resolutions {
                assert!(!r.names.is_empty() && r.names.len() <= answer::MAX_CHAIN);
                for n in &r.names {
                    assert!(n.bytes().all(|b| b.is_ascii_graphic()), "{n:?}");
                }
                table.learn(1, r, resolver, 0);
                let _ = table.names_at(1, r.addr, 0);
            }
            assert!(table.len() <= 64);
        }
        Err(e) => assert!(
            matches!(e.kind(), "truncated" | "malformed" | "not_a_response" | "not_a_query"),
            "{e}"
        ),
    };
    check(data);

    // The same bytes as a TCP stream, in segments as long as the first byte says.
    let mut streams = TcpStreams::new(4, 4096);
    let key = StreamKey {
        netns_cookie: 1,
        local: SocketAddr::from(([10, 0, 0, 2], 40000)),
        remote: SocketAddr::from(([10, 96, 0, 10], 53)),
    };
    let cut = data.first().map_or(1, |b| usize::from(*b).max(1));
    let mut seq = 0u32;
    for segment in data.chunks(cut) {
        for message in streams.push(key, seq, segment, true, 0) {
            check(&message);
        }
        seq = seq.wrapping_add(segment.len() as u32);
    }
});
