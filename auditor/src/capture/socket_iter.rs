//! How the node's open sockets are enumerated (at start and every `--active-interval`):
//! by the kernel's socket iterator (`auditor_iter_sockets`, an `iter/task_file` program:
//! one fixed record per socket with its holder, no /proc at all) or, where the kernel
//! cannot run it (no BTF, no iterators), by the /proc walk of `existing`. Both give the
//! same `Scan`, so everything after the enumeration is one path.

use std::{
    collections::{HashMap, HashSet},
    io::Read,
    net::SocketAddr,
    path::Path,
    time::Instant,
};

use auditor_common::{
    IPPROTO_TCP, IterConfig, OpenSocket as SocketRecord, TCP_LISTEN, Transport,
    names::{ITER_TASK_FILE, PROG_ITER_SOCKETS},
};
use aya::{Ebpf, programs::Iter};

use super::{
    existing::{Found, Netns, OpenSocket, Owner, Scan, SocketState},
    record::{addr, comm},
};

/// `--existing-sockets`: how open sockets are enumerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExistingSockets {
    /// The kernel's socket iterator, or the /proc walk where the kernel cannot run it.
    #[default]
    Auto,
    /// The kernel's socket iterator: starting fails where the kernel cannot run it. (A walk
    /// that fails later still falls back to /proc, saying so in the log and in
    /// `auditor_open_sockets_method`: the sockets are found either way.)
    Iterator,
    /// The /proc walk only (costs more CPU: a link read per open file descriptor).
    Proc,
}

/// Which enumeration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Iterator,
    Proc,
}

impl Method {
    pub const fn name(self) -> &'static str {
        match self {
            Method::Iterator => "iterator",
            Method::Proc => "proc",
        }
    }
}

/// The iterator's load-time offsets, from kernel BTF; `Err` says why there are none (the
/// program is then not loaded).
pub fn iter_config(
    kernel_btf: Result<&btf_rs::Btf, &super::btf::BtfError>,
    wanted: ExistingSockets,
) -> Result<IterConfig, String> {
    if wanted == ExistingSockets::Proc {
        return Err("--existing-sockets proc".into());
    }
    match kernel_btf {
        Ok(btf) => super::btf::iter_config_in(btf).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Enumerates open sockets the way chosen at load.
pub struct SocketWalker {
    pub method: Method,
    /// Why the iterator is not used, when it is not.
    pub fallback: Option<String>,
}

impl SocketWalker {
    /// Loads the iterator program when `config` is there and the kernel takes it. With
    /// `ExistingSockets::Iterator` a failure is the caller's error; with `Auto` it means
    /// the /proc walk, logged with its reason.
    pub fn load(
        ebpf: &mut Ebpf,
        btf: Result<&aya::Btf, &aya::BtfError>,
        wanted: ExistingSockets,
        config: Result<IterConfig, String>,
    ) -> Result<SocketWalker, String> {
        let loaded = config.and_then(|_| load_program(ebpf, btf));
        match (loaded, wanted) {
            (Ok(()), _) => Ok(SocketWalker {
                method: Method::Iterator,
                fallback: None,
            }),
            (Err(reason), ExistingSockets::Iterator) => Err(reason),
            (Err(reason), _) => {
                if wanted == ExistingSockets::Auto {
                    tracing::warn!(reason = %reason, "the socket iterator cannot run here; open sockets are enumerated from /proc (more CPU per walk)");
                }
                Ok(SocketWalker {
                    method: Method::Proc,
                    fallback: Some(reason),
                })
            }
        }
    }

    /// One enumeration. An iterator walk that fails (never seen) falls back to /proc for
    /// this walk and every later one, with a warning: the sockets are still found.
    pub fn scan(&mut self, ebpf: &mut Ebpf, cgroup_root: &Path) -> Scan {
        if self.method == Method::Iterator {
            let started = Instant::now();
            match read_records(ebpf) {
                Ok(records) => {
                    let mut scan = scan_records(&records);
                    scan.elapsed = started.elapsed();
                    return scan;
                }
                Err(reason) => {
                    tracing::warn!(reason = %reason, "the socket iterator failed; open sockets are enumerated from /proc from now on");
                    self.method = Method::Proc;
                    self.fallback = Some(reason);
                }
            }
        }
        super::existing::scan(Path::new("/proc"), cgroup_root)
    }
}

fn program(ebpf: &mut Ebpf) -> Result<&mut Iter, String> {
    ebpf.program_mut(PROG_ITER_SOCKETS)
        .ok_or_else(|| format!("program `{PROG_ITER_SOCKETS}` is missing from the kernel object"))?
        .try_into()
        .map_err(|e| format!("program `{PROG_ITER_SOCKETS}`: {e}"))
}

fn load_program(ebpf: &mut Ebpf, btf: Result<&aya::Btf, &aya::BtfError>) -> Result<(), String> {
    let btf = btf.map_err(|e| format!("kernel BTF: {e}"))?;
    let prog = program(ebpf)?;
    prog.load(ITER_TASK_FILE, btf).map_err(|e| {
        if let aya::programs::ProgramError::LoadError { verifier_log, .. } = &e {
            tracing::debug!(program = PROG_ITER_SOCKETS, verifier_log = %verifier_log, "the verifier refused a program");
        }
        format!("loading `{PROG_ITER_SOCKETS}`: {e}")
    })
}

/// Runs the iterator once: a fresh link and iterator instance (a few syscalls), read to
/// its end. The kernel keeps each record whole across reads.
fn read_records(ebpf: &mut Ebpf) -> Result<Vec<SocketRecord>, String> {
    let prog = program(ebpf)?;
    let id = prog
        .attach()
        .map_err(|e| format!("attaching the iterator: {e}"))?;
    let link = prog
        .take_link(id)
        .map_err(|e| format!("taking the iterator's link: {e}"))?;
    let mut file = link
        .into_file()
        .map_err(|e| format!("creating an iterator instance: {e}"))?;
    let mut bytes = Vec::with_capacity(1 << 16);
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("reading the iterator: {e}"))?;
    decode(&bytes)
}

const RECORD: usize = std::mem::size_of::<SocketRecord>();

fn decode(bytes: &[u8]) -> Result<Vec<SocketRecord>, String> {
    if !bytes.len().is_multiple_of(RECORD) {
        return Err(format!(
            "the iterator wrote {} bytes, not a whole number of {RECORD}-byte records",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(RECORD)
        // SAFETY: `SocketRecord` is repr(C) plain data (every bit pattern valid) and the
        // chunk is exactly its size; read_unaligned needs no alignment.
        .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr().cast::<SocketRecord>()) })
        .collect())
}

