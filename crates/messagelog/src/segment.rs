//! Segment files: the append-only evidence itself.
//!
//! Layout (version 1), all integers little-endian:
//! - header, 16 bytes: magic `PSLMLOG\0` ([`SEGMENT_MAGIC`]), `u32` version, `u32` zero;
//! - then entries, each one frame `[u32 length][u32 CRC-32C][payload]` whose payload is the
//!   entry's 32-byte chain hash followed by its content bytes (see [`crate::Entry`]);
//! - then, in a preallocated segment, zero bytes up to its allocated size. The entries end at the
//!   end of the file or where a frame header would be eight zero bytes ([`END_OF_FRAMES`]).
//!
//! Preallocation: a log synced on every batch writes into segments whose space was zero-filled
//! and synced beforehand, so that `fdatasync` flushes the new bytes only, not the file's size and
//! block map as well. The next segment is prepared by a background thread while the current one
//! fills; see [`Preparer`].
//!
//! A segment is named after the sequence number of its first entry (`00000000000000000042.seg`).

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::LogError;
use crate::frame::{
    END_OF_FRAMES, FRAME_HEADER, FrameError, Framed, Streamed, read_segment_frame,
    stream_segment_frame,
};
use crate::hash::Sha256Hash;
use crate::record::Entry;
use passerelle_pki::io::read_full;

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PSLMLOG\0";
/// The segment format version this crate writes and reads.
pub const SEGMENT_VERSION: u32 = 1;
pub(crate) const SEGMENT_HEADER: u64 = 16;

pub(crate) fn segments_dir(dir: &Path) -> PathBuf {
    dir.join("segments")
}

pub(crate) fn segment_path(dir: &Path, first_sequence: u64) -> PathBuf {
    segments_dir(dir).join(format!("{first_sequence:020}.seg"))
}

/// The segments of a log, by first sequence, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let path = segments_dir(dir);
    let mut segments = Vec::new();
    let entries = std::fs::read_dir(&path).map_err(|e| LogError::io("list", &path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list", &path, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|name| name.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            segments.push((first, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

fn segment_header() -> Vec<u8> {
    let mut header = Vec::with_capacity(SEGMENT_HEADER as usize);
    header.extend_from_slice(&SEGMENT_MAGIC);
    header.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header
}

/// Creates an empty segment (header only) and makes its directory entry durable.
pub(crate) fn create_segment(dir: &Path, first_sequence: u64) -> Result<File, LogError> {
    let path = segment_path(dir, first_sequence);
    let mut file = OpenOptions::new()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("create", &path, e))?;
    file.write_all(&segment_header())
        .map_err(|e| LogError::io("write", &path, e))?;
    file.sync_all()
        .map_err(|e| LogError::io("sync", &path, e))?;
    sync_dir(&segments_dir(dir))?;
    Ok(file)
}

/// Bytes zero-filled between two syncs: the dirty pages of a preallocation never pile up in
/// front of the log's own syncs.
const ZERO_FILL_CHUNK: u64 = 1 << 18;

/// Where the next segment is prepared: in the log's directory, not among the segments.
pub(crate) fn prepared_path(dir: &Path) -> PathBuf {
    dir.join("next-segment.prepared")
}

/// Writes zeros into `file` from `from` up to `to`, syncing each chunk. Stops early, with `Ok`,
/// once `stop` is set.
pub(crate) fn zero_fill(
    file: &mut File,
    path: &Path,
    from: u64,
    to: u64,
    stop: &AtomicBool,
) -> Result<(), LogError> {
    let zeros = vec![0u8; ZERO_FILL_CHUNK as usize];
    file.seek(SeekFrom::Start(from))
        .map_err(|e| LogError::io("seek", path, e))?;
    let mut at = from;
    while at < to && !stop.load(Ordering::Relaxed) {
        let chunk = (to - at).min(ZERO_FILL_CHUNK);
        file.write_all(&zeros[..chunk as usize])
            .map_err(|e| LogError::io("preallocate", path, e))?;
        file.sync_data()
            .map_err(|e| LogError::io("sync", path, e))?;
        at += chunk;
    }
    Ok(())
}

/// Makes the prepared segment the segment starting at `first_sequence`: renamed into place, its
/// directory entry made durable, then opened for writing.
fn install_prepared(dir: &Path, first_sequence: u64) -> Result<File, LogError> {
    let prepared = prepared_path(dir);
    let path = segment_path(dir, first_sequence);
    if path.exists() {
        return Err(LogError::io(
            "install the prepared segment as",
            &path,
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ));
    }
    std::fs::rename(&prepared, &path).map_err(|e| LogError::io("rename", &prepared, e))?;
    sync_dir(&segments_dir(dir))?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("open", &path, e))
}

