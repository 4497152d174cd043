//! The record model: what a security server logs for each exchange, and the chained entry that
//! wraps it on disk.
//!
//! Everything except the bodies is stored in clear so that the chain, the signatures and the
//! time-stamps can be checked without the body key.

use bytes::Bytes;
use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_pki::digest::Digested;
use passerelle_pki::merkle::InclusionProof;
use serde::{Deserialize, Serialize};

use crate::evidence::{Evidence, HashMemo};
use crate::hash::{Sha256Hash, base64_bytes};

/// Which security server of the exchange wrote the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The client's security server (it received the request from its information system).
    Consumer,
    /// The service's security server (it forwarded the request to the provider's service).
    Provider,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Consumer => "consumer",
            Side::Provider => "provider",
        }
    }
}

/// One exchange as seen by one side: metadata, and for the request and the response the signed
/// evidence and the (sealed) body. Its byte strings are written as base64 by [`crate::json`]
/// (not by a plain `serde_json::to_vec`, which would write arrays of numbers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRecord {
    pub side: Side,
    /// `X-Road-Id` of the exchange.
    pub message_id: String,
    /// The request id that the response's signing input binds to.
    pub request_id: String,
    pub client: SubsystemId,
    pub service: ServiceId,
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Path and query after the service part, e.g. `/v1/children/42?year=2024`.
    pub path_and_query: String,
    /// `X-Road-UserId`, when the caller sent one.
    pub user_id: Option<String>,
    /// When this side received the request (unix milliseconds).
    pub request_received_at_ms: u64,
    /// When this side sent the response (unix milliseconds).
    pub response_sent_at_ms: u64,
    /// HTTP status answered to the caller.
    pub status: u16,
    /// Fault code (`X-Road-Error`) when the gateway answered with an error.
    pub fault_code: Option<String>,
    pub request: MessagePart,
    pub response: MessagePart,
    /// How the other security server authenticated itself on the TLS connection of the
    /// exchange. Absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_authentication: Option<PeerAuthentication>,
}

impl ExchangeRecord {
    /// About how many bytes its JSON takes (binary fields as base64, plus the rest), so that the
    /// encoder's buffer is allocated once rather than grown by doubling.
    pub(crate) fn json_size_hint(&self) -> usize {
        let part = |part: &MessagePart| {
            part.signing_input.len()
                + part
                    .signature
                    .as_ref()
                    .map_or(0, |signature| signature.signature.len())
                + match &part.body {
                    Body::Sealed { sealed, .. } => sealed.len(),
                    Body::Plain(plain) => plain.bytes().len(),
                    Body::Absent => 0,
                }
        };
        let binary = part(&self.request) + part(&self.response);
        let evidence: usize = self.evidence().map(Evidence::json_len).sum();
        binary / 3 * 4 + evidence + 2048
    }

    /// Every certificate and certificate status the record carries.
    pub fn evidence(&self) -> impl Iterator<Item = &Evidence> {
        fn of_part(part: &MessagePart) -> impl Iterator<Item = &Evidence> {
            part.signature
                .iter()
                .flat_map(|signature| &signature.certificate_chain)
                .chain(&part.certificate_status)
        }
        let peer = self.peer_authentication.iter().flat_map(|peer| {
            peer.certificate_chain
                .iter()
                .chain(&peer.certificate_status)
        });
        of_part(&self.request)
            .chain(of_part(&self.response))
            .chain(peer)
    }

    /// The hashes of the evidence the record names by reference (none for a record of content
    /// format 1, which carries its evidence inline).
    pub(crate) fn stored_evidence(&self) -> impl Iterator<Item = Sha256Hash> {
        self.evidence().filter_map(Evidence::stored)
    }

    fn evidence_mut(&mut self) -> impl Iterator<Item = &mut Evidence> {
        fn of_part(part: &mut MessagePart) -> impl Iterator<Item = &mut Evidence> {
            part.signature
                .iter_mut()
                .flat_map(|signature| &mut signature.certificate_chain)
                .chain(&mut part.certificate_status)
        }
        let peer = self.peer_authentication.iter_mut().flat_map(|peer| {
            peer.certificate_chain
                .iter_mut()
                .chain(&mut peer.certificate_status)
        });
        of_part(&mut self.request)
            .chain(of_part(&mut self.response))
            .chain(peer)
    }

    /// Replaces every certificate and status by its reference, returning the bytes (to be put
    /// in the evidence store).
    pub(crate) fn store_evidence(&mut self, memo: &HashMemo) -> Vec<(Sha256Hash, Vec<u8>)> {
        let mut stored = Vec::new();
        for evidence in self.evidence_mut() {
            evidence.store(memo, &mut stored);
        }
        stored
    }

    /// Replaces every reference by the bytes `lookup` gives for it (bytes it has checked against
    /// the hash); fails with the first failure of `lookup`.
    pub fn resolve_evidence<E>(
        &mut self,
        mut lookup: impl FnMut(&Sha256Hash) -> Result<Vec<u8>, E>,
    ) -> Result<(), E> {
        self.evidence_mut()
            .try_for_each(|evidence| evidence.resolve(&mut lookup))
    }

    /// Milliseconds between receiving the request and sending the response.
    pub fn duration_ms(&self) -> u64 {
        self.response_sent_at_ms
            .saturating_sub(self.request_received_at_ms)
    }
}

