//! `passerelle central`: run the central server, manage its registry through the admin API,
//! create admin tokens and write the anchor file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use passerelle_central_server::{AdminClient, CentralConfig, Registry, Role};
use passerelle_pki::Certificate;
use serde_json::{Value, json};

const CENTRAL_EXAMPLES: &str = "\
Examples:
  # Prepare a development CA and the admin API's TLS certificate, then start
  passerelle pki init --dir demo-data/pki --instance DEV
  passerelle pki issue --dir demo-data/pki --kind auth --name central \\
      --dns localhost --ip 127.0.0.1 --out demo-data/pki/central-admin
  passerelle central token create --config config/central.toml --role registration-officer
  passerelle central serve --config config/central.toml

  # In another shell: fill the registry
  export PASSERELLE_ADMIN_TOKEN=<the token printed above>
  passerelle central member-class add GOV --description Government
  passerelle central member add DEV/GOV/HEALTH --name 'Ministry of Health'
  passerelle central subsystem add DEV/GOV/HEALTH/registry
  passerelle central ca add --name dev --cert demo-data/pki/root.cert.pem \\
      --intermediate demo-data/pki/intermediate.cert.pem
  passerelle central requests list
  passerelle central anchor --config config/central.toml -o anchor.json

Admin commands talk to https://127.0.0.1:4000 unless --url says otherwise, and trust only the
certificate given with --ca-cert (default demo-data/pki/root.cert.pem).";