/// Prepares the next segment on a thread of its own, one at a time: a header, then zeros up to
/// the segment size, synced. The writer installs it when it rolls over, and only then does the
/// thread start the next one (at the same path). A writer that finds none ready, or a failed
/// one, creates an empty segment, as a log without preallocation does.
pub(crate) struct Preparer {
    /// The outcome of each preparation, handed over when the writer asks.
    ready: Option<Receiver<Result<(), LogError>>>,
    /// Told once the prepared file has been moved away (or given up on).
    installed: Option<SyncSender<()>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Preparer {
    /// Starts preparing segments of `size` bytes for the log in `dir`.
    pub(crate) fn start(dir: &Path, size: u64) -> Result<Self, LogError> {
        let (hand_over, ready) = mpsc::sync_channel(0);
        let (installed, wait_installed) = mpsc::sync_channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let log_dir = dir.to_owned();
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("messagelog-prealloc".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let prepared = prepare_segment(&log_dir, size, &stop);
                        if stop.load(Ordering::Relaxed)
                            || hand_over.send(prepared).is_err()
                            || wait_installed.recv().is_err()
                        {
                            break;
                        }
                    }
                    let _ = std::fs::remove_file(prepared_path(&log_dir));
                })
                .map_err(|e| LogError::io("start preallocation thread for", dir, e))?
        };
        Ok(Preparer {
            ready: Some(ready),
            installed: Some(installed),
            stop,
            thread: Some(thread),
        })
    }

    /// Installs the prepared segment as the segment starting at `first_sequence`, if one is
    /// finished: `None` when none is ready.
    pub(crate) fn install(
        &self,
        dir: &Path,
        first_sequence: u64,
    ) -> Option<Result<File, LogError>> {
        let ready = self.ready.as_ref()?.try_recv().ok()?;
        let installed = ready.and_then(|()| install_prepared(dir, first_sequence));
        if let Some(sender) = &self.installed {
            let _ = sender.send(());
        }
        Some(installed)
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblocks the thread, waiting to hand over a segment or for its installation.
        self.ready.take();
        self.installed.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn prepare_segment(dir: &Path, size: u64, stop: &AtomicBool) -> Result<(), LogError> {
    let path = prepared_path(dir);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io("create", &path, e))?;
    file.write_all(&segment_header())
        .map_err(|e| LogError::io("write", &path, e))?;
    zero_fill(&mut file, &path, SEGMENT_HEADER, size, stop)
}

pub(crate) fn sync_dir(path: &Path) -> Result<(), LogError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| LogError::io("sync directory", path, e))
}

/// An entry as stored: its chain hash and its exact content bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub(crate) hash: Sha256Hash,
    pub(crate) content: Vec<u8>,
}

/// The chain fields of an entry, parsed without decoding the record.
#[derive(Debug, Deserialize)]
pub(crate) struct EntryHead {
    pub(crate) sequence: u64,
    pub(crate) previous_hash: Sha256Hash,
}

/// The fields of an entry that export and the index need, parsed without decoding the record:
/// bodies, certificates and signatures are skipped unparsed (and unallocated).
#[derive(Debug, Deserialize)]
pub(crate) struct EntryView {
    pub(crate) sequence: u64,
    pub(crate) previous_hash: Sha256Hash,
    pub(crate) entry: BodyView,
}

