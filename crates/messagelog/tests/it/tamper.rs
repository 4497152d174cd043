//! Every kind of tampering is caught by `verify` and attributed to the right entry.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use passerelle_messagelog::{
    ArchiveFrame, ArchiveReader, ArchiveWriter, ExportFilter, Failure, FailureKind, KeyRing,
    Sha256Hash, VerifyOptions, verify_archive,
};

use crate::common::{FakeTokens, Signer, key_ring, open, record, signer};

struct Fixture {
    dir: tempfile::TempDir,
    keys: KeyRing,
    archive: PathBuf,
}

/// Entries 0..=5 exchanges, 6 checkpoint, 7..=12 exchanges, 13 checkpoint.
fn exported_log(signer: &Signer) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let keys_text = key_ring().to_toml();
    let log = open(
        &dir.path().join("log"),
        Some(KeyRing::parse(&keys_text).unwrap()),
    );
    for index in 0..6 {
        log.append(record(index, Some(signer), false))
            .wait()
            .unwrap();
    }
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    for index in 7..13 {
        log.append(record(index, Some(signer), false))
            .wait()
            .unwrap();
    }
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    let archive = dir.path().join("archive.pla");
    log.export(
        &ExportFilter::default(),
        None,
        std::slice::from_ref(&signer.anchor),
        &archive,
        SystemTime::now(),
    )
    .unwrap();
    Fixture {
        dir,
        keys: KeyRing::parse(&keys_text).unwrap(),
        archive,
    }
}

fn frames(path: &Path) -> Vec<ArchiveFrame> {
    let mut reader = ArchiveReader::open(path, None).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame().unwrap() {
        frames.push(frame);
    }
    frames
}

fn write(path: &Path, frames: &[ArchiveFrame]) {
    let mut writer = ArchiveWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for frame in frames {
        writer.write(frame).unwrap();
    }
}

fn position(frames: &[ArchiveFrame], sequence: u64) -> usize {
    frames
        .iter()
        .position(|frame| match frame {
            ArchiveFrame::Entry { content, .. } => {
                serde_json::from_slice::<serde_json::Value>(content).unwrap()["sequence"]
                    == sequence
            }
            _ => false,
        })
        .unwrap()
}

fn edit_content(
    frames: &mut [ArchiveFrame],
    sequence: u64,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    let at = position(frames, sequence);
    if let ArchiveFrame::Entry { content, .. } = &mut frames[at] {
        let mut value: serde_json::Value = serde_json::from_slice(content).unwrap();
        edit(&mut value);
        *content = serde_json::to_vec(&value).unwrap();
    }
}

/// What a careful forger does: recompute every hash from `from` on so the chain links again.
fn rechain(frames: &mut [ArchiveFrame], from: u64) {
    let mut previous: Option<Sha256Hash> = None;
    for frame in frames.iter_mut() {
        match frame {
            ArchiveFrame::Entry { hash, content } => {
                let mut value: serde_json::Value = serde_json::from_slice(content).unwrap();
                if value["sequence"].as_u64().unwrap() >= from {
                    if let Some(previous) = previous {
                        value["previous_hash"] = serde_json::Value::String(previous.to_hex());
                    }
                    *content = serde_json::to_vec(&value).unwrap();
                    let previous_hash =
                        Sha256Hash::from_hex(value["previous_hash"].as_str().unwrap()).unwrap();
                    *hash = Sha256Hash::chain(&previous_hash, &Sha256Hash::of(content));
                }
                previous = Some(*hash);
            }
            ArchiveFrame::Trailer(trailer) => trailer.last_hash = previous.unwrap(),
            _ => {}
        }
    }
}

fn verify(path: &Path, keys: Option<&KeyRing>) -> Failure {
    let options = VerifyOptions {
        keys,
        token_verifier: Some(&FakeTokens),
        ..Default::default()
    };
    verify_archive(path, &options)
        .unwrap()
        .failure
        .expect("tampering must be detected")
}

fn tampered(fixture: &Fixture, name: &str, change: impl FnOnce(&mut Vec<ArchiveFrame>)) -> PathBuf {
    let mut all = frames(&fixture.archive);
    change(&mut all);
    let path = fixture.dir.path().join(name);
    write(&path, &all);
    path
}

