//! The log itself: opening (with tail repair and index rebuild), group commit, reads by sequence.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use passerelle_pki::merkle::leaf_hash;
use serde::{Deserialize, Serialize};

use crate::accumulator::MerkleAccumulator;
use crate::checkpoint::{CheckpointSummary, Timestamper, unix_millis};
use crate::error::LogError;
use crate::frame::{FRAME_HEADER, encode_frame};
use crate::hash::Sha256Hash;
use crate::keys::KeyRing;
use crate::record::{Body, CheckpointRecord, Entry, EntryBody, ExchangeRecord, MessagePart};
use crate::segment::{
    LogCursor, RawEntry, SEGMENT_HEADER, SegmentItem, SegmentReader, create_segment, list_segments,
    segment_path, segments_dir,
};
use crate::ticket::{AppendTicket, Appended, TicketShared};

/// Whether a batch is synced to stable storage before its tickets complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fdatasync` once per batch before any ticket of the batch completes. The only setting for
    /// evidence.
    Fsync,
    /// Skip the sync: a power loss can lose acknowledged records. Unsafe for evidence; it exists so
    /// that the benchmark can show what the sync costs.
    DangerMemoryOnly,
}

/// How a log is opened. There is deliberately no `Default`: durability is always chosen.
#[derive(Debug)]
pub struct LogOptions {
    pub durability: Durability,
    /// A segment is closed and a new one started once it has reached this many bytes.
    pub segment_size_limit: u64,
    /// At most this many entries are written and synced together.
    pub max_batch_entries: usize,
    /// Body keys; without them, appending a plaintext body fails.
    pub keys: Option<KeyRing>,
    /// Memory the index database may use for its page cache (sled's own default is 1 GiB,
    /// which would make export memory grow with the log).
    pub index_cache_bytes: u64,
}

impl LogOptions {
    /// 64 MiB segments, batches of up to 4096 entries, a 32 MiB index cache, no body keys.
    pub fn new(durability: Durability) -> Self {
        LogOptions {
            durability,
            segment_size_limit: 64 << 20,
            max_batch_entries: 4096,
            keys: None,
            index_cache_bytes: 32 << 20,
        }
    }

    pub fn with_keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }
}

/// What the security server's health check reports about its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHealth {
    /// `false` after a write or sync failure: the server must then answer `LoggingFailed`.
    pub writable: bool,
    pub problem: Option<String>,
    /// The sequence the next entry will get (= the number of entries ever written).
    pub next_sequence: u64,
    pub last_hash: Sha256Hash,
    pub last_checkpoint: Option<CheckpointSummary>,
}

/// Per-segment facts kept for retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentMeta {
    pub(crate) last_sequence: u64,
    pub(crate) newest_time_ms: u64,
}

pub(crate) struct Trees {
    pub(crate) sequence: sled::Tree,
    pub(crate) message: sled::Tree,
    pub(crate) time: sled::Tree,
    pub(crate) client: sled::Tree,
    pub(crate) service: sled::Tree,
    pub(crate) checkpoint: sled::Tree,
    pub(crate) segment: sled::Tree,
}

pub(crate) struct Status {
    pub(crate) problem: Option<String>,
    pub(crate) next_sequence: u64,
    pub(crate) last_hash: Sha256Hash,
    pub(crate) last_checkpoint: Option<CheckpointSummary>,
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) db: sled::Db,
    pub(crate) trees: Trees,
    pub(crate) status: Mutex<Status>,
    keys: Option<KeyRing>,
}

/// An open message log. Appends go through one writer thread (group commit); reads go straight
/// to the segment files.
pub struct MessageLog {
    pub(crate) inner: Arc<Inner>,
    sender: Option<Sender<Vec<Pending>>>,
    writer: Option<JoinHandle<()>>,
    checkpoint_lock: Mutex<()>,
}

impl std::fmt::Debug for MessageLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageLog")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Pending {
    body_json: Vec<u8>,
    keys: IndexKeys,
    ticket: Arc<TicketShared>,
}

struct IndexKeys {
    time_ms: u64,
    message_id: Option<String>,
    client: Option<String>,
    service: Option<String>,
    checkpoint: Option<CheckpointRecord>,
}

