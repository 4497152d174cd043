//! Certificate status (OCSP, RFC 6960) in the security server, DESIGN §2.4.
//!
//! - [`OwnStatuses`] keeps an OCSP response for each of this server's own certificates (the TLS
//!   authentication certificate and every member's signing certificate), fetched from the
//!   responders the global configuration names for the issuing CA, refreshed at half the
//!   freshness, and stapled to what this server sends. When it has no fresh good response for a
//!   certificate, that certificate's exchanges fail closed with `CertificateStatusUnavailable`.
//! - [`StatusVerifier`] checks the responses peers staple, with `passerelle_pki::ocsp::verify`
//!   (issuer from the approved CA, freshness from the global configuration), and remembers the
//!   good ones so that the same staple is verified once per configuration.
//!
//! Policy for a CA approved without any OCSP responder URL: the central registry has said that
//! its certificates carry no status, so none is fetched, stapled or required for them (logged
//! once per refresh). Everything else fails closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use passerelle_globalconf::{ApprovedCa, GlobalConf};
use passerelle_ids::{FaultCode, MemberId};
use passerelle_pki::Certificate;
use passerelle_pki::ocsp::{OcspError, VerifiedStatus};

use crate::http_util::Fault;
use crate::trust_client::{Limits, fetch_ocsp_response};

/// Which security server refuses a peer's certificate status: it decides the fault code's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verifier {
    /// The consumer's server, checking the provider's staples.
    Consumer,
    /// The provider's server, checking the client's staples.
    Provider,
}

/// Why a peer's stapled certificate status is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StatusProblem {
    /// The certificate's CA has OCSP responders but nothing was stapled.
    Missing { certificate: String },
    /// The certificate was not issued by a CA of the global configuration.
    IssuerNotApproved { certificate: String },
    /// `passerelle_pki::ocsp::verify` refused the stapled response.
    Refused(OcspError),
}

/// The fault code suffix of each problem; one exhaustive match, no wildcard, so that a new
/// `OcspError` variant must be given its code here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Revoked,
    Unknown,
    Stale,
    Invalid,
}

fn kind(error: &OcspError) -> Kind {
    match error {
        OcspError::Revoked { .. } => Kind::Revoked,
        OcspError::Unknown { .. } => Kind::Unknown,
        OcspError::Stale { .. } => Kind::Stale,
        OcspError::NotYetValid { .. }
        | OcspError::BadResponderSignature { .. }
        | OcspError::UnauthorizedResponder { .. }
        | OcspError::CertIdMismatch { .. }
        | OcspError::WrongIssuer { .. }
        | OcspError::Malformed { .. }
        | OcspError::ResponderError { .. } => Kind::Invalid,
    }
}

impl StatusProblem {
    /// The fault code `verifier` answers with.
    pub(crate) fn code(&self, verifier: Verifier) -> FaultCode {
        let kind = match self {
            StatusProblem::Missing { .. } | StatusProblem::IssuerNotApproved { .. } => {
                Kind::Invalid
            }
            StatusProblem::Refused(error) => kind(error),
        };
        match (verifier, kind) {
            (Verifier::Consumer, Kind::Revoked) => FaultCode::ClientProxyCertificateRevoked,
            (Verifier::Consumer, Kind::Unknown) => FaultCode::ClientProxyCertificateStatusUnknown,
            (Verifier::Consumer, Kind::Stale) => FaultCode::ClientProxyCertificateStatusStale,
            (Verifier::Consumer, Kind::Invalid) => FaultCode::ClientProxyInvalidCertificateStatus,
            (Verifier::Provider, Kind::Revoked) => FaultCode::ServerProxyCertificateRevoked,
            (Verifier::Provider, Kind::Unknown) => FaultCode::ServerProxyCertificateStatusUnknown,
            (Verifier::Provider, Kind::Stale) => FaultCode::ServerProxyCertificateStatusStale,
            (Verifier::Provider, Kind::Invalid) => FaultCode::ServerProxyInvalidCertificateStatus,
        }
    }

    /// The fault `verifier` answers with; `what` names the certificate ("signing", "authentication").
    pub(crate) fn fault(&self, verifier: Verifier, what: &str) -> Fault {
        let message = match self {
            StatusProblem::Missing { certificate } => {
                format!("no ocsp response stapled for the {what} certificate {certificate}")
            }
            StatusProblem::IssuerNotApproved { certificate } => {
                format!("the {what} certificate {certificate} is not issued by an approved ca")
            }
            StatusProblem::Refused(error) => format!("{what} certificate status: {error}"),
        };
        Fault::new(self.code(verifier), message)
    }
}

