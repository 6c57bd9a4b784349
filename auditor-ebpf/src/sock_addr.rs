//! UDP from cgroup v2 sock_addr hooks on the cgroup root: `connect4/6` for connected UDP,
//! `sendmsg4/6` for unconnected `send_to`, `recvmsg4/6` for datagrams received (ingress,
//! from the receiver's side). Audit only: every program returns 1 (allow).
//! TCP connects also pass `connect*`; they return at the protocol check and are left to the
//! TCP hook (`tcp.rs`), which sees both ends. Before that check, a connect or send to port 53 (UDP
//! or TCP) is noted as a DNS query (`dns::note_query`), so its answer is known solicited.

use auditor_common::{
    AF_INET, AF_INET6, DIRECTION_EGRESS, DIRECTION_INGRESS, DNS_PORT, DnsQuerier, FlowKey,
    HOOK_UDP_CONNECT, HOOK_UDP_RECVMSG, HOOK_UDP_SENDMSG, IPPROTO_UDP,
};
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_cgroup_id, bpf_get_netns_cookie},
    },
    macros::cgroup_sock_addr,
    programs::SockAddrContext,
};

use crate::{
    flow::{Actor, empty_programs, is_self, observe},
    key::{v4, v6},
};

const ALLOW: i32 = 1;

#[cgroup_sock_addr(connect4)]
pub fn auditor_connect4(ctx: SockAddrContext) -> i32 {
    let _ = try_udp(&ctx, AF_INET, HOOK_UDP_CONNECT);
    ALLOW
}

#[cgroup_sock_addr(connect6)]
pub fn auditor_connect6(ctx: SockAddrContext) -> i32 {
    let _ = try_udp(&ctx, AF_INET6, HOOK_UDP_CONNECT);
    ALLOW
}

#[cgroup_sock_addr(sendmsg4)]
pub fn auditor_sendmsg4(ctx: SockAddrContext) -> i32 {
    let _ = try_udp(&ctx, AF_INET, HOOK_UDP_SENDMSG);
    ALLOW
}

#[cgroup_sock_addr(sendmsg6)]
pub fn auditor_sendmsg6(ctx: SockAddrContext) -> i32 {
    let _ = try_udp(&ctx, AF_INET6, HOOK_UDP_SENDMSG);
    ALLOW
}

#[cgroup_sock_addr(recvmsg4)]
pub fn auditor_recvmsg4(ctx: SockAddrContext) -> i32 {
    udp_received(&ctx, AF_INET);
    ALLOW
}

#[cgroup_sock_addr(recvmsg6)]
pub fn auditor_recvmsg6(ctx: SockAddrContext) -> i32 {
    udp_received(&ctx, AF_INET6);
    ALLOW
}

/// A datagram received: the sender is the remote end, the receiving socket's port is the
/// service port (as for a passive TCP open), and the receiving task is the owner.
#[inline(always)]
fn udp_received(ctx: &SockAddrContext, family: u8) {
    if empty_programs() {
        return;
    }
    let sa = unsafe { &*ctx.sock_addr };
    if sa.protocol != IPPROTO_UDP as u32 {
        return;
    }
    // An answer from a DNS server this socket sent a query to is the reply to that query
    // (whose egress flow is counted), not a peer connecting to a service here. Only then:
    // any other datagram from port 53 is a flow like any other.
    if u16::from_be(sa.user_port as u16) == DNS_PORT {
        let server = if family == AF_INET {
            v4(sa.user_ip4)
        } else {
            v6(sa.user_ip6)
        };
        if crate::dns::queried(ctx.sock_addr.cast(), server) {
            return;
        }
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if is_self(tgid) {
        return;
    }
    let sk = unsafe { sa.__bindgen_anon_1.sk };
    if sk.is_null() {
        return;
    }
    let sock = unsafe { &*sk };
    let (remote, local) = if family == AF_INET {
        (v4(sa.user_ip4), v4(sock.src_ip4))
    } else {
        (v6(sa.user_ip6), v6(sock.src_ip6))
    };
    let key = FlowKey {
        local_addr: local,
        remote_addr: remote,
        netns_cookie: unsafe { bpf_get_netns_cookie(ctx.sock_addr.cast()) },
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid,
        // bpf_sock.src_port is in host byte order.
        port: sock.src_port as u16,
        family,
        transport: IPPROTO_UDP,
        direction: DIRECTION_INGRESS,
        _pad1: 0,
        _pad2: 0,
        _pad4: 0,
    };
    observe(&key, || Actor::current(pid_tgid), HOOK_UDP_RECVMSG);
}

#[inline(always)]
fn try_udp(ctx: &SockAddrContext, family: u8, hook: u8) -> Result<(), i32> {
    if empty_programs() {
        return Ok(());
    }
    let sa = unsafe { &*ctx.sock_addr };
    if u16::from_be(sa.user_port as u16) == DNS_PORT {
        dns_query(ctx, family);
    }
    if sa.protocol != IPPROTO_UDP as u32 {
        return Ok(());
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    if is_self(tgid) {
        return Ok(());
    }
    // user_ip4 holds the address in network byte order: its memory bytes are a.b.c.d.
    let (remote, local) = if family == AF_INET {
        let local = if hook == HOOK_UDP_SENDMSG {
            v4(sa.msg_src_ip4)
        } else {
            v4(0)
        };
        (v4(sa.user_ip4), local)
    } else {
        (v6(sa.user_ip6), v4(0))
    };
    let key = FlowKey {
        local_addr: local,
        remote_addr: remote,
        netns_cookie: unsafe { bpf_get_netns_cookie(ctx.sock_addr.cast()) },
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid,
        // The low 16 bits hold the port in network byte order.
        port: u16::from_be(sa.user_port as u16),
        family,
        transport: IPPROTO_UDP,
        direction: DIRECTION_EGRESS,
        _pad1: 0,
        _pad2: 0,
        _pad4: 0,
    };
    observe(&key, || Actor::current(pid_tgid), hook);
    Ok(())
}

/// A query to a DNS server (any transport): who asked, for the answer to be tagged with.
#[inline(always)]
fn dns_query(ctx: &SockAddrContext, family: u8) {
    let sa = unsafe { &*ctx.sock_addr };
    let server = if family == AF_INET {
        v4(sa.user_ip4)
    } else {
        v6(sa.user_ip6)
    };
    let querier = DnsQuerier {
        netns_cookie: unsafe { bpf_get_netns_cookie(ctx.sock_addr.cast()) },
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        _pad: 0,
    };
    crate::dns::note_query(ctx.sock_addr.cast(), server, &querier);
}
