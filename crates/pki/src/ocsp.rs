//! Certificate status by OCSP (RFC 6960): requests, verification of responses, and the
//! responses of the development responder.
//!
//! A response is accepted only when it is signed by the certificate's issuing CA itself, or by
//! a delegated responder whose certificate that CA issued with the id-kp-OCSPSigning purpose
//! (RFC 6960 §4.2.2.2); when one of its answers has the certificate's CertID; and when that
//! answer is recent enough at `now`. Each way of failing has its own [`OcspError`] variant,
//! because each maps to its own fault code.
//!
//! CertIDs are made with SHA-1, as `openssl ocsp` does by default; responses using SHA-256,
//! SHA-384 or SHA-512 CertIDs are understood too. SHA-1 here only names a certificate; it
//! never protects a signature.

use std::time::{Duration, SystemTime};

use der::asn1::{AnyRef, BitString, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, Request, ResponderId, ResponseBytes, ResponseData, RevokedInfo,
    SingleResponse, TbsRequest, Version,
};

use crate::asn1::{self, DigestAlgorithm};
use crate::chain::format_time;
use crate::devca::Credential;
use crate::revocation::{IndexStatus, RevocationIndex, RevocationReason};
use crate::{Certificate, Purpose, validate_chain};

/// id-pkix-ocsp-basic.
const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce.
const OID_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// How far in the future a response's thisUpdate may be, to absorb clock differences between
/// the responder and the verifier.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// How long after thisUpdate the development responder says its answers stay valid
/// (nextUpdate). Verifiers still apply their own, usually shorter, freshness.
pub const RESPONSE_VALIDITY: Duration = Duration::from_secs(3600);

/// What a responder says when it does not answer (the OCSPResponseStatus of an unsuccessful
/// response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponderStatus {
    /// `malformedRequest` (1).
    MalformedRequest,
    /// `internalError` (2).
    InternalError,
    /// `tryLater` (3).
    TryLater,
    /// `sigRequired` (5).
    SigRequired,
    /// `unauthorized` (6): the responder does not answer for this CA.
    Unauthorized,
}

impl std::fmt::Display for ResponderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResponderStatus::MalformedRequest => "malformedRequest",
            ResponderStatus::InternalError => "internalError",
            ResponderStatus::TryLater => "tryLater",
            ResponderStatus::SigRequired => "sigRequired",
            ResponderStatus::Unauthorized => "unauthorized",
        })
    }
}

/// Why a certificate's status could not be established as good.
///
/// Deliberately not `#[non_exhaustive]`: the security servers map it onto fault codes with one
/// exhaustive `match`, so a new variant must be given its code there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// The responder says the certificate is revoked.
    #[error("certificate {serial} was revoked at {} ({reason})", format_time(*at))]
    Revoked {
        /// The certificate's serial number, lowercase hex.
        serial: String,
        /// When it was revoked.
        at: SystemTime,
        /// Why (`unspecified` when the response gives no reason).
        reason: RevocationReason,
    },
    /// The responder does not know the certificate.
    #[error("the ocsp responder does not know certificate {serial}")]
    Unknown {
        /// The certificate's serial number, lowercase hex.
        serial: String,
    },
    /// The response is older than the freshness allows, or past its nextUpdate.
    #[error("ocsp response for certificate {serial} is stale: {} old, {} allowed{}",
        seconds(*age), seconds(*freshness),
        next_update.map(|next| format!(", next update was due at {}", format_time(next))).unwrap_or_default())]
    Stale {
        /// The certificate's serial number, lowercase hex.
        serial: String,
        /// How long before `now` the response's thisUpdate is.
        age: Duration,
        /// The freshness that was required.
        freshness: Duration,
        /// The response's nextUpdate, when that is what has passed.
        next_update: Option<SystemTime>,
    },
    /// The response's thisUpdate is later than `now` (beyond [`CLOCK_SKEW`]).
    #[error("ocsp response for certificate {serial} is dated {}, in the future", format_time(*this_update))]
    NotYetValid {
        /// The certificate's serial number, lowercase hex.
        serial: String,
        /// The response's thisUpdate.
        this_update: SystemTime,
    },
    /// The response's signature does not verify with the key of the certificate it names.
    #[error("ocsp response signature does not verify with the key of {signer}")]
    BadResponderSignature {
        /// Subject of the certificate whose key was used.
        signer: String,
    },
    /// The response is signed by someone who may not answer for the certificate's CA.
    #[error(
        "ocsp response signed by {responder} is not from {issuer} nor a responder it delegated: {reason}"
    )]
    UnauthorizedResponder {
        /// The responder as the response names it.
        responder: String,
        /// Subject of the CA that should have signed or delegated.
        issuer: String,
        /// Why the responder is refused.
        reason: String,
    },
    /// The response holds no answer for this certificate.
    #[error("ocsp response does not answer for certificate {serial} of {issuer}")]
    CertIdMismatch {
        /// The certificate's serial number, lowercase hex.
        serial: String,
        /// Subject of its issuer.
        issuer: String,
    },
    /// The certificate was not issued by the certificate given as its issuer.
    #[error("certificate {subject} was not issued by {issuer}")]
    WrongIssuer {
        /// Subject of the certificate.
        subject: String,
        /// Subject of the supposed issuer.
        issuer: String,
    },
    /// The bytes are not a well-formed OCSP message, or use an algorithm Passerelle does not
    /// support.
    #[error("malformed ocsp {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The responder answered with an error status instead of a response.
    #[error("ocsp responder answered {status}")]
    ResponderError {
        /// The status it gave.
        status: ResponderStatus,
    },
}