/// Run the central server and manage its registry.
///
/// The central server keeps the registry of members, subsystems, security servers, approved CAs
/// and TSAs and services, and publishes it as a signed global configuration. Admin commands call
/// its admin API over HTTPS with a bearer token; `serve`, `anchor` and `token create` read the
/// configuration file instead.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = CENTRAL_EXAMPLES)]
pub(crate) enum CentralCommand {
    /// Run the central server until Ctrl-C.
    #[command(
        after_help = "Example:\n  passerelle central serve --config config/central.toml\n\n\
The admin API listens on [admin] listen (HTTPS), the configuration, catalog and registration\n\
endpoints on [public] listen (plain HTTP). See docs/central-server.md."
    )]
    Serve(ConfigArgs),
    /// Write the anchor file that security servers are bootstrapped with.
    #[command(
        after_help = "Example:\n  passerelle central anchor --config config/central.toml -o anchor.json\n\n\
The anchor names the instance, the configuration and signature URLs and the configuration-\n\
signing certificate(s). Give it to every security server of the instance."
    )]
    Anchor {
        #[command(flatten)]
        config: ConfigArgs,
        /// Where to write the anchor (JSON).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
    /// Admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Member classes (GOV, COM, ...).
    #[command(subcommand)]
    MemberClass(MemberClassCommand),
    /// Members of the federation.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Subsystems of members.
    #[command(subcommand)]
    Subsystem(SubsystemCommand),
    /// Global groups of subsystems.
    #[command(subcommand)]
    GlobalGroup(GlobalGroupCommand),
    /// Approved certificate authorities.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Approved time-stamping authorities.
    #[command(subcommand)]
    Tsa(TsaCommand),
    /// Show a part of the registry as JSON.
    #[command(
        after_help = "Examples:\n  passerelle central list members\n  passerelle central list audit"
    )]
    List {
        /// What to list.
        #[arg(value_enum)]
        what: ListWhat,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// The onboarding queue: registration requests from security servers.
    #[command(subcommand)]
    Requests(RequestsCommand),
    /// Federation-wide settings carried in the global configuration.
    #[command(subcommand)]
    Settings(SettingsCommand),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// The central server's configuration file.
    #[arg(long, value_name = "FILE", default_value = "config/central.toml")]
    config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AdminArgs {
    /// Base URL of the admin API.
    #[arg(
        long,
        env = "PASSERELLE_ADMIN_URL",
        default_value = "https://127.0.0.1:4000",
        global = true
    )]
    url: String,
    /// Bearer token (see `passerelle central token create`).
    #[arg(
        long,
        env = "PASSERELLE_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    token: Option<String>,
    /// CA certificate (PEM) that issued the admin API's TLS certificate; nothing else is trusted.
    #[arg(
        long,
        env = "PASSERELLE_ADMIN_CA_CERT",
        value_name = "FILE",
        default_value = "demo-data/pki/root.cert.pem",
        global = true
    )]
    ca_cert: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token and print it once; only its hash is stored. Run while the server is stopped
    /// (it opens the registry directly).
    #[command(
        after_help = "Examples:\n  passerelle central token create --role registration-officer --name alice\n  passerelle central token create --role observer --name monitoring"
    )]
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// registration-officer (may change the registry) or observer (read only).
        #[arg(long, value_parser = ["registration-officer", "observer"])]
        role: String,
        /// Who holds it; recorded in the audit trail as the actor of each change.
        #[arg(long, default_value = "admin")]
        name: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum MemberClassCommand {
    /// Add a member class.
    #[command(
        after_help = "Example:\n  passerelle central member-class add GOV --description Government"
    )]
    Add {
        code: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum MemberCommand {
    /// Add a member; its class must exist.
    #[command(
        after_help = "Example:\n  passerelle central member add DEV/GOV/HEALTH --name 'Ministry of Health'"
    )]
    Add {
        /// INSTANCE/CLASS/CODE
        id: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SubsystemCommand {
    /// Add a subsystem to a registered member.
    #[command(after_help = "Example:\n  passerelle central subsystem add DEV/GOV/HEALTH/registry")]
    Add {
        /// INSTANCE/CLASS/CODE/SUBSYSTEM
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum GlobalGroupCommand {
    /// Add a global group.
    #[command(
        after_help = "Example:\n  passerelle central global-group add DEV/health-agencies --description 'Health agencies'"
    )]
    Add {
        /// INSTANCE/GROUPCODE
        id: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Add a subsystem to a global group.
    #[command(
        after_help = "Example:\n  passerelle central global-group add-member DEV/health-agencies DEV/GOV/HEALTH/registry"
    )]
    AddMember {
        group: String,
        subsystem: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CaCommand {
    /// Approve a certificate authority.
    #[command(
        after_help = "Example:\n  passerelle central ca add --name dev --cert demo-data/pki/root.cert.pem \\\n      --intermediate demo-data/pki/intermediate.cert.pem --ocsp http://127.0.0.1:4002"
    )]
    Add {
        #[arg(long)]
        name: String,
        /// Trust anchor certificate file(s) (PEM, may hold several).
        #[arg(long = "cert", value_name = "FILE", required = true)]
        certificates: Vec<PathBuf>,
        /// Intermediate certificate file(s).
        #[arg(long = "intermediate", value_name = "FILE")]
        intermediates: Vec<PathBuf>,
        /// OCSP responder URL(s).
        #[arg(long = "ocsp", value_name = "URL")]
        ocsp_responders: Vec<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TsaCommand {
    /// Approve a time-stamping authority.
    #[command(
        after_help = "Example:\n  passerelle central tsa add --name dev-tsa --url http://127.0.0.1:4003 --cert demo-data/pki/tsa.cert.pem"
    )]
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        url: String,
        /// The TSA certificate (PEM).
        #[arg(long = "cert", value_name = "FILE")]
        certificate: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum RequestsCommand {
    /// List registration requests and their status.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Approve a pending request; it takes effect in the next configuration.
    #[command(after_help = "Example:\n  passerelle central requests approve 3")]
    Approve {
        id: u64,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Reject a pending request.
    #[command(
        after_help = "Example:\n  passerelle central requests reject 3 --reason 'unknown machine'"
    )]
    Reject {
        id: u64,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SettingsCommand {
    /// Change some settings; the others keep their current values.
    #[command(after_help = "\
Examples:
  # Security servers download the configuration every 5 s instead of every 60 s
  passerelle central settings set --config-poll-interval-secs 5
  passerelle central list settings

The new settings are published at once; security servers apply them from their next download.")]
    Set {
        /// How long a published configuration stays valid.
        #[arg(long, value_name = "SECONDS")]
        config_validity_secs: Option<u64>,
        /// How often security servers download the configuration when all is well.
        #[arg(long, value_name = "SECONDS")]
        config_poll_interval_secs: Option<u64>,
        /// How old a stapled OCSP response may be.
        #[arg(long, value_name = "SECONDS")]
        ocsp_freshness_secs: Option<u64>,
        /// How often message logs are time-stamped.
        #[arg(long, value_name = "SECONDS")]
        timestamping_interval_secs: Option<u64>,
        /// The largest clock difference accepted between a signature's time and the receiver's.
        #[arg(long, value_name = "SECONDS")]
        max_clock_skew_secs: Option<u64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ListWhat {
    MemberClasses,
    Members,
    SecurityServers,
    GlobalGroups,
    Cas,
    Tsas,
    Services,
    Settings,
    Requests,
    Audit,
    Globalconf,
}

impl ListWhat {
    fn path(self) -> &'static str {
        match self {
            ListWhat::MemberClasses => "/api/v1/member-classes",
            ListWhat::Members => "/api/v1/members",
            ListWhat::SecurityServers => "/api/v1/security-servers",
            ListWhat::GlobalGroups => "/api/v1/global-groups",
            ListWhat::Cas => "/api/v1/cas",
            ListWhat::Tsas => "/api/v1/tsas",
            ListWhat::Services => "/api/v1/services",
            ListWhat::Settings => "/api/v1/settings",
            ListWhat::Requests => "/api/v1/requests",
            ListWhat::Audit => "/api/v1/audit",
            ListWhat::Globalconf => "/api/v1/globalconf",
        }
    }
}

pub(crate) fn run(command: CentralCommand) -> anyhow::Result<ExitCode> {
    match command {
        CentralCommand::Serve(args) => serve(&args),
        CentralCommand::Anchor { config, output } => {
            let config = CentralConfig::load(&config.config)?;
            let anchor = passerelle_central_server::anchor_for(&config, SystemTime::now())?;
            anchor.save(&output)?;
            println!(
                "wrote {} (instance {}, configuration {})",
                output.display(),
                anchor.instance,
                anchor.configuration_url
            );
            Ok(ExitCode::SUCCESS)
        }
        CentralCommand::Token(TokenCommand::Create { config, role, name }) => {
            let config = CentralConfig::load(&config.config)?;
            let role: Role = role.parse().map_err(anyhow::Error::msg)?;
            let registry =
                Registry::open(&config.data_dir, config.instance.clone()).with_context(|| {
                    format!(
                        "cannot open the registry in {} (stop the central server first)",
                        config.data_dir.display()
                    )
                })?;
            let token = registry.create_token(&name, role, SystemTime::now())?;
            registry.flush()?;
            eprintln!(
                "token for {name:?} with role {}; it is shown only once:",
                role.as_str()
            );
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        CentralCommand::MemberClass(MemberClassCommand::Add {
            code,
            description,
            admin,
        }) => call(
            &admin,
            "POST",
            "/api/v1/member-classes",
            Some(json!({"code": code, "description": description})),
        ),
        CentralCommand::Member(MemberCommand::Add { id, name, admin }) => call(
            &admin,
            "POST",
            "/api/v1/members",
            Some(json!({"id": id, "name": name})),
        ),
        CentralCommand::Subsystem(SubsystemCommand::Add { id, admin }) => call(
            &admin,
            "POST",
            "/api/v1/subsystems",
            Some(json!({"id": id})),
        ),
        CentralCommand::GlobalGroup(GlobalGroupCommand::Add {
            id,
            description,
            admin,
        }) => call(
            &admin,
            "POST",
            "/api/v1/global-groups",
            Some(json!({"id": id, "description": description})),
        ),
        CentralCommand::GlobalGroup(GlobalGroupCommand::AddMember {
            group,
            subsystem,
            admin,
        }) => call(
            &admin,
            "POST",
            "/api/v1/global-groups/members",
            Some(json!({"group": group, "subsystem": subsystem})),
        ),
        CentralCommand::Ca(CaCommand::Add {
            name,
            certificates,
            intermediates,
            ocsp_responders,
            admin,
        }) => {
            let body = json!({
                "name": name,
                "certificates": pems(&certificates)?,
                "intermediates": pems(&intermediates)?,
                "ocsp_responders": ocsp_responders,
            });
            call(&admin, "POST", "/api/v1/cas", Some(body))
        }
        CentralCommand::Tsa(TsaCommand::Add {
            name,
            url,
            certificate,
            admin,
        }) => {
            let certificate = pems(std::slice::from_ref(&certificate))?
                .into_iter()
                .next()
                .unwrap_or_default();
            call(
                &admin,
                "POST",
                "/api/v1/tsas",
                Some(json!({"name": name, "url": url, "certificate": certificate})),
            )
        }
        CentralCommand::List { what, admin } => call(&admin, "GET", what.path(), None),
        CentralCommand::Requests(RequestsCommand::List { admin }) => {
            call(&admin, "GET", "/api/v1/requests", None)
        }
        CentralCommand::Requests(RequestsCommand::Approve { id, admin }) => call(
            &admin,
            "POST",
            &format!("/api/v1/requests/{id}/approve"),
            None,
        ),
        CentralCommand::Requests(RequestsCommand::Reject { id, reason, admin }) => call(
            &admin,
            "POST",
            &format!("/api/v1/requests/{id}/reject"),
            Some(json!({"reason": reason})),
        ),
        CentralCommand::Settings(SettingsCommand::Set {
            config_validity_secs,
            config_poll_interval_secs,
            ocsp_freshness_secs,
            timestamping_interval_secs,
            max_clock_skew_secs,
            admin,
        }) => {
            let changes = [
                ("config_validity_secs", config_validity_secs),
                ("config_poll_interval_secs", config_poll_interval_secs),
                ("ocsp_freshness_secs", ocsp_freshness_secs),
                ("timestamping_interval_secs", timestamping_interval_secs),
                ("max_clock_skew_secs", max_clock_skew_secs),
            ];
            set_settings(&admin, &changes)
        }
    }
}

/// Reads the current settings, changes the given ones, and writes them back whole (the admin
/// API replaces the settings object).
fn set_settings(admin: &AdminArgs, changes: &[(&str, Option<u64>)]) -> anyhow::Result<ExitCode> {
    if changes.iter().all(|(_, value)| value.is_none()) {
        bail!("nothing to change: give at least one setting (see --help)");
    }
    let client = admin_client(admin)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut settings = client.get("/api/v1/settings").await?;
        let object = settings
            .as_object_mut()
            .context("the admin API answered settings that are not a JSON object")?;
        for (key, value) in changes {
            if let Some(value) = value {
                object.insert((*key).to_owned(), json!(value));
            }
        }
        client.put("/api/v1/settings", &settings).await?;
        println!("{}", serde_json::to_string_pretty(&settings)?);
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn serve(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = CentralConfig::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let central = passerelle_central_server::start(config, None).await?;
        eprintln!(
            "admin API   {}  (OpenAPI: {}/api/openapi.json)",
            central.admin_url(),
            central.admin_url()
        );
        eprintln!(
            "public      {}  (configuration, catalog, registration)",
            central.public_url()
        );
        eprintln!("press Ctrl-C to stop");
        central.run_until_interrupted().await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Every certificate in the given PEM files, one PEM string each.
fn pems(files: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for file in files {
        let certificates = Certificate::load(file)
            .with_context(|| format!("cannot read certificates from {}", file.display()))?;
        out.extend(certificates.iter().map(Certificate::to_pem));
    }
    Ok(out)
}

fn admin_client(admin: &AdminArgs) -> anyhow::Result<AdminClient> {
    let trusted = Certificate::load(&admin.ca_cert).with_context(|| {
        format!(
            "cannot read the admin CA certificate {} (use --ca-cert)",
            admin.ca_cert.display()
        )
    })?;
    if admin.token.is_none() {
        bail!(
            "no admin token: pass --token or set PASSERELLE_ADMIN_TOKEN (see `passerelle central token create`)"
        );
    }
    Ok(AdminClient::new(&admin.url, &trusted, admin.token.clone())?)
}

fn call(
    admin: &AdminArgs,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<ExitCode> {
    let client = admin_client(admin)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let answer = runtime.block_on(client.call(method, path, body.as_ref()))?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}
