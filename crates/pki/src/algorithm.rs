//! Signature algorithms and public keys: which ring verification algorithm checks which
//! signature with which key.

use std::fmt;
use std::str::FromStr;

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::PkiError;
use crate::der;

/// A signature algorithm Passerelle signs or verifies with.
///
/// Serialized (serde, [`fmt::Display`], [`FromStr`]) as a stable lowercase string, for example
/// `ecdsa-p256-sha256`; these strings appear in signed messages and logs and never change.
/// ECDSA signatures are ASN.1 DER (`Ecdsa-Sig-Value`), as `openssl dgst` makes them; RSA-PSS
/// uses MGF1 with the same hash and a salt as long as the hash (`-sigopt rsa_pss_saltlen:digest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SignatureAlgorithm {
    /// ECDSA on P-256 with SHA-256: Passerelle's default.
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    #[serde(rename = "ecdsa-p384-sha384")]
    EcdsaP384Sha384,
    /// RSA PKCS#1 v1.5 with SHA-256 (2048 to 8192-bit keys).
    #[serde(rename = "rsa-pkcs1-sha256")]
    RsaPkcs1Sha256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    #[serde(rename = "rsa-pkcs1-sha384")]
    RsaPkcs1Sha384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    #[serde(rename = "rsa-pkcs1-sha512")]
    RsaPkcs1Sha512,
    /// RSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    #[serde(rename = "rsa-pss-sha256")]
    RsaPssSha256,
    /// RSA-PSS with SHA-384, MGF1-SHA-384, 48-byte salt.
    #[serde(rename = "rsa-pss-sha384")]
    RsaPssSha384,
    /// RSA-PSS with SHA-512, MGF1-SHA-512, 64-byte salt.
    #[serde(rename = "rsa-pss-sha512")]
    RsaPssSha512,
    /// Ed25519 (pure, over the whole message).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl SignatureAlgorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [SignatureAlgorithm; 9] = [
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::EcdsaP384Sha384,
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPkcs1Sha384,
        SignatureAlgorithm::RsaPkcs1Sha512,
        SignatureAlgorithm::RsaPssSha256,
        SignatureAlgorithm::RsaPssSha384,
        SignatureAlgorithm::RsaPssSha512,
        SignatureAlgorithm::Ed25519,
    ];

    /// The stable name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SignatureAlgorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SignatureAlgorithm::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SignatureAlgorithm::RsaPkcs1Sha384 => "rsa-pkcs1-sha384",
            SignatureAlgorithm::RsaPkcs1Sha512 => "rsa-pkcs1-sha512",
            SignatureAlgorithm::RsaPssSha256 => "rsa-pss-sha256",
            SignatureAlgorithm::RsaPssSha384 => "rsa-pss-sha384",
            SignatureAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }

    fn scheme(self) -> (Scheme, Hash) {
        match self {
            SignatureAlgorithm::EcdsaP256Sha256 => (Scheme::Ecdsa, Hash::Sha256),
            SignatureAlgorithm::EcdsaP384Sha384 => (Scheme::Ecdsa, Hash::Sha384),
            SignatureAlgorithm::RsaPkcs1Sha256 => (Scheme::RsaPkcs1, Hash::Sha256),
            SignatureAlgorithm::RsaPkcs1Sha384 => (Scheme::RsaPkcs1, Hash::Sha384),
            SignatureAlgorithm::RsaPkcs1Sha512 => (Scheme::RsaPkcs1, Hash::Sha512),
            SignatureAlgorithm::RsaPssSha256 => (Scheme::RsaPss, Hash::Sha256),
            SignatureAlgorithm::RsaPssSha384 => (Scheme::RsaPss, Hash::Sha384),
            SignatureAlgorithm::RsaPssSha512 => (Scheme::RsaPss, Hash::Sha512),
            SignatureAlgorithm::Ed25519 => (Scheme::Ed25519, Hash::Sha512),
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given to [`SignatureAlgorithm::from_str`] is not one of the stable names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown signature algorithm {name:?} (expected one of ecdsa-p256-sha256, ecdsa-p384-sha384, rsa-pkcs1-sha256|384|512, rsa-pss-sha256|384|512, ed25519)"
)]
pub struct UnknownSignatureAlgorithm {
    /// The name that was given.
    pub name: String,
}

