//! What the server needs from outside that tests replace: the clock, the global configuration and
//! the message log. Each is a narrow trait so the pipeline never knows where they come from.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use passerelle_globalconf::{ConfClient, GlobalConf};
use passerelle_messagelog::{
    CheckpointSummary, ExchangeRecord, MessageLog, SyncTimes, Timestamper,
};

/// The time source. The server reads it once per request, at the edge, and passes `now` down.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that tests set by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(now: SystemTime) -> Self {
        Self(Mutex::new(now))
    }

    pub fn set(&self, now: SystemTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where the verified global configuration comes from.
pub trait ConfSource: Send + Sync {
    /// The configuration valid at `now`, or why there is none (never downloaded, expired).
    fn current(&self, now: SystemTime) -> Result<Arc<GlobalConf>, String>;
    /// Until when the configuration held is valid, for the health endpoint.
    fn valid_until(&self) -> Option<SystemTime>;
}

impl ConfSource for ConfClient {
    fn current(&self, now: SystemTime) -> Result<Arc<GlobalConf>, String> {
        ConfClient::current(self, now).map_err(|error| error.to_string())
    }

    fn valid_until(&self) -> Option<SystemTime> {
        self.status(SystemTime::UNIX_EPOCH).valid_until
    }
}

/// A fixed configuration (tests, the in-process federation); it still expires at `expires_at`.
#[derive(Debug)]
pub struct StaticConf(Mutex<Arc<GlobalConf>>);

impl StaticConf {
    pub fn new(conf: GlobalConf) -> Self {
        Self(Mutex::new(Arc::new(conf)))
    }

    /// Replaces the configuration, as a poll would.
    pub fn replace(&self, conf: GlobalConf) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(conf);
    }
}

impl ConfSource for StaticConf {
    fn current(&self, now: SystemTime) -> Result<Arc<GlobalConf>, String> {
        let conf = Arc::clone(&self.0.lock().unwrap_or_else(PoisonError::into_inner));
        if conf.is_valid_at(now) {
            Ok(conf)
        } else {
            Err(format!(
                "global configuration serial {} has expired",
                conf.serial
            ))
        }
    }

    fn valid_until(&self) -> Option<SystemTime> {
        Some(
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .expires_at,
        )
    }
}

/// A boxed future of one log append.
pub type AppendFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Where exchanges are logged. An exchange is answered only after its append has completed.
pub trait ExchangeLog: Send + Sync {
    fn append(&self, record: ExchangeRecord) -> AppendFuture;
    /// Whether bodies handed as [`passerelle_messagelog::Body::Plain`] can be sealed.
    fn seals_bodies(&self) -> bool;
    /// `Ok` while appends can succeed, for the health endpoint.
    fn health(&self) -> Result<(), String>;
    /// Why the log's index stopped, once it has (appends go on; lookups fail until a restart
    /// rebuilds it), for the health endpoint.
    fn index_problem(&self) -> Option<String> {
        None
    }
    /// How long the log's syncs took since it was opened, for the metrics (none by default).
    fn sync_times(&self) -> SyncTimes {
        SyncTimes::default()
    }
    /// Time-stamps every entry logged since the last checkpoint with `timestamper` (see
    /// [`MessageLog::checkpoint`]). It blocks: call it on a blocking thread. `Ok(None)` when
    /// there is nothing to stamp, or when the log keeps no checkpoints (the default).
    fn checkpoint(
        &self,
        timestamper: &dyn Timestamper,
        now: SystemTime,
    ) -> Result<Option<CheckpointSummary>, String> {
        let _ = (timestamper, now);
        Ok(None)
    }
}

/// The durable message log.
pub struct DurableLog {
    log: MessageLog,
    seals_bodies: bool,
}

impl DurableLog {
    /// `seals_bodies` must say whether the log was opened with body keys.
    pub fn new(log: MessageLog, seals_bodies: bool) -> Self {
        Self { log, seals_bodies }
    }
}

impl ExchangeLog for DurableLog {
    fn append(&self, record: ExchangeRecord) -> AppendFuture {
        let ticket = self.log.append(record);
        Box::pin(async move { ticket.await.map(|_| ()).map_err(|error| error.to_string()) })
    }

    fn seals_bodies(&self) -> bool {
        self.seals_bodies
    }

    fn health(&self) -> Result<(), String> {
        let health = self.log.health();
        if health.writable {
            Ok(())
        } else {
            Err(health.problem.unwrap_or_else(|| "not writable".to_owned()))
        }
    }

    fn index_problem(&self) -> Option<String> {
        self.log.health().index_problem
    }

    fn sync_times(&self) -> SyncTimes {
        self.log.health().sync_times
    }

    fn checkpoint(
        &self,
        timestamper: &dyn Timestamper,
        now: SystemTime,
    ) -> Result<Option<CheckpointSummary>, String> {
        self.log
            .checkpoint(timestamper, now)
            .map_err(|error| error.to_string())
    }
}

/// Keeps records in memory (tests and the demo); can be told to fail, to test `LoggingFailed`.
#[derive(Debug, Default)]
pub struct MemoryLog {
    records: Mutex<Vec<ExchangeRecord>>,
    failing: Mutex<Option<String>>,
}

impl MemoryLog {
    pub fn records(&self) -> Vec<ExchangeRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Makes every later append fail with `reason` (`None` heals it).
    pub fn fail_with(&self, reason: Option<String>) {
        *self.failing.lock().unwrap_or_else(PoisonError::into_inner) = reason;
    }
}

impl ExchangeLog for MemoryLog {
    fn append(&self, record: ExchangeRecord) -> AppendFuture {
        let result = match self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            Some(reason) => Err(reason),
            None => {
                self.records
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(record);
                Ok(())
            }
        };
        Box::pin(std::future::ready(result))
    }

    fn seals_bodies(&self) -> bool {
        false
    }

    fn health(&self) -> Result<(), String> {
        match self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}
