//! Integration tests of `passerelle-protocol`: the published test vectors.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod vectors;
