//! Sealed boxes: a byte stream encrypted for one recipient's P-256 public key, written and read
//! in bounded memory (an audit archive sealed for an auditor).
//!
//! Format, version 1 (integers little-endian unless said otherwise):
//!
//! | bytes | content |
//! |---|---|
//! | 0..8 | magic `PSLSEAL\0` ([`SEALED_BOX_MAGIC`]) |
//! | 8..12 | version `1` |
//! | 12..16 | chunk size: plaintext bytes per chunk ([`CHUNK_SIZE`] when written here) |
//! | 16..48 | recipient key id: SHA-256 of the recipient's uncompressed public point |
//! | 48..113 | the sender's ephemeral public key, uncompressed P-256 point |
//! | then | chunks: AES-256-GCM ciphertext ‖ 16-byte tag |
//!
//! The key is `HKDF-SHA256(salt = the 113 header bytes, secret = ECDH(ephemeral, recipient),
//! info = "passerelle sealed box v1")`, 32 bytes, used for AES-256-GCM. Chunk `i` (from 0) uses
//! the nonce `0u32 ‖ i as u64 big-endian` and the one-byte additional data `1` when it is the last
//! chunk, `0` otherwise. Every chunk but the last holds exactly `chunk size` plaintext bytes; the
//! last holds `0..=chunk size` and always exists. So a box cut at a chunk boundary fails (its new
//! last chunk was sealed as not-last), and so does any altered, reordered or appended byte.
//!
//! A fresh ephemeral key per box means the (key, nonce) pair never repeats. Only ring is used:
//! ring offers ECDH only with ephemeral keys, so [`OpeningKey`] rebuilds the recipient's static
//! key as an "ephemeral" one by handing ring its scalar through ring's deterministic test random
//! source (`ring::test::rand::FixedSliceRandom`, deprecated but public). That is the one place a
//! ring upgrade may break; the round-trip tests will say so.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use ring::hkdf;
use ring::rand::SystemRandom;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::io::read_full;
use crate::{Certificate, der, encoding};

/// The first eight bytes of every sealed box.
pub const SEALED_BOX_MAGIC: [u8; 8] = *b"PSLSEAL\0";
/// The format version written and read here.
pub const SEALED_BOX_VERSION: u32 = 1;
/// Plaintext bytes per chunk written by [`SealWriter`].
pub const CHUNK_SIZE: usize = 64 * 1024;
/// The largest chunk size a reader accepts (bounds its memory on a hostile header).
pub const MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;

const HEADER_LEN: usize = 8 + 4 + 4 + 32 + POINT_LEN;
const POINT_LEN: usize = 65;
const SCALAR_LEN: usize = 32;
const TAG_LEN: usize = 16;
const KDF_INFO: &[u8] = b"passerelle sealed box v1";

/// Why a key could not be used or a box could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealedBoxError {
    #[error("not a recipient key: {reason}")]
    RecipientKey { reason: String },
    #[error("not an opening key: {reason}")]
    OpeningKey { reason: String },
    #[error("not a sealed box: {reason}")]
    NotSealed { reason: String },
    #[error("the box is sealed for another key (key id {sealed_for}); this key's id is {key_id}")]
    WrongKey { sealed_for: String, key_id: String },
    #[error("chunk {chunk} does not open: the box was altered or truncated")]
    Altered { chunk: u64 },
    #[error("the box ends inside chunk {chunk}: it was truncated")]
    Truncated { chunk: u64 },
    #[error("key agreement failed: {reason}")]
    Crypto { reason: &'static str },
}

