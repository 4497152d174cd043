//! Certificate path validation against explicit trust anchors at an explicit time.
//!
//! There is no system trust store: trust comes only from the anchors the caller passes, which
//! come from the verified global configuration.

use std::time::SystemTime;

use crate::Certificate;
use crate::certificate::{IssuerSignature, KeyUsageBit};

/// Paths longer than this (leaf, intermediates and anchor) are refused; real federations use 2 or 3.
pub const MAX_CHAIN_LENGTH: usize = 8;

/// What the leaf certificate of a chain is going to be used for; each purpose has its own
/// requirements on the leaf's key usage (KU) and extended key usage (EKU):
///
/// | purpose | leaf must have |
/// |---|---|
/// | [`Purpose::TlsAuth`] | KU digitalSignature, EKU serverAuth **and** clientAuth (servers are both in mutual TLS) |
/// | [`Purpose::Signing`] | KU digitalSignature or nonRepudiation (member signing certificates carry both) |
/// | [`Purpose::ConfigSigning`] | KU digitalSignature |
/// | [`Purpose::OcspSigning`] | EKU id-kp-OCSPSigning |
/// | [`Purpose::TimeStamping`] | EKU id-kp-timeStamping as its only purpose, in a critical extension (RFC 3161 §2.3) |
///
/// Whatever the purpose, every certificate above the leaf must have basicConstraints `CA:TRUE`
/// and KU keyCertSign, and respect every pathLenConstraint above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A security server's TLS authentication certificate.
    TlsAuth,
    /// A member's message-signing certificate.
    Signing,
    /// The central server's global configuration signing certificate.
    ConfigSigning,
    /// A delegated OCSP responder's certificate.
    OcspSigning,
    /// A time-stamping authority's certificate.
    TimeStamping,
}

/// Why a certificate chain is not valid. Each variant names the certificate concerned by its
/// subject and lowercase hex SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The certificate's validity ended before `now`.
    #[error("certificate {subject} ({fingerprint}) expired at {}", format_time(*not_after))]
    Expired {
        /// Subject of the certificate concerned.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// Its notAfter.
        not_after: SystemTime,
    },
    /// The certificate's validity starts after `now`.
    #[error("certificate {subject} ({fingerprint}) is not valid before {}", format_time(*not_before))]
    NotYetValid {
        /// Subject of the certificate concerned.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// Its notBefore.
        not_before: SystemTime,
    },
    /// No given intermediate or anchor has the certificate's issuer name (and key identifier).
    #[error("no issuer {issuer} found for certificate {subject} ({fingerprint})")]
    IssuerNotFound {
        /// Subject of the certificate whose issuer is missing.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// The issuer name it asks for.
        issuer: String,
    },
    /// The chain ends at a self-issued certificate that is not one of the trust anchors.
    #[error("root certificate {subject} ({fingerprint}) is not a trust anchor")]
    UntrustedRoot {
        /// Subject of the untrusted root.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
    },
    /// The certificate's signature does not verify with its issuer's key.
    #[error(
        "signature of certificate {subject} ({fingerprint}) does not verify with the key of {issuer}"
    )]
    BadSignature {
        /// Subject of the certificate whose signature is bad.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// Subject of the issuer whose key was used.
        issuer: String,
    },
    /// The certificate is signed with an algorithm, or by a key, that Passerelle does not verify.
    #[error("certificate {subject} ({fingerprint}) uses an unsupported signature: {reason}")]
    UnsupportedSignature {
        /// Subject of the certificate concerned.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// The algorithm or key at fault.
        reason: String,
    },
    /// The certificate issued another one but is not a CA (no basicConstraints `CA:TRUE`).
    #[error("certificate {subject} ({fingerprint}) issued a certificate but is not a ca")]
    NotACa {
        /// Subject of the certificate concerned.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
    },
    /// More intermediate CAs sit below this CA than its pathLenConstraint allows.
    #[error(
        "ca {subject} ({fingerprint}) allows {path_len} intermediate ca(s) below it, the chain has {below}"
    )]
    PathLengthExceeded {
        /// Subject of the constraining CA.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// Its pathLenConstraint.
        path_len: u32,
        /// Intermediate CAs found below it.
        below: usize,
    },
    /// The key usage extension lacks what the certificate's role needs.
    #[error("certificate {subject} ({fingerprint}) lacks key usage {required}")]
    MissingKeyUsage {
        /// Subject of the certificate concerned.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// What was required.
        required: &'static str,
    },
    /// The extended key usage extension lacks what the purpose needs.
    #[error("certificate {subject} ({fingerprint}) lacks extended key usage {required}")]
    MissingExtendedKeyUsage {
        /// Subject of the certificate concerned.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// What was required.
        required: &'static str,
    },
    /// A critical extension this crate does not understand (RFC 5280 requires rejecting it).
    #[error("certificate {subject} ({fingerprint}) has unhandled critical extension {oid}")]
    UnhandledCriticalExtension {
        /// Subject of the certificate concerned.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// The extension's OID.
        oid: String,
    },
    /// No valid path of at most [`MAX_CHAIN_LENGTH`] certificates reaches an anchor.
    #[error("chain from certificate {subject} ({fingerprint}) is longer than {max} certificates")]
    ChainTooLong {
        /// Subject of the certificate where the search stopped.
        subject: String,
        /// Its SHA-256 fingerprint.
        fingerprint: String,
        /// The limit.
        max: usize,
    },
}

