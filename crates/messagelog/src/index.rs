//! The sled indexes beside the segments: the index thread that writes them, the barrier that
//! makes every read of them wait for it, and the reads themselves.
//!
//! The writer thread completes a batch's tickets as soon as the batch is durable, then queues the
//! batch's index entries ([`IndexItem`]: sequence, location, keys) on the [`IndexQueue`]. The
//! `messagelog-indexer` thread takes whatever is queued at once and inserts it into sled, so
//! sled's insert path is neither in an exchange's latency nor on the writer's thread.
//!
//! Reads of the index go through an [`Indexed`] view, which only [`Inner::indexed`] and
//! [`Inner::indexed_below`] make: they first wait until the index holds every entry that was
//! durable when the read began (read-your-writes: an awaited append is found by the next read).
//! The wait is bounded: when the index thread has stopped (after an index failure, or because it
//! died) or has not advanced at all for [`STALL_LIMIT`], the read fails with
//! [`LogError::Index`] instead of waiting.
//!
//! Architecture invariants:
//! - the index is a cache of the segments: an index failure never fails an append, and on open
//!   the entries after the last indexed sequence are indexed again from the segments ([`rebuild`]);
//! - entries are indexed in sequence order, and within one application the `sequence` tree is
//!   written last, so an indexed sequence implies that its other index entries exist;
//! - the `sequence` tree is sparse: it holds the first entry of every segment and every
//!   [`SEQUENCE_STRIDE`]th entry, and an entry between two is found by skipping frames from the
//!   one before it, in the same segment;
//! - after a failure the index thread stops for good (until the log is reopened), so a gap in
//!   the index is never followed by indexed later entries, which `rebuild` would not look behind;
//! - at most [`MAX_QUEUED`] entries wait for the index thread: beyond that the writer waits for
//!   it, so memory stays bounded when the index cannot keep up.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checkpoint::CheckpointSummary;
use crate::error::LogError;
use crate::hash::Sha256Hash;
use crate::log::Inner;
use crate::message_ids::MessageIds;
use crate::record::EntryBody;
use crate::segment::{EntryView, LogCursor, RawEntry, SEGMENT_HEADER, list_segments, segment_path};

/// At most this many entries wait for the index thread (a few MiB); the writer waits beyond it.
pub(crate) const MAX_QUEUED: usize = 8_192;

/// How long a read (or a throttled writer) waits for the index to advance at all before giving up.
pub(crate) const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Every this many entries (and the first of each segment) the `sequence` tree records where
/// an entry is. Recording every entry was a sled insert per exchange for look-ups that are
/// rare; from a recorded entry a look-up skips at most this many frames by their headers.
pub(crate) const SEQUENCE_STRIDE: u64 = 32;

/// The sled trees of the index.
pub(crate) struct Trees {
    /// sequence → (segment first sequence, byte offset), both big-endian `u64`, for the first
    /// entry of each segment and every [`SEQUENCE_STRIDE`]th entry.
    pub(crate) sequence: sled::Tree,
    /// message id ‖ 0 ‖ sequence → nothing: the message-id index of earlier versions, read
    /// by look-ups and no longer written.
    pub(crate) message: sled::Tree,
    /// The message-id index ([`MessageIds`]).
    pub(crate) message_ids: MessageIds,
    /// last sequence of the span → [`CheckpointSummary`] (JSON).
    pub(crate) checkpoint: sled::Tree,
    /// segment first sequence → [`SegmentMeta`] (JSON).
    pub(crate) segment: sled::Tree,
}

impl Trees {
    pub(crate) fn open(db: &sled::Db, path: &Path) -> Result<Trees, LogError> {
        let open = |name: &str| db.open_tree(name).map_err(|e| LogError::index(path, e));
        // Earlier versions also indexed time, client and service. Nothing read those trees
        // (exports find their start from the segments and filter records as they read them),
        // and writing them was a third of the index's cost: they are dropped when found.
        for unused in [&b"time"[..], b"client", b"service"] {
            db.drop_tree(unused).map_err(|e| LogError::index(path, e))?;
        }
        Ok(Trees {
            sequence: open("sequence")?,
            message: open("message")?,
            message_ids: MessageIds::new(open("message-runs")?),
            checkpoint: open("checkpoint")?,
            segment: open("segment")?,
        })
    }
}

