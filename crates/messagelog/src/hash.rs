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
        hex::encode(self.0)
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
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hash({})", self.to_hex())
    }
}

impl serde::Serialize for Sha256Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        Sha256Hash::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hexadecimal digits"))
    }
}

/// Serde helpers: byte strings as standard base64.
pub(crate) mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub(crate) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }

    pub(crate) mod option {
        use super::STANDARD;
        use base64::Engine as _;

        pub(crate) fn serialize<S: serde::Serializer>(
            bytes: &Option<Vec<u8>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(bytes) => s.serialize_some(&STANDARD.encode(bytes)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            let text: Option<String> = serde::Deserialize::deserialize(d)?;
            text.map(|text| {
                STANDARD
                    .decode(text.as_bytes())
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        }
    }

    pub(crate) mod list {
        use super::STANDARD;
        use base64::Engine as _;
        use serde::ser::SerializeSeq as _;

        pub(crate) fn serialize<S: serde::Serializer>(
            items: &[Vec<u8>],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(items.len()))?;
            for item in items {
                seq.serialize_element(&STANDARD.encode(item))?;
            }
            seq.end()
        }

        pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Vec<u8>>, D::Error> {
            let texts: Vec<String> = serde::Deserialize::deserialize(d)?;
            texts
                .iter()
                .map(|text| {
                    STANDARD
                        .decode(text.as_bytes())
                        .map_err(serde::de::Error::custom)
                })
                .collect()
        }
    }
}
