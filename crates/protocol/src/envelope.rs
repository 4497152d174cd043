use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue};
use passerelle_pki::SignatureAlgorithm;
use passerelle_pki::merkle::InclusionProof;

use crate::signing::SigningTime;
use crate::{PROTOCOL_VERSION, ProtocolError};

/// `passerelle/1` on every server-to-server request and response.
pub const VERSION: &str = "x-passerelle-version";
/// Signing time, decimal milliseconds since the Unix epoch.
pub const SIGNING_TIME: &str = "x-passerelle-signing-time";
/// The signature algorithm's stable name, for example `ecdsa-p256-sha256`.
pub const SIGNATURE_ALGORITHM: &str = "x-passerelle-signature-algorithm";
/// Base64 of the signature over the 32 bytes of the batch root.
pub const SIGNATURE: &str = "x-passerelle-signature";
/// Base64 of one DER certificate; repeated, signer first, then intermediates.
pub const SIGNER_CERTIFICATE: &str = "x-passerelle-signer-certificate";
/// Hex of the batch's Merkle root.
pub const BATCH_ROOT: &str = "x-passerelle-batch-root";
/// `<leaf index>/<tree size>` of this message in its batch.
pub const BATCH_INDEX: &str = "x-passerelle-batch-index";
/// Comma-separated hex sibling hashes from the leaf up (empty for a batch of one).
pub const BATCH_PATH: &str = "x-passerelle-batch-path";
/// Base64 of the DER OCSP response (RFC 6960) for the signer's certificate, stapled beside the
/// signature. Absent when the signer's CA has no OCSP responder in the global configuration.
pub const SIGNER_CERTIFICATE_STATUS: &str = "x-passerelle-signer-certificate-status";
/// Base64 of the DER OCSP response for the sending security server's TLS authentication
/// certificate. Absent when that certificate's CA has no OCSP responder.
pub const AUTH_CERTIFICATE_STATUS: &str = "x-passerelle-auth-certificate-status";

/// Staples a DER OCSP response under `name` ([`SIGNER_CERTIFICATE_STATUS`] or
/// [`AUTH_CERTIFICATE_STATUS`]), replacing any present; `None` removes it.
pub fn write_certificate_status(headers: &mut HeaderMap, name: &'static str, der: Option<&[u8]>) {
    set_certificate_status(headers, name, der.and_then(certificate_status_value));
}

/// The header value that staples a DER OCSP response (or carries a certificate): its base64,
/// always a valid header value.
pub fn certificate_status_value(der: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_str(&STANDARD.encode(der)).ok()
}

