//! Integration tests of passerelle-ids: one binary, one module per concern.

mod errors_doc;
mod identifiers;
