//! OCSP: requests and verification against a real `openssl ocsp` responder, and the
//! development responder's answers checked by Passerelle and by openssl, with each way of
//! failing reported as its own error.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use passerelle_ids::MemberId;
use passerelle_pki::devca::{
    self, Credential, DevCa, ExistingCa, IssueRequest, LeafKey, LeafProfile, Validity,
};
use passerelle_pki::ocsp::{self, OcspError, ResponderStatus};
use passerelle_pki::revocation::{RevocationIndex, RevocationReason};
use passerelle_pki::{Certificate, SigningKey};

use crate::{date, openssl};

const FRESHNESS: Duration = Duration::from_secs(600);

fn ca(dir: &Path) -> DevCa {
    DevCa::init(
        dir,
        "DEV",
        Validity {
            not_before: date("2025-01-01"),
            not_after: date("2045-01-01"),
        },
        ExistingCa::Refuse,
    )
    .unwrap()
}

/// A TLS authentication certificate written as `NAME.{key,cert,chain}.pem` in the CA directory.
/// (`openssl ca -revoke` is given these: it refuses member signing certificates, whose index
/// line does not escape the `/` of the member id in the subject as openssl does.)
fn issue_auth(ca: &DevCa, name: &str) -> Certificate {
    let issued = ca
        .issue(&IssueRequest {
            profile: LeafProfile::Auth {
                name: name.to_owned(),
                dns_names: vec!["localhost".to_owned()],
                ip_addresses: Vec::new(),
            },
            validity: Validity {
                not_before: date("2025-01-01"),
                not_after: date("2040-01-01"),
            },
            key: LeafKey::Generate,
        })
        .unwrap();
    issued.write(&ca.dir().join(name)).unwrap();
    issued.certificate
}

fn issue_sign(ca: &DevCa, member: &str) -> Certificate {
    let issued = ca
        .issue(&IssueRequest {
            profile: LeafProfile::Sign {
                member: member.parse::<MemberId>().unwrap(),
            },
            validity: Validity {
                not_before: date("2025-01-01"),
                not_after: date("2040-01-01"),
            },
            key: LeafKey::Generate,
        })
        .unwrap();
    issued
        .write(&ca.dir().join(member.replace('/', "-")))
        .unwrap();
    issued.certificate
}

fn index(ca: &DevCa) -> RevocationIndex {
    RevocationIndex::load(&ca.path(devca::files::INDEX)).unwrap()
}

/// An `openssl ocsp` responder on a free loopback port, killed when dropped.
struct OpensslResponder {
    child: Child,
    port: u16,
}

impl OpensslResponder {
    fn start(ca_dir: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("openssl")
            .args([
                "ocsp",
                "-index",
                devca::files::INDEX,
                "-port",
                &port.to_string(),
                "-rsigner",
                "ocsp.cert.pem",
                "-rkey",
                "ocsp.key.pem",
                "-CA",
                devca::files::INTERMEDIATE_CERT,
                "-ndays",
                "1",
            ])
            .current_dir(ca_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl command-line tool must be installed to run these tests");
        // openssl says on stderr when it accepts connections; read up to that line.
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
        OpensslResponder { child, port }
    }
}

impl Drop for OpensslResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs `body` over HTTP/1.0 and returns the response body (the test fails on a non-200).
pub(crate) fn http_post(port: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..split]);
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    response[split + 4..].to_vec()
}

#[test]
fn openssl_responder_says_good_then_revoked_after_openssl_ca_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let leaf = issue_auth(&ca, "ss-health");
    let other = issue_sign(&ca, "DEV/GOV/EDUCATION");
    let issuer = &ca.intermediate().certificate;
    let request = ocsp::request(&leaf, issuer).unwrap();

    {
        let responder = OpensslResponder::start(dir.path());
        let response = http_post(responder.port, "application/ocsp-request", &request);
        let status = ocsp::verify(&response, &leaf, issuer, SystemTime::now(), FRESHNESS).unwrap();
        assert!(status.responder.contains("OCSP Responder"), "{status:?}");
        assert!(status.age(SystemTime::now()) < FRESHNESS);
    }

    // Revoke with openssl's own CA tool, which rewrites index.txt.
    std::fs::write(
        dir.path().join("ca.cnf"),
        "[ca]\ndefault_ca = dev\n[dev]\ndatabase = index.txt\n\
         certificate = intermediate.cert.pem\nprivate_key = intermediate.key.pem\n\
         default_md = sha256\n",
    )
    .unwrap();
    openssl(
        dir.path(),
        &[
            "ca",
            "-config",
            "ca.cnf",
            "-revoke",
            "ss-health.cert.pem",
            "-crl_reason",
            "keyCompromise",
        ],
    );

    // openssl ocsp reads the index when it starts.
    let responder = OpensslResponder::start(dir.path());
    let response = http_post(responder.port, "application/ocsp-request", &request);
    let error = ocsp::verify(&response, &leaf, issuer, SystemTime::now(), FRESHNESS).unwrap_err();
    let OcspError::Revoked { serial, reason, at } = &error else {
        panic!("expected revoked, got {error}");
    };
    assert_eq!(*serial, leaf.serial_hex());
    assert_eq!(*reason, RevocationReason::KeyCompromise);
    assert!(*at <= SystemTime::now());
    drop(responder);

    // The other certificate is still good, and our own reading of the index agrees.
    let responder = OpensslResponder::start(dir.path());
    let response = http_post(
        responder.port,
        "application/ocsp-request",
        &ocsp::request(&other, issuer).unwrap(),
    );
    ocsp::verify(&response, &other, issuer, SystemTime::now(), FRESHNESS).unwrap();
    assert!(matches!(
        index(&ca).status(leaf.serial()),
        Some(passerelle_pki::revocation::IndexStatus::Revoked {
            reason: RevocationReason::KeyCompromise,
            ..
        })
    ));
}

