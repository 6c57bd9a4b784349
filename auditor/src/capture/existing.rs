//! Sockets already open: established TCP connections, connected UDP sockets and TCP
//! listeners of every network namespace on the node, with the process that holds each.
//! The probes only see connections as they open, so without this a connection pooled
//! before the auditor started (or a listener bound before it) would stay invisible.
//!
//! Normally found by the kernel's socket iterator (`socket_iter`); this module holds what
//! both ways share (`Found`, `Scan`, the flow events) and the fallback for kernels that
//! cannot run the iterator: walking /proc, every process's socket inodes (`/proc/PID/fd`),
//! and once per network namespace its socket tables (`/proc/PID/net/{tcp,tcp6,udp,udp6}`
//! read through a process in it). A socket several processes share (fork) goes to the
//! lowest pid. Needs root (other users' fds). A process that exits mid-walk is skipped.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

use auditor_common::{
    AF_INET, AF_INET6, DIRECTION_EGRESS, DIRECTION_INGRESS, FlowEvent, FlowKey, Hook, IPPROTO_TCP,
    IPPROTO_UDP, ListenerKey, ListenerOwner, Transport,
};

/// What a found socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    /// TCP in ESTABLISHED.
    Established,
    /// UDP with a peer (connect()ed).
    Connected,
    /// TCP in LISTEN.
    Listen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSocket {
    pub transport: Transport,
    pub state: SocketState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub inode: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub tgid: u32,
    pub uid: u32,
    pub comm: String,
    pub cgroup_id: u64,
}

/// Which network namespace a found socket is in, as each way of finding it knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netns {
    /// The /proc walk: the inode of `/proc/PID/ns/net`, turned into a cookie later.
    Inode(u64),
    /// The socket iterator: the cookie itself, read from the socket in the kernel.
    Cookie(u64),
}

impl Netns {
    /// The namespace's cookie, what flow records carry (`netns_cookie`), resolving an
    /// inode through `cookie_of_inode` (0 when unknown).
    pub fn cookie(self, cookie_of_inode: &mut impl FnMut(u64) -> u64) -> u64 {
        match self {
            Netns::Inode(ino) => cookie_of_inode(ino),
            Netns::Cookie(c) => c,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub netns: Netns,
    pub socket: OpenSocket,
    pub owner: Owner,
    /// For TCP: accepted from a listener of this process's namespace on the same local
    /// port (ingress), rather than connected out (egress).
    pub accepted: bool,
}

/// One walk's result and what it cost.
#[derive(Debug, Default)]
pub struct Scan {
    pub found: Vec<Found>,
    pub processes: usize,
    pub namespaces: usize,
    /// Sockets in the tables with no process holding them (e.g. in TIME_WAIT handover, or
    /// a process gone mid-walk): not reported.
    pub unowned: usize,
    pub elapsed: Duration,
}

/// Walks /proc (`proc` is its mount point: `/proc` except in tests) and returns every
/// open connection and listener with its owner. `cgroup_root` resolves cgroup ids.
pub fn scan(proc: &Path, cgroup_root: &Path) -> Scan {
    let started = Instant::now();
    let mut scan = Scan::default();
    // inode of a socket -> the lowest pid holding it.
    let mut holders: HashMap<u64, u32> = HashMap::new();
    // netns inode -> one pid in it (to read its tables through).
    let mut namespaces: HashMap<u64, u32> = HashMap::new();
    let mut pids: Vec<u32> = std::fs::read_dir(proc)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut pid_netns: HashMap<u32, u64> = HashMap::new();
    for &pid in &pids {
        let dir = proc.join(pid.to_string());
        let Ok(ns) = std::fs::metadata(dir.join("ns/net")) else {
            continue; // gone, or a kernel thread
        };
        scan.processes += 1;
        namespaces.entry(ns.ino()).or_insert(pid);
        pid_netns.insert(pid, ns.ino());
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            holders.entry(inode).or_insert(pid);
        }
    }
    scan.namespaces = namespaces.len();
    let mut owners: HashMap<u32, Option<Owner>> = HashMap::new();
    let mut cgroup_ids: HashMap<String, u64> = HashMap::new();
    for (&netns_inode, &via) in &namespaces {
        let net = proc.join(via.to_string()).join("net");
        let mut sockets = Vec::new();
        for (file, transport, v6) in [
            ("tcp", Transport::Tcp, false),
            ("tcp6", Transport::Tcp, true),
            ("udp", Transport::Udp, false),
            ("udp6", Transport::Udp, true),
        ] {
            if let Ok(text) = std::fs::read_to_string(net.join(file)) {
                sockets.extend(
                    text.lines()
                        .skip(1)
                        .filter_map(|l| parse_line(l, transport, v6)),
                );
            }
        }
        // Local (address, port) of this namespace's TCP listeners: an established socket on
        // one of these ports was accepted.
        let listening: HashSet<u16> = sockets
            .iter()
            .filter(|s| s.state == SocketState::Listen)
            .map(|s| s.local.port())
            .collect();
        for socket in sockets {
            let Some(&pid) = holders.get(&socket.inode) else {
                scan.unowned += 1;
                continue;
            };
            // A socket is listed in the tables of its own namespace only; a holder in
            // another namespace (an fd passed across) still owns it.
            let owner = owners
                .entry(pid)
                .or_insert_with(|| owner(proc, pid, cgroup_root, &mut cgroup_ids))
                .clone();
            let Some(owner) = owner else {
                scan.unowned += 1;
                continue;
            };
            let accepted = socket.transport == Transport::Tcp
                && socket.state == SocketState::Established
                && listening.contains(&socket.local.port());
            scan.found.push(Found {
                netns: Netns::Inode(netns_inode),
                socket,
                owner,
                accepted,
            });
        }
    }
    scan.elapsed = started.elapsed();
    scan
}

fn owner(
    proc: &Path,
    pid: u32,
    cgroup_root: &Path,
    cgroup_ids: &mut HashMap<String, u64>,
) -> Option<Owner> {
    let dir = proc.join(pid.to_string());
    let uid = std::fs::metadata(&dir).ok()?.uid();
    let comm = std::fs::read_to_string(dir.join("comm"))
        .ok()?
        .trim_end()
        .to_string();
    // cgroup v2: the line "0::/path"; its directory's inode is the cgroup id.
    let cgroup_id = std::fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|c| {
            let path = c.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
            if let Some(&id) = cgroup_ids.get(&path) {
                return Some(id);
            }
            let id = std::fs::metadata(cgroup_root.join(path.trim_start_matches('/')))
                .ok()?
                .ino();
            cgroup_ids.insert(path, id);
            Some(id)
        })
        .unwrap_or(0);
    Some(Owner {
        tgid: pid,
        uid,
        comm,
        cgroup_id,
    })
}

