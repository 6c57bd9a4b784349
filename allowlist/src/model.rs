//! The policy model: documented connections between named services, as the architecture
//! document states them (after import) and as the verdict engine reads them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The one transport type (auditor-common), shared with the kernel records and the daemon.
pub use auditor_common::Transport;

/// The transports a documented connection may use. Most rows name one; a row whose
/// protocol mixes both ("TCP/UDP", "SIP/UDP/TCP") allows both; a row whose protocol the
/// importer does not know keeps its transport unknown: any transport matches, unverified.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Transports {
    Tcp,
    Udp,
    /// Both TCP and UDP ("TCP/UDP", "SIP/UDP/TCP"): one connection, either transport.
    Both,
    /// The document's protocol does not tell: either transport matches, unverified.
    Unknown,
}

impl Transports {
    pub fn one(t: Transport) -> Transports {
        match t {
            Transport::Tcp => Transports::Tcp,
            Transport::Udp => Transports::Udp,
        }
    }

    /// The transports a flow may use to match this row.
    pub fn list(self) -> &'static [Transport] {
        match self {
            Transports::Tcp => &[Transport::Tcp],
            Transports::Udp => &[Transport::Udp],
            Transports::Both | Transports::Unknown => &[Transport::Tcp, Transport::Udp],
        }
    }

    pub fn allows(self, t: Transport) -> bool {
        self.list().contains(&t)
    }

    /// False when the document did not say which transport (the protocol is unknown).
    pub fn verified(self) -> bool {
        self != Transports::Unknown
    }

    /// Both parts' transports together; Unknown when either is.
    pub fn union(self, other: Transports) -> Transports {
        match (self, other) {
            (Transports::Unknown, _) | (_, Transports::Unknown) => Transports::Unknown,
            (a, b) if a == b => a,
            _ => Transports::Both,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transports::Tcp => "tcp",
            Transports::Udp => "udp",
            Transports::Both => "both",
            Transports::Unknown => "unknown",
        }
    }
}

impl PartialEq<Transport> for Transports {
    fn eq(&self, other: &Transport) -> bool {
        *self == Transports::one(*other)
    }
}

impl From<Transport> for Transports {
    fn from(t: Transport) -> Transports {
        Transports::one(t)
    }
}

impl fmt::Display for Transports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a connection sits relative to the cluster, from the document's point of view.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    IntraCluster,
    Egress,
    Ingress,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::IntraCluster => "intra-cluster",
            Classification::Egress => "egress",
            Classification::Ingress => "ingress",
        }
    }

    /// "Intra-cluster", "egress", "Ingress/Egress" (compound: each part).
    pub fn parse_list(text: &str) -> Option<Vec<Classification>> {
        let parts: Option<Vec<Classification>> = text
            .split('/')
            .map(|p| {
                match p
                    .trim()
                    .to_ascii_lowercase()
                    .replace([' ', '_'], "-")
                    .as_str()
                {
                    "intra-cluster" | "intracluster" | "internal" => {
                        Some(Classification::IntraCluster)
                    }
                    "egress" | "outbound" => Some(Classification::Egress),
                    "ingress" | "inbound" => Some(Classification::Ingress),
                    _ => None,
                }
            })
            .collect();
        parts.filter(|p| !p.is_empty())
    }

    pub fn list_to_string(list: &[Classification]) -> String {
        list.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// One documented port or port range. `configurable` is the document's `*`: the
/// deployment may use another port, given in its overrides file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpec {
    pub first: u16,
    pub last: u16,
    pub configurable: bool,
}

impl PortSpec {
    pub fn single(port: u16, configurable: bool) -> PortSpec {
        PortSpec {
            first: port,
            last: port,
            configurable,
        }
    }
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)?;
        } else {
            write!(f, "{}-{}", self.first, self.last)?;
        }
        if self.configurable {
            f.write_str("*")?;
        }
        Ok(())
    }
}

