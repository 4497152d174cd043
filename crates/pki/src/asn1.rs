//! What OCSP and time-stamping share: object identifiers, digests by algorithm identifier,
//! signature algorithm identifiers, and time conversions between `SystemTime` and ASN.1.
//!
//! The RustCrypto `der`/`x509-cert`/`cms` crates only encode and decode here; every digest and
//! signature is computed by ring.

use std::time::{Duration, SystemTime};

use der::asn1::{GeneralizedTime, ObjectIdentifier};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::{Certificate, PublicKey, SignatureAlgorithm};

pub(crate) const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
pub(crate) const OID_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
pub(crate) const OID_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
pub(crate) const OID_SHA512: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_RSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_RSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// A digest algorithm named by an AlgorithmIdentifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DigestAlgorithm {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    pub(crate) fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Some(match *oid {
            OID_SHA1 => DigestAlgorithm::Sha1,
            OID_SHA256 => DigestAlgorithm::Sha256,
            OID_SHA384 => DigestAlgorithm::Sha384,
            OID_SHA512 => DigestAlgorithm::Sha512,
            _ => return None,
        })
    }

    pub(crate) fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha1 => OID_SHA1,
            DigestAlgorithm::Sha256 => OID_SHA256,
            DigestAlgorithm::Sha384 => OID_SHA384,
            DigestAlgorithm::Sha512 => OID_SHA512,
        }
    }

    /// The AlgorithmIdentifier with absent parameters (RFC 5754 §2: "implementations MUST
    /// accept both", and openssl writes them absent for SHA-2).
    pub(crate) fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            // Only where a protocol fixes it: OCSP CertIDs (openssl's default) and ESS
            // signing-certificate v1 hashes. Never for signatures.
            DigestAlgorithm::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlgorithm::Sha256 => &ring::digest::SHA256,
            DigestAlgorithm::Sha384 => &ring::digest::SHA384,
            DigestAlgorithm::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(algorithm, data).as_ref().to_vec()
    }
}

/// The signature algorithm a signer's AlgorithmIdentifier names, given the key that must have
/// made it. CMS signers may name only the key type (`rsaEncryption`, `id-ecPublicKey`) and
/// leave the hash to the digest algorithm, so that is passed too.
pub(crate) fn signature_algorithm(
    identifier: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
    key: &PublicKey,
) -> Option<SignatureAlgorithm> {
    let algorithm = match (identifier.oid, digest) {
        (OID_ECDSA_SHA256, _) => SignatureAlgorithm::EcdsaP256Sha256,
        (OID_ECDSA_SHA384, _) => SignatureAlgorithm::EcdsaP384Sha384,
        (OID_RSA_SHA256, _) | (OID_RSA_ENCRYPTION, Some(DigestAlgorithm::Sha256)) => {
            SignatureAlgorithm::RsaPkcs1Sha256
        }
        (OID_RSA_SHA384, _) | (OID_RSA_ENCRYPTION, Some(DigestAlgorithm::Sha384)) => {
            SignatureAlgorithm::RsaPkcs1Sha384
        }
        (OID_RSA_SHA512, _) | (OID_RSA_ENCRYPTION, Some(DigestAlgorithm::Sha512)) => {
            SignatureAlgorithm::RsaPkcs1Sha512
        }
        (OID_ED25519, _) => SignatureAlgorithm::Ed25519,
        (OID_EC_PUBLIC_KEY, Some(DigestAlgorithm::Sha256)) => SignatureAlgorithm::EcdsaP256Sha256,
        (OID_EC_PUBLIC_KEY, Some(DigestAlgorithm::Sha384)) => SignatureAlgorithm::EcdsaP384Sha384,
        _ => return None,
    };
    // An ECDSA identifier names the hash, not the curve: ring verifies P-256 with SHA-256 and
    // P-384 with SHA-384, so the hash must be the one of the key's curve.
    let ecdsa = matches!(
        algorithm,
        SignatureAlgorithm::EcdsaP256Sha256 | SignatureAlgorithm::EcdsaP384Sha384
    );
    if ecdsa && algorithm != key.default_algorithm() {
        return None;
    }
    Some(algorithm)
}

/// The AlgorithmIdentifier of Passerelle's own signatures (ECDSA P-256 with SHA-256).
pub(crate) fn ecdsa_p256_sha256() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: OID_ECDSA_SHA256,
        parameters: None,
    }
}

pub(crate) fn generalized_time(time: SystemTime) -> Result<GeneralizedTime, der::Error> {
    // GeneralizedTime in DER carries whole seconds here; truncate rather than fail.
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| der::Error::from(der::ErrorKind::DateTime))?
        .as_secs();
    GeneralizedTime::from_unix_duration(Duration::from_secs(seconds))
}

pub(crate) fn system_time(time: &GeneralizedTime) -> SystemTime {
    time.to_system_time()
}

/// The raw bits of a certificate's subjectPublicKey (what OCSP's issuerKeyHash covers).
pub(crate) fn subject_public_key_bits(certificate: &Certificate) -> Option<Vec<u8>> {
    use der::Decode;
    let spki_der = certificate.public_key().ok()?.spki_der().to_vec();
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&spki_der).ok()?;
    spki.subject_public_key.as_bytes().map(<[u8]>::to_vec)
}

/// Big-endian integer bytes without leading zeros, for comparing serial numbers.
pub(crate) fn unsigned(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|byte| **byte == 0).count();
    &bytes[skip..]
}
