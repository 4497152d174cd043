use http::{HeaderMap, HeaderName, HeaderValue};
use passerelle_ids::{SecurityServerId, SubsystemId};

use crate::ProtocolError;

/// The calling subsystem, `INSTANCE/CLASS/CODE/SUBSYSTEM` (required from local systems).
pub const CLIENT: &str = "x-road-client";
/// The message id chosen by the caller, generated when absent.
pub const ID: &str = "x-road-id";
/// The end user on whose behalf the call is made.
pub const USER_ID: &str = "x-road-userid";
/// The case or issue the call belongs to.
pub const ISSUE: &str = "x-road-issue";
/// The party the client represents (`CLASS/CODE` or free text, at most [`MAX_VALUE_LENGTH`]).
pub const REPRESENTED_PARTY: &str = "x-road-represented-party";
/// Pins the provider's security server, `INSTANCE/CLASS/CODE/SERVERCODE`.
pub const SECURITY_SERVER: &str = "x-road-security-server";
/// Response: the service that answered.
pub const SERVICE: &str = "x-road-service";
/// Response (and server-to-server request): the id the consumer's security server gave the exchange.
pub const REQUEST_ID: &str = "x-road-request-id";
/// Response: base64 of the SHA-256 of the request's signing input.
pub const REQUEST_HASH: &str = "x-road-request-hash";
/// Response: the fault code, present only on faults raised by a gateway.
pub const ERROR: &str = "x-road-error";

/// The longest value accepted in `X-Road-Id`, `X-Road-UserId`, `X-Road-Issue` and
/// `X-Road-Represented-Party`.
pub const MAX_VALUE_LENGTH: usize = 255;

/// Headers that belong to one connection (RFC 9110 §7.6.1) and never travel.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers that describe one hop's framing or one party, not the message.
const NOT_FORWARDED: [&str; 4] = ["host", "user-agent", "server", "content-length"];

/// The `X-Road-*` headers of a local system's request, parsed and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHeaders {
    pub client: SubsystemId,
    pub message_id: Option<String>,
    pub user_id: Option<String>,
    pub issue: Option<String>,
    pub represented_party: Option<String>,
    pub security_server: Option<SecurityServerId>,
}

impl ClientHeaders {
    /// Parses the protocol headers of a client-side request. `X-Road-Client` is required; every
    /// header may appear at most once; free-text values are visible ASCII or spaces, at most
    /// [`MAX_VALUE_LENGTH`] bytes.
    pub fn parse(headers: &HeaderMap) -> Result<Self, ProtocolError> {
        let client = single(headers, CLIENT)?.ok_or(ProtocolError::MissingHeader {
            name: "X-Road-Client",
        })?;
        let client =
            client
                .parse::<SubsystemId>()
                .map_err(|error| ProtocolError::InvalidHeader {
                    name: "X-Road-Client",
                    reason: error.to_string(),
                })?;
        let security_server = single(headers, SECURITY_SERVER)?
            .map(|value| {
                value
                    .parse::<SecurityServerId>()
                    .map_err(|error| ProtocolError::InvalidHeader {
                        name: "X-Road-Security-Server",
                        reason: error.to_string(),
                    })
            })
            .transpose()?;
        Ok(Self {
            client,
            message_id: text(headers, ID, "X-Road-Id")?,
            user_id: text(headers, USER_ID, "X-Road-UserId")?,
            issue: text(headers, ISSUE, "X-Road-Issue")?,
            represented_party: text(headers, REPRESENTED_PARTY, "X-Road-Represented-Party")?,
            security_server,
        })
    }
}

/// Checks one free-text protocol value (message id, user id, issue, represented party).
pub fn validate_text(name: &'static str, value: &str) -> Result<(), ProtocolError> {
    if value.is_empty() || value.len() > MAX_VALUE_LENGTH {
        return Err(ProtocolError::InvalidHeader {
            name,
            reason: format!("must be 1 to {MAX_VALUE_LENGTH} bytes long"),
        });
    }
    if !value
        .bytes()
        .all(|byte| byte == b' ' || byte.is_ascii_graphic())
    {
        return Err(ProtocolError::InvalidHeader {
            name,
            reason: "must be visible ASCII".to_owned(),
        });
    }
    Ok(())
}

fn single<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, ProtocolError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ProtocolError::RepeatedHeader { name });
    }
    value
        .to_str()
        .map(|value| Some(value.trim()))
        .map_err(|_| ProtocolError::InvalidHeader {
            name,
            reason: "must be visible ASCII".to_owned(),
        })
}

fn text(
    headers: &HeaderMap,
    name: &'static str,
    display: &'static str,
) -> Result<Option<String>, ProtocolError> {
    let Some(value) = single(headers, name).map_err(|error| rename(error, display))? else {
        return Ok(None);
    };
    validate_text(display, value)?;
    Ok(Some(value.to_owned()))
}

fn rename(error: ProtocolError, display: &'static str) -> ProtocolError {
    match error {
        ProtocolError::RepeatedHeader { .. } => ProtocolError::RepeatedHeader { name: display },
        ProtocolError::InvalidHeader { reason, .. } => ProtocolError::InvalidHeader {
            name: display,
            reason,
        },
        other => other,
    }
}

