//! The Passerelle security server: the gateway in front of an agency's information systems.
//!
//! It owns the client side (local systems call `/r1/...`, DESIGN §2.1: [`consumer`]), the server
//! side (peer security servers call over mutual TLS 1.3 and HTTP/2, DESIGN §2.2: [`provider`]),
//! batch signing and verification, access rights, metaservices, limits, the health endpoint
//! and Prometheus metrics, and its strict TOML configuration ([`config`]).
//!
//! It must never trust anything but the verified global configuration (no system trust store),
//! let a request reach a backend before every provider check has passed, answer an exchange
//! before its log record is durable, or panic on input from the network or a file. Wire formats
//! live in `passerelle-protocol`; cryptography in `passerelle-pki`.

mod access;
mod background;
pub mod config;
mod consumer;
mod credentials;
pub mod deps;
mod error;
mod exchange;
mod http_util;
pub mod metrics;
pub mod node;
mod ocsp;
mod peers;
mod provider;
mod replay;
mod server;
pub mod signer;
mod timestamping;
mod tls;
pub mod trust_client;

pub use config::ServerConfig;
pub use credentials::Credential;
pub use error::{ConfigProblem, ServerError};
pub use node::{Node, NodeError};
pub use server::{Deps, RunningServer, start};
pub use timestamping::TsaTimestamper;
