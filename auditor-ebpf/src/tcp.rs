//! TCP opens from the stable `sock/inet_sock_set_state` tracepoint: SYN_SENT is an active
//! open (runs in the connecting task), SYN_RECV -> ESTABLISHED a passive one (softirq: the
//! server is found in the listener table filled at bind time).

use auditor_common::{
    AF_INET, AF_INET6, Counter, DIRECTION_EGRESS, DIRECTION_INGRESS, FlowKey, HOOK_TCP_ACTIVE,
    HOOK_TCP_PASSIVE, IPPROTO_TCP, ListenerKey,
};
use aya_ebpf::{
    EbpfContext,
    helpers::{bpf_get_current_pid_tgid, generated::bpf_get_current_cgroup_id},
    macros::tracepoint,
    programs::TracePointContext,
};

use crate::flow::{AUDITOR_LISTENERS, Actor, count, is_self, observe, sock_netns_cookie};

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

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;

/// Reads a field of the tracepoint record. Tracepoint programs may load their context
/// directly (aligned, in bounds), which is far cheaper than a probe-read helper call; this
/// runs on every TCP state change of the node.
/// Volatile and scalar-sized only: the verifier rejects loads through a modified ctx
/// pointer, which is what LLVM emits when it turns a wider copy into a byte loop.
#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    unsafe { core::ptr::read_volatile(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
}

/// An IPv6 address field as two aligned 8-byte loads (the record's v6 fields are 8-aligned).
#[inline(always)]
fn field_v6(ctx: &TracePointContext, offset: usize) -> [u8; 16] {
    let hi: u64 = field(ctx, offset);
    let lo: u64 = field(ctx, offset + 8);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi.to_ne_bytes());
    out[8..].copy_from_slice(&lo.to_ne_bytes());
    out
}

#[tracepoint(category = "sock", name = "inet_sock_set_state")]
pub fn auditor_tcp_state(ctx: TracePointContext) -> u32 {
    let _ = try_tcp_state(&ctx);
    0
}

#[inline(always)]
fn try_tcp_state(ctx: &TracePointContext) -> Result<(), i32> {
    let protocol: u16 = field(ctx, OFF_PROTOCOL);
    if protocol != IPPROTO_TCP as u16 {
        return Ok(());
    }
    let old: i32 = field(ctx, OFF_OLDSTATE);
    let new: i32 = field(ctx, OFF_NEWSTATE);
    if new == TCP_SYN_SENT {
        active_open(ctx)
    } else if old == TCP_SYN_RECV && new == TCP_ESTABLISHED {
        passive_open(ctx)
    } else {
        Ok(())
    }
}

/// Local and remote address as the tracepoint gives them ("s" is always this socket's side).
#[inline(always)]
fn addresses(ctx: &TracePointContext, family: u8) -> Result<([u8; 16], [u8; 16]), i32> {
    let mut local = [0u8; 16];
    let mut remote = [0u8; 16];
    if family == AF_INET {
        let s: u32 = field(ctx, OFF_SADDR);
        let d: u32 = field(ctx, OFF_DADDR);
        local[..4].copy_from_slice(&s.to_ne_bytes());
        remote[..4].copy_from_slice(&d.to_ne_bytes());
    } else {
        local = field_v6(ctx, OFF_SADDR_V6);
        remote = field_v6(ctx, OFF_DADDR_V6);
    }
    Ok((local, remote))
}

#[inline(always)]
fn family(ctx: &TracePointContext) -> Result<u8, i32> {
    let family: u16 = field(ctx, OFF_FAMILY);
    match family as u8 {
        AF_INET => Ok(AF_INET),
        AF_INET6 => Ok(AF_INET6),
        _ => Err(0),
    }
}

#[inline(always)]
fn active_open(ctx: &TracePointContext) -> Result<(), i32> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if is_self(tgid) {
        return Ok(());
    }
    let family = family(ctx)?;
    let (local_addr, remote_addr) = addresses(ctx, family)?;
    let dport: u16 = field(ctx, OFF_DPORT);
    let sk: u64 = field(ctx, OFF_SKADDR);
    let key = FlowKey {
        local_addr,
        remote_addr,
        netns_cookie: sock_netns_cookie(sk as *const u8),
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid,
        port: dport,
        family,
        transport: IPPROTO_TCP,
        direction: DIRECTION_EGRESS,
        _pad: [0; 7],
    };
    observe(&key, || Actor::current(pid_tgid), HOOK_TCP_ACTIVE);
    Ok(())
}

#[inline(always)]
fn passive_open(ctx: &TracePointContext) -> Result<(), i32> {
    let family = family(ctx)?;
    let (local_addr, remote_addr) = addresses(ctx, family)?;
    let sport: u16 = field(ctx, OFF_SPORT);
    let sk: u64 = field(ctx, OFF_SKADDR);
    let netns_cookie = sock_netns_cookie(sk as *const u8);
    let listener = ListenerKey {
        netns_cookie,
        port: sport,
        transport: IPPROTO_TCP,
        _pad: [0; 5],
    };
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
        return Ok(());
    }
    let key = FlowKey {
        local_addr,
        remote_addr,
        netns_cookie,
        cgroup_id,
        tgid,
        port: sport,
        family,
        transport: IPPROTO_TCP,
        direction: DIRECTION_INGRESS,
        _pad: [0; 7],
    };
    observe(&key, || actor, HOOK_TCP_PASSIVE);
    Ok(())
}
