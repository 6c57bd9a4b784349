//! Listener owners from cgroup v2 `post_bind4/6`: bind runs in the server's own task, so
//! this is where its pid, comm and cgroup are known for the passive opens that follow.

use auditor_common::{IPPROTO_TCP, ListenerKey, ListenerOwner};
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{bpf_get_current_cgroup_id, bpf_get_netns_cookie},
    },
    macros::cgroup_sock,
    programs::SockContext,
};

use crate::flow::AUDITOR_LISTENERS;

const ALLOW: i32 = 1;

#[cgroup_sock(post_bind4)]
pub fn auditor_post_bind4(ctx: SockContext) -> i32 {
    let _ = try_post_bind(&ctx);
    ALLOW
}

#[cgroup_sock(post_bind6)]
pub fn auditor_post_bind6(ctx: SockContext) -> i32 {
    let _ = try_post_bind(&ctx);
    ALLOW
}

#[inline(always)]
fn try_post_bind(ctx: &SockContext) -> Result<(), i32> {
    if crate::flow::empty_programs() {
        return Ok(());
    }
    let sock = unsafe { &*ctx.sock };
    if sock.protocol != IPPROTO_TCP as u32 {
        return Ok(());
    }
    let key = ListenerKey {
        netns_cookie: unsafe { bpf_get_netns_cookie(ctx.sock.cast()) },
        // src_port is in host byte order in struct bpf_sock.
        port: sock.src_port as u16,
        transport: IPPROTO_TCP,
        _pad1: 0,
        _pad4: 0,
    };
    let pid_tgid = bpf_get_current_pid_tgid();
    let owner = ListenerOwner {
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        tgid: (pid_tgid >> 32) as u32,
        pid: pid_tgid as u32,
        uid: bpf_get_current_uid_gid() as u32,
        _pad: 0,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    AUDITOR_LISTENERS.insert(&key, &owner, 0)
}
