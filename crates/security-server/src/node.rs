//! A complete security server process: its configuration file, the global configuration client
//! polling the central server, the durable message log, and the servers of [`crate::start`].
//! `passerelle server serve` runs one; the in-process federation of tests and the demo runs
//! several.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use passerelle_globalconf::{Anchor, ConfClient, PollHandle};
use passerelle_messagelog::{Durability, KeyRing, LogOptions, MessageLog};

use crate::deps::{DurableLog, SystemClock};
use crate::{Deps, RunningServer, ServerConfig, start};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Server(#[from] crate::ServerError),
    #[error("{}: [server] needs `{key}` to run a security server", config.display())]
    MissingSetting { config: PathBuf, key: &'static str },
    #[error("cannot load the anchor {}: {source}", path.display())]
    Anchor {
        path: PathBuf,
        source: passerelle_globalconf::ConfError,
    },
    #[error("cannot load the body keys {}: {source}", path.display())]
    BodyKeys {
        path: PathBuf,
        source: passerelle_messagelog::LogError,
    },
    #[error("cannot open the message log in {}: {source}", path.display())]
    MessageLog {
        path: PathBuf,
        source: passerelle_messagelog::LogError,
    },
}

/// A running security server with its configuration client and message log.
pub struct Node {
    pub running: RunningServer,
    pub conf: Arc<ConfClient>,
    pub config_path: PathBuf,
    pub log_dir: PathBuf,
    polling: PollHandle,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("running", &self.running)
            .field("config", &self.config_path)
            .finish()
    }
}

impl Node {
    /// Loads `config_path` and starts everything it names. `durability` is
    /// [`Durability::Fsync`] except in benchmarks that measure what the sync costs.
    pub async fn launch(config_path: &Path, durability: Durability) -> Result<Self, NodeError> {
        let config = ServerConfig::load(config_path)?;
        let missing = |key| NodeError::MissingSetting {
            config: config_path.to_path_buf(),
            key,
        };
        let anchor_path = config.anchor.clone().ok_or_else(|| missing("anchor"))?;
        let cache_dir = config
            .conf_cache_dir
            .clone()
            .ok_or_else(|| missing("conf_cache_dir"))?;
        let log_dir = config
            .message_log_dir
            .clone()
            .ok_or_else(|| missing("message_log_dir"))?;
        let anchor = Anchor::load(&anchor_path).map_err(|source| NodeError::Anchor {
            path: anchor_path,
            source,
        })?;
        let conf = Arc::new(ConfClient::with_http(anchor, cache_dir, SystemTime::now()));
        // A first download before serving, so a fresh server does not answer OutdatedGlobalConf
        // for a whole poll interval; failure is not fatal (the cache or the poller may serve).
        if let Err(error) = conf.refresh(SystemTime::now()).await {
            tracing::warn!(%error, "first global configuration download failed; polling continues");
        }
        let polling = conf.spawn_polling(SystemTime::now);
        let mut options = LogOptions::new(durability);
        options.preallocate = config.preallocate_message_log;
        if let Some(keys) = &config.body_keys {
            let ring = KeyRing::load(keys).map_err(|source| NodeError::BodyKeys {
                path: keys.clone(),
                source,
            })?;
            options = options.with_keys(ring);
        }
        let seals_bodies = options.keys.is_some();
        let log = MessageLog::open(&log_dir, options).map_err(|source| NodeError::MessageLog {
            path: log_dir.clone(),
            source,
        })?;
        let deps = Deps {
            conf: Arc::clone(&conf) as Arc<dyn crate::deps::ConfSource>,
            log: Arc::new(DurableLog::new(log, seals_bodies)),
            clock: Arc::new(SystemClock),
        };
        let running = match start(config, deps).await {
            Ok(running) => running,
            Err(error) => {
                polling.stop().await;
                return Err(error.into());
            }
        };
        Ok(Self {
            running,
            conf,
            config_path: config_path.to_path_buf(),
            log_dir,
            polling,
        })
    }

    /// Stops serving, waits for the servers and the poller, and closes the log.
    pub async fn shutdown(self) {
        self.running.shutdown().await;
        self.polling.stop().await;
    }
}
