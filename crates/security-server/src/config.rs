//! The security server's TOML configuration: raw serde structs with `deny_unknown_fields`,
//! converted once into validated types. Every problem of a file is collected and reported at once,
//! with its key.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use passerelle_ids::{GlobalGroupId, MemberId, SecurityServerId, ServiceId, SubsystemId};
use passerelle_protocol::path::EndpointPattern;
use serde::Deserialize;

use crate::error::{ConfigProblem, ServerError};

/// Default maximum body size: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;

/// A validated security server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// This server, `INSTANCE/CLASS/CODE/SERVERCODE`; its owner is the member part.
    pub id: SecurityServerId,
    /// The global configuration anchor (required to run from the command line).
    pub anchor: Option<PathBuf>,
    /// Where the verified global configuration is cached.
    pub conf_cache_dir: Option<PathBuf>,
    /// Where the message log lives.
    pub message_log_dir: Option<PathBuf>,
    /// The message log's body keys (a key-ring file); without it bodies are not logged.
    pub body_keys: Option<PathBuf>,
    /// Whether the message log writes into zero-filled, preallocated segments (default `true`;
    /// `false` on copy-on-write file systems, where it only costs an extra write).
    pub preallocate_message_log: bool,
    /// The TLS authentication key and certificate chain (PEM, leaf first).
    pub auth: CredentialFiles,
    /// One signing key and certificate chain per member whose subsystems this server hosts.
    pub signing: BTreeMap<MemberId, CredentialFiles>,
    pub listeners: Listeners,
    /// Subsystems hosted here: the only ones local systems may act as.
    pub hosted: BTreeSet<SubsystemId>,
    pub services: BTreeMap<ServiceId, ServiceConfig>,
    /// Local groups by code.
    pub local_groups: BTreeMap<String, BTreeSet<SubsystemId>>,
    pub access: Vec<AccessRight>,
    pub limits: Limits,
    pub batch: BatchSettings,
    pub timestamping: TimestampingSettings,
}

/// How the message log is time-stamped (`[timestamping]`); the TSAs and the interval come from
/// the global configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampingSettings {
    /// How long exchanges go on while no TSA answers (`grace_secs`, default 600).
    pub grace: Duration,
}

/// When a service's exchanges are time-stamped (`timestamp` of a `[[services]]` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampMode {
    /// In the next periodic checkpoint (the default, `"batch"`).
    Batch,
    /// Before the exchange is answered (`"immediate"`).
    Immediate,
}

/// A key file and its certificate chain file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFiles {
    pub key: PathBuf,
    pub certificate: PathBuf,
}

/// Listening addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    /// Plain HTTP for local systems.
    pub client_http: Option<SocketAddr>,
    /// HTTPS for local systems, optionally asking for client certificates.
    pub client_https: Option<HttpsListener>,
    /// Mutual TLS for peer security servers.
    pub server: SocketAddr,
    /// Health and metrics.
    pub admin: Option<SocketAddr>,
}

/// The HTTPS client-side listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsListener {
    pub address: SocketAddr,
    pub key: PathBuf,
    pub certificate: PathBuf,
    /// When set, local systems must present a certificate issued by one of these CAs.
    pub client_ca: Option<PathBuf>,
}

/// A service this server provides.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Base URL of the backend (`http://host:port/prefix`); the canonical path is appended.
    pub backend: String,
    pub enabled: bool,
    /// Whether request and response bodies are kept in the message log.
    pub log_bodies: bool,
    /// Backend timeout for the whole exchange.
    pub timeout: Duration,
    pub openapi: Option<OpenApiSource>,
    /// The service's endpoints (informative: listed by `listMethods`, nameable by access rights).
    pub endpoints: Vec<EndpointPattern>,
    /// When its exchanges are time-stamped.
    pub timestamp: TimestampMode,
}

/// Where a service's OpenAPI document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenApiSource {
    File(PathBuf),
    Url(String),
}

/// Who an access right is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Subsystem(SubsystemId),
    GlobalGroup(GlobalGroupId),
    LocalGroup(String),
}

