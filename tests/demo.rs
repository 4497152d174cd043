//! End-to-end: the real `passerelle` binary's demo, driven the way a user and a script would.
//!
//! Starts `passerelle demo` in a temporary directory, reads `demo.json`, makes the allowed,
//! denied and metaservice calls with a plain HTTP client, exports and verifies both security
//! servers' logs with `passerelle audit`, stops the demo with SIGTERM, restarts it on the same
//! directory and calls again.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_passerelle");

struct Demo {
    child: Child,
}

impl Demo {
    fn start(dir: &Path) -> (Self, serde_json::Value) {
        let manifest_path = dir.join("demo.json");
        let _ = std::fs::remove_file(&manifest_path);
        let log = std::fs::File::create(dir.with_extension("log")).unwrap();
        let child = Command::new(BINARY)
            .args(["demo", "--dir"])
            .arg(dir)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut demo = Demo { child };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(text) = std::fs::read_to_string(&manifest_path)
                && let Ok(manifest) = serde_json::from_str(&text)
            {
                return (demo, manifest);
            }
            if let Ok(Some(status)) = demo.child.try_wait() {
                panic!(
                    "demo exited with {status}: {}",
                    std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "demo.json not written within 90 s: {}",
                std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "demo exited with {status} after SIGTERM");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "demo did not stop within 30 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A plain HTTP/1.1 GET, as any client would make it.
fn get(url: &str, headers: &[(&str, &str)]) -> Response {
    let rest = url.strip_prefix("http://").unwrap();
    let (address, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect::<Vec<_>>();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked")
    }) {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|window| window == b"\r\n")
            .unwrap();
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn text(manifest: &serde_json::Value, pointer: &str) -> String {
    manifest
        .pointer(pointer)
        .and_then(|value| value.as_str())
        .unwrap_or_else(|| panic!("demo.json lacks {pointer}"))
        .to_owned()
}

/// The allowed, denied and listMethods calls of the demo's banner; returns the allowed call's
/// request id.
fn make_calls(manifest: &serde_json::Value) -> String {
    let client = text(manifest, "/clients/0/id");
    let server_id = text(manifest, "/clients/0/security_server");
    let servers = manifest["security_servers"].as_array().unwrap();
    let server = servers
        .iter()
        .find(|entry| entry["id"] == server_id.as_str())
        .unwrap();
    let client_url = server["client_url"].as_str().unwrap();
    let service = text(manifest, "/services/0/id");
    let headers = [("X-Road-Client", client.as_str())];

    // The security servers may still be fetching their first global configuration.
    let allowed_url = format!(
        "{client_url}/r1/{service}{}",
        text(manifest, "/services/0/allowed_path")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let allowed = loop {
        let response = get(&allowed_url, &headers);
        if response.status == 200 || Instant::now() > deadline {
            break response;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        allowed.status,
        200,
        "allowed call: {}",
        String::from_utf8_lossy(&allowed.body)
    );
    assert_eq!(allowed.header("X-Road-Client"), Some(client.as_str()));
    assert_eq!(allowed.header("X-Road-Service"), Some(service.as_str()));
    assert!(allowed.header("X-Road-Id").is_some_and(|id| !id.is_empty()));
    assert!(
        allowed
            .header("X-Road-Request-Hash")
            .is_some_and(|hash| !hash.is_empty())
    );
    assert!(allowed.header("X-Road-Error").is_none());
    let body: serde_json::Value = serde_json::from_slice(&allowed.body).unwrap();
    assert!(body["vaccinations"].is_array(), "{body}");

    let denied_url = format!(
        "{client_url}/r1/{service}{}",
        text(manifest, "/services/0/denied_path")
    );
    let denied = get(&denied_url, &headers);
    assert_eq!(
        denied.header("X-Road-Error"),
        Some("Server.ServerProxy.AccessDenied")
    );
    let error: serde_json::Value = serde_json::from_slice(&denied.body).unwrap();
    assert_eq!(error["type"], "Server.ServerProxy.AccessDenied");

    let subsystem = service.rsplit_once('/').unwrap().0;
    let methods = get(
        &format!("{client_url}/r1/{subsystem}/listMethods"),
        &headers,
    );
    assert_eq!(methods.status, 200);
    let methods: serde_json::Value = serde_json::from_slice(&methods.body).unwrap();
    assert!(
        methods
            .to_string()
            .contains(service.rsplit('/').next().unwrap()),
        "{methods}"
    );

    allowed
        .header("X-Road-Request-Id")
        .or(allowed.header("X-Road-Id"))
        .unwrap()
        .to_owned()
}

/// The banner's first command, with the real `curl` against the real binary.
fn curl_allowed_call(manifest: &serde_json::Value) {
    let client = text(manifest, "/clients/0/id");
    let server_id = text(manifest, "/clients/0/security_server");
    let servers = manifest["security_servers"].as_array().unwrap();
    let server = servers
        .iter()
        .find(|entry| entry["id"] == server_id.as_str())
        .unwrap();
    let url = format!(
        "{}/r1/{}{}",
        server["client_url"].as_str().unwrap(),
        text(manifest, "/services/0/id"),
        text(manifest, "/services/0/allowed_path")
    );
    let output = Command::new("curl")
        .args(["-s", "-i", "--max-time", "30", "-H"])
        .arg(format!("X-Road-Client: {client}"))
        .arg(&url)
        .output()
        .expect("curl is installed by scripts/install-deps.sh");
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-road-request-hash:"),
        "{answer}"
    );
    assert!(answer.contains("\"vaccinations\""), "{answer}");
}

/// Exports each log as the README shows: the trust anchors come from the server's cached global
/// configuration beside the log; the first round exports while the demo still runs.
fn audit_export_and_verify(manifest: &serde_json::Value, out_dir: &Path, round: u32) {
    for (index, server) in manifest["security_servers"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let log_dir = server["log_dir"].as_str().unwrap();
        let archive = out_dir.join(format!("round{round}-server{index}.archive"));
        let export = Command::new(BINARY)
            .args(["audit", "export", "--log", log_dir, "-o"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(
            export.status.success(),
            "export of {log_dir}: {}",
            String::from_utf8_lossy(&export.stderr)
        );
        let verify = Command::new(BINARY)
            .args(["audit", "verify", "--json"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "verify of {log_dir}: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        // The archive carries the cached global configuration and its approved TSAs, so every
        // time-stamp token present is verified with no extra flag (whether a 2 s stamping tick
        // fell before the export is timing, so the count of tokens is not asserted); the
        // signers' stapled OCSP responses are verified too.
        let report: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
        assert_eq!(report["global_configuration"], true, "{report}");
        assert_eq!(report["tokens_not_verified"], 0, "{report}");
        assert!(
            report["certificate_statuses_verified"].as_u64().unwrap() > 0,
            "{report}"
        );
    }
}

#[test]
fn demo_serves_calls_logs_them_verifiably_and_survives_a_restart() {
    let workspace = tempfile::tempdir().unwrap();
    let dir = workspace.path().join("demo");
    std::fs::create_dir(&dir).unwrap();

    let (demo, manifest) = Demo::start(&dir);
    assert_eq!(manifest["instance"], "DEV");
    assert!(manifest["security_servers"].as_array().unwrap().len() >= 2);
    let health = get(
        manifest["security_servers"][0]["health_url"]
            .as_str()
            .unwrap(),
        &[],
    );
    assert_eq!(health.status, 200);
    let metrics = get(
        manifest["security_servers"][0]["metrics_url"]
            .as_str()
            .unwrap(),
        &[],
    );
    assert_eq!(metrics.status, 200);
    let first_id = make_calls(&manifest);
    // Every security server logged its side of the calls durably, and timed the syncs.
    for server in manifest["security_servers"].as_array().unwrap() {
        let metrics = get(server["metrics_url"].as_str().unwrap(), &[]);
        let text = String::from_utf8_lossy(&metrics.body);
        let syncs: u64 = text
            .lines()
            .find_map(|line| line.strip_prefix("passerelle_message_log_sync_seconds_count "))
            .unwrap_or_else(|| panic!("no sync histogram in\n{text}"))
            .parse()
            .unwrap();
        assert!(syncs > 0, "{text}");
    }
    curl_allowed_call(&manifest);
    audit_export_and_verify(&manifest, workspace.path(), 1);
    demo.stop();

    let (demo, manifest_again) = Demo::start(&dir);
    assert_eq!(
        manifest_again["central"], manifest["central"],
        "the second start reuses the state"
    );
    let second_id = make_calls(&manifest_again);
    assert_ne!(first_id, second_id);
    demo.stop();
    audit_export_and_verify(&manifest_again, workspace.path(), 2);
}
