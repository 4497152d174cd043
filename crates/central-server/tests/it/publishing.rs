//! Publishing: a real client follows the central server through an outage and a restart, and
//! stock openssl verifies the signature with the anchor's certificate.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use passerelle_central_server::{CentralConfig, anchor_for};
use passerelle_globalconf::{Anchor, ConfClient, ConfError, Fetcher, HttpFetcher, PollPolicy};

use crate::support::Federation;

#[tokio::test]
async fn the_client_rides_out_an_outage_and_recovers_after_a_restart() {
    let mut federation = Federation::start(false).await;
    federation.populate().await;
    let anchor = Anchor::from_json(&federation.central().anchor().to_json()).unwrap();
    let public = federation.central().public_addr;
    assert_eq!(
        anchor.configuration_url,
        format!("http://{public}/globalconf/DEV/globalconf.json")
    );
    let cache = tempfile::tempdir().unwrap();
    let start = federation.clock.now();
    let client = ConfClient::new(
        anchor,
        cache.path(),
        Arc::new(HttpFetcher::default()),
        PollPolicy::default(),
        start,
    );
    let first = client.refresh(start).await.unwrap();
    assert_eq!(first.members.len(), 2);
    assert_eq!(
        first.expires_at,
        first.generated_at + Duration::from_secs(600)
    );

    federation.stop().await;
    federation.clock.advance(Duration::from_secs(300));
    let error = client.refresh(federation.clock.now()).await.unwrap_err();
    assert!(matches!(error, ConfError::Fetch { .. }), "{error}");
    assert_eq!(
        client.current(federation.clock.now()).unwrap().serial,
        first.serial
    );

    federation.clock.advance(Duration::from_secs(300));
    let error = client.current(federation.clock.now()).unwrap_err();
    assert!(
        matches!(error, ConfError::Expired { serial, .. } if serial == first.serial),
        "{error}"
    );
    assert!(!client.status(federation.clock.now()).valid);

    federation.restart(public).await;
    let recovered = client.refresh(federation.clock.now()).await.unwrap();
    assert!(
        recovered.serial > first.serial,
        "the serial keeps growing across restarts"
    );
    assert_eq!(
        recovered.members, first.members,
        "the registry survived the restart"
    );
    assert_eq!(
        client.current(federation.clock.now()).unwrap().serial,
        recovered.serial
    );
    federation.stop().await;
}

#[tokio::test]
async fn regeneration_keeps_the_configuration_fresh() {
    let federation = Federation::start(false).await;
    let before = federation.central().published().unwrap();
    federation.clock.advance(Duration::from_secs(120));
    let after = federation.central().publish_now().unwrap();
    assert_eq!(after.serial, before.serial + 1);
    assert_eq!(
        after.expires_at,
        before.expires_at + Duration::from_secs(120)
    );
}

#[tokio::test]
async fn openssl_verifies_the_signature_with_the_anchor_certificate() {
    let federation = Federation::start(false).await;
    federation.populate().await;
    let anchor = federation.central().anchor();
    let fetcher = HttpFetcher::default();
    let bytes = fetcher.fetch(&anchor.configuration_url).await.unwrap();
    let signature = fetcher.fetch(&anchor.signature_url).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("anchor.json"), anchor.to_json()).unwrap();
    std::fs::write(path("globalconf.json"), &bytes).unwrap();
    std::fs::write(path("globalconf.json.sig"), &signature).unwrap();
    // As docs/globalconf.md shows: the certificate from the anchor, its public key, then dgst.
    std::fs::write(
        path("anchor-cert.pem"),
        &anchor.verification_certificates[0],
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let extracted = openssl(&[
        "x509",
        "-in",
        "anchor-cert.pem",
        "-pubkey",
        "-noout",
        "-out",
        "pub.pem",
    ]);
    assert!(
        extracted.status.success(),
        "{}",
        String::from_utf8_lossy(&extracted.stderr)
    );
    let verified = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        "pub.pem",
        "-signature",
        "globalconf.json.sig",
        "globalconf.json",
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&verified.stdout).trim(),
        "Verified OK"
    );

    let mut tampered = bytes.clone();
    tampered.extend_from_slice(b" ");
    std::fs::write(path("globalconf.json"), &tampered).unwrap();
    let refused = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        "pub.pem",
        "-signature",
        "globalconf.json.sig",
        "globalconf.json",
    ]);
    assert!(!refused.status.success());
}

#[tokio::test]
async fn the_offline_anchor_matches_the_served_one() {
    let federation = Federation::start(false).await;
    let config = CentralConfig::load(&federation.config_path).unwrap();
    let offline = anchor_for(&config, federation.clock.now()).unwrap();
    let served = federation.central().anchor();
    assert_eq!(
        offline.verification_certificates,
        served.verification_certificates
    );
    assert_eq!(offline.instance, served.instance);
    let _ = federation.dir.path();
}
