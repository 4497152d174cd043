//! Chains made with the openssl command-line tool validate, and each defect fails with its own
//! error naming the certificate concerned.

use std::path::{Path, PathBuf};

use passerelle_pki::{Certificate, ChainError, Purpose, validate_chain};

use crate::{date, openssl};

/// An `openssl ca` configuration and the extension sections of every certificate below.
const CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
new_certs_dir = issued
serial = serial
default_md = sha256
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[root_path_len_0]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[intermediate_not_ca]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[intermediate_without_key_cert_sign]
basicConstraints = critical, CA:TRUE
keyUsage = critical, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[tls]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[tls_without_digital_signature]
basicConstraints = CA:FALSE
keyUsage = critical, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server_only]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
[signing]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
authorityKeyIdentifier = keyid
[unknown_critical]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
1.3.6.1.4.1.99999.1 = critical, ASN1:NULL
authorityKeyIdentifier = keyid
";

/// The validity window of every certificate unless a test says otherwise, and the time the
/// tests validate at.
const START: &str = "20250101000000Z";
const END: &str = "20450101000000Z";
fn now() -> std::time::SystemTime {
    date("2026-06-01")
}

/// A throw-away PKI made by openssl in a temporary directory.
struct OpensslPki {
    dir: tempfile::TempDir,
}