/// One line of /proc/net/{tcp,udp}{,6}: `sl local rem st ... uid timeout inode ...`.
/// Addresses are the kernel's in-memory words printed as hex (so each 4-byte word is
/// byte-swapped on little-endian machines); ports are hex in host order.
fn parse_line(line: &str, transport: Transport, v6: bool) -> Option<OpenSocket> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let local = parse_endpoint(f.get(1)?, v6)?;
    let remote = parse_endpoint(f.get(2)?, v6)?;
    let st = u8::from_str_radix(f.get(3)?, 16).ok()?;
    let inode: u64 = f.get(9)?.parse().ok()?;
    const ESTABLISHED: u8 = 1;
    const LISTEN: u8 = 10;
    let state = match (transport, st) {
        (Transport::Tcp, ESTABLISHED) => SocketState::Established,
        (Transport::Tcp, LISTEN) => SocketState::Listen,
        // A UDP socket shows ESTABLISHED once connect()ed.
        (Transport::Udp, ESTABLISHED) => SocketState::Connected,
        _ => return None,
    };
    if inode == 0 {
        return None; // no file: a socket being torn down
    }
    Some(OpenSocket {
        transport,
        state,
        local,
        remote,
        inode,
    })
}

fn parse_endpoint(field: &str, v6: bool) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = if v6 {
        let mut b = [0u8; 16];
        for i in 0..4 {
            b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
        }
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        IpAddr::V4(Ipv4Addr::from(word(0)?))
    };
    Some(SocketAddr::new(ip, port))
}

/// Found sockets as flow events (hook `existing`), one per flow: sockets of the same flow
/// (a pool of connections to one server) are one event whose `count` is how many are open.
/// Listeners are events too (ingress, no peer, count 0): they are not connections.
/// `cookie` maps a namespace inode to its cookie (0 when unknown; only the /proc walk
/// knows namespaces by inode); `now_ns` is monotonic.
pub fn events(
    found: &[Found],
    mut cookie: impl FnMut(u64) -> u64,
    now_ns: u64,
) -> Vec<(FlowEvent, bool)> {
    let mut by_key: HashMap<FlowKey, (FlowEvent, bool)> = HashMap::new();
    for f in found {
        let s = &f.socket;
        let ingress = s.state == SocketState::Listen || f.accepted;
        let (family, local, remote) = match (s.local.ip(), s.remote.ip()) {
            (IpAddr::V4(l), IpAddr::V4(r)) => (AF_INET, v4(l), v4(r)),
            (l, r) => (AF_INET6, v6(l), v6(r)),
        };
        let key = FlowKey {
            local_addr: local,
            remote_addr: remote,
            netns_cookie: f.netns.cookie(&mut cookie),
            cgroup_id: f.owner.cgroup_id,
            tgid: f.owner.tgid,
            port: if ingress {
                s.local.port()
            } else {
                s.remote.port()
            },
            family,
            transport: match s.transport {
                Transport::Tcp => IPPROTO_TCP,
                Transport::Udp => IPPROTO_UDP,
            },
            direction: if ingress {
                DIRECTION_INGRESS
            } else {
                DIRECTION_EGRESS
            },
            _pad1: 0,
            _pad2: 0,
            _pad4: 0,
        };
        let listener = s.state == SocketState::Listen;
        let entry = by_key.entry(key).or_insert_with(|| {
            let mut comm = [0u8; 16];
            let n = f.owner.comm.len().min(15);
            comm[..n].copy_from_slice(&f.owner.comm.as_bytes()[..n]);
            (
                FlowEvent {
                    key,
                    first_seen_ns: now_ns,
                    last_seen_ns: now_ns,
                    count: 0,
                    pid: f.owner.tgid,
                    uid: f.owner.uid,
                    comm,
                    hook: Hook::Existing as u8,
                    flags: 0,
                    _pad: 0,
                    epoch: 0,
                },
                listener,
            )
        });
        if !listener {
            entry.0.count += 1;
        }
    }
    by_key.into_values().collect()
}

