//! Registration requests: how a security server asks the central server to register its
//! authentication certificate, a client subsystem, or its service descriptors. Both sides use
//! these functions, so what a server signs is exactly what the central server verifies.
//!
//! A [`SignedRequest`] carries the request as JSON text and detached signatures over its exact
//! UTF-8 bytes, each with the signer's certificate chain (leaf first). Who must sign:
//!
//! | request | signatures required |
//! |---|---|
//! | [`RequestAction::AuthCertificate`] | the auth key being registered **and** the server owner's signing key |
//! | [`RequestAction::Client`] | the client's member signing key **and** the server owner's (one signature when they are the same member) |
//! | [`RequestAction::ServicePublication`] | the provider member's signing key |
//!
//! Every certificate must chain to an approved CA at the time of verification: auth
//! certificates for TLS authentication, member certificates for signing, with the member
//! identifier in the subject's serialNumber.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use passerelle_ids::{MemberId, SecurityServerId, SubsystemId};
use passerelle_pki::{Certificate, Purpose, SigningKey, validate_chain};
use serde::{Deserialize, Serialize};

use crate::error::ConfError;
use crate::model::{CertHash, ServiceDescriptor};
use crate::timefmt::rfc3339;

/// A request as submitted to the central server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    /// A [`RegistrationRequest`] as JSON text; the signatures cover exactly its UTF-8 bytes.
    pub request: String,
    pub signatures: Vec<RequestSignature>,
}

/// One detached signature over [`SignedRequest::request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSignature {
    pub signer: SignerRole,
    /// The signer's certificate, then any intermediates, PEM, one per entry.
    pub certificate_chain: Vec<String>,
    /// Base64 of the DER signature.
    pub signature: String,
}

/// Which key made a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignerRole {
    /// A security server's authentication (TLS) key.
    AuthKey,
    /// A member's signing key.
    Member,
}

/// What is asked, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    #[serde(with = "rfc3339")]
    pub created_at: SystemTime,
    pub action: RequestAction,
}

/// The three kinds of request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RequestAction {
    /// Register (or add, for rollover) a security server's authentication certificate.
    AuthCertificate {
        server: SecurityServerId,
        /// `host:port` of the server's server-to-server listener.
        address: String,
        /// The authentication certificate, PEM.
        certificate: String,
    },
    /// Register `client` as hosted on `server`.
    Client {
        server: SecurityServerId,
        client: SubsystemId,
    },
    /// Publish (replace) the service descriptors of `provider`.
    ServicePublication {
        provider: SubsystemId,
        services: Vec<ServiceDescriptor>,
    },
}

/// A key and its certificate chain (leaf first), to sign a request with.
pub struct RequestSigner<'a> {
    pub role: SignerRole,
    pub key: &'a SigningKey,
    pub chain: &'a [Certificate],
}

/// A request whose signatures all verified and whose required signers are present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    pub request: RegistrationRequest,
    /// The members whose signing keys signed it.
    pub signed_by: Vec<MemberId>,
    /// For an auth-certificate request: the hash of the certificate to register.
    pub auth_cert_hash: Option<CertHash>,
}

