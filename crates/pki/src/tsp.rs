//! Time-stamping (RFC 3161): requests, the responses of the development time-stamping
//! authority, and verification of tokens against approved TSAs.
//!
//! A token is a CMS SignedData (RFC 5652) over a TSTInfo. Passerelle's TSA signs with ECDSA
//! P-256 and SHA-256, with signed attributes content-type, message-digest and
//! signing-certificate-v2 (ESSCertIDv2, RFC 5035), and carries its certificate, so that
//! `openssl ts -verify` accepts its tokens. Verification accepts what `openssl ts -reply`
//! makes too (signing-certificate v1 or v2; ECDSA, RSA or Ed25519 keys).
//!
//! Message imprints are SHA-256: the project's one evidence hash.

use std::time::SystemTime;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, BitString, Int, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, Tag};
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifier, AlgorithmIdentifierOwned};
use x509_tsp::{MessageImprint, TimeStampReq, TspVersion, TstInfo};

use crate::asn1::{self, DigestAlgorithm};
use crate::devca::Credential;
use crate::{Certificate, Purpose, validate_chain};

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SIGNING_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const OID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// The TSA policy of the development TSA (the example policy of openssl's sample TSA
/// configuration): it promises nothing beyond development use.
pub const DEVELOPMENT_POLICY: &str = "1.2.3.4.1";
const OID_DEVELOPMENT_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap(DEVELOPMENT_POLICY);

/// Why a time-stamp could not be made or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TspError {
    /// The token is valid but stamps another message imprint.
    #[error("time-stamp token covers {actual}, expected {expected}")]
    ImprintMismatch {
        /// The imprint the caller expected, `sha256:` and lowercase hex.
        expected: String,
        /// The imprint in the token, with its hash algorithm.
        actual: String,
    },
    /// The token's signer is not an approved TSA (no chain to the given anchors, or its
    /// certificate does not fit time-stamping).
    #[error("time-stamp token signed by {tsa}, which is not an approved tsa: {reason}")]
    UntrustedTsa {
        /// Subject of the signer's certificate, or how the token names the signer.
        tsa: String,
        /// Why it is not trusted.
        reason: String,
    },
    /// The CMS signature, the message digest or the signing-certificate binding does not hold.
    #[error("time-stamp token signature is invalid: {reason}")]
    BadSignature {
        /// What does not hold.
        reason: String,
    },
    /// The TSA answered without a token.
    #[error("time-stamping authority refused the request: status {status}{}{}",
        if text.is_empty() { "" } else { ", " }, text)]
    Rejected {
        /// The PKIStatus (2 rejection, 3 waiting, 4 revocationWarning, 5 revocationNotification).
        status: u32,
        /// The TSA's status text and failure bits, if any.
        text: String,
    },
    /// The bytes are not a well-formed time-stamp structure, or use an unsupported algorithm.
    #[error("malformed time-stamp {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// A DER TimeStampReq for a SHA-256 `imprint`, asking for the TSA's certificate in the token,
/// with `nonce` (big-endian bytes; a leading zero is added if needed) when given.
pub fn request(imprint: &[u8; 32], nonce: Option<&[u8]>) -> Result<Vec<u8>, TspError> {
    let nonce = nonce
        .map(|bytes| Int::new(&positive(bytes)).map_err(malformed("request")))
        .transpose()?;
    TimeStampReq {
        version: TspVersion::V1,
        message_imprint: sha256_imprint(imprint)?,
        req_policy: None,
        nonce,
        cert_req: true,
        extensions: None,
    }
    .to_der()
    .map_err(malformed("request"))
}