/// Staples a response already encoded by [`certificate_status_value`] (a server staples the same
/// response to every message until it is refreshed), replacing any present; `None` removes it.
pub fn set_certificate_status(
    headers: &mut HeaderMap,
    name: &'static str,
    value: Option<HeaderValue>,
) {
    headers.remove(name);
    if let Some(value) = value {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// Reads a stapled DER OCSP response: `Ok(None)` when absent, an error when repeated or not
/// base64. The bytes are not verified here (see `passerelle_pki::ocsp::verify`).
pub fn read_certificate_status(
    headers: &HeaderMap,
    name: &'static str,
) -> Result<Option<Vec<u8>>, ProtocolError> {
    if !headers.contains_key(name) {
        return Ok(None);
    }
    decode_status(headers, name).map(Some)
}

fn decode_status(headers: &HeaderMap, name: &'static str) -> Result<Vec<u8>, ProtocolError> {
    STANDARD
        .decode(one(headers, name)?)
        .map_err(|_| invalid(name, "not base64"))
}

/// The signature evidence that travels with every server-to-server request and response.
///
/// The signing input of a message is a leaf of a Merkle tree (RFC 6962 hashing); the member's
/// signing key signs the tree's root once per batch. A batch of one is a tree of size one whose
/// root is the leaf hash and whose proof path is empty. The signed message is the 32 bytes of the
/// root, exactly as the message log records batch evidence, so `passerelle audit` and
/// `openssl dgst -verify` check the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEnvelope {
    pub signing_time: SigningTime,
    pub algorithm: SignatureAlgorithm,
    pub signature: Vec<u8>,
    /// DER certificates, the signer's first.
    pub signer_chain: SignerChain,
    pub batch_root: [u8; 32],
    pub proof: InclusionProof,
}

impl SignatureEnvelope {
    /// Writes the envelope's headers into `headers`, replacing any present.
    ///
    /// The values that change with every message (time, signature, batch position) are marked
    /// sensitive, which HTTP/2 encodes as "never indexed" (RFC 7541 §6.2.3): they would only
    /// push the certificate chain and the stapled statuses, which repeat, out of the HPACK
    /// table.
    pub fn write(&self, headers: &mut HeaderMap) {
        // Room for all of them at once rather than growing the map as they are added.
        headers.reserve(7 + self.signer_chain.0.len());
        let mut set = |name: &'static str, value: String, varies: bool| {
            // Every value written here is ASCII (decimal, hex, base64 or a fixed name); the
            // string becomes the value's bytes without a copy.
            if let Ok(mut value) = HeaderValue::try_from(value) {
                value.set_sensitive(varies);
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set(VERSION, PROTOCOL_VERSION.to_owned(), false);
        set(SIGNING_TIME, self.signing_time.0.to_string(), true);
        set(
            SIGNATURE_ALGORITHM,
            self.algorithm.as_str().to_owned(),
            false,
        );
        set(SIGNATURE, STANDARD.encode(&self.signature), true);
        set(BATCH_ROOT, hex::encode(self.batch_root), true);
        set(
            BATCH_INDEX,
            format!("{}/{}", self.proof.leaf_index, self.proof.tree_size),
            true,
        );
        set(
            BATCH_PATH,
            self.proof
                .path
                .iter()
                .map(hex::encode)
                .collect::<Vec<_>>()
                .join(","),
            true,
        );
        headers.remove(SIGNER_CERTIFICATE);
        for certificate in self.signer_chain.0.iter() {
            headers.append(
                HeaderName::from_static(SIGNER_CERTIFICATE),
                certificate.header.clone(),
            );
        }
    }

    /// Reads an envelope from headers; every field is required and must be well formed.
    pub fn read(headers: &HeaderMap) -> Result<Self, ProtocolError> {
        Self::read_with(headers, decode_chain)
    }

    /// [`read`](Self::read), taking the signer chain from `memo` when the same certificate
    /// headers were decoded before.
    pub fn read_remembered(headers: &HeaderMap, memo: &ChainMemo) -> Result<Self, ProtocolError> {
        Self::read_with(headers, |headers| memo.signer_chain(headers))
    }

    fn read_with(
        headers: &HeaderMap,
        signer_chain: impl FnOnce(&HeaderMap) -> Result<SignerChain, ProtocolError>,
    ) -> Result<Self, ProtocolError> {
        let version = one(headers, VERSION)?;
        if version != PROTOCOL_VERSION {
            return Err(invalid(VERSION, format!("unsupported version {version:?}")));
        }
        let signing_time = one(headers, SIGNING_TIME)?
            .parse::<u64>()
            .map(SigningTime)
            .map_err(|_| invalid(SIGNING_TIME, "not a decimal number of milliseconds"))?;
        let algorithm = SignatureAlgorithm::from_str(one(headers, SIGNATURE_ALGORITHM)?)
            .map_err(|error| invalid(SIGNATURE_ALGORITHM, error.to_string()))?;
        let signature = STANDARD
            .decode(one(headers, SIGNATURE)?)
            .map_err(|_| invalid(SIGNATURE, "not base64"))?;
        let batch_root = hash(one(headers, BATCH_ROOT)?)
            .ok_or_else(|| invalid(BATCH_ROOT, "not 32 hex bytes"))?;
        let (leaf_index, tree_size) = one(headers, BATCH_INDEX)?
            .split_once('/')
            .and_then(|(index, size)| Some((index.parse::<u64>().ok()?, size.parse::<u64>().ok()?)))
            .filter(|(index, size)| index < size)
            .ok_or_else(|| invalid(BATCH_INDEX, "not <leaf index>/<tree size>"))?;
        let path_text = headers
            .get(BATCH_PATH)
            .map(|value| value.to_str().map_err(|_| invalid(BATCH_PATH, "not ASCII")))
            .transpose()?
            .unwrap_or_default();
        let path = if path_text.is_empty() {
            Vec::new()
        } else {
            path_text
                .split(',')
                .map(|item| {
                    hash(item.trim())
                        .ok_or_else(|| invalid(BATCH_PATH, "not comma-separated 32-byte hex"))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let signer_chain = signer_chain(headers)?;
        Ok(Self {
            signing_time,
            algorithm,
            signature,
            signer_chain,
            batch_root,
            proof: InclusionProof {
                leaf_index,
                tree_size,
                path,
            },
        })
    }
}

/// A signer's certificate chain (DER, the signer's certificate first), with each certificate as
/// the header value that carries it. The chain travels with every signed message: it is
/// encoded once, when built, and shared by the envelopes of every signature made with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerChain(Arc<[ChainCertificate]>);

#[derive(Debug, PartialEq, Eq)]
struct ChainCertificate {
    der: Vec<u8>,
    /// Base64 of `der`.
    header: HeaderValue,
}

impl FromIterator<Vec<u8>> for SignerChain {
    fn from_iter<I: IntoIterator<Item = Vec<u8>>>(chain: I) -> Self {
        SignerChain(
            chain
                .into_iter()
                .map(|der| ChainCertificate {
                    // Never empty: base64 is always a valid header value.
                    header: certificate_status_value(&der)
                        .unwrap_or_else(|| HeaderValue::from_static("")),
                    der,
                })
                .collect(),
        )
    }
}

impl SignerChain {
    pub fn new(chain: Vec<Vec<u8>>) -> Self {
        chain.into_iter().collect()
    }

    /// The signer's certificate (DER).
    pub fn first(&self) -> Option<&[u8]> {
        self.0.first().map(|certificate| certificate.der.as_slice())
    }

    /// The certificates (DER), the signer's first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.0.iter().map(|certificate| certificate.der.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The signer chain carried by `headers`: at least one certificate, each valid base64.
fn decode_chain(headers: &HeaderMap) -> Result<SignerChain, ProtocolError> {
    let chain = headers
        .get_all(SIGNER_CERTIFICATE)
        .iter()
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|text| STANDARD.decode(text.trim()).ok())
                .map(|der| ChainCertificate {
                    der,
                    header: value.clone(),
                })
                .ok_or_else(|| invalid(SIGNER_CERTIFICATE, "not base64"))
        })
        .collect::<Result<Arc<[_]>, _>>()
        .map(SignerChain)?;
    if chain.is_empty() {
        return Err(ProtocolError::MissingHeader {
            name: SIGNER_CERTIFICATE,
        });
    }
    Ok(chain)
}

/// Decoding the headers that repeat on every message from a peer (its signer chain, its stapled
/// certificate statuses) is kept for the last [`MEMO_CAPACITY`] distinct values, matched byte for
/// byte against the header values: a peer sends the same few KiB of base64 until its
/// certificates or statuses change. A match returns exactly what decoding those bytes returns;
/// nothing is trusted more for having been seen.
pub const MEMO_CAPACITY: usize = 16;

/// Values longer than this (certificates and OCSP responses are 1–3 KiB) are decoded every time
/// and not kept, so a memo holds at most a few hundred KiB whatever peers send.
pub const MEMO_MAX_VALUE_BYTES: usize = 16 * 1024;

/// Signer chains decoded from [`SIGNER_CERTIFICATE`] headers (see [`MEMO_CAPACITY`]), for
/// [`SignatureEnvelope::read_remembered`].
#[derive(Debug, Default)]
pub struct ChainMemo(Recent<SignerChain>);

impl ChainMemo {
    pub fn new() -> Self {
        Self::default()
    }

    fn signer_chain(&self, headers: &HeaderMap) -> Result<SignerChain, ProtocolError> {
        let values = headers.get_all(SIGNER_CERTIFICATE);
        let size: usize = values.iter().map(HeaderValue::len).sum();
        if size > MEMO_MAX_VALUE_BYTES {
            return decode_chain(headers);
        }
        self.0.find_or_insert(
            |chain| {
                chain
                    .0
                    .iter()
                    .map(|certificate| &certificate.header)
                    .eq(values.iter())
            },
            || decode_chain(headers),
        )
    }
}

/// Stapled certificate statuses decoded from their headers (see [`MEMO_CAPACITY`]).
#[derive(Debug, Default)]
pub struct StatusMemo(Recent<(HeaderValue, Vec<u8>)>);

impl StatusMemo {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`read_certificate_status`], remembering what it decoded.
    pub fn certificate_status(
        &self,
        headers: &HeaderMap,
        name: &'static str,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        let mut values = headers.get_all(name).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            // Absent, or repeated (which `read_certificate_status` refuses).
            return read_certificate_status(headers, name);
        };
        if value.len() > MEMO_MAX_VALUE_BYTES {
            return read_certificate_status(headers, name);
        }
        self.0
            .find_or_insert(
                |(known, _)| known == value,
                || decode_status(headers, name).map(|der| (value.clone(), der)),
            )
            .map(|(_, der)| Some(der))
    }
}

/// The most recently used values first, at most [`MEMO_CAPACITY`].
#[derive(Debug)]
struct Recent<T>(Mutex<VecDeque<T>>);

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self(Mutex::new(VecDeque::new()))
    }
}

