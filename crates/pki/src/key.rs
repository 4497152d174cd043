//! Private keys: Passerelle's own ECDSA P-256 signing keys, and the keys `openssl genpkey` makes.

use std::fmt;
use std::path::Path;

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair, RsaKeyPair,
};

use crate::encoding;
use crate::{PkiError, PublicKey, SignatureAlgorithm};

const PKCS8_TAG: &str = "PRIVATE KEY";
const PKCS1_RSA_TAG: &str = "RSA PRIVATE KEY";

/// An ECDSA P-256 signing key: what Passerelle generates for members, servers and its
/// development CA. Signatures are ECDSA with SHA-256, DER-encoded.
///
/// Stored as unencrypted PKCS#8 (`-----BEGIN PRIVATE KEY-----`), the format `openssl genpkey`
/// writes, so `openssl pkey -in key.pem -pubout` works on it. `Debug` never shows the secret.
pub struct SigningKey {
    pkcs8: Vec<u8>,
    key_pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| PkiError::Random)?;
        Self::from_pkcs8_der(document.as_ref())
    }

    /// Loads an unencrypted PKCS#8 DER P-256 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        let rng = SystemRandom::new();
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng)
            .map_err(|error| {
                PkiError::invalid_key(format!("not a pkcs#8 ecdsa p-256 key: {error}"))
            })?;
        Ok(SigningKey {
            pkcs8: der.to_vec(),
            key_pair,
            rng,
        })
    }

    /// Loads a PEM `PRIVATE KEY` block (exactly one).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_pkcs8_der(&encoding::single_block(pem, &[PKCS8_TAG])?)
    }

    /// Loads a key file, PEM or DER (sniffed from its first bytes).
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        let bytes = encoding::read_file(path)?;
        if encoding::looks_like_pem(&bytes) {
            Self::from_pkcs8_pem(&encoding::pem_text(bytes)?)
        } else {
            Self::from_pkcs8_der(&bytes)
        }
    }

    /// The unencrypted PKCS#8 DER encoding.
    pub fn to_pkcs8_der(&self) -> Vec<u8> {
        self.pkcs8.clone()
    }

    /// The unencrypted PKCS#8 PEM encoding.
    pub fn to_pkcs8_pem(&self) -> String {
        encoding::encode(PKCS8_TAG, &self.pkcs8)
    }

    /// Writes the key as PEM, readable only by its owner (mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), PkiError> {
        encoding::write_private(path, self.to_pkcs8_pem().as_bytes())
    }

    /// Signs `message` with ECDSA P-256 and SHA-256; the signature is DER, as `openssl dgst
    /// -sha256 -sign` writes it.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.key_pair
            .sign(&self.rng, message)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| PkiError::SigningFailed {
                algorithm: SignatureAlgorithm::EcdsaP256Sha256,
            })
    }

    /// The algorithm of [`SigningKey::sign`].
    pub fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaP256Sha256
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::ecdsa_p256(self.key_pair.public_key().as_ref())
    }

    /// The public half as DER `SubjectPublicKeyInfo`.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.public_key().spki_der().to_vec()
    }

    /// The raw uncompressed public point (what rcgen embeds in certificates).
    pub(crate) fn public_point(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// Any private key Passerelle can sign with: its own P-256 keys, and the RSA, ECDSA P-256/P-384
/// and Ed25519 keys made by `openssl genpkey` (unencrypted PKCS#8, PEM or DER). PKCS#1
/// `RSA PRIVATE KEY` files (`openssl genrsa -traditional`) load too. RSA keys must be 2048 to
/// 8192 bits.
#[derive(Debug)]
#[non_exhaustive]
pub enum PrivateKey {
    /// ECDSA on P-256.
    EcdsaP256(SigningKey),
    /// ECDSA on P-384.
    EcdsaP384(EcdsaP384Key),
    /// RSA.
    Rsa(RsaKey),
    /// Ed25519.
    Ed25519(Ed25519Key),
}

/// An ECDSA P-384 private key; use it through [`PrivateKey`].
pub struct EcdsaP384Key {
    key_pair: EcdsaKeyPair,
}

/// An RSA private key; use it through [`PrivateKey`].
pub struct RsaKey {
    key_pair: RsaKeyPair,
}

/// An Ed25519 private key; use it through [`PrivateKey`].
pub struct Ed25519Key {
    key_pair: Ed25519KeyPair,
}

macro_rules! redacted_debug {
    ($($ty:ty),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    )*};
}
redacted_debug!(EcdsaP384Key, RsaKey, Ed25519Key);

