//! Network namespaces by cookie (the value `bpf_get_netns_cookie` gives the probes):
//! their addresses, and the source address the kernel would pick in them. Needed where
//! a flow's own source address says nothing — loopback (mesh sidecars) or an unbound UDP
//! socket — so the namespace itself identifies the workload.
//!
//! Namespaces are found in /run/netns (ip netns) and /proc/*/ns/net; each is entered
//! from a short-lived thread (setns changes only the calling thread) to read its cookie
//! (SO_NETNS_COOKIE) and interface addresses. Needs root.
//!
//! The cache holds one file descriptor per namespace it knows (entering one needs it), so
//! it is bounded (`MAX_NAMESPACES`) and cleaned: every scan forgets the namespaces no
//! longer found, closing their descriptors, and `tidy` rescans at least every
//! `TIDY_EVERY`, so namespaces that come and go (pod churn) leave nothing behind.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr, UdpSocket},
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::MetadataExt,
    },
    path::PathBuf,
    time::{Duration, Instant},
};

const REFRESH_MIN: Duration = Duration::from_secs(1);
/// A full rescan happens at least this often, to forget namespaces that are gone.
const TIDY_EVERY: Duration = Duration::from_secs(10);
/// More namespaces than a node runs pods; past it new ones are not cached (their flows
/// then lack namespace addresses) rather than holding descriptors without bound.
const MAX_NAMESPACES: usize = 4096;
const MAX_SOURCES: usize = 65_536;

struct Netns {
    fd: OwnedFd,
    addrs: Vec<IpAddr>,
}

pub struct NetnsDirectory {
    by_cookie: HashMap<u64, Netns>,
    seen_inodes: HashMap<u64, u64>,
    source_cache: HashMap<(u64, IpAddr), Option<IpAddr>>,
    last_scan: Option<Instant>,
}

