//! Loading keys and certificate chains named by the configuration.

use std::path::Path;

use passerelle_pki::{Certificate, SigningKey};

use crate::config::CredentialFiles;
use crate::error::ServerError;

/// A key with its certificate chain (leaf first), checked to belong together.
#[derive(Debug)]
pub struct Credential {
    pub key: SigningKey,
    pub chain: Vec<Certificate>,
}

impl Credential {
    /// Loads and checks the files.
    pub fn load(files: &CredentialFiles, what: &'static str) -> Result<Self, ServerError> {
        let key =
            SigningKey::load(&files.key).map_err(|source| credential(what, &files.key, source))?;
        let chain = Certificate::load(&files.certificate)
            .map_err(|source| credential(what, &files.certificate, source))?;
        Self::new(key, chain, what)
    }

    /// Checks an in-memory key and chain.
    pub fn new(key: SigningKey, chain: Vec<Certificate>, what: &str) -> Result<Self, ServerError> {
        let Some(leaf) = chain.first() else {
            return Err(ServerError::BadCredential {
                what: what.to_owned(),
                reason: "no certificate".to_owned(),
            });
        };
        if !leaf.matches_key(&key) {
            return Err(ServerError::BadCredential {
                what: what.to_owned(),
                reason: format!("certificate {} does not certify the key", leaf.subject()),
            });
        }
        Ok(Self { key, chain })
    }

    pub fn leaf(&self) -> Option<&Certificate> {
        self.chain.first()
    }
}

fn credential(what: &'static str, path: &Path, source: passerelle_pki::PkiError) -> ServerError {
    ServerError::Credential {
        what,
        path: path.to_path_buf(),
        source,
    }
}