/// What a verified response established: the certificate's status is good, as of
/// `this_update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedStatus {
    /// When the responder established the status.
    pub this_update: SystemTime,
    /// When the responder says newer information will be available, if it says.
    pub next_update: Option<SystemTime>,
    /// When the response was signed.
    pub produced_at: SystemTime,
    /// Subject of the certificate that signed the response (the CA or its delegated responder).
    pub responder: String,
}

impl VerifiedStatus {
    /// How old the status is at `now` (zero if `this_update` is after `now`).
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.this_update).unwrap_or_default()
    }
}

/// A DER OCSPRequest for `certificate`, issued by `issuer`: one SHA-1 CertID, no nonce (so the
/// response can be stapled and cached) and no signature.
pub fn request(certificate: &Certificate, issuer: &Certificate) -> Result<Vec<u8>, OcspError> {
    check_issuer(certificate, issuer)?;
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id(certificate, issuer, DigestAlgorithm::Sha1)?,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    request.to_der().map_err(malformed("request"))
}

/// Verifies a DER OCSPResponse for `certificate` (issued by `issuer`) at `now`: the signer is
/// `issuer` or a delegated responder `issuer` certified for OCSP signing (valid at `now`); the
/// signature verifies; an answer has this certificate's CertID; its thisUpdate is no later than
/// `now` + [`CLOCK_SKEW`]; the status is good; and the answer is at most `freshness` old and
/// not past its nextUpdate.
///
/// A revoked status is reported even when the response is old: revocation is final.
pub fn verify(
    response_der: &[u8],
    certificate: &Certificate,
    issuer: &Certificate,
    now: SystemTime,
    freshness: Duration,
) -> Result<VerifiedStatus, OcspError> {
    check_issuer(certificate, issuer)?;
    let response = OcspResponse::from_der(response_der).map_err(malformed("response"))?;
    if let Some(status) = responder_status(response.response_status) {
        return Err(OcspError::ResponderError { status });
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| OcspError::Malformed {
            what: "response",
            reason: "successful but without responseBytes".to_owned(),
        })?;
    if bytes.response_type != OID_OCSP_BASIC {
        return Err(OcspError::Malformed {
            what: "response",
            reason: format!(
                "response type {} is not id-pkix-ocsp-basic",
                bytes.response_type
            ),
        });
    }
    let signed =
        SignedResponse::from_der(bytes.response.as_bytes()).map_err(malformed("basic response"))?;
    let tbs = signed
        .tbs_response_data
        .to_der()
        .map_err(malformed("basic response"))?;
    let data = ResponseData::from_der(&tbs).map_err(malformed("response data"))?;
    let carried = signed
        .certs
        .unwrap_or_default()
        .iter()
        .map(|certificate| {
            certificate
                .to_der()
                .map_err(|error| error.to_string())
                .and_then(|der| Certificate::from_der(der).map_err(|error| error.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| OcspError::Malformed {
            what: "responder certificate",
            reason,
        })?;

    let signer = authorized_signer(&data.responder_id, issuer, &carried, now)?;
    let key = signer
        .public_key()
        .map_err(|error| OcspError::UnauthorizedResponder {
            responder: signer.subject(),
            issuer: issuer.subject(),
            reason: error.to_string(),
        })?;
    let algorithm =
        asn1::signature_algorithm(&signed.signature_algorithm, None, key).ok_or_else(|| {
            OcspError::Malformed {
                what: "basic response",
                reason: format!(
                    "signature algorithm {} with a {} key is not supported",
                    signed.signature_algorithm.oid,
                    key.kind_name()
                ),
            }
        })?;
    let signature = signed
        .signature
        .as_bytes()
        .ok_or_else(|| OcspError::Malformed {
            what: "basic response",
            reason: "signature is not a whole number of bytes".to_owned(),
        })?;
    key.verify(algorithm, &tbs, signature)
        .map_err(|_| OcspError::BadResponderSignature {
            signer: signer.subject(),
        })?;

    let serial = certificate.serial_hex();
    let mut answer = None;
    for single in &data.responses {
        if cert_id_matches(&single.cert_id, certificate, issuer) {
            answer = Some(single);
            break;
        }
    }
    let answer = answer.ok_or_else(|| OcspError::CertIdMismatch {
        serial: serial.clone(),
        issuer: issuer.subject(),
    })?;

    let this_update = asn1::system_time(&answer.this_update.0);
    let next_update = answer
        .next_update
        .as_ref()
        .map(|next| asn1::system_time(&next.0));
    if this_update > now.checked_add(CLOCK_SKEW).unwrap_or(now) {
        return Err(OcspError::NotYetValid {
            serial,
            this_update,
        });
    }
    match &answer.cert_status {
        CertStatus::Good(_) => {}
        CertStatus::Revoked(info) => {
            return Err(OcspError::Revoked {
                serial,
                at: asn1::system_time(&info.revocation_time.0),
                reason: info
                    .revocation_reason
                    .and_then(|reason| RevocationReason::from_code(reason as u8))
                    .unwrap_or(RevocationReason::Unspecified),
            });
        }
        CertStatus::Unknown(_) => return Err(OcspError::Unknown { serial }),
    }
    let age = now.duration_since(this_update).unwrap_or_default();
    let past_next_update = next_update.filter(|next| now > *next);
    if age > freshness || past_next_update.is_some() {
        return Err(OcspError::Stale {
            serial,
            age,
            freshness,
            next_update: past_next_update,
        });
    }
    Ok(VerifiedStatus {
        this_update,
        next_update,
        produced_at: asn1::system_time(&data.produced_at.0),
        responder: signer.subject(),
    })
}

/// The development responder: answers a DER OCSPRequest for certificates issued by `issuer`
/// from `index`, signing with `responder` (a certificate `issuer` issued for OCSP signing, or
/// the CA itself). Certificates of other CAs and serials the index does not list are `unknown`;
/// a nonce in the request is echoed. Never fails: a request that does not parse gets a
/// `malformedRequest` response, a failure to sign an `internalError` one.
pub fn respond(
    request_der: &[u8],
    issuer: &Certificate,
    index: &RevocationIndex,
    responder: &Credential,
    now: SystemTime,
) -> Vec<u8> {
    let Ok(request) = OcspRequest::from_der(request_der) else {
        return status_only(OcspResponseStatus::MalformedRequest);
    };
    if request.tbs_request.request_list.is_empty() {
        return status_only(OcspResponseStatus::MalformedRequest);
    }
    build_response(&request, issuer, index, responder, now)
        .unwrap_or_else(|_| status_only(OcspResponseStatus::InternalError))
}

fn build_response(
    request: &OcspRequest,
    issuer: &Certificate,
    index: &RevocationIndex,
    responder: &Credential,
    now: SystemTime,
) -> Result<Vec<u8>, OcspError> {
    let encode = malformed("response");
    let this_update = OcspGeneralizedTime(asn1::generalized_time(now).map_err(encode)?);
    let next_update = OcspGeneralizedTime(
        asn1::generalized_time(now.checked_add(RESPONSE_VALIDITY).unwrap_or(now))
            .map_err(malformed("response"))?,
    );
    let mut responses = Vec::new();
    for single in &request.tbs_request.request_list {
        let status = answer_for(&single.req_cert, issuer, index)?;
        responses.push(SingleResponse {
            cert_id: single.req_cert.clone(),
            cert_status: status,
            this_update,
            next_update: Some(next_update),
            single_extensions: None,
        });
    }
    let nonce = request
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .find(|extension| extension.extn_id == OID_OCSP_NONCE)
        .cloned();
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByName(
            Name::from_der(responder.certificate.subject_der()).map_err(malformed("response"))?,
        ),
        produced_at: this_update,
        responses,
        response_extensions: nonce.map(|nonce| vec![nonce]),
    };
    let tbs = data.to_der().map_err(malformed("response"))?;
    let signature = responder
        .key
        .sign(&tbs)
        .map_err(|error| OcspError::Malformed {
            what: "response",
            reason: error.to_string(),
        })?;
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: asn1::ecdsa_p256_sha256(),
        signature: BitString::from_bytes(&signature).map_err(malformed("response"))?,
        certs: Some(vec![
            x509_cert::Certificate::from_der(responder.certificate.der())
                .map_err(malformed("response"))?,
        ]),
    };
    OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: OID_OCSP_BASIC,
            response: OctetString::new(basic.to_der().map_err(malformed("response"))?)
                .map_err(malformed("response"))?,
        }),
    }
    .to_der()
    .map_err(malformed("response"))
}