impl IndexKeys {
    fn of(body: &EntryBody) -> Self {
        match body {
            EntryBody::Exchange(record) => IndexKeys {
                time_ms: record.request_received_at_ms,
                message_id: Some(record.message_id.clone()),
                client: Some(record.client.to_string()),
                service: Some(record.service.to_string()),
                checkpoint: None,
            },
            EntryBody::Checkpoint(checkpoint) => IndexKeys {
                time_ms: checkpoint.created_at_ms,
                message_id: None,
                client: None,
                service: None,
                checkpoint: Some(checkpoint.clone()),
            },
        }
    }
}

pub(crate) fn keyed(prefix: &[u8], sequence: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 9);
    key.extend_from_slice(prefix);
    key.push(0);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
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

impl MessageLog {
    /// Opens (or creates) the log in `dir`: segments in `dir/segments`, indexes in `dir/index`.
    ///
    /// A torn or damaged tail of the last segment is cut (with a warning), and index entries
    /// missing after a crash are rebuilt from the segments.
    pub fn open(dir: &Path, options: LogOptions) -> Result<MessageLog, LogError> {
        let segments = segments_dir(dir);
        std::fs::create_dir_all(&segments).map_err(|e| LogError::io("create", &segments, e))?;
        let index_path = dir.join("index");
        let db = sled::Config::new()
            .path(&index_path)
            .cache_capacity(options.index_cache_bytes)
            .open()
            .map_err(|e| LogError::index(&index_path, e))?;
        let open_tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| LogError::index(&index_path, e))
        };
        let trees = Trees {
            sequence: open_tree("sequence")?,
            message: open_tree("message")?,
            time: open_tree("time")?,
            client: open_tree("client")?,
            service: open_tree("service")?,
            checkpoint: open_tree("checkpoint")?,
            segment: open_tree("segment")?,
        };
        let tail = repair_tail(dir)?;
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            db,
            trees,
            status: Mutex::new(Status {
                problem: None,
                next_sequence: tail.next_sequence,
                last_hash: tail.last_hash,
                last_checkpoint: None,
            }),
            keys: options.keys,
        });
        inner.rebuild_index(tail.next_sequence)?;
        let last_checkpoint = inner.last_checkpoint()?;
        inner.lock_status().last_checkpoint = last_checkpoint;

        let path = segment_path(dir, tail.segment_first);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        file.seek(SeekFrom::Start(tail.segment_len))
            .map_err(|e| LogError::io("seek", &path, e))?;
        let writer = Writer {
            inner: inner.clone(),
            file,
            segment_first: tail.segment_first,
            segment_len: tail.segment_len,
            next_sequence: tail.next_sequence,
            last_hash: tail.last_hash,
            durability: options.durability,
            segment_size_limit: options.segment_size_limit.max(SEGMENT_HEADER + 1),
            max_batch: options.max_batch_entries.max(1),
            broken: None,
        };
        let (sender, receiver) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("messagelog-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| LogError::io("start writer thread for", dir, e))?;
        Ok(MessageLog {
            inner,
            sender: Some(sender),
            writer: Some(handle),
            checkpoint_lock: Mutex::new(()),
        })
    }

    /// Queues one exchange record. Plaintext bodies are sealed here, on the caller's thread,
    /// before the record reaches the writer. The exchange may be answered once the ticket
    /// completes with `Ok`.
    pub fn append(&self, record: ExchangeRecord) -> AppendTicket {
        match self.prepare(record) {
            Ok(pending) => self.submit(vec![pending]).pop().unwrap_or_else(|| {
                AppendTicket::failed(LogError::AppendFailed {
                    reason: "nothing submitted".into(),
                })
            }),
            Err(error) => AppendTicket::failed(error),
        }
    }

    /// Queues several records together; they get consecutive sequence numbers.
    pub fn append_batch(&self, records: Vec<ExchangeRecord>) -> Vec<AppendTicket> {
        let mut prepared = Vec::with_capacity(records.len());
        for record in records {
            match self.prepare(record) {
                Ok(pending) => prepared.push(pending),
                Err(error) => {
                    // All or nothing, so that a batch never lands half-logged.
                    let count = prepared.len() + 1;
                    return (0..count)
                        .map(|_| AppendTicket::failed(error.clone()))
                        .collect();
                }
            }
        }
        self.submit(prepared)
    }

    /// The state the security server's health check reports.
    pub fn health(&self) -> LogHealth {
        let status = self.inner.lock_status();
        LogHealth {
            writable: status.problem.is_none(),
            problem: status.problem.clone(),
            next_sequence: status.next_sequence,
            last_hash: status.last_hash,
            last_checkpoint: status.last_checkpoint.clone(),
        }
    }

    /// Time-stamps every entry written since the last checkpoint: computes the Merkle root of
    /// their hashes, asks `timestamper` for a token over it, and appends a checkpoint entry
    /// (waiting until it is durable). `Ok(None)` when there is nothing new to stamp.
    pub fn checkpoint(
        &self,
        timestamper: &dyn Timestamper,
        now: SystemTime,
    ) -> Result<Option<CheckpointSummary>, LogError> {
        let _guard = self
            .checkpoint_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (next, previous) = {
            let status = self.inner.lock_status();
            (status.next_sequence, status.last_checkpoint.clone())
        };
        let first = match &previous {
            Some(previous) => previous.last_sequence + 1,
            None => self.inner.first_available_sequence()?.unwrap_or(0),
        };
        if next == 0 || first >= next {
            return Ok(None);
        }
        let last = next - 1;
        let mut accumulator = MerkleAccumulator::new();
        let mut cursor = self.inner.cursor_from(first)?;
        while accumulator.count() < last - first + 1 {
            let Some((_, _, entry)) = cursor.next_entry()? else {
                return Err(LogError::Missing {
                    sequence: first + accumulator.count(),
                    reason: "ended early".into(),
                });
            };
            accumulator.push(leaf_hash(&entry.hash.0));
        }
        let root = Sha256Hash(accumulator.root().unwrap_or_default());
        let token = timestamper
            .timestamp(&root.0)
            .map_err(|message| LogError::Timestamp { message })?;
        let record = CheckpointRecord {
            first_sequence: first,
            last_sequence: last,
            root,
            token,
            created_at_ms: unix_millis(now),
        };
        let pending = self.prepare_body(EntryBody::Checkpoint(record.clone()), "checkpoint")?;
        let appended = self
            .submit(vec![pending])
            .pop()
            .ok_or(LogError::Closed)?
            .wait()?;
        // The index is written without flushing on the exchange's path; a checkpoint is rare
        // and off that path, so it persists what the index holds so far (a failure only means
        // more to rebuild on the next open).
        if let Err(error) = self.inner.db.flush() {
            tracing::warn!(%error, "cannot flush the message-log index");
        }
        Ok(Some(CheckpointSummary {
            first_sequence: first,
            last_sequence: last,
            root,
            entry_sequence: appended.sequence,
            created_at_ms: record.created_at_ms,
        }))
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Reads and decodes the entry with this sequence number.
    pub fn entry(&self, sequence: u64) -> Result<Entry, LogError> {
        let raw = self.inner.read_raw(sequence)?;
        raw.decode()
            .map_err(|reason| LogError::Missing { sequence, reason })
    }

    /// Sequence numbers of the entries of one message (usually one per side that logged here).
    pub fn sequences_of_message(&self, message_id: &str) -> Result<Vec<u64>, LogError> {
        self.inner
            .sequences_with(&self.inner.trees.message, message_id.as_bytes())
    }

    fn prepare(&self, mut record: ExchangeRecord) -> Result<Pending, LogError> {
        let message_id = record.message_id.clone();
        for (part_name, part) in [
            ("request", &mut record.request),
            ("response", &mut record.response),
        ] {
            self.seal_part(&message_id, record.side, part_name, part)?;
        }
        self.prepare_body(EntryBody::Exchange(Box::new(record)), &message_id)
    }

    fn seal_part(
        &self,
        message_id: &str,
        side: crate::record::Side,
        part_name: &str,
        part: &mut MessagePart,
    ) -> Result<(), LogError> {
        if let Body::Plain(plaintext) = &part.body {
            let keys = self
                .inner
                .keys
                .as_ref()
                .ok_or_else(|| LogError::NoBodyKey {
                    message_id: message_id.to_owned(),
                })?;
            part.body_digest = Sha256Hash::of(plaintext);
            part.body_size = plaintext.len() as u64;
            part.body = keys.seal(message_id, side, part_name, plaintext)?;
        }
        Ok(())
    }

    fn prepare_body(&self, body: EntryBody, label: &str) -> Result<Pending, LogError> {
        let body_json = serde_json::to_vec(&body).map_err(|e| LogError::Encode {
            message_id: label.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Pending {
            keys: IndexKeys::of(&body),
            body_json,
            ticket: TicketShared::new(),
        })
    }

    fn submit(&self, pending: Vec<Pending>) -> Vec<AppendTicket> {
        let tickets: Vec<AppendTicket> = pending
            .iter()
            .map(|p| AppendTicket::new(p.ticket.clone()))
            .collect();
        let sent = match &self.sender {
            Some(sender) => sender.send(pending),
            None => {
                return tickets
                    .into_iter()
                    .map(|_| AppendTicket::failed(LogError::Closed))
                    .collect();
            }
        };
        if let Err(mpsc::SendError(pending)) = sent {
            for p in pending {
                p.ticket.complete(Err(LogError::Closed));
            }
        }
        tickets
    }
}

impl Drop for MessageLog {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and stop.
        self.sender = None;
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("message-log writer thread panicked");
        }
        if let Err(error) = self.inner.db.flush() {
            tracing::warn!(%error, "cannot flush the message-log index");
        }
    }
}

