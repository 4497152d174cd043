//! The development trust services over plain HTTP: an OCSP responder (RFC 6960) and a
//! time-stamping authority (RFC 3161) for the development CA made by `passerelle pki init`.
//!
//! - `POST` with `Content-Type: application/ocsp-request` (any path; `openssl ocsp -url`
//!   posts to `/`) answers `application/ocsp-response`.
//! - `GET /ocsp/{base64}` or `GET /{base64}` (RFC 6960 appendix A: the URL-encoded base64 of
//!   the DER request) answers the same.
//! - `POST` with `Content-Type: application/timestamp-query` answers
//!   `application/timestamp-reply`.
//!
//! The responder signs with the CA directory's `ocsp.*` credential and answers for certificates
//! of its intermediate CA from `index.txt`, which it re-reads on every request so that
//! `passerelle pki revoke` (or `openssl ca -revoke`) takes effect at once. The TSA signs with
//! `tsa.*`. All ASN.1 and signatures are done by `passerelle-pki`; this module only carries
//! bytes. Time comes from the injected clock.
//!
//! The matching HTTP clients belong to their user, the security server
//! (`passerelle_security_server::trust_client`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use passerelle_pki::devca::{DevCa, files};
use passerelle_pki::revocation::RevocationIndex;
use passerelle_pki::{ocsp, tsp};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::{CentralError, Clock};

/// Content type of OCSP requests.
pub const OCSP_REQUEST: &str = "application/ocsp-request";
/// Content type of OCSP responses.
pub const OCSP_RESPONSE: &str = "application/ocsp-response";
/// Content type of time-stamp queries.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
/// Content type of time-stamp replies.
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";

/// Requests larger than this are refused (an OCSP request or time-stamp query is a few hundred
/// bytes).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Trust services running in this process (see [`start`]).
#[derive(Debug)]
pub struct RunningTrustServices {
    /// Where they listen.
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningTrustServices {
    /// The OCSP responder's URL, for the approved CA's `ocsp_responders` in the global
    /// configuration.
    pub fn ocsp_url(&self) -> String {
        format!("http://{}/ocsp", self.addr)
    }

    /// The TSA's URL, for the approved TSA's `url` in the global configuration.
    pub fn tsa_url(&self) -> String {
        format!("http://{}/tsa", self.addr)
    }

    /// Stops accepting, ends open connections and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Opens the development CA in `dir` and serves its trust services on `listen` (port 0 picks a
/// free one) until [`RunningTrustServices::shutdown`]. `clock` defaults to the system clock.
pub async fn start(
    dir: &Path,
    listen: SocketAddr,
    clock: Option<Clock>,
) -> Result<RunningTrustServices, CentralError> {
    let clock: Clock = clock.unwrap_or_else(|| Arc::new(SystemTime::now));
    let services = Arc::new(Services::open(dir, clock)?);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| CentralError::Bind {
            address: listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| CentralError::Bind {
        address: listen.to_string(),
        source,
    })?;
    let (shutdown, stopped) = watch::channel(false);
    let task = tokio::spawn(serve(listener, services, stopped));
    tracing::info!(%addr, dir = %dir.display(), "development trust services listening");
    Ok(RunningTrustServices {
        addr,
        shutdown,
        task,
    })
}

/// Serves the trust services of the development CA in `dir` on `listener` until the process
/// ends (what `passerelle pki serve` runs).
pub async fn serve_trust_services(
    dir: &Path,
    listener: TcpListener,
    clock: Clock,
) -> Result<(), CentralError> {
    let services = Arc::new(Services::open(dir, clock)?);
    // Never sent: this server runs as long as the process.
    let (_never, stopped) = watch::channel(false);
    serve(listener, services, stopped).await;
    Ok(())
}

/// What the handlers need: the CA directory's credentials and the clock.
struct Services {
    index_path: PathBuf,
    ca: DevCa,
    clock: Clock,
    /// Low half of TSA serial numbers (the high half is the time in nanoseconds), so two tokens
    /// made in the same nanosecond still differ.
    tsa_counter: AtomicU32,
}

impl Services {
    fn open(dir: &Path, clock: Clock) -> Result<Self, CentralError> {
        let ca = DevCa::open(dir)?;
        Ok(Services {
            index_path: ca.path(files::INDEX),
            ca,
            clock,
            tsa_counter: AtomicU32::new(0),
        })
    }

    async fn ocsp(&self, request: &[u8]) -> Reply {
        let index = match tokio::fs::read(&self.index_path).await {
            Ok(text) => RevocationIndex::parse(&String::from_utf8_lossy(&text)),
            Err(error) => {
                tracing::error!(path = %self.index_path.display(), %error, "cannot read the index");
                // An empty index answers `unknown` for everything: never `good` by accident.
                RevocationIndex::default()
            }
        };
        let now = (self.clock)();
        let response = ocsp::respond(
            request,
            &self.ca.intermediate().certificate,
            &index,
            self.ca.ocsp(),
            now,
        );
        Reply::ok(OCSP_RESPONSE, response)
    }

    fn tsa(&self, query: &[u8]) -> Reply {
        let now = (self.clock)();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|since| since.as_nanos() as u64)
            .unwrap_or(0);
        let counter = self.tsa_counter.fetch_add(1, Ordering::Relaxed);
        let serial = [nanos.to_be_bytes().as_slice(), &counter.to_be_bytes()].concat();
        Reply::ok(
            TIMESTAMP_REPLY,
            tsp::respond(query, self.ca.tsa(), &serial, now),
        )
    }
}

struct Reply {
    status: http::StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn ok(content_type: &'static str, body: Vec<u8>) -> Self {
        Reply {
            status: http::StatusCode::OK,
            content_type,
            body,
        }
    }

