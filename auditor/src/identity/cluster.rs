//! How identity names things in a Kubernetes cluster: the inventory's selector for a
//! documented service, where an endpoint is, and the ports a service's pods declare to
//! the platform. Plain data, below the sources: the inventory (which writes them), the
//! Kubernetes source (which finds them) and `Resolved` (which carries them) all import
//! it, and none of them imports another for it.

use std::collections::BTreeMap;

/// How the inventory names a documented service in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeSelector {
    pub namespace: String,
    /// Pod labels (all must match). Also matches a Service whose selector includes them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// A Service by name; its pods and ClusterIP are this documented service.
    #[serde(default)]
    pub service: Option<String>,
}

/// Where in the cluster an endpoint is (carried into verdicts, events and the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sRef {
    pub namespace: String,
    pub pod: Option<String>,
    pub service: Option<String>,
    pub workload: Option<String>,
}

/// Ports a service's pods expose to the platform: what the kubelet probes and what
/// Prometheus scrapes. From the pod spec in Kubernetes mode, else from the inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclaredPorts {
    pub probes: Vec<u16>,
    pub metrics: Vec<u16>,
}
