//! Signatures and keys cross the boundary with the openssl command-line tool in both directions.

use std::path::Path;

use passerelle_pki::{PkiError, PrivateKey, PublicKey, SignatureAlgorithm, SigningKey};

use crate::{openssl, openssl_output};

const MESSAGE: &[u8] = b"GET /r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/42?year=2024\n";

/// The key types of `openssl genpkey` with the options that make them.
const GENPKEY: &[(&str, &[&str])] = &[
    (
        "ec-p256",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ),
    (
        "ec-p384",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    ),
    (
        "rsa2048",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ),
    ("ed25519", &["-algorithm", "ED25519"]),
];

/// How openssl signs or verifies with each algorithm: (algorithm, key, openssl arguments).
/// Ed25519 has no separate digest, so it goes through `pkeyutl -rawin`.
fn openssl_signature_arguments(algorithm: SignatureAlgorithm) -> (&'static str, Vec<&'static str>) {
    let pss = [
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
    ];
    match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => ("ec-p256", vec!["dgst", "-sha256"]),
        SignatureAlgorithm::EcdsaP384Sha384 => ("ec-p384", vec!["dgst", "-sha384"]),
        SignatureAlgorithm::RsaPkcs1Sha256 => ("rsa2048", vec!["dgst", "-sha256"]),
        SignatureAlgorithm::RsaPkcs1Sha384 => ("rsa2048", vec!["dgst", "-sha384"]),
        SignatureAlgorithm::RsaPkcs1Sha512 => ("rsa2048", vec!["dgst", "-sha512"]),
        SignatureAlgorithm::RsaPssSha256 => ("rsa2048", [&["dgst", "-sha256"][..], &pss].concat()),
        SignatureAlgorithm::RsaPssSha384 => ("rsa2048", [&["dgst", "-sha384"][..], &pss].concat()),
        SignatureAlgorithm::RsaPssSha512 => ("rsa2048", [&["dgst", "-sha512"][..], &pss].concat()),
        SignatureAlgorithm::Ed25519 => ("ed25519", vec!["pkeyutl", "-rawin"]),
    }
}

fn generate_openssl_keys(dir: &Path) {
    for (name, options) in GENPKEY {
        let out = format!("{name}.key.pem");
        openssl(dir, &[&["genpkey"], *options, &["-out", &out]].concat());
        openssl(
            dir,
            &[
                "pkey",
                "-in",
                &out,
                "-pubout",
                "-out",
                &format!("{name}.pub.pem"),
            ],
        );
    }
}

fn openssl_sign(dir: &Path, algorithm: SignatureAlgorithm) -> Vec<u8> {
    let (key, arguments) = openssl_signature_arguments(algorithm);
    let key_file = format!("{key}.key.pem");
    let sign: Vec<&str> = if arguments[0] == "pkeyutl" {
        [
            &arguments[..],
            &[
                "-sign", "-inkey", &key_file, "-in", "message", "-out", "sig",
            ],
        ]
        .concat()
    } else {
        [
            &arguments[..],
            &["-sign", &key_file, "-out", "sig", "message"],
        ]
        .concat()
    };
    openssl(dir, &sign);
    std::fs::read(dir.join("sig")).unwrap()
}

/// Whether openssl accepts `signature` over the file `message` with the public key of `key`.
fn openssl_verifies(
    dir: &Path,
    key: &str,
    algorithm: SignatureAlgorithm,
    signature: &[u8],
) -> bool {
    std::fs::write(dir.join("sig"), signature).unwrap();
    let (_, arguments) = openssl_signature_arguments(algorithm);
    let public = format!("{key}.pub.pem");
    let verify: Vec<&str> = if arguments[0] == "pkeyutl" {
        [
            &arguments[..],
            &[
                "-verify", "-pubin", "-inkey", &public, "-in", "message", "-sigfile", "sig",
            ],
        ]
        .concat()
    } else {
        [
            &arguments[..],
            &["-verify", &public, "-signature", "sig", "message"],
        ]
        .concat()
    };
    openssl_output(dir, &verify).status.success()
}

