//! The development certificate authority: a root CA, an intermediate CA, and the certificates
//! of the federation's trust services, kept as files in one directory.
//!
//! It exists for the demo, for tests and for trying Passerelle out; production federations use
//! their national CA. Every certificate is ECDSA P-256, made with rcgen, and accepted by
//! `openssl verify -CAfile root.cert.pem -untrusted intermediate.cert.pem`.
//!
//! # Directory layout
//!
//! | file | what |
//! |---|---|
//! | `instance` | the instance identifier the CA was made for (one line) |
//! | `root.cert.pem`, `root.key.pem` | self-signed root CA (pathLen 1) |
//! | `intermediate.cert.pem`, `intermediate.key.pem` | intermediate CA issued by the root (pathLen 0); it issues everything else |
//! | `config-signing.{cert,key,chain}.pem` | the central server's global-configuration signing certificate (KU digitalSignature, nonRepudiation) |
//! | `tsa.{cert,key,chain}.pem` | the time-stamping authority (EKU id-kp-timeStamping only, critical) |
//! | `ocsp.{cert,key,chain}.pem` | the OCSP responder (EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck) |
//! | `index.txt`, `index.txt.attr` | every certificate the intermediate issued, in `openssl ca`'s index format |
//! | `issued/<SERIAL>.cert.pem` | a copy of each of those certificates, by upper-case hex serial |
//!
//! `*.chain.pem` files hold the certificate then the intermediate. Keys are unencrypted PKCS#8
//! PEM written with mode 0600.
//!
//! `index.txt` has one line per certificate, tab-separated, exactly as `openssl ca` writes it:
//! status (`V` valid, `R` revoked), expiry (`YYMMDDHHMMSSZ`), revocation time (empty while
//! valid), serial (upper-case hex), file name (`unknown`) and subject (`/CN=.../O=...`). So
//! `openssl ocsp -index index.txt -CA intermediate.cert.pem -rsigner ocsp.cert.pem -rkey
//! ocsp.key.pem` answers for the certificates of this CA as they are.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use passerelle_ids::{MemberId, Part};
use ring::rand::SecureRandom;

use crate::encoding;
use crate::{Certificate, PkiError, PublicKey, SigningKey};

/// File names inside the CA directory.
pub mod files {
    /// The instance identifier.
    pub const INSTANCE: &str = "instance";
    /// Root CA certificate.
    pub const ROOT_CERT: &str = "root.cert.pem";
    /// Root CA key.
    pub const ROOT_KEY: &str = "root.key.pem";
    /// Intermediate CA certificate.
    pub const INTERMEDIATE_CERT: &str = "intermediate.cert.pem";
    /// Intermediate CA key.
    pub const INTERMEDIATE_KEY: &str = "intermediate.key.pem";
    /// File-name prefix of the configuration-signing credential.
    pub const CONFIG_SIGNING: &str = "config-signing";
    /// File-name prefix of the time-stamping authority credential.
    pub const TSA: &str = "tsa";
    /// File-name prefix of the OCSP responder credential.
    pub const OCSP: &str = "ocsp";
    /// The `openssl ca`-style index of issued certificates.
    pub const INDEX: &str = "index.txt";
    /// Attributes file `openssl ca` expects beside the index.
    pub const INDEX_ATTR: &str = "index.txt.attr";
    /// Directory holding a copy of each issued certificate.
    pub const ISSUED: &str = "issued";
}

/// Validity of the CA certificates made by [`DevCa::init`], in days (about ten years).
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// Default validity of issued leaf certificates, in days (about two years).
pub const LEAF_VALIDITY_DAYS: u32 = 730;
/// How far before `now` default validity periods start, to absorb clock skew between machines.
pub const BACKDATE: Duration = Duration::from_secs(3600);

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A validity period, both ends inclusive and truncated to whole seconds in certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: SystemTime,
    /// notAfter.
    pub not_after: SystemTime,
}

