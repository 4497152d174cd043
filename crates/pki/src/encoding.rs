//! PEM framing, PEM-or-DER sniffing, file reading and the SHA-256 used for fingerprints.

use std::path::Path;

use crate::PkiError;

/// Most PEM or DER files Passerelle reads are a few kilobytes; this bounds what a mistaken path
/// (a log file, a device) can make it read into memory.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

pub(crate) use crate::digest::sha256;

pub(crate) fn encode(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Whether `bytes` look like PEM text (after leading whitespace) rather than binary DER.
pub(crate) fn looks_like_pem(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(b"-----BEGIN ")
}

/// All PEM blocks of `text`, as (tag, DER) pairs. Text outside blocks (comments, the output of
/// `openssl x509 -text`) is ignored, as openssl does.
pub(crate) fn blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, PkiError> {
    let parsed = pem::parse_many(text).map_err(|error| PkiError::invalid_pem(error.to_string()))?;
    Ok(parsed
        .into_iter()
        .map(|block| (block.tag().to_owned(), block.into_contents()))
        .collect())
}

/// The DER of the one block of `text` whose tag is one of `tags`; any other count is an error.
pub(crate) fn single_block(text: &str, tags: &[&str]) -> Result<Vec<u8>, PkiError> {
    let mut matching = blocks(text)?
        .into_iter()
        .filter(|(tag, _)| tags.contains(&tag.as_str()));
    let first = matching.next();
    match (first, matching.next()) {
        (Some((_, der)), None) => Ok(der),
        (None, _) => Err(PkiError::invalid_pem(format!(
            "no {} block",
            tags.join(" or ")
        ))),
        (Some(_), Some(_)) => Err(PkiError::invalid_pem(format!(
            "more than one {} block",
            tags.join(" or ")
        ))),
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, PkiError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|error| PkiError::io(path, error))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| PkiError::io(path, error))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(PkiError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, "file larger than 16 MiB"),
        ));
    }
    Ok(bytes)
}

pub(crate) fn pem_text(bytes: Vec<u8>) -> Result<String, PkiError> {
    String::from_utf8(bytes).map_err(|_| PkiError::invalid_pem("pem text is not utf-8"))
}

/// Writes `contents` to `path`, readable only by the owner (mode 0600 on Unix). The file is
/// created with that mode, so the secret is never briefly world-readable.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|error| PkiError::io(path, error))?;
    // An existing file keeps its old mode through open(); tighten it before writing the secret.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|error| PkiError::io(path, error))?;
    }
    file.write_all(contents)
        .map_err(|error| PkiError::io(path, error))?;
    file.sync_all().map_err(|error| PkiError::io(path, error))
}

pub(crate) fn write_public(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    std::fs::write(path, contents).map_err(|error| PkiError::io(path, error))
}
