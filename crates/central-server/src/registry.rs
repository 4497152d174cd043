//! The registry: everything the central server knows, in one sled database, and the audit trail
//! of every change. Records are JSON values keyed by their identifier.
//!
//! Writers take one lock, so a change and its audit entry are recorded together and checks such
//! as "the member exists" cannot race with another change.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use passerelle_globalconf::{
    ApprovedCa, ApprovedTsa, CertHash, GlobalConf, GlobalGroup, InstanceId, Member, MemberClass,
    SecurityServer, ServiceDescriptor, Settings, SignedRequest, format_rfc3339,
};
use passerelle_ids::{GlobalGroupId, MemberId, SecurityServerId, SubsystemId};
use passerelle_pki::Certificate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::CentralError;

/// What an admin API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// May change the registry and decide requests.
    RegistrationOfficer,
    /// May only read.
    Observer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::RegistrationOfficer => "registration-officer",
            Role::Observer => "observer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "registration-officer" => Ok(Role::RegistrationOfficer),
            "observer" => Ok(Role::Observer),
            other => Err(format!(
                "unknown role {other:?} (expected registration-officer or observer)"
            )),
        }
    }
}

/// A stored token: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub name: String,
    pub role: Role,
    pub created_at: String,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub sequence: u64,
    /// RFC 3339.
    pub at: String,
    /// The token name (or `registration` for signed requests, `system` for the server itself).
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

/// Where a registration request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestStatus {
    Pending,
    Approved,
    Rejected,
}

/// A registration request in the onboarding queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRecord {
    pub id: u64,
    pub submitted_at: String,
    pub status: RequestStatus,
    /// `auth-certificate`, `client` or `service-publication`.
    pub kind: String,
    /// One line for an officer.
    pub summary: String,
    pub signed_by: Vec<MemberId>,
    pub auth_cert_hash: Option<CertHash>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub signed: SignedRequest,
}

/// Why a registry change was refused; the admin API maps each to a status code.
#[derive(Debug)]
pub enum Refusal {
    /// The thing already exists (409).
    Conflict(String),
    /// A field names something that does not exist or does not fit (400, naming the field).
    BadField { field: &'static str, reason: String },
    /// Nothing with that identifier (404).
    NotFound(String),
}

/// The outcome of a registry change.
pub type Change<T> = Result<Result<T, Refusal>, CentralError>;

const TREES: &[&str] = &[
    "member_classes",
    "members",
    "servers",
    "groups",
    "cas",
    "tsas",
    "services",
    "requests",
    "tokens",
    "audit",
    "meta",
];

/// The registry database.
pub struct Registry {
    db: sled::Db,
    instance: InstanceId,
    write: Mutex<()>,
}

/// Opens the registry database, waiting up to 2 s for its file lock. sled releases the lock from
/// a background thread some time after the last handle is dropped, so a registry closed and
/// opened again in the same process can find it still held; a lock held longer (a running
/// central server) still fails, with sled's error. The message log's index opens the same way.
fn open_after_release(config: &sled::Config) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            // sled 0.34 reports the lock only in the text of an `ErrorKind::Other` error.
            Err(sled::Error::Io(error))
                if error.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return opened,
        }
    }
}

impl Registry {
    /// Opens (or creates) the registry in `dir`.
    pub fn open(dir: &Path, instance: InstanceId) -> Result<Self, CentralError> {
        std::fs::create_dir_all(dir).map_err(|source| CentralError::io(dir, source))?;
        let db = open_after_release(&sled::Config::new().path(dir.join("registry.sled")))?;
        for tree in TREES {
            db.open_tree(tree)?;
        }
        Ok(Self {
            db,
            instance,
            write: Mutex::new(()),
        })
    }

