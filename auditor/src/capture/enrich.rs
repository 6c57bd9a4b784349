//! Enrichment: what user space knows about a flow and the kernel did not. The cgroup
//! path of the process, and for flows whose local address says nothing (loopback, as
//! mesh sidecars use; unbound UDP) the addresses of the process's network namespace and
//! the source address the kernel would pick there. A record leaves capture complete.

use super::{
    cgroups::CgroupPaths,
    netns::NetnsDirectory,
    record::{Direction, FlowRecord},
};

/// Adds the cgroup path and, where needed, the namespace's addresses to each record.
pub struct Enricher {
    pub cgroups: CgroupPaths,
    pub netns: NetnsDirectory,
}

impl Enricher {
    pub fn new(cgroup_root: std::path::PathBuf) -> Enricher {
        Enricher {
            cgroups: CgroupPaths::new(cgroup_root),
            netns: NetnsDirectory::new(),
        }
    }

    pub fn enrich(&mut self, rec: &mut FlowRecord) {
        rec.cgroup = self.cgroups.path(rec.cgroup_id).map(str::to_string);
        let local = if rec.direction == Direction::Egress {
            rec.src_addr
        } else {
            Some(rec.dst_addr)
        };
        if local.is_some_and(|a| !a.to_canonical().is_loopback()) || rec.netns_cookie == 0 {
            return;
        }
        if rec.direction == Direction::Egress && rec.src_addr.is_none() {
            rec.src_addr = self.netns.source_for(rec.netns_cookie, rec.dst_addr);
        }
        rec.netns_addrs = self.netns.addrs(rec.netns_cookie).to_vec();
    }

    /// Forgets what is gone (namespaces deleted, pods ended). Call it now and then: it is
    /// rate-limited inside.
    pub fn tidy(&mut self) {
        self.netns.tidy();
    }
}
