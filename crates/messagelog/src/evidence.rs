//! Certificates and OCSP responses in records, stored once and referred to by their SHA-256.
//!
//! Every exchange record carries the same few certificates and stapled statuses: the signers'
//! chains, their OCSP responses, the peer's TLS certificate and its status. Inline, they were
//! more than half of a record's bytes, serialised, hashed, written and synced again for every
//! exchange. Since content format 2 a record names each one as `"sha256:<hex>"`, and the bytes
//! are kept once in the log's evidence store (`evidence/<hex>`, beside `segments/`), made
//! durable before the first record that names them. An archive carries the ones its records
//! name, in evidence frames (see `docs/audit.md`).
//!
//! A reference is bound by the chain like any other field of the record, and the bytes are
//! checked against it wherever they are read, so the store itself needs no protection of its
//! own: altered or missing bytes make the records that name them fail to verify, as altered
//! segments would.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::LogError;
use crate::hash::Sha256Hash;
use crate::record::{Entry, EntryBody};
use crate::segment::{segments_dir, sync_dir};

/// The prefix of a reference in a record's JSON. `:` is not a base64 character, so a reference
/// can never be mistaken for inline bytes.
const REFERENCE_PREFIX: &str = "sha256:";

/// The directory of the evidence store, beside `segments/`.
const EVIDENCE_DIR: &str = "evidence";

/// The largest piece of evidence the store reads back (a certificate or an OCSP response is a few
/// KiB; this only bounds what a damaged store can make a reader allocate).
const MAX_EVIDENCE: u64 = 1024 * 1024;

/// A certificate or an OCSP response (DER) in a record: the bytes themselves, or, as read from a
/// log written since content format 2, a reference to them in the evidence store or the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    Der(Vec<u8>),
    /// Not resolved yet: what was stored is only the SHA-256 of the bytes.
    Stored(Sha256Hash),
}

impl Evidence {
    /// The bytes, or the hash of the bytes when the reference has not been resolved (the
    /// evidence is missing from the archive or the store).
    pub fn der(&self) -> Result<&[u8], Sha256Hash> {
        match self {
            Evidence::Der(der) => Ok(der),
            Evidence::Stored(hash) => Err(*hash),
        }
    }

    /// The hash it names, when it is a reference.
    pub(crate) fn stored(&self) -> Option<Sha256Hash> {
        match self {
            Evidence::Stored(hash) => Some(*hash),
            Evidence::Der(_) => None,
        }
    }

    /// The SHA-256 of the bytes.
    pub fn sha256(&self) -> Sha256Hash {
        match self {
            Evidence::Der(der) => Sha256Hash::of(der),
            Evidence::Stored(hash) => *hash,
        }
    }

    /// Replaces the bytes by their reference (hashed by `memo`), handing the bytes to `store`.
    pub(crate) fn store(&mut self, memo: &HashMemo, store: &mut Vec<(Sha256Hash, Vec<u8>)>) {
        if let Evidence::Der(der) = self {
            let hash = memo.hash(der);
            store.push((hash, std::mem::take(der)));
            *self = Evidence::Stored(hash);
        }
    }

    /// Replaces a reference by the bytes `lookup` gives for it, or fails as it does. `lookup`
    /// must only give bytes whose SHA-256 is the hash.
    pub(crate) fn resolve<E>(
        &mut self,
        lookup: &mut impl FnMut(&Sha256Hash) -> Result<Vec<u8>, E>,
    ) -> Result<(), E> {
        if let Evidence::Stored(hash) = self {
            *self = Evidence::Der(lookup(hash)?);
        }
        Ok(())
    }

    /// How many bytes its JSON takes at most.
    pub(crate) fn json_len(&self) -> usize {
        match self {
            Evidence::Der(der) => der.len().div_ceil(3) * 4 + 2,
            Evidence::Stored(_) => REFERENCE_PREFIX.len() + 64 + 2,
        }
    }
}

impl From<Vec<u8>> for Evidence {
    fn from(der: Vec<u8>) -> Self {
        Evidence::Der(der)
    }
}

