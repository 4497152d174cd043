//! The anchor: what a security server is bootstrapped with to trust one instance's configuration.

use std::path::Path;
use std::time::SystemTime;

use passerelle_pki::Certificate;
use serde::{Deserialize, Serialize};

use crate::error::ConfError;
use crate::model::InstanceId;
use crate::timefmt::rfc3339;

/// The anchor file (JSON).
///
/// Its verification certificates are the configuration-signing certificates themselves (not a CA
/// above them): a configuration is accepted when its detached signature verifies with one of them
/// and that certificate is valid at the time of verification. Several certificates allow a key
/// rollover: the central server publishes the new anchor before it signs with the new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    pub instance: InstanceId,
    /// Where the configuration bytes are served (plain HTTP is fine: integrity comes from the
    /// signature).
    pub configuration_url: String,
    /// Where the detached signature over those bytes is served.
    pub signature_url: String,
    /// Configuration-signing certificates, PEM, one per entry.
    pub verification_certificates: Vec<String>,
    /// When this anchor was written.
    #[serde(with = "rfc3339")]
    pub generated_at: SystemTime,
}

impl Anchor {
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfError> {
        let anchor: Anchor = serde_json::from_slice(bytes).map_err(|source| ConfError::Json {
            what: "anchor",
            source,
        })?;
        if anchor.verification_certificates.is_empty() {
            return Err(ConfError::invalid(
                "anchor",
                "it lists no verification certificate",
            ));
        }
        for (index, pem) in anchor.verification_certificates.iter().enumerate() {
            Certificate::from_pem(pem).map_err(|error| {
                ConfError::invalid(
                    "anchor",
                    format!("verification certificate {index}: {error}"),
                )
            })?;
        }
        Ok(anchor)
    }

    pub fn load(path: &Path) -> Result<Self, ConfError> {
        let bytes = std::fs::read(path).map_err(|source| ConfError::io(path, source))?;
        Self::from_json(&bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Plain strings and a timestamp: serializing cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Writes the anchor atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), ConfError> {
        crate::cache::write_atomically(path, &self.to_json())
    }

    /// The verification certificates (they parsed when the anchor was loaded).
    pub fn certificates(&self) -> Vec<Certificate> {
        self.verification_certificates
            .iter()
            .filter_map(|pem| Certificate::from_pem(pem).ok())
            .collect()
    }
}
