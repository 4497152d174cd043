//! Appending, group commit, reopening, tail repair, index rebuild, keys and rotation.

use std::fs::OpenOptions;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::time::SystemTime;

use passerelle_messagelog::{
    Durability, ExportFilter, FailureKind, KeyRing, LogError, LogOptions, MessageLog,
    VerifyOptions, verify_archive,
};
use passerelle_pki::aead::BodyKey;

use crate::common::{FakeTokens, block_on, export_all_verified, key_ring, open, record, signer};

#[test]
fn appended_records_are_chained_time_stamped_and_verify_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let keys_text = key_ring().to_toml();
    {
        let log = open(dir.path(), Some(KeyRing::parse(&keys_text).unwrap()));
        for index in 0..10 {
            let appended = block_on(log.append(record(index, Some(&signer), false))).unwrap();
            assert_eq!(appended.sequence, index);
        }
        let checkpoint = log
            .checkpoint(&FakeTokens, SystemTime::now())
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                checkpoint.first_sequence,
                checkpoint.last_sequence,
                checkpoint.entry_sequence
            ),
            (0, 9, 10)
        );
        assert!(
            log.checkpoint(&FakeTokens, SystemTime::now())
                .unwrap()
                .is_some(),
            "the checkpoint entry itself is stamped next"
        );
    }
    let log = open(dir.path(), Some(KeyRing::parse(&keys_text).unwrap()));
    let health = log.health();
    assert!(health.writable);
    assert_eq!(health.next_sequence, 12);
    assert_eq!(health.last_checkpoint.unwrap().entry_sequence, 11);
    assert_eq!(log.entry(3).unwrap().message_id(), Some("msg-3"));
    assert_eq!(log.sequences_of_message("msg-7").unwrap(), vec![7]);
    log.append(record(12, Some(&signer), false)).wait().unwrap();

    let archive = dir.path().join("all.pla");
    let summary = log
        .export(
            &ExportFilter::default(),
            None,
            std::slice::from_ref(&signer.anchor),
            &archive,
            SystemTime::now(),
        )
        .unwrap();
    assert_eq!(
        (
            summary.first_sequence,
            summary.last_sequence,
            summary.full_entries
        ),
        (0, 12, 13)
    );
    let keys = KeyRing::parse(&keys_text).unwrap();
    let options = VerifyOptions {
        keys: Some(&keys),
        token_verifier: Some(&FakeTokens),
        ..Default::default()
    };
    let report = verify_archive(&archive, &options).unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(report.signatures_checked, 22);
    assert_eq!(report.certificate_chains_checked, 22);
    assert_eq!(report.bodies_checked, 22);
    assert_eq!(report.checkpoints_checked, 2);
    assert_eq!(report.tokens_verified, 2);
    assert_eq!(
        report.entries_not_timestamped, 2,
        "the last checkpoint entry and the record after it"
    );
}