impl FromStr for SignatureAlgorithm {
    type Err = UnknownSignatureAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SignatureAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == name)
            .ok_or_else(|| UnknownSignatureAlgorithm {
                name: name.to_owned(),
            })
    }
}

/// The signature scheme half of an algorithm; certificate signatures name it by OID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Ecdsa,
    RsaPkcs1,
    RsaPss,
    Ed25519,
}

/// The hash half of an algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// The kind of a public key, with the bytes ring verifies against.
#[derive(Clone, PartialEq, Eq)]
enum KeyKind {
    /// Uncompressed SEC1 point.
    EcdsaP256(Vec<u8>),
    /// Uncompressed SEC1 point.
    EcdsaP384(Vec<u8>),
    /// DER `RSAPublicKey`.
    Rsa(Vec<u8>),
    /// 32 raw bytes.
    Ed25519(Vec<u8>),
}

/// A public key Passerelle can verify signatures with: ECDSA P-256 or P-384, RSA, or Ed25519.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    kind: KeyKind,
    spki_der: Vec<u8>,
}

impl PublicKey {
    /// Parses a DER `SubjectPublicKeyInfo` (what `openssl pkey -pubout -outform DER` writes).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, PkiError> {
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der).map_err(|error| {
            PkiError::UnsupportedPublicKey {
                algorithm: format!("unparsable key: {error}"),
            }
        })?;
        if !rest.is_empty() {
            return Err(PkiError::UnsupportedPublicKey {
                algorithm: "trailing bytes after SubjectPublicKeyInfo".to_owned(),
            });
        }
        Self::from_parsed(&spki)
    }

    /// Parses a PEM `PUBLIC KEY` block.
    pub fn from_spki_pem(pem: &str) -> Result<Self, PkiError> {
        let der = crate::encoding::single_block(pem, &["PUBLIC KEY"])?;
        Self::from_spki_der(&der)
    }

    pub(crate) fn from_parsed(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, PkiError> {
        let algorithm = spki.algorithm.algorithm.as_bytes();
        let key = spki.subject_public_key.data.to_vec();
        let kind = if algorithm == der::OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|parameters| parameters.as_oid().ok())
                .ok_or_else(|| PkiError::UnsupportedPublicKey {
                    algorithm: "ec key without a named curve".to_owned(),
                })?;
            match curve.as_bytes() {
                c if c == der::OID_P256 => KeyKind::EcdsaP256(key),
                c if c == der::OID_P384 => KeyKind::EcdsaP384(key),
                _ => {
                    return Err(PkiError::UnsupportedPublicKey {
                        algorithm: format!("ec curve {curve}"),
                    });
                }
            }
        } else if algorithm == der::OID_RSA_ENCRYPTION {
            KeyKind::Rsa(key)
        } else if algorithm == der::OID_ED25519 {
            KeyKind::Ed25519(key)
        } else {
            return Err(PkiError::UnsupportedPublicKey {
                algorithm: spki.algorithm.algorithm.to_id_string(),
            });
        };
        Ok(PublicKey {
            kind,
            spki_der: spki.raw.to_vec(),
        })
    }

    pub(crate) fn ecdsa_p256(point: &[u8]) -> Self {
        PublicKey {
            kind: KeyKind::EcdsaP256(point.to_vec()),
            spki_der: der::ec_spki(der::OID_P256, point),
        }
    }

    pub(crate) fn ecdsa_p384(point: &[u8]) -> Self {
        PublicKey {
            kind: KeyKind::EcdsaP384(point.to_vec()),
            spki_der: der::ec_spki(der::OID_P384, point),
        }
    }

    pub(crate) fn rsa(rsa_public_key: &[u8]) -> Self {
        PublicKey {
            kind: KeyKind::Rsa(rsa_public_key.to_vec()),
            spki_der: der::rsa_spki(rsa_public_key),
        }
    }

    pub(crate) fn ed25519(public_key: &[u8]) -> Self {
        PublicKey {
            kind: KeyKind::Ed25519(public_key.to_vec()),
            spki_der: der::ed25519_spki(public_key),
        }
    }

    /// The DER `SubjectPublicKeyInfo`.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The PEM `PUBLIC KEY` block, as `openssl pkey -pubout` writes it.
    pub fn to_spki_pem(&self) -> String {
        crate::encoding::encode("PUBLIC KEY", &self.spki_der)
    }

    /// A short name of the key type: `ecdsa-p256`, `ecdsa-p384`, `rsa` or `ed25519`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            KeyKind::EcdsaP256(_) => "ecdsa-p256",
            KeyKind::EcdsaP384(_) => "ecdsa-p384",
            KeyKind::Rsa(_) => "rsa",
            KeyKind::Ed25519(_) => "ed25519",
        }
    }

    /// The algorithm a signature by this key uses unless told otherwise: P-256 →
    /// ECDSA-SHA256, P-384 → ECDSA-SHA384, RSA → PKCS#1 v1.5 SHA-256, Ed25519 → Ed25519.
    pub fn default_algorithm(&self) -> SignatureAlgorithm {
        match self.kind {
            KeyKind::EcdsaP256(_) => SignatureAlgorithm::EcdsaP256Sha256,
            KeyKind::EcdsaP384(_) => SignatureAlgorithm::EcdsaP384Sha384,
            KeyKind::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
            KeyKind::Ed25519(_) => SignatureAlgorithm::Ed25519,
        }
    }

    /// Checks `signature` over `message` with `algorithm`.
    pub fn verify(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), PkiError> {
        let (scheme, hash) = algorithm.scheme();
        let ring_algorithm =
            self.ring_algorithm(scheme, hash)
                .ok_or(PkiError::AlgorithmKeyMismatch {
                    algorithm,
                    key: self.kind_name(),
                })?;
        self.verify_with(ring_algorithm, message, signature)
            .map_err(|()| PkiError::BadSignature { algorithm })
    }

    pub(crate) fn verify_with(
        &self,
        algorithm: &'static dyn VerificationAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), ()> {
        let key_bytes = match &self.kind {
            KeyKind::EcdsaP256(bytes)
            | KeyKind::EcdsaP384(bytes)
            | KeyKind::Rsa(bytes)
            | KeyKind::Ed25519(bytes) => bytes,
        };
        UnparsedPublicKey::new(algorithm, key_bytes)
            .verify(message, signature)
            .map_err(|_| ())
    }

    /// The ring algorithm for a scheme and hash with this key, if ring has one. Certificates
    /// may combine a curve with another hash (P-256 with SHA-384), so this is wider than
    /// [`SignatureAlgorithm`].
    pub(crate) fn ring_algorithm(
        &self,
        scheme: Scheme,
        hash: Hash,
    ) -> Option<&'static dyn VerificationAlgorithm> {
        Some(match (&self.kind, scheme, hash) {
            (KeyKind::EcdsaP256(_), Scheme::Ecdsa, Hash::Sha256) => {
                &signature::ECDSA_P256_SHA256_ASN1
            }
            (KeyKind::EcdsaP256(_), Scheme::Ecdsa, Hash::Sha384) => {
                &signature::ECDSA_P256_SHA384_ASN1
            }
            (KeyKind::EcdsaP384(_), Scheme::Ecdsa, Hash::Sha256) => {
                &signature::ECDSA_P384_SHA256_ASN1
            }
            (KeyKind::EcdsaP384(_), Scheme::Ecdsa, Hash::Sha384) => {
                &signature::ECDSA_P384_SHA384_ASN1
            }
            (KeyKind::Rsa(_), Scheme::RsaPkcs1, Hash::Sha256) => {
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            (KeyKind::Rsa(_), Scheme::RsaPkcs1, Hash::Sha384) => {
                &signature::RSA_PKCS1_2048_8192_SHA384
            }
            (KeyKind::Rsa(_), Scheme::RsaPkcs1, Hash::Sha512) => {
                &signature::RSA_PKCS1_2048_8192_SHA512
            }
            (KeyKind::Rsa(_), Scheme::RsaPss, Hash::Sha256) => &signature::RSA_PSS_2048_8192_SHA256,
            (KeyKind::Rsa(_), Scheme::RsaPss, Hash::Sha384) => &signature::RSA_PSS_2048_8192_SHA384,
            (KeyKind::Rsa(_), Scheme::RsaPss, Hash::Sha512) => &signature::RSA_PSS_2048_8192_SHA512,
            (KeyKind::Ed25519(_), Scheme::Ed25519, _) => &signature::ED25519,
            _ => return None,
        })
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("kind", &self.kind_name())
            .field(
                "spki_sha256",
                &hex::encode(crate::encoding::sha256(&self.spki_der)),
            )
            .finish()
    }
}
