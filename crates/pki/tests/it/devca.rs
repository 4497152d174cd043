//! The development CA: what it makes verifies with `openssl verify`, fits each purpose, and is
//! recorded so later work can find it by serial.

use std::net::IpAddr;
use std::path::Path;

use passerelle_ids::MemberId;
use passerelle_pki::devca::{
    self, DevCa, ExistingCa, IssueRequest, LeafKey, LeafProfile, Validity,
};
use passerelle_pki::{
    Certificate, PkiError, PrivateKey, Purpose, SignatureAlgorithm, validate_chain,
};

use crate::{date, openssl, openssl_output};

fn validity() -> Validity {
    Validity {
        not_before: date("2025-01-01"),
        not_after: date("2045-01-01"),
    }
}

fn now() -> std::time::SystemTime {
    date("2026-06-01")
}

/// `openssl verify` at the validation time, with an optional `-purpose`.
fn openssl_verify(ca_dir: &Path, certificate: &Path, purpose: Option<&str>) {
    let certificate = certificate.to_str().unwrap();
    let mut arguments = vec![
        "verify",
        "-attime",
        "1780272000",
        "-CAfile",
        devca::files::ROOT_CERT,
        "-untrusted",
        devca::files::INTERMEDIATE_CERT,
    ];
    if let Some(purpose) = purpose {
        arguments.extend(["-purpose", purpose]);
    }
    arguments.push(certificate);
    let output = openssl(ca_dir, &arguments);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(": OK"),
        "{output:?}"
    );
}

fn auth_request(name: &str) -> IssueRequest {
    IssueRequest {
        profile: LeafProfile::Auth {
            name: name.to_owned(),
            dns_names: vec!["localhost".to_owned()],
            ip_addresses: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        },
        validity: validity(),
        key: LeafKey::Generate,
    }
}

fn sign_request(member: &str) -> IssueRequest {
    IssueRequest {
        profile: LeafProfile::Sign {
            member: member.parse().unwrap(),
        },
        validity: validity(),
        key: LeafKey::Generate,
    }
}

#[test]
fn init_makes_trust_service_certificates_that_openssl_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap();
    for (file, purpose) in [
        (devca::files::INTERMEDIATE_CERT, None),
        ("config-signing.cert.pem", None),
        ("tsa.cert.pem", Some("timestampsign")),
        ("ocsp.cert.pem", Some("ocsphelper")),
    ] {
        openssl_verify(dir.path(), &dir.path().join(file), purpose);
    }
    let root = std::slice::from_ref(ca.root());
    let intermediates = std::slice::from_ref(&ca.intermediate().certificate);
    for (credential, purpose) in [
        (ca.config_signing(), Purpose::ConfigSigning),
        (ca.tsa(), Purpose::TimeStamping),
        (ca.ocsp(), Purpose::OcspSigning),
    ] {
        let path =
            validate_chain(&credential.certificate, intermediates, root, now(), purpose).unwrap();
        assert_eq!(path.len(), 3);
        assert!(credential.certificate.matches_key(&credential.key));
        assert_eq!(
            credential.certificate.default_algorithm(),
            Some(SignatureAlgorithm::EcdsaP256Sha256)
        );
    }
    // Purposes are not interchangeable.
    assert!(
        validate_chain(
            &ca.ocsp().certificate,
            intermediates,
            root,
            now(),
            Purpose::TimeStamping
        )
        .is_err()
    );
    assert!(
        validate_chain(
            &ca.tsa().certificate,
            intermediates,
            root,
            now(),
            Purpose::OcspSigning
        )
        .is_err()
    );
    assert!(
        validate_chain(
            &ca.config_signing().certificate,
            intermediates,
            root,
            now(),
            Purpose::TlsAuth
        )
        .is_err()
    );

    assert!(ca.root().is_ca() && ca.intermediate().certificate.is_ca());
    assert_eq!(ca.root().not_before(), date("2025-01-01"));
    assert_eq!(ca.root().not_after(), date("2045-01-01"));
    assert_eq!(ca.instance().as_str(), "DEV");
    #[cfg(unix)]
    for key in [
        "root.key.pem",
        "intermediate.key.pem",
        "config-signing.key.pem",
        "tsa.key.pem",
        "ocsp.key.pem",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
}

