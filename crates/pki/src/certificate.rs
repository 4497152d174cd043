//! X.509 certificates: parsed once from DER, kept as owned fields beside their DER bytes.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use passerelle_ids::MemberId;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use crate::algorithm::{Hash, Scheme};
use crate::encoding;
use crate::{PkiError, PublicKey, SignatureAlgorithm, SigningKey};

const CERTIFICATE_TAG: &str = "CERTIFICATE";

/// The X.500 attribute type `serialNumber` (2.5.4.5), where member signing certificates carry
/// their member identifier.
const OID_ATTRIBUTE_SERIAL_NUMBER: &str = "2.5.4.5";

/// Extensions whose meaning this crate enforces or may safely ignore; any other extension
/// marked critical makes chain validation fail (RFC 5280 §4.2).
const HANDLED_EXTENSIONS: &[&str] = &[
    "2.5.29.14",            // subjectKeyIdentifier
    "2.5.29.15",            // keyUsage
    "2.5.29.17",            // subjectAltName
    "2.5.29.19",            // basicConstraints
    "2.5.29.32",            // certificatePolicies: no policy is required, so none is checked
    "2.5.29.35",            // authorityKeyIdentifier
    "2.5.29.37",            // extKeyUsage
    "1.3.6.1.5.5.7.48.1.5", // id-pkix-ocsp-nocheck
];

/// An X.509 certificate: its DER bytes and the fields Passerelle uses, parsed and checked for
/// well-formedness when it is constructed (so every accessor is infallible).
///
/// Equality is equality of the DER bytes.
///
/// **Member signing certificates** carry the member identifier in full (`INSTANCE/CLASS/CODE`,
/// for example `DEV/GOV/HEALTH`) as the subject's `serialNumber` attribute (OID 2.5.4.5);
/// [`Certificate::member_id`] reads it from there. The common name is the member code alone and
/// is not used for identification.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    fingerprint: [u8; 32],
    tbs: Vec<u8>,
    subject: String,
    subject_der: Vec<u8>,
    issuer: String,
    issuer_der: Vec<u8>,
    serial: Vec<u8>,
    not_before: SystemTime,
    not_after: SystemTime,
    public_key: Result<PublicKey, String>,
    signature_algorithm: Result<(Scheme, Hash), String>,
    signature: Vec<u8>,
    pub(crate) basic_constraints: Option<BasicConstraints>,
    key_usage: Option<u16>,
    pub(crate) extended_key_usage: Option<ExtendedKeyUsage>,
    pub(crate) subject_key_id: Option<Vec<u8>>,
    pub(crate) authority_key_id: Option<Vec<u8>>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    pub(crate) unhandled_critical_extensions: Vec<String>,
    member_id: Option<MemberId>,
}

