//! The SHA-256 value type used for chain hashes, digests and Merkle roots.

use std::fmt;

/// A SHA-256 value; serialized as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Sha256Hash(pub [u8; 32]);

impl Sha256Hash {
    /// The all-zero hash: the `previous_hash` of the very first record of a log.
    pub const ZERO: Sha256Hash = Sha256Hash([0; 32]);

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Sha256Hash(passerelle_pki::digest::sha256(data))
    }

    /// The chain hash of an entry: `SHA-256(previous_hash ‖ SHA-256(content))`.
    ///
    /// Hashing the content's digest rather than the content lets an archive replace an entry that
    /// is outside an export's filter by its digest alone (a redacted link) and still check the chain.
    pub fn chain(previous: &Sha256Hash, content_digest: &Sha256Hash) -> Self {
        let mut hasher = passerelle_pki::digest::Sha256::new();
        hasher.update(&previous.0).update(&content_digest.0);
        Sha256Hash(hasher.finish())
    }

    pub fn to_hex(&self) -> String {
        String::from_utf8_lossy(&self.hex_digits()).into_owned()
    }

    /// The 64 lowercase hex digits, without allocating (hashes are written several times in
    /// every record).
    fn hex_digits(&self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 64];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        digits
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Sha256Hash(bytes.try_into().ok()?))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        Some(Sha256Hash(bytes.try_into().ok()?))
    }
}

impl fmt::Display for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&self.hex_digits()).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hash({})", self.to_hex())
    }
}

impl serde::Serialize for Sha256Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        Sha256Hash::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hexadecimal digits"))
    }
}

/// Serde helpers: byte strings as standard base64. They are serialized as bytes, which
/// [`crate::json`] writes as base64 strings straight into the output (bodies and certificates
/// are most of a record's bytes); they read back from base64 strings.
pub(crate) mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub(crate) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::Sha256Hash;
    use crate::evidence::Evidence;

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Sample {
        hash: Sha256Hash,
        #[serde(with = "super::base64_bytes")]
        one: Vec<u8>,
        maybe: Option<Evidence>,
        many: Vec<Evidence>,
    }

    #[test]
    fn hashes_and_byte_strings_serialize_as_hex_and_base64_and_read_back() {
        let hash = Sha256Hash::of(b"abc");
        // Longer than the encoder's internal chunk, and of every length modulo 3.
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        let sample = Sample {
            hash,
            one: bytes.clone(),
            maybe: Some(bytes[..4999].to_vec().into()),
            many: vec![bytes[..4998].to_vec().into(), Vec::new().into()],
        };
        let json = String::from_utf8(crate::json::to_vec(&sample).unwrap()).unwrap();
        let expected = format!(
            r#"{{"hash":"{}","one":"{}","maybe":"{}","many":["{}",""]}}"#,
            hex::encode(hash.0),
            STANDARD.encode(&bytes),
            STANDARD.encode(&bytes[..4999]),
            STANDARD.encode(&bytes[..4998]),
        );
        assert_eq!(json, expected);
        assert_eq!(hash.to_hex(), hex::encode(hash.0));
        assert_eq!(hash.to_string(), hex::encode(hash.0));
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), sample);
    }
}
