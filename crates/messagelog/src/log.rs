//! The log itself: opening (with tail repair and index rebuild), group commit, reads by sequence,
//! and time-stamp checkpoints.
//!
//! Threads: appends are queued to the `messagelog-writer` thread, which frames a whole batch of
//! them, writes it to the current segment, syncs it once (group commit), and completes the
//! batch's tickets. Only then does it hand the batch's index entries to the `messagelog-indexer`
//! thread (see [`crate::index`]), which writes them to sled off the exchange's path. Reads that
//! use the index wait, through a barrier, until it holds every entry that was durable when they
//! began, so an awaited append is always found; an index that stopped makes them fail rather
//! than wait, and never fails an append.
//!
//! The writer also keeps the Merkle accumulator of the entries since the last checkpoint's span
//! (in [`Status`]), so that [`MessageLog::checkpoint`] need not read them back from the segments;
//! when it does not cover the span (after an open, or after a failed time-stamp), the
//! checkpoint reads the hashes from the segments as before.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use passerelle_pki::merkle::leaf_hash;

use crate::accumulator::MerkleAccumulator;
use crate::checkpoint::{CheckpointSummary, Timestamper, unix_millis};
use crate::error::LogError;
use crate::evidence::{EvidenceStore, HashMemo, create_names, read_stored};
use crate::frame::{FRAME_HEADER, encode_frame_with};
use crate::hash::Sha256Hash;
use crate::index::{IndexItem, IndexKeys, IndexQueue, Trees, rebuild, run_indexer};
use crate::keys::KeyRing;
use crate::record::{Body, CheckpointRecord, Entry, EntryBody, ExchangeRecord, MessagePart};
use crate::segment::{
    EntryHead, Preparer, SEGMENT_HEADER, SegmentItem, SegmentReader, create_segment, list_segments,
    prepared_path, segment_path, segments_dir, zero_fill,
};
use crate::ticket::{AppendTicket, Appended, TicketShared};

/// Bytes of a frame besides the record's JSON: frame header, entry hash and the content's head.
const FRAME_OVERHEAD: usize = 8 + 32 + 160;

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
    /// With [`Durability::Fsync`], write into segments zero-filled to `segment_size_limit`
    /// beforehand (the next one on a background thread), so that a sync flushes the new bytes
    /// only. Costs one extra write of each segment; useless on copy-on-write file systems.
    pub preallocate: bool,
}

impl LogOptions {
    /// 64 MiB segments, preallocated, batches of up to 4096 entries, a 32 MiB index cache, no
    /// body keys.
    pub fn new(durability: Durability) -> Self {
        LogOptions {
            durability,
            segment_size_limit: 64 << 20,
            max_batch_entries: 4096,
            keys: None,
            index_cache_bytes: 32 << 20,
            preallocate: true,
        }
    }

    pub fn with_keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }
}

/// Upper bounds, in seconds, of the buckets of [`SyncTimes`].
pub const SYNC_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A sync slower than this is logged as a warning: every exchange of its batch, and of the
/// batches queued behind it, waited for the disk that long.
const SLOW_SYNC: Duration = Duration::from_secs(1);

/// How long the log's batch syncs took since it was opened, as a histogram over
/// [`SYNC_BUCKETS`]. Every exchange waits for the sync of its batch before it is answered, so the
/// tail of these times is the log's share of the exchanges' latency tail. The syncs of a segment
/// roll-over (its header and directory), once per segment, are not counted. Empty under
/// [`Durability::DangerMemoryOnly`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncTimes {
    /// How many syncs took at most each bound of [`SYNC_BUCKETS`] (cumulative, as Prometheus
    /// buckets are).
    pub at_most: [u64; SYNC_BUCKETS.len()],
    pub count: u64,
    pub total_nanos: u64,
}

impl SyncTimes {
    fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (count, bound) in self.at_most.iter_mut().zip(SYNC_BUCKETS) {
            if seconds <= bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.total_nanos = self
            .total_nanos
            .saturating_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
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
    /// Why the index stopped, once it has: appends go on, but reads through the index (by
    /// sequence or message id, retention) fail until the log is reopened, which rebuilds it.
    pub index_problem: Option<String>,
    pub sync_times: SyncTimes,
}

/// What the writer has made durable; updated by the writer under one lock, once per batch.
pub(crate) struct Status {
    pub(crate) problem: Option<String>,
    pub(crate) next_sequence: u64,
    pub(crate) last_hash: Sha256Hash,
    /// Set by the writer as soon as a checkpoint entry is durable (its index entry may still be
    /// on its way).
    pub(crate) last_checkpoint: Option<CheckpointSummary>,
    /// The entries from `span.first` to `next_sequence`: those the next checkpoint covers when
    /// `span.first` is where it starts.
    span: Span,
    sync_times: SyncTimes,
}

/// A Merkle accumulator over the entries from `first` on; `first + accumulator.count()` is
/// always the status's `next_sequence`.
struct Span {
    first: u64,
    accumulator: MerkleAccumulator,
}

impl Span {
    fn starting_at(first: u64) -> Self {
        Span {
            first,
            accumulator: MerkleAccumulator::new(),
        }
    }

