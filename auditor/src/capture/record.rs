//! The flow record: what `auditor capture` prints (one JSON object per line) and what
//! `auditor replay` reads back. Field names are a stable interface (README "Flow records").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use auditor_common::Transport;
use auditor_common::{AF_INET, DIRECTION_INGRESS, FlowEvent, Hook};
use serde::{Deserialize, Serialize};

/// Which side of the connection this node's process is on. The values are ECS's
/// `network.direction` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// This node's process opened the connection (or sent the datagram).
    Egress,
    /// This node's process accepted it.
    Ingress,
}

/// One flow record. A flow is every connection between the same two endpoints by the same
/// process, the client's ephemeral port aside; `count` says how many this record covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Wall-clock time (RFC 3339, UTC) no earlier than the latest connection this record
    /// covers: a flow's first record of an epoch is timed by that connection, the record
    /// its epoch's drain delivers by the epoch's end. Capture always sets it; a hand-written record for `auditor replay` may leave it
    /// out when the recording has `watch` lines, and is then timed at the end of the
    /// watch span it came in (never "now").
    #[serde(default)]
    pub time: Option<String>,
    /// True on a flow's first record after an epoch (`--record-interval`) without any of
    /// its connections, or since the capture started.
    #[serde(default)]
    pub new: bool,
    pub transport: Transport,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// Connecting side. `null` when the kernel did not know it yet (unbound UDP).
    #[serde(default)]
    pub src_addr: Option<IpAddr>,
    pub dst_addr: IpAddr,
    pub dst_port: u16,
    #[serde(default = "one")]
    pub count: u64,
    #[serde(default)]
    pub first_seen: Option<String>,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub tgid: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub comm: String,
    #[serde(default)]
    pub cgroup_id: u64,
    #[serde(default)]
    pub netns_cookie: u64,
    /// Which kernel hook saw it: tcp_active, tcp_passive, udp_connect, udp_sendmsg,
    /// udp_recvmsg (a datagram received: ingress), sweep (delivered by the drain of an
    /// epoch's flow map with no ring record of the epoch to name the process: the ring
    /// buffer was full), or existing (found already open by the walk of the
    /// node's sockets at start and every --active-interval; `count` is then how many of
    /// the flow's connections were open, and a listener has no src_addr and count 0).
    #[serde(default)]
    pub hook: String,
    /// cgroup v2 path of the process (from `cgroup_id`), when it could be resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Non-loopback addresses of the process's network namespace; given when the flow's
    /// own local address is loopback or unknown, so the namespace can identify it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub netns_addrs: Vec<IpAddr>,
}

fn default_direction() -> Direction {
    Direction::Egress
}
fn one() -> u64 {
    1
}

/// Converts kernel monotonic time (`bpf_ktime_get_ns`) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    realtime_minus_monotonic_ns: i128,
}

impl Clock {
    pub fn now() -> Self {
        use nix::time::{ClockId, clock_gettime};
        let ns = |id| {
            clock_gettime(id)
                .map(|t| t.tv_sec() as i128 * 1_000_000_000 + t.tv_nsec() as i128)
                .unwrap_or(0)
        };
        Clock {
            realtime_minus_monotonic_ns: ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_MONOTONIC),
        }
    }

    /// Kernel monotonic time as unix milliseconds.
    pub fn wall_ms(&self, monotonic_ns: u64) -> i64 {
        ((monotonic_ns as i128 + self.realtime_minus_monotonic_ns).max(0) / 1_000_000) as i64
    }

    pub fn wall(&self, monotonic_ns: u64) -> String {
        let ns = (monotonic_ns as i128 + self.realtime_minus_monotonic_ns).max(0) as u128;
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_nanos(ns.min(u64::MAX as u128) as u64);
        humantime::format_rfc3339_nanos(t).to_string()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("ring-buffer record of {0} bytes, expected {1}")]
    Size(usize, usize),
    #[error("record with unknown transport {0}")]
    Transport(u8),
}

