//! Integration tests of `passerelle-globalconf`: verification rules, the client's caching and
//! polling, and registration requests. Certificates come from a development CA created in a
//! temporary directory at a fixed validation time.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod client;
mod registration;
mod support;
mod verify;
