//! `passerelle demo`: a whole federation on loopback in one command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use passerelle_messagelog::Durability;
use passerelle_testkit::{Federation, FederationOptions, names};

use crate::demo::manifest::{
    CentralEntry, ClientEntry, Manifest, SecurityServerEntry, ServiceEntry,
};

/// Start a whole federation on this machine: a development CA, a central server, and two
/// agencies' security servers in front of a sample vaccination registry.
///
/// Everything is onboarded through the real registration path (signed requests, approval,
/// signed global configuration). The state lives in DIR and is reused on the next start.
/// Stop with Ctrl-C or SIGTERM.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  passerelle demo                      # state in ./demo-data
  passerelle demo --dir /var/tmp/fed   # elsewhere

While it runs, DIR/demo.json lists every endpoint (see the README), and:
  passerelle call DEV/GOV/HEALTH/registry/vaccinations /v1/children/42/vaccinations
  passerelle audit export --log DIR/ss-health/messagelog -o health.archive   # after stopping")]
pub(crate) struct DemoArgs {
    /// Where the federation keeps its PKI, registry, configurations and message logs.
    #[arg(long, default_value = "demo-data", value_name = "DIR")]
    dir: PathBuf,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args.dir))?;
    Ok(ExitCode::SUCCESS)
}

async fn demo(dir: PathBuf) -> anyhow::Result<()> {
    let options = FederationOptions {
        dir,
        durability: Durability::Fsync,
    };
    let federation = Federation::start(options).await?;
    let manifest = manifest(&federation)?;
    let manifest_path = federation.dir.join("demo.json");
    manifest.save(&manifest_path)?;
    print_banner(&manifest, &manifest_path, &federation.dir);

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("stopping the federation…");
    // Nothing runs any more: scripts must not find endpoints that answer no one.
    let _ = std::fs::remove_file(&manifest_path);
    federation.shutdown().await;
    eprintln!(
        "stopped; the state stays in {} for the next start",
        manifest_path.parent().unwrap_or(Path::new(".")).display()
    );
    Ok(())
}

fn manifest(federation: &Federation) -> anyhow::Result<Manifest> {
    let anchor = federation.central.anchor();
    let security_servers = federation
        .servers
        .iter()
        .map(|(id, node)| {
            let admin = node
                .running
                .admin_addr
                .context("demo servers have an admin listener")?;
            let client = node
                .running
                .client_addr
                .context("demo servers have a client listener")?;
            Ok(SecurityServerEntry {
                id: id.to_string(),
                client_url: format!("http://{client}"),
                health_url: format!("http://{admin}/health"),
                metrics_url: format!("http://{admin}/metrics"),
                log_dir: node.log_dir.clone(),
                config: node.config_path.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Manifest {
        instance: names::INSTANCE.to_owned(),
        central: CentralEntry {
            admin_url: federation.central.admin_url(),
            globalconf_url: anchor.configuration_url.clone(),
            anchor: federation.anchor_path.clone(),
        },
        security_servers,
        clients: vec![
            ClientEntry {
                id: names::CONSUMER_SUBSYSTEM.to_owned(),
                security_server: names::CONSUMER_SERVER.to_owned(),
            },
            ClientEntry {
                id: names::PROVIDER_SUBSYSTEM.to_owned(),
                security_server: names::PROVIDER_SERVER.to_owned(),
            },
        ],
        services: vec![ServiceEntry {
            id: names::SERVICE.to_owned(),
            allowed_path: names::ALLOWED_PATH.to_owned(),
            denied_path: names::DENIED_PATH.to_owned(),
        }],
    })
}

fn print_banner(manifest: &Manifest, manifest_path: &Path, dir: &Path) {
    let client = names::CONSUMER_SUBSYSTEM;
    let url = manifest.client_url_for(client).unwrap_or_default();
    let service = names::SERVICE;
    let subsystem = names::PROVIDER_SUBSYSTEM;
    println!();
    println!(
        "Passerelle demo federation {} is running (state in {})",
        manifest.instance,
        dir.display()
    );
    println!();
    println!(
        "  central server     admin {}   global configuration {}",
        manifest.central.admin_url, manifest.central.globalconf_url
    );
    for server in &manifest.security_servers {
        println!(
            "  security server    {:<22} local systems {}   health {}",
            server.id, server.client_url, server.health_url
        );
    }
    println!("  service            {service}  (schools may GET /v1/children/** only)");
    println!();
    println!("Try it — call as {client} through its own security server:");
    println!();
    println!("  # allowed: a child's vaccinations");
    println!(
        "  curl -H 'X-Road-Client: {client}' {url}/r1/{service}{}",
        names::ALLOWED_PATH
    );
    println!(
        "  # denied: the administrative export (answers X-Road-Error: Server.ServerProxy.AccessDenied)"
    );
    println!(
        "  curl -i -H 'X-Road-Client: {client}' {url}/r1/{service}{}",
        names::DENIED_PATH
    );
    println!("  # what the provider offers");
    println!("  curl -H 'X-Road-Client: {client}' {url}/r1/{subsystem}/listMethods");
    println!();
    println!(
        "Endpoints for scripts: {}. Stop with Ctrl-C.",
        manifest_path.display()
    );
}