/// One DNS packet from port 53 as the kernel copied it (`auditor_common::DnsPacket`), with
/// its times made wall-clock. `dns::Answers` reads it into answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPacketRecord {
    /// When it arrived (unix milliseconds).
    pub time_ms: i64,
    /// The querying socket's network namespace, cgroup and process: 0 when unsolicited.
    pub netns_cookie: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    /// The answering server (the packet's source) and the receiving socket.
    pub server: std::net::SocketAddr,
    pub local: std::net::SocketAddr,
    pub transport: Transport,
    /// TCP: the segment's sequence number.
    pub tcp_seq: u32,
    /// The receiving socket sent a query to this server.
    pub solicited: bool,
    /// The payload's length in the packet; `payload` holds all of it only when equal.
    pub wire_len: u32,
    pub payload: Vec<u8>,
}

impl DnsPacketRecord {
    /// The kernel copied the whole payload.
    pub fn complete(&self) -> bool {
        self.payload.len() as u64 == self.wire_len as u64
    }
}

/// What one ring-buffer record is. The kernel writes two kinds into the one ring (so an
/// answer is read before the connect that follows it), told apart by their size.
pub enum RingRecord {
    Flow(FlowEvent),
    Dns(Box<auditor_common::DnsPacket>),
}

/// Decodes a raw ring-buffer record of either kind.
pub fn decode_ring(bytes: &[u8]) -> Result<RingRecord, RecordError> {
    let dns = std::mem::size_of::<auditor_common::DnsPacket>();
    if bytes.len() == dns {
        // SAFETY: DnsPacket is repr(C) plain data, every bit pattern valid; length checked.
        let packet =
            unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<auditor_common::DnsPacket>()) };
        return Ok(RingRecord::Dns(Box::new(packet)));
    }
    decode(bytes).map(RingRecord::Flow)
}

impl DnsPacketRecord {
    pub fn from_packet(p: &auditor_common::DnsPacket, clock: &Clock) -> Result<Self, RecordError> {
        let transport =
            Transport::from_ip_proto(p.transport).ok_or(RecordError::Transport(p.transport))?;
        let copied = (p.copied as usize).min(p.payload.len());
        Ok(DnsPacketRecord {
            time_ms: clock.wall_ms(p.ktime_ns),
            netns_cookie: p.netns_cookie,
            cgroup_id: p.cgroup_id,
            tgid: p.tgid,
            server: std::net::SocketAddr::new(addr(p.family, &p.server_addr), p.server_port),
            local: std::net::SocketAddr::new(addr(p.family, &p.local_addr), p.local_port),
            transport,
            tcp_seq: p.tcp_seq,
            solicited: p.solicited != 0,
            wire_len: p.wire_len,
            payload: p.payload[..copied].to_vec(),
        })
    }
}

/// Decodes a raw ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<FlowEvent, RecordError> {
    let want = std::mem::size_of::<FlowEvent>();
    if bytes.len() < want {
        return Err(RecordError::Size(bytes.len(), want));
    }
    // SAFETY: FlowEvent is repr(C) plain data, every bit pattern valid; length checked.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<FlowEvent>()) })
}

/// An address as the kernel records hold it: 16 bytes, IPv4 in the first 4.
pub(crate) fn addr(family: u8, raw: &[u8; 16]) -> IpAddr {
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*raw))
    }
}

