//! A deliberately small HTTP/1.1 codec for the sample backend and for `passerelle call`. Both
//! talk only to loopback or to a security server's client side, so this supports exactly what
//! they use: `Content-Length` bodies (no chunked uploads), keep-alive,
//! bounded header and body sizes, and timeouts on every read. The gateways use hyper.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The largest request or response head (start line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed message: the start line's parts, the headers in order, and the body.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Request: method, target, version. Response: version, status, reason.
    pub start: [String; 3],
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Reads one message; `Ok(None)` when the peer closed the connection cleanly before a new one.
pub async fn read_message<R>(
    reader: &mut BufReader<R>,
    timeout: Duration,
) -> anyhow::Result<Option<Message>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let read = tokio::time::timeout(timeout, reader.read_until(b'\n', &mut head))
            .await
            .context("timed out reading the message head")??;
        if read == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            bail!("connection closed in the middle of a message head");
        }
        if head.len() > MAX_HEAD {
            bail!("message head larger than {MAX_HEAD} bytes");
        }
        if &head[before..] == b"\r\n" || &head[before..] == b"\n" {
            if before == 0 {
                head.clear(); // tolerate a stray empty line between messages
                continue;
            }
            break;
        }
    }
    let text = std::str::from_utf8(&head).context("message head is not UTF-8")?;
    let mut lines = text.lines();
    let start_line = lines.next().unwrap_or_default();
    let mut parts = start_line.splitn(3, ' ');
    let start = [
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    ];
    let mut headers = Vec::new();
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .with_context(|| format!("malformed header line {line:?}"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut message = Message {
        start,
        headers,
        body: Vec::new(),
    };
    if message.header("transfer-encoding").is_some() {
        bail!("chunked transfer encoding is not supported here");
    }
    let length: usize = match message.header("content-length") {
        Some(value) => value
            .parse()
            .with_context(|| format!("invalid content-length {value:?}"))?,
        None => 0,
    };
    if length > MAX_BODY {
        bail!("body of {length} bytes is larger than {MAX_BODY}");
    }
    let mut body = vec![0; length];
    tokio::time::timeout(timeout, reader.read_exact(&mut body))
        .await
        .context("timed out reading the body")??;
    message.body = body;
    Ok(Some(message))
}

/// Writes a message with a correct `Content-Length`.
pub async fn write_message<W>(writer: &mut W, message: &Message) -> anyhow::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut out = format!(
        "{} {} {}\r\n",
        message.start[0], message.start[1], message.start[2]
    )
    .into_bytes();
    for (name, value) in &message.headers {
        if name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", message.body.len()).as_bytes());
    out.extend_from_slice(&message.body);
    writer.write_all(&out).await?;
    writer.flush().await?;
    Ok(())
}

/// One request to `http://host:port`, on a fresh connection, with a total timeout.
pub async fn request(
    address: &str,
    request: &Message,
    timeout: Duration,
) -> anyhow::Result<Message> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .with_context(|| format!("cannot connect to {address}"))?;
        let (read_half, mut write_half) = stream.into_split();
        write_message(&mut write_half, request).await?;
        let mut reader = BufReader::new(read_half);
        read_message(&mut reader, timeout)
            .await?
            .context("the server closed the connection without answering")
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("no answer from {address} within {timeout:?}"))?
}
