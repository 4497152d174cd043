//! Audit archives: one self-contained file per export, read and written as a stream.
//!
//! Layout (version 1), integers little-endian unless said otherwise:
//! - header, 16 bytes: magic `PSLAUDIT`, `u32` version, `u32` zero;
//! - frames `[u32 length][u32 CRC-32C][payload]`, the payload's first byte giving its kind:
//!   1 manifest (JSON), 2 trust anchor (certificate DER), 3 span prefix (JSON), 4 entry (32-byte
//!   hash then content bytes, exactly as in a segment), 5 redacted link (`u64` big-endian
//!   sequence, previous hash, content digest, hash: 104 bytes), 6 span end (JSON), 7 trailer
//!   (JSON). The manifest comes first, the trailer last; see `docs/audit.md`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_pki::merkle::leaf_hash;
use serde::{Deserialize, Serialize};

use crate::accumulator::MerkleAccumulator;
use crate::checkpoint::unix_millis;
use crate::error::LogError;
use crate::frame::{FrameError, read_frame, write_frame};
use crate::hash::Sha256Hash;
use crate::log::{MessageLog, be_u64};
use crate::record::{Entry, EntryBody};
use crate::segment::RawEntry;

/// The first eight bytes of every archive.
pub(crate) const ARCHIVE_MAGIC: [u8; 8] = *b"PSLAUDIT";
pub(crate) const ARCHIVE_VERSION: u32 = 1;
const STATE_EXPORTED_THROUGH: &[u8] = b"exported_through";

/// The first frame of an archive: what it covers and how it links to the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `passerelle-audit-archive`.
    pub format: String,
    pub version: u32,
    pub created_at_ms: u64,
    /// The archive holds every entry from `first_sequence` to `last_sequence`, in full or as a
    /// redacted link.
    pub first_sequence: u64,
    pub last_sequence: u64,
    /// The `previous_hash` of entry `first_sequence`: the last hash of the archive before, or
    /// all zeros when the archive starts at the beginning of the log.
    pub start_previous_hash: Sha256Hash,
    /// When exported with `--previous`: the archive this one continues.
    pub previous_archive: Option<ArchiveLink>,
    pub filter: ExportFilter,
    /// How many trust-anchor frames follow.
    pub anchors: u32,
}

/// The end of an archive, as named by the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveLink {
    pub last_sequence: u64,
    pub last_hash: Sha256Hash,
}

/// Which exchanges an export shows in full; every other entry in the range is a redacted link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFilter {
    /// Request received at or after (unix milliseconds).
    pub from_ms: Option<u64>,
    /// Request received at or before (unix milliseconds).
    pub to_ms: Option<u64>,
    pub client: Option<SubsystemId>,
    pub service: Option<ServiceId>,
    pub message_id: Option<String>,
}

impl ExportFilter {
    fn selects_all_in_range(&self) -> bool {
        self.client.is_none() && self.service.is_none() && self.message_id.is_none()
    }

    pub(crate) fn selects(&self, entry: &Entry) -> bool {
        let Some(record) = entry.exchange() else {
            return true;
        };
        self.from_ms
            .is_none_or(|from| record.request_received_at_ms >= from)
            && self
                .to_ms
                .is_none_or(|to| record.request_received_at_ms <= to)
            && self
                .client
                .as_ref()
                .is_none_or(|client| *client == record.client)
            && self
                .service
                .as_ref()
                .is_none_or(|service| *service == record.service)
            && self
                .message_id
                .as_ref()
                .is_none_or(|id| *id == record.message_id)
    }
}

/// The leaves of a time-stamp span that lie before an archive's first entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanPrefix {
    pub first_sequence: u64,
    pub count: u64,
    /// Roots of the perfect subtrees of those leaves, largest first.
    pub roots: Vec<Sha256Hash>,
}

/// The trailer: its absence means the archive was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    pub entries: u64,
    pub last_sequence: u64,
    pub last_hash: Sha256Hash,
}

/// One frame of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveFrame {
    Manifest(Box<Manifest>),
    /// A trust anchor (CA certificate, DER) for checking signers' chains.
    Anchor(Vec<u8>),
    SpanPrefix(SpanPrefix),
    /// An entry in full: its hash and exact content bytes.
    Entry {
        hash: Sha256Hash,
        content: Vec<u8>,
    },
    /// An entry outside the filter: just enough to keep the chain checkable.
    Redacted {
        sequence: u64,
        previous_hash: Sha256Hash,
        content_digest: Sha256Hash,
        hash: Sha256Hash,
    },
    /// The time-stamp span `first_sequence..=last_sequence` ends at the entry just before.
    SpanEnd {
        first_sequence: u64,
        last_sequence: u64,
    },
    Trailer(Trailer),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpanEndJson {
    first_sequence: u64,
    last_sequence: u64,
}

