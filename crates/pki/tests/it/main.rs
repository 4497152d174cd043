//! Integration tests of passerelle-pki: interop with the openssl command-line tool, chain
//! validation, parser robustness, the development CA and the committed test PKI.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod chain;
mod corpus;
mod devca;
mod ocsp;
mod openssl_interop;
mod test_pki;
mod tsp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

/// Runs `openssl args...` in `dir` and returns its output, whatever its exit status.
pub(crate) fn openssl_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command-line tool must be installed to run these tests")
}

/// Runs `openssl args...` in `dir` and fails the test, showing stderr, unless it succeeds.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> Output {
    let output = openssl_output(dir, args);
    assert!(
        output.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Midnight UTC of a `YYYY-MM-DD` date.
pub(crate) fn date(text: &str) -> SystemTime {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .unwrap()
        .midnight()
        .assume_utc()
        .into()
}

/// The validation time every test of the committed test PKI uses (see certs/README.md).
pub(crate) fn test_pki_now() -> SystemTime {
    date("2026-06-01")
}

/// The repository's `certs/` directory.
pub(crate) fn certs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../certs")
}

pub(crate) fn testdata(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(path)
}
