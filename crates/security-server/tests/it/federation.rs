//! The in-process federation the tests drive, and raw clients for both sides.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use passerelle_globalconf::{
    ApprovedCa, CertHash, GlobalConf, Member, MemberClass, SecurityServer, Settings,
};
use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_pki::devca::{DevCa, ExistingCa, IssueRequest, LeafKey, LeafProfile, Validity};
use passerelle_pki::merkle::{InclusionProof, leaf_hash};
use passerelle_pki::{Certificate, SigningKey};
use passerelle_protocol::envelope::SignatureEnvelope;
use passerelle_protocol::headers::{forwardable, headers_digest};
use passerelle_protocol::signing::{RequestSigningInput, SigningTime};
use passerelle_security_server::deps::{Clock, ExchangeLog, MemoryLog, StaticConf, SystemClock};
use passerelle_security_server::{Deps, RunningServer, ServerConfig, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) const CLIENT: &str = "DEV/GOV/EDUCATION/schools";
pub(crate) const PROVIDER: &str = "DEV/GOV/HEALTH/patients";

/// What the backend saw of one request.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) _method: String,
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
}

/// A key with its chain.
pub(crate) struct KeyPair {
    pub(crate) key: SigningKey,
    pub(crate) chain: Vec<Certificate>,
}

pub(crate) struct Federation {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) ca: DevCa,
    pub(crate) conf: Arc<StaticConf>,
    pub(crate) global: GlobalConf,
    pub(crate) health: RunningServer,
    pub(crate) education: RunningServer,
    pub(crate) health_log: Arc<MemoryLog>,
    pub(crate) education_log: Arc<MemoryLog>,
    pub(crate) seen: Arc<Mutex<Vec<Seen>>>,
    pub(crate) health_auth: KeyPair,
    pub(crate) education_auth: KeyPair,
    pub(crate) education_signing: KeyPair,
    pub(crate) health_signing: KeyPair,
    pub(crate) health_config_path: std::path::PathBuf,
}

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) max_body_bytes: Option<u64>,
    /// Both servers' clock (the system clock when `None`).
    pub(crate) clock: Option<Arc<dyn Clock>>,
    /// The health server's log (the in-memory `health_log` when `None`).
    pub(crate) health_log: Option<Arc<dyn ExchangeLog>>,
    /// Appended to the health server's configuration file.
    pub(crate) extra_health_toml: String,
    /// The education (consumer) server's `[limits] max_connections`.
    pub(crate) consumer_max_connections: Option<usize>,
    /// The education (consumer) server's `[limits] total_timeout_ms` (5000 when `None`).
    pub(crate) consumer_total_timeout_ms: Option<u64>,
}

pub(crate) fn issue(ca: &DevCa, dir: &Path, name: &str, profile: LeafProfile) -> KeyPair {
    let issued = ca
        .issue(&IssueRequest {
            profile,
            validity: Validity::days_from(SystemTime::now(), 30),
            key: LeafKey::Generate,
        })
        .unwrap();
    issued.write(&dir.join(name)).unwrap();
    KeyPair {
        key: issued.key.unwrap(),
        chain: issued.chain,
    }
}

pub(crate) fn auth_profile(name: &str) -> LeafProfile {
    LeafProfile::Auth {
        name: name.to_owned(),
        dns_names: vec![],
        ip_addresses: vec![],
    }
}

pub(crate) fn sign_profile(member: &str) -> LeafProfile {
    LeafProfile::Sign {
        member: member.parse().unwrap(),
    }
}

/// An OpenAPI document naming a server, as a backend would publish it.
const OPENAPI_DOCUMENT: &str = r#"{"openapi":"3.0.0","servers":[{"url":"http://10.0.0.7:9000"}],"paths":{"/v1/children/{id}":{"get":{}}}}"#;

