//! The node's open sockets, from a BPF iterator over every task's files (`iter/task_file`):
//! for each file that is an IPv4/IPv6 socket in a state user space reports (TCP
//! ESTABLISHED or LISTEN, connected UDP), one `OpenSocket` record with its holder. User
//! space makes an iterator instance per walk and reads the records; this replaces a walk
//! of /proc that read a link per file descriptor and parsed every namespace's tables.
//!
//! The kernel skips threads that share their leader's file table, so a process's files
//! come once. A socket several processes hold comes once per holder (user space keeps
//! the lowest pid). Every load goes through BTF pointers at offsets user space read from
//! kernel BTF (`IterConfig`, frozen .rodata: the verifier sees constants and checks each
//! load against the kernel's types; a load that faults reads 0).

use auditor_common::{
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, IterConfig, OpenSocket, TCP_ESTABLISHED,
    TCP_LISTEN,
};
use aya_ebpf::{
    bindings::{file, seq_file},
    helpers::generated::{bpf_seq_write, bpf_sock_from_file},
};

/// Rewritten by user space before load (see `auditor_common::IterConfig`).
#[unsafe(no_mangle)]
static AUDITOR_ITER_CONFIG: IterConfig = IterConfig::DEFAULT;

const SOCK_STREAM: u16 = 1;
const SOCK_DGRAM: u16 = 2;

// `struct bpf_iter__task_file`: the program's context is the iterator function's arguments,
// one 8-byte slot each: (struct bpf_iter_meta *meta, struct task_struct *task, u32 fd,
// struct file *file). A stable kernel ABI.
const CTX_META: usize = 0;
const CTX_TASK: usize = 8;
const CTX_FILE: usize = 24;
/// `struct bpf_iter_meta.seq` (first member).
const META_SEQ: usize = 0;

/// aya-ebpf 0.2 has no iterator macro: the section name is what makes this an
/// `iter/task_file` program, and aya names it after the symbol.
#[unsafe(link_section = "iter/task_file")]
#[unsafe(no_mangle)]
pub extern "C" fn auditor_iter_sockets(ctx: *const u8) -> i32 {
    unsafe { task_file(ctx) };
    0
}

#[inline(always)]
fn cfg() -> IterConfig {
    // Volatile: otherwise the compiler folds the default values in at build time.
    unsafe { core::ptr::read_volatile(&AUDITOR_ITER_CONFIG) }
}

#[inline(always)]
unsafe fn load<T: Copy>(base: *const u8, offset: usize) -> T {
    unsafe { core::ptr::read_volatile(base.add(offset).cast::<T>()) }
}

#[inline(always)]
unsafe fn load16(base: *const u8, offset: usize) -> [u8; 16] {
    let hi: u64 = unsafe { load(base, offset) };
    let lo: u64 = unsafe { load(base, offset + 8) };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hi.to_ne_bytes());
    out[8..].copy_from_slice(&lo.to_ne_bytes());
    out
}

#[inline(always)]
unsafe fn task_file(ctx: *const u8) {
    let c = cfg();
    if c.valid == 0 {
        return;
    }
    let task: *const u8 = unsafe { load(ctx, CTX_TASK) };
    let f: *mut file = unsafe { load(ctx, CTX_FILE) };
    // Both are NULL in the call that ends the iteration.
    if task.is_null() || f.is_null() {
        return;
    }
    let socket = unsafe { bpf_sock_from_file(f) }.cast::<u8>();
    if socket.is_null() {
        return; // not a socket
    }
    let sk: *const u8 = unsafe { load(socket, c.socket_sk as usize) };
    if sk.is_null() {
        return;
    }
    let o = c.sock;
    let family: u16 = unsafe { load(sk, o.family as usize) };
    if family != AF_INET as u16 && family != AF_INET6 as u16 {
        return; // unix, netlink, packet...: not audited
    }
    let protocol: u16 = unsafe { load(sk, o.protocol as usize) };
    let kind: u16 = unsafe { load(sk, c.sock_type as usize) };
    let state: u8 = unsafe { load(sk, c.sock_state as usize) };
    let keep = if protocol == IPPROTO_TCP as u16 && kind == SOCK_STREAM {
        state == TCP_ESTABLISHED || state == TCP_LISTEN
    } else if protocol == IPPROTO_UDP as u16 && kind == SOCK_DGRAM {
        state == TCP_ESTABLISHED
    } else {
        false
    };
    if !keep {
        return;
    }
    let mut rec = OpenSocket {
        sk: sk as u64,
        netns_cookie: 0,
        cgroup_id: 0,
        local_addr: [0; 16],
        remote_addr: [0; 16],
        tgid: 0,
        pid: 0,
        uid: 0,
        comm: [0; 16],
        local_port: unsafe { load(sk, o.num as usize) },
        remote_port: u16::from_be(unsafe { load(sk, o.dport as usize) }),
        family: family as u8,
        transport: protocol as u8,
        state,
        _pad: [0; 5],
    };
    unsafe {
        if family == AF_INET as u16 {
            let s: u32 = load(sk, o.rcv_saddr as usize);
            let d: u32 = load(sk, o.daddr as usize);
            rec.local_addr[..4].copy_from_slice(&s.to_ne_bytes());
            rec.remote_addr[..4].copy_from_slice(&d.to_ne_bytes());
        } else {
            rec.local_addr = load16(sk, o.v6_rcv_saddr as usize);
            rec.remote_addr = load16(sk, o.v6_daddr as usize);
        }
        let net: *const u8 = load(sk, c.sock_net as usize);
        if !net.is_null() {
            rec.netns_cookie = load(net, c.net_cookie as usize);
        }
        rec.tgid = load::<i32>(task, c.task_tgid as usize) as u32;
        rec.pid = load::<i32>(task, c.task_pid as usize) as u32;
        rec.comm = load16(task, c.task_comm as usize);
        let cred: *const u8 = load(task, c.task_cred as usize);
        if !cred.is_null() {
            rec.uid = load(cred, c.cred_uid as usize);
        }
        let cgroups: *const u8 = load(task, c.task_cgroups as usize);
        if !cgroups.is_null() {
            let cgrp: *const u8 = load(cgroups, c.css_set_dfl_cgrp as usize);
            if !cgrp.is_null() {
                let kn: *const u8 = load(cgrp, c.cgroup_kn as usize);
                if !kn.is_null() {
                    rec.cgroup_id = load(kn, c.kernfs_node_id as usize);
                }
            }
        }
        let meta: *const u8 = load(ctx, CTX_META);
        let seq: *mut seq_file = load(meta, META_SEQ);
        // Fails only when the reader's buffer is full; the kernel then calls this
        // program again for the same file after user space's next read (seq_file's
        // overflow retry), so nothing is lost.
        let _ = bpf_seq_write(
            seq,
            (&raw const rec).cast(),
            core::mem::size_of::<OpenSocket>() as u32,
        );
    }
}
