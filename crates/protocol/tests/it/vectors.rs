//! Recomputes `testdata/vectors.json`, the test vectors `docs/protocol.md` reproduces.
//!
//! Regenerate after an intended format change with
//! `PASSERELLE_REGENERATE_VECTORS=1 cargo test -p passerelle-protocol --test it`, then copy the new
//! values into `docs/protocol.md`. The ECDSA signature is randomised, so the committed one is only
//! checked to verify, never recomputed byte for byte.

use std::path::PathBuf;

use http::{HeaderMap, HeaderName, HeaderValue};
use passerelle_pki::SigningKey;
use passerelle_pki::digest::sha256;
use passerelle_pki::merkle::{MerkleTree, leaf_hash};
use passerelle_protocol::headers::{forwardable, headers_digest};
use passerelle_protocol::path::CanonicalPath;
use passerelle_protocol::signing::{RequestSigningInput, ResponseSigningInput, SigningTime};
use serde_json::{Value, json};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// Everything deterministic in the vectors, computed from the fixed inputs.
fn computed() -> Value {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("Host", "ss-education.example"),
        ("User-Agent", "curl/8"),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("X-Road-Client", "DEV/GOV/EDUCATION/schools"),
        ("X-Trace", "b"),
        ("X-Trace", "a"),
    ] {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static(value),
        );
    }
    let forwarded = forwardable(&headers);
    let body = br#"{"child":42}"#;
    let request = RequestSigningInput {
        message_id: "6f1c2a5e-3b7d-4c1e-9a0f-0123456789ab".to_owned(),
        request_id: "9b2d4f60a1c3e5f70819aabbccddeeff".to_owned(),
        client: "DEV/GOV/EDUCATION/schools".parse().unwrap(),
        service: "DEV/GOV/HEALTH/patients/vaccinations".parse().unwrap(),
        method: "POST".to_owned(),
        path_and_query: "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/42?year=2024"
            .to_owned(),
        user_id: Some("EE12345".to_owned()),
        issue: None,
        represented_party: None,
        headers_digest: headers_digest(&forwarded),
        body_digest: sha256(body),
        signing_time: SigningTime(1_767_225_600_000),
    };
    let response = ResponseSigningInput {
        message_id: request.message_id.clone(),
        request_id: request.request_id.clone(),
        client: request.client.clone(),
        service: request.service.clone(),
        request_hash: request.hash(),
        status: 200,
        headers_digest: headers_digest(&forwardable(&{
            let mut response_headers = HeaderMap::new();
            response_headers.insert("content-type", HeaderValue::from_static("application/json"));
            response_headers
        })),
        body_digest: sha256(br#"{"vaccinations":[]}"#),
        signing_time: SigningTime(1_767_225_600_250),
    };
    let request_bytes = request.encode();
    let response_bytes = response.encode();
    let tree =
        MerkleTree::from_leaf_hashes(vec![leaf_hash(&request_bytes), leaf_hash(&response_bytes)]);
    let proof = tree.proof(0).unwrap();
    let canonical: Vec<Value> = [
        "/public/%2e%2e/private",
        "/public//a/./b/",
        "/public%2Fa",
        "/a%20b/%C3%A9",
    ]
    .iter()
    .map(|raw| {
        let path = CanonicalPath::parse(raw).unwrap();
        json!({"raw": raw, "canonical": path.to_string(), "forwarded": path.to_encoded()})
    })
    .collect();
    json!({
        "forwarded_headers": forwarded.iter().map(|(n, v)| json!([n.as_str(), v.to_str().unwrap()])).collect::<Vec<_>>(),
        "headers_digest": hex::encode(request.headers_digest),
        "request_body": String::from_utf8_lossy(body),
        "request_signing_input": hex::encode(&request_bytes),
        "request_hash": hex::encode(request.hash()),
        "response_signing_input": hex::encode(&response_bytes),
        "batch": {
            "leaves": [hex::encode(leaf_hash(&request_bytes)), hex::encode(leaf_hash(&response_bytes))],
            "root": hex::encode(tree.root()),
            "proof_of_leaf_0": {"leaf_index": proof.leaf_index, "tree_size": proof.tree_size, "path": proof.path.iter().map(hex::encode).collect::<Vec<_>>()},
            "signed_message": hex::encode(tree.root()),
        },
        "canonical_paths": canonical,
    })
}

#[test]
fn vectors_match_the_committed_file() {
    let key = SigningKey::load(&testdata("test-signing-key.pem")).unwrap();
    let mut expected = computed();
    let path = testdata("vectors.json");
    if std::env::var_os("PASSERELLE_REGENERATE_VECTORS").is_some() {
        let message = hex::decode(expected["batch"]["signed_message"].as_str().unwrap()).unwrap();
        expected["batch"]["signature_der"] =
            Value::String(hex::encode(key.sign(&message).unwrap()));
        expected["batch"]["signer_public_key_spki"] =
            Value::String(hex::encode(key.public_key_spki_der()));
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&expected).unwrap() + "\n",
        )
        .unwrap();
    }
    let mut committed: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let signature = hex::decode(committed["batch"]["signature_der"].as_str().unwrap()).unwrap();
    let spki = committed["batch"]["signer_public_key_spki"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(spki, hex::encode(key.public_key_spki_der()));
    let message = hex::decode(committed["batch"]["signed_message"].as_str().unwrap()).unwrap();
    key.public_key()
        .verify(key.algorithm(), &message, &signature)
        .unwrap();
    let batch = committed["batch"].as_object_mut().unwrap();
    batch.remove("signature_der");
    batch.remove("signer_public_key_spki");
    assert_eq!(committed, expected);
}

#[test]
fn a_changed_byte_breaks_the_committed_signature() {
    let committed: Value =
        serde_json::from_slice(&std::fs::read(testdata("vectors.json")).unwrap()).unwrap();
    let key = SigningKey::load(&testdata("test-signing-key.pem")).unwrap();
    let signature = hex::decode(committed["batch"]["signature_der"].as_str().unwrap()).unwrap();
    let mut message = hex::decode(committed["batch"]["signed_message"].as_str().unwrap()).unwrap();
    let last = message.len() - 1;
    message[last] ^= 1;
    assert!(
        key.public_key()
            .verify(key.algorithm(), &message, &signature)
            .is_err()
    );
}

#[test]
fn docs_protocol_md_reproduces_the_vectors() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/protocol.md"),
    )
    .unwrap();
    let flat: String = doc.split_whitespace().collect();
    let vectors = computed();
    for value in [
        &vectors["headers_digest"],
        &vectors["request_signing_input"],
        &vectors["request_hash"],
        &vectors["response_signing_input"],
        &vectors["batch"]["root"],
    ] {
        let hex = value.as_str().unwrap();
        assert!(
            flat.contains(hex),
            "docs/protocol.md lacks {hex}; regenerate it from testdata/vectors.json"
        );
    }
}
