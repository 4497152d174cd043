//! The index is written by its own thread after the tickets complete: reads still see every
//! completed append, and checkpoints cover exactly the entries durable before them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use passerelle_messagelog::{
    CheckpointSummary, Durability, LogError, LogOptions, MerkleAccumulator, MessageLog, Sha256Hash,
    Timestamper,
};
use passerelle_pki::merkle::leaf_hash;

use crate::common::{FakeTokens, open, record};

fn memory_log(dir: &std::path::Path) -> MessageLog {
    // No sync, so the writer runs well ahead of the index thread.
    MessageLog::open(dir, LogOptions::new(Durability::DangerMemoryOnly)).unwrap()
}

#[test]
fn every_completed_append_is_found_by_the_very_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let log = memory_log(dir.path());
    std::thread::scope(|scope| {
        for thread in 0..8u64 {
            let log = &log;
            scope.spawn(move || {
                for i in 0..250 {
                    let index = thread * 10_000 + i;
                    let appended = log.append(record(index, None, true)).wait().unwrap();
                    let message_id = format!("msg-{index}");
                    assert_eq!(
                        log.sequences_of_message(&message_id).unwrap(),
                        vec![appended.sequence],
                        "{message_id}"
                    );
                    let entry = log.entry(appended.sequence).unwrap();
                    assert_eq!(entry.message_id(), Some(message_id.as_str()));
                }
            });
        }
    });
    let tickets = log.append_batch((0..100).map(|i| record(90_000 + i, None, true)).collect());
    let last = tickets
        .into_iter()
        .map(|t| t.wait().unwrap())
        .last()
        .unwrap();
    assert_eq!(last.sequence, 2_099);
    assert_eq!(log.sequences_of_message("msg-90099").unwrap(), vec![2_099]);
    assert_eq!(log.entry(2_099).unwrap().message_id(), Some("msg-90099"));
}

/// The chain hash of entry `sequence`: the next entry's `previous_hash`, or the log's last hash.
fn hash_of(log: &MessageLog, sequence: u64) -> Sha256Hash {
    if sequence + 1 == log.health().next_sequence {
        log.health().last_hash
    } else {
        log.entry(sequence + 1).unwrap().previous_hash
    }
}

/// Checks that `summary` time-stamps the root of exactly entries `first..=last` of `log`.
fn assert_root_holds(log: &MessageLog, summary: &CheckpointSummary) {
    let mut accumulator = MerkleAccumulator::new();
    for sequence in summary.first_sequence..=summary.last_sequence {
        accumulator.push(leaf_hash(&hash_of(log, sequence).0));
    }
    assert_eq!(
        Sha256Hash(accumulator.root().unwrap()),
        summary.root,
        "{summary:?}"
    );
}

#[test]
fn checkpoints_taken_under_load_cover_exactly_what_was_durable_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = memory_log(dir.path());
    let acknowledged = AtomicU64::new(0);
    let mut summaries = Vec::new();
    std::thread::scope(|scope| {
        let appenders: Vec<_> = (0..4u64)
            .map(|thread| {
                let (log, acknowledged) = (&log, &acknowledged);
                scope.spawn(move || {
                    for i in 0..300 {
                        let appended = log
                            .append(record(thread * 10_000 + i, None, true))
                            .wait()
                            .unwrap();
                        acknowledged.fetch_max(appended.sequence + 1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        while !appenders.iter().all(|a| a.is_finished()) {
            let durable_before = acknowledged.load(Ordering::SeqCst);
            if let Some(summary) = log.checkpoint(&FakeTokens, SystemTime::now()).unwrap() {
                assert!(
                    summary.last_sequence + 1 >= durable_before,
                    "{summary:?} misses entries acknowledged before it ({durable_before})"
                );
                assert!(summary.last_sequence < summary.entry_sequence);
                assert_eq!(log.health().last_checkpoint.as_ref(), Some(&summary));
                summaries.push(summary);
            }
        }
    });
    summaries.extend(log.checkpoint(&FakeTokens, SystemTime::now()).unwrap());
    assert!(summaries.len() >= 2, "{summaries:?}");
    assert_eq!(summaries[0].first_sequence, 0);
    for pair in summaries.windows(2) {
        assert_eq!(
            pair[1].first_sequence,
            pair[0].last_sequence + 1,
            "{pair:?}"
        );
    }
    for summary in &summaries {
        assert_root_holds(&log, summary);
    }
}

/// A time-stamping authority that is down.
struct Unreachable;

impl Timestamper for Unreachable {
    fn timestamp(&self, _imprint: &[u8; 32]) -> Result<Vec<u8>, String> {
        Err("connection refused".into())
    }
}

#[test]
fn a_checkpoint_after_reopening_or_a_failed_time_stamp_reads_its_span_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), None);
        for index in 0..7 {
            log.append(record(index, None, true)).wait().unwrap();
        }
    }
    let log = open(dir.path(), None);
    for index in 7..10 {
        log.append(record(index, None, true)).wait().unwrap();
    }
    // The span began before this open: it comes from the segments.
    let first = log
        .checkpoint(&FakeTokens, SystemTime::now())
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            first.first_sequence,
            first.last_sequence,
            first.entry_sequence
        ),
        (0, 9, 10)
    );
    assert_root_holds(&log, &first);

    for index in 11..14 {
        log.append(record(index, None, true)).wait().unwrap();
    }
    let error = log.checkpoint(&Unreachable, SystemTime::now()).unwrap_err();
    assert!(matches!(error, LogError::Timestamp { .. }), "{error}");
    assert_eq!(log.health().last_checkpoint.as_ref(), Some(&first));
    log.append(record(14, None, true)).wait().unwrap();
    // Spans the failed attempt's entries and the later ones: from the segments again.
    let second = log
        .checkpoint(&FakeTokens, SystemTime::now())
        .unwrap()
        .unwrap();
    assert_eq!(
        (second.first_sequence, second.last_sequence),
        (first.last_sequence + 1, 14)
    );
    assert_root_holds(&log, &second);

    log.append(record(16, None, true)).wait().unwrap();
    // From the writer's accumulator: the checkpoint entry 15 and entry 16.
    let third = log
        .checkpoint(&FakeTokens, SystemTime::now())
        .unwrap()
        .unwrap();
    assert_eq!((third.first_sequence, third.last_sequence), (15, 16));
    assert_root_holds(&log, &third);
    assert_eq!(log.health().last_checkpoint, Some(third.clone()));
    drop(log);

    let log = open(dir.path(), None);
    assert_eq!(
        log.health().last_checkpoint,
        Some(third),
        "the checkpoint index entry outlives the log"
    );
}