impl serde::Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Evidence::Der(der) => crate::hash::base64_bytes::serialize(der, serializer),
            Evidence::Stored(hash) => {
                serializer.collect_str(&format_args!("{REFERENCE_PREFIX}{hash}"))
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Evidence {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        match text.strip_prefix(REFERENCE_PREFIX) {
            Some(hex) => Sha256Hash::from_hex(hex)
                .map(Evidence::Stored)
                .ok_or_else(|| {
                    serde::de::Error::custom("an evidence reference needs 64 hexadecimal digits")
                }),
            None => STANDARD
                .decode(text.as_bytes())
                .map(Evidence::Der)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Whether an entry's content may name evidence by reference (never false when it does: a
/// reference is a JSON string, which starts with its quote).
fn may_name_evidence(content: &[u8]) -> bool {
    let needle = b"\"sha256:";
    content.windows(needle.len()).any(|window| window == needle)
}

/// The hashes of the evidence an entry's content names, read without decoding the rest of the
/// record (its bodies are skipped, not decoded from base64).
pub(crate) fn named_in(content: &[u8]) -> Result<Vec<Sha256Hash>, String> {
    #[derive(serde::Deserialize)]
    struct Content {
        entry: Body,
    }
    /// The evidence fields of an exchange record; a checkpoint has none of them.
    #[derive(serde::Deserialize)]
    struct Body {
        request: Option<Part>,
        response: Option<Part>,
        peer_authentication: Option<Chain>,
    }
    #[derive(serde::Deserialize)]
    struct Part {
        signature: Option<Chain>,
        #[serde(default)]
        certificate_status: Option<Evidence>,
    }
    #[derive(serde::Deserialize)]
    struct Chain {
        certificate_chain: Vec<Evidence>,
        #[serde(default)]
        certificate_status: Option<Evidence>,
    }
    if !may_name_evidence(content) {
        return Ok(Vec::new());
    }
    let content: Content =
        serde_json::from_slice(content).map_err(|e| format!("content is not an entry: {e}"))?;
    let chain = |chain: Chain| {
        chain
            .certificate_chain
            .into_iter()
            .chain(chain.certificate_status)
    };
    let part = |part: Part| {
        part.signature
            .into_iter()
            .flat_map(chain)
            .chain(part.certificate_status)
    };
    let body = content.entry;
    let named = body
        .request
        .into_iter()
        .flat_map(part)
        .chain(body.response.into_iter().flat_map(part))
        .chain(body.peer_authentication.into_iter().flat_map(chain));
    Ok(named.filter_map(|evidence| evidence.stored()).collect())
}

/// The SHA-256 of the evidence most recently stored. A log's records name the same few
/// certificates and statuses over and over; comparing bytes with the few seen last is cheaper
/// than hashing them again for every record.
#[derive(Default)]
pub(crate) struct HashMemo {
    recent: Recent<(Vec<u8>, Sha256Hash), { HashMemo::CAPACITY }>,
}

impl HashMemo {
    /// How many pieces it remembers: the certificates and statuses of both servers of a few
    /// exchanges, with room for the changes when statuses are refreshed.
    const CAPACITY: usize = 32;

    pub(crate) fn hash(&self, der: &[u8]) -> Sha256Hash {
        let found: Result<_, std::convert::Infallible> = self.recent.find_or_insert(
            |(seen, _)| seen.as_slice() == der,
            || Ok((der.to_vec(), Sha256Hash::of(der))),
            |(_, hash)| *hash,
        );
        match found {
            Ok(hash) => hash,
        }
    }
}

/// At most `N` values, the most recently used first.
struct Recent<T, const N: usize>(Mutex<VecDeque<T>>);

impl<T, const N: usize> Default for Recent<T, N> {
    fn default() -> Self {
        Self(Mutex::new(VecDeque::new()))
    }
}

impl<T, const N: usize> Recent<T, N> {
    /// What `read` takes from the first value `matches` accepts (which moves to the front), or
    /// else from the value `make` makes, which is put in front (the least recently used beyond
    /// `N` is forgotten). `make` runs without the lock; its errors are not kept.
    fn find_or_insert<R, E>(
        &self,
        matches: impl Fn(&T) -> bool,
        make: impl FnOnce() -> Result<T, E>,
        read: impl Fn(&T) -> R,
    ) -> Result<R, E> {
        {
            let mut recent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = recent.iter().position(&matches)
                && let Some(found) = recent.remove(at)
            {
                let value = read(&found);
                recent.push_front(found);
                return Ok(value);
            }
        }
        let made = make()?;
        let value = read(&made);
        let mut recent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !recent.iter().any(&matches) {
            recent.push_front(made);
            recent.truncate(N);
        }
        Ok(value)
    }
}

/// The evidence frames of an archive read so far, by the SHA-256 of their bytes.
///
/// An archive carries each piece once, before the first entry that names it, and later entries
/// may name it again, so every piece is kept until the end. A long archive of a server with many
/// peers carries a new OCSP response per peer and refresh (about 2 KB, twice an hour with the
/// default freshness): a year of a hundred peers is gigabytes. So the bytes go to an anonymous
/// temporary file, and memory holds their places (about 80 bytes a piece) and the last
/// [`RECENT_PIECES`] pieces read, which are what the next records name. A piece read back is
/// checked against its hash like any other.
#[derive(Default)]
pub(crate) struct EvidenceFrames {
    /// Where each piece is: in the spill file, or in memory when the spill file could not be
    /// written.
    at: HashMap<Sha256Hash, Place>,
    spill: Option<Spill>,
    recent: Recent<(Sha256Hash, Vec<u8>), RECENT_PIECES>,
}

/// How many pieces read back are kept in memory.
const RECENT_PIECES: usize = 32;

enum Place {
    Spilled { offset: u64, len: usize },
    Held(Vec<u8>),
}

struct Spill {
    file: File,
    end: u64,
}

impl EvidenceFrames {
    pub(crate) fn add(&mut self, der: Vec<u8>) {
        let hash = Sha256Hash::of(&der);
        if self.at.contains_key(&hash) {
            return;
        }
        let place = match self.spill_piece(&der) {
            Ok(place) => place,
            Err(error) => {
                tracing::warn!(%error, "cannot spill archive evidence to a temporary file; keeping it in memory");
                Place::Held(der)
            }
        };
        self.at.insert(hash, place);
    }

    fn spill_piece(&mut self, der: &[u8]) -> std::io::Result<Place> {
        use std::os::unix::fs::FileExt as _;
        let spill = match &mut self.spill {
            Some(spill) => spill,
            None => self.spill.insert(Spill {
                file: tempfile::tempfile()?,
                end: 0,
            }),
        };
        let offset = spill.end;
        spill.file.write_all_at(der, offset)?;
        spill.end += der.len() as u64;
        Ok(Place::Spilled {
            offset,
            len: der.len(),
        })
    }

    /// The bytes of the piece `hash`, if an earlier frame carried it.
    fn get(&self, hash: &Sha256Hash) -> Result<Vec<u8>, String> {
        use std::os::unix::fs::FileExt as _;
        let not_carried =
            || format!("it names evidence sha256:{hash} that the archive does not carry");
        let (offset, len) = match self.at.get(hash).ok_or_else(not_carried)? {
            Place::Held(der) => return Ok(der.clone()),
            Place::Spilled { offset, len } => (*offset, *len),
        };
        let unreadable = |reason: String| {
            format!(
                "evidence sha256:{hash} cannot be read back from the verifier's temporary file: {reason}"
            )
        };
        self.recent.find_or_insert(
            |(known, _)| known == hash,
            || {
                let file = &self
                    .spill
                    .as_ref()
                    .ok_or_else(|| unreadable("there is none".to_owned()))?
                    .file;
                let mut der = vec![0; len];
                file.read_exact_at(&mut der, offset)
                    .map_err(|error| unreadable(error.to_string()))?;
                if Sha256Hash::of(&der) != *hash {
                    return Err(unreadable("its bytes changed".to_owned()));
                }
                Ok((*hash, der))
            },
            |(_, der)| der.clone(),
        )
    }

    /// Puts the bytes in place of each reference of an exchange entry; fails on the first
    /// reference to evidence no earlier frame carried.
    pub(crate) fn resolve(&self, entry: &mut Entry) -> Result<(), String> {
        if let EntryBody::Exchange(record) = &mut entry.entry {
            record.resolve_evidence(|hash| self.get(hash))?;
        }
        Ok(())
    }
}

/// The log's evidence store: one file per distinct piece of evidence, named by its SHA-256, and
/// for each segment whose records name any, the list of what they name
/// (`segments/<first sequence>.evidence`, one hash in hex per line), from which retention learns
/// what it may remove once segments are gone.
pub(crate) struct EvidenceStore {
    log_dir: PathBuf,
    dir: PathBuf,
    /// What is known to be in the store (durably, when the log syncs).
    known: HashSet<Sha256Hash>,
    /// The segment being written and what its list names.
    segment: Option<(u64, HashSet<Sha256Hash>)>,
}

impl EvidenceStore {
    /// Opens (and creates) the store of the log in `log_dir`, learning what it holds. Leftovers of
    /// a write interrupted by a crash are removed: they were never named by a durable record.
    pub(crate) fn open(log_dir: &Path) -> Result<Self, LogError> {
        let dir = log_dir.join(EVIDENCE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io("create", &dir, e))?;
        let mut known = HashSet::new();
        let listing = std::fs::read_dir(&dir).map_err(|e| LogError::io("list", &dir, e))?;
        for item in listing {
            let item = item.map_err(|e| LogError::io("list", &dir, e))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            match Sha256Hash::from_hex(&name) {
                Some(hash) => {
                    known.insert(hash);
                }
                None if name.ends_with(".tmp") => {
                    let path = item.path();
                    std::fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
                }
                None => {}
            }
        }
        Ok(EvidenceStore {
            log_dir: log_dir.to_owned(),
            dir,
            known,
            segment: None,
        })
    }

    /// Makes every piece of `evidence` not yet in the store durable (when `sync`), then adds what
    /// segment `segment_first`'s list does not name yet to it, durably too. Called before the
    /// records that name them are written into that segment, so that no durable record names
    /// evidence that a crash could lose or that retention could take for unnamed.
    pub(crate) fn put_and_name<'a>(
        &mut self,
        segment_first: u64,
        evidence: impl Iterator<Item = &'a (Sha256Hash, Vec<u8>)> + Clone,
        sync: bool,
    ) -> Result<(), LogError> {
        self.put_all(evidence.clone(), sync)?;
        let named = match &mut self.segment {
            Some((first, named)) if *first == segment_first => named,
            segment => {
                // The first batch of a segment, or the first after the log was opened.
                let named = read_names(&names_path(&self.log_dir, segment_first))?;
                &mut segment.insert((segment_first, named)).1
            }
        };
        let mut new = Vec::new();
        for (hash, _) in evidence {
            if !named.contains(hash) && !new.contains(hash) {
                new.push(*hash);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        let path = names_path(&self.log_dir, segment_first);
        let created = !path.exists();
        let mut lines = String::with_capacity(new.len() * 65);
        for hash in &new {
            lines.push_str(&hash.to_hex());
            lines.push('\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io("open", &path, e))?;
        file.write_all(lines.as_bytes())
            .map_err(|e| LogError::io("write", &path, e))?;
        if sync {
            file.sync_data()
                .map_err(|e| LogError::io("sync", &path, e))?;
            if created {
                sync_dir(&segments_dir(&self.log_dir))?;
            }
        }
        named.extend(new);
        Ok(())
    }

    fn put_all<'a>(
        &mut self,
        evidence: impl Iterator<Item = &'a (Sha256Hash, Vec<u8>)>,
        sync: bool,
    ) -> Result<(), LogError> {
        let mut added = false;
        for (hash, der) in evidence {
            if self.known.contains(hash) {
                continue;
            }
            let path = self.dir.join(hash.to_hex());
            let temporary = self.dir.join(format!("{hash}.tmp"));
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&temporary)
                .map_err(|e| LogError::io("create", &temporary, e))?;
            file.write_all(der)
                .map_err(|e| LogError::io("write", &temporary, e))?;
            if sync {
                file.sync_data()
                    .map_err(|e| LogError::io("sync", &temporary, e))?;
            }
            std::fs::rename(&temporary, &path).map_err(|e| LogError::io("rename", &path, e))?;
            self.known.insert(*hash);
            added = true;
        }
        if added && sync {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// After retention removed segments: removes the lists of `removed` segments, then every
    /// piece that no list of the `remaining` segments (nor the segment being written) names.
    /// Returns how many pieces went.
    pub(crate) fn prune(
        &mut self,
        removed: &[u64],
        remaining: &[(u64, PathBuf)],
    ) -> Result<usize, LogError> {
        for first in removed {
            let path = names_path(&self.log_dir, *first);
            match std::fs::remove_file(&path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LogError::io("remove", &path, error));
                }
                _ => {}
            }
        }
        let mut named = HashSet::new();
        for (first, _) in remaining {
            named.extend(read_names(&names_path(&self.log_dir, *first))?);
        }
        if let Some((_, current)) = &self.segment {
            named.extend(current.iter().copied());
        }
        let unnamed: Vec<Sha256Hash> = self.known.difference(&named).copied().collect();
        for hash in &unnamed {
            let path = self.dir.join(hash.to_hex());
            std::fs::remove_file(&path).map_err(|e| LogError::io("remove", &path, e))?;
            self.known.remove(hash);
        }
        if !unnamed.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(unnamed.len())
    }
}

/// Creates segment `first`'s (empty) list of evidence, if it has none, before the segment itself
/// is put in place: the directory sync that makes the segment's name durable makes the list's
/// durable too, so that naming evidence in a new segment syncs the list's content only.
pub(crate) fn create_names(log_dir: &Path, first: u64) -> Result<(), LogError> {
    let path = names_path(log_dir, first);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map(drop)
        .map_err(|e| LogError::io("create", &path, e))
}

/// The list of the evidence that the records of segment `first` name.
fn names_path(log_dir: &Path, first: u64) -> PathBuf {
    segments_dir(log_dir).join(format!("{first:020}.evidence"))
}

/// The hashes a segment's list names; none when it has no list. A line that is not a hash is
/// the end of an append cut by a crash, before the records that would have named it.
fn read_names(path: &Path) -> Result<HashSet<Sha256Hash>, LogError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().filter_map(Sha256Hash::from_hex).collect()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(error) => Err(LogError::io("read", path, error)),
    }
}

/// Reads a piece of evidence of the log in `log_dir`, checked against its hash: `None` when the
/// store does not hold it, an error when the bytes it holds are not the ones named.
pub(crate) fn read_stored(log_dir: &Path, hash: &Sha256Hash) -> Result<Option<Vec<u8>>, LogError> {
    let path = log_dir.join(EVIDENCE_DIR).join(hash.to_hex());
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(LogError::io("open", &path, error)),
    };
    let mut der = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_EVIDENCE + 1), &mut der)
        .map_err(|e| LogError::io("read", &path, e))?;
    if der.len() as u64 > MAX_EVIDENCE || Sha256Hash::of(&der) != *hash {
        return Err(LogError::io(
            "read",
            &path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the stored evidence is not the bytes its name is the SHA-256 of",
            ),
        ));
    }
    Ok(Some(der))
}

