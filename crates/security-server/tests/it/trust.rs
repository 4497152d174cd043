//! Trust services in the exchange: OCSP responses fetched, stapled, logged and checked (each
//! refusal with its own code, and a revoked certificate at the exchange level against a real
//! `openssl ocsp`), failing closed when the responder stays away, and the message log stamped
//! by a TSA with a grace period measured on a clock the test sets.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use passerelle_globalconf::{ApprovedTsa, GlobalConf};
use passerelle_messagelog::{Durability, Evidence, LogOptions, MessageLog};
use passerelle_pki::devca::{DevCa, ExistingCa, Validity, files};
use passerelle_pki::revocation::{RevocationIndex, RevocationReason};
use passerelle_pki::{Certificate, ocsp, tsp};
use passerelle_protocol::envelope::{AUTH_CERTIFICATE_STATUS, SIGNER_CERTIFICATE_STATUS};
use passerelle_security_server::deps::{DurableLog, ManualClock};
use passerelle_security_server::trust_client::{self, Limits, fetch_ocsp_response};

use crate::federation::{Crafted, Federation, Options, RawPeer};

const VACCINATIONS: &str = "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/7";

/// A loopback HTTP/1.1 server answering every POST with `answer(body)`: status, content type
/// and body.
type Answer = dyn Fn(Vec<u8>) -> (u16, &'static str, Vec<u8>) + Send + Sync;

async fn serve(answer: Arc<Answer>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let answer = Arc::clone(&answer);
                    async move {
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let (status, content_type, body) = answer(body.to_vec());
                        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                        response
                            .headers_mut()
                            .insert("content-type", HeaderValue::from_static(content_type));
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

/// The development responder over the CA's `index.txt` (re-read on every request); answers 503
/// while `up` is false.
async fn responder(ca_dir: PathBuf, up: Arc<AtomicBool>) -> String {
    let answer = move |request: Vec<u8>| {
        if !up.load(Ordering::SeqCst) {
            return (503, "text/plain", b"down".to_vec());
        }
        let ca = DevCa::open(&ca_dir).unwrap();
        let index = RevocationIndex::load(&ca.path(files::INDEX)).unwrap();
        let response = ocsp::respond(
            &request,
            &ca.intermediate().certificate,
            &index,
            ca.ocsp(),
            SystemTime::now(),
        );
        (200, trust_client::OCSP_RESPONSE, response)
    };
    format!("http://{}/ocsp", serve(Arc::new(answer)).await)
}

/// The development TSA, stamping at `clock`'s time; answers 503 while `up` is false. Counts
/// the tokens it made.
async fn tsa(
    ca_dir: PathBuf,
    up: Arc<AtomicBool>,
    clock: Arc<ManualClock>,
    stamped: Arc<AtomicU64>,
) -> String {
    use passerelle_security_server::deps::Clock as _;
    let answer = move |query: Vec<u8>| {
        if !up.load(Ordering::SeqCst) {
            return (503, "text/plain", b"down".to_vec());
        }
        let ca = DevCa::open(&ca_dir).unwrap();
        let serial = stamped.fetch_add(1, Ordering::SeqCst) + 1;
        let reply = tsp::respond(&query, ca.tsa(), &serial.to_be_bytes(), clock.now());
        (200, trust_client::TIMESTAMP_REPLY, reply)
    };
    format!("http://{}/tsa", serve(Arc::new(answer)).await)
}

/// Replaces the federation's configuration with `change` applied (a new serial, as a poll
/// would bring).
fn reconfigure(federation: &mut Federation, change: impl Fn(&mut GlobalConf)) {
    change(&mut federation.global);
    federation.global.serial += 1;
    federation.conf.replace(federation.global.clone());
}

/// The development CA of a federation is made inside `Federation::start`; a responder over it
/// can only start afterwards, so the federation starts without one and is then reconfigured.
async fn federation_with_responder(options: Options) -> (Federation, Arc<AtomicBool>) {
    let mut federation = Federation::start(options).await;
    let up = Arc::new(AtomicBool::new(true));
    let url = responder(federation.ca.dir().to_path_buf(), Arc::clone(&up)).await;
    reconfigure(&mut federation, |global| {
        global.approved_cas[0].ocsp_responders = vec![url.clone()];
    });
    federation.health.refresh_certificate_status().await;
    federation.education.refresh_certificate_status().await;
    (federation, up)
}

fn statuses(health: &serde_json::Value) -> Vec<String> {
    health["certificate_status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn stapled_statuses_travel_both_ways_are_checked_and_logged() {
    let (federation, _up) = federation_with_responder(Options::default()).await;
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    for log in [&federation.health_log, &federation.education_log] {
        let record = log.records().pop().unwrap();
        for part in [&record.request, &record.response] {
            let der = part.certificate_status.as_ref().expect("status logged");
            assert!(der.der().unwrap().len() > 100);
        }
    }
    // Each side keeps the other server's TLS certificate and the status it stapled for it.
    let issuer = &federation.ca.intermediate().certificate;
    for (log, peer_auth) in [
        (&federation.health_log, &federation.education_auth),
        (&federation.education_log, &federation.health_auth),
    ] {
        let record = log.records().pop().unwrap();
        let peer = record
            .peer_authentication
            .expect("peer authentication logged");
        assert_eq!(
            peer.certificate_chain,
            [Evidence::Der(peer_auth.chain[0].der().to_vec())]
        );
        let status = peer.certificate_status.expect("peer auth status logged");
        ocsp::verify(
            status.der().unwrap(),
            &peer_auth.chain[0],
            issuer,
            SystemTime::now(),
            Duration::from_secs(3600),
        )
        .unwrap();
    }
    let (healthy, report) = federation.health.health();
    assert!(healthy, "{report}");
    assert_eq!(statuses(&report), ["good", "good"], "{report}");
    assert!(
        report["certificate_status"][0]["age_secs"]
            .as_u64()
            .unwrap()
            < 60
    );
    let metrics = federation.health.metrics();
    assert!(
        metrics.contains("passerelle_certificate_status_age_seconds{role=\"authentication\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "passerelle_certificate_status_good{role=\"signing DEV/GOV/HEALTH\",status=\"good\"} 1"
        ),
        "{metrics}"
    );
}

/// An OCSP response for `certificate` made by the development responder code directly.
fn response_for(
    ca: &DevCa,
    certificate: &Certificate,
    index: &RevocationIndex,
    responder: &passerelle_pki::devca::Credential,
    at: SystemTime,
) -> Vec<u8> {
    let issuer = &ca.intermediate().certificate;
    ocsp::respond(
        &ocsp::request(certificate, issuer).unwrap(),
        issuer,
        index,
        responder,
        at,
    )
}

#[tokio::test]
async fn each_refused_stapled_status_answers_its_own_code() {
    let (federation, _up) = federation_with_responder(Options::default()).await;
    let ca = &federation.ca;
    let now = SystemTime::now();
    let signing = &federation.education_signing.chain[0];
    let auth = &federation.education_auth.chain[0];
    let index = RevocationIndex::load(&ca.path(files::INDEX)).unwrap();
    let mut revoked = index.clone();
    revoked
        .revoke(&signing.serial_hex(), RevocationReason::KeyCompromise, now)
        .unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = DevCa::init(
        other_dir.path(),
        "DEV",
        Validity::days_from(now, 30),
        ExistingCa::Refuse,
    )
    .unwrap();
    let good_auth = response_for(ca, auth, &index, ca.ocsp(), now);
    let cases: Vec<(&str, Option<Vec<u8>>, u16, &str)> = vec![
        (
            "missing",
            None,
            400,
            "Server.ServerProxy.InvalidCertificateStatus",
        ),
        (
            "revoked",
            Some(response_for(ca, signing, &revoked, ca.ocsp(), now)),
            403,
            "Server.ServerProxy.CertificateRevoked",
        ),
        (
            "unknown",
            Some(response_for(
                ca,
                signing,
                &RevocationIndex::parse(""),
                ca.ocsp(),
                now,
            )),
            403,
            "Server.ServerProxy.CertificateStatusUnknown",
        ),
        (
            "stale",
            Some(response_for(
                ca,
                signing,
                &index,
                ca.ocsp(),
                now - Duration::from_secs(7200),
            )),
            400,
            "Server.ServerProxy.CertificateStatusStale",
        ),
        (
            "forged",
            Some(response_for(ca, signing, &index, other.ocsp(), now)),
            400,
            "Server.ServerProxy.InvalidCertificateStatus",
        ),
        (
            "another certificate's",
            Some(good_auth.clone()),
            400,
            "Server.ServerProxy.InvalidCertificateStatus",
        ),
        (
            "good",
            Some(response_for(ca, signing, &index, ca.ocsp(), now)),
            200,
            "",
        ),
    ];
    let mut peer =
        RawPeer::connect(federation.health.server_addr, &federation.education_auth).await;
    for (position, (name, stapled, status, code)) in cases.into_iter().enumerate() {
        let message_id = format!("status-{position}");
        let mut crafted = Crafted::new(VACCINATIONS);
        crafted.message_id = &message_id;
        let mut request = crafted.build(&federation.education_signing);
        if let Some(der) = &stapled {
            passerelle_protocol::envelope::write_certificate_status(
                request.headers_mut(),
                SIGNER_CERTIFICATE_STATUS,
                Some(der),
            );
        }
        passerelle_protocol::envelope::write_certificate_status(
            request.headers_mut(),
            AUTH_CERTIFICATE_STATUS,
            Some(&good_auth),
        );
        let reply = peer.send(request).await;
        assert_eq!(reply.status, status, "{name}: {reply:?}");
        if code.is_empty() {
            assert!(reply.fault().is_none(), "{name}: {reply:?}");
        } else {
            assert_eq!(reply.fault().as_deref(), Some(code), "{name}: {reply:?}");
        }
    }
    // A good signing status but no status for the TLS authentication certificate.
    let mut crafted = Crafted::new(VACCINATIONS);
    crafted.message_id = "status-auth";
    let mut request = crafted.build(&federation.education_signing);
    passerelle_protocol::envelope::write_certificate_status(
        request.headers_mut(),
        SIGNER_CERTIFICATE_STATUS,
        Some(&response_for(ca, signing, &index, ca.ocsp(), now)),
    );
    let reply = peer.send(request).await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.InvalidCertificateStatus"),
        "{reply:?}"
    );
    assert!(
        federation.seen_paths().len() == 1,
        "only the good one reached the backend"
    );
}

#[tokio::test]
async fn a_responder_outage_is_survived_until_the_own_responses_are_too_old() {
    let start = SystemTime::now();
    let clock = Arc::new(ManualClock::new(start));
    let (mut federation, up) = federation_with_responder(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    reconfigure(&mut federation, |global| {
        global.settings.ocsp_freshness_secs = 600;
        global.expires_at = start + Duration::from_secs(86_400);
    });
    up.store(false, Ordering::SeqCst);
    clock.set(start + Duration::from_secs(400));
    federation.education.refresh_certificate_status().await;
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(reply.status, 200, "still fresh: {reply:?}");
    let (_, report) = federation.education.health();
    assert!(
        report["certificate_status"][1]["problem"]
            .as_str()
            .is_some_and(|problem| problem.contains("503")),
        "{report}"
    );

    clock.set(start + Duration::from_secs(700));
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ClientProxy.CertificateStatusUnavailable")
    );
    let (healthy, report) = federation.education.health();
    assert!(!healthy);
    assert_eq!(
        statuses(&report),
        ["unavailable", "unavailable"],
        "{report}"
    );

    // The responder is back: the next refresh heals it.
    up.store(true, Ordering::SeqCst);
    clock.set(SystemTime::now());
    federation.education.refresh_certificate_status().await;
    federation.health.refresh_certificate_status().await;
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

/// `openssl ocsp` on a free loopback port over the CA directory, killed when dropped.
struct OpensslResponder {
    child: Child,
    url: String,
}

impl OpensslResponder {
    fn start(ca_dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("openssl")
            .args([
                "ocsp",
                "-index",
                files::INDEX,
                "-port",
                &port.to_string(),
                "-rsigner",
                "ocsp.cert.pem",
                "-rkey",
                "ocsp.key.pem",
                "-CA",
                files::INTERMEDIATE_CERT,
                "-ndays",
                "1",
            ])
            .current_dir(ca_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl command-line tool must be installed to run these tests");
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        loop {
            let line = lines
                .next()
                .expect("openssl ocsp exited before accepting connections")
                .unwrap();
            if line.contains("waiting for OCSP client connections") {
                break;
            }
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for OpensslResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn an_exchange_signed_with_a_revoked_certificate_fails_against_openssl_ocsp() {
    let mut federation = Federation::start(Options::default()).await;
    let ca_dir = federation.ca.dir().to_path_buf();
    let responder = OpensslResponder::start(&ca_dir);
    let url = responder.url.clone();
    reconfigure(&mut federation, |global| {
        global.approved_cas[0].ocsp_responders = vec![url.clone()];
    });
    federation.health.refresh_certificate_status().await;
    federation.education.refresh_certificate_status().await;
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(reply.status, 200, "openssl says good: {reply:?}");
    drop(responder);

    // Revoke the consumer member's signing certificate in the index (what `openssl ca -revoke`
    // does; openssl's tool refuses member subjects, see the pki tests), and restart the
    // responder, which reads the index when it starts.
    let signing = federation.education_signing.chain[0].clone();
    let index_path = federation.ca.path(files::INDEX);
    let mut index = RevocationIndex::load(&index_path).unwrap();
    index
        .revoke(
            &signing.serial_hex(),
            RevocationReason::KeyCompromise,
            SystemTime::now(),
        )
        .unwrap();
    index.save(&index_path).unwrap();
    let responder = OpensslResponder::start(&ca_dir);
    let url = responder.url.clone();
    reconfigure(&mut federation, |global| {
        global.approved_cas[0].ocsp_responders = vec![url.clone()];
    });

    // A peer that staples openssl's answer beside a signature made with the revoked key is
    // refused before the backend sees anything.
    let issuer = &federation.ca.intermediate().certificate;
    let revoked_status = fetch_ocsp_response(
        &responder.url,
        &ocsp::request(&signing, issuer).unwrap(),
        Limits::DEFAULT,
    )
    .await
    .unwrap();
    let auth = &federation.education_auth.chain[0];
    let auth_status = fetch_ocsp_response(
        &responder.url,
        &ocsp::request(auth, issuer).unwrap(),
        Limits::DEFAULT,
    )
    .await
    .unwrap();
    let seen_before = federation.seen_paths().len();
    let mut peer =
        RawPeer::connect(federation.health.server_addr, &federation.education_auth).await;
    let mut crafted = Crafted::new(VACCINATIONS);
    crafted.message_id = "revoked-1";
    let mut request = crafted.build(&federation.education_signing);
    passerelle_protocol::envelope::write_certificate_status(
        request.headers_mut(),
        SIGNER_CERTIFICATE_STATUS,
        Some(&revoked_status),
    );
    passerelle_protocol::envelope::write_certificate_status(
        request.headers_mut(),
        AUTH_CERTIFICATE_STATUS,
        Some(&auth_status),
    );
    let reply = peer.send(request).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.CertificateRevoked")
    );
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
    assert_eq!(federation.seen_paths().len(), seen_before);

    // The consumer's own server learns it on its next refresh and stops signing with it.
    federation.education.refresh_certificate_status().await;
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ClientProxy.CertificateStatusUnavailable"),
        "{reply:?}"
    );
    let (healthy, report) = federation.education.health();
    assert!(!healthy);
    assert!(report.to_string().contains("revoked"), "{report}");
    assert_eq!(federation.seen_paths().len(), seen_before);
}

#[tokio::test]
async fn time_stamping_has_a_grace_period_then_stamps_the_backlog() {
    let start = SystemTime::now();
    let clock = Arc::new(ManualClock::new(start));
    let log_dir = tempfile::tempdir().unwrap();
    let log = MessageLog::open(log_dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
    let mut federation = Federation::start(Options {
        clock: Some(clock.clone()),
        health_log: Some(Arc::new(DurableLog::new(log, false))),
        extra_health_toml: r#"
[[services]]
id = "DEV/GOV/HEALTH/patients/stamped"
backend = "http://BACKEND/api"
timestamp = "immediate"

[[access]]
subject = "subsystem:DEV/GOV/EDUCATION/schools"
service = "DEV/GOV/HEALTH/patients/stamped"

[timestamping]
grace_secs = 100
"#
        .to_owned(),
        ..Options::default()
    })
    .await;
    let up = Arc::new(AtomicBool::new(true));
    let stamped = Arc::new(AtomicU64::new(0));
    let url = tsa(
        federation.ca.dir().to_path_buf(),
        Arc::clone(&up),
        Arc::clone(&clock),
        Arc::clone(&stamped),
    )
    .await;
    let tsa_certificate = federation.ca.tsa().certificate.to_pem();
    reconfigure(&mut federation, |global| {
        global.expires_at = start + Duration::from_secs(86_400);
        global.approved_tsas = vec![ApprovedTsa {
            name: "development TSA".to_owned(),
            url: url.clone(),
            certificate: tsa_certificate.clone(),
        }];
    });

    assert_eq!(call(&federation).await.status, 200);
    let first = federation.health.stamp_now().await.unwrap().unwrap();
    assert_eq!(first.first_sequence, 0);
    assert_eq!(stamped.load(Ordering::SeqCst), 1);

    // The TSA goes away: exchanges go on within the grace period.
    up.store(false, Ordering::SeqCst);
    assert_eq!(call(&federation).await.status, 200);
    let error = federation.health.stamp_now().await.unwrap_err();
    assert!(error.contains("503"), "{error}");
    clock.set(start + Duration::from_secs(60));
    assert_eq!(call(&federation).await.status, 200);
    assert!(federation.health.stamp_now().await.is_err());
    clock.set(start + Duration::from_secs(100));
    assert_eq!(
        call(&federation).await.status,
        200,
        "exactly at the end of the grace period"
    );

    // Beyond it, the provider stops, and says why.
    clock.set(start + Duration::from_secs(101));
    let reply = call(&federation).await;
    assert_eq!(reply.status, 500, "{reply:?}");
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.LoggingFailed.TimestamperFailed")
    );
    let (healthy, report) = federation.health.health();
    assert!(!healthy);
    assert_eq!(report["time_stamping"]["healthy"], false, "{report}");
    assert!(
        federation
            .health
            .metrics()
            .contains("passerelle_timestamping_failing_seconds 101"),
    );

    // The TSA is back: one checkpoint stamps the whole backlog and exchanges resume.
    up.store(true, Ordering::SeqCst);
    let backlog = federation.health.stamp_now().await.unwrap().unwrap();
    assert_eq!(backlog.first_sequence, first.entry_sequence);
    assert!(
        backlog.last_sequence >= first.entry_sequence + 3,
        "{backlog:?}"
    );
    assert_eq!(call(&federation).await.status, 200);
    assert!(federation.health.health().0);

    // An immediately stamped service is answered only once its own checkpoint is stamped,
    // and is refused at once when no TSA answers, grace period or not.
    let stamped_path = "/r1/DEV/GOV/HEALTH/patients/stamped/v1/x";
    let before = stamped.load(Ordering::SeqCst);
    let reply = federation.call_as_school("GET", stamped_path, b"").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(stamped.load(Ordering::SeqCst), before + 1);
    assert_eq!(call(&federation).await.status, 200);
    assert_eq!(
        stamped.load(Ordering::SeqCst),
        before + 1,
        "batch services wait"
    );
    up.store(false, Ordering::SeqCst);
    let reply = federation.call_as_school("GET", stamped_path, b"").await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.LoggingFailed.TimestamperFailed"),
        "{reply:?}"
    );
}

async fn call(federation: &Federation) -> crate::federation::Reply {
    federation.call_as_school("GET", VACCINATIONS, b"").await
}

#[tokio::test]
async fn the_trust_client_bounds_time_size_and_content_type() {
    let big = serve(Arc::new(|_| {
        (200, trust_client::OCSP_RESPONSE, vec![0x30; 4096])
    }))
    .await;
    let tiny = Limits {
        timeout: Duration::from_secs(10),
        max_response_bytes: 16,
    };
    let error = fetch_ocsp_response(&format!("http://{big}/ocsp"), b"q", tiny)
        .await
        .unwrap_err();
    assert!(error.reason.contains("reading the answer"), "{error}");
    let answer = fetch_ocsp_response(&format!("http://{big}/ocsp"), b"q", Limits::DEFAULT)
        .await
        .unwrap();
    assert_eq!(answer.len(), 4096);

    let html = serve(Arc::new(|_| (200, "text/html", b"<p>".to_vec()))).await;
    let error = fetch_ocsp_response(&format!("http://{html}/"), b"q", Limits::DEFAULT)
        .await
        .unwrap_err();
    assert!(error.reason.contains("content type"), "{error}");
    let error =
        trust_client::fetch_timestamp_response(&format!("http://{big}/tsa"), b"q", Limits::DEFAULT)
            .await
            .unwrap_err();
    assert!(
        error
            .reason
            .contains("expected application/timestamp-reply"),
        "{error}"
    );

    // A server that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/ocsp", silent.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let (_stream, _) = silent.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let quick = Limits {
        timeout: Duration::from_millis(200),
        max_response_bytes: 4096,
    };
    let error = fetch_ocsp_response(&silent_url, b"q", quick)
        .await
        .unwrap_err();
    assert!(error.reason.contains("no answer within"), "{error}");
    holder.abort();

    // Nothing listening, and a URL that is not plain HTTP.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = fetch_ocsp_response(&format!("http://{closed}/"), b"q", Limits::DEFAULT)
        .await
        .unwrap_err();
    assert!(error.reason.contains("connect"), "{error}");
    let error = fetch_ocsp_response("https://ocsp.example/", b"q", Limits::DEFAULT)
        .await
        .unwrap_err();
    assert!(error.reason.contains("only http"), "{error}");
}
