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
        super::parse_rfc3339(&text).map_err(|e| D::Error::custom(e.to_string()))
    }
}

/// A span of time as every output writes it: the two largest units ("45 s", "2 min 5 s",
/// "3 h 2 min", "4 d 3 h"), each rounded down, so a report never claims more watched time
/// than there was; "<1 s" for a span under a second, "0 s" only for none at all.
pub fn duration_text(seconds: f64) -> String {
    // NaN and negative spans (a clock stepped back) are no time watched.
    if seconds.is_nan() || seconds <= 0.0 {
        return "0 s".into();
    }
    if seconds < 1.0 {
        return "<1 s".into();
    }
    let s = seconds.min(u64::MAX as f64) as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    let two = |big: u64, bu: &str, small: u64, su: &str| {
        if small == 0 {
            format!("{big} {bu}")
        } else {
            format!("{big} {bu} {small} {su}")
        }
    };
    if d > 0 {
        two(d, "d", h, "h")
    } else if h > 0 {
        two(h, "h", m, "min")
    } else if m > 0 {
        two(m, "min", sec, "s")
    } else {
        format!("{sec} s")
    }
}

#[cfg(test)]
mod duration_tests {
    use super::duration_text;

    #[test]
    fn spans_read_in_two_units_rounded_down() {
        for (s, want) in [
            (0.0, "0 s"),
            (-1.0, "0 s"),
            (f64::NAN, "0 s"),
            (0.78, "<1 s"),
            (1.0, "1 s"),
            (1.99, "1 s"),
            (59.9, "59 s"),
            (60.0, "1 min"),
            (125.0, "2 min 5 s"),
            (3_600.0, "1 h"),
            (10_920.0, "3 h 2 min"),
            (10_979.0, "3 h 2 min"),
            (86_400.0 * 4.0 + 3.0 * 3_600.0 + 59.0, "4 d 3 h"),
            (663_924.0, "7 d 16 h"),
        ] {
            assert_eq!(duration_text(s), want, "{s}");
        }
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
