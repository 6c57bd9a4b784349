//! The kernel/user ABI: every type that crosses a map or the ring buffer, every map,
//! program and global name. Both `auditor-ebpf` (no_std, bpfel) and `auditor` build it.
//!
//! Rules: `#[repr(C)]`, explicit padding, no `bool`, sizes pinned by `const` asserts so a
//! field added on one side without the other fails to compile rather than misreads.
//!
//! With the `serde` feature (user space only) the shared enums also (de)serialise, so
//! the daemon, the allowlist and every output use these very types.
#![cfg_attr(not(feature = "serde"), no_std)]

/// Map and global names. They must equal the `static` symbol names in `auditor-ebpf`
/// (aya names a map after its symbol); `auditor` looks everything up through these.
pub mod names {
    /// The flow maps, one per epoch slot (`FLOW_EPOCH_MAPS`), in slot order.
    pub const MAP_FLOWS: [&str; super::FLOW_EPOCH_MAPS as usize] =
        ["AUDITOR_FLOWS_0", "AUDITOR_FLOWS_1", "AUDITOR_FLOWS_2"];
    /// The current epoch (`Array<u32>`, slot 0), written by user space at each sweep.
    pub const MAP_EPOCH: &str = "AUDITOR_EPOCH";
    /// Connections lost per epoch slot (`PerCpuArray<u64>`), cleared as each map is drained.
    pub const MAP_LOST: &str = "AUDITOR_LOST";
    pub const MAP_EVENTS: &str = "AUDITOR_EVENTS";
    pub const MAP_COUNTERS: &str = "AUDITOR_COUNTERS";
    pub const MAP_LISTENERS: &str = "AUDITOR_LISTENERS";
    /// Sockets that sent a DNS query, and to which server (`DnsQueryKey` → `DnsQuerier`).
    pub const MAP_DNS_QUERIES: &str = "AUDITOR_DNS_QUERIES";

    pub const GLOBAL_CONFIG: &str = "AUDITOR_CONFIG";
    /// The socket iterator's offsets (`IterConfig`).
    pub const GLOBAL_ITER_CONFIG: &str = "AUDITOR_ITER_CONFIG";

    /// The classic-tracepoint TCP program: the fallback when kernel BTF is missing.
    pub const PROG_TCP_STATE: &str = "auditor_tcp_state";
    /// The same on `tp_btf/inet_sock_set_state`: cheaper to invoke, and it reads the
    /// states from its arguments before touching the socket.
    pub const PROG_TCP_STATE_BTF: &str = "auditor_tcp_state_btf";
    pub const TP_BTF_TCP_STATE: &str = "inet_sock_set_state";
    /// `sock_ops` on the cgroup root (`--tcp-hook sock-ops`): connects and passive opens.
    pub const PROG_TCP_SOCK_OPS: &str = "auditor_tcp_sock_ops";
    pub const PROG_CONNECT4: &str = "auditor_connect4";
    pub const PROG_CONNECT6: &str = "auditor_connect6";
    pub const PROG_SENDMSG4: &str = "auditor_sendmsg4";
    pub const PROG_SENDMSG6: &str = "auditor_sendmsg6";
    pub const PROG_RECVMSG4: &str = "auditor_recvmsg4";
    pub const PROG_RECVMSG6: &str = "auditor_recvmsg6";
    pub const PROG_POST_BIND4: &str = "auditor_post_bind4";
    pub const PROG_POST_BIND6: &str = "auditor_post_bind6";
    /// cgroup skb ingress on the cgroup root: every DNS answer a socket of the node receives.
    pub const PROG_DNS_INGRESS: &str = "auditor_dns_ingress";
    /// `iter/task_file`: the node's open sockets with their owners (`OpenSocket` records).
    pub const PROG_ITER_SOCKETS: &str = "auditor_iter_sockets";
    /// What aya's `Iter::load` takes: the kernel's `bpf_iter_task_file`.
    pub const ITER_TASK_FILE: &str = "task_file";
}

