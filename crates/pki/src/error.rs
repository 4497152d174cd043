//! The one error enum of key, certificate, signature and development-CA operations.
//!
//! Chain validation has its own enum, [`crate::ChainError`], because each of its variants names
//! the certificate of the chain that failed, which is what an operator needs to act on.

use std::path::PathBuf;

/// Why a key, certificate or signature operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Text that should be PEM is not, or holds the wrong kind or number of blocks.
    #[error("invalid pem: {reason}")]
    InvalidPem {
        /// What was wrong with it.
        reason: String,
    },
    /// A private key could not be loaded.
    #[error("invalid private key: {reason}")]
    InvalidKey {
        /// What was wrong with it.
        reason: String,
    },
    /// A certificate could not be parsed.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate {
        /// What was wrong with it.
        reason: String,
    },
    /// A public key type or curve that Passerelle does not verify with.
    #[error("unsupported public key: {algorithm}")]
    UnsupportedPublicKey {
        /// The key's algorithm (an OID, or a key type and curve).
        algorithm: String,
    },
    /// The signature algorithm does not fit the key (for example ECDSA P-384 with an RSA key).
    #[error("signature algorithm {algorithm} cannot be used with a {key} key")]
    AlgorithmKeyMismatch {
        /// The algorithm that was asked for.
        algorithm: crate::SignatureAlgorithm,
        /// The kind of key at hand.
        key: &'static str,
    },
    /// The signature does not verify: wrong key, wrong message, wrong algorithm or tampered bytes.
    #[error("signature does not verify with {algorithm}")]
    BadSignature {
        /// The algorithm the signature was checked with.
        algorithm: crate::SignatureAlgorithm,
    },
    /// Signing failed inside the crypto library.
    #[error("signing with {algorithm} failed")]
    SigningFailed {
        /// The algorithm that was used.
        algorithm: crate::SignatureAlgorithm,
    },
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
    /// The development CA refused to overwrite existing files.
    #[error("{} already holds a certificate authority (use --force to replace it)", dir.display())]
    CaAlreadyExists {
        /// The CA directory.
        dir: PathBuf,
    },
    /// The development CA directory is not what it should be.
    #[error("development ca in {}: {reason}", dir.display())]
    InvalidCa {
        /// The CA directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A CA's index of issued certificates (`index.txt`) cannot be read or changed as asked.
    #[error("certificate index: {reason}")]
    InvalidIndex {
        /// What is wrong.
        reason: String,
    },
    /// A certificate could not be issued.
    #[error("cannot issue certificate for {subject}: {reason}")]
    Issuance {
        /// The subject that was being certified.
        subject: String,
        /// Why it failed.
        reason: String,
    },
}

impl PkiError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PkiError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid_key(reason: impl Into<String>) -> Self {
        PkiError::InvalidKey {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_certificate(reason: impl Into<String>) -> Self {
        PkiError::InvalidCertificate {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_pem(reason: impl Into<String>) -> Self {
        PkiError::InvalidPem {
            reason: reason.into(),
        }
    }
}