#[test]
fn passerelle_signing_key_signature_verifies_with_openssl_dgst() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    std::fs::write(dir.path().join("message"), MESSAGE).unwrap();
    std::fs::write(dir.path().join("pub.pem"), key.public_key().to_spki_pem()).unwrap();
    std::fs::write(dir.path().join("sig"), key.sign(MESSAGE).unwrap()).unwrap();

    let output = openssl(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "message",
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "Verified OK"
    );

    std::fs::write(dir.path().join("message"), b"another message").unwrap();
    let rejected = openssl_output(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "message",
        ],
    );
    assert!(
        !rejected.status.success(),
        "openssl accepted a signature over another message"
    );

    // openssl also reads the public key out of our PKCS#8 file.
    key.save(&dir.path().join("key.pem")).unwrap();
    let from_private = openssl(dir.path(), &["pkey", "-in", "key.pem", "-pubout"]);
    assert_eq!(
        String::from_utf8_lossy(&from_private.stdout),
        key.public_key().to_spki_pem()
    );
}

#[test]
fn every_algorithm_signed_by_passerelle_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    generate_openssl_keys(dir.path());
    std::fs::write(dir.path().join("message"), MESSAGE).unwrap();
    for algorithm in SignatureAlgorithm::ALL {
        let (key_name, _) = openssl_signature_arguments(algorithm);
        let key = PrivateKey::load(&dir.path().join(format!("{key_name}.key.pem"))).unwrap();
        let signature = key.sign_with(algorithm, MESSAGE).unwrap();
        assert!(
            openssl_verifies(dir.path(), key_name, algorithm, &signature),
            "openssl rejected a {algorithm} signature made by passerelle"
        );
        let mut tampered = signature.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        assert!(
            !openssl_verifies(dir.path(), key_name, algorithm, &tampered),
            "openssl accepted a tampered {algorithm} signature"
        );
    }
}

#[test]
fn every_algorithm_signed_by_openssl_verifies_in_passerelle() {
    let dir = tempfile::tempdir().unwrap();
    generate_openssl_keys(dir.path());
    std::fs::write(dir.path().join("message"), MESSAGE).unwrap();
    for algorithm in SignatureAlgorithm::ALL {
        let (key_name, _) = openssl_signature_arguments(algorithm);
        let signature = openssl_sign(dir.path(), algorithm);
        let pem = std::fs::read_to_string(dir.path().join(format!("{key_name}.pub.pem"))).unwrap();
        let public_key = PublicKey::from_spki_pem(&pem).unwrap();

        public_key
            .verify(algorithm, MESSAGE, &signature)
            .unwrap_or_else(|error| panic!("openssl {algorithm} signature rejected: {error}"));
        assert!(
            matches!(
                public_key.verify(algorithm, b"another message", &signature),
                Err(PkiError::BadSignature { algorithm: reported }) if reported == algorithm
            ),
            "{algorithm} signature accepted over another message"
        );
    }
}

#[test]
fn signatures_do_not_verify_under_another_algorithm_of_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    generate_openssl_keys(dir.path());
    std::fs::write(dir.path().join("message"), MESSAGE).unwrap();
    let rsa = PublicKey::from_spki_pem(
        &std::fs::read_to_string(dir.path().join("rsa2048.pub.pem")).unwrap(),
    )
    .unwrap();
    let pkcs1 = openssl_sign(dir.path(), SignatureAlgorithm::RsaPkcs1Sha256);
    let pss = openssl_sign(dir.path(), SignatureAlgorithm::RsaPssSha256);
    for (signature, wrong) in [
        (&pkcs1, SignatureAlgorithm::RsaPssSha256),
        (&pkcs1, SignatureAlgorithm::RsaPkcs1Sha384),
        (&pss, SignatureAlgorithm::RsaPkcs1Sha256),
        (&pss, SignatureAlgorithm::RsaPssSha512),
    ] {
        assert!(
            matches!(
                rsa.verify(wrong, MESSAGE, signature),
                Err(PkiError::BadSignature { .. })
            ),
            "accepted under {wrong}"
        );
    }
    assert!(matches!(
        rsa.verify(SignatureAlgorithm::EcdsaP256Sha256, MESSAGE, &pkcs1),
        Err(PkiError::AlgorithmKeyMismatch { key: "rsa", .. })
    ));
}