/// The approved CA certificate that issued `certificate` (name match and signature), with the
/// approved CA it belongs to.
pub(crate) fn approved_issuer<'a>(
    conf: &'a GlobalConf,
    certificate: &Certificate,
) -> Option<(Certificate, &'a ApprovedCa)> {
    conf.approved_cas.iter().find_map(|ca| {
        ca.certificates
            .iter()
            .chain(&ca.intermediates)
            .filter_map(|pem| Certificate::from_pem(pem).ok())
            // Building a request checks that `issuer` really signed `certificate`, which tells
            // apart two CA certificates with the same name (a key rollover).
            .find(|issuer| {
                certificate.issuer_der() == issuer.subject_der()
                    && passerelle_pki::ocsp::request(certificate, issuer).is_ok()
            })
            .map(|issuer| (issuer, ca))
    })
}

/// The two responses this server staples to a message: its signer's beside the signature, its
/// server's for the TLS connection (each absent when that certificate's CA has no responder).
pub(crate) struct OwnStaples {
    pub(crate) signer: Option<Arc<Staple>>,
    pub(crate) auth: Option<Arc<Staple>>,
}

/// One of this server's OCSP responses, with the header value that staples it, encoded once
/// per refresh rather than for every message.
#[derive(Debug)]
pub(crate) struct Staple {
    pub(crate) der: Vec<u8>,
    header: Option<http::HeaderValue>,
}

impl Staple {
    fn new(der: Vec<u8>) -> Self {
        Staple {
            header: passerelle_protocol::envelope::certificate_status_value(&der),
            der,
        }
    }
}

impl OwnStaples {
    /// Writes both as `X-Passerelle-*-Certificate-Status` headers.
    pub(crate) fn write(&self, headers: &mut http::HeaderMap) {
        use passerelle_protocol::envelope::{
            AUTH_CERTIFICATE_STATUS, SIGNER_CERTIFICATE_STATUS, set_certificate_status,
        };
        for (name, staple) in [
            (SIGNER_CERTIFICATE_STATUS, &self.signer),
            (AUTH_CERTIFICATE_STATUS, &self.auth),
        ] {
            let value = staple.as_ref().and_then(|staple| staple.header.clone());
            set_certificate_status(headers, name, value);
        }
    }
}

/// The two responses a peer staples: its signer's beside the signature, its server's for the
/// TLS connection. Kept in the log as evidence once checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerStaples {
    pub(crate) signer: Option<Vec<u8>>,
    pub(crate) auth: Option<Vec<u8>>,
}

impl Verifier {
    /// Whose staples this side checks, for messages.
    fn peer(self) -> &'static str {
        match self {
            Verifier::Consumer => "provider's",
            Verifier::Provider => "client's",
        }
    }

    fn invalid_status(self) -> FaultCode {
        match self {
            Verifier::Consumer => FaultCode::ClientProxyInvalidCertificateStatus,
            Verifier::Provider => FaultCode::ServerProxyInvalidCertificateStatus,
        }
    }
}

// ---- verifying peers' staples ------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Checked {
    /// The issuing CA has no responder: status is not checked.
    NotRequired,
    /// A verified good response, with the certificate's serial (hex) for a later staleness
    /// error, so that a cache hit parses nothing.
    Good(VerifiedStatus, String),
}

/// Verifies stapled responses, remembering good ones per (configuration, certificate, staple).
pub(crate) struct StatusVerifier {
    cache: Mutex<HashMap<[u8; 32], Checked>>,
    /// The staples peers send, decoded (they repeat on every message until refreshed).
    decoded: passerelle_protocol::envelope::StatusMemo,
}

/// Beyond this many remembered verdicts the cache starts over (a handful per peer is normal).
const VERIFIER_CACHE_LIMIT: usize = 10_000;