impl SealedBoxError {
    fn into_io(self) -> io::Error {
        let kind = match self {
            SealedBoxError::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }

    /// The sealed-box error inside an I/O error returned by [`OpenReader`] or [`SealWriter`].
    pub fn from_io(error: &io::Error) -> Option<&SealedBoxError> {
        error.get_ref()?.downcast_ref()
    }
}

/// A recipient's P-256 public key: what a box is sealed for.
#[derive(Clone, PartialEq, Eq)]
pub struct RecipientKey {
    point: Vec<u8>,
}

impl RecipientKey {
    /// From a DER `SubjectPublicKeyInfo` of an EC P-256 key (uncompressed point).
    pub fn from_spki_der(der_bytes: &[u8]) -> Result<Self, SealedBoxError> {
        let invalid = |reason: String| SealedBoxError::RecipientKey { reason };
        let (rest, spki) = SubjectPublicKeyInfo::from_der(der_bytes)
            .map_err(|e| invalid(format!("unparsable SubjectPublicKeyInfo: {e}")))?;
        if !rest.is_empty() {
            return Err(invalid("trailing bytes after SubjectPublicKeyInfo".into()));
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|parameters| parameters.as_oid().ok());
        if spki.algorithm.algorithm.as_bytes() != der::OID_EC_PUBLIC_KEY
            || curve.as_ref().map(|c| c.as_bytes()) != Some(der::OID_P256)
        {
            return Err(invalid(format!(
                "a box can only be sealed for an EC P-256 key, this is {}",
                spki.algorithm.algorithm.to_id_string()
            )));
        }
        Self::from_point(&spki.subject_public_key.data)
    }

    /// From PEM text holding a `PUBLIC KEY` (as `openssl pkey -pubout` writes) or a
    /// `CERTIFICATE` (the recipient's certificate; the first one is used).
    pub fn from_pem(text: &str) -> Result<Self, SealedBoxError> {
        let blocks = encoding::blocks(text).map_err(|e| SealedBoxError::RecipientKey {
            reason: e.to_string(),
        })?;
        let (tag, der_bytes) = blocks
            .into_iter()
            .find(|(tag, _)| tag == "PUBLIC KEY" || tag == "CERTIFICATE")
            .ok_or_else(|| SealedBoxError::RecipientKey {
                reason: "no PUBLIC KEY or CERTIFICATE block".into(),
            })?;
        if tag == "CERTIFICATE" {
            let certificate =
                Certificate::from_der(der_bytes).map_err(|e| SealedBoxError::RecipientKey {
                    reason: e.to_string(),
                })?;
            let public_key =
                certificate
                    .public_key()
                    .map_err(|e| SealedBoxError::RecipientKey {
                        reason: e.to_string(),
                    })?;
            return Self::from_spki_der(public_key.spki_der());
        }
        Self::from_spki_der(&der_bytes)
    }

    /// Reads a PEM file (see [`RecipientKey::from_pem`]) or a DER `SubjectPublicKeyInfo` file.
    pub fn load(path: &Path) -> Result<Self, SealedBoxError> {
        let bytes = encoding::read_file(path).map_err(|e| SealedBoxError::RecipientKey {
            reason: e.to_string(),
        })?;
        if encoding::looks_like_pem(&bytes) {
            let text = encoding::pem_text(bytes).map_err(|e| SealedBoxError::RecipientKey {
                reason: e.to_string(),
            })?;
            Self::from_pem(&text)
        } else {
            Self::from_spki_der(&bytes)
        }
    }

    fn from_point(point: &[u8]) -> Result<Self, SealedBoxError> {
        if point.len() != POINT_LEN || point.first() != Some(&0x04) {
            return Err(SealedBoxError::RecipientKey {
                reason: format!(
                    "expected an uncompressed P-256 point of {POINT_LEN} bytes, got {} bytes",
                    point.len()
                ),
            });
        }
        Ok(RecipientKey {
            point: point.to_vec(),
        })
    }

    /// SHA-256 of the uncompressed point, as written in a box's header.
    pub fn key_id(&self) -> [u8; 32] {
        encoding::sha256(&self.point)
    }
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientKey")
            .field("key_id", &hex::encode(self.key_id()))
            .finish()
    }
}

/// A recipient's P-256 private key, which opens boxes sealed for its public half. `Debug` never
/// shows the secret.
pub struct OpeningKey {
    scalar: [u8; SCALAR_LEN],
    recipient: RecipientKey,
}

