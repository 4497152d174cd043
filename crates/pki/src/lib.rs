//! Keys, certificates, chains, signatures and Merkle batches of Passerelle.

pub mod aead;
pub mod digest;
pub mod merkle;