#[cfg(test)]
mod tests {
    use super::{
        Evidence, EvidenceFrames, EvidenceStore, HashMemo, Place, RECENT_PIECES, read_stored,
    };
    use crate::hash::Sha256Hash;

    #[test]
    fn a_reference_round_trips_and_bytes_stay_base64() {
        let hash = Sha256Hash::of(b"certificate");
        let json =
            String::from_utf8(crate::json::to_vec(&Evidence::Stored(hash)).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(json, format!("\"sha256:{hash}\""));
        let back: Evidence = serde_json::from_str(&json).unwrap_or(Evidence::Der(Vec::new()));
        assert_eq!(back, Evidence::Stored(hash));
        let inline = String::from_utf8(
            crate::json::to_vec(&Evidence::Der(b"abc".to_vec())).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(inline, "\"YWJj\"");
        assert!(serde_json::from_str::<Evidence>("\"sha256:00\"").is_err());
    }

    #[test]
    fn the_evidence_an_entry_names_is_read_without_its_bodies() {
        let (a, b) = (Sha256Hash::of(b"certificate"), Sha256Hash::of(b"status"));
        let exchange = format!(
            r#"{{"format":2,"sequence":0,"entry":{{"type":"exchange","request":{{"signing_input":"","signature":{{"algorithm":"x","certificate_chain":["sha256:{a}"],"batch":null}},"certificate_status":null,"body":{{"kind":"sealed","sealed":"QUJD"}}}},"response":{{"signature":null,"certificate_status":"sha256:{b}"}},"peer_authentication":{{"certificate_chain":["AAEC"]}}}}}}"#
        );
        let named = super::named_in(exchange.as_bytes()).unwrap_or_default();
        // Inline bytes (content format 1) are not named: the archive carries them in the entry.
        assert_eq!(named, vec![a, b]);
        let checkpoint = r#"{"format":2,"entry":{"type":"checkpoint","first_sequence":0}}"#;
        assert_eq!(super::named_in(checkpoint.as_bytes()), Ok(Vec::new()));
        assert!(super::named_in(b"{\"sha256:").is_err());
    }

    #[test]
    fn the_memo_gives_the_sha256_of_the_bytes_remembered_or_not() {
        let memo = HashMemo::default();
        let pieces: Vec<Vec<u8>> = (0..HashMemo::CAPACITY as u32 + 5)
            .map(|i| format!("certificate {i}").into_bytes())
            .collect();
        // Twice over more pieces than it holds, and the first ones again once evicted.
        for piece in pieces.iter().chain(&pieces).chain(&pieces[..3]) {
            assert_eq!(memo.hash(piece), Sha256Hash::of(piece));
        }
        let same_length = [b"certificate 1".to_vec(), b"certificate 2".to_vec()];
        assert_ne!(memo.hash(&same_length[0]), memo.hash(&same_length[1]));
    }

    #[test]
    fn stored_evidence_is_read_back_checked_against_its_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join("segments")).unwrap_or_else(|e| panic!("{e}"));
        let mut store = EvidenceStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let mut evidence = Evidence::Der(b"an OCSP response".to_vec());
        let mut blobs = Vec::new();
        evidence.store(&HashMemo::default(), &mut blobs);
        let hash = Sha256Hash::of(b"an OCSP response");
        assert_eq!(evidence, Evidence::Stored(hash));
        store
            .put_and_name(0, blobs.iter(), true)
            .unwrap_or_else(|e| panic!("{e}"));
        let read = read_stored(dir.path(), &hash).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read.as_deref(), Some(&b"an OCSP response"[..]));
        let missing = Sha256Hash::of(b"something else");
        assert!(matches!(read_stored(dir.path(), &missing), Ok(None)));