    /// The root over the entries `first..end`, if this span is exactly those.
    fn root_of(&self, first: u64, end: u64) -> Option<Sha256Hash> {
        if self.first != first || self.first + self.accumulator.count() != end {
            return None;
        }
        self.accumulator.root().map(Sha256Hash)
    }
}

pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) db: sled::Db,
    pub(crate) trees: Trees,
    pub(crate) status: Mutex<Status>,
    /// The hand-over to the index thread and the barrier that index reads wait on.
    pub(crate) index: IndexQueue,
    keys: Option<KeyRing>,
    /// The hashes of the evidence the last records named.
    evidence_hashes: HashMemo,
    /// The evidence store: written by the writer, pruned by retention.
    pub(crate) evidence: Mutex<EvidenceStore>,
}

/// An open message log. Appends go through one writer thread (group commit) and are indexed by
/// a second thread after their tickets complete; reads go to the segment files, through the
/// index when they look an entry up (waiting until it holds everything durable).
pub struct MessageLog {
    pub(crate) inner: Arc<Inner>,
    sender: Option<Sender<Vec<Pending>>>,
    writer: Option<JoinHandle<()>>,
    indexer: Option<JoinHandle<()>>,
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
    /// The certificates and statuses the record names by reference, for the evidence store.
    evidence: Vec<(Sha256Hash, Vec<u8>)>,
    keys: IndexKeys,
    ticket: Arc<TicketShared>,
}