/// The development TSA: answers a DER TimeStampReq with a DER TimeStampResp whose token
/// stamps the request's imprint at `now` (whole seconds), with serial number `serial`
/// (big-endian, positive), signed by `tsa`. The TSA certificate is included when the request
/// asks for it. Never fails: a request that does not parse or uses an unsupported hash gets a
/// `rejection` response, a failure to sign a `systemFailure` one.
pub fn respond(request_der: &[u8], tsa: &Credential, serial: &[u8], now: SystemTime) -> Vec<u8> {
    let request = match TimeStampReq::from_der(request_der) {
        Ok(request) => request,
        Err(error) => return rejection(FailInfo::BadDataFormat, &error.to_string()),
    };
    let hash = request.message_imprint.hash_algorithm.oid;
    let length = request.message_imprint.hashed_message.as_bytes().len();
    let expected_length = match DigestAlgorithm::from_oid(&hash) {
        Some(DigestAlgorithm::Sha256) => 32,
        Some(DigestAlgorithm::Sha384) => 48,
        Some(DigestAlgorithm::Sha512) => 64,
        _ => return rejection(FailInfo::BadAlg, &format!("hash algorithm {hash}")),
    };
    if length != expected_length {
        return rejection(
            FailInfo::BadDataFormat,
            &format!("imprint of {length} bytes"),
        );
    }
    if request
        .req_policy
        .is_some_and(|policy| policy != OID_DEVELOPMENT_POLICY)
    {
        return rejection(FailInfo::UnacceptedPolicy, "policy not offered");
    }
    match token(&request, tsa, serial, now) {
        Ok(token) => encode_response(0, Vec::new(), None, Some(token)),
        Err(error) => encode_response(
            2,
            vec![error.to_string()],
            FailInfo::SystemFailure.bits(),
            None,
        ),
    }
}

/// The TimeStampToken of a DER TimeStampResp, if the TSA granted the request.
pub fn token_from_response(response_der: &[u8]) -> Result<Vec<u8>, TspError> {
    let response = Response::from_der(response_der).map_err(malformed("response"))?;
    if response.status.status > 1 {
        return Err(TspError::Rejected {
            status: response.status.status,
            text: status_text(&response.status),
        });
    }
    let token = response.token.ok_or_else(|| TspError::Malformed {
        what: "response",
        reason: "granted without a token".to_owned(),
    })?;
    token.to_der().map_err(malformed("token"))
}

