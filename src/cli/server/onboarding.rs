//! `passerelle server register | publish | status`: onboarding a security server through the
//! central server's registration path, from the server's own configuration file.
//!
//! Requests are signed here with the keys the configuration names and sent to the central
//! server's public listener (`POST /registration/v1/requests`); the signatures authenticate them,
//! so no admin token is involved. What is already registered is read from the global
//! configuration, downloaded from the anchor's URLs and verified against the anchor.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use passerelle_globalconf::{
    AcceptedSerial, Anchor, CertHash, ConfCache, Endpoint, Fetcher, GlobalConf, HttpFetcher,
    RegistrationRequest, RequestAction, RequestSigner, ServiceDescriptor, SignedRequest,
    SignerRole, format_rfc3339, verify_configuration, verify_signed,
};
use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_security_server::config::{OpenApiSource, ServiceConfig};
use passerelle_security_server::{Credential, ServerConfig};
use passerelle_testkit::http1::{self, Message};
use serde_json::Value;

/// How long to wait for the central server's answer to one request.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `passerelle server register`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegisterArgs {
    /// The security server's TOML configuration.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    #[command(flatten)]
    central: CentralArgs,
    /// `host:port` at which peer security servers reach this server's `server` listener.
    /// Default: [listeners] server, which must then not be a wildcard address (0.0.0.0, ::).
    #[arg(long, value_name = "HOST:PORT")]
    address: Option<String>,
}

/// Arguments of `passerelle server publish`.
#[derive(Debug, clap::Args)]
pub(crate) struct PublishArgs {
    /// The security server's TOML configuration.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    #[command(flatten)]
    central: CentralArgs,
}

/// Arguments of `passerelle server status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// The security server's TOML configuration.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Download the configuration from the anchor's URL instead of reading the cache that the
    /// running server keeps in [server] conf_cache_dir.
    #[arg(long)]
    fresh: bool,
}

#[derive(Debug, clap::Args)]
struct CentralArgs {
    /// Base URL of the central server's public listener (plain HTTP), e.g.
    /// http://127.0.0.1:4001. Default: the one in the anchor's configuration URL.
    #[arg(long, env = "PASSERELLE_CENTRAL_URL", value_name = "URL")]
    central: Option<String>,
}

