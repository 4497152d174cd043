//! `passerelle audit`: export, verify and replay message-log archives, offline.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use passerelle_ids::{ServiceId, SubsystemId};
use passerelle_messagelog::{
    ExportFilter, ExportOptions, KeyRing, SignedConfiguration, VerifyOptions, archive_trust,
    describe_exchange, export_log, extract_exchange, find_exchanges, timeline, verify_archive,
};
use passerelle_pki::sealed_box::{OpeningKey, RecipientKey};

/// `println!` that returns an error (for example a closed pipe) instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

/// Exit code of `verify` when the evidence does not hold (1 is for usage and I/O errors).
const EXIT_EVIDENCE_INVALID: u8 = 2;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AuditCommand {
    /// Write a range of a message log to one self-contained archive file.
    #[command(after_help = "\
Examples:
  # Everything not yet exported, continuing the previous archive's chain:
  passerelle audit export --log /var/lib/passerelle/messagelog --previous 2025-05.pla -o 2025-06.pla

  # One client's exchanges in June (other entries become redacted links, so the chain still checks):
  passerelle audit export --log DIR --from 2025-06-01T00:00:00Z --to 2025-06-30T23:59:59Z \\
      --client BJ/GOV/MINEDU/schools --anchors ca.pem -o minedu-june.pla

  # Sealed for an auditor (their certificate or `openssl pkey -pubout` public key):
  passerelle audit export --log DIR --seal-to auditor.pub.pem -o 2025-06.pla.sealed

The archive carries the security server's cached global configuration (bytes and signature), its
approved CAs as trust anchors, its approved TSAs' certificates and its OCSP freshness, unless
--anchors / --tsa-anchors name the certificates explicitly.

Export reads the segment files only, never the index database: it works on the log of a running
security server (up to the last complete entry) as well as on a stopped one's.")]
    Export(Box<ExportArgs>),
    /// Check an archive offline: every checksum, hash, chain link, time-stamp span and token,
    /// signature, certificate chain, stapled certificate status, and (with --key) body.
    #[command(after_help = "\
Exit status: 0 when everything holds, 2 when the evidence does not (the first failing entry is
named: sequence number, message id, what failed), 1 when the archive cannot be read at all.

Examples:
  passerelle audit verify 2025-06.pla
  passerelle audit verify 2025-06.pla --key body-keys.toml --anchors instance-ca.pem
  passerelle audit verify 2025-06.pla --previous 2025-05.pla    # and that it continues May's
  passerelle audit verify 2025-06.pla.sealed --unseal-with auditor.pem
  passerelle audit verify 2025-06.pla --json | jq .failure")]
    Verify {
        /// The archive.
        file: PathBuf,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// The log's body-key file: also open every body and compare it with its digest.
        #[arg(long, value_name = "KEYFILE")]
        key: Option<PathBuf>,
        /// Extra trust anchors (PEM), besides those inside the archive.
        #[arg(long, value_name = "PEM")]
        anchors: Option<PathBuf>,
        /// Extra approved time-stamping authorities' certificates (PEM), besides those inside
        /// the archive: every checkpoint's RFC 3161 token is verified against them all
        /// (signature, chain at the token's time, imprint = the checkpoint's root). With none
        /// at all, tokens are only counted.
        #[arg(long, value_name = "PEM")]
        tsa_anchors: Option<PathBuf>,
        /// How old a stapled OCSP response may have been when its signature was logged, in
        /// seconds. Default: the archive's (the global configuration's `ocsp_freshness_secs` at
        /// export), else 3600.
        #[arg(long, value_name = "SECONDS")]
        ocsp_freshness_secs: Option<u64>,
        /// The archive this one continues: check that it starts right after that archive's last
        /// entry, with its last hash, and recompute the checkpoints over that archive's entries.
        #[arg(long, value_name = "ARCHIVE")]
        previous: Option<PathBuf>,
        /// The auditor's private key (PKCS#8 PEM), to open an archive sealed with --seal-to.
        #[arg(long, value_name = "PRIVATE-KEY")]
        unseal_with: Option<PathBuf>,
    },
    /// Show the trust material an archive carries (CA anchors, TSA certificates, global
    /// configuration), check it against the federation's anchor, and write it out as files.
    #[command(after_help = "\
Examples:
  passerelle audit trust 2025-06.pla
  # Check that the embedded configuration is signed by the federation, and that every embedded
  # CA and TSA certificate is approved in it:
  passerelle audit trust 2025-06.pla --globalconf-anchor anchor.json
  # Write anchors.pem, tsa-anchors.pem, globalconf.json and globalconf.json.sig for openssl:
  passerelle audit trust 2025-06.pla --extract trust/

Exit status: 0, or 2 when --globalconf-anchor is given and a check fails.")]
    Trust {
        /// The archive.
        file: PathBuf,
        /// The federation's anchor file (as given to security servers): verify the embedded
        /// configuration's signature with it (at the configuration's generation time), and that
        /// every embedded certificate is approved in that configuration.
        #[arg(long, value_name = "ANCHOR")]
        globalconf_anchor: Option<PathBuf>,
        /// Write the trust material into this directory.
        #[arg(long, value_name = "DIR")]
        extract: Option<PathBuf>,
        /// The auditor's private key (PKCS#8 PEM), to open an archive sealed with --seal-to.
        #[arg(long, value_name = "PRIVATE-KEY")]
        unseal_with: Option<PathBuf>,
    },
    /// Show an archive's exchanges as a timeline, or one exchange in full.
    #[command(after_help = "\
Examples:
  passerelle audit replay 2025-06.pla
  passerelle audit replay 2025-06.pla --message-id 5b2e0c1d --key body-keys.toml
  # Write one exchange's evidence as files for openssl (see docs/audit.md):
  passerelle audit replay 2025-06.pla --message-id 5b2e0c1d --extract evidence/")]
    Replay {
        /// The archive.
        file: PathBuf,
        /// Show this message's request and response in full.
        #[arg(long, value_name = "ID")]
        message_id: Option<String>,
        /// Body-key file, to decrypt bodies.
        #[arg(long, value_name = "KEYFILE")]
        key: Option<PathBuf>,
        /// With --message-id: write signing inputs, signatures, certificates (and bodies with
        /// --key) into this directory.
        #[arg(long, value_name = "DIR", requires = "message_id")]
        extract: Option<PathBuf>,
        /// Timeline as JSON lines.
        #[arg(long)]
        json: bool,
        /// The auditor's private key (PKCS#8 PEM), to open an archive sealed with --seal-to.
        #[arg(long, value_name = "PRIVATE-KEY")]
        unseal_with: Option<PathBuf>,
    },
}

