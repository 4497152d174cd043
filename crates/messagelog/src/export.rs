//! Export: a range of the log written as one archive, read straight from the segment files.
//!
//! Export never opens the index database. sled's resident memory grows with the number of
//! indexed entries, and sled admits one process at a time; reading the append-only segments
//! instead keeps export's memory bounded by a few read buffers and the largest entry, whatever
//! the log's size, and lets `passerelle audit export` run beside a live security server. The
//! segments are enough: they are named after their first sequence (so a sequence is found by
//! skipping frames by their lengths), checkpoint entries carry their spans, and entries carry
//! their times. The price is a planning pass over the part of the log a filter has to search.
//!
//! On a live log the last segment may end inside a frame being written: export stops at the last
//! complete, checksummed frame that continues the chain, after syncing the segment so that
//! nothing exported can be lost by a crash of the server.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use passerelle_pki::merkle::leaf_hash;
use passerelle_pki::sealed_box::{self, RecipientKey, SealWriter};
use serde::{Deserialize, Serialize};

use crate::accumulator::MerkleAccumulator;
use crate::archive::{
    ARCHIVE_VERSION, ArchiveFrame, ArchiveLink, ArchiveReader, ArchiveWriter, ExportFilter,
    Manifest, SignedConfiguration, SpanPrefix, Trailer,
};
use crate::checkpoint::unix_millis;
use crate::error::LogError;
use crate::evidence;
use crate::frame::{FRAME_HEADER, MAX_FRAME};
use crate::hash::Sha256Hash;
use crate::log::MessageLog;
use crate::record::{EntryBody, ExchangeRecord};
use crate::segment::{
    EntryView, LogCursor, RawEntry, SEGMENT_HEADER, SegmentItem, SegmentReader, list_segments,
    segment_path, sync_dir,
};

/// How long an exchange may last at most, for the time filters: entries are appended when the
/// response is sent, so an entry received at `t` lies before any entry received after
/// `t + TIME_SLACK_MS`. Longer exchanges near a `--from`/`--to` boundary may be shown redacted.
const TIME_SLACK_MS: u64 = 3_600_000;
/// The file, beside `segments/`, recording how far complete exports reach (for retention).
const EXPORT_MARKER: &str = "exported-through.json";

/// What to export besides the range.
#[derive(Debug, Default)]
pub struct ExportOptions {
    /// Which exchanges to show in full; everything else in the range becomes a redacted link.
    pub filter: ExportFilter,
    /// The archive this one continues: it starts right after that archive's last entry.
    pub previous: Option<PathBuf>,
    /// CA certificates (DER) copied into the archive as trust anchors.
    pub anchors: Vec<Vec<u8>>,
    /// Approved time-stamping authorities' certificates (DER) copied into the archive, against
    /// which `verify` checks every checkpoint's token by default.
    pub tsa_anchors: Vec<Vec<u8>>,
    /// The global configuration (bytes and detached signature) the anchors come from, copied
    /// into the archive so that the auditor can check where they come from.
    pub global_configuration: Option<SignedConfiguration>,
    /// The federation's OCSP freshness (`ocsp_freshness_secs` of the global configuration's
    /// settings), recorded in the manifest for checking the stapled responses.
    pub ocsp_freshness_secs: Option<u64>,
    /// Seal the archive for this auditor's public key (see `passerelle_pki::sealed_box`).
    pub seal_to: Option<RecipientKey>,
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
    /// Whether the archive is sealed for an auditor's key.
    pub sealed: bool,
    /// Whether this export advanced the exported-through mark that retention relies on (only
    /// exports that show every entry in full and continue the mark do). `false` with a reason
    /// when the mark could not be written (for example a read-only log directory).
    pub marked_exported: Result<bool, String>,
}

/// How far complete exports reach: every entry up to `last_sequence` is in some archive in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportMarker {
    last_sequence: u64,
    last_hash: Sha256Hash,
}