/// The records as a `Scan`: one `Found` per socket (the lowest pid of its holders, as the
/// /proc walk keeps), an established TCP socket on a port its namespace listens on being
/// an accepted one.
fn scan_records(records: &[SocketRecord]) -> Scan {
    let mut by_sk: HashMap<u64, &SocketRecord> = HashMap::with_capacity(records.len());
    for r in records {
        by_sk
            .entry(r.sk)
            .and_modify(|kept| {
                if r.tgid < kept.tgid {
                    *kept = r;
                }
            })
            .or_insert(r);
    }
    let listening: HashSet<(u64, u16)> = by_sk
        .values()
        .filter(|r| r.transport == IPPROTO_TCP && r.state == TCP_LISTEN)
        .map(|r| (r.netns_cookie, r.local_port))
        .collect();
    let mut found = Vec::with_capacity(by_sk.len());
    for r in by_sk.into_values() {
        let Some(transport) = Transport::from_ip_proto(r.transport) else {
            continue; // the program writes only TCP and UDP
        };
        let state = match (transport, r.state) {
            (Transport::Tcp, TCP_LISTEN) => SocketState::Listen,
            (Transport::Tcp, _) => SocketState::Established,
            (Transport::Udp, _) => SocketState::Connected,
        };
        let accepted = state == SocketState::Established
            && listening.contains(&(r.netns_cookie, r.local_port));
        found.push(Found {
            netns: Netns::Cookie(r.netns_cookie),
            socket: OpenSocket {
                transport,
                state,
                local: SocketAddr::new(addr(r.family, &r.local_addr), r.local_port),
                remote: SocketAddr::new(addr(r.family, &r.remote_addr), r.remote_port),
                inode: 0,
            },
            owner: Owner {
                tgid: r.tgid,
                uid: r.uid,
                comm: comm(&r.comm),
                cgroup_id: r.cgroup_id,
            },
            accepted,
        });
    }
    Scan {
        processes: records.iter().map(|r| r.tgid).collect::<HashSet<_>>().len(),
        namespaces: namespaces_of(&found),
        found,
        unowned: 0,
        elapsed: Default::default(),
    }
}

