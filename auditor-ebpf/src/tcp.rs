//! TCP opens: an active open runs in the connecting task, a passive one in softirq (the
//! server is found in the listener table filled at bind time).
//!
//! Three entry points read the same opens, and user space attaches exactly one:
//! `sock_ops` at the cgroup root (the default: its connect and passive-established
//! callbacks; cheaper per connection, docs/benchmarks.md), `tp_btf` on
//! `inet_sock_set_state` (SYN_SENT, SYN_RECV -> ESTABLISHED: the states are plain
//! arguments, so the eight state changes we ignore cost a compare), and the classic
//! tracepoint (kernels without BTF). Each fills a `TcpOpen`; the rest is shared.

use auditor_common::{
    AF_INET, AF_INET6, Counter, DIRECTION_EGRESS, DIRECTION_INGRESS, FlowKey, HOOK_TCP_ACTIVE,
    HOOK_TCP_PASSIVE, IPPROTO_TCP, ListenerKey,
};
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_cgroup_id, bpf_get_netns_cookie},
    },
    macros::{btf_tracepoint, sock_ops, tracepoint},
    programs::{BtfTracePointContext, SockOpsContext, TracePointContext},
};

use crate::flow::{
    AUDITOR_LISTENERS, Actor, config, count, empty_programs, is_self, observe, sock_netns_cookie,
    sock_netns_cookie_btf,
};
use crate::key::{v4, v6, words};

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;

/// What every entry point reads from its event.
struct TcpOpen {
    family: u8,
    local: [u8; 16],
    remote: [u8; 16],
    /// Local port (host order).
    sport: u16,
    /// Remote port (host order).
    dport: u16,
    netns_cookie: u64,
}

/// Which of the two opens a state change is, if any. Called before anything is read.
#[inline(always)]
fn open_kind(old: i32, new: i32) -> Option<bool> {
    if new == TCP_SYN_SENT {
        Some(true)
    } else if new == TCP_ESTABLISHED && old == TCP_SYN_RECV {
        Some(false)
    } else {
        None
    }
}

// ---- tp_btf ------------------------------------------------------------------------

/// `trace_inet_sock_set_state(const struct sock *sk, int oldstate, int newstate)`.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn auditor_tcp_state_btf(ctx: BtfTracePointContext) -> i32 {
    if empty_programs() {
        return 0;
    }
    // The new state first: 8 of the 10 calls per connection stop at this compare.
    let new: i32 = ctx.arg(2);
    if new != TCP_SYN_SENT && new != TCP_ESTABLISHED {
        return 0;
    }
    let old: i32 = ctx.arg(1);
    let Some(active) = open_kind(old, new) else {
        return 0;
    };
    let sk: *const u8 = ctx.arg(0);
    if let Some(open) = read_sock(sk) {
        handle(open, active);
    }
    0
}

/// A field of `struct sock` at an offset user space read from BTF. The verifier knows the
/// offset as a constant (frozen .rodata) and checks the load against the kernel's BTF, so
/// no probe-read helper is needed.
#[inline(always)]
fn sk_field<T: Copy>(sk: *const u8, offset: u16) -> T {
    unsafe { core::ptr::read_volatile(sk.add(offset as usize).cast::<T>()) }
}

#[inline(always)]
fn sk_v6(sk: *const u8, offset: u16) -> [u8; 16] {
    words([sk_field(sk, offset), sk_field(sk, offset + 8)])
}

#[inline(always)]
fn read_sock(sk: *const u8) -> Option<TcpOpen> {
    let protocol: u16 = sk_field(sk, config!(sock.protocol));
    if protocol != IPPROTO_TCP as u16 {
        return None;
    }
    let family: u16 = sk_field(sk, config!(sock.family));
    let (local, remote) = if family == AF_INET as u16 {
        (
            v4(sk_field(sk, config!(sock.rcv_saddr))),
            v4(sk_field(sk, config!(sock.daddr))),
        )
    } else if family == AF_INET6 as u16 {
        (
            sk_v6(sk, config!(sock.v6_rcv_saddr)),
            sk_v6(sk, config!(sock.v6_daddr)),
        )
    } else {
        unexpected_family(family);
        return None;
    };
    let num: u16 = sk_field(sk, config!(sock.num));
    let dport: u16 = sk_field(sk, config!(sock.dport));
    Some(TcpOpen {
        family: family as u8,
        local,
        remote,
        sport: num,
        dport: u16::from_be(dport),
        netns_cookie: sock_netns_cookie_btf(sk),
    })
}

