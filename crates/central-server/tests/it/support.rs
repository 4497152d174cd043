//! A central server with a development CA, tokens and admin clients, at a pinned time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_central_server::{AdminClient, CentralConfig, Role, RunningCentral, start};
use passerelle_globalconf::{
    RegistrationRequest, RequestAction, RequestSigner, SignedRequest, SignerRole,
};
use passerelle_ids::SecurityServerId;
use passerelle_pki::devca::{
    DevCa, ExistingCa, IssueRequest, Issued, LeafKey, LeafProfile, Validity,
};
use serde_json::{Value, json};

/// The pinned time of every test: 2027-01-15T08:00:00Z.
pub(crate) fn epoch() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// Certificates valid from 2023-11-14 for twenty years: they cover both the pinned clock and
/// the real clock, which rustls uses for the admin API's TLS certificate.
fn validity() -> Validity {
    Validity {
        not_before: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        not_after: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 20 * 365 * 86_400),
    }
}

/// A development CA in its own directory.
pub(crate) struct Pki {
    pub(crate) ca: DevCa,
}

impl Pki {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            ca: DevCa::init(dir, "DEV", validity(), ExistingCa::Refuse).unwrap(),
        }
    }
    pub(crate) fn sign_cert(&self, member: &str) -> Issued {
        self.issue(LeafProfile::Sign {
            member: member.parse().unwrap(),
        })
    }
    pub(crate) fn auth_cert(&self, name: &str) -> Issued {
        self.issue(LeafProfile::Auth {
            name: name.to_owned(),
            dns_names: vec!["localhost".to_owned()],
            ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        })
    }
    fn issue(&self, profile: LeafProfile) -> Issued {
        self.ca
            .issue(&IssueRequest {
                profile,
                validity: validity(),
                key: LeafKey::Generate,
            })
            .unwrap()
    }
    /// The CA as the admin API takes it.
    pub(crate) fn ca_json(&self, name: &str) -> Value {
        json!({
            "name": name,
            "certificates": [self.ca.root().to_pem()],
            "intermediates": [self.ca.intermediate().certificate.to_pem()],
            "ocsp_responders": ["http://127.0.0.1:8888"],
        })
    }
}

/// A pinned, adjustable clock.
#[derive(Clone)]
pub(crate) struct TestClock(Arc<Mutex<SystemTime>>);

impl TestClock {
    pub(crate) fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
    pub(crate) fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

pub(crate) struct Federation {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) pki: Pki,
    pub(crate) clock: TestClock,
    pub(crate) central: Option<RunningCentral>,
    pub(crate) officer: AdminClient,
    pub(crate) observer: AdminClient,
    pub(crate) anonymous: AdminClient,
    pub(crate) config_path: PathBuf,
}

impl Federation {
    pub(crate) async fn start(auto_approve: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(&dir.path().join("pki"));
        let admin = pki.auth_cert("central");
        let files = admin.write(&dir.path().join("pki/central-admin")).unwrap();
        let config_path = dir.path().join("central.toml");
        write_config(
            &config_path,
            auto_approve,
            "127.0.0.1:0".parse().unwrap(),
            &files.chain,
            &files.key.unwrap(),
        );
        let clock = TestClock(Arc::new(Mutex::new(epoch())));
        let central = start_central(&config_path, &clock).await;
        let officer_token = central
            .registry()
            .create_token("alice", Role::RegistrationOfficer, clock.now())
            .unwrap();
        let observer_token = central
            .registry()
            .create_token("bob", Role::Observer, clock.now())
            .unwrap();
        let url = central.admin_url();
        let trusted = [pki.ca.root().clone()];
        Self {
            officer: AdminClient::new(&url, &trusted, Some(officer_token)).unwrap(),
            observer: AdminClient::new(&url, &trusted, Some(observer_token)).unwrap(),
            anonymous: AdminClient::new(&url, &trusted, None).unwrap(),
            dir,
            pki,
            clock,
            central: Some(central),
            config_path,
        }
    }

    pub(crate) fn central(&self) -> &RunningCentral {
        self.central.as_ref().unwrap()
    }

    /// Stops the central server (its registry stays on disk).
    pub(crate) async fn stop(&mut self) {
        self.central.take().unwrap().shutdown().await;
    }

