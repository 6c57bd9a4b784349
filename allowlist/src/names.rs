//! How the document's words become the model's: service names and their aliases,
//! protocols and the transport they imply, and what kind of thing a service is.

use crate::model::{ServiceKind, Transport, Transports};

/// Trims and collapses runs of white space (PDF extraction leaves plenty).
pub fn clean(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A trailing version in a product name: "Redis 6.x" → "Redis", "Kafka 2.x" → "Kafka",
/// "PostgreSQL 14" → "PostgreSQL". None when there is no version to strip.
pub fn strip_version(name: &str) -> Option<&str> {
    let (base, last) = name.rsplit_once(' ')?;
    let last = last.trim_start_matches(['v', 'V']);
    let is_version = !last.is_empty()
        && last.chars().next().is_some_and(|c| c.is_ascii_digit())
        && last.split('.').all(|part| {
            part == "x"
                || part == "X"
                || (!part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
        });
    (is_version && !base.trim().is_empty()).then(|| base.trim())
}

/// A parenthesised alias after a name: "Tenant Service (Voice Config Service)" →
/// ("Tenant Service", "Voice Config Service"). None when the name has none.
pub fn split_alias(name: &str) -> Option<(&str, &str)> {
    let body = name.trim().strip_suffix(')')?;
    let open = body.rfind('(')?;
    let (base, alias) = (body[..open].trim(), body[open + 1..].trim());
    let balanced = !alias.contains(['(', ')']) && !base.contains(['(', ')']);
    (balanced && !base.is_empty() && !alias.is_empty()).then_some((base, alias))
}

/// Initials of a multi-word capitalised name: "Genesys Engagement Service" → "GES".
/// Documents abbreviate services this way in their prose.
pub fn abbreviation(name: &str) -> Option<String> {
    let words: Vec<&str> = name.split_whitespace().collect();
    if words.len() < 2
        || !words
            .iter()
            .all(|w| w.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
    {
        return None;
    }
    Some(words.iter().filter_map(|w| w.chars().next()).collect())
}

/// What a protocol part says about the transport under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runs {
    /// The part is the transport itself ("TCP", "UDP").
    Is(Transport),
    /// An application protocol that runs over one transport ("HTTP", "RTP").
    Over(Transport),
    /// A protocol that runs over either, so the document must say which ("SIP").
    Either,
}

/// Protocols by lower-case name: canonical spelling (what the allowlist file shows) and
/// what they run over.
const PROTOCOLS: &[(&str, &str, Runs)] = &[
    ("tcp", "TCP", Runs::Is(Transport::Tcp)),
    ("udp", "UDP", Runs::Is(Transport::Udp)),
    ("http", "HTTP", Runs::Over(Transport::Tcp)),
    ("https", "HTTPS", Runs::Over(Transport::Tcp)),
    ("http/2", "HTTP/2", Runs::Over(Transport::Tcp)),
    ("http2", "HTTP/2", Runs::Over(Transport::Tcp)),
    ("rest", "REST", Runs::Over(Transport::Tcp)),
    ("soap", "SOAP", Runs::Over(Transport::Tcp)),
    ("grpc", "gRPC", Runs::Over(Transport::Tcp)),
    ("websocket", "WebSocket", Runs::Over(Transport::Tcp)),
    ("websockets", "WebSocket", Runs::Over(Transport::Tcp)),
    ("ws", "WS", Runs::Over(Transport::Tcp)),
    ("wss", "WSS", Runs::Over(Transport::Tcp)),
    ("tls", "TLS", Runs::Over(Transport::Tcp)),
    ("ssl", "SSL", Runs::Over(Transport::Tcp)),
    ("redis", "Redis", Runs::Over(Transport::Tcp)),
    ("kafka", "Kafka", Runs::Over(Transport::Tcp)),
    ("postgres", "Postgres", Runs::Over(Transport::Tcp)),
    ("postgresql", "Postgres", Runs::Over(Transport::Tcp)),
    ("mysql", "MySQL", Runs::Over(Transport::Tcp)),
    ("mongodb", "MongoDB", Runs::Over(Transport::Tcp)),
    ("jdbc", "JDBC", Runs::Over(Transport::Tcp)),
    ("amqp", "AMQP", Runs::Over(Transport::Tcp)),
    ("amqps", "AMQPS", Runs::Over(Transport::Tcp)),
    ("mqtt", "MQTT", Runs::Over(Transport::Tcp)),
    ("ldap", "LDAP", Runs::Over(Transport::Tcp)),
    ("ldaps", "LDAPS", Runs::Over(Transport::Tcp)),
    ("smtp", "SMTP", Runs::Over(Transport::Tcp)),
    ("imap", "IMAP", Runs::Over(Transport::Tcp)),
    ("ssh", "SSH", Runs::Over(Transport::Tcp)),
    ("sftp", "SFTP", Runs::Over(Transport::Tcp)),
    ("ftp", "FTP", Runs::Over(Transport::Tcp)),
    ("msrp", "MSRP", Runs::Over(Transport::Tcp)),
    ("sips", "SIPS", Runs::Over(Transport::Tcp)),
    ("rtp", "RTP", Runs::Over(Transport::Udp)),
    ("rtcp", "RTCP", Runs::Over(Transport::Udp)),
    ("srtp", "SRTP", Runs::Over(Transport::Udp)),
    ("srtcp", "SRTCP", Runs::Over(Transport::Udp)),
    ("dns", "DNS", Runs::Over(Transport::Udp)),
    ("ntp", "NTP", Runs::Over(Transport::Udp)),
    ("snmp", "SNMP", Runs::Over(Transport::Udp)),
    ("tftp", "TFTP", Runs::Over(Transport::Udp)),
    ("quic", "QUIC", Runs::Over(Transport::Udp)),
    ("sip", "SIP", Runs::Either),
    ("stun", "STUN", Runs::Either),
    ("turn", "TURN", Runs::Either),
    ("syslog", "Syslog", Runs::Either),
];

/// Whether every `/`-separated part of a word is a protocol we know ("SIP/UDP/TCP"): how
/// a single-spaced row's protocol cell is told from the words around it.
pub(crate) fn is_known_protocol(word: &str) -> bool {
    let lower = clean(word).to_ascii_lowercase();
    known(&lower).is_some()
        || (!lower.is_empty()
            && lower
                .split('/')
                .all(|p| !p.trim().is_empty() && known(p.trim()).is_some()))
}

fn known(lower: &str) -> Option<(&'static str, Runs)> {
    PROTOCOLS
        .iter()
        .find(|(k, _, _)| *k == lower)
        .map(|(_, c, r)| (*c, *r))
}

/// A documented protocol, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Canonical spelling ("SIP/UDP", "RTP/RTCP", "Redis").
    pub name: String,
    pub transport: Transports,
    /// The protocol names its transport itself ("SIP/UDP", "TCP"): a Transport column or
    /// file field that says otherwise contradicts it.
    pub names_transport: bool,
    /// Why the transport is unknown or partly guessed; the row is kept.
    pub warning: Option<String>,
}

/// Reads a protocol as a grammar: a slash list whose parts each resolve. Parts that are
/// transports ("SIP/UDP/TCP") decide; otherwise the application protocols' transports do:
/// all UDP (RTP/RTCP) gives UDP, all TCP (HTTPS/WSS) gives TCP, a mix gives both. A
/// protocol that does not tell (SIP alone, or one not known) keeps the row with its
/// transport unknown, and a warning. Only an empty protocol is an error.
pub fn protocol(text: &str) -> Result<Protocol, String> {
    let t = clean(text);
    if t.is_empty() {
        return Err("the protocol is empty".into());
    }
    let lower = t.to_ascii_lowercase();
    if let Some((canonical, runs)) = known(&lower) {
        return Ok(resolve(
            t.clone(),
            canonical.to_string(),
            &[(t, Some(runs))],
        ));
    }
    let parts: Vec<(String, Option<Runs>)> = t
        .split('/')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            (
                p.to_string(),
                known(&p.to_ascii_lowercase()).map(|(_, r)| r),
            )
        })
        .collect();
    let name = parts
        .iter()
        .map(|(p, _)| {
            known(&p.to_ascii_lowercase()).map_or_else(|| p.clone(), |(c, _)| c.to_string())
        })
        .collect::<Vec<_>>()
        .join("/");
    Ok(resolve(t, name, &parts))
}