/// The body fields of an [`EntryView`]: those of an exchange or of a checkpoint, by `kind`.
#[derive(Debug, Deserialize)]
pub(crate) struct BodyView {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) message_id: Option<String>,
    pub(crate) request_received_at_ms: Option<u64>,
    pub(crate) first_sequence: Option<u64>,
    pub(crate) last_sequence: Option<u64>,
    pub(crate) root: Option<Sha256Hash>,
    pub(crate) created_at_ms: Option<u64>,
}

impl EntryView {
    /// Request time of an exchange, creation time of a checkpoint.
    pub(crate) fn time_ms(&self) -> u64 {
        self.entry
            .request_received_at_ms
            .or(self.entry.created_at_ms)
            .unwrap_or(0)
    }

    /// The span `(first, last)` of a checkpoint entry.
    pub(crate) fn span(&self) -> Option<(u64, u64)> {
        if self.entry.kind != "checkpoint" {
            return None;
        }
        Some((self.entry.first_sequence?, self.entry.last_sequence?))
    }
}

impl RawEntry {
    pub(crate) fn from_payload(payload: &[u8]) -> Option<Self> {
        let (hash, content) = payload.split_at_checked(32)?;
        Some(RawEntry {
            hash: Sha256Hash::from_slice(hash)?,
            content: content.to_vec(),
        })
    }

    pub(crate) fn head(&self) -> Result<EntryHead, String> {
        serde_json::from_slice(&self.content).map_err(|e| format!("content is not an entry: {e}"))
    }

    pub(crate) fn view(&self) -> Result<EntryView, String> {
        serde_json::from_slice(&self.content).map_err(|e| format!("content is not an entry: {e}"))
    }

    pub(crate) fn decode(&self) -> Result<Entry, String> {
        serde_json::from_slice(&self.content).map_err(|e| format!("content is not an entry: {e}"))
    }

    /// Whether the stored hash is the chain hash of the content after `previous`.
    pub(crate) fn hash_holds(&self, previous: &Sha256Hash) -> bool {
        Sha256Hash::chain(previous, &Sha256Hash::of(&self.content)) == self.hash
    }
}

/// Reads the entries of one segment in order.
pub(crate) struct SegmentReader {
    path: PathBuf,
    reader: BufReader<File>,
    offset: u64,
    payload: Vec<u8>,
}

/// An entry checked where it lies, without its content: see [`SegmentReader::next_checked`].
#[derive(Debug)]
pub(crate) struct CheckedEntry<H = EntryHead> {
    /// The chain hash stored in front of the content.
    pub(crate) hash: Sha256Hash,
    /// SHA-256 of the content; `None` when it was not computed (a view for the index).
    pub(crate) content_digest: Option<Sha256Hash>,
    /// The content's fields that `H` reads ([`EntryHead`] or [`EntryView`]), or why the content
    /// is not an entry.
    pub(crate) head: Result<H, String>,
    /// Bytes of the frame's payload.
    pub(crate) payload_length: u32,
}

impl<H> CheckedEntry<H> {
    /// Whether the stored hash is the chain hash of the content after `previous` (never, when
    /// the content's digest was not computed).
    pub(crate) fn hash_holds(&self, previous: &Sha256Hash) -> bool {
        self.content_digest
            .is_some_and(|digest| Sha256Hash::chain(previous, &digest) == self.hash)
    }
}

/// What reading the next frame of a segment gave.
pub(crate) enum SegmentItem<E = RawEntry> {
    Entry {
        offset: u64,
        entry: E,
    },
    End,
    /// The bytes from `offset` on are not a whole valid frame.
    Damaged {
        offset: u64,
        reason: String,
    },
}

impl SegmentReader {
    pub(crate) fn open(path: &Path) -> Result<Self, LogError> {
        Self::open_at(path, SEGMENT_HEADER)
    }