/// One access right: a subject may call a service, or one endpoint of it.
#[derive(Debug, Clone)]
pub struct AccessRight {
    pub subject: Subject,
    pub service: ServiceId,
    /// `None` grants the whole service.
    pub endpoint: Option<EndpointPattern>,
}

/// Size, time and connection limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_header_bytes: usize,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub total_timeout: Duration,
    pub max_connections: usize,
    /// Allowed distance between a signing time and the receiver's clock; also how long message
    /// ids are remembered for replay detection.
    pub clock_skew: Duration,
}

/// Batch signing: signing inputs arriving while a signature is being made, or within `window`
/// of the first one, share one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSettings {
    /// Always wait this long for more inputs before signing (`window_ms`, default 0).
    pub window: Duration,
    /// While inputs arrive faster than one per this duration on average, let the other ready
    /// tasks run before signing, for at most this long, and take the inputs they queue; no
    /// timer sleep (`busy_window_ms`, default 1; 0 turns it off).
    pub busy_window: Duration,
    pub max_size: usize,
}

impl ServerConfig {
    /// Reads and validates a file; relative paths in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|problems| ServerError::InvalidConfig {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// Validates TOML text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, Vec<ConfigProblem>> {
        let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
            vec![ConfigProblem {
                key: "(file)".to_owned(),
                message: error.message().to_owned(),
            }]
        })?;
        let mut check = Checker {
            problems: Vec::new(),
            base: base.to_path_buf(),
        };
        let config = check.file(table);
        match config {
            Some(config) if check.problems.is_empty() => Ok(config),
            _ => Err(check.problems),
        }
    }

    /// The signing credential files for a member, if this server holds its key.
    pub fn signing_for(&self, member: &MemberId) -> Option<&CredentialFiles> {
        self.signing.get(member)
    }
}