/// Arguments of `passerelle audit export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The message-log directory (holds `segments/` and `index/`).
    #[arg(long, value_name = "DIR")]
    log: PathBuf,
    /// Requests received at or after this time (RFC 3339, or unix milliseconds).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    from: Option<u64>,
    /// Requests received at or before this time (RFC 3339, or unix milliseconds).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    to: Option<u64>,
    /// Show only this client subsystem's exchanges in full.
    #[arg(long, value_name = "SUBSYSTEM-ID")]
    client: Option<SubsystemId>,
    /// Show only this service's exchanges in full.
    #[arg(long, value_name = "SERVICE-ID")]
    service: Option<ServiceId>,
    /// Show only this message's exchange in full.
    #[arg(long, value_name = "ID")]
    message_id: Option<String>,
    /// The previous archive: this one starts right after it and names its last hash.
    #[arg(long, value_name = "ARCHIVE")]
    previous: Option<PathBuf>,
    /// CA certificates (PEM) to embed as trust anchors for the signers' chains. Default: the
    /// approved CAs of the security server's cached global configuration (see --globalconf).
    #[arg(long, value_name = "PEM")]
    anchors: Option<PathBuf>,
    /// Approved TSA certificates (PEM) to embed for checking the checkpoints' tokens. Default:
    /// the approved TSAs of the security server's cached global configuration.
    #[arg(long, value_name = "PEM")]
    tsa_anchors: Option<PathBuf>,
    /// The security server's global configuration cache directory (`conf_cache_dir`). Its
    /// configuration and signature are embedded, and its approved CAs and TSAs become the
    /// archive's anchors unless --anchors / --tsa-anchors are given.
    /// Default: `globalconf/` beside the log directory, when it exists.
    #[arg(long, value_name = "DIR")]
    globalconf: Option<PathBuf>,
    /// Encrypt the archive for an auditor: their EC P-256 public key (`PUBLIC KEY` PEM) or
    /// certificate. Only the matching private key opens it (`verify --unseal-with`).
    #[arg(long, value_name = "KEY")]
    seal_to: Option<PathBuf>,
    /// The archive to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

