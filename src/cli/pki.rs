//! `passerelle pki`: the development certificate authority and its trust services.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, bail};
use passerelle_central_server::trust_services;
use passerelle_ids::MemberId;
use passerelle_pki::devca::{
    self, DevCa, ExistingCa, IssueRequest, LeafKey, LeafProfile, Validity,
};
use passerelle_pki::revocation::RevocationIndex;
use passerelle_pki::revocation::RevocationReason;
use passerelle_pki::{Certificate, PrivateKey};

const INIT_EXAMPLES: &str = "\
Examples:
  # A CA for the development instance DEV, valid ten years from now
  passerelle pki init --dir ca --instance DEV

  # A fixed validity window, as the committed test PKI in certs/ uses
  passerelle pki init --dir certs --instance DEV \\
      --not-before 2025-01-01T00:00:00Z --not-after 2045-01-01T00:00:00Z

  # Check what was made with stock openssl
  openssl x509 -in ca/tsa.cert.pem -noout -text
  openssl verify -CAfile ca/root.cert.pem -untrusted ca/intermediate.cert.pem ca/ocsp.cert.pem

The directory then holds root.*, intermediate.*, config-signing.*, tsa.* and ocsp.*
(.cert.pem, .key.pem, and .chain.pem = certificate + intermediate), index.txt in `openssl ca`
format, and issued/ with a copy of every issued certificate by serial. Keys are unencrypted
PKCS#8 PEM, mode 0600: this CA is for development and tests only.";

const ISSUE_EXAMPLES: &str = "\
Examples:
  # A security server's TLS authentication certificate (serverAuth + clientAuth)
  passerelle pki issue --dir ca --kind auth --name ss-health \\
      --dns localhost --ip 127.0.0.1 --out ss-health

  # A member's signing certificate; the member id goes in the subject's serialNumber
  passerelle pki issue --dir ca --kind sign --member DEV/GOV/HEALTH --out sign-health

  # Certify an existing key (made by `openssl genpkey`) instead of generating one
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out my.key.pem
  passerelle pki issue --dir ca --kind sign --member DEV/GOV/HEALTH --key my.key.pem --out my

  # Check it
  openssl verify -CAfile ca/root.cert.pem -untrusted ca/intermediate.cert.pem ss-health.cert.pem

Writes PREFIX.key.pem (only for a generated key, mode 0600), PREFIX.cert.pem (the certificate)
and PREFIX.chain.pem (the certificate then the intermediate CA, what a TLS server presents).";

const SERVE_EXAMPLES: &str = "\
Examples:
  # Serve the CA in ca/ on the default address
  passerelle pki serve --dir ca

  # Ask it with stock openssl
  openssl ocsp -issuer ca/intermediate.cert.pem -cert sign-health.cert.pem \\
      -url http://127.0.0.1:8899/ocsp -CAfile ca/root.cert.pem \\
      -verify_other ca/intermediate.cert.pem -resp_text

OCSP: POST application/ocsp-request to any path, or GET /ocsp/{url-encoded base64 of the
request} (RFC 6960 appendix A). The responder signs with ocsp.key.pem and answers for
certificates of the intermediate CA from index.txt, re-read on every request.
TSA: POST application/timestamp-query; tokens are signed with tsa.key.pem.
Put http://ADDRESS/ocsp and http://ADDRESS/tsa in the global configuration.";

const REVOKE_EXAMPLES: &str = "\
Examples:
  passerelle pki revoke --dir ca --serial 3A0F...C2 --reason keyCompromise

Marks the certificate revoked in index.txt exactly as `openssl ca -revoke` does (status R and
the revocation time), so both `passerelle pki serve` and `openssl ocsp -index` report it.";

