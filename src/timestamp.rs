//! Timestamps in API answers: RFC 3339 in UTC (`2026-12-07T18:09:00.123456Z`),
//! written as chrono writes them (`SecondsFormat::AutoSi`, `Z`), but formatted
//! before serde sees them.
//!
//! chrono's own `Serialize` hands serde a `Display`, and `serde_json` escapes
//! every piece that `Display` writes, one call per digit or separator: on a
//! chat page of 21 messages that was about 5% of devx's CPU. Formatted first,
//! the string is escaped once. Models use these with
//! `#[serde(serialize_with = "crate::timestamp::rfc3339")]`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// A timestamp, as chrono's `Serialize` writes it.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// An optional timestamp: `null`, or as [`rfc3339`].
pub fn optional<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[derive(serde::Serialize)]
    struct Both {
        #[serde(serialize_with = "rfc3339")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "optional")]
        maybe: Option<DateTime<Utc>>,
        chrono: DateTime<Utc>,
    }

    #[test]
    fn writes_what_chrono_writes() {
        let base = Utc.with_ymd_and_hms(2026, 12, 7, 18, 9, 5).unwrap();
        // Whole seconds, milliseconds, microseconds (PostgreSQL's precision),
        // nanoseconds, and the ends of the range chrono writes with 4 digits.
        let instants = [
            base,
            base + chrono::Duration::milliseconds(120),
            base + chrono::Duration::microseconds(123_456),
            base + chrono::Duration::nanoseconds(1),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
        ];
        for at in instants {
            let json = serde_json::to_value(Both { at, maybe: Some(at), chrono: at }).unwrap();
            assert_eq!(json["at"], json["chrono"], "{at:?}");
            assert_eq!(json["maybe"], json["chrono"], "{at:?}");
        }
        let json = serde_json::to_value(Both { at: base, maybe: None, chrono: base }).unwrap();
        assert_eq!(json["maybe"], serde_json::Value::Null);
        assert_eq!(json["at"], "2026-12-07T18:09:05Z");
    }
}