/// Verifies a time-stamp token (a DER TimeStampToken, or a whole TimeStampResp as `openssl ts
/// -reply` writes it) and returns the time it asserts (genTime).
///
/// - The token is a CMS SignedData over a TSTInfo with exactly one signer, whose signed
///   attributes hold the content type, the digest of the TSTInfo, and a signing-certificate
///   (v1 or v2) attribute naming the signer's certificate; the signature verifies with that
///   certificate's key.
/// - The signer's certificate (carried in the token, or one of `tsa_anchors`) chains to
///   `tsa_anchors` with [`Purpose::TimeStamping`] **at genTime**, so evidence stamped while a
///   TSA certificate was valid stays verifiable after it expires. Anchors are the approved TSA
///   certificates of the global configuration (or the CA that issues them); certificates
///   carried in the token serve as intermediates.
/// - The message imprint is SHA-256 and equals `expected_imprint`.
pub fn verify_token(
    token_der: &[u8],
    expected_imprint: &[u8; 32],
    tsa_anchors: &[Certificate],
) -> Result<SystemTime, TspError> {
    let token = match ContentInfo::from_der(token_der) {
        Ok(token) => token,
        Err(token_error) => {
            let Ok(inner) = token_from_response(token_der) else {
                return Err(malformed("token")(token_error));
            };
            ContentInfo::from_der(&inner).map_err(malformed("token"))?
        }
    };
    if token.content_type != OID_SIGNED_DATA {
        return Err(TspError::Malformed {
            what: "token",
            reason: format!("content type {} is not signedData", token.content_type),
        });
    }
    let signed: SignedData = token
        .content
        .decode_as()
        .map_err(malformed("signed data"))?;
    if signed.encap_content_info.econtent_type != OID_CT_TST_INFO {
        return Err(TspError::Malformed {
            what: "signed data",
            reason: format!(
                "content type {} is not id-ct-TSTInfo",
                signed.encap_content_info.econtent_type
            ),
        });
    }
    let tst_der = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| TspError::Malformed {
            what: "signed data",
            reason: "no TSTInfo inside".to_owned(),
        })?
        .decode_as::<OctetString>()
        .map_err(malformed("signed data"))?
        .as_bytes()
        .to_vec();
    let tst = TstInfo::from_der(&tst_der).map_err(malformed("tst info"))?;
    let [signer_info] = signed.signer_infos.0.as_slice() else {
        return Err(TspError::Malformed {
            what: "signed data",
            reason: format!(
                "{} signers, a time-stamp token has exactly one",
                signed.signer_infos.0.len()
            ),
        });
    };
    let carried = carried_certificates(&signed)?;
    let signer = find_signer(&signer_info.sid, &carried, tsa_anchors)?;
    check_signature(signer_info, &tst_der, &signer)?;

    let gen_time = asn1::system_time(&tst.gen_time);
    validate_chain(
        &signer,
        &carried,
        tsa_anchors,
        gen_time,
        Purpose::TimeStamping,
    )
    .map_err(|error| TspError::UntrustedTsa {
        tsa: signer.subject(),
        reason: error.to_string(),
    })?;

    let imprint = &tst.message_imprint;
    let actual = imprint.hashed_message.as_bytes();
    if imprint.hash_algorithm.oid != asn1::OID_SHA256 || actual != expected_imprint {
        let algorithm = match DigestAlgorithm::from_oid(&imprint.hash_algorithm.oid) {
            Some(DigestAlgorithm::Sha256) => "sha256".to_owned(),
            Some(other) => format!("{other:?}").to_ascii_lowercase(),
            None => imprint.hash_algorithm.oid.to_string(),
        };
        return Err(TspError::ImprintMismatch {
            expected: format!("sha256:{}", hex::encode(expected_imprint)),
            actual: format!("{algorithm}:{}", hex::encode(actual)),
        });
    }
    Ok(gen_time)
}

/// Checks tokens against a fixed set of approved TSA certificates: what `passerelle audit
/// verify` and the message log's checkpoint verification hold on to.
#[derive(Debug, Clone)]
pub struct TsaTrust {
    anchors: Vec<Certificate>,
}

impl TsaTrust {
    /// Trusts tokens that chain to `anchors` (see [`verify_token`]).
    pub fn new(anchors: Vec<Certificate>) -> Self {
        TsaTrust { anchors }
    }

    /// The trusted certificates.
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// [`verify_token`] against these anchors.
    pub fn verify(&self, token_der: &[u8], imprint: &[u8; 32]) -> Result<SystemTime, TspError> {
        verify_token(token_der, imprint, &self.anchors)
    }
}

// ---------------------------------------------------------------------------------------------
// Making tokens.