#[test]
fn development_responder_answers_good_revoked_and_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let leaf = issue_sign(&ca, "DEV/GOV/HEALTH");
    let issuer = &ca.intermediate().certificate;
    let now = date("2026-06-01");
    let request = ocsp::request(&leaf, issuer).unwrap();

    let response = ocsp::respond(&request, issuer, &index(&ca), ca.ocsp(), now);
    let status = ocsp::verify(&response, &leaf, issuer, now, FRESHNESS).unwrap();
    assert_eq!(status.this_update, now);
    assert_eq!(status.next_update, Some(now + ocsp::RESPONSE_VALIDITY));

    let mut revoked = index(&ca);
    let revoked_at = now - Duration::from_secs(60);
    revoked
        .revoke(&leaf.serial_hex(), RevocationReason::Superseded, revoked_at)
        .unwrap();
    let response = ocsp::respond(&request, issuer, &revoked, ca.ocsp(), now);
    assert_eq!(
        ocsp::verify(&response, &leaf, issuer, now, FRESHNESS).unwrap_err(),
        OcspError::Revoked {
            serial: leaf.serial_hex(),
            at: revoked_at,
            reason: RevocationReason::Superseded,
        }
    );

    // A certificate of this CA that the index does not list.
    let empty = RevocationIndex::parse("");
    let response = ocsp::respond(&request, issuer, &empty, ca.ocsp(), now);
    assert_eq!(
        ocsp::verify(&response, &leaf, issuer, now, FRESHNESS).unwrap_err(),
        OcspError::Unknown {
            serial: leaf.serial_hex()
        }
    );
}

#[test]
fn stale_future_forged_and_mismatched_responses_each_fail_their_own_way() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let leaf = issue_sign(&ca, "DEV/GOV/HEALTH");
    let other = issue_sign(&ca, "DEV/GOV/EDUCATION");
    let issuer = &ca.intermediate().certificate;
    let now = date("2026-06-01");
    let request = ocsp::request(&leaf, issuer).unwrap();
    let good = ocsp::respond(&request, issuer, &index(&ca), ca.ocsp(), now);

    // Stale: older than the freshness, then past nextUpdate.
    let later = now + Duration::from_secs(601);
    let error = ocsp::verify(&good, &leaf, issuer, later, FRESHNESS).unwrap_err();
    assert!(
        matches!(error, OcspError::Stale { age, next_update: None, .. } if age == Duration::from_secs(601)),
        "{error}"
    );
    let much_later = now + Duration::from_secs(7200);
    let error = ocsp::verify(&good, &leaf, issuer, much_later, Duration::MAX).unwrap_err();
    assert!(
        matches!(
            error,
            OcspError::Stale {
                next_update: Some(_),
                ..
            }
        ),
        "{error}"
    );

    // From the future (beyond the clock skew).
    let error = ocsp::verify(
        &good,
        &leaf,
        issuer,
        now - Duration::from_secs(3600),
        FRESHNESS,
    )
    .unwrap_err();
    assert!(matches!(error, OcspError::NotYetValid { .. }), "{error}");

    // Answers for another certificate.
    let error = ocsp::verify(&good, &other, issuer, now, FRESHNESS).unwrap_err();
    assert!(matches!(error, OcspError::CertIdMismatch { .. }), "{error}");

    // Forged by a delegate the CA never certified: another CA's OCSP responder.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = self::ca(stranger_dir.path());
    let forged = ocsp::respond(&request, issuer, &index(&ca), stranger.ocsp(), now);
    let error = ocsp::verify(&forged, &leaf, issuer, now, FRESHNESS).unwrap_err();
    assert!(
        matches!(error, OcspError::UnauthorizedResponder { .. }),
        "{error}"
    );

    // Forged by a certificate of this CA without the OCSP-signing purpose.
    let member_key = SigningKey::load(&dir.path().join("DEV-GOV-EDUCATION.key.pem")).unwrap();
    let not_a_responder = Credential {
        certificate: other.clone(),
        key: member_key,
    };
    let forged = ocsp::respond(&request, issuer, &index(&ca), &not_a_responder, now);
    let error = ocsp::verify(&forged, &leaf, issuer, now, FRESHNESS).unwrap_err();
    assert!(
        matches!(error, OcspError::UnauthorizedResponder { ref reason, .. } if reason.contains("OCSPSigning")),
        "{error}"
    );

    // Forged in the CA's name with another key.
    let impostor = Credential {
        certificate: issuer.clone(),
        key: SigningKey::generate().unwrap(),
    };
    let forged = ocsp::respond(&request, issuer, &index(&ca), &impostor, now);
    let error = ocsp::verify(&forged, &leaf, issuer, now, FRESHNESS).unwrap_err();
    assert!(
        matches!(error, OcspError::BadResponderSignature { .. }),
        "{error}"
    );

    // The CA itself may answer.
    let by_ca = ocsp::respond(&request, issuer, &index(&ca), ca.intermediate(), now);
    let status = ocsp::verify(&by_ca, &leaf, issuer, now, FRESHNESS).unwrap();
    assert!(status.responder.contains("Intermediate"), "{status:?}");

    // A flipped bit inside the signed data.
    let mut tampered = good.clone();
    let position = tampered.len() / 3;
    tampered[position] ^= 0x01;
    let error = ocsp::verify(&tampered, &leaf, issuer, now, FRESHNESS).unwrap_err();
    assert!(
        matches!(
            error,
            OcspError::BadResponderSignature { .. }
                | OcspError::Malformed { .. }
                | OcspError::UnauthorizedResponder { .. }
                | OcspError::CertIdMismatch { .. }
        ),
        "{error}"
    );
}