fn namespaces_of(found: &[Found]) -> usize {
    found.iter().map(|f| f.netns).collect::<HashSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use auditor_common::AF_INET;
    use auditor_common::{AF_INET6, IPPROTO_UDP, TCP_ESTABLISHED};
    use std::net::IpAddr;

    fn rec(
        sk: u64,
        tgid: u32,
        transport: u8,
        state: u8,
        local: &str,
        remote: &str,
    ) -> SocketRecord {
        let (l, r): (SocketAddr, SocketAddr) = (local.parse().unwrap(), remote.parse().unwrap());
        let bytes = |a: IpAddr| match a {
            IpAddr::V4(v4) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v4.octets());
                b
            }
            IpAddr::V6(v6) => v6.octets(),
        };
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"peer");
        SocketRecord {
            sk,
            netns_cookie: 77,
            cgroup_id: 5,
            local_addr: bytes(l.ip()),
            remote_addr: bytes(r.ip()),
            tgid,
            pid: tgid,
            uid: 1000,
            comm,
            local_port: l.port(),
            remote_port: r.port(),
            family: if l.is_ipv4() { AF_INET } else { AF_INET6 },
            transport,
            state,
            _pad: [0; 5],
        }
    }

    #[test]
    fn records_become_found_sockets_one_per_socket_with_the_lowest_pid_and_accepts_marked() {
        let records = [
            rec(1, 300, IPPROTO_TCP, TCP_LISTEN, "10.0.0.1:80", "0.0.0.0:0"),
            // Accepted on the listener's port, held by a worker (300) and its parent (200).
            rec(
                2,
                300,
                IPPROTO_TCP,
                TCP_ESTABLISHED,
                "10.0.0.1:80",
                "10.0.0.9:40000",
            ),
            rec(
                2,
                200,
                IPPROTO_TCP,
                TCP_ESTABLISHED,
                "10.0.0.1:80",
                "10.0.0.9:40000",
            ),
            rec(
                3,
                300,
                IPPROTO_TCP,
                TCP_ESTABLISHED,
                "[fd00::1]:40001",
                "[fd00::2]:5432",
            ),
            rec(
                4,
                300,
                IPPROTO_UDP,
                TCP_ESTABLISHED,
                "10.0.0.1:5353",
                "10.0.0.2:53",
            ),
        ];
        let bytes: Vec<u8> = records
            .iter()
            .flat_map(|r| {
                // SAFETY: plain repr(C) data, read as its bytes.
                unsafe {
                    std::slice::from_raw_parts((r as *const SocketRecord).cast::<u8>(), RECORD)
                }
                .to_vec()
            })
            .collect();
        let mut scan = scan_records(&decode(&bytes).expect("whole records"));
        scan.found
            .sort_by_key(|f| (f.socket.local.port(), f.socket.remote.port()));
        assert_eq!(scan.found.len(), 4);
        assert_eq!((scan.processes, scan.namespaces), (2, 1));
        let listener = &scan.found[0];
        assert_eq!(listener.socket.state, SocketState::Listen);
        let accepted = &scan.found[1];
        assert_eq!(accepted.socket.remote, "10.0.0.9:40000".parse().unwrap());
        assert!(accepted.accepted);
        assert_eq!(accepted.owner.tgid, 200, "lowest pid holding it");
        assert_eq!(accepted.owner.comm, "peer");
        assert_eq!(accepted.netns, Netns::Cookie(77));
        let udp = scan
            .found
            .iter()
            .find(|f| f.socket.transport == Transport::Udp)
            .unwrap();
        assert_eq!(
            (udp.socket.state, udp.socket.remote, udp.accepted),
            (
                SocketState::Connected,
                "10.0.0.2:53".parse().unwrap(),
                false
            )
        );
        let v6 = scan
            .found
            .iter()
            .find(|f| f.socket.local.is_ipv6())
            .unwrap();
        assert_eq!(v6.socket.remote, "[fd00::2]:5432".parse().unwrap());
        assert!(!v6.accepted);
        assert!(
            decode(&bytes[..RECORD + 1]).is_err(),
            "a torn record is an error"
        );
    }
}
