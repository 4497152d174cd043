//! Retention: removing whole segments whose evidence is safe elsewhere, and nothing else.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::checkpoint::unix_millis;
use crate::error::LogError;
use crate::log::MessageLog;
use crate::segment::{list_segments, segments_dir, sync_dir};

/// What one retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// First sequence of each removed segment.
    pub removed_segments: Vec<u64>,
    /// The first sequence still in the log afterwards.
    pub first_remaining: Option<u64>,
    /// How many pieces of evidence (certificates, OCSP responses) went from the evidence store
    /// because no remaining segment names them.
    pub removed_evidence: usize,
}

impl MessageLog {
    /// Removes the oldest segments for which all of these hold, stopping at the first that fails
    /// (and then the evidence that no remaining segment names):
    /// - it is not the segment being written;
    /// - every entry in it has been exported by an unfiltered export;
    /// - every entry in it is covered by a time-stamp checkpoint, and that checkpoint's whole span
    ///   has been exported (so a later export never needs the removed hashes);
    /// - its newest entry is older than `now - retention`.
    pub fn apply_retention(
        &self,
        retention: Duration,
        now: SystemTime,
    ) -> Result<RetentionReport, LogError> {
        let inner = &self.inner;
        let index_error = |e: sled::Error| LogError::index(inner.dir.join("index"), e);
        let exported = self.exported_through()?;
        // The segment metadata and checkpoints of every entry durable now.
        let indexed = inner.indexed()?;
        let cutoff = unix_millis(now.checked_sub(retention).unwrap_or(std::time::UNIX_EPOCH));
        let segments = list_segments(&inner.dir)?;
        let mut report = RetentionReport::default();
        for window in segments.windows(2) {
            let [(first, path), (next_first, _)] = window else {
                break;
            };
            let Some(meta) = indexed.segment_meta(*first)? else {
                break;
            };
            // The index writes a segment's metadata when the segment ends, not with every entry:
            // until it reaches the last entry, its newest time is not known yet.
            if meta.last_sequence.saturating_add(1) < *next_first {
                break;
            }
            let last = next_first.saturating_sub(1).max(meta.last_sequence);
            let Some(exported) = exported else { break };
            let Some(covering) = indexed.checkpoint_covering(last)? else {
                break;
            };
            if last > exported || covering.last_sequence > exported || meta.newest_time_ms >= cutoff
            {
                break;
            }
            std::fs::remove_file(path).map_err(|e| LogError::io("remove", path, e))?;
            for sequence in *first..*next_first {
                inner
                    .trees
                    .sequence
                    .remove(sequence.to_be_bytes())
                    .map_err(index_error)?;
            }
            inner
                .trees
                .segment
                .remove(first.to_be_bytes())
                .map_err(index_error)?;
            inner
                .trees
                .message_ids
                .remove(*first, *next_first)
                .map_err(index_error)?;
            tracing::info!(
                segment = first,
                last_sequence = last,
                "retention removed a message-log segment"
            );
            report.removed_segments.push(*first);
        }
        if !report.removed_segments.is_empty() {
            sync_dir(&segments_dir(&inner.dir))?;
            inner.trees.sequence.flush().map_err(index_error)?;
            // Under the store's lock: the writer names new evidence under it too.
            let remaining = list_segments(&inner.dir)?;
            report.removed_evidence = inner
                .evidence
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .prune(&report.removed_segments, &remaining)?;
            if report.removed_evidence > 0 {
                tracing::info!(
                    pieces = report.removed_evidence,
                    "retention removed evidence no remaining segment names"
                );
            }
        }
        report.first_remaining = indexed.first_available_sequence()?;
        Ok(report)
    }
}

/// A background thread that applies retention every `interval` until dropped.
pub struct RetentionTask {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl RetentionTask {
    /// Starts the thread. The wall clock is read here, at the edge, once per pass.
    pub fn spawn(
        log: Arc<MessageLog>,
        retention: Duration,
        interval: Duration,
    ) -> Result<Self, LogError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("messagelog-retention".into())
            .spawn(move || {
                loop {
                    match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {
                            if let Err(error) = log.apply_retention(retention, SystemTime::now()) {
                                tracing::warn!(%error, "message-log retention pass failed");
                            }
                        }
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .map_err(|e| LogError::io("start retention thread for", log_dir_hint(), e))?;
        Ok(RetentionTask {
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

fn log_dir_hint() -> &'static str {
    "the message log"
}

impl Drop for RetentionTask {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            tracing::error!("message-log retention thread panicked");
        }
    }
}