/// Flow maps in rotation. The programs count into the map of the current epoch; at each
/// sweep user space starts the next epoch, and drains an ended epoch's map once two RCU
/// barriers have passed since it ended: the first waits out the programs that still
/// counted into it, the second every program that reserved a ring-buffer record before
/// theirs (so all of the epoch's records can be read first). Three maps: one live, one
/// ended and waiting for its second barrier, one being drained (then empty for the next).
pub const FLOW_EPOCH_MAPS: u32 = 3;
/// Distinct flows one epoch's map holds (an epoch is one `--record-interval`, 1 s by
/// default). A full map evicts nothing: each further sighting of a flow it lacks goes
/// through the ring buffer as a record of its own (`Counter::FlowInsertFailed`), and is
/// lost, and counted per epoch, only when the ring buffer is full too. Kernel memory:
/// see docs/capture.md ("Kernel memory").
pub const FLOWS_MAX_ENTRIES: u32 = 32_768;
pub const LISTENERS_MAX_ENTRIES: u32 = 8_192;
pub const EVENTS_RING_BYTES: u32 = 1 << 20;
/// Sockets with a DNS query in flight: an entry lives until the LRU displaces it, which
/// at 16,384 takes that many newer queries, far more than answers take to arrive.
pub const DNS_QUERIES_MAX_ENTRIES: u32 = 16_384;
/// The port DNS answers come from (host byte order).
pub const DNS_PORT: u16 = 53;
/// The most of one DNS packet's payload the kernel copies. An answer that does not fit
/// a classic 512-byte UDP datagram comes over TCP (or EDNS0, usually up to 1,232 bytes):
/// 2,048 holds both with room. Longer payloads are copied in part and counted
/// (`Counter::DnsTruncated`); user space does not read a partial message.
pub const DNS_PAYLOAD_MAX: usize = 2048;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

pub const DIRECTION_EGRESS: u8 = 0;
pub const DIRECTION_INGRESS: u8 = 1;

// The one transport type of the project (the allowlist, the records and every output use
// it), with the IP protocol number as its stable id. The doc line below is the allowlist
// schema's description of the field: keep it.
/// Transport a connection's application protocol runs over: what the kernel sees.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema),
    serde(rename_all = "lowercase")
)]
pub enum Transport {
    Tcp = IPPROTO_TCP,
    Udp = IPPROTO_UDP,
}

impl Transport {
    /// From the IP protocol number the kernel records.
    pub const fn from_ip_proto(proto: u8) -> Option<Transport> {
        match proto {
            IPPROTO_TCP => Some(Transport::Tcp),
            IPPROTO_UDP => Some(Transport::Udp),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }

    pub const fn other(self) -> Transport {
        match self {
            Transport::Tcp => Transport::Udp,
            Transport::Udp => Transport::Tcp,
        }
    }
}

impl core::fmt::Display for Transport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kernel hook produced a record. The number is the stable id carried in
/// `FlowEvent::hook`; the name is what records and logs say.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Not a hook: an epoch's drain delivered connections of a flow whose ring record
    /// for the epoch was never reserved (the ring buffer was full), so no process is named.
    Sweep = 0,
    TcpActive = 1,
    TcpPassive = 2,
    UdpConnect = 3,
    UdpSendmsg = 4,
    /// Not a hook: a connection or listener found open by user space's enumeration of the
    /// node's sockets (at start and every `--active-interval`).
    Existing = 5,
    /// A datagram received (cgroup `recvmsg4/6`): ingress UDP, from the receiver's side.
    UdpRecvmsg = 6,
}

impl Hook {
    pub const ALL: [Hook; 7] = [
        Hook::Sweep,
        Hook::TcpActive,
        Hook::TcpPassive,
        Hook::UdpConnect,
        Hook::UdpSendmsg,
        Hook::Existing,
        Hook::UdpRecvmsg,
    ];

    pub const fn from_id(id: u8) -> Option<Hook> {
        match id {
            0 => Some(Hook::Sweep),
            1 => Some(Hook::TcpActive),
            2 => Some(Hook::TcpPassive),
            3 => Some(Hook::UdpConnect),
            4 => Some(Hook::UdpSendmsg),
            5 => Some(Hook::Existing),
            6 => Some(Hook::UdpRecvmsg),
            _ => None,
        }
    }

    /// The stable name user space reports this hook under.
    pub const fn name(self) -> &'static str {
        match self {
            Hook::Sweep => "sweep",
            Hook::TcpActive => "tcp_active",
            Hook::TcpPassive => "tcp_passive",
            Hook::UdpConnect => "udp_connect",
            Hook::UdpSendmsg => "udp_sendmsg",
            Hook::Existing => "existing",
            Hook::UdpRecvmsg => "udp_recvmsg",
        }
    }
}

