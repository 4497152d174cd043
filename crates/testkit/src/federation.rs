use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use passerelle_central_server::trust_services::RunningTrustServices;
use passerelle_central_server::{AdminClient, CentralConfig, Role, RunningCentral};
use passerelle_globalconf::{
    Endpoint, GlobalConf, RegistrationRequest, RequestAction, RequestSigner, ServiceDescriptor,
    SignedRequest, SignerRole,
};
use passerelle_ids::{SecurityServerId, ServiceId, SubsystemId};
use passerelle_messagelog::{Durability, KeyRing};
use passerelle_pki::aead::BodyKey;
use passerelle_pki::devca::{DevCa, IssueRequest, LeafKey, LeafProfile, Validity};
use passerelle_pki::{Certificate, SigningKey};
use passerelle_security_server::Node;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend;

/// The names of the federation's parties.
pub mod names {
    pub const INSTANCE: &str = "DEV";
    pub const MEMBER_CLASS: &str = "GOV";
    pub const PROVIDER_MEMBER: &str = "DEV/GOV/HEALTH";
    pub const PROVIDER_SERVER: &str = "DEV/GOV/HEALTH/ss1";
    pub const PROVIDER_SUBSYSTEM: &str = "DEV/GOV/HEALTH/registry";
    pub const SERVICE: &str = "DEV/GOV/HEALTH/registry/vaccinations";
    pub const CONSUMER_MEMBER: &str = "DEV/GOV/EDUCATION";
    pub const CONSUMER_SERVER: &str = "DEV/GOV/EDUCATION/ss1";
    pub const CONSUMER_SUBSYSTEM: &str = "DEV/GOV/EDUCATION/schools";
    /// A path the consumer's access right covers (`GET /v1/children/**`).
    pub const ALLOWED_PATH: &str = "/v1/children/42/vaccinations";
    /// A path of the same service the consumer may not reach.
    pub const DENIED_PATH: &str = "/v1/admin/records";
}

/// Where the federation lives and how it logs.
#[derive(Debug, Clone)]
pub struct FederationOptions {
    /// Everything is kept below this directory; a second start on it reuses the state.
    pub dir: PathBuf,
    /// [`Durability::Fsync`] except in benchmarks that measure the sync's cost.
    pub durability: Durability,
}

/// The loopback ports of every listener. Chosen free on the first start and kept in
/// `DIR/ports.json`, because the security servers' addresses are registered in the central
/// registry and must not change under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub central_admin: u16,
    pub central_public: u16,
    pub backend: u16,
    pub provider_client: u16,
    pub provider_server: u16,
    pub provider_admin: u16,
    pub consumer_client: u16,
    pub consumer_server: u16,
    pub consumer_admin: u16,
    /// The development OCSP responder and TSA. Absent from port plans written before they were
    /// started here: a free port is then chosen and the plan rewritten.
    #[serde(default)]
    pub trust_services: u16,
}

/// A running federation. Call [`Federation::shutdown`] to stop it cleanly.
pub struct Federation {
    pub dir: PathBuf,
    pub ports: Ports,
    pub ca: DevCa,
    pub central: RunningCentral,
    pub anchor_path: PathBuf,
    /// The provider's (`DEV/GOV/HEALTH/ss1`) then the consumer's (`DEV/GOV/EDUCATION/ss1`).
    pub servers: Vec<(SecurityServerId, Node)>,
    pub backend_addr: SocketAddr,
    /// The development OCSP responder and TSA the global configuration names.
    pub trust_services: RunningTrustServices,
    backend_stop: watch::Sender<bool>,
    backend_task: JoinHandle<()>,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("dir", &self.dir)
            .field("ports", &self.ports)
            .finish()
    }
}

/// A federation onboarded and configured, with only its central server running: see
/// [`Federation::prepare`]. Call [`PreparedFederation::shutdown`] to stop the central server.
pub struct PreparedFederation {
    pub dir: PathBuf,
    pub ports: Ports,
    pub ca: DevCa,
    pub central: RunningCentral,
    pub anchor_path: PathBuf,
    /// Each security server's configuration file: the provider's, then the consumer's.
    pub server_configs: Vec<(SecurityServerId, PathBuf)>,
    /// The development OCSP responder and TSA the global configuration names.
    pub trust_services: RunningTrustServices,
}

