//! Body keys at rest: the key file and the key ring built from it.
//!
//! Key file (TOML), one entry per key ever used so that old records stay readable after rotation:
//!
//! ```toml
//! current = "2025-01"
//! [keys]
//! "2024-07" = "<64 hex digits>"
//! "2025-01" = "<64 hex digits>"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use passerelle_pki::aead::BodyKey;
use serde::Deserialize;

use crate::error::LogError;
use crate::record::{Body, Side, body_aad};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeyFile {
    current: String,
    keys: BTreeMap<String, String>,
}

/// The body keys of a log: the current one seals new bodies, all of them open old ones.
pub struct KeyRing {
    current: String,
    keys: BTreeMap<String, BodyKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A ring of the given keys; `current` must be one of them.
    pub fn new(current: &str, keys: Vec<BodyKey>) -> Result<Self, LogError> {
        let keys: BTreeMap<String, BodyKey> = keys
            .into_iter()
            .map(|key| (key.id().to_owned(), key))
            .collect();
        if !keys.contains_key(current) {
            return Err(LogError::BodyKey {
                key_id: current.to_owned(),
                message: "the current key is not in the ring".into(),
            });
        }
        Ok(KeyRing {
            current: current.to_owned(),
            keys,
        })
    }

    /// Reads a key file (format in the module documentation).
    pub fn load(path: &Path) -> Result<Self, LogError> {
        let text = std::fs::read_to_string(path).map_err(|e| LogError::io("read", path, e))?;
        Self::parse(&text).map_err(|message| LogError::KeyFile {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the text of a key file, reporting every bad key at once.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawKeyFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut keys = Vec::new();
        let mut problems = Vec::new();
        for (id, hex_key) in &raw.keys {
            match hex::decode(hex_key.trim()) {
                Ok(bytes) => match BodyKey::from_bytes(id, &bytes) {
                    Ok(key) => keys.push(key),
                    Err(error) => problems.push(format!("keys.{id}: {error}")),
                },
                Err(error) => problems.push(format!("keys.{id}: not hexadecimal: {error}")),
            }
        }
        if !raw.keys.contains_key(&raw.current) {
            problems.push(format!(
                "current: key {:?} is not listed under [keys]",
                raw.current
            ));
        }
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        KeyRing::new(&raw.current, keys).map_err(|e| e.to_string())
    }

    /// The key file text for this ring (contains secrets).
    pub fn to_toml(&self) -> String {
        let mut text = format!("current = {:?}\n\n[keys]\n", self.current);
        for (id, key) in &self.keys {
            text.push_str(&format!("{id:?} = \"{}\"\n", hex::encode(key.to_bytes())));
        }
        text
    }

    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// Seals a plaintext body under the current key, bound to its record by the AAD.
    pub(crate) fn seal(
        &self,
        message_id: &str,
        side: Side,
        part: &str,
        plaintext: &[u8],
    ) -> Result<Body, LogError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| LogError::BodyKey {
                key_id: self.current.clone(),
                message: "missing from the ring".into(),
            })?;
        let sealed = key
            .seal(&body_aad(message_id, side, part), plaintext)
            .map_err(|e| LogError::BodyKey {
                key_id: self.current.clone(),
                message: e.to_string(),
            })?;
        Ok(Body::Sealed {
            key_id: self.current.clone(),
            sealed,
        })
    }

    /// Opens a sealed body with the key it names.
    pub(crate) fn open(
        &self,
        key_id: &str,
        message_id: &str,
        side: Side,
        part: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, String> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| format!("body key {key_id:?} is not in the key file"))?;
        key.open(&body_aad(message_id, side, part), sealed)
            .map_err(|e| e.to_string())
    }
}
