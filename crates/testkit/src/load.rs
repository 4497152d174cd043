//! The benchmark's load generator: HTTP/1.1 keep-alive over a fixed set of connections, in a
//! closed loop (each connection sends its next request when the previous answer arrived: the
//! saturation throughput) or an open loop (requests are due at a fixed rate whatever the
//! answers do, and latency counts from the time a request was *due*, so a stalled server cannot
//! hide its queue — no coordinated omission).
//!
//! It is deliberately lean — one pre-built request, one reused buffer per connection, no header
//! map — so that on a small machine the generator costs less than what it measures. It speaks
//! only to loopback services that answer with `Content-Length` (the sample backend, nginx, the
//! security server's client side).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How long one exchange may take before the connection is dropped and the exchange counted
/// as an error.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// What to call and how: the address and the complete request bytes, sent as they are.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    pub request: Arc<[u8]>,
    /// The response body length a correct answer has; anything else is an error.
    pub expected_body: usize,
}

impl Target {
    /// A `POST` of `body_len` bytes to `path` with the extra `headers`, expecting the same
    /// number of bytes back (the sample backend's `/v1/echo`).
    pub fn echo(
        address: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body_len: usize,
    ) -> Self {
        let mut request = format!("POST {path} HTTP/1.1\r\nhost: {address}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!(
            "content-type: application/octet-stream\r\ncontent-length: {body_len}\r\n\r\n"
        ));
        let mut bytes = request.into_bytes();
        // Printable, so a captured exchange reads well; the content does not matter.
        bytes.extend((0..body_len).map(|index| b'a' + (index % 26) as u8));
        Self {
            address,
            request: bytes.into(),
            expected_body: body_len,
        }
    }
}

/// The outcome of one run.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Exchanges answered with 2xx and the expected body length.
    pub completed: u64,
    /// Exchanges that failed (I/O error, timeout, non-2xx status or wrong body length).
    pub errors: u64,
    /// Wall time from the first send to the last answer.
    pub elapsed: Duration,
    /// Latency of every completed exchange, in microseconds, sorted. Closed loop: from the
    /// send; open loop: from the time the request was due.
    pub latencies_us: Vec<u32>,
}

impl RunResult {
    /// Completed exchanges per second.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.completed as f64 / seconds
        } else {
            0.0
        }
    }

    /// The `quantile` (0..=1) latency, in microseconds; `None` without completed exchanges.
    pub fn percentile_us(&self, quantile: f64) -> Option<u32> {
        let count = self.latencies_us.len();
        if count == 0 {
            return None;
        }
        let rank = (quantile.clamp(0.0, 1.0) * count as f64).ceil() as usize;
        self.latencies_us.get(rank.clamp(1, count) - 1).copied()
    }
}

/// How a closed-loop run ends: after `duration`, or earlier once `max_requests` were sent.
#[derive(Debug, Clone, Copy)]
pub struct ClosedLoop {
    pub connections: usize,
    pub duration: Duration,
    pub max_requests: Option<u64>,
}

/// Runs a closed loop: `connections` keep-alive connections, each sending its next request as
/// soon as its previous answer is read.
pub async fn closed_loop(target: &Target, plan: ClosedLoop) -> anyhow::Result<RunResult> {
    if plan.connections == 0 {
        bail!("a run needs at least one connection");
    }
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut workers = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let target = target.clone();
        let sent = Arc::clone(&sent);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut connection = None;
            while Instant::now() < deadline {
                if let Some(limit) = plan.max_requests
                    && sent.fetch_add(1, Ordering::Relaxed) >= limit
                {
                    break;
                }
                let began = Instant::now();
                let outcome = exchange(&mut connection, &target).await;
                tally.record(outcome, began);
            }
            tally
        }));
    }
    collect(workers, start).await
}

/// Runs an open loop: requests are due every `1 / rate` seconds for `duration`; `connections`
/// keep-alive connections take them in turn. A request waits in the queue while every
/// connection is busy, and that wait counts in its latency.
pub async fn open_loop(
    target: &Target,
    rate_per_second: f64,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<RunResult> {
    if connections == 0 || rate_per_second <= 0.0 || !rate_per_second.is_finite() {
        bail!("an open loop needs connections and a positive rate");
    }
    let (due_sender, due_receiver) = mpsc::unbounded_channel::<Instant>();
    let due_receiver = Arc::new(Mutex::new(due_receiver));
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate_per_second);
    let total = (duration.as_secs_f64() * rate_per_second).ceil() as u64;
    // A thread, not a tokio timer: tokio's timer ticks in milliseconds, which at these rates
    // would add up to a millisecond of the generator's own lateness to every latency.
    let pacer = std::thread::spawn(move || {
        for index in 0..total {
            let due = start + interval.mul_f64(index as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if due_sender.send(due).is_err() {
                return;
            }
        }
    });
    let mut workers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let target = target.clone();
        let due_receiver = Arc::clone(&due_receiver);
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut connection = None;
            loop {
                let due = due_receiver.lock().await.recv().await;
                let Some(due) = due else { break };
                let outcome = exchange(&mut connection, &target).await;
                tally.record(outcome, due);
            }
            tally
        }));
    }
    let result = collect(workers, start).await;
    if pacer.join().is_err() {
        bail!("the open-loop pacer thread panicked");
    }
    result
}