/// Exports a range of the log in `dir` to `out` (see [`MessageLog::export`] for the range).
///
/// Reads only the segment files, never the index: it works on a log a running server has open,
/// and its memory does not grow with the log.
pub fn export_log(
    dir: &Path,
    options: &ExportOptions,
    out: &Path,
    now: SystemTime,
) -> Result<ExportSummary, LogError> {
    let plan = Plan::make(dir, options)?;
    let result = plan.write(dir, options, out, now);
    if result.is_err() {
        // A partial archive has no trailer and would only confuse; the error says what failed.
        let _ = std::fs::remove_file(out);
    }
    let mut summary = result?;
    summary.marked_exported = if summary.redacted_entries == 0 {
        advance_marker(dir, &plan, &summary)
    } else {
        Ok(false)
    };
    if let Err(reason) = &summary.marked_exported {
        tracing::warn!(%reason, "cannot record the export for retention");
    }
    Ok(summary)
}

impl MessageLog {
    /// Writes an archive of the log to `out` (see `docs/audit.md`).
    ///
    /// The archive covers a contiguous range of sequences: from the entry after `previous`'s last
    /// one (or the first entry received at or after `filter.from_ms`, or the first entry of
    /// `filter.message_id`, or the start of the log) to the last entry received at or before
    /// `filter.to_ms` (or the message's last entry, or the end of the log), extended to the
    /// checkpoint entry that time-stamps it when there is one. Entries in that range that the
    /// filter does not select are written as redacted links. Memory stays bounded whatever the
    /// range or the log's size; see [`export_log`], which this calls.
    pub fn export(
        &self,
        filter: &ExportFilter,
        previous: Option<&Path>,
        anchors: &[Vec<u8>],
        out: &Path,
        now: SystemTime,
    ) -> Result<ExportSummary, LogError> {
        let options = ExportOptions {
            filter: filter.clone(),
            previous: previous.map(Path::to_owned),
            anchors: anchors.to_vec(),
            ..Default::default()
        };
        export_log(self.dir(), &options, out, now)
    }

    /// The highest sequence up to which complete exports (every entry in full, no gap) reach.
    pub fn exported_through(&self) -> Result<Option<u64>, LogError> {
        Ok(read_marker(self.dir())?.map(|marker| marker.last_sequence))
    }
}

