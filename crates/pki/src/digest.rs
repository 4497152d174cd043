//! SHA-256, the one hash of the project's evidence (signing inputs, hash chains, Merkle trees,
//! certificate fingerprints).

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Lowercase hex of SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// Incremental SHA-256, for inputs that arrive in pieces (streamed bodies, records).
#[derive(Clone)]
pub struct Sha256(ring::digest::Context);

impl Sha256 {
    pub fn new() -> Self {
        Self(ring::digest::Context::new(&ring::digest::SHA256))
    }

    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    pub fn finish(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.0.finish().as_ref());
        out
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// Bytes together with their SHA-256, computed by [`Digested::new`]: holding one is proof that
/// the digest is of these bytes, so a body hashed once for its signing input need not be hashed
/// again where it is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested<B> {
    bytes: B,
    sha256: [u8; 32],
}

impl<B: AsRef<[u8]>> Digested<B> {
    pub fn new(bytes: B) -> Self {
        let sha256 = sha256(bytes.as_ref());
        Digested { bytes, sha256 }
    }

    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }

    pub fn bytes(&self) -> &B {
        &self.bytes
    }

    pub fn into_bytes(self) -> B {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut incremental = Sha256::new();
        incremental.update(b"a").update(b"bc");
        assert_eq!(incremental.finish(), sha256(b"abc"));
        let digested = Digested::new(b"abc".to_vec());
        assert_eq!(digested.sha256(), &sha256(b"abc"));
        assert_eq!(digested.bytes(), b"abc");
    }
}
