//! The global configuration document: what every security server of an instance knows about the
//! federation, and the lookups the security server makes in it.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use passerelle_ids::{GlobalGroupId, MemberId, Part, SecurityServerId, ServiceId, SubsystemId};
use passerelle_pki::Certificate;
use serde::{Deserialize, Serialize};

use crate::error::ConfError;
use crate::timefmt::rfc3339;

/// One instance's global configuration, as published by its central server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConf {
    /// The instance this configuration describes (the first part of every identifier in it).
    pub instance: InstanceId,
    /// Grows with every published configuration; a client never accepts a lower one.
    pub serial: u64,
    /// When the central server generated it.
    #[serde(with = "rfc3339")]
    pub generated_at: SystemTime,
    /// After this instant the configuration must not be used (`generated_at + validity`).
    #[serde(with = "rfc3339")]
    pub expires_at: SystemTime,
    pub member_classes: Vec<MemberClass>,
    pub members: Vec<Member>,
    pub security_servers: Vec<SecurityServer>,
    pub global_groups: Vec<GlobalGroup>,
    pub approved_cas: Vec<ApprovedCa>,
    pub approved_tsas: Vec<ApprovedTsa>,
    pub services: Vec<ServiceDescriptor>,
    pub settings: Settings,
}

/// An instance identifier (`DEV`, `BJ`): one identifier part.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(Part);

/// A member class (`GOV`, `COM`) and what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberClass {
    pub code: String,
    pub description: String,
}

/// A member organisation and its subsystems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: MemberId,
    pub name: String,
    pub subsystems: Vec<SubsystemId>,
}

/// A security server: where to reach it and which authentication certificates it may present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityServer {
    pub id: SecurityServerId,
    /// `host:port` of its server-to-server (TLS) listener.
    pub address: String,
    /// The subsystems registered as its clients.
    pub clients: Vec<SubsystemId>,
    /// SHA-256 of the DER of each registered authentication certificate (several during rollover).
    pub auth_cert_hashes: Vec<CertHash>,
}

/// A global group: a set of subsystems that access rights can name at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalGroup {
    pub id: GlobalGroupId,
    pub description: String,
    pub members: Vec<SubsystemId>,
}

/// A certificate authority whose certificates the federation accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedCa {
    pub name: String,
    /// Trust anchors of this CA, PEM, one certificate per entry.
    pub certificates: Vec<String>,
    /// Intermediate certificates below those anchors, PEM, one per entry.
    pub intermediates: Vec<String>,
    /// OCSP responder URLs of this CA.
    pub ocsp_responders: Vec<String>,
}

/// A time-stamping authority that message logs may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovedTsa {
    pub name: String,
    pub url: String,
    /// The TSA's certificate, PEM.
    pub certificate: String,
}

/// A service in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDescriptor {
    pub id: ServiceId,
    pub title: String,
    pub description: String,
    pub endpoints: Vec<Endpoint>,
    /// Where the service's OpenAPI document can be fetched, if it has one.
    pub openapi_url: Option<String>,
    /// Lowercase hex SHA-256 of that OpenAPI document.
    pub openapi_sha256: Option<String>,
}

/// One operation of a service: an HTTP method and a path below the service (may hold `{params}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub method: String,
    pub path: String,
}

/// Federation-wide settings carried in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// How long a configuration is valid after generation.
    #[serde(default = "default_validity")]
    pub config_validity_secs: u64,
    /// How often clients download the configuration when all is well.
    #[serde(default = "default_poll")]
    pub config_poll_interval_secs: u64,
    /// How old a stapled OCSP response may be.
    #[serde(default = "default_ocsp_freshness")]
    pub ocsp_freshness_secs: u64,
    /// How often message logs are time-stamped.
    #[serde(default = "default_timestamping")]
    pub timestamping_interval_secs: u64,
    /// The largest clock difference accepted between a signature's time and the receiver's.
    #[serde(default = "default_skew")]
    pub max_clock_skew_secs: u64,
}