impl ArchiveFrame {
    fn encode(&self) -> Result<Vec<u8>, String> {
        let json = |kind: u8, value: &dyn erased::Json| -> Result<Vec<u8>, String> {
            let mut payload = vec![kind];
            payload.extend(value.to_json()?);
            Ok(payload)
        };
        match self {
            ArchiveFrame::Manifest(manifest) => json(1, manifest),
            ArchiveFrame::Anchor(der) => Ok([&[2u8][..], der].concat()),
            ArchiveFrame::SpanPrefix(prefix) => json(3, prefix),
            ArchiveFrame::Entry { hash, content } => Ok([&[4u8][..], &hash.0, content].concat()),
            ArchiveFrame::Redacted {
                sequence,
                previous_hash,
                content_digest,
                hash,
            } => Ok([
                &[5u8][..],
                &sequence.to_be_bytes(),
                &previous_hash.0,
                &content_digest.0,
                &hash.0,
            ]
            .concat()),
            ArchiveFrame::SpanEnd {
                first_sequence,
                last_sequence,
            } => json(
                6,
                &SpanEndJson {
                    first_sequence: *first_sequence,
                    last_sequence: *last_sequence,
                },
            ),
            ArchiveFrame::Trailer(trailer) => json(7, trailer),
        }
    }

    fn decode(payload: &[u8]) -> Result<Self, String> {
        let (&kind, data) = payload.split_first().ok_or("empty frame")?;
        let from_json = |what: &str| format!("{what} frame is not valid JSON");
        Ok(match kind {
            1 => ArchiveFrame::Manifest(Box::new(
                serde_json::from_slice(data)
                    .map_err(|e| format!("{}: {e}", from_json("manifest")))?,
            )),
            2 => ArchiveFrame::Anchor(data.to_vec()),
            3 => ArchiveFrame::SpanPrefix(
                serde_json::from_slice(data)
                    .map_err(|e| format!("{}: {e}", from_json("span prefix")))?,
            ),
            4 => {
                let raw = RawEntry::from_payload(data).ok_or("entry frame shorter than a hash")?;
                ArchiveFrame::Entry {
                    hash: raw.hash,
                    content: raw.content,
                }
            }
            5 => {
                if data.len() != 104 {
                    return Err(format!(
                        "redacted link of {} bytes, expected 104",
                        data.len()
                    ));
                }
                let hash_at =
                    |at: usize| Sha256Hash::from_slice(&data[at..at + 32]).unwrap_or_default();
                ArchiveFrame::Redacted {
                    sequence: be_u64(data).unwrap_or_default(),
                    previous_hash: hash_at(8),
                    content_digest: hash_at(40),
                    hash: hash_at(72),
                }
            }
            6 => {
                let span: SpanEndJson = serde_json::from_slice(data)
                    .map_err(|e| format!("{}: {e}", from_json("span end")))?;
                ArchiveFrame::SpanEnd {
                    first_sequence: span.first_sequence,
                    last_sequence: span.last_sequence,
                }
            }
            7 => ArchiveFrame::Trailer(
                serde_json::from_slice(data)
                    .map_err(|e| format!("{}: {e}", from_json("trailer")))?,
            ),
            other => return Err(format!("unknown frame kind {other}")),
        })
    }
}

mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> Result<Vec<u8>, String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<Vec<u8>, String> {
            serde_json::to_vec(self).map_err(|e| e.to_string())
        }
    }
}

/// Writes an archive frame by frame.
pub struct ArchiveWriter<W: Write> {
    writer: W,
}

impl<W: Write> ArchiveWriter<W> {
    /// Writes the archive header.
    pub fn new(mut writer: W) -> std::io::Result<Self> {
        writer.write_all(&ARCHIVE_MAGIC)?;
        writer.write_all(&ARCHIVE_VERSION.to_le_bytes())?;
        writer.write_all(&0u32.to_le_bytes())?;
        Ok(ArchiveWriter { writer })
    }

    pub fn write(&mut self, frame: &ArchiveFrame) -> std::io::Result<()> {
        let payload = frame.encode().map_err(std::io::Error::other)?;
        write_frame(&mut self.writer, &payload)
    }

