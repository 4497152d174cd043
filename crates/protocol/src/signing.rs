use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_ids::{ServiceId, SubsystemId};

use crate::PROTOCOL_VERSION;

/// The signing time as carried on the wire: milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SigningTime(pub u64);

impl SigningTime {
    /// `time`, truncated to milliseconds; times before 1970 become 0.
    pub fn from_system_time(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Self(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// The instant this signing time names.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// Whether this time is within `skew` of `now`, in either direction.
    pub fn is_within(self, now: SystemTime, skew: Duration) -> bool {
        let time = self.to_system_time();
        let distance = now
            .duration_since(time)
            .or_else(|_| time.duration_since(now))
            .unwrap_or_default();
        distance <= skew
    }
}

/// Everything a request signature covers (DESIGN §2.2). [`RequestSigningInput::encode`] is the
/// exact byte string that is hashed into the batch's Merkle tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSigningInput {
    pub message_id: String,
    pub request_id: String,
    pub client: SubsystemId,
    pub service: ServiceId,
    pub method: String,
    /// The request path exactly as sent (`/r1/...`, still percent-encoded) with `?query` if any.
    pub path_and_query: String,
    pub user_id: Option<String>,
    pub issue: Option<String>,
    pub represented_party: Option<String>,
    /// [`crate::headers::headers_digest`] of the forwarded headers.
    pub headers_digest: [u8; 32],
    /// SHA-256 of the body (of the empty string when there is none).
    pub body_digest: [u8; 32],
    pub signing_time: SigningTime,
}

/// Everything a response signature covers, bound to its request by the request hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSigningInput {
    pub message_id: String,
    pub request_id: String,
    pub client: SubsystemId,
    pub service: ServiceId,
    /// [`RequestSigningInput::hash`] of the request this answers.
    pub request_hash: [u8; 32],
    pub status: u16,
    pub headers_digest: [u8; 32],
    pub body_digest: [u8; 32],
    pub signing_time: SigningTime,
}

impl RequestSigningInput {
    /// The canonical bytes: every field length-prefixed (`u32` big-endian), optional fields
    /// preceded by a presence byte, in the order documented in `docs/protocol.md`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Encoder::new("request");
        out.field(self.message_id.as_bytes())
            .field(self.request_id.as_bytes())
            .field(self.client.to_string().as_bytes())
            .field(self.service.to_string().as_bytes())
            .field(self.method.as_bytes())
            .field(self.path_and_query.as_bytes())
            .optional(self.user_id.as_deref())
            .optional(self.issue.as_deref())
            .optional(self.represented_party.as_deref())
            .field(&self.headers_digest)
            .field(&self.body_digest)
            .field(&self.signing_time.0.to_be_bytes());
        out.bytes
    }

    /// SHA-256 of [`Self::encode`]: the request hash a response is bound to and that the consumer
    /// returns in `X-Road-Request-Hash`.
    pub fn hash(&self) -> [u8; 32] {
        passerelle_pki::digest::sha256(&self.encode())
    }
}

impl ResponseSigningInput {
    /// The canonical bytes, laid out like a request's (see `docs/protocol.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Encoder::new("response");
        out.field(self.message_id.as_bytes())
            .field(self.request_id.as_bytes())
            .field(self.client.to_string().as_bytes())
            .field(self.service.to_string().as_bytes())
            .field(&self.request_hash)
            .field(&self.status.to_be_bytes())
            .field(&self.headers_digest)
            .field(&self.body_digest)
            .field(&self.signing_time.0.to_be_bytes());
        out.bytes
    }
}

struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    fn new(kind: &str) -> Self {
        let mut encoder = Self {
            bytes: Vec::with_capacity(512),
        };
        encoder
            .field(PROTOCOL_VERSION.as_bytes())
            .field(kind.as_bytes());
        encoder
    }

    fn field(&mut self, value: &[u8]) -> &mut Self {
        // Every field is bounded (header values, paths, digests) far below 4 GiB; a longer one
        // would already have been refused by the HTTP layer, so saturating cannot collide.
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&length.to_be_bytes());
        self.bytes.extend_from_slice(value);
        self
    }

    fn optional(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            None => {
                self.bytes.push(0);
                self
            }
            Some(value) => {
                self.bytes.push(1);
                self.field(value.as_bytes())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> RequestSigningInput {
        RequestSigningInput {
            message_id: "m".to_owned(),
            request_id: "r".to_owned(),
            client: "DEV/GOV/EDUCATION/schools".parse().unwrap(),
            service: "DEV/GOV/HEALTH/patients/vaccinations".parse().unwrap(),
            method: "GET".to_owned(),
            path_and_query: "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1".to_owned(),
            user_id: None,
            issue: None,
            represented_party: None,
            headers_digest: [1; 32],
            body_digest: [2; 32],
            signing_time: SigningTime(1_700_000_000_000),
        }
    }

    #[test]
    fn every_field_changes_the_bytes() {
        let base = request().encode();
        let mut variants = Vec::new();
        let mut changed = request();
        changed.message_id.push('x');
        variants.push(changed);
        let mut changed = request();
        changed.user_id = Some(String::new());
        variants.push(changed);
        let mut changed = request();
        changed.issue = Some("i".to_owned());
        variants.push(changed);
        let mut changed = request();
        changed.signing_time = SigningTime(1);
        variants.push(changed);
        let mut changed = request();
        changed.path_and_query.push_str("?a=1");
        variants.push(changed);
        for variant in variants {
            assert_ne!(variant.encode(), base, "{variant:?}");
        }
        // Moving a byte between adjacent fields changes the encoding (no concatenation ambiguity).
        let mut left = request();
        left.message_id = "ab".to_owned();
        left.request_id = "c".to_owned();
        let mut right = request();
        right.message_id = "a".to_owned();
        right.request_id = "bc".to_owned();
        assert_ne!(left.encode(), right.encode());
    }

    #[test]
    fn skew_is_symmetric() {
        let time = SigningTime(1_000_000);
        let skew = Duration::from_secs(10);
        assert!(time.is_within(time.to_system_time() + skew, skew));
        assert!(time.is_within(time.to_system_time() - skew, skew));
        assert!(!time.is_within(
            time.to_system_time() + skew + Duration::from_millis(1),
            skew
        ));
    }
}
