//! Running the central server: open the registry, publish, and serve the admin API (HTTPS) and
//! the public listener (plain HTTP) until shut down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use passerelle_globalconf::Anchor;
use passerelle_pki::{Certificate, SigningKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::api::{App, Clock, MAX_BODY_BYTES, Reply, Request};
use crate::config::CentralConfig;
use crate::error::CentralError;
use crate::publish::{Published, Publisher};
use crate::registry::Registry;

/// A central server running in this process.
pub struct RunningCentral {
    /// Where the admin API (HTTPS) listens.
    pub admin_addr: SocketAddr,
    /// Where the public listener (plain HTTP: configuration, catalog, registration) listens.
    pub public_addr: SocketAddr,
    app: Arc<App>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Opens the registry, publishes a first configuration and starts both listeners and the
/// periodic regeneration. `clock` defaults to the system clock; tests pass a pinned one.
pub async fn start(
    config: CentralConfig,
    clock: Option<Clock>,
) -> Result<RunningCentral, CentralError> {
    let clock: Clock = clock.unwrap_or_else(|| Arc::new(SystemTime::now));
    let signing_key = SigningKey::load(&config.signing_key)?;
    let mut anchor_certificates = Certificate::load(&config.signing_certificate)?;
    anchor_certificates.truncate(1);
    if !anchor_certificates
        .first()
        .is_some_and(|certificate| certificate.matches_key(&signing_key))
    {
        return Err(CentralError::Tls(format!(
            "the signing certificate {} does not match the signing key {}",
            config.signing_certificate.display(),
            config.signing_key.display()
        )));
    }
    for path in &config.extra_anchor_certificates {
        anchor_certificates.extend(Certificate::load(path)?);
    }
    let acceptor = tls_acceptor(&config)?;
    let registry = Registry::open(&config.data_dir, config.instance.clone())?;
    let validity = registry.settings()?.config_validity();
    if config.generation_interval >= validity {
        tracing::warn!(
            interval = ?config.generation_interval,
            ?validity,
            "generation_interval_secs is not shorter than the configuration validity: security servers will see it expire between generations"
        );
    }
    let admin = bind(config.admin_listen).await?;
    let public = bind(config.public_listen).await?;
    let admin_addr = local_addr(&admin, config.admin_listen)?;
    let public_addr = local_addr(&public, config.public_listen)?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{public_addr}"));
    let app = Arc::new(App {
        registry,
        publisher: Publisher::new(signing_key, anchor_certificates),
        clock,
        public_url,
        config,
    });
    app.publisher.publish(&app.registry, (app.clock)())?;
    let (shutdown, stopped) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(serve(
            admin,
            Some(acceptor),
            Arc::clone(&app),
            Side::Admin,
            stopped.clone(),
        )),
        tokio::spawn(serve(
            public,
            None,
            Arc::clone(&app),
            Side::Public,
            stopped.clone(),
        )),
        tokio::spawn(regenerate(Arc::clone(&app), stopped)),
    ];
    tracing::info!(%admin_addr, %public_addr, instance = %app.registry.instance(), "central server started");
    Ok(RunningCentral {
        admin_addr,
        public_addr,
        app,
        shutdown,
        tasks,
    })
}

impl RunningCentral {
    /// `https://ADDR` of the admin API.
    pub fn admin_url(&self) -> String {
        format!("https://{}", self.admin_addr)
    }

    /// Base URL of the public listener, as written into the anchor.
    pub fn public_url(&self) -> &str {
        &self.app.public_url
    }

    pub fn registry(&self) -> &Registry {
        &self.app.registry
    }

    /// The anchor file security servers are bootstrapped with.
    pub fn anchor(&self) -> Anchor {
        self.app.publisher.anchor(
            self.app.registry.instance(),
            &self.app.public_url,
            (self.app.clock)(),
        )
    }

    /// The configuration being served.
    pub fn published(&self) -> Option<Published> {
        self.app.publisher.current()
    }

    /// Regenerates the configuration now (as the periodic task does).
    pub fn publish_now(&self) -> Result<Published, CentralError> {
        self.app
            .publisher
            .publish(&self.app.registry, (self.app.clock)())
    }

    /// Stops both listeners and every connection, and closes the registry.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Err(error) = self.app.registry.flush() {
            tracing::error!(%error, "cannot flush the registry");
        }
    }

    /// Runs until Ctrl-C, then shuts down.
    pub async fn run_until_interrupted(self) -> Result<(), CentralError> {
        let result = tokio::signal::ctrl_c().await;
        self.shutdown().await;
        result.map_err(|source| CentralError::io("signal handler", source))
    }
}