/// The ids as the eBPF programs write them (`Hook as u8`).
pub const HOOK_TCP_ACTIVE: u8 = Hook::TcpActive as u8;
pub const HOOK_TCP_PASSIVE: u8 = Hook::TcpPassive as u8;
pub const HOOK_UDP_CONNECT: u8 = Hook::UdpConnect as u8;
pub const HOOK_UDP_SENDMSG: u8 = Hook::UdpSendmsg as u8;
pub const HOOK_UDP_RECVMSG: u8 = Hook::UdpRecvmsg as u8;

/// Load-time configuration, written into the object's `.rodata` before load so the
/// verifier can prune on it (aya `EbpfLoader::override_global`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The daemon's own tgid: its connections are not audited.
    pub self_tgid: u32,
    /// Non-zero when the two offsets below were read from kernel BTF.
    pub netns_offsets_valid: u32,
    /// Offset of `sock.__sk_common.skc_net.net` (a `struct net *`) in `struct sock`.
    pub off_sock_net: u32,
    /// Offset of `net.net_cookie` (u64) in `struct net`.
    pub off_net_cookie: u32,
    pub _pad0: u64,
    /// Where `tp_btf` reads the socket (see `SockOffsets`); valid when `sock.valid != 0`.
    pub sock: SockOffsets,
    /// Error paths to take on purpose (`FAULT_*` bits), so a real-kernel test can prove
    /// that an error is logged (aya-log) and counted. 0 in production: the verifier knows
    /// the frozen value and removes the injection branches before the program runs.
    pub inject_faults: u32,
    /// How far the hook programs go (`CALIBRATE_*`), for the capture benchmark's arms that
    /// split the cost: `CALIBRATE_EMPTY_PROGRAMS` is the hooks' floor (bpf_stats' own
    /// overhead included), `CALIBRATE_NO_FLOW_MAP` everything but the flow maps. 0 in
    /// production, where the verifier removes the checks on the frozen value.
    pub calibrate: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 56);

/// `Config::calibrate`: the programs do all their work (production).
pub const CALIBRATE_OFF: u32 = 0;
/// `Config::calibrate`: every hook program (not the socket iterator) returns at its first
/// instruction, capturing nothing: what the hooks cost with no work.
pub const CALIBRATE_EMPTY_PROGRAMS: u32 = 1;
/// `Config::calibrate`: the programs read the event and build the flow key (helpers
/// included), then return before the epoch's flow map: what our work costs without it.
pub const CALIBRATE_NO_FLOW_MAP: u32 = 2;

/// `Config::inject_faults`: the flow map refuses every new flow, as when it cannot
/// allocate. Set by user space from `AUDITOR_INJECT_KERNEL_FAULTS=flow_insert`.
pub const FAULT_FLOW_INSERT: u32 = 1;

/// Byte offsets into `struct sock`, read from kernel BTF by user space (Rust eBPF has no
/// CO-RE). The `tp_btf` program loads these fields directly: the offsets sit in frozen
/// `.rodata`, so the verifier knows them as constants and checks each load against BTF.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOffsets {
    /// Non-zero when every offset below was found.
    pub valid: u16,
    /// `__sk_common.skc_family` (u16).
    pub family: u16,
    /// `sk_protocol` (u16).
    pub protocol: u16,
    /// `__sk_common.skc_daddr` (be32).
    pub daddr: u16,
    /// `__sk_common.skc_rcv_saddr` (be32).
    pub rcv_saddr: u16,
    /// `__sk_common.skc_dport` (be16).
    pub dport: u16,
    /// `__sk_common.skc_num` (local port, host order).
    pub num: u16,
    /// `__sk_common.skc_v6_daddr` (16 bytes).
    pub v6_daddr: u16,
    /// `__sk_common.skc_v6_rcv_saddr` (16 bytes).
    pub v6_rcv_saddr: u16,
    pub _pad: [u16; 3],
}
const _: () = assert!(core::mem::size_of::<SockOffsets>() == 24);

impl SockOffsets {
    pub const NONE: SockOffsets = SockOffsets {
        valid: 0,
        family: 0,
        protocol: 0,
        daddr: 0,
        rcv_saddr: 0,
        dport: 0,
        num: 0,
        v6_daddr: 0,
        v6_rcv_saddr: 0,
        _pad: [0; 3],
    };
}

