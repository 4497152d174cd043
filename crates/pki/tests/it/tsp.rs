//! RFC 3161 time-stamping, both ways with openssl: tokens made by `openssl ts -reply` verify in
//! Passerelle, tokens made by the development TSA verify with `openssl ts -verify`, and tokens
//! over another imprint or from an unapproved TSA are refused.

use std::path::Path;
use std::time::{Duration, SystemTime};

use passerelle_pki::devca::{self, DevCa, ExistingCa, Validity};
use passerelle_pki::tsp::{self, TsaTrust, TspError};
use passerelle_pki::{Certificate, digest};

use crate::{date, openssl, openssl_output};

const DATA: &[u8] = b"checkpoint root of records 1..=64\n";

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

/// An `openssl ts -reply` configuration using the development TSA's key, with the ESS
/// certificate id hashed with `ess_alg` (openssl's default is sha1: signing-certificate v1).
fn write_openssl_tsa_config(dir: &Path, ess_alg: &str) {
    std::fs::write(dir.join("tsaserial"), "01\n").unwrap();
    std::fs::write(
        dir.join("tsa.cnf"),
        format!(
            "[tsa]\ndefault_tsa = dev_tsa\n\
             [dev_tsa]\n\
             serial = tsaserial\n\
             crypto_device = builtin\n\
             signer_cert = tsa.cert.pem\n\
             certs = intermediate.cert.pem\n\
             signer_key = tsa.key.pem\n\
             signer_digest = sha256\n\
             default_policy = 1.2.3.4.1\n\
             digests = sha256, sha384\n\
             accuracy = secs:1\n\
             ordering = no\n\
             tsa_name = yes\n\
             ess_cert_id_chain = no\n\
             ess_cert_id_alg = {ess_alg}\n"
        ),
    )
    .unwrap();
}

/// `openssl ts -query` then `-reply` for `data`, returning the TimeStampResp DER.
fn openssl_reply(dir: &Path, data: &[u8], ess_alg: &str) -> Vec<u8> {
    write_openssl_tsa_config(dir, ess_alg);
    std::fs::write(dir.join("data.bin"), data).unwrap();
    openssl(
        dir,
        &[
            "ts", "-query", "-data", "data.bin", "-sha256", "-cert", "-out", "req.tsq",
        ],
    );
    openssl(
        dir,
        &[
            "ts",
            "-reply",
            "-config",
            "tsa.cnf",
            "-queryfile",
            "req.tsq",
            "-out",
            "resp.tsr",
        ],
    );
    std::fs::read(dir.join("resp.tsr")).unwrap()
}

fn approved(ca: &DevCa) -> Vec<Certificate> {
    vec![ca.tsa().certificate.clone()]
}

#[test]
fn openssl_tokens_verify_in_passerelle() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let imprint = digest::sha256(DATA);
    for ess_alg in ["sha256", "sha1"] {
        let before = SystemTime::now() - Duration::from_secs(2);
        let response = openssl_reply(dir.path(), DATA, ess_alg);
        // The whole response, and the token inside it.
        let gen_time = tsp::verify_token(&response, &imprint, &approved(&ca)).unwrap();
        assert!(gen_time >= before && gen_time <= SystemTime::now() + Duration::from_secs(2));
        let token = tsp::token_from_response(&response).unwrap();
        assert_eq!(
            tsp::verify_token(&token, &imprint, &approved(&ca)).unwrap(),
            gen_time
        );
        // Anchored at the root instead of the TSA certificate: the token carries the
        // intermediate.
        tsp::verify_token(&token, &imprint, &[ca.root().clone()]).unwrap();
        // Another imprint.
        let error =
            tsp::verify_token(&token, &digest::sha256(b"other"), &approved(&ca)).unwrap_err();
        assert!(matches!(error, TspError::ImprintMismatch { .. }), "{error}");
    }
}

