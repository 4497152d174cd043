//! The wire protocol of Passerelle, as pure functions: bytes and header maps in, values out.
//!
//! This crate owns the `X-Road-*` header names and the parsing of a local system's request
//! ([`headers`]), which headers travel and which do not ([`headers::forwardable`]), the canonical
//! signing inputs of requests and responses ([`signing`]), the canonical path used for access
//! checks and the endpoint pattern matcher ([`path`]), the JSON error body ([`error_body`]) and the
//! server-to-server signature envelope ([`envelope`]). `docs/protocol.md` describes the same
//! bytes, with test vectors that `testdata/` holds and a test recomputes.
//!
//! It must never do I/O, read the clock, or depend on an async runtime or an HTTP stack beyond the
//! `http` crate's types: both security servers and offline tools build on it.

pub mod envelope;
mod error;
pub mod error_body;
pub mod headers;
pub mod path;
pub mod signing;

pub use error::ProtocolError;

/// The protocol version written first in every signing input and carried in the envelope.
pub const PROTOCOL_VERSION: &str = "passerelle/1";