    /// Opens a segment and positions the reader at `offset` (a frame boundary).
    pub(crate) fn open_at(path: &Path, offset: u64) -> Result<Self, LogError> {
        let mut file = File::open(path).map_err(|e| LogError::io("open", path, e))?;
        let mut header = [0u8; SEGMENT_HEADER as usize];
        file.read_exact(&mut header)
            .map_err(|e| LogError::BadSegment {
                path: path.to_owned(),
                reason: format!("short header: {e}"),
            })?;
        if header[..8] != SEGMENT_MAGIC {
            return Err(LogError::BadSegment {
                path: path.to_owned(),
                reason: "bad magic".into(),
            });
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != SEGMENT_VERSION {
            return Err(LogError::BadSegment {
                path: path.to_owned(),
                reason: format!("unsupported version {version}"),
            });
        }
        let offset = offset.max(SEGMENT_HEADER);
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| LogError::io("seek", path, e))?;
        Ok(SegmentReader {
            path: path.to_owned(),
            reader: BufReader::with_capacity(256 * 1024, file),
            offset,
            payload: Vec::new(),
        })
    }

    pub(crate) fn next_item(&mut self) -> Result<SegmentItem, LogError> {
        let offset = self.offset;
        match read_segment_frame(&mut self.reader, &mut self.payload) {
            Ok(Framed::EndOfFile) => Ok(SegmentItem::End),
            Ok(Framed::EndOfFrames) => self.unread_end().map(|()| SegmentItem::End),
            Ok(Framed::Read) => match RawEntry::from_payload(&self.payload) {
                Some(entry) => {
                    self.offset += FRAME_HEADER + self.payload.len() as u64;
                    Ok(SegmentItem::Entry { offset, entry })
                }
                None => Ok(SegmentItem::Damaged {
                    offset,
                    reason: "payload shorter than a hash".into(),
                }),
            },
            Err(FrameError::Damaged(reason)) => Ok(SegmentItem::Damaged { offset, reason }),
            Err(FrameError::Io(error)) => Err(LogError::io("read", &self.path, error)),
        }
    }

    /// The next entry, checked as it is read through a bounded buffer: the frame's length and
    /// checksum, the digest of the content and the fields `H` reads from it (the whole content
    /// must parse as an entry). An entry larger than
    /// [`WHOLE_LIMIT`](crate::frame::WHOLE_LIMIT) is never held whole, unlike
    /// with [`Self::next_item`]. A failed read is an error, never taken for damage.
    pub(crate) fn next_checked<H: DeserializeOwned>(
        &mut self,
    ) -> Result<SegmentItem<CheckedEntry<H>>, LogError> {
        self.next_streamed(true)
    }

    /// [`Self::next_checked`], computing the content's digest only if `digest`.
    fn next_streamed<H: DeserializeOwned>(
        &mut self,
        digest: bool,
    ) -> Result<SegmentItem<CheckedEntry<H>>, LogError> {
        let offset = self.offset;
        let mut content = digest.then(passerelle_pki::digest::Sha256::new);
        let digest_content = |at: u64, chunk: &[u8]| {
            if let Some(content) = &mut content {
                let skip = 32u64.saturating_sub(at).min(chunk.len() as u64) as usize;
                content.update(&chunk[skip..]);
            }
        };
        let mut payload =
            match stream_segment_frame(&mut self.reader, &mut self.payload, digest_content) {
                Ok(Streamed::Frame(payload)) => payload,
                Ok(Streamed::EndOfFile) => return Ok(SegmentItem::End),
                Ok(Streamed::EndOfFrames) => {
                    return self.unread_end().map(|()| SegmentItem::End);
                }
                Err(FrameError::Damaged(reason)) => {
                    return Ok(SegmentItem::Damaged { offset, reason });
                }
                Err(FrameError::Io(error)) => return Err(LogError::io("read", &self.path, error)),
            };
        let not_an_entry = |e: serde_json::Error| format!("content is not an entry: {e}");
        let mut hash = [0u8; 32];
        let (hash_read, head) = match payload.whole() {
            Ok(Some(whole)) => {
                let (stored, content) = whole.split_at(whole.len().min(32));
                hash[..stored.len()].copy_from_slice(stored);
                let head = serde_json::from_slice::<H>(content).map_err(not_an_entry);
                (Ok(stored.len()), head)
            }
            Ok(None) => (
                read_full(&mut payload, &mut hash),
                serde_json::from_reader::<_, H>(&mut payload).map_err(not_an_entry),
            ),
            Err(error) => (Err(error), Err(String::new())),
        };
        let payload_length = match payload.finish() {
            Ok(length) => length,
            Err(FrameError::Damaged(reason)) => return Ok(SegmentItem::Damaged { offset, reason }),
            Err(FrameError::Io(error)) => return Err(LogError::io("read", &self.path, error)),
        };
        if hash_read.map_err(|e| LogError::io("read", &self.path, e))? < hash.len() {
            return Ok(SegmentItem::Damaged {
                offset,
                reason: "payload shorter than a hash".into(),
            });
        }
        self.offset += FRAME_HEADER + u64::from(payload_length);
        Ok(SegmentItem::Entry {
            offset,
            entry: CheckedEntry {
                hash: Sha256Hash(hash),
                content_digest: content.map(|content| Sha256Hash(content.finish())),
                head,
                payload_length,
            },
        })
    }

