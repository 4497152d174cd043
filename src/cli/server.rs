//! `passerelle server`: run a security server, register it with the central server and
//! publish its services. The onboarding commands live in [`onboarding`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use passerelle_messagelog::Durability;
use passerelle_security_server::Node;

mod onboarding;

const SERVER_EXAMPLES: &str = "\
Example:
  passerelle server serve --config config/security-server.toml

  # Then, from a local system of a hosted subsystem (X-Road REST protocol r1):
  curl -H 'X-Road-Client: DEV/GOV/HEALTH/patients' \\
      http://127.0.0.1:8080/r1/DEV/GOV/EDUCATION/schools/enrolments/v1/pupils/42
  curl -H 'X-Road-Client: DEV/GOV/HEALTH/patients' \\
      http://127.0.0.1:8080/r1/DEV/GOV/EDUCATION/schools/listMethods
  curl -H 'X-Road-Client: DEV/GOV/HEALTH/patients' http://127.0.0.1:8080/listClients
  curl http://127.0.0.1:9090/health
  curl http://127.0.0.1:9090/metrics

Send SIGHUP to reload the file: services, access rights, local groups, hosted subsystems and
limits change in place; an invalid file is refused with its problems logged and the running
configuration stays. See docs/security-server.md.";

const REGISTER_EXAMPLES: &str = "\
Examples:
  # Ask for this server's registration (its auth certificate and address), signed with the
  # server's auth key and its owner's signing key
  passerelle server register --config agency-a/security-server.toml --central http://127.0.0.1:4001

  # Peers reach this server under another name than its listener address
  passerelle server register --config security-server.toml --central http://cs.example:4001 \\
      --address ss1.health.example:5500

The first run submits the auth-certificate request. Hosted subsystems can be registered only once
the central server knows the server, so when that request is still pending, a registration officer
approves it (`passerelle central requests approve ID`) and you run the same command again: it
skips what the global configuration already lists and submits one client request per hosted
subsystem (signed by the owner and, when it differs, by the subsystem's member, whose key must be
under [[signing]]). Exit status 1 if the central server refused a request.";

const PUBLISH_EXAMPLES: &str = "\
Examples:
  passerelle server publish --config agency-a/security-server.toml --central http://127.0.0.1:4001

Every enabled [[services]] entry becomes a service descriptor: the service code as its title, its
endpoints, and the SHA-256 of its openapi_file when set. One request per provider subsystem,
signed by the provider member's key; it replaces that subsystem's previous descriptors. Search
the result with `passerelle catalog search TEXT`.";

const STATUS_EXAMPLES: &str = "\
Examples:
  # What the running server uses: the cached copy in [server] conf_cache_dir
  passerelle server status --config agency-a/security-server.toml

  # A fresh copy from the anchor's URL (verified against the anchor, not cached)
  passerelle server status --config agency-a/security-server.toml --fresh

Exit status 0 when the configuration is valid and lists this server at its address with its
auth certificate, every hosted subsystem as its client and every enabled service; 1 otherwise.";

/// Run a security server: the gateway in front of an agency's information systems.
///
/// Local systems call it over plain HTTP (or HTTPS) with the X-Road REST protocol; it signs each
/// request with the client member's key, sends it over mutual TLS to the provider's security
/// server, verifies the signed answer and logs the exchange before returning it.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = SERVER_EXAMPLES)]
pub(crate) enum ServerCommand {
    /// Run the security server until Ctrl-C or SIGTERM.
    #[command(after_help = SERVER_EXAMPLES)]
    Serve {
        /// The TOML configuration (see config/security-server.toml for every key).
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
    /// Ask the central server to register this server, then its hosted subsystems.
    #[command(after_help = REGISTER_EXAMPLES)]
    Register(onboarding::RegisterArgs),
    /// Publish this server's services to the federation's catalog.
    #[command(after_help = PUBLISH_EXAMPLES)]
    Publish(onboarding::PublishArgs),
    /// Show whether the global configuration lists this server, its clients and services.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(onboarding::StatusArgs),
}

pub(crate) fn run(command: ServerCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServerCommand::Serve { config } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        ServerCommand::Register(args) => onboarding::register(&args),
        ServerCommand::Publish(args) => onboarding::publish(&args),
        ServerCommand::Status(args) => onboarding::status(&args),
    }
}

async fn serve(path: PathBuf) -> anyhow::Result<()> {
    let node = Node::launch(&path, Durability::Fsync).await?;
    let running = &node.running;
    println!("security server {}", running.server_addr);
    if let Some(address) = running.client_addr {
        println!("  local systems:  http://{address}/r1/...");
    }
    if let Some(address) = running.client_https_addr {
        println!("  local systems:  https://{address}/r1/...");
    }
    println!(
        "  peer servers:   https://{} (mutual TLS)",
        running.server_addr
    );
    if let Some(address) = running.admin_addr {
        println!("  health/metrics: http://{address}/health  http://{address}/metrics");
    }

    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                // reload_from logs why a new file is refused; the old configuration keeps running.
                if running.reload_from(&path).is_ok() {
                    tracing::info!(file = %path.display(), "reloaded");
                }
            }
            _ = terminate.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}
