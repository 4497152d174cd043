//! The one error enum of the global configuration: parsing, verification, fetching, caching and
//! registration requests.

use std::path::PathBuf;

/// Why a global configuration, an anchor or a registration request was not accepted, or why no
/// valid configuration is available.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfError {
    /// A file could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON document (configuration, anchor, request) does not parse.
    #[error("invalid {what}: {source}")]
    Json {
        /// Which document.
        what: &'static str,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// A document parses but breaks a rule of its format.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which document.
        what: &'static str,
        /// The broken rule.
        reason: String,
    },
    /// The anchor holds no verification certificate that is valid now for configuration signing.
    #[error("no anchor certificate is valid for configuration signing at {at}: {reasons}")]
    NoUsableAnchorCertificate {
        /// The verification time (RFC 3339).
        at: String,
        /// Why each certificate was set aside.
        reasons: String,
    },
    /// The detached signature does not verify with any certificate of the anchor.
    #[error("configuration signature does not verify with any anchor certificate ({tried} tried)")]
    BadSignature {
        /// How many usable anchor certificates were tried.
        tried: usize,
    },
    /// The configuration belongs to another instance than the anchor.
    #[error("configuration is for instance {found}, the anchor is for instance {expected}")]
    WrongInstance {
        /// The anchor's instance.
        expected: String,
        /// The configuration's instance.
        found: String,
    },
    /// The configuration's serial is lower than one already accepted (a replay or a rollback).
    #[error("configuration serial {received} is lower than the accepted serial {accepted}")]
    SerialWentBack {
        /// The serial of the configuration already accepted.
        accepted: u64,
        /// The serial that was offered.
        received: u64,
    },
    /// The configuration's validity has ended.
    #[error("global configuration serial {serial} expired at {expired_at}")]
    Expired {
        /// The serial of the expired configuration.
        serial: u64,
        /// When it expired (RFC 3339).
        expired_at: String,
    },
    /// No configuration was ever downloaded and none is cached.
    #[error("no global configuration has been downloaded yet{}", last_error.as_ref().map(|e| format!(" (last error: {e})")).unwrap_or_default())]
    NeverDownloaded {
        /// The last download or verification error, if any.
        last_error: Option<String>,
    },
    /// Downloading failed (connection, timeout, HTTP status, size).
    #[error("cannot download {url}: {reason}")]
    Fetch {
        /// What was being downloaded.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// A key or certificate operation failed.
    #[error(transparent)]
    Pki(#[from] passerelle_pki::PkiError),
    /// A registration request was refused.
    #[error("registration request rejected: {reason}")]
    RequestRejected {
        /// Why, in words an operator can act on.
        reason: String,
    },
}

impl ConfError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConfError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        ConfError::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn rejected(reason: impl Into<String>) -> Self {
        ConfError::RequestRejected {
            reason: reason.into(),
        }
    }
}
