//! The message log of a security server: durable, hash-chained evidence of every exchange, batch
//! time-stamp checkpoints, export to self-contained archives, and their offline verification.
//!
//! It owns the segment-file format (see `docs/audit.md`), the record model, group commit, body
//! encryption at rest, the sled indexes beside the segments, archive export, verification and
//! replay. It must never depend on tokio, hyper, the global configuration or the servers: an
//! auditor runs `passerelle audit verify` with no runtime, no network and no server code. All
//! cryptography comes from `passerelle-pki`; this crate never touches ring directly.
//!
//! Architecture invariant: the segment files are the evidence; sled holds only indexes and state
//! that can be rebuilt from the segments. Export reads the segments alone and never opens sled
//! (so its memory does not grow with the log and it works beside a running server); the one file
//! it writes, `exported-through.json`, records for retention how far complete exports reach.
//!
//! Threads of an open [`MessageLog`]: `messagelog-writer` writes and syncs batches (group
//! commit) and completes their tickets; `messagelog-indexer` then writes their sled index
//! entries, off the exchange's path. Every read that uses the index first waits, through a
//! barrier, until it holds every entry that was durable when the read began (an awaited append
//! is always found), and fails with [`LogError::Index`] instead of waiting when the index thread
//! has stopped; an index failure never fails an append, and the index is completed from the
//! segments on the next open. Closing the log drains the writer, then the index thread, then
//! flushes sled.

mod accumulator;
mod archive;
mod checkpoint;
mod crc32c;
mod error;
mod evidence;
mod export;
mod frame;
mod hash;
mod index;
pub mod json;
mod keys;
mod log;
mod message_ids;
mod record;
mod replay;
mod retention;
mod segment;
mod ticket;
mod verify;

pub use accumulator::MerkleAccumulator;
pub use archive::{
    ArchiveFrame, ArchiveLink, ArchiveReader, ArchiveWriter, ExportFilter, Manifest,
    SignedConfiguration,
};
pub use checkpoint::{CheckpointSummary, Timestamper, TokenVerifier};
pub use crc32c::crc32c;
pub use error::LogError;
pub use evidence::Evidence;
pub use export::{ExportOptions, ExportSummary, export_log};
pub use hash::Sha256Hash;
pub use keys::KeyRing;
pub use log::{Durability, LogHealth, LogOptions, MessageLog, SYNC_BUCKETS, SyncTimes};
pub use record::{
    BatchEvidence, Body, CheckpointRecord, Entry, EntryBody, ExchangeRecord, MessagePart,
    PeerAuthentication, Side, SignatureEvidence,
};
pub use replay::{
    ArchiveTrust, ExtractedFiles, TimelineRow, archive_trust, describe_exchange, extract_exchange,
    find_exchanges, timeline,
};
pub use retention::{RetentionReport, RetentionTask};
pub use segment::{SEGMENT_MAGIC, SEGMENT_VERSION};
pub use ticket::{AppendTicket, Appended};
pub use verify::{
    DEFAULT_OCSP_FRESHNESS, Failure, FailureKind, VerifyOptions, VerifyReport, verify_archive,
};
