//! Starting and running a security server: listeners, shared state, reload and shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use passerelle_ids::{FaultCode, MemberId, SecurityServerId};
use passerelle_pki::Certificate;
use passerelle_protocol::envelope::ChainMemo;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::credentials::Credential;
use crate::deps::{Clock, ConfSource, ExchangeLog};
use crate::error::ServerError;
use crate::http_util::Body;
use crate::metrics::Metrics;
use crate::ocsp::{OwnStatuses, Role as CertificateRole, StatusVerifier};
use crate::peers::PeerPool;
use crate::replay::{REPLAY_CAPACITY, ReplayCache};
use crate::signer::{BatchSigner, RootCache};
use crate::timestamping::Timestamping;
use crate::tls::{AuthCredential, local_https_config, server_config};
use crate::{consumer, provider};

/// What a security server needs besides its configuration file.
#[derive(Clone)]
pub struct Deps {
    /// The verified global configuration.
    pub conf: Arc<dyn ConfSource>,
    /// The message log.
    pub log: Arc<dyn ExchangeLog>,
    /// The clock, read once per request.
    pub clock: Arc<dyn Clock>,
}

pub(crate) struct Shared {
    pub(crate) id: SecurityServerId,
    config: RwLock<Arc<ServerConfig>>,
    pub(crate) conf: Arc<dyn ConfSource>,
    pub(crate) log: Arc<dyn ExchangeLog>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) signers: HashMap<MemberId, BatchSigner>,
    certificates: Vec<(String, Certificate)>,
    pub(crate) peers: PeerPool,
    pub(crate) backend: Client<HttpConnector, Body>,
    pub(crate) replay: ReplayCache,
    pub(crate) roots: RootCache,
    /// The signer chains peers send, decoded (they repeat on every message).
    pub(crate) chains: ChainMemo,
    pub(crate) metrics: Arc<Metrics>,
    /// This server's own OCSP responses, stapled to what it sends.
    pub(crate) own_status: OwnStatuses,
    /// Checks the responses peers staple.
    pub(crate) status_verifier: StatusVerifier,
    pub(crate) timestamping: Timestamping,
}

impl Shared {
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// A started security server. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    /// The plain HTTP client-side listener, if configured.
    pub client_addr: Option<SocketAddr>,
    /// The HTTPS client-side listener, if configured.
    pub client_https_addr: Option<SocketAddr>,
    /// The mutual-TLS listener for peer security servers.
    pub server_addr: SocketAddr,
    /// Health and metrics, if configured.
    pub admin_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("id", &self.shared.id)
            .field("client_addr", &self.client_addr)
            .field("server_addr", &self.server_addr)
            .field("admin_addr", &self.admin_addr)
            .finish()
    }
}