#[test]
fn concurrent_appends_share_batches_and_get_distinct_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), None);
    let mut sequences: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|thread| {
                let log = &log;
                scope.spawn(move || {
                    (0..40)
                        .map(|i| {
                            log.append(record(thread * 1000 + i, None, true))
                                .wait()
                                .unwrap()
                                .sequence
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    sequences.sort();
    assert_eq!(sequences, (0..320).collect::<Vec<_>>());
    let tickets = log.append_batch((0..5).map(|i| record(9000 + i, None, true)).collect());
    let batch: Vec<u64> = tickets
        .into_iter()
        .map(|t| t.wait().unwrap().sequence)
        .collect();
    assert_eq!(batch, vec![320, 321, 322, 323, 324]);
}

#[test]
fn a_torn_tail_is_cut_on_open_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let segment = five_records_in_one_segment(dir.path());
    let frames = frames_of(&segment);
    let (_, end) = *frames.last().unwrap();
    // Zero the last 40 bytes of the last record (its last page never reached the disk), and
    // leave garbage after it in the preallocated space.
    let mut file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.seek(SeekFrom::Start(end - 40)).unwrap();
    file.write_all(&[0; 40]).unwrap();
    file.write_all(b"\x10\x00\x00\x00garbage").unwrap();
    drop(file);

    let log = open(dir.path(), None);
    assert_eq!(
        log.health().next_sequence,
        4,
        "the torn fifth record is gone"
    );
    assert_eq!(
        log.append(record(99, None, true)).wait().unwrap().sequence,
        4
    );
    let archive = dir.path().join("a.pla");
    log.export(
        &ExportFilter::default(),
        None,
        &[],
        &archive,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        verify_archive(&archive, &VerifyOptions::default())
            .unwrap()
            .failure,
        None
    );
}

/// Entries larger than the buffer the tail check on open reads through are checked all the same:
/// a torn one is cut, and so is one with a damaged byte deep inside, found by its checksum or,
/// when the checksum was made to match, by the chain.
#[test]
fn a_damaged_large_entry_is_cut_on_open_by_its_checksum_or_by_the_chain() {
    enum Damage {
        Torn,
        Byte,
        ByteAndChecksum,
    }
    for damage in [Damage::Torn, Damage::Byte, Damage::ByteAndChecksum] {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open(dir.path(), None);
            for index in 0..5 {
                let mut large = record(index, None, true);
                large.path_and_query = format!("/v1/children/{index}?{}", "q".repeat(150_000));
                log.append(large).wait().unwrap();
            }
        }
        let segment = only_segment(dir.path());
        let (start, end) = frames_of(&segment)[2];
        let mut bytes = std::fs::read(&segment).unwrap();
        match damage {
            Damage::Torn => bytes.truncate(end as usize - 70_000),
            Damage::Byte | Damage::ByteAndChecksum => {
                let inside = start as usize + 8 + 32 + 100_000;
                assert_eq!(bytes[inside], b'q');
                bytes[inside] = b'Q';
                if matches!(damage, Damage::ByteAndChecksum) {
                    let checksum = crc32c::crc32c(&bytes[start as usize + 8..end as usize]);
                    bytes[start as usize + 4..start as usize + 8]
                        .copy_from_slice(&checksum.to_le_bytes());
                }
            }
        }
        std::fs::write(&segment, &bytes).unwrap();

        // The third entry and all after it are gone, whichever the damage.
        let log = open(dir.path(), None);
        assert_eq!(log.health().next_sequence, 2);
        assert_eq!(
            log.append(record(99, None, true)).wait().unwrap().sequence,
            2
        );
        assert_eq!(log.sequences_of_message("msg-1").unwrap(), vec![1]);
        assert_eq!(log.sequences_of_message("msg-99").unwrap(), vec![2]);
        export_all_verified(&log, &dir.path().join("a.pla"));
    }
}

/// Appends five records to a new log in `dir` and closes it: the path of its one segment.
fn five_records_in_one_segment(dir: &std::path::Path) -> std::path::PathBuf {
    {
        let log = open(dir, None);
        for index in 0..5 {
            log.append(record(index, None, true)).wait().unwrap();
        }
    }
    only_segment(dir)
}

/// The path of the one segment of the log in `dir`.
fn only_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut segments = std::fs::read_dir(dir.join("segments")).unwrap();
    let segment = segments.next().unwrap().unwrap().path();
    assert!(segments.next().is_none(), "more than one segment");
    segment
}

/// Where each frame of a segment starts and ends, up to the end of the file or the zeros of its
/// preallocated space.
fn frames_of(segment: &std::path::Path) -> Vec<(u64, u64)> {
    let bytes = std::fs::read(segment).unwrap();
    let mut frames = Vec::new();
    let mut at = 16;
    while at + 8 <= bytes.len() && bytes[at..at + 8] != [0; 8] {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        frames.push((at as u64, (at + 8 + length) as u64));
        at += 8 + length;
    }
    frames
}

#[test]
fn segments_are_preallocated_and_end_at_their_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LogOptions::new(Durability::Fsync);
    options.segment_size_limit = 64 << 10;
    let log = MessageLog::open(dir.path(), options).unwrap();
    log.append(record(0, None, true)).wait().unwrap();
    let segments = || {
        let mut paths: Vec<_> = std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension() == Some("seg".as_ref()))
            .collect();
        paths.sort();
        paths
    };
    let first = segments()[0].clone();
    assert_eq!(std::fs::metadata(&first).unwrap().len(), 64 << 10);
    // The next segment is prepared in the background; once it is, the roll-over takes it.
    let prepared = dir.path().join("next-segment.prepared");
    for _ in 0..500 {
        if std::fs::metadata(&prepared).is_ok_and(|m| m.len() == 64 << 10) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut index = 1;
    while segments().len() < 2 {
        log.append(record(index, None, true)).wait().unwrap();
        index += 1;
    }
    // The append that found the first segment full started the second; one more follows it.
    log.append(record(index, None, true)).wait().unwrap();
    let second = segments()[1].clone();
    assert_eq!(
        std::fs::metadata(&second).unwrap().len(),
        64 << 10,
        "the second segment is the prepared one"
    );
    assert_eq!(frames_of(&second).len(), 2);
    assert_eq!(log.health().next_sequence, index + 1);
    drop(log);
    assert!(
        !prepared.exists(),
        "closing the log removes the segment it was preparing"
    );

    let log = open(dir.path(), None);
    assert_eq!(log.health().next_sequence, index + 1);
    assert_eq!(
        log.append(record(99, None, true)).wait().unwrap().sequence,
        index + 1
    );
    export_all_verified(&log, &dir.path().join("a.pla"));
}

