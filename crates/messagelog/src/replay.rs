//! Replay: an archive's exchanges as a timeline, and one exchange in full.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use passerelle_pki::sealed_box::OpeningKey;
use serde::Serialize;

use crate::archive::{ArchiveFrame, ArchiveReader, Manifest, SignedConfiguration};
use crate::error::LogError;
use crate::evidence::EvidenceFrames;
use crate::hash::Sha256Hash;
use crate::keys::KeyRing;
use crate::record::{Body, Entry, ExchangeRecord, MessagePart};
use crate::segment::RawEntry;

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineRow {
    pub sequence: u64,
    pub time: String,
    pub side: &'static str,
    pub message_id: String,
    pub client: String,
    pub service: String,
    pub method: String,
    pub path_and_query: String,
    pub status: u16,
    pub fault_code: Option<String>,
    pub request_size: u64,
    pub response_size: u64,
    pub duration_ms: u64,
}

impl TimelineRow {
    fn of(sequence: u64, record: &ExchangeRecord) -> Self {
        TimelineRow {
            sequence,
            time: format_time(record.request_received_at_ms),
            side: record.side.as_str(),
            message_id: record.message_id.clone(),
            client: record.client.to_string(),
            service: record.service.to_string(),
            method: record.method.clone(),
            path_and_query: record.path_and_query.clone(),
            status: record.status,
            fault_code: record.fault_code.clone(),
            request_size: record.request.body_size,
            response_size: record.response.body_size,
            duration_ms: record.duration_ms(),
        }
    }
}

/// RFC 3339 UTC with milliseconds.
pub(crate) fn format_time(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix_ms}ms"))
}

