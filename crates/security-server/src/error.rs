use std::path::PathBuf;

/// Why the security server could not load its configuration or start.
///
/// Faults of single exchanges are not errors of this kind: they are answered to the caller as a
/// [`passerelle_ids::FaultCode`] and never stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration file has problems; all of them are listed.
    #[error("{} is invalid:\n{}", path.display(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    InvalidConfig {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
    /// A key or certificate named by the configuration could not be loaded.
    #[error("cannot load {what} from {}: {source}", path.display())]
    Credential {
        what: &'static str,
        path: PathBuf,
        source: passerelle_pki::PkiError,
    },
    /// A key and certificate do not belong together, or a certificate is unusable.
    #[error("{what}: {reason}")]
    BadCredential { what: String, reason: String },
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    /// A TLS configuration could not be built.
    #[error("tls setup for {what}: {source}")]
    Tls {
        what: &'static str,
        source: rustls::Error,
    },
}

/// One problem of a configuration file: the key (dotted path) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}
