//! Export straight from the segments: on a live log, sealed for an auditor, and verified against
//! the archive it continues.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use passerelle_messagelog::{
    ExportOptions, FailureKind, LogError, MessageLog, VerifyOptions, VerifyReport, export_log,
    timeline, verify_archive,
};
use passerelle_pki::SigningKey;
use passerelle_pki::sealed_box::{OpeningKey, RecipientKey};

use crate::common::{FakeTokens, open, record};

fn append(log: &MessageLog, range: std::ops::Range<u64>) {
    for index in range {
        log.append(record(index, None, true)).wait().unwrap();
    }
}

fn export(dir: &Path, name: &str, options: ExportOptions) -> PathBuf {
    let out = dir.join(name);
    export_log(&dir.join("log"), &options, &out, SystemTime::now()).unwrap();
    out
}

fn verify(path: &Path, previous: Option<&Path>, unseal: Option<&OpeningKey>) -> VerifyReport {
    verify_archive(
        path,
        &VerifyOptions {
            token_verifier: Some(&FakeTokens),
            previous,
            unseal,
            ..Default::default()
        },
    )
    .unwrap()
}

fn last_segment(log_dir: &Path) -> PathBuf {
    let mut segments: Vec<_> = std::fs::read_dir(log_dir.join("segments"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    segments.sort();
    segments.pop().unwrap()
}

#[test]
fn a_running_log_exports_up_to_its_last_complete_entry() {
    let dir = tempfile::tempdir().unwrap();
    // The log stays open (its index database locked) for the whole test, as in a running server.
    let log = open(&dir.path().join("log"), None);
    append(&log, 0..12);
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    append(&log, 12..15);
    // A frame the writer has begun but not finished: a header promising more than is there.
    let mut segment = std::fs::OpenOptions::new()
        .append(true)
        .open(last_segment(&dir.path().join("log")))
        .unwrap();
    segment
        .write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{'])
        .unwrap();
    drop(segment);

    let first = export(dir.path(), "live.pla", ExportOptions::default());
    let report = verify(&first, None, None);
    assert_eq!(report.failure, None);
    assert_eq!(
        report.last_sequence,
        Some(15),
        "12 + checkpoint + 3 entries"
    );
    assert_eq!(report.checkpoints_checked, 1);
    assert_eq!(log.exported_through().unwrap(), Some(15));

    // The writer goes on (overwriting the half frame); the next export continues the first.
    append(&log, 15..20);
    let second = export(
        dir.path(),
        "live-2.pla",
        ExportOptions {
            previous: Some(first.clone()),
            ..Default::default()
        },
    );
    let report = verify(&second, Some(&first), None);
    assert_eq!(report.failure, None);
    assert_eq!(report.manifest.unwrap().first_sequence, 16);
    assert_eq!(report.last_sequence, Some(20));
    assert!(report.continues_previous);
    assert_eq!(log.exported_through().unwrap(), Some(20));
}

#[test]
fn a_sealed_archive_opens_only_with_the_auditors_key() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"), None);
    append(&log, 0..5);
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    let auditor = SigningKey::generate().unwrap();
    let opening = OpeningKey::from_pkcs8_der(&auditor.to_pkcs8_der()).unwrap();
    let recipient = RecipientKey::from_spki_der(&auditor.public_key_spki_der()).unwrap();
    let sealed = export(
        dir.path(),
        "sealed.pla",
        ExportOptions {
            seal_to: Some(recipient),
            ..Default::default()
        },
    );
    let bytes = std::fs::read(&sealed).unwrap();
    assert!(
        !bytes.windows(5).any(|window| window == b"msg-3"),
        "message ids must not appear in clear"
    );

    // Without the key: a precise error naming what is needed.
    let error = verify_archive(&sealed, &VerifyOptions::default()).unwrap_err();
    assert!(matches!(error, LogError::Sealed { .. }), "{error}");
    assert!(error.to_string().contains("--unseal-with"), "{error}");
    // With the key: the archive holds, and replays.
    let report = verify(&sealed, None, Some(&opening));
    assert_eq!(report.failure, None);
    assert_eq!(report.entries, 6);
    let mut rows = Vec::new();
    assert_eq!(
        timeline(&sealed, Some(&opening), false, &mut rows).unwrap(),
        5
    );
    // Another key: refused, naming the key mismatch.
    let stranger = SigningKey::generate().unwrap();
    let stranger = OpeningKey::from_pkcs8_der(&stranger.to_pkcs8_der()).unwrap();
    let report = verify(&sealed, None, Some(&stranger));
    let failure = report.failure.unwrap();
    assert!(failure.detail.contains("another key"), "{failure}");
    // Cut or altered: refused.
    let cut = dir.path().join("cut.pla");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let failure = verify(&cut, None, Some(&opening)).failure.unwrap();
    assert_eq!(failure.kind, FailureKind::Framing, "{failure}");
    let mut altered = bytes.clone();
    altered[200] ^= 1;
    let altered_path = dir.path().join("altered.pla");
    std::fs::write(&altered_path, &altered).unwrap();
    let failure = verify(&altered_path, None, Some(&opening)).failure.unwrap();
    assert!(failure.detail.contains("altered or truncated"), "{failure}");
}

#[test]
fn verify_previous_checks_the_link_and_the_checkpoints_over_earlier_entries() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"), None);
    // The first archive is exported before its entries are time-stamped.
    append(&log, 0..10);
    let first = export(dir.path(), "first.pla", ExportOptions::default());
    // The checkpoint over 0..=9 lands in the second archive, with none of the entries it covers.
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    append(&log, 10..14);
    let second = export(
        dir.path(),
        "second.pla",
        ExportOptions {
            previous: Some(first.clone()),
            ..Default::default()
        },
    );
    let alone = verify(&second, None, None);
    assert_eq!(alone.failure, None);
    assert_eq!(alone.checkpoints_for_earlier_archives, 1);
    assert_eq!(alone.checkpoints_checked, 0);
    let together = verify(&second, Some(&first), None);
    assert_eq!(together.failure, None);
    assert_eq!(together.checkpoints_for_earlier_archives, 0);
    assert_eq!(together.checkpoints_checked, 1);
    assert_eq!(together.tokens_verified, 1);

    // A span that began in the second archive and is stamped after the third begins: the third
    // carries the span's earlier leaves as a prefix, checked against the second archive.
    append(&log, 14..16);
    let third_start = export(
        dir.path(),
        "third-base.pla",
        ExportOptions {
            previous: Some(second.clone()),
            ..Default::default()
        },
    );
    append(&log, 16..18);
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    let fourth = export(
        dir.path(),
        "fourth.pla",
        ExportOptions {
            previous: Some(third_start.clone()),
            ..Default::default()
        },
    );
    let together = verify(&fourth, Some(&third_start), None);
    assert_eq!(together.failure, None);
    assert_eq!(together.checkpoints_checked, 1);

    // Against an archive it does not continue: named as such.
    for wrong in [&first, &fourth] {
        let failure = verify(&fourth, Some(wrong), None).failure.unwrap();
        assert_eq!(failure.kind, FailureKind::Previous, "{failure}");
    }
    let failure = verify(&second, Some(&third_start), None).failure.unwrap();
    assert_eq!(failure.kind, FailureKind::Previous, "{failure}");
}
