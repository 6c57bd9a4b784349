//! The service mesh's sidecar, as the inventory's `mesh:` section declares it. With a mesh
//! an application connection is two or three connections: the app's own connect (to a
//! loopback upstream, Consul Connect; or to the real destination, redirected by iptables,
//! Istio), the sidecar's connection to the destination pod's sidecar (the transport leg),
//! and that sidecar's delivery to the app in its own pod. The app leg is judged like any
//! connection; the sidecar's legs carry it, so they are judged on the service pair only
//! and counted as mesh legs, never as a second observation of a documented row.
//!
//! ```yaml
//! mesh:
//!   sidecar:
//!     processes: [envoy]                       # by command name, and/or
//!     cgroups: ["/kubepods/*/*/consul-dataplane-*"]   # by container (cgroup v2 path)
//!   inbound_ports: [20000]                     # Consul Connect; Istio: [15006]
//!   legs_on_any_port: false                    # Istio: true (the sidecar connects to the
//!                                              # destination's own port)
//! ```

use std::collections::HashSet;

use allowlist::FileError;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::edge::{Direction, MeshLeg};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMesh {
    sidecar: RawSidecar,
    #[serde(default)]
    inbound_ports: Vec<u16>,
    #[serde(default)]
    legs_on_any_port: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSidecar {
    #[serde(default)]
    processes: Vec<String>,
    #[serde(default)]
    cgroups: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Mesh {
    processes: HashSet<String>,
    cgroups: globset::GlobSet,
    inbound_ports: Vec<u16>,
    any_port: bool,
}

impl Mesh {
    pub fn new(origin: &str, raw: &Spanned<RawMesh>) -> Result<Mesh, FileError> {
        let m = &raw.value;
        let fail = |message: String| FileError::at(origin, raw, message);
        if m.sidecar.processes.is_empty() && m.sidecar.cgroups.is_empty() {
            return Err(fail(
                "mesh.sidecar: say how the sidecar is recognised (processes or cgroups)".into(),
            ));
        }
        if m.inbound_ports.is_empty() && !m.legs_on_any_port {
            return Err(fail(
                "mesh: declare the sidecar's inbound_ports (or legs_on_any_port: true)".into(),
            ));
        }
        if m.inbound_ports.contains(&0) {
            return Err(fail("mesh.inbound_ports: 0 is not a port".into()));
        }
        let mut globs = globset::GlobSetBuilder::new();
        for pattern in &m.sidecar.cgroups {
            globs.add(
                globset::GlobBuilder::new(pattern)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| fail(format!("mesh.sidecar cgroup pattern {pattern:?}: {e}")))?,
            );
        }
        Ok(Mesh {
            processes: m.sidecar.processes.iter().cloned().collect(),
            cgroups: globs
                .build()
                .map_err(|e| fail(format!("mesh.sidecar cgroups: {e}")))?,
            inbound_ports: m.inbound_ports.clone(),
            any_port: m.legs_on_any_port,
        })
    }

    pub fn is_sidecar(&self, comm: &str, cgroup: Option<&str>) -> bool {
        self.processes.contains(comm) || cgroup.is_some_and(|c| self.cgroups.is_match(c))
    }

    /// Which mesh leg a flow of this node's process is, if any. Egress: the sidecar
    /// connecting to another pod's sidecar port (transport), or into its own pod, over
    /// loopback or to the pod's own address (delivery). Ingress: the sidecar accepting on
    /// its inbound port (the far end of a transport leg whose connect this node did not
    /// see).
    pub fn leg(&self, f: &crate::model::FlowView<'_>) -> Option<MeshLeg> {
        let (direction, dst_addr, dst_port) = (f.direction, f.dst_addr, f.dst_port);
        if !self.is_sidecar(f.comm, f.cgroup) {
            return None;
        }
        let dst = dst_addr.to_canonical();
        let own_pod = direction == Direction::Egress
            && (f.src_addr.is_some_and(|a| a.to_canonical() == dst)
                || f.netns_addrs.iter().any(|a| a.to_canonical() == dst));
        let loopback = dst.is_loopback() || own_pod;
        let inbound = self.inbound_ports.contains(&dst_port);
        match direction {
            Direction::Egress if loopback => Some(MeshLeg::Delivery),
            Direction::Egress if inbound || self.any_port => Some(MeshLeg::Transport),
            Direction::Ingress if inbound && !loopback => Some(MeshLeg::Transport),
            _ => None,
        }
    }
}