/// Starts a backend: `/api/error/...` answers 404, `/slow/...` never answers, `/openapi.json`
/// answers [`OPENAPI_DOCUMENT`], anything else echoes the request as JSON.
async fn backend(seen: Arc<Mutex<Vec<Seen>>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let path_and_query = parts
                            .uri
                            .path_and_query()
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        seen.lock().unwrap().push(Seen {
                            _method: parts.method.to_string(),
                            path_and_query: path_and_query.clone(),
                            headers: parts.headers.clone(),
                        });
                        if path_and_query.starts_with("/slow") {
                            std::future::pending::<()>().await;
                        }
                        let mut response = if path_and_query == "/openapi.json" {
                            hyper::Response::new(Full::new(Bytes::from_static(
                                OPENAPI_DOCUMENT.as_bytes(),
                            )))
                        } else if path_and_query.starts_with("/api/error") {
                            let mut response = hyper::Response::new(Full::new(Bytes::from_static(
                                br#"{"error":"no such child"}"#,
                            )));
                            *response.status_mut() = StatusCode::NOT_FOUND;
                            response
                        } else {
                            let echo = serde_json::json!({
                                "method": parts.method.as_str(),
                                "path": path_and_query,
                                "body": String::from_utf8_lossy(&body),
                            });
                            hyper::Response::new(Full::new(Bytes::from(echo.to_string())))
                        };
                        response
                            .headers_mut()
                            .insert("content-type", HeaderValue::from_static("application/json"));
                        response
                            .headers_mut()
                            .insert("x-backend", HeaderValue::from_static("yes"));
                        // A backend must not be able to forge gateway headers.
                        response
                            .headers_mut()
                            .insert("x-road-error", HeaderValue::from_static("Forged.Error"));
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Federation {
    pub(crate) async fn start(options: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let ca = DevCa::init(
            &dir.path().join("ca"),
            "DEV",
            Validity::days_from(now, 60),
            ExistingCa::Refuse,
        )
        .unwrap();
        let health_auth = issue(&ca, dir.path(), "ss-health-auth", auth_profile("ss-health"));
        let education_auth = issue(
            &ca,
            dir.path(),
            "ss-education-auth",
            auth_profile("ss-education"),
        );
        let health_signing = issue(
            &ca,
            dir.path(),
            "health-sign",
            sign_profile("DEV/GOV/HEALTH"),
        );
        let education_signing = issue(
            &ca,
            dir.path(),
            "education-sign",
            sign_profile("DEV/GOV/EDUCATION"),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let backend = backend(Arc::clone(&seen)).await;
        std::fs::write(dir.path().join("openapi.json"), OPENAPI_DOCUMENT).unwrap();

        let d = dir.path().display();
        let max_body = options
            .max_body_bytes
            .map(|bytes| format!("max_body_bytes = {bytes}\n"))
            .unwrap_or_default();
        let health_toml = format!(
            r#"hosted = ["DEV/GOV/HEALTH/patients"]

[server]
id = "DEV/GOV/HEALTH/ss-health"

[auth]
key = "{d}/ss-health-auth.key.pem"
certificate = "{d}/ss-health-auth.chain.pem"

[[signing]]
member = "DEV/GOV/HEALTH"
key = "{d}/health-sign.key.pem"
certificate = "{d}/health-sign.chain.pem"

[listeners]
client_http = "127.0.0.1:0"
server = "127.0.0.1:0"
admin = "127.0.0.1:0"

[limits]
clock_skew_secs = 60
{max_body}
[[services]]
id = "DEV/GOV/HEALTH/patients/vaccinations"
backend = "http://{backend}/api"
openapi_file = "{d}/openapi.json"
endpoints = [{{ method = "GET", path = "/v1/children/*" }}, {{ method = "POST", path = "/v1/children" }}]

[[services]]
id = "DEV/GOV/HEALTH/patients/records"
backend = "http://{backend}/api"
openapi_url = "http://{backend}/openapi.json"

[[services]]
id = "DEV/GOV/HEALTH/patients/slow"
backend = "http://{backend}/slow"
timeout_ms = 300

[[services]]
id = "DEV/GOV/HEALTH/patients/down"
backend = "http://127.0.0.1:{down}/api"
openapi_url = "http://127.0.0.1:{down}/openapi.json"

[[services]]
id = "DEV/GOV/HEALTH/patients/closed"
backend = "http://{backend}/api"
enabled = false

[[local_groups]]
code = "schools"
members = ["DEV/GOV/EDUCATION/schools"]

[[access]]
subject = "subsystem:DEV/GOV/EDUCATION/schools"
service = "DEV/GOV/HEALTH/patients/vaccinations"

[[access]]
subject = "local-group:schools"
service = "DEV/GOV/HEALTH/patients/records"
endpoint = {{ method = "GET", path = "/public/**" }}

[[access]]
subject = "subsystem:DEV/GOV/EDUCATION/schools"
service = "DEV/GOV/HEALTH/patients/slow"

[[access]]
subject = "subsystem:DEV/GOV/EDUCATION/schools"
service = "DEV/GOV/HEALTH/patients/down"

[[access]]
subject = "subsystem:DEV/GOV/EDUCATION/schools"
service = "DEV/GOV/HEALTH/patients/closed"
{extra}"#,
            down = free_port(),
            extra = options
                .extra_health_toml
                .replace("BACKEND", &backend.to_string()),
        );
        let education_toml = format!(
            r#"hosted = ["DEV/GOV/EDUCATION/schools"]

[server]
id = "DEV/GOV/EDUCATION/ss-education"

[auth]
key = "{d}/ss-education-auth.key.pem"
certificate = "{d}/ss-education-auth.chain.pem"

[[signing]]
member = "DEV/GOV/EDUCATION"
key = "{d}/education-sign.key.pem"
certificate = "{d}/education-sign.chain.pem"

[listeners]
client_http = "127.0.0.1:0"
server = "127.0.0.1:0"
admin = "127.0.0.1:0"

[limits]
total_timeout_ms = {total_timeout_ms}
{max_body}{max_connections}"#,
            total_timeout_ms = options.consumer_total_timeout_ms.unwrap_or(5000),
            max_connections = options
                .consumer_max_connections
                .map(|limit| format!("\nmax_connections = {limit}\n"))
                .unwrap_or_default(),
        );
        let health_config_path = dir.path().join("health.toml");
        std::fs::write(&health_config_path, &health_toml).unwrap();
        std::fs::write(dir.path().join("education.toml"), &education_toml).unwrap();
        let health_config = ServerConfig::load(&health_config_path).unwrap();
        let education_config = ServerConfig::load(&dir.path().join("education.toml")).unwrap();

        let mut global = global_conf(
            &ca,
            now,
            &health_auth,
            &education_auth,
            "127.0.0.1:1",
            "127.0.0.1:1",
        );
        let conf = Arc::new(StaticConf::new(global.clone()));
        let health_log = Arc::new(MemoryLog::default());
        let education_log = Arc::new(MemoryLog::default());
        let clock: Arc<dyn Clock> = options.clock.clone().unwrap_or(Arc::new(SystemClock));
        let deps = |log: Arc<dyn ExchangeLog>| Deps {
            conf: conf.clone(),
            log,
            clock: Arc::clone(&clock),
        };
        let health_deps = deps(
            options
                .health_log
                .clone()
                .unwrap_or_else(|| health_log.clone()),
        );
        let health = start(health_config, health_deps).await.unwrap();
        let education = start(education_config, deps(education_log.clone()))
            .await
            .unwrap();
        global = global_conf(
            &ca,
            now,
            &health_auth,
            &education_auth,
            &health.server_addr.to_string(),
            &education.server_addr.to_string(),
        );
        conf.replace(global.clone());
        Federation {
            _dir: dir,
            ca,
            conf,
            global,
            health,
            education,
            health_log,
            education_log,
            seen,
            health_auth,
            education_auth,
            education_signing,
            health_signing,
            health_config_path,
        }
    }

    pub(crate) fn seen_paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|seen| seen.path_and_query.clone())
            .collect()
    }

    /// A local system's call to the education server's client side.
    pub(crate) async fn call(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        raw_http(
            self.education.client_addr.unwrap(),
            method,
            target,
            headers,
            body,
        )
        .await
    }

    /// The standard client call: `X-Road-Client` = schools.
    pub(crate) async fn call_as_school(&self, method: &str, target: &str, body: &[u8]) -> Reply {
        self.call(method, target, &[("X-Road-Client", CLIENT)], body)
            .await
    }

    /// Asserts that an ordinary call still succeeds (after a failure that must not stick).
    pub(crate) async fn assert_still_serves(&self) {
        let reply = self
            .call_as_school(
                "GET",
                "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/1",
                b"",
            )
            .await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
}

pub(crate) fn global_conf(
    ca: &DevCa,
    now: SystemTime,
    health: &KeyPair,
    education: &KeyPair,
    health_address: &str,
    education_address: &str,
) -> GlobalConf {
    let subsystem = |text: &str| text.parse::<SubsystemId>().unwrap();
    GlobalConf {
        instance: "DEV".parse().unwrap(),
        serial: 1,
        generated_at: now - Duration::from_secs(60),
        expires_at: now + Duration::from_secs(3600),
        member_classes: vec![MemberClass {
            code: "GOV".to_owned(),
            description: "government".to_owned(),
        }],
        members: vec![
            Member {
                id: "DEV/GOV/HEALTH".parse().unwrap(),
                name: "Ministry of Health".to_owned(),
                subsystems: vec![subsystem(PROVIDER)],
            },
            Member {
                id: "DEV/GOV/EDUCATION".parse().unwrap(),
                name: "Ministry of Education".to_owned(),
                subsystems: vec![subsystem(CLIENT), subsystem("DEV/GOV/EDUCATION/other")],
            },
        ],
        security_servers: vec![
            SecurityServer {
                id: "DEV/GOV/HEALTH/ss-health".parse().unwrap(),
                address: health_address.to_owned(),
                clients: vec![subsystem(PROVIDER)],
                auth_cert_hashes: vec![CertHash::of(&health.chain[0])],
            },
            SecurityServer {
                id: "DEV/GOV/EDUCATION/ss-education".parse().unwrap(),
                address: education_address.to_owned(),
                clients: vec![subsystem(CLIENT)],
                auth_cert_hashes: vec![CertHash::of(&education.chain[0])],
            },
        ],
        global_groups: vec![],
        approved_cas: vec![ApprovedCa {
            name: "Development CA".to_owned(),
            certificates: vec![ca.root().to_pem()],
            intermediates: vec![ca.intermediate().certificate.to_pem()],
            ocsp_responders: vec![],
        }],
        approved_tsas: vec![],
        services: vec![],
        settings: Settings::default(),
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The fault code of a gateway error, checking the JSON body agrees with the header.
    pub(crate) fn fault(&self) -> Option<String> {
        let code = self.header("x-road-error")?.to_owned();
        assert_eq!(self.json()["type"], code.as_str(), "{self:?}");
        assert!(
            self.json()["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{self:?}"
        );
        Some(code)
    }

    /// Asserts that this is the gateway error `code` with HTTP status `status`.
    pub(crate) fn assert_fault(&self, code: &str, status: u16) {
        assert_eq!(self.fault().as_deref(), Some(code), "{self:?}");
        assert_eq!(self.status, status, "{code}");
    }
}

/// Sends raw HTTP/1.1 bytes (so any request target can be tried) and parses the answer.
pub(crate) async fn raw_http(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!(
        "{method} {target} HTTP/1.1\r\nHost: gateway.local\r\nUser-Agent: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    Reply {
        status,
        headers,
        body: Bytes::copy_from_slice(&raw[split + 4..]),
    }
}

/// A test-only verifier that accepts any provider certificate (the raw peer probes the provider;
/// it is not what is under test).
#[derive(Debug)]
struct AcceptAnything;

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client configuration (no client certificate) that accepts any server certificate.
pub(crate) fn accept_anything_client() -> Arc<rustls::ClientConfig> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAnything))
    .with_no_client_auth();
    Arc::new(config)
}