    fn error(status: http::StatusCode, message: &str) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{message}\n").into_bytes(),
        }
    }
}

async fn serve(listener: TcpListener, services: Arc<Services>, mut stopped: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let services = Arc::clone(&services);
                connections.spawn(connection(TokioIo::new(stream), services));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn connection<I>(io: I, services: Arc<Services>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let services = Arc::clone(&services);
        async move { Ok::<_, std::convert::Infallible>(handle(&services, request).await) }
    });
    if let Err(error) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(%error, "trust services connection ended with an error");
    }
}

async fn handle(
    services: &Services,
    request: hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let reply = match parts.method {
        http::Method::POST => {
            let content_type = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(|value| {
                    value
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
                Err(error) => Reply::error(http::StatusCode::PAYLOAD_TOO_LARGE, &error.to_string()),
                Ok(collected) => {
                    let body = collected.to_bytes();
                    match content_type.as_str() {
                        OCSP_REQUEST => services.ocsp(&body).await,
                        TIMESTAMP_QUERY => services.tsa(&body),
                        other => Reply::error(
                            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                            &format!(
                                "content type {other:?}: expected {OCSP_REQUEST} or {TIMESTAMP_QUERY}"
                            ),
                        ),
                    }
                }
            }
        }
        http::Method::GET => match get_request(parts.uri.path()) {
            Some(request) => services.ocsp(&request).await,
            None => Reply::error(
                http::StatusCode::NOT_FOUND,
                "GET /ocsp/{base64 of a DER OCSP request}, or POST an OCSP request or time-stamp query",
            ),
        },
        _ => Reply::error(http::StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(reply.content_type),
    );
    response
}

/// The DER request of an RFC 6960 appendix A GET: the path after `/ocsp/` (or `/`), URL-decoded
/// then base64-decoded. Some clients leave `/`, `+` and `=` unencoded, so both forms work.
fn get_request(path: &str) -> Option<Vec<u8>> {
    let encoded = path
        .strip_prefix("/ocsp/")
        .or_else(|| path.strip_prefix('/'))?;
    if encoded.is_empty() {
        return None;
    }
    let decoded = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    base64::engine::general_purpose::STANDARD
        .decode(decoded.as_bytes())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_paths_decode_url_encoded_base64() {
        let der = vec![0x30, 0x03, 0xfb, 0xff, 0x3e];
        let standard = base64::engine::general_purpose::STANDARD.encode(&der);
        assert!(standard.contains('+') || standard.contains('/'));
        let encoded: String =
            percent_encoding::utf8_percent_encode(&standard, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(get_request(&format!("/ocsp/{encoded}")), Some(der.clone()));
        assert_eq!(get_request(&format!("/{encoded}")), Some(der));
        assert_eq!(get_request("/ocsp/"), None);
        assert_eq!(get_request("/"), None);
        assert_eq!(get_request("/ocsp/%%%"), None);
    }
}
