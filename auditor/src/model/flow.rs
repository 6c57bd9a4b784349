//! The view of one flow the judge and the mesh check read: borrowed from a capture
//! `FlowRecord`, or built field by field by `explain`, so neither needs the record type itself.

use std::{net::IpAddr, sync::Arc};

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
    /// Egress: the names the source's own pod resolved the destination address by, valid
    /// when the connection was made (question name first, then CNAME targets).
    pub dst_names: &'a [Arc<str>],
    /// Egress, when DNS answers were captured: whether the source resolved the address.
    pub resolution: Option<Resolution>,
}

/// How an egress flow's destination address was come by: from a DNS answer its own pod
/// received from a trusted resolver, or used bare (a hard-coded address, DNS over HTTPS,
/// an answer from a server that is not trusted). Absent when DNS answers were not
/// captured: then it is unknown, not bare.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Resolved: `domain` says by which name.
    Dns,
    /// Used bare: no name of the source's resolved to it.
    Bare,
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
            dst_names: &[],
            resolution: None,
        }
    }
}
