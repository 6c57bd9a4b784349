//! The view of one flow the judge and the mesh check read: borrowed from a capture
//! `FlowRecord`, or built field by field by `explain`, so neither needs the record type itself.

use std::net::IpAddr;

use allowlist::Transport;

use crate::capture::{Direction, FlowRecord};

/// What the judge needs from a flow (borrowed from a `FlowRecord`, or built by `explain`).
#[derive(Debug, Clone, Copy)]
pub struct FlowView<'a> {
    pub transport: Transport,
    pub direction: Direction,
    pub src_addr: Option<IpAddr>,
    pub dst_addr: IpAddr,
    pub dst_port: u16,
    pub comm: &'a str,
    pub cgroup: Option<&'a str>,
    pub netns_addrs: &'a [IpAddr],
}

impl<'a> FlowView<'a> {
    pub fn of(r: &'a FlowRecord) -> FlowView<'a> {
        FlowView {
            transport: r.transport,
            direction: r.direction,
            src_addr: r.src_addr,
            dst_addr: r.dst_addr,
            dst_port: r.dst_port,
            comm: &r.comm,
            cgroup: r.cgroup.as_deref(),
            netns_addrs: &r.netns_addrs,
        }
    }
}