/// keyUsage bits, in x509-parser's order (bit 0 of its flags is digitalSignature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyUsageBit {
    DigitalSignature = 1,
    NonRepudiation = 1 << 1,
    KeyCertSign = 1 << 5,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BasicConstraints {
    pub(crate) ca: bool,
    pub(crate) path_len: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtendedKeyUsage {
    pub(crate) critical: bool,
    pub(crate) server_auth: bool,
    pub(crate) client_auth: bool,
    pub(crate) time_stamping: bool,
    pub(crate) ocsp_signing: bool,
    /// Purposes other than id-kp-timeStamping (RFC 3161 wants it alone in a TSA certificate).
    pub(crate) others_than_time_stamping: bool,
}

impl Certificate {
    /// Parses one DER certificate; trailing bytes are an error.
    pub fn from_der(der: Vec<u8>) -> Result<Self, PkiError> {
        let parsed = {
            let (rest, x509) = X509Certificate::from_der(&der)
                .map_err(|error| PkiError::invalid_certificate(format!("bad der: {error}")))?;
            if !rest.is_empty() {
                return Err(PkiError::invalid_certificate(format!(
                    "{} trailing bytes after the certificate",
                    rest.len()
                )));
            }
            Parsed::from_x509(&x509)?
        };
        Ok(Certificate {
            fingerprint: encoding::sha256(&der),
            der,
            tbs: parsed.tbs,
            subject: parsed.subject,
            subject_der: parsed.subject_der,
            issuer: parsed.issuer,
            issuer_der: parsed.issuer_der,
            serial: parsed.serial,
            not_before: parsed.not_before,
            not_after: parsed.not_after,
            public_key: parsed.public_key,
            signature_algorithm: parsed.signature_algorithm,
            signature: parsed.signature,
            basic_constraints: parsed.basic_constraints,
            key_usage: parsed.key_usage,
            extended_key_usage: parsed.extended_key_usage,
            subject_key_id: parsed.subject_key_id,
            authority_key_id: parsed.authority_key_id,
            dns_names: parsed.dns_names,
            ip_addresses: parsed.ip_addresses,
            unhandled_critical_extensions: parsed.unhandled_critical_extensions,
            member_id: parsed.member_id,
        })
    }

    /// Parses PEM text holding exactly one `CERTIFICATE` block (other blocks are ignored).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_der(encoding::single_block(pem, &[CERTIFICATE_TAG])?)
    }

    /// Parses PEM text holding one or more `CERTIFICATE` blocks, in file order.
    pub fn load_pem_chain(pem: &str) -> Result<Vec<Self>, PkiError> {
        let certificates = encoding::blocks(pem)?
            .into_iter()
            .filter(|(tag, _)| tag == CERTIFICATE_TAG)
            .map(|(_, der)| Self::from_der(der))
            .collect::<Result<Vec<_>, _>>()?;
        if certificates.is_empty() {
            return Err(PkiError::invalid_pem("no CERTIFICATE block"));
        }
        Ok(certificates)
    }

    /// Reads a certificate file: PEM with one or more blocks, or a single DER certificate.
    pub fn load(path: &Path) -> Result<Vec<Self>, PkiError> {
        let bytes = encoding::read_file(path)?;
        if encoding::looks_like_pem(&bytes) {
            Self::load_pem_chain(&encoding::pem_text(bytes)?)
        } else {
            Ok(vec![Self::from_der(bytes)?])
        }
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The PEM encoding (one `CERTIFICATE` block, LF line endings).
    pub fn to_pem(&self) -> String {
        encoding::encode(CERTIFICATE_TAG, &self.der)
    }

    /// SHA-256 of the DER encoding: the hash registered for security servers in the global
    /// configuration, and what `openssl x509 -fingerprint -sha256` prints.
    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// [`Certificate::sha256_fingerprint`] as lowercase hex without separators.
    pub fn fingerprint_hex(&self) -> String {
        hex::encode(self.fingerprint)
    }

    /// The subject as text, RFC 4514 style (`CN=ss1, O=DEV`).
    pub fn subject(&self) -> String {
        self.subject.clone()
    }

    /// The issuer as text, RFC 4514 style.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    /// The DER encoding of the subject name (what chaining compares).
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The DER encoding of the issuer name.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// The serial number as lowercase hex of its minimal big-endian bytes.
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }

    /// The serial number's minimal big-endian bytes.
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the validity period (inclusive).
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Whether basicConstraints says `CA:TRUE`.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints
            .is_some_and(|constraints| constraints.ca)
    }

    /// The member a signing certificate belongs to: the subject's `serialNumber` attribute
    /// (OID 2.5.4.5), parsed as `INSTANCE/CLASS/CODE`. `None` when the attribute is absent,
    /// repeated, or not a valid member identifier.
    pub fn member_id(&self) -> Option<MemberId> {
        self.member_id.clone()
    }

    /// The DNS names of the subjectAltName extension.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The IP addresses of the subjectAltName extension.
    pub fn ip_addresses(&self) -> &[IpAddr] {
        &self.ip_addresses
    }

    /// The subject public key, or why Passerelle cannot use it.
    pub fn public_key(&self) -> Result<&PublicKey, PkiError> {
        self.public_key
            .as_ref()
            .map_err(|algorithm| PkiError::UnsupportedPublicKey {
                algorithm: algorithm.clone(),
            })
    }

    /// Checks a signature made by this certificate's key.
    pub fn verify_signature(
        &self,
        algorithm: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), PkiError> {
        self.public_key()?.verify(algorithm, message, signature)
    }

    /// The algorithm a signature by this certificate's key uses by default: P-256 →
    /// ECDSA-SHA256, P-384 → ECDSA-SHA384, Ed25519 → Ed25519, RSA → PKCS#1 v1.5 SHA-256.
    /// `None` for keys Passerelle does not support.
    pub fn default_algorithm(&self) -> Option<SignatureAlgorithm> {
        self.public_key
            .as_ref()
            .ok()
            .map(PublicKey::default_algorithm)
    }

    /// Whether this certificate certifies `key` (same public key).
    pub fn matches_key(&self, key: &SigningKey) -> bool {
        self.public_key
            .as_ref()
            .is_ok_and(|public_key| *public_key == key.public_key())
    }

    /// Whether the key usage extension is present and asserts `bit`.
    pub(crate) fn has_key_usage(&self, bit: KeyUsageBit) -> bool {
        self.key_usage
            .is_some_and(|flags| flags & (bit as u16) != 0)
    }

    pub(crate) fn is_self_issued(&self) -> bool {
        self.subject_der == self.issuer_der
    }

    /// Checks that `issuer`'s key signed this certificate. `Err` carries the reason text.
    pub(crate) fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), IssuerSignature> {
        let (scheme, hash) = self
            .signature_algorithm
            .clone()
            .map_err(IssuerSignature::UnsupportedAlgorithm)?;
        let key = issuer.public_key.as_ref().map_err(|reason| {
            IssuerSignature::UnsupportedAlgorithm(format!("issuer key: {reason}"))
        })?;
        let algorithm = key.ring_algorithm(scheme, hash).ok_or_else(|| {
            IssuerSignature::UnsupportedAlgorithm(format!(
                "{scheme:?} with {hash:?} and a {} key",
                key.kind_name()
            ))
        })?;
        key.verify_with(algorithm, &self.tbs, &self.signature)
            .map_err(|()| IssuerSignature::Bad)
    }
}

