//! Identifiers and fault codes of Passerelle.
//!
//! This crate owns the shapes of every identifier of the federation (member, subsystem, service,
//! security server, global group) and the closed enum of fault codes that gateways answer with.
//! Identifiers are parsed once at the edge and travel between crates as these newtypes, never as
//! raw strings. It must never do I/O.

mod fault;
mod id;
mod part;
mod path;

pub use fault::{FaultCode, UnknownFaultCode};
pub use id::{GlobalGroupId, IdKind, MemberId, SecurityServerId, ServiceId, SubsystemId};
pub use part::{IdError, MAX_PART_LENGTH, Part};
pub use path::{PathError, ServicePath};
