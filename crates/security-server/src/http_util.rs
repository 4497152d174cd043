//! Small HTTP helpers shared by both sides: fault responses, bounded body reading, ids.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use passerelle_ids::FaultCode;
use passerelle_protocol::error_body::ErrorBody;
use passerelle_protocol::headers;

pub(crate) type Body = Full<Bytes>;

/// A gateway fault: the code the caller sees, a message safe to show it, and the reason kept for
/// the log line that the correlation id points to.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) code: FaultCode,
    pub(crate) message: String,
    pub(crate) reason: String,
}

impl Fault {
    pub(crate) fn new(code: FaultCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            reason: message.clone(),
            message,
        }
    }

    /// A fault whose internal reason must not be shown to the caller.
    pub(crate) fn hidden(
        code: FaultCode,
        message: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            code,
            message: message.into(),
            reason: reason.into(),
        }
    }

    /// The JSON error response, with `X-Road-Error`, logged with its correlation id.
    pub(crate) fn into_response(self) -> Response<Body> {
        let detail = random_hex(8);
        tracing::warn!(code = %self.code, detail = %detail, reason = %self.reason, "answering a fault");
        let body = ErrorBody::new(self.code, self.message, detail).to_json();
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(self.code.code()) {
            headers.insert(headers::ERROR, value);
        }
        response
    }
}

/// Why a body could not be read.
pub(crate) enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) async fn read_body<B>(body: B, limit: u64) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge)
        }
        Err(error) => Err(BodyError::Broken(error.to_string())),
    }
}

/// `bytes` random bytes as lowercase hex, from the operating system's generator.
pub(crate) fn random_hex(bytes: usize) -> String {
    hex::encode(random_bytes(bytes))
}

/// A UUID version 4 in its usual text form.
pub(crate) fn random_uuid() -> String {
    let mut bytes = random_bytes(16);
    if let (Some(version), Some(variant)) = (bytes.get(6).copied(), bytes.get(8).copied()) {
        bytes[6] = (version & 0x0f) | 0x40;
        bytes[8] = (variant & 0x3f) | 0x80;
    }
    let text = hex::encode(&bytes);
    let part = |range: std::ops::Range<usize>| text.get(range).unwrap_or_default().to_owned();
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

fn random_bytes(count: usize) -> Vec<u8> {
    let mut buffer = vec![0; count];
    // The system generator does not fail once the machine has booted. If it ever did, ids
    // would still be unique per process by mixing time and a counter (they are identifiers,
    // not secrets), so an exchange is not refused for it.
    if passerelle_pki::random::fill(&mut buffer).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = passerelle_pki::digest::sha256(format!("{nanos}:{count}").as_bytes());
        for (index, byte) in buffer.iter_mut().enumerate() {
            *byte = seed.get(index % 32).copied().unwrap_or_default();
        }
    }
    buffer
}

/// Size of the request head: names, values and the request line.
pub(crate) fn header_bytes(parts: &http::request::Parts) -> usize {
    parts.uri.to_string().len()
        + parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_distinct() {
        let one = random_uuid();
        let two = random_uuid();
        assert_ne!(one, two);
        assert_eq!(one.len(), 36);
        assert_eq!(one.as_bytes()[14], b'4');
        assert!(
            matches!(one.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "{one}"
        );
    }
}
