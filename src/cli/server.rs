//! `passerelle server`: run a security server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use passerelle_messagelog::Durability;
use passerelle_security_server::Node;

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
