//! `DIR/demo.json`: the manifest of everything `passerelle demo` started, for scripts and for
//! `passerelle call`. Its shape is a public contract documented in the README; fields are only
//! ever added. Paths in it are absolute.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) instance: String,
    pub(crate) central: CentralEntry,
    pub(crate) security_servers: Vec<SecurityServerEntry>,
    pub(crate) clients: Vec<ClientEntry>,
    pub(crate) services: Vec<ServiceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CentralEntry {
    pub(crate) admin_url: String,
    pub(crate) globalconf_url: String,
    pub(crate) anchor: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SecurityServerEntry {
    pub(crate) id: String,
    pub(crate) client_url: String,
    pub(crate) health_url: String,
    pub(crate) metrics_url: String,
    pub(crate) log_dir: PathBuf,
    pub(crate) config: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ClientEntry {
    pub(crate) id: String,
    pub(crate) security_server: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServiceEntry {
    pub(crate) id: String,
    pub(crate) allowed_path: String,
    pub(crate) denied_path: String,
}

impl Manifest {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the demo manifest {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a demo manifest", path.display()))
    }

    /// Writes the manifest atomically, so a script polling for it never reads half a file.
    pub(crate) fn save(&self, path: &Path) -> anyhow::Result<()> {
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    }

    /// The client side URL of the security server that hosts `client`.
    pub(crate) fn client_url_for(&self, client: &str) -> Option<&str> {
        let server = &self
            .clients
            .iter()
            .find(|entry| entry.id == client)?
            .security_server;
        self.security_servers
            .iter()
            .find(|entry| &entry.id == server)
            .map(|entry| entry.client_url.as_str())
    }
}
