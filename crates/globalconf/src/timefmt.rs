//! RFC 3339 text for `SystemTime`, the form every timestamp takes in JSON documents.

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `time` as RFC 3339 in UTC, e.g. `2026-01-02T03:04:05Z`.
pub fn format_rfc3339(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(&Rfc3339)
        .unwrap_or_else(|_| format!("{time:?}"))
}

/// Parses an RFC 3339 timestamp.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(SystemTime::from)
        .map_err(|error| format!("{text:?} is not an RFC 3339 timestamp: {error}"))
}

/// `#[serde(with = "rfc3339")]` for `SystemTime` fields.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    pub(crate) fn serialize<S: serde::Serializer>(
        time: &SystemTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_rfc3339(*time))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        super::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}
