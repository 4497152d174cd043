//! Integration tests of `passerelle-central-server`: the admin API, onboarding, configuration
//! publishing with a real client, the catalog, and the configuration file. Each test runs a
//! central server in-process on ephemeral loopback ports with a development CA in a temporary
//! directory and a pinned clock.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod admin;
mod config;
mod onboarding;
mod publishing;
mod support;
mod trust_services;
