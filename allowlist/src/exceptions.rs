//! Accepted exceptions: violations someone reviewed and accepted for a time, each with the
//! edge it covers, why, who owns it and when it expires. Kept in their own reviewed file,
//! so the documented rows are never edited to make a violation go away.
//!
//! ```yaml
//! exceptions:
//!   - id: EXC-2026-014              # what reports cite
//!     src: Global Edge Services (GES)
//!     dst: Redis                    # a service, an IP address or a DNS name
//!     transport: tcp                # optional: either
//!     port: 6379                    # optional: any
//!     reason: Session cache, pending the document's next revision (row 10 describes it)
//!     owner: voice-platform@example.com
//!     expires: 2027-03-31           # through that day (UTC), or an RFC 3339 instant
//! ```
//!
//! A report (`auditor report --exceptions FILE`) shows a violation an exception covers as
//! an accepted exception while it is in force, and as a violation again once it expired.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::{Transport, file::FileError};

/// One accepted exception, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub id: String,
    /// The source as reports name it: a documented service (aliases resolved to its
    /// name), else an IP address.
    pub src: String,
    /// The destination: a documented service, an IP address, or the DNS name it was
    /// reached by.
    pub dst: String,
    pub transport: Option<Transport>,
    pub port: Option<u16>,
    pub reason: String,
    pub owner: String,
    /// As written in the file.
    pub expires: String,
    /// The first instant it is no longer in force, unix milliseconds.
    pub expires_ms: i64,
    /// `FILE:LINE` of the entry, for people to find it.
    pub at: String,
}

/// An exceptions file, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exceptions {
    pub entries: Vec<Exception>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "auditor accepted exceptions")]
pub(crate) struct RawExceptions {
    /// The accepted exceptions; each covers the violations on one edge until it expires.
    #[schemars(with = "Vec<RawException>")]
    exceptions: Vec<Spanned<RawException>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawException {
    /// A unique name reports cite (a ticket or risk-register id, say).
    #[schemars(with = "String")]
    id: Spanned<String>,
    /// The source: a documented service (or one of its aliases), or an IP address.
    #[schemars(with = "String")]
    src: Spanned<String>,
    /// The destination: a documented service (or alias), an IP address, or the DNS name
    /// the source reached it by.
    #[schemars(with = "String")]
    dst: Spanned<String>,
    /// tcp or udp; absent: either.
    #[serde(default)]
    transport: Option<Transport>,
    /// The destination port; absent: any.
    #[serde(default)]
    port: Option<u16>,
    /// Why it is accepted: the business need, and what will end it.
    #[schemars(with = "String")]
    reason: Spanned<String>,
    /// Who is accountable for it (a person or team, with a way to reach them).
    #[schemars(with = "String")]
    owner: Spanned<String>,
    /// When it ends: a date (in force through that day, UTC) or an RFC 3339 instant.
    /// Required: an exception without an end is a change to the documents.
    #[schemars(with = "String")]
    expires: Spanned<String>,
}

/// Reads an exceptions file and checks it: every name is a documented service (which
/// `service` knows: a name, or an alias, to the service's own name), an IP address or a
/// DNS name; ids are unique; the reason and owner are given; the expiry reads.
pub fn parse(
    text: &str,
    origin: &str,
    service: &dyn Fn(&str) -> Option<String>,
) -> Result<Exceptions, FileError> {
    let raw: RawExceptions =
        serde_saphyr::from_str(text).map_err(|e| FileError::from_saphyr(origin, text, &e))?;
    let mut out = Exceptions::default();
    for entry in &raw.exceptions {
        let e = &entry.value;
        let id = e.id.value.trim();
        if id.is_empty() {
            return Err(FileError::at(
                origin,
                &e.id,
                "id is empty: give each exception a name reports can cite".into(),
            ));
        }
        if let Some(first) = out.entries.iter().find(|x| x.id == id) {
            return Err(FileError::at(
                origin,
                &e.id,
                format!("id {id:?} is used twice (first at {})", first.at),
            ));
        }
        let src = end_name(origin, &e.src, service, false)?;
        let dst = end_name(origin, &e.dst, service, true)?;
        for (field, value) in [("reason", &e.reason), ("owner", &e.owner)] {
            if value.value.trim().is_empty() {
                return Err(FileError::at(
                    origin,
                    value,
                    format!("{field} is empty: an accepted exception needs its {field}"),
                ));
            }
        }
        let expires_ms = expiry_ms(e.expires.value.trim())
            .map_err(|why| FileError::at(origin, &e.expires, why))?;
        out.entries.push(Exception {
            id: id.to_string(),
            src,
            dst,
            transport: e.transport,
            port: e.port,
            reason: e.reason.value.trim().to_string(),
            owner: e.owner.value.trim().to_string(),
            expires: e.expires.value.trim().to_string(),
            expires_ms,
            at: format!("{origin}:{}", entry.referenced.line()),
        });
    }
    Ok(out)
}

/// A documented service's own name (an alias resolves to it), an IP address, or (for a
/// destination) a DNS name; anything else is most likely a misspelt service, which
/// would never match and must not pass review unnoticed.
fn end_name(
    origin: &str,
    name: &Spanned<String>,
    service: &dyn Fn(&str) -> Option<String>,
    dst: bool,
) -> Result<String, FileError> {
    let n = name.value.trim();
    if let Some(s) = service(n) {
        return Ok(s);
    }
    if n.parse::<std::net::IpAddr>().is_ok() {
        return Ok(n.to_string());
    }
    if dst && is_dns_name(n) {
        return Ok(n.to_ascii_lowercase());
    }
    let field = if dst { "dst" } else { "src" };
    let what = if dst {
        "a service of the allowlist, an IP address or a DNS name"
    } else {
        "a service of the allowlist or an IP address"
    };
    Err(FileError::at(
        origin,
        name,
        format!("{field} {n:?} is not {what}"),
    ))
}

/// Letters, digits, hyphens and underscores in dot-separated labels, at least two.
fn is_dns_name(n: &str) -> bool {
    let n = n.strip_suffix('.').unwrap_or(n);
    n.len() <= 253
        && n.split('.').count() >= 2
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The first instant an exception is no longer in force: the day after a date (at 00:00
/// UTC), or an RFC 3339 instant as given.
pub fn expiry_ms(text: &str) -> Result<i64, String> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let next = date
            .tomorrow()
            .map_err(|e| format!("expires {text:?}: {e}"))?;
        let ts = next
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(|e| format!("expires {text:?}: {e}"))?
            .timestamp();
        return Ok(ts.as_millisecond());
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            format!(
                "expires {text:?} is neither a date (2027-03-31: in force through that day, UTC) nor an RFC 3339 instant (2027-03-31T12:00:00Z)"
            )
        })
}