// ---- classic tracepoint (no BTF) ---------------------------------------------------

// Offsets from /sys/kernel/tracing/events/sock/inet_sock_set_state/format: a stable ABI.
const OFF_SKADDR: usize = 8;
const OFF_OLDSTATE: usize = 16;
const OFF_NEWSTATE: usize = 20;
const OFF_SPORT: usize = 24;
const OFF_DPORT: usize = 26;
const OFF_FAMILY: usize = 28;
const OFF_PROTOCOL: usize = 30;
const OFF_SADDR: usize = 32;
const OFF_DADDR: usize = 36;
const OFF_SADDR_V6: usize = 40;
const OFF_DADDR_V6: usize = 56;

/// Reads a field of the tracepoint record. Tracepoint programs may load their context
/// directly (aligned, in bounds), which is far cheaper than a probe-read helper call.
/// Volatile and scalar-sized only: the verifier rejects loads through a modified ctx
/// pointer, which is what LLVM emits when it turns a wider copy into a byte loop.
#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    unsafe { core::ptr::read_volatile(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
}

/// An IPv6 address field as two aligned 8-byte loads (the record's v6 fields are 8-aligned).
#[inline(always)]
fn field_v6(ctx: &TracePointContext, offset: usize) -> [u8; 16] {
    words([field(ctx, offset), field(ctx, offset + 8)])
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn auditor_tcp_state(ctx: TracePointContext) -> u32 {
    if empty_programs() {
        return 0;
    }
    // The new state first, as in the tp_btf program.
    let new: i32 = field(&ctx, OFF_NEWSTATE);
    if new != TCP_SYN_SENT && new != TCP_ESTABLISHED {
        return 0;
    }
    let old: i32 = field(&ctx, OFF_OLDSTATE);
    let Some(active) = open_kind(old, new) else {
        return 0;
    };
    if let Some(open) = read_record(&ctx) {
        handle(open, active);
    }
    0
}

#[inline(always)]
fn read_record(ctx: &TracePointContext) -> Option<TcpOpen> {
    let protocol: u16 = field(ctx, OFF_PROTOCOL);
    if protocol != IPPROTO_TCP as u16 {
        return None;
    }
    let family: u16 = field(ctx, OFF_FAMILY);
    let (local, remote) = if family == AF_INET as u16 {
        (v4(field(ctx, OFF_SADDR)), v4(field(ctx, OFF_DADDR)))
    } else if family == AF_INET6 as u16 {
        (field_v6(ctx, OFF_SADDR_V6), field_v6(ctx, OFF_DADDR_V6))
    } else {
        unexpected_family(family);
        return None;
    };
    let sk: u64 = field(ctx, OFF_SKADDR);
    Some(TcpOpen {
        family: family as u8,
        local,
        remote,
        sport: field(ctx, OFF_SPORT),
        dport: field(ctx, OFF_DPORT),
        netns_cookie: sock_netns_cookie(sk as *const u8),
    })
}

// ---- sock_ops ----------------------------------------------------------------------

// include/uapi/linux/bpf.h, enum bpf_sock_ops_op.
/// In `tcp_connect()`, in the connecting task, once the source address and port are set.
const BPF_SOCK_OPS_TCP_CONNECT_CB: u32 = 3;
/// The child socket of a passive open, established (softirq).
const BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB: u32 = 5;

/// Every callback the kernel makes for a TCP socket in the cgroup tree (timeouts, window,
/// ECN, connect, established...): only the connect and the passive open are read.
#[sock_ops]
pub fn auditor_tcp_sock_ops(ctx: SockOpsContext) -> u32 {
    if empty_programs() {
        return 1;
    }
    let active = match ctx.op() {
        BPF_SOCK_OPS_TCP_CONNECT_CB => true,
        BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB => false,
        _ => return 1,
    };
    if let Some(open) = read_sock_ops(&ctx) {
        handle(open, active);
    }
    1
}

/// An IPv6 field of `bpf_sock_ops`: the verifier allows only 4-byte loads of it, and a
/// plain copy of the array may be merged into 8-byte ones.
#[inline(always)]
fn ops_ip6(field: *const [u32; 4]) -> [u32; 4] {
    let w = field.cast::<u32>();
    unsafe {
        [
            core::ptr::read_volatile(w),
            core::ptr::read_volatile(w.add(1)),
            core::ptr::read_volatile(w.add(2)),
            core::ptr::read_volatile(w.add(3)),
        ]
    }
}

#[inline(always)]
fn read_sock_ops(ctx: &SockOpsContext) -> Option<TcpOpen> {
    let family = ctx.family();
    let (local, remote) = if family == AF_INET as u32 {
        (v4(ctx.local_ip4()), v4(ctx.remote_ip4()))
    } else if family == AF_INET6 as u32 {
        (
            v6(ops_ip6(unsafe { &raw const (*ctx.ops).local_ip6 })),
            v6(ops_ip6(unsafe { &raw const (*ctx.ops).remote_ip6 })),
        )
    } else {
        unexpected_family(family as u16);
        return None;
    };
    // `remote_port` holds the network-order port in its upper 16 bits on little-endian
    // machines (the kernel shifts it there), in its lower 16 on big-endian ones;
    // `local_port` is in host order.
    let remote_port = ctx.remote_port();
    let dport = if cfg!(target_endian = "little") {
        (remote_port >> 16) as u16
    } else {
        remote_port as u16
    };
    Some(TcpOpen {
        family: family as u8,
        local,
        remote,
        sport: ctx.local_port() as u16,
        dport: u16::from_be(dport),
        netns_cookie: unsafe { bpf_get_netns_cookie(ctx.ops.cast()) },
    })
}

// ---- shared ------------------------------------------------------------------------

#[inline(always)]
fn unexpected_family(family: u16) {
    count(Counter::UnexpectedFamily);
    crate::log::unexpected_family(family);
}

#[inline(always)]
fn handle(open: TcpOpen, active: bool) {
    if active {
        active_open(open)
    } else {
        passive_open(open)
    }
}

#[inline(always)]
fn active_open(open: TcpOpen) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if is_self(tgid) {
        return;
    }
    let key = FlowKey {
        local_addr: open.local,
        remote_addr: open.remote,
        netns_cookie: open.netns_cookie,
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid,
        port: open.dport,
        family: open.family,
        transport: IPPROTO_TCP,
        direction: DIRECTION_EGRESS,
        _pad1: 0,
        _pad2: 0,
        _pad4: 0,
    };
    observe(&key, || Actor::current(pid_tgid), HOOK_TCP_ACTIVE);
}

