//! `passerelle call`: make an X-Road REST call through a security server, the way a developer's
//! information system would, and print the answer with its X-Road headers.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use passerelle_ids::{ServiceId, SubsystemId};

use crate::demo::manifest::Manifest;
use passerelle_testkit::http1::{self, Message};

/// Call a service through your security server.
///
/// The client's security server is found in the demo manifest (`--manifest`, default
/// `demo-data/demo.json`) unless `--url` names it.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  passerelle call DEV/GOV/HEALTH/registry/vaccinations /v1/children/42/vaccinations
  passerelle call DEV/GOV/HEALTH/registry/vaccinations /v1/children/42/vaccinations \\
      --method POST --data @record.json
  passerelle call DEV/GOV/HEALTH/registry/vaccinations /v1/children/42 \\
      --client DEV/GOV/EDUCATION/schools --url http://127.0.0.1:8080

Exit status: 0 when the service answered 2xx, 1 otherwise (the answer is printed either way).")]
pub(crate) struct CallArgs {
    /// The service: INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE.
    service: ServiceId,
    /// The path inside the service, with its query, e.g. `/v1/children/42?year=2024`.
    #[arg(default_value = "/")]
    path: String,
    /// The subsystem you call as (X-Road-Client). Default: the manifest's first client.
    #[arg(long)]
    client: Option<SubsystemId>,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// Request body: literal text, or @FILE to read a file (@- for standard input).
    #[arg(long, short = 'd')]
    data: Option<String>,
    /// Extra request header `Name: value` (repeatable), e.g. `X-Road-UserId: EE12345`.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// The client side URL of your security server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: Option<String>,
    /// The demo manifest to find the security server and default client in.
    #[arg(long, default_value = "demo-data/demo.json")]
    manifest: PathBuf,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

pub(crate) fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let manifest = if args.url.is_none() || args.client.is_none() {
        Some(Manifest::load(&args.manifest)?)
    } else {
        None
    };
    let client = match (&args.client, &manifest) {
        (Some(client), _) => client.to_string(),
        (None, Some(manifest)) => manifest
            .clients
            .first()
            .context("the manifest lists no client")?
            .id
            .clone(),
        (None, None) => bail!("--client is required"),
    };
    let url = match (&args.url, &manifest) {
        (Some(url), _) => url.clone(),
        (None, Some(manifest)) => manifest
            .client_url_for(&client)
            .with_context(|| format!("the manifest has no security server hosting {client}"))?
            .to_owned(),
        (None, None) => bail!("--url is required"),
    };
    let address = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: only http:// client URLs are supported here"))?
        .trim_end_matches('/');
    let body = match args.data.as_deref() {
        None => Vec::new(),
        Some("@-") => {
            let mut buffer = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buffer)?;
            buffer
        }
        Some(data) => match data.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("cannot read {file}"))?,
            None => data.as_bytes().to_vec(),
        },
    };
    let path = if args.path.starts_with('/') {
        args.path.clone()
    } else {
        format!("/{}", args.path)
    };
    let mut headers = vec![
        ("host".to_owned(), address.to_owned()),
        ("x-road-client".to_owned(), client),
    ];
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("header {header:?} is not `Name: value`"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    headers.push(("connection".to_owned(), "close".to_owned()));
    let request = Message {
        start: [
            args.method.to_uppercase(),
            format!("/r1/{}{}", args.service, path),
            "HTTP/1.1".to_owned(),
        ],
        headers,
        body,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let response = runtime.block_on(http1::request(
        address,
        &request,
        Duration::from_secs(args.timeout),
    ))?;
    println!("{} {}", response.start[1], response.start[2]);
    for (name, value) in &response.headers {
        if name.to_ascii_lowercase().starts_with("x-road-")
            || name.eq_ignore_ascii_case("content-type")
        {
            println!("{name}: {value}");
        }
    }
    println!();
    match serde_json::from_slice::<serde_json::Value>(&response.body) {
        Ok(json) => println!("{}", serde_json::to_string_pretty(&json)?),
        Err(_) => println!("{}", String::from_utf8_lossy(&response.body)),
    }
    let success = response.start[1].starts_with('2');
    Ok(if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