impl ChainError {
    /// Subject of the certificate the error concerns.
    pub fn subject(&self) -> &str {
        match self {
            ChainError::Expired { subject, .. }
            | ChainError::NotYetValid { subject, .. }
            | ChainError::IssuerNotFound { subject, .. }
            | ChainError::UntrustedRoot { subject, .. }
            | ChainError::BadSignature { subject, .. }
            | ChainError::UnsupportedSignature { subject, .. }
            | ChainError::NotACa { subject, .. }
            | ChainError::PathLengthExceeded { subject, .. }
            | ChainError::MissingKeyUsage { subject, .. }
            | ChainError::MissingExtendedKeyUsage { subject, .. }
            | ChainError::UnhandledCriticalExtension { subject, .. }
            | ChainError::ChainTooLong { subject, .. } => subject,
        }
    }

    /// Lowercase hex SHA-256 fingerprint of the certificate the error concerns.
    pub fn fingerprint(&self) -> &str {
        match self {
            ChainError::Expired { fingerprint, .. }
            | ChainError::NotYetValid { fingerprint, .. }
            | ChainError::IssuerNotFound { fingerprint, .. }
            | ChainError::UntrustedRoot { fingerprint, .. }
            | ChainError::BadSignature { fingerprint, .. }
            | ChainError::UnsupportedSignature { fingerprint, .. }
            | ChainError::NotACa { fingerprint, .. }
            | ChainError::PathLengthExceeded { fingerprint, .. }
            | ChainError::MissingKeyUsage { fingerprint, .. }
            | ChainError::MissingExtendedKeyUsage { fingerprint, .. }
            | ChainError::UnhandledCriticalExtension { fingerprint, .. }
            | ChainError::ChainTooLong { fingerprint, .. } => fingerprint,
        }
    }
}