impl OpeningKey {
    /// From an unencrypted PKCS#8 DER EC P-256 key (what `openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256` and `passerelle pki` write).
    pub fn from_pkcs8_der(der_bytes: &[u8]) -> Result<Self, SealedBoxError> {
        // ring validates the whole structure (curve, scalar range, public key) first.
        crate::SigningKey::from_pkcs8_der(der_bytes).map_err(|e| SealedBoxError::OpeningKey {
            reason: e.to_string(),
        })?;
        let scalar = pkcs8_p256_scalar(der_bytes).ok_or_else(|| SealedBoxError::OpeningKey {
            reason: "no 32-byte private key inside the pkcs#8 structure".into(),
        })?;
        let point = ephemeral_from_scalar(&scalar)?
            .compute_public_key()
            .map_err(|_| SealedBoxError::Crypto {
                reason: "cannot compute the public key",
            })?;
        Ok(OpeningKey {
            scalar,
            recipient: RecipientKey::from_point(point.as_ref())?,
        })
    }

    /// From PEM text holding one `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pem(text: &str) -> Result<Self, SealedBoxError> {
        let der_bytes = encoding::single_block(text, &["PRIVATE KEY"]).map_err(|e| {
            SealedBoxError::OpeningKey {
                reason: format!(
                    "{e} (an `EC PRIVATE KEY` converts with `openssl pkcs8 -topk8 -nocrypt`)"
                ),
            }
        })?;
        Self::from_pkcs8_der(&der_bytes)
    }

    /// Reads a PEM or DER PKCS#8 key file.
    pub fn load(path: &Path) -> Result<Self, SealedBoxError> {
        let bytes = encoding::read_file(path).map_err(|e| SealedBoxError::OpeningKey {
            reason: e.to_string(),
        })?;
        if encoding::looks_like_pem(&bytes) {
            let text = encoding::pem_text(bytes).map_err(|e| SealedBoxError::OpeningKey {
                reason: e.to_string(),
            })?;
            Self::from_pem(&text)
        } else {
            Self::from_pkcs8_der(&bytes)
        }
    }

    /// The public half.
    pub fn recipient(&self) -> &RecipientKey {
        &self.recipient
    }
}

impl fmt::Debug for OpeningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpeningKey")
            .field("key_id", &hex::encode(self.recipient.key_id()))
            .finish_non_exhaustive()
    }
}

impl Drop for OpeningKey {
    fn drop(&mut self) {
        self.scalar.fill(0);
    }
}

/// Whether `prefix` (the first bytes of a file) starts like a sealed box.
pub fn is_sealed(prefix: &[u8]) -> bool {
    prefix.starts_with(&SEALED_BOX_MAGIC)
}

/// Starts a box for `recipient`: writes the header to `inner` and returns the writer of the
/// plaintext. [`SealWriter::finish`] must be called to write the last chunk; a box whose writer
/// was dropped without it does not open (it reads as truncated).
pub fn seal_writer<W: Write>(
    recipient: &RecipientKey,
    mut inner: W,
) -> Result<SealWriter<W>, SealedBoxError> {
    let rng = SystemRandom::new();
    let ephemeral =
        EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| SealedBoxError::Crypto {
            reason: "the random generator failed",
        })?;
    let ephemeral_public = ephemeral
        .compute_public_key()
        .map_err(|_| SealedBoxError::Crypto {
            reason: "cannot compute the ephemeral public key",
        })?;
    let header = header_bytes(
        CHUNK_SIZE as u32,
        &recipient.key_id(),
        ephemeral_public.as_ref(),
    );
    let key = derive_key(ephemeral, &recipient.point, &header)?;
    inner
        .write_all(&header)
        .map_err(|e| SealedBoxError::NotSealed {
            reason: format!("cannot write the header: {e}"),
        })?;
    Ok(SealWriter {
        inner,
        key,
        chunk: 0,
        buffer: Vec::with_capacity(CHUNK_SIZE + TAG_LEN),
    })
}

