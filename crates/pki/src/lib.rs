//! Keys, certificates, chains, signatures and Merkle batches of Passerelle.
//!
//! This crate owns every cryptographic operation of the project: ECDSA P-256 signing keys and
//! the private keys `openssl genpkey` makes ([`SigningKey`], [`PrivateKey`]), signature
//! verification for ECDSA, RSA (PKCS#1 v1.5 and PSS) and Ed25519 ([`SignatureAlgorithm`],
//! [`PublicKey`]), X.509 certificates ([`Certificate`]), path validation against explicit trust
//! anchors at an explicit time ([`validate_chain`]), SHA-256 ([`digest`]), RFC 6962 Merkle
//! batches ([`merkle`]), body sealing ([`aead`]), the development certificate authority
//! ([`devca`]), certificate status by OCSP ([`ocsp`], with the CA's index in [`revocation`]) and
//! RFC 3161 time-stamp tokens ([`tsp`]). OCSP and CMS structures are encoded and decoded with
//! the RustCrypto ASN.1 crates; every digest and signature is still computed by ring.
//!
//! It is the only crate that uses ring and x509-parser; other crates see only its types. It must
//! never consult a system trust store, read the clock (time is always a `now` parameter, except
//! in the development CA's convenience entry points that say so), or panic on bytes from a file
//! or the network.

pub mod aead;
pub mod digest;
pub mod io;
pub mod merkle;
pub mod ocsp;
pub mod random;
pub mod revocation;
pub mod sealed_box;
pub mod tsp;

mod algorithm;
mod asn1;
mod certificate;
mod chain;
mod der;
pub mod devca;
mod encoding;
mod error;
mod key;

pub use algorithm::{PublicKey, SignatureAlgorithm, UnknownSignatureAlgorithm};
pub use certificate::Certificate;
pub use chain::{ChainError, MAX_CHAIN_LENGTH, Purpose, validate_chain};
pub use error::PkiError;
pub use key::{EcdsaP384Key, Ed25519Key, PrivateKey, RsaKey, SigningKey};