impl Validity {
    /// From [`BACKDATE`] before `now` until `days` days after `now`.
    pub fn days_from(now: SystemTime, days: u32) -> Self {
        let not_before = now.checked_sub(BACKDATE).unwrap_or(now);
        let not_after = now.checked_add(DAY.saturating_mul(days)).unwrap_or(now);
        Validity {
            not_before,
            not_after,
        }
    }
}

/// What [`DevCa::init`] does when the directory already holds a CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingCa {
    /// Fail with [`PkiError::CaAlreadyExists`].
    Refuse,
    /// Replace it (and forget its index of issued certificates).
    Replace,
}

/// A certificate with its private key.
#[derive(Debug)]
pub struct Credential {
    /// The certificate.
    pub certificate: Certificate,
    /// Its key.
    pub key: SigningKey,
}

/// What kind of leaf certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafProfile {
    /// A security server's TLS authentication certificate: subject `CN=<name>, O=<instance>`,
    /// KU digitalSignature, EKU serverAuth and clientAuth, the given DNS and IP SANs.
    Auth {
        /// The common name, usually the security server's code or host name.
        name: String,
        /// DNS subjectAltNames.
        dns_names: Vec<String>,
        /// IP subjectAltNames.
        ip_addresses: Vec<IpAddr>,
    },
    /// A member's signing certificate: subject `CN=<member code>, O=<member class>,
    /// serialNumber=<INSTANCE/CLASS/CODE>`, KU digitalSignature and nonRepudiation. The full
    /// member identifier in `serialNumber` (2.5.4.5) is what [`Certificate::member_id`] reads.
    Sign {
        /// The member.
        member: MemberId,
    },
}

/// Which key a new certificate certifies.
#[derive(Debug, Clone)]
pub enum LeafKey {
    /// Generate a fresh ECDSA P-256 key and return it in [`Issued::key`].
    Generate,
    /// Certify an existing public key (ECDSA P-256/P-384, RSA or Ed25519).
    Existing(PublicKey),
}

/// A request to [`DevCa::issue`].
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The certificate's profile.
    pub profile: LeafProfile,
    /// Its validity.
    pub validity: Validity,
    /// Its key.
    pub key: LeafKey,
}

/// A newly issued certificate.
#[derive(Debug)]
pub struct Issued {
    /// The leaf certificate.
    pub certificate: Certificate,
    /// The leaf then the intermediate that issued it.
    pub chain: Vec<Certificate>,
    /// The generated key, when [`LeafKey::Generate`] was asked for.
    pub key: Option<SigningKey>,
}

/// The files [`Issued::write`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedFiles {
    /// `PREFIX.key.pem`, if a key was generated.
    pub key: Option<PathBuf>,
    /// `PREFIX.cert.pem`: the leaf.
    pub certificate: PathBuf,
    /// `PREFIX.chain.pem`: the leaf and the intermediate.
    pub chain: PathBuf,
}

impl Issued {
    /// Writes `PREFIX.key.pem` (mode 0600, only for a generated key), `PREFIX.cert.pem` and
    /// `PREFIX.chain.pem`, creating the parent directory if needed.
    pub fn write(&self, prefix: &Path) -> Result<IssuedFiles, PkiError> {
        let files = IssuedFiles {
            key: self.key.as_ref().map(|_| with_suffix(prefix, ".key.pem")),
            certificate: with_suffix(prefix, ".cert.pem"),
            chain: with_suffix(prefix, ".chain.pem"),
        };
        if let Some(parent) = prefix
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|error| PkiError::io(parent, error))?;
        }
        if let (Some(key), Some(path)) = (&self.key, &files.key) {
            key.save(path)?;
        }
        encoding::write_public(&files.certificate, self.certificate.to_pem().as_bytes())?;
        encoding::write_public(&files.chain, pem_chain(&self.chain).as_bytes())?;
        Ok(files)
    }
}

/// One line of `index.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// `V` (valid), `R` (revoked) or `E` (expired), as openssl writes it.
    pub status: char,
    /// Expiry, as written (`YYMMDDHHMMSSZ`).
    pub expiry: String,
    /// Revocation time and reason, empty while valid.
    pub revocation: String,
    /// Upper-case hex serial.
    pub serial: String,
    /// Subject in openssl's one-line form.
    pub subject: String,
}

