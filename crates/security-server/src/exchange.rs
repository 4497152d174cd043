//! What both sides share about one exchange: the protocol headers sent between servers and the
//! message-log record.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_messagelog::{
    BatchEvidence, Body, Evidence, ExchangeRecord, MessagePart, PeerAuthentication, Sha256Hash,
    Side, SignatureEvidence,
};
use passerelle_pki::digest::Digested;
use passerelle_protocol::envelope::SignatureEnvelope;
use passerelle_protocol::headers;

/// The identifiers of one exchange, as both servers know them.
#[derive(Debug, Clone)]
pub(crate) struct ExchangeIds {
    pub(crate) message_id: String,
    pub(crate) request_id: String,
    pub(crate) client: SubsystemId,
    pub(crate) service: ServiceId,
    pub(crate) user_id: Option<String>,
    pub(crate) issue: Option<String>,
    pub(crate) represented_party: Option<String>,
}

impl ExchangeIds {
    /// The `X-Road-*` headers that carry these ids to the provider and its backend.
    pub(crate) fn write_request_headers(&self, headers: &mut HeaderMap) {
        set(headers, headers::CLIENT, &self.client.to_string());
        set_varying(headers, headers::ID, &self.message_id);
        set_varying(headers, headers::REQUEST_ID, &self.request_id);
        for (name, value) in [
            (headers::USER_ID, &self.user_id),
            (headers::ISSUE, &self.issue),
            (headers::REPRESENTED_PARTY, &self.represented_party),
        ] {
            if let Some(value) = value {
                set(headers, name, value);
            }
        }
    }

    /// The `X-Road-*` headers of the response to the local system.
    pub(crate) fn write_response_headers(
        &self,
        headers: &mut HeaderMap,
        request_hash: Option<&str>,
    ) {
        set(headers, headers::ID, &self.message_id);
        set(headers, headers::CLIENT, &self.client.to_string());
        set(headers, headers::SERVICE, &self.service.to_string());
        set(headers, headers::REQUEST_ID, &self.request_id);
        if let Some(hash) = request_hash {
            set(headers, headers::REQUEST_HASH, hash);
        }
    }
}

/// The path and query a record logs: the part after the service, then `?query` if any.
pub(crate) fn logged_path(rest: &str, uri: &http::Uri) -> String {
    match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    }
}

pub(crate) fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Sets a header whose value is new with every message, marked so that HTTP/2 does not add it
/// to the HPACK table (see `crate::server::HPACK_TABLE_BYTES`).
pub(crate) fn set_varying(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(mut value) = HeaderValue::from_str(value) {
        value.set_sensitive(true);
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// One signed part (request or response) for the log.
pub(crate) struct SignedPart<'a> {
    pub(crate) signing_input: Vec<u8>,
    pub(crate) envelope: &'a SignatureEnvelope,
    /// The body with the SHA-256 its signing input carries (not hashed a second time).
    pub(crate) body: &'a Digested<Bytes>,
    pub(crate) keep_body: bool,
    /// The OCSP response stapled beside the signature (DER), kept as evidence.
    pub(crate) certificate_status: Option<Vec<u8>>,
}

impl SignedPart<'_> {
    fn into_part(self) -> MessagePart {
        MessagePart {
            signing_input: self.signing_input,
            signature: Some(SignatureEvidence {
                algorithm: self.envelope.algorithm.as_str().to_owned(),
                signature: self.envelope.signature.clone(),
                certificate_chain: self
                    .envelope
                    .signer_chain
                    .iter()
                    .map(|der| Evidence::Der(der.to_vec()))
                    .collect(),
                batch: Some(BatchEvidence {
                    root: Sha256Hash(self.envelope.batch_root),
                    proof: self.envelope.proof.clone(),
                }),
            }),
            certificate_status: self.certificate_status.map(Evidence::Der),
            body_digest: Sha256Hash(*self.body.sha256()),
            body_size: u64::try_from(self.body.bytes().len()).unwrap_or(u64::MAX),
            body: if self.keep_body {
                Body::Plain(self.body.clone())
            } else {
                Body::Absent
            },
        }
    }
}

/// The record of a completed exchange. `peer_certificate` is the other server's TLS certificate
/// (DER) and `peer_auth_status` the OCSP response it stapled for it.
#[allow(
    clippy::too_many_arguments,
    reason = "a flat constructor of a flat record"
)]
pub(crate) fn record(
    side: Side,
    ids: &ExchangeIds,
    method: &str,
    path_and_query: String,
    received_ms: u64,
    sent_ms: u64,
    status: u16,
    request: SignedPart<'_>,
    response: SignedPart<'_>,
    peer_certificate: &[u8],
    peer_auth_status: Option<Vec<u8>>,
) -> ExchangeRecord {
    ExchangeRecord {
        side,
        message_id: ids.message_id.clone(),
        request_id: ids.request_id.clone(),
        client: ids.client.clone(),
        service: ids.service.clone(),
        method: method.to_owned(),
        path_and_query,
        user_id: ids.user_id.clone(),
        request_received_at_ms: received_ms,
        response_sent_at_ms: sent_ms,
        status,
        fault_code: None,
        request: request.into_part(),
        response: response.into_part(),
        peer_authentication: Some(PeerAuthentication {
            certificate_chain: vec![Evidence::Der(peer_certificate.to_vec())],
            certificate_status: peer_auth_status.map(Evidence::Der),
        }),
    }
}
