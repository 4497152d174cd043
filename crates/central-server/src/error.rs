//! The one error enum of the central server.

use std::path::PathBuf;

/// Why the central server could not start, store, publish or answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CentralError {
    /// The configuration file is invalid; every problem is listed, each with file and key.
    #[error("invalid configuration {}:\n  {}", path.display(), problems.join("\n  "))]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// One line per problem, `key: what is wrong`.
        problems: Vec<String>,
    },
    /// A file could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The registry database failed.
    #[error("registry database: {0}")]
    Store(#[from] sled::Error),
    /// A stored record does not decode (the database was written by another version or damaged).
    #[error("registry record {key} is corrupt: {reason}")]
    CorruptRecord {
        /// The record's key.
        key: String,
        /// What failed.
        reason: String,
    },
    /// A key, certificate or signature operation failed.
    #[error(transparent)]
    Pki(#[from] passerelle_pki::PkiError),
    /// Configuration signing, or a registration request, failed.
    #[error(transparent)]
    Conf(#[from] passerelle_globalconf::ConfError),
    /// TLS setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// A listener could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A call to the admin API failed (client side).
    #[error("admin api {method} {path}: {reason}{}", if *status == 0 { String::new() } else { format!(" (http {status})") })]
    Api {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// HTTP status, 0 when no response came.
        status: u16,
        /// The server's error message, or the transport error.
        reason: String,
    },
}

impl CentralError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CentralError::Io {
            path: path.into(),
            source,
        }
    }
}
