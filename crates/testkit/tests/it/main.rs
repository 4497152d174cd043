//! The in-process federation, end to end: real central server, real onboarding, two security
//! servers, the sample backend; and a smoke run of the benchmark's machinery against it.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod bench_smoke;
mod federation;
