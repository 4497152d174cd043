//! Configuration publishing: turn the registry into signed static bytes, and keep the last
//! published copy for the public listener.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_globalconf::{Anchor, GlobalConf, sign_configuration};
use passerelle_pki::{Certificate, SigningKey};

use crate::error::CentralError;
use crate::registry::Registry;

/// One published configuration: the exact served bytes and their detached signature.
#[derive(Debug, Clone)]
pub struct Published {
    pub serial: u64,
    pub generated_at: SystemTime,
    pub expires_at: SystemTime,
    pub bytes: Arc<Vec<u8>>,
    pub signature: Arc<Vec<u8>>,
}

/// Signs and holds the current configuration.
pub(crate) struct Publisher {
    signing_key: SigningKey,
    /// The signing certificate first, then further anchor certificates (rollover).
    anchor_certificates: Vec<Certificate>,
    current: Mutex<Option<Published>>,
}

impl Publisher {
    pub(crate) fn new(signing_key: SigningKey, anchor_certificates: Vec<Certificate>) -> Self {
        Self {
            signing_key,
            anchor_certificates,
            current: Mutex::new(None),
        }
    }

    /// Generates, signs and installs a new configuration with the next serial.
    pub(crate) fn publish(
        &self,
        registry: &Registry,
        now: SystemTime,
    ) -> Result<Published, CentralError> {
        // Whole seconds keep the document tidy; the serial orders configurations, not the time.
        let generated_at = truncate_to_seconds(now);
        let serial = registry.next_serial()?;
        let conf: GlobalConf = registry.snapshot(serial, generated_at)?;
        let bytes = conf.to_json();
        let signature = sign_configuration(&bytes, &self.signing_key)?;
        let published = Published {
            serial,
            generated_at,
            expires_at: conf.expires_at,
            bytes: Arc::new(bytes),
            signature: Arc::new(signature),
        };
        *self.lock() = Some(published.clone());
        tracing::info!(serial, "published global configuration");
        Ok(published)
    }

    pub(crate) fn current(&self) -> Option<Published> {
        self.lock().clone()
    }

    /// The anchor security servers are bootstrapped with.
    pub(crate) fn anchor(
        &self,
        instance: &passerelle_globalconf::InstanceId,
        public_url: &str,
        now: SystemTime,
    ) -> Anchor {
        let base = format!("{public_url}/globalconf/{instance}");
        Anchor {
            instance: instance.clone(),
            configuration_url: format!("{base}/globalconf.json"),
            signature_url: format!("{base}/globalconf.json.sig"),
            verification_certificates: self
                .anchor_certificates
                .iter()
                .map(Certificate::to_pem)
                .collect(),
            generated_at: truncate_to_seconds(now),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Published>> {
        // Plain data replaced in one assignment: a poisoned lock still holds a whole value.
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn truncate_to_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(UNIX_EPOCH) {
        Ok(since) => UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => time,
    }
}