fn flip_body_byte(value: &mut serde_json::Value) {
    let sealed = &mut value["entry"]["response"]["body"]["sealed"];
    let mut text = sealed.as_str().unwrap().to_owned();
    let replacement = if text.starts_with('A') { "B" } else { "A" };
    text.replace_range(0..1, replacement);
    *sealed = serde_json::Value::String(text);
}

#[test]
fn the_untouched_archive_verifies() {
    let signer = signer();
    let fixture = exported_log(&signer);
    let options = VerifyOptions {
        keys: Some(&fixture.keys),
        token_verifier: Some(&FakeTokens),
        ..Default::default()
    };
    let report = verify_archive(&fixture.archive, &options).unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(
        (
            report.entries,
            report.checkpoints_checked,
            report.entries_not_timestamped
        ),
        (14, 2, 1),
        "the last checkpoint entry waits for the next"
    );
    // Rewriting the frames unchanged also verifies: the tamper helpers themselves are faithful.
    let copy = tampered(&fixture, "copy.pla", |_| {});
    assert_eq!(verify_archive(&copy, &options).unwrap().failure, None);
}

#[test]
fn tampering_is_caught_and_attributed() {
    let signer = signer();
    let fixture = exported_log(&signer);
    let keys = Some(&fixture.keys);
    type Case = (
        &'static str,
        Box<dyn FnOnce(&mut Vec<ArchiveFrame>)>,
        bool,
        Option<u64>,
        FailureKind,
    );
    let cases: Vec<Case> = vec![
        (
            "one body byte",
            Box::new(|f| edit_content(f, 3, flip_body_byte)),
            false,
            Some(3),
            FailureKind::Hash,
        ),
        (
            "one body byte, rechained, checked with the key",
            Box::new(|f| {
                edit_content(f, 3, flip_body_byte);
                rechain(f, 3);
            }),
            true,
            Some(3),
            FailureKind::Body,
        ),
        (
            "one body byte, rechained, without the key: the time-stamped root gives it away",
            Box::new(|f| {
                edit_content(f, 3, flip_body_byte);
                rechain(f, 3);
            }),
            false,
            Some(6),
            FailureKind::Checkpoint,
        ),
        (
            "one metadata field",
            Box::new(|f| edit_content(f, 4, |v| v["entry"]["status"] = 500.into())),
            false,
            Some(4),
            FailureKind::Hash,
        ),
        (
            "one signature byte, rechained",
            Box::new(|f| {
                edit_content(f, 5, |v| {
                    use base64::Engine as _;
                    let engine = base64::engine::general_purpose::STANDARD;
                    let signature = &mut v["entry"]["request"]["signature"]["signature"];
                    let mut bytes = engine.decode(signature.as_str().unwrap()).unwrap();
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0x01;
                    *signature = serde_json::Value::String(engine.encode(bytes));
                });
                rechain(f, 5);
            }),
            false,
            Some(5),
            FailureKind::Signature,
        ),
        (
            "two records swapped",
            Box::new(|f| {
                let (a, b) = (position(f, 2), position(f, 3));
                f.swap(a, b);
            }),
            false,
            Some(2),
            FailureKind::Sequence,
        ),
        (
            "one record deleted",
            Box::new(|f| {
                let at = position(f, 8);
                f.remove(at);
            }),
            false,
            Some(8),
            FailureKind::Sequence,
        ),
        (
            "one record inserted",
            Box::new(|f| {
                let at = position(f, 9);
                let copy = f[position(f, 4)].clone();
                f.insert(at, copy);
            }),
            false,
            Some(9),
            FailureKind::Sequence,
        ),
        (
            "the tail and trailer cut",
            Box::new(|f| {
                let at = position(f, 11);
                f.truncate(at);
            }),
            false,
            Some(11),
            FailureKind::Truncated,
        ),
    ];
    for (name, change, with_key, sequence, kind) in cases {
        let path = tampered(&fixture, "t.pla", change);
        let failure = verify(&path, if with_key { keys } else { None });
        assert_eq!(
            (failure.sequence, failure.kind),
            (sequence, kind),
            "{name}: {failure}"
        );
        if let Some(sequence) =
            sequence.filter(|s| *s != 6 && *s != 13 && kind != FailureKind::Truncated)
        {
            // A misplaced entry is reported with the message it carries.
            let expected = match name {
                "one record inserted" => "msg-4".to_owned(),
                "two records swapped" => "msg-3".to_owned(),
                "one record deleted" => "msg-9".to_owned(),
                _ => format!("msg-{sequence}"),
            };
            assert_eq!(
                failure.message_id.as_deref(),
                Some(expected.as_str()),
                "{name}"
            );
        }
    }
}

