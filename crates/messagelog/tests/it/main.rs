//! Integration tests of the message log: durability, tampering, crashes, scale, the openssl
//! recipe of `docs/audit.md`, and retention.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;
mod crash;
mod export;
mod index;
mod log;
mod openssl_recipe;
mod retention;
mod scale;
mod tamper;
mod trust;
