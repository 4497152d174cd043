//! Dev-only: a whole Passerelle federation in-process for tests.
