//! Integration tests of the security server: two in-process security servers, a backend and a
//! hand-built global configuration signed by a development CA made in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod batch;
mod config_files;
mod exchange;
mod federation;
mod limits;
mod operations;
mod paths;
mod provider_checks;
mod trust;
