//! Each way a configuration can be wrong is rejected with its own error.

use std::time::Duration;

use passerelle_globalconf::{
    AcceptedSerial, Anchor, ConfError, GlobalConf, sign_configuration, verify_configuration,
};

use crate::support::{now, pki};

#[test]
fn a_good_configuration_is_accepted_and_round_trips() {
    let pki = pki("DEV");
    let conf = pki.conf("DEV", 7, now());
    let (bytes, signature) = pki.signed(&conf);
    let verified = verify_configuration(
        &bytes,
        &signature,
        &pki.anchor(),
        AcceptedSerial(Some(7)),
        now(),
    )
    .unwrap();
    assert_eq!(verified, conf);
    assert_eq!(GlobalConf::from_json(&bytes).unwrap(), conf);
    assert!(verified.is_member(&"DEV/GOV/HEALTH".parse().unwrap()));
    assert!(verified.has_subsystem(&"DEV/GOV/HEALTH/registry".parse().unwrap()));
    assert_eq!(verified.ca_certificates().len(), 2);
}

#[test]
fn each_defect_has_its_own_error() {
    let other_pki = pki("DEV");
    let pki = pki("DEV");
    let good = pki.conf("DEV", 10, now());
    let (bytes, signature) = pki.signed(&good);

    let mut tampered = bytes.clone();
    let position = tampered.windows(8).position(|w| w == b"Ministry").unwrap();
    tampered[position] = b'm';
    let other_key_signature =
        sign_configuration(&bytes, &other_pki.ca.config_signing().key).unwrap();
    let (foreign_bytes, foreign_signature) = pki.signed(&pki.conf("OTHER", 10, now()));
    let expired_at = now() + good.settings.config_validity();

    type Check = fn(&ConfError) -> bool;
    type Case = (
        &'static str,
        Vec<u8>,
        Vec<u8>,
        AcceptedSerial,
        std::time::SystemTime,
        Check,
    );
    let cases: Vec<Case> = vec![
        (
            "tampered bytes",
            tampered,
            signature.clone(),
            AcceptedSerial(None),
            now(),
            |e| matches!(e, ConfError::BadSignature { tried: 1 }),
        ),
        (
            "signed by another key",
            bytes.clone(),
            other_key_signature,
            AcceptedSerial(None),
            now(),
            |e| matches!(e, ConfError::BadSignature { .. }),
        ),
        (
            "another instance",
            foreign_bytes,
            foreign_signature,
            AcceptedSerial(None),
            now(),
            |e| matches!(e, ConfError::WrongInstance { expected, found } if expected == "DEV" && found == "OTHER"),
        ),
        (
            "lower serial",
            bytes.clone(),
            signature.clone(),
            AcceptedSerial(Some(11)),
            now(),
            |e| {
                matches!(
                    e,
                    ConfError::SerialWentBack {
                        accepted: 11,
                        received: 10
                    }
                )
            },
        ),
        (
            "expired",
            bytes.clone(),
            signature.clone(),
            AcceptedSerial(None),
            expired_at,
            |e| matches!(e, ConfError::Expired { serial: 10, .. }),
        ),
        (
            "anchor certificate expired",
            bytes.clone(),
            signature.clone(),
            AcceptedSerial(None),
            now() + Duration::from_secs(20 * 365 * 86_400),
            |e| matches!(e, ConfError::NoUsableAnchorCertificate { .. }),
        ),
    ];
    for (name, bytes, signature, accepted, at, check) in cases {
        let error =
            verify_configuration(&bytes, &signature, &pki.anchor(), accepted, at).unwrap_err();
        assert!(check(&error), "{name}: unexpected error {error}");
    }
    // One second before expiry it is still good.
    verify_configuration(
        &bytes,
        &signature,
        &pki.anchor(),
        AcceptedSerial(None),
        expired_at - Duration::from_secs(1),
    )
    .unwrap();
}

#[test]
fn expired_message_names_the_time() {
    let pki = pki("DEV");
    let (bytes, signature) = pki.signed(&pki.conf("DEV", 3, now()));
    let error = verify_configuration(
        &bytes,
        &signature,
        &pki.anchor(),
        AcceptedSerial(None),
        now() + Duration::from_secs(601),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "global configuration serial 3 expired at 2027-01-15T08:10:00Z"
    );
}

#[test]
fn key_rollover_accepts_any_anchor_certificate() {
    let old = pki("DEV");
    let new = pki("DEV");
    let mut anchor = old.anchor();
    anchor
        .verification_certificates
        .push(new.ca.config_signing().certificate.to_pem());
    let (bytes, signature) = new.signed(&new.conf("DEV", 1, now()));
    verify_configuration(&bytes, &signature, &anchor, AcceptedSerial(None), now()).unwrap();
    // The old anchor alone does not accept the new key.
    let error = verify_configuration(
        &bytes,
        &signature,
        &old.anchor(),
        AcceptedSerial(None),
        now(),
    )
    .unwrap_err();
    assert!(matches!(error, ConfError::BadSignature { .. }), "{error}");
}

#[test]
fn anchor_certificates_outside_their_validity_are_not_used() {
    let pki = pki("DEV");
    let (bytes, signature) = pki.signed(&pki.conf("DEV", 1, now()));
    let before = now() - Duration::from_secs(3 * 86_400);
    let error = verify_configuration(
        &bytes,
        &signature,
        &pki.anchor(),
        AcceptedSerial(None),
        before,
    )
    .unwrap_err();
    assert!(
        matches!(error, ConfError::NoUsableAnchorCertificate { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("is not valid before"), "{error}");
}

#[test]
fn documents_are_strict() {
    let pki = pki("DEV");
    let mut value: serde_json::Value =
        serde_json::from_slice(&pki.conf("DEV", 1, now()).to_json()).unwrap();
    value["surprise"] = serde_json::json!(1);
    let error = GlobalConf::from_json(&serde_json::to_vec(&value).unwrap()).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `surprise`"),
        "{error}"
    );

    let mut conf = pki.conf("DEV", 1, now());
    conf.members[0].id = "OTHER/GOV/HEALTH".parse().unwrap();
    conf.members[0].subsystems.clear();
    let error = GlobalConf::from_json(&conf.to_json()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("member OTHER/GOV/HEALTH is not of instance DEV"),
        "{error}"
    );

    let anchor = pki.anchor();
    assert_eq!(Anchor::from_json(&anchor.to_json()).unwrap(), anchor);
    let mut empty = anchor.clone();
    empty.verification_certificates.clear();
    assert!(
        Anchor::from_json(&empty.to_json())
            .unwrap_err()
            .to_string()
            .contains("no verification certificate")
    );
}
