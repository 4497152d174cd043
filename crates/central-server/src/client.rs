//! [`AdminClient`]: calls the admin API over HTTPS, trusting only the CA certificates it is
//! given (never a system trust store). The CLI and the demo use it.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use passerelle_pki::Certificate;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::CentralError;

/// A client of one central server's admin API.
#[derive(Clone)]
pub struct AdminClient {
    authority: String,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    token: Option<String>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret.
        f.debug_struct("AdminClient")
            .field("authority", &self.authority)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl AdminClient {
    /// `base_url` is `https://HOST:PORT`; `trusted` are the CA (or server) certificates that
    /// may vouch for the admin API's TLS certificate.
    pub fn new(
        base_url: &str,
        trusted: &[Certificate],
        token: Option<String>,
    ) -> Result<Self, CentralError> {
        let bad = |reason: &str| CentralError::Api {
            method: String::new(),
            path: base_url.to_owned(),
            status: 0,
            reason: reason.to_owned(),
        };
        let authority = base_url
            .strip_prefix("https://")
            .ok_or_else(|| bad("the admin url must start with https://"))?
            .trim_end_matches('/');
        if authority.contains('/') {
            return Err(bad(
                "the admin url must be https://HOST:PORT without a path",
            ));
        }
        let host = match authority.rsplit_once(':') {
            Some((host, port)) if port.parse::<u16>().is_ok() => host,
            _ => return Err(bad("the admin url needs a port")),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| bad("the admin url's host is not a valid name or address"))?;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in trusted {
            roots
                .add(CertificateDer::from(certificate.der().to_vec()))
                .map_err(|error| CentralError::Tls(error.to_string()))?;
        }
        if roots.is_empty() {
            return Err(bad(
                "no CA certificate given to trust the admin API with (use --ca-cert)",
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|error| CentralError::Tls(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            authority: authority.to_owned(),
            server_name,
            connector: TlsConnector::from(Arc::new(config)),
            token,
        })
    }

    /// Sends one request and returns the status and body, whatever the status.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Vec<u8>), CentralError> {
        let fail = |reason: String| CentralError::Api {
            method: method.to_owned(),
            path: path.to_owned(),
            status: 0,
            reason,
        };
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|error| fail(format!("connect to {}: {error}", self.authority)))?;
        let stream = self
            .connector
            .connect(self.server_name.clone(), stream)
            .await
            .map_err(|error| fail(format!("tls: {error}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| fail(error.to_string()))?;
        let driver = tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.authority)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| fail(error.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| fail(error.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| fail(error.to_string()))?
            .to_bytes();
        driver.abort();
        Ok((status, bytes.to_vec()))
    }

    /// Sends a request and returns the JSON answer, or the server's error message.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CentralError> {
        let (status, bytes) = self
            .send(
                method,
                path,
                body.map(|value| serde_json::to_vec(value).unwrap_or_default()),
            )
            .await?;
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let mut reason = value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| value.to_string());
        if let Some(field) = value.get("field").and_then(Value::as_str) {
            reason = format!("{reason} (field {field})");
        }
        Err(CentralError::Api {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            reason,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, CentralError> {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CentralError> {
        self.call("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, CentralError> {
        self.call("PUT", path, Some(body)).await
    }

    /// Submits a signed registration request.
    pub async fn submit_request(
        &self,
        request: &passerelle_globalconf::SignedRequest,
    ) -> Result<Value, CentralError> {
        let body: Value = serde_json::from_slice(&request.to_json()).unwrap_or_default();
        self.post("/api/v1/requests", &body).await
    }
}