/// Writes the anchor for `config` without starting listeners (for `passerelle central anchor`).
pub fn anchor_for(config: &CentralConfig, now: SystemTime) -> Result<Anchor, CentralError> {
    let mut certificates = Certificate::load(&config.signing_certificate)?;
    certificates.truncate(1);
    for path in &config.extra_anchor_certificates {
        certificates.extend(Certificate::load(path)?);
    }
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.public_listen));
    let publisher = Publisher::new(SigningKey::load(&config.signing_key)?, certificates);
    Ok(publisher.anchor(&config.instance, &public_url, now))
}

#[derive(Clone, Copy)]
enum Side {
    Admin,
    Public,
}

async fn bind(address: SocketAddr) -> Result<TcpListener, CentralError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| CentralError::Bind {
            address: address.to_string(),
            source,
        })
}

fn local_addr(listener: &TcpListener, configured: SocketAddr) -> Result<SocketAddr, CentralError> {
    listener.local_addr().map_err(|source| CentralError::Bind {
        address: configured.to_string(),
        source,
    })
}

fn tls_acceptor(config: &CentralConfig) -> Result<TlsAcceptor, CentralError> {
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&config.admin_tls_certificate)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|error| {
                CentralError::Tls(format!(
                    "{}: {error}",
                    config.admin_tls_certificate.display()
                ))
            })?;
    let key = PrivateKeyDer::from_pem_file(&config.admin_tls_key).map_err(|error| {
        CentralError::Tls(format!("{}: {error}", config.admin_tls_key.display()))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|error| CentralError::Tls(error.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| CentralError::Tls(error.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server_config)))
}

async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    side: Side,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let app = Arc::clone(&app);
                let tls = tls.clone();
                connections.spawn(async move {
                    match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => connection(TokioIo::new(stream), app, side).await,
                            Err(error) => tracing::debug!(%peer, %error, "tls handshake failed"),
                        },
                        None => connection(TokioIo::new(stream), app, side).await,
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn connection<I>(io: I, app: Arc<App>, side: Side)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(handle(&app, side, request).await) }
    });
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(%error, "connection ended with an error");
    }
}

async fn handle(
    app: &Arc<App>,
    side: Side,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return to_response(Reply::too_large(&error.to_string()));
        }
    };
    let bearer = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned());
    // The handlers read and change the registry, which syncs to disk on every change: they run
    // on the blocking pool, so that a slow sync does not stop an async worker that serves every
    // other connection (configuration downloads included).
    let app = Arc::clone(app);
    let handled = tokio::task::spawn_blocking(move || {
        let request = Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query(),
            bearer: bearer.as_deref(),
            body: &body,
        };
        match side {
            Side::Admin => app.admin(&request),
            Side::Public => app.public(&request),
        }
    })
    .await;
    let reply = handled.unwrap_or_else(|error| {
        tracing::error!(%error, "a request handler failed");
        Reply::internal("the request handler failed")
    });
    to_response(reply)
}

fn to_response(reply: Reply) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        http::StatusCode::from_u16(reply.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(reply.content_type),
    );
    if reply.www_authenticate {
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

async fn regenerate(app: Arc<App>, mut stopped: watch::Receiver<bool>) {
    let interval = app.config.generation_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {
                // Publishing flushes the registry to disk: off the async workers, which go on
                // serving configuration downloads and the admin API meanwhile.
                let publishing = Arc::clone(&app);
                let published = tokio::task::spawn_blocking(move || {
                    publishing
                        .publisher
                        .publish(&publishing.registry, (publishing.clock)())
                })
                .await;
                match published {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => {
                        tracing::error!(%error, "cannot regenerate the global configuration");
                    }
                    Err(error) => {
                        tracing::error!(%error, "the global configuration task failed");
                    }
                }
            }
            _ = stopped.changed() => break,
        }
    }
}