impl<T: Clone> Recent<T> {
    fn find_or_insert(
        &self,
        matches: impl Fn(&T) -> bool,
        decode: impl FnOnce() -> Result<T, ProtocolError>,
    ) -> Result<T, ProtocolError> {
        {
            let mut recent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = recent.iter().position(&matches) {
                let found = recent.remove(at);
                if let Some(found) = found {
                    recent.push_front(found.clone());
                    return Ok(found);
                }
            }
        }
        let value = decode()?;
        let mut recent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !recent.iter().any(&matches) {
            recent.push_front(value.clone());
            recent.truncate(MEMO_CAPACITY);
        }
        Ok(value)
    }
}

fn one<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, ProtocolError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(ProtocolError::MissingHeader { name })?;
    if values.next().is_some() {
        return Err(ProtocolError::RepeatedHeader { name });
    }
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| invalid(name, "not ASCII"))
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidHeader {
        name,
        reason: reason.into(),
    }
}

fn hash(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0; 32];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An envelope with every field set: leaf 2 of a batch of 3.
    fn sample() -> SignatureEnvelope {
        SignatureEnvelope {
            signing_time: SigningTime(1_700_000_000_123),
            algorithm: SignatureAlgorithm::EcdsaP256Sha256,
            signature: vec![1, 2, 3],
            signer_chain: SignerChain::new(vec![vec![4, 5], vec![6]]),
            batch_root: [7; 32],
            proof: InclusionProof {
                leaf_index: 2,
                tree_size: 3,
                path: vec![[8; 32]],
            },
        }
    }

    #[test]
    fn only_the_values_that_change_with_every_message_are_kept_out_of_the_hpack_table() {
        let envelope = sample();
        let mut headers = HeaderMap::new();
        envelope.write(&mut headers);
        for name in [SIGNING_TIME, SIGNATURE, BATCH_ROOT, BATCH_INDEX, BATCH_PATH] {
            assert!(
                headers[name].is_sensitive(),
                "{name} should be never-indexed"
            );
        }
        for name in [VERSION, SIGNATURE_ALGORITHM] {
            assert!(!headers[name].is_sensitive(), "{name} should be indexable");
        }
        assert!(
            headers
                .get_all(SIGNER_CERTIFICATE)
                .iter()
                .all(|value| !value.is_sensitive())
        );
    }

    #[test]
    fn envelope_round_trips_through_headers() {
        let envelope = sample();
        let mut headers = HeaderMap::new();
        envelope.write(&mut headers);
        assert_eq!(SignatureEnvelope::read(&headers).unwrap(), envelope);

        let single = SignatureEnvelope {
            proof: InclusionProof {
                leaf_index: 0,
                tree_size: 1,
                path: vec![],
            },
            ..envelope
        };
        let mut headers = HeaderMap::new();
        single.write(&mut headers);
        assert_eq!(SignatureEnvelope::read(&headers).unwrap(), single);

        headers.insert(BATCH_INDEX, HeaderValue::from_static("1/1"));
        assert!(SignatureEnvelope::read(&headers).is_err());
        headers.remove(BATCH_INDEX);
        assert_eq!(
            SignatureEnvelope::read(&headers),
            Err(ProtocolError::MissingHeader { name: BATCH_INDEX })
        );
    }

    #[test]
    fn certificate_status_round_trips_and_is_optional() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            read_certificate_status(&headers, SIGNER_CERTIFICATE_STATUS),
            Ok(None)
        );
        write_certificate_status(&mut headers, SIGNER_CERTIFICATE_STATUS, Some(&[0x30, 3, 1]));
        assert_eq!(
            read_certificate_status(&headers, SIGNER_CERTIFICATE_STATUS),
            Ok(Some(vec![0x30, 3, 1]))
        );
        assert_eq!(
            read_certificate_status(&headers, AUTH_CERTIFICATE_STATUS),
            Ok(None)
        );
        headers.append(SIGNER_CERTIFICATE_STATUS, HeaderValue::from_static("MAMB"));
        assert_eq!(
            read_certificate_status(&headers, SIGNER_CERTIFICATE_STATUS),
            Err(ProtocolError::RepeatedHeader {
                name: SIGNER_CERTIFICATE_STATUS
            })
        );
        write_certificate_status(&mut headers, SIGNER_CERTIFICATE_STATUS, None);
        headers.insert(SIGNER_CERTIFICATE_STATUS, HeaderValue::from_static("%%"));
        assert!(read_certificate_status(&headers, SIGNER_CERTIFICATE_STATUS).is_err());
    }

    #[test]
    fn a_remembered_chain_is_what_its_headers_decode_to() {
        let memo = ChainMemo::new();
        let mut headers = HeaderMap::new();
        let first = sample();
        first.write(&mut headers);
        for _ in 0..2 {
            assert_eq!(
                SignatureEnvelope::read_remembered(&headers, &memo).unwrap(),
                first
            );
        }
        // The same signer chain but its intermediate changed: decoded anew, not matched on the
        // first certificate alone.
        let second = SignatureEnvelope {
            signer_chain: SignerChain::new(vec![vec![4, 5], vec![9, 9]]),
            ..sample()
        };
        second.write(&mut headers);
        assert_eq!(
            SignatureEnvelope::read_remembered(&headers, &memo).unwrap(),
            second
        );
        // A chain of one certificate is not the start of a remembered chain of two.
        let third = SignatureEnvelope {
            signer_chain: SignerChain::new(vec![vec![4, 5]]),
            ..sample()
        };
        third.write(&mut headers);
        assert_eq!(
            SignatureEnvelope::read_remembered(&headers, &memo).unwrap(),
            third
        );
        headers.append(SIGNER_CERTIFICATE, HeaderValue::from_static("%%"));
        assert!(SignatureEnvelope::read_remembered(&headers, &memo).is_err());
        headers.remove(SIGNER_CERTIFICATE);
        assert_eq!(
            SignatureEnvelope::read_remembered(&headers, &memo),
            Err(ProtocolError::MissingHeader {
                name: SIGNER_CERTIFICATE
            })
        );
        assert_eq!(memo.0.0.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_remembered_status_is_what_its_header_decodes_to() {
        let memo = StatusMemo::new();
        let mut headers = HeaderMap::new();
        assert_eq!(
            memo.certificate_status(&headers, SIGNER_CERTIFICATE_STATUS),
            Ok(None)
        );
        for der in [[0x30, 3, 1], [0x30, 3, 2], [0x30, 3, 1]] {
            write_certificate_status(&mut headers, SIGNER_CERTIFICATE_STATUS, Some(&der));
            assert_eq!(
                memo.certificate_status(&headers, SIGNER_CERTIFICATE_STATUS),
                Ok(Some(der.to_vec()))
            );
        }
        headers.append(SIGNER_CERTIFICATE_STATUS, HeaderValue::from_static("MAMB"));
        assert_eq!(
            memo.certificate_status(&headers, SIGNER_CERTIFICATE_STATUS),
            Err(ProtocolError::RepeatedHeader {
                name: SIGNER_CERTIFICATE_STATUS
            })
        );
        headers.insert(SIGNER_CERTIFICATE_STATUS, HeaderValue::from_static("%%"));
        assert!(
            memo.certificate_status(&headers, SIGNER_CERTIFICATE_STATUS)
                .is_err()
        );
        assert_eq!(memo.0.0.lock().unwrap().len(), 2, "errors are not kept");

        // Bounded: in count, and in the size of what is kept.
        for n in 0..=MEMO_CAPACITY {
            let der = [0x30, 2, (n >> 8) as u8, n as u8];
            write_certificate_status(&mut headers, AUTH_CERTIFICATE_STATUS, Some(&der));
            assert_eq!(
                memo.certificate_status(&headers, AUTH_CERTIFICATE_STATUS),
                Ok(Some(der.to_vec()))
            );
        }
        assert_eq!(memo.0.0.lock().unwrap().len(), MEMO_CAPACITY);
        let large = vec![7; MEMO_MAX_VALUE_BYTES];
        write_certificate_status(&mut headers, AUTH_CERTIFICATE_STATUS, Some(&large));
        assert_eq!(
            memo.certificate_status(&headers, AUTH_CERTIFICATE_STATUS),
            Ok(Some(large))
        );
        assert!(
            memo.0
                .0
                .lock()
                .unwrap()
                .iter()
                .all(|(value, _)| value.len() <= MEMO_MAX_VALUE_BYTES)
        );
    }
}