impl std::fmt::Debug for PreparedFederation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedFederation")
            .field("dir", &self.dir)
            .field("ports", &self.ports)
            .field("server_configs", &self.server_configs)
            .finish()
    }
}

impl PreparedFederation {
    /// The configuration file of security server `id`.
    pub fn server_config(&self, id: &str) -> Option<&Path> {
        self.server_configs
            .iter()
            .find(|(server, _)| server.to_string() == id)
            .map(|(_, path)| path.as_path())
    }

    /// Stops the central server and the trust services.
    pub async fn shutdown(self) {
        self.central.shutdown().await;
        self.trust_services.shutdown().await;
    }
}

/// One agency: its server, member, hosted subsystem and directory name.
struct Agency {
    server: &'static str,
    member: &'static str,
    subsystem: &'static str,
    directory: &'static str,
    client_port: u16,
    server_port: u16,
    admin_port: u16,
}

impl Federation {
    /// Starts (or restarts) the federation in `options.dir`.
    pub async fn start(options: FederationOptions) -> anyhow::Result<Self> {
        let prepared = Self::prepare(&options.dir).await?;
        let PreparedFederation {
            dir,
            ports,
            ca,
            central,
            anchor_path,
            server_configs,
            trust_services,
        } = prepared;
        let (backend_listener, backend_addr) = backend::bind(ports.backend)
            .await
            .with_context(|| format!("cannot bind the sample backend on port {}", ports.backend))?;
        let (backend_stop, stop_receiver) = watch::channel(false);
        let backend_task = tokio::spawn(backend::serve(backend_listener, stop_receiver));

        let mut servers = Vec::new();
        for (id, config) in &server_configs {
            let node = Node::launch(config, options.durability)
                .await
                .with_context(|| format!("cannot start security server {id}"))?;
            servers.push((id.clone(), node));
        }
        let federation = Self {
            dir,
            ports,
            ca,
            central,
            anchor_path,
            servers,
            backend_addr,
            trust_services,
            backend_stop,
            backend_task,
        };
        federation.wait_until_configured().await?;
        Ok(federation)
    }

    /// Everything [`Federation::start`] does except starting the backend and the security
    /// servers: the development CA, the central server (running), the onboarding of both
    /// agencies, the published configuration, and each security server's configuration file.
    /// The benchmark uses it to run the servers as separate processes.
    pub async fn prepare(dir: &Path) -> anyhow::Result<PreparedFederation> {
        let dir = absolute(dir)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let now = SystemTime::now();
        let ca = DevCa::open_or_init(&dir.join("pki"), names::INSTANCE, now)
            .context("cannot open or create the development CA")?;
        let ports = Ports::load_or_choose(&dir.join("ports.json"))?;
        let trust_services = passerelle_central_server::trust_services::start(
            &dir.join("pki"),
            SocketAddr::from((Ipv4Addr::LOCALHOST, ports.trust_services)),
            None,
        )
        .await
        .context("cannot start the development OCSP responder and TSA")?;

        let central_files = ensure_issued(
            &ca,
            &dir.join("pki/central-admin"),
            auth_profile("central"),
            now,
        )?;
        let central_config = write_central_config(&dir, &ports, &central_files)?;
        let central = passerelle_central_server::start(CentralConfig::load(&central_config)?, None)
            .await
            .context("cannot start the central server")?;
        let token =
            central
                .registry()
                .create_token("federation-setup", Role::RegistrationOfficer, now)?;
        let officer = AdminClient::new(&central.admin_url(), &[ca.root().clone()], Some(token))?;

        let agencies = [
            Agency {
                server: names::PROVIDER_SERVER,
                member: names::PROVIDER_MEMBER,
                subsystem: names::PROVIDER_SUBSYSTEM,
                directory: "ss-health",
                client_port: ports.provider_client,
                server_port: ports.provider_server,
                admin_port: ports.provider_admin,
            },
            Agency {
                server: names::CONSUMER_SERVER,
                member: names::CONSUMER_MEMBER,
                subsystem: names::CONSUMER_SUBSYSTEM,
                directory: "ss-education",
                client_port: ports.consumer_client,
                server_port: ports.consumer_server,
                admin_port: ports.consumer_admin,
            },
        ];
        register_parties(&officer, &ca, &agencies, &trust_services).await?;
        let mut config_paths = Vec::new();
        for agency in &agencies {
            let auth = ensure_issued(
                &ca,
                &dir.join(format!("pki/{}-auth", agency.directory)),
                auth_profile(agency.directory),
                now,
            )?;
            let sign = ensure_issued(
                &ca,
                &dir.join(format!("pki/{}-sign", agency.directory)),
                LeafProfile::Sign {
                    member: agency.member.parse()?,
                },
                now,
            )?;
            onboard(&central, &officer, agency, &auth, &sign, now).await?;
            config_paths.push((agency, auth, sign));
        }
        let provider_sign = &config_paths[0].2;
        publish_service(&central, &officer, provider_sign, now).await?;
        central
            .publish_now()
            .context("cannot publish the global configuration")?;
        let anchor_path = dir.join("anchor.json");
        central.anchor().save(&anchor_path)?;

        let mut server_configs = Vec::new();
        for (agency, auth, sign) in &config_paths {
            let config = write_server_config(&dir, agency, &anchor_path, auth, sign, &ports)?;
            server_configs.push((agency.server.parse()?, config));
        }
        Ok(PreparedFederation {
            dir,
            ports,
            ca,
            central,
            anchor_path,
            server_configs,
            trust_services,
        })
    }

