//! Offline verification of an archive: checksums, chain, spans and checkpoints, time-stamp
//! tokens, signatures, certificate chains, stapled certificate status and (with the key) bodies.
//! One pass, bounded memory.

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_pki::merkle::leaf_hash;
use passerelle_pki::ocsp::{self, OcspError};
use passerelle_pki::sealed_box::OpeningKey;
use passerelle_pki::tsp::TsaTrust;
use passerelle_pki::{Certificate, Purpose, SignatureAlgorithm, validate_chain};
use serde::Serialize;

use crate::accumulator::MerkleAccumulator;
use crate::archive::{ArchiveFrame, ArchiveReader, Manifest};
use crate::checkpoint::TokenVerifier;
use crate::error::LogError;
use crate::evidence::{Evidence, EvidenceFrames};
use crate::hash::Sha256Hash;
use crate::keys::KeyRing;
use crate::record::{
    Body, CONTENT_FORMATS, CheckpointRecord, Entry, EntryBody, ExchangeRecord, MessagePart,
    PeerAuthentication,
};
use crate::segment::RawEntry;

/// The OCSP freshness applied to stapled responses when neither the archive's manifest (archives
/// made before it recorded `ocsp_freshness_secs`, or exported without a global configuration)
/// nor [`VerifyOptions::ocsp_freshness`] gives one: the global configuration's own default.
pub const DEFAULT_OCSP_FRESHNESS: Duration = Duration::from_secs(3600);

/// What to check beyond the chain.
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// With the body keys, every sealed body is opened and its digest and size compared.
    pub keys: Option<&'a KeyRing>,
    /// Trust anchors (CA certificates, DER) in addition to those inside the archive.
    pub anchors: Vec<Vec<u8>>,
    /// Approved time-stamping authorities' certificates (DER) in addition to those inside the
    /// archive. Every checkpoint's token is verified against all of them (RFC 3161 signature,
    /// TSA chain at the token's time, imprint = the checkpoint's root) unless `token_verifier`
    /// is given; with neither, tokens are counted, not checked.
    pub tsa_anchors: Vec<Vec<u8>>,
    /// Checks time-stamp tokens instead of the TSA anchors (a stand-in, or another TSA policy).
    pub token_verifier: Option<&'a dyn TokenVerifier>,
    /// How old a stapled OCSP response may be at the time its signature was logged; overrides
    /// the archive's `ocsp_freshness_secs` (default [`DEFAULT_OCSP_FRESHNESS`]).
    pub ocsp_freshness: Option<Duration>,
    /// Called with the number of entries checked so far, every 65 536 entries.
    pub progress: Option<&'a dyn Fn(u64)>,
    /// The auditor's private key, to open an archive sealed for it.
    pub unseal: Option<&'a OpeningKey>,
    /// The archive this one continues: checks that this archive starts right after its last
    /// entry with its last hash, and recomputes the roots of checkpoints over its entries. Its
    /// chain, spans and checkpoints are checked on the way; its signatures and bodies are not
    /// (verify it on its own for those). A sealed earlier archive is opened with `unseal` too.
    pub previous: Option<&'a Path>,
}

/// The class of the first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A frame's length or checksum is wrong, or it cannot be decoded.
    Framing,
    /// The manifest is missing, malformed, or disagrees with the entries.
    Manifest,
    /// An entry's stored hash is not the hash of its content.
    Hash,
    /// An entry does not follow the one before (previous hash differs).
    Chain,
    /// An entry is missing, repeated or out of order.
    Sequence,
    /// An entry's content is not a valid record.
    Record,
    /// An entry names a certificate or certificate status by its SHA-256 that the archive does
    /// not carry (in an evidence frame before it).
    Evidence,
    /// A signature does not verify with the signer's certificate.
    Signature,
    /// A batch signature's inclusion proof does not lead to the signed root.
    BatchProof,
    /// The signer's certificate chain does not validate at signing time.
    Certificate,
    /// A body does not open with its key, or differs from its digest or size.
    Body,
    /// A checkpoint's root does not match the entries it covers, or a span has no checkpoint.
    Checkpoint,
    /// A time-stamp token does not verify (signature, approved TSA, or imprint = the checkpoint's
    /// root).
    Timestamp,
    /// A stapled OCSP response says the signer's certificate was revoked.
    CertificateRevoked,
    /// A stapled OCSP response says the responder does not know the signer's certificate.
    CertificateStatusUnknown,
    /// A stapled OCSP response was older than the freshness when the signature was logged, or
    /// past its nextUpdate.
    CertificateStatusStale,
    /// A stapled OCSP response is forged (not signed by the issuing CA or a responder it
    /// delegated), answers for another certificate, is dated after the signature, is malformed,
    /// is a responder error, or its issuer is not in the archive.
    CertificateStatusInvalid,
    /// The archive does not continue the earlier archive it was verified against, or that
    /// archive's chain does not hold.
    Previous,
    /// The archive ends before its trailer.
    Truncated,
}