fn default_validity() -> u64 {
    600
}
fn default_poll() -> u64 {
    60
}
fn default_ocsp_freshness() -> u64 {
    3600
}
fn default_timestamping() -> u64 {
    60
}
fn default_skew() -> u64 {
    60
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            config_validity_secs: default_validity(),
            config_poll_interval_secs: default_poll(),
            ocsp_freshness_secs: default_ocsp_freshness(),
            timestamping_interval_secs: default_timestamping(),
            max_clock_skew_secs: default_skew(),
        }
    }
}

impl Settings {
    pub fn config_validity(&self) -> Duration {
        Duration::from_secs(self.config_validity_secs)
    }
    pub fn config_poll_interval(&self) -> Duration {
        Duration::from_secs(self.config_poll_interval_secs)
    }
    pub fn ocsp_freshness(&self) -> Duration {
        Duration::from_secs(self.ocsp_freshness_secs)
    }
    pub fn timestamping_interval(&self) -> Duration {
        Duration::from_secs(self.timestamping_interval_secs)
    }
    pub fn max_clock_skew(&self) -> Duration {
        Duration::from_secs(self.max_clock_skew_secs)
    }
}

/// SHA-256 of a certificate's DER, written as 64 lowercase hex digits in JSON.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CertHash(pub [u8; 32]);