    pub fn into_inner(self) -> W {
        self.writer
    }
}

/// Reads an archive frame by frame, in bounded memory.
pub struct ArchiveReader<R: Read> {
    reader: R,
    payload: Vec<u8>,
    /// Byte offset of the next frame.
    offset: u64,
}

impl ArchiveReader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let file = File::open(path).map_err(|e| LogError::io("open", path, e))?;
        ArchiveReader::new(BufReader::with_capacity(256 * 1024, file)).map_err(|message| {
            LogError::Archive {
                path: path.to_owned(),
                message,
            }
        })
    }
}

impl<R: Read> ArchiveReader<R> {
    /// Checks the header.
    pub fn new(mut reader: R) -> Result<Self, String> {
        let mut header = [0u8; 16];
        reader
            .read_exact(&mut header)
            .map_err(|e| format!("cannot read the archive header: {e}"))?;
        if header[..8] != ARCHIVE_MAGIC {
            return Err("not a Passerelle audit archive (bad magic)".into());
        }
        let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
        if version != ARCHIVE_VERSION {
            return Err(format!("unsupported archive version {version}"));
        }
        Ok(ArchiveReader {
            reader,
            payload: Vec::new(),
            offset: 16,
        })
    }

    /// The next frame; `Ok(None)` at the end; `Err` for a damaged frame (with its byte offset).
    pub fn next_frame(&mut self) -> Result<Option<ArchiveFrame>, String> {
        let offset = self.offset;
        match read_frame(&mut self.reader, &mut self.payload) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.offset += 8 + self.payload.len() as u64;
                ArchiveFrame::decode(&self.payload)
                    .map(Some)
                    .map_err(|reason| format!("frame at byte {offset}: {reason}"))
            }
            Err(FrameError::Damaged(reason)) => Err(format!("frame at byte {offset}: {reason}")),
            Err(FrameError::Io(error)) => Err(format!("frame at byte {offset}: {error}")),
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub path: PathBuf,
    pub first_sequence: u64,
    pub last_sequence: u64,
    pub full_entries: u64,
    pub redacted_entries: u64,
    pub last_hash: Sha256Hash,
}

/// Reads the trailer of an earlier archive (streaming through it).
pub(crate) fn archive_end(path: &Path) -> Result<ArchiveLink, LogError> {
    let mut reader = ArchiveReader::open(path)?;
    let archive_error = |message: String| LogError::Archive {
        path: path.to_owned(),
        message,
    };
    let mut trailer = None;
    while let Some(frame) = reader.next_frame().map_err(archive_error)? {
        if let ArchiveFrame::Trailer(found) = frame {
            trailer = Some(found);
        }
    }
    let trailer =
        trailer.ok_or_else(|| archive_error("no trailer: the archive is incomplete".into()))?;
    Ok(ArchiveLink {
        last_sequence: trailer.last_sequence,
        last_hash: trailer.last_hash,
    })
}

const TIME_SLACK_MS: u64 = 3_600_000;