#[test]
fn a_byte_cut_inside_the_last_frame_is_a_framing_failure() {
    let signer = signer();
    let fixture = exported_log(&signer);
    let bytes = std::fs::read(&fixture.archive).unwrap();
    let cut = fixture.dir.path().join("cut.pla");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let failure = verify(&cut, None);
    assert_eq!(
        (failure.sequence, failure.kind),
        (Some(14), FailureKind::Framing),
        "{failure}"
    );
}

#[test]
fn an_export_spliced_from_two_logs_is_caught_at_the_splice() {
    let signer = signer();
    let first = exported_log(&signer);
    let second = exported_log(&signer);
    let (a, b) = (frames(&first.archive), frames(&second.archive));
    let splice_at = position(&a, 9);
    let mut spliced: Vec<ArchiveFrame> = a[..splice_at].to_vec();
    spliced.extend_from_slice(&b[position(&b, 9)..]);
    let path = first.dir.path().join("spliced.pla");
    write(&path, &spliced);
    let failure = verify(&path, None);
    assert_eq!(
        (failure.sequence, failure.kind),
        (Some(9), FailureKind::Chain),
        "{failure}"
    );
    assert_eq!(failure.message_id.as_deref(), Some("msg-9"));
}

#[test]
fn filtered_exports_keep_the_chain_with_redacted_links_and_consecutive_exports_link() {
    let signer = signer();
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"), Some(key_ring()));
    for index in 0..9 {
        log.append(record(index, Some(&signer), false))
            .wait()
            .unwrap();
    }
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    let anchors = [signer.anchor.clone()];
    let filter = ExportFilter {
        client: Some(crate::common::client(1)),
        ..Default::default()
    };
    let filtered = dir.path().join("client.pla");
    let summary = log
        .export(&filter, None, &anchors, &filtered, SystemTime::now())
        .unwrap();
    assert_eq!(
        (summary.full_entries, summary.redacted_entries),
        (4, 6),
        "msg-1, msg-4, msg-7 and the checkpoint"
    );
    let options = VerifyOptions {
        token_verifier: Some(&FakeTokens),
        ..Default::default()
    };
    assert_eq!(verify_archive(&filtered, &options).unwrap().failure, None);
    assert_eq!(
        log.exported_through().unwrap(),
        None,
        "a filtered export does not count as exported"
    );

    let first = dir.path().join("first.pla");
    log.export(
        &ExportFilter::default(),
        None,
        &anchors,
        &first,
        SystemTime::now(),
    )
    .unwrap();
    for index in 10..14 {
        log.append(record(index, Some(&signer), false))
            .wait()
            .unwrap();
    }
    let second = dir.path().join("second.pla");
    let summary = log
        .export(
            &ExportFilter::default(),
            Some(&first),
            &anchors,
            &second,
            SystemTime::now(),
        )
        .unwrap();
    assert_eq!((summary.first_sequence, summary.last_sequence), (10, 13));
    let report = verify_archive(&second, &options).unwrap();
    assert_eq!(report.failure, None);
    let link = report.manifest.unwrap().previous_archive.unwrap();
    assert_eq!(
        link.last_hash,
        verify_archive(&first, &options).unwrap().last_hash.unwrap()
    );
    assert_eq!(log.exported_through().unwrap(), Some(13));

    // A third export starting mid-span carries a span prefix and still checks the checkpoint.
    log.checkpoint(&FakeTokens, SystemTime::now()).unwrap();
    let middle = dir.path().join("middle.pla");
    let filter = ExportFilter {
        message_id: Some("msg-12".into()),
        ..Default::default()
    };
    log.export(&filter, None, &anchors, &middle, SystemTime::now())
        .unwrap();
    let report = verify_archive(&middle, &options).unwrap();
    assert_eq!(
        (
            report.failure,
            report.checkpoints_checked,
            report.full_entries
        ),
        (None, 1, 2)
    );
}