impl GlobalConf {
    /// Parses configuration bytes and checks the rules that serde cannot: every identifier belongs
    /// to the configuration's instance, and every certificate parses.
    ///
    /// This does not check the signature; [`crate::verify_configuration`] does both.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfError> {
        let conf: GlobalConf = serde_json::from_slice(bytes).map_err(|source| ConfError::Json {
            what: "global configuration",
            source,
        })?;
        conf.check()?;
        Ok(conf)
    }

    /// The canonical served form: pretty JSON, so operators can read and diff it.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain structs of strings and numbers cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    fn check(&self) -> Result<(), ConfError> {
        let what = "global configuration";
        let instance = self.instance.as_str();
        let foreign = |kind: &str, id: &dyn fmt::Display, id_instance: &Part| {
            (id_instance.as_str() != instance).then(|| {
                ConfError::invalid(what, format!("{kind} {id} is not of instance {instance}"))
            })
        };
        let mut problems = Vec::new();
        for member in &self.members {
            problems.extend(foreign("member", &member.id, member.id.instance()));
            for subsystem in &member.subsystems {
                if subsystem.member() != &member.id {
                    problems.push(ConfError::invalid(
                        what,
                        format!("subsystem {subsystem} is listed under member {}", member.id),
                    ));
                }
            }
        }
        for server in &self.security_servers {
            problems.extend(foreign("security server", &server.id, server.id.instance()));
        }
        for group in &self.global_groups {
            problems.extend(foreign("global group", &group.id, group.id.instance()));
        }
        for ca in &self.approved_cas {
            for pem in ca.certificates.iter().chain(&ca.intermediates) {
                if let Err(error) = Certificate::from_pem(pem) {
                    problems.push(ConfError::invalid(
                        what,
                        format!("approved CA {:?} has a bad certificate: {error}", ca.name),
                    ));
                }
            }
        }
        for tsa in &self.approved_tsas {
            if let Err(error) = Certificate::from_pem(&tsa.certificate) {
                problems.push(ConfError::invalid(
                    what,
                    format!("approved TSA {:?} has a bad certificate: {error}", tsa.name),
                ));
            }
        }
        if self.expires_at < self.generated_at {
            problems.push(ConfError::invalid(
                what,
                "expires_at is before generated_at",
            ));
        }
        match problems.into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// True while `now` is before `expires_at`.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        now < self.expires_at
    }

    /// The security servers that host `client` (registered it as a client).
    pub fn servers_hosting(&self, client: &SubsystemId) -> Vec<&SecurityServer> {
        self.security_servers
            .iter()
            .filter(|server| server.clients.contains(client))
            .collect()
    }

    pub fn server(&self, id: &SecurityServerId) -> Option<&SecurityServer> {
        self.security_servers.iter().find(|server| &server.id == id)
    }

    /// The security server that registered the authentication certificate with this hash.
    pub fn server_by_auth_cert_hash(&self, hash: &[u8; 32]) -> Option<&SecurityServer> {
        self.security_servers
            .iter()
            .find(|server| server.auth_cert_hashes.iter().any(|h| &h.0 == hash))
    }

    pub fn global_group(&self, id: &GlobalGroupId) -> Option<&GlobalGroup> {
        self.global_groups.iter().find(|group| &group.id == id)
    }

    pub fn is_in_global_group(&self, subsystem: &SubsystemId, group: &GlobalGroupId) -> bool {
        self.global_group(group)
            .is_some_and(|group| group.members.contains(subsystem))
    }

    /// Every approved CA certificate, trust anchors then intermediates, for chain validation.
    ///
    /// Intermediates are included because they belong to an approved CA; use
    /// [`GlobalConf::ca_roots`] and [`GlobalConf::ca_intermediates`] to keep them apart.
    /// Certificates were checked to parse when the configuration was accepted.
    pub fn ca_certificates(&self) -> Vec<Certificate> {
        let mut all = self.ca_roots();
        all.extend(self.ca_intermediates());
        all
    }

    /// The approved CAs' trust anchors.
    pub fn ca_roots(&self) -> Vec<Certificate> {
        parse_all(self.approved_cas.iter().flat_map(|ca| &ca.certificates))
    }

    /// The approved CAs' intermediate certificates.
    pub fn ca_intermediates(&self) -> Vec<Certificate> {
        parse_all(self.approved_cas.iter().flat_map(|ca| &ca.intermediates))
    }

    /// The approved CA whose anchors or intermediates include `certificate` (by fingerprint).
    pub fn ca_of(&self, certificate: &Certificate) -> Option<&ApprovedCa> {
        let wanted = certificate.sha256_fingerprint();
        self.approved_cas.iter().find(|ca| {
            parse_all(ca.certificates.iter().chain(&ca.intermediates))
                .iter()
                .any(|c| c.sha256_fingerprint() == wanted)
        })
    }

    /// The approved time-stamping authorities' certificates, with their names and URLs.
    pub fn tsa_certificates(&self) -> Vec<(&ApprovedTsa, Certificate)> {
        self.approved_tsas
            .iter()
            .filter_map(|tsa| {
                Certificate::from_pem(&tsa.certificate)
                    .ok()
                    .map(|c| (tsa, c))
            })
            .collect()
    }

    pub fn service(&self, id: &ServiceId) -> Option<&ServiceDescriptor> {
        self.services.iter().find(|service| &service.id == id)
    }

    pub fn member(&self, id: &MemberId) -> Option<&Member> {
        self.members.iter().find(|member| &member.id == id)
    }

    pub fn is_member(&self, id: &MemberId) -> bool {
        self.member(id).is_some()
    }

    /// True when `subsystem` is registered under its member.
    pub fn has_subsystem(&self, subsystem: &SubsystemId) -> bool {
        self.member(subsystem.member())
            .is_some_and(|member| member.subsystems.contains(subsystem))
    }
}

fn parse_all<'a>(pems: impl Iterator<Item = &'a String>) -> Vec<Certificate> {
    pems.filter_map(|pem| Certificate::from_pem(pem).ok())
        .collect()
}

impl InstanceId {
    pub fn new(part: Part) -> Self {
        Self(part)
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub fn part(&self) -> &Part {
        &self.0
    }
}

impl FromStr for InstanceId {
    type Err = passerelle_ids::IdError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Part::parse(value, "instance", "instance").map(Self)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({:?})", self.as_str())
    }
}

impl Serialize for InstanceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl CertHash {
    /// The hash of a certificate.
    pub fn of(certificate: &Certificate) -> Self {
        Self(certificate.sha256_fingerprint())
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl FromStr for CertHash {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text).map_err(|error| format!("{text:?} is not hex: {error}"))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{text:?} is not a SHA-256 hash (64 hex digits)"))?;
        Ok(Self(array))
    }
}

impl fmt::Display for CertHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CertHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertHash({})", self.to_hex())
    }
}

impl Serialize for CertHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CertHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