/// Loads the credentials, binds every listener and starts serving. Must run inside a tokio
/// runtime; listeners may use port 0 (the bound addresses are in the result).
pub async fn start(config: ServerConfig, deps: Deps) -> Result<RunningServer, ServerError> {
    let metrics = Arc::new(Metrics::default());
    let auth = Credential::load(&config.auth, "authentication key")?;
    let auth_credential = AuthCredential::new(&auth.key, &auth.chain)?;
    let mut certificates = vec![("authentication".to_owned(), auth_credential.leaf.clone())];
    let mut own_certificates = vec![(
        CertificateRole::Authentication,
        auth_credential.leaf.clone(),
    )];
    let mut signers = HashMap::new();
    for (member, files) in &config.signing {
        let credential = Credential::load(files, "signing key")?;
        if let Some(leaf) = credential.leaf() {
            if leaf.member_id().as_ref() != Some(member) {
                return Err(ServerError::BadCredential {
                    what: format!("signing certificate for {member}"),
                    reason: format!(
                        "it certifies {:?}, not {member}",
                        leaf.member_id().map(|m| m.to_string())
                    ),
                });
            }
            certificates.push((format!("signing {member}"), leaf.clone()));
            own_certificates.push((CertificateRole::Signing(member.clone()), leaf.clone()));
        }
        signers.insert(
            member.clone(),
            BatchSigner::spawn(
                credential.key,
                &credential.chain,
                config.batch.clone(),
                Arc::clone(&metrics),
            ),
        );
    }
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.limits.connect_timeout));
    connector.set_nodelay(true);
    let backend = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(connector);
    let tls = server_config(
        &auth_credential,
        Arc::clone(&deps.conf),
        Arc::clone(&deps.clock),
    )?;
    let https = match &config.listeners.client_https {
        None => None,
        Some(listener) => {
            let credential = Credential::load(
                &crate::config::CredentialFiles {
                    key: listener.key.clone(),
                    certificate: listener.certificate.clone(),
                },
                "client-side https key",
            )?;
            let cas = match &listener.client_ca {
                None => None,
                Some(path) => {
                    Some(
                        Certificate::load(path).map_err(|source| ServerError::Credential {
                            what: "client ca",
                            path: path.clone(),
                            source,
                        })?,
                    )
                }
            };
            Some((
                listener.address,
                local_https_config(&credential.chain, &credential.key, cas.as_deref())?,
            ))
        }
    };
    let shared = Arc::new(Shared {
        id: config.id.clone(),
        peers: PeerPool::new(
            auth_credential,
            Arc::clone(&deps.conf),
            Arc::clone(&deps.clock),
            config.limits.connect_timeout,
        ),
        replay: ReplayCache::new(config.limits.clock_skew, REPLAY_CAPACITY),
        roots: RootCache::new(10_000),
        chains: ChainMemo::new(),
        config: RwLock::new(Arc::new(config.clone())),
        conf: deps.conf,
        log: deps.log,
        clock: deps.clock,
        signers,
        certificates,
        backend,
        metrics,
        own_status: OwnStatuses::new(own_certificates, crate::trust_client::Limits::DEFAULT),
        status_verifier: StatusVerifier::new(),
        timestamping: Timestamping::new(crate::trust_client::Limits::DEFAULT),
    });
    let (stop, stopped) = watch::channel(false);
    let connections = Arc::new(Semaphore::new(config.limits.max_connections));
    let mut tasks = Vec::new();
    // A first fetch of this server's own OCSP responses before it serves, so that its first
    // exchanges can staple them.
    let now = shared.clock.now();
    if let Ok(conf) = shared.conf.current(now) {
        shared.own_status.refresh(&conf, now, true).await;
    }
    tasks.push(tokio::spawn(crate::background::refresh_own_status(
        Arc::clone(&shared),
        stopped.clone(),
    )));
    tasks.push(tokio::spawn(crate::background::stamp_periodically(
        Arc::clone(&shared),
        stopped.clone(),
    )));

    let server_listener = bind(config.listeners.server).await?;
    let server_addr = local(&server_listener, config.listeners.server)?;
    tasks.push(tokio::spawn(serve_peers(
        server_listener,
        tls,
        Arc::clone(&shared),
        Arc::clone(&connections),
        stopped.clone(),
    )));

    let mut client_addr = None;
    if let Some(address) = config.listeners.client_http {
        let listener = bind(address).await?;
        client_addr = Some(local(&listener, address)?);
        tasks.push(tokio::spawn(serve_local(
            listener,
            None,
            Arc::clone(&shared),
            Arc::clone(&connections),
            stopped.clone(),
        )));
    }
    let mut client_https_addr = None;
    if let Some((address, tls)) = https {
        let listener = bind(address).await?;
        client_https_addr = Some(local(&listener, address)?);
        tasks.push(tokio::spawn(serve_local(
            listener,
            Some(tls),
            Arc::clone(&shared),
            Arc::clone(&connections),
            stopped.clone(),
        )));
    }
    let mut admin_addr = None;
    if let Some(address) = config.listeners.admin {
        let listener = bind(address).await?;
        admin_addr = Some(local(&listener, address)?);
        tasks.push(tokio::spawn(serve_admin(
            listener,
            Arc::clone(&shared),
            stopped.clone(),
        )));
    }
    tracing::info!(id = %shared.id, %server_addr, ?client_addr, ?admin_addr, "security server started");
    Ok(RunningServer {
        client_addr,
        client_https_addr,
        server_addr,
        admin_addr,
        shared,
        stop,
        tasks,
    })
}

impl RunningServer {
    /// Replaces the services, access rights, local groups, hosted subsystems and limits.
    /// Identity, keys and listeners need a restart; a new file that changes them is refused and
    /// the running configuration stays.
    pub fn reload(&self, config: ServerConfig) -> Result<(), ServerError> {
        let current = self.shared.config();
        let mut problems = Vec::new();
        if config.id != current.id {
            problems.push("server.id changed (needs a restart)");
        }
        if config.signing != current.signing || config.auth != current.auth {
            problems.push("keys or certificates changed (need a restart)");
        }
        if config.listeners != current.listeners {
            problems.push("listeners changed (need a restart)");
        }
        if !problems.is_empty() {
            return Err(ServerError::InvalidConfig {
                path: "(reload)".into(),
                problems: problems
                    .into_iter()
                    .map(|message| crate::error::ConfigProblem {
                        key: "reload".to_owned(),
                        message: message.to_owned(),
                    })
                    .collect(),
            });
        }
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        tracing::info!(id = %self.shared.id, "configuration reloaded");
        Ok(())
    }

