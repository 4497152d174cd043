//! Signature and Merkle batch throughput, printed for comparison between runs.
//!
//! Run with `cargo bench -p passerelle-pki --bench signatures`. It prints signatures made and
//! verified per second for each algorithm (with verification relative to ECDSA P-256, the
//! default), and the cost per leaf of building a Merkle batch, proving and verifying inclusion.
//! The keys are the openssl-made keys of `testdata/corpus/`. Numbers are wall-clock on this
//! machine: compare runs on the same machine, or the ratios.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark program")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use passerelle_pki::merkle::MerkleTree;
use passerelle_pki::{PrivateKey, SignatureAlgorithm, SigningKey};

/// How long each measurement runs.
const BUDGET: Duration = Duration::from_millis(400);

const MESSAGE: &[u8] = b"signing input: message id, client, service, method, path, digests, time";

fn main() {
    let keys = [
        ("ec-p256", PrivateKey::from(SigningKey::generate().unwrap())),
        (
            "ec-p384",
            PrivateKey::from_pem(include_str!("../testdata/corpus/key-ec-p384.pem")).unwrap(),
        ),
        (
            "rsa2048",
            PrivateKey::from_pem(include_str!("../testdata/corpus/key-rsa2048.pem")).unwrap(),
        ),
        (
            "ed25519",
            PrivateKey::from_pem(include_str!("../testdata/corpus/key-ed25519.pem")).unwrap(),
        ),
    ];
    let key_for = |algorithm: SignatureAlgorithm| {
        let name = match algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => "ec-p256",
            SignatureAlgorithm::EcdsaP384Sha384 => "ec-p384",
            SignatureAlgorithm::Ed25519 => "ed25519",
            _ => "rsa2048",
        };
        &keys
            .iter()
            .find(|(key_name, _)| *key_name == name)
            .unwrap()
            .1
    };

    println!(
        "passerelle-pki signatures ({} ms per measurement, {}-byte message)",
        BUDGET.as_millis(),
        MESSAGE.len()
    );
    println!();
    println!(
        "{:<20} {:>12} {:>12} {:>22}",
        "algorithm", "sign/s", "verify/s", "verify vs p256 (x)"
    );
    let mut baseline_verify = None;
    for algorithm in SignatureAlgorithm::ALL {
        let key = key_for(algorithm);
        let public_key = key.public_key();
        let signs = rate(|| {
            black_box(key.sign_with(algorithm, black_box(MESSAGE)).unwrap());
        });
        let signature = key.sign_with(algorithm, MESSAGE).unwrap();
        let verifies = rate(|| {
            public_key
                .verify(algorithm, black_box(MESSAGE), black_box(&signature))
                .unwrap();
        });
        let baseline = *baseline_verify.get_or_insert(verifies);
        println!(
            "{:<20} {:>12.0} {:>12.0} {:>22.2}",
            algorithm.as_str(),
            signs,
            verifies,
            verifies / baseline
        );
    }

    println!();
    println!("merkle batches (RFC 6962), cost per leaf");
    println!(
        "{:>8} {:>14} {:>14} {:>14} {:>20}",
        "leaves", "build (ns)", "prove (ns)", "verify (ns)", "p256 sign/leaf (ns)"
    );
    let p256 = key_for(SignatureAlgorithm::EcdsaP256Sha256);
    let sign_ns = 1e9
        / rate(|| {
            black_box(p256.sign(black_box(MESSAGE)).unwrap());
        });
    for size in [1usize, 16, 256, 4096] {
        let leaves: Vec<[u8; 32]> = (0..size)
            .map(|index| passerelle_pki::digest::sha256(&index.to_le_bytes()))
            .collect();
        let build = per_item(size, || {
            black_box(MerkleTree::from_leaf_hashes(black_box(leaves.clone())));
        });
        let tree = MerkleTree::from_leaf_hashes(leaves.clone());
        let root = tree.root();
        let prove = per_item(size, || {
            for index in 0..size {
                black_box(tree.proof(index).unwrap());
            }
        });
        let proofs: Vec<_> = (0..size).map(|index| tree.proof(index).unwrap()).collect();
        let verify = per_item(size, || {
            for (proof, leaf) in proofs.iter().zip(&leaves) {
                proof.verify(leaf, &root).unwrap();
            }
        });
        // One root signature shared by the whole batch.
        println!(
            "{size:>8} {build:>14.0} {prove:>14.0} {verify:>14.0} {:>20.0}",
            sign_ns / size as f64
        );
    }
}

/// Operations per second of `operation`, run repeatedly for [`BUDGET`].
fn rate(mut operation: impl FnMut()) -> f64 {
    operation(); // warm up
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < BUDGET {
        operation();
        count += 1;
    }
    count as f64 / start.elapsed().as_secs_f64()
}

/// Nanoseconds per item of `operation`, which handles `items` items per call.
fn per_item(items: usize, operation: impl FnMut()) -> f64 {
    1e9 / (rate(operation) * items as f64)
}