#[test]
fn bytes_left_behind_the_zeros_by_a_crash_are_cut_before_appending_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let segment = five_records_in_one_segment(dir.path());
    let frames = frames_of(&segment);
    assert_eq!(frames.len(), 5);
    // The page holding the last frame's header was lost, the rest of that frame was not: the
    // entries end at the zeros, and a whole frame's bytes sit behind them.
    let (start, _) = frames[4];
    let mut file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.seek(SeekFrom::Start(start)).unwrap();
    file.write_all(&[0; 8]).unwrap();
    drop(file);

    {
        let log = open(dir.path(), None);
        assert_eq!(log.health().next_sequence, 4);
        // A shorter record: were the old bytes kept, they would follow it.
        let mut short = record(7, None, true);
        short.user_id = None;
        assert_eq!(log.append(short).wait().unwrap().sequence, 4);
    }
    let frames = frames_of(&segment);
    assert_eq!(frames.len(), 5);
    let bytes = std::fs::read(&segment).unwrap();
    let (_, end) = frames[4];
    assert!(
        bytes[end as usize..].iter().all(|byte| *byte == 0),
        "nothing but zeros after the last entry"
    );
    let log = open(dir.path(), None);
    assert_eq!(log.health().next_sequence, 5);
    export_all_verified(&log, &dir.path().join("a.pla"));
}

#[test]
fn a_lost_index_is_rebuilt_from_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LogOptions::new(Durability::Fsync);
    options.segment_size_limit = 2048;
    {
        let log = MessageLog::open(dir.path(), options).unwrap();
        for index in 0..30 {
            log.append(record(index, None, true)).wait().unwrap();
        }
    }
    assert!(
        std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .count()
            > 3,
        "segments rolled over"
    );
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let log = open(dir.path(), None);
    assert_eq!(log.health().next_sequence, 30);
    assert_eq!(log.sequences_of_message("msg-17").unwrap(), vec![17]);
    assert_eq!(log.entry(29).unwrap().message_id(), Some("msg-29"));
}

#[test]
fn a_plaintext_body_without_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), None);
    let error = log.append(record(1, None, false)).wait().unwrap_err();
    assert!(matches!(error, LogError::NoBodyKey { .. }), "{error}");
    assert_eq!(log.health().next_sequence, 0);
}

#[test]
fn rotated_keys_keep_old_bodies_readable_and_a_missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let old = BodyKey::generate("2024").unwrap();
    let new = BodyKey::generate("2025").unwrap();
    let (old_bytes, new_bytes) = (old.to_bytes(), new.to_bytes());
    let ring = |current: &str, ids: &[&str]| {
        let keys = ids
            .iter()
            .map(|id| {
                BodyKey::from_bytes(
                    id,
                    if *id == "2024" {
                        &old_bytes
                    } else {
                        &new_bytes
                    },
                )
                .unwrap()
            })
            .collect();
        KeyRing::new(current, keys).unwrap()
    };
    {
        let log = open(dir.path(), Some(ring("2024", &["2024"])));
        log.append(record(0, None, false)).wait().unwrap();
    }
    let log = open(dir.path(), Some(ring("2025", &["2024", "2025"])));
    log.append(record(1, None, false)).wait().unwrap();
    let archive = dir.path().join("a.pla");
    log.export(
        &ExportFilter::default(),
        None,
        &[],
        &archive,
        SystemTime::now(),
    )
    .unwrap();

    let both = ring("2025", &["2024", "2025"]);
    let report = verify_archive(
        &archive,
        &VerifyOptions {
            keys: Some(&both),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((report.failure, report.bodies_checked), (None, 4));

    let only_new = ring("2025", &["2025"]);
    let failure = verify_archive(
        &archive,
        &VerifyOptions {
            keys: Some(&only_new),
            ..Default::default()
        },
    )
    .unwrap()
    .failure
    .unwrap();
    assert_eq!(
        (failure.sequence, failure.kind),
        (Some(0), FailureKind::Body)
    );
    assert!(failure.detail.contains("2024"), "{failure}");

    let text = both.to_toml();
    assert_eq!(KeyRing::parse(&text).unwrap().current_id(), "2025");
    assert!(
        KeyRing::parse(&format!("{text}\nextra = 1\n")).is_err(),
        "unknown keys are refused"
    );
    assert!(
        KeyRing::parse("current = \"x\"\n[keys]\nx = \"abcd\"\n")
            .unwrap_err()
            .contains("keys.x")
    );
}