/// Whether a header travels end to end with the message. Hop-by-hop headers (including any named
/// in `Connection`), `Host`, `User-Agent`, `Server` and `Content-Length` do not; neither does any
/// `X-Road-*` or `X-Passerelle-*` header: those are the protocol's own, consumed by the gateway and
/// re-created by it, so a local system or a backend cannot inject a signature, a request hash or
/// an error code.
pub fn is_forwarded(name: &HeaderName, connection_tokens: &[String]) -> bool {
    let name = name.as_str();
    !(HOP_BY_HOP.contains(&name)
        || NOT_FORWARDED.contains(&name)
        || name.starts_with("x-road-")
        || name.starts_with("x-passerelle-")
        || connection_tokens.iter().any(|token| token == name))
}

/// The headers of `headers` that travel end to end, in canonical order: names (lowercase) sorted,
/// the values of one name in the order received.
pub fn forwardable(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let connection_tokens: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect();
    let mut kept: Vec<(HeaderName, HeaderValue)> = headers
        .iter()
        .filter(|(name, _)| is_forwarded(name, &connection_tokens))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // A stable sort keeps the received order of repeated names, which is significant.
    kept.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    kept
}

/// The SHA-256 that a signing input carries for a list of forwarded headers: over
/// `u32(count) ‖ (u32(len) ‖ name ‖ u32(len) ‖ value)*` in the list's order (see
/// [`forwardable`] for the canonical order).
pub fn headers_digest(headers: &[(HeaderName, HeaderValue)]) -> [u8; 32] {
    let mut hasher = passerelle_pki::digest::Sha256::new();
    hasher.update(&u32_be(headers.len()));
    for (name, value) in headers {
        hasher
            .update(&u32_be(name.as_str().len()))
            .update(name.as_str().as_bytes());
        hasher
            .update(&u32_be(value.as_bytes().len()))
            .update(value.as_bytes());
    }
    hasher.finish()
}

fn u32_be(length: usize) -> [u8; 4] {
    // Header names and values are bounded far below 4 GiB by every HTTP stack; saturate anyway.
    u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn parses_every_client_header() {
        let headers = map(&[
            ("X-Road-Client", "DEV/GOV/EDUCATION/schools"),
            ("X-Road-Id", "msg-1"),
            ("X-Road-UserId", "EE12345"),
            ("X-Road-Issue", "case 7"),
            ("X-Road-Represented-Party", "GOV/CITY"),
            ("X-Road-Security-Server", "DEV/GOV/HEALTH/ss1"),
        ]);
        let parsed = ClientHeaders::parse(&headers).unwrap();
        assert_eq!(parsed.client.to_string(), "DEV/GOV/EDUCATION/schools");
        assert_eq!(parsed.message_id.as_deref(), Some("msg-1"));
        assert_eq!(parsed.user_id.as_deref(), Some("EE12345"));
        assert_eq!(parsed.issue.as_deref(), Some("case 7"));
        assert_eq!(parsed.represented_party.as_deref(), Some("GOV/CITY"));
        assert_eq!(
            parsed.security_server.map(|s| s.to_string()).as_deref(),
            Some("DEV/GOV/HEALTH/ss1")
        );
    }

    #[test]
    fn rejects_bad_client_headers() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "missing header X-Road-Client"),
            (
                &[("X-Road-Client", "DEV/GOV/EDUCATION")],
                "invalid header X-Road-Client",
            ),
            (
                &[
                    ("X-Road-Client", "DEV/GOV/E/s"),
                    ("X-Road-Client", "DEV/GOV/E/t"),
                ],
                "appears more than once",
            ),
            (
                &[("X-Road-Client", "DEV/GOV/E/s"), ("X-Road-Id", "")],
                "invalid header X-Road-Id",
            ),
            (
                &[
                    ("X-Road-Client", "DEV/GOV/E/s"),
                    ("X-Road-Security-Server", "DEV/GOV"),
                ],
                "X-Road-Security-Server",
            ),
            (
                &[
                    ("X-Road-Client", "DEV/GOV/E/s"),
                    ("X-Road-Issue", &"x".repeat(256)),
                ],
                "X-Road-Issue",
            ),
        ];
        for (pairs, expected) in cases {
            let error = ClientHeaders::parse(&map(pairs)).unwrap_err().to_string();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn filters_hop_by_hop_identity_and_protocol_headers() {
        let headers = map(&[
            ("Host", "a"),
            ("User-Agent", "curl"),
            ("Server", "x"),
            ("Connection", "keep-alive, X-Secret"),
            ("X-Secret", "1"),
            ("Keep-Alive", "5"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Length", "3"),
            ("X-Road-Request-Hash", "forged"),
            ("X-Passerelle-Signature", "forged"),
            ("Accept", "application/json"),
            ("X-Trace", "b"),
            ("X-Trace", "a"),
            ("Content-Type", "text/plain"),
        ]);
        let kept: Vec<(String, String)> = forwardable(&headers)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let expected = [
            ("accept", "application/json"),
            ("content-type", "text/plain"),
            ("x-trace", "b"),
            ("x-trace", "a"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn header_digest_is_unambiguous() {
        let one = forwardable(&map(&[("x-a", "bc")]));
        let two = forwardable(&map(&[("x-ab", "c")]));
        assert_ne!(headers_digest(&one), headers_digest(&two));
        assert_ne!(headers_digest(&[]), headers_digest(&one));
    }
}