impl MessageLog {
    /// Writes an archive of the log to `out` (see the module documentation and `docs/audit.md`).
    ///
    /// The archive covers a contiguous range of sequences: from the entry after `previous`'s last
    /// one (or the first request at or after `filter.from_ms`, or the first entry of
    /// `filter.message_id`, or the start of the log) to the last request at or before
    /// `filter.to_ms` (or the message's last entry, or the end of the log), extended to the
    /// checkpoint entry that time-stamps it when there is one. Entries in that range that the
    /// filter does not select are written as redacted links. `anchors` (CA certificates, DER) are
    /// copied into the archive for the verifier. Memory stays bounded whatever the range.
    ///
    /// An export without client, service or message-id filter marks its range as exported, which
    /// retention requires before removing a segment.
    pub fn export(
        &self,
        filter: &ExportFilter,
        previous: Option<&Path>,
        anchors: &[Vec<u8>],
        out: &Path,
        now: SystemTime,
    ) -> Result<ExportSummary, LogError> {
        let inner = &self.inner;
        let next = inner.lock_status().next_sequence;
        let tail = next.checked_sub(1).ok_or(LogError::Export {
            message: "the log is empty".into(),
        })?;
        let first_available = inner.first_available_sequence()?.unwrap_or(0);
        let previous_link = previous.map(archive_end).transpose()?;

        let start = if let Some(link) = &previous_link {
            let entry = inner
                .read_raw(link.last_sequence)
                .map_err(|_| LogError::Export {
                    message: format!(
                        "the previous archive ends at entry {} which this log does not hold",
                        link.last_sequence
                    ),
                })?;
            if entry.hash != link.last_hash {
                return Err(LogError::Export {
                    message: format!(
                        "the previous archive was not exported from this log (entry {} differs)",
                        link.last_sequence
                    ),
                });
            }
            link.last_sequence + 1
        } else if let Some(from) = filter.from_ms {
            self.sequence_near_time(from, from.saturating_add(TIME_SLACK_MS), Extreme::Min)?
                .unwrap_or(next)
        } else if let Some(message_id) = &filter.message_id {
            let sequences = self.sequences_of_message(message_id)?;
            *sequences.iter().min().ok_or_else(|| LogError::Export {
                message: format!("message {message_id} is not in the log"),
            })?
        } else {
            first_available
        };
        let mut end = if let Some(to) = filter.to_ms {
            self.sequence_near_time(to.saturating_sub(TIME_SLACK_MS), to, Extreme::Max)?
                .unwrap_or(0)
        } else if let (Some(message_id), None) = (&filter.message_id, &previous_link) {
            self.sequences_of_message(message_id)?
                .into_iter()
                .max()
                .unwrap_or(tail)
        } else {
            tail
        };
        if let Some(covering) = inner.checkpoint_covering(end)? {
            end = end.max(covering.entry_sequence).min(tail);
        }
        if start > end || start > tail {
            return Err(LogError::Export {
                message: "no entries in the requested range".into(),
            });
        }
        if start < first_available {
            return Err(LogError::Export {
                message: format!("entries before {first_available} were removed by retention"),
            });
        }

        // The time-stamp span containing `start` may begin before it.
        let span_first = match inner.checkpoint_covering(start)? {
            Some(covering) => covering.first_sequence,
            None => inner
                .checkpoint_before(start)?
                .map_or(first_available, |c| c.last_sequence + 1),
        };
        let prefix = if span_first < start {
            Some(self.span_prefix(span_first, start)?)
        } else {
            None
        };

        let mut cursor = inner.cursor_from(start)?;
        let (_, _, first_raw) = cursor.next_entry()?.ok_or(LogError::Missing {
            sequence: start,
            reason: "unreadable".into(),
        })?;
        let first_head = first_raw.head().map_err(|reason| LogError::Missing {
            sequence: start,
            reason,
        })?;
        let manifest = Manifest {
            format: "passerelle-audit-archive".into(),
            version: ARCHIVE_VERSION,
            created_at_ms: unix_millis(now),
            first_sequence: start,
            last_sequence: end,
            start_previous_hash: first_head.previous_hash,
            previous_archive: previous_link,
            filter: filter.clone(),
            anchors: anchors.len() as u32,
        };

        let archive_error = |e: std::io::Error| LogError::io("write", out, e);
        let file = File::create(out).map_err(archive_error)?;
        let mut writer = ArchiveWriter::new(BufWriter::with_capacity(256 * 1024, file))
            .map_err(archive_error)?;
        writer
            .write(&ArchiveFrame::Manifest(Box::new(manifest)))
            .map_err(archive_error)?;
        for anchor in anchors {
            writer
                .write(&ArchiveFrame::Anchor(anchor.clone()))
                .map_err(archive_error)?;
        }
        if let Some(prefix) = prefix {
            writer
                .write(&ArchiveFrame::SpanPrefix(prefix))
                .map_err(archive_error)?;
        }
        let (mut full, mut redacted) = (0u64, 0u64);
        let mut last_hash;
        let mut raw = first_raw;
        let mut sequence = start;
        // Span ends in order, walked beside the entries instead of one lookup per entry.
        let mut span_ends = inner.checkpoints_ending_from(start);
        let mut next_span_end = span_ends.next().transpose()?;
        // Without client, service, message-id or time filters every entry is shown in full and
        // none needs decoding.
        let decode =
            !filter.selects_all_in_range() || filter.from_ms.is_some() || filter.to_ms.is_some();
        loop {
            let selected = if decode {
                let entry = raw
                    .decode()
                    .map_err(|reason| LogError::Missing { sequence, reason })?;
                if entry.sequence != sequence {
                    return Err(LogError::Missing {
                        sequence,
                        reason: format!("found entry {} in its place", entry.sequence),
                    });
                }
                matches!(entry.entry, EntryBody::Checkpoint(_)) || filter.selects(&entry)
            } else {
                true
            };
            if selected {
                last_hash = raw.hash;
                writer
                    .write(&ArchiveFrame::Entry {
                        hash: raw.hash,
                        content: raw.content,
                    })
                    .map_err(archive_error)?;
                full += 1;
            } else {
                let head = raw
                    .head()
                    .map_err(|reason| LogError::Missing { sequence, reason })?;
                writer
                    .write(&ArchiveFrame::Redacted {
                        sequence,
                        previous_hash: head.previous_hash,
                        content_digest: Sha256Hash::of(&raw.content),
                        hash: raw.hash,
                    })
                    .map_err(archive_error)?;
                last_hash = raw.hash;
                redacted += 1;
            }
            while let Some(span) = next_span_end
                .as_ref()
                .filter(|span| span.last_sequence <= sequence)
            {
                if span.last_sequence == sequence {
                    writer
                        .write(&ArchiveFrame::SpanEnd {
                            first_sequence: span.first_sequence,
                            last_sequence: sequence,
                        })
                        .map_err(archive_error)?;
                }
                next_span_end = span_ends.next().transpose()?;
            }
            if sequence == end {
                break;
            }
            sequence += 1;
            raw = match cursor.next_entry()? {
                Some((_, _, raw)) => raw,
                None => {
                    return Err(LogError::Missing {
                        sequence,
                        reason: "the log ends early".into(),
                    });
                }
            };
        }
        writer
            .write(&ArchiveFrame::Trailer(Trailer {
                entries: full + redacted,
                last_sequence: end,
                last_hash,
            }))
            .map_err(archive_error)?;
        let file = writer
            .into_inner()
            .into_inner()
            .map_err(|e| archive_error(e.into_error()))?;
        file.sync_all().map_err(archive_error)?;

        if filter.selects_all_in_range() {
            let done = inner
                .trees
                .state
                .get(STATE_EXPORTED_THROUGH)
                .ok()
                .flatten()
                .and_then(|value| be_u64(&value));
            if done.is_none_or(|done| done < end) {
                inner
                    .trees
                    .state
                    .insert(STATE_EXPORTED_THROUGH, &end.to_be_bytes())
                    .and_then(|_| inner.trees.state.flush())
                    .map_err(|e| LogError::index(inner.dir.join("index"), e))?;
            }
        }
        Ok(ExportSummary {
            path: out.to_owned(),
            first_sequence: start,
            last_sequence: end,
            full_entries: full,
            redacted_entries: redacted,
            last_hash,
        })
    }

