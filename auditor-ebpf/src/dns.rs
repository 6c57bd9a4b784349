//! DNS answers. A cgroup skb ingress program on the cgroup root sees every packet delivered
//! to a socket of the node; it keeps those from port 53 (UDP datagrams, TCP segments with
//! data) and copies them into the flow records' ring buffer. The ring is the ordering:
//! this program finishes before the packet is queued to its socket, so the application
//! cannot read the answer, and connect to the address in it, before the answer's record
//! is in the ring ahead of the connect's.
//!
//! The query side (`note_query`, from `connect*`/`sendmsg*` when the port is 53) records
//! which socket asked which server, with the asking task's namespace and cgroup: the
//! softirq the answer arrives in has no task of its own to ask.

use auditor_common::{
    AF_INET, AF_INET6, Counter, DNS_PAYLOAD_MAX, DNS_PORT, DNS_QUERIES_MAX_ENTRIES, DnsPacket,
    DnsQuerier, DnsQueryKey, IPPROTO_TCP, IPPROTO_UDP,
};
use aya_ebpf::{
    helpers::{
        bpf_ktime_get_ns,
        generated::{bpf_get_socket_cookie, bpf_skb_load_bytes},
    },
    macros::{cgroup_skb, map},
    maps::LruHashMap,
    programs::SkBuffContext,
};

use crate::flow::{AUDITOR_EVENTS, count, empty_programs};

/// Pass every packet: audit only.
const PASS: i32 = 1;
/// `skb->protocol` holds the EtherType in network byte order.
const ETH_P_IP_BE: u32 = (0x0800u16).to_be() as u32;
const ETH_P_IPV6_BE: u32 = (0x86DDu16).to_be() as u32;

#[map]
pub static AUDITOR_DNS_QUERIES: LruHashMap<DnsQueryKey, DnsQuerier> =
    LruHashMap::with_max_entries(DNS_QUERIES_MAX_ENTRIES, 0);

/// A socket sent a query to `server` (connect or sendmsg to port 53): remember who asked.
#[inline(always)]
pub fn note_query(ctx: *mut core::ffi::c_void, server: [u8; 16], querier: &DnsQuerier) {
    let key = DnsQueryKey {
        socket_cookie: unsafe { bpf_get_socket_cookie(ctx) },
        server_addr: server,
    };
    // Best effort: a query the map cannot hold makes its answer unsolicited, counted there.
    let _ = AUDITOR_DNS_QUERIES.insert(&key, querier, 0);
}

/// Whether the socket `ctx` belongs to sent a query to `server`.
#[inline(always)]
pub fn queried(ctx: *mut core::ffi::c_void, server: [u8; 16]) -> bool {
    let key = DnsQueryKey {
        socket_cookie: unsafe { bpf_get_socket_cookie(ctx) },
        server_addr: server,
    };
    unsafe { AUDITOR_DNS_QUERIES.get(&key) }.is_some()
}

#[cgroup_skb(ingress)]
pub fn auditor_dns_ingress(ctx: SkBuffContext) -> i32 {
    if !empty_programs() {
        dns_packet(&ctx);
    }
    PASS
}

/// The headers this program reads, found by direct packet access: the network and
/// transport headers are in the linear part of any skb that reached a socket.
struct Headers {
    family: u8,
    transport: u8,
    /// Offset of the transport header.
    l4: usize,
}

#[inline(always)]
fn headers(ctx: &SkBuffContext) -> Option<Headers> {
    let skb = ctx.skb.skb;
    let (data, end) = unsafe { ((*skb).data as usize, (*skb).data_end as usize) };
    let protocol = unsafe { (*skb).protocol };
    let (family, transport, l4) = if protocol == ETH_P_IP_BE {
        if data + 20 > end {
            return None;
        }
        let ihl = (unsafe { *(data as *const u8) } & 0x0f) as usize * 4;
        (AF_INET, unsafe { *((data + 9) as *const u8) }, ihl)
    } else if protocol == ETH_P_IPV6_BE {
        if data + 40 > end {
            return None;
        }
        // Extension headers before the transport are not followed: DNS servers send none.
        (AF_INET6, unsafe { *((data + 6) as *const u8) }, 40)
    } else {
        return None;
    };
    if transport != IPPROTO_UDP && transport != IPPROTO_TCP {
        return None;
    }
    // The first test every packet of the node takes: is it from port 53?
    if data + l4 + 2 > end || l4 < 20 || l4 > 60 {
        return None;
    }
    let sport = u16::from_be(unsafe { core::ptr::read_unaligned((data + l4) as *const u16) });
    if sport != DNS_PORT {
        return None;
    }
    Some(Headers {
        family,
        transport,
        l4,
    })
}