impl Inner {
    pub(crate) fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn index_error(&self, error: impl std::fmt::Display) -> LogError {
        LogError::index(self.dir.join("index"), error)
    }

    pub(crate) fn locate(&self, sequence: u64) -> Result<Option<(u64, u64)>, LogError> {
        let value = self
            .trees
            .sequence
            .get(sequence.to_be_bytes())
            .map_err(|e| self.index_error(e))?;
        Ok(value.and_then(|value| Some((be_u64(&value)?, be_u64(value.get(8..)?)?))))
    }

    pub(crate) fn first_available_sequence(&self) -> Result<Option<u64>, LogError> {
        let first = self
            .trees
            .sequence
            .first()
            .map_err(|e| self.index_error(e))?;
        Ok(first.and_then(|(key, _)| be_u64(&key)))
    }

    pub(crate) fn cursor_from(&self, sequence: u64) -> Result<LogCursor, LogError> {
        let (segment, offset) = self.locate(sequence)?.ok_or_else(|| LogError::Missing {
            sequence,
            reason: "not in the index (never written, or removed by retention)".into(),
        })?;
        LogCursor::at(&self.dir, segment, offset)
    }

    pub(crate) fn read_raw(&self, sequence: u64) -> Result<RawEntry, LogError> {
        let mut cursor = self.cursor_from(sequence)?;
        match cursor.next_entry()? {
            Some((_, _, entry)) => Ok(entry),
            None => Err(LogError::Missing {
                sequence,
                reason: "past the end of its segment".into(),
            }),
        }
    }

