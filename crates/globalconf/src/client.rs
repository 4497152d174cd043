//! The configuration client: download, verify, cache, poll with back-off, and answer "the current
//! valid configuration" or exactly why there is none.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::anchor::Anchor;
use crate::cache::ConfCache;
use crate::error::ConfError;
use crate::fetch::{Fetcher, HttpFetcher};
use crate::model::GlobalConf;
use crate::signing::{AcceptedSerial, verify_configuration, verify_signed};
use crate::timefmt::format_rfc3339;

/// How often to poll and how to back off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPolicy {
    /// Interval between successful polls; `None` follows the configuration's own setting.
    pub interval: Option<Duration>,
    /// First delay after a failure; doubled after each further failure.
    pub initial_backoff: Duration,
    /// The longest delay after failures.
    pub max_backoff: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            interval: None,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// What a health check shows about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfStatus {
    /// True when a configuration is held and unexpired at the time asked.
    pub valid: bool,
    pub serial: Option<u64>,
    pub valid_until: Option<SystemTime>,
    pub last_success: Option<SystemTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<SystemTime>,
    pub consecutive_failures: u32,
}

/// Keeps one instance's configuration current. Shared behind an `Arc`.
pub struct ConfClient {
    anchor: Anchor,
    fetcher: Arc<dyn Fetcher>,
    cache: ConfCache,
    policy: PollPolicy,
    state: Mutex<ClientState>,
}

#[derive(Default)]
struct ClientState {
    current: Option<Arc<GlobalConf>>,
    last_success: Option<SystemTime>,
    last_error: Option<(SystemTime, String)>,
    consecutive_failures: u32,
}

/// A running poll loop; dropping it does not stop the loop, [`PollHandle::stop`] does.
pub struct PollHandle {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl PollHandle {
    /// Stops polling and waits for the loop to end.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

impl ConfClient {
    /// A client that keeps its cache in `cache_dir` and loads the cached copy, if any.
    ///
    /// A cached copy is re-verified (signature and instance) at `now`; an expired one is still
    /// loaded, so that [`ConfClient::current`] can say when it expired. A cached copy that fails
    /// verification is ignored and reported in [`ConfClient::status`].
    pub fn new(
        anchor: Anchor,
        cache_dir: impl Into<PathBuf>,
        fetcher: Arc<dyn Fetcher>,
        policy: PollPolicy,
        now: SystemTime,
    ) -> Self {
        let cache = ConfCache::new(cache_dir);
        let mut state = ClientState::default();
        match cache.load() {
            Ok(Some(cached)) => match verify_signed(&cached.bytes, &cached.signature, &anchor, now)
            {
                Ok(conf) => state.current = Some(Arc::new(conf)),
                Err(error) => {
                    tracing::warn!(%error, "ignoring the cached global configuration");
                    state.last_error = Some((now, format!("cached copy rejected: {error}")));
                }
            },
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot read the cached global configuration");
                state.last_error = Some((now, error.to_string()));
            }
        }
        Self {
            anchor,
            fetcher,
            cache,
            policy,
            state: Mutex::new(state),
        }
    }

    /// A client downloading over plain HTTP with the default limits.
    pub fn with_http(anchor: Anchor, cache_dir: impl Into<PathBuf>, now: SystemTime) -> Self {
        Self::new(
            anchor,
            cache_dir,
            Arc::new(HttpFetcher::default()),
            PollPolicy::default(),
            now,
        )
    }

    pub fn anchor(&self) -> &Anchor {
        &self.anchor
    }

    /// Downloads, verifies and caches the configuration once. On failure the previous
    /// configuration stays in use and the error is recorded for [`ConfClient::status`].
    pub async fn refresh(&self, now: SystemTime) -> Result<Arc<GlobalConf>, ConfError> {
        let result = self.download_and_verify(now).await;
        let mut state = self.lock();
        match result {
            Ok(conf) => {
                state.current = Some(Arc::clone(&conf));
                state.last_success = Some(now);
                state.consecutive_failures = 0;
                Ok(conf)
            }
            Err(error) => {
                tracing::warn!(%error, "global configuration refresh failed");
                state.last_error = Some((now, error.to_string()));
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                Err(error)
            }
        }
    }

