//! Parsers never panic: the committed corpus in `testdata/corpus/` plus truncations, bit flips
//! and pseudo-random bytes go through certificate, key and public-key parsing, signature
//! verification and chain validation. See `testdata/regenerate-corpus.sh` for the naming.

use passerelle_pki::{
    Certificate, PrivateKey, PublicKey, Purpose, SignatureAlgorithm, SigningKey, validate_chain,
};

use crate::{date, testdata};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(testdata("corpus"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the corpus is missing");
    files
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap()).unwrap()
    }
}

/// Truncations at up to 48 points, 128 single-bit flips, 16 random byte overwrites.
fn mutations(bytes: &[u8], random: &mut Random) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let step = (bytes.len() / 48).max(1);
    for length in (0..bytes.len()).step_by(step) {
        out.push(bytes[..length].to_vec());
    }
    if !bytes.is_empty() {
        for _ in 0..128 {
            let mut flipped = bytes.to_vec();
            let bit = random.below(bytes.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            out.push(flipped);
        }
        for _ in 0..16 {
            let mut overwritten = bytes.to_vec();
            let position = random.below(bytes.len());
            overwritten[position] = random.next().to_le_bytes()[0];
            out.push(overwritten);
        }
    }
    out
}

struct Fixtures {
    message: Vec<u8>,
    public_keys: Vec<PublicKey>,
    root: Vec<Certificate>,
    intermediate: Vec<Certificate>,
}

fn fixtures() -> Fixtures {
    let public_keys = [
        "spki-ec-p256.der",
        "spki-ec-p384.der",
        "spki-rsa2048.der",
        "spki-ed25519.der",
    ]
    .iter()
    .map(|file| {
        PublicKey::from_spki_der(&std::fs::read(testdata(&format!("corpus/{file}"))).unwrap())
            .unwrap()
    })
    .collect();
    let chain = Certificate::load(&testdata("corpus/cert-ss-health-chain.pem")).unwrap();
    Fixtures {
        message: std::fs::read(testdata("corpus/message.txt")).unwrap(),
        public_keys,
        root: Certificate::load(&testdata("corpus/cert-root.pem")).unwrap(),
        intermediate: chain[1..].to_vec(),
    }
}