fn token(
    request: &TimeStampReq,
    tsa: &Credential,
    serial: &[u8],
    now: SystemTime,
) -> Result<ContentInfo, TspError> {
    let encode = malformed("token");
    let tst = TstInfo {
        version: TspVersion::V1,
        policy: OID_DEVELOPMENT_POLICY,
        message_imprint: request.message_imprint.clone(),
        serial_number: Int::new(&positive(serial)).map_err(&encode)?,
        gen_time: asn1::generalized_time(now).map_err(&encode)?,
        accuracy: None,
        ordering: false,
        nonce: request.nonce.clone(),
        tsa: None,
        extensions: None,
    };
    let tst_der = tst.to_der().map_err(&encode)?;
    let certificate = &tsa.certificate;
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(DigestAlgorithm::Sha256.digest(certificate.der()))
                .map_err(&encode)?,
            issuer_serial: None,
        }],
        policies: None,
    };
    let attributes: Attributes = SetOfVec::try_from(vec![
        attribute(OID_CONTENT_TYPE, Any::encode_from(&OID_CT_TST_INFO))?,
        attribute(
            OID_MESSAGE_DIGEST,
            Any::encode_from(
                &OctetString::new(DigestAlgorithm::Sha256.digest(&tst_der)).map_err(&encode)?,
            ),
        )?,
        attribute(
            OID_SIGNING_CERTIFICATE_V2,
            Any::encode_from(&signing_certificate),
        )?,
    ])
    .map_err(&encode)?;
    let signature = tsa
        .key
        .sign(&attributes.to_der().map_err(&encode)?)
        .map_err(|error| TspError::Malformed {
            what: "token",
            reason: error.to_string(),
        })?;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: Name::from_der(certificate.issuer_der()).map_err(&encode)?,
            serial_number: SerialNumber::new(certificate.serial()).map_err(&encode)?,
        }),
        digest_alg: DigestAlgorithm::Sha256.identifier(),
        signed_attrs: Some(attributes),
        signature_algorithm: asn1::ecdsa_p256_sha256(),
        signature: OctetString::new(signature).map_err(&encode)?,
        unsigned_attrs: None,
    };
    let certificates = if request.cert_req {
        let x509 = x509_cert::Certificate::from_der(certificate.der()).map_err(&encode)?;
        Some(
            CertificateSet::try_from(vec![CertificateChoices::Certificate(x509)])
                .map_err(&encode)?,
        )
    } else {
        None
    };
    let signed = SignedData {
        version: CmsVersion::V3,
        digest_algorithms: SetOfVec::try_from(vec![DigestAlgorithm::Sha256.identifier()])
            .map_err(&encode)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: OID_CT_TST_INFO,
            econtent: Some(Any::new(Tag::OctetString, tst_der).map_err(&encode)?),
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info]).map_err(&encode)?,
    };
    Ok(ContentInfo {
        content_type: OID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(&encode)?,
    })
}

fn attribute(oid: ObjectIdentifier, value: der::Result<Any>) -> Result<Attribute, TspError> {
    let value = value.map_err(malformed("token"))?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(malformed("token"))?,
    })
}

fn sha256_imprint(imprint: &[u8; 32]) -> Result<MessageImprint, TspError> {
    Ok(MessageImprint {
        hash_algorithm: AlgorithmIdentifier {
            oid: asn1::OID_SHA256,
            parameters: None,
        },
        hashed_message: OctetString::new(imprint.to_vec()).map_err(malformed("request"))?,
    })
}

/// Big-endian bytes as a positive INTEGER's content: leading zeros dropped, one added back when
/// the top bit is set; zero for no bytes.
fn positive(bytes: &[u8]) -> Vec<u8> {
    let bytes = asn1::unsigned(bytes);
    match bytes.first() {
        None => vec![0],
        Some(first) if first & 0x80 != 0 => [&[0u8][..], bytes].concat(),
        Some(_) => bytes.to_vec(),
    }
}

/// PKIFailureInfo bits (RFC 3161 §2.4.2) the development TSA uses.
#[derive(Clone, Copy)]
enum FailInfo {
    BadAlg = 0,
    BadDataFormat = 5,
    UnacceptedPolicy = 15,
    SystemFailure = 25,
}

impl FailInfo {
    /// A DER BIT STRING with only this bit set (named bits: trailing zero bits trimmed).
    fn bits(self) -> Option<BitString> {
        let bit = self as usize;
        let mut bytes = vec![0u8; bit / 8 + 1];
        bytes[bit / 8] = 0x80 >> (bit % 8);
        let unused = 7 - (bit % 8) as u8;
        BitString::new(unused, bytes).ok()
    }
}

fn rejection(fail: FailInfo, text: &str) -> Vec<u8> {
    encode_response(2, vec![text.to_owned()], fail.bits(), None)
}

fn encode_response(
    status: u32,
    text: Vec<String>,
    fail_info: Option<BitString>,
    token: Option<ContentInfo>,
) -> Vec<u8> {
    let response = Response {
        status: StatusInfo {
            status,
            status_string: (!text.is_empty()).then_some(text),
            fail_info,
        },
        token,
    };
    // A status, short UTF-8 strings and an already encoded token always encode; the literal is
    // a bare `rejection` as the last resort.
    response
        .to_der()
        .unwrap_or_else(|_| vec![0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02])
}

