//! How the document's words become the model's: service names and their aliases,
//! protocols and the transport they imply, and what kind of thing a service is.

use crate::model::{ServiceKind, Transport};

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

/// Application protocols and their transport, by lower-case name. The canonical spelling
/// is what the allowlist file shows.
const PROTOCOLS: &[(&str, &str, Transport)] = &[
    ("tcp", "TCP", Transport::Tcp),
    ("udp", "UDP", Transport::Udp),
    ("http", "HTTP", Transport::Tcp),
    ("https", "HTTPS", Transport::Tcp),
    ("http/https", "HTTP/HTTPS", Transport::Tcp),
    ("http/2", "HTTP/2", Transport::Tcp),
    ("grpc", "gRPC", Transport::Tcp),
    ("websocket", "WebSocket", Transport::Tcp),
    ("wss", "WSS", Transport::Tcp),
    ("tls", "TLS", Transport::Tcp),
    ("redis", "Redis", Transport::Tcp),
    ("kafka", "Kafka", Transport::Tcp),
    ("postgres", "Postgres", Transport::Tcp),
    ("postgresql", "Postgres", Transport::Tcp),
    ("mysql", "MySQL", Transport::Tcp),
    ("mongodb", "MongoDB", Transport::Tcp),
    ("amqp", "AMQP", Transport::Tcp),
    ("mqtt", "MQTT", Transport::Tcp),
    ("ldap", "LDAP", Transport::Tcp),
    ("ldaps", "LDAPS", Transport::Tcp),
    ("smtp", "SMTP", Transport::Tcp),
    ("ssh", "SSH", Transport::Tcp),
    ("sip/tcp", "SIP/TCP", Transport::Tcp),
    ("sip/tls", "SIP/TLS", Transport::Tcp),
    ("sip/udp", "SIP/UDP", Transport::Udp),
    ("rtp", "RTP", Transport::Udp),
    ("srtp", "SRTP", Transport::Udp),
    ("rtp/udp", "RTP/UDP", Transport::Udp),
    ("msrp", "MSRP", Transport::Tcp),
];

/// The canonical protocol name and its transport. `X/TCP` and `X/UDP` name their
/// transport themselves; a protocol that could be either (SIP, DNS) must say which.
pub fn protocol(text: &str) -> Result<(String, Transport), String> {
    let t = clean(text);
    let lower = t.to_ascii_lowercase();
    if let Some((_, canonical, transport)) = PROTOCOLS.iter().find(|(k, _, _)| *k == lower) {
        return Ok((canonical.to_string(), *transport));
    }
    if let Some(base) = lower.strip_suffix("/udp") {
        return Ok((
            format!("{}/UDP", t[..base.len()].to_ascii_uppercase()),
            Transport::Udp,
        ));
    }
    if let Some(base) = lower.strip_suffix("/tcp") {
        return Ok((
            format!("{}/TCP", t[..base.len()].to_ascii_uppercase()),
            Transport::Tcp,
        ));
    }
    if t.is_empty() {
        return Err("the protocol is empty".into());
    }
    Err(format!(
        "unknown protocol {t:?}: its transport cannot be told; write it as {t}/TCP or {t}/UDP"
    ))
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

    #[test]
    fn protocols_and_transports() {
        assert_eq!(
            protocol("SIP/UDP").unwrap(),
            ("SIP/UDP".into(), Transport::Udp)
        );
        assert_eq!(protocol("http").unwrap(), ("HTTP".into(), Transport::Tcp));
        assert_eq!(
            protocol("PostgreSQL").unwrap(),
            ("Postgres".into(), Transport::Tcp)
        );
        assert_eq!(
            protocol("dns/udp").unwrap(),
            ("DNS/UDP".into(), Transport::Udp)
        );
        assert!(protocol("SIP").unwrap_err().contains("SIP/TCP or SIP/UDP"));
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
