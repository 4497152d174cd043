//! AES-256-GCM sealing of message bodies at rest.
//!
//! A sealed value is `nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. Nonces are random: a key
//! seals far fewer than 2^32 values before it is rotated, which keeps the collision risk
//! negligible. The associated data binds a sealed body to its record, so a body cannot be moved
//! to another record without `open` failing.

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The length of a body key, in bytes.
pub const BODY_KEY_LENGTH: usize = 32;

/// What went wrong sealing or opening a body.
#[derive(Debug, thiserror::Error)]
pub enum AeadError {
    #[error("a body key must be {BODY_KEY_LENGTH} bytes, got {0}")]
    KeyLength(usize),
    #[error("the system random generator failed")]
    Random,
    #[error("sealed body is {0} bytes, shorter than a nonce and a tag")]
    Truncated(usize),
    #[error(
        "sealed body does not open with key {key_id}: wrong key, wrong record or altered bytes"
    )]
    Open { key_id: String },
}

/// A named AES-256-GCM key. `Debug` never shows the key bytes.
pub struct BodyKey {
    id: String,
    bytes: [u8; BODY_KEY_LENGTH],
    key: LessSafeKey,
}

impl BodyKey {
    /// A fresh random key called `id`.
    pub fn generate(id: &str) -> Result<Self, AeadError> {
        let mut bytes = [0u8; BODY_KEY_LENGTH];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| AeadError::Random)?;
        Self::from_bytes(id, &bytes)
    }

    pub fn from_bytes(id: &str, bytes: &[u8]) -> Result<Self, AeadError> {
        let bytes: [u8; BODY_KEY_LENGTH] = bytes
            .try_into()
            .map_err(|_| AeadError::KeyLength(bytes.len()))?;
        let unbound =
            UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| AeadError::KeyLength(bytes.len()))?;
        Ok(Self {
            id: id.to_owned(),
            bytes,
            key: LessSafeKey::new(unbound),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The raw key, for writing a key file.
    pub fn to_bytes(&self) -> [u8; BODY_KEY_LENGTH] {
        self.bytes
    }

    /// Seals `plaintext`, binding it to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| AeadError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| AeadError::Random)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a value made by [`BodyKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AeadError> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(AeadError::Truncated(sealed.len()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| AeadError::Truncated(sealed.len()))?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| AeadError::Open {
                key_id: self.id.clone(),
            })?;
        let length = plaintext.len();
        buffer.truncate(length);
        Ok(buffer)
    }
}

impl fmt::Debug for BodyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyKey")
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_tampering() {
        let key = BodyKey::generate("k1").unwrap();
        let sealed = key.seal(b"record 7", b"hello").unwrap();
        assert_eq!(sealed.len(), 12 + 5 + 16);
        assert_eq!(key.open(b"record 7", &sealed).unwrap(), b"hello");
        assert!(matches!(
            key.open(b"record 8", &sealed),
            Err(AeadError::Open { .. })
        ));
        let mut flipped = sealed.clone();
        flipped[13] ^= 1;
        assert!(key.open(b"record 7", &flipped).is_err());
        assert!(matches!(
            key.open(b"", &sealed[..10]),
            Err(AeadError::Truncated(10))
        ));
        let other = BodyKey::generate("k2").unwrap();
        assert!(other.open(b"record 7", &sealed).is_err());
        let same = BodyKey::from_bytes("k1", &key.to_bytes()).unwrap();
        assert_eq!(same.open(b"record 7", &sealed).unwrap(), b"hello");
        assert!(matches!(
            BodyKey::from_bytes("x", &[0; 31]),
            Err(AeadError::KeyLength(31))
        ));
        assert!(!format!("{key:?}").contains(&format!("{:?}", key.to_bytes())));
    }
}
