//! `passerelle catalog`: search the federation's service catalog.

use std::process::ExitCode;

use anyhow::Context;
use passerelle_globalconf::{Fetcher, HttpFetcher};
use serde_json::Value;

/// Search the service catalog of the central server.
///
/// The catalog lists every service descriptor that providers published: identifier, title,
/// description, endpoints and a link to its OpenAPI document. It is public data, served over
/// plain HTTP by the central server's public listener.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CatalogCommand {
    /// Find services whose identifier, title, description or endpoints contain TEXT
    /// (case-insensitive; empty TEXT lists everything).
    #[command(after_help = "\
Examples:
  passerelle catalog search vaccination
  passerelle catalog search DEV/GOV/HEALTH --url http://127.0.0.1:4001
  passerelle catalog search '' --json

The same search with curl:
  curl 'http://127.0.0.1:4001/catalog/v1/services?q=vaccination'")]
    Search {
        /// The text to look for.
        text: String,
        /// Base URL of the central server's public listener.
        #[arg(
            long,
            env = "PASSERELLE_CATALOG_URL",
            default_value = "http://127.0.0.1:4001"
        )]
        url: String,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    match command {
        CatalogCommand::Search { text, url, json } => search(&text, &url, json),
    }
}

fn search(text: &str, base: &str, json: bool) -> anyhow::Result<ExitCode> {
    let url = format!(
        "{}/catalog/v1/services?q={}",
        base.trim_end_matches('/'),
        encode(text)
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let bytes = runtime.block_on(HttpFetcher::default().fetch(&url))?;
    let answer: Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{url} did not answer JSON"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(ExitCode::SUCCESS);
    }
    let services = answer["services"].as_array().cloned().unwrap_or_default();
    if services.is_empty() {
        eprintln!("no service matches {text:?}");
        return Ok(ExitCode::FAILURE);
    }
    for service in &services {
        let field = |name: &str| service[name].as_str().unwrap_or_default().to_owned();
        println!("{}", field("id"));
        println!("  {}", field("title"));
        if !field("description").is_empty() {
            println!("  {}", field("description"));
        }
        for endpoint in service["endpoints"].as_array().into_iter().flatten() {
            println!(
                "  {} {}",
                endpoint["method"].as_str().unwrap_or_default(),
                endpoint["path"].as_str().unwrap_or_default()
            );
        }
        match service["openapi_url"].as_str() {
            Some(openapi) => println!("  openapi: {openapi} (sha256 {})", field("openapi_sha256")),
            None => println!("  openapi: none published"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