#[inline(always)]
fn dns_packet(ctx: &SkBuffContext) -> Option<()> {
    let h = headers(ctx)?;
    let skb = ctx.skb.skb;
    let (data, end) = unsafe { ((*skb).data as usize, (*skb).data_end as usize) };
    // Ports, and for TCP the sequence number and data offset.
    if data + h.l4 + 14 > end {
        return None;
    }
    let at = |off: usize| data + h.l4 + off;
    let server_port = u16::from_be(unsafe { core::ptr::read_unaligned(at(0) as *const u16) });
    let local_port = u16::from_be(unsafe { core::ptr::read_unaligned(at(2) as *const u16) });
    let (payload_at, tcp_seq) = if h.transport == IPPROTO_TCP {
        let doff = ((unsafe { *(at(12) as *const u8) } >> 4) as usize) * 4;
        let seq = u32::from_be(unsafe { core::ptr::read_unaligned(at(4) as *const u32) });
        (h.l4 + doff, seq)
    } else {
        (h.l4 + 8, 0)
    };
    let len = unsafe { (*skb).len } as usize;
    if len <= payload_at {
        // A handshake or bare ACK: nothing to read.
        return None;
    }
    let wire_len = (len - payload_at) as u32;
    let (server, local) = if h.family == AF_INET {
        if data + 20 > end {
            return None;
        }
        (
            addr4(unsafe { core::ptr::read_unaligned((data + 12) as *const u32) }),
            addr4(unsafe { core::ptr::read_unaligned((data + 16) as *const u32) }),
        )
    } else {
        if data + 40 > end {
            return None;
        }
        (
            unsafe { core::ptr::read_unaligned((data + 8) as *const [u8; 16]) },
            unsafe { core::ptr::read_unaligned((data + 24) as *const [u8; 16]) },
        )
    };
    let key = DnsQueryKey {
        socket_cookie: unsafe { bpf_get_socket_cookie(skb.cast()) },
        server_addr: server,
    };
    // An answer to a socket that asked no query of this server names nothing: counted,
    // never copied, so a flood from port 53 cannot crowd the flow records out of the ring.
    let Some(querier) = unsafe { AUDITOR_DNS_QUERIES.get(&key) }.copied() else {
        count(Counter::DnsUnsolicited);
        return None;
    };
    let Some(mut entry) = AUDITOR_EVENTS.reserve::<DnsPacket>(0) else {
        count(Counter::DnsRingFull);
        return None;
    };
    let copied = if wire_len as usize > DNS_PAYLOAD_MAX {
        count(Counter::DnsTruncated);
        DNS_PAYLOAD_MAX as u32
    } else {
        wire_len
    };
    let packet = entry.as_mut_ptr();
    unsafe {
        // Header fields one by one: the payload is written by the helper in place, never
        // through a 2 KiB value on the 512-byte stack.
        let q = querier;
        (*packet).netns_cookie = q.netns_cookie;
        (*packet).cgroup_id = q.cgroup_id;
        (*packet).ktime_ns = bpf_ktime_get_ns();
        (*packet).server_addr = server;
        (*packet).local_addr = local;
        (*packet).tgid = q.tgid;
        (*packet).tcp_seq = tcp_seq;
        (*packet).wire_len = wire_len;
        (*packet).server_port = server_port;
        (*packet).local_port = local_port;
        (*packet).family = h.family;
        (*packet).transport = h.transport;
        (*packet).solicited = 1;
        (*packet)._pad1 = 0;
        (*packet)._pad2 = 0;
        // 1..=DNS_PAYLOAD_MAX in a form the verifier can bound (a mask, not a compare
        // LLVM may fold away): `copied` is at least 1, since the payload is not empty.
        const _: () = assert!(DNS_PAYLOAD_MAX.is_power_of_two());
        let n = ((copied - 1) & (DNS_PAYLOAD_MAX as u32 - 1)) + 1;
        let ok = bpf_skb_load_bytes(
            skb.cast(),
            payload_at as u32,
            (&raw mut (*packet).payload).cast(),
            n,
        ) == 0;
        (*packet).copied = if ok { n as u16 } else { 0 };
    }
    entry.submit(0);
    count(Counter::DnsPackets);
    Some(())
}

#[inline(always)]
fn addr4(ip: u32) -> [u8; 16] {
    crate::key::v4(ip)
}
