//! The in-process federation, end to end: real central server, real onboarding, two security
//! servers, the sample backend.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod federation;
