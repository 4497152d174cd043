//! Integration tests of passerelle-ids: one binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod errors_doc;
mod identifiers;