pub(crate) enum IssuerSignature {
    Bad,
    UnsupportedAlgorithm(String),
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial", &self.serial_hex())
            .field("sha256", &self.fingerprint_hex())
            .finish()
    }
}

/// The owned fields, extracted while the borrowed parse tree is alive.
struct Parsed {
    tbs: Vec<u8>,
    subject: String,
    subject_der: Vec<u8>,
    issuer: String,
    issuer_der: Vec<u8>,
    serial: Vec<u8>,
    not_before: SystemTime,
    not_after: SystemTime,
    public_key: Result<PublicKey, String>,
    signature_algorithm: Result<(Scheme, Hash), String>,
    signature: Vec<u8>,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<u16>,
    extended_key_usage: Option<ExtendedKeyUsage>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    unhandled_critical_extensions: Vec<String>,
    member_id: Option<MemberId>,
}

impl Parsed {
    fn from_x509(x509: &X509Certificate<'_>) -> Result<Self, PkiError> {
        let invalid = |what: &str, error: x509_parser::error::X509Error| {
            PkiError::invalid_certificate(format!("{what}: {error}"))
        };
        let basic_constraints = x509
            .basic_constraints()
            .map_err(|error| invalid("basicConstraints", error))?
            .map(|extension| BasicConstraints {
                ca: extension.value.ca,
                path_len: extension.value.path_len_constraint,
            });
        let key_usage = x509
            .key_usage()
            .map_err(|error| invalid("keyUsage", error))?
            .map(|extension| extension.value.flags);
        let extended_key_usage = x509
            .extended_key_usage()
            .map_err(|error| invalid("extKeyUsage", error))?
            .map(|extension| {
                let value = extension.value;
                ExtendedKeyUsage {
                    critical: extension.critical,
                    server_auth: value.server_auth,
                    client_auth: value.client_auth,
                    time_stamping: value.time_stamping,
                    ocsp_signing: value.ocsp_signing,
                    others_than_time_stamping: value.any
                        || value.server_auth
                        || value.client_auth
                        || value.code_signing
                        || value.email_protection
                        || value.ocsp_signing
                        || !value.other.is_empty(),
                }
            });
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        if let Some(san) = x509
            .subject_alternative_name()
            .map_err(|error| invalid("subjectAltName", error))?
        {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from_bytes(bytes) {
                            ip_addresses.push(ip);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        let mut unhandled_critical_extensions = Vec::new();
        for extension in x509.extensions() {
            let oid = extension.oid.to_id_string();
            match extension.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
                }
                ParsedExtension::ParseError { error } => {
                    return Err(PkiError::invalid_certificate(format!(
                        "extension {oid}: {error}"
                    )));
                }
                _ => {}
            }
            if extension.critical && !HANDLED_EXTENSIONS.contains(&oid.as_str()) {
                unhandled_critical_extensions.push(oid);
            }
        }

        let tbs = &x509.tbs_certificate;
        let validity = tbs.validity();
        Ok(Parsed {
            tbs: tbs.as_ref().to_vec(),
            subject: tbs.subject.to_string(),
            subject_der: tbs.subject.as_raw().to_vec(),
            issuer: tbs.issuer.to_string(),
            issuer_der: tbs.issuer.as_raw().to_vec(),
            serial: tbs.serial.to_bytes_be(),
            not_before: system_time(validity.not_before.timestamp()),
            not_after: system_time(validity.not_after.timestamp()),
            public_key: PublicKey::from_parsed(tbs.public_key()).map_err(|error| error.to_string()),
            signature_algorithm: signature_algorithm(&x509.signature_algorithm),
            signature: x509.signature_value.data.to_vec(),
            basic_constraints,
            key_usage,
            extended_key_usage,
            subject_key_id,
            authority_key_id,
            dns_names,
            ip_addresses,
            unhandled_critical_extensions,
            member_id: member_id(x509),
        })
    }
}