/// Feeds `bytes` to every parser; returns which of them accepted it.
fn exercise(bytes: &[u8], fixtures: &Fixtures) -> Accepted {
    let mut accepted = Accepted::default();
    let mut certificates = Vec::new();
    if let Ok(certificate) = Certificate::from_der(bytes.to_vec()) {
        certificates.push(certificate);
    }
    accepted.private_key |= PrivateKey::from_der(bytes).is_ok();
    accepted.private_key |= SigningKey::from_pkcs8_der(bytes).is_ok();
    accepted.public_key |= PublicKey::from_spki_der(bytes).is_ok();
    if let Ok(text) = std::str::from_utf8(bytes) {
        if let Ok(certificate) = Certificate::from_pem(text) {
            certificates.push(certificate);
        }
        if let Ok(chain) = Certificate::load_pem_chain(text) {
            certificates.extend(chain);
        }
        accepted.private_key |= PrivateKey::from_pem(text).is_ok();
        accepted.private_key |= SigningKey::from_pkcs8_pem(text).is_ok();
        accepted.public_key |= PublicKey::from_spki_pem(text).is_ok();
    }
    for public_key in &fixtures.public_keys {
        for algorithm in SignatureAlgorithm::ALL {
            accepted.signature |= public_key
                .verify(algorithm, &fixtures.message, bytes)
                .is_ok();
        }
    }
    accepted.certificate = !certificates.is_empty();
    for certificate in &certificates {
        // Every accessor, and validation for every purpose, on whatever parsed.
        let _ = (
            certificate.subject(),
            certificate.issuer(),
            certificate.serial_hex(),
            certificate.member_id(),
        );
        let _ = (
            certificate.not_before(),
            certificate.not_after(),
            certificate.is_ca(),
            certificate.default_algorithm(),
        );
        let _ = (
            certificate.dns_names(),
            certificate.ip_addresses(),
            certificate.to_pem(),
            certificate.public_key().is_ok(),
        );
        for algorithm in SignatureAlgorithm::ALL {
            let _ = certificate.verify_signature(algorithm, &fixtures.message, bytes);
        }
        for purpose in [
            Purpose::TlsAuth,
            Purpose::Signing,
            Purpose::ConfigSigning,
            Purpose::OcspSigning,
            Purpose::TimeStamping,
        ] {
            let _ = validate_chain(
                certificate,
                &fixtures.intermediate,
                &fixtures.root,
                date("2026-06-01"),
                purpose,
            )
            .map_err(|error| error.to_string());
        }
    }
    accepted
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Accepted {
    certificate: bool,
    private_key: bool,
    public_key: bool,
    signature: bool,
}

#[test]
fn committed_corpus_is_classified_as_named() {
    let fixtures = fixtures();
    for (name, bytes) in corpus() {
        let accepted = exercise(&bytes, &fixtures);
        let expected = match name.split('-').next().unwrap() {
            "cert" => accepted.certificate,
            "key" => accepted.private_key,
            "spki" => accepted.public_key,
            "sig" => accepted.signature,
            "bad" => accepted == Accepted::default(),
            _ => true,
        };
        assert!(expected, "{name}: {accepted:?}");
    }
}

#[test]
fn truncated_and_bit_flipped_corpus_never_panics() {
    let fixtures = fixtures();
    let mut random = Random(0x5eed_0fc0_ffee);
    let mut cases = 0;
    for (name, bytes) in corpus() {
        for mutated in mutations(&bytes, &mut random) {
            exercise(&mutated, &fixtures);
            cases += 1;
        }
        // Every strict truncation of a DER certificate is refused.
        if name.starts_with("cert-") && name.ends_with(".der") {
            for length in 0..bytes.len() {
                assert!(
                    Certificate::from_der(bytes[..length].to_vec()).is_err(),
                    "{name} cut at {length}"
                );
            }
        }
    }
    assert!(cases > 3000, "only {cases} cases");
}

#[test]
fn random_bytes_and_random_pem_never_panic() {
    let fixtures = fixtures();
    let mut random = Random(0xdead_beef_1234_5678);
    for round in 0..600 {
        let length = random.below(700);
        let bytes: Vec<u8> = (0..length)
            .map(|_| random.next().to_le_bytes()[0])
            .collect();
        let accepted = exercise(&bytes, &fixtures);
        assert!(
            !accepted.certificate && !accepted.private_key,
            "round {round} accepted random bytes"
        );
        // The same bytes inside PEM armour of each tag the parsers look for, and as a DER
        // SEQUENCE, so that parsing gets past the first byte.
        for tag in [
            "CERTIFICATE",
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "PUBLIC KEY",
        ] {
            let pem = pem::encode(&pem::Pem::new(tag, bytes.clone()));
            exercise(pem.as_bytes(), &fixtures);
        }
        let mut sequence = vec![0x30, 0x82];
        sequence.extend_from_slice(&u16::try_from(length).unwrap().to_be_bytes());
        sequence.extend_from_slice(&bytes);
        exercise(&sequence, &fixtures);
    }
}

#[test]
fn mutated_files_load_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let mut random = Random(42);
    for (name, bytes) in corpus() {
        for (index, mutated) in mutations(&bytes, &mut random)
            .into_iter()
            .step_by(16)
            .enumerate()
        {
            let path = dir.path().join(format!("{index}-{name}"));
            std::fs::write(&path, &mutated).unwrap();
            let _ = Certificate::load(&path);
            let _ = PrivateKey::load(&path);
            let _ = SigningKey::load(&path);
        }
    }
    assert!(Certificate::load(&dir.path().join("missing.pem")).is_err());
}
