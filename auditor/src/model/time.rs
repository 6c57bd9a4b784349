//! Time in every output: unix milliseconds inside, RFC 3339 (UTC) outside. Two textual
//! precisions, named for what they show: `rfc3339_millis` for records, coverage and
//! periods (a gap shorter than a second is still a gap), `rfc3339_seconds` where a human
//! reads a first/last-seen column.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds: what the store, edges and reports keep.
pub type Millis = i64;

pub fn unix_ms(t: SystemTime) -> Millis {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn from_unix_ms(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Unix milliseconds as RFC 3339 with milliseconds, UTC.
pub fn rfc3339_millis(ms: Millis) -> String {
    rfc3339(from_unix_ms(ms))
}

/// Unix milliseconds as RFC 3339 to the second, UTC: for tables humans scan.
pub fn rfc3339_seconds(ms: Millis) -> String {
    humantime::format_rfc3339_seconds(from_unix_ms(ms)).to_string()
}

/// Millisecond timestamps as RFC 3339 strings in JSON (`#[serde(with = ...)]`).
pub mod as_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_millis(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text)
            .map(super::unix_ms)
            .map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
    }
}

/// Why a recorded time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// A date and time without `Z` or an offset: which instant it names is unknown.
    #[error("{0:?} is ambiguous: no zone (give Z or an offset such as +02:00)")]
    NoZone(String),
    #[error("{0:?} is not an RFC 3339 time")]
    NotRfc3339(String),
}

/// An RFC 3339 time with any offset (`Z`, `+02:00`), as Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<Millis, TimeError> {
    match text.parse::<jiff::Timestamp>() {
        Ok(t) => Ok(t.as_millisecond()),
        // jiff refuses a civil time without an offset; tell that case apart.
        Err(_) if text.parse::<jiff::civil::DateTime>().is_ok() => {
            Err(TimeError::NoZone(text.to_string()))
        }
        Err(_) => Err(TimeError::NotRfc3339(text.to_string())),
    }
}
