//! Time-stamping the message log (RFC 3161), DESIGN §2.4 and §3.
//!
//! A background task calls [`passerelle_messagelog::MessageLog::checkpoint`] every
//! `settings.timestamping_interval_secs` of the global configuration: the Merkle root of every
//! entry since the last checkpoint is stamped by the first approved TSA that answers with a
//! token that verifies against its approved certificate. Services configured with
//! `timestamp = "immediate"` are answered only after their own checkpoint is stamped.
//!
//! If no TSA answers, exchanges go on for `[timestamping] grace_secs`, measured on the server's
//! clock from the first failed attempt since the last successful one; then they stop with
//! `…LoggingFailed.TimestamperFailed`. The next successful checkpoint covers the whole backlog
//! (a checkpoint always covers everything since the previous one) and exchanges resume.
//!
//! A global configuration without approved TSAs means time-stamping is off: nothing is stamped
//! and nothing is refused.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use passerelle_globalconf::GlobalConf;
use passerelle_messagelog::{CheckpointSummary, Timestamper};
use passerelle_pki::Certificate;
use passerelle_pki::tsp;

use crate::deps::ExchangeLog;
use crate::trust_client::{Limits, fetch_timestamp_response};

/// The approved TSAs of a global configuration, asked in order over HTTP. It implements the
/// message log's synchronous [`Timestamper`] by blocking on the runtime, so it must be used on a
/// blocking thread (`spawn_blocking`), never on a runtime worker.
pub struct TsaTimestamper {
    tsas: Vec<(String, Certificate)>,
    limits: Limits,
    runtime: tokio::runtime::Handle,
}

impl TsaTimestamper {
    /// The TSAs of `conf` (URL and approved certificate), asked through `runtime`.
    pub fn new(conf: &GlobalConf, limits: Limits, runtime: tokio::runtime::Handle) -> Self {
        Self {
            tsas: conf
                .tsa_certificates()
                .into_iter()
                .map(|(tsa, certificate)| (tsa.url.clone(), certificate))
                .collect(),
            limits,
            runtime,
        }
    }

    /// Whether the configuration approves any TSA.
    pub fn is_empty(&self) -> bool {
        self.tsas.is_empty()
    }
}

impl Timestamper for TsaTimestamper {
    fn timestamp(&self, imprint: &[u8; 32]) -> Result<Vec<u8>, String> {
        let query = tsp::request(imprint, None).map_err(|error| error.to_string())?;
        let mut problems = Vec::new();
        for (url, certificate) in &self.tsas {
            let answer = self
                .runtime
                .block_on(fetch_timestamp_response(url, &query, self.limits))
                .map_err(|error| error.to_string())
                .and_then(|response| {
                    tsp::token_from_response(&response).map_err(|error| format!("{url}: {error}"))
                })
                .and_then(|token| {
                    // Verified before it is stored: a token that would not pass `audit verify`
                    // is no evidence.
                    tsp::verify_token(&token, imprint, std::slice::from_ref(certificate))
                        .map(|_| token)
                        .map_err(|error| format!("{url}: {error}"))
                });
            match answer {
                Ok(token) => return Ok(token),
                Err(problem) => problems.push(problem),
            }
        }
        if problems.is_empty() {
            return Err("no approved time-stamping authority".to_owned());
        }
        Err(problems.join("; "))
    }
}

#[derive(Debug, Clone, Default)]
struct State {
    /// Whether the last configuration seen approves a TSA.
    configured: bool,
    /// When the first attempt failed since the last success.
    failing_since: Option<SystemTime>,
    last_success: Option<SystemTime>,
    last_checkpoint: Option<CheckpointSummary>,
    problem: Option<String>,
}

/// The time-stamping state of one security server.
pub(crate) struct Timestamping {
    limits: Limits,
    state: Mutex<State>,
}

/// What the health endpoint shows.
#[derive(Debug, Clone)]
pub(crate) struct StampReport {
    pub(crate) configured: bool,
    pub(crate) last_success: Option<SystemTime>,
    pub(crate) failing_since: Option<SystemTime>,
    pub(crate) last_checkpoint: Option<CheckpointSummary>,
    pub(crate) problem: Option<String>,
    pub(crate) grace: Duration,
}

impl Timestamping {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `Err` once no TSA has answered for longer than `grace`: exchanges must stop.
    pub(crate) fn check(&self, now: SystemTime, grace: Duration) -> Result<(), String> {
        let state = self.state();
        match state.failing_since {
            Some(since) if now.duration_since(since).unwrap_or_default() > grace => Err(format!(
                "no time-stamping authority has answered for {} s (grace period {} s): {}",
                now.duration_since(since).unwrap_or_default().as_secs(),
                grace.as_secs(),
                state.problem.as_deref().unwrap_or("unknown error")
            )),
            _ => Ok(()),
        }
    }

    /// Stamps everything logged since the last checkpoint, at `now`. `Ok(None)` when there was
    /// nothing to stamp or time-stamping is off (no approved TSA).
    pub(crate) async fn stamp(
        &self,
        log: Arc<dyn ExchangeLog>,
        conf: &GlobalConf,
        now: SystemTime,
    ) -> Result<Option<CheckpointSummary>, String> {
        let stamper = TsaTimestamper::new(conf, self.limits, tokio::runtime::Handle::current());
        if stamper.is_empty() {
            let mut state = self.state();
            if state.configured || state.last_success.is_none() {
                tracing::info!(
                    "no approved time-stamping authority: the message log is not time-stamped"
                );
            }
            *state = State::default();
            return Ok(None);
        }
        self.state().configured = true;
        let result = tokio::task::spawn_blocking(move || log.checkpoint(&stamper, now))
            .await
            .unwrap_or_else(|error| Err(format!("the time-stamping thread failed: {error}")));
        let mut state = self.state();
        match &result {
            Ok(summary) => {
                if state.failing_since.take().is_some() {
                    tracing::info!("time-stamping recovered; the backlog is stamped");
                }
                state.last_success = Some(now);
                state.problem = None;
                if let Some(summary) = summary {
                    state.last_checkpoint = Some(summary.clone());
                }
            }
            Err(problem) => {
                let since = *state.failing_since.get_or_insert(now);
                tracing::warn!(%problem, failing_for_secs = now.duration_since(since).unwrap_or_default().as_secs(), "time-stamping failed");
                state.problem = Some(problem.clone());
            }
        }
        result
    }

    pub(crate) fn report(&self, grace: Duration) -> StampReport {
        let state = self.state().clone();
        StampReport {
            configured: state.configured,
            last_success: state.last_success,
            failing_since: state.failing_since,
            last_checkpoint: state.last_checkpoint,
            problem: state.problem,
            grace,
        }
    }
}