#[test]
fn issued_auth_and_sign_certificates_verify_with_openssl_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap();
    let out = tempfile::tempdir().unwrap();

    let auth = ca.issue(&auth_request("ss-health")).unwrap();
    let files = auth.write(&out.path().join("ss-health")).unwrap();
    openssl_verify(dir.path(), &files.certificate, Some("sslserver"));
    openssl_verify(dir.path(), &files.certificate, Some("sslclient"));
    assert_eq!(auth.certificate.subject(), "CN=ss-health, O=DEV");
    assert_eq!(auth.certificate.dns_names(), ["localhost"]);
    assert_eq!(
        auth.certificate.ip_addresses(),
        [
            "127.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
    assert_eq!(auth.certificate.member_id(), None);
    let chain = Certificate::load(&files.chain).unwrap();
    assert_eq!(
        chain,
        vec![
            auth.certificate.clone(),
            ca.intermediate().certificate.clone()
        ]
    );
    let key = passerelle_pki::SigningKey::load(files.key.as_ref().unwrap()).unwrap();
    assert!(auth.certificate.matches_key(&key));
    validate_chain(
        &auth.certificate,
        &chain[1..],
        std::slice::from_ref(ca.root()),
        now(),
        Purpose::TlsAuth,
    )
    .unwrap();

    let sign = ca.issue(&sign_request("DEV/GOV/HEALTH")).unwrap();
    let files = sign.write(&out.path().join("sign-health")).unwrap();
    openssl_verify(dir.path(), &files.certificate, None);
    let member: MemberId = "DEV/GOV/HEALTH".parse().unwrap();
    assert_eq!(sign.certificate.member_id(), Some(member));
    validate_chain(
        &sign.certificate,
        &sign.chain[1..],
        std::slice::from_ref(ca.root()),
        now(),
        Purpose::Signing,
    )
    .unwrap();
    assert!(
        validate_chain(
            &sign.certificate,
            &sign.chain[1..],
            std::slice::from_ref(ca.root()),
            now(),
            Purpose::TlsAuth
        )
        .is_err()
    );
    // The member id is in the subject's serialNumber attribute, as documented.
    let text = openssl(
        out.path(),
        &[
            "x509",
            "-in",
            "sign-health.cert.pem",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&text.stdout).trim(),
        "subject=serialNumber=DEV/GOV/HEALTH,O=GOV,CN=HEALTH"
    );

    // A signature by the issued key verifies against the certificate.
    let signing_key = passerelle_pki::SigningKey::load(files.key.as_ref().unwrap()).unwrap();
    let signature = signing_key.sign(b"signing input").unwrap();
    sign.certificate
        .verify_signature(
            SignatureAlgorithm::EcdsaP256Sha256,
            b"signing input",
            &signature,
        )
        .unwrap();
    assert!(
        sign.certificate
            .verify_signature(
                SignatureAlgorithm::EcdsaP256Sha256,
                b"other input",
                &signature
            )
            .is_err()
    );
}

#[test]
fn member_ids_outside_printable_string_still_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap();
    let issued = ca.issue(&sign_request("DEV/GOV/MIN_SANTE")).unwrap();
    assert_eq!(
        issued.certificate.member_id(),
        Some("DEV/GOV/MIN_SANTE".parse().unwrap())
    );
    let file = dir.path().join("underscore.pem");
    std::fs::write(&file, issued.certificate.to_pem()).unwrap();
    openssl_verify(dir.path(), &file, None);
}

#[test]
fn an_existing_openssl_key_can_be_certified() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap();
    for options in [
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
        &["-algorithm", "ED25519"][..],
    ] {
        openssl(
            dir.path(),
            &[&["genpkey"], options, &["-out", "existing.key.pem"]].concat(),
        );
        let key = PrivateKey::load(&dir.path().join("existing.key.pem")).unwrap();
        let mut request = sign_request("DEV/GOV/EDUCATION");
        request.key = LeafKey::Existing(key.public_key());
        let issued = ca.issue(&request).unwrap();
        assert!(issued.key.is_none());
        assert_eq!(issued.certificate.public_key().unwrap(), &key.public_key());
        let files = issued.write(&dir.path().join("existing")).unwrap();
        assert_eq!(files.key, None);
        openssl_verify(dir.path(), &files.certificate, None);
        let signature = key.sign(b"x").unwrap();
        issued
            .certificate
            .verify_signature(key.default_algorithm(), b"x", &signature)
            .unwrap();
    }
}