    /// Waits until every security server holds a configuration listing both servers.
    async fn wait_until_configured(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let service: ServiceId = names::SERVICE.parse()?;
        for (id, node) in &self.servers {
            loop {
                let ready = node.conf.current(SystemTime::now()).is_ok_and(|conf| {
                    self.servers
                        .iter()
                        .all(|(other, _)| conf.server(other).is_some())
                        && conf.service(&service).is_some()
                });
                if ready {
                    break;
                }
                if tokio::time::Instant::now() > deadline {
                    bail!(
                        "security server {id} did not receive a complete global configuration within 60 s"
                    );
                }
                let _ = node.conf.refresh(SystemTime::now()).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // The OCSP responses it staples, fetched now that it knows the responder.
            node.running.refresh_certificate_status().await;
        }
        Ok(())
    }

    /// The security server `id`.
    pub fn server(&self, id: &str) -> Option<&Node> {
        self.servers
            .iter()
            .find(|(server, _)| server.to_string() == id)
            .map(|(_, node)| node)
    }

    /// The consumer's client-side URL, where information systems of `schools` call.
    pub fn consumer_client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.consumer_client)
    }

    /// Stops every part: security servers first (so nothing is in flight), then the backend and
    /// the central server.
    pub async fn shutdown(self) {
        for (_, node) in self.servers {
            node.shutdown().await;
        }
        let _ = self.backend_stop.send(true);
        let _ = self.backend_task.await;
        self.central.shutdown().await;
        self.trust_services.shutdown().await;
    }
}