impl Default for NetnsDirectory {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `f` inside the namespace `fd` on a thread of its own.
fn in_netns<T: Send + 'static>(
    fd: &OwnedFd,
    f: impl FnOnce() -> Option<T> + Send + 'static,
) -> Option<T> {
    let dup = fd.try_clone().ok()?;
    std::thread::spawn(move || {
        nix::sched::setns(&dup, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        f()
    })
    .join()
    .ok()
    .flatten()
}

/// Whether namespaces can be entered at all (setns needs CAP_SYS_ADMIN): tried on our
/// own namespace, which changes nothing. Without it loopback and unbound-UDP flows cannot
/// be attributed to their pod, so the daemon says so at start instead of quietly judging
/// them `unknown_source`.
pub fn access_check() -> Result<(), String> {
    let own =
        std::fs::File::open("/proc/self/ns/net").map_err(|e| format!("/proc/self/ns/net: {e}"))?;
    std::thread::spawn(move || {
        nix::sched::setns(&own, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("entering a network namespace (setns, needs CAP_SYS_ADMIN): {e}"))
    })
    .join()
    .map_err(|_| "the namespace check panicked".to_string())?
}

fn cookie_here() -> Option<u64> {
    let s = UdpSocket::bind("0.0.0.0:0")
        .or_else(|_| UdpSocket::bind("[::]:0"))
        .ok()?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: valid socket fd; the out pointer and length describe `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(cookie)
}

/// The non-loopback addresses of the calling thread's network namespace: for the daemon,
/// which runs in the host's, the node's own addresses.
pub(crate) fn addrs_here() -> Vec<IpAddr> {
    let Ok(ifs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = ifs
        .filter_map(|i| i.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .filter(|a| !a.is_loopback() && !matches!(a, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .collect();
    out.sort();
    out.dedup();
    out
}

impl NetnsDirectory {
    pub fn new() -> NetnsDirectory {
        NetnsDirectory {
            by_cookie: HashMap::new(),
            seen_inodes: HashMap::new(),
            source_cache: HashMap::new(),
            last_scan: None,
        }
    }

    /// Addresses of the namespace with this cookie (empty when unknown).
    pub fn addrs(&mut self, cookie: u64) -> &[IpAddr] {
        if cookie != 0 && !self.by_cookie.contains_key(&cookie) {
            self.scan();
        }
        self.by_cookie
            .get(&cookie)
            .map_or(&[], |n| n.addrs.as_slice())
    }

    /// The cookie of the namespace whose `/proc/PID/ns/net` has this inode (None when it
    /// cannot be entered, or is gone).
    pub fn cookie_of_inode(&mut self, inode: u64) -> Option<u64> {
        if !self.seen_inodes.contains_key(&inode) {
            self.scan();
        }
        self.seen_inodes.get(&inode).copied()
    }

    /// The source address the kernel picks in namespace `cookie` to reach `dst`: what an
    /// unbound UDP socket sent from. Cached per (namespace, destination).
    pub fn source_for(&mut self, cookie: u64, dst: IpAddr) -> Option<IpAddr> {
        if let Some(hit) = self.source_cache.get(&(cookie, dst)) {
            return *hit;
        }
        let _ = self.addrs(cookie);
        let found = self.by_cookie.get(&cookie).and_then(|n| {
            in_netns(&n.fd, move || {
                let any: SocketAddr = if dst.is_ipv4() {
                    "0.0.0.0:0".parse().ok()?
                } else {
                    "[::]:0".parse().ok()?
                };
                let s = UdpSocket::bind(any).ok()?;
                // connect() on UDP sends nothing: it only runs the route lookup.
                s.connect(SocketAddr::new(dst, 9)).ok()?;
                s.local_addr().ok().map(|a| a.ip())
            })
        });
        if self.source_cache.len() > MAX_SOURCES {
            self.source_cache.clear();
        }
        self.source_cache.insert((cookie, dst), found);
        found
    }

    /// Finds namespaces not seen yet, and forgets those no longer found. Rate-limited:
    /// unknown cookies (e.g. of namespaces already gone) must not turn into a scan per
    /// flow.
    pub fn scan(&mut self) {
        if self.last_scan.is_some_and(|t| t.elapsed() < REFRESH_MIN) {
            return;
        }
        self.last_scan = Some(Instant::now());
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/run/netns") {
            candidates.extend(dir.flatten().map(|e| e.path()));
        }
        if let Ok(dir) = std::fs::read_dir("/proc") {
            candidates.extend(
                dir.flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .bytes()
                            .all(|b| b.is_ascii_digit())
                    })
                    .map(|e| e.path().join("ns/net")),
            );
        }
        let mut present: HashSet<u64> = HashSet::new();
        for path in candidates {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            present.insert(meta.ino());
            if self.seen_inodes.contains_key(&meta.ino()) || self.by_cookie.len() >= MAX_NAMESPACES
            {
                continue;
            }
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            let fd = OwnedFd::from(file);
            let Some((cookie, addrs)) = in_netns(&fd, || Some((cookie_here()?, addrs_here())))
            else {
                continue;
            };
            self.seen_inodes.insert(meta.ino(), cookie);
            self.by_cookie.insert(cookie, Netns { fd, addrs });
        }
        // What was not found is gone: drop it, closing its descriptor (which otherwise
        // keeps a deleted namespace alive).
        self.seen_inodes.retain(|ino, _| present.contains(ino));
        let live: HashSet<u64> = self.seen_inodes.values().copied().collect();
        self.by_cookie.retain(|cookie, _| live.contains(cookie));
        self.source_cache
            .retain(|(cookie, _), _| live.contains(cookie));
    }

    /// Rescans when the last scan is older than `TIDY_EVERY`, so that namespaces gone
    /// since are forgotten even when no new one shows up.
    pub fn tidy(&mut self) {
        if self.last_scan.is_none_or(|t| t.elapsed() >= TIDY_EVERY) && !self.by_cookie.is_empty() {
            self.scan();
        }
    }

    /// How many namespaces (and so descriptors) the cache holds.
    pub fn len(&self) -> usize {
        self.by_cookie.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_cookie.is_empty()
    }
}
