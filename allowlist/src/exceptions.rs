//! Accepted exceptions: violations someone reviewed and accepted for a time, each with the
//! edge it covers, why, who owns it and when it expires. Kept in their own reviewed file,
//! so the documented rows are never edited to make a violation go away.
//!
//! ```yaml
//! exceptions:
//!   - id: EXC-2026-014              # what reports cite
//!     src: Global Edge Services (GES)
//!     dst: Redis                    # a service (as reports name it), an IP address or a DNS name
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
    /// The source as reports name it: a service, else an IP address (canonical).
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
    /// The source: a service as reports name it, or an IP address.
    #[schemars(with = "String")]
    src: Spanned<String>,
    /// The destination: a service as reports name it, an IP address, or the DNS name the
    /// source reached it by.
    #[schemars(with = "String")]
    dst: Spanned<String>,
    /// tcp or udp; absent: either.
    #[serde(default)]
    transport: Option<Transport>,
    /// The destination port (1 to 65535); absent: any.
    #[serde(default)]
    #[schemars(with = "Option<u16>")]
    port: Option<Spanned<u64>>,
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

/// Reads an exceptions file and checks it: every name is a service (`service` gives its
/// name as reports write it, for a name it knows), an IP address or a DNS name; ids are unique; the reason and owner are given; the expiry reads.
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
        let port = match &e.port {
            None => None,
            Some(p) => match u16::try_from(p.value) {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    return Err(FileError::at(
                        origin,
                        p,
                        format!(
                            "port {} is not a port: give 1 to 65535, or leave it out for any",
                            p.value
                        ),
                    ));
                }
            },
        };
        let expires_ms = expiry_ms(e.expires.value.trim())
            .map_err(|why| FileError::at(origin, &e.expires, why))?;
        out.entries.push(Exception {
            id: id.to_string(),
            src,
            dst,
            transport: e.transport,
            port,
            reason: e.reason.value.trim().to_string(),
            owner: e.owner.value.trim().to_string(),
            expires: e.expires.value.trim().to_string(),
            expires_ms,
            at: format!("{origin}:{}", entry.referenced.line()),
        });
    }
    Ok(out)
}

/// A service's name as reports write it, an IP address, or (for a destination) a DNS
/// name; anything else is most likely a misspelt service, which
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
    // As reports write them: an address canonical, a name lower case without its root dot.
    if let Ok(addr) = n.parse::<std::net::IpAddr>() {
        return Ok(addr.to_string());
    }
    if dst && is_dns_name(n) {
        return Ok(n.trim_end_matches('.').to_ascii_lowercase());
    }
    let field = if dst { "dst" } else { "src" };
    let what = if dst {
        "a service of the report (names are exact, as reports write them), an IP address or a DNS name"
    } else {
        "a service of the report (names are exact, as reports write them) or an IP address"
    };
    Err(FileError::at(
        origin,
        name,
        format!("{field} {n:?} is not {what}"),
    ))
}

/// Letters, digits, hyphens and underscores in dot-separated labels, at least two, the
/// last not all digits (`010.0.0.1` is no name, and no address either).
fn is_dns_name(n: &str) -> bool {
    let n = n.strip_suffix('.').unwrap_or(n);
    n.len() <= 253
        && n.split('.').count() >= 2
        && n.rsplit('.')
            .next()
            .is_some_and(|l| !l.chars().all(|c| c.is_ascii_digit()))
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
    // jiff reads a date out of a whole datetime too: only YYYY-MM-DD is a date here, so
    // an instant with an offset keeps its time.
    let is_date = text.len() == 10 && text.as_bytes().get(4) == Some(&b'-');
    if is_date && let Ok(date) = text.parse::<jiff::civil::Date>() {
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
                "expires {text:?} is neither a date (2027-03-31: in force through that day, UTC) nor an RFC 3339 instant with its offset (2027-03-31T12:00:00Z, 2027-03-31T14:00:00+02:00)"
            )
        })
}