    /// Reads, validates and applies a configuration file (what SIGHUP does). On any error the
    /// running configuration is kept and the error is returned (and logged).
    pub fn reload_from(&self, path: &Path) -> Result<(), ServerError> {
        let result = ServerConfig::load(path).and_then(|config| self.reload(config));
        if let Err(error) = &result {
            tracing::error!(%error, "configuration not reloaded; the previous one stays in force");
        }
        result
    }

    /// The Prometheus metrics text, as `/metrics` serves it.
    pub fn metrics(&self) -> String {
        metrics_text(&self.shared)
    }

    /// Fetches this server's own OCSP responses now, whatever their age (what the background
    /// task does when they reach half their freshness). Does nothing without a valid global
    /// configuration.
    pub async fn refresh_certificate_status(&self) {
        let now = self.shared.clock.now();
        if let Ok(conf) = self.shared.conf.current(now) {
            self.shared.own_status.refresh(&conf, now, true).await;
        }
    }

    /// Time-stamps the message log now (what the background task does every
    /// `timestamping_interval_secs`): `Ok(None)` when there is nothing to stamp or no TSA is
    /// approved.
    pub async fn stamp_now(
        &self,
    ) -> Result<Option<passerelle_messagelog::CheckpointSummary>, String> {
        crate::background::stamp_once(&self.shared).await
    }

    /// The health report, as `/health` serves it: whether the server is healthy, and the JSON.
    pub fn health(&self) -> (bool, serde_json::Value) {
        health(&self.shared, self.shared.clock.now())
    }

    /// Stops accepting connections and waits for the listeners to close.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            address: address.to_string(),
            source,
        })
}

fn local(listener: &TcpListener, address: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind {
        address: address.to_string(),
        source,
    })
}

/// The next accepted connection, with `TCP_NODELAY` set, or `None` once `stopped` changes.
/// HTTP/2 and TLS write a response in several small writes; with Nagle's algorithm the later
/// ones waited for the peer's delayed ACK (40 ms on Linux) now and then.
async fn next_connection(
    listener: &TcpListener,
    stopped: &mut watch::Receiver<bool>,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            _ = stopped.changed() => return None,
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((stream, remote));
                }
                Err(error) => tracing::warn!(%error, "accept failed"),
            },
        }
    }
}

async fn serve_peers(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    while let Some((stream, remote)) = next_connection(&listener, &mut stopped).await {
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::warn!(%remote, "connection limit reached; closing a peer connection");
            continue;
        };
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        let read_timeout = shared.config().limits.read_timeout;
        let max_headers =
            u32::try_from(shared.config().limits.max_header_bytes).unwrap_or(u32::MAX);
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::warn!(%remote, %error, "peer tls handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let Some((peer, peer_leaf)) = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| {
                    (
                        passerelle_pki::digest::sha256(leaf),
                        Arc::new(leaf.to_vec()),
                    )
                })
            else {
                return;
            };
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let shared = Arc::clone(&shared);
                let peer_leaf = Arc::clone(&peer_leaf);
                async move {
                    Ok::<_, Infallible>(provider::handle(shared, peer, peer_leaf, request).await)
                }
            });
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            // The response headers are signed: the server must not add a Date header of its own.
            builder
                .auto_date_header(false)
                .max_header_list_size(max_headers)
                .header_table_size(HPACK_TABLE_BYTES)
                .timer(TokioTimer::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%remote, %error, "peer connection ended");
            }
        });
    }
}

/// The HPACK dynamic table each side of a peer connection offers the other (RFC 7541 §4.2;
/// HTTP/2's default is 4 KiB). Every message between security servers carries the signer's
/// certificate chain and two OCSP responses as headers, a few KiB that change only when a
/// certificate or a status does: with a table this size they are sent once per connection and
/// then as one-byte references, instead of being Huffman-coded, encrypted and decoded again on
/// every message. Bounded per connection, on both sides.
pub(crate) const HPACK_TABLE_BYTES: u32 = 64 * 1024;

/// How many over-limit plain HTTP connections may be answered `TooManyConnections` at once;
/// past that they are closed without an answer, so refusing stays bounded too.
const REFUSAL_SLOTS: usize = 64;