impl Ports {
    fn load_or_choose(path: &Path) -> anyhow::Result<Self> {
        if let Ok(text) = std::fs::read_to_string(path) {
            let mut ports: Ports = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a port plan", path.display()))?;
            if ports.trust_services == 0 {
                ports.trust_services = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .and_then(|listener| listener.local_addr())
                    .context("cannot find a free loopback port")?
                    .port();
                std::fs::write(path, serde_json::to_vec_pretty(&ports)?)?;
            }
            return Ok(ports);
        }
        // Bind them all at once so no two are the same, then release them for the servers.
        let listeners = (0..10)
            .map(|_| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
            .collect::<Result<Vec<_>, _>>()
            .context("cannot find free loopback ports")?;
        let port = |index: usize| listeners[index].local_addr().map(|address| address.port());
        let ports = Ports {
            central_admin: port(0)?,
            central_public: port(1)?,
            backend: port(2)?,
            provider_client: port(3)?,
            provider_server: port(4)?,
            provider_admin: port(5)?,
            consumer_client: port(6)?,
            consumer_server: port(7)?,
            consumer_admin: port(8)?,
            trust_services: port(9)?,
        };
        drop(listeners);
        std::fs::write(path, serde_json::to_vec_pretty(&ports)?)?;
        Ok(ports)
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

fn auth_profile(name: &str) -> LeafProfile {
    LeafProfile::Auth {
        name: name.to_owned(),
        dns_names: vec!["localhost".to_owned()],
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    }
}

/// A key and certificate chain on disk, issued on the first start and reused afterwards.
struct CredentialFiles {
    key_path: PathBuf,
    chain_path: PathBuf,
    key: SigningKey,
    chain: Vec<Certificate>,
}

fn ensure_issued(
    ca: &DevCa,
    prefix: &Path,
    profile: LeafProfile,
    now: SystemTime,
) -> anyhow::Result<CredentialFiles> {
    let key_path = prefix.with_extension("key.pem");
    let chain_path = prefix.with_extension("chain.pem");
    if !(key_path.exists() && chain_path.exists()) {
        let issued = ca.issue(&IssueRequest {
            profile,
            validity: Validity::days_from(now, 825),
            key: LeafKey::Generate,
        })?;
        issued.write(prefix)?;
    }
    let key = SigningKey::load(&key_path)?;
    let chain = Certificate::load(&chain_path)?;
    Ok(CredentialFiles {
        key_path,
        chain_path,
        key,
        chain,
    })
}

fn write_central_config(
    dir: &Path,
    ports: &Ports,
    admin: &CredentialFiles,
) -> anyhow::Result<PathBuf> {
    let central = dir.join("central");
    std::fs::create_dir_all(&central)?;
    let pki = dir.join("pki");
    let text = format!(
        r#"# Written by the in-process federation; regenerated on every start.
instance = "{instance}"
data_dir = "{data}"
auto_approve = true
generation_interval_secs = 60

[admin]
listen = "127.0.0.1:{admin_port}"
tls_certificate = "{chain}"
tls_key = "{key}"

[public]
listen = "127.0.0.1:{public_port}"
url = "http://127.0.0.1:{public_port}"

[signing]
key = "{signing_key}"
certificate = "{signing_cert}"
"#,
        instance = names::INSTANCE,
        data = central.join("data").display(),
        admin_port = ports.central_admin,
        public_port = ports.central_public,
        chain = admin.chain_path.display(),
        key = admin.key_path.display(),
        signing_key = pki.join("config-signing.key.pem").display(),
        signing_cert = pki.join("config-signing.cert.pem").display(),
    );
    let path = central.join("central.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Sends an admin call that creates something; "already exists" is fine on a restart.
async fn create(officer: &AdminClient, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
    let (status, answer) = officer
        .send("POST", path, Some(serde_json::to_vec(&body)?))
        .await?;
    if (200..300).contains(&status) || status == 409 {
        Ok(())
    } else {
        bail!(
            "POST {path} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        )
    }
}

async fn register_parties(
    officer: &AdminClient,
    ca: &DevCa,
    agencies: &[Agency],
    trust_services: &RunningTrustServices,
) -> anyhow::Result<()> {
    create(
        officer,
        "/api/v1/member-classes",
        json!({"code": names::MEMBER_CLASS, "description": "Government agencies"}),
    )
    .await?;
    for (member, name) in [
        (names::PROVIDER_MEMBER, "Ministry of Health"),
        (names::CONSUMER_MEMBER, "Ministry of Education"),
    ] {
        create(
            officer,
            "/api/v1/members",
            json!({"id": member, "name": name}),
        )
        .await?;
    }
    for agency in agencies {
        create(
            officer,
            "/api/v1/subsystems",
            json!({"id": agency.subsystem}),
        )
        .await?;
    }
    create(
        officer,
        "/api/v1/cas",
        json!({
            "name": "development CA",
            "certificates": [ca.root().to_pem()],
            "intermediates": [ca.intermediate().certificate.to_pem()],
            "ocsp_responders": [trust_services.ocsp_url()],
        }),
    )
    .await?;
    create(
        officer,
        "/api/v1/tsas",
        json!({
            "name": "development TSA",
            "url": trust_services.tsa_url(),
            "certificate": ca.tsa().certificate.to_pem(),
        }),
    )
    .await?;
    // Stamp the demo's logs every few seconds, so that `passerelle audit verify` soon finds
    // verified tokens (federations use the 60 s default).
    let (status, answer) = officer
        .send(
            "PUT",
            "/api/v1/settings",
            Some(serde_json::to_vec(&json!({
                "timestamping_interval_secs": DEMO_TIMESTAMPING_INTERVAL_SECS,
            }))?),
        )
        .await?;
    if !(200..300).contains(&status) {
        bail!(
            "PUT /api/v1/settings answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(())
}

/// How often the in-process federation's message logs are time-stamped.
const DEMO_TIMESTAMPING_INTERVAL_SECS: u64 = 2;

fn published(central: &RunningCentral) -> anyhow::Result<GlobalConf> {
    let published = central.publish_now()?;
    Ok(GlobalConf::from_json(&published.bytes)?)
}

async fn submit(
    officer: &AdminClient,
    request: &RegistrationRequest,
    signers: &[RequestSigner<'_>],
) -> anyhow::Result<()> {
    let signed = SignedRequest::sign(request, signers)?;
    let answer = officer.submit_request(&signed).await?;
    if answer["status"] != "approved" {
        bail!("registration request was not approved: {answer}");
    }
    Ok(())
}

/// Registers the server's authentication certificate and its hosted subsystem, unless the
/// published configuration already has them (a restart).
async fn onboard(
    central: &RunningCentral,
    officer: &AdminClient,
    agency: &Agency,
    auth: &CredentialFiles,
    sign: &CredentialFiles,
    now: SystemTime,
) -> anyhow::Result<()> {
    let server: SecurityServerId = agency.server.parse()?;
    let subsystem: SubsystemId = agency.subsystem.parse()?;
    let address = format!("127.0.0.1:{}", agency.server_port);
    let auth_leaf = auth.chain.first().context("empty auth chain")?;
    let conf = published(central)?;
    let registered = conf.server(&server).is_some_and(|entry| {
        entry.address == address
            && entry
                .auth_cert_hashes
                .iter()
                .any(|hash| hash.0 == auth_leaf.sha256_fingerprint())
    });
    let member_signer = RequestSigner {
        role: SignerRole::Member,
        key: &sign.key,
        chain: &sign.chain,
    };
    if !registered {
        let request = RegistrationRequest {
            created_at: now,
            action: RequestAction::AuthCertificate {
                server: server.clone(),
                address,
                certificate: auth_leaf.to_pem(),
            },
        };
        let auth_signer = RequestSigner {
            role: SignerRole::AuthKey,
            key: &auth.key,
            chain: &auth.chain,
        };
        submit(officer, &request, &[auth_signer, member_signer]).await?;
    }
    let hosted = published(central)?
        .servers_hosting(&subsystem)
        .iter()
        .any(|entry| entry.id == server);
    if !hosted {
        let member_signer = RequestSigner {
            role: SignerRole::Member,
            key: &sign.key,
            chain: &sign.chain,
        };
        let request = RegistrationRequest {
            created_at: now,
            action: RequestAction::Client {
                server,
                client: subsystem,
            },
        };
        submit(officer, &request, &[member_signer]).await?;
    }
    Ok(())
}

/// Publishes the vaccination service's descriptor to the catalog, unless it is there already.
async fn publish_service(
    central: &RunningCentral,
    officer: &AdminClient,
    provider: &CredentialFiles,
    now: SystemTime,
) -> anyhow::Result<()> {
    let service: ServiceId = names::SERVICE.parse()?;
    if published(central)?.service(&service).is_some() {
        return Ok(());
    }
    let endpoint = |method: &str, path: &str| Endpoint {
        method: method.to_owned(),
        path: path.to_owned(),
    };
    let descriptor = ServiceDescriptor {
        id: service.clone(),
        title: "Vaccination registry".to_owned(),
        description: "Children's vaccination records held by the Ministry of Health".to_owned(),
        endpoints: vec![
            endpoint("GET", "/v1/children/{id}"),
            endpoint("GET", "/v1/children/{id}/vaccinations"),
            endpoint("POST", "/v1/children/{id}/vaccinations"),
            endpoint("GET", "/v1/admin/records"),
            endpoint("POST", "/v1/echo"),
        ],
        openapi_url: None,
        openapi_sha256: Some(passerelle_pki::digest::sha256_hex(
            backend::OPENAPI.as_bytes(),
        )),
    };
    let request = RegistrationRequest {
        created_at: now,
        action: RequestAction::ServicePublication {
            provider: service.subsystem().clone(),
            services: vec![descriptor],
        },
    };
    let signer = RequestSigner {
        role: SignerRole::Member,
        key: &provider.key,
        chain: &provider.chain,
    };
    submit(officer, &request, &[signer]).await
}

fn write_server_config(
    dir: &Path,
    agency: &Agency,
    anchor: &Path,
    auth: &CredentialFiles,
    sign: &CredentialFiles,
    ports: &Ports,
) -> anyhow::Result<PathBuf> {
    let home = dir.join(agency.directory);
    std::fs::create_dir_all(&home)?;
    let keys = home.join("body-keys.toml");
    if !keys.exists() {
        let ring = KeyRing::new("k1", vec![BodyKey::generate("k1")?])?;
        std::fs::write(&keys, ring.to_toml())?;
    }
    let mut text = format!(
        r#"# Written by the in-process federation; regenerated on every start.
hosted = ["{subsystem}"]

[server]
id = "{server}"
anchor = "{anchor}"
conf_cache_dir = "{home}/globalconf"
message_log_dir = "{home}/messagelog"
body_keys = "{keys}"

[auth]
key = "{auth_key}"
certificate = "{auth_chain}"

[[signing]]
member = "{member}"
key = "{sign_key}"
certificate = "{sign_chain}"

[listeners]
client_http = "127.0.0.1:{client_port}"
server = "127.0.0.1:{server_port}"
admin = "127.0.0.1:{admin_port}"
"#,
        subsystem = agency.subsystem,
        server = agency.server,
        anchor = anchor.display(),
        home = home.display(),
        keys = keys.display(),
        auth_key = auth.key_path.display(),
        auth_chain = auth.chain_path.display(),
        member = agency.member,
        sign_key = sign.key_path.display(),
        sign_chain = sign.chain_path.display(),
        client_port = agency.client_port,
        server_port = agency.server_port,
        admin_port = agency.admin_port,
    );
    if agency.member == names::PROVIDER_MEMBER {
        let openapi = home.join("vaccinations.openapi.json");
        std::fs::write(&openapi, backend::OPENAPI)?;
        text.push_str(&format!(
            r#"
[[services]]
id = "{service}"
backend = "http://127.0.0.1:{backend}"
openapi_file = "{openapi}"
endpoints = [
  {{ method = "GET", path = "/v1/children/**" }},
  {{ method = "POST", path = "/v1/children/*/vaccinations" }},
  {{ method = "GET", path = "/v1/admin/**" }},
  {{ method = "POST", path = "/v1/echo" }},
]

# Schools may read children's records, and none of the service's other data.
[[access]]
subject = "subsystem:{consumer}"
service = "{service}"
endpoint = {{ method = "GET", path = "/v1/children/**" }}

# The benchmark's echo route: the body comes back as sent.
[[access]]
subject = "subsystem:{consumer}"
service = "{service}"
endpoint = {{ method = "POST", path = "/v1/echo" }}
"#,
            service = names::SERVICE,
            backend = ports.backend,
            openapi = openapi.display(),
            consumer = names::CONSUMER_SUBSYSTEM,
        ));
    }
    let path = home.join("security-server.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}
