//! The one vocabulary of a judged connection: each concept's name, defined once. Events,
//! replay, the store, every report format, would-break, metric labels and their JSON
//! Schemas use these names. `auditor/tests/vocabulary.rs` fails when a field of an output
//! schema (events and replay lines, reports, would-break), a store column or a metric
//! label is one of the words listed in `not`; the human-readable formats (Markdown, HTML,
//! JUnit) label the same fields for people ("Source (src)") and are not checked by it.
//!
//! Input files keep their authors' words: the allowlist's `number`/`source`/`destination`
//! are the architecture document's own column headings, and the platform baseline's
//! `from`/`to` describe traffic patterns, not judged connections.

/// One concept of the vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct Concept {
    /// The name every output uses (a list of them takes the plural, `names`).
    pub name: &'static str,
    /// The plural, where an output holds several (e.g. `rules`).
    pub plural: Option<&'static str>,
    pub meaning: &'static str,
    /// Words that must not name this concept in any output.
    pub not: &'static [&'static str],
}

pub const CONCEPTS: &[Concept] = &[
    Concept {
        name: "rule",
        plural: Some("rules"),
        meaning: "the number of a documented connection: its row in the architecture document's table",
        not: &[
            "number",
            "row_number",
            "connection_number",
            "rule_number",
            "row_id",
        ],
    },
    Concept {
        name: "src",
        plural: None,
        meaning: "the end that opened the connection (or sent the datagram)",
        not: &["source", "from", "client", "origin_end"],
    },
    Concept {
        name: "dst",
        plural: None,
        meaning: "the end that was connected to",
        not: &["destination", "dest", "to", "server", "target"],
    },
    Concept {
        name: "verdict",
        plural: None,
        meaning: "what the documents say of the connection (allowed, platform, port_drift, ...)",
        not: &["judgement", "outcome", "result_kind"],
    },
    Concept {
        name: "process",
        plural: None,
        meaning: "the process that made the connection: pid, comm, cgroup",
        not: &["example", "example_process"],
    },
    Concept {
        name: "transport",
        plural: None,
        meaning: "tcp or udp (the document's application protocol is `protocol`)",
        not: &["l4", "ip_protocol", "proto"],
    },
    Concept {
        name: "domain",
        plural: Some("domains"),
        meaning: "the DNS name the source resolved the destination's address by (ECS destination.domain)",
        not: &[
            "hostname",
            "host_name",
            "fqdn",
            "dns_name",
            "domain_name",
            "qname",
            "query_name",
        ],
    },
    Concept {
        name: "resolution",
        plural: None,
        meaning: "how an egress destination's address was come by: dns (resolved by `domain`) or bare",
        not: &[
            "resolved_by",
            "resolved",
            "addressing",
            "lookup",
            "address_source",
        ],
    },
    Concept {
        name: "exception",
        plural: Some("exceptions"),
        meaning: "an accepted exception (`auditor report --exceptions`): a reviewed violation, with its reason, owner and expiry",
        not: &[
            "waiver",
            "exemption",
            "suppression",
            "suppressed",
            "allowance",
            "risk_acceptance",
        ],
    },
];

/// The concept a word must not name, if it is one of the forbidden words.
pub fn misnamed(word: &str) -> Option<&'static Concept> {
    CONCEPTS.iter().find(|c| c.not.contains(&word))
}