#[test]
fn responder_errors_and_garbage_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let leaf = issue_sign(&ca, "DEV/GOV/HEALTH");
    let issuer = &ca.intermediate().certificate;
    let now = date("2026-06-01");

    let refusal = ocsp::respond(b"not der", issuer, &index(&ca), ca.ocsp(), now);
    assert_eq!(
        ocsp::verify(&refusal, &leaf, issuer, now, FRESHNESS).unwrap_err(),
        OcspError::ResponderError {
            status: ResponderStatus::MalformedRequest
        }
    );
    for garbage in [&b""[..], b"\x30\x03\x0a\x01", b"\x30\x00"] {
        let error = ocsp::verify(garbage, &leaf, issuer, now, FRESHNESS).unwrap_err();
        assert!(matches!(error, OcspError::Malformed { .. }), "{error}");
    }
    // The issuer must be the certificate's issuer.
    let error = ocsp::request(&leaf, &ca.root().clone()).unwrap_err();
    assert!(matches!(error, OcspError::WrongIssuer { .. }), "{error}");
}

#[test]
fn openssl_accepts_development_responses_and_we_answer_openssl_requests() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let leaf = issue_sign(&ca, "DEV/GOV/HEALTH");
    let issuer = &ca.intermediate().certificate;
    let now = SystemTime::now();

    // openssl makes the request (SHA-1 CertID and a nonce); we answer it.
    openssl(
        dir.path(),
        &[
            "ocsp",
            "-issuer",
            devca::files::INTERMEDIATE_CERT,
            "-cert",
            "DEV-GOV-HEALTH.cert.pem",
            "-reqout",
            "request.der",
        ],
    );
    let request = std::fs::read(dir.path().join("request.der")).unwrap();
    for (index, expected) in [
        (index(&ca), "DEV-GOV-HEALTH.cert.pem: good"),
        (
            {
                let mut revoked = index(&ca);
                revoked
                    .revoke(&leaf.serial_hex(), RevocationReason::KeyCompromise, now)
                    .unwrap();
                revoked
            },
            "DEV-GOV-HEALTH.cert.pem: revoked",
        ),
    ] {
        let response = ocsp::respond(&request, issuer, &index, ca.ocsp(), now);
        std::fs::write(dir.path().join("response.der"), &response).unwrap();
        let output = openssl(
            dir.path(),
            &[
                "ocsp",
                "-issuer",
                devca::files::INTERMEDIATE_CERT,
                "-cert",
                "DEV-GOV-HEALTH.cert.pem",
                // -cert builds a new request, so its nonce is not ours: skip that check.
                "-no_nonce",
                "-respin",
                "response.der",
                "-CAfile",
                devca::files::ROOT_CERT,
                "-verify_other",
                devca::files::INTERMEDIATE_CERT,
                "-resp_text",
            ],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stdout.contains(expected), "{stdout}{stderr}");
        assert!(stderr.contains("Response verify OK"), "{stdout}{stderr}");
        if expected.ends_with("revoked") {
            assert!(
                stdout.contains("Revocation Reason: keyCompromise"),
                "{stdout}"
            );
        }
    }
}