fn each_entry(
    path: &Path,
    unseal: Option<&OpeningKey>,
    mut visit: impl FnMut(Entry) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let mut reader = ArchiveReader::open(path, unseal)?;
    let archive_error = |message: String| LogError::Archive {
        path: path.to_owned(),
        message,
    };
    let mut evidence = EvidenceFrames::default();
    while let Some(frame) = reader.next_frame().map_err(archive_error)? {
        match frame {
            ArchiveFrame::Evidence(der) => evidence.add(der),
            ArchiveFrame::Entry { hash, content } => {
                let mut entry = RawEntry { hash, content }.decode().map_err(archive_error)?;
                evidence.resolve(&mut entry).map_err(|reason| {
                    archive_error(format!("entry {}: {reason}", entry.sequence))
                })?;
                visit(entry)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Writes the timeline of an archive's exchanges (redacted entries are skipped), one row per
/// line: as JSON lines when `json`, else as aligned text. Streams; memory stays bounded. A sealed
/// archive needs `unseal`, the auditor's private key.
pub fn timeline(
    path: &Path,
    unseal: Option<&OpeningKey>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u64, LogError> {
    let write_error = |e: std::io::Error| LogError::io("write", "standard output", e);
    // Fail on an unreadable or sealed archive before printing anything.
    ArchiveReader::open(path, unseal)?;
    if !json {
        writeln!(
            out,
            "{:<6} {:<29} {:<8} {:<24} {:<32} {:<40} {:>6} {:>9} {:>9} {:>7}",
            "SEQ",
            "TIME (UTC)",
            "SIDE",
            "CLIENT",
            "SERVICE",
            "METHOD PATH",
            "STATUS",
            "REQ B",
            "RESP B",
            "MS"
        )
        .map_err(write_error)?;
    }
    let mut rows = 0u64;
    each_entry(path, unseal, |entry| {
        let Some(record) = entry.exchange() else {
            return Ok(());
        };
        let row = TimelineRow::of(entry.sequence, record);
        if json {
            let line = serde_json::to_string(&row).map_err(|e| LogError::Archive {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            writeln!(out, "{line}").map_err(write_error)?;
        } else {
            let status = match &row.fault_code {
                Some(fault) => format!("{} {fault}", row.status),
                None => row.status.to_string(),
            };
            writeln!(
                out,
                "{:<6} {:<29} {:<8} {:<24} {:<32} {:<40} {:>6} {:>9} {:>9} {:>7}",
                row.sequence,
                row.time,
                row.side,
                row.client,
                row.service,
                format!("{} {}", row.method, row.path_and_query),
                status,
                row.request_size,
                row.response_size,
                row.duration_ms
            )
            .map_err(write_error)?;
        }
        rows += 1;
        Ok(())
    })?;
    Ok(rows)
}

/// The full entries of one message in an archive (one per side that logged it).
pub fn find_exchanges(
    path: &Path,
    unseal: Option<&OpeningKey>,
    message_id: &str,
) -> Result<Vec<Entry>, LogError> {
    let mut found = Vec::new();
    each_entry(path, unseal, |entry| {
        if entry.message_id() == Some(message_id) {
            found.push(entry);
        }
        Ok(())
    })?;
    Ok(found)
}

/// Files written by [`extract_exchange`] for one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedFiles {
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
}

/// Writes one exchange's evidence as plain files an auditor can check with `openssl`:
/// `DIR/<side>-<sequence>/{request,response}/` each with `signing-input.bin`, `signature.der`,
/// `signer.pem`, `chain.pem`, `batch.json` (batch signatures only: root and proof),
/// `certificate-status.der`, and `body` (only with the key), plus `record.json` beside them.
pub fn extract_exchange(
    archive: &Path,
    unseal: Option<&OpeningKey>,
    message_id: &str,
    keys: Option<&KeyRing>,
    dir: &Path,
) -> Result<Vec<ExtractedFiles>, LogError> {
    let entries = find_exchanges(archive, unseal, message_id)?;
    if entries.is_empty() {
        return Err(LogError::Archive {
            path: archive.to_owned(),
            message: format!("message {message_id} is not shown in full in this archive"),
        });
    }
    let missing = |hash: Sha256Hash| LogError::Archive {
        path: archive.to_owned(),
        message: format!("evidence sha256:{hash} is not in the archive"),
    };
    let mut written = Vec::new();
    for entry in entries {
        let Some(record) = entry.exchange() else {
            continue;
        };
        let entry_dir = dir.join(format!("{}-{}", record.side.as_str(), entry.sequence));
        let mut files = Vec::new();
        let mut put = |path: PathBuf, bytes: &[u8]| -> Result<(), LogError> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| LogError::io("create", parent, e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| LogError::io("write", &path, e))?;
            files.push(path);
            Ok(())
        };
        let record_json = crate::json::to_vec_pretty(&entry).map_err(|e| LogError::Archive {
            path: archive.to_owned(),
            message: e.to_string(),
        })?;
        put(entry_dir.join("record.json"), &record_json)?;
        for (name, part) in [("request", &record.request), ("response", &record.response)] {
            let part_dir = entry_dir.join(name);
            put(part_dir.join("signing-input.bin"), &part.signing_input)?;
            if let Some(evidence) = &part.signature {
                put(part_dir.join("signature.der"), &evidence.signature)?;
                let chain = evidence
                    .certificate_chain
                    .iter()
                    .map(|der| der.der().map_err(missing))
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some(signer) = chain.first() {
                    put(part_dir.join("signer.pem"), to_pem(signer).as_bytes())?;
                }
                let chain: String = chain.into_iter().map(to_pem).collect();
                put(part_dir.join("chain.pem"), chain.as_bytes())?;
                if let Some(batch) = &evidence.batch {
                    let json =
                        crate::json::to_vec_pretty(batch).map_err(|e| LogError::Archive {
                            path: archive.to_owned(),
                            message: e.to_string(),
                        })?;
                    put(part_dir.join("batch.json"), &json)?;
                }
            }
            if let Some(status) = &part.certificate_status {
                put(
                    part_dir.join("certificate-status.der"),
                    status.der().map_err(missing)?,
                )?;
            }
            if let (Some(keys), Body::Sealed { key_id, sealed }) = (keys, &part.body) {
                let body = keys
                    .open(key_id, &record.message_id, record.side, name, sealed)
                    .map_err(|message| LogError::BodyKey {
                        key_id: key_id.clone(),
                        message,
                    })?;
                put(part_dir.join("body"), &body)?;
            }
        }
        written.push(ExtractedFiles {
            dir: entry_dir,
            files,
        });
    }
    Ok(written)
}

/// The trust material an archive carries (everything before its entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTrust {
    pub manifest: Manifest,
    /// CA certificates (DER) for the signers' chains.
    pub anchors: Vec<Vec<u8>>,
    /// Approved TSA certificates (DER) for the checkpoints' tokens.
    pub tsa_anchors: Vec<Vec<u8>>,
    /// The global configuration they were taken from, with its detached signature.
    pub global_configuration: Option<SignedConfiguration>,
}

impl ArchiveTrust {
    /// Writes the trust material as plain files into `dir`: `anchors.pem`, `tsa-anchors.pem`,
    /// and `globalconf.json` with `globalconf.json.sig` (the names `docs/globalconf.md`'s
    /// openssl recipe uses), each only when the archive has it. Returns the files written.
    pub fn write_files(&self, dir: &Path) -> Result<Vec<PathBuf>, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io("create", dir, e))?;
        let mut files = Vec::new();
        let mut put = |name: &str, bytes: &[u8]| -> Result<(), LogError> {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| LogError::io("write", &path, e))?;
            files.push(path);
            Ok(())
        };
        let pem = |certificates: &[Vec<u8>]| -> String {
            certificates.iter().map(|der| to_pem(der)).collect()
        };
        if !self.anchors.is_empty() {
            put("anchors.pem", pem(&self.anchors).as_bytes())?;
        }
        if !self.tsa_anchors.is_empty() {
            put("tsa-anchors.pem", pem(&self.tsa_anchors).as_bytes())?;
        }
        if let Some(conf) = &self.global_configuration {
            put("globalconf.json", &conf.bytes)?;
            put("globalconf.json.sig", &conf.signature)?;
        }
        Ok(files)
    }
}

/// Reads an archive's manifest and trust frames, stopping at the first entry. Nothing here is
/// verified: [`crate::verify_archive`] checks the evidence, and the auditor decides whether to
/// trust these certificates (by checking the configuration's signature with the federation's
/// anchor, for example).
pub fn archive_trust(path: &Path, unseal: Option<&OpeningKey>) -> Result<ArchiveTrust, LogError> {
    let mut reader = ArchiveReader::open(path, unseal)?;
    let archive_error = |message: String| LogError::Archive {
        path: path.to_owned(),
        message,
    };
    let Some(ArchiveFrame::Manifest(manifest)) = reader.next_frame().map_err(archive_error)? else {
        return Err(archive_error(
            "the archive does not start with a manifest".into(),
        ));
    };
    let mut trust = ArchiveTrust {
        manifest: *manifest,
        anchors: Vec::new(),
        tsa_anchors: Vec::new(),
        global_configuration: None,
    };
    let mut conf_bytes = None;
    let mut conf_signature = None;
    while let Some(frame) = reader.next_frame().map_err(archive_error)? {
        match frame {
            ArchiveFrame::Anchor(der) => trust.anchors.push(der),
            ArchiveFrame::TsaAnchor(der) => trust.tsa_anchors.push(der),
            ArchiveFrame::GlobalConfiguration(bytes) => conf_bytes = Some(bytes),
            ArchiveFrame::GlobalConfigurationSignature(bytes) => conf_signature = Some(bytes),
            _ => break,
        }
    }
    trust.global_configuration = match (conf_bytes, conf_signature) {
        (Some(bytes), Some(signature)) => Some(SignedConfiguration { bytes, signature }),
        (None, None) => None,
        _ => {
            return Err(archive_error(
                "the global configuration comes without its signature, or the reverse".into(),
            ));
        }
    };
    Ok(trust)
}

/// One exchange in full, as human-readable text (bodies decrypted when `keys` is given).
pub fn describe_exchange(sequence: u64, record: &ExchangeRecord, keys: Option<&KeyRing>) -> String {
    let mut text = String::new();
    let row = TimelineRow::of(sequence, record);
    text.push_str(&format!(
        "entry {sequence}  message {}  ({} side)\n  client   {}\n  service  {}\n  request  {} {}\n  user     {}\n  received {}\n  sent     {}  ({} ms)\n  status   {}{}\n",
        record.message_id, row.side, row.client, row.service, record.method, record.path_and_query,
        record.user_id.as_deref().unwrap_or("-"), row.time, format_time(record.response_sent_at_ms),
        row.duration_ms, record.status, record.fault_code.as_deref().map(|f| format!(" {f}")).unwrap_or_default(),
    ));
    for (name, part) in [("request", &record.request), ("response", &record.response)] {
        text.push_str(&describe_part(record, name, part, keys));
    }
    text
}

fn describe_part(
    record: &ExchangeRecord,
    name: &str,
    part: &MessagePart,
    keys: Option<&KeyRing>,
) -> String {
    let mut text = format!(
        "\n== {name} ==\n  body sha256 {}  ({} bytes)\n",
        part.body_digest, part.body_size
    );
    match &part.signature {
        Some(evidence) => text.push_str(&format!(
            "  signature   {} by certificate sha256 {}{}\n",
            evidence.algorithm,
            evidence
                .certificate_chain
                .first()
                .map(|der| der.sha256().to_hex())
                .unwrap_or_default(),
            if evidence.batch.is_some() {
                " (batch)"
            } else {
                ""
            },
        )),
        None => text.push_str("  signature   none\n"),
    }
    text.push_str(&format!(
        "  signing input:\n{}\n",
        indent(&String::from_utf8_lossy(&part.signing_input))
    ));
    match &part.body {
        Body::Absent => text.push_str("  body        not kept (metadata-only service)\n"),
        Body::Plain(_) => text.push_str("  body        (plaintext, not yet sealed)\n"),
        Body::Sealed { key_id, sealed } => match keys
            .map(|keys| keys.open(key_id, &record.message_id, record.side, name, sealed))
        {
            None => text.push_str(&format!(
                "  body        sealed under key {key_id} (give --key to read it)\n"
            )),
            Some(Err(error)) => {
                text.push_str(&format!("  body        cannot be opened: {error}\n"))
            }
            Some(Ok(body)) => match String::from_utf8(body) {
                Ok(body) => text.push_str(&format!("  body:\n{}\n", indent(&body))),
                Err(body) => text.push_str(&format!(
                    "  body (base64):\n{}\n",
                    indent(&base64::engine::general_purpose::STANDARD.encode(body.as_bytes()))
                )),
            },
        },
    }
    text
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn to_pem(der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}