// ---------------------------------------------------------------------------------------------
// Checking tokens.

fn carried_certificates(signed: &SignedData) -> Result<Vec<Certificate>, TspError> {
    let mut certificates = Vec::new();
    for choice in signed.certificates.iter().flat_map(|set| set.0.iter()) {
        if let CertificateChoices::Certificate(certificate) = choice {
            let der = certificate.to_der().map_err(malformed("certificate"))?;
            certificates.push(
                Certificate::from_der(der).map_err(|error| TspError::Malformed {
                    what: "certificate",
                    reason: error.to_string(),
                })?,
            );
        }
    }
    Ok(certificates)
}

fn find_signer(
    sid: &SignerIdentifier,
    carried: &[Certificate],
    anchors: &[Certificate],
) -> Result<Certificate, TspError> {
    let found = carried.iter().chain(anchors).find(|certificate| match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            id.issuer
                .to_der()
                .is_ok_and(|issuer| issuer == certificate.issuer_der())
                && asn1::unsigned(id.serial_number.as_bytes())
                    == asn1::unsigned(certificate.serial())
        }
        SignerIdentifier::SubjectKeyIdentifier(id) => {
            certificate.subject_key_id.as_deref() == Some(id.0.as_bytes())
        }
    });
    found.cloned().ok_or_else(|| TspError::UntrustedTsa {
        tsa: match sid {
            SignerIdentifier::IssuerAndSerialNumber(id) => format!(
                "serial {} of {}",
                hex::encode(asn1::unsigned(id.serial_number.as_bytes())),
                id.issuer
            ),
            SignerIdentifier::SubjectKeyIdentifier(id) => {
                format!("key id {}", hex::encode(id.0.as_bytes()))
            }
        },
        reason: "its certificate is neither in the token nor approved".to_owned(),
    })
}