fn member_id(x509: &X509Certificate<'_>) -> Option<MemberId> {
    let mut values = x509
        .subject()
        .iter_attributes()
        .filter(|attribute| attribute.attr_type().to_id_string() == OID_ATTRIBUTE_SERIAL_NUMBER);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    MemberId::from_str(value.as_str().ok()?).ok()
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn system_time(unix_seconds: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix_seconds.unsigned_abs());
    if unix_seconds >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    }
    .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Maps a certificate's signatureAlgorithm to a scheme and hash, or names what is unsupported.
fn signature_algorithm(
    algorithm: &x509_parser::x509::AlgorithmIdentifier<'_>,
) -> Result<(Scheme, Hash), String> {
    let oid = algorithm.algorithm.to_id_string();
    Ok(match oid.as_str() {
        "1.2.840.10045.4.3.2" => (Scheme::Ecdsa, Hash::Sha256),
        "1.2.840.10045.4.3.3" => (Scheme::Ecdsa, Hash::Sha384),
        "1.2.840.10045.4.3.4" => (Scheme::Ecdsa, Hash::Sha512),
        "1.2.840.113549.1.1.11" => (Scheme::RsaPkcs1, Hash::Sha256),
        "1.2.840.113549.1.1.12" => (Scheme::RsaPkcs1, Hash::Sha384),
        "1.2.840.113549.1.1.13" => (Scheme::RsaPkcs1, Hash::Sha512),
        "1.3.101.112" => (Scheme::Ed25519, Hash::Sha512),
        "1.2.840.113549.1.1.10" => (Scheme::RsaPss, pss_hash(algorithm)?),
        _ => return Err(format!("signature algorithm {oid}")),
    })
}

/// RSA-PSS parameters name the hash; ring verifies MGF1 with that hash and a salt of the hash's
/// length, which is what every CA issuing PSS certificates uses.
fn pss_hash(algorithm: &x509_parser::x509::AlgorithmIdentifier<'_>) -> Result<Hash, String> {
    use x509_parser::signature_algorithm::SignatureAlgorithm as X509Algorithm;
    let unsupported = || "rsassa-pss with unsupported parameters".to_owned();
    let Ok(X509Algorithm::RSASSA_PSS(parameters)) = X509Algorithm::try_from(algorithm) else {
        return Err(unsupported());
    };
    let (hash, length) = match parameters.hash_algorithm_oid().to_id_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => (Hash::Sha256, 32),
        "2.16.840.1.101.3.4.2.2" => (Hash::Sha384, 48),
        "2.16.840.1.101.3.4.2.3" => (Hash::Sha512, 64),
        _ => return Err(unsupported()),
    };
    if parameters.salt_length() != length {
        return Err(unsupported());
    }
    Ok(hash)
}
