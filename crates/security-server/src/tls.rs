//! Mutual TLS 1.3 between security servers, trusting only the global configuration.
//!
//! Both verifiers accept a certificate only if it chains, at the server's clock, to an approved
//! CA of the global configuration with the TLS-authentication purpose; handshake signatures are
//! checked by rustls's own TLS 1.3 routine. The outbound verifier additionally pins the
//! provider's certificate to the SHA-256 hashes registered for that server. The inbound side
//! keeps the registration check for the HTTP layer, where it is the first provider check and can
//! answer `Server.ServerProxy.SslAuthenticationFailed` instead of a bare TLS alert.

use std::sync::Arc;

use passerelle_pki::{Certificate, Purpose, SigningKey, validate_chain};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::deps::{Clock, ConfSource};
use crate::error::ServerError;

/// ALPN protocol between security servers: HTTP/2 only.
const ALPN_H2: &[u8] = b"h2";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks a presented chain against the approved CAs of the current configuration.
struct ChainCheck {
    conf: Arc<dyn ConfSource>,
    clock: Arc<dyn Clock>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for ChainCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainCheck")
    }
}

impl ChainCheck {
    fn new(conf: Arc<dyn ConfSource>, clock: Arc<dyn Clock>) -> Self {
        Self {
            conf,
            clock,
            algorithms: provider().signature_verification_algorithms,
        }
    }

    /// Returns the leaf's SHA-256 when the chain is valid for TLS authentication.
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<[u8; 32], rustls::Error> {
        // rustls's `now` comes from its own time provider; the server's clock is the one tests pin.
        let now = self.clock.now();
        let conf = self.conf.current(now).map_err(|reason| {
            tracing::warn!(%reason, "refusing a tls peer: no valid global configuration");
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        })?;
        let leaf = Certificate::from_der(end_entity.to_vec())
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let mut pool: Vec<Certificate> = intermediates
            .iter()
            .filter_map(|der| Certificate::from_der(der.to_vec()).ok())
            .collect();
        pool.extend(conf.ca_intermediates());
        validate_chain(&leaf, &pool, &conf.ca_roots(), now, Purpose::TlsAuth).map_err(|error| {
            tracing::warn!(%error, fingerprint = %leaf.fingerprint_hex(), "refusing a tls peer certificate");
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        })?;
        Ok(leaf.sha256_fingerprint())
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

/// Accepts calling security servers whose certificates chain to an approved CA.
#[derive(Debug)]
struct PeerClientVerifier(ChainCheck);

impl ClientCertVerifier for PeerClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .check(end_entity, intermediates)
            .map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.algorithms.supported_schemes()
    }
}

/// Accepts a provider only if its certificate chains to an approved CA and is one of the
/// certificates registered for that security server.
#[derive(Debug)]
struct PinnedServerVerifier {
    check: ChainCheck,
    registered: Vec<[u8; 32]>,
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let hash = self.check.check(end_entity, intermediates)?;
        if self.registered.contains(&hash) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::warn!(fingerprint = %hex::encode(hash), "provider presented an unregistered authentication certificate");
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.check.algorithms.supported_schemes()
    }
}

/// This server's TLS authentication credential.
#[derive(Clone)]
pub(crate) struct AuthCredential {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key_pkcs8: Arc<Vec<u8>>,
    pub(crate) leaf: Certificate,
}

impl AuthCredential {
    pub(crate) fn new(key: &SigningKey, chain: &[Certificate]) -> Result<Self, ServerError> {
        let leaf = chain
            .first()
            .cloned()
            .ok_or_else(|| ServerError::BadCredential {
                what: "authentication certificate".to_owned(),
                reason: "the certificate file holds no certificate".to_owned(),
            })?;
        Ok(Self {
            chain: chain
                .iter()
                .map(|c| CertificateDer::from(c.der().to_vec()))
                .collect(),
            key_pkcs8: Arc::new(key.to_pkcs8_der()),
            leaf,
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.as_ref().clone()))
    }
}

/// The server-side (inbound) TLS configuration.
pub(crate) fn server_config(
    auth: &AuthCredential,
    conf: Arc<dyn ConfSource>,
    clock: Arc<dyn Clock>,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let verifier = Arc::new(PeerClientVerifier(ChainCheck::new(conf, clock)));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| ServerError::Tls {
            what: "server side",
            source,
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(auth.chain.clone(), auth.key())
        .map_err(|source| ServerError::Tls {
            what: "server side",
            source,
        })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The outbound TLS configuration for one provider server, pinned to its registered hashes.
pub(crate) fn client_config(
    auth: &AuthCredential,
    conf: Arc<dyn ConfSource>,
    clock: Arc<dyn Clock>,
    registered: Vec<[u8; 32]>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let verifier = Arc::new(PinnedServerVerifier {
        check: ChainCheck::new(conf, clock),
        registered,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(auth.chain.clone(), auth.key())?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.enable_sni = false;
    Ok(Arc::new(config))
}

/// The HTTPS configuration of the client-side listener (local systems), optionally requiring
/// client certificates issued by `client_cas`.
pub(crate) fn local_https_config(
    chain: &[Certificate],
    key: &SigningKey,
    client_cas: Option<&[Certificate]>,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let tls = |source| ServerError::Tls {
        what: "client-side https",
        source,
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?;
    let chain_der: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der()));
    let config = match client_cas {
        None => builder
            .with_no_client_auth()
            .with_single_cert(chain_der, key_der)
            .map_err(tls)?,
        Some(cas) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots
                    .add(CertificateDer::from(ca.der().to_vec()))
                    .map_err(tls)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|error| ServerError::Tls {
                what: "client-side https",
                source: rustls::Error::General(error.to_string()),
            })?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain_der, key_der)
                .map_err(tls)?
        }
    };
    Ok(Arc::new(config))
}
