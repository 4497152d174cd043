//! The development trust services over HTTP: the OCSP responder follows the index as it
//! changes, answers POST and RFC 6960 GET requests and stock `openssl ocsp`; the TSA's tokens
//! verify. (The bounded HTTP clients are the security server's and are tested there.)

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use passerelle_central_server::Clock;
use passerelle_central_server::trust_services::{self, RunningTrustServices};
use passerelle_ids::MemberId;
use passerelle_pki::devca::{
    DevCa, ExistingCa, IssueRequest, LeafKey, LeafProfile, Validity, files,
};
use passerelle_pki::ocsp::{self, OcspError};
use passerelle_pki::revocation::{RevocationIndex, RevocationReason};
use passerelle_pki::tsp::{self, TspError};
use passerelle_pki::{Certificate, digest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::epoch;

const FRESHNESS: Duration = Duration::from_secs(600);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn pinned() -> Clock {
    Arc::new(epoch)
}

/// A development CA valid around both the pinned and the real clock, with one member signing
/// certificate written as `sign.{key,cert,chain}.pem`.
fn ca_with_member(dir: &Path) -> (DevCa, Certificate) {
    let validity = Validity {
        not_before: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(2_300_000_000),
    };
    let ca = DevCa::init(dir, "DEV", validity, ExistingCa::Refuse).unwrap();
    let issued = ca
        .issue(&IssueRequest {
            profile: LeafProfile::Sign {
                member: "DEV/GOV/HEALTH".parse::<MemberId>().unwrap(),
            },
            validity,
            key: LeafKey::Generate,
        })
        .unwrap();
    issued.write(&dir.join("sign")).unwrap();
    (ca, issued.certificate)
}

fn revoke(ca: &DevCa, certificate: &Certificate, now: SystemTime) {
    let path = ca.path(files::INDEX);
    let mut index = RevocationIndex::load(&path).unwrap();
    index
        .revoke(
            &certificate.serial_hex(),
            RevocationReason::KeyCompromise,
            now,
        )
        .unwrap();
    index.save(&path).unwrap();
}

async fn ask(services: &RunningTrustServices, request: &[u8]) -> Vec<u8> {
    post(
        services.addr,
        "/ocsp",
        trust_services::OCSP_REQUEST,
        request,
    )
    .await
}

/// One HTTP/1.1 POST with `Connection: close`; the body of a 200 answer.
async fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    raw[split + 4..].to_vec()
}

#[tokio::test]
async fn responder_follows_the_index_without_restarting() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_with_member(dir.path());
    let issuer = ca.intermediate().certificate.clone();
    let services = trust_services::start(dir.path(), loopback(), Some(pinned()))
        .await
        .unwrap();
    let request = ocsp::request(&leaf, &issuer).unwrap();

    let status = ocsp::verify(
        &ask(&services, &request).await,
        &leaf,
        &issuer,
        epoch(),
        FRESHNESS,
    )
    .unwrap();
    assert_eq!(status.this_update, epoch());

    // The response ages with the verifier's clock, not the responder's.
    let error = ocsp::verify(
        &ask(&services, &request).await,
        &leaf,
        &issuer,
        epoch() + Duration::from_secs(3600),
        FRESHNESS,
    )
    .unwrap_err();
    assert!(matches!(error, OcspError::Stale { .. }), "{error}");

    let revoked_at = epoch() - Duration::from_secs(30);
    revoke(&ca, &leaf, revoked_at);
    let error = ocsp::verify(
        &ask(&services, &request).await,
        &leaf,
        &issuer,
        epoch(),
        FRESHNESS,
    )
    .unwrap_err();
    assert_eq!(
        error,
        OcspError::Revoked {
            serial: leaf.serial_hex(),
            at: revoked_at,
            reason: RevocationReason::KeyCompromise
        }
    );

    // A serial the index no longer lists.
    std::fs::write(ca.path(files::INDEX), "").unwrap();
    let error = ocsp::verify(
        &ask(&services, &request).await,
        &leaf,
        &issuer,
        epoch(),
        FRESHNESS,
    )
    .unwrap_err();
    assert!(matches!(error, OcspError::Unknown { .. }), "{error}");

    services.shutdown().await;
}

