//! Retention removes whole segments only once exported, time-stamped and old enough.

use std::time::{Duration, SystemTime};

use passerelle_messagelog::{
    Durability, ExportFilter, LogOptions, MessageLog, VerifyOptions, verify_archive,
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

fn segment_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("segments")).unwrap().count()
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
    let options = VerifyOptions {
        token_verifier: Some(&FakeTokens),
        ..Default::default()
    };
    for archive in [&first, &second, &third] {
        assert_eq!(verify_archive(archive, &options).unwrap().failure, None);
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