/// The development CA, opened from its directory.
#[derive(Debug)]
pub struct DevCa {
    dir: PathBuf,
    instance: Part,
    root: Certificate,
    intermediate: Credential,
    config_signing: Credential,
    tsa: Credential,
    ocsp: Credential,
}

impl DevCa {
    /// Creates a CA in `dir` for `instance`: root, intermediate, configuration-signing, TSA and
    /// OCSP responder keys and certificates, all valid for `validity`.
    pub fn init(
        dir: &Path,
        instance: &str,
        validity: Validity,
        existing: ExistingCa,
    ) -> Result<Self, PkiError> {
        let instance = parse_instance(dir, instance)?;
        if dir.join(files::ROOT_CERT).exists() && existing == ExistingCa::Refuse {
            return Err(PkiError::CaAlreadyExists {
                dir: dir.to_path_buf(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|error| PkiError::io(dir, error))?;
        let issued_dir = dir.join(files::ISSUED);
        if issued_dir.exists() {
            std::fs::remove_dir_all(&issued_dir)
                .map_err(|error| PkiError::io(&issued_dir, error))?;
        }
        std::fs::create_dir_all(&issued_dir).map_err(|error| PkiError::io(&issued_dir, error))?;
        encoding::write_public(&dir.join(files::INDEX), b"")?;
        encoding::write_public(&dir.join(files::INDEX_ATTR), b"unique_subject = no\n")?;

        let organization = format!("Passerelle {instance} development");
        let root_key = SigningKey::generate()?;
        let root_name = Name::new()
            .with(
                rcgen::DnType::CommonName,
                "CN",
                format!("{instance} Development Root CA"),
            )
            .with(rcgen::DnType::OrganizationName, "O", organization.clone());
        let mut root_params = params(&root_name, validity)?;
        root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(1));
        root_params.key_usages = ca_key_usages();
        let root_der = root_params
            .self_signed(&RcgenKey(&root_key))
            .map_err(|error| issuance(&root_name, error))?
            .der()
            .to_vec();
        let root = Certificate::from_der(root_der)?;

        let intermediate_key = SigningKey::generate()?;
        let intermediate_name = Name::new()
            .with(
                rcgen::DnType::CommonName,
                "CN",
                format!("{instance} Development Intermediate CA"),
            )
            .with(rcgen::DnType::OrganizationName, "O", organization.clone());
        let mut intermediate_params = params(&intermediate_name, validity)?;
        intermediate_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        intermediate_params.key_usages = ca_key_usages();
        let intermediate = Credential {
            certificate: sign(
                &intermediate_name,
                &intermediate_params,
                &intermediate_key.public_key(),
                &root,
                &root_key,
            )?,
            key: intermediate_key,
        };

        let service = |common_name: String,
                       profile: ServiceProfile|
         -> Result<(Credential, Name), PkiError> {
            let key = SigningKey::generate()?;
            let name = Name::new()
                .with(rcgen::DnType::CommonName, "CN", common_name)
                .with(rcgen::DnType::OrganizationName, "O", organization.clone());
            let mut service_params = leaf_params(&name, validity)?;
            profile.apply(&mut service_params);
            let certificate = sign(
                &name,
                &service_params,
                &key.public_key(),
                &intermediate.certificate,
                &intermediate.key,
            )?;
            Ok((Credential { certificate, key }, name))
        };
        let (config_signing, config_name) = service(
            format!("{instance} Configuration Signing"),
            ServiceProfile::ConfigSigning,
        )?;
        let (tsa, tsa_name) = service(
            format!("{instance} Time-Stamping Authority"),
            ServiceProfile::Tsa,
        )?;
        let (ocsp, ocsp_name) =
            service(format!("{instance} OCSP Responder"), ServiceProfile::Ocsp)?;

        encoding::write_public(
            &dir.join(files::INSTANCE),
            format!("{instance}\n").as_bytes(),
        )?;
        encoding::write_public(&dir.join(files::ROOT_CERT), root.to_pem().as_bytes())?;
        root_key.save(&dir.join(files::ROOT_KEY))?;
        encoding::write_public(
            &dir.join(files::INTERMEDIATE_CERT),
            intermediate.certificate.to_pem().as_bytes(),
        )?;
        intermediate.key.save(&dir.join(files::INTERMEDIATE_KEY))?;
        let ca = DevCa {
            dir: dir.to_path_buf(),
            instance,
            root,
            intermediate,
            config_signing,
            tsa,
            ocsp,
        };
        for (prefix, credential, name) in [
            (files::CONFIG_SIGNING, &ca.config_signing, &config_name),
            (files::TSA, &ca.tsa, &tsa_name),
            (files::OCSP, &ca.ocsp, &ocsp_name),
        ] {
            let issued = Issued {
                certificate: credential.certificate.clone(),
                chain: vec![
                    credential.certificate.clone(),
                    ca.intermediate.certificate.clone(),
                ],
                key: None,
            };
            issued.write(&dir.join(prefix))?;
            credential
                .key
                .save(&dir.join(format!("{prefix}.key.pem")))?;
            ca.record(&credential.certificate, name)?;
        }
        Ok(ca)
    }

    /// Opens the CA in `dir`, checking that every key matches its certificate.
    pub fn open(dir: &Path) -> Result<Self, PkiError> {
        let instance_text = encoding::read_file(&dir.join(files::INSTANCE))?;
        let instance_text = String::from_utf8_lossy(&instance_text);
        let instance = parse_instance(dir, instance_text.trim())?;
        let root = single_certificate(&dir.join(files::ROOT_CERT))?;
        let intermediate = credential(dir, files::INTERMEDIATE_CERT, files::INTERMEDIATE_KEY)?;
        let service = |prefix: &str| {
            credential(
                dir,
                &format!("{prefix}.cert.pem"),
                &format!("{prefix}.key.pem"),
            )
        };
        Ok(DevCa {
            dir: dir.to_path_buf(),
            instance,
            root,
            intermediate,
            config_signing: service(files::CONFIG_SIGNING)?,
            tsa: service(files::TSA)?,
            ocsp: service(files::OCSP)?,
        })
    }

    /// Opens the CA in `dir` if there is one (it must be for `instance`), or creates one valid
    /// from an hour before `now` for [`CA_VALIDITY_DAYS`]. This is what the demo calls on every
    /// start.
    pub fn open_or_init(dir: &Path, instance: &str, now: SystemTime) -> Result<Self, PkiError> {
        if !dir.join(files::ROOT_CERT).exists() {
            return Self::init(
                dir,
                instance,
                Validity::days_from(now, CA_VALIDITY_DAYS),
                ExistingCa::Refuse,
            );
        }
        let ca = Self::open(dir)?;
        if ca.instance.as_str() != instance {
            return Err(PkiError::InvalidCa {
                dir: dir.to_path_buf(),
                reason: format!("it was made for instance {}, not {instance}", ca.instance),
            });
        }
        Ok(ca)
    }

    /// Issues a leaf certificate from the intermediate CA, and records it in `index.txt` and
    /// `issued/`.
    pub fn issue(&self, request: &IssueRequest) -> Result<Issued, PkiError> {
        let (name, leaf) = match &request.profile {
            LeafProfile::Auth {
                name,
                dns_names,
                ip_addresses,
            } => {
                let subject = Name::new()
                    .with(rcgen::DnType::CommonName, "CN", name.clone())
                    .with(
                        rcgen::DnType::OrganizationName,
                        "O",
                        self.instance.to_string(),
                    );
                let mut leaf = leaf_params(&subject, request.validity)?;
                leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
                leaf.extended_key_usages = vec![
                    rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                    rcgen::ExtendedKeyUsagePurpose::ClientAuth,
                ];
                for dns in dns_names {
                    let dns =
                        rcgen::string::Ia5String::try_from(dns.as_str()).map_err(|error| {
                            issuance(&subject, format!("dns name {dns:?}: {error}"))
                        })?;
                    leaf.subject_alt_names.push(rcgen::SanType::DnsName(dns));
                }
                leaf.subject_alt_names
                    .extend(ip_addresses.iter().copied().map(rcgen::SanType::IpAddress));
                (subject, leaf)
            }
            LeafProfile::Sign { member } => {
                let subject = Name::new()
                    .with(
                        rcgen::DnType::CommonName,
                        "CN",
                        member.member_code().to_string(),
                    )
                    .with(
                        rcgen::DnType::OrganizationName,
                        "O",
                        member.member_class().to_string(),
                    )
                    .with_serial_number(member.to_string());
                let mut leaf = leaf_params(&subject, request.validity)?;
                leaf.key_usages = vec![
                    rcgen::KeyUsagePurpose::DigitalSignature,
                    rcgen::KeyUsagePurpose::ContentCommitment,
                ];
                (subject, leaf)
            }
        };
        let (public_key, key) = match &request.key {
            LeafKey::Generate => {
                let key = SigningKey::generate()?;
                (key.public_key(), Some(key))
            }
            LeafKey::Existing(public_key) => (public_key.clone(), None),
        };
        let certificate = sign(
            &name,
            &leaf,
            &public_key,
            &self.intermediate.certificate,
            &self.intermediate.key,
        )?;
        self.record(&certificate, &name)?;
        Ok(Issued {
            chain: vec![certificate.clone(), self.intermediate.certificate.clone()],
            certificate,
            key,
        })
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance the CA was made for.
    pub fn instance(&self) -> &Part {
        &self.instance
    }

    /// The root CA certificate: the trust anchor to put in the global configuration.
    pub fn root(&self) -> &Certificate {
        &self.root
    }

    /// The intermediate CA, which issues every other certificate.
    pub fn intermediate(&self) -> &Credential {
        &self.intermediate
    }

    /// The central server's configuration-signing credential.
    pub fn config_signing(&self) -> &Credential {
        &self.config_signing
    }

    /// The time-stamping authority's credential.
    pub fn tsa(&self) -> &Credential {
        &self.tsa
    }

    /// The OCSP responder's credential.
    pub fn ocsp(&self) -> &Credential {
        &self.ocsp
    }

    /// The path of a file of the CA directory (see [`files`]).
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The entries of `index.txt`, in issuance order. Lines that are not six tab-separated
    /// fields are skipped.
    pub fn index(&self) -> Result<Vec<IndexEntry>, PkiError> {
        let text = encoding::read_file(&self.path(files::INDEX))?;
        Ok(String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                let [status, expiry, revocation, serial, _file, subject] = fields.as_slice() else {
                    return None;
                };
                Some(IndexEntry {
                    status: status.chars().next()?,
                    expiry: (*expiry).to_owned(),
                    revocation: (*revocation).to_owned(),
                    serial: (*serial).to_owned(),
                    subject: (*subject).to_owned(),
                })
            })
            .collect())
    }

    /// The certificate this CA issued with serial `serial_hex` (any case, as printed by
    /// [`Certificate::serial_hex`] or openssl), if any.
    pub fn find_issued(&self, serial_hex: &str) -> Result<Option<Certificate>, PkiError> {
        let serial = serial_hex
            .trim()
            .trim_start_matches("0x")
            .to_ascii_uppercase();
        if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let path = self.path(files::ISSUED).join(format!("{serial}.cert.pem"));
        if !path.exists() {
            return Ok(None);
        }
        single_certificate(&path).map(Some)
    }

    fn record(&self, certificate: &Certificate, name: &Name) -> Result<(), PkiError> {
        use std::io::Write;
        let serial = certificate.serial_hex().to_ascii_uppercase();
        let issued = self.path(files::ISSUED).join(format!("{serial}.cert.pem"));
        encoding::write_public(&issued, certificate.to_pem().as_bytes())?;
        let line = format!(
            "V\t{}\t\t{serial}\tunknown\t{}\n",
            openssl_time(certificate.not_after()),
            name.oneline()
        );
        let index = self.path(files::INDEX);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index)
            .map_err(|error| PkiError::io(&index, error))?;
        file.write_all(line.as_bytes())
            .map_err(|error| PkiError::io(&index, error))
    }
}