/// Create a development CA and issue certificates from it.
///
/// The development CA stands in for a national CA in demos and tests: a root CA, an intermediate
/// CA, and the certificates of the federation's trust services (configuration signing, TSA,
/// OCSP responder). Everything it issues is ECDSA P-256 and verifies with stock openssl.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PkiCommand {
    /// Create a development CA: root, intermediate, configuration-signing, TSA and OCSP
    /// responder keys and certificates.
    #[command(after_help = INIT_EXAMPLES)]
    Init(InitArgs),
    /// Issue a security server's TLS authentication certificate or a member's signing
    /// certificate from a development CA.
    #[command(after_help = ISSUE_EXAMPLES)]
    Issue(IssueArgs),
    /// Run the development trust services of a CA: an OCSP responder (RFC 6960) and a
    /// time-stamping authority (RFC 3161), over plain HTTP.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Revoke a certificate the development CA issued; a running `serve` answers `revoked` for
    /// it from its next request on.
    #[command(after_help = REVOKE_EXAMPLES)]
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Directory of the CA (made by `passerelle pki init`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Address to listen on.
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:8899")]
    listen: std::net::SocketAddr,
}

#[derive(Debug, clap::Args)]
pub(crate) struct RevokeArgs {
    /// Directory of the CA (made by `passerelle pki init`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Serial number of the certificate, in hex (as `pki issue` and `openssl x509 -serial`
    /// print it; case and a leading 0x do not matter).
    #[arg(long, value_name = "HEX")]
    serial: String,
    /// Reason, with openssl's names: unspecified, keyCompromise, CACompromise,
    /// affiliationChanged, superseded, cessationOfOperation, certificateHold, removeFromCRL,
    /// privilegeWithdrawn, AACompromise.
    #[arg(long, value_name = "REASON", default_value = "unspecified")]
    reason: RevocationReason,
}

#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// Directory to create the CA in (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Instance identifier the CA serves, e.g. DEV; it appears in the CA names.
    #[arg(long, value_name = "INSTANCE")]
    instance: String,
    /// Replace a CA that already exists in DIR (its issued certificates are forgotten).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    validity: ValidityArgs<{ devca::CA_VALIDITY_DAYS }>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Kind {
    /// TLS authentication certificate of a security server (serverAuth + clientAuth).
    Auth,
    /// Signing certificate of a member (digitalSignature + nonRepudiation).
    Sign,
}

#[derive(Debug, clap::Args)]
pub(crate) struct IssueArgs {
    /// Directory of the CA (made by `passerelle pki init`).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// What to issue.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Common name of an auth certificate, e.g. the security server's code.
    #[arg(long, value_name = "SERVER-NAME", required_if_eq("kind", "auth"))]
    name: Option<String>,
    /// DNS subjectAltName of an auth certificate (repeatable).
    #[arg(long, value_name = "HOST")]
    dns: Vec<String>,
    /// IP subjectAltName of an auth certificate (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    ip: Vec<IpAddr>,
    /// Member of a signing certificate, INSTANCE/CLASS/CODE.
    #[arg(
        long,
        value_name = "INSTANCE/CLASS/CODE",
        required_if_eq("kind", "sign")
    )]
    member: Option<MemberId>,
    /// Certify this existing private key (PEM or DER PKCS#8: ECDSA P-256/P-384, RSA, Ed25519)
    /// instead of generating a P-256 key.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Output prefix: writes PREFIX.key.pem, PREFIX.cert.pem and PREFIX.chain.pem.
    #[arg(long, value_name = "PREFIX")]
    out: PathBuf,
    #[command(flatten)]
    validity: ValidityArgs<{ devca::LEAF_VALIDITY_DAYS }>,
}

#[derive(Debug, clap::Args)]
struct ValidityArgs<const DEFAULT_DAYS: u32> {
    /// Validity in days, starting an hour ago [default: 3650 for `init`, 730 for `issue`].
    #[arg(long, value_name = "N", conflicts_with_all = ["not_before", "not_after"])]
    days: Option<u32>,
    /// Fixed start of validity (RFC 3339, e.g. 2025-01-01T00:00:00Z, or a date 2025-01-01).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "not_after")]
    not_before: Option<SystemTime>,
    /// Fixed end of validity (RFC 3339 or a date).
    #[arg(long, value_name = "TIME", value_parser = parse_time, requires = "not_before")]
    not_after: Option<SystemTime>,
}

impl<const DEFAULT_DAYS: u32> ValidityArgs<DEFAULT_DAYS> {
    fn validity(&self, now: SystemTime) -> Validity {
        match (self.not_before, self.not_after) {
            (Some(not_before), Some(not_after)) => Validity {
                not_before,
                not_after,
            },
            _ => Validity::days_from(now, self.days.unwrap_or(DEFAULT_DAYS)),
        }
    }
}

