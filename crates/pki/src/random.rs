//! The operating system's cryptographically secure random generator, for message ids, tokens
//! and nonces elsewhere in the project.

use ring::rand::{SecureRandom, SystemRandom};

use crate::PkiError;

/// Fills `buffer` with random bytes.
pub fn fill(buffer: &mut [u8]) -> Result<(), PkiError> {
    SystemRandom::new()
        .fill(buffer)
        .map_err(|_| PkiError::Random)
}

/// `count` random bytes.
pub fn bytes(count: usize) -> Result<Vec<u8>, PkiError> {
    let mut buffer = vec![0; count];
    fill(&mut buffer)?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() {
        let first = super::bytes(16).unwrap();
        let second = super::bytes(16).unwrap();
        assert_eq!(first.len(), 16);
        assert_ne!(first, second);
    }
}