    pub(crate) fn sequences_with(
        &self,
        tree: &sled::Tree,
        prefix: &[u8],
    ) -> Result<Vec<u64>, LogError> {
        let mut full = prefix.to_vec();
        full.push(0);
        let next = self.lock_status().next_sequence;
        let mut sequences = Vec::new();
        for item in tree.scan_prefix(&full) {
            let (key, _) = item.map_err(|e| self.index_error(e))?;
            if let Some(sequence) = key.get(full.len()..).and_then(be_u64)
                && sequence < next
            {
                sequences.push(sequence);
            }
        }
        Ok(sequences)
    }

    pub(crate) fn last_checkpoint(&self) -> Result<Option<CheckpointSummary>, LogError> {
        let last = self
            .trees
            .checkpoint
            .last()
            .map_err(|e| self.index_error(e))?;
        last.map(|(_, value)| serde_json::from_slice(&value).map_err(|e| self.index_error(e)))
            .transpose()
    }

    /// The checkpoint whose span contains `sequence`, if it has been time-stamped.
    pub(crate) fn checkpoint_covering(
        &self,
        sequence: u64,
    ) -> Result<Option<CheckpointSummary>, LogError> {
        let found = self.trees.checkpoint.range(sequence.to_be_bytes()..).next();
        let Some(item) = found else { return Ok(None) };
        let (_, value) = item.map_err(|e| self.index_error(e))?;
        let summary: CheckpointSummary =
            serde_json::from_slice(&value).map_err(|e| self.index_error(e))?;
        Ok((summary.first_sequence <= sequence).then_some(summary))
    }

