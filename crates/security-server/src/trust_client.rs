//! HTTP clients of OCSP responders and time-stamping authorities: one POST over plain HTTP/1.1
//! with a total timeout and a bound on the answer's size.
//!
//! Plain HTTP is what RFC 6960 and RFC 3161 deployments use: the answers are signed, and
//! `passerelle-pki` verifies them ([`passerelle_pki::ocsp::verify`],
//! [`passerelle_pki::tsp::verify_token`]); these functions only move bytes.
//!
//! They live in the security server, their only user: the central server runs the development
//! responder and TSA but never calls them, and the two servers never depend on each other.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Content type of OCSP requests.
pub const OCSP_REQUEST: &str = "application/ocsp-request";
/// Content type of OCSP responses.
pub const OCSP_RESPONSE: &str = "application/ocsp-response";
/// Content type of time-stamp queries.
pub const TIMESTAMP_QUERY: &str = "application/timestamp-query";
/// Content type of time-stamp replies.
pub const TIMESTAMP_REPLY: &str = "application/timestamp-reply";

/// Limits of one exchange with a trust service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connect, send and receive must all finish within this.
    pub timeout: Duration,
    /// Larger answers are refused.
    pub max_response_bytes: usize,
}

impl Limits {
    /// 10 s and 1 MiB: far above what a responder or TSA needs, far below what would hurt.
    pub const DEFAULT: Limits = Limits {
        timeout: Duration::from_secs(10),
        max_response_bytes: 1024 * 1024,
    };
}

/// A trust service could not be asked, or did not answer as it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trust service {url}: {reason}")]
pub struct TrustServiceUnavailable {
    /// The URL that was called.
    pub url: String,
    /// What went wrong (connect failure, timeout, HTTP status, wrong content type, too large).
    pub reason: String,
}

/// POSTs a DER OCSPRequest (from [`passerelle_pki::ocsp::request`]) to a responder URL and
/// returns the DER OCSPResponse, unverified.
pub async fn fetch_ocsp_response(
    url: &str,
    request_der: &[u8],
    limits: Limits,
) -> Result<Vec<u8>, TrustServiceUnavailable> {
    post(url, OCSP_REQUEST, OCSP_RESPONSE, request_der, limits).await
}

/// POSTs a DER TimeStampReq (from [`passerelle_pki::tsp::request`]) to a TSA URL and returns
/// the DER TimeStampResp, unverified; [`passerelle_pki::tsp::token_from_response`] takes the
/// token out of it.
pub async fn fetch_timestamp_response(
    url: &str,
    query_der: &[u8],
    limits: Limits,
) -> Result<Vec<u8>, TrustServiceUnavailable> {
    post(url, TIMESTAMP_QUERY, TIMESTAMP_REPLY, query_der, limits).await
}

async fn post(
    url: &str,
    content_type: &'static str,
    expected_type: &'static str,
    body: &[u8],
    limits: Limits,
) -> Result<Vec<u8>, TrustServiceUnavailable> {
    let fail = |reason: String| TrustServiceUnavailable {
        url: url.to_owned(),
        reason,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|error| fail(format!("bad url: {error}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(fail("only http:// urls are supported".to_owned()));
    }
    let host = uri
        .host()
        .ok_or_else(|| fail("no host in url".to_owned()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map(|authority| authority.as_str().to_owned())
        .unwrap_or_default();
    let path = uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    let request = hyper::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::ACCEPT, expected_type)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|error| fail(error.to_string()))?;

    let exchange = async {
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|error| fail(format!("connect: {error}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| fail(error.to_string()))?;
        let driver = tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| fail(error.to_string()));
        let result = match response {
            Ok(response) => read(response, expected_type, limits, &fail).await,
            Err(error) => Err(error),
        };
        driver.abort();
        result
    };
    tokio::time::timeout(limits.timeout, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {:?}", limits.timeout)))?
}

async fn read(
    response: hyper::Response<hyper::body::Incoming>,
    expected_type: &str,
    limits: Limits,
    fail: &impl Fn(String) -> TrustServiceUnavailable,
) -> Result<Vec<u8>, TrustServiceUnavailable> {
    let status = response.status();
    if status != http::StatusCode::OK {
        return Err(fail(format!("http status {status}")));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if !content_type
        .split(';')
        .next()
        .is_some_and(|value| value.trim().eq_ignore_ascii_case(expected_type))
    {
        return Err(fail(format!(
            "content type {content_type:?}, expected {expected_type}"
        )));
    }
    let body = Limited::new(response.into_body(), limits.max_response_bytes)
        .collect()
        .await
        .map_err(|error| fail(format!("reading the answer: {error}")))?;
    Ok(body.to_bytes().to_vec())
}