/// A peer security server made by hand: connects with `auth` and sends crafted requests.
pub(crate) struct RawPeer {
    sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
}

impl RawPeer {
    pub(crate) async fn connect(address: SocketAddr, auth: &KeyPair) -> Self {
        let chain = auth
            .chain
            .iter()
            .map(|c| rustls_pki_types::CertificateDer::from(c.der().to_vec()))
            .collect();
        let key = rustls_pki_types::PrivateKeyDer::Pkcs8(auth.key.to_pkcs8_der().into());
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything))
        .with_client_auth_cert(chain, key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("peer").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .unwrap();
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        Self { sender }
    }

    pub(crate) async fn send(&mut self, request: Request<Full<Bytes>>) -> Reply {
        let response = self.sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }
}

/// A signed server-to-server request, built as a consumer server would (a batch of one).
pub(crate) struct Crafted<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) client: &'a str,
    pub(crate) message_id: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) body: &'a [u8],
    pub(crate) signing_time: SystemTime,
}

impl Crafted<'_> {
    pub(crate) fn new(target: &str) -> Crafted<'_> {
        Crafted {
            method: "GET",
            target,
            client: CLIENT,
            message_id: "m-1",
            request_id: "r-1",
            body: b"",
            signing_time: SystemTime::now(),
        }
    }

    /// Signs with `signer` and returns the request; `tamper` runs on the request after signing.
    pub(crate) fn build(&self, signer: &KeyPair) -> Request<Full<Bytes>> {
        let service: ServiceId =
            passerelle_ids::ServicePath::parse(self.target.split('?').next().unwrap())
                .unwrap()
                .service;
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let input = RequestSigningInput {
            message_id: self.message_id.to_owned(),
            request_id: self.request_id.to_owned(),
            client: self.client.parse().unwrap(),
            service,
            method: self.method.to_owned(),
            path_and_query: self.target.to_owned(),
            user_id: None,
            issue: None,
            represented_party: None,
            headers_digest: headers_digest(&forwardable(&headers)),
            body_digest: passerelle_pki::digest::sha256(self.body),
            signing_time: SigningTime::from_system_time(self.signing_time),
        };
        let root = leaf_hash(&input.encode());
        let envelope = SignatureEnvelope {
            signing_time: input.signing_time,
            algorithm: signer.key.algorithm(),
            signature: signer.key.sign(&root).unwrap(),
            signer_chain: signer.chain.iter().map(|c| c.der().to_vec()).collect(),
            batch_root: root,
            proof: InclusionProof {
                leaf_index: 0,
                tree_size: 1,
                path: vec![],
            },
        };
        envelope.write(&mut headers);
        headers.insert("x-road-client", HeaderValue::from_str(self.client).unwrap());
        headers.insert("x-road-id", HeaderValue::from_str(self.message_id).unwrap());
        headers.insert(
            "x-road-request-id",
            HeaderValue::from_str(self.request_id).unwrap(),
        );
        let mut request = Request::new(Full::new(Bytes::copy_from_slice(self.body)));
        *request.method_mut() = self.method.parse().unwrap();
        *request.uri_mut() = format!("https://peer{}", self.target).parse().unwrap();
        *request.headers_mut() = headers;
        request
    }
}