    pub(crate) fn segment_meta(&self, first: u64) -> Result<Option<SegmentMeta>, LogError> {
        let value = self
            .trees
            .segment
            .get(first.to_be_bytes())
            .map_err(|e| self.index_error(e))?;
        Ok(value.and_then(|value| serde_json::from_slice(&value).ok()))
    }

    /// Index entries of one entry, added to the per-tree batches.
    fn index_entry(
        &self,
        batches: &mut IndexBatches,
        sequence: u64,
        location: (u64, u64),
        keys: &IndexKeys,
    ) -> Result<(), LogError> {
        batches.sequence.push((
            sequence.to_be_bytes().to_vec(),
            location_value(location.0, location.1).to_vec(),
        ));
        batches
            .time
            .push((keyed(&keys.time_ms.to_be_bytes(), sequence), Vec::new()));
        if let Some(message_id) = &keys.message_id {
            batches
                .message
                .push((keyed(message_id.as_bytes(), sequence), Vec::new()));
        }
        if let Some(client) = &keys.client {
            batches
                .client
                .push((keyed(client.as_bytes(), sequence), Vec::new()));
        }
        if let Some(service) = &keys.service {
            batches
                .service
                .push((keyed(service.as_bytes(), sequence), Vec::new()));
        }
        if let Some(checkpoint) = &keys.checkpoint {
            let summary = CheckpointSummary {
                first_sequence: checkpoint.first_sequence,
                last_sequence: checkpoint.last_sequence,
                root: checkpoint.root,
                entry_sequence: sequence,
                created_at_ms: checkpoint.created_at_ms,
            };
            let value = serde_json::to_vec(&summary).map_err(|e| self.index_error(e))?;
            batches
                .checkpoint
                .push((checkpoint.last_sequence.to_be_bytes().to_vec(), value));
        }
        let meta = batches.segments.entry(location.0).or_insert(SegmentMeta {
            last_sequence: sequence,
            newest_time_ms: keys.time_ms,
        });
        meta.last_sequence = meta.last_sequence.max(sequence);
        meta.newest_time_ms = meta.newest_time_ms.max(keys.time_ms);
        Ok(())
    }

    /// Writes the index entries with plain inserts. `sled::Tree::apply_batch` seals sled's write
    /// buffer and writes it out on every call (six writes per group commit, on the exchange's
    /// path); the index is a cache of the segments, rebuilt on open from the last indexed
    /// sequence, so it needs neither atomic batches nor a flush per group commit: sled flushes in
    /// the background, on checkpoint and on close.
    fn apply(&self, batches: IndexBatches) -> Result<Option<CheckpointSummary>, LogError> {
        let trees = &self.trees;
        let map = |e: sled::Error| self.index_error(e);
        let insert_all = |tree: &sled::Tree, entries: Vec<(Vec<u8>, Vec<u8>)>| {
            entries
                .into_iter()
                .try_for_each(|(key, value)| tree.insert(key, value).map(|_| ()))
        };
        insert_all(&trees.time, batches.time).map_err(map)?;
        insert_all(&trees.message, batches.message).map_err(map)?;
        insert_all(&trees.client, batches.client).map_err(map)?;
        insert_all(&trees.service, batches.service).map_err(map)?;
        let new_checkpoint = batches.checkpoint.last().map(|(_, value)| value.clone());
        insert_all(&trees.checkpoint, batches.checkpoint).map_err(map)?;
        for (first, meta) in batches.segments {
            let merged = match self.segment_meta(first)? {
                Some(old) => SegmentMeta {
                    last_sequence: old.last_sequence.max(meta.last_sequence),
                    newest_time_ms: old.newest_time_ms.max(meta.newest_time_ms),
                },
                None => meta,
            };
            let value = serde_json::to_vec(&merged).map_err(|e| self.index_error(e))?;
            trees
                .segment
                .insert(first.to_be_bytes(), value)
                .map_err(map)?;
        }
        // Last, so that an indexed sequence implies its other index entries exist (sled replays
        // its log in order after a crash).
        insert_all(&trees.sequence, batches.sequence).map_err(map)?;
        match new_checkpoint {
            // Checkpoint keys are increasing, so the one just inserted is the last one.
            Some(value) => serde_json::from_slice(&value)
                .map(Some)
                .map_err(|e| self.index_error(e)),
            None => self.last_checkpoint(),
        }
    }