impl Config {
    pub const DEFAULT: Config = Config {
        self_tgid: 0,
        netns_offsets_valid: 0,
        off_sock_net: 0,
        off_net_cookie: 0,
        _pad0: 0,
        sock: SockOffsets::NONE,
        inject_faults: 0,
        calibrate: CALIBRATE_OFF,
    };
}

/// Byte offsets the socket iterator (`iter/task_file`) loads through, read from kernel BTF
/// by user space like `SockOffsets`. Its own global, so it does not change `Config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IterConfig {
    /// Non-zero when every offset below was found; the program writes nothing otherwise.
    pub valid: u32,
    /// `socket.sk` (a `struct sock *`).
    pub socket_sk: u32,
    /// `sock.sk_type` (u16: SOCK_STREAM, SOCK_DGRAM, ...).
    pub sock_type: u32,
    /// `sock.__sk_common.skc_state` (u8, the TCP state numbers; UDP uses 1 once connected).
    pub sock_state: u32,
    /// `sock.__sk_common.skc_net.net` (a `struct net *`).
    pub sock_net: u32,
    /// `net.net_cookie` (u64).
    pub net_cookie: u32,
    /// `task_struct.tgid`, `.pid` (i32), `.comm` (16 bytes).
    pub task_tgid: u32,
    pub task_pid: u32,
    pub task_comm: u32,
    /// `task_struct.cred` (a `struct cred *`) and `cred.uid.val` (u32).
    pub task_cred: u32,
    pub cred_uid: u32,
    /// `task_struct.cgroups` -> `css_set.dfl_cgrp` -> `cgroup.kn` -> `kernfs_node.id`: the
    /// cgroup v2 id, what `bpf_get_current_cgroup_id` gives the other programs.
    pub task_cgroups: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
    pub _pad: u32,
    /// Addresses, ports, family and protocol of `struct sock`.
    pub sock: SockOffsets,
}
const _: () = assert!(core::mem::size_of::<IterConfig>() == 88);

impl IterConfig {
    pub const DEFAULT: IterConfig = IterConfig {
        valid: 0,
        socket_sk: 0,
        sock_type: 0,
        sock_state: 0,
        sock_net: 0,
        net_cookie: 0,
        task_tgid: 0,
        task_pid: 0,
        task_comm: 0,
        task_cred: 0,
        cred_uid: 0,
        task_cgroups: 0,
        css_set_dfl_cgrp: 0,
        cgroup_kn: 0,
        kernfs_node_id: 0,
        _pad: 0,
        sock: SockOffsets::NONE,
    };
}

/// TCP states the socket iterator keeps (`include/net/tcp_states.h`). A connected UDP
/// socket is in `TCP_ESTABLISHED` too.
pub const TCP_ESTABLISHED: u8 = 1;
pub const TCP_LISTEN: u8 = 10;

/// One open socket, as the socket iterator writes it (`bpf_seq_write`): an established TCP
/// connection, a TCP listener, or a connected UDP socket, with the process holding it.
/// A socket several processes hold (fork, fd passing) comes once per process.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenSocket {
    /// The socket's kernel address: only an identity, to find the same socket held by
    /// several processes.
    pub sk: u64,
    /// The socket's network namespace cookie (what `bpf_get_netns_cookie` gives).
    pub netns_cookie: u64,
    /// cgroup v2 id of the holding process.
    pub cgroup_id: u64,
    /// Network byte order; IPv4 fills the first 4 bytes.
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    pub tgid: u32,
    /// The task the kernel walked (the thread group leader, or a thread with a file
    /// table of its own).
    pub pid: u32,
    /// Real uid of the holding process.
    pub uid: u32,
    pub comm: [u8; 16],
    /// Host byte order.
    pub local_port: u16,
    pub remote_port: u16,
    pub family: u8,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub transport: u8,
    /// `TCP_ESTABLISHED` or `TCP_LISTEN`.
    pub state: u8,
    pub _pad: [u8; 5],
}
const _: () = assert!(core::mem::size_of::<OpenSocket>() == 96);

/// What makes two connections "the same flow": everything but the ephemeral port.
/// Addresses are in network byte order; an IPv4 address fills the first 4 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub local_addr: [u8; 16],
    pub remote_addr: [u8; 16],
    /// `bpf_get_netns_cookie` (0 when unknown).
    pub netns_cookie: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    /// The service port (host byte order): remote for egress, local for ingress.
    pub port: u16,
    pub family: u8,
    pub transport: u8,
    pub direction: u8,
    // Padding as scalars, not `[u8; 7]`: the BPF backend zeroes an odd-sized array with a
    // call to a byte-at-a-time memset, on every sighting.
    pub _pad1: u8,
    pub _pad2: u16,
    pub _pad4: u32,
}
const _: () = assert!(core::mem::size_of::<FlowKey>() == 64);