impl StatusVerifier {
    /// Reads the peer's two stapled responses from `headers` and checks both: the signer's
    /// (`signer_leaf`, when the message is signed) and the TLS peer's (`peer_leaf`). Runs before
    /// a backend sees the request (provider) or the caller sees the answer (consumer).
    pub(crate) fn check_peer_staples(
        &self,
        conf: &GlobalConf,
        headers: &http::HeaderMap,
        signer_leaf: Option<&[u8]>,
        peer_leaf: &[u8],
        verifier: Verifier,
        now: SystemTime,
    ) -> Result<PeerStaples, Fault> {
        let stapled = |name: &'static str| {
            self.decoded
                .certificate_status(headers, name)
                .map_err(|error| {
                    Fault::new(
                        verifier.invalid_status(),
                        format!("certificate status: {error}"),
                    )
                })
        };
        let staples = PeerStaples {
            signer: stapled(passerelle_protocol::envelope::SIGNER_CERTIFICATE_STATUS)?,
            auth: stapled(passerelle_protocol::envelope::AUTH_CERTIFICATE_STATUS)?,
        };
        let peer = verifier.peer();
        if let Some(leaf) = signer_leaf {
            self.check(conf, leaf, staples.signer.as_deref(), now)
                .map_err(|problem| problem.fault(verifier, &format!("{peer} signing")))?;
        }
        self.check(conf, peer_leaf, staples.auth.as_deref(), now)
            .map_err(|problem| problem.fault(verifier, &format!("{peer} authentication")))?;
        Ok(staples)
    }

    pub(crate) fn new() -> Self {
        Self {
            cache: Mutex::new(HashMap::new()),
            decoded: passerelle_protocol::envelope::StatusMemo::new(),
        }
    }

    /// Checks the status of `leaf_der` (a certificate already validated against the approved
    /// CAs) from the `stapled` DER OCSP response, at `now`. `Ok(None)` when the issuing CA has
    /// no responder, `Ok(Some(status))` when the response shows the certificate good and fresh.
    pub(crate) fn check(
        &self,
        conf: &GlobalConf,
        leaf_der: &[u8],
        stapled: Option<&[u8]>,
        now: SystemTime,
    ) -> Result<Option<VerifiedStatus>, StatusProblem> {
        let freshness = conf.settings.ocsp_freshness();
        let key = {
            let mut hasher = passerelle_pki::digest::Sha256::new();
            hasher
                .update(&conf.serial.to_be_bytes())
                .update(
                    &u64::try_from(leaf_der.len())
                        .unwrap_or(u64::MAX)
                        .to_be_bytes(),
                )
                .update(leaf_der)
                .update(stapled.unwrap_or_default());
            hasher.finish()
        };
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        let leaf = |der: &[u8]| {
            Certificate::from_der(der.to_vec()).map_err(|error| {
                StatusProblem::Refused(OcspError::Malformed {
                    what: "certificate",
                    reason: error.to_string(),
                })
            })
        };
        match cached {
            Some(Checked::NotRequired) => return Ok(None),
            Some(Checked::Good(status, serial)) => {
                return still_fresh(status, || serial, now, freshness).map(Some);
            }
            None => {}
        }
        let certificate = leaf(leaf_der)?;
        let (issuer, ca) = approved_issuer(conf, &certificate).ok_or_else(|| {
            StatusProblem::IssuerNotApproved {
                certificate: certificate.subject(),
            }
        })?;
        let verdict = if ca.ocsp_responders.is_empty() {
            Checked::NotRequired
        } else {
            let stapled = stapled.ok_or_else(|| StatusProblem::Missing {
                certificate: certificate.subject(),
            })?;
            let status =
                passerelle_pki::ocsp::verify(stapled, &certificate, &issuer, now, freshness)
                    .map_err(StatusProblem::Refused)?;
            Checked::Good(status, certificate.serial_hex())
        };
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= VERIFIER_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, verdict.clone());
        Ok(match verdict {
            Checked::NotRequired => None,
            Checked::Good(status, _) => Some(status),
        })
    }
}

/// A remembered good status is still usable at `now` (the same freshness rule as
/// `passerelle_pki::ocsp::verify`).
fn still_fresh(
    status: VerifiedStatus,
    serial: impl FnOnce() -> String,
    now: SystemTime,
    freshness: Duration,
) -> Result<VerifiedStatus, StatusProblem> {
    let age = status.age(now);
    let past_next_update = status.next_update.filter(|next| now > *next);
    if age > freshness || past_next_update.is_some() {
        return Err(StatusProblem::Refused(OcspError::Stale {
            serial: serial(),
            age,
            freshness,
            next_update: past_next_update,
        }));
    }
    Ok(status)
}

// ---- this server's own responses ---------------------------------------------------------------

/// Which of this server's certificates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Role {
    Authentication,
    Signing(MemberId),
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Role::Authentication => f.write_str("authentication"),
            Role::Signing(member) => write!(f, "signing {member}"),
        }
    }
}

#[derive(Debug, Clone, Default)]
enum Checking {
    /// No global configuration has been seen yet.
    #[default]
    NotYet,
    /// The issuing CA has no responder.
    NotRequired,
    /// The issuing CA has responders: a good, fresh response is required.
    Required,
}