        // Bytes under the wrong name are refused, not returned.
        let path = dir.path().join("evidence").join(hash.to_hex());
        std::fs::write(&path, b"altered").unwrap_or_else(|e| panic!("{e}"));
        assert!(read_stored(dir.path(), &hash).is_err());

        // A store opened again knows what it holds and drops interrupted writes.
        std::fs::write(dir.path().join("evidence").join("x.tmp"), b"half")
            .unwrap_or_else(|e| panic!("{e}"));
        let store = EvidenceStore::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        assert!(store.known.contains(&hash));
        assert!(!dir.path().join("evidence").join("x.tmp").exists());
    }

    #[test]
    fn an_archives_evidence_is_kept_out_of_memory_and_read_back_whole() {
        let pieces: Vec<Vec<u8>> = (0..3 * RECENT_PIECES)
            .map(|n| format!("certificate status {n}").repeat(n + 1).into_bytes())
            .collect();
        let mut frames = EvidenceFrames::default();
        for piece in &pieces {
            frames.add(piece.clone());
            // Carried twice: kept once.
            frames.add(piece.clone());
        }
        assert_eq!(frames.at.len(), pieces.len());
        assert!(
            frames
                .at
                .values()
                .all(|place| matches!(place, Place::Spilled { .. }))
        );
        // Read in an order the recent pieces do not cover, and again.
        for round in 0..2 {
            for piece in pieces.iter().rev().chain(pieces.iter().step_by(7)) {
                assert_eq!(
                    frames.get(&Sha256Hash::of(piece)).as_deref(),
                    Ok(piece.as_slice()),
                    "round {round}"
                );
            }
        }
        assert!(frames.recent.0.lock().unwrap().len() <= RECENT_PIECES);
        let absent = Sha256Hash::of(b"never carried");
        assert!(
            frames
                .get(&absent)
                .is_err_and(|error| error.contains("does not carry"))
        );
    }
}