#[derive(Default)]
struct Tally {
    completed: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

impl Tally {
    fn record(&mut self, outcome: anyhow::Result<()>, since: Instant) {
        match outcome {
            Ok(()) => {
                self.completed += 1;
                let micros = since.elapsed().as_micros();
                self.latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Err(error) => {
                self.errors += 1;
                tracing::debug!(%error, "benchmark exchange failed");
            }
        }
    }
}

async fn collect(
    workers: Vec<tokio::task::JoinHandle<Tally>>,
    start: Instant,
) -> anyhow::Result<RunResult> {
    let mut result = RunResult::default();
    for worker in workers {
        let tally = worker
            .await
            .context("a load-generator connection panicked")?;
        result.completed += tally.completed;
        result.errors += tally.errors;
        result.latencies_us.extend(tally.latencies_us);
    }
    result.elapsed = start.elapsed();
    result.latencies_us.sort_unstable();
    Ok(result)
}

/// One keep-alive connection and its read buffer.
struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// Sends the target's request and reads the whole answer, connecting first if needed. On any
/// failure the connection is dropped, so the next exchange starts on a fresh one.
async fn exchange(connection: &mut Option<Connection>, target: &Target) -> anyhow::Result<()> {
    let outcome = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        if connection.is_none() {
            let stream = TcpStream::connect(target.address)
                .await
                .with_context(|| format!("cannot connect to {}", target.address))?;
            stream.set_nodelay(true)?;
            *connection = Some(Connection {
                stream,
                buffer: Vec::with_capacity(16 * 1024),
            });
        }
        let Some(open) = connection.as_mut() else {
            bail!("no connection");
        };
        open.stream.write_all(&target.request).await?;
        let (status, body) = read_response(open).await?;
        if !(200..300).contains(&status) {
            bail!("answered status {status}");
        }
        if body != target.expected_body {
            bail!(
                "answered {body} body bytes, expected {}",
                target.expected_body
            );
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {EXCHANGE_TIMEOUT:?}")));
    if outcome.is_err() {
        *connection = None;
    }
    outcome
}

/// Reads one response: its status and body length. Bytes after it stay in the buffer.
async fn read_response(connection: &mut Connection) -> anyhow::Result<(u16, usize)> {
    let buffer = &mut connection.buffer;
    let head_end = loop {
        if let Some(position) = find(buffer, b"\r\n\r\n") {
            break position + 4;
        }
        if buffer.len() > MAX_HEAD {
            bail!("response head larger than {MAX_HEAD} bytes");
        }
        read_more(&mut connection.stream, buffer).await?;
    };
    let (status, length) = parse_head(&buffer[..head_end])?;
    let wanted = head_end + length;
    while buffer.len() < wanted {
        read_more(&mut connection.stream, buffer).await?;
    }
    buffer.drain(..wanted);
    Ok((status, length))
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<()> {
    let old = buffer.len();
    buffer.resize(old + 64 * 1024, 0);
    let read = stream.read(&mut buffer[old..]).await;
    let read = match read {
        Ok(read) => read,
        Err(error) => {
            buffer.truncate(old);
            return Err(error.into());
        }
    };
    buffer.truncate(old + read);
    if read == 0 {
        bail!("connection closed in the middle of a response");
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The status and `Content-Length` of a response head (chunked answers are refused: none of
/// the measured servers sends one for these bodies).
fn parse_head(head: &[u8]) -> anyhow::Result<(u16, usize)> {
    let text = std::str::from_utf8(head).context("response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("malformed status line {status_line:?}"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .trim()
                    .parse()
                    .with_context(|| format!("invalid content-length {value:?}"))?,
            );
        } else if name.trim().eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not supported by the load generator");
        }
    }
    Ok((status, length.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_length() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\nx: y\r\n\r\n";
        assert_eq!(parse_head(head).unwrap(), (200, 1024));
        let head = b"HTTP/1.1 404 Not Found\r\n\r\n";
        assert_eq!(parse_head(head).unwrap(), (404, 0));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let result = RunResult {
            completed: 1000,
            errors: 0,
            elapsed: Duration::from_secs(1),
            latencies_us: (1..=1000).collect(),
        };
        assert_eq!(result.percentile_us(0.5), Some(500));
        assert_eq!(result.percentile_us(0.99), Some(990));
        assert_eq!(result.percentile_us(0.999), Some(999));
        assert_eq!(result.percentile_us(1.0), Some(1000));
        assert_eq!(RunResult::default().percentile_us(0.5), None);
        assert!((result.throughput() - 1000.0).abs() < 1e-9);
    }
}