    /// Skips one frame without reading or checking its payload: its offset and payload length,
    /// or `None` at the end of the file. The length is as stored (a torn frame's may run past the
    /// end of the file).
    pub(crate) fn skip_frame(&mut self) -> Result<Option<(u64, u32)>, LogError> {
        let offset = self.offset;
        let mut header = [0u8; FRAME_HEADER as usize];
        let filled = read_full(&mut self.reader, &mut header)
            .map_err(|e| LogError::io("read", &self.path, e))?;
        if filled == 0 {
            return Ok(None);
        }
        if filled < header.len() {
            return Err(self.damaged(offset, format!("short frame header ({filled} bytes)")));
        }
        if header == END_OF_FRAMES {
            self.unread_end()?;
            return Ok(None);
        }
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        self.reader
            .seek_relative(i64::from(length))
            .map_err(|e| LogError::io("seek", &self.path, e))?;
        self.offset += FRAME_HEADER + u64::from(length);
        Ok(Some((offset, length)))
    }

    /// Steps back over the [`END_OF_FRAMES`] just read and drops what is buffered, so that the
    /// reader stays at the end and reads the next frame there once the writer has written one.
    fn unread_end(&mut self) -> Result<(), LogError> {
        self.reader
            .seek(SeekFrom::Current(-(FRAME_HEADER as i64)))
            .map(|_| ())
            .map_err(|e| LogError::io("seek", &self.path, e))
    }

    /// Skips `count` frames, on the way to entry `sequence` (for the error when the segment
    /// ends first).
    fn skip_frames(&mut self, count: u64, sequence: u64) -> Result<(), LogError> {
        for _ in 0..count {
            if self.skip_frame()?.is_none() {
                return Err(LogError::Missing {
                    sequence,
                    reason: "past the end of its segment".into(),
                });
            }
        }
        Ok(())
    }

    /// The offset and first `length` bytes of the next frame's payload, skipping the rest
    /// unread and unchecked; `None` at the end of the file. Only for frames known to be complete.
    pub(crate) fn next_prefix(
        &mut self,
        length: usize,
    ) -> Result<Option<(u64, Vec<u8>)>, LogError> {
        let offset = self.offset;
        let mut header = [0u8; FRAME_HEADER as usize];
        let filled = read_full(&mut self.reader, &mut header)
            .map_err(|e| LogError::io("read", &self.path, e))?;
        if filled == 0 {
            return Ok(None);
        }
        if header == END_OF_FRAMES {
            self.unread_end()?;
            return Ok(None);
        }
        let frame_length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let mut prefix = vec![0u8; length.min(frame_length as usize)];
        let read = read_full(&mut self.reader, &mut prefix)
            .map_err(|e| LogError::io("read", &self.path, e))?;
        if filled < header.len() || read < prefix.len() {
            return Err(self.damaged(offset, "the frame ends early".into()));
        }
        self.reader
            .seek_relative(i64::from(frame_length) - prefix.len() as i64)
            .map_err(|e| LogError::io("seek", &self.path, e))?;
        self.offset += FRAME_HEADER + u64::from(frame_length);
        Ok(Some((offset, prefix)))
    }