/// Answers a local system's connection beyond `max_connections`: on plain HTTP with one
/// `Server.ClientProxy.TooManyConnections` response (then closes), on HTTPS by closing.
fn refuse_over_limit(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    is_tls: bool,
    refusals: &Arc<Semaphore>,
    shared: &Arc<Shared>,
) {
    let refusal = Arc::clone(refusals).try_acquire_owned();
    let (false, Ok(refusal)) = (is_tls, refusal) else {
        tracing::warn!(%remote, "connection limit reached; closing a client connection");
        return;
    };
    let read_timeout = shared.config().limits.read_timeout;
    tokio::spawn(async move {
        let _refusal = refusal;
        let service = service_fn(|_request: hyper::Request<Incoming>| async {
            let fault = crate::http_util::Fault::new(
                FaultCode::ClientProxyTooManyConnections,
                "the security server is at its connection limit; retry later",
            );
            Ok::<_, Infallible>(fault.into_response())
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .keep_alive(false)
            .timer(TokioTimer::new())
            .header_read_timeout(read_timeout);
        let _ = builder
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

async fn serve_local(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
    mut stopped: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let refusals = Arc::new(Semaphore::new(REFUSAL_SLOTS));
    while let Some((stream, remote)) = next_connection(&listener, &mut stopped).await {
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            refuse_over_limit(stream, remote, acceptor.is_some(), &refusals, &shared);
            continue;
        };
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let limits = shared.config().limits.clone();
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(consumer::handle(shared, request).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.read_timeout)
                .max_buf_size(limits.max_header_bytes.saturating_mul(2).max(8192));
            let result = match &acceptor {
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(limits.read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => builder.serve_connection(TokioIo::new(tls), service).await,
                        _ => return,
                    }
                }
            };
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "client connection ended");
            }
        });
    }
}

async fn serve_admin(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    while let Some((stream, _)) = next_connection(&listener, &mut stopped).await {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<Incoming>| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(admin(&shared, request.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn admin(shared: &Shared, path: &str) -> http::Response<Body> {
    match path {
        "/metrics" => {
            let mut response = http::Response::new(Body::from(metrics_text(shared)));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        "/health" => {
            let (healthy, report) = health(shared, shared.clock.now());
            let mut response = consumer::json_response(report);
            if !healthy {
                *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            }
            response
        }
        _ => {
            let mut response = http::Response::new(Body::from("not found\n"));
            *response.status_mut() = http::StatusCode::NOT_FOUND;
            response
        }
    }
}

/// The health report: global configuration, certificates and message log.
fn health(shared: &Shared, now: SystemTime) -> (bool, serde_json::Value) {
    let conf = shared.conf.current(now);
    let log = shared.log.health();
    let certificates: Vec<serde_json::Value> = shared
        .certificates
        .iter()
        .map(|(role, certificate)| {
            serde_json::json!({
                "role": role,
                "subject": certificate.subject(),
                "not_after": passerelle_globalconf::format_rfc3339(certificate.not_after()),
                "valid": certificate.not_after() > now,
            })
        })
        .collect();
    let certificates_valid = shared
        .certificates
        .iter()
        .all(|(_, certificate)| certificate.not_after() > now);
    let (trust, trust_healthy) = crate::background::health_report(shared, now);
    let healthy = conf.is_ok() && log.is_ok() && certificates_valid && trust_healthy;
    let mut report = serde_json::json!({
        "status": if healthy { "ok" } else { "failing" },
        "security_server": shared.id.to_string(),
        "global_configuration": {
            "valid": conf.is_ok(),
            "valid_until": shared.conf.valid_until().map(passerelle_globalconf::format_rfc3339),
            "problem": conf.err(),
        },
        "certificates": certificates,
        "message_log": {
            "writable": log.is_ok(),
            "problem": log.err(),
            // A stopped index does not stop exchanges: reported, not failing.
            "index_problem": shared.log.index_problem(),
        },
    });
    if let (Some(report), serde_json::Value::Object(trust)) = (report.as_object_mut(), trust) {
        report.extend(trust);
    }
    (healthy, report)
}

/// The metrics of [`Metrics`] and the message log's sync times, followed by those of the trust
/// services.
fn metrics_text(shared: &Shared) -> String {
    let mut text = shared.metrics.render();
    crate::metrics::render_sync_times(&mut text, &shared.log.sync_times());
    text.push_str(&crate::background::metrics(shared, shared.clock.now()));
    text
}