/// Reads the trailer of an earlier archive (streaming through it).
pub(crate) fn archive_end(path: &Path) -> Result<ArchiveLink, LogError> {
    let mut reader = match ArchiveReader::open(path, None) {
        Err(LogError::Sealed { path }) => {
            return Err(LogError::Export {
                message: format!(
                    "the previous archive {} is sealed; give the unsealed archive it was made from, or export without --previous",
                    path.display()
                ),
            });
        }
        other => other?,
    };
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

impl EntryView {
    /// The view of entry `sequence`, checked to be that entry.
    fn parse(sequence: u64, raw: &RawEntry) -> Result<Self, LogError> {
        let view = raw
            .view()
            .map_err(|reason| LogError::Missing { sequence, reason })?;
        if view.sequence != sequence {
            return Err(LogError::Missing {
                sequence,
                reason: format!("found entry {} in its place", view.sequence),
            });
        }
        Ok(view)
    }
}

/// Whether the content is a checkpoint entry, without parsing it: the content starts with the
/// fixed head `{"format":F,"sequence":N,"previous_hash":"…","entry":` and the body's tag comes
/// first (see `Entry::write_content`).
fn looks_like_checkpoint(content: &[u8]) -> bool {
    const TAG: &[u8] = br#""entry":{"type":"checkpoint""#;
    content.windows(TAG.len()).any(|window| window == TAG)
}

/// Entries `next..=last` in order, read from the segments.
struct EntryStream {
    dir: PathBuf,
    cursor: LogCursor,
    next: u64,
    last: u64,
}

impl EntryStream {
    fn new(dir: &Path, first: u64, last: u64) -> Result<Self, LogError> {
        Ok(EntryStream {
            dir: dir.to_owned(),
            cursor: LogCursor::at_sequence(dir, first)?,
            next: first,
            last,
        })
    }

    fn next_entry(&mut self) -> Result<Option<(u64, RawEntry)>, LogError> {
        if self.next > self.last {
            return Ok(None);
        }
        let sequence = self.next;
        match self.cursor.next_entry()? {
            Some((_, _, raw)) => {
                self.next += 1;
                Ok(Some((sequence, raw)))
            }
            None => Err(LogError::Missing {
                sequence,
                reason: "the log ends early".into(),
            }),
        }
    }

    /// The next checkpoint entry at or before `last` whose span ends at or after `from`. Looks
    /// only at the start of each entry; a checkpoint entry is then read in full.
    fn next_span_ending_from(&mut self, from: u64) -> Result<Option<(u64, u64, u64)>, LogError> {
        while self.next <= self.last {
            let sequence = self.next;
            let Some((segment, offset, prefix)) = self.cursor.next_prefix(32 + 200)? else {
                return Err(LogError::Missing {
                    sequence,
                    reason: "the log ends early".into(),
                });
            };
            self.next += 1;
            if !looks_like_checkpoint(prefix.get(32..).unwrap_or_default()) {
                continue;
            }
            let path = segment_path(&self.dir, segment);
            let raw = SegmentReader::open_at(&path, offset)?
                .next_entry()?
                .map(|(_, raw)| raw)
                .ok_or_else(|| LogError::Missing {
                    sequence,
                    reason: "unreadable".into(),
                })?;
            if let Some((first, last)) = EntryView::parse(sequence, &raw)?.span()
                && last >= from
            {
                return Ok(Some((sequence, first, last)));
            }
        }
        Ok(None)
    }
}

/// The range an export covers, decided before anything is written (the manifest comes first).
struct Plan {
    start: u64,
    end: u64,
    start_previous_hash: Sha256Hash,
    first_available: u64,
    /// Where the time-stamp span containing `start` begins (`start` when it begins there).
    span_first: u64,
    previous_link: Option<ArchiveLink>,
}

impl Plan {
    fn make(dir: &Path, options: &ExportOptions) -> Result<Plan, LogError> {
        let filter = &options.filter;
        let segments = list_segments(dir)?;
        let empty = || LogError::Export {
            message: format!("the log in {} is empty", dir.display()),
        };
        let first_available = segments
            .first()
            .map(|(first, _)| *first)
            .ok_or_else(empty)?;
        let (tail, _) = log_tail(&segments)?.ok_or_else(empty)?;
        let previous_link = options.previous.as_deref().map(archive_end).transpose()?;

        let mut start = match &previous_link {
            Some(link) => {
                let stored = EntryStream::new(dir, link.last_sequence, link.last_sequence)
                    .and_then(|mut stream| stream.next_entry())
                    .ok()
                    .flatten()
                    .filter(|_| link.last_sequence <= tail);
                let Some((_, raw)) = stored else {
                    return Err(LogError::Export {
                        message: format!(
                            "the previous archive ends at entry {} which this log does not hold",
                            link.last_sequence
                        ),
                    });
                };
                if raw.hash != link.last_hash {
                    return Err(LogError::Export {
                        message: format!(
                            "the previous archive was not exported from this log (entry {} differs)",
                            link.last_sequence
                        ),
                    });
                }
                Some(link.last_sequence + 1)
            }
            None if filter.from_ms.is_none() && filter.message_id.is_none() => {
                Some(first_available)
            }
            None => None,
        };

        // One forward pass over what the filters must search: the first entry at or after
        // `from`, the last at or before `to`, the entries of the message.
        let mut to_end = None;
        let mut message_range: Option<(u64, u64)> = None;
        let searching_message = filter.message_id.is_some() && previous_link.is_none();
        if start.is_none() || filter.to_ms.is_some() || searching_message {
            let scan_from = match (start, filter.from_ms) {
                (Some(start), _) => start,
                (None, Some(from)) if filter.message_id.is_none() => {
                    segment_for_time(&segments, from)?
                }
                (None, _) => first_available,
            };
            let mut stream = EntryStream::new(dir, scan_from, tail)?;
            let mut to_done = filter.to_ms.is_none();
            while let Some((sequence, raw)) = stream.next_entry()? {
                let view = EntryView::parse(sequence, &raw)?;
                let time = view.time_ms();
                if start.is_none()
                    && let Some(from) = filter.from_ms
                    && time >= from
                {
                    start = Some(sequence);
                }
                if let Some(to) = filter.to_ms {
                    if time <= to {
                        to_end = Some(sequence);
                    } else if time > to.saturating_add(TIME_SLACK_MS) {
                        to_done = true;
                    }
                }
                if let Some(id) = &filter.message_id
                    && view.entry.message_id.as_ref() == Some(id)
                {
                    let (low, high) = message_range.get_or_insert((sequence, sequence));
                    *low = (*low).min(sequence);
                    *high = (*high).max(sequence);
                }
                if start.is_some() && to_done && !searching_message {
                    break;
                }
            }
            if start.is_none()
                && let (Some(id), None) = (&filter.message_id, filter.from_ms)
            {
                start = Some(
                    message_range
                        .ok_or_else(|| LogError::Export {
                            message: format!("message {id} is not in the log"),
                        })?
                        .0,
                );
            }
        }
        let no_entries = || LogError::Export {
            message: "no entries in the requested range".into(),
        };
        let start = start.ok_or_else(no_entries)?;
        let mut end = match (filter.to_ms, message_range) {
            (Some(_), _) => to_end.ok_or_else(no_entries)?,
            (None, Some((_, high))) if searching_message => high,
            _ => tail,
        };
        if start > end || start > tail {
            return Err(no_entries());
        }
        if start < first_available {
            return Err(LogError::Export {
                message: format!("entries before {first_available} were removed by retention"),
            });
        }

        // Extend to the checkpoint entry that stamps `end`, and to those of spans ending inside.
        if end < tail {
            let mut stream = EntryStream::new(dir, end + 1, tail)?;
            let nominal_end = end;
            while let Some((sequence, first, last)) = stream.next_span_ending_from(start)? {
                if last >= nominal_end && first > nominal_end {
                    break; // a later span: `end` itself is not stamped yet
                }
                end = sequence;
                if last >= nominal_end {
                    break;
                }
            }
        }

        // Where the time-stamp span containing `start` begins.
        let span_first = {
            let mut stream = EntryStream::new(dir, start, tail)?;
            match stream.next_span_ending_from(0)? {
                Some((_, first, last)) if last >= start => first,
                Some((_, _, last)) => last + 1,
                None => last_span_end_before(dir, &segments, start)?
                    .map_or(first_available, |last| last + 1),
            }
        };
        if span_first < first_available {
            return Err(LogError::Export {
                message: format!(
                    "entries {span_first}..{start} of the time-stamp span containing entry \
                     {start} were removed by retention; export with --previous (the archive \
                     holding them)"
                ),
            });
        }
        let (_, first_raw) =
            EntryStream::new(dir, start, start)?
                .next_entry()?
                .ok_or(LogError::Missing {
                    sequence: start,
                    reason: "unreadable".into(),
                })?;
        let start_previous_hash = EntryView::parse(start, &first_raw)?.previous_hash;
        Ok(Plan {
            start,
            end,
            start_previous_hash,
            first_available,
            span_first,
            previous_link,
        })
    }

    fn write(
        &self,
        dir: &Path,
        options: &ExportOptions,
        out: &Path,
        now: SystemTime,
    ) -> Result<ExportSummary, LogError> {
        let filter = &options.filter;
        let manifest = Manifest {
            format: "passerelle-audit-archive".into(),
            version: ARCHIVE_VERSION,
            created_at_ms: unix_millis(now),
            first_sequence: self.start,
            last_sequence: self.end,
            start_previous_hash: self.start_previous_hash,
            previous_archive: self.previous_link.clone(),
            filter: filter.clone(),
            anchors: options.anchors.len() as u32,
            tsa_anchors: options.tsa_anchors.len() as u32,
            global_configuration: options.global_configuration.is_some(),
            ocsp_freshness_secs: options.ocsp_freshness_secs,
        };
        let prefix = if self.span_first < self.start {
            let mut accumulator = MerkleAccumulator::new();
            let mut stream = EntryStream::new(dir, self.span_first, self.start - 1)?;
            while let Some((_, raw)) = stream.next_entry()? {
                accumulator.push(leaf_hash(&raw.hash.0));
            }
            Some(SpanPrefix {
                first_sequence: self.span_first,
                count: accumulator.count(),
                roots: accumulator.roots().into_iter().map(Sha256Hash).collect(),
            })
        } else {
            None
        };

        let io_error = |e: std::io::Error| LogError::io("write", out, e);
        let file = File::create(out).map_err(io_error)?;
        let buffered = BufWriter::with_capacity(256 * 1024, file);
        let sink = match &options.seal_to {
            None => Sink::Plain(buffered),
            Some(recipient) => Sink::Sealed(Box::new(
                sealed_box::seal_writer(recipient, buffered).map_err(|e| LogError::Seal {
                    message: e.to_string(),
                })?,
            )),
        };
        let mut writer = ArchiveWriter::new(sink).map_err(io_error)?;
        writer
            .write(&ArchiveFrame::Manifest(Box::new(manifest)))
            .map_err(io_error)?;
        for anchor in &options.anchors {
            writer
                .write(&ArchiveFrame::Anchor(anchor.clone()))
                .map_err(io_error)?;
        }
        for anchor in &options.tsa_anchors {
            writer
                .write(&ArchiveFrame::TsaAnchor(anchor.clone()))
                .map_err(io_error)?;
        }
        if let Some(conf) = &options.global_configuration {
            writer
                .write(&ArchiveFrame::GlobalConfiguration(conf.bytes.clone()))
                .map_err(io_error)?;
            writer
                .write(&ArchiveFrame::GlobalConfigurationSignature(
                    conf.signature.clone(),
                ))
                .map_err(io_error)?;
        }
        if let Some(prefix) = prefix {
            writer
                .write(&ArchiveFrame::SpanPrefix(prefix))
                .map_err(io_error)?;
        }

        // Span ends are found by a second stream running ahead to the next checkpoint entry.
        let mut spans = EntryStream::new(dir, self.start, self.end)?;
        let mut next_span = spans.next_span_ending_from(self.start)?;
        let mut entries = EntryStream::new(dir, self.start, self.end)?;
        // Without client, service, message-id or time filters every entry is shown in full and
        // none needs decoding.
        let decode =
            !filter.selects_all_in_range() || filter.from_ms.is_some() || filter.to_ms.is_some();
        let (mut full, mut redacted) = (0u64, 0u64);
        let mut last_hash = self.start_previous_hash;
        // Evidence already written into the archive.
        let mut carried = HashSet::new();
        while let Some((sequence, raw)) = entries.next_entry()? {
            let entry = if decode {
                let entry = raw
                    .decode()
                    .map_err(|reason| LogError::Missing { sequence, reason })?;
                if entry.sequence != sequence {
                    return Err(LogError::Missing {
                        sequence,
                        reason: format!("found entry {} in its place", entry.sequence),
                    });
                }
                Some(entry)
            } else {
                None
            };
            let selected = entry.as_ref().is_none_or(|entry| {
                matches!(entry.entry, EntryBody::Checkpoint(_)) || filter.selects(entry)
            });
            last_hash = raw.hash;
            if selected {
                // The evidence an entry names comes before it, once per archive.
                let named = match &entry {
                    Some(entry) => entry
                        .exchange()
                        .into_iter()
                        .flat_map(ExchangeRecord::stored_evidence)
                        .collect(),
                    None => evidence::named_in(&raw.content)
                        .map_err(|reason| LogError::Missing { sequence, reason })?,
                };
                for hash in named {
                    if !carried.insert(hash) {
                        continue;
                    }
                    let der = evidence::read_stored(dir, &hash)?.ok_or_else(|| {
                        LogError::Missing {
                            sequence,
                            reason: format!(
                                "it names evidence sha256:{hash} that is not in the log's evidence store"
                            ),
                        }
                    })?;
                    writer
                        .write(&ArchiveFrame::Evidence(der))
                        .map_err(io_error)?;
                }
                writer
                    .write(&ArchiveFrame::Entry {
                        hash: raw.hash,
                        content: raw.content,
                    })
                    .map_err(io_error)?;
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
                    .map_err(io_error)?;
                redacted += 1;
            }
            while let Some((_, first, last)) = next_span.filter(|(_, _, last)| *last <= sequence) {
                if last == sequence {
                    writer
                        .write(&ArchiveFrame::SpanEnd {
                            first_sequence: first,
                            last_sequence: last,
                        })
                        .map_err(io_error)?;
                }
                next_span = spans.next_span_ending_from(sequence + 1)?;
            }
        }
        writer
            .write(&ArchiveFrame::Trailer(Trailer {
                entries: full + redacted,
                last_sequence: self.end,
                last_hash,
            }))
            .map_err(io_error)?;
        let file = writer.into_inner().finish().map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        Ok(ExportSummary {
            path: out.to_owned(),
            first_sequence: self.start,
            last_sequence: self.end,
            full_entries: full,
            redacted_entries: redacted,
            last_hash,
            sealed: options.seal_to.is_some(),
            marked_exported: Ok(false),
        })
    }
}

/// Where the archive bytes go: straight to the file, or through a sealed box.
enum Sink {
    Plain(BufWriter<File>),
    Sealed(Box<SealWriter<BufWriter<File>>>),
}

impl Sink {
    fn finish(self) -> std::io::Result<File> {
        let buffered = match self {
            Sink::Plain(buffered) => buffered,
            Sink::Sealed(sealed) => sealed.finish()?,
        };
        buffered.into_inner().map_err(|e| e.into_error())
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(writer) => writer.write(data),
            Sink::Sealed(writer) => writer.write(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(writer) => writer.flush(),
            Sink::Sealed(writer) => writer.flush(),
        }
    }
}

/// The last entry of the log: the last complete, checksummed frame that continues the chain.
/// The last segment is synced first, so that entries a live server has written but not yet
/// synced cannot be exported and then lost in a crash.
///
/// Frames are hopped over by their lengths, and only the last few are read in full: a torn or
/// half-written tail can only affect the frames of the last batch.
fn log_tail(segments: &[(u64, PathBuf)]) -> Result<Option<(u64, Sha256Hash)>, LogError> {
    const CANDIDATES: usize = 64;
    for (position, (first, path)) in segments.iter().enumerate().rev() {
        if position + 1 == segments.len()
            && let Err(error) = File::open(path).and_then(|file| file.sync_data())
        {
            tracing::warn!(path = %path.display(), %error, "cannot sync the last segment before export");
        }
        let length = std::fs::metadata(path)
            .map_err(|e| LogError::io("inspect", path, e))?
            .len();
        if length < SEGMENT_HEADER {
            continue; // created, header not yet written: no entries
        }
        let mut reader = SegmentReader::open(path)?;
        let mut candidates = std::collections::VecDeque::with_capacity(CANDIDATES + 1);
        let mut index = 0u64;
        while let Some((offset, frame_length)) = reader.skip_frame()? {
            let plausible = (32..=MAX_FRAME).contains(&frame_length)
                && offset + FRAME_HEADER + u64::from(frame_length) <= length;
            if !plausible {
                break; // a frame still being written, or torn
            }
            candidates.push_back((index, offset));
            if candidates.len() > CANDIDATES {
                candidates.pop_front();
            }
            index += 1;
        }
        for (index, offset) in candidates.iter().rev() {
            let SegmentItem::Entry { entry, .. } =
                SegmentReader::open_at(path, *offset)?.next_item()?
            else {
                continue;
            };
            let Ok(head) = entry.head() else { continue };
            if head.sequence == first + index && entry.hash_holds(&head.previous_hash) {
                return Ok(Some((head.sequence, entry.hash)));
            }
        }
        if !candidates.is_empty() {
            return Err(LogError::BadSegment {
                path: path.clone(),
                reason: format!("none of its last {CANDIDATES} frames is a whole entry"),
            });
        }
    }
    Ok(None)
}

/// The first sequence of the earliest segment that may hold an entry received at or after
/// `from_ms`, judged from each segment's first entry alone (entries are appended in order of
/// their response, within [`TIME_SLACK_MS`] of their request).
fn segment_for_time(segments: &[(u64, PathBuf)], from_ms: u64) -> Result<u64, LogError> {
    let mut chosen = segments.first().map_or(0, |(first, _)| *first);
    for window in segments.windows(2) {
        let [(first, _), (next_first, next_path)] = window else {
            break;
        };
        let mut reader = SegmentReader::open(next_path)?;
        let Some((_, raw)) = reader.next_entry()? else {
            break;
        };
        let next_time = EntryView::parse(*next_first, &raw)?.time_ms();
        if next_time.saturating_add(TIME_SLACK_MS) >= from_ms {
            chosen = *first;
            break;
        }
        chosen = *next_first;
    }
    Ok(chosen)
}

/// The last sequence of the span of the last checkpoint entry before `sequence`, searching the
/// segments backwards from the one holding `sequence`.
fn last_span_end_before(
    dir: &Path,
    segments: &[(u64, PathBuf)],
    sequence: u64,
) -> Result<Option<u64>, LogError> {
    let bounds: Vec<(u64, u64)> = segments
        .iter()
        .enumerate()
        .filter(|(_, (first, _))| *first < sequence)
        .map(|(index, (first, _))| {
            let next_first = segments.get(index + 1).map_or(sequence, |(next, _)| *next);
            (*first, next_first.min(sequence) - 1)
        })
        .collect();
    for (first, last) in bounds.into_iter().rev() {
        if last < first {
            continue;
        }
        let mut stream = EntryStream::new(dir, first, last)?;
        let mut found = None;
        while let Some((_, _, span_last)) = stream.next_span_ending_from(0)? {
            found = Some(span_last);
        }
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

fn marker_path(dir: &Path) -> PathBuf {
    dir.join(EXPORT_MARKER)
}

fn read_marker(dir: &Path) -> Result<Option<ExportMarker>, LogError> {
    let path = marker_path(dir);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LogError::Export {
                message: format!("{}: {e}", path.display()),
            }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(LogError::io("read", path, error)),
    }
}

/// Moves the exported-through mark to the archive's end when the archive shows every entry in
/// full and starts at or before the entry after the mark (so no entry is left out).
fn advance_marker(dir: &Path, plan: &Plan, summary: &ExportSummary) -> Result<bool, String> {
    let current = read_marker(dir).map_err(|e| e.to_string())?;
    let continues = match &current {
        Some(marker) => plan.start <= marker.last_sequence + 1,
        None => plan.start <= plan.first_available,
    };
    if !continues
        || current
            .as_ref()
            .is_some_and(|marker| marker.last_sequence >= summary.last_sequence)
    {
        return Ok(false);
    }
    let marker = ExportMarker {
        last_sequence: summary.last_sequence,
        last_hash: summary.last_hash,
    };
    let path = marker_path(dir);
    let temporary = dir.join(format!("{EXPORT_MARKER}.tmp"));
    let bytes = serde_json::to_vec(&marker).map_err(|e| e.to_string())?;
    let written = File::create(&temporary)
        .and_then(|mut file| file.write_all(&bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, &path));
    written.map_err(|e| format!("{}: {e}", path.display()))?;
    sync_dir(dir).map_err(|e| e.to_string())?;
    Ok(true)
}