/// Per-flow aggregate in an epoch's flow map. Several CPUs may see the same flow at once,
/// so the count is updated with an atomic add.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowStats {
    /// The flow's first sighting in this epoch. There is no last sighting: a repeat
    /// sighting reads no clock, and the epoch's drain times its record by the epoch's end.
    pub first_seen_ns: u64,
    /// When this flow went through the ring buffer in this epoch (0: not yet).
    pub last_report_ns: u64,
    /// Connections in this epoch so far. Cumulative within the epoch: user space
    /// subtracts what the ring record carried, so a record and the drain never count twice.
    pub count: u64,
}
const _: () = assert!(core::mem::size_of::<FlowStats>() == 24);

/// One ring-buffer record: a flow's first sighting in an epoch, or (`FLOW_EVENT_ALONE`) one
/// connection the epoch's full map could not hold.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowEvent {
    pub key: FlowKey,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// Connections in the flow's map entry so far this epoch (cumulative; see FlowStats).
    pub count: u64,
    /// Thread id of the sighting that emitted this record (the listener's, for ingress).
    pub pid: u32,
    pub uid: u32,
    pub comm: [u8; 16],
    pub hook: u8,
    /// `FLOW_EVENT_*` bits.
    pub flags: u8,
    pub _pad: u16,
    /// The epoch of the map that holds the flow (and that its drain delivers the rest from).
    pub epoch: u32,
}
/// `FlowEvent::flags`: the record stands alone, with no map entry behind it (the epoch's
/// map was full); its count is delivered as it is.
pub const FLOW_EVENT_ALONE: u8 = 1;
const _: () = assert!(core::mem::size_of::<FlowEvent>() == 120);

/// A listening socket's owner, recorded at bind time: passive opens complete in softirq
/// context where the current task is not the server, so the server is looked up here.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerKey {
    pub netns_cookie: u64,
    pub port: u16,
    pub transport: u8,
    // Scalars, not `[u8; 5]`, for the reason given at `FlowKey`.
    pub _pad1: u8,
    pub _pad4: u32,
}
const _: () = assert!(core::mem::size_of::<ListenerKey>() == 16);

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerOwner {
    pub cgroup_id: u64,
    pub tgid: u32,
    pub pid: u32,
    pub uid: u32,
    pub _pad: u32,
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<ListenerOwner>() == 40);

/// A DNS query in flight: the socket that sent it and the server it went to. Written by
/// the `connect*`/`sendmsg*` programs when the destination port is 53, read by the DNS
/// ingress program: an answer is *solicited* when its socket asked that server.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DnsQueryKey {
    /// `bpf_get_socket_cookie` of the querying socket.
    pub socket_cookie: u64,
    /// The server asked (network byte order; IPv4 fills the first 4 bytes).
    pub server_addr: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<DnsQueryKey>() == 24);

/// Who asked: known in the querying task's context (connect/sendmsg), not in the softirq
/// where the answer arrives. This is the answer's network namespace and cgroup.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsQuerier {
    pub netns_cookie: u64,
    pub cgroup_id: u64,
    pub tgid: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<DnsQuerier>() == 24);

/// One DNS packet from port 53 delivered to a socket of the node: a UDP datagram, or a
/// TCP segment with data (user space reassembles the stream by `tcp_seq`). It travels
/// in the flow records' ring buffer, so it reaches user space before any connect the
/// application makes after reading it. Told apart from a `FlowEvent` by its size.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsPacket {
    /// The querying socket's namespace and cgroup (`DnsQuerier`). Only answers to a
    /// socket that asked this server are copied; the rest are only counted.
    pub netns_cookie: u64,
    pub cgroup_id: u64,
    /// `bpf_ktime_get_ns` when the packet arrived.
    pub ktime_ns: u64,
    /// The server (the packet's source) and the receiving socket's address (its
    /// destination), network byte order, IPv4 in the first 4 bytes.
    pub server_addr: [u8; 16],
    pub local_addr: [u8; 16],
    /// The querying process.
    pub tgid: u32,
    /// TCP: the segment's sequence number (host order); UDP: 0.
    pub tcp_seq: u32,
    /// The payload's length in the packet; `copied` bytes of it are in `payload`.
    pub wire_len: u32,
    pub copied: u16,
    /// Host byte order.
    pub server_port: u16,
    pub local_port: u16,
    pub family: u8,
    pub transport: u8,
    /// Non-zero when the receiving socket sent a query to this server (`DnsQueryKey`):
    /// always, from this kernel object; kept so a record says it rather than implies it.
    pub solicited: u8,
    pub _pad1: u8,
    pub _pad2: u16,
    pub payload: [u8; DNS_PAYLOAD_MAX],
}
const _: () = assert!(core::mem::size_of::<DnsPacket>() == 80 + DNS_PAYLOAD_MAX);
// The ring's reader tells the two records apart by their length.
const _: () = assert!(core::mem::size_of::<DnsPacket>() != core::mem::size_of::<FlowEvent>());