    /// The next entry; a damaged frame is an error here (only the tail repair tolerates it).
    pub(crate) fn next_entry(&mut self) -> Result<Option<(u64, RawEntry)>, LogError> {
        match self.next_item()? {
            SegmentItem::Entry { offset, entry } => Ok(Some((offset, entry))),
            SegmentItem::End => Ok(None),
            SegmentItem::Damaged { offset, reason } => Err(self.damaged(offset, reason)),
        }
    }

    /// The next entry's [`EntryView`], read through a bounded buffer ([`Self::next_checked`],
    /// without the content's digest); a damaged frame or content is an error here.
    pub(crate) fn next_view(&mut self) -> Result<Option<(u64, EntryView)>, LogError> {
        match self.next_streamed::<EntryView>(false)? {
            SegmentItem::Entry { offset, entry } => match entry.head {
                Ok(view) => Ok(Some((offset, view))),
                Err(reason) => Err(self.damaged(offset, reason)),
            },
            SegmentItem::End => Ok(None),
            SegmentItem::Damaged { offset, reason } => Err(self.damaged(offset, reason)),
        }
    }

    /// The next entry's offset and stored chain hash, read from the frame's first 32 bytes; the
    /// rest is skipped unread and unchecked (only for entries known to be complete). Reading the
    /// hashes of entries with large bodies then costs neither their reading nor their memory.
    pub(crate) fn next_hash(&mut self) -> Result<Option<(u64, Sha256Hash)>, LogError> {
        let Some((offset, prefix)) = self.next_prefix(32)? else {
            return Ok(None);
        };
        let hash = Sha256Hash::from_slice(&prefix)
            .ok_or_else(|| self.damaged(offset, "payload shorter than a hash".into()))?;
        Ok(Some((offset, hash)))
    }

    fn damaged(&self, offset: u64, reason: String) -> LogError {
        LogError::DamagedEntry {
            sequence: u64::MAX,
            path: self.path.clone(),
            offset,
            reason,
        }
    }
}

/// Reads every entry of a log from `start` on, across segments, in sequence order.
pub(crate) struct LogCursor {
    segments: Vec<(u64, PathBuf)>,
    index: usize,
    reader: Option<SegmentReader>,
}

impl LogCursor {
    /// A cursor at the segment `segment_first` and byte `offset` inside it.
    pub(crate) fn at(dir: &Path, segment_first: u64, offset: u64) -> Result<Self, LogError> {
        let segments = list_segments(dir)?;
        let index = segments
            .iter()
            .position(|(first, _)| *first == segment_first)
            .ok_or_else(|| LogError::Missing {
                sequence: segment_first,
                reason: "its segment does not exist (removed by retention?)".into(),
            })?;
        let reader = SegmentReader::open_at(&segments[index].1, offset)?;
        Ok(LogCursor {
            segments,
            index,
            reader: Some(reader),
        })
    }

    /// A cursor at entry `sequence`, found from the segment names alone (no index): the segment
    /// whose first sequence is the largest not above it, then frames skipped by their lengths.
    pub(crate) fn at_sequence(dir: &Path, sequence: u64) -> Result<Self, LogError> {
        let segments = list_segments(dir)?;
        let missing = |reason: &str| LogError::Missing {
            sequence,
            reason: reason.to_owned(),
        };
        let index = segments
            .iter()
            .rposition(|(first, _)| *first <= sequence)
            .ok_or_else(|| missing("before the first segment (removed by retention?)"))?;
        let (first, path) = &segments[index];
        let mut reader = SegmentReader::open(path)?;
        reader.skip_frames(sequence - first, sequence)?;
        Ok(LogCursor {
            segments,
            index,
            reader: Some(reader),
        })
    }

    /// A cursor at entry `sequence`, found from a known entry before it in the same segment:
    /// entry `known` at byte `offset` of segment `segment_first`, then frames skipped by their
    /// lengths.
    pub(crate) fn at_sequence_after(
        dir: &Path,
        segment_first: u64,
        offset: u64,
        known: u64,
        sequence: u64,
    ) -> Result<Self, LogError> {
        let mut cursor = LogCursor::at(dir, segment_first, offset)?;
        if let Some(reader) = cursor.reader.as_mut() {
            reader.skip_frames(sequence.saturating_sub(known), sequence)?;
        }
        Ok(cursor)
    }