impl PrivateKey {
    /// Loads an unencrypted PKCS#8 DER key of any supported type.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        // ring says which key it is only by accepting it; the order does not matter because a
        // PKCS#8 structure names its algorithm and ring checks that name.
        if let Ok(key) = SigningKey::from_pkcs8_der(der) {
            return Ok(PrivateKey::EcdsaP256(key));
        }
        let rng = SystemRandom::new();
        if let Ok(key_pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_ASN1_SIGNING, der, &rng) {
            return Ok(PrivateKey::EcdsaP384(EcdsaP384Key { key_pair }));
        }
        // openssl writes PKCS#8 v1 Ed25519 keys, without the public key ring's checked path
        // wants; the public key is derived from the seed either way.
        if let Ok(key_pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(PrivateKey::Ed25519(Ed25519Key { key_pair }));
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(key_pair) => Ok(PrivateKey::Rsa(RsaKey { key_pair })),
            Err(rsa_error) => Err(PkiError::invalid_key(format!(
                "not an unencrypted pkcs#8 ecdsa p-256/p-384, ed25519 or rsa 2048-8192 key \
                 (as rsa: {rsa_error})"
            ))),
        }
    }

    /// Loads PEM text holding one `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1) block.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let blocks = encoding::blocks(pem)?;
        let mut keys = blocks
            .iter()
            .filter(|(tag, _)| tag.ends_with("PRIVATE KEY"));
        let (tag, der) = match (keys.next(), keys.next()) {
            (Some(block), None) => block,
            (None, _) => return Err(PkiError::invalid_pem("no PRIVATE KEY block")),
            (Some(_), Some(_)) => {
                return Err(PkiError::invalid_pem("more than one private key block"));
            }
        };
        match tag.as_str() {
            PKCS8_TAG => Self::from_pkcs8_der(der),
            PKCS1_RSA_TAG => RsaKeyPair::from_der(der)
                .map(|key_pair| PrivateKey::Rsa(RsaKey { key_pair }))
                .map_err(|error| {
                    PkiError::invalid_key(format!("not an rsa 2048-8192 key: {error}"))
                }),
            other => Err(PkiError::invalid_key(format!(
                "{other} blocks are not supported; convert with `openssl pkcs8 -topk8 -nocrypt`"
            ))),
        }
    }

    /// Loads DER: unencrypted PKCS#8, or a PKCS#1 `RSAPrivateKey`.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        Self::from_pkcs8_der(der).or_else(|pkcs8_error| {
            RsaKeyPair::from_der(der)
                .map(|key_pair| PrivateKey::Rsa(RsaKey { key_pair }))
                .map_err(|_| pkcs8_error)
        })
    }

    /// Loads a key file, PEM or DER (sniffed from its first bytes).
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        let bytes = encoding::read_file(path)?;
        if encoding::looks_like_pem(&bytes) {
            Self::from_pem(&encoding::pem_text(bytes)?)
        } else {
            Self::from_der(&bytes)
        }
    }

    /// The algorithm [`PrivateKey::sign`] uses: P-256 → ECDSA-SHA256, P-384 → ECDSA-SHA384,
    /// RSA → PKCS#1 v1.5 SHA-256, Ed25519 → Ed25519.
    pub fn default_algorithm(&self) -> SignatureAlgorithm {
        match self {
            PrivateKey::EcdsaP256(_) => SignatureAlgorithm::EcdsaP256Sha256,
            PrivateKey::EcdsaP384(_) => SignatureAlgorithm::EcdsaP384Sha384,
            PrivateKey::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
            PrivateKey::Ed25519(_) => SignatureAlgorithm::Ed25519,
        }
    }

    /// Signs with [`PrivateKey::default_algorithm`].
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.sign_with(self.default_algorithm(), message)
    }

    /// Signs with a chosen algorithm; an RSA key can sign with every RSA algorithm, other keys
    /// only with their own.
    pub fn sign_with(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
    ) -> Result<Vec<u8>, PkiError> {
        let failed = PkiError::SigningFailed { algorithm };
        let mismatch = PkiError::AlgorithmKeyMismatch {
            algorithm,
            key: self.kind_name(),
        };
        let rng = SystemRandom::new();
        match (self, algorithm) {
            (PrivateKey::EcdsaP256(key), SignatureAlgorithm::EcdsaP256Sha256) => key.sign(message),
            (PrivateKey::EcdsaP384(key), SignatureAlgorithm::EcdsaP384Sha384) => key
                .key_pair
                .sign(&rng, message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| failed),
            (PrivateKey::Ed25519(key), SignatureAlgorithm::Ed25519) => {
                Ok(key.key_pair.sign(message).as_ref().to_vec())
            }
            (PrivateKey::Rsa(key), _) => {
                let padding: &'static dyn ring::signature::RsaEncoding = match algorithm {
                    SignatureAlgorithm::RsaPkcs1Sha256 => &ring::signature::RSA_PKCS1_SHA256,
                    SignatureAlgorithm::RsaPkcs1Sha384 => &ring::signature::RSA_PKCS1_SHA384,
                    SignatureAlgorithm::RsaPkcs1Sha512 => &ring::signature::RSA_PKCS1_SHA512,
                    SignatureAlgorithm::RsaPssSha256 => &ring::signature::RSA_PSS_SHA256,
                    SignatureAlgorithm::RsaPssSha384 => &ring::signature::RSA_PSS_SHA384,
                    SignatureAlgorithm::RsaPssSha512 => &ring::signature::RSA_PSS_SHA512,
                    SignatureAlgorithm::EcdsaP256Sha256
                    | SignatureAlgorithm::EcdsaP384Sha384
                    | SignatureAlgorithm::Ed25519 => return Err(mismatch),
                };
                let mut signature = vec![0u8; key.key_pair.public().modulus_len()];
                key.key_pair
                    .sign(padding, &rng, message, &mut signature)
                    .map_err(|_| failed)?;
                Ok(signature)
            }
            _ => Err(mismatch),
        }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::EcdsaP256(key) => key.public_key(),
            PrivateKey::EcdsaP384(key) => PublicKey::ecdsa_p384(key.key_pair.public_key().as_ref()),
            PrivateKey::Rsa(key) => PublicKey::rsa(key.key_pair.public_key().as_ref()),
            PrivateKey::Ed25519(key) => PublicKey::ed25519(key.key_pair.public_key().as_ref()),
        }
    }

    /// The public half as DER `SubjectPublicKeyInfo`.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.public_key().spki_der().to_vec()
    }

    fn kind_name(&self) -> &'static str {
        match self {
            PrivateKey::EcdsaP256(_) => "ecdsa-p256",
            PrivateKey::EcdsaP384(_) => "ecdsa-p384",
            PrivateKey::Rsa(_) => "rsa",
            PrivateKey::Ed25519(_) => "ed25519",
        }
    }
}

impl From<SigningKey> for PrivateKey {
    fn from(key: SigningKey) -> Self {
        PrivateKey::EcdsaP256(key)
    }
}