impl Exceptions {
    /// The exception covering a violation on this edge, in force or not, with its index:
    /// the first entry in file order whose edge matches. `src` and `dst` are the names a
    /// report knows the ends by; `domain` the DNS name the destination was reached by.
    pub fn covering(
        &self,
        src: &str,
        dst: &str,
        domain: Option<&str>,
        transport: Transport,
        port: Option<u16>,
    ) -> Option<(usize, &Exception)> {
        self.entries.iter().enumerate().find(|(_, e)| {
            e.src == src
                && (e.dst == dst
                    || domain.is_some_and(|d| e.dst.eq_ignore_ascii_case(d.trim_end_matches('.'))))
                && e.transport.is_none_or(|t| t == transport)
                && e.port.is_none_or(|p| port == Some(p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two services, one with an alias.
    fn service(n: &str) -> Option<String> {
        match n {
            "GES" | "Global Edge Services" => Some("GES".into()),
            "Redis" => Some("Redis".into()),
            _ => None,
        }
    }

    const ONE: &str = "exceptions:\n  - id: EXC-1\n    src: Global Edge Services\n    dst: Redis\n    port: 6379\n    reason: cache\n    owner: team@example.com\n    expires: 2027-03-31\n";

    #[test]
    fn an_alias_names_its_service_and_a_date_runs_through_its_day() {
        let x = parse(ONE, "x.yaml", &service).unwrap();
        let e = &x.entries[0];
        assert_eq!((e.src.as_str(), e.dst.as_str()), ("GES", "Redis"));
        assert_eq!(e.at, "x.yaml:2");
        // 2027-04-01T00:00:00Z
        assert_eq!(e.expires_ms, 1_806_537_600_000);
        assert!(
            x.covering("GES", "Redis", None, Transport::Tcp, Some(6379))
                .is_some()
        );
        assert!(
            x.covering("GES", "Redis", None, Transport::Tcp, Some(6380))
                .is_none()
        );
    }

    #[test]
    fn errors_point_at_the_field() {
        let bad = ONE.replace("dst: Redis", "dst: Redsi");
        let e = parse(&bad, "x.yaml", &service).unwrap_err();
        assert_eq!((e.line, e.column), (4, 10), "{e}");
        assert!(e.message.contains("\"Redsi\" is not a service"), "{e}");
        let bad = ONE.replace("2027-03-31", "31/03/2027");
        let e = parse(&bad, "x.yaml", &service).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        let twice = format!("{ONE}{}", &ONE["exceptions:\n".len()..]);
        let e = parse(&twice, "x.yaml", &service).unwrap_err();
        assert!(e.to_string().starts_with("x.yaml:9:"), "{e}");
        assert!(e.message.contains("first at x.yaml:2"), "{e}");
        let e = parse(
            &ONE.replace("expires: 2027-03-31\n", ""),
            "x.yaml",
            &service,
        )
        .unwrap_err();
        assert!(e.message.contains("expires"), "{e}");
    }
}
