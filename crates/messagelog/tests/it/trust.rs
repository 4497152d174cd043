//! Archives carry their trust material, and `verify` checks the time-stamp tokens and the stapled
//! OCSP responses with it: real tokens and responses from the development CA's TSA and
//! responder (`passerelle_pki::{tsp, ocsp}::respond`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_messagelog::{
    ArchiveFrame, Evidence, ExchangeRecord, ExportFilter, ExportOptions, FailureKind,
    PeerAuthentication, Sha256Hash, SignedConfiguration, Timestamper, VerifyOptions, VerifyReport,
    archive_trust, crc32c, export_log, verify_archive,
};
use passerelle_pki::devca::{
    self, Credential, DevCa, ExistingCa, IssueRequest, LeafKey, LeafProfile, Validity,
};
use passerelle_pki::revocation::{RevocationIndex, RevocationReason};
use passerelle_pki::{Certificate, ocsp, tsp};

use crate::common::{Signer, evidence, open, record, signer};

/// The freshness recorded in the archives of these tests.
const FRESHNESS_SECS: u64 = 600;

/// What the stand-in TSA does with the imprint it is asked to stamp.
#[derive(Clone, Copy)]
enum Stamp {
    Honest,
    /// Stamps another imprint than the checkpoint's root.
    OtherImprint,
    /// Returns the token with one byte of its signature altered.
    AlteredSignature,
}

/// A TSA answering with real RFC 3161 tokens signed by `tsa`.
struct DevTsa<'a> {
    tsa: &'a Credential,
    stamp: Stamp,
}

impl Timestamper for DevTsa<'_> {
    fn timestamp(&self, imprint: &[u8; 32]) -> Result<Vec<u8>, String> {
        let mut imprint = *imprint;
        if let Stamp::OtherImprint = self.stamp {
            imprint[0] ^= 1;
        }
        let request = tsp::request(&imprint, None).map_err(|e| e.to_string())?;
        let response = tsp::respond(&request, self.tsa, &[1], SystemTime::now());
        let mut token = tsp::token_from_response(&response).map_err(|e| e.to_string())?;
        if let Stamp::AlteredSignature = self.stamp {
            // The token ends with the signer's signature value.
            let last = token.len() - 1;
            token[last] ^= 1;
        }
        Ok(token)
    }
}

fn leaf(signer: &Signer) -> Certificate {
    Certificate::from_der(signer.chain[0].clone()).unwrap()
}

fn issuer(signer: &Signer) -> &Certificate {
    &signer.ca.intermediate().certificate
}

fn index(ca: &DevCa) -> RevocationIndex {
    RevocationIndex::load(&ca.path(devca::files::INDEX)).unwrap()
}

/// An OCSP response for `certificate` from `index`, signed by `responder`, dated `at`.
fn status_of(
    signer: &Signer,
    certificate: &Certificate,
    index: &RevocationIndex,
    responder: &Credential,
    at: SystemTime,
) -> Vec<u8> {
    let request = ocsp::request(certificate, issuer(signer)).unwrap();
    ocsp::respond(&request, issuer(signer), index, responder, at)
}

fn good_status(signer: &Signer, at: SystemTime) -> Vec<u8> {
    status_of(
        signer,
        &leaf(signer),
        &index(&signer.ca),
        signer.ca.ocsp(),
        at,
    )
}

fn stranger_ca() -> (tempfile::TempDir, DevCa) {
    let dir = tempfile::tempdir().unwrap();
    let ca = DevCa::init(
        dir.path(),
        "BJ",
        Validity::days_from(SystemTime::now(), 30),
        ExistingCa::Refuse,
    )
    .unwrap();
    (dir, ca)
}

/// How to build a test archive.
struct Build<'a> {
    tsa: DevTsa<'a>,
    /// The stapled status of entry 3's response (good when `None`).
    status_of_entry_3: Option<Vec<u8>>,
    /// The peer authentication status of every exchange (none when `None`), and of entry 3's
    /// in place of it when given.
    peer_status: Option<(Vec<u8>, Option<Vec<u8>>)>,
    /// TSA certificates embedded in the archive.
    tsa_anchors: Vec<Vec<u8>>,
}