#[derive(Debug, Clone, Default)]
struct OwnState {
    checking: Checking,
    /// The latest good response and what it established.
    good: Option<(Arc<Staple>, VerifiedStatus)>,
    /// Why the latest refresh failed, if it did.
    problem: Option<String>,
}

struct OwnCertificate {
    role: Role,
    certificate: Certificate,
    state: Mutex<OwnState>,
}

/// What the health endpoint and the metrics show about one own certificate.
#[derive(Debug, Clone)]
pub(crate) struct OwnReport {
    pub(crate) role: String,
    pub(crate) subject: String,
    /// `good`, `not_checked` (the CA has no responder), `pending` or `unavailable`.
    pub(crate) status: &'static str,
    pub(crate) this_update: Option<SystemTime>,
    pub(crate) next_update: Option<SystemTime>,
    pub(crate) age: Option<Duration>,
    pub(crate) problem: Option<String>,
}

/// This server's own OCSP responses.
pub(crate) struct OwnStatuses {
    certificates: Vec<OwnCertificate>,
    limits: Limits,
}

/// Retry interval after a failed fetch, and the longest the refresher sleeps.
const RETRY: Duration = Duration::from_secs(10);
const MAX_SLEEP: Duration = Duration::from_secs(60);

impl OwnStatuses {
    pub(crate) fn new(certificates: Vec<(Role, Certificate)>, limits: Limits) -> Self {
        Self {
            certificates: certificates
                .into_iter()
                .map(|(role, certificate)| OwnCertificate {
                    role,
                    certificate,
                    state: Mutex::new(OwnState::default()),
                })
                .collect(),
            limits,
        }
    }

    /// The response to staple for `role` at `now`: `Ok(None)` when its CA has no responder,
    /// the DER of a good response no older than `freshness`, or why there is none (the exchange
    /// must then fail closed with `CertificateStatusUnavailable`).
    /// This server's two staples for a message signed for `member`: fail closed with `code`
    /// (and `what`, the public message) when either is missing or stale.
    pub(crate) fn staples_for(
        &self,
        member: &MemberId,
        now: SystemTime,
        freshness: Duration,
        code: FaultCode,
        what: &'static str,
    ) -> Result<OwnStaples, Fault> {
        let staple = |role: Role| {
            self.staple(&role, now, freshness)
                .map_err(|reason| Fault::hidden(code, what, reason))
        };
        Ok(OwnStaples {
            signer: staple(Role::Signing(member.clone()))?,
            auth: staple(Role::Authentication)?,
        })
    }

    pub(crate) fn staple(
        &self,
        role: &Role,
        now: SystemTime,
        freshness: Duration,
    ) -> Result<Option<Arc<Staple>>, String> {
        let Some(own) = self.certificates.iter().find(|own| &own.role == role) else {
            return Err(format!("no {role} certificate"));
        };
        let state = own.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.checking {
            Checking::NotRequired => return Ok(None),
            Checking::NotYet => {
                return Err(format!(
                    "the status of the {role} certificate has not been fetched yet"
                ));
            }
            Checking::Required => {}
        }
        match &state.good {
            Some((der, status)) => {
                match still_fresh(
                    status.clone(),
                    || own.certificate.serial_hex(),
                    now,
                    freshness,
                ) {
                    Ok(_) => Ok(Some(Arc::clone(der))),
                    Err(StatusProblem::Refused(error)) => Err(format!(
                        "the {role} certificate's own ocsp response is too old ({error}){}",
                        state
                            .problem
                            .as_ref()
                            .map(|problem| format!("; last refresh: {problem}"))
                            .unwrap_or_default()
                    )),
                    Err(other) => Err(format!("{other:?}")),
                }
            }
            None => Err(format!(
                "no good ocsp response for the {role} certificate: {}",
                state.problem.as_deref().unwrap_or("none fetched yet")
            )),
        }
    }

    /// Fetches a response for every certificate that needs one at `now` (all of them when
    /// `force`), and returns how long to wait before the next look.
    pub(crate) async fn refresh(
        &self,
        conf: &GlobalConf,
        now: SystemTime,
        force: bool,
    ) -> Duration {
        let freshness = conf.settings.ocsp_freshness();
        let half = freshness / 2;
        let mut next = MAX_SLEEP;
        for own in &self.certificates {
            let due = {
                let state = own.state.lock().unwrap_or_else(PoisonError::into_inner);
                match (&state.checking, &state.good) {
                    (Checking::Required, Some((_, status))) => {
                        status.age(now) >= half
                            || status.next_update.is_some_and(|next| {
                                next.duration_since(now).unwrap_or_default() < half
                            })
                    }
                    _ => true,
                }
            };
            if !(due || force) {
                let state = own.state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((_, status)) = &state.good {
                    next = next.min(half.saturating_sub(status.age(now)).max(RETRY));
                }
                continue;
            }
            let succeeded = self.refresh_one(own, conf, now, freshness).await;
            if !succeeded {
                next = next.min(RETRY);
            }
        }
        next
    }