/// Indices of the per-CPU counter array. Every loss in the kernel is one of these.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Sightings the programs handled (after the daemon's own were skipped).
    Sightings = 0,
    /// Records that could not be reserved: the ring buffer was full. A first sighting's
    /// connections stay counted in the flow map, where the drain finds them; a record
    /// standing alone is lost (`ConnectionsLost`).
    RingbufFull = 1,
    /// Flows put in an epoch's flow map (a flow active in several epochs counts in each).
    FlowsInserted = 2,
    /// An epoch's flow map refused an insert (full); the sighting went straight to the
    /// ring buffer as a record of its own.
    FlowInsertFailed = 3,
    /// A passive open whose listener was bound before the probes were attached.
    PassiveNoListener = 4,
    /// Reading the socket's network namespace failed.
    NetnsReadFailed = 5,
    /// Connections lost: the epoch's flow map was full and so was the ring buffer. The
    /// only way the flow path loses a connection; also counted per epoch (`MAP_LOST`).
    ConnectionsLost = 6,
    /// A socket of a family other than IPv4/IPv6 reached a program that handles only those.
    UnexpectedFamily = 7,
    /// DNS packets from port 53 copied to the ring buffer.
    DnsPackets = 8,
    /// DNS packets lost because the ring buffer was full: the names in them are unknown,
    /// and flows to their addresses are judged by address.
    DnsRingFull = 9,
    /// DNS packets longer than `DNS_PAYLOAD_MAX`: copied in part, not read.
    DnsTruncated = 10,
    /// DNS packets to a socket that sent no query to that server: counted, not copied.
    DnsUnsolicited = 11,
}
pub const COUNTER_SLOTS: u32 = 12;

impl Counter {
    pub const ALL: [Counter; COUNTER_SLOTS as usize] = [
        Counter::Sightings,
        Counter::RingbufFull,
        Counter::FlowsInserted,
        Counter::FlowInsertFailed,
        Counter::PassiveNoListener,
        Counter::NetnsReadFailed,
        Counter::ConnectionsLost,
        Counter::UnexpectedFamily,
        Counter::DnsPackets,
        Counter::DnsRingFull,
        Counter::DnsTruncated,
        Counter::DnsUnsolicited,
    ];

    /// The stable name user space reports this counter under.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::Sightings => "sightings",
            Counter::RingbufFull => "ringbuf_full",
            Counter::FlowsInserted => "flows_inserted",
            Counter::FlowInsertFailed => "flow_insert_failed",
            Counter::PassiveNoListener => "passive_no_listener",
            Counter::NetnsReadFailed => "netns_read_failed",
            Counter::ConnectionsLost => "connections_lost",
            Counter::UnexpectedFamily => "unexpected_family",
            Counter::DnsPackets => "dns_packets",
            Counter::DnsRingFull => "dns_ringbuf_full",
            Counter::DnsTruncated => "dns_truncated",
            Counter::DnsUnsolicited => "dns_unsolicited",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are repr(C), padding is explicit, and every bit pattern is valid.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::FlowKey {}
    unsafe impl aya::Pod for super::FlowStats {}
    unsafe impl aya::Pod for super::FlowEvent {}
    unsafe impl aya::Pod for super::ListenerKey {}
    unsafe impl aya::Pod for super::ListenerOwner {}
    unsafe impl aya::Pod for super::IterConfig {}
    unsafe impl aya::Pod for super::OpenSocket {}
    unsafe impl aya::Pod for super::DnsQueryKey {}
    unsafe impl aya::Pod for super::DnsQuerier {}
}