fn answer_for(
    cert_id: &CertId,
    issuer: &Certificate,
    index: &RevocationIndex,
) -> Result<CertStatus, OcspError> {
    let Some(algorithm) = DigestAlgorithm::from_oid(&cert_id.hash_algorithm.oid) else {
        return Ok(CertStatus::unknown());
    };
    let Some(key_bits) = asn1::subject_public_key_bits(issuer) else {
        return Ok(CertStatus::unknown());
    };
    let same_issuer = cert_id.issuer_name_hash.as_bytes() == algorithm.digest(issuer.subject_der())
        && cert_id.issuer_key_hash.as_bytes() == algorithm.digest(&key_bits);
    if !same_issuer {
        return Ok(CertStatus::unknown());
    }
    Ok(match index.status(cert_id.serial_number.as_bytes()) {
        None => CertStatus::unknown(),
        Some(IndexStatus::Valid) => CertStatus::good(),
        Some(IndexStatus::Revoked { at, reason }) => CertStatus::revoked(RevokedInfo {
            revocation_time: OcspGeneralizedTime(
                asn1::generalized_time(at).map_err(malformed("response"))?,
            ),
            revocation_reason: crl_reason(reason),
        }),
    })
}

/// An OCSPResponse with an error status and no body.
fn status_only(status: OcspResponseStatus) -> Vec<u8> {
    let response = OcspResponse {
        response_status: status,
        response_bytes: None,
    };
    // SEQUENCE { ENUMERATED status }: encoding a one-byte enum cannot fail; the literal is the
    // same bytes for internalError, kept as a last resort.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, 0x02])
}

