use std::fmt;
use std::str::FromStr;

macro_rules! fault_codes {
    ($($variant:ident = $code:literal, $status:literal, $meaning:literal;)*) => {
        /// Every fault a Passerelle gateway can answer with: one closed enum, documented row by
        /// row in `docs/errors.md` (a test keeps the two in step).
        ///
        /// The prefix says who is at fault, as in X-Road: `Client.` for the caller's request,
        /// `Server.ClientProxy.` for the consumer's security server, `Server.ServerProxy.` for the
        /// provider's security server.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum FaultCode {
            $(#[doc = $meaning] $variant,)*
        }

        impl FaultCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [FaultCode] = &[$(FaultCode::$variant,)*];

            /// The code as it appears in `X-Road-Error` and in the JSON error body.
            pub fn code(self) -> &'static str {
                match self { $(FaultCode::$variant => $code,)* }
            }

            /// The HTTP status a gateway answers this fault with.
            pub fn http_status(self) -> u16 {
                match self { $(FaultCode::$variant => $status,)* }
            }

            /// One sentence an operator can act on.
            pub fn meaning(self) -> &'static str {
                match self { $(FaultCode::$variant => $meaning,)* }
            }
        }

        impl FromStr for FaultCode {
            type Err = UnknownFaultCode;
            fn from_str(value: &str) -> Result<Self, UnknownFaultCode> {
                match value {
                    $($code => Ok(FaultCode::$variant),)*
                    _ => Err(UnknownFaultCode(value.chars().take(200).collect())),
                }
            }
        }
    };
}