#[test]
fn issued_certificates_are_indexed_by_serial_like_openssl_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap();
    let issued = ca.issue(&auth_request("ss-education")).unwrap();
    let issued_pem = issued.certificate.to_pem();
    let serial = issued.certificate.serial_hex();
    assert_eq!(serial.len(), 32, "serials are 128-bit");

    let index = ca.index().unwrap();
    // config-signing, tsa, ocsp from init, then the auth certificate.
    assert_eq!(index.len(), 4);
    let entry = index.last().unwrap();
    assert_eq!(entry.status, 'V');
    assert_eq!(entry.serial, serial.to_ascii_uppercase());
    assert_eq!(entry.expiry, "450101000000Z");
    assert_eq!(entry.subject, "/CN=ss-education/O=DEV");
    assert_eq!(
        ca.find_issued(&serial).unwrap(),
        Some(issued.certificate.clone())
    );
    assert_eq!(
        ca.find_issued(&serial.to_ascii_uppercase()).unwrap(),
        Some(issued.certificate)
    );
    assert_eq!(ca.find_issued("00").unwrap(), None);
    assert_eq!(ca.find_issued("../root").unwrap(), None);

    // openssl reads the index: `openssl ca -status` finds the serial valid.
    std::fs::write(
        dir.path().join("ca.cnf"),
        "[ca]\ndefault_ca = dev\n[dev]\ndatabase = index.txt\n",
    )
    .unwrap();
    let output = openssl_output(
        dir.path(),
        &["ca", "-config", "ca.cnf", "-status", &entry.serial],
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("=Valid (V)"),
        "{output:?}"
    );

    // `openssl ocsp` answers from the index as it is: "good" for the issued certificate.
    let certificate = dir.path().join("ss-education.cert.pem");
    std::fs::write(&certificate, issued_pem).unwrap();
    openssl(
        dir.path(),
        &[
            "ocsp",
            "-issuer",
            "intermediate.cert.pem",
            "-cert",
            "ss-education.cert.pem",
            "-no_nonce",
            "-reqout",
            "request.der",
        ],
    );
    openssl(
        dir.path(),
        &[
            "ocsp",
            "-index",
            "index.txt",
            "-CA",
            "intermediate.cert.pem",
            "-rsigner",
            "ocsp.cert.pem",
            "-rkey",
            "ocsp.key.pem",
            "-reqin",
            "request.der",
            "-respout",
            "response.der",
        ],
    );
    let answer = openssl(
        dir.path(),
        &[
            "ocsp",
            "-respin",
            "response.der",
            "-CAfile",
            "root.cert.pem",
            "-verify_other",
            "intermediate.cert.pem",
            "-issuer",
            "intermediate.cert.pem",
            "-cert",
            "ss-education.cert.pem",
            "-attime",
            "1780272000",
        ],
    );
    assert!(
        String::from_utf8_lossy(&answer.stdout).contains("ss-education.cert.pem: good"),
        "{answer:?}"
    );

    // Serials differ between certificates.
    let again = ca.issue(&auth_request("ss-education")).unwrap();
    assert_ne!(again.certificate.serial_hex(), serial);
}

#[test]
fn init_refuses_to_overwrite_unless_told_and_open_or_init_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let first = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap();
    ca_issue_one(&first);
    let error = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap_err();
    assert!(
        matches!(error, PkiError::CaAlreadyExists { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("--force"));

    let reopened = DevCa::open_or_init(dir.path(), "DEV", now()).unwrap();
    assert_eq!(reopened.root(), first.root());
    assert_eq!(reopened.ocsp().certificate, first.ocsp().certificate);
    assert_eq!(reopened.index().unwrap().len(), 4);
    let wrong_instance = DevCa::open_or_init(dir.path(), "PROD", now()).unwrap_err();
    assert!(
        matches!(wrong_instance, PkiError::InvalidCa { .. }),
        "{wrong_instance:?}"
    );

    let replaced = DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Replace).unwrap();
    assert_ne!(replaced.root(), first.root());
    assert_eq!(
        replaced.index().unwrap().len(),
        3,
        "the old index is forgotten"
    );

    let fresh = tempfile::tempdir().unwrap();
    let made = DevCa::open_or_init(&fresh.path().join("ca"), "DEV", now()).unwrap();
    assert!(made.root().not_before() <= now() && made.root().not_after() > now());
    assert!(matches!(
        DevCa::init(
            &fresh.path().join("bad"),
            "DEV/X",
            validity(),
            ExistingCa::Refuse
        ),
        Err(PkiError::InvalidCa { .. })
    ));
}

fn ca_issue_one(ca: &DevCa) {
    ca.issue(&sign_request("DEV/GOV/HEALTH")).unwrap();
}

#[test]
fn a_tampered_ca_directory_is_refused_on_open() {
    let dir = tempfile::tempdir().unwrap();
    DevCa::init(dir.path(), "DEV", validity(), ExistingCa::Refuse).unwrap();
    std::fs::copy(
        dir.path().join("root.key.pem"),
        dir.path().join("ocsp.key.pem"),
    )
    .unwrap();
    let error = DevCa::open(dir.path()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("ocsp.key.pem is not the key of ocsp.cert.pem"),
        "{error}"
    );
}