/// The request or the response of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagePart {
    /// The canonical signing input produced by the protocol crate, byte for byte.
    #[serde(with = "base64_bytes")]
    pub signing_input: Vec<u8>,
    /// The signature over the signing input (or over the batch root), when the part was signed.
    pub signature: Option<SignatureEvidence>,
    /// The stapled certificate-status response (OCSP response DER), when one was stapled.
    #[serde(default)]
    pub certificate_status: Option<Evidence>,
    /// SHA-256 of the plaintext body.
    pub body_digest: Sha256Hash,
    /// Size of the plaintext body in bytes.
    pub body_size: u64,
    pub body: Body,
}

/// The other security server's authentication evidence: its TLS certificate and the OCSP
/// response it stapled for it (`X-Passerelle-Auth-Certificate-Status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAuthentication {
    /// The peer's TLS certificate first, then any intermediates it presented, each DER.
    pub certificate_chain: Vec<Evidence>,
    /// The stapled certificate-status response (OCSP response DER), when one was stapled.
    #[serde(default)]
    pub certificate_status: Option<Evidence>,
}

/// A signature and what is needed to check it offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureEvidence {
    /// Algorithm name as `passerelle-pki` spells it, e.g. `ecdsa-p256-sha256`. Kept as text so that
    /// a record written today stays readable by a verifier that knows more algorithms.
    pub algorithm: String,
    #[serde(with = "base64_bytes")]
    pub signature: Vec<u8>,
    /// The signer's certificate first, then any intermediates, each DER (stored once, by
    /// reference, since content format 2: see [`Evidence`]).
    pub certificate_chain: Vec<Evidence>,
    /// Present when the signature covers a Merkle root of a batch of signing inputs.
    pub batch: Option<BatchEvidence>,
}

/// Batch-signature evidence: the signed message is the 32 root bytes, and the part's leaf is
/// `leaf_hash(signing_input)` (RFC 6962).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchEvidence {
    pub root: Sha256Hash,
    pub proof: InclusionProof,
}

/// A body as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    /// The service is metadata-only: the body is not kept (its digest and size still are).
    Absent,
    /// AES-256-GCM under the body key `key_id`; see [`crate::KeyRing`] for the AAD.
    Sealed {
        key_id: String,
        #[serde(with = "base64_bytes")]
        sealed: Vec<u8>,
    },
    /// Input only: a plaintext body handed to [`crate::MessageLog::append`], which seals it under
    /// the current key before anything is written, and whose digest becomes the part's
    /// `body_digest`. It can never be serialized. The bytes are shared with the caller (the body
    /// it forwarded), not copied.
    #[serde(skip)]
    Plain(Digested<Bytes>),
}

/// A batch time-stamp over the entries `first_sequence..=last_sequence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRecord {
    pub first_sequence: u64,
    pub last_sequence: u64,
    /// RFC 6962 Merkle root over the leaves `leaf_hash(entry hash)` of the covered entries.
    pub root: Sha256Hash,
    /// The time-stamp token (RFC 3161 DER) over `root`.
    #[serde(with = "base64_bytes")]
    pub token: Vec<u8>,
    /// When the checkpoint was taken (unix milliseconds).
    pub created_at_ms: u64,
}

/// What an entry of the chain holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntryBody {
    Exchange(Box<ExchangeRecord>),
    Checkpoint(CheckpointRecord),
}

/// One entry of the chain, as decoded from its content bytes.
///
/// Content bytes are the JSON `{"format":2,"sequence":N,"previous_hash":"…","entry":{…}}`;
/// the entry's hash is `SHA-256(previous_hash ‖ SHA-256(content bytes))` over the bytes exactly as
/// stored, so no re-serialization is ever needed to check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub format: u32,
    pub sequence: u64,
    pub previous_hash: Sha256Hash,
    pub entry: EntryBody,
}

/// The version of the content JSON written: 2 since certificates and statuses are stored by
/// reference ([`Evidence`]). Format 1 (everything inline) is still read.
pub(crate) const CONTENT_FORMAT: u32 = 2;
/// The content formats read.
pub(crate) const CONTENT_FORMATS: std::ops::RangeInclusive<u32> = 1..=CONTENT_FORMAT;

impl Entry {
    /// Appends the content bytes of an entry, around its pre-serialized body (serialized outside
    /// the writer thread), to `out`.
    pub(crate) fn write_content(
        sequence: u64,
        previous: &Sha256Hash,
        body_json: &[u8],
        out: &mut Vec<u8>,
    ) {
        use std::io::Write as _;
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            r#"{{"format":{CONTENT_FORMAT},"sequence":{sequence},"previous_hash":"{previous}","entry":"#
        );
        out.extend_from_slice(body_json);
        out.push(b'}');
    }

    pub fn message_id(&self) -> Option<&str> {
        match &self.entry {
            EntryBody::Exchange(record) => Some(&record.message_id),
            EntryBody::Checkpoint(_) => None,
        }
    }

    pub fn exchange(&self) -> Option<&ExchangeRecord> {
        match &self.entry {
            EntryBody::Exchange(record) => Some(record),
            EntryBody::Checkpoint(_) => None,
        }
    }
}

/// The AAD that binds a sealed body to its record: `passerelle-body-v1\n<message id>\n<side>\n<part>`.
pub(crate) fn body_aad(message_id: &str, side: Side, part: &str) -> Vec<u8> {
    format!(
        "passerelle-body-v1\n{message_id}\n{}\n{part}",
        side.as_str()
    )
    .into_bytes()
}