/// The first thing that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The entry at fault (for a missing entry: the one expected).
    pub sequence: Option<u64>,
    pub message_id: Option<String>,
    pub kind: FailureKind,
    pub detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sequence {
            Some(sequence) => write!(f, "entry {sequence}")?,
            None => write!(f, "archive")?,
        }
        if let Some(message_id) = &self.message_id {
            write!(f, " (message {message_id})")?;
        }
        write!(f, ": {:?}: {}", self.kind, self.detail)
    }
}

/// The outcome of [`verify_archive`]. Valid exactly when `failure` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub manifest: Option<Manifest>,
    pub entries: u64,
    pub full_entries: u64,
    pub redacted_entries: u64,
    pub exchanges: u64,
    pub signatures_checked: u64,
    pub certificate_chains_checked: u64,
    pub bodies_checked: u64,
    /// Sealed bodies left unopened because no key was given.
    pub bodies_not_opened: u64,
    pub checkpoints_checked: u64,
    /// Checkpoint entries over spans that lie wholly in an earlier archive not given to check
    /// them against (see [`VerifyOptions::previous`]).
    pub checkpoints_for_earlier_archives: u64,
    /// Whether the archive was checked, successfully, to continue an earlier one
    /// ([`VerifyOptions::previous`]).
    pub continues_previous: bool,
    pub tokens_verified: u64,
    /// Tokens present but not checked (no token verifier was given).
    pub tokens_not_verified: u64,
    /// Stapled certificate-status responses present.
    pub certificate_status_responses: u64,
    /// Stapled responses verified: signed by the issuing CA or its delegated responder, for the
    /// signer's certificate, status good and fresh at the time the part was logged.
    pub certificate_statuses_verified: u64,
    /// Signed parts without a stapled response (their CA has no OCSP responder), and stapled
    /// responses beside no signature: not checked, not failed.
    pub certificate_statuses_not_checked: u64,
    /// Records carrying the peer's authentication certificate with a stapled status verified like
    /// a signing certificate's, at the time the request was received.
    pub peer_authentication_statuses_verified: u64,
    /// Records whose peer authentication certificate or stapled status is absent (written before
    /// it was kept, or the peer's CA has no OCSP responder): not checked, not failed.
    pub peer_authentication_statuses_not_checked: u64,
    /// The OCSP freshness applied, in seconds.
    pub ocsp_freshness_secs: u64,
    /// TSA certificates the tokens were checked against: the archive's and the given ones.
    pub tsa_anchors: u64,
    /// Whether the archive carries the global configuration and its signature.
    pub global_configuration: bool,
    /// Entries after the last checkpoint in the archive: chained but not yet time-stamped.
    pub entries_not_timestamped: u64,
    pub last_sequence: Option<u64>,
    pub last_hash: Option<Sha256Hash>,
    pub failure: Option<Failure>,
}

impl VerifyReport {
    pub fn is_valid(&self) -> bool {
        self.failure.is_none()
    }
}

/// Verifies an archive file. `Err` only when it cannot be read at all; everything about the
/// evidence itself is in the report, which stops at the first failure.
pub fn verify_archive(path: &Path, options: &VerifyOptions<'_>) -> Result<VerifyReport, LogError> {
    let earlier = match options.previous {
        None => None,
        Some(previous) => match earlier_end(previous, options)? {
            Ok(end) => Some(end),
            Err(failure) => {
                return Ok(VerifyReport {
                    failure: Some(failure),
                    ..Default::default()
                });
            }
        },
    };
    let mut reader = match ArchiveReader::open(path, options.unseal) {
        Ok(reader) => reader,
        Err(LogError::Archive { message, .. }) => {
            return Ok(VerifyReport {
                failure: Some(fail(None, None, FailureKind::Framing, message)),
                ..Default::default()
            });
        }
        Err(error) => return Err(error),
    };
    let mut verifier = Verifier::new(options);
    verifier.earlier = earlier;
    let outcome = verifier.run(&mut reader);
    verifier.report.continues_previous = outcome.is_ok() && verifier.earlier.is_some();
    verifier.report.failure = outcome.err();
    Ok(verifier.report)
}

/// How an earlier archive ends: its last entry, and the time-stamp span still open there.
struct EarlierEnd {
    last_sequence: u64,
    last_hash: Sha256Hash,
    span_first: u64,
    open_span: MerkleAccumulator,
}