/// Parses one port item as written in a table or the YAML file: `8080`, `6379*`,
/// `20000-45000`, `20000-45000*`.
pub fn parse_port_spec(text: &str) -> Result<PortSpec, String> {
    let t = text.trim();
    let (body, configurable) = match t.strip_suffix('*') {
        Some(b) => (b.trim(), true),
        None => (t, false),
    };
    let num = |s: &str| -> Result<u16, String> {
        let s = s.trim();
        match s.parse::<u32>() {
            Ok(0) => Err(format!("port 0 in {text:?} is not a port")),
            Ok(n) if n <= 65535 => Ok(n as u16),
            Ok(n) => Err(format!("port {n} in {text:?} is out of range (1-65535)")),
            Err(_) => Err(format!(
                "{text:?} is not a port, port range (20000-45000) or configurable port (6379*)"
            )),
        }
    };
    let (first, last) = match body.split_once(['-', '–']) {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(body)?;
            (p, p)
        }
    };
    if first > last {
        return Err(format!("port range {text:?} runs backwards"));
    }
    Ok(PortSpec {
        first,
        last,
        configurable,
    })
}

/// The ports a connection uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    Listed(Vec<PortSpec>),
    /// The document allows any port (e.g. "Any").
    Any {
        reason: String,
    },
    /// The document gives no port ("N/A", "Not known (…)"): the deployment's overrides
    /// must say which; until then no port of this row can be verified.
    Unknown {
        reason: String,
    },
}

/// "8080, 9092" for listed ports; the document's own words for any or unknown ports.
impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ports::Listed(l) => {
                for (i, p) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            Ports::Any { reason } | Ports::Unknown { reason } => f.write_str(reason),
        }
    }
}

impl Ports {
    pub fn listed(&self) -> &[PortSpec] {
        match self {
            Ports::Listed(l) => l,
            _ => &[],
        }
    }
}

/// What a service is, for lints: datastores and brokers accept connections, never start them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Service,
    Datastore,
    Broker,
    External,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Service => "service",
            ServiceKind::Datastore => "datastore",
            ServiceKind::Broker => "broker",
            ServiceKind::External => "external",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub kind: ServiceKind,
    /// Other names the document uses for this service ("Redis 6.x").
    pub aliases: Vec<String>,
}

/// One documented connection: a row of the connections table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The row's number in the document (tables of some products leave it out).
    pub number: Option<u32>,
    pub source: String,
    pub destination: String,
    /// The application protocol as documented ("HTTP", "SIP/UDP", "Redis").
    pub protocol: String,
    pub transport: Transports,
    pub ports: Ports,
    pub classification: Vec<Classification>,
    pub description: String,
    /// The names as the document wrote them, where an alias was normalised away.
    pub documented_source: Option<String>,
    pub documented_destination: Option<String>,
    /// The line of the row in the source document.
    pub line: Option<u32>,
}

impl Connection {
    /// "row 14" or, for unnumbered rows, "the row at line 12".
    pub fn label(&self) -> String {
        match (self.number, self.line) {
            (Some(n), _) => format!("row {n}"),
            (None, Some(l)) => format!("the unnumbered row at document line {l}"),
            (None, None) => "an unnumbered row".to_string(),
        }
    }

    pub fn source_as_written(&self) -> &str {
        self.documented_source.as_deref().unwrap_or(&self.source)
    }
    pub fn destination_as_written(&self) -> &str {
        self.documented_destination
            .as_deref()
            .unwrap_or(&self.destination)
    }
}

/// The document the allowlist was imported from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentRef {
    pub title: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowlist {
    pub document: DocumentRef,
    pub services: Vec<Service>,
    pub connections: Vec<Connection>,
}

impl Allowlist {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
    /// True when `name` is a documented service or one of their aliases.
    pub fn documents(&self, name: &str) -> bool {
        self.service(name).is_some()
            || self
                .services
                .iter()
                .any(|s| s.aliases.iter().any(|a| a == name))
    }
    pub fn connection(&self, number: u32) -> Option<&Connection> {
        self.connections.iter().find(|c| c.number == Some(number))
    }
}