    pub fn instance(&self) -> &InstanceId {
        &self.instance
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guard protects no data of its own, only the order of sled writes.
        self.write
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, CentralError> {
        Ok(self.db.open_tree(name)?)
    }

    fn get<T: DeserializeOwned>(&self, tree: &str, key: &str) -> Result<Option<T>, CentralError> {
        match self.tree(tree)?.get(key.as_bytes())? {
            Some(bytes) => decode(key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(&self, tree: &str, key: &[u8], value: &T) -> Result<(), CentralError> {
        let bytes = serde_json::to_vec(value).map_err(|error| CentralError::CorruptRecord {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: error.to_string(),
        })?;
        self.tree(tree)?.insert(key, bytes)?;
        Ok(())
    }

    fn all<T: DeserializeOwned>(&self, tree: &str) -> Result<Vec<T>, CentralError> {
        let mut out = Vec::new();
        for entry in self.tree(tree)?.iter() {
            let (key, value) = entry?;
            out.push(decode(&String::from_utf8_lossy(&key), &value)?);
        }
        Ok(out)
    }

    /// Stores a new record under `key` in `tree`, refusing with a conflict ("`what` already
    /// exists") when the key is taken, and records `action` in the audit trail. The caller holds
    /// the registry lock.
    fn insert_new<T: Serialize>(
        &self,
        record: NewRecord<'_, T>,
        actor: &str,
        now: SystemTime,
    ) -> Change<()> {
        if self
            .tree(record.tree)?
            .contains_key(record.key.as_bytes())?
        {
            return Ok(Err(Refusal::Conflict(format!(
                "{} already exists",
                record.what
            ))));
        }
        self.put(record.tree, record.key.as_bytes(), record.value)?;
        self.audit(now, actor, record.action, record.key, record.detail)?;
        Ok(Ok(()))
    }

    fn audit(
        &self,
        now: SystemTime,
        actor: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), CentralError> {
        let sequence = self.db.generate_id()?;
        let entry = AuditEntry {
            sequence,
            at: format_rfc3339(now),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
        };
        self.put("audit", &sequence.to_be_bytes(), &entry)?;
        self.db.flush()?;
        tracing::info!(actor, action, target, "registry change");
        Ok(())
    }

    fn check_instance(
        &self,
        field: &'static str,
        instance: &passerelle_ids::Part,
    ) -> Result<(), Refusal> {
        if instance.as_str() == self.instance.as_str() {
            Ok(())
        } else {
            Err(Refusal::BadField {
                field,
                reason: format!(
                    "instance {instance} is not this central server's instance {}",
                    self.instance
                ),
            })
        }
    }

    pub fn add_member_class(&self, class: MemberClass, actor: &str, now: SystemTime) -> Change<()> {
        if let Err(error) = passerelle_ids::Part::parse(&class.code, "member class", "code") {
            return Ok(Err(Refusal::BadField {
                field: "code",
                reason: error.to_string(),
            }));
        }
        let _guard = self.lock();
        let record = NewRecord {
            tree: "member_classes",
            key: &class.code,
            value: &class,
            what: format!("member class {}", class.code),
            action: "member-class.add",
            detail: serde_json::json!({"description": class.description}),
        };
        self.insert_new(record, actor, now)
    }

    pub fn add_member(
        &self,
        id: MemberId,
        name: String,
        actor: &str,
        now: SystemTime,
    ) -> Change<()> {
        if let Err(refusal) = self.check_instance("id", id.instance()) {
            return Ok(Err(refusal));
        }
        let _guard = self.lock();
        if self
            .get::<MemberClass>("member_classes", id.member_class().as_str())?
            .is_none()
        {
            return Ok(Err(Refusal::BadField {
                field: "id",
                reason: format!("member class {} is not registered", id.member_class()),
            }));
        }
        let key = id.to_string();
        let detail = serde_json::json!({"name": name});
        let member = Member {
            id,
            name,
            subsystems: Vec::new(),
        };
        let record = NewRecord {
            tree: "members",
            key: &key,
            value: &member,
            what: format!("member {key}"),
            action: "member.add",
            detail,
        };
        self.insert_new(record, actor, now)
    }

    pub fn add_subsystem(&self, id: SubsystemId, actor: &str, now: SystemTime) -> Change<()> {
        let _guard = self.lock();
        let key = id.member().to_string();
        let Some(mut member) = self.get::<Member>("members", &key)? else {
            return Ok(Err(Refusal::BadField {
                field: "id",
                reason: format!("member {} is not registered", id.member()),
            }));
        };
        if member.subsystems.contains(&id) {
            return Ok(Err(Refusal::Conflict(format!(
                "subsystem {id} already exists"
            ))));
        }
        member.subsystems.push(id.clone());
        member.subsystems.sort();
        self.put("members", key.as_bytes(), &member)?;
        self.audit(
            now,
            actor,
            "subsystem.add",
            &id.to_string(),
            serde_json::Value::Null,
        )?;
        Ok(Ok(()))
    }

    fn subsystem_exists(&self, id: &SubsystemId) -> Result<bool, CentralError> {
        Ok(self
            .get::<Member>("members", &id.member().to_string())?
            .is_some_and(|member| member.subsystems.contains(id)))
    }

    pub fn add_global_group(
        &self,
        id: GlobalGroupId,
        description: String,
        actor: &str,
        now: SystemTime,
    ) -> Change<()> {
        if let Err(refusal) = self.check_instance("id", id.instance()) {
            return Ok(Err(refusal));
        }
        let _guard = self.lock();
        let key = id.to_string();
        let detail = serde_json::json!({"description": description});
        let group = GlobalGroup {
            id,
            description,
            members: Vec::new(),
        };
        let record = NewRecord {
            tree: "groups",
            key: &key,
            value: &group,
            what: format!("global group {key}"),
            action: "global-group.add",
            detail,
        };
        self.insert_new(record, actor, now)
    }

    pub fn add_global_group_member(
        &self,
        group: GlobalGroupId,
        subsystem: SubsystemId,
        actor: &str,
        now: SystemTime,
    ) -> Change<()> {
        let _guard = self.lock();
        let key = group.to_string();
        let Some(mut record) = self.get::<GlobalGroup>("groups", &key)? else {
            return Ok(Err(Refusal::BadField {
                field: "group",
                reason: format!("global group {group} is not registered"),
            }));
        };
        if !self.subsystem_exists(&subsystem)? {
            return Ok(Err(Refusal::BadField {
                field: "subsystem",
                reason: format!("subsystem {subsystem} is not registered"),
            }));
        }
        if record.members.contains(&subsystem) {
            return Ok(Err(Refusal::Conflict(format!(
                "{subsystem} is already in {group}"
            ))));
        }
        record.members.push(subsystem.clone());
        record.members.sort();
        self.put("groups", key.as_bytes(), &record)?;
        self.audit(
            now,
            actor,
            "global-group.add-member",
            &key,
            serde_json::json!({"subsystem": subsystem}),
        )?;
        Ok(Ok(()))
    }

    pub fn add_ca(&self, ca: ApprovedCa, actor: &str, now: SystemTime) -> Change<()> {
        if ca.name.trim().is_empty() {
            return Ok(Err(Refusal::BadField {
                field: "name",
                reason: "must not be empty".to_owned(),
            }));
        }
        if ca.certificates.is_empty() {
            return Ok(Err(Refusal::BadField {
                field: "certificates",
                reason: "at least one trust anchor is needed".to_owned(),
            }));
        }
        for (field, pems) in [
            ("certificates", &ca.certificates),
            ("intermediates", &ca.intermediates),
        ] {
            for pem in pems {
                if let Err(error) = Certificate::from_pem(pem) {
                    return Ok(Err(Refusal::BadField {
                        field,
                        reason: error.to_string(),
                    }));
                }
            }
        }
        let _guard = self.lock();
        let record = NewRecord {
            tree: "cas",
            key: &ca.name,
            value: &ca,
            what: format!("ca {:?}", ca.name),
            action: "ca.add",
            detail: serde_json::json!({"ocsp_responders": ca.ocsp_responders}),
        };
        self.insert_new(record, actor, now)
    }

    pub fn add_tsa(&self, tsa: ApprovedTsa, actor: &str, now: SystemTime) -> Change<()> {
        if tsa.name.trim().is_empty() {
            return Ok(Err(Refusal::BadField {
                field: "name",
                reason: "must not be empty".to_owned(),
            }));
        }
        if let Err(error) = Certificate::from_pem(&tsa.certificate) {
            return Ok(Err(Refusal::BadField {
                field: "certificate",
                reason: error.to_string(),
            }));
        }
        let _guard = self.lock();
        let record = NewRecord {
            tree: "tsas",
            key: &tsa.name,
            value: &tsa,
            what: format!("tsa {:?}", tsa.name),
            action: "tsa.add",
            detail: serde_json::json!({"url": tsa.url}),
        };
        self.insert_new(record, actor, now)
    }

    pub fn settings(&self) -> Result<Settings, CentralError> {
        Ok(self.get("meta", "settings")?.unwrap_or_default())
    }

    pub fn set_settings(&self, settings: Settings, actor: &str, now: SystemTime) -> Change<()> {
        for (field, value) in [
            ("config_validity_secs", settings.config_validity_secs),
            (
                "config_poll_interval_secs",
                settings.config_poll_interval_secs,
            ),
            ("ocsp_freshness_secs", settings.ocsp_freshness_secs),
            (
                "timestamping_interval_secs",
                settings.timestamping_interval_secs,
            ),
        ] {
            if value == 0 {
                return Ok(Err(Refusal::BadField {
                    field,
                    reason: "must be at least 1".to_owned(),
                }));
            }
        }
        let _guard = self.lock();
        self.put("meta", b"settings", &settings)?;
        self.audit(
            now,
            actor,
            "settings.set",
            "settings",
            serde_json::to_value(&settings).unwrap_or_default(),
        )?;
        Ok(Ok(()))
    }

    pub fn member_classes(&self) -> Result<Vec<MemberClass>, CentralError> {
        self.all("member_classes")
    }
    pub fn members(&self) -> Result<Vec<Member>, CentralError> {
        self.all("members")
    }
    pub fn security_servers(&self) -> Result<Vec<SecurityServer>, CentralError> {
        self.all("servers")
    }
    pub fn global_groups(&self) -> Result<Vec<GlobalGroup>, CentralError> {
        self.all("groups")
    }
    pub fn cas(&self) -> Result<Vec<ApprovedCa>, CentralError> {
        self.all("cas")
    }
    pub fn tsas(&self) -> Result<Vec<ApprovedTsa>, CentralError> {
        self.all("tsas")
    }
    pub fn services(&self) -> Result<Vec<ServiceDescriptor>, CentralError> {
        self.all("services")
    }
    pub fn audit_trail(&self) -> Result<Vec<AuditEntry>, CentralError> {
        self.all("audit")
    }
    pub fn requests(&self) -> Result<Vec<RequestRecord>, CentralError> {
        self.all("requests")
    }

    pub fn member_exists(&self, id: &MemberId) -> Result<bool, CentralError> {
        Ok(self.get::<Member>("members", &id.to_string())?.is_some())
    }
    pub fn has_subsystem(&self, id: &SubsystemId) -> Result<bool, CentralError> {
        self.subsystem_exists(id)
    }
    pub fn security_server(
        &self,
        id: &SecurityServerId,
    ) -> Result<Option<SecurityServer>, CentralError> {
        self.get("servers", &id.to_string())
    }

    /// Approved CA anchors and intermediates, to verify registration requests.
    pub fn ca_certificates(&self) -> Result<(Vec<Certificate>, Vec<Certificate>), CentralError> {
        let cas = self.cas()?;
        let parse = |pems: Vec<&String>| {
            pems.into_iter()
                .filter_map(|pem| Certificate::from_pem(pem).ok())
                .collect()
        };
        Ok((
            parse(cas.iter().flat_map(|ca| &ca.certificates).collect()),
            parse(cas.iter().flat_map(|ca| &ca.intermediates).collect()),
        ))
    }

    /// Registers a security server's auth certificate (creating the server on first use).
    pub(crate) fn register_auth_certificate(
        &self,
        id: &SecurityServerId,
        address: &str,
        hash: CertHash,
        actor: &str,
        now: SystemTime,
    ) -> Result<(), CentralError> {
        let key = id.to_string();
        let mut server = self
            .get::<SecurityServer>("servers", &key)?
            .unwrap_or_else(|| SecurityServer {
                id: id.clone(),
                address: address.to_owned(),
                clients: Vec::new(),
                auth_cert_hashes: Vec::new(),
            });
        server.address = address.to_owned();
        if !server.auth_cert_hashes.contains(&hash) {
            server.auth_cert_hashes.push(hash);
        }
        self.put("servers", key.as_bytes(), &server)?;
        self.audit(
            now,
            actor,
            "security-server.register-auth-certificate",
            &key,
            serde_json::json!({"address": address, "auth_cert_hash": hash}),
        )
    }

    pub(crate) fn register_client(
        &self,
        server_id: &SecurityServerId,
        client: &SubsystemId,
        actor: &str,
        now: SystemTime,
    ) -> Result<Result<(), Refusal>, CentralError> {
        let key = server_id.to_string();
        let Some(mut server) = self.get::<SecurityServer>("servers", &key)? else {
            return Ok(Err(Refusal::BadField {
                field: "server",
                reason: format!("security server {server_id} is not registered"),
            }));
        };
        if !server.clients.contains(client) {
            server.clients.push(client.clone());
            server.clients.sort();
        }
        self.put("servers", key.as_bytes(), &server)?;
        self.audit(
            now,
            actor,
            "security-server.register-client",
            &key,
            serde_json::json!({"client": client}),
        )?;
        Ok(Ok(()))
    }

    pub(crate) fn publish_services(
        &self,
        provider: &SubsystemId,
        services: &[ServiceDescriptor],
        actor: &str,
        now: SystemTime,
    ) -> Result<(), CentralError> {
        let tree = self.tree("services")?;
        let prefix = format!("{provider}/");
        for entry in tree.scan_prefix(prefix.as_bytes()) {
            let (key, _) = entry?;
            tree.remove(key)?;
        }
        for service in services {
            self.put("services", service.id.to_string().as_bytes(), service)?;
        }
        let ids: Vec<String> = services
            .iter()
            .map(|service| service.id.to_string())
            .collect();
        self.audit(
            now,
            actor,
            "services.publish",
            &provider.to_string(),
            serde_json::json!({"services": ids}),
        )
    }

    pub(crate) fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.lock()
    }

    /// Adds a request to the queue (the caller holds the write lock).
    pub(crate) fn queue_request(
        &self,
        mut record: RequestRecord,
        now: SystemTime,
    ) -> Result<RequestRecord, CentralError> {
        record.id = self.db.generate_id()?;
        self.put("requests", &record.id.to_be_bytes(), &record)?;
        self.audit(
            now,
            "registration",
            "request.submit",
            &record.id.to_string(),
            serde_json::json!({"kind": record.kind, "summary": record.summary}),
        )?;
        Ok(record)
    }

    pub(crate) fn request(&self, id: u64) -> Result<Option<RequestRecord>, CentralError> {
        match self.tree("requests")?.get(id.to_be_bytes())? {
            Some(bytes) => decode(&id.to_string(), &bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn decide_request(
        &self,
        mut record: RequestRecord,
        status: RequestStatus,
        reason: Option<String>,
        actor: &str,
        now: SystemTime,
    ) -> Result<RequestRecord, CentralError> {
        record.status = status;
        record.decided_by = Some(actor.to_owned());
        record.decided_at = Some(format_rfc3339(now));
        record.reason = reason;
        self.put("requests", &record.id.to_be_bytes(), &record)?;
        let action = match status {
            RequestStatus::Approved => "request.approve",
            RequestStatus::Rejected => "request.reject",
            RequestStatus::Pending => "request.reopen",
        };
        self.audit(
            now,
            actor,
            action,
            &record.id.to_string(),
            serde_json::json!({"summary": record.summary, "reason": record.reason}),
        )?;
        Ok(record)
    }

    /// Creates a token for `role` and returns its secret; only its hash is stored.
    pub fn create_token(
        &self,
        name: &str,
        role: Role,
        now: SystemTime,
    ) -> Result<String, CentralError> {
        // 32 bytes from the system random generator, which is what a fresh AES key is.
        let secret = passerelle_pki::aead::BodyKey::generate("admin-token")
            .map(|key| hex::encode(key.to_bytes()))
            .map_err(|error| CentralError::Tls(format!("cannot create a token: {error}")))?;
        let _guard = self.lock();
        let record = TokenRecord {
            name: name.to_owned(),
            role,
            created_at: format_rfc3339(now),
        };
        self.put(
            "tokens",
            passerelle_pki::digest::sha256_hex(secret.as_bytes()).as_bytes(),
            &record,
        )?;
        self.audit(
            now,
            "system",
            "token.create",
            name,
            serde_json::json!({"role": role}),
        )?;
        Ok(secret)
    }

    /// The token whose secret is `secret`, if any.
    pub fn token(&self, secret: &str) -> Result<Option<TokenRecord>, CentralError> {
        self.get(
            "tokens",
            &passerelle_pki::digest::sha256_hex(secret.as_bytes()),
        )
    }

    /// Takes the next configuration serial; it is stored before it is used, so it only grows,
    /// across restarts too.
    pub(crate) fn next_serial(&self) -> Result<u64, CentralError> {
        let tree = self.tree("meta")?;
        let updated = tree.update_and_fetch(b"serial", |old| {
            let current = old
                .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some(current.saturating_add(1).to_be_bytes().to_vec())
        })?;
        self.db.flush()?;
        Ok(updated
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    /// The configuration content at this moment, without serial and times.
    pub(crate) fn snapshot(
        &self,
        serial: u64,
        generated_at: SystemTime,
    ) -> Result<GlobalConf, CentralError> {
        let settings = self.settings()?;
        Ok(GlobalConf {
            instance: self.instance.clone(),
            serial,
            generated_at,
            expires_at: generated_at + settings.config_validity(),
            member_classes: self.member_classes()?,
            members: self.members()?,
            security_servers: self.security_servers()?,
            global_groups: self.global_groups()?,
            approved_cas: self.cas()?,
            approved_tsas: self.tsas()?,
            services: self.services()?,
            settings,
        })
    }

    pub fn flush(&self) -> Result<(), CentralError> {
        self.db.flush()?;
        Ok(())
    }
}

fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, CentralError> {
    serde_json::from_slice(bytes).map_err(|error| CentralError::CorruptRecord {
        key: key.to_owned(),
        reason: error.to_string(),
    })
}

/// A record [`Registry::insert_new`] adds: where, under which key, what it is called in a
/// conflict message, and what the audit trail says about it.
struct NewRecord<'a, T> {
    tree: &'a str,
    key: &'a str,
    value: &'a T,
    what: String,
    action: &'a str,
    detail: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::Registry;

    #[test]
    fn the_registry_opens_once_an_earlier_holder_lets_go_and_not_while_it_holds_on() {
        let dir = tempfile::tempdir().unwrap();
        let instance = || "DEV".parse().unwrap();
        let held = sled::open(dir.path().join("registry.sled")).unwrap();
        assert!(Registry::open(dir.path(), instance()).is_err());
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        Registry::open(dir.path(), instance()).unwrap();
        releaser.join().unwrap();
    }
}