fn resolve(written: String, name: String, parts: &[(String, Option<Runs>)]) -> Protocol {
    let join = |acc: Option<Transports>, t: Transport| {
        Some(acc.map_or(Transports::one(t), |a| a.union(Transports::one(t))))
    };
    let mut explicit = None;
    let mut implied = None;
    for (_, runs) in parts {
        match runs {
            Some(Runs::Is(t)) => explicit = join(explicit, *t),
            Some(Runs::Over(t)) => implied = join(implied, *t),
            _ => {}
        }
    }
    let unknown: Vec<&str> = parts
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(p, _)| p.as_str())
        .collect();
    let either: Vec<&str> = parts
        .iter()
        .filter(|(_, r)| *r == Some(Runs::Either))
        .map(|(p, _)| p.as_str())
        .collect();
    if let Some(transport) = explicit {
        return Protocol {
            name,
            transport,
            names_transport: true,
            warning: None,
        };
    }
    if let Some(transport) = implied {
        let warning = (!unknown.is_empty()).then(|| {
            format!(
                "protocol {written:?}: {} is not a protocol auditor knows; the transport ({transport}) comes from the other parts",
                unknown.join(", ")
            )
        });
        return Protocol {
            name,
            transport,
            names_transport: false,
            warning,
        };
    }
    let warning = if unknown.is_empty() && !either.is_empty() {
        format!(
            "protocol {written:?}: {} runs over TCP or UDP and the document does not say which (write {written}/TCP or {written}/UDP, or add a Transport column); the row is kept and matches either transport, unverified",
            either.join(", ")
        )
    } else {
        format!(
            "unknown protocol {written:?}: its transport cannot be told (write {written}/TCP or {written}/UDP, or add a Transport column); the row is kept and matches either transport, unverified"
        )
    };
    Protocol {
        name,
        transport: Transports::Unknown,
        names_transport: false,
        warning: Some(warning),
    }
}