impl OpensslPki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("openssl.cnf"), CONFIG).unwrap();
        std::fs::write(dir.path().join("index.txt"), "").unwrap();
        std::fs::write(dir.path().join("serial"), "1000\n").unwrap();
        std::fs::create_dir(dir.path().join("issued")).unwrap();
        OpensslPki { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Makes `name.key` with `openssl genpkey` (algorithm options as given) and a CSR for it.
    fn request(&self, name: &str, key_options: &[&str]) -> String {
        let key = format!("{name}.key");
        openssl(
            self.path(),
            &[&["genpkey"], key_options, &["-out", &key]].concat(),
        );
        let csr = format!("{name}.csr");
        openssl(
            self.path(),
            &[
                "req",
                "-new",
                "-config",
                "openssl.cnf",
                "-key",
                &key,
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &csr,
            ],
        );
        csr
    }

    /// Issues certificate `name` (new P-256 key) with extension `section`, signed by `issuer`
    /// (`None`: self-signed) for a validity window, and parses it.
    fn issue(
        &self,
        name: &str,
        issuer: Option<&str>,
        section: &str,
        window: (&str, &str),
    ) -> Certificate {
        self.issue_with(
            name,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            issuer,
            section,
            window,
            &[],
        )
    }

    fn issue_with(
        &self,
        name: &str,
        key_options: &[&str],
        issuer: Option<&str>,
        section: &str,
        (start, end): (&str, &str),
        sign_options: &[&str],
    ) -> Certificate {
        let csr = self.request(name, key_options);
        let out = format!("{name}.pem");
        let mut arguments = vec![
            "ca",
            "-batch",
            "-notext",
            "-config",
            "openssl.cnf",
            "-in",
            &csr,
            "-out",
            &out,
            "-extensions",
            section,
            "-startdate",
            start,
            "-enddate",
            end,
        ];
        let (cert, key);
        match issuer {
            Some(issuer) => {
                cert = format!("{issuer}.pem");
                key = format!("{issuer}.key");
                arguments.extend(["-cert", &cert, "-keyfile", &key]);
            }
            None => {
                key = format!("{name}.key");
                arguments.extend(["-selfsign", "-keyfile", &key]);
            }
        }
        arguments.extend(sign_options);
        openssl(self.path(), &arguments);
        self.load(name)
    }

    fn load(&self, name: &str) -> Certificate {
        let mut certificates = Certificate::load(&self.file(&format!("{name}.pem"))).unwrap();
        assert_eq!(certificates.len(), 1);
        certificates.remove(0)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

const VALID: (&str, &str) = (START, END);

/// root → intermediate → leaf, all P-256, valid 2025–2045.
fn standard_chain(pki: &OpensslPki) -> (Certificate, Certificate, Certificate) {
    let root = pki.issue("Test Root", None, "root", VALID);
    let intermediate = pki.issue(
        "Test Intermediate",
        Some("Test Root"),
        "intermediate",
        VALID,
    );
    let leaf = pki.issue("ss-health", Some("Test Intermediate"), "tls", VALID);
    (root, intermediate, leaf)
}

#[test]
fn openssl_chain_validates_leaf_to_anchor() {
    let pki = OpensslPki::new();
    let (root, intermediate, leaf) = standard_chain(&pki);
    openssl(
        pki.path(),
        &[
            "verify",
            "-attime",
            "1780272000",
            "-CAfile",
            "Test Root.pem",
            "-untrusted",
            "Test Intermediate.pem",
            "ss-health.pem",
        ],
    );

    let path = validate_chain(
        &leaf,
        std::slice::from_ref(&intermediate),
        std::slice::from_ref(&root),
        now(),
        Purpose::TlsAuth,
    )
    .unwrap();
    assert_eq!(path, vec![leaf.clone(), intermediate.clone(), root.clone()]);

    // An intermediate can itself be the anchor, and extra unrelated certificates do no harm.
    let other_root = pki.issue("Other Root", None, "root", VALID);
    let path = validate_chain(
        &leaf,
        &[other_root.clone(), intermediate.clone()],
        &[other_root, intermediate.clone()],
        now(),
        Purpose::TlsAuth,
    )
    .unwrap();
    assert_eq!(path, vec![leaf.clone(), intermediate]);

    assert_eq!(leaf.dns_names(), ["localhost"]);
    assert_eq!(
        leaf.ip_addresses(),
        ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(root.is_ca() && !leaf.is_ca());
}

#[test]
fn expired_leaf_fails_with_expired() {
    let pki = OpensslPki::new();
    let (root, intermediate, _) = standard_chain(&pki);
    let leaf = pki.issue(
        "old",
        Some("Test Intermediate"),
        "tls",
        ("20200101000000Z", "20210101000000Z"),
    );
    let error =
        validate_chain(&leaf, &[intermediate], &[root], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::Expired { subject, fingerprint, not_after }
            if subject == "CN=old" && *fingerprint == leaf.fingerprint_hex() && *not_after == date("2021-01-01")),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("expired at 2021-01-01T00:00:00Z"),
        "{error}"
    );
}

#[test]
fn not_yet_valid_leaf_fails_with_not_yet_valid() {
    let pki = OpensslPki::new();
    let (root, intermediate, _) = standard_chain(&pki);
    let leaf = pki.issue(
        "future",
        Some("Test Intermediate"),
        "tls",
        ("20300101000000Z", "20310101000000Z"),
    );
    let error =
        validate_chain(&leaf, &[intermediate], &[root], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::NotYetValid { subject, not_before, .. }
            if subject == "CN=future" && *not_before == date("2030-01-01")),
        "{error:?}"
    );
}

#[test]
fn expired_intermediate_is_named() {
    let pki = OpensslPki::new();
    let root = pki.issue("Test Root", None, "root", VALID);
    let intermediate = pki.issue(
        "Old Intermediate",
        Some("Test Root"),
        "intermediate",
        ("20200101000000Z", "20210101000000Z"),
    );
    let leaf = pki.issue("leaf", Some("Old Intermediate"), "tls", VALID);
    let error =
        validate_chain(&leaf, &[intermediate], &[root], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::Expired { subject, .. } if subject == "CN=Old Intermediate"),
        "{error:?}"
    );
}

#[test]
fn leaf_from_another_issuer_fails_with_issuer_not_found() {
    let pki = OpensslPki::new();
    let (root, intermediate, _) = standard_chain(&pki);
    pki.issue(
        "Other Intermediate",
        Some("Test Root"),
        "intermediate",
        VALID,
    );
    let leaf = pki.issue("stranger", Some("Other Intermediate"), "tls", VALID);
    let error =
        validate_chain(&leaf, &[intermediate], &[root], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::IssuerNotFound { subject, issuer, .. }
            if subject == "CN=stranger" && issuer == "CN=Other Intermediate"),
        "{error:?}"
    );
}

#[test]
fn intermediate_without_ca_flag_fails_with_not_a_ca() {
    let pki = OpensslPki::new();
    let root = pki.issue("Test Root", None, "root", VALID);
    let intermediate = pki.issue("Pretender", Some("Test Root"), "intermediate_not_ca", VALID);
    let leaf = pki.issue("leaf", Some("Pretender"), "tls", VALID);
    let error =
        validate_chain(&leaf, &[intermediate], &[root], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::NotACa { subject, .. } if subject == "CN=Pretender"),
        "{error:?}"
    );
}

