//! Pooled HTTP/2 connections to provider security servers, over mutually authenticated TLS 1.3.
//!
//! One connection per provider server carries every concurrent exchange (HTTP/2 streams); it is
//! reused until it closes, then replaced on the next call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use passerelle_globalconf::SecurityServer;
use passerelle_ids::SecurityServerId;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::deps::{Clock, ConfSource};
use crate::http_util::Body;
use crate::tls::{AuthCredential, client_config};

/// Why a provider could not be called.
#[derive(Debug)]
pub(crate) enum PeerError {
    /// TCP connect failed or timed out, or the connection broke.
    Network(String),
    /// The provider's certificate is not the one registered for it.
    Authentication(String),
}

pub(crate) struct PeerPool {
    auth: AuthCredential,
    conf: Arc<dyn ConfSource>,
    clock: Arc<dyn Clock>,
    connect_timeout: Duration,
    /// Each connection with the DER of the provider's TLS certificate (for its stapled status),
    /// by the provider's address and then its identifier (looked up without formatting a key on
    /// every call).
    connections: Mutex<HashMap<String, Vec<(SecurityServerId, Connection)>>>,
}

/// A pooled connection and the DER of the certificate its provider authenticated with.
type Connection = (SendRequest<Body>, Arc<Vec<u8>>);

impl PeerPool {
    pub(crate) fn new(
        auth: AuthCredential,
        conf: Arc<dyn ConfSource>,
        clock: Arc<dyn Clock>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            auth,
            conf,
            clock,
            connect_timeout,
            connections: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `request` (its URI path and query only are used) to `server`; the response comes
    /// with the DER of the TLS certificate the provider authenticated with.
    pub(crate) async fn send(
        &self,
        server: &SecurityServer,
        mut request: http::Request<Body>,
    ) -> Result<(http::Response<Incoming>, Arc<Vec<u8>>), PeerError> {
        let uri = format!(
            "https://{}{}",
            server.address,
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        );
        *request.uri_mut() = uri.parse().map_err(|error| {
            PeerError::Network(format!("bad provider address {}: {error}", server.address))
        })?;
        let (mut sender, certificate) = self.sender(server).await?;
        let (mut sender, certificate) = if sender.ready().await.is_err() {
            self.forget(server).await;
            self.sender(server).await?
        } else {
            (sender, certificate)
        };
        let response = sender.send_request(request).await.map_err(|error| {
            let text = error.to_string();
            PeerError::Network(text)
        })?;
        Ok((response, certificate))
    }

    async fn forget(&self, server: &SecurityServer) {
        if let Some(at_address) = self.connections.lock().await.get_mut(&server.address) {
            at_address.retain(|(id, _)| id != &server.id);
        }
    }

    async fn sender(&self, server: &SecurityServer) -> Result<Connection, PeerError> {
        let mut connections = self.connections.lock().await;
        if let Some((_, (sender, certificate))) = connections
            .get(&server.address)
            .and_then(|at_address| at_address.iter().find(|(id, _)| id == &server.id))
            .filter(|(_, (sender, _))| !sender.is_closed())
        {
            return Ok((sender.clone(), Arc::clone(certificate)));
        }
        let connected = self.connect(server).await?;
        let at_address = connections.entry(server.address.clone()).or_default();
        at_address.retain(|(id, _)| id != &server.id);
        at_address.push((server.id.clone(), connected.clone()));
        Ok(connected)
    }

    async fn connect(&self, server: &SecurityServer) -> Result<Connection, PeerError> {
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&server.address))
            .await
            .map_err(|_| PeerError::Network(format!("connecting to {} timed out", server.address)))?
            .map_err(|error| {
                PeerError::Network(format!("connecting to {}: {error}", server.address))
            })?;
        let _ = tcp.set_nodelay(true);
        let registered: Vec<[u8; 32]> = server.auth_cert_hashes.iter().map(|hash| hash.0).collect();
        let config = client_config(
            &self.auth,
            Arc::clone(&self.conf),
            Arc::clone(&self.clock),
            registered,
        )
        .map_err(|error| PeerError::Network(format!("tls client setup: {error}")))?;
        let name = ServerName::try_from("passerelle-peer")
            .map_err(|error| PeerError::Network(error.to_string()))?;
        let tls = tokio::time::timeout(
            self.connect_timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| {
            PeerError::Network(format!("tls handshake with {} timed out", server.address))
        })?
        .map_err(|error| {
            let certificate = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .is_some_and(|inner| matches!(inner, rustls::Error::InvalidCertificate(_)));
            if certificate {
                PeerError::Authentication(format!("{} ({}): {error}", server.id, server.address))
            } else {
                PeerError::Network(format!("tls handshake with {}: {error}", server.address))
            }
        })?;
        let certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| Arc::new(leaf.to_vec()))
            .ok_or_else(|| {
                PeerError::Authentication(format!("{} presented no certificate", server.id))
            })?;
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .header_table_size(crate::server::HPACK_TABLE_BYTES);
        let (sender, connection) = builder
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|error| {
                PeerError::Network(format!("http/2 with {}: {error}", server.address))
            })?;
        let address = server.address.clone();
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%address, %error, "connection to provider closed");
            }
        });
        Ok((sender, certificate))
    }
}
