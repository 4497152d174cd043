use passerelle_ids::FaultCode;

/// The JSON body of every fault a gateway raises itself:
/// `{"type": "<code>", "message": "...", "detail": "<correlation id>"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The fault code, as in `X-Road-Error`.
    #[serde(rename = "type")]
    pub fault: FaultCode,
    /// A sentence for the caller; never internal host names or stack traces.
    pub message: String,
    /// A correlation id that also appears in the gateway's log line for this fault.
    pub detail: String,
}

impl ErrorBody {
    /// A body for `fault` with the given caller-facing message and correlation id.
    pub fn new(fault: FaultCode, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            fault,
            message: message.into(),
            detail: detail.into(),
        }
    }

    /// The JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings into a Vec cannot fail; fall back to a fixed body anyway.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"type":"Server.ClientProxy.InternalError","message":"","detail":""}"#.to_vec()
        })
    }

    /// Parses a body; `None` when the bytes are not an error body.
    pub fn from_json(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_the_documented_field_names() {
        let body = ErrorBody::new(FaultCode::ServerProxyAccessDenied, "no access", "c0ffee");
        let json: serde_json::Value = serde_json::from_slice(&body.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "Server.ServerProxy.AccessDenied", "message": "no access", "detail": "c0ffee"})
        );
        assert_eq!(ErrorBody::from_json(&body.to_json()), Some(body));
        assert_eq!(
            ErrorBody::from_json(b"{\"type\":\"Nope\",\"message\":\"\",\"detail\":\"\"}"),
            None
        );
    }
}
