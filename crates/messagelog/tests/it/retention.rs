//! Retention removes whole segments only once exported, time-stamped and old enough.

use std::time::{Duration, SystemTime};

use passerelle_messagelog::{
    Durability, Evidence, ExportFilter, LogOptions, MessageLog, PeerAuthentication, Sha256Hash,
    VerifyOptions, verify_archive,
};

use crate::common::{FakeTokens, now_ms, record};

const DAY: Duration = Duration::from_secs(86_400);

fn small_segments(dir: &std::path::Path) -> MessageLog {
    let mut options = LogOptions::new(Durability::Fsync);
    options.segment_size_limit = 2048;
    MessageLog::open(dir, options).unwrap()
}

fn append_aged(log: &MessageLog, range: std::ops::Range<u64>, age_ms: u64) {
    for index in range {
        let mut record = record(index, None, true);
        record.request_received_at_ms = now_ms() - age_ms;
        record.response_sent_at_ms = record.request_received_at_ms + 5;
        log.append(record).wait().unwrap();
    }
}

/// The first failure of an archive of these tests, verified with their stand-in TSA.
fn failure(archive: &std::path::Path) -> Option<passerelle_messagelog::Failure> {
    let options = VerifyOptions {
        token_verifier: Some(&FakeTokens),
        ..Default::default()
    };
    verify_archive(archive, &options).unwrap().failure
}

fn segment_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .filter(|file| file.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
        .count()
}

#[test]
fn segments_go_only_when_exported_time_stamped_and_old() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_segments(dir.path());
    append_aged(&log, 0..30, 10 * 86_400_000);
    let now = SystemTime::now();
    assert!(segment_count(dir.path()) > 4);

    // Old, but neither time-stamped nor exported.
    assert!(
        log.apply_retention(DAY, now)
            .unwrap()
            .removed_segments
            .is_empty()
    );
    // Exported but not time-stamped.
    let first = dir.path().join("first.pla");
    log.export(&ExportFilter::default(), None, &[], &first, now)
        .unwrap();
    assert!(
        log.apply_retention(DAY, now)
            .unwrap()
            .removed_segments
            .is_empty()
    );
    // Time-stamped, but the span of that time-stamp reaches past what was exported.
    append_aged(&log, 30..60, 10 * 86_400_000);
    log.checkpoint(&FakeTokens, now).unwrap();
    let removed = log.apply_retention(DAY, now).unwrap();
    assert!(removed.removed_segments.is_empty(), "{removed:?}");
    // Exported, time-stamped, but younger than the retention period.
    let second = dir.path().join("second.pla");
    log.export(&ExportFilter::default(), Some(&first), &[], &second, now)
        .unwrap();
    let before = segment_count(dir.path());
    assert!(
        log.apply_retention(Duration::from_secs(30 * 86_400), now)
            .unwrap()
            .removed_segments
            .is_empty()
    );
    assert_eq!(segment_count(dir.path()), before);

    // All three hold: old segments go, the one being written stays.
    let report = log.apply_retention(DAY, now).unwrap();
    assert!(!report.removed_segments.is_empty());
    assert_eq!(
        segment_count(dir.path()),
        before - report.removed_segments.len()
    );
    assert!(segment_count(dir.path()) >= 1);
    // Removed entries are no longer found by their message id; kept ones still are.
    let first_kept = report.first_remaining.unwrap();
    for index in 0..60 {
        let expected = if index < first_kept {
            vec![]
        } else {
            vec![index]
        };
        assert_eq!(
            log.sequences_of_message(&format!("msg-{index}")).unwrap(),
            expected
        );
    }

    // The log keeps working, and the next export continues the chain.
    let next = log.health().next_sequence;
    append_aged(&log, 100..103, 0);
    assert_eq!(log.sequences_of_message("msg-102").unwrap(), vec![next + 2]);
    let third = dir.path().join("third.pla");
    log.export(&ExportFilter::default(), Some(&second), &[], &third, now)
        .unwrap();
    for archive in [&first, &second, &third] {
        assert_eq!(failure(archive), None);
    }
    // Recent entries are never removed.
    log.checkpoint(&FakeTokens, now).unwrap();
    let fourth = dir.path().join("fourth.pla");
    log.export(&ExportFilter::default(), Some(&third), &[], &fourth, now)
        .unwrap();
    let kept = segment_count(dir.path());
    assert!(
        log.apply_retention(DAY, now)
            .unwrap()
            .removed_segments
            .is_empty()
    );
    assert_eq!(segment_count(dir.path()), kept);
}