fault_codes! {
    ClientBadRequest = "Client.BadRequest", 400,
        "The request is malformed: an invalid identifier, path, header or body framing.";
    ClientMissingHeader = "Client.MissingHeader", 400,
        "A required header is absent, most often X-Road-Client.";
    ClientInvalidClient = "Client.InvalidClient", 403,
        "The caller may not act as the X-Road-Client it names: the subsystem is not hosted on this security server, or the caller's TLS certificate is not registered for it.";
    ClientInvalidHttpMethod = "Client.InvalidHttpMethod", 405,
        "The HTTP method is not one the gateway forwards.";
    ClientRequestTooLarge = "Client.RequestTooLarge", 413,
        "The request body exceeds the security server's maximum body size.";
    ClientHeadersTooLarge = "Client.HeadersTooLarge", 431,
        "The request headers exceed the security server's header size limits.";
    ClientProxyOutdatedGlobalConf = "Server.ClientProxy.OutdatedGlobalConf", 503,
        "The consumer's security server has no valid global configuration (never downloaded, or expired); it refuses to exchange until a fresh one is verified.";
    ClientProxyUnknownMember = "Server.ClientProxy.UnknownMember", 400,
        "The client or the service provider named in the request is not in the global configuration.";
    ClientProxyNoProviderServer = "Server.ClientProxy.NoProviderServer", 502,
        "No security server in the global configuration hosts the provider's subsystem (or the one pinned with X-Road-Security-Server does not).";
    ClientProxyNetworkError = "Server.ClientProxy.NetworkError", 502,
        "The provider's security server could not be reached.";
    ClientProxySslAuthenticationFailed = "Server.ClientProxy.SslAuthenticationFailed", 502,
        "The provider's security server did not present the authentication certificate registered for it in the global configuration.";
    ClientProxyTimeout = "Server.ClientProxy.Timeout", 504,
        "The provider's security server did not answer within the configured total timeout.";
    ClientProxyInvalidSignatureValue = "Server.ClientProxy.InvalidSignatureValue", 502,
        "The provider's response signature is missing, malformed or does not verify against the provider's signing certificate.";
    ClientProxyInconsistentResponse = "Server.ClientProxy.InconsistentResponse", 502,
        "The provider's response is not bound to this request (its request hash or message id differs).";
    ClientProxyResponseTooLarge = "Server.ClientProxy.ResponseTooLarge", 502,
        "The provider's response exceeds the maximum body size.";
    ClientProxyCertValidation = "Server.ClientProxy.CertValidation", 502,
        "The provider's signing certificate does not chain to an approved CA, is outside its validity period, or lacks the signing key usage.";
    ClientProxyCertificateRevoked = "Server.ClientProxy.CertificateRevoked", 502,
        "The provider's signing certificate is revoked, according to the OCSP response stapled beside its signature.";
    ClientProxyCertificateStatusUnknown = "Server.ClientProxy.CertificateStatusUnknown", 502,
        "The OCSP responder whose response the provider stapled does not know the provider's signing certificate.";
    ClientProxyCertificateStatusStale = "Server.ClientProxy.CertificateStatusStale", 502,
        "The OCSP response the provider stapled is older than the freshness the global configuration allows, or past its next update.";
    ClientProxyInvalidCertificateStatus = "Server.ClientProxy.InvalidCertificateStatus", 502,
        "The OCSP response the provider stapled is missing or malformed, answers for another certificate, or is not signed by the issuing CA or a responder it delegated.";
    ClientProxyCertificateStatusUnavailable = "Server.ClientProxy.CertificateStatusUnavailable", 503,
        "The consumer's security server has no fresh OCSP response for its own certificates (the responder has been unreachable for longer than the freshness allows); it refuses to exchange until it gets one.";
    ClientProxyLoggingFailed = "Server.ClientProxy.LoggingFailed", 500,
        "The consumer's security server could not make the exchange's log record durable, so it does not answer.";
    ClientProxyTimestamperFailed = "Server.ClientProxy.LoggingFailed.TimestamperFailed", 500,
        "No time-stamping authority has answered for longer than the grace period; exchanges stop until the log can be time-stamped again.";
    ClientProxyTooManyConnections = "Server.ClientProxy.TooManyConnections", 503,
        "The security server already serves its maximum number of concurrent connections from local systems; retry later or raise max_connections.";
    ClientProxyInternalError = "Server.ClientProxy.InternalError", 500,
        "An unexpected failure inside the consumer's security server; the detail field correlates it with the server's log.";
    ServerProxySslAuthenticationFailed = "Server.ServerProxy.SslAuthenticationFailed", 403,
        "The calling security server's TLS certificate is not the authentication certificate registered for it in the global configuration.";
    ServerProxyInvalidSecurityServer = "Server.ServerProxy.InvalidSecurityServer", 403,
        "The calling security server does not host the client it claims to be calling for.";
    ServerProxyUnknownService = "Server.ServerProxy.UnknownService", 404,
        "The provider's security server does not know this service.";
    ServerProxyServiceDisabled = "Server.ServerProxy.ServiceDisabled", 503,
        "The service exists but is disabled on the provider's security server.";
    ServerProxyAccessDenied = "Server.ServerProxy.AccessDenied", 403,
        "The client has no access right to this service, or to this method and canonical path of it.";
    ServerProxyInvalidSignatureValue = "Server.ServerProxy.InvalidSignatureValue", 400,
        "The request signature is missing, malformed or does not verify against the client member's signing certificate.";
    ServerProxyCertValidation = "Server.ServerProxy.CertValidation", 400,
        "The client member's signing certificate does not chain to an approved CA, is outside its validity period, or lacks the signing key usage.";
    ServerProxyCertificateRevoked = "Server.ServerProxy.CertificateRevoked", 403,
        "The client member's signing certificate is revoked, according to the OCSP response stapled beside its signature.";
    ServerProxyCertificateStatusUnknown = "Server.ServerProxy.CertificateStatusUnknown", 403,
        "The OCSP responder whose response the client stapled does not know the client member's signing certificate.";
    ServerProxyCertificateStatusStale = "Server.ServerProxy.CertificateStatusStale", 400,
        "The OCSP response the client stapled is older than the freshness the global configuration allows, or past its next update.";
    ServerProxyInvalidCertificateStatus = "Server.ServerProxy.InvalidCertificateStatus", 400,
        "The OCSP response the client stapled is missing or malformed, answers for another certificate, or is not signed by the issuing CA or a responder it delegated.";
    ServerProxyCertificateStatusUnavailable = "Server.ServerProxy.CertificateStatusUnavailable", 503,
        "The provider's security server has no fresh OCSP response for its own certificates (the responder has been unreachable for longer than the freshness allows); it refuses to exchange until it gets one.";
    ServerProxyInvalidSigningTime = "Server.ServerProxy.InvalidSigningTime", 400,
        "The request's signing time is outside the allowed clock skew.";
    ServerProxyDuplicateMessage = "Server.ServerProxy.DuplicateMessage", 409,
        "A request with this message id was already accepted from this client: a replay.";
    ServerProxyBadRequest = "Server.ServerProxy.BadRequest", 400,
        "The calling security server sent a request that does not follow the server-to-server protocol.";
    ServerProxyRequestTooLarge = "Server.ServerProxy.RequestTooLarge", 413,
        "The forwarded request body exceeds the provider's maximum body size.";
    ServerProxyServiceFailed = "Server.ServerProxy.ServiceFailed", 502,
        "The provider's backend could not be reached or broke the connection.";
    ServerProxyServiceTimeout = "Server.ServerProxy.ServiceTimeout", 504,
        "The provider's backend did not answer within the service's timeout.";
    ServerProxyOutdatedGlobalConf = "Server.ServerProxy.OutdatedGlobalConf", 503,
        "The provider's security server has no valid global configuration; it refuses to exchange.";
    ServerProxyLoggingFailed = "Server.ServerProxy.LoggingFailed", 500,
        "The provider's security server could not make the exchange's log record durable.";
    ServerProxyTimestamperFailed = "Server.ServerProxy.LoggingFailed.TimestamperFailed", 500,
        "No time-stamping authority has answered the provider's security server for longer than the grace period, or an immediately time-stamped service could not be stamped; exchanges stop until the log can be time-stamped again.";
    ServerProxyInternalError = "Server.ServerProxy.InternalError", 500,
        "An unexpected failure inside the provider's security server; the detail field correlates it with the server's log.";
}

impl fmt::Display for FaultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A string that is not one of the documented fault codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault code {0:?}")]
pub struct UnknownFaultCode(pub String);

impl serde::Serialize for FaultCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for FaultCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_statuses_follow_the_prefix() {
        for &fault in FaultCode::ALL {
            assert_eq!(fault.code().parse::<FaultCode>(), Ok(fault));
            let status = fault.http_status();
            if fault.code().starts_with("Client.") {
                assert!((400..500).contains(&status), "{fault}: {status}");
            } else {
                assert!(
                    fault.code().starts_with("Server.ClientProxy.")
                        || fault.code().starts_with("Server.ServerProxy."),
                    "{fault}"
                );
                assert!((400..600).contains(&status), "{fault}: {status}");
            }
        }
        assert!("Server.Nope".parse::<FaultCode>().is_err());
    }
}