/// `passerelle server register`.
pub(crate) fn register(args: &RegisterArgs) -> anyhow::Result<ExitCode> {
    let setup = Setup::load(&args.config)?;
    let central = setup.central_url(&args.central)?;
    let owner = setup.config.id.owner().clone();
    let auth = Credential::load(&setup.config.auth, "authentication")?;
    let owner_signing = setup.signing(&owner)?.with_context(|| {
        format!(
            "{} has no [[signing]] entry for its owner {owner}; the owner signs every request",
            setup.file.display()
        )
    })?;
    let auth_leaf = auth.leaf().context("the auth certificate chain is empty")?;
    let address = match &args.address {
        Some(address) => address.clone(),
        None => reachable_address(setup.config.listeners.server)?,
    };
    let runtime = runtime()?;
    let now = SystemTime::now();
    let conf = runtime.block_on(setup.fresh_conf(now));

    let server = setup.config.id.clone();
    println!("security server {server}, central server {central}");
    let mut failed = false;
    let mut pending = Vec::new();
    let registered = conf.as_ref().ok().and_then(|conf| conf.server(&server));
    let auth_hash = CertHash::of(auth_leaf);
    let server_known = match registered {
        Some(entry) if entry.address == address && entry.auth_cert_hashes.contains(&auth_hash) => {
            println!(
                "  auth certificate {}… at {address}: already registered",
                &auth_hash.to_hex()[..16]
            );
            true
        }
        _ => {
            let request = RegistrationRequest {
                created_at: now,
                action: RequestAction::AuthCertificate {
                    server: server.clone(),
                    address: address.clone(),
                    certificate: auth_leaf.to_pem(),
                },
            };
            let signers = [
                RequestSigner {
                    role: SignerRole::AuthKey,
                    key: &auth.key,
                    chain: &auth.chain,
                },
                owner_signing.signer(),
            ];
            match runtime.block_on(submit(&central, &request, &signers)) {
                Ok(answer) => {
                    answer.print();
                    if answer.is_pending() {
                        pending.push(answer.id);
                    }
                    // With auto-approval the server is known at once and its clients can follow.
                    answer.is_approved() || registered.is_some()
                }
                Err(error) => {
                    println!("  auth certificate: refused: {error:#}");
                    failed = true;
                    false
                }
            }
        }
    };

    let mut clients_waiting = Vec::new();
    for client in &setup.config.hosted {
        let hosted = registered.is_some_and(|entry| entry.clients.contains(client));
        if hosted {
            println!("  client {client}: already registered");
            continue;
        }
        if !server_known {
            clients_waiting.push(client);
            continue;
        }
        let mut signers = vec![owner_signing.signer()];
        let client_member = client.member();
        let member_signing;
        if *client_member != owner {
            match setup.signing(client_member)? {
                Some(credential) => {
                    member_signing = credential;
                    signers.push(member_signing.signer());
                }
                None => {
                    println!(
                        "  client {client}: skipped, no [[signing]] key for its member {client_member} (it must sign too)"
                    );
                    failed = true;
                    continue;
                }
            }
        }
        let request = RegistrationRequest {
            created_at: now,
            action: RequestAction::Client {
                server: server.clone(),
                client: client.clone(),
            },
        };
        match runtime.block_on(submit(&central, &request, &signers)) {
            Ok(answer) => {
                answer.print();
                if answer.is_pending() {
                    pending.push(answer.id);
                }
            }
            Err(error) => {
                println!("  client {client}: refused: {error:#}");
                failed = true;
            }
        }
    }
    for client in &clients_waiting {
        println!("  client {client}: not sent yet, the server itself must be registered first");
    }

    println!();
    if !pending.is_empty() {
        println!("Next: a registration officer of the central server approves the request(s):");
        println!("  passerelle central requests list");
        for id in &pending {
            println!("  passerelle central requests approve {id}");
        }
    }
    if !clients_waiting.is_empty() {
        println!(
            "Then run this command again to register the hosted subsystem(s) as clients of {server}."
        );
    } else if pending.is_empty() && !failed {
        println!(
            "Nothing left to register. Publish services with `passerelle server publish`, check with \
`passerelle server status --fresh`."
        );
    }
    if let Err(error) = &conf {
        println!(
            "(could not read the current global configuration, so nothing was skipped: {error:#})"
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `passerelle server publish`.
pub(crate) fn publish(args: &PublishArgs) -> anyhow::Result<ExitCode> {
    let setup = Setup::load(&args.config)?;
    let central = setup.central_url(&args.central)?;
    let mut by_provider: BTreeMap<&SubsystemId, Vec<ServiceDescriptor>> = BTreeMap::new();
    for (id, service) in &setup.config.services {
        if !service.enabled {
            continue;
        }
        by_provider
            .entry(id.subsystem())
            .or_default()
            .push(descriptor(id, service)?);
    }
    if by_provider.is_empty() {
        bail!(
            "{} has no enabled [[services]] to publish",
            setup.file.display()
        );
    }
    let runtime = runtime()?;
    let now = SystemTime::now();
    println!(
        "security server {}, central server {central}",
        setup.config.id
    );
    let mut failed = false;
    let mut pending = Vec::new();
    for (provider, services) in by_provider {
        let member = provider.member();
        let Some(signing) = setup.signing(member)? else {
            println!("  {provider}: skipped, no [[signing]] key for its member {member}");
            failed = true;
            continue;
        };
        for service in &services {
            let openapi = service.openapi_sha256.as_deref().map_or_else(
                || "no OpenAPI document".to_owned(),
                |hash| format!("OpenAPI sha256 {}…", &hash[..16.min(hash.len())]),
            );
            println!(
                "  {}: {} endpoint(s), {openapi}",
                service.id,
                service.endpoints.len()
            );
        }
        let request = RegistrationRequest {
            created_at: now,
            action: RequestAction::ServicePublication {
                provider: provider.clone(),
                services,
            },
        };
        match runtime.block_on(submit(&central, &request, &[signing.signer()])) {
            Ok(answer) => {
                answer.print();
                if answer.is_pending() {
                    pending.push(answer.id);
                }
            }
            Err(error) => {
                println!("  {provider}: refused: {error:#}");
                failed = true;
            }
        }
    }
    if !pending.is_empty() {
        println!();
        println!("Next: a registration officer of the central server approves the request(s):");
        for id in &pending {
            println!("  passerelle central requests approve {id}");
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `passerelle server status`.
pub(crate) fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let setup = Setup::load(&args.config)?;
    let now = SystemTime::now();
    let (conf, source) = if args.fresh {
        let conf = runtime()?.block_on(setup.fresh_conf(now))?;
        (conf, setup.anchor.configuration_url.clone())
    } else {
        let dir = setup.config.conf_cache_dir.as_ref().with_context(|| {
            format!(
                "{} sets no [server] conf_cache_dir; use --fresh",
                setup.file.display()
            )
        })?;
        let cached = ConfCache::new(dir.clone()).load()?.with_context(|| {
            format!(
                "no cached configuration in {} yet (the server writes it once running); use --fresh",
                dir.display()
            )
        })?;
        let conf = verify_signed(&cached.bytes, &cached.signature, &setup.anchor, now)?;
        (conf, format!("cache {}", dir.display()))
    };
    let mut fine = true;
    let mut line = |ok: bool, text: String| {
        fine &= ok;
        println!("{} {text}", if ok { "ok     " } else { "MISSING" });
    };
    let valid = conf.is_valid_at(now);
    line(
        valid,
        format!(
            "global configuration {} serial {}, generated {}, {} {} ({source})",
            conf.instance,
            conf.serial,
            format_rfc3339(conf.generated_at),
            if valid { "valid until" } else { "EXPIRED at" },
            format_rfc3339(conf.expires_at),
        ),
    );
    let server = &setup.config.id;
    let auth = Credential::load(&setup.config.auth, "authentication")?;
    let auth_hash = auth.leaf().map(CertHash::of);
    let entry = conf.server(server);
    match entry {
        Some(entry) => {
            let certified = auth_hash
                .as_ref()
                .is_some_and(|hash| entry.auth_cert_hashes.contains(hash));
            line(
                certified,
                format!(
                    "security server {server} at {}, {}",
                    entry.address,
                    if certified {
                        "with this auth certificate"
                    } else {
                        "but NOT with this auth certificate"
                    }
                ),
            );
        }
        None => line(false, format!("security server {server} is not registered")),
    }
    for client in &setup.config.hosted {
        let hosted = entry.is_some_and(|entry| entry.clients.contains(client));
        line(hosted, format!("client {client}"));
    }
    for (id, service) in &setup.config.services {
        if !service.enabled {
            continue;
        }
        match conf.service(id) {
            Some(descriptor) => line(
                true,
                format!(
                    "service {id} in the catalog, {} endpoint(s)",
                    descriptor.endpoints.len()
                ),
            ),
            None => line(false, format!("service {id} is not in the catalog")),
        }
    }
    Ok(if fine {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The configuration file, parsed, and its anchor.
struct Setup {
    file: PathBuf,
    config: ServerConfig,
    anchor: Anchor,
}

impl Setup {
    fn load(file: &Path) -> anyhow::Result<Self> {
        let config = ServerConfig::load(file)?;
        let anchor_path = config.anchor.as_ref().with_context(|| {
            format!(
                "{} sets no [server] anchor (write one with `passerelle central anchor`)",
                file.display()
            )
        })?;
        let anchor = Anchor::load(anchor_path)
            .with_context(|| format!("cannot read the anchor {}", anchor_path.display()))?;
        Ok(Self {
            file: file.to_path_buf(),
            config,
            anchor,
        })
    }

    /// `--central`, or the base of the anchor's configuration URL.
    fn central_url(&self, args: &CentralArgs) -> anyhow::Result<String> {
        let url = match &args.central {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let configuration = &self.anchor.configuration_url;
                configuration
                    .split_once("/globalconf/")
                    .map(|(base, _)| base.to_owned())
                    .with_context(|| {
                        format!(
                            "cannot tell the central server from {configuration}; use --central"
                        )
                    })?
            }
        };
        if !url.starts_with("http://") {
            bail!("--central {url}: the public listener is plain HTTP (http://host:port)");
        }
        Ok(url)
    }

    /// The signing credential of `member`, if the configuration holds one.
    fn signing(
        &self,
        member: &passerelle_ids::MemberId,
    ) -> anyhow::Result<Option<SigningCredential>> {
        let Some(files) = self.config.signing_for(member) else {
            return Ok(None);
        };
        let credential = Credential::load(files, "signing")?;
        Ok(Some(SigningCredential(credential)))
    }

    /// The central server's current configuration, verified against the anchor.
    async fn fresh_conf(&self, now: SystemTime) -> anyhow::Result<GlobalConf> {
        let fetcher = HttpFetcher::default();
        let bytes = fetcher.fetch(&self.anchor.configuration_url).await?;
        let signature = fetcher.fetch(&self.anchor.signature_url).await?;
        Ok(verify_configuration(
            &bytes,
            &signature,
            &self.anchor,
            AcceptedSerial(None),
            now,
        )?)
    }
}

/// A member's signing key and chain.
struct SigningCredential(Credential);

impl SigningCredential {
    fn signer(&self) -> RequestSigner<'_> {
        RequestSigner {
            role: SignerRole::Member,
            key: &self.0.key,
            chain: &self.0.chain,
        }
    }
}

/// The central server's answer to a submitted request.
struct Answer {
    id: u64,
    kind: String,
    status: String,
    summary: String,
}

impl Answer {
    fn is_pending(&self) -> bool {
        self.status == "pending"
    }

    fn is_approved(&self) -> bool {
        self.status == "approved"
    }

    fn print(&self) {
        println!(
            "  request {} {}: {} ({})",
            self.id, self.kind, self.status, self.summary
        );
    }
}

/// Signs `request` with every signer and posts it to the central server's public listener.
async fn submit(
    central: &str,
    request: &RegistrationRequest,
    signers: &[RequestSigner<'_>],
) -> anyhow::Result<Answer> {
    let signed = SignedRequest::sign(request, signers)?;
    let rest = central.strip_prefix("http://").unwrap_or(central);
    let (authority, prefix) = match rest.split_once('/') {
        Some((authority, prefix)) => (authority, format!("/{prefix}")),
        None => (rest, String::new()),
    };
    let message = Message {
        start: [
            "POST".to_owned(),
            format!("{prefix}/registration/v1/requests"),
            "HTTP/1.1".to_owned(),
        ],
        headers: vec![
            ("host".to_owned(), authority.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("connection".to_owned(), "close".to_owned()),
        ],
        body: signed.to_json(),
    };
    let response = http1::request(authority, &message, SUBMIT_TIMEOUT).await?;
    let status = &response.start[1];
    let body: Value = serde_json::from_slice(&response.body).with_context(|| {
        format!(
            "the central server answered {status} without JSON: {}",
            String::from_utf8_lossy(&response.body)
        )
    })?;
    if !status.starts_with('2') {
        let error = body["error"].as_str().unwrap_or("no reason given");
        match body["field"].as_str() {
            Some(field) => bail!("{status} {field}: {error}"),
            None => bail!("{status}: {error}"),
        }
    }
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_owned();
    Ok(Answer {
        id: body["id"]
            .as_u64()
            .with_context(|| format!("the central server's answer has no request id: {body}"))?,
        kind: text("kind"),
        status: text("status"),
        summary: text("summary"),
    })
}

/// A catalog entry for a configured service.
fn descriptor(id: &ServiceId, service: &ServiceConfig) -> anyhow::Result<ServiceDescriptor> {
    let openapi_sha256 = match &service.openapi {
        Some(OpenApiSource::File(path)) => {
            let document = std::fs::read(path).with_context(|| {
                format!(
                    "cannot read the OpenAPI document of {id} ({})",
                    path.display()
                )
            })?;
            Some(passerelle_pki::digest::sha256_hex(&document))
        }
        // An internal URL must not leak into the catalog; without the bytes there is no digest.
        Some(OpenApiSource::Url(_)) | None => None,
    };
    Ok(ServiceDescriptor {
        id: id.clone(),
        title: id.service_code().as_str().to_owned(),
        description: String::new(),
        endpoints: service
            .endpoints
            .iter()
            .map(|endpoint| Endpoint {
                method: endpoint
                    .method()
                    .map_or("*", |method| method.as_str())
                    .to_owned(),
                path: endpoint.path_pattern().to_owned(),
            })
            .collect(),
        openapi_url: None,
        openapi_sha256,
    })
}

/// The listener address, unless it is a wildcard that peers cannot dial.
fn reachable_address(listener: SocketAddr) -> anyhow::Result<String> {
    if listener.ip().is_unspecified() {
        bail!(
            "[listeners] server is {listener}, which peers cannot dial; pass --address HOST:PORT \
with the name or address they reach this server at"
        );
    }
    Ok(listener.to_string())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