    /// Starts it again on the same public port, from the same registry.
    pub(crate) async fn restart(&mut self, public: SocketAddr) {
        let text = std::fs::read_to_string(&self.config_path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        for line in &mut lines {
            if line.starts_with("listen = \"127.0.0.1:0\" # public") {
                *line = format!("listen = \"{public}\" # public");
            }
        }
        std::fs::write(&self.config_path, lines.join("\n")).unwrap();
        self.central = Some(start_central(&self.config_path, &self.clock).await);
    }

    /// Registers class GOV, members HEALTH and EDU with subsystems, and approves the dev CA.
    pub(crate) async fn populate(&self) {
        let officer = &self.officer;
        officer
            .post(
                "/api/v1/member-classes",
                &json!({"code": "GOV", "description": "Government"}),
            )
            .await
            .unwrap();
        for (id, name) in [
            ("DEV/GOV/HEALTH", "Ministry of Health"),
            ("DEV/GOV/EDU", "Ministry of Education"),
        ] {
            officer
                .post("/api/v1/members", &json!({"id": id, "name": name}))
                .await
                .unwrap();
        }
        for id in ["DEV/GOV/HEALTH/registry", "DEV/GOV/EDU/schools"] {
            officer
                .post("/api/v1/subsystems", &json!({"id": id}))
                .await
                .unwrap();
        }
        officer
            .post("/api/v1/cas", &self.pki.ca_json("dev"))
            .await
            .unwrap();
    }
}

fn write_config(
    path: &Path,
    auto_approve: bool,
    public: SocketAddr,
    tls_chain: &Path,
    tls_key: &Path,
) {
    let pki = path.parent().unwrap().join("pki");
    let text = format!(
        r#"instance = "DEV"
data_dir = "data"
auto_approve = {auto_approve}
generation_interval_secs = 60

[admin]
listen = "127.0.0.1:0"
tls_certificate = "{}"
tls_key = "{}"

[public]
listen = "{public}" # public

[signing]
key = "{}"
certificate = "{}"
"#,
        tls_chain.display(),
        tls_key.display(),
        pki.join("config-signing.key.pem").display(),
        pki.join("config-signing.cert.pem").display(),
    );
    std::fs::write(path, text).unwrap();
}

async fn start_central(config_path: &Path, clock: &TestClock) -> RunningCentral {
    let config = CentralConfig::load(config_path).unwrap();
    let clock = clock.clone();
    start(config, Some(Arc::new(move || clock.now())))
        .await
        .unwrap()
}

/// A security server's credentials: auth certificate and its owner's signing certificate.
pub(crate) struct ServerCredentials {
    pub(crate) id: SecurityServerId,
    pub(crate) auth: Issued,
    pub(crate) owner: Issued,
}

impl ServerCredentials {
    pub(crate) fn new(pki: &Pki, id: &str) -> Self {
        let id: SecurityServerId = id.parse().unwrap();
        Self {
            auth: pki.auth_cert(id.server_code().as_str()),
            owner: pki.sign_cert(&id.owner().to_string()),
            id,
        }
    }

    pub(crate) fn auth_request(&self, now: SystemTime) -> SignedRequest {
        let request = RegistrationRequest {
            created_at: now,
            action: RequestAction::AuthCertificate {
                server: self.id.clone(),
                address: "127.0.0.1:5500".to_owned(),
                certificate: self.auth.certificate.to_pem(),
            },
        };
        SignedRequest::sign(
            &request,
            &[
                RequestSigner {
                    role: SignerRole::AuthKey,
                    key: self.auth.key.as_ref().unwrap(),
                    chain: &self.auth.chain,
                },
                RequestSigner {
                    role: SignerRole::Member,
                    key: self.owner.key.as_ref().unwrap(),
                    chain: &self.owner.chain,
                },
            ],
        )
        .unwrap()
    }
}

/// The JSON error answer of a call that must fail with `status`.
pub(crate) async fn expect_status(
    client: &AdminClient,
    method: &str,
    path: &str,
    body: &str,
    status: u16,
) -> Value {
    let (got, bytes) = client
        .send(method, path, Some(body.as_bytes().to_vec()))
        .await
        .unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(got, status, "{method} {path} {body}: {value}");
    value
}