    /// Like [`LogCursor::next_entry`], but only the first `length` bytes of the payload (hash
    /// then content), unchecked: for looking ahead cheaply.
    pub(crate) fn next_prefix(
        &mut self,
        length: usize,
    ) -> Result<Option<(u64, u64, Vec<u8>)>, LogError> {
        self.next_with(|reader| reader.next_prefix(length))
    }

    pub(crate) fn next_entry(&mut self) -> Result<Option<(u64, u64, RawEntry)>, LogError> {
        self.next_with(SegmentReader::next_entry)
    }

    /// The next entry's segment, offset and stored chain hash ([`SegmentReader::next_hash`]).
    pub(crate) fn next_hash(&mut self) -> Result<Option<(u64, u64, Sha256Hash)>, LogError> {
        self.next_with(SegmentReader::next_hash)
    }

    /// [`SegmentReader::next_view`] across segments: `(segment, offset, view)`.
    pub(crate) fn next_view(&mut self) -> Result<Option<(u64, u64, EntryView)>, LogError> {
        self.next_with(SegmentReader::next_view)
    }

    /// The next item `read` takes from a segment, moving on to the next segment when one ends.
    fn next_with<T>(
        &mut self,
        mut read: impl FnMut(&mut SegmentReader) -> Result<Option<(u64, T)>, LogError>,
    ) -> Result<Option<(u64, u64, T)>, LogError> {
        loop {
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            if let Some((offset, item)) = read(reader)? {
                return Ok(Some((self.segments[self.index].0, offset, item)));
            }
            self.index += 1;
            self.reader = match self.segments.get(self.index) {
                Some((_, path)) => Some(SegmentReader::open(path)?),
                None => None,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};
    use std::sync::atomic::AtomicBool;

    use super::{
        SEGMENT_HEADER, SegmentItem, SegmentReader, create_segment, segment_path, zero_fill,
    };
    use crate::frame::write_frame;

    #[test]
    fn a_reader_at_the_zeros_reads_on_once_a_frame_is_written_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("segments")).unwrap();
        let mut file = create_segment(dir.path(), 0).unwrap();
        let path = segment_path(dir.path(), 0);
        zero_fill(
            &mut file,
            &path,
            SEGMENT_HEADER,
            4096,
            &AtomicBool::new(false),
        )
        .unwrap();
        let first = [1u8; 40];
        let second = [2u8; 48];
        file.seek(SeekFrom::Start(SEGMENT_HEADER)).unwrap();
        write_frame(&mut file, &first).unwrap();

        let mut items = SegmentReader::open(&path).unwrap();
        let mut skips = SegmentReader::open(&path).unwrap();
        let mut prefixes = SegmentReader::open(&path).unwrap();
        assert!(matches!(
            items.next_item().unwrap(),
            SegmentItem::Entry { .. }
        ));
        assert!(matches!(items.next_item().unwrap(), SegmentItem::End));
        assert_eq!(skips.skip_frame().unwrap(), Some((SEGMENT_HEADER, 40)));
        assert_eq!(skips.skip_frame().unwrap(), None);
        assert!(prefixes.next_prefix(32).unwrap().is_some());
        assert!(prefixes.next_prefix(32).unwrap().is_none());

        // The writer goes on where the zeros begin; each reader goes on from where it stopped.
        write_frame(&mut file, &second).unwrap();
        file.flush().unwrap();
        let second_at = SEGMENT_HEADER + 8 + 40;
        match items.next_item().unwrap() {
            SegmentItem::Entry { offset, entry } => {
                assert_eq!(offset, second_at);
                assert_eq!(entry.content, vec![2u8; 16]);
            }
            _ => panic!("the second frame was not read"),
        }
        assert_eq!(skips.skip_frame().unwrap(), Some((second_at, 48)));
        assert_eq!(
            prefixes.next_prefix(32).unwrap(),
            Some((second_at, vec![2u8; 32]))
        );
    }
}