/// The profiles of the trust-service certificates made by [`DevCa::init`].
#[derive(Clone, Copy)]
enum ServiceProfile {
    ConfigSigning,
    Tsa,
    Ocsp,
}

impl ServiceProfile {
    fn apply(self, params: &mut rcgen::CertificateParams) {
        match self {
            ServiceProfile::ConfigSigning => {
                params.key_usages = vec![
                    rcgen::KeyUsagePurpose::DigitalSignature,
                    rcgen::KeyUsagePurpose::ContentCommitment,
                ];
            }
            ServiceProfile::Tsa => {
                params.key_usages = vec![
                    rcgen::KeyUsagePurpose::DigitalSignature,
                    rcgen::KeyUsagePurpose::ContentCommitment,
                ];
                // RFC 3161 §2.3: the EKU extension must be critical and hold only timeStamping;
                // rcgen writes its own EKU extension non-critical, so write this one by hand.
                let mut eku = rcgen::CustomExtension::from_oid_content(
                    &[2, 5, 29, 37],
                    crate::der::eku_time_stamping_only(),
                );
                eku.set_criticality(true);
                params.custom_extensions.push(eku);
            }
            ServiceProfile::Ocsp => {
                params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
                params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::OcspSigning];
                // id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): clients need not check the
                // responder's own status.
                params
                    .custom_extensions
                    .push(rcgen::CustomExtension::from_oid_content(
                        &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
                        crate::der::NULL.to_vec(),
                    ));
            }
        }
    }
}