fn parse_time(text: &str) -> Result<SystemTime, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(datetime) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(datetime.into());
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &date_format)
        .map(|date| date.midnight().assume_utc().into())
        .map_err(|_| {
            format!("{text:?} is neither RFC 3339 (2025-01-01T00:00:00Z) nor a date (2025-01-01)")
        })
}

pub(crate) fn run(command: PkiCommand) -> anyhow::Result<ExitCode> {
    // The edge of the program: the one place this command reads the clock.
    let now = SystemTime::now();
    match command {
        PkiCommand::Init(args) => init(&args, now),
        PkiCommand::Issue(args) => issue(&args, now),
        PkiCommand::Serve(args) => serve(&args),
        PkiCommand::Revoke(args) => revoke(&args, now),
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr().context("reading the bound address")?;
        println!("Development trust services of {}", args.dir.display());
        println!("  OCSP responder  http://{address}/ocsp");
        println!("  TSA             http://{address}/tsa");
        // The edge of the program: the services take time from the system clock.
        let clock: passerelle_central_server::Clock = std::sync::Arc::new(SystemTime::now);
        tokio::select! {
            served = trust_services::serve_trust_services(&args.dir, listener, clock) => {
                served.with_context(|| format!("serving the trust services of {}", args.dir.display()))?;
            }
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn revoke(args: &RevokeArgs, now: SystemTime) -> anyhow::Result<ExitCode> {
    let ca = DevCa::open(&args.dir)
        .with_context(|| format!("opening the development ca in {}", args.dir.display()))?;
    let certificate = ca.find_issued(&args.serial)?.with_context(|| {
        format!(
            "the ca in {} issued no certificate with serial {}",
            args.dir.display(),
            args.serial
        )
    })?;
    let path = ca.path(devca::files::INDEX);
    let mut index = RevocationIndex::load(&path)?;
    index.revoke(&certificate.serial_hex(), args.reason, now)?;
    index.save(&path)?;
    println!("Revoked {}", certificate.subject());
    println!("  serial  {}", certificate.serial_hex());
    println!("  reason  {}", args.reason);
    println!("  recorded in {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn init(args: &InitArgs, now: SystemTime) -> anyhow::Result<ExitCode> {
    let existing = if args.force {
        ExistingCa::Replace
    } else {
        ExistingCa::Refuse
    };
    let ca = DevCa::init(
        &args.dir,
        &args.instance,
        args.validity.validity(now),
        existing,
    )
    .with_context(|| format!("creating a development ca in {}", args.dir.display()))?;
    println!(
        "Development CA for instance {} in {}",
        ca.instance(),
        ca.dir().display()
    );
    describe(
        &ca,
        devca::files::ROOT_CERT,
        "root CA certificate (the trust anchor)",
        Some(ca.root()),
    );
    describe(&ca, devca::files::ROOT_KEY, "root CA key (0600)", None);
    describe(
        &ca,
        devca::files::INTERMEDIATE_CERT,
        "intermediate CA certificate",
        Some(&ca.intermediate().certificate),
    );
    describe(
        &ca,
        devca::files::INTERMEDIATE_KEY,
        "intermediate CA key (0600)",
        None,
    );
    for (prefix, what, credential) in [
        (
            devca::files::CONFIG_SIGNING,
            "configuration signing",
            ca.config_signing(),
        ),
        (devca::files::TSA, "time-stamping authority", ca.tsa()),
        (devca::files::OCSP, "OCSP responder", ca.ocsp()),
    ] {
        describe(
            &ca,
            &format!("{prefix}.cert.pem"),
            &format!("{what} certificate"),
            Some(&credential.certificate),
        );
        describe(
            &ca,
            &format!("{prefix}.key.pem"),
            &format!("{what} key (0600)"),
            None,
        );
        describe(
            &ca,
            &format!("{prefix}.chain.pem"),
            &format!("{what} certificate + intermediate"),
            None,
        );
    }
    describe(
        &ca,
        devca::files::INDEX,
        "index of issued certificates (openssl ca format)",
        None,
    );
    describe(
        &ca,
        devca::files::ISSUED,
        "copies of issued certificates by serial",
        None,
    );
    Ok(ExitCode::SUCCESS)
}

fn issue(args: &IssueArgs, now: SystemTime) -> anyhow::Result<ExitCode> {
    let ca = DevCa::open(&args.dir)
        .with_context(|| format!("opening the development ca in {}", args.dir.display()))?;
    let profile = match (args.kind, &args.name, &args.member) {
        (Kind::Auth, Some(name), _) => {
            if args.dns.is_empty() && args.ip.is_empty() {
                bail!("an auth certificate needs at least one --dns or --ip");
            }
            LeafProfile::Auth {
                name: name.clone(),
                dns_names: args.dns.clone(),
                ip_addresses: args.ip.clone(),
            }
        }
        (Kind::Sign, _, Some(member)) => {
            if !args.dns.is_empty() || !args.ip.is_empty() {
                bail!("--dns and --ip apply to auth certificates only");
            }
            LeafProfile::Sign {
                member: member.clone(),
            }
        }
        (Kind::Auth, None, _) => bail!("--kind auth needs --name"),
        (Kind::Sign, _, None) => bail!("--kind sign needs --member"),
    };
    let key = match &args.key {
        Some(path) => LeafKey::Existing(
            PrivateKey::load(path)
                .with_context(|| format!("loading the key to certify from {}", path.display()))?
                .public_key(),
        ),
        None => LeafKey::Generate,
    };
    let issued = ca.issue(&IssueRequest {
        profile,
        validity: args.validity.validity(now),
        key,
    })?;
    let files = issued.write(&args.out)?;
    print_certificate(&issued.certificate);
    if let Some(key) = &files.key {
        println!("  wrote {}  (private key, 0600)", key.display());
    }
    println!("  wrote {}  (certificate)", files.certificate.display());
    println!(
        "  wrote {}  (certificate + intermediate CA)",
        files.chain.display()
    );
    println!(
        "  recorded in {} and {}",
        ca.path(devca::files::INDEX).display(),
        ca.path(devca::files::ISSUED)
            .join(format!(
                "{}.cert.pem",
                issued.certificate.serial_hex().to_ascii_uppercase()
            ))
            .display()
    );
    Ok(ExitCode::SUCCESS)
}

fn describe(ca: &DevCa, file: &str, what: &str, certificate: Option<&Certificate>) {
    let path = ca.path(file);
    println!("  wrote {}  ({what})", display(&path));
    if let Some(certificate) = certificate {
        println!(
            "      subject {}  sha256 {}",
            certificate.subject(),
            certificate.fingerprint_hex()
        );
    }
}

fn print_certificate(certificate: &Certificate) {
    println!("Issued {}", certificate.subject());
    println!("  serial  {}", certificate.serial_hex());
    println!("  sha256  {}", certificate.fingerprint_hex());
    if let Some(member) = certificate.member_id() {
        println!("  member  {member}");
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use passerelle_pki::devca::DevCa;
    use passerelle_pki::{Certificate, Purpose, validate_chain};

    use super::{PkiCommand, parse_time, run};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: PkiCommand,
    }

    fn pki(arguments: &[&str]) -> anyhow::Result<std::process::ExitCode> {
        let cli = Cli::try_parse_from([&["pki"], arguments].concat())?;
        run(cli.command)
    }

    #[test]
    fn init_then_issue_writes_the_documented_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let ca_arg = ca.to_str().unwrap();
        let window = [
            "--not-before",
            "2025-01-01",
            "--not-after",
            "2045-01-01T00:00:00Z",
        ];
        pki(&[&["init", "--dir", ca_arg, "--instance", "DEV"], &window[..]].concat()).unwrap();
        let refused = pki(&["init", "--dir", ca_arg, "--instance", "DEV"]).unwrap_err();
        assert!(format!("{refused:#}").contains("--force"), "{refused:#}");

        let prefix = dir.path().join("out/ss1");
        pki(&[
            &[
                "issue",
                "--dir",
                ca_arg,
                "--kind",
                "auth",
                "--name",
                "ss1",
                "--dns",
                "localhost",
            ],
            &["--ip", "127.0.0.1", "--out", prefix.to_str().unwrap()][..],
            &window[..],
        ]
        .concat())
        .unwrap();
        let chain = Certificate::load(&dir.path().join("out/ss1.chain.pem")).unwrap();
        assert!(dir.path().join("out/ss1.key.pem").exists());
        assert_eq!(chain[0].not_before(), parse_time("2025-01-01").unwrap());
        let opened = DevCa::open(&ca).unwrap();
        let now = parse_time("2026-06-01").unwrap();
        validate_chain(
            &chain[0],
            &chain[1..],
            std::slice::from_ref(opened.root()),
            now,
            Purpose::TlsAuth,
        )
        .unwrap();

        let member = dir.path().join("member");
        pki(&[
            "issue",
            "--dir",
            ca_arg,
            "--kind",
            "sign",
            "--member",
            "DEV/GOV/HEALTH",
            "--out",
            member.to_str().unwrap(),
        ])
        .unwrap();
        let certificate = Certificate::load(&dir.path().join("member.cert.pem"))
            .unwrap()
            .remove(0);
        assert_eq!(
            certificate.member_id().unwrap().to_string(),
            "DEV/GOV/HEALTH"
        );
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let ca_arg = ca.to_str().unwrap();
        for arguments in [
            &["issue", "--dir", ca_arg, "--kind", "sign", "--out", "x"][..],
            &[
                "issue",
                "--dir",
                ca_arg,
                "--kind",
                "auth",
                "--out",
                "x",
                "--dns",
                "localhost",
            ][..],
            &[
                "issue", "--dir", ca_arg, "--kind", "sign", "--member", "DEV/GOV", "--out", "x",
            ][..],
            &[
                "init",
                "--dir",
                ca_arg,
                "--instance",
                "DEV",
                "--not-before",
                "yesterday",
                "--not-after",
                "2030-01-01",
            ][..],
            &[
                "init",
                "--dir",
                ca_arg,
                "--instance",
                "DEV",
                "--days",
                "3",
                "--not-before",
                "2025-01-01",
                "--not-after",
                "2030-01-01",
            ][..],
        ] {
            assert!(
                Cli::try_parse_from([&["pki"], arguments].concat()).is_err(),
                "{arguments:?}"
            );
        }
        assert!(!ca.exists());
        // Parsed, but there is no CA yet.
        assert!(
            pki(&[
                "issue",
                "--dir",
                ca_arg,
                "--kind",
                "sign",
                "--member",
                "DEV/GOV/HEALTH",
                "--out",
                "x"
            ])
            .is_err()
        );
        assert!(pki(&["init", "--dir", ca_arg, "--instance", "DEV/X"]).is_err());
    }

    #[test]
    fn revoke_marks_the_index_like_openssl_ca() {
        use passerelle_pki::revocation::{IndexStatus, RevocationIndex, RevocationReason};

        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let ca_arg = ca.to_str().unwrap();
        pki(&["init", "--dir", ca_arg, "--instance", "DEV"]).unwrap();
        let prefix = dir.path().join("sign");
        pki(&[
            "issue",
            "--dir",
            ca_arg,
            "--kind",
            "sign",
            "--member",
            "DEV/GOV/HEALTH",
            "--out",
            prefix.to_str().unwrap(),
        ])
        .unwrap();
        let certificate = Certificate::load(&dir.path().join("sign.cert.pem"))
            .unwrap()
            .remove(0);
        let serial = certificate.serial_hex().to_ascii_uppercase();
        let revoke = |reason: &str| {
            pki(&[
                "revoke", "--dir", ca_arg, "--serial", &serial, "--reason", reason,
            ])
        };
        assert!(
            revoke("becauseISaidSo").is_err(),
            "unknown reasons are refused"
        );
        revoke("keyCompromise").unwrap();
        let index = RevocationIndex::load(&ca.join("index.txt")).unwrap();
        assert!(matches!(
            index.status(certificate.serial()),
            Some(IndexStatus::Revoked {
                reason: RevocationReason::KeyCompromise,
                ..
            })
        ));
        let error = revoke("superseded").unwrap_err();
        assert!(
            format!("{error:#}").contains("already revoked"),
            "{error:#}"
        );
        let error = pki(&["revoke", "--dir", ca_arg, "--serial", "0BADC0DE"]).unwrap_err();
        assert!(format!("{error:#}").contains("no certificate"), "{error:#}");
    }
}