/// Per-segment facts kept for retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentMeta {
    pub(crate) last_sequence: u64,
    pub(crate) newest_time_ms: u64,
}

/// What an entry is indexed by, taken from its body before it reaches the writer.
pub(crate) struct IndexKeys {
    time_ms: u64,
    message_id: Option<String>,
    checkpoint: Option<CheckpointSpan>,
}

/// The part of a checkpoint entry that its index entry and the log's status need.
struct CheckpointSpan {
    first_sequence: u64,
    last_sequence: u64,
    root: Sha256Hash,
    created_at_ms: u64,
}

impl IndexKeys {
    pub(crate) fn of(body: &EntryBody) -> Self {
        match body {
            EntryBody::Exchange(record) => IndexKeys {
                time_ms: record.request_received_at_ms,
                message_id: Some(record.message_id.clone()),
                checkpoint: None,
            },
            EntryBody::Checkpoint(checkpoint) => IndexKeys {
                time_ms: checkpoint.created_at_ms,
                message_id: None,
                checkpoint: Some(CheckpointSpan {
                    first_sequence: checkpoint.first_sequence,
                    last_sequence: checkpoint.last_sequence,
                    root: checkpoint.root,
                    created_at_ms: checkpoint.created_at_ms,
                }),
            },
        }
    }

    /// The sequence and the index keys of a stored entry, read from its
    /// [`EntryView`](crate::segment::EntryView) without decoding the record, so re-indexing
    /// entries with large bodies on open neither decodes nor allocates them.
    pub(crate) fn from_view(stored: EntryView) -> Result<(u64, Self), String> {
        let body = stored.entry;
        let missing = |field: &str| format!("{} entry without {field}", body.kind);
        let keys = match body.kind.as_str() {
            "exchange" => IndexKeys {
                time_ms: body
                    .request_received_at_ms
                    .ok_or_else(|| missing("request_received_at_ms"))?,
                message_id: Some(
                    body.message_id
                        .clone()
                        .ok_or_else(|| missing("message_id"))?,
                ),
                checkpoint: None,
            },
            "checkpoint" => {
                let created_at_ms = body.created_at_ms.ok_or_else(|| missing("created_at_ms"))?;
                IndexKeys {
                    time_ms: created_at_ms,
                    message_id: None,
                    checkpoint: Some(CheckpointSpan {
                        first_sequence: body
                            .first_sequence
                            .ok_or_else(|| missing("first_sequence"))?,
                        last_sequence: body
                            .last_sequence
                            .ok_or_else(|| missing("last_sequence"))?,
                        root: body.root.ok_or_else(|| missing("root"))?,
                        created_at_ms,
                    }),
                }
            }
            other => return Err(format!("unknown entry type {other:?}")),
        };
        Ok((stored.sequence, keys))
    }