/// A subject name: rcgen's attribute types with openssl's short names, in order.
struct Name {
    attributes: Vec<(rcgen::DnType, &'static str, String)>,
}

impl Name {
    fn new() -> Self {
        Name {
            attributes: Vec::new(),
        }
    }

    fn with(mut self, kind: rcgen::DnType, short: &'static str, value: String) -> Self {
        self.attributes.push((kind, short, value));
        self
    }

    /// serialNumber (2.5.4.5), whose X.520 type is PrintableString.
    fn with_serial_number(self, value: String) -> Self {
        self.with(
            rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
            "serialNumber",
            value,
        )
    }

    fn distinguished_name(&self) -> rcgen::DistinguishedName {
        let mut name = rcgen::DistinguishedName::new();
        for (kind, short, value) in &self.attributes {
            // X.520 makes serialNumber a PrintableString; member identifiers may contain `_`,
            // which PrintableString lacks, so those fall back to UTF8String.
            let printable = (*short == "serialNumber")
                .then(|| rcgen::string::PrintableString::try_from(value.as_str()).ok())
                .flatten();
            match printable {
                Some(printable) => {
                    name.push(kind.clone(), rcgen::DnValue::PrintableString(printable))
                }
                None => name.push(kind.clone(), rcgen::DnValue::Utf8String(value.clone())),
            }
        }
        name
    }