/// Streams through the earlier archive checking its chain, spans and checkpoints (not its
/// signatures or bodies), and returns how it ends; `Ok(Err(_))` when it does not hold.
fn earlier_end(
    path: &Path,
    options: &VerifyOptions<'_>,
) -> Result<Result<EarlierEnd, Failure>, LogError> {
    let previous_failure = |detail: String| {
        fail(
            None,
            None,
            FailureKind::Previous,
            format!("the earlier archive {}: {detail}", path.display()),
        )
    };
    let mut reader = match ArchiveReader::open(path, options.unseal) {
        Ok(reader) => reader,
        Err(LogError::Archive { message, .. }) => return Ok(Err(previous_failure(message))),
        Err(error) => return Err(error),
    };
    let chain_options = VerifyOptions {
        token_verifier: options.token_verifier,
        tsa_anchors: options.tsa_anchors.clone(),
        ..Default::default()
    };
    let mut verifier = Verifier::new(&chain_options);
    verifier.chain_only = true;
    if let Err(failure) = verifier.run(&mut reader) {
        return Ok(Err(previous_failure(failure.to_string())));
    }
    Ok(
        match (verifier.report.last_sequence, verifier.report.last_hash) {
            (Some(last_sequence), Some(last_hash)) => Ok(EarlierEnd {
                last_sequence,
                last_hash,
                span_first: verifier.span_first,
                open_span: verifier.accumulator,
            }),
            _ => Err(previous_failure("it holds no entries".into())),
        },
    )
}

fn fail(
    sequence: Option<u64>,
    message_id: Option<String>,
    kind: FailureKind,
    detail: impl Into<String>,
) -> Failure {
    Failure {
        sequence,
        message_id,
        kind,
        detail: detail.into(),
    }
}

struct Verifier<'a> {
    options: &'a VerifyOptions<'a>,
    report: VerifyReport,
    anchors: Vec<Certificate>,
    tsa_anchors: Vec<Certificate>,
    /// Built from `tsa_anchors` when the first token is checked (all trust frames come first).
    tsa_trust: Option<TsaTrust>,
    ocsp_freshness: Duration,
    /// Trust frames seen: CA anchors, TSA anchors, configuration, signature.
    trust_frames: (u32, u32, bool, bool),
    next_sequence: u64,
    archive_first: u64,
    previous_hash: Sha256Hash,
    accumulator: MerkleAccumulator,
    span_first: u64,
    /// Spans whose last entry has been seen but whose checkpoint entry has not (yet).
    pending_spans: VecDeque<(u64, u64, Sha256Hash)>,
    /// Check the chain, spans and checkpoints only (for an earlier archive).
    chain_only: bool,
    /// How the archive this one continues ends, when given.
    earlier: Option<EarlierEnd>,
    /// The certificates and statuses the evidence frames so far carried.
    evidence: EvidenceFrames,
}

impl<'a> Verifier<'a> {
    fn new(options: &'a VerifyOptions<'a>) -> Self {
        Verifier {
            options,
            report: VerifyReport::default(),
            anchors: Vec::new(),
            tsa_anchors: Vec::new(),
            tsa_trust: None,
            ocsp_freshness: DEFAULT_OCSP_FRESHNESS,
            trust_frames: (0, 0, false, false),
            next_sequence: 0,
            archive_first: 0,
            previous_hash: Sha256Hash::ZERO,
            accumulator: MerkleAccumulator::new(),
            span_first: 0,
            pending_spans: VecDeque::new(),
            chain_only: false,
            earlier: None,
            evidence: EvidenceFrames::default(),
        }
    }