/// BasicOCSPResponse with the signed part kept as raw bytes, so the signature is checked over
/// exactly what the responder signed.
#[derive(der::Sequence)]
struct SignedResponse<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    certs: Option<Vec<x509_cert::Certificate>>,
}

fn check_issuer(certificate: &Certificate, issuer: &Certificate) -> Result<(), OcspError> {
    let signed_by_issuer = certificate.issuer_der() == issuer.subject_der()
        && certificate.verify_issued_by(issuer).is_ok();
    if signed_by_issuer {
        Ok(())
    } else {
        Err(OcspError::WrongIssuer {
            subject: certificate.subject(),
            issuer: issuer.subject(),
        })
    }
}

fn cert_id(
    certificate: &Certificate,
    issuer: &Certificate,
    algorithm: DigestAlgorithm,
) -> Result<CertId, OcspError> {
    let key_bits = asn1::subject_public_key_bits(issuer).ok_or_else(|| OcspError::Malformed {
        what: "request",
        reason: format!("the key of {} is not supported", issuer.subject()),
    })?;
    Ok(CertId {
        hash_algorithm: algorithm.identifier(),
        issuer_name_hash: OctetString::new(algorithm.digest(issuer.subject_der()))
            .map_err(malformed("request"))?,
        issuer_key_hash: OctetString::new(algorithm.digest(&key_bits))
            .map_err(malformed("request"))?,
        serial_number: SerialNumber::new(certificate.serial()).map_err(malformed("request"))?,
    })
}