#[test]
fn development_tokens_verify_with_openssl_ts_verify() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let imprint = digest::sha256(DATA);
    std::fs::write(dir.path().join("data.bin"), DATA).unwrap();
    let now = SystemTime::now();
    let request = tsp::request(&imprint, Some(&[0x9a, 0x01, 0x02])).unwrap();
    let response = tsp::respond(&request, ca.tsa(), &[0x42], now);
    std::fs::write(dir.path().join("ours.tsr"), &response).unwrap();
    std::fs::write(dir.path().join("ours.tsq"), &request).unwrap();

    let verify = |extra: &[&str]| {
        let output = openssl(
            dir.path(),
            &[
                &["ts", "-verify", "-in", "ours.tsr"][..],
                extra,
                &[
                    "-CAfile",
                    devca::files::ROOT_CERT,
                    "-untrusted",
                    devca::files::INTERMEDIATE_CERT,
                ],
            ]
            .concat(),
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("Verification: OK"), "{stdout}");
    };
    verify(&["-data", "data.bin"]);
    verify(&["-digest", &hex::encode(imprint)]);
    verify(&["-queryfile", "ours.tsq"]);

    let text = openssl(dir.path(), &["ts", "-reply", "-in", "ours.tsr", "-text"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Status: Granted."), "{text}");
    // openssl names 1.2.3.4.1 after its sample configuration.
    assert!(
        text.contains("Policy OID: tsa_policy1") || text.contains("Policy OID: 1.2.3.4.1"),
        "{text}"
    );
    assert!(text.contains("Serial number: 0x42"), "{text}");
    assert!(text.contains("Nonce: 0x9A0102"), "{text}");

    // And in Passerelle, with genTime at whole seconds.
    let gen_time = tsp::verify_token(&response, &imprint, &approved(&ca)).unwrap();
    let since = |time: SystemTime| time.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(since(gen_time).as_secs(), since(now).as_secs());

    // openssl refuses it for other data.
    std::fs::write(dir.path().join("other.bin"), b"other").unwrap();
    let output = openssl_output(
        dir.path(),
        &[
            "ts",
            "-verify",
            "-in",
            "ours.tsr",
            "-data",
            "other.bin",
            "-CAfile",
            devca::files::ROOT_CERT,
            "-untrusted",
            devca::files::INTERMEDIATE_CERT,
        ],
    );
    assert!(!output.status.success());
}

#[test]
fn tokens_over_another_imprint_or_from_an_unapproved_tsa_fail() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = self::ca(stranger_dir.path());
    let now = date("2026-06-01");
    let imprint = digest::sha256(DATA);
    let request = tsp::request(&imprint, None).unwrap();
    let response = tsp::respond(&request, ca.tsa(), &[7], now);
    let token = tsp::token_from_response(&response).unwrap();
    let trust = TsaTrust::new(approved(&ca));

    assert_eq!(trust.verify(&token, &imprint).unwrap(), now);

    let other = digest::sha256(b"another batch");
    assert_eq!(
        trust.verify(&token, &other).unwrap_err(),
        TspError::ImprintMismatch {
            expected: format!("sha256:{}", hex::encode(other)),
            actual: format!("sha256:{}", hex::encode(imprint)),
        }
    );

    // Signed by another CA's TSA, which is not approved.
    let foreign =
        tsp::token_from_response(&tsp::respond(&request, stranger.tsa(), &[8], now)).unwrap();
    let error = trust.verify(&foreign, &imprint).unwrap_err();
    assert!(matches!(error, TspError::UntrustedTsa { .. }), "{error}");
    // Signed by a certificate of the approved CA that is not a TSA.
    let not_a_tsa =
        tsp::token_from_response(&tsp::respond(&request, ca.ocsp(), &[9], now)).unwrap();
    let error = TsaTrust::new(vec![ca.root().clone()])
        .verify(&not_a_tsa, &imprint)
        .unwrap_err();
    assert!(
        matches!(error, TspError::UntrustedTsa { ref reason, .. } if reason.contains("timeStamping")),
        "{error}"
    );

    // Tampered: one byte of the TSTInfo (genTime) changed after signing.
    let position = token
        .windows(4)
        .position(|window| window == b"2026")
        .expect("genTime in the token");
    let mut tampered = token.clone();
    tampered[position + 3] = b'7';
    let error = trust.verify(&tampered, &imprint).unwrap_err();
    assert!(matches!(error, TspError::BadSignature { .. }), "{error}");

    // Garbage and refusals.
    let error = trust.verify(b"\x30\x03\x02\x01\x00", &imprint).unwrap_err();
    assert!(matches!(error, TspError::Malformed { .. }), "{error}");
    let refusal = tsp::respond(b"not a request", ca.tsa(), &[1], now);
    let error = tsp::token_from_response(&refusal).unwrap_err();
    assert!(
        matches!(error, TspError::Rejected { status: 2, .. }),
        "{error}"
    );
}