/// Reads a box's header from `inner` with `key` and returns the reader of the plaintext. Every
/// chunk is authenticated before any of its bytes are returned; reading fails with an
/// [`io::Error`] wrapping a [`SealedBoxError`] (see [`SealedBoxError::from_io`]) on a wrong,
/// altered or truncated box.
pub fn open_reader<R: Read>(
    key: &OpeningKey,
    mut inner: R,
) -> Result<OpenReader<R>, SealedBoxError> {
    let mut header = [0u8; HEADER_LEN];
    read_full(&mut inner, &mut header)
        .and_then(|read| {
            (read == HEADER_LEN)
                .then_some(())
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
        })
        .map_err(|e| SealedBoxError::NotSealed {
            reason: format!("cannot read the {HEADER_LEN}-byte header: {e}"),
        })?;
    let not_sealed = |reason: String| SealedBoxError::NotSealed { reason };
    if !is_sealed(&header) {
        return Err(not_sealed("bad magic".into()));
    }
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != SEALED_BOX_VERSION {
        return Err(not_sealed(format!("unsupported version {version}")));
    }
    let chunk_size = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as usize;
    if chunk_size == 0 || chunk_size > MAX_CHUNK_SIZE {
        return Err(not_sealed(format!("implausible chunk size {chunk_size}")));
    }
    let sealed_for = &header[16..48];
    if sealed_for != key.recipient.key_id() {
        return Err(SealedBoxError::WrongKey {
            sealed_for: hex::encode(sealed_for),
            key_id: hex::encode(key.recipient.key_id()),
        });
    }
    let ephemeral_public = &header[48..];
    let derived = derive_key(
        ephemeral_from_scalar(&key.scalar)?,
        ephemeral_public,
        &header,
    )?;
    Ok(OpenReader {
        inner,
        key: derived,
        chunk_size,
        chunk: 0,
        raw: Vec::with_capacity(chunk_size + TAG_LEN + 1),
        plain: Vec::with_capacity(chunk_size + TAG_LEN),
        position: 0,
        finished: false,
    })
}

/// The plaintext side of a box being written; see [`seal_writer`].
pub struct SealWriter<W: Write> {
    inner: W,
    key: LessSafeKey,
    chunk: u64,
    /// Plaintext not yet sealed, at most [`CHUNK_SIZE`] bytes.
    buffer: Vec<u8>,
}

impl<W: Write> SealWriter<W> {
    /// Seals and writes the last chunk, flushes, and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        let nonce = chunk_nonce(self.chunk);
        self.key
            .seal_in_place_append_tag(nonce, Aad::from([u8::from(last)]), &mut self.buffer)
            .map_err(|_| {
                SealedBoxError::Crypto {
                    reason: "sealing a chunk failed",
                }
                .into_io()
            })?;
        self.inner.write_all(&self.buffer)?;
        self.buffer.clear();
        self.chunk += 1;
        Ok(())
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full buffer is sealed as not-last only once more data shows it is not the last.
        if self.buffer.len() == CHUNK_SIZE {
            self.seal_chunk(false)?;
        }
        let take = data.len().min(CHUNK_SIZE - self.buffer.len());
        self.buffer.extend_from_slice(&data[..take]);
        Ok(take)
    }

    /// Flushes the inner writer; buffered plaintext stays until its chunk is full or
    /// [`SealWriter::finish`] is called.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The plaintext side of a box being read; see [`open_reader`].
pub struct OpenReader<R: Read> {
    inner: R,
    key: LessSafeKey,
    chunk_size: usize,
    chunk: u64,
    /// Ciphertext read ahead: up to one chunk and its tag, plus one byte to tell the last chunk.
    raw: Vec<u8>,
    plain: Vec<u8>,
    position: usize,
    finished: bool,
}