    async fn refresh_one(
        &self,
        own: &OwnCertificate,
        conf: &GlobalConf,
        now: SystemTime,
        freshness: Duration,
    ) -> bool {
        let set = |update: &dyn Fn(&mut OwnState)| {
            update(&mut own.state.lock().unwrap_or_else(PoisonError::into_inner));
        };
        let Some((issuer, ca)) = approved_issuer(conf, &own.certificate) else {
            let problem = format!(
                "the {} certificate {} is not issued by an approved ca",
                own.role,
                own.certificate.subject()
            );
            set(&|state| {
                state.checking = Checking::Required;
                state.problem = Some(problem.clone());
            });
            return false;
        };
        if ca.ocsp_responders.is_empty() {
            let was_required = {
                let state = own.state.lock().unwrap_or_else(PoisonError::into_inner);
                !matches!(state.checking, Checking::NotRequired)
            };
            if was_required {
                tracing::warn!(
                    role = %own.role,
                    ca = %ca.name,
                    "the approved ca has no ocsp responder in the global configuration: certificate status is not checked for it"
                );
            }
            set(&|state| {
                state.checking = Checking::NotRequired;
                state.good = None;
                state.problem = None;
            });
            return true;
        }
        let request = match passerelle_pki::ocsp::request(&own.certificate, &issuer) {
            Ok(request) => request,
            Err(error) => {
                let problem = error.to_string();
                set(&|state| {
                    state.checking = Checking::Required;
                    state.problem = Some(problem.clone());
                });
                return false;
            }
        };
        let mut problems = Vec::new();
        for url in &ca.ocsp_responders {
            let response = match fetch_ocsp_response(url, &request, self.limits).await {
                Ok(response) => response,
                Err(error) => {
                    problems.push(error.to_string());
                    continue;
                }
            };
            match passerelle_pki::ocsp::verify(&response, &own.certificate, &issuer, now, freshness)
            {
                Ok(status) => {
                    let good = (Arc::new(Staple::new(response)), status);
                    set(&|state| {
                        state.checking = Checking::Required;
                        state.good = Some(good.clone());
                        state.problem = None;
                    });
                    return true;
                }
                Err(error @ OcspError::Revoked { .. }) => {
                    // Revocation is final: stop stapling the older good response at once.
                    tracing::error!(role = %own.role, %error, "this server's own certificate is revoked");
                    let problem = format!("{url}: {error}");
                    set(&|state| {
                        state.checking = Checking::Required;
                        state.good = None;
                        state.problem = Some(problem.clone());
                    });
                    return false;
                }
                Err(error) => problems.push(format!("{url}: {error}")),
            }
        }
        let problem = problems.join("; ");
        tracing::warn!(role = %own.role, %problem, "cannot refresh this server's ocsp response; keeping the one it has while it is fresh");
        set(&|state| {
            state.checking = Checking::Required;
            state.problem = Some(problem.clone());
        });
        false
    }

    /// One line per own certificate, for the health endpoint and the metrics.
    pub(crate) fn report(&self, now: SystemTime, freshness: Duration) -> Vec<OwnReport> {
        self.certificates
            .iter()
            .map(|own| {
                let usable = self.staple(&own.role, now, freshness);
                let state = own
                    .state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let status = match (&state.checking, &usable) {
                    (Checking::NotRequired, _) => "not_checked",
                    (Checking::NotYet, _) => "pending",
                    (Checking::Required, Ok(_)) => "good",
                    (Checking::Required, Err(_)) => "unavailable",
                };
                OwnReport {
                    role: own.role.to_string(),
                    subject: own.certificate.subject(),
                    status,
                    this_update: state.good.as_ref().map(|(_, status)| status.this_update),
                    next_update: state
                        .good
                        .as_ref()
                        .and_then(|(_, status)| status.next_update),
                    age: state.good.as_ref().map(|(_, status)| status.age(now)),
                    problem: usable.err().or(state.problem),
                }
            })
            .collect()
    }
}