#[inline(always)]
fn passive_open(open: TcpOpen) {
    let listener = ListenerKey {
        netns_cookie: open.netns_cookie,
        port: open.sport,
        transport: IPPROTO_TCP,
        _pad1: 0,
        _pad4: 0,
    };
    // Copied at once: another CPU's bind may reuse this LRU element before we are done.
    let (tgid, cgroup_id, actor) = match unsafe { AUDITOR_LISTENERS.get(&listener) } {
        Some(owner) => (
            owner.tgid,
            owner.cgroup_id,
            Actor {
                pid: owner.pid,
                uid: owner.uid,
                comm: owner.comm,
            },
        ),
        None => {
            count(Counter::PassiveNoListener);
            (
                0,
                0,
                Actor {
                    pid: 0,
                    uid: 0,
                    comm: [0; 16],
                },
            )
        }
    };
    if is_self(tgid) {
        return;
    }
    let key = FlowKey {
        local_addr: open.local,
        remote_addr: open.remote,
        netns_cookie: open.netns_cookie,
        cgroup_id,
        tgid,
        port: open.sport,
        family: open.family,
        transport: IPPROTO_TCP,
        direction: DIRECTION_INGRESS,
        _pad1: 0,
        _pad2: 0,
        _pad4: 0,
    };
    observe(&key, || actor, HOOK_TCP_PASSIVE);
}