fn cert_id_matches(cert_id: &CertId, certificate: &Certificate, issuer: &Certificate) -> bool {
    let Some(algorithm) = DigestAlgorithm::from_oid(&cert_id.hash_algorithm.oid) else {
        return false;
    };
    let Some(key_bits) = asn1::subject_public_key_bits(issuer) else {
        return false;
    };
    asn1::unsigned(cert_id.serial_number.as_bytes()) == asn1::unsigned(certificate.serial())
        && cert_id.issuer_name_hash.as_bytes() == algorithm.digest(issuer.subject_der())
        && cert_id.issuer_key_hash.as_bytes() == algorithm.digest(&key_bits)
}

/// The certificate that may have signed a response naming `responder_id`: the CA itself, or a
/// certificate carried in the response, issued by the CA for OCSP signing and valid at `now`.
fn authorized_signer(
    responder_id: &ResponderId,
    issuer: &Certificate,
    carried: &[Certificate],
    now: SystemTime,
) -> Result<Certificate, OcspError> {
    if names(responder_id, issuer) {
        return Ok(issuer.clone());
    }
    let unauthorized = |reason: String| OcspError::UnauthorizedResponder {
        responder: describe(responder_id),
        issuer: issuer.subject(),
        reason,
    };
    let delegate = carried
        .iter()
        .find(|certificate| names(responder_id, certificate))
        .ok_or_else(|| {
            unauthorized(
                "the response names neither the ca nor a certificate it carries".to_owned(),
            )
        })?;
    if delegate.issuer_der() != issuer.subject_der() {
        return Err(unauthorized(format!(
            "its certificate {} was issued by {}",
            delegate.subject(),
            delegate.issuer()
        )));
    }
    validate_chain(
        delegate,
        &[],
        std::slice::from_ref(issuer),
        now,
        Purpose::OcspSigning,
    )
    .map_err(|error| unauthorized(error.to_string()))?;
    Ok(delegate.clone())
}

fn names(responder_id: &ResponderId, certificate: &Certificate) -> bool {
    match responder_id {
        ResponderId::ByName(name) => name
            .to_der()
            .is_ok_and(|der| der == certificate.subject_der()),
        ResponderId::ByKey(hash) => asn1::subject_public_key_bits(certificate)
            .is_some_and(|bits| hash.as_bytes() == DigestAlgorithm::Sha1.digest(&bits)),
    }
}

fn describe(responder_id: &ResponderId) -> String {
    match responder_id {
        ResponderId::ByName(name) => name.to_string(),
        ResponderId::ByKey(hash) => format!("key sha-1 {}", hex::encode(hash.as_bytes())),
    }
}

fn responder_status(status: OcspResponseStatus) -> Option<ResponderStatus> {
    match status {
        OcspResponseStatus::Successful => None,
        OcspResponseStatus::MalformedRequest => Some(ResponderStatus::MalformedRequest),
        OcspResponseStatus::InternalError => Some(ResponderStatus::InternalError),
        OcspResponseStatus::TryLater => Some(ResponderStatus::TryLater),
        OcspResponseStatus::SigRequired => Some(ResponderStatus::SigRequired),
        OcspResponseStatus::Unauthorized => Some(ResponderStatus::Unauthorized),
    }
}

fn crl_reason(reason: RevocationReason) -> Option<CrlReason> {
    Some(match reason {
        // openssl leaves the reason out for `unspecified`; so does this responder.
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::RemoveFromCrl => CrlReason::RemoveFromCRL,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    })
}

fn malformed(what: &'static str) -> impl Fn(der::Error) -> OcspError {
    move |error| OcspError::Malformed {
        what,
        reason: error.to_string(),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}