    /// Drops index entries past the tail and re-indexes entries the index does not know yet.
    fn rebuild_index(&self, next_sequence: u64) -> Result<(), LogError> {
        let stale: Vec<_> = self
            .trees
            .sequence
            .range(next_sequence.to_be_bytes()..)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| self.index_error(e))?;
        for key in stale {
            self.trees
                .sequence
                .remove(key)
                .map_err(|e| self.index_error(e))?;
        }
        let stale_checkpoints: Vec<_> = self
            .trees
            .checkpoint
            .iter()
            .values()
            .filter_map(|value| value.ok())
            .filter_map(|value| serde_json::from_slice::<CheckpointSummary>(&value).ok())
            .filter(|summary| summary.entry_sequence >= next_sequence)
            .collect();
        for summary in stale_checkpoints {
            self.trees
                .checkpoint
                .remove(summary.last_sequence.to_be_bytes())
                .map_err(|e| self.index_error(e))?;
        }
        let last = self
            .trees
            .sequence
            .last()
            .map_err(|e| self.index_error(e))?;
        let mut cursor =
            match last.and_then(|(_, value)| Some((be_u64(&value)?, be_u64(value.get(8..)?)?))) {
                // Re-index from the last indexed entry on: inserts are idempotent.
                Some((segment, offset)) => LogCursor::at(&self.dir, segment, offset)?,
                None => match list_segments(&self.dir)?.first() {
                    Some((first, _)) => LogCursor::at(&self.dir, *first, SEGMENT_HEADER)?,
                    None => return Ok(()),
                },
            };
        let mut batches = IndexBatches::default();
        let mut count = 0u64;
        while let Some((segment, offset, raw)) = cursor.next_entry()? {
            let entry = raw.decode().map_err(|reason| LogError::DamagedEntry {
                sequence: u64::MAX,
                path: segment_path(&self.dir, segment),
                offset,
                reason,
            })?;
            self.index_entry(
                &mut batches,
                entry.sequence,
                (segment, offset),
                &IndexKeys::of(&entry.entry),
            )?;
            count += 1;
            if count.is_multiple_of(10_000) {
                self.apply(std::mem::take(&mut batches))?;
            }
        }
        self.apply(batches)?;
        if count > 1 {
            tracing::info!(entries = count - 1, dir = %self.dir.display(), "rebuilt message-log index entries");
        }
        Ok(())
    }
}

#[derive(Default)]
struct IndexBatches {
    sequence: Vec<(Vec<u8>, Vec<u8>)>,
    message: Vec<(Vec<u8>, Vec<u8>)>,
    time: Vec<(Vec<u8>, Vec<u8>)>,
    client: Vec<(Vec<u8>, Vec<u8>)>,
    service: Vec<(Vec<u8>, Vec<u8>)>,
    checkpoint: Vec<(Vec<u8>, Vec<u8>)>,
    segments: std::collections::BTreeMap<u64, SegmentMeta>,
}

struct Tail {
    segment_first: u64,
    segment_len: u64,
    next_sequence: u64,
    last_hash: Sha256Hash,
}