#[tokio::test]
async fn responder_answers_rfc_6960_get_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_with_member(dir.path());
    let issuer = ca.intermediate().certificate.clone();
    let services = trust_services::start(dir.path(), loopback(), Some(pinned()))
        .await
        .unwrap();
    let request = ocsp::request(&leaf, &issuer).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
    let encoded =
        percent_encoding::utf8_percent_encode(&encoded, percent_encoding::NON_ALPHANUMERIC);

    let mut stream = tokio::net::TcpStream::connect(services.addr).await.unwrap();
    stream
        .write_all(format!("GET /ocsp/{encoded} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.0 200"), "{head}");
    assert!(
        head.contains("content-type: application/ocsp-response"),
        "{head}"
    );
    ocsp::verify(&answer[split + 4..], &leaf, &issuer, epoch(), FRESHNESS).unwrap();
    services.shutdown().await;
}

#[tokio::test]
async fn openssl_ocsp_client_reads_good_then_revoked_from_our_responder() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf) = ca_with_member(dir.path());
    // openssl checks the response's times against the real clock.
    let services = trust_services::start(dir.path(), loopback(), None)
        .await
        .unwrap();
    let url = format!("http://{}", services.addr);
    let query = |dir: std::path::PathBuf, url: String| {
        tokio::task::spawn_blocking(move || {
            let output = std::process::Command::new("openssl")
                .args([
                    "ocsp",
                    "-issuer",
                    files::INTERMEDIATE_CERT,
                    "-cert",
                    "sign.cert.pem",
                    "-url",
                    &url,
                    "-CAfile",
                    files::ROOT_CERT,
                    "-verify_other",
                    files::INTERMEDIATE_CERT,
                    "-resp_text",
                ])
                .current_dir(dir)
                .output()
                .expect("the openssl command-line tool must be installed to run these tests");
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        })
    };
    let output = query(dir.path().to_path_buf(), url.clone()).await.unwrap();
    assert!(output.contains("Response verify OK"), "{output}");
    assert!(output.contains("sign.cert.pem: good"), "{output}");

    revoke(&ca, &leaf, SystemTime::now());
    let output = query(dir.path().to_path_buf(), url).await.unwrap();
    assert!(output.contains("Response verify OK"), "{output}");
    assert!(output.contains("sign.cert.pem: revoked"), "{output}");
    assert!(
        output.contains("Revocation Reason: keyCompromise"),
        "{output}"
    );
    services.shutdown().await;
}

#[tokio::test]
async fn tsa_stamps_over_http_and_tokens_verify_against_the_approved_tsa() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = ca_with_member(dir.path());
    let services = trust_services::start(dir.path(), loopback(), Some(pinned()))
        .await
        .unwrap();
    let imprint = digest::sha256(b"batch root");
    let approved = [ca.tsa().certificate.clone()];
    let mut serials = Vec::new();
    for _ in 0..2 {
        let query = tsp::request(&imprint, Some(&[1, 2, 3])).unwrap();
        let response = post(
            services.addr,
            "/tsa",
            trust_services::TIMESTAMP_QUERY,
            &query,
        )
        .await;
        let token = tsp::token_from_response(&response).unwrap();
        assert_eq!(
            tsp::verify_token(&token, &imprint, &approved).unwrap(),
            epoch()
        );
        let error = tsp::verify_token(&token, &digest::sha256(b"other"), &approved).unwrap_err();
        assert!(matches!(error, TspError::ImprintMismatch { .. }), "{error}");
        serials.push(token);
    }
    assert_ne!(
        serials[0], serials[1],
        "each token has its own serial number"
    );

    let refusal = post(
        services.addr,
        "/tsa",
        trust_services::TIMESTAMP_QUERY,
        b"garbage",
    )
    .await;
    assert!(matches!(
        tsp::token_from_response(&refusal),
        Err(TspError::Rejected { status: 2, .. })
    ));
    services.shutdown().await;
}
