//! The durable copy of the last good configuration: the exact bytes and signature, so a cached
//! copy is verified exactly like a downloaded one.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ConfError;

/// File names inside the cache directory.
const CONF_FILE: &str = "globalconf.json";
const SIGNATURE_FILE: &str = "globalconf.json.sig";

/// Configuration bytes and their detached signature, as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBytes {
    pub bytes: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A cache directory holding one configuration and its signature.
#[derive(Debug, Clone)]
pub struct ConfCache {
    dir: PathBuf,
}

impl ConfCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cached bytes and signature, or `None` when nothing was cached yet.
    pub fn load(&self) -> Result<Option<SignedBytes>, ConfError> {
        let conf_path = self.dir.join(CONF_FILE);
        let signature_path = self.dir.join(SIGNATURE_FILE);
        let bytes = match std::fs::read(&conf_path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(ConfError::io(conf_path, error)),
        };
        let signature =
            std::fs::read(&signature_path).map_err(|error| ConfError::io(signature_path, error))?;
        Ok(Some(SignedBytes { bytes, signature }))
    }

    /// Stores bytes and signature durably. The signature is written first and the configuration
    /// last, each atomically; a crash in between leaves a pair that fails verification and is
    /// replaced by the next download, never a half-written file.
    pub fn store(&self, bytes: &[u8], signature: &[u8]) -> Result<(), ConfError> {
        std::fs::create_dir_all(&self.dir).map_err(|error| ConfError::io(&self.dir, error))?;
        write_atomically(&self.dir.join(SIGNATURE_FILE), signature)?;
        write_atomically(&self.dir.join(CONF_FILE), bytes)
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory, fsyncs it, renames
/// it over `path` and fsyncs the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ConfError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.tmp"));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        // Make the rename itself durable.
        std::fs::File::open(&dir)?.sync_all()
    })();
    result.map_err(|error| ConfError::io(path, error))
}
