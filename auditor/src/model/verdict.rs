//! The verdict on a judged connection: the word every output (events, replay, the store,
//! reports, would-break, metrics labels) uses for what the documents say of it.

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A documented connection allows it.
    Allowed,
    /// Platform traffic no architecture document lists (DNS, kubelet probes, scrapes):
    /// an entry of the platform baseline allows it (`platform` names the entry). Never
    /// between two documented services, never an observation of a documented row.
    Platform,
    /// The services have a documented connection on this transport, not on this port.
    PortDrift,
    /// Documented on this port, but over the other transport.
    ProtocolDrift,
    /// Both ends are known; no documented connection between them.
    UndocumentedEgress,
    /// The source is known; the destination is neither in the inventory nor a documented external.
    UnknownDestination,
    /// The source could not be attributed.
    UnknownSource,
}

impl Verdict {
    /// Every verdict, in the order of the enum: what help texts and parsers list, so a new
    /// verdict cannot be left out of them.
    pub const ALL: [Verdict; 7] = [
        Verdict::Allowed,
        Verdict::Platform,
        Verdict::PortDrift,
        Verdict::ProtocolDrift,
        Verdict::UndocumentedEgress,
        Verdict::UnknownDestination,
        Verdict::UnknownSource,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Platform => "platform",
            Verdict::PortDrift => "port_drift",
            Verdict::ProtocolDrift => "protocol_drift",
            Verdict::UndocumentedEgress => "undocumented_egress",
            Verdict::UnknownDestination => "unknown_destination",
            Verdict::UnknownSource => "unknown_source",
        }
    }

    /// True for what the documents do not allow: everything but `allowed` and `platform`.
    pub fn is_violation(self) -> bool {
        !matches!(self, Verdict::Allowed | Verdict::Platform)
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }
}