pub(crate) fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Export(arguments) => {
            let ExportArgs {
                log,
                from,
                to,
                client,
                service,
                message_id,
                previous,
                anchors,
                tsa_anchors,
                globalconf,
                seal_to,
                output,
            } = *arguments;
            let cached = trust_from_globalconf(&log, globalconf.as_deref())?;
            let anchors = match anchors {
                Some(path) => load_anchors(&path)?,
                None => cached
                    .as_ref()
                    .map(|cached| cached.anchors.clone())
                    .unwrap_or_default(),
            };
            let tsa_anchors = match tsa_anchors {
                Some(path) => load_anchors(&path)?,
                None => cached
                    .as_ref()
                    .map(|cached| cached.tsa_anchors.clone())
                    .unwrap_or_default(),
            };
            if anchors.is_empty() {
                eprintln!(
                    "warning: no trust anchors embedded (no --anchors, and no cached global \
                     configuration: give --globalconf): verifying will need --anchors"
                );
            }
            let seal_to = seal_to
                .map(|path| {
                    RecipientKey::load(&path)
                        .with_context(|| format!("reading the --seal-to key {}", path.display()))
                })
                .transpose()?;
            anyhow::ensure!(
                log.join("segments").is_dir(),
                "{} is not a message-log directory (it has no segments/)",
                log.display()
            );
            let options = ExportOptions {
                filter: ExportFilter {
                    from_ms: from,
                    to_ms: to,
                    client,
                    service,
                    message_id,
                },
                previous,
                anchors,
                tsa_anchors,
                ocsp_freshness_secs: cached.as_ref().map(|cached| cached.ocsp_freshness_secs),
                global_configuration: cached.map(|cached| cached.signed),
                seal_to,
            };
            let summary = export_log(&log, &options, &output, SystemTime::now())?;
            say!(
                "wrote {}: entries {}..={} ({} in full, {} redacted), last hash {}",
                output.display(),
                summary.first_sequence,
                summary.last_sequence,
                summary.full_entries,
                summary.redacted_entries,
                summary.last_hash
            );
            if summary.sealed {
                say!("sealed: only the private key matching --seal-to opens it");
            }
            if let Err(reason) = &summary.marked_exported {
                eprintln!("warning: retention will not count this export: {reason}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify {
            file,
            json,
            key,
            anchors,
            tsa_anchors,
            ocsp_freshness_secs,
            previous,
            unseal_with,
        } => {
            let keys = key.as_deref().map(KeyRing::load).transpose()?;
            let unseal = load_opening_key(unseal_with.as_deref())?;
            let anchors = match anchors {
                Some(path) => load_anchors(&path)?,
                None => Vec::new(),
            };
            let tsa_anchors = match tsa_anchors {
                Some(path) => load_anchors(&path)?,
                None => Vec::new(),
            };
            let progress = |count: u64| eprint!("\rverified {count} entries…");
            let options = VerifyOptions {
                keys: keys.as_ref(),
                anchors,
                tsa_anchors,
                token_verifier: None,
                ocsp_freshness: ocsp_freshness_secs.map(std::time::Duration::from_secs),
                progress: (!json).then_some(&progress as &dyn Fn(u64)),
                unseal: unseal.as_ref(),
                previous: previous.as_deref(),
            };
            let report = verify_archive(&file, &options)?;
            if !json && report.entries >= 65_536 {
                eprintln!();
            }
            if json {
                say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_report(&report)?;
            }
            Ok(if report.is_valid() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_EVIDENCE_INVALID)
            })
        }
        AuditCommand::Trust {
            file,
            globalconf_anchor,
            extract,
            unseal_with,
        } => {
            let unseal = load_opening_key(unseal_with.as_deref())?;
            let trust = archive_trust(&file, unseal.as_ref())?;
            let holds = show_trust(&trust, globalconf_anchor.as_deref())?;
            if let Some(dir) = extract {
                for path in trust.write_files(&dir)? {
                    say!("wrote {}", path.display());
                }
            }
            Ok(if holds {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_EVIDENCE_INVALID)
            })
        }
        AuditCommand::Replay {
            file,
            message_id,
            key,
            extract,
            json,
            unseal_with,
        } => {
            let keys = key.as_deref().map(KeyRing::load).transpose()?;
            let unseal = load_opening_key(unseal_with.as_deref())?;
            let unseal = unseal.as_ref();
            match (message_id, extract) {
                (Some(message_id), Some(dir)) => {
                    for extracted in
                        extract_exchange(&file, unseal, &message_id, keys.as_ref(), &dir)?
                    {
                        say!("{}", extracted.dir.display());
                        for path in extracted.files {
                            say!("  {}", path.display());
                        }
                    }
                }
                (Some(message_id), None) => {
                    let entries = find_exchanges(&file, unseal, &message_id)?;
                    anyhow::ensure!(
                        !entries.is_empty(),
                        "message {message_id} is not shown in full in {}",
                        file.display()
                    );
                    for entry in entries {
                        if let Some(record) = entry.exchange() {
                            say!(
                                "{}",
                                describe_exchange(entry.sequence, record, keys.as_ref())
                            );
                        }
                    }
                }
                (None, _) => {
                    let stdout = std::io::stdout();
                    let mut out = stdout.lock();
                    timeline(&file, unseal, json, &mut out)?;
                    out.flush()?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(report: &passerelle_messagelog::VerifyReport) -> std::io::Result<()> {
    match &report.failure {
        None => say!("OK: the archive holds"),
        Some(failure) => say!("FAILED: {failure}"),
    }
    if let Some(manifest) = &report.manifest {
        say!(
            "  range          entries {}..={}",
            manifest.first_sequence,
            manifest.last_sequence
        );
        if let Some(previous) = &manifest.previous_archive {
            say!(
                "  continues      archive ending at entry {} ({})",
                previous.last_sequence,
                previous.last_hash
            );
        }
    }
    if report.continues_previous {
        say!("  previous       continues the given earlier archive (link and checkpoints checked)");
    }
    say!(
        "  entries        {} ({} in full, {} redacted links)",
        report.entries,
        report.full_entries,
        report.redacted_entries
    );
    say!(
        "  signatures     {} checked, {} certificate chains validated",
        report.signatures_checked,
        report.certificate_chains_checked
    );
    say!(
        "  bodies         {} checked against their digests, {} not opened (no --key)",
        report.bodies_checked,
        report.bodies_not_opened
    );
    say!(
        "  checkpoints    {} roots recomputed; tokens: {} verified ({} TSA certificates), {} present but not verified",
        report.checkpoints_checked,
        report.tokens_verified,
        report.tsa_anchors,
        report.tokens_not_verified
    );
    say!(
        "  not stamped    {} entries after the last checkpoint",
        report.entries_not_timestamped
    );
    say!(
        "  OCSP responses {} stapled, {} verified (freshness {} s); {} signatures without a stapled status (not checked)",
        report.certificate_status_responses,
        report.certificate_statuses_verified,
        report.ocsp_freshness_secs,
        report.certificate_statuses_not_checked
    );
    say!(
        "  peer TLS auth  {} stapled statuses verified; {} records without one (not checked)",
        report.peer_authentication_statuses_verified,
        report.peer_authentication_statuses_not_checked
    );
    say!(
        "  global conf    {}",
        if report.global_configuration {
            "embedded (check it with `passerelle audit trust --globalconf-anchor`)"
        } else {
            "not embedded"
        }
    );
    if let Some(hash) = &report.last_hash {
        say!("  last hash      {hash}");
    }
    Ok(())
}

fn load_opening_key(path: Option<&std::path::Path>) -> anyhow::Result<Option<OpeningKey>> {
    path.map(|path| {
        OpeningKey::load(path)
            .with_context(|| format!("reading the --unseal-with key {}", path.display()))
    })
    .transpose()
}

/// What an export takes from a security server's cached global configuration.
struct CachedTrust {
    /// The approved CAs, roots and intermediates (DER).
    anchors: Vec<Vec<u8>>,
    /// The approved TSAs' certificates (DER).
    tsa_anchors: Vec<Vec<u8>>,
    ocsp_freshness_secs: u64,
    /// The configuration's bytes and detached signature, as cached.
    signed: SignedConfiguration,
}

/// The trust material of a security server's cached global configuration: `globalconf` when
/// given, else `globalconf/` beside the log directory when it exists, else none. The cache holds
/// only a configuration that verified against the anchor when it was stored; the auditor still
/// decides whether to trust what an archive carries (`passerelle audit trust`).
fn trust_from_globalconf(
    log: &std::path::Path,
    globalconf: Option<&std::path::Path>,
) -> anyhow::Result<Option<CachedTrust>> {
    let beside_log = log.parent().map(|parent| parent.join("globalconf"));
    let dir = match (globalconf, beside_log) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) if dir.is_dir() => dir,
        _ => {
            eprintln!(
                "warning: no global configuration embedded (no --globalconf, and no globalconf/ \
                 beside the log): tokens and anchors must be given to verify"
            );
            return Ok(None);
        }
    };
    let cached = passerelle_globalconf::ConfCache::new(&dir)
        .load()
        .with_context(|| {
            format!(
                "reading the cached global configuration in {}",
                dir.display()
            )
        })?
        .with_context(|| format!("{} holds no cached global configuration", dir.display()))?;
    let conf = passerelle_globalconf::GlobalConf::from_json(&cached.bytes)
        .with_context(|| format!("the cached global configuration in {}", dir.display()))?;
    let anchors: Vec<Vec<u8>> = conf
        .ca_certificates()
        .iter()
        .map(|certificate| certificate.der().to_vec())
        .collect();
    let tsa_anchors: Vec<Vec<u8>> = conf
        .tsa_certificates()
        .iter()
        .map(|(_, certificate)| certificate.der().to_vec())
        .collect();
    eprintln!(
        "embedding global configuration serial {} ({}): {} approved CA certificate(s), {} approved \
         TSA certificate(s), OCSP freshness {} s",
        conf.serial,
        dir.display(),
        anchors.len(),
        tsa_anchors.len(),
        conf.settings.ocsp_freshness_secs
    );
    Ok(Some(CachedTrust {
        anchors,
        tsa_anchors,
        ocsp_freshness_secs: conf.settings.ocsp_freshness_secs,
        signed: SignedConfiguration {
            bytes: cached.bytes,
            signature: cached.signature,
        },
    }))
}

/// Prints an archive's trust material; with the federation's anchor, checks the configuration's
/// signature and that every embedded certificate is approved in it. `Ok(false)` when a check fails.
fn show_trust(
    trust: &passerelle_messagelog::ArchiveTrust,
    globalconf_anchor: Option<&std::path::Path>,
) -> anyhow::Result<bool> {
    let describe = |der: &Vec<u8>| match passerelle_pki::Certificate::from_der(der.clone()) {
        Ok(certificate) => format!(
            "{} (sha256 {})",
            certificate.subject(),
            certificate.fingerprint_hex()
        ),
        Err(error) => format!("unparsable certificate: {error}"),
    };
    say!(
        "archive format {} version {}, entries {}..={}",
        trust.manifest.format,
        trust.manifest.version,
        trust.manifest.first_sequence,
        trust.manifest.last_sequence
    );
    say!("CA anchors ({})", trust.anchors.len());
    for der in &trust.anchors {
        say!("  {}", describe(der));
    }
    say!("TSA certificates ({})", trust.tsa_anchors.len());
    for der in &trust.tsa_anchors {
        say!("  {}", describe(der));
    }
    match trust.manifest.ocsp_freshness_secs {
        Some(seconds) => say!("OCSP freshness {seconds} s"),
        None => say!("OCSP freshness not recorded (verify applies 3600 s)"),
    }
    let Some(signed) = &trust.global_configuration else {
        say!("global configuration: not embedded");
        anyhow::ensure!(
            globalconf_anchor.is_none(),
            "the archive carries no global configuration to check with --globalconf-anchor"
        );
        return Ok(true);
    };
    let conf = passerelle_globalconf::GlobalConf::from_json(&signed.bytes)
        .context("the embedded global configuration does not parse")?;
    say!(
        "global configuration: instance {}, serial {}, generated {} ({} bytes, signature {} bytes)",
        conf.instance,
        conf.serial,
        passerelle_globalconf::format_rfc3339(conf.generated_at),
        signed.bytes.len(),
        signed.signature.len()
    );
    let Some(anchor_path) = globalconf_anchor else {
        return Ok(true);
    };
    let anchor = passerelle_globalconf::Anchor::load(anchor_path)
        .with_context(|| format!("reading the anchor {}", anchor_path.display()))?;
    let mut holds = true;
    // At the generation time: the configuration was signed then, and anchor certificates may
    // have expired since.
    match passerelle_globalconf::verify_signed(
        &signed.bytes,
        &signed.signature,
        &anchor,
        conf.generated_at,
    ) {
        Ok(_) => say!("  signature      OK with {}", anchor_path.display()),
        Err(error) => {
            holds = false;
            say!("  signature      FAILED: {error}");
        }
    }
    let approved_cas: Vec<Vec<u8>> = conf
        .ca_certificates()
        .iter()
        .map(|certificate| certificate.der().to_vec())
        .collect();
    let approved_tsas: Vec<Vec<u8>> = conf
        .tsa_certificates()
        .iter()
        .map(|(_, certificate)| certificate.der().to_vec())
        .collect();
    for (what, embedded, approved) in [
        ("CA anchor", &trust.anchors, &approved_cas),
        ("TSA certificate", &trust.tsa_anchors, &approved_tsas),
    ] {
        for der in embedded.iter().filter(|der| !approved.contains(der)) {
            holds = false;
            say!(
                "  NOT APPROVED   {what} {} is not in the configuration",
                describe(der)
            );
        }
    }
    if holds {
        say!(
            "  approved       every embedded CA anchor and TSA certificate is in the configuration"
        );
    }
    Ok(holds)
}

fn load_anchors(path: &std::path::Path) -> anyhow::Result<Vec<Vec<u8>>> {
    let certificates = passerelle_pki::Certificate::load(path)
        .with_context(|| format!("reading trust anchors from {}", path.display()))?;
    Ok(certificates
        .iter()
        .map(|certificate| certificate.der().to_vec())
        .collect())
}

fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(millis) = text.parse::<u64>() {
        return Ok(millis);
    }
    let time = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!("expected RFC 3339 (2025-06-01T00:00:00Z) or unix milliseconds: {e}")
        })?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| "time before 1970".to_owned())
}