impl<R: Read> OpenReader<R> {
    fn next_chunk(&mut self) -> io::Result<()> {
        let want = self.chunk_size + TAG_LEN + 1;
        let have = self.raw.len();
        self.raw.resize(want, 0);
        let read = read_full(&mut self.inner, &mut self.raw[have..])?;
        self.raw.truncate(have + read);
        let last = self.raw.len() < want;
        let take = if last { self.raw.len() } else { want - 1 };
        if take < TAG_LEN {
            return Err(SealedBoxError::Truncated { chunk: self.chunk }.into_io());
        }
        self.plain.clear();
        self.plain.extend_from_slice(&self.raw[..take]);
        self.raw.drain(..take);
        let opened = self
            .key
            .open_in_place(
                chunk_nonce(self.chunk),
                Aad::from([u8::from(last)]),
                &mut self.plain,
            )
            .map_err(|_| SealedBoxError::Altered { chunk: self.chunk }.into_io())?
            .len();
        self.plain.truncate(opened);
        self.position = 0;
        self.chunk += 1;
        self.finished = last;
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.position == self.plain.len() {
            if self.finished || out.is_empty() {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let count = out.len().min(self.plain.len() - self.position);
        out[..count].copy_from_slice(&self.plain[self.position..self.position + count]);
        self.position += count;
        Ok(count)
    }
}

fn header_bytes(chunk_size: u32, key_id: &[u8; 32], ephemeral_public: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&SEALED_BOX_MAGIC);
    header.extend_from_slice(&SEALED_BOX_VERSION.to_le_bytes());
    header.extend_from_slice(&chunk_size.to_le_bytes());
    header.extend_from_slice(key_id);
    header.extend_from_slice(ephemeral_public);
    header
}

fn chunk_nonce(chunk: u64) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[4..].copy_from_slice(&chunk.to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

/// ECDH between `private` and `peer_point`, then HKDF-SHA256 salted with the header.
fn derive_key(
    private: EphemeralPrivateKey,
    peer_point: &[u8],
    header: &[u8],
) -> Result<LessSafeKey, SealedBoxError> {
    let peer = UnparsedPublicKey::new(&ECDH_P256, peer_point);
    let key_bytes = agreement::agree_ephemeral(private, &peer, |shared| {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, header).extract(shared);
        let mut key = [0u8; 32];
        prk.expand(&[KDF_INFO], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut key))
            .map(|()| key)
    })
    .map_err(|_| SealedBoxError::Crypto {
        reason: "the public key in the box is not a valid P-256 point",
    })?
    .map_err(|_| SealedBoxError::Crypto {
        reason: "key derivation failed",
    })?;
    let unbound =
        UnboundKey::new(&AES_256_GCM, &key_bytes).map_err(|_| SealedBoxError::Crypto {
            reason: "aes-256-gcm key setup failed",
        })?;
    Ok(LessSafeKey::new(unbound))
}

/// ring's ECDH takes only "ephemeral" keys, made from its random source: a static key is made by
/// giving it a source that yields exactly the key's scalar. The scalar is validated by ring
/// (1 ≤ scalar < n) as for any generated key.
#[allow(
    deprecated,
    reason = "ring exposes no other way to use a static ECDH key"
)]
fn ephemeral_from_scalar(scalar: &[u8; SCALAR_LEN]) -> Result<EphemeralPrivateKey, SealedBoxError> {
    let source = ring::test::rand::FixedSliceRandom { bytes: scalar };
    EphemeralPrivateKey::generate(&ECDH_P256, &source).map_err(|_| SealedBoxError::OpeningKey {
        reason: "the private key is not a valid P-256 scalar".into(),
    })
}

/// The private key bytes inside a PKCS#8 EC structure:
/// `PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, privateKey OCTET STRING }` whose
/// octets are `ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, ... }` (RFC 5915).
fn pkcs8_p256_scalar(der_bytes: &[u8]) -> Option<[u8; SCALAR_LEN]> {
    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;
    let (info, _) = tlv(der_bytes, SEQUENCE)?;
    let (_, rest) = tlv(info, INTEGER)?;
    let (_, rest) = tlv(rest, SEQUENCE)?;
    let (private_key, _) = tlv(rest, OCTET_STRING)?;
    let (ec_private_key, _) = tlv(private_key, SEQUENCE)?;
    let (_, rest) = tlv(ec_private_key, INTEGER)?;
    let (scalar, _) = tlv(rest, OCTET_STRING)?;
    scalar.try_into().ok()
}

