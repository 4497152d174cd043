//! The `passerelle` command line: one binary with a subcommand per role.
//!
//! It owns argument parsing, logging setup and turning library errors into exit codes and
//! messages; all behaviour lives in the `crates/` libraries. It is the only place that uses anyhow.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
mod demo;

/// Passerelle: signed, access-controlled and logged data exchange between agencies.
///
/// A central server keeps the registry and publishes a signed global configuration; each agency
/// runs a security server in front of its systems; auditors verify exported logs offline.
/// Start with `passerelle demo` to see a whole federation on this machine.
#[derive(Debug, Parser)]
#[command(name = "passerelle", version, propagate_version = true)]
struct Cli {
    /// Log format on stderr: `text` or `json`. The level comes from RUST_LOG (default `info`).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at startup; boxing buys nothing"
)]
enum Command {
    /// Start a whole federation on this machine and print what to try.
    Demo(cli::demo::DemoArgs),
    /// Call a service through your security server, as an information system would.
    Call(cli::call::CallArgs),
    /// Security server: run it, register it and its services with the central server.
    #[command(subcommand)]
    Server(cli::server::ServerCommand),
    /// Central server: run it, manage the registry, approve requests, write the anchor file.
    #[command(subcommand)]
    Central(cli::central::CentralCommand),
    /// Search the federation's service catalog.
    #[command(subcommand)]
    Catalog(cli::catalog::CatalogCommand),
    /// Message-log evidence: export, verify and replay archives offline.
    #[command(subcommand)]
    Audit(cli::audit::AuditCommand),
    /// Development CA and trust services: issue and revoke certificates, serve OCSP and a TSA.
    #[command(subcommand)]
    Pki(cli::pki::PkiCommand),
    /// Measure the gateway's cost against a direct call and against nginx, in one run.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let result = match cli.command {
        Command::Pki(command) => cli::pki::run(command),
        Command::Audit(command) => cli::audit::run(command),
        Command::Central(command) => cli::central::run(command),
        Command::Catalog(command) => cli::catalog::run(command),
        Command::Server(command) => cli::server::run(command),
        Command::Call(args) => cli::call::run(args),
        Command::Demo(args) => cli::demo::run(args),
        Command::Bench(args) => cli::bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