fn check_signature(
    signer_info: &SignerInfo,
    tst_der: &[u8],
    signer: &Certificate,
) -> Result<(), TspError> {
    let bad = |reason: String| TspError::BadSignature { reason };
    let digest = DigestAlgorithm::from_oid(&signer_info.digest_alg.oid)
        .filter(|digest| *digest != DigestAlgorithm::Sha1)
        .ok_or_else(|| TspError::Malformed {
            what: "signer info",
            reason: format!("digest algorithm {}", signer_info.digest_alg.oid),
        })?;
    let attributes = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| bad("no signed attributes".to_owned()))?;
    let value = |oid: ObjectIdentifier| -> Option<&Any> {
        let mut matching = attributes.iter().filter(|attribute| attribute.oid == oid);
        let attribute = matching.next()?;
        if matching.next().is_some() || attribute.values.len() != 1 {
            return None;
        }
        attribute.values.get(0)
    };
    let content_type = value(OID_CONTENT_TYPE)
        .and_then(|any| any.decode_as::<ObjectIdentifier>().ok())
        .ok_or_else(|| bad("no single content-type attribute".to_owned()))?;
    if content_type != OID_CT_TST_INFO {
        return Err(bad(format!(
            "content-type attribute is {content_type}, not id-ct-TSTInfo"
        )));
    }
    let message_digest = value(OID_MESSAGE_DIGEST)
        .and_then(|any| any.decode_as::<OctetString>().ok())
        .ok_or_else(|| bad("no single message-digest attribute".to_owned()))?;
    if message_digest.as_bytes() != digest.digest(tst_der) {
        return Err(bad(
            "message-digest attribute does not match the TSTInfo".to_owned()
        ));
    }
    let certificate_hash = if let Some(v2) = value(OID_SIGNING_CERTIFICATE_V2) {
        let v2: SigningCertificateV2 = v2
            .decode_as()
            .map_err(|error| bad(format!("signing-certificate-v2 attribute: {error}")))?;
        let first = v2
            .certs
            .first()
            .ok_or_else(|| bad("empty signing-certificate-v2 attribute".to_owned()))?;
        let algorithm = match &first.hash_algorithm {
            None => DigestAlgorithm::Sha256,
            Some(identifier) => DigestAlgorithm::from_oid(&identifier.oid).ok_or_else(|| {
                bad(format!(
                    "signing-certificate-v2 hash algorithm {}",
                    identifier.oid
                ))
            })?,
        };
        (algorithm, first.cert_hash.as_bytes().to_vec())
    } else if let Some(v1) = value(OID_SIGNING_CERTIFICATE) {
        let v1: SigningCertificate = v1
            .decode_as()
            .map_err(|error| bad(format!("signing-certificate attribute: {error}")))?;
        let first = v1
            .certs
            .first()
            .ok_or_else(|| bad("empty signing-certificate attribute".to_owned()))?;
        (DigestAlgorithm::Sha1, first.cert_hash.as_bytes().to_vec())
    } else {
        return Err(bad("no signing-certificate attribute".to_owned()));
    };
    if certificate_hash.1 != certificate_hash.0.digest(signer.der()) {
        return Err(bad(format!(
            "signing-certificate attribute does not name {}",
            signer.subject()
        )));
    }
    let key = signer
        .public_key()
        .map_err(|error| TspError::UntrustedTsa {
            tsa: signer.subject(),
            reason: error.to_string(),
        })?;
    let algorithm = asn1::signature_algorithm(&signer_info.signature_algorithm, Some(digest), key)
        .ok_or_else(|| TspError::Malformed {
            what: "signer info",
            reason: format!(
                "signature algorithm {} with {digest:?} and a {} key",
                signer_info.signature_algorithm.oid,
                key.kind_name()
            ),
        })?;
    // The signature covers the DER of the attributes as a SET OF (RFC 5652 §5.4).
    let signed_bytes = attributes.to_der().map_err(malformed("signer info"))?;
    key.verify(algorithm, &signed_bytes, signer_info.signature.as_bytes())
        .map_err(|_| {
            bad(format!(
                "does not verify with the key of {}",
                signer.subject()
            ))
        })
}

fn status_text(status: &StatusInfo) -> String {
    let mut parts: Vec<String> = status.status_string.clone().unwrap_or_default();
    if let Some(bits) = &status.fail_info {
        let set: Vec<String> = bits
            .bits()
            .enumerate()
            .filter(|(_, set)| *set)
            .map(|(bit, _)| format!("failure bit {bit}"))
            .collect();
        parts.extend(set);
    }
    parts.join(", ")
}

fn malformed(what: &'static str) -> impl Fn(der::Error) -> TspError {
    move |error| TspError::Malformed {
        what,
        reason: error.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Structures the RustCrypto crates do not define.

/// TimeStampResp with the PKIStatusInfo spelled out (RFC 3161 §2.4.2).
#[derive(der::Sequence)]
struct Response {
    status: StatusInfo,
    #[asn1(optional = "true")]
    token: Option<ContentInfo>,
}

/// PKIStatusInfo (RFC 4210): status, optional PKIFreeText, optional PKIFailureInfo.
#[derive(der::Sequence)]
struct StatusInfo {
    status: u32,
    #[asn1(optional = "true")]
    status_string: Option<Vec<String>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// SigningCertificateV2 (RFC 5035 §3).
#[derive(der::Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<Vec<Any>>,
}

/// ESSCertIDv2: hashAlgorithm DEFAULT sha256 is absent when it is SHA-256 (DER omits defaults).
#[derive(der::Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// SigningCertificate (RFC 2634 §5.4): ESSCertIDs with SHA-1 certificate hashes.
#[derive(der::Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<Vec<Any>>,
}

#[derive(der::Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// IssuerSerial: kept opaque, the certificate hash is what binds the signer.
#[derive(der::Sequence)]
struct IssuerSerial {
    issuer: Vec<Any>,
    serial_number: Int,
}