/// A Transport column's cell: "TCP", "udp", "TCP/UDP", "TCP and UDP", "Both".
pub fn transport_column(text: &str) -> Result<Transports, String> {
    let lower = clean(text).to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "both" | "any" | "tcp or udp" | "tcp and udp"
    ) {
        return Ok(Transports::Both);
    }
    let mut out: Option<Transports> = None;
    for part in lower
        .replace(" and ", "/")
        .replace(" or ", "/")
        .split(['/', ',', '&', '+', ' '])
        .filter(|p| !p.is_empty())
    {
        let t = match part {
            "tcp" => Transports::Tcp,
            "udp" => Transports::Udp,
            _ => {
                return Err(format!(
                    "transport {:?} is not TCP, UDP or TCP/UDP",
                    clean(text)
                ));
            }
        };
        out = Some(out.map_or(t, |o| o.union(t)));
    }
    out.ok_or_else(|| "the transport is empty".to_string())
}

/// Built-in knowledge of what common products are; the allowlist file can override it.
pub fn kind_of(name: &str) -> ServiceKind {
    let n = name.to_ascii_lowercase();
    let has = |words: &[&str]| {
        words.iter().any(|w| {
            n.split(|c: char| !c.is_ascii_alphanumeric())
                .any(|t| t == *w)
        })
    };
    if has(&[
        "redis",
        "postgresql",
        "postgres",
        "mysql",
        "mariadb",
        "mongodb",
        "cassandra",
        "elasticsearch",
        "opensearch",
        "memcached",
        "etcd",
        "couchbase",
    ]) {
        ServiceKind::Datastore
    } else if has(&[
        "kafka",
        "rabbitmq",
        "nats",
        "activemq",
        "pulsar",
        "zookeeper",
    ]) {
        ServiceKind::Broker
    } else if n.contains("external")
        || n.contains("customer")
        || n.contains("object storage")
        || n.contains("session border controller")
        || has(&["s3", "sbc"])
    {
        ServiceKind::External
    } else {
        ServiceKind::Service
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strip() {
        assert_eq!(strip_version("Redis 6.x"), Some("Redis"));
        assert_eq!(strip_version("Kafka 2.x"), Some("Kafka"));
        assert_eq!(strip_version("PostgreSQL 14"), Some("PostgreSQL"));
        assert_eq!(strip_version("Tenant Service"), None);
        assert_eq!(strip_version("Redis"), None);
        assert_eq!(strip_version(" 6.x"), None);
    }

    fn p(text: &str) -> (String, Transports) {
        let p = protocol(text).unwrap();
        (p.name, p.transport)
    }

    #[test]
    fn protocols_and_transports() {
        assert_eq!(p("SIP/UDP"), ("SIP/UDP".into(), Transports::Udp));
        assert_eq!(p("http"), ("HTTP".into(), Transports::Tcp));
        assert_eq!(p("PostgreSQL"), ("Postgres".into(), Transports::Tcp));
        assert_eq!(p("dns/udp"), ("DNS/UDP".into(), Transports::Udp));
        assert_eq!(p("HTTP/2"), ("HTTP/2".into(), Transports::Tcp));
        assert!(protocol("").is_err());
    }

    #[test]
    fn slash_lists_resolve_each_part() {
        // All UDP, all TCP.
        assert_eq!(p("RTP/RTCP"), ("RTP/RTCP".into(), Transports::Udp));
        assert_eq!(p("srtp / srtcp"), ("SRTP/SRTCP".into(), Transports::Udp));
        assert_eq!(p("HTTPS/WSS"), ("HTTPS/WSS".into(), Transports::Tcp));
        // Mixed: one connection on both.
        assert_eq!(p("TCP/UDP"), ("TCP/UDP".into(), Transports::Both));
        assert_eq!(p("UDP/TCP"), ("UDP/TCP".into(), Transports::Both));
        assert_eq!(p("SIP/UDP/TCP"), ("SIP/UDP/TCP".into(), Transports::Both));
        assert_eq!(p("HTTP/RTP"), ("HTTP/RTP".into(), Transports::Both));
        // Named transports decide over implied ones.
        assert_eq!(p("RTP/TCP"), ("RTP/TCP".into(), Transports::Tcp));
        assert!(protocol("SIP/TCP").unwrap().names_transport);
        assert!(!protocol("HTTP").unwrap().names_transport);
    }

    #[test]
    fn unknown_or_ambiguous_protocols_are_kept_unverified_with_a_warning() {
        let sip = protocol("SIP").unwrap();
        assert_eq!(sip.transport, Transports::Unknown);
        assert!(sip.warning.unwrap().contains("SIP/TCP or SIP/UDP"));
        let pigeon = protocol("Carrier pigeon").unwrap();
        assert_eq!(
            (pigeon.name.as_str(), pigeon.transport),
            ("Carrier pigeon", Transports::Unknown)
        );
        assert!(pigeon.warning.unwrap().contains("unknown protocol"));
        let part = protocol("HTTP/Frobnicate").unwrap();
        assert_eq!(part.transport, Transports::Tcp);
        assert!(part.warning.unwrap().contains("Frobnicate"));
        assert!(protocol("Foo/UDP").unwrap().warning.is_none());
    }

    #[test]
    fn transport_columns() {
        assert_eq!(transport_column("TCP").unwrap(), Transports::Tcp);
        assert_eq!(transport_column("udp").unwrap(), Transports::Udp);
        assert_eq!(transport_column("TCP/UDP").unwrap(), Transports::Both);
        assert_eq!(transport_column("UDP and TCP").unwrap(), Transports::Both);
        assert_eq!(transport_column("Both").unwrap(), Transports::Both);
        assert!(transport_column("SCTP").is_err());
        assert!(transport_column("").is_err());
    }

    #[test]
    fn parenthesised_aliases() {
        assert_eq!(
            split_alias("Tenant Service (Voice Config Service)"),
            Some(("Tenant Service", "Voice Config Service"))
        );
        assert_eq!(split_alias("Tenant Service"), None);
        assert_eq!(split_alias("(x)"), None);
        assert_eq!(split_alias("a (b (c))"), None);
    }

    #[test]
    fn kinds_and_abbreviations() {
        assert_eq!(kind_of("Redis"), ServiceKind::Datastore);
        assert_eq!(kind_of("Kafka"), ServiceKind::Broker);
        assert_eq!(kind_of("External/customer"), ServiceKind::External);
        assert_eq!(kind_of("Tenant Service"), ServiceKind::Service);
        assert_eq!(
            abbreviation("Genesys Engagement Service").as_deref(),
            Some("GES")
        );
        assert_eq!(abbreviation("Object storage"), None);
    }
}