/// Builds and checks a path from `leaf` to one of `anchors` at time `now`, returning it leaf
/// first and anchor last.
///
/// - An anchor is trusted by exact DER match; it may be a root or an intermediate. If `leaf`
///   itself is an anchor, the path is just `[leaf]`.
/// - Issuers are looked up among `anchors` then `intermediates` by subject name (DER equality
///   with the child's issuer name) and, when both carry one, by authority/subject key
///   identifier. When several candidates match (key rollover), each is tried in turn and the
///   first one's error is reported if none works.
/// - Each link's signature is verified with ring: ECDSA P-256/P-384 (SHA-256/384), RSA PKCS#1
///   v1.5 and PSS (SHA-256/384/512, 2048–8192 bits), Ed25519.
/// - Every certificate in the path, anchor included, must be valid at `now` and have no
///   critical extension this crate does not handle.
/// - Every issuer must be a CA with keyCertSign, within its pathLenConstraint.
/// - The leaf must fit `purpose` (see [`Purpose`]).
pub fn validate_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    now: SystemTime,
    purpose: Purpose,
) -> Result<Vec<Certificate>, ChainError> {
    check_purpose(leaf, purpose)?;
    check_certificate(leaf, now)?;
    let mut path = vec![leaf.clone()];
    let search = Search {
        intermediates,
        anchors,
        now,
    };
    search.extend(&mut path)?;
    Ok(path)
}

struct Search<'a> {
    intermediates: &'a [Certificate],
    anchors: &'a [Certificate],
    now: SystemTime,
}