/// Entries 0..=3 exchanges, 4 checkpoint, 5 exchange, 6 checkpoint; every part signed with a
/// good stapled status, except entry 2's request, which has none (a CA without responder).
fn build(signer: &Signer, build: Build<'_>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"), None);
    let exchange = |index: u64| -> ExchangeRecord {
        let mut exchange = record(index, Some(signer), true);
        let good = good_status(signer, SystemTime::now());
        exchange.request.certificate_status = (index != 2).then(|| good.clone().into());
        exchange.response.certificate_status = match (index, &build.status_of_entry_3) {
            (3, Some(status)) => Some(status.clone().into()),
            _ => Some(good.into()),
        };
        exchange.peer_authentication = build.peer_status.as_ref().map(|(every, of_3)| {
            PeerAuthentication {
                // The signer's certificate stands in for the peer's TLS certificate.
                certificate_chain: evidence(&signer.chain),
                certificate_status: Some(
                    match (index, of_3) {
                        (3, Some(status)) => status.clone(),
                        _ => every.clone(),
                    }
                    .into(),
                ),
            }
        });
        exchange
    };
    for index in 0..4 {
        log.append(exchange(index)).wait().unwrap();
    }
    log.checkpoint(&build.tsa, SystemTime::now())
        .unwrap()
        .unwrap();
    log.append(exchange(5)).wait().unwrap();
    log.checkpoint(&build.tsa, SystemTime::now())
        .unwrap()
        .unwrap();
    let archive = dir.path().join("archive.pla");
    let options = ExportOptions {
        anchors: vec![signer.anchor.clone()],
        tsa_anchors: build.tsa_anchors,
        global_configuration: Some(signed_configuration(&signer.ca)),
        ocsp_freshness_secs: Some(FRESHNESS_SECS),
        ..Default::default()
    };
    export_log(log.dir(), &options, &archive, SystemTime::now()).unwrap();
    (dir, archive)
}

/// Stand-in configuration bytes signed as the central server signs its configuration (DER
/// ECDSA P-256 SHA-256 by the configuration-signing key); this crate never parses them.
fn signed_configuration(ca: &DevCa) -> SignedConfiguration {
    let bytes = br#"{"instance":"BJ","serial":7}"#.to_vec();
    let signature = ca.config_signing().key.sign(&bytes).unwrap();
    SignedConfiguration { bytes, signature }
}

fn honest(signer: &Signer) -> Build<'_> {
    Build {
        tsa: DevTsa {
            tsa: signer.ca.tsa(),
            stamp: Stamp::Honest,
        },
        status_of_entry_3: None,
        peer_status: None,
        tsa_anchors: vec![signer.ca.tsa().certificate.der().to_vec()],
    }
}

fn verify(archive: &Path, options: &VerifyOptions<'_>) -> VerifyReport {
    verify_archive(archive, options).unwrap()
}

