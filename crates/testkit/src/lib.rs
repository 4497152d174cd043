//! A whole Passerelle federation in-process: a development CA, a central server, two agencies'
//! security servers and a sample backend, onboarded through the real registration path
//! (signed requests, approval, signed global configuration) — never by writing databases.
//!
//! Tests use it to exercise the product end to end, `passerelle demo` runs it for a new user,
//! and the benchmark measures through it. It must never take a shortcut the product does not
//! take: everything it sets up, an operator could set up with the CLI.

pub mod backend;
mod federation;
pub mod http1;
pub mod load;
pub mod nginx;
pub mod procstat;

pub use federation::{Federation, FederationOptions, Ports, PreparedFederation, names};
