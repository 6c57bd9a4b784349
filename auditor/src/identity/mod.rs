//! Identity: who is at each end of a flow, as a documented service name. Sources of
//! identity (the inventory file, the Kubernetes API) plug in behind one trait; the first
//! source that knows an endpoint wins. Identity reads only what a flow record carries
//! (capture has already added the cgroup path and namespace addresses): never /proc.
//! `cluster` holds the names the sources share for things in a Kubernetes cluster
//! (selectors, references, declared ports), so that neither source imports the other.

pub mod cluster;
mod dns_names;
pub mod inventory;
pub mod kubernetes;
pub mod mesh;

use std::{net::IpAddr, sync::Arc};

pub use inventory::Inventory;

/// How an endpoint was attributed, most specific first (for `explain` and the reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Cgroup,
    Process,
    Address {
        prefix_len: u8,
    },
    /// Through the addresses of the process's network namespace (its own address was
    /// loopback or not yet known).
    Netns,
    /// A loopback connect to a service-mesh sidecar listener.
    MeshUpstream {
        port: u16,
    },
    /// A Kubernetes Service's ClusterIP.
    KubeService,
    /// A Kubernetes pod's IP.
    KubePod,
    /// An address in a Service's EndpointSlice.
    KubeEndpoint,
    /// A DNS name the source resolved: the inventory's `dns:` pattern that matched it, or
    /// the Kubernetes name (an ExternalName Service's own name or its `externalName`).
    Dns {
        pattern: Arc<str>,
    },
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Cgroup => f.write_str("cgroup"),
            Via::Process => f.write_str("process"),
            Via::Address { prefix_len } => write!(f, "address/{prefix_len}"),
            Via::Netns => f.write_str("netns"),
            Via::MeshUpstream { port } => write!(f, "mesh-upstream:{port}"),
            Via::KubeService => f.write_str("k8s-service"),
            Via::KubePod => f.write_str("k8s-pod"),
            Via::KubeEndpoint => f.write_str("k8s-endpoint"),
            Via::Dns { pattern } => write!(f, "dns:{pattern}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub service: Arc<str>,
    pub via: Via,
    /// The service's port when it differs from the one connected to (mesh upstreams).
    pub port: Option<u16>,
    /// Where in the cluster it is, when a Kubernetes source resolved it.
    pub k8s: Option<Arc<cluster::K8sRef>>,
}

/// A process on this node: the connecting side of egress, the accepting side of ingress.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalEndpoint<'a> {
    pub addr: Option<IpAddr>,
    pub comm: &'a str,
    /// cgroup v2 path, e.g. `/kubepods/burstable/pod…/…`.
    pub cgroup: Option<&'a str>,
    /// Non-loopback addresses of the process's network namespace.
    pub netns_addrs: &'a [IpAddr],
}

pub trait IdentitySource: Send + Sync {
    fn name(&self) -> &str;
    /// A local process: by cgroup, then process name, then address, then namespace.
    fn local(&self, endpoint: &LocalEndpoint<'_>) -> Option<Resolved>;
    /// A peer known only by address and port.
    fn remote(&self, addr: IpAddr, port: u16) -> Option<Resolved>;
    /// A peer known by a DNS name its client resolved (lower-case ASCII, no trailing
    /// dot). A source that knows no names knows none.
    fn named(&self, _name: &str, _port: u16) -> Option<Resolved> {
        None
    }
}

/// Asks each source in turn.
#[derive(Default)]
pub struct Resolver {
    sources: Vec<Box<dyn IdentitySource>>,
}

impl Resolver {
    pub fn new(sources: Vec<Box<dyn IdentitySource>>) -> Resolver {
        Resolver { sources }
    }

    pub fn local(&self, endpoint: &LocalEndpoint<'_>) -> Option<Resolved> {
        self.sources.iter().find_map(|s| s.local(endpoint))
    }

    pub fn remote(&self, addr: IpAddr, port: u16) -> Option<Resolved> {
        self.sources.iter().find_map(|s| s.remote(addr, port))
    }

    /// The first of `names` a source knows (the names are asked in order, each of them
    /// of every source in order), and its index in `names`. Give the names as the answer
    /// chain has them, the name asked for first: a CNAME chain's first name is the one the
    /// client chose.
    pub fn named(&self, names: &[impl AsRef<str>], port: u16) -> Option<(Resolved, usize)> {
        names.iter().enumerate().find_map(|(i, name)| {
            self.sources
                .iter()
                .find_map(|s| s.named(name.as_ref(), port))
                .map(|r| (r, i))
        })
    }

    pub fn source_names(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.name()).collect()
    }
}