/// One DER element with tag `tag` at the start of `input`: its contents and what follows.
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let length = bytes
            .iter()
            .fold(0usize, |length, byte| (length << 8) | usize::from(*byte));
        (length, rest)
    };
    rest.split_at_checked(length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    fn keys() -> (OpeningKey, RecipientKey) {
        let signing = SigningKey::generate().unwrap();
        let opening = OpeningKey::from_pkcs8_der(&signing.to_pkcs8_der()).unwrap();
        let recipient = RecipientKey::from_spki_der(&signing.public_key_spki_der()).unwrap();
        (opening, recipient)
    }

    fn seal(recipient: &RecipientKey, plaintext: &[u8]) -> Vec<u8> {
        let mut writer = seal_writer(recipient, Vec::new()).unwrap();
        // Uneven writes, to cross chunk boundaries at odd places.
        for piece in plaintext.chunks(7_777) {
            writer.write_all(piece).unwrap();
        }
        writer.finish().unwrap()
    }

    fn open(key: &OpeningKey, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let mut reader = open_reader(key, sealed).map_err(|e| e.to_string())?;
        let mut plaintext = Vec::new();
        reader
            .read_to_end(&mut plaintext)
            .map_err(|e| e.to_string())?;
        Ok(plaintext)
    }

    #[test]
    fn boxes_of_every_shape_round_trip() {
        let (opening, recipient) = keys();
        assert_eq!(opening.recipient(), &recipient);
        for size in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
        ] {
            let plaintext: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&recipient, &plaintext);
            assert!(is_sealed(&sealed));
            assert_eq!(open(&opening, &sealed).unwrap(), plaintext, "size {size}");
        }
    }

    #[test]
    fn a_wrong_key_is_refused_by_its_id() {
        let (_, recipient) = keys();
        let (other, _) = keys();
        let sealed = seal(&recipient, b"for someone else");
        let error = open(&other, &sealed).unwrap_err();
        assert!(error.contains("sealed for another key"), "{error}");
    }

    #[test]
    fn truncated_or_altered_boxes_are_refused() {
        let (opening, recipient) = keys();
        let plaintext = vec![7u8; 2 * CHUNK_SIZE + 10];
        let sealed = seal(&recipient, &plaintext);
        let chunk = CHUNK_SIZE + TAG_LEN;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "cut at a chunk boundary",
                sealed[..HEADER_LEN + 2 * chunk].to_vec(),
            ),
            ("cut inside a chunk", sealed[..sealed.len() - 5].to_vec()),
            ("cut after the header", sealed[..HEADER_LEN].to_vec()),
            ("a bit flipped", {
                let mut altered = sealed.clone();
                altered[HEADER_LEN + chunk + 100] ^= 1;
                altered
            }),
            ("a byte appended", {
                let mut longer = sealed.clone();
                longer.push(0);
                longer
            }),
            ("chunks swapped", {
                let mut swapped = sealed[..HEADER_LEN].to_vec();
                swapped.extend_from_slice(&sealed[HEADER_LEN + chunk..HEADER_LEN + 2 * chunk]);
                swapped.extend_from_slice(&sealed[HEADER_LEN..HEADER_LEN + chunk]);
                swapped.extend_from_slice(&sealed[HEADER_LEN + 2 * chunk..]);
                swapped
            }),
            ("the ephemeral key replaced", {
                let mut altered = sealed.clone();
                altered[HEADER_LEN - 1] ^= 1;
                altered
            }),
        ];
        for (name, bytes) in cases {
            assert!(open(&opening, &bytes).is_err(), "{name} was accepted");
        }
        assert_eq!(open(&opening, &sealed).unwrap(), plaintext);
    }

    #[test]
    fn keys_must_be_p256() {
        let error = RecipientKey::from_pem("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n").unwrap_err();
        assert!(error.to_string().contains("P-256"), "{error}");
    }

    #[test]
    fn keys_from_openssl_genpkey_work() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("auditor.pem");
        let public = dir.path().join("auditor.pub.pem");
        let run = |args: &[&str]| {
            let status = std::process::Command::new("openssl")
                .args(args)
                .status()
                .expect("openssl must be installed to run this test");
            assert!(status.success(), "openssl {args:?}");
        };
        run(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            private.to_str().unwrap(),
        ]);
        run(&[
            "pkey",
            "-in",
            private.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ]);
        let opening = OpeningKey::load(&private).unwrap();
        let recipient = RecipientKey::load(&public).unwrap();
        assert_eq!(opening.recipient(), &recipient);
        let sealed = seal(&recipient, b"archive bytes");
        assert_eq!(open(&opening, &sealed).unwrap(), b"archive bytes");
    }
}
