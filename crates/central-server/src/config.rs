//! `config/central.toml`: the raw TOML shape (strict, unknown keys are errors) and the validated
//! configuration it turns into. Every problem is collected and reported at once, with file and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use passerelle_globalconf::InstanceId;
use serde::Deserialize;

use crate::error::CentralError;

/// The validated configuration. Relative paths in the file are relative to the file's directory.
#[derive(Debug, Clone)]
pub struct CentralConfig {
    pub instance: InstanceId,
    /// Where the sled registry lives.
    pub data_dir: PathBuf,
    /// Approve registration requests on arrival (development only).
    pub auto_approve: bool,
    /// Regenerate the configuration at least this often, even without changes.
    pub generation_interval: Duration,
    pub admin_listen: SocketAddr,
    /// PEM chain (leaf first) and private key of the admin API's TLS certificate.
    pub admin_tls_certificate: PathBuf,
    pub admin_tls_key: PathBuf,
    pub public_listen: SocketAddr,
    /// Base URL of the public listener as security servers reach it; written into the anchor.
    /// `None` means `http://` + the bound public address.
    pub public_url: Option<String>,
    /// The configuration-signing key and its certificate.
    pub signing_key: PathBuf,
    pub signing_certificate: PathBuf,
    /// Further verification certificates to list in the anchor (key rollover).
    pub extra_anchor_certificates: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    instance: String,
    data_dir: PathBuf,
    #[serde(default)]
    auto_approve: bool,
    #[serde(default = "default_generation_interval")]
    generation_interval_secs: u64,
    admin: RawAdmin,
    public: RawPublic,
    signing: RawSigning,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: String,
    tls_certificate: PathBuf,
    tls_key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublic {
    listen: String,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    key: PathBuf,
    certificate: PathBuf,
    #[serde(default)]
    extra_anchor_certificates: Vec<PathBuf>,
}

fn default_generation_interval() -> u64 {
    60
}

/// Every key the file may hold, by table, to report all unknown keys at once (serde stops at
/// the first).
const KNOWN_KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "instance",
            "data_dir",
            "auto_approve",
            "generation_interval_secs",
            "admin",
            "public",
            "signing",
        ],
    ),
    ("admin", &["listen", "tls_certificate", "tls_key"]),
    ("public", &["listen", "url"]),
    (
        "signing",
        &["key", "certificate", "extra_anchor_certificates"],
    ),
];

impl CentralConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, CentralError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CentralError::io(path, source))?;
        Self::parse(&text, path)
    }

    /// Validates configuration text; `path` names the file in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, CentralError> {
        let fail = |problems: Vec<String>| CentralError::Config {
            path: path.to_path_buf(),
            problems,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| fail(vec![error.to_string()]))?;
        let mut problems = unknown_keys(&table);
        let raw: Option<RawConfig> = match toml::Value::Table(table).try_into() {
            Ok(raw) => Some(raw),
            Err(error) => {
                let message = error.to_string();
                // Unknown keys are already listed, each with its key.
                if !message.contains("unknown field") {
                    problems.push(message.trim().to_owned());
                }
                None
            }
        };
        let Some(raw) = raw else {
            return Err(fail(problems));
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |relative: &Path| {
            if relative.is_absolute() {
                relative.to_path_buf()
            } else {
                base.join(relative)
            }
        };
        let instance = raw
            .instance
            .parse::<InstanceId>()
            .map_err(|error| problems.push(format!("instance: {error}")))
            .ok();
        let mut address = |key: &str, value: &str| {
            value
                .parse::<SocketAddr>()
                .map_err(|error| {
                    problems.push(format!("{key}: {value:?} is not ip:port ({error})"))
                })
                .ok()
        };
        let admin_listen = address("admin.listen", &raw.admin.listen);
        let public_listen = address("public.listen", &raw.public.listen);
        if raw.generation_interval_secs == 0 {
            problems.push("generation_interval_secs: must be at least 1".to_owned());
        }
        if let Some(url) = &raw.public.url
            && !url.starts_with("http://")
        {
            problems.push(format!(
                "public.url: {url:?} must start with http:// (the public listener is plain HTTP)"
            ));
        }
        match (instance, admin_listen, public_listen) {
            (Some(instance), Some(admin_listen), Some(public_listen)) if problems.is_empty() => {
                Ok(Self {
                    instance,
                    data_dir: resolve(&raw.data_dir),
                    auto_approve: raw.auto_approve,
                    generation_interval: Duration::from_secs(raw.generation_interval_secs),
                    admin_listen,
                    admin_tls_certificate: resolve(&raw.admin.tls_certificate),
                    admin_tls_key: resolve(&raw.admin.tls_key),
                    public_listen,
                    public_url: raw
                        .public
                        .url
                        .map(|url| url.trim_end_matches('/').to_owned()),
                    signing_key: resolve(&raw.signing.key),
                    signing_certificate: resolve(&raw.signing.certificate),
                    extra_anchor_certificates: raw
                        .signing
                        .extra_anchor_certificates
                        .iter()
                        .map(|p| resolve(p))
                        .collect(),
                })
            }
            _ => Err(fail(problems)),
        }
    }
}

fn unknown_keys(table: &toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    for (section, keys) in KNOWN_KEYS {
        let scope = if section.is_empty() {
            Some(table)
        } else {
            table.get(*section).and_then(toml::Value::as_table)
        };
        let Some(scope) = scope else { continue };
        for key in scope.keys().filter(|key| !keys.contains(&key.as_str())) {
            let full = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            problems.push(format!(
                "{full}: unknown key (expected one of: {})",
                keys.join(", ")
            ));
        }
    }
    problems
}