impl MessageLog {
    /// Opens (or creates) the log in `dir`: segments in `dir/segments`, indexes in `dir/index`.
    ///
    /// A torn or damaged tail of the last segment is cut (with a warning), and index entries
    /// missing after a crash are rebuilt from the segments before this returns. Starts the
    /// writer and index threads.
    pub fn open(dir: &Path, options: LogOptions) -> Result<MessageLog, LogError> {
        let segments = segments_dir(dir);
        std::fs::create_dir_all(&segments).map_err(|e| LogError::io("create", &segments, e))?;
        let index_path = dir.join("index");
        let db = open_index(
            &sled::Config::new()
                .path(&index_path)
                .cache_capacity(options.index_cache_bytes),
        )
        .map_err(|e| LogError::index(&index_path, e))?;
        let trees = Trees::open(&db, &index_path)?;
        let tail = repair_tail(dir)?;
        let evidence = Mutex::new(EvidenceStore::open(dir)?);
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            db,
            trees,
            status: Mutex::new(Status {
                problem: None,
                next_sequence: tail.next_sequence,
                last_hash: tail.last_hash,
                last_checkpoint: None,
                span: Span::starting_at(tail.next_sequence),
                sync_times: SyncTimes::default(),
            }),
            // Complete once `rebuild` below has returned; nothing reads it before.
            index: IndexQueue::new(tail.next_sequence),
            keys: options.keys,
            evidence_hashes: HashMemo::default(),
            evidence,
        });
        rebuild(&inner, tail.next_sequence)?;
        let last_checkpoint = inner.indexed()?.last_checkpoint()?;
        inner.lock_status().last_checkpoint = last_checkpoint;

        let path = segment_path(dir, tail.segment_first);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        let segment_size_limit = options.segment_size_limit.max(SEGMENT_HEADER + 1);
        let preparer = if options.preallocate && options.durability == Durability::Fsync {
            // A segment prepared by an earlier run may be incomplete: prepared again.
            match std::fs::remove_file(prepared_path(dir)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LogError::io("remove", prepared_path(dir), e));
                }
                _ => {}
            }
            // `repair_tail` cut the segment at its last entry; its free space is zero-filled again.
            let stop = std::sync::atomic::AtomicBool::new(false);
            zero_fill(
                &mut file,
                &path,
                tail.segment_len,
                segment_size_limit,
                &stop,
            )?;
            Some(Preparer::start(dir, segment_size_limit)?)
        } else {
            None
        };
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
            segment_size_limit,
            max_batch: options.max_batch_entries.max(1),
            broken: None,
            preparer,
        };
        let indexer = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("messagelog-indexer".into())
                .spawn(move || run_indexer(&inner))
                .map_err(|e| LogError::io("start index thread for", dir, e))?
        };
        let (sender, receiver) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("messagelog-writer".into())
            .spawn(move || writer.run(receiver));
        let mut log = MessageLog {
            inner,
            sender: Some(sender),
            writer: None,
            indexer: Some(indexer),
            checkpoint_lock: Mutex::new(()),
        };
        // On failure, dropping `log` ends the index thread.
        log.writer = Some(spawned.map_err(|e| LogError::io("start writer thread for", dir, e))?);
        Ok(log)
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
            index_problem: self.inner.index.problem(),
            sync_times: status.sync_times.clone(),
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
        // Everything durable now is this checkpoint's to cover; entries from `next` on start the
        // span of the next one (whether or not this one succeeds).
        let (next, previous, span) = {
            let mut status = self.inner.lock_status();
            let next = status.next_sequence;
            let span = std::mem::replace(&mut status.span, Span::starting_at(next));
            (next, status.last_checkpoint.clone(), span)
        };
        let first = match &previous {
            Some(previous) => previous.last_sequence + 1,
            None => self
                .inner
                .indexed()?
                .first_available_sequence()?
                .unwrap_or(0),
        };
        if next == 0 || first >= next {
            return Ok(None);
        }
        let last = next - 1;
        let root = match span.root_of(first, next) {
            Some(root) => root,
            // After an open or a failed time-stamp, the writer's span starts later.
            None => self.root_from_segments(first, last)?,
        };
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
        // The writer has set the status's last checkpoint before completing the ticket. The
        // index is written without flushing; a checkpoint is rare and off the exchange's path,
        // so it persists what the index holds so far (a failure only means more to rebuild on
        // the next open).
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

    /// Reads and decodes the entry with this sequence number. Any entry whose append has
    /// completed is found (the lookup waits for the index to catch up with it).
    /// Certificates and statuses are resolved from the evidence store.
    pub fn entry(&self, sequence: u64) -> Result<Entry, LogError> {
        let raw = self
            .inner
            .indexed_below(sequence.saturating_add(1))?
            .read_raw(sequence)?;
        let mut entry = raw
            .decode()
            .map_err(|reason| LogError::Missing { sequence, reason })?;
        if let EntryBody::Exchange(record) = &mut entry.entry {
            record.resolve_evidence(|hash| {
                read_stored(&self.inner.dir, hash)?.ok_or_else(|| LogError::Missing {
                    sequence,
                    reason: format!("evidence sha256:{hash} is not in the evidence store"),
                })
            })?;
        }
        Ok(entry)
    }

    /// Sequence numbers of the entries of one message (usually one per side that logged here),
    /// including every entry whose append completed before this call.
    ///
    /// Each candidate the index names is read back and kept only if it is this message's: after
    /// a torn tail was cut, the index may still name the cut entries' sequence numbers, which
    /// later entries reuse.
    pub fn sequences_of_message(&self, message_id: &str) -> Result<Vec<u64>, LogError> {
        let index = self.inner.indexed()?;
        let mut sequences = Vec::new();
        for sequence in index.message_candidates(message_id)? {
            let entry = index
                .read_raw(sequence)?
                .decode()
                .map_err(|reason| LogError::Missing { sequence, reason })?;
            if entry.message_id() == Some(message_id) {
                sequences.push(sequence);
            }
        }
        Ok(sequences)
    }

    /// The Merkle root of the hashes of entries `first..=last`, read back from the segments.
    fn root_from_segments(&self, first: u64, last: u64) -> Result<Sha256Hash, LogError> {
        let mut accumulator = MerkleAccumulator::new();
        let mut cursor = self.inner.indexed()?.cursor_from(first)?;
        while accumulator.count() < last - first + 1 {
            let Some((_, _, hash)) = cursor.next_hash()? else {
                return Err(LogError::Missing {
                    sequence: first + accumulator.count(),
                    reason: "ended early".into(),
                });
            };
            accumulator.push(leaf_hash(&hash.0));
        }
        Ok(Sha256Hash(accumulator.root().unwrap_or_default()))
    }

    fn prepare(&self, mut record: ExchangeRecord) -> Result<Pending, LogError> {
        let message_id = record.message_id.clone();
        for (part_name, part) in [
            ("request", &mut record.request),
            ("response", &mut record.response),
        ] {
            self.seal_part(&message_id, record.side, part_name, part)?;
        }
        let evidence = record.store_evidence(&self.inner.evidence_hashes);
        let mut pending = self.prepare_body(EntryBody::Exchange(Box::new(record)), &message_id)?;
        pending.evidence = evidence;
        Ok(pending)
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
            part.body_digest = Sha256Hash(*plaintext.sha256());
            part.body_size = plaintext.bytes().len() as u64;
            part.body = keys.seal(message_id, side, part_name, plaintext.bytes())?;
        }
        Ok(())
    }

    fn prepare_body(&self, body: EntryBody, label: &str) -> Result<Pending, LogError> {
        let mut body_json = Vec::with_capacity(match &body {
            EntryBody::Exchange(record) => record.json_size_hint(),
            EntryBody::Checkpoint(_) => 1024,
        });
        crate::json::to_writer(&mut body_json, &body).map_err(|e| LogError::Encode {
            message_id: label.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Pending {
            keys: IndexKeys::of(&body),
            body_json,
            evidence: Vec::new(),
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

/// How long opening the index waits for its file lock to be released.
const INDEX_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the index database. sled releases its file lock from a background thread some time
/// after the last `sled::Db` handle is dropped, so a log closed and opened again in the same
/// process (a restart of the log, a test) can find the lock still held: the open is retried
/// for up to [`INDEX_LOCK_WAIT`]. A lock held by another process for longer still fails, with
/// sled's error.
fn open_index(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = Instant::now() + INDEX_LOCK_WAIT;
    loop {
        match config.open() {
            // sled 0.34 reports the lock only in the text of an `ErrorKind::Other` error.
            Err(sled::Error::Io(error))
                if error.to_string().starts_with("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

impl Drop for MessageLog {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and stop; then the index
        // thread indexes what the writer handed it and stops; then sled is flushed.
        self.sender = None;
        if let Some(handle) = self.writer.take()
            && handle.join().is_err()
        {
            tracing::error!("message-log writer thread panicked");
        }
        self.inner.index.close();
        if let Some(handle) = self.indexer.take()
            && handle.join().is_err()
        {
            tracing::error!("message-log index thread panicked");
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

    pub(crate) fn index_path(&self) -> PathBuf {
        self.dir.join("index")
    }

    pub(crate) fn index_error(&self, error: impl std::fmt::Display) -> LogError {
        LogError::index(self.index_path(), error)
    }
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
        // Checked through a fixed buffer: entries with large bodies would otherwise each be
        // allocated whole, and the allocator keeps that memory long after the log is open.
        match reader.next_checked::<EntryHead>()? {
            SegmentItem::End => break None,
            SegmentItem::Damaged { offset, reason } => break Some((offset, reason)),
            SegmentItem::Entry { offset, entry } => {
                let head = match &entry.head {
                    Ok(head) => head,
                    Err(reason) => break Some((offset, reason.clone())),
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
                good_end = offset + FRAME_HEADER + u64::from(entry.payload_length);
            }
        }
    };
    if let Some((offset, reason)) = &damage {
        tracing::warn!(
            path = %last_path.display(), offset, cut_bytes = length.saturating_sub(*offset), %reason,
            "cutting a torn or damaged tail off the message log"
        );
    }
    // Whatever follows the last entry goes too, damaged or not: the zeros of a preallocated
    // segment, and behind them, after a crash, parts of a batch that was never acknowledged.
    if damage.is_some() || length > good_end {
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
    // The stored hashes only: the segment is complete, and reading its bodies would cost their
    // size in reads and memory on every open.
    let mut reader = SegmentReader::open(path)?;
    let mut last = None;
    while let Some((_, hash)) = reader.next_hash()? {
        last = Some(hash);
    }
    Ok(last)
}

/// The single thread that writes and syncs batches, completes their tickets, and hands their
/// index entries to the index thread.
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
    /// Prepares the next segment, when segments are preallocated.
    preparer: Option<Preparer>,
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
        // The evidence the records name is durable before them.
        let sync = self.durability == Durability::Fsync;
        let evidence = batch.iter().flat_map(|pending| pending.evidence.iter());
        let stored = self
            .inner
            .evidence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put_and_name(self.segment_first, evidence, sync);
        if let Err(error) = stored {
            tracing::error!(%error, "message-log evidence not stored; the batch is not written");
            return self.fail(batch, &error);
        }
        // Each frame is written in place: header, entry hash, content (no copies of the record).
        let mut buffer = Vec::with_capacity(
            batch
                .iter()
                .map(|pending| pending.body_json.len() + FRAME_OVERHEAD)
                .sum(),
        );
        let mut previous = self.last_hash;
        let mut done = Vec::with_capacity(batch.len());
        for (index, pending) in batch.iter().enumerate() {
            let sequence = self.next_sequence + index as u64;
            let offset = self.segment_len + buffer.len() as u64;
            let mut hash = previous;
            encode_frame_with(&mut buffer, |payload| {
                let hash_at = payload.len();
                payload.extend_from_slice(&[0; 32]);
                Entry::write_content(sequence, &previous, &pending.body_json, payload);
                hash = Sha256Hash::chain(&previous, &Sha256Hash::of(&payload[hash_at + 32..]));
                payload[hash_at..hash_at + 32].copy_from_slice(&hash.0);
            });
            done.push((Appended { sequence, hash }, offset));
            previous = hash;
        }
        let synced = match self.write_and_sync(&buffer) {
            Ok(synced) => synced,
            Err(error) => {
                tracing::error!(%error, "message-log batch not written");
                return self.fail(batch, &error);
            }
        };
        self.segment_len += buffer.len() as u64;
        self.next_sequence += batch.len() as u64;
        self.last_hash = previous;
        // The records are durable now. Hashed outside the status lock: the span's leaves.
        let leaves: Vec<[u8; 32]> = done
            .iter()
            .map(|(appended, _)| leaf_hash(&appended.hash.0))
            .collect();
        let checkpoint = batch
            .iter()
            .zip(&done)
            .rev()
            .find_map(|(pending, (appended, _))| {
                pending.keys.checkpoint_summary(appended.sequence)
            });
        {
            let mut status = self.inner.lock_status();
            status.next_sequence = self.next_sequence;
            status.last_hash = previous;
            if let Some(took) = synced {
                status.sync_times.observe(took);
            }
            for leaf in leaves {
                status.span.accumulator.push(leaf);
            }
            if checkpoint.is_some() {
                status.last_checkpoint = checkpoint;
            }
        }
        // The tickets complete before the index is written: it is only a cache of the
        // segments, written by the index thread (readers wait for it), and rebuilt on open when
        // it lags, so neither its cost nor its failure reaches the appends.
        let segment = self.segment_first;
        let mut items = Vec::with_capacity(batch.len());
        for (pending, (appended, offset)) in batch.into_iter().zip(done) {
            pending.ticket.complete(Ok(appended));
            items.push(IndexItem {
                sequence: appended.sequence,
                segment,
                offset,
                keys: pending.keys,
            });
        }
        self.inner.index.push(items);
    }

    /// Writes `buffer` and syncs it: how long the sync took (`None` when the durability does
    /// not sync).
    fn write_and_sync(&mut self, buffer: &[u8]) -> Result<Option<Duration>, LogError> {
        // The segment's path is only for messages: built when one is written, not per batch.
        let result = self
            .file
            .write_all(buffer)
            .map_err(|e| LogError::io("write", self.path(), e))
            .and_then(|()| match self.durability {
                Durability::Fsync => {
                    let started = Instant::now();
                    self.file
                        .sync_data()
                        .map_err(|e| LogError::io("sync", self.path(), e))?;
                    let took = started.elapsed();
                    if took >= SLOW_SYNC {
                        tracing::warn!(
                            seconds = took.as_secs_f64(), path = %self.path().display(),
                            bytes = buffer.len(),
                            "message-log sync was slow: the exchanges of the batch waited for the disk"
                        );
                    }
                    Ok(Some(took))
                }
                Durability::DangerMemoryOnly => Ok(None),
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
        // Under `DangerMemoryOnly` the finished segment is not synced either: syncing its 64 MiB
        // at once stalled every exchange for ~150 ms, which is not what that mode measures.
        let dir = &self.inner.dir;
        create_names(dir, self.next_sequence)?;
        let prepared = self
            .preparer
            .as_ref()
            .and_then(|preparer| preparer.install(dir, self.next_sequence))
            .and_then(|installed| match installed {
                Ok(file) => Some(file),
                Err(error) => {
                    tracing::warn!(%error, "no preallocated segment; starting an empty one");
                    None
                }
            });
        let mut file = match prepared {
            Some(file) => file,
            None => create_segment(dir, self.next_sequence)?,
        };
        file.seek(SeekFrom::Start(SEGMENT_HEADER))
            .map_err(|e| LogError::io("seek", segment_path(dir, self.next_sequence), e))?;
        self.file = file;
        self.segment_first = self.next_sequence;
        self.segment_len = SEGMENT_HEADER;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use passerelle_pki::merkle::leaf_hash;

    use super::{Durability, LogOptions, MessageLog};
    use crate::accumulator::MerkleAccumulator;
    use crate::checkpoint::Timestamper;
    use crate::error::LogError;
    use crate::hash::Sha256Hash;
    use crate::record::{Body, ExchangeRecord, MessagePart, Side};
    use crate::ticket::Appended;

    fn record(index: u64) -> ExchangeRecord {
        let part = || MessagePart {
            signing_input: format!("part {index}").into_bytes(),
            signature: None,
            certificate_status: None,
            body_digest: Sha256Hash::of(b""),
            body_size: 0,
            body: Body::Absent,
        };
        ExchangeRecord {
            side: Side::Consumer,
            message_id: format!("m{index}"),
            request_id: format!("m{index}"),
            client: "BJ/GOV/MINEDU/schools".parse().unwrap(),
            service: "BJ/GOV/MINSANTE/patients/vaccinations".parse().unwrap(),
            method: "GET".into(),
            path_and_query: "/v1/children/42".into(),
            user_id: None,
            request_received_at_ms: 1_750_000_000_000 + index,
            response_sent_at_ms: 1_750_000_000_005 + index,
            status: 200,
            fault_code: None,
            request: part(),
            response: part(),
            peer_authentication: None,
        }
    }

    /// A log whose first entries were written as content format 1, with their certificates
    /// inline, goes on with format 2 entries; both kinds read back, export (filtered or not) and
    /// verify.
    #[test]
    fn a_log_of_content_format_1_reads_exports_and_verifies_beside_format_2() {
        use std::io::Write as _;

        use crate::evidence::Evidence;
        use crate::export::ExportOptions;
        use crate::record::{EntryBody, PeerAuthentication};
        use crate::verify::{VerifyOptions, verify_archive};

        let with_peer = |index: u64, certificate: &[u8]| {
            let mut record = record(index);
            record.peer_authentication = Some(PeerAuthentication {
                certificate_chain: vec![Evidence::Der(certificate.to_vec())],
                certificate_status: None,
            });
            record
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("segments")).unwrap();
        let mut segment = crate::segment::create_segment(dir.path(), 0).unwrap();
        let mut previous = Sha256Hash::ZERO;
        let mut frames = Vec::new();
        for index in 0..3 {
            // As an earlier version wrote them: format 1, the certificate inline (base64).
            let body = crate::json::to_vec(&EntryBody::Exchange(Box::new(with_peer(
                index,
                b"an old peer certificate",
            ))))
            .unwrap();
            let mut content =
                format!(r#"{{"format":1,"sequence":{index},"previous_hash":"{previous}","entry":"#)
                    .into_bytes();
            content.extend_from_slice(&body);
            content.push(b'}');
            let hash = Sha256Hash::chain(&previous, &Sha256Hash::of(&content));
            crate::frame::encode_frame_with(&mut frames, |payload| {
                payload.extend_from_slice(&hash.0);
                payload.extend_from_slice(&content);
            });
            previous = hash;
        }
        segment.write_all(&frames).unwrap();
        segment.sync_all().unwrap();
        drop(segment);

        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        log.append(with_peer(3, b"a new peer certificate"))
            .wait()
            .unwrap();
        for (sequence, certificate) in [
            (0, &b"an old peer certificate"[..]),
            (3, &b"a new peer certificate"[..]),
        ] {
            let entry = log.entry(sequence).unwrap();
            let peer = entry
                .exchange()
                .unwrap()
                .peer_authentication
                .clone()
                .unwrap();
            assert_eq!(
                peer.certificate_chain,
                [Evidence::Der(certificate.to_vec())]
            );
        }
        for (name, message_id, exchanges) in [
            ("all.pla", None, 4),
            ("m1.pla", Some("m1"), 1),
            ("m3.pla", Some("m3"), 1),
        ] {
            let options = ExportOptions {
                filter: crate::archive::ExportFilter {
                    message_id: message_id.map(str::to_owned),
                    ..Default::default()
                },
                ..Default::default()
            };
            let archive = dir.path().join(name);
            crate::export::export_log(dir.path(), &options, &archive, SystemTime::now()).unwrap();
            let report = verify_archive(&archive, &VerifyOptions::default()).unwrap();
            assert_eq!(report.failure, None, "{name}");
            assert_eq!(report.exchanges, exchanges, "{name}");
        }
    }

    fn append(log: &MessageLog, indexes: std::ops::Range<u64>) -> Vec<Appended> {
        indexes
            .map(|index| log.append(record(index)).wait().unwrap())
            .collect()
    }

    fn root(appended: &[Appended]) -> Sha256Hash {
        let mut accumulator = MerkleAccumulator::new();
        for entry in appended {
            accumulator.push(leaf_hash(&entry.hash.0));
        }
        Sha256Hash(accumulator.root().unwrap())
    }

    #[test]
    fn every_sync_is_timed_and_a_memory_only_log_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        for index in 0..3 {
            log.append(record(index)).wait().unwrap();
        }
        let times = log.health().sync_times;
        assert_eq!(
            times.count, 3,
            "one sync per batch, and each append waited for its own"
        );
        assert!(times.at_most.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(times.at_most[times.at_most.len() - 1] <= times.count);
        drop(log);

        let dir = tempfile::tempdir().unwrap();
        let log =
            MessageLog::open(dir.path(), LogOptions::new(Durability::DangerMemoryOnly)).unwrap();
        log.append(record(0)).wait().unwrap();
        assert_eq!(log.health().sync_times, super::SyncTimes::default());
    }

    #[test]
    fn the_index_keeps_only_the_trees_it_reads_and_drops_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        {
            // An index written by an earlier version, with its time, client and service trees.
            let db = sled::open(dir.path().join("index")).unwrap();
            for name in ["time", "client", "service"] {
                db.open_tree(name).unwrap().insert(b"k", b"v").unwrap();
            }
            db.flush().unwrap();
        }
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        let appended = append(&log, 0..3);
        let names: Vec<Vec<u8>> = log
            .inner
            .db
            .tree_names()
            .into_iter()
            .map(|name| name.to_vec())
            .collect();
        for gone in ["time", "client", "service"] {
            assert!(
                !names.contains(&gone.as_bytes().to_vec()),
                "{gone} is still there"
            );
        }
        assert_eq!(
            log.sequences_of_message("m1").unwrap(),
            vec![appended[1].sequence]
        );
    }

    #[test]
    fn the_index_opens_once_an_earlier_holder_lets_go_and_not_while_it_holds_on() {
        let dir = tempfile::tempdir().unwrap();
        let held = sled::open(dir.path().join("index")).unwrap();
        let error = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync))
            .err()
            .unwrap();
        assert!(matches!(error, LogError::Index { .. }), "{error:?}");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        releaser.join().unwrap();
        append(&log, 0..1);
    }

    #[test]
    fn re_indexing_reads_the_same_keys_as_appending_without_decoding_records() {
        let dir = tempfile::tempdir().unwrap();
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        let mut appended = append(&log, 0..2);
        let checkpoint = log.checkpoint(&Stamp, SystemTime::now()).unwrap().unwrap();
        appended.extend(append(&log, 2..3));
        let indexed = log.inner.indexed().unwrap();
        let mut sequences: Vec<u64> = appended.iter().map(|a| a.sequence).collect();
        sequences.push(checkpoint.entry_sequence);
        for sequence in sequences {
            let raw = indexed.read_raw(sequence).unwrap();
            let (read_sequence, read) = raw
                .view()
                .and_then(crate::index::IndexKeys::from_view)
                .unwrap();
            let entry = raw.decode().unwrap();
            let decoded = crate::index::IndexKeys::of(&entry.entry);
            assert_eq!(read_sequence, entry.sequence);
            assert_eq!(read.message_id(), decoded.message_id());
            assert_eq!(read.time_ms(), decoded.time_ms());
            assert_eq!(
                read.checkpoint_summary(sequence),
                decoded.checkpoint_summary(sequence)
            );
        }
        assert_eq!(
            crate::segment::RawEntry {
                hash: Sha256Hash::ZERO,
                content: format!(
                    r#"{{"sequence":1,"previous_hash":"{}","entry":{{"type":"exchange"}}}}"#,
                    Sha256Hash::ZERO
                )
                .into_bytes(),
            }
            .view()
            .and_then(crate::index::IndexKeys::from_view)
            .err(),
            Some("exchange entry without request_received_at_ms".to_owned())
        );
    }

    /// The index writes a segment's metadata when the segment ends, with the entries the
    /// `sequence` tree records, and on close; after a crash, a rebuild from the last recorded
    /// entry makes it exact again.
    #[test]
    fn segment_metadata_is_exact_at_segment_ends_on_close_and_after_a_crash() {
        use crate::index::SegmentMeta;
        let dir = tempfile::tempdir().unwrap();
        let options = || {
            let mut options = LogOptions::new(Durability::Fsync);
            options.segment_size_limit = 24 << 10;
            options
        };
        // Every segment's exact metadata, from its entries, and what the index holds for it.
        let check = |log: &MessageLog, upto_last: bool| {
            let indexed = log.inner.indexed().unwrap();
            let segments = crate::segment::list_segments(&log.inner.dir).unwrap();
            assert!(segments.len() >= 3, "{}", segments.len());
            let end = log.health().next_sequence;
            for (position, (first, _)) in segments.iter().enumerate() {
                let next = segments.get(position + 1).map_or(end, |(next, _)| *next);
                let newest = (*first..next)
                    .map(|sequence| {
                        let raw = indexed.read_raw(sequence).unwrap();
                        let (_, keys) = raw
                            .view()
                            .and_then(crate::index::IndexKeys::from_view)
                            .unwrap();
                        keys.time_ms()
                    })
                    .max()
                    .unwrap();
                let exact = SegmentMeta {
                    last_sequence: next - 1,
                    newest_time_ms: newest,
                };
                let held = indexed.segment_meta(*first).unwrap().unwrap();
                if upto_last || position + 1 < segments.len() {
                    assert_eq!(held, exact, "segment {first}");
                } else {
                    // The segment being written: behind, at most to its last recorded entry.
                    assert!(held.last_sequence <= exact.last_sequence);
                    assert!(
                        held.last_sequence + crate::index::SEQUENCE_STRIDE > exact.last_sequence
                    );
                }
            }
        };
        let log = MessageLog::open(dir.path(), options()).unwrap();
        append(&log, 0..3 * crate::index::SEQUENCE_STRIDE + 7);
        check(&log, false);
        drop(log);
        let log = MessageLog::open(dir.path(), options()).unwrap();
        check(&log, true);
        append(&log, 200..220);
        drop(log);

        // A crash after the last recorded entry of the last segment: the tree holds that
        // segment's metadata up to that entry only.
        let db = sled::open(dir.path().join("index")).unwrap();
        let (last_first, _) = crate::segment::list_segments(dir.path())
            .unwrap()
            .pop()
            .unwrap();
        let (recorded, _) = db.open_tree("sequence").unwrap().last().unwrap().unwrap();
        let recorded = crate::index::be_u64(&recorded).unwrap();
        assert!(recorded >= last_first);
        let stale = SegmentMeta {
            last_sequence: recorded,
            newest_time_ms: 0,
        };
        db.open_tree("segment")
            .unwrap()
            .insert(
                last_first.to_be_bytes(),
                serde_json::to_vec(&stale).unwrap(),
            )
            .unwrap();
        db.flush().unwrap();
        drop(db);
        let log = MessageLog::open(dir.path(), options()).unwrap();
        check(&log, false);
        let newest = log
            .inner
            .indexed()
            .unwrap()
            .segment_meta(last_first)
            .unwrap()
            .unwrap();
        assert!(newest.newest_time_ms > 0 && newest.last_sequence >= recorded);
        drop(log);
        let log = MessageLog::open(dir.path(), options()).unwrap();
        check(&log, true);
    }

    #[test]
    fn every_entry_is_found_although_the_sequence_index_records_only_some() {
        let dir = tempfile::tempdir().unwrap();
        let options = || {
            let mut options = LogOptions::new(Durability::Fsync);
            // Segments of a few dozen entries, so that look-ups cross segment starts too.
            options.segment_size_limit = 24 << 10;
            options
        };
        let count = 3 * crate::index::SEQUENCE_STRIDE + 7;
        let check = |log: &MessageLog, appended: &[Appended]| {
            for (index, appended) in appended.iter().enumerate() {
                let entry = log.entry(appended.sequence).unwrap();
                assert_eq!(entry.sequence, appended.sequence);
                assert_eq!(entry.message_id(), Some(format!("m{index}").as_str()));
                assert_eq!(
                    log.sequences_of_message(&format!("m{index}")).unwrap(),
                    vec![appended.sequence]
                );
            }
            let next = appended.last().unwrap().sequence + 1;
            assert!(matches!(log.entry(next), Err(LogError::Missing { .. })));
        };
        let appended = {
            let log = MessageLog::open(dir.path(), options()).unwrap();
            let appended = append(&log, 0..count);
            check(&log, &appended);
            let keys = log.inner.trees.sequence.len() as u64;
            let segments = crate::segment::list_segments(dir.path()).unwrap().len() as u64;
            assert!(segments > 2, "only {segments} segments");
            assert!(
                keys <= count / crate::index::SEQUENCE_STRIDE + segments + 1,
                "{keys} recorded sequences for {count} entries in {segments} segments"
            );
            appended
        };
        // After a reopen (the index is rebuilt from the last recorded entry on).
        let log = MessageLog::open(dir.path(), options()).unwrap();
        check(&log, &appended);
    }

    #[test]
    fn message_ids_indexed_by_an_earlier_version_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
            append(&log, 0..40);
        }
        // The index as an earlier version left it: ids in the `message` tree
        // (id ‖ 0 ‖ sequence), no runs. Re-indexing on open starts at the last recorded entry
        // (32), so the ids before it are found only in that tree.
        {
            let db =
                super::open_index(&sled::Config::new().path(dir.path().join("index"))).unwrap();
            db.drop_tree("message-runs").unwrap();
            let legacy = db.open_tree("message").unwrap();
            for index in 0..40u64 {
                let mut key = format!("m{index}").into_bytes();
                key.push(0);
                key.extend_from_slice(&index.to_be_bytes());
                legacy.insert(key, &[][..]).unwrap();
            }
            db.flush().unwrap();
        }
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        append(&log, 40..45);
        for index in 0..45 {
            assert_eq!(
                log.sequences_of_message(&format!("m{index}")).unwrap(),
                vec![index]
            );
        }
        drop(log);
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        for index in 0..45 {
            assert_eq!(
                log.sequences_of_message(&format!("m{index}")).unwrap(),
                vec![index]
            );
        }
    }

    #[test]
    fn a_message_id_of_a_cut_tail_does_not_find_the_entry_that_reused_its_sequence() {
        let dir = tempfile::tempdir().unwrap();
        {
            // Not preallocated, so that the last frame ends the file.
            let mut options = LogOptions::new(Durability::Fsync);
            options.preallocate = false;
            let log = MessageLog::open(dir.path(), options).unwrap();
            append(&log, 0..3);
        }
        // Tear the last frame (m2, sequence 2), as a crash in the middle of a write would.
        let segment = std::fs::read_dir(dir.path().join("segments"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap();
        let length = file.metadata().unwrap().len();
        file.set_len(length - 1).unwrap();
        drop(file);

        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        // m5 takes sequence 2, which the index still lists under m2.
        let reused = log.append(record(5)).wait().unwrap();
        assert_eq!(reused.sequence, 2);
        assert_eq!(log.sequences_of_message("m2").unwrap(), Vec::<u64>::new());
        assert_eq!(log.sequences_of_message("m5").unwrap(), vec![2]);
        assert_eq!(log.sequences_of_message("m1").unwrap(), vec![1]);
    }

    struct Stamp;

    impl Timestamper for Stamp {
        fn timestamp(&self, imprint: &[u8; 32]) -> Result<Vec<u8>, String> {
            Ok(imprint.to_vec())
        }
    }

    #[test]
    fn the_writer_accumulates_the_span_the_next_checkpoint_covers() {
        let dir = tempfile::tempdir().unwrap();
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        let first = append(&log, 0..5);
        let expected = root(&first);
        assert_eq!(
            log.inner.lock_status().span.root_of(0, 5),
            Some(expected),
            "a fresh log's span starts at 0"
        );
        let summary = log.checkpoint(&Stamp, SystemTime::now()).unwrap().unwrap();
        assert_eq!((summary.root, summary.entry_sequence), (expected, 5));
        let mut second = vec![Appended {
            sequence: 5,
            hash: log.health().last_hash,
        }];
        second.extend(append(&log, 6..9));
        let status = log.inner.lock_status();
        assert_eq!(status.span.root_of(5, 9), Some(root(&second)));
        assert_eq!(status.span.root_of(4, 9), None, "a span is only its own");
        assert_eq!(status.last_checkpoint, Some(summary));
    }

    #[test]
    fn appends_complete_and_index_reads_fail_at_once_while_the_index_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
            append(&log, 0..3);
            log.checkpoint(&Stamp, SystemTime::now()).unwrap().unwrap();
            // What the index thread does when sled refuses a write.
            log.inner.index.stop("simulated index write failure".into());
            let later = append(&log, 4..7);
            assert_eq!(later.last().map(|a| a.sequence), Some(6));
            assert!(
                log.health().writable,
                "an index failure is not a log failure"
            );
            assert_eq!(
                log.health().index_problem.as_deref(),
                Some("simulated index write failure")
            );
            let error = log.sequences_of_message("m4").unwrap_err();
            assert!(
                matches!(&error, LogError::Index { message, .. }
                    if message.contains("simulated index write failure")),
                "{error}"
            );
            assert!(matches!(log.entry(6), Err(LogError::Index { .. })));
            // Entries indexed before the failure stay readable.
            assert_eq!(log.entry(1).unwrap().message_id(), Some("m1"));
            // The checkpoint's span is in memory: it needs no index.
            let summary = log.checkpoint(&Stamp, SystemTime::now()).unwrap().unwrap();
            assert_eq!((summary.first_sequence, summary.last_sequence), (3, 6));
        }
        let log = MessageLog::open(dir.path(), LogOptions::new(Durability::Fsync)).unwrap();
        assert_eq!(log.sequences_of_message("m4").unwrap(), vec![4]);
        assert_eq!(log.entry(6).unwrap().message_id(), Some("m6"));
        assert_eq!(log.health().last_checkpoint.unwrap().entry_sequence, 7);
        assert_eq!(log.health().index_problem, None);
    }
}