    /// openssl's one-line form, as `openssl ca` writes it into `index.txt`.
    fn oneline(&self) -> String {
        let mut out = String::new();
        for (_, short, value) in &self.attributes {
            let _ = write!(out, "/{short}={value}");
        }
        out
    }

    fn common_name(&self) -> &str {
        self.attributes
            .first()
            .map_or("", |(_, _, value)| value.as_str())
    }
}

/// Our signing key as rcgen sees it, so rcgen never holds a second copy of the secret.
struct RcgenKey<'a>(&'a SigningKey);

impl rcgen::PublicKeyData for RcgenKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_point()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for RcgenKey<'_> {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0
            .sign(message)
            .map_err(|_| rcgen::Error::RingUnspecified)
    }
}

fn parse_instance(dir: &Path, instance: &str) -> Result<Part, PkiError> {
    Part::parse(instance, "instance", "instance").map_err(|error| PkiError::InvalidCa {
        dir: dir.to_path_buf(),
        reason: error.to_string(),
    })
}

fn ca_key_usages() -> Vec<rcgen::KeyUsagePurpose> {
    vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ]
}

/// Parameters common to every certificate: name, validity, random serial.
fn params(name: &Name, validity: Validity) -> Result<rcgen::CertificateParams, PkiError> {
    if validity.not_after <= validity.not_before {
        return Err(issuance(name, "notAfter is not after notBefore"));
    }
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = name.distinguished_name();
    params.not_before = offset_date_time(name, validity.not_before)?;
    params.not_after = offset_date_time(name, validity.not_after)?;
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// Parameters of an end-entity certificate: `CA:FALSE` (with a subject key identifier) and an
/// authority key identifier.
fn leaf_params(name: &Name, validity: Validity) -> Result<rcgen::CertificateParams, PkiError> {
    let mut params = params(name, validity)?;
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    Ok(params)
}

fn sign(
    name: &Name,
    params: &rcgen::CertificateParams,
    subject_key: &PublicKey,
    issuer: &Certificate,
    issuer_key: &SigningKey,
) -> Result<Certificate, PkiError> {
    let mut params = params.clone();
    params.use_authority_key_identifier_extension = true;
    let subject_key = rcgen::SubjectPublicKeyInfo::from_der(subject_key.spki_der())
        .map_err(|error| issuance(name, format!("subject key: {error}")))?;
    let issuer = rcgen::Issuer::from_ca_cert_der(&issuer.der().into(), RcgenKey(issuer_key))
        .map_err(|error| issuance(name, format!("issuer: {error}")))?;
    let certificate = params
        .signed_by(&subject_key, &issuer)
        .map_err(|error| issuance(name, error))?;
    Certificate::from_der(certificate.der().to_vec())
}

/// A positive 128-bit serial number: random, so that serials never repeat across CAs and runs.
fn random_serial() -> Result<rcgen::SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    // Positive (top bit clear) and of full length (first byte non-zero), so that the minimal
    // encoding is always 16 bytes and `index.txt` serials always have 32 hex digits.
    bytes[0] = (bytes[0] & 0x7f).max(1);
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

fn offset_date_time(name: &Name, time: SystemTime) -> Result<time::OffsetDateTime, PkiError> {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_secs()).ok())
        .ok_or_else(|| issuance(name, "validity before 1970"))?;
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .filter(|datetime| datetime.year() <= 9999)
        .ok_or_else(|| issuance(name, "validity beyond year 9999"))
}