// ---- raw TOML structs -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    id: String,
    anchor: Option<PathBuf>,
    conf_cache_dir: Option<PathBuf>,
    message_log_dir: Option<PathBuf>,
    body_keys: Option<PathBuf>,
    preallocate_message_log: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    key: PathBuf,
    certificate: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    member: String,
    key: PathBuf,
    certificate: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListeners {
    client_http: Option<String>,
    client_https: Option<RawHttps>,
    server: String,
    admin: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttps {
    address: String,
    key: PathBuf,
    certificate: PathBuf,
    client_ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    id: String,
    backend: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "yes")]
    log_bodies: bool,
    timeout_ms: Option<u64>,
    openapi_file: Option<PathBuf>,
    openapi_url: Option<String>,
    #[serde(default)]
    endpoints: Vec<RawEndpoint>,
    timestamp: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    method: String,
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalGroup {
    code: String,
    members: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    subject: String,
    service: String,
    endpoint: Option<RawEndpoint>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_body_bytes: Option<u64>,
    max_header_bytes: Option<usize>,
    connect_timeout_ms: Option<u64>,
    read_timeout_ms: Option<u64>,
    total_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    clock_skew_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimestamping {
    grace_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBatch {
    window_ms: Option<u64>,
    busy_window_ms: Option<u64>,
    max_size: Option<usize>,
}

fn yes() -> bool {
    true
}

// ---- validation -------------------------------------------------------------------------------

struct Checker {
    problems: Vec<ConfigProblem>,
    base: PathBuf,
}

const SECTIONS: [&str; 11] = [
    "server",
    "auth",
    "signing",
    "listeners",
    "hosted",
    "services",
    "local_groups",
    "access",
    "limits",
    "batch",
    "timestamping",
];

impl Checker {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn section<T: for<'de> Deserialize<'de>>(
        &mut self,
        key: &str,
        value: Option<toml::Value>,
    ) -> Option<T> {
        let value = value?;
        match value.try_into::<T>() {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                self.problem(key, error.message().trim().to_owned());
                None
            }
        }
    }

    fn array<T: for<'de> Deserialize<'de>>(
        &mut self,
        key: &str,
        value: Option<toml::Value>,
    ) -> Vec<T> {
        let Some(value) = value else {
            return Vec::new();
        };
        let toml::Value::Array(items) = value else {
            self.problem(key, "expected an array of tables ([[...]])");
            return Vec::new();
        };
        items
            .into_iter()
            .enumerate()
            .filter_map(|(index, item)| self.section(&format!("{key}[{index}]"), Some(item)))
            .collect()
    }

    fn id<T: std::str::FromStr>(&mut self, key: &str, text: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        text.parse::<T>()
            .map_err(|error| self.problem(key, format!("{text:?}: {error}")))
            .ok()
    }

    fn address(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        text.parse::<SocketAddr>()
            .map_err(|error| self.problem(key, format!("{text:?}: {error}")))
            .ok()
    }

    fn path(&self, path: PathBuf) -> PathBuf {
        if path.is_absolute() {
            path
        } else {
            self.base.join(path)
        }
    }

    fn positive_ms(&mut self, key: &str, value: Option<u64>, default: u64) -> Duration {
        let millis = value.unwrap_or(default);
        if millis == 0 {
            self.problem(key, "must be greater than 0");
        }
        Duration::from_millis(millis)
    }

    fn file(&mut self, mut table: toml::Table) -> Option<ServerConfig> {
        for key in table.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                self.problems.push(ConfigProblem {
                    key: key.clone(),
                    message: format!("unknown section, expected one of {}", SECTIONS.join(", ")),
                });
            }
        }
        let raw_server: Option<RawServer> = self.section("server", table.remove("server"));
        let raw_auth: Option<RawCredential> = self.section("auth", table.remove("auth"));
        let raw_signing: Vec<RawSigning> = self.array("signing", table.remove("signing"));
        let raw_listeners: Option<RawListeners> =
            self.section("listeners", table.remove("listeners"));
        let raw_hosted: Option<Vec<String>> = self.section("hosted", table.remove("hosted"));
        let raw_services: Vec<RawService> = self.array("services", table.remove("services"));
        let raw_groups: Vec<RawLocalGroup> =
            self.array("local_groups", table.remove("local_groups"));
        let raw_access: Vec<RawAccess> = self.array("access", table.remove("access"));
        let raw_limits: RawLimits = self
            .section("limits", table.remove("limits"))
            .unwrap_or_default();
        let raw_batch: RawBatch = self
            .section("batch", table.remove("batch"))
            .unwrap_or_default();
        let raw_timestamping: RawTimestamping = self
            .section("timestamping", table.remove("timestamping"))
            .unwrap_or_default();

        for (section, present) in [
            ("server", raw_server.is_some()),
            ("auth", raw_auth.is_some()),
            ("listeners", raw_listeners.is_some()),
        ] {
            if !present && !self.problems.iter().any(|p| p.key == section) {
                self.problem(section, "missing section");
            }
        }

        let id = raw_server
            .as_ref()
            .and_then(|server| self.id::<SecurityServerId>("server.id", &server.id));
        let mut signing = BTreeMap::new();
        for (index, raw) in raw_signing.into_iter().enumerate() {
            let key = format!("signing[{index}].member");
            if let Some(member) = self.id::<MemberId>(&key, &raw.member) {
                let files = CredentialFiles {
                    key: self.path(raw.key),
                    certificate: self.path(raw.certificate),
                };
                if signing.insert(member, files).is_some() {
                    self.problem(key, format!("{} has two signing keys", raw.member));
                }
            }
        }
        if let Some(id) = id.as_ref().filter(|id| !signing.contains_key(id.owner())) {
            self.problem(
                "signing",
                format!("no signing key for the owner {}", id.owner()),
            );
        }

        let listeners = raw_listeners.and_then(|raw| {
            let server = self.address("listeners.server", &raw.server);
            let client_http = raw
                .client_http
                .and_then(|text| self.address("listeners.client_http", &text));
            let admin = raw
                .admin
                .and_then(|text| self.address("listeners.admin", &text));
            let client_https = raw.client_https.and_then(|https| {
                Some(HttpsListener {
                    address: self.address("listeners.client_https.address", &https.address)?,
                    key: self.path(https.key),
                    certificate: self.path(https.certificate),
                    client_ca: https.client_ca.map(|path| self.path(path)),
                })
            });
            Some(Listeners {
                client_http,
                client_https,
                server: server?,
                admin,
            })
        });

        let mut hosted = BTreeSet::new();
        for (index, text) in raw_hosted.unwrap_or_default().iter().enumerate() {
            let key = format!("hosted[{index}]");
            if let Some(subsystem) = self.id::<SubsystemId>(&key, text) {
                if !signing.contains_key(subsystem.member()) {
                    self.problem(
                        &key,
                        format!("no [[signing]] key for its member {}", subsystem.member()),
                    );
                }
                hosted.insert(subsystem);
            }
        }

        let mut services = BTreeMap::new();
        for (index, raw) in raw_services.into_iter().enumerate() {
            let key = format!("services[{index}]");
            let Some(service_id) = self.id::<ServiceId>(&format!("{key}.id"), &raw.id) else {
                continue;
            };
            if !hosted.contains(service_id.subsystem()) {
                self.problem(
                    format!("{key}.id"),
                    format!(
                        "its subsystem {} is not in `hosted`",
                        service_id.subsystem()
                    ),
                );
            }
            // Backends are reached over plain HTTP on the agency's internal network for now.
            if !raw.backend.starts_with("http://") || raw.backend.parse::<http::Uri>().is_err() {
                self.problem(
                    format!("{key}.backend"),
                    format!("{:?} is not an http:// URL", raw.backend),
                );
            }
            let openapi = match (raw.openapi_file, raw.openapi_url) {
                (Some(_), Some(_)) => {
                    self.problem(&key, "set openapi_file or openapi_url, not both");
                    None
                }
                (Some(file), None) => Some(OpenApiSource::File(self.path(file))),
                (None, Some(url)) => Some(OpenApiSource::Url(url)),
                (None, None) => None,
            };
            let endpoints = raw
                .endpoints
                .iter()
                .enumerate()
                .filter_map(|(position, endpoint)| {
                    EndpointPattern::parse(&endpoint.method, &endpoint.path)
                        .map_err(|error| {
                            self.problem(format!("{key}.endpoints[{position}]"), error.to_string())
                        })
                        .ok()
                })
                .collect();
            let timeout = self.positive_ms(&format!("{key}.timeout_ms"), raw.timeout_ms, 30_000);
            let timestamp = match raw.timestamp.as_deref() {
                None | Some("batch") => TimestampMode::Batch,
                Some("immediate") => TimestampMode::Immediate,
                Some(other) => {
                    self.problem(
                        format!("{key}.timestamp"),
                        format!("{other:?} must be \"batch\" or \"immediate\""),
                    );
                    TimestampMode::Batch
                }
            };
            let config = ServiceConfig {
                backend: raw.backend.trim_end_matches('/').to_owned(),
                enabled: raw.enabled,
                log_bodies: raw.log_bodies,
                timeout,
                openapi,
                endpoints,
                timestamp,
            };
            if services.insert(service_id, config).is_some() {
                self.problem(
                    format!("{key}.id"),
                    format!("{} is configured twice", raw.id),
                );
            }
        }

        let mut local_groups = BTreeMap::new();
        for (index, raw) in raw_groups.into_iter().enumerate() {
            let key = format!("local_groups[{index}]");
            let members: BTreeSet<SubsystemId> = raw
                .members
                .iter()
                .enumerate()
                .filter_map(|(position, text)| {
                    self.id::<SubsystemId>(&format!("{key}.members[{position}]"), text)
                })
                .collect();
            if raw.code.is_empty() || local_groups.insert(raw.code.clone(), members).is_some() {
                self.problem(
                    format!("{key}.code"),
                    format!("{:?} is empty or used twice", raw.code),
                );
            }
        }

        let mut access = Vec::new();
        for (index, raw) in raw_access.into_iter().enumerate() {
            let key = format!("access[{index}]");
            let subject = match raw.subject.split_once(':') {
                Some(("subsystem", id)) => self
                    .id::<SubsystemId>(&format!("{key}.subject"), id)
                    .map(Subject::Subsystem),
                Some(("global-group", id)) => self
                    .id::<GlobalGroupId>(&format!("{key}.subject"), id)
                    .map(Subject::GlobalGroup),
                Some(("local-group", code)) => {
                    if local_groups.contains_key(code) {
                        Some(Subject::LocalGroup(code.to_owned()))
                    } else {
                        self.problem(format!("{key}.subject"), format!("no local group {code:?}"));
                        None
                    }
                }
                _ => {
                    self.problem(
                        format!("{key}.subject"),
                        format!(
                            "{:?} must be subsystem:ID, global-group:ID or local-group:CODE",
                            raw.subject
                        ),
                    );
                    None
                }
            };
            let service = self.id::<ServiceId>(&format!("{key}.service"), &raw.service);
            if let Some(service) = service
                .as_ref()
                .filter(|service| !services.contains_key(*service))
            {
                self.problem(
                    format!("{key}.service"),
                    format!("{service} is not a configured service"),
                );
            }
            let endpoint = raw.endpoint.and_then(|endpoint| {
                EndpointPattern::parse(&endpoint.method, &endpoint.path)
                    .map_err(|error| self.problem(format!("{key}.endpoint"), error.to_string()))
                    .ok()
            });
            if let (Some(subject), Some(service)) = (subject, service) {
                access.push(AccessRight {
                    subject,
                    service,
                    endpoint,
                });
            }
        }

        let limits = Limits {
            max_body_bytes: raw_limits.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            max_header_bytes: raw_limits.max_header_bytes.unwrap_or(64 * 1024),
            connect_timeout: self.positive_ms(
                "limits.connect_timeout_ms",
                raw_limits.connect_timeout_ms,
                5_000,
            ),
            read_timeout: self.positive_ms(
                "limits.read_timeout_ms",
                raw_limits.read_timeout_ms,
                30_000,
            ),
            total_timeout: self.positive_ms(
                "limits.total_timeout_ms",
                raw_limits.total_timeout_ms,
                60_000,
            ),
            max_connections: raw_limits.max_connections.unwrap_or(1024),
            clock_skew: Duration::from_secs(raw_limits.clock_skew_secs.unwrap_or(300)),
        };
        if limits.max_body_bytes == 0
            || limits.max_header_bytes < 1024
            || limits.max_connections == 0
        {
            self.problem(
                "limits",
                "max_body_bytes and max_connections must be > 0, max_header_bytes >= 1024",
            );
        }
        let batch = BatchSettings {
            // 0 by default: the signer already batches whatever queued while it was signing,
            // so a window only adds latency (two windows per exchange) without saving work
            // under load (see docs/performance.md).
            window: Duration::from_millis(raw_batch.window_ms.unwrap_or(0)),
            // Under load, a short wait lets a signature (and the peer's verification) cover
            // several messages; below one input per window nothing waits.
            busy_window: Duration::from_millis(raw_batch.busy_window_ms.unwrap_or(1)),
            max_size: raw_batch.max_size.unwrap_or(256),
        };
        if batch.max_size == 0 {
            self.problem("batch.max_size", "must be greater than 0");
        }

        let timestamping = TimestampingSettings {
            grace: Duration::from_secs(raw_timestamping.grace_secs.unwrap_or(600)),
        };

        let server = raw_server?;
        Some(ServerConfig {
            id: id?,
            anchor: server.anchor.map(|path| self.path(path)),
            conf_cache_dir: server.conf_cache_dir.map(|path| self.path(path)),
            message_log_dir: server.message_log_dir.map(|path| self.path(path)),
            body_keys: server.body_keys.map(|path| self.path(path)),
            preallocate_message_log: server.preallocate_message_log.unwrap_or(true),
            auth: raw_auth.map(|raw| CredentialFiles {
                key: self.path(raw.key),
                certificate: self.path(raw.certificate),
            })?,
            signing,
            listeners: listeners?,
            hosted,
            services,
            local_groups,
            access,
            limits,
            batch,
            timestamping,
        })
    }
}