#[test]
fn an_archive_with_its_tsa_certificates_verifies_tokens_and_statuses_with_no_extra_options() {
    let signer = signer();
    let (_dir, archive) = build(&signer, honest(&signer));
    let report = verify(&archive, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!(report.tokens_verified, 2);
    assert_eq!(report.tokens_not_verified, 0);
    assert_eq!(report.tsa_anchors, 1);
    // 5 exchanges, 2 parts each, all signed; entry 2's request has no stapled status.
    assert_eq!(report.certificate_status_responses, 9);
    assert_eq!(report.certificate_statuses_verified, 9);
    assert_eq!(report.certificate_statuses_not_checked, 1);
    assert_eq!(report.ocsp_freshness_secs, FRESHNESS_SECS);
    assert!(report.global_configuration);
    assert_eq!(report.manifest.unwrap().version, 3);
}

#[test]
fn tsa_certificates_given_to_verify_add_to_the_archives() {
    let signer = signer();
    let mut without = honest(&signer);
    without.tsa_anchors = Vec::new();
    let (_dir, archive) = build(&signer, without);
    let report = verify(&archive, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!((report.tokens_verified, report.tokens_not_verified), (0, 2));

    let options = VerifyOptions {
        tsa_anchors: vec![signer.ca.tsa().certificate.der().to_vec()],
        ..Default::default()
    };
    let report = verify(&archive, &options);
    assert_eq!(report.failure, None);
    assert_eq!((report.tokens_verified, report.tokens_not_verified), (2, 0));
}

#[test]
fn a_token_from_a_tsa_not_in_the_anchors_fails_naming_its_checkpoint() {
    let signer = signer();
    let (_stranger_dir, stranger) = stranger_ca();
    let mut build_with = honest(&signer);
    build_with.tsa.tsa = stranger.tsa();
    let (_dir, archive) = build(&signer, build_with);
    let failure = verify(&archive, &VerifyOptions::default()).failure.unwrap();
    assert_eq!(failure.kind, FailureKind::Timestamp, "{failure}");
    assert_eq!(failure.sequence, Some(4), "{failure}");
    assert!(
        failure.detail.contains("checkpoint over entries 0..=3")
            && failure.detail.contains("not an approved tsa"),
        "{failure}"
    );

    // The same tokens verify once the auditor approves that TSA.
    let options = VerifyOptions {
        tsa_anchors: vec![stranger.tsa().certificate.der().to_vec()],
        ..Default::default()
    };
    assert_eq!(verify(&archive, &options).failure, None);
}

#[test]
fn a_token_over_another_imprint_or_with_an_altered_signature_fails() {
    // Altering a token after it was logged breaks the chain (`Hash`) before the token is looked
    // at; so the tokens here are bad as the TSA (or a forger) gave them, before logging.
    for (stamp, why) in [
        (Stamp::OtherImprint, "time-stamp token covers"),
        (Stamp::AlteredSignature, "signature is invalid"),
    ] {
        let signer = signer();
        let mut build_with = honest(&signer);
        build_with.tsa.stamp = stamp;
        let (_dir, archive) = build(&signer, build_with);
        let failure = verify(&archive, &VerifyOptions::default()).failure.unwrap();
        assert_eq!(failure.kind, FailureKind::Timestamp, "{failure}");
        assert_eq!(failure.sequence, Some(4), "{failure}");
        assert!(
            failure.detail.contains("checkpoint over entries 0..=3")
                && failure.detail.contains(why),
            "{failure}"
        );
    }
}

#[test]
fn stapled_statuses_that_do_not_hold_fail_and_name_their_record() {
    let signer = signer();
    let (_stranger_dir, stranger) = stranger_ca();
    let now = SystemTime::now();
    let mut revoked_index = index(&signer.ca);
    revoked_index
        .revoke(
            &leaf(&signer).serial_hex(),
            RevocationReason::KeyCompromise,
            now - Duration::from_secs(60),
        )
        .unwrap();
    let other_leaf = signer
        .ca
        .issue(&IssueRequest {
            profile: LeafProfile::Sign {
                member: "BJ/GOV/MINEDU".parse().unwrap(),
            },
            validity: Validity::days_from(now, 10),
            key: LeafKey::Generate,
        })
        .unwrap()
        .certificate;
    let cases = [
        (
            "revoked",
            status_of(
                &signer,
                &leaf(&signer),
                &revoked_index,
                signer.ca.ocsp(),
                now,
            ),
            FailureKind::CertificateRevoked,
        ),
        (
            "unknown",
            status_of(
                &signer,
                &leaf(&signer),
                &RevocationIndex::parse(""),
                signer.ca.ocsp(),
                now,
            ),
            FailureKind::CertificateStatusUnknown,
        ),
        (
            "stale",
            good_status(&signer, now - Duration::from_secs(20 * 60)),
            FailureKind::CertificateStatusStale,
        ),
        (
            "forged",
            status_of(
                &signer,
                &leaf(&signer),
                &index(&signer.ca),
                stranger.ocsp(),
                now,
            ),
            FailureKind::CertificateStatusInvalid,
        ),
        (
            "for another certificate",
            status_of(
                &signer,
                &other_leaf,
                &index(&signer.ca),
                signer.ca.ocsp(),
                now,
            ),
            FailureKind::CertificateStatusInvalid,
        ),
    ];
    for (case, status, kind) in cases {
        let mut build_with = honest(&signer);
        build_with.status_of_entry_3 = Some(status);
        let (_dir, archive) = build(&signer, build_with);
        let report = verify(&archive, &VerifyOptions::default());
        let failure = report.failure.unwrap();
        assert_eq!(failure.kind, kind, "{case}: {failure}");
        assert_eq!(failure.sequence, Some(3), "{case}: {failure}");
        assert_eq!(failure.message_id.as_deref(), Some("msg-3"), "{case}");
        assert!(
            failure
                .detail
                .starts_with("response: stapled certificate status of"),
            "{case}: {failure}"
        );
        // Entries 0..=2 (2 + 2 + 1 statuses) and entry 3's request were checked before.
        assert_eq!(report.certificate_statuses_verified, 6, "{case}");

        if case == "stale" {
            // Twenty minutes old is within a freshness of an hour.
            let options = VerifyOptions {
                ocsp_freshness: Some(Duration::from_secs(3600)),
                ..Default::default()
            };
            assert_eq!(verify(&archive, &options).failure, None);
        }
    }
}

#[test]
fn a_status_is_judged_at_the_time_its_signature_was_logged_not_now() {
    let signer = signer();
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir.path().join("log"), None);
    let thirty_minutes_ago = SystemTime::now() - Duration::from_secs(30 * 60);
    let mut exchange = record(0, Some(&signer), true);
    exchange.request_received_at_ms = thirty_minutes_ago
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    exchange.response_sent_at_ms = exchange.request_received_at_ms + 7;
    let fresh_then = good_status(&signer, thirty_minutes_ago - Duration::from_secs(60));
    exchange.request.certificate_status = Some(fresh_then.clone().into());
    exchange.response.certificate_status = Some(fresh_then.into());
    log.append(exchange).wait().unwrap();
    let archive = dir.path().join("archive.pla");
    let options = ExportOptions {
        anchors: vec![signer.anchor.clone()],
        ocsp_freshness_secs: Some(FRESHNESS_SECS),
        ..Default::default()
    };
    export_log(log.dir(), &options, &archive, SystemTime::now()).unwrap();
    let report = verify(&archive, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!(report.certificate_statuses_verified, 2);
}

/// Rewrites a version 2 archive as version 1 wrote it: header version 1, a manifest without the
/// version 2 fields, no TSA certificate and no global configuration frames.
fn as_version_1(archive: &Path, out: &Path) {
    let bytes = std::fs::read(archive).unwrap();
    let mut rewritten = bytes[..16].to_vec();
    rewritten[8..12].copy_from_slice(&1u32.to_le_bytes());
    let mut at = 16;
    while at < bytes.len() {
        let length = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let mut payload = bytes[at + 8..at + 8 + length].to_vec();
        at += 8 + length;
        match payload[0] {
            1 => {
                let mut manifest: serde_json::Value =
                    serde_json::from_slice(&payload[1..]).unwrap();
                let fields = manifest.as_object_mut().unwrap();
                for field in ["tsa_anchors", "global_configuration", "ocsp_freshness_secs"] {
                    fields.remove(field).unwrap();
                }
                fields.insert("version".into(), 1.into());
                payload = [vec![1u8], serde_json::to_vec(&manifest).unwrap()].concat();
            }
            8..=10 => continue,
            _ => {}
        }
        rewritten.extend((payload.len() as u32).to_le_bytes());
        rewritten.extend(crc32c(&payload).to_le_bytes());
        rewritten.extend(payload);
    }
    std::fs::write(out, rewritten).unwrap();
}

#[test]
fn a_version_1_archive_still_verifies() {
    let signer = signer();
    let (dir, archive) = build(&signer, honest(&signer));
    let old = dir.path().join("old.pla");
    as_version_1(&archive, &old);
    let report = verify(&old, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!(report.manifest.unwrap().version, 1);
    assert_eq!((report.tokens_verified, report.tokens_not_verified), (0, 2));
    assert!(!report.global_configuration);
    // No freshness recorded: the documented default applies, and the statuses are checked.
    assert_eq!(report.ocsp_freshness_secs, 3600);
    assert_eq!(report.certificate_statuses_verified, 9);
    let options = VerifyOptions {
        tsa_anchors: vec![signer.ca.tsa().certificate.der().to_vec()],
        ..Default::default()
    };
    assert_eq!(verify(&old, &options).tokens_verified, 2);
}

#[test]
fn trust_frames_must_be_those_the_manifest_announces() {
    let signer = signer();
    let (dir, archive) = build(&signer, honest(&signer));
    // Drop the TSA certificate but keep the manifest that announces it.
    let mut reader = passerelle_messagelog::ArchiveReader::open(&archive, None).unwrap();
    let stripped = dir.path().join("stripped.pla");
    let mut writer =
        passerelle_messagelog::ArchiveWriter::new(std::fs::File::create(&stripped).unwrap())
            .unwrap();
    while let Some(frame) = reader.next_frame().unwrap() {
        if !matches!(frame, ArchiveFrame::TsaAnchor(_)) {
            writer.write(&frame).unwrap();
        }
    }
    drop(writer);
    let failure = verify(&stripped, &VerifyOptions::default())
        .failure
        .unwrap();
    assert_eq!(failure.kind, FailureKind::Manifest, "{failure}");
}

#[test]
fn the_embedded_global_configuration_checks_with_openssl() {
    let signer = signer();
    let (dir, archive) = build(&signer, honest(&signer));
    let trust = archive_trust(&archive, None).unwrap();
    assert_eq!(trust.anchors, vec![signer.anchor.clone()]);
    assert_eq!(
        trust.tsa_anchors,
        vec![signer.ca.tsa().certificate.der().to_vec()]
    );
    assert_eq!(trust.manifest.ocsp_freshness_secs, Some(FRESHNESS_SECS));
    let out = dir.path().join("trust");
    let files = trust.write_files(&out).unwrap();
    assert_eq!(files.len(), 4);
    std::fs::write(
        out.join("anchor-cert.pem"),
        signer.ca.config_signing().certificate.to_pem(),
    )
    .unwrap();
    // The commands of docs/globalconf.md, on the extracted files.
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&out)
            .output()
            .expect("the openssl command-line tool must be installed to run these tests");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&[
        "x509",
        "-in",
        "anchor-cert.pem",
        "-pubkey",
        "-noout",
        "-out",
        "pub.pem",
    ]);
    let verified = run(&[
        "dgst",
        "-sha256",
        "-verify",
        "pub.pem",
        "-signature",
        "globalconf.json.sig",
        "globalconf.json",
    ]);
    assert!(verified.contains("Verified OK"), "{verified}");
}

#[test]
fn the_peers_stapled_authentication_status_is_verified_and_a_revoked_one_fails_naming_the_record() {
    let signer = signer();
    let now = SystemTime::now();
    let mut with_peers = honest(&signer);
    with_peers.peer_status = Some((good_status(&signer, now), None));
    let (_dir, archive) = build(&signer, with_peers);
    let report = verify(&archive, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!(report.peer_authentication_statuses_verified, 5);
    assert_eq!(report.peer_authentication_statuses_not_checked, 0);
    assert_eq!(report.certificate_statuses_verified, 9);

    // Records without the peer's evidence are counted, not failed.
    let (_dir, archive) = build(&signer, honest(&signer));
    let report = verify(&archive, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!(report.peer_authentication_statuses_verified, 0);
    assert_eq!(report.peer_authentication_statuses_not_checked, 5);

    let mut revoked_index = index(&signer.ca);
    revoked_index
        .revoke(
            &leaf(&signer).serial_hex(),
            RevocationReason::KeyCompromise,
            now - Duration::from_secs(60),
        )
        .unwrap();
    let revoked = status_of(
        &signer,
        &leaf(&signer),
        &revoked_index,
        signer.ca.ocsp(),
        now,
    );
    let mut with_revoked = honest(&signer);
    with_revoked.peer_status = Some((good_status(&signer, now), Some(revoked)));
    let (_dir, archive) = build(&signer, with_revoked);
    let report = verify(&archive, &VerifyOptions::default());
    let failure = report.failure.unwrap();
    assert_eq!(failure.kind, FailureKind::CertificateRevoked, "{failure}");
    assert_eq!(failure.sequence, Some(3), "{failure}");
    assert_eq!(failure.message_id.as_deref(), Some("msg-3"));
    assert!(
        failure
            .detail
            .starts_with("peer authentication: stapled certificate status of"),
        "{failure}"
    );
    assert_eq!(report.peer_authentication_statuses_verified, 3);
}

/// The frames of an archive, rewritten into `name` after `change`.
fn rewritten(
    dir: &Path,
    archive: &Path,
    name: &str,
    mut change: impl FnMut(ArchiveFrame) -> Option<ArchiveFrame>,
) -> PathBuf {
    let mut reader = passerelle_messagelog::ArchiveReader::open(archive, None).unwrap();
    let path = dir.join(name);
    let mut writer =
        passerelle_messagelog::ArchiveWriter::new(std::fs::File::create(&path).unwrap()).unwrap();
    while let Some(frame) = reader.next_frame().unwrap() {
        if let Some(frame) = change(frame) {
            writer.write(&frame).unwrap();
        }
    }
    path
}

#[test]
fn certificates_and_statuses_are_stored_once_and_travel_in_evidence_frames() {
    use base64::Engine as _;
    let signer = signer();
    let (dir, archive) = build(&signer, honest(&signer));
    let log_dir = dir.path().join("log");

    // The segments name the signer's certificate; its bytes are in the evidence store only.
    let certificate = base64::engine::general_purpose::STANDARD.encode(&signer.chain[0]);
    let mut segments = Vec::new();
    for file in std::fs::read_dir(log_dir.join("segments")).unwrap() {
        segments.extend(std::fs::read(file.unwrap().path()).unwrap());
    }
    let contains = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle)
    };
    assert!(!contains(&segments, certificate.as_bytes()));
    let named = Sha256Hash::of(&signer.chain[0]);
    assert!(contains(
        &segments,
        format!("\"sha256:{named}\"").as_bytes()
    ));
    let stored = std::fs::read(log_dir.join("evidence").join(named.to_hex())).unwrap();
    assert_eq!(stored, signer.chain[0]);

    // The archive carries each piece once, before the first entry that names it, and the log
    // hands records back with the bytes in place.
    let log = open(&log_dir, None);
    let entry = log.entry(0).unwrap();
    let record = entry.exchange().unwrap();
    let chain = &record.request.signature.as_ref().unwrap().certificate_chain;
    assert_eq!(chain[0], Evidence::Der(signer.chain[0].clone()));
    let mut reader = passerelle_messagelog::ArchiveReader::open(&archive, None).unwrap();
    let (mut carried, mut seen_before_entries) = (Vec::new(), false);
    while let Some(frame) = reader.next_frame().unwrap() {
        match frame {
            ArchiveFrame::Evidence(der) => carried.push(Sha256Hash::of(&der)),
            ArchiveFrame::Entry { .. } if carried.is_empty() => seen_before_entries = true,
            _ => {}
        }
    }
    assert!(!seen_before_entries, "an entry came before its evidence");
    let mut distinct = carried.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), carried.len(), "evidence carried twice");
    assert!(carried.contains(&named));
    let report = verify(&archive, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!(report.certificate_statuses_verified, 9);

    // An export that shows one exchange (records decoded to filter them) carries its evidence.
    let one = dir.path().join("one.pla");
    let filter = ExportFilter {
        message_id: Some("msg-3".into()),
        ..Default::default()
    };
    log.export(
        &filter,
        None,
        std::slice::from_ref(&signer.anchor),
        &one,
        SystemTime::now(),
    )
    .unwrap();
    let report = verify(&one, &VerifyOptions::default());
    assert_eq!(report.failure, None);
    assert_eq!(
        (report.exchanges, report.certificate_statuses_verified),
        (1, 2)
    );
}

#[test]
fn evidence_missing_from_an_archive_or_altered_fails_verification() {
    let signer = signer();
    let (dir, archive) = build(&signer, honest(&signer));
    let dropped = rewritten(dir.path(), &archive, "dropped.pla", |frame| {
        (!matches!(frame, ArchiveFrame::Evidence(_))).then_some(frame)
    });
    let altered = rewritten(dir.path(), &archive, "altered.pla", |frame| match frame {
        ArchiveFrame::Evidence(mut der) => {
            let last = der.len() - 1;
            der[last] ^= 1;
            Some(ArchiveFrame::Evidence(der))
        }
        other => Some(other),
    });
    for path in [dropped, altered] {
        let failure = verify(&path, &VerifyOptions::default()).failure.unwrap();
        assert_eq!(failure.kind, FailureKind::Evidence, "{failure}");
        assert_eq!(failure.sequence, Some(0), "{failure}");
        assert!(failure.detail.contains("sha256:"), "{failure}");
    }
}