    fn run<R: Read>(&mut self, reader: &mut ArchiveReader<R>) -> Result<(), Failure> {
        let manifest = match reader.next_frame() {
            Ok(Some(ArchiveFrame::Manifest(manifest))) => *manifest,
            Ok(_) => {
                return Err(fail(
                    None,
                    None,
                    FailureKind::Manifest,
                    "the archive does not start with a manifest",
                ));
            }
            Err(detail) => return Err(fail(None, None, FailureKind::Framing, detail)),
        };
        self.next_sequence = manifest.first_sequence;
        self.archive_first = manifest.first_sequence;
        self.span_first = manifest.first_sequence;
        self.previous_hash = manifest.start_previous_hash;
        if let Some(link) = &manifest.previous_archive
            && (link.last_hash != manifest.start_previous_hash
                || link.last_sequence + 1 != manifest.first_sequence)
        {
            {
                return Err(fail(
                    None,
                    None,
                    FailureKind::Manifest,
                    "the manifest's link to the previous archive does not match its first entry",
                ));
            }
        }
        if let Some(earlier) = &self.earlier
            && (earlier.last_hash != manifest.start_previous_hash
                || earlier.last_sequence + 1 != manifest.first_sequence)
        {
            return Err(fail(
                Some(manifest.first_sequence),
                None,
                FailureKind::Previous,
                format!(
                    "the archive starts at entry {} after hash {}, but the earlier archive ends at entry {} with hash {}",
                    manifest.first_sequence,
                    manifest.start_previous_hash,
                    earlier.last_sequence,
                    earlier.last_hash
                ),
            ));
        }
        self.report.manifest = Some(manifest.clone());
        self.ocsp_freshness = self
            .options
            .ocsp_freshness
            .or(manifest.ocsp_freshness_secs.map(Duration::from_secs))
            .unwrap_or(DEFAULT_OCSP_FRESHNESS);
        self.report.ocsp_freshness_secs = self.ocsp_freshness.as_secs();
        for der in &self.options.tsa_anchors {
            let certificate = Certificate::from_der(der.clone()).map_err(|e| {
                fail(
                    None,
                    None,
                    FailureKind::Timestamp,
                    format!("a given TSA certificate does not parse: {e}"),
                )
            })?;
            self.tsa_anchors.push(certificate);
        }
        for der in &self.options.anchors {
            let certificate = Certificate::from_der(der.clone()).map_err(|e| {
                fail(
                    None,
                    None,
                    FailureKind::Certificate,
                    format!("a given trust anchor does not parse: {e}"),
                )
            })?;
            self.anchors.push(certificate);
        }
        let mut seen_entry = false;
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    return Err(fail(
                        Some(self.next_sequence),
                        None,
                        FailureKind::Truncated,
                        format!(
                            "the archive ends after entry {} without its trailer",
                            self.next_sequence.wrapping_sub(1)
                        ),
                    ));
                }
                Err(detail) => {
                    return Err(fail(
                        Some(self.next_sequence),
                        None,
                        FailureKind::Framing,
                        detail,
                    ));
                }
            };
            match frame {
                ArchiveFrame::Manifest(_) => {
                    return Err(fail(
                        Some(self.next_sequence),
                        None,
                        FailureKind::Manifest,
                        "a second manifest",
                    ));
                }
                ArchiveFrame::Anchor(der) => {
                    if seen_entry {
                        return Err(fail(
                            Some(self.next_sequence),
                            None,
                            FailureKind::Manifest,
                            "a trust anchor after the entries began",
                        ));
                    }
                    let certificate = Certificate::from_der(der).map_err(|e| {
                        fail(
                            None,
                            None,
                            FailureKind::Certificate,
                            format!("a trust anchor in the archive does not parse: {e}"),
                        )
                    })?;
                    self.anchors.push(certificate);
                    self.trust_frames.0 += 1;
                }
                ArchiveFrame::TsaAnchor(der) => {
                    if seen_entry {
                        return Err(fail(
                            Some(self.next_sequence),
                            None,
                            FailureKind::Manifest,
                            "a TSA certificate after the entries began",
                        ));
                    }
                    let certificate = Certificate::from_der(der).map_err(|e| {
                        fail(
                            None,
                            None,
                            FailureKind::Timestamp,
                            format!("a TSA certificate in the archive does not parse: {e}"),
                        )
                    })?;
                    self.tsa_anchors.push(certificate);
                    self.trust_frames.1 += 1;
                }
                ArchiveFrame::GlobalConfiguration(_)
                | ArchiveFrame::GlobalConfigurationSignature(_) => {
                    let signature = matches!(frame, ArchiveFrame::GlobalConfigurationSignature(_));
                    let seen = if signature {
                        &mut self.trust_frames.3
                    } else {
                        &mut self.trust_frames.2
                    };
                    if seen_entry || *seen {
                        return Err(fail(
                            Some(self.next_sequence),
                            None,
                            FailureKind::Manifest,
                            "a second global configuration, or one after the entries began",
                        ));
                    }
                    *seen = true;
                }
                ArchiveFrame::SpanPrefix(prefix) => {
                    self.trust_frames_end(&manifest)?;
                    if let Some(earlier) = &self.earlier {
                        let roots: Vec<Sha256Hash> = earlier
                            .open_span
                            .roots()
                            .into_iter()
                            .map(Sha256Hash)
                            .collect();
                        if (earlier.span_first, earlier.open_span.count(), &roots)
                            != (prefix.first_sequence, prefix.count, &prefix.roots)
                        {
                            return Err(fail(
                                Some(manifest.first_sequence),
                                None,
                                FailureKind::Previous,
                                format!(
                                    "the time-stamp span open at the earlier archive's end ({} entries from {}) differs from the span prefix of this one ({} entries from {})",
                                    earlier.open_span.count(),
                                    earlier.span_first,
                                    prefix.count,
                                    prefix.first_sequence
                                ),
                            ));
                        }
                    }
                    let roots = prefix.roots.iter().map(|root| root.0).collect();
                    let accumulator = MerkleAccumulator::from_parts(prefix.count, roots);
                    match accumulator {
                        Some(accumulator)
                            if !seen_entry
                                && prefix.first_sequence + prefix.count
                                    == manifest.first_sequence =>
                        {
                            self.accumulator = accumulator;
                            self.span_first = prefix.first_sequence;
                        }
                        _ => {
                            return Err(fail(
                                Some(self.next_sequence),
                                None,
                                FailureKind::Checkpoint,
                                "a span prefix that does not fit the archive's start",
                            ));
                        }
                    }
                }
                ArchiveFrame::Evidence(der) => self.evidence.add(der),
                ArchiveFrame::Entry { hash, content } => {
                    if !seen_entry {
                        self.trust_frames_end(&manifest)?;
                    }
                    seen_entry = true;
                    self.entry(RawEntry { hash, content })?;
                }
                ArchiveFrame::Redacted {
                    sequence,
                    previous_hash,
                    content_digest,
                    hash,
                } => {
                    if !seen_entry {
                        self.trust_frames_end(&manifest)?;
                    }
                    seen_entry = true;
                    self.redacted(sequence, previous_hash, content_digest, hash)?;
                }
                ArchiveFrame::SpanEnd {
                    first_sequence,
                    last_sequence,
                } => self.span_end(first_sequence, last_sequence)?,
                ArchiveFrame::Trailer(trailer) => {
                    let last = self.next_sequence.checked_sub(1);
                    if Some(trailer.last_sequence) != last
                        || trailer.last_hash != self.previous_hash
                        || trailer.entries != self.report.entries
                    {
                        return Err(fail(
                            last,
                            None,
                            FailureKind::Manifest,
                            "the trailer does not match the entries",
                        ));
                    }
                    if last != Some(manifest.last_sequence) {
                        return Err(fail(
                            Some(self.next_sequence),
                            None,
                            FailureKind::Sequence,
                            format!(
                                "the manifest promises entries up to {} but the archive ends at {}",
                                manifest.last_sequence, trailer.last_sequence
                            ),
                        ));
                    }
                    if let Some((first, last, _)) = self.pending_spans.front() {
                        return Err(fail(
                            Some(*last),
                            None,
                            FailureKind::Checkpoint,
                            format!(
                                "entries {first}..={last} form a time-stamp span but its checkpoint entry is not in the archive"
                            ),
                        ));
                    }
                    if reader.next_frame().ok().flatten().is_some() {
                        return Err(fail(
                            last,
                            None,
                            FailureKind::Framing,
                            "frames after the trailer",
                        ));
                    }
                    self.report.entries_not_timestamped = self.accumulator.count();
                    self.report.last_sequence = last;
                    self.report.last_hash = Some(self.previous_hash);
                    return Ok(());
                }
            }
        }
    }

    /// Checks, once the trust frames are over, that they are what the manifest announces.
    fn trust_frames_end(&mut self, manifest: &Manifest) -> Result<(), Failure> {
        let (anchors, tsa_anchors, conf, signature) = self.trust_frames;
        let announced = (
            manifest.anchors,
            manifest.tsa_anchors,
            manifest.global_configuration,
            manifest.global_configuration,
        );
        if (anchors, tsa_anchors, conf, signature) != announced {
            return Err(fail(
                Some(manifest.first_sequence),
                None,
                FailureKind::Manifest,
                format!(
                    "the manifest announces {} trust anchors, {} TSA certificates and {} global configuration, but the archive holds {anchors}, {tsa_anchors}, {} configuration and {} signature",
                    manifest.anchors,
                    manifest.tsa_anchors,
                    if manifest.global_configuration {
                        "a"
                    } else {
                        "no"
                    },
                    if conf { "a" } else { "no" },
                    if signature { "a" } else { "no" },
                ),
            ));
        }
        self.report.global_configuration = conf;
        self.report.tsa_anchors = self.tsa_anchors.len() as u64;
        Ok(())
    }

    fn accept(&mut self, hash: Sha256Hash) {
        self.accumulator.push(leaf_hash(&hash.0));
        self.previous_hash = hash;
        self.next_sequence += 1;
        self.report.entries += 1;
        if let Some(progress) = self.options.progress
            && self.report.entries.is_multiple_of(65_536)
        {
            progress(self.report.entries);
        }
    }

    fn redacted(
        &mut self,
        sequence: u64,
        previous: Sha256Hash,
        digest: Sha256Hash,
        hash: Sha256Hash,
    ) -> Result<(), Failure> {
        let at = Some(self.next_sequence);
        if sequence != self.next_sequence {
            return Err(fail(
                at,
                None,
                FailureKind::Sequence,
                format!(
                    "expected entry {}, found redacted entry {sequence}",
                    self.next_sequence
                ),
            ));
        }
        if previous != self.previous_hash {
            return Err(fail(
                at,
                None,
                FailureKind::Chain,
                "the redacted link does not follow the entry before",
            ));
        }
        if Sha256Hash::chain(&previous, &digest) != hash {
            return Err(fail(
                at,
                None,
                FailureKind::Hash,
                "the redacted link's hash is not the hash of its digest",
            ));
        }
        self.report.redacted_entries += 1;
        self.accept(hash);
        Ok(())
    }

    fn entry(&mut self, raw: RawEntry) -> Result<(), Failure> {
        let expected = self.next_sequence;
        let mut entry: Entry = match raw.decode() {
            Ok(entry) => entry,
            Err(detail) => {
                // Still say whether the hash holds: a damaged entry is most often an altered one.
                let kind = if raw.hash_holds(&self.previous_hash) {
                    FailureKind::Record
                } else {
                    FailureKind::Hash
                };
                return Err(fail(Some(expected), None, kind, detail));
            }
        };
        let message_id = entry.message_id().map(str::to_owned);
        let at = |kind, detail: String| fail(Some(expected), message_id.clone(), kind, detail);
        if entry.sequence != expected {
            return Err(at(
                FailureKind::Sequence,
                format!("expected entry {expected}, found entry {}", entry.sequence),
            ));
        }
        if entry.previous_hash != self.previous_hash {
            return Err(at(
                FailureKind::Chain,
                "its previous hash is not the hash of the entry before".into(),
            ));
        }
        if !raw.hash_holds(&entry.previous_hash) {
            return Err(at(
                FailureKind::Hash,
                "its content does not match its hash (altered after logging)".into(),
            ));
        }
        if !CONTENT_FORMATS.contains(&entry.format) {
            return Err(at(
                FailureKind::Record,
                format!(
                    "content format {} is not one this verifier knows (up to {})",
                    entry.format,
                    CONTENT_FORMATS.end()
                ),
            ));
        }
        if !self.chain_only {
            self.evidence
                .resolve(&mut entry)
                .map_err(|detail| at(FailureKind::Evidence, detail))?;
        }
        match &entry.entry {
            EntryBody::Exchange(_) if self.chain_only => {}
            EntryBody::Exchange(record) => self
                .exchange(record)
                .map_err(|(kind, detail)| at(kind, detail))?,
            EntryBody::Checkpoint(checkpoint)
                if checkpoint.last_sequence < self.archive_first
                    && self.pending_spans.is_empty() =>
            {
                // Its span ended in an earlier archive (exported before it was stamped): the
                // root is checked against that archive when it is given.
                match &self.earlier {
                    None => self.report.checkpoints_for_earlier_archives += 1,
                    Some(earlier) => {
                        let expected = (
                            earlier.span_first,
                            earlier.last_sequence,
                            earlier.open_span.root().map(Sha256Hash),
                        );
                        let found = (
                            checkpoint.first_sequence,
                            checkpoint.last_sequence,
                            Some(checkpoint.root),
                        );
                        if expected != found {
                            return Err(at(
                                FailureKind::Checkpoint,
                                format!(
                                    "checkpoint over {}..={} with root {} does not match the earlier archive's open span of {} entries from {}",
                                    checkpoint.first_sequence,
                                    checkpoint.last_sequence,
                                    checkpoint.root,
                                    earlier.open_span.count(),
                                    earlier.span_first
                                ),
                            ));
                        }
                        self.report.checkpoints_checked += 1;
                        self.check_token(checkpoint)
                            .map_err(|detail| at(FailureKind::Timestamp, detail))?;
                    }
                }
            }
            EntryBody::Checkpoint(checkpoint) => {
                let Some((first, last, root)) = self.pending_spans.pop_front() else {
                    return Err(at(
                        FailureKind::Checkpoint,
                        format!(
                            "checkpoint over {}..={} whose entries this archive does not show",
                            checkpoint.first_sequence, checkpoint.last_sequence
                        ),
                    ));
                };
                if (first, last, root)
                    != (
                        checkpoint.first_sequence,
                        checkpoint.last_sequence,
                        checkpoint.root,
                    )
                {
                    return Err(at(
                        FailureKind::Checkpoint,
                        format!(
                            "checkpoint over {}..={} with root {} but entries {first}..={last} have root {root}",
                            checkpoint.first_sequence, checkpoint.last_sequence, checkpoint.root
                        ),
                    ));
                }
                self.report.checkpoints_checked += 1;
                self.check_token(checkpoint)
                    .map_err(|detail| at(FailureKind::Timestamp, detail))?;
            }
        }
        self.report.full_entries += 1;
        self.accept(raw.hash);
        Ok(())
    }

    fn check_token(&mut self, checkpoint: &CheckpointRecord) -> Result<(), String> {
        let span = |detail: String| {
            format!(
                "checkpoint over entries {}..={}: its time-stamp token does not verify: {detail}",
                checkpoint.first_sequence, checkpoint.last_sequence
            )
        };
        match self.options.token_verifier {
            Some(verifier) => {
                verifier
                    .verify(&checkpoint.token, &checkpoint.root.0)
                    .map_err(span)?;
                self.report.tokens_verified += 1;
            }
            None if !self.tsa_anchors.is_empty() => {
                let anchors = &self.tsa_anchors;
                self.tsa_trust
                    .get_or_insert_with(|| TsaTrust::new(anchors.clone()))
                    .verify(&checkpoint.token, &checkpoint.root.0)
                    .map_err(|error| span(error.to_string()))?;
                self.report.tokens_verified += 1;
            }
            None => self.report.tokens_not_verified += 1,
        }
        Ok(())
    }

    fn span_end(&mut self, first: u64, last: u64) -> Result<(), Failure> {
        let seen_last = self.next_sequence.checked_sub(1);
        if first != self.span_first || Some(last) != seen_last {
            return Err(fail(
                seen_last,
                None,
                FailureKind::Checkpoint,
                format!(
                    "a span {first}..={last} that does not match the entries {}..={}",
                    self.span_first,
                    seen_last.unwrap_or(0)
                ),
            ));
        }
        let root = self
            .accumulator
            .root()
            .map(Sha256Hash)
            .ok_or_else(|| fail(seen_last, None, FailureKind::Checkpoint, "an empty span"))?;
        self.pending_spans.push_back((first, last, root));
        self.accumulator = MerkleAccumulator::new();
        self.span_first = last + 1;
        Ok(())
    }

    fn exchange(&mut self, record: &ExchangeRecord) -> Result<(), (FailureKind, String)> {
        self.report.exchanges += 1;
        for (name, part, signed_at) in [
            ("request", &record.request, record.request_received_at_ms),
            ("response", &record.response, record.response_sent_at_ms),
        ] {
            self.part(record, name, part, signed_at)
                .map_err(|(kind, detail)| (kind, format!("{name}: {detail}")))?;
        }
        self.peer_authentication(record)
            .map_err(|(kind, detail)| (kind, format!("peer authentication: {detail}")))
    }

    /// Checks the peer's stapled authentication-certificate status as the logging server had to
    /// when it received the request.
    fn peer_authentication(
        &mut self,
        record: &ExchangeRecord,
    ) -> Result<(), (FailureKind, String)> {
        let Some(PeerAuthentication {
            certificate_chain,
            certificate_status: Some(response),
        }) = &record.peer_authentication
        else {
            self.report.peer_authentication_statuses_not_checked += 1;
            return Ok(());
        };
        let parse = |der: &Evidence| {
            Certificate::from_der(der.der().map_err(unresolved)?.to_vec()).map_err(|e| {
                (
                    FailureKind::CertificateStatusInvalid,
                    format!("peer certificate does not parse: {e}"),
                )
            })
        };
        let (leaf_der, intermediates_der) = certificate_chain.split_first().ok_or((
            FailureKind::CertificateStatusInvalid,
            "a stapled status with no peer certificate".to_owned(),
        ))?;
        let leaf = parse(leaf_der)?;
        let intermediates = intermediates_der
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        let received_at = UNIX_EPOCH + Duration::from_millis(record.request_received_at_ms);
        let response = response.der().map_err(unresolved)?;
        self.certificate_status(response, &leaf, &intermediates, received_at)?;
        self.report.peer_authentication_statuses_verified += 1;
        Ok(())
    }

    fn part(
        &mut self,
        record: &ExchangeRecord,
        name: &str,
        part: &MessagePart,
        signed_at_ms: u64,
    ) -> Result<(), (FailureKind, String)> {
        if let Some(evidence) = &part.signature {
            let algorithm: SignatureAlgorithm = evidence
                .algorithm
                .parse()
                .map_err(|e| (FailureKind::Signature, format!("{e}")))?;
            let (signer_der, intermediates_der) = evidence
                .certificate_chain
                .split_first()
                .ok_or((FailureKind::Certificate, "no signer certificate".to_owned()))?;
            let signer_der = signer_der.der().map_err(unresolved)?;
            let signer = Certificate::from_der(signer_der.to_vec()).map_err(|e| {
                (
                    FailureKind::Certificate,
                    format!("signer certificate does not parse: {e}"),
                )
            })?;
            let signed_message: &[u8] = match &evidence.batch {
                Some(batch) => {
                    batch
                        .proof
                        .verify(&leaf_hash(&part.signing_input), &batch.root.0)
                        .map_err(|e| (FailureKind::BatchProof, e.to_string()))?;
                    &batch.root.0
                }
                None => &part.signing_input,
            };
            signer
                .verify_signature(algorithm, signed_message, &evidence.signature)
                .map_err(|e| {
                    (
                        FailureKind::Signature,
                        format!("signature does not verify with {}: {e}", signer.subject()),
                    )
                })?;
            self.report.signatures_checked += 1;
            if self.anchors.is_empty() {
                return Err((
                    FailureKind::Certificate,
                    "no trust anchors to check the signer's chain against (give --anchors)".into(),
                ));
            }
            let intermediates = intermediates_der
                .iter()
                .map(|der| {
                    Certificate::from_der(der.der().map_err(unresolved)?.to_vec()).map_err(|e| {
                        (
                            FailureKind::Certificate,
                            format!("intermediate certificate does not parse: {e}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let signed_at = UNIX_EPOCH + Duration::from_millis(signed_at_ms);
            validate_chain(
                &signer,
                &intermediates,
                &self.anchors,
                signed_at,
                Purpose::Signing,
            )
            .map_err(|e| {
                (
                    FailureKind::Certificate,
                    format!(
                        "signer {} at {}: {e}",
                        signer.subject(),
                        format_ms(signed_at)
                    ),
                )
            })?;
            self.report.certificate_chains_checked += 1;
            match &part.certificate_status {
                Some(response) => {
                    self.report.certificate_status_responses += 1;
                    let response = response.der().map_err(unresolved)?;
                    self.certificate_status(response, &signer, &intermediates, signed_at)?;
                    self.report.certificate_statuses_verified += 1;
                }
                None => self.report.certificate_statuses_not_checked += 1,
            }
        } else if part.certificate_status.is_some() {
            // A status beside no signature names no certificate to check it for.
            self.report.certificate_status_responses += 1;
            self.report.certificate_statuses_not_checked += 1;
        }
        if let Body::Sealed { key_id, sealed } = &part.body {
            match self.options.keys {
                Some(keys) => {
                    let plaintext = keys
                        .open(key_id, &record.message_id, record.side, name, sealed)
                        .map_err(|detail| (FailureKind::Body, detail))?;
                    if plaintext.len() as u64 != part.body_size
                        || Sha256Hash::of(&plaintext) != part.body_digest
                    {
                        return Err((
                            FailureKind::Body,
                            "the body differs from its recorded digest or size".into(),
                        ));
                    }
                    self.report.bodies_checked += 1;
                }
                None => self.report.bodies_not_opened += 1,
            }
        }
        Ok(())
    }
}

impl Verifier<'_> {
    /// Checks a stapled OCSP response for `signer` as the logging server had to, at the time it
    /// logged the part: issued by the signer's CA (from the chain or the anchors) or a responder
    /// it delegated, for this certificate, good, and no older than the freshness.
    fn certificate_status(
        &self,
        response: &[u8],
        signer: &Certificate,
        intermediates: &[Certificate],
        logged_at: SystemTime,
    ) -> Result<(), (FailureKind, String)> {
        let context = |error: &dyn std::fmt::Display| {
            format!(
                "stapled certificate status of {} at {}: {error}",
                signer.subject(),
                format_ms(logged_at)
            )
        };
        let candidates = intermediates
            .iter()
            .chain(&self.anchors)
            .filter(|candidate| candidate.subject_der() == signer.issuer_der());
        for issuer in candidates {
            match ocsp::verify(response, signer, issuer, logged_at, self.ocsp_freshness) {
                Ok(_) => return Ok(()),
                Err(OcspError::WrongIssuer { .. }) => continue,
                Err(error) => return Err((status_failure_kind(&error), context(&error))),
            }
        }
        Err((
            FailureKind::CertificateStatusInvalid,
            context(&format!(
                "its issuer {} is neither in the signer's chain nor among the trust anchors",
                signer.issuer()
            )),
        ))
    }
}

/// The failure of evidence that was not resolved (the archive does not carry it).
fn unresolved(hash: Sha256Hash) -> (FailureKind, String) {
    (
        FailureKind::Evidence,
        format!("evidence sha256:{hash} is not in the archive"),
    )
}

/// The failure kind of each way a stapled response can fail (exhaustive on purpose: a new
/// [`OcspError`] variant must be given its kind, as it is given a fault code in the servers).
fn status_failure_kind(error: &OcspError) -> FailureKind {
    match error {
        OcspError::Revoked { .. } => FailureKind::CertificateRevoked,
        OcspError::Unknown { .. } => FailureKind::CertificateStatusUnknown,
        OcspError::Stale { .. } => FailureKind::CertificateStatusStale,
        OcspError::NotYetValid { .. }
        | OcspError::BadResponderSignature { .. }
        | OcspError::UnauthorizedResponder { .. }
        | OcspError::CertIdMismatch { .. }
        | OcspError::WrongIssuer { .. }
        | OcspError::Malformed { .. }
        | OcspError::ResponderError { .. } => FailureKind::CertificateStatusInvalid,
    }
}

fn format_ms(time: SystemTime) -> String {
    crate::replay::format_time(crate::checkpoint::unix_millis(time))
}