impl SignedRequest {
    /// Serializes `request` and signs it with every signer.
    pub fn sign(
        request: &RegistrationRequest,
        signers: &[RequestSigner<'_>],
    ) -> Result<Self, ConfError> {
        let text = serde_json::to_string(request).map_err(|source| ConfError::Json {
            what: "registration request",
            source,
        })?;
        let mut signatures = Vec::with_capacity(signers.len());
        for signer in signers {
            signatures.push(RequestSignature {
                signer: signer.role,
                certificate_chain: signer.chain.iter().map(Certificate::to_pem).collect(),
                signature: STANDARD.encode(signer.key.sign(text.as_bytes())?),
            });
        }
        Ok(Self {
            request: text,
            signatures,
        })
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfError> {
        serde_json::from_slice(bytes).map_err(|source| ConfError::Json {
            what: "signed request",
            source,
        })
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Strings only: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The request, parsed but not verified (to show it to an officer, for example).
    pub fn parsed(&self) -> Result<RegistrationRequest, ConfError> {
        serde_json::from_str(&self.request).map_err(|source| ConfError::Json {
            what: "registration request",
            source,
        })
    }

    /// Verifies every signature and certificate chain against the approved CAs (`roots` and
    /// `intermediates`) at `now`, and that the required signers (see the module documentation)
    /// are present.
    pub fn verify(
        &self,
        roots: &[Certificate],
        intermediates: &[Certificate],
        now: SystemTime,
    ) -> Result<VerifiedRequest, ConfError> {
        let request = self.parsed()?;
        let mut auth_signers = Vec::new();
        let mut signed_by = Vec::new();
        for (index, signature) in self.signatures.iter().enumerate() {
            let leaf = verify_one(
                index,
                signature,
                self.request.as_bytes(),
                roots,
                intermediates,
                now,
            )?;
            match signature.signer {
                SignerRole::AuthKey => auth_signers.push(leaf),
                SignerRole::Member => signed_by.push(leaf.member_id().ok_or_else(|| {
                    ConfError::rejected(format!(
                        "signature {index}: signing certificate {} names no member (subject serialNumber)",
                        leaf.subject()
                    ))
                })?),
            }
        }
        let require_member = |member: &MemberId, why: &str| {
            if signed_by.contains(member) {
                Ok(())
            } else {
                Err(ConfError::rejected(format!(
                    "not signed by {why} {member} (signed by: {})",
                    list(&signed_by)
                )))
            }
        };
        let mut auth_cert_hash = None;
        match &request.action {
            RequestAction::AuthCertificate {
                server,
                certificate,
                address,
            } => {
                if address
                    .rsplit_once(':')
                    .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
                {
                    return Err(ConfError::rejected(format!(
                        "address {address:?} is not host:port"
                    )));
                }
                let registered = Certificate::from_pem(certificate).map_err(|error| {
                    ConfError::rejected(format!("the auth certificate does not parse: {error}"))
                })?;
                validate_chain(&registered, intermediates, roots, now, Purpose::TlsAuth).map_err(
                    |error| {
                        ConfError::rejected(format!(
                            "the auth certificate is not from an approved ca: {error}"
                        ))
                    },
                )?;
                if !auth_signers.iter().any(|signer| signer == &registered) {
                    return Err(ConfError::rejected(format!(
                        "auth key mismatch: the request is not signed by the key of the auth certificate {} being registered",
                        registered.fingerprint_hex()
                    )));
                }
                require_member(server.owner(), "the server owner")?;
                auth_cert_hash = Some(CertHash::of(&registered));
            }
            RequestAction::Client { server, client } => {
                require_member(client.member(), "the client's member")?;
                require_member(server.owner(), "the server owner")?;
            }
            RequestAction::ServicePublication { provider, services } => {
                require_member(provider.member(), "the provider")?;
                if let Some(foreign) = services
                    .iter()
                    .find(|service| service.id.subsystem() != provider)
                {
                    return Err(ConfError::rejected(format!(
                        "service {} does not belong to provider {provider}",
                        foreign.id
                    )));
                }
            }
        }
        Ok(VerifiedRequest {
            request,
            signed_by,
            auth_cert_hash,
        })
    }
}

fn verify_one(
    index: usize,
    signature: &RequestSignature,
    message: &[u8],
    roots: &[Certificate],
    intermediates: &[Certificate],
    now: SystemTime,
) -> Result<Certificate, ConfError> {
    let reject = |reason: String| ConfError::rejected(format!("signature {index}: {reason}"));
    let mut chain = Vec::with_capacity(signature.certificate_chain.len());
    for pem in &signature.certificate_chain {
        chain.push(
            Certificate::from_pem(pem)
                .map_err(|error| reject(format!("bad certificate: {error}")))?,
        );
    }
    let Some((leaf, presented)) = chain.split_first() else {
        return Err(reject("no certificate".to_owned()));
    };
    let mut all_intermediates = presented.to_vec();
    all_intermediates.extend_from_slice(intermediates);
    let purpose = match signature.signer {
        SignerRole::AuthKey => Purpose::TlsAuth,
        SignerRole::Member => Purpose::Signing,
    };
    validate_chain(leaf, &all_intermediates, roots, now, purpose)
        .map_err(|error| reject(format!("certificate not from an approved ca: {error}")))?;
    let bytes = STANDARD
        .decode(&signature.signature)
        .map_err(|error| reject(format!("signature is not base64: {error}")))?;
    let algorithm = leaf.default_algorithm().ok_or_else(|| {
        reject(format!(
            "certificate {} has an unsupported key",
            leaf.subject()
        ))
    })?;
    leaf.verify_signature(algorithm, message, &bytes)
        .map_err(|error| {
            reject(format!(
                "does not verify with the key of {}: {error}",
                leaf.subject()
            ))
        })?;
    Ok(leaf.clone())
}

fn list(members: &[MemberId]) -> String {
    if members.is_empty() {
        return "nobody".to_owned();
    }
    members
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
