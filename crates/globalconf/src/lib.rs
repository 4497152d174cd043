//! The global configuration of a Passerelle instance: the model every security server reads,
//! its signing and verification against an anchor, the client that downloads, verifies, caches
//! and polls it, and the signed registration requests that servers send to the central server.
//!
//! This crate owns the document format (`docs/globalconf.md`) and the rules for accepting one:
//! a signature by an anchor certificate, the anchor's instance, a serial that never goes back,
//! and an unexpired validity. It must never trust anything but the anchor and a verified
//! configuration (no system trust store), never use hyper (downloads are a tiny bounded HTTP/1.1
//! GET), never touch ring or x509-parser directly (crypto goes through `passerelle-pki`), and
//! never read the clock: every decision takes `now`.

mod anchor;
mod cache;
mod client;
mod error;
mod fetch;
mod model;
mod registration;
mod signing;
mod timefmt;

pub use anchor::Anchor;
pub use cache::{ConfCache, SignedBytes};
pub use client::{ConfClient, ConfStatus, PollHandle, PollPolicy};
pub use error::ConfError;
pub use fetch::{FetchFuture, Fetcher, HttpFetcher};
pub use model::{
    ApprovedCa, ApprovedTsa, CertHash, Endpoint, GlobalConf, GlobalGroup, InstanceId, Member,
    MemberClass, SecurityServer, ServiceDescriptor, Settings,
};
pub use registration::{
    RegistrationRequest, RequestAction, RequestSignature, RequestSigner, SignedRequest, SignerRole,
    VerifiedRequest,
};
pub use signing::{
    AcceptedSerial, sign_configuration, usable_anchor_certificates, verify_configuration,
    verify_signed,
};
pub use timefmt::{format_rfc3339, parse_rfc3339};
