//! Time-stamp checkpoints: the hooks to a time-stamping authority and to a token verifier.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::hash::Sha256Hash;

/// Obtains a time-stamp token over a Merkle root (RFC 3161: the imprint is the SHA-256 `root`).
///
/// The RFC 3161 client lives with the trust services; tests use a stand-in.
pub trait Timestamper {
    /// The token (DER) over `imprint`, or why none could be obtained.
    fn timestamp(&self, imprint: &[u8; 32]) -> Result<Vec<u8>, String>;
}

/// Checks a time-stamp token offline against the imprint it must cover.
pub trait TokenVerifier {
    /// `Ok` with the time the token asserts, or why it does not hold.
    fn verify(&self, token: &[u8], imprint: &[u8; 32]) -> Result<SystemTime, String>;
}

/// A checkpoint as kept in the index and reported by [`crate::LogHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSummary {
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub root: Sha256Hash,
    /// Sequence number of the checkpoint entry itself.
    pub entry_sequence: u64,
    pub created_at_ms: u64,
}

/// Milliseconds since the unix epoch (0 for times before it).
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