#[test]
fn keys_made_by_openssl_genpkey_load_as_pem_and_der() {
    let dir = tempfile::tempdir().unwrap();
    generate_openssl_keys(dir.path());
    let expected = [
        ("ec-p256", SignatureAlgorithm::EcdsaP256Sha256),
        ("ec-p384", SignatureAlgorithm::EcdsaP384Sha384),
        ("rsa2048", SignatureAlgorithm::RsaPkcs1Sha256),
        ("ed25519", SignatureAlgorithm::Ed25519),
    ];
    for (name, algorithm) in expected {
        let pem_path = dir.path().join(format!("{name}.key.pem"));
        let der_path = dir.path().join(format!("{name}.key.der"));
        // `openssl pkey -outform DER` writes the traditional (SEC1, PKCS#1) encodings; `pkcs8
        // -topk8` writes PKCS#8, like genpkey's PEM.
        openssl(
            dir.path(),
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                &format!("{name}.key.pem"),
                "-outform",
                "DER",
                "-out",
                &format!("{name}.key.der"),
            ],
        );
        let openssl_public = PublicKey::from_spki_pem(
            &std::fs::read_to_string(dir.path().join(format!("{name}.pub.pem"))).unwrap(),
        )
        .unwrap();
        for path in [&pem_path, &der_path] {
            let key = PrivateKey::load(path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            assert_eq!(key.default_algorithm(), algorithm, "{name}");
            assert_eq!(
                key.public_key(),
                openssl_public,
                "{name}: public key differs from openssl's"
            );
            assert_eq!(
                key.public_key().spki_der(),
                openssl_public.spki_der(),
                "{name}: spki encoding differs"
            );
            let signature = key.sign(MESSAGE).unwrap();
            openssl_public
                .verify(algorithm, MESSAGE, &signature)
                .unwrap();
        }
    }
    // The P-256 key is also a Passerelle signing key.
    let signing = SigningKey::load(&dir.path().join("ec-p256.key.pem")).unwrap();
    assert_eq!(signing.algorithm(), SignatureAlgorithm::EcdsaP256Sha256);
    assert!(matches!(
        SigningKey::load(&dir.path().join("ec-p384.key.pem")),
        Err(PkiError::InvalidKey { .. })
    ));
}

#[test]
fn traditional_rsa_and_sec1_ec_files_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &["genrsa", "-traditional", "-out", "rsa.pem", "2048"],
    );
    let key = PrivateKey::load(&dir.path().join("rsa.pem")).unwrap();
    assert_eq!(key.default_algorithm(), SignatureAlgorithm::RsaPkcs1Sha256);

    openssl(
        dir.path(),
        &[
            "rsa",
            "-in",
            "rsa.pem",
            "-traditional",
            "-outform",
            "DER",
            "-out",
            "rsa.der",
        ],
    );
    let der = PrivateKey::load(&dir.path().join("rsa.der")).unwrap();
    assert_eq!(der.public_key(), key.public_key());

    openssl(
        dir.path(),
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ec.pem",
        ],
    );
    let error = PrivateKey::load(&dir.path().join("ec.pem")).unwrap_err();
    assert!(
        error.to_string().contains("openssl pkcs8 -topk8 -nocrypt"),
        "{error}"
    );
}

#[test]
fn signing_key_round_trips_and_is_saved_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let path = dir.path().join("member.key.pem");
    key.save(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let loaded = SigningKey::load(&path).unwrap();
    assert_eq!(loaded.public_key_spki_der(), key.public_key_spki_der());
    assert_eq!(
        SigningKey::from_pkcs8_der(&key.to_pkcs8_der())
            .unwrap()
            .public_key(),
        key.public_key()
    );
    assert!(
        key.to_pkcs8_pem()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    assert!(!format!("{key:?}").contains(&hex::encode(key.to_pkcs8_der())));
    // Each ECDSA signature is randomized, and all of them verify.
    let first = key.sign(MESSAGE).unwrap();
    let second = loaded.sign(MESSAGE).unwrap();
    assert_ne!(first, second);
    for signature in [first, second] {
        key.public_key()
            .verify(SignatureAlgorithm::EcdsaP256Sha256, MESSAGE, &signature)
            .unwrap();
    }
}

#[test]
fn algorithm_names_are_stable() {
    let names: Vec<String> = SignatureAlgorithm::ALL
        .iter()
        .map(|algorithm| serde_json::to_string(algorithm).unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "\"ecdsa-p256-sha256\"",
            "\"ecdsa-p384-sha384\"",
            "\"rsa-pkcs1-sha256\"",
            "\"rsa-pkcs1-sha384\"",
            "\"rsa-pkcs1-sha512\"",
            "\"rsa-pss-sha256\"",
            "\"rsa-pss-sha384\"",
            "\"rsa-pss-sha512\"",
            "\"ed25519\"",
        ]
    );
    for algorithm in SignatureAlgorithm::ALL {
        assert_eq!(
            algorithm.as_str().parse::<SignatureAlgorithm>().unwrap(),
            algorithm
        );
        assert_eq!(
            serde_json::from_str::<SignatureAlgorithm>(&format!("\"{algorithm}\"")).unwrap(),
            algorithm
        );
    }
    assert!("ecdsa-p256-sha512".parse::<SignatureAlgorithm>().is_err());
}
