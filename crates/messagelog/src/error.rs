//! The one error enum of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in the message log, its archives and their verification.
///
/// Verification failures of evidence are not errors: they are reported in
/// [`crate::VerifyReport`]. This enum is for I/O, configuration and misuse.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("cannot {action} {path}: {message}")]
    Io {
        action: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("index database {path}: {message}")]
    Index { path: PathBuf, message: String },
    #[error("segment {path} is not a message-log segment: {reason}")]
    BadSegment { path: PathBuf, reason: String },
    #[error("entry {sequence} in {path} at offset {offset} is damaged: {reason}")]
    DamagedEntry {
        sequence: u64,
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("cannot encode the record of message {message_id}: {message}")]
    Encode { message_id: String, message: String },
    #[error("message {message_id} has a plaintext body but the log has no body key")]
    NoBodyKey { message_id: String },
    #[error("body key {key_id}: {message}")]
    BodyKey { key_id: String, message: String },
    #[error("key file {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("append failed, the record was not logged: {reason}")]
    AppendFailed { reason: String },
    #[error("the message log is closed")]
    Closed,
    #[error("the message log is not writable after an earlier failure: {reason}")]
    NotWritable { reason: String },
    #[error("time-stamping failed: {message}")]
    Timestamp { message: String },
    #[error("archive {path}: {message}")]
    Archive { path: PathBuf, message: String },
    #[error(
        "archive {path} is sealed for an auditor's public key: give the matching private key (--unseal-with PRIVATE.pem)"
    )]
    Sealed { path: PathBuf },
    #[error("cannot seal the archive: {message}")]
    Seal { message: String },
    #[error("export: {message}")]
    Export { message: String },
    #[error("entry {sequence} is not available: {reason}")]
    Missing { sequence: u64, reason: String },
}

impl LogError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        error: std::io::Error,
    ) -> Self {
        LogError::Io {
            action,
            path: path.into(),
            message: error.to_string(),
        }
    }

    pub(crate) fn index(path: impl Into<PathBuf>, error: impl std::fmt::Display) -> Self {
        LogError::Index {
            path: path.into(),
            message: error.to_string(),
        }
    }
}