/// A task's comm: NUL-padded bytes.
pub(crate) fn comm(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

impl FlowRecord {
    /// A listening socket found open (hook `existing`, ingress, no peer, count 0): not a
    /// connection, so it is printed but never judged.
    pub fn is_listener(&self) -> bool {
        self.hook == Hook::Existing.name()
            && self.direction == Direction::Ingress
            && self.src_addr.is_none()
    }

    pub fn from_event(ev: &FlowEvent, new: bool, clock: &Clock) -> Result<Self, RecordError> {
        let k = &ev.key;
        let transport =
            Transport::from_ip_proto(k.transport).ok_or(RecordError::Transport(k.transport))?;
        let local = addr(k.family, &k.local_addr);
        let remote = addr(k.family, &k.remote_addr);
        let (direction, src, dst) = if k.direction == DIRECTION_INGRESS {
            (Direction::Ingress, Some(remote), local)
        } else {
            (
                Direction::Egress,
                Some(local).filter(|a| !a.is_unspecified()),
                remote,
            )
        };
        Ok(FlowRecord {
            time: Some(clock.wall(ev.last_seen_ns)),
            new,
            transport,
            direction,
            src_addr: src,
            dst_addr: dst,
            dst_port: k.port,
            count: ev.count,
            first_seen: Some(clock.wall(ev.first_seen_ns)),
            pid: ev.pid,
            tgid: k.tgid,
            uid: ev.uid,
            comm: comm(&ev.comm),
            cgroup_id: k.cgroup_id,
            netns_cookie: k.netns_cookie,
            hook: Hook::from_id(ev.hook)
                .map_or("unknown", Hook::name)
                .to_string(),
            cgroup: None,
            netns_addrs: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use auditor_common::{
        AF_INET6, DIRECTION_EGRESS, FlowKey, HOOK_TCP_ACTIVE, IPPROTO_TCP, IPPROTO_UDP,
    };

    use super::*;

    fn event(family: u8, direction: u8, transport: u8) -> FlowEvent {
        let mut local = [0u8; 16];
        let mut remote = [0u8; 16];
        if family == AF_INET {
            local[..4].copy_from_slice(&[10, 0, 0, 1]);
            remote[..4].copy_from_slice(&[10, 0, 0, 2]);
        } else {
            local = "fd00::1".parse::<Ipv6Addr>().unwrap().octets();
            remote = "fd00::2".parse::<Ipv6Addr>().unwrap().octets();
        }
        FlowEvent {
            key: FlowKey {
                local_addr: local,
                remote_addr: remote,
                netns_cookie: 7,
                cgroup_id: 9,
                tgid: 100,
                port: 8080,
                family,
                transport,
                direction,
                _pad1: 0,
                _pad2: 0,
                _pad4: 0,
            },
            first_seen_ns: 1,
            last_seen_ns: 2,
            count: 3,
            pid: 101,
            uid: 0,
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
            hook: HOOK_TCP_ACTIVE,
            flags: 0,
            _pad: 0,
            epoch: 0,
        }
    }

    #[test]
    fn egress_v4_maps_local_to_src() {
        let r = FlowRecord::from_event(
            &event(AF_INET, DIRECTION_EGRESS, IPPROTO_TCP),
            true,
            &Clock::now(),
        )
        .unwrap();
        assert_eq!(r.src_addr, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r.dst_addr, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(
            (r.dst_port, r.count, r.comm.as_str(), r.transport),
            (8080, 3, "curl", Transport::Tcp)
        );
    }

    #[test]
    fn ingress_v6_maps_remote_to_src() {
        let r = FlowRecord::from_event(
            &event(AF_INET6, DIRECTION_INGRESS, IPPROTO_UDP),
            false,
            &Clock::now(),
        )
        .unwrap();
        assert_eq!(r.direction, Direction::Ingress);
        assert_eq!(r.src_addr, Some("fd00::2".parse().unwrap()));
        assert_eq!(r.dst_addr, "fd00::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn short_or_odd_records_are_errors_not_panics() {
        assert_eq!(decode(&[0u8; 10]), Err(RecordError::Size(10, 120)));
        let ev = event(AF_INET, DIRECTION_EGRESS, 99);
        assert_eq!(
            FlowRecord::from_event(&ev, true, &Clock::now()),
            Err(RecordError::Transport(99))
        );
    }

    #[test]
    fn json_round_trips_and_minimal_records_parse() {
        let r = FlowRecord::from_event(
            &event(AF_INET, DIRECTION_EGRESS, IPPROTO_TCP),
            true,
            &Clock::now(),
        )
        .unwrap();
        let back: FlowRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let min: FlowRecord = serde_json::from_str(
            r#"{"time":"t","transport":"udp","dst_addr":"::1","dst_port":53}"#,
        )
        .unwrap();
        assert_eq!((min.count, min.direction), (1, Direction::Egress));
    }
}