#[test]
fn intermediate_without_key_cert_sign_fails_with_missing_key_usage() {
    let pki = OpensslPki::new();
    let root = pki.issue("Test Root", None, "root", VALID);
    let intermediate = pki.issue(
        "CRL Only",
        Some("Test Root"),
        "intermediate_without_key_cert_sign",
        VALID,
    );
    let leaf = pki.issue("leaf", Some("CRL Only"), "tls", VALID);
    let error =
        validate_chain(&leaf, &[intermediate], &[root], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::MissingKeyUsage { subject, required: "keyCertSign", .. } if subject == "CN=CRL Only"),
        "{error:?}"
    );
}

#[test]
fn leaf_without_required_key_usage_fails_with_missing_key_usage() {
    let pki = OpensslPki::new();
    let (root, intermediate, _) = standard_chain(&pki);
    let leaf = pki.issue(
        "no-signature",
        Some("Test Intermediate"),
        "tls_without_digital_signature",
        VALID,
    );
    for purpose in [Purpose::TlsAuth, Purpose::Signing, Purpose::ConfigSigning] {
        let error = validate_chain(
            &leaf,
            std::slice::from_ref(&intermediate),
            std::slice::from_ref(&root),
            now(),
            purpose,
        )
        .unwrap_err();
        assert!(
            matches!(&error, ChainError::MissingKeyUsage { subject, .. } if subject == "CN=no-signature"),
            "{purpose:?}: {error:?}"
        );
    }
}

#[test]
fn leaf_without_required_extended_key_usage_fails_with_missing_extended_key_usage() {
    let pki = OpensslPki::new();
    let (root, intermediate, _) = standard_chain(&pki);
    let server_only = pki.issue(
        "server-only",
        Some("Test Intermediate"),
        "server_only",
        VALID,
    );
    let signing = pki.issue("signing", Some("Test Intermediate"), "signing", VALID);
    let anchors = [root];
    let intermediates = [intermediate];
    for (leaf, purpose) in [
        (&server_only, Purpose::TlsAuth),
        (&signing, Purpose::OcspSigning),
        (&signing, Purpose::TimeStamping),
    ] {
        let error = validate_chain(leaf, &intermediates, &anchors, now(), purpose).unwrap_err();
        assert!(
            matches!(error, ChainError::MissingExtendedKeyUsage { .. }),
            "{purpose:?}: {error:?}"
        );
    }
    // The signing certificate is fine for what it is for.
    validate_chain(&signing, &intermediates, &anchors, now(), Purpose::Signing).unwrap();
    validate_chain(
        &signing,
        &intermediates,
        &anchors,
        now(),
        Purpose::ConfigSigning,
    )
    .unwrap();
}

#[test]
fn tampered_signature_fails_with_bad_signature() {
    let pki = OpensslPki::new();
    let (root, intermediate, leaf) = standard_chain(&pki);
    let mut der = leaf.der().to_vec();
    let last = der.len() - 1; // the last byte of the ECDSA signature's s value
    der[last] ^= 0x5a;
    let tampered = Certificate::from_der(der).unwrap();
    let error = validate_chain(
        &tampered,
        std::slice::from_ref(&intermediate),
        std::slice::from_ref(&root),
        now(),
        Purpose::TlsAuth,
    )
    .unwrap_err();
    assert!(
        matches!(&error, ChainError::BadSignature { subject, fingerprint, issuer }
            if subject == "CN=ss-health" && *fingerprint == tampered.fingerprint_hex() && issuer == "CN=Test Intermediate"),
        "{error:?}"
    );

    // A changed byte in the signed part (here the serial number) is caught the same way.
    let mut der = leaf.der().to_vec();
    let serial = leaf.serial();
    let position = der
        .windows(serial.len())
        .position(|window| window == serial)
        .unwrap();
    der[position] ^= 0x01;
    let forged = Certificate::from_der(der).unwrap();
    let error =
        validate_chain(&forged, &[intermediate], &[root], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(error, ChainError::BadSignature { .. }),
        "{error:?}"
    );
}

