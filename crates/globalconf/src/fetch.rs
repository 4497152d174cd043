//! Downloading the configuration: a [`Fetcher`] trait (tests inject failures through it) and a
//! tiny bounded HTTP/1.1 GET client.
//!
//! The configuration is static public bytes whose integrity comes from the signature, so plain
//! HTTP is enough; the client still bounds everything a hostile or broken server could inflate:
//! connect time, read time and size.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::ConfError;

/// A boxed future returned by a [`Fetcher`].
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<u8>, ConfError>> + Send + 'a>>;

/// Something that returns the bytes at a URL.
pub trait Fetcher: Send + Sync {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a>;
}

/// Plain-HTTP GET with time and size limits.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub max_bytes: usize,
}

impl Default for HttpFetcher {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(20),
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Fetcher for HttpFetcher {
    fn fetch<'a>(&'a self, url: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            let fail = |reason: String| ConfError::Fetch {
                url: url.to_owned(),
                reason,
            };
            let target = HttpTarget::parse(url).map_err(fail)?;
            let mut stream =
                tokio::time::timeout(self.connect_timeout, TcpStream::connect(&target.authority))
                    .await
                    .map_err(|_| {
                        fail(format!(
                            "connect timed out after {:?}",
                            self.connect_timeout
                        ))
                    })?
                    .map_err(|error| fail(format!("connect failed: {error}")))?;
            let request = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\nConnection: close\r\nUser-Agent: passerelle-globalconf\r\n\r\n",
                target.path, target.authority
            );
            let exchange = async {
                stream.write_all(request.as_bytes()).await?;
                let mut response = Vec::new();
                // Header allowance on top of the body cap; one byte more than allowed tells us
                // the response is too large.
                let limit = (self.max_bytes + 64 * 1024 + 1) as u64;
                (&mut stream).take(limit).read_to_end(&mut response).await?;
                Ok::<_, std::io::Error>(response)
            };
            let response = tokio::time::timeout(self.read_timeout, exchange)
                .await
                .map_err(|_| {
                    fail(format!(
                        "no complete response within {:?}",
                        self.read_timeout
                    ))
                })?
                .map_err(|error| fail(format!("read failed: {error}")))?;
            parse_response(&response, self.max_bytes).map_err(fail)
        })
    }
}

struct HttpTarget {
    authority: String,
    path: String,
}

impl HttpTarget {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            "only http:// URLs are supported (integrity comes from the signature)".to_owned()
        })?;
        let (authority, path) = match rest.find('/') {
            Some(index) => (&rest[..index], &rest[index..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err("the URL has no host".to_owned());
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            authority,
            path: path.to_owned(),
        })
    }
}

fn parse_response(response: &[u8], max_bytes: usize) -> Result<Vec<u8>, String> {
    let header_end = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| "the response has no complete header".to_owned())?;
    let head = std::str::from_utf8(&response[..header_end])
        .map_err(|_| "the response header is not text".to_owned())?;
    let body = &response[header_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {status_line:?}"));
    }
    if status != "200" {
        return Err(format!("HTTP status {status}"));
    }
    let mut content_length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && !value.eq_ignore_ascii_case("identity")
        {
            return Err(format!("unsupported Transfer-Encoding {value:?}"));
        }
    }
    if body.len() > max_bytes || content_length.is_some_and(|length| length > max_bytes) {
        return Err(format!("the response is larger than {max_bytes} bytes"));
    }
    match content_length {
        Some(length) if body.len() < length => Err(format!(
            "the connection closed after {} of {length} bytes",
            body.len()
        )),
        Some(length) => Ok(body[..length].to_vec()),
        None => Ok(body.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(ok, 100).unwrap(), b"hello");
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhello";
        assert!(
            parse_response(short, 100)
                .unwrap_err()
                .contains("closed after 5 of 9")
        );
        let missing = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert_eq!(parse_response(missing, 100).unwrap_err(), "HTTP status 404");
        let big = b"HTTP/1.1 200 OK\r\n\r\nhello";
        assert!(
            parse_response(big, 3)
                .unwrap_err()
                .contains("larger than 3")
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(
            parse_response(chunked, 100)
                .unwrap_err()
                .contains("Transfer-Encoding")
        );
    }

    #[test]
    fn urls() {
        let target =
            HttpTarget::parse("http://127.0.0.1:8080/globalconf/DEV/globalconf.json").unwrap();
        assert_eq!(target.authority, "127.0.0.1:8080");
        assert_eq!(target.path, "/globalconf/DEV/globalconf.json");
        assert_eq!(
            HttpTarget::parse("http://example.org").unwrap().authority,
            "example.org:80"
        );
        assert!(HttpTarget::parse("https://example.org/").is_err());
    }
}
