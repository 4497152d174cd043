//! Signing the configuration bytes and verifying them against an anchor.
//!
//! The signature is detached and raw: an ASN.1/DER ECDSA P-256 SHA-256 signature over the exact
//! served bytes, so `openssl dgst -sha256 -verify key.pem -signature globalconf.json.sig
//! globalconf.json` checks it with the public key of an anchor certificate.

use std::time::SystemTime;

use passerelle_pki::{Certificate, Purpose, SigningKey, validate_chain};

use crate::anchor::Anchor;
use crate::error::ConfError;
use crate::model::GlobalConf;
use crate::timefmt::format_rfc3339;

/// Signs served configuration bytes with the configuration-signing key.
pub fn sign_configuration(bytes: &[u8], key: &SigningKey) -> Result<Vec<u8>, ConfError> {
    Ok(key.sign(bytes)?)
}

/// What a verifier already knows: the highest serial it accepted, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcceptedSerial(pub Option<u64>);

/// Verifies `bytes` and `signature` against `anchor` at `now`, in this order: signature by a
/// usable anchor certificate, format, instance, serial not lower than `accepted`, not expired.
/// Each failure has its own [`ConfError`] variant.
pub fn verify_configuration(
    bytes: &[u8],
    signature: &[u8],
    anchor: &Anchor,
    accepted: AcceptedSerial,
    now: SystemTime,
) -> Result<GlobalConf, ConfError> {
    let conf = verify_signed(bytes, signature, anchor, now)?;
    if let Some(accepted) = accepted.0
        && conf.serial < accepted
    {
        return Err(ConfError::SerialWentBack {
            accepted,
            received: conf.serial,
        });
    }
    if !conf.is_valid_at(now) {
        return Err(ConfError::Expired {
            serial: conf.serial,
            expired_at: format_rfc3339(conf.expires_at),
        });
    }
    Ok(conf)
}

/// Signature, format and instance only: what a cached copy must pass to be loaded, even when it
/// has expired since (so that the client can say *when* it expired).
pub fn verify_signed(
    bytes: &[u8],
    signature: &[u8],
    anchor: &Anchor,
    now: SystemTime,
) -> Result<GlobalConf, ConfError> {
    let certificates = usable_anchor_certificates(anchor, now)?;
    let verified = certificates.iter().any(|certificate| {
        certificate.default_algorithm().is_some_and(|algorithm| {
            certificate
                .verify_signature(algorithm, bytes, signature)
                .is_ok()
        })
    });
    if !verified {
        return Err(ConfError::BadSignature {
            tried: certificates.len(),
        });
    }
    let conf = GlobalConf::from_json(bytes)?;
    if conf.instance != anchor.instance {
        return Err(ConfError::WrongInstance {
            expected: anchor.instance.to_string(),
            found: conf.instance.to_string(),
        });
    }
    Ok(conf)
}

/// The anchor certificates that are valid at `now` for configuration signing.
pub fn usable_anchor_certificates(
    anchor: &Anchor,
    now: SystemTime,
) -> Result<Vec<Certificate>, ConfError> {
    let mut usable = Vec::new();
    let mut reasons = Vec::new();
    for certificate in anchor.certificates() {
        // The anchor certificate is its own trust anchor: this checks its validity at `now` and
        // that its key usage fits configuration signing.
        let anchors = [certificate.clone()];
        match validate_chain(&certificate, &[], &anchors, now, Purpose::ConfigSigning) {
            Ok(_) => usable.push(certificate),
            Err(error) => reasons.push(format!("{}: {error}", certificate.subject())),
        }
    }
    if usable.is_empty() {
        return Err(ConfError::NoUsableAnchorCertificate {
            at: format_rfc3339(now),
            reasons: reasons.join("; "),
        });
    }
    Ok(usable)
}