/// The listener-table entries for found listeners, so passive opens to them get an owner.
pub fn listeners(
    found: &[Found],
    mut cookie: impl FnMut(u64) -> u64,
) -> Vec<(ListenerKey, ListenerOwner)> {
    found
        .iter()
        .filter(|f| f.socket.state == SocketState::Listen)
        .map(|f| {
            let mut comm = [0u8; 16];
            let n = f.owner.comm.len().min(15);
            comm[..n].copy_from_slice(&f.owner.comm.as_bytes()[..n]);
            (
                ListenerKey {
                    netns_cookie: f.netns.cookie(&mut cookie),
                    port: f.socket.local.port(),
                    transport: IPPROTO_TCP,
                    _pad1: 0,
                    _pad4: 0,
                },
                ListenerOwner {
                    cgroup_id: f.owner.cgroup_id,
                    tgid: f.owner.tgid,
                    pid: f.owner.tgid,
                    uid: f.owner.uid,
                    _pad: 0,
                    comm,
                },
            )
        })
        .collect()
}

fn v4(a: Ipv4Addr) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&a.octets());
    out
}

fn v6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernels_socket_table_lines() {
        // From /proc/net/tcp: 127.0.0.1:631 listening, inode 12345.
        let l = "   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
        let s = parse_line(l, Transport::Tcp, false).expect("listener");
        assert_eq!(s.state, SocketState::Listen);
        assert_eq!(s.local, "127.0.0.1:631".parse().unwrap());
        assert_eq!(s.inode, 12345);
        // 10.0.0.2:43210 -> 10.0.0.1:80 established.
        let l = "   1: 0200000A:A8CA 0100000A:0050 01 00000000:00000000 00:00000000 00000000  1000        0 777 1";
        let s = parse_line(l, Transport::Tcp, false).expect("established");
        assert_eq!(s.state, SocketState::Established);
        assert_eq!(s.remote, "10.0.0.1:80".parse().unwrap());
        // ::1 port 53, unconnected UDP: not reported.
        let l = "  2: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 555 2";
        assert_eq!(parse_line(l, Transport::Udp, true), None);
        let l = "  2: 00000000000000000000000001000000:0035 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000     0        0 556 2";
        let s = parse_line(l, Transport::Udp, true).expect("connected udp");
        assert_eq!(s.local, "[::1]:53".parse().unwrap());
        assert_eq!(s.remote, "[::1]:8080".parse().unwrap());
    }

    #[test]
    fn one_event_per_flow_counts_its_open_connections_and_listeners_count_none() {
        let owner = Owner {
            tgid: 42,
            uid: 0,
            comm: "pool".into(),
            cgroup_id: 7,
        };
        let sock = |state, local: &str, remote: &str, inode| Found {
            netns: Netns::Inode(1),
            socket: OpenSocket {
                transport: Transport::Tcp,
                state,
                local: local.parse().unwrap(),
                remote: remote.parse().unwrap(),
                inode,
            },
            owner: owner.clone(),
            accepted: false,
        };
        let found = vec![
            sock(
                SocketState::Established,
                "10.0.0.2:40000",
                "10.0.0.1:5432",
                1,
            ),
            sock(
                SocketState::Established,
                "10.0.0.2:40001",
                "10.0.0.1:5432",
                2,
            ),
            sock(SocketState::Listen, "0.0.0.0:8080", "0.0.0.0:0", 3),
        ];
        let mut evs = events(&found, |_| 99, 1000);
        evs.sort_by_key(|(e, _)| e.key.port);
        assert_eq!(evs.len(), 2);
        let (pool, _) = &evs[0];
        assert_eq!(
            (pool.key.port, pool.count, pool.key.direction),
            (5432, 2, DIRECTION_EGRESS)
        );
        assert_eq!(
            (pool.key.netns_cookie, pool.pid, pool.hook),
            (99, 42, Hook::Existing as u8)
        );
        let (listener, is_listener) = &evs[1];
        assert!(is_listener);
        assert_eq!(
            (listener.key.port, listener.count, listener.key.direction),
            (8080, 0, DIRECTION_INGRESS)
        );
        assert_eq!(listeners(&found, |_| 99).len(), 1);
    }
}