/// Scans the last segment, cuts a torn or damaged tail, and returns where appending resumes.
fn repair_tail(dir: &Path) -> Result<Tail, LogError> {
    let segments = list_segments(dir)?;
    let Some((last_first, last_path)) = segments.last().cloned() else {
        create_segment(dir, 0)?;
        return Ok(Tail {
            segment_first: 0,
            segment_len: SEGMENT_HEADER,
            next_sequence: 0,
            last_hash: Sha256Hash::ZERO,
        });
    };
    let length = std::fs::metadata(&last_path)
        .map_err(|e| LogError::io("inspect", &last_path, e))?
        .len();
    if length < SEGMENT_HEADER {
        // Created but its header never reached the disk: nothing was ever acknowledged in it.
        tracing::warn!(path = %last_path.display(), "recreating a segment whose header was torn");
        std::fs::remove_file(&last_path).map_err(|e| LogError::io("remove", &last_path, e))?;
        create_segment(dir, last_first)?;
    }
    // The hash the first entry of the last segment must follow.
    let mut expected_previous = match segments.len().checked_sub(2).map(|i| &segments[i]) {
        Some((_, previous_path)) => last_hash_of(previous_path)?,
        None => None,
    };
    let mut reader = SegmentReader::open(&last_path)?;
    let mut next_sequence = last_first;
    let mut good_end = SEGMENT_HEADER;
    let mut last_hash = expected_previous.unwrap_or(Sha256Hash::ZERO);
    let damage = loop {
        match reader.next_item()? {
            SegmentItem::End => break None,
            SegmentItem::Damaged { offset, reason } => break Some((offset, reason)),
            SegmentItem::Entry { offset, entry } => {
                let head = match entry.head() {
                    Ok(head) => head,
                    Err(reason) => break Some((offset, reason)),
                };
                let previous = expected_previous.unwrap_or(head.previous_hash);
                if head.sequence != next_sequence
                    || head.previous_hash != previous
                    || !entry.hash_holds(&previous)
                {
                    break Some((
                        offset,
                        format!("entry does not continue the chain at sequence {next_sequence}"),
                    ));
                }
                next_sequence += 1;
                last_hash = entry.hash;
                expected_previous = Some(entry.hash);
                good_end = offset + FRAME_HEADER + entry.payload().len() as u64;
            }
        }
    };
    if let Some((offset, reason)) = damage {
        tracing::warn!(
            path = %last_path.display(), offset, cut_bytes = length.saturating_sub(offset), %reason,
            "cutting a torn or damaged tail off the message log"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(&last_path)
            .map_err(|e| LogError::io("open", &last_path, e))?;
        file.set_len(good_end)
            .map_err(|e| LogError::io("truncate", &last_path, e))?;
        file.sync_all()
            .map_err(|e| LogError::io("sync", &last_path, e))?;
    }
    Ok(Tail {
        segment_first: last_first,
        segment_len: good_end,
        next_sequence,
        last_hash,
    })
}

fn last_hash_of(path: &Path) -> Result<Option<Sha256Hash>, LogError> {
    let mut reader = SegmentReader::open(path)?;
    let mut last = None;
    while let Some((_, entry)) = reader.next_entry()? {
        last = Some(entry.hash);
    }
    Ok(last)
}

/// The single thread that writes, syncs and indexes batches.
struct Writer {
    inner: Arc<Inner>,
    file: File,
    segment_first: u64,
    segment_len: u64,
    next_sequence: u64,
    last_hash: Sha256Hash,
    durability: Durability,
    segment_size_limit: u64,
    max_batch: usize,
    broken: Option<String>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Vec<Pending>>) {
        let mut carry: Vec<Pending> = Vec::new();
        loop {
            if carry.is_empty() {
                match receiver.recv() {
                    Ok(pending) => carry = pending,
                    Err(_) => return,
                }
            }
            // Group commit: take whatever else is already queued.
            while carry.len() < self.max_batch {
                match receiver.try_recv() {
                    Ok(more) => carry.extend(more),
                    Err(_) => break,
                }
            }
            let rest = if carry.len() > self.max_batch {
                carry.split_off(self.max_batch)
            } else {
                Vec::new()
            };
            let batch = std::mem::replace(&mut carry, rest);
            self.write_batch(batch);
        }
    }

    fn path(&self) -> PathBuf {
        segment_path(&self.inner.dir, self.segment_first)
    }

    fn fail(&self, batch: Vec<Pending>, error: &LogError) {
        for pending in batch {
            pending.ticket.complete(Err(LogError::AppendFailed {
                reason: error.to_string(),
            }));
        }
    }

    fn write_batch(&mut self, batch: Vec<Pending>) {
        if let Some(reason) = &self.broken {
            let error = LogError::NotWritable {
                reason: reason.clone(),
            };
            return self.fail(batch, &error);
        }
        if self.segment_len >= self.segment_size_limit
            && self.segment_len > SEGMENT_HEADER
            && let Err(error) = self.roll_over()
        {
            tracing::error!(%error, "cannot start a new message-log segment");
            return self.fail(batch, &error);
        }
        let mut buffer = Vec::new();
        let mut previous = self.last_hash;
        let mut done = Vec::with_capacity(batch.len());
        for (index, pending) in batch.iter().enumerate() {
            let sequence = self.next_sequence + index as u64;
            let content = Entry::content_bytes(sequence, &previous, &pending.body_json);
            let hash = Sha256Hash::chain(&previous, &Sha256Hash::of(&content));
            let offset = self.segment_len + buffer.len() as u64;
            let raw = RawEntry { hash, content };
            encode_frame(&raw.payload(), &mut buffer);
            done.push((Appended { sequence, hash }, offset));
            previous = hash;
        }
        if let Err(error) = self.write_and_sync(&buffer) {
            tracing::error!(%error, "message-log batch not written");
            return self.fail(batch, &error);
        }
        self.segment_len += buffer.len() as u64;
        self.next_sequence += batch.len() as u64;
        self.last_hash = previous;
        {
            let mut status = self.inner.lock_status();
            status.next_sequence = self.next_sequence;
            status.last_hash = previous;
        }
        // The records are durable now; the index is only a cache of the segments, rebuilt on open
        // when it lags, so an index failure does not fail the appends.
        let mut batches = IndexBatches::default();
        let mut index_result = Ok(());
        for (pending, (appended, offset)) in batch.iter().zip(&done) {
            index_result = index_result.and_then(|()| {
                self.inner.index_entry(
                    &mut batches,
                    appended.sequence,
                    (self.segment_first, *offset),
                    &pending.keys,
                )
            });
        }
        match index_result.and_then(|()| self.inner.apply(batches)) {
            Ok(Some(checkpoint)) => self.inner.lock_status().last_checkpoint = Some(checkpoint),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "message-log index update failed; it is rebuilt on next open")
            }
        }
        for (pending, (appended, _)) in batch.into_iter().zip(done) {
            pending.ticket.complete(Ok(appended));
        }
    }

    fn write_and_sync(&mut self, buffer: &[u8]) -> Result<(), LogError> {
        let path = self.path();
        let written = self
            .file
            .write_all(buffer)
            .map_err(|e| LogError::io("write", &path, e));
        let result = written.and_then(|()| match self.durability {
            Durability::Fsync => self
                .file
                .sync_data()
                .map_err(|e| LogError::io("sync", &path, e)),
            Durability::DangerMemoryOnly => Ok(()),
        });
        if let Err(error) = &result {
            // Cut whatever part of the batch reached the file so the chain stays consistent. After
            // a failed sync the page cache cannot be trusted either: stop writing altogether.
            let rolled_back = self.file.set_len(self.segment_len).and_then(|()| {
                self.file
                    .seek(SeekFrom::Start(self.segment_len))
                    .map(|_| ())
            });
            let reason = match rolled_back {
                Ok(()) => error.to_string(),
                Err(cut) => format!("{error}; cutting the partial batch failed too: {cut}"),
            };
            self.broken = Some(reason.clone());
            self.inner.lock_status().problem = Some(reason);
        }
        result
    }

    fn roll_over(&mut self) -> Result<(), LogError> {
        if self.durability == Durability::DangerMemoryOnly {
            let path = self.path();
            self.file
                .sync_data()
                .map_err(|e| LogError::io("sync", &path, e))?;
        }
        let file = create_segment(&self.inner.dir, self.next_sequence)?;
        let mut file = file;
        file.seek(SeekFrom::End(0))
            .map_err(|e| LogError::io("seek", self.path(), e))?;
        self.file = file;
        self.segment_first = self.next_sequence;
        self.segment_len = SEGMENT_HEADER;
        Ok(())
    }
}
