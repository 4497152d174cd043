//! The `docs/audit.md` recipe, run with stock `openssl` and `sha256sum` against a real export.

use std::process::Command;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use passerelle_messagelog::{ExportFilter, KeyRing, extract_exchange};

use crate::common::{key_ring, open, record, signer};

fn recipe() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"))
        .unwrap();
    let block = doc
        .split("<!-- recipe:start -->")
        .nth(1)
        .unwrap()
        .split("<!-- recipe:end -->")
        .next()
        .unwrap();
    block
        .lines()
        .filter(|line| !line.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_documented_recipe_holds() {
    let signer = signer();
    let dir = tempfile::tempdir().unwrap();
    let keys_text = key_ring().to_toml();
    let log = open(
        &dir.path().join("log"),
        Some(KeyRing::parse(&keys_text).unwrap()),
    );
    for index in 0..3 {
        log.append(record(index, Some(&signer), false))
            .wait()
            .unwrap();
    }
    let archive = dir.path().join("a.pla");
    log.export(
        &ExportFilter::default(),
        None,
        std::slice::from_ref(&signer.anchor),
        &archive,
        SystemTime::now(),
    )
    .unwrap();
    let keys = KeyRing::parse(&keys_text).unwrap();
    let extracted = extract_exchange(
        &archive,
        None,
        "msg-1",
        Some(&keys),
        &dir.path().join("evidence"),
    )
    .unwrap();
    let part = extracted[0].dir.join("response");
    assert_eq!(extracted[0].dir.file_name().unwrap(), "provider-1");
    // The record beside the files: byte strings as base64 text, as in the log.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(extracted[0].dir.join("record.json")).unwrap())
            .unwrap();
    let signing_input = &record["entry"]["response"]["signing_input"];
    assert_eq!(
        signing_input
            .as_str()
            .map(|text| STANDARD.decode(text).unwrap()),
        Some(std::fs::read(part.join("signing-input.bin")).unwrap()),
        "{record}"
    );

    let run = || {
        Command::new("sh")
            .arg("-ec")
            .arg(recipe())
            .current_dir(&part)
            .output()
            .unwrap()
    };
    let output = run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Verified OK"), "{stdout}");

    // The same recipe fails on an altered signing input, and on an altered body.
    let input = part.join("signing-input.bin");
    let original = std::fs::read(&input).unwrap();
    std::fs::write(&input, [&original[..], b"x"].concat()).unwrap();
    assert!(!run().status.success());
    std::fs::write(&input, &original).unwrap();
    std::fs::write(part.join("body"), b"{\"child\":1,\"doses\":4}").unwrap();
    assert!(!run().status.success());
}