#[test]
fn chain_to_another_root_fails_with_untrusted_root() {
    let pki = OpensslPki::new();
    let (root, intermediate, leaf) = standard_chain(&pki);
    let trusted = pki.issue("Trusted Root", None, "root", VALID);
    // The peer sends its whole chain, root included; that root is not an anchor.
    let error = validate_chain(
        &leaf,
        &[intermediate.clone(), root.clone()],
        std::slice::from_ref(&trusted),
        now(),
        Purpose::TlsAuth,
    )
    .unwrap_err();
    assert!(
        matches!(&error, ChainError::UntrustedRoot { subject, fingerprint }
            if subject == "CN=Test Root" && *fingerprint == root.fingerprint_hex()),
        "{error:?}"
    );
    // Without the root in hand, the intermediate's issuer is simply missing.
    let error =
        validate_chain(&leaf, &[intermediate], &[trusted], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::IssuerNotFound { subject, .. } if subject == "CN=Test Intermediate"),
        "{error:?}"
    );
}

#[test]
fn anchor_with_the_issuer_name_but_another_key_is_not_an_issuer() {
    let pki = OpensslPki::new();
    let (_, intermediate, leaf) = standard_chain(&pki);
    // Same subject as the real root, another key: the intermediate's authorityKeyIdentifier
    // does not match the impostor's subjectKeyIdentifier, so it is not even a candidate.
    let impostor = pki.issue("Test Root", None, "root", VALID);
    let error =
        validate_chain(&leaf, &[intermediate], &[impostor], now(), Purpose::TlsAuth).unwrap_err();
    assert!(
        matches!(&error, ChainError::IssuerNotFound { subject, .. } if subject == "CN=Test Intermediate"),
        "{error:?}"
    );
}

#[test]
fn path_length_constraint_is_enforced() {
    let pki = OpensslPki::new();
    let root = pki.issue("Strict Root", None, "root_path_len_0", VALID);
    let intermediate = pki.issue("Middle", Some("Strict Root"), "root", VALID);
    let lower = pki.issue("Lower", Some("Middle"), "intermediate", VALID);
    let leaf = pki.issue("deep", Some("Lower"), "tls", VALID);
    let error = validate_chain(
        &leaf,
        &[lower, intermediate],
        &[root],
        now(),
        Purpose::TlsAuth,
    )
    .unwrap_err();
    assert!(
        matches!(&error, ChainError::PathLengthExceeded { subject, path_len: 0, below: 2, .. } if subject == "CN=Strict Root"),
        "{error:?}"
    );
}

#[test]
fn unknown_critical_extension_is_refused() {
    let pki = OpensslPki::new();
    let (root, intermediate, _) = standard_chain(&pki);
    let leaf = pki.issue("odd", Some("Test Intermediate"), "unknown_critical", VALID);
    let error =
        validate_chain(&leaf, &[intermediate], &[root], now(), Purpose::Signing).unwrap_err();
    assert!(
        matches!(&error, ChainError::UnhandledCriticalExtension { oid, .. } if oid == "1.3.6.1.4.1.99999.1"),
        "{error:?}"
    );
}

#[test]
fn rsa_pss_p384_and_ed25519_issuers_validate() {
    let pki = OpensslPki::new();
    let rsa = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
    let pss = &[
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
    ];
    let p384 = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];
    let ed25519 = &["-algorithm", "ED25519"];
    let root = pki.issue_with("RSA Root", rsa, None, "root", VALID, &[]);
    let pss_intermediate = pki.issue_with(
        "PSS Intermediate",
        p384,
        Some("RSA Root"),
        "root",
        VALID,
        pss,
    );
    let ed_intermediate = pki.issue_with(
        "Ed25519 Intermediate",
        ed25519,
        Some("PSS Intermediate"),
        "intermediate",
        VALID,
        &["-md", "sha384"],
    );
    let leaf = pki.issue_with(
        "ed-leaf",
        ed25519,
        Some("Ed25519 Intermediate"),
        "signing",
        VALID,
        &[],
    );
    let path = validate_chain(
        &leaf,
        &[ed_intermediate.clone(), pss_intermediate.clone()],
        std::slice::from_ref(&root),
        now(),
        Purpose::Signing,
    )
    .unwrap();
    assert_eq!(path, vec![leaf, ed_intermediate, pss_intermediate, root]);
}