    pub(crate) fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }

    /// Keys of an entry at time 0 with this message id (none: a checkpoint-like entry).
    #[cfg(test)]
    pub(crate) fn with_message_id(message_id: Option<&str>) -> Self {
        IndexKeys {
            time_ms: 0,
            message_id: message_id.map(str::to_owned),
            checkpoint: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The summary of this entry when it is a checkpoint written at `entry_sequence`.
    pub(crate) fn checkpoint_summary(&self, entry_sequence: u64) -> Option<CheckpointSummary> {
        self.checkpoint.as_ref().map(|span| CheckpointSummary {
            first_sequence: span.first_sequence,
            last_sequence: span.last_sequence,
            root: span.root,
            entry_sequence,
            created_at_ms: span.created_at_ms,
        })
    }
}

/// One durable entry waiting to be indexed.
pub(crate) struct IndexItem {
    pub(crate) sequence: u64,
    /// First sequence of the segment the entry is in.
    pub(crate) segment: u64,
    /// Byte offset of the entry's frame in that segment.
    pub(crate) offset: u64,
    pub(crate) keys: IndexKeys,
}

fn location_value(segment: u64, offset: u64) -> [u8; 16] {
    let mut value = [0u8; 16];
    value[..8].copy_from_slice(&segment.to_be_bytes());
    value[8..].copy_from_slice(&offset.to_be_bytes());
    value
}

pub(crate) fn be_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// The hand-over from the writer to the index thread, and the barrier readers wait on.
pub(crate) struct IndexQueue {
    state: Mutex<QueueState>,
    /// Signalled when entries are queued or the queue closes; the index thread waits on it.
    queued: Condvar,
    /// Signalled when the index advances or stops, and when a full queue is taken; readers and a
    /// throttled writer wait on it.
    advanced: Condvar,
}

struct QueueState {
    items: Vec<IndexItem>,
    /// Every entry with a lower sequence is in the index.
    indexed_below: u64,
    /// Why the index stopped advancing, once it has; it stays stopped until the log is reopened.
    stopped: Option<String>,
    /// The log is closing: the index thread drains the queue and ends.
    closing: bool,
}

impl IndexQueue {
    /// A queue for an index that holds every entry below `indexed_below`.
    pub(crate) fn new(indexed_below: u64) -> Self {
        IndexQueue {
            state: Mutex::new(QueueState {
                items: Vec::new(),
                indexed_below,
                stopped: None,
                closing: false,
            }),
            queued: Condvar::new(),
            advanced: Condvar::new(),
        }
    }

    /// Why the index stopped, once it has.
    pub(crate) fn problem(&self) -> Option<String> {
        self.lock().stopped.clone()
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues durable entries for the index thread (writer side, in sequence order). Waits while
    /// [`MAX_QUEUED`] entries are already waiting; drops them when the index has stopped (the
    /// next open indexes them from the segments).
    pub(crate) fn push(&self, items: Vec<IndexItem>) {
        let mut state = self.lock();
        let mut seen = state.indexed_below;
        while state.stopped.is_none() && state.items.len() >= MAX_QUEUED {
            let (guard, wait) = self
                .advanced
                .wait_timeout(state, STALL_LIMIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = guard;
            if wait.timed_out() && state.indexed_below == seen && state.items.len() >= MAX_QUEUED {
                let reason = format!(
                    "the index thread did not advance past sequence {seen} for {} s",
                    STALL_LIMIT.as_secs()
                );
                tracing::warn!(%reason, "message-log index stopped; it is rebuilt on next open");
                stop_locked(&mut state, reason);
            }
            seen = state.indexed_below;
        }
        if state.stopped.is_some() {
            return;
        }
        if state.items.is_empty() {
            state.items = items;
        } else {
            state.items.extend(items);
        }
        drop(state);
        self.queued.notify_one();
    }

    /// Everything queued (index thread side), waiting for some; `None` once the queue is closed
    /// and drained, or the index has stopped.
    fn take(&self) -> Option<Vec<IndexItem>> {
        let mut state = self.lock();
        loop {
            if state.stopped.is_some() {
                return None;
            }
            if !state.items.is_empty() {
                let items = std::mem::take(&mut state.items);
                drop(state);
                if items.len() >= MAX_QUEUED {
                    // A writer may be waiting for room.
                    self.advanced.notify_all();
                }
                return Some(items);
            }
            if state.closing {
                return None;
            }
            state = self
                .queued
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn advance(&self, below: u64) {
        let mut state = self.lock();
        state.indexed_below = state.indexed_below.max(below);
        drop(state);
        self.advanced.notify_all();
    }

    /// Stops the index for good (until the log is reopened): queued and later entries are
    /// dropped, and reads that need them fail instead of waiting.
    pub(crate) fn stop(&self, reason: String) {
        stop_locked(&mut self.lock(), reason);
        self.advanced.notify_all();
        self.queued.notify_all();
    }

    /// Lets the index thread end once it has indexed everything queued.
    pub(crate) fn close(&self) {
        self.lock().closing = true;
        self.queued.notify_all();
    }

    /// Waits until every entry below `target` is indexed. Fails when the index has stopped
    /// short of it or has not advanced at all for [`STALL_LIMIT`].
    fn wait_for(&self, target: u64) -> Result<(), String> {
        let mut state = self.lock();
        let mut seen = state.indexed_below;
        loop {
            if state.indexed_below >= target {
                return Ok(());
            }
            if let Some(reason) = &state.stopped {
                return Err(format!(
                    "the index stopped at sequence {} ({reason}); it is rebuilt when the log is next opened",
                    state.indexed_below
                ));
            }
            let (guard, wait) = self
                .advanced
                .wait_timeout(state, STALL_LIMIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = guard;
            if wait.timed_out() && state.indexed_below == seen && state.stopped.is_none() {
                return Err(format!(
                    "the index did not advance past sequence {seen} for {} s",
                    STALL_LIMIT.as_secs()
                ));
            }
            seen = state.indexed_below;
        }
    }
}

fn stop_locked(state: &mut QueueState, reason: String) {
    state.stopped.get_or_insert(reason);
    state.items = Vec::new();
}

/// The body of the `messagelog-indexer` thread: indexes what the writer queues until the queue
/// is closed and drained, or an index write fails.
pub(crate) fn run_indexer(inner: &Inner) {
    /// Marks the index stopped however the thread ends (a panic included), so that no reader
    /// waits for it.
    struct StopOnExit<'a>(&'a IndexQueue);
    impl Drop for StopOnExit<'_> {
        fn drop(&mut self) {
            self.0.stop("the index thread has ended".into());
        }
    }
    let _stop = StopOnExit(&inner.index);
    let mut writer = IndexWriter::new(inner);
    while let Some(items) = inner.index.take() {
        let Some(below) = items.last().map(|item| item.sequence + 1) else {
            continue;
        };
        if let Err(error) = writer.apply(&items) {
            // The entries are durable in the segments; the next open indexes them again.
            tracing::warn!(%error, "message-log index update failed; it is rebuilt on next open");
            inner.index.stop(error.to_string());
            return;
        }
        inner.index.advance(below);
    }
    if inner.index.problem().is_none()
        && let Err(error) = writer.finish()
    {
        tracing::warn!(
            %error,
            "cannot store the last segment's metadata; the next open rebuilds it"
        );
    }
    // Closing (or stopped): the run being gathered is stored, so that the next open need not
    // read its entries again.
    if let Err(error) = inner.trees.message_ids.flush() {
        tracing::warn!(%error, "cannot store the last message-id run; it is rebuilt on next open");
    }
}

/// Writes index entries with plain inserts, keeping the metadata of the segment being written
/// in memory (it is read from the tree once per segment, not once per batch).
///
/// Plain inserts rather than `sled::Tree::apply_batch`, which seals sled's write buffer and
/// writes it out on every call: the index is a cache of the segments, rebuilt on open from the
/// last indexed sequence, so it needs neither atomic batches nor a flush per application; sled
/// flushes in the background, after each checkpoint and on close.
struct IndexWriter<'a> {
    trees: &'a Trees,
    path: PathBuf,
    segment: Option<HeldMeta>,
}

/// The metadata of the last segment indexed, and whether the `segment` tree holds all of it.
struct HeldMeta {
    first: u64,
    meta: SegmentMeta,
    stored: bool,
}

/// Whether the `sequence` tree records this entry's location.
fn is_recorded(item: &IndexItem) -> bool {
    item.offset == SEGMENT_HEADER || item.sequence.is_multiple_of(SEQUENCE_STRIDE)
}

impl<'a> IndexWriter<'a> {
    fn new(inner: &'a Inner) -> Self {
        IndexWriter {
            trees: &inner.trees,
            path: inner.index_path(),
            segment: None,
        }
    }

    fn error(&self, error: impl std::fmt::Display) -> LogError {
        LogError::index(&self.path, error)
    }

    /// Indexes `items` (in sequence order), the `sequence` tree last.
    fn apply(&mut self, items: &[IndexItem]) -> Result<(), LogError> {
        let trees = self.trees;
        trees.message_ids.add(items).map_err(|e| self.error(e))?;
        self.update_segments(items)?;
        // After the segment metadata, so that retention never sees a checkpoint over entries
        // whose segment metadata is not written yet.
        for item in items {
            if let Some(summary) = item.keys.checkpoint_summary(item.sequence) {
                let value = serde_json::to_vec(&summary).map_err(|e| self.error(e))?;
                trees
                    .checkpoint
                    .insert(summary.last_sequence.to_be_bytes(), value)
                    .map_err(|e| self.error(e))?;
            }
        }
        // Last, so that an indexed sequence implies its other index entries exist (sled replays
        // its log in order after a crash).
        for item in items.iter().filter(|item| is_recorded(item)) {
            trees
                .sequence
                .insert(
                    item.sequence.to_be_bytes(),
                    &location_value(item.segment, item.offset)[..],
                )
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// Merges the items into their segments' metadata. A segment's metadata is written when the
    /// tree must cover these entries, not on every batch (each sled write costs memory until a
    /// restart, see docs/performance.md):
    /// - with an entry the `sequence` tree records: a rebuild after a crash starts from the last
    ///   recorded entry and merges into what the tree holds, so the tree is exact again;
    /// - with a checkpoint: retention reads the metadata of the segments a checkpoint covers;
    /// - when the segment ends (the next segment's entries arrive), and when the index closes.
    ///
    /// Retention uses a segment's metadata only once it reaches the segment's last entry.
    fn update_segments(&mut self, items: &[IndexItem]) -> Result<(), LogError> {
        let mut rest = items;
        while let Some(first_item) = rest.first() {
            let segment = first_item.segment;
            let count = rest
                .iter()
                .position(|item| item.segment != segment)
                .unwrap_or(rest.len());
            let (these, later) = rest.split_at(count);
            rest = later;
            let mut held = match self.segment.take() {
                Some(held) if held.first == segment => held,
                previous => {
                    if let Some(previous) = previous {
                        self.store(previous)?;
                    }
                    let stored = self.stored_segment_meta(segment)?;
                    HeldMeta {
                        first: segment,
                        stored: stored.is_some(),
                        meta: stored.unwrap_or(SegmentMeta {
                            last_sequence: first_item.sequence,
                            newest_time_ms: first_item.keys.time_ms,
                        }),
                    }
                }
            };
            for item in these {
                let merged = SegmentMeta {
                    last_sequence: held.meta.last_sequence.max(item.sequence),
                    newest_time_ms: held.meta.newest_time_ms.max(item.keys.time_ms),
                };
                held.stored &= merged == held.meta;
                held.meta = merged;
            }
            let must_store = these
                .iter()
                .any(|item| is_recorded(item) || item.keys.checkpoint.is_some());
            self.segment = Some(if must_store { self.store(held)? } else { held });
        }
        Ok(())
    }

    /// Writes the held metadata, unless the tree already holds it.
    fn store(&self, mut held: HeldMeta) -> Result<HeldMeta, LogError> {
        if !held.stored {
            let value = serde_json::to_vec(&held.meta).map_err(|e| self.error(e))?;
            self.trees
                .segment
                .insert(held.first.to_be_bytes(), value)
                .map_err(|e| self.error(e))?;
            held.stored = true;
        }
        Ok(held)
    }

    /// Writes what is held of the last segment indexed: when the index closes, and at the end
    /// of a rebuild.
    fn finish(&mut self) -> Result<(), LogError> {
        if let Some(held) = self.segment.take() {
            self.segment = Some(self.store(held)?);
        }
        Ok(())
    }

    fn stored_segment_meta(&self, segment: u64) -> Result<Option<SegmentMeta>, LogError> {
        let value = self
            .trees
            .segment
            .get(segment.to_be_bytes())
            .map_err(|e| self.error(e))?;
        Ok(value.and_then(|value| serde_json::from_slice(&value).ok()))
    }
}

/// On open, before the index thread starts: drops index entries past the tail and indexes the
/// entries the index does not hold yet, from the last indexed one on.
pub(crate) fn rebuild(inner: &Inner, next_sequence: u64) -> Result<(), LogError> {
    let trees = &inner.trees;
    let error = |e: sled::Error| inner.index_error(e);
    let stale: Vec<_> = trees
        .sequence
        .range(next_sequence.to_be_bytes()..)
        .keys()
        .collect::<Result<_, _>>()
        .map_err(error)?;
    for key in stale {
        trees.sequence.remove(key).map_err(error)?;
    }
    let stale_checkpoints: Vec<_> = trees
        .checkpoint
        .iter()
        .values()
        .filter_map(|value| value.ok())
        .filter_map(|value| serde_json::from_slice::<CheckpointSummary>(&value).ok())
        .filter(|summary| summary.entry_sequence >= next_sequence)
        .collect();
    for summary in stale_checkpoints {
        trees
            .checkpoint
            .remove(summary.last_sequence.to_be_bytes())
            .map_err(error)?;
    }
    let ids = &trees.message_ids;
    ids.cut(next_sequence).map_err(error)?;
    // The recorded entry at or before a sequence: (sequence, segment, offset).
    let recorded = |sequence: u64| -> Result<Option<(u64, u64, u64)>, LogError> {
        let found = trees
            .sequence
            .range(..=sequence.to_be_bytes())
            .next_back()
            .transpose()
            .map_err(error)?;
        Ok(found.and_then(|(key, value)| {
            Some((be_u64(&key)?, be_u64(&value)?, be_u64(value.get(8..)?)?))
        }))
    };
    let last = recorded(u64::MAX)?;
    let ids_until = match ids.stored_until().map_err(error)? {
        Some(until) => Some(until),
        // Indexed by an earlier version, whose `message` tree holds the ids up to the last
        // recorded entry: the runs start there.
        None if !trees.message.is_empty() => {
            let from = last.map_or(0, |(sequence, ..)| sequence);
            ids.mark_covered_below(from).map_err(error)?;
            Some(from)
        }
        None => None,
    };
    ids.skip_below(ids_until.unwrap_or(0));
    // Re-index from the last recorded entry, or from where the message-id runs end if that is
    // earlier: inserts are idempotent.
    let start = match (last, ids_until) {
        (Some((recorded_last, ..)), Some(until)) => {
            recorded(recorded_last.min(until))?.map(|found| (found, recorded_last.min(until)))
        }
        _ => None,
    };
    let mut cursor = match start {
        Some(((known, segment, offset), sequence)) => {
            LogCursor::at_sequence_after(&inner.dir, segment, offset, known, sequence)?
        }
        None => match list_segments(&inner.dir)?.first() {
            Some((first, _)) => LogCursor::at(&inner.dir, *first, SEGMENT_HEADER)?,
            None => return Ok(()),
        },
    };
    let mut writer = IndexWriter::new(inner);
    let mut items = Vec::new();
    let mut count = 0u64;
    // Views read through a fixed buffer: entries with large bodies are not allocated whole.
    while let Some((segment, offset, view)) = cursor.next_view()? {
        let (sequence, keys) =
            IndexKeys::from_view(view).map_err(|reason| LogError::DamagedEntry {
                sequence: u64::MAX,
                path: segment_path(&inner.dir, segment),
                offset,
                reason,
            })?;
        items.push(IndexItem {
            sequence,
            segment,
            offset,
            keys,
        });
        count += 1;
        if items.len() == 10_000 {
            writer.apply(&std::mem::take(&mut items))?;
        }
    }
    writer.apply(&items)?;
    writer.finish()?;
    ids.flush().map_err(error)?;
    if count > 1 {
        tracing::info!(entries = count - 1, dir = %inner.dir.display(), "rebuilt message-log index entries");
    }
    Ok(())
}

/// Proof that the index held every entry durable when it was made: the only way to read it.
pub(crate) struct Indexed<'a> {
    inner: &'a Inner,
    /// The sequence the next entry got when the view was made.
    next: u64,
}

impl Inner {
    /// Waits until the index holds every entry that is durable now (see the module
    /// documentation for the bound on the wait).
    pub(crate) fn indexed(&self) -> Result<Indexed<'_>, LogError> {
        self.indexed_below(u64::MAX)
    }

    /// Like [`Inner::indexed`], but only for the entries below `below`.
    pub(crate) fn indexed_below(&self, below: u64) -> Result<Indexed<'_>, LogError> {
        let next = self.lock_status().next_sequence;
        self.index
            .wait_for(below.min(next))
            .map_err(|message| self.index_error(message))?;
        Ok(Indexed { inner: self, next })
    }
}

impl Indexed<'_> {
    fn error(&self, error: impl std::fmt::Display) -> LogError {
        self.inner.index_error(error)
    }

    /// The recorded entry at or before `sequence`: its sequence, segment and byte offset.
    fn recorded_at_or_before(&self, sequence: u64) -> Result<Option<(u64, u64, u64)>, LogError> {
        let found = self
            .inner
            .trees
            .sequence
            .range(..=sequence.to_be_bytes())
            .next_back()
            .transpose()
            .map_err(|e| self.error(e))?;
        Ok(found.and_then(|(key, value)| {
            Some((be_u64(&key)?, be_u64(&value)?, be_u64(value.get(8..)?)?))
        }))
    }

    pub(crate) fn first_available_sequence(&self) -> Result<Option<u64>, LogError> {
        let first = self
            .inner
            .trees
            .sequence
            .first()
            .map_err(|e| self.error(e))?;
        Ok(first.and_then(|(key, _)| be_u64(&key)))
    }

    pub(crate) fn cursor_from(&self, sequence: u64) -> Result<LogCursor, LogError> {
        let (known, segment, offset) =
            self.recorded_at_or_before(sequence)?
                .ok_or_else(|| LogError::Missing {
                    sequence,
                    reason: "not in the index (never written, or removed by retention)".into(),
                })?;
        LogCursor::at_sequence_after(&self.inner.dir, segment, offset, known, sequence)
    }

    /// The entry `sequence`, checked to be that entry (frames were skipped by their lengths to
    /// reach it).
    pub(crate) fn read_raw(&self, sequence: u64) -> Result<RawEntry, LogError> {
        let mut cursor = self.cursor_from(sequence)?;
        let Some((segment, offset, entry)) = cursor.next_entry()? else {
            return Err(LogError::Missing {
                sequence,
                reason: "past the end of its segment".into(),
            });
        };
        let found = entry.head().map(|head| head.sequence);
        if found != Ok(sequence) {
            return Err(LogError::DamagedEntry {
                sequence,
                path: segment_path(&self.inner.dir, segment),
                offset,
                reason: match found {
                    Ok(other) => format!("found entry {other} in its place"),
                    Err(reason) => reason,
                },
            });
        }
        Ok(entry)
    }

    /// The entries below the view's next sequence that may be `message_id`'s, ascending: from
    /// the message-id runs and from an earlier version's `message` tree. Index entries of a
    /// tail cut on open may remain past the next sequence, and a hash may collide: the caller
    /// reads each candidate back.
    pub(crate) fn message_candidates(&self, message_id: &str) -> Result<Vec<u64>, LogError> {
        let mut candidates = self
            .inner
            .trees
            .message_ids
            .candidates(message_id, self.next)
            .map_err(|e| self.error(e))?;
        let mut prefix = message_id.as_bytes().to_vec();
        prefix.push(0);
        for item in self.inner.trees.message.scan_prefix(&prefix) {
            let (key, _) = item.map_err(|e| self.error(e))?;
            if let Some(sequence) = key.get(prefix.len()..).and_then(be_u64)
                && sequence < self.next
            {
                candidates.push(sequence);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        Ok(candidates)
    }

    pub(crate) fn last_checkpoint(&self) -> Result<Option<CheckpointSummary>, LogError> {
        let last = self
            .inner
            .trees
            .checkpoint
            .last()
            .map_err(|e| self.error(e))?;
        last.map(|(_, value)| serde_json::from_slice(&value).map_err(|e| self.error(e)))
            .transpose()
    }

    /// The checkpoint whose span contains `sequence`, if it has been time-stamped.
    pub(crate) fn checkpoint_covering(
        &self,
        sequence: u64,
    ) -> Result<Option<CheckpointSummary>, LogError> {
        let found = self
            .inner
            .trees
            .checkpoint
            .range(sequence.to_be_bytes()..)
            .next();
        let Some(item) = found else { return Ok(None) };
        let (_, value) = item.map_err(|e| self.error(e))?;
        let summary: CheckpointSummary =
            serde_json::from_slice(&value).map_err(|e| self.error(e))?;
        Ok((summary.first_sequence <= sequence).then_some(summary))
    }

    pub(crate) fn segment_meta(&self, first: u64) -> Result<Option<SegmentMeta>, LogError> {
        let value = self
            .inner
            .trees
            .segment
            .get(first.to_be_bytes())
            .map_err(|e| self.error(e))?;
        Ok(value.and_then(|value| serde_json::from_slice(&value).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::{IndexItem, IndexKeys, IndexQueue, MAX_QUEUED};

    fn item(sequence: u64) -> IndexItem {
        IndexItem {
            sequence,
            segment: 0,
            offset: 0,
            keys: IndexKeys {
                time_ms: 0,
                message_id: Some(format!("m{sequence}")),
                checkpoint: None,
            },
        }
    }

    #[test]
    fn a_read_waits_until_the_index_has_reached_it() {
        let queue = IndexQueue::new(0);
        assert_eq!(queue.wait_for(0), Ok(()));
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| queue.wait_for(3));
            queue.push(vec![item(0), item(1), item(2)]);
            let taken = queue.take().unwrap();
            assert_eq!(taken.len(), 3);
            queue.advance(2);
            assert!(!reader.is_finished(), "entry 2 is not indexed yet");
            queue.advance(3);
            assert_eq!(reader.join().unwrap(), Ok(()));
        });
    }

    #[test]
    fn a_stopped_index_fails_reads_at_once_and_takes_no_more_entries() {
        let queue = IndexQueue::new(2);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| queue.wait_for(5));
            queue.stop("no space left on device".into());
            let error = reader.join().unwrap().unwrap_err();
            assert!(
                error.contains("no space left on device") && error.contains("sequence 2"),
                "{error}"
            );
        });
        assert_eq!(queue.wait_for(2), Ok(()), "what is indexed stays readable");
        queue.push(vec![item(2)]);
        assert!(queue.take().is_none(), "the index thread ends");
    }

    #[test]
    fn a_closed_queue_is_drained_before_the_index_thread_ends() {
        let queue = IndexQueue::new(0);
        queue.push(vec![item(0)]);
        queue.push(vec![item(1), item(2)]);
        queue.close();
        let sequences: Vec<u64> = queue.take().unwrap().iter().map(|i| i.sequence).collect();
        assert_eq!(sequences, vec![0, 1, 2]);
        assert!(queue.take().is_none());
    }

    #[test]
    fn a_full_queue_holds_the_writer_until_the_index_thread_takes_it() {
        let queue = IndexQueue::new(0);
        queue.push((0..MAX_QUEUED as u64).map(item).collect());
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| queue.push(vec![item(MAX_QUEUED as u64)]));
            assert!(!writer.is_finished(), "the queue is full");
            assert_eq!(queue.take().unwrap().len(), MAX_QUEUED);
            writer.join().unwrap();
        });
        assert_eq!(queue.take().unwrap().len(), 1);
    }
}