impl Search<'_> {
    /// Extends `path` (whose last certificate is already checked) up to an anchor.
    fn extend(&self, path: &mut Vec<Certificate>) -> Result<(), ChainError> {
        let Some(current) = path.last().cloned() else {
            return Ok(());
        };
        if self.anchors.contains(&current) {
            return Ok(());
        }
        if path.len() >= MAX_CHAIN_LENGTH {
            return Err(ChainError::ChainTooLong {
                subject: current.subject(),
                fingerprint: current.fingerprint_hex(),
                max: MAX_CHAIN_LENGTH,
            });
        }
        let candidates: Vec<&Certificate> = self
            .anchors
            .iter()
            .chain(self.intermediates)
            .filter(|candidate| could_have_issued(candidate, &current))
            .filter(|candidate| !path.contains(candidate))
            .collect();
        if candidates.is_empty() {
            return Err(if current.is_self_issued() {
                ChainError::UntrustedRoot {
                    subject: current.subject(),
                    fingerprint: current.fingerprint_hex(),
                }
            } else {
                ChainError::IssuerNotFound {
                    subject: current.subject(),
                    fingerprint: current.fingerprint_hex(),
                    issuer: current.issuer(),
                }
            });
        }
        let mut first_error = None;
        for issuer in candidates {
            match self.link(path, &current, issuer) {
                Ok(()) => return Ok(()),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        Err(first_error.unwrap_or_else(|| ChainError::IssuerNotFound {
            subject: current.subject(),
            fingerprint: current.fingerprint_hex(),
            issuer: current.issuer(),
        }))
    }

    fn link(
        &self,
        path: &mut Vec<Certificate>,
        child: &Certificate,
        issuer: &Certificate,
    ) -> Result<(), ChainError> {
        child
            .verify_issued_by(issuer)
            .map_err(|failure| match failure {
                IssuerSignature::Bad => ChainError::BadSignature {
                    subject: child.subject(),
                    fingerprint: child.fingerprint_hex(),
                    issuer: issuer.subject(),
                },
                IssuerSignature::UnsupportedAlgorithm(reason) => ChainError::UnsupportedSignature {
                    subject: child.subject(),
                    fingerprint: child.fingerprint_hex(),
                    reason,
                },
            })?;
        check_certificate(issuer, self.now)?;
        // path[1..] are the CAs already below `issuer`; self-issued ones do not count (RFC 5280
        // §6.1.4 (l)).
        let below = path
            .iter()
            .skip(1)
            .filter(|ca| !ca.is_self_issued())
            .count();
        check_ca(issuer, below)?;
        path.push(issuer.clone());
        let result = self.extend(path);
        if result.is_err() {
            path.pop();
        }
        result
    }
}

fn could_have_issued(candidate: &Certificate, child: &Certificate) -> bool {
    if candidate.subject_der() != child.issuer_der() {
        return false;
    }
    match (&child.authority_key_id, &candidate.subject_key_id) {
        (Some(authority), Some(subject)) => authority == subject,
        _ => true,
    }
}

fn check_certificate(certificate: &Certificate, now: SystemTime) -> Result<(), ChainError> {
    if now < certificate.not_before() {
        return Err(ChainError::NotYetValid {
            subject: certificate.subject(),
            fingerprint: certificate.fingerprint_hex(),
            not_before: certificate.not_before(),
        });
    }
    if now > certificate.not_after() {
        return Err(ChainError::Expired {
            subject: certificate.subject(),
            fingerprint: certificate.fingerprint_hex(),
            not_after: certificate.not_after(),
        });
    }
    if let Some(oid) = certificate.unhandled_critical_extensions.first() {
        return Err(ChainError::UnhandledCriticalExtension {
            subject: certificate.subject(),
            fingerprint: certificate.fingerprint_hex(),
            oid: oid.clone(),
        });
    }
    Ok(())
}

fn check_ca(issuer: &Certificate, below: usize) -> Result<(), ChainError> {
    let Some(constraints) = issuer
        .basic_constraints
        .filter(|constraints| constraints.ca)
    else {
        return Err(ChainError::NotACa {
            subject: issuer.subject(),
            fingerprint: issuer.fingerprint_hex(),
        });
    };
    if !issuer.has_key_usage(KeyUsageBit::KeyCertSign) {
        return Err(ChainError::MissingKeyUsage {
            subject: issuer.subject(),
            fingerprint: issuer.fingerprint_hex(),
            required: "keyCertSign",
        });
    }
    if let Some(path_len) = constraints.path_len
        && usize::try_from(path_len).is_ok_and(|allowed| below > allowed)
    {
        return Err(ChainError::PathLengthExceeded {
            subject: issuer.subject(),
            fingerprint: issuer.fingerprint_hex(),
            path_len,
            below,
        });
    }
    Ok(())
}

fn check_purpose(leaf: &Certificate, purpose: Purpose) -> Result<(), ChainError> {
    let missing_key_usage = |required| ChainError::MissingKeyUsage {
        subject: leaf.subject(),
        fingerprint: leaf.fingerprint_hex(),
        required,
    };
    let missing_extended_key_usage = |required| ChainError::MissingExtendedKeyUsage {
        subject: leaf.subject(),
        fingerprint: leaf.fingerprint_hex(),
        required,
    };
    let eku = leaf.extended_key_usage;
    match purpose {
        Purpose::TlsAuth => {
            if !leaf.has_key_usage(KeyUsageBit::DigitalSignature) {
                return Err(missing_key_usage("digitalSignature"));
            }
            if !eku.is_some_and(|eku| eku.server_auth && eku.client_auth) {
                return Err(missing_extended_key_usage("serverAuth and clientAuth"));
            }
        }
        Purpose::Signing => {
            if !leaf.has_key_usage(KeyUsageBit::DigitalSignature)
                && !leaf.has_key_usage(KeyUsageBit::NonRepudiation)
            {
                return Err(missing_key_usage("digitalSignature or nonRepudiation"));
            }
        }
        Purpose::ConfigSigning => {
            if !leaf.has_key_usage(KeyUsageBit::DigitalSignature) {
                return Err(missing_key_usage("digitalSignature"));
            }
        }
        Purpose::OcspSigning => {
            if !eku.is_some_and(|eku| eku.ocsp_signing) {
                return Err(missing_extended_key_usage("id-kp-OCSPSigning"));
            }
        }
        Purpose::TimeStamping => {
            if !eku.is_some_and(|eku| {
                eku.critical && eku.time_stamping && !eku.others_than_time_stamping
            }) {
                return Err(missing_extended_key_usage(
                    "id-kp-timeStamping (alone, in a critical extension)",
                ));
            }
        }
    }
    Ok(())
}

/// RFC 3339 in UTC, or seconds since the epoch if the time is out of the calendar's range.
pub(crate) fn format_time(time: SystemTime) -> String {
    let seconds = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|datetime| {
            datetime
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{seconds} seconds after 1970-01-01"))
}
