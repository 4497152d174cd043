//! Durable hash-chained message log, time-stamp batches, export and verification.