impl Exceptions {
    /// The exception for a violation on this edge last seen at `last_ms`, with its index:
    /// of the entries whose edge matches, the first in force then, else (all expired) the
    /// one that expired last. So a renewal added after an expired entry applies.
    /// `src` and `dst` are every name the ends are known by (service, address, and for
    /// the destination the DNS name it was reached by).
    pub fn covering(
        &self,
        src: &[String],
        dst: &[String],
        transport: Transport,
        port: Option<u16>,
        last_ms: i64,
    ) -> Option<(usize, &Exception)> {
        let named = |names: &[String], n: &str| names.iter().any(|x| x.eq_ignore_ascii_case(n));
        let mut matching = self.entries.iter().enumerate().filter(|(_, e)| {
            named(src, &e.src)
                && named(dst, &e.dst)
                && e.transport.is_none_or(|t| t == transport)
                && e.port.is_none_or(|p| port == Some(p))
        });
        let mut latest: Option<(usize, &Exception)> = None;
        for (i, e) in matching.by_ref() {
            if last_ms < e.expires_ms {
                return Some((i, e));
            }
            if latest.is_none_or(|(_, l)| e.expires_ms > l.expires_ms) {
                latest = Some((i, e));
            }
        }
        latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two services, one also known by another name.
    fn service(n: &str) -> Option<String> {
        match n {
            "GES" | "Global Edge Services" => Some("GES".into()),
            "Redis" => Some("Redis".into()),
            _ => None,
        }
    }

    const ONE: &str = "exceptions:\n  - id: EXC-1\n    src: Global Edge Services\n    dst: Redis\n    port: 6379\n    reason: cache\n    owner: team@example.com\n    expires: 2027-03-31\n";

    #[test]
    fn a_name_the_lookup_knows_is_its_service_and_a_date_runs_through_its_day() {
        let x = parse(ONE, "x.yaml", &service).unwrap();
        let e = &x.entries[0];
        assert_eq!((e.src.as_str(), e.dst.as_str()), ("GES", "Redis"));
        assert_eq!(e.at, "x.yaml:2");
        // 2027-04-01T00:00:00Z
        assert_eq!(e.expires_ms, 1_806_537_600_000);
        let names = |n: &str| vec![n.to_string()];
        let at = |port, last| {
            x.covering(
                &names("GES"),
                &names("Redis"),
                Transport::Tcp,
                Some(port),
                last,
            )
        };
        assert!(at(6379, 0).is_some());
        assert!(at(6380, 0).is_none());
        // Past its expiry it is still the one that covers the edge (expired).
        assert!(at(6379, e.expires_ms).is_some());
    }

    #[test]
    fn errors_point_at_the_field() {
        let bad = ONE.replace("dst: Redis", "dst: Redsi");
        let e = parse(&bad, "x.yaml", &service).unwrap_err();
        assert_eq!((e.line, e.column), (4, 10), "{e}");
        assert!(
            e.message
                .contains("\"Redsi\" is not a service of the report"),
            "{e}"
        );
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
        let e = parse(&ONE.replace("6379", "70000"), "x.yaml", &service).unwrap_err();
        assert!(
            (e.line, e.message.contains("1 to 65535")) == (5, true),
            "{e}"
        );
    }

    #[test]
    fn an_instant_keeps_its_offset_and_a_renewal_after_an_expired_entry_applies() {
        // 02:26 at +02:00 is 00:26 UTC, not the end of that day.
        assert_eq!(
            expiry_ms("2026-12-05T02:26:00+02:00"),
            expiry_ms("2026-12-05T00:26:00Z")
        );
        assert!(
            expiry_ms("2026-12-05T00:26:00").is_err(),
            "no offset: refused"
        );
        let renewed = format!(
            "{ONE}{}",
            ONE["exceptions:\n".len()..]
                .replace("EXC-1", "EXC-2")
                .replace("2027-03-31", "2028-03-31")
        );
        let x = parse(&renewed, "x.yaml", &service).unwrap();
        let names = |n: &str| vec![n.to_string()];
        let late = x.entries[0].expires_ms + 1;
        let (_, e) = x
            .covering(
                &names("GES"),
                &names("Redis"),
                Transport::Tcp,
                Some(6379),
                late,
            )
            .unwrap();
        assert_eq!(e.id, "EXC-2");
        // An address is kept canonical, a name without its root dot.
        let x = parse(
            &ONE.replace("dst: Redis", "dst: API.Customer.Example."),
            "x.yaml",
            &service,
        )
        .unwrap();
        assert_eq!(x.entries[0].dst, "api.customer.example");
        assert!(
            parse(
                &ONE.replace("dst: Redis", "dst: 010.0.0.1"),
                "x.yaml",
                &service
            )
            .is_err()
        );
    }
}
