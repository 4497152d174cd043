//! The Passerelle central server: the registry of members, subsystems, security servers,
//! approved CAs and TSAs and service descriptors (sled); the admin API (JSON over HTTPS with
//! role-bound bearer tokens and an audit trail); onboarding through signed registration
//! requests; publishing the signed global configuration; and the service catalog.
//!
//! It is never in the message path and must never depend on the security server. It trusts
//! only the CAs approved in its own registry (no system trust store), signs with the
//! configuration-signing key named in its configuration, and takes time from an injected clock
//! so tests can pin it. Crypto goes through `passerelle-pki`; the configuration format and the
//! registration request format belong to `passerelle-globalconf`.

mod api;
mod client;
mod config;
mod error;
mod publish;
mod registry;
mod server;
pub mod trust_services;

pub use api::{Clock, OPENAPI_DOCUMENT};
pub use client::AdminClient;
pub use config::CentralConfig;
pub use error::CentralError;
pub use publish::Published;
pub use registry::{
    AuditEntry, Change, Refusal, Registry, RequestRecord, RequestStatus, Role, TokenRecord,
};
pub use server::{RunningCentral, anchor_for, start};
