use passerelle_ids::FaultCode;

/// Why a request, a path or an envelope does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A required header is absent.
    #[error("missing header {name}")]
    MissingHeader { name: &'static str },
    /// A header is present more than once where one value is allowed.
    #[error("header {name} appears more than once")]
    RepeatedHeader { name: &'static str },
    /// A header value is not what the protocol expects.
    #[error("invalid header {name}: {reason}")]
    InvalidHeader { name: &'static str, reason: String },
    /// A path cannot be canonicalised.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// An endpoint pattern in configuration is malformed.
    #[error("invalid endpoint pattern {pattern:?}: {reason}")]
    InvalidPattern {
        pattern: String,
        reason: &'static str,
    },
}

impl ProtocolError {
    /// The fault a consumer's security server answers a local system with for this error.
    pub fn client_fault(&self) -> FaultCode {
        match self {
            ProtocolError::MissingHeader { .. } => FaultCode::ClientMissingHeader,
            ProtocolError::RepeatedHeader { .. }
            | ProtocolError::InvalidHeader { .. }
            | ProtocolError::InvalidPath { .. }
            | ProtocolError::InvalidPattern { .. } => FaultCode::ClientBadRequest,
        }
    }
}