/// `YYMMDDHHMMSSZ` before 2050 and `YYYYMMDDHHMMSSZ` from 2050, like the certificate's own
/// UTCTime/GeneralizedTime and like `openssl ca`.
fn openssl_time(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_secs()).ok())
        .unwrap_or(0);
    let Ok(datetime) = time::OffsetDateTime::from_unix_timestamp(seconds) else {
        return "700101000000Z".to_owned();
    };
    let year = datetime.year();
    let year = if (1950..2050).contains(&year) {
        format!("{:02}", year % 100)
    } else {
        format!("{year:04}")
    };
    format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(datetime.month()),
        datetime.day(),
        datetime.hour(),
        datetime.minute(),
        datetime.second()
    )
}

fn issuance(name: &Name, reason: impl std::fmt::Display) -> PkiError {
    PkiError::Issuance {
        subject: name.common_name().to_owned(),
        reason: reason.to_string(),
    }
}

fn single_certificate(path: &Path) -> Result<Certificate, PkiError> {
    let mut certificates = Certificate::load(path)?;
    match (certificates.pop(), certificates.is_empty()) {
        (Some(certificate), true) => Ok(certificate),
        _ => Err(PkiError::invalid_pem(format!(
            "{} should hold one certificate",
            path.display()
        ))),
    }
}

fn credential(dir: &Path, certificate_file: &str, key_file: &str) -> Result<Credential, PkiError> {
    let certificate = single_certificate(&dir.join(certificate_file))?;
    let key = SigningKey::load(&dir.join(key_file))?;
    if !certificate.matches_key(&key) {
        return Err(PkiError::InvalidCa {
            dir: dir.to_path_buf(),
            reason: format!("{key_file} is not the key of {certificate_file}"),
        });
    }
    Ok(Credential { certificate, key })
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut path = prefix.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

fn pem_chain(chain: &[Certificate]) -> String {
    chain.iter().map(Certificate::to_pem).collect()
}