#[test]
fn retention_removes_the_evidence_that_only_removed_segments_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = small_segments(dir.path());
    let naming = |index: u64, piece: &str, age_ms: u64| {
        let mut record = record(index, None, true);
        record.request_received_at_ms = now_ms() - age_ms;
        record.response_sent_at_ms = record.request_received_at_ms + 5;
        record.peer_authentication = Some(PeerAuthentication {
            certificate_chain: vec![Evidence::Der(piece.as_bytes().to_vec())],
            certificate_status: None,
        });
        record
    };
    // Old records name an old piece and a shared one, the last old ones only the shared one;
    // recent records name the shared piece and a new one.
    for index in 0..30 {
        let piece = if index < 20 && index % 2 == 0 {
            "old certificate"
        } else {
            "shared certificate"
        };
        log.append(naming(index, piece, 10 * 86_400_000))
            .wait()
            .unwrap();
    }
    for index in 30..36 {
        let piece = if index % 2 == 0 {
            "shared certificate"
        } else {
            "new certificate"
        };
        log.append(naming(index, piece, 0)).wait().unwrap();
    }
    let now = SystemTime::now();
    log.checkpoint(&FakeTokens, now).unwrap();
    let first = dir.path().join("first.pla");
    log.export(&ExportFilter::default(), None, &[], &first, now)
        .unwrap();
    let stored = |piece: &str| {
        dir.path()
            .join("evidence")
            .join(Sha256Hash::of(piece.as_bytes()).to_hex())
            .exists()
    };
    assert!(stored("old certificate") && stored("shared certificate") && stored("new certificate"));

    let report = log.apply_retention(DAY, now).unwrap();
    assert!(!report.removed_segments.is_empty(), "{report:?}");
    assert_eq!(report.removed_evidence, 1, "{report:?}");
    assert!(!stored("old certificate"));
    assert!(stored("shared certificate") && stored("new certificate"));

    // Every remaining entry still resolves its evidence, and a later export verifies.
    let first_kept = report.first_remaining.unwrap();
    for sequence in first_kept..log.health().next_sequence {
        let entry = log.entry(sequence).unwrap();
        if let Some(record) = entry.exchange() {
            let peer = record.peer_authentication.as_ref().unwrap();
            assert!(peer.certificate_chain[0].der().is_ok());
        }
    }
    // A piece retention removed is stored again when a record names it anew.
    log.append(naming(40, "old certificate", 0)).wait().unwrap();
    assert!(stored("old certificate"));
    log.checkpoint(&FakeTokens, now).unwrap();
    let second = dir.path().join("second.pla");
    log.export(&ExportFilter::default(), Some(&first), &[], &second, now)
        .unwrap();
    assert_eq!(failure(&second), None);
}

/// The index writes a segment's metadata when the segment ends; metadata that does not reach a
/// segment's last entry (its newest time not known yet) keeps the segment.
#[test]
fn a_segment_whose_metadata_does_not_reach_its_last_entry_is_kept() {
    let removed = |tamper: bool| {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let log = small_segments(dir.path());
        append_aged(&log, 0..30, 10 * 86_400_000);
        log.checkpoint(&FakeTokens, now).unwrap();
        log.export(
            &ExportFilter::default(),
            None,
            &[],
            &dir.path().join("all.pla"),
            now,
        )
        .unwrap();
        drop(log);
        if tamper {
            let db = sled::open(dir.path().join("index")).unwrap();
            let segments = db.open_tree("segment").unwrap();
            let (first, value) = segments.first().unwrap().unwrap();
            let mut meta: serde_json::Value = serde_json::from_slice(&value).unwrap();
            let last = meta["last_sequence"].as_u64().unwrap();
            meta["last_sequence"] = (last - 1).into();
            segments
                .insert(first, serde_json::to_vec(&meta).unwrap())
                .unwrap();
            db.flush().unwrap();
        }
        let log = small_segments(dir.path());
        log.apply_retention(DAY, now).unwrap().removed_segments
    };
    assert!(!removed(false).is_empty());
    assert_eq!(removed(true), Vec::<u64>::new());
}
