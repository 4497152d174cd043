//! Audit archives: one self-contained file per export, read and written as a stream.
//!
//! Layout (version 3; versions 1 and 2 are still read), integers little-endian unless said
//! otherwise:
//! - header, 16 bytes: magic `PSLAUDIT`, `u32` version, `u32` zero;
//! - frames `[u32 length][u32 CRC-32C][payload]`, the payload's first byte giving its kind:
//!   1 manifest (JSON), 2 trust anchor (certificate DER), 3 span prefix (JSON), 4 entry (32-byte
//!   hash then content bytes, exactly as in a segment), 5 redacted link (`u64` big-endian
//!   sequence, previous hash, content digest, hash: 104 bytes), 6 span end (JSON), 7 trailer
//!   (JSON); since version 2 also 8 TSA certificate (DER), 9 global configuration (its bytes as
//!   served), 10 the global configuration's detached signature; since version 3 also 11 evidence
//!   (a certificate or OCSP response, DER, that entries name by its SHA-256; it comes before the
//!   first entry that names it). The manifest comes first, the trailer last; trust frames
//!   (2, 8, 9, 10) come before the entries; see `docs/audit.md`.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_pki::sealed_box::{self, OpeningKey};
use serde::{Deserialize, Serialize};

use crate::error::LogError;
use crate::frame::{FrameError, read_frame, write_frame};
use crate::hash::Sha256Hash;
use crate::index::be_u64;
use crate::record::Entry;
use crate::segment::RawEntry;

/// The first eight bytes of every archive.
pub(crate) const ARCHIVE_MAGIC: [u8; 8] = *b"PSLAUDIT";
/// The version written. Version 1 archives (no TSA certificates, no global configuration, no
/// OCSP freshness) and version 2 archives (no evidence frames: their entries carry
/// certificates and statuses inline) are read and verified as before.
pub(crate) const ARCHIVE_VERSION: u32 = 3;
/// The oldest version read.
const OLDEST_ARCHIVE_VERSION: u32 = 1;

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
    /// How many TSA-certificate frames follow (version 2; 0 in older archives).
    #[serde(default)]
    pub tsa_anchors: u32,
    /// Whether the global configuration and its signature follow (version 2).
    #[serde(default)]
    pub global_configuration: bool,
    /// How old a stapled OCSP response may be at the time a signature was checked, from the
    /// global configuration's settings at export (version 2; absent when it was not known).
    #[serde(default)]
    pub ocsp_freshness_secs: Option<u64>,
}

/// The global configuration an archive carries, exactly as the central server served it and the
/// security server cached it: its bytes and their detached signature. The auditor checks the
/// signature with the federation's anchor (see `docs/audit.md`); this crate never parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedConfiguration {
    pub bytes: Vec<u8>,
    pub signature: Vec<u8>,
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
    pub(crate) fn selects_all_in_range(&self) -> bool {
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
    /// An approved time-stamping authority's certificate (DER), for checking tokens.
    TsaAnchor(Vec<u8>),
    /// The global configuration exactly as served (and cached by the security server).
    GlobalConfiguration(Vec<u8>),
    /// The detached signature over [`ArchiveFrame::GlobalConfiguration`]'s bytes.
    GlobalConfigurationSignature(Vec<u8>),
    /// A certificate or OCSP response (DER) that the entries after it name by its SHA-256
    /// ([`crate::Evidence`]).
    Evidence(Vec<u8>),
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
            ArchiveFrame::TsaAnchor(der) => Ok([&[8u8][..], der].concat()),
            ArchiveFrame::GlobalConfiguration(bytes) => Ok([&[9u8][..], bytes].concat()),
            ArchiveFrame::GlobalConfigurationSignature(bytes) => Ok([&[10u8][..], bytes].concat()),
            ArchiveFrame::Evidence(der) => Ok([&[11u8][..], der].concat()),
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
            8 => ArchiveFrame::TsaAnchor(data.to_vec()),
            9 => ArchiveFrame::GlobalConfiguration(data.to_vec()),
            10 => ArchiveFrame::GlobalConfigurationSignature(data.to_vec()),
            11 => ArchiveFrame::Evidence(data.to_vec()),
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
            crate::json::to_vec(self).map_err(|e| e.to_string())
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

impl ArchiveReader<Box<dyn Read>> {
    /// Opens an archive file. A sealed archive (see `docs/audit.md`) needs `unseal`, the private
    /// key of the auditor it was sealed for; without it, the error says so.
    pub fn open(path: &Path, unseal: Option<&OpeningKey>) -> Result<Self, LogError> {
        let archive_error = |message: String| LogError::Archive {
            path: path.to_owned(),
            message,
        };
        let file = File::open(path).map_err(|e| LogError::io("open", path, e))?;
        let mut file = BufReader::with_capacity(256 * 1024, file);
        let sealed = {
            use std::io::BufRead as _;
            let prefix = file.fill_buf().map_err(|e| LogError::io("read", path, e))?;
            sealed_box::is_sealed(prefix)
        };
        let reader: Box<dyn Read> = match (sealed, unseal) {
            (false, _) => Box::new(file),
            (true, Some(key)) => Box::new(BufReader::with_capacity(
                256 * 1024,
                sealed_box::open_reader(key, file).map_err(|e| archive_error(e.to_string()))?,
            )),
            (true, None) => {
                return Err(LogError::Sealed {
                    path: path.to_owned(),
                });
            }
        };
        ArchiveReader::new(reader).map_err(archive_error)
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
        if !(OLDEST_ARCHIVE_VERSION..=ARCHIVE_VERSION).contains(&version) {
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