    async fn download_and_verify(&self, now: SystemTime) -> Result<Arc<GlobalConf>, ConfError> {
        let bytes = self.fetcher.fetch(&self.anchor.configuration_url).await?;
        let signature = self.fetcher.fetch(&self.anchor.signature_url).await?;
        let accepted = AcceptedSerial(self.lock().current.as_ref().map(|conf| conf.serial));
        let conf = verify_configuration(&bytes, &signature, &self.anchor, accepted, now)?;
        let unchanged = self.lock().current.as_deref() == Some(&conf);
        if !unchanged {
            // Four syncs, which take as long as the disk makes them (hundreds of milliseconds
            // beside a busy message log): on the blocking pool, not on a runtime worker, whose
            // queued tasks (exchanges in flight) would wait for them.
            let cache = self.cache.clone();
            tokio::task::spawn_blocking(move || cache.store(&bytes, &signature))
                .await
                .map_err(|error| {
                    ConfError::io(
                        self.cache.dir(),
                        std::io::Error::other(format!("the cache write did not finish: {error}")),
                    )
                })??;
            tracing::info!(serial = conf.serial, "accepted global configuration");
        }
        Ok(Arc::new(conf))
    }

    /// The configuration to use at `now`, or why there is none: never downloaded, or expired.
    pub fn current(&self, now: SystemTime) -> Result<Arc<GlobalConf>, ConfError> {
        let state = self.lock();
        match &state.current {
            Some(conf) if conf.is_valid_at(now) => Ok(Arc::clone(conf)),
            Some(conf) => Err(ConfError::Expired {
                serial: conf.serial,
                expired_at: format_rfc3339(conf.expires_at),
            }),
            None => Err(ConfError::NeverDownloaded {
                last_error: state.last_error.as_ref().map(|(_, error)| error.clone()),
            }),
        }
    }

    /// For health checks.
    pub fn status(&self, now: SystemTime) -> ConfStatus {
        let state = self.lock();
        ConfStatus {
            valid: state
                .current
                .as_ref()
                .is_some_and(|conf| conf.is_valid_at(now)),
            serial: state.current.as_ref().map(|conf| conf.serial),
            valid_until: state.current.as_ref().map(|conf| conf.expires_at),
            last_success: state.last_success,
            last_error: state.last_error.as_ref().map(|(_, error)| error.clone()),
            last_error_at: state.last_error.as_ref().map(|(at, _)| *at),
            consecutive_failures: state.consecutive_failures,
        }
    }

    /// How long to wait before the next poll: the poll interval after a success, an exponential
    /// back-off after failures.
    pub fn next_delay(&self) -> Duration {
        let state = self.lock();
        if state.consecutive_failures == 0 {
            return self.policy.interval.unwrap_or_else(|| {
                state
                    .current
                    .as_ref()
                    .map(|conf| conf.settings.config_poll_interval())
                    .unwrap_or(Duration::from_secs(60))
            });
        }
        let exponent = state.consecutive_failures.saturating_sub(1).min(20);
        self.policy
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.policy.max_backoff)
    }

    /// Polls until stopped: refresh now, then after [`ConfClient::next_delay`], again and again.
    /// `clock` gives the wall-clock time used for verification.
    pub fn spawn_polling(
        self: &Arc<Self>,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
    ) -> PollHandle {
        let (shutdown, mut stopped) = watch::channel(false);
        let client = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                let _ = client.refresh(clock()).await;
                let delay = client.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stopped.changed() => break,
                }
            }
        });
        PollHandle { shutdown, task }
    }

    fn lock(&self) -> MutexGuard<'_, ClientState> {
        // The state is plain data updated in single assignments; a panic elsewhere cannot leave
        // it half-updated, so a poisoned lock is still safe to use.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