    /// The highest sequence a complete, unfiltered export has covered.
    pub fn exported_through(&self) -> Result<Option<u64>, LogError> {
        let value = self
            .inner
            .trees
            .state
            .get(STATE_EXPORTED_THROUGH)
            .map_err(|e| LogError::index(self.inner.dir.join("index"), e))?;
        Ok(value.and_then(|value| be_u64(&value)))
    }

    fn span_prefix(&self, first: u64, start: u64) -> Result<SpanPrefix, LogError> {
        let mut accumulator = MerkleAccumulator::new();
        let mut cursor = self.inner.cursor_from(first)?;
        while first + accumulator.count() < start {
            let (_, _, raw) = cursor.next_entry()?.ok_or(LogError::Missing {
                sequence: first + accumulator.count(),
                reason: "the log ends early".into(),
            })?;
            accumulator.push(leaf_hash(&raw.hash.0));
        }
        Ok(SpanPrefix {
            first_sequence: first,
            count: accumulator.count(),
            roots: accumulator.roots().into_iter().map(Sha256Hash).collect(),
        })
    }

    /// The smallest or largest sequence among entries whose time lies in `from..=to`.
    fn sequence_near_time(
        &self,
        from: u64,
        to: u64,
        extreme: Extreme,
    ) -> Result<Option<u64>, LogError> {
        let tree = &self.inner.trees.time;
        let low = from.to_be_bytes().to_vec();
        let mut high = to.to_be_bytes().to_vec();
        high.extend_from_slice(&[0xFF; 9]);
        let mut found: Option<u64> = None;
        for item in tree.range(low..high) {
            let (key, _) = item.map_err(|e| LogError::index(self.inner.dir.join("index"), e))?;
            let Some(sequence) = key.get(9..).and_then(be_u64) else {
                continue;
            };
            found = Some(match (found, extreme) {
                (None, _) => sequence,
                (Some(old), Extreme::Min) => old.min(sequence),
                (Some(old), Extreme::Max) => old.max(sequence),
            });
        }
        Ok(found)
    }
}

#[derive(Clone, Copy)]
enum Extreme {
    Min,
    Max,
}
