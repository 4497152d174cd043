//! Shared builders: records, a development CA signer, a stand-in time-stamping authority.

use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_ids::{MemberId, ServiceId, SubsystemId};
use passerelle_messagelog::{
    Body, Durability, Evidence, ExchangeRecord, ExportFilter, KeyRing, LogOptions, MessageLog,
    MessagePart, Sha256Hash, Side, SignatureEvidence, Timestamper, TokenVerifier, VerifyOptions,
    VerifyReport, verify_archive,
};
use passerelle_pki::SigningKey;
use passerelle_pki::aead::BodyKey;
use passerelle_pki::devca::{DevCa, ExistingCa, IssueRequest, LeafKey, LeafProfile, Validity};
use passerelle_pki::digest::Digested;

/// A certificate chain as a record holds it.
pub(crate) fn evidence(chain: &[Vec<u8>]) -> Vec<Evidence> {
    chain.iter().cloned().map(Evidence::Der).collect()
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub(crate) struct Signer {
    pub(crate) key: SigningKey,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) anchor: Vec<u8>,
    /// The development CA that issued the signer (its OCSP responder and TSA make material).
    pub(crate) ca: DevCa,
    pub(crate) _ca_dir: tempfile::TempDir,
}

pub(crate) fn signer() -> Signer {
    let ca_dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let ca = DevCa::init(
        ca_dir.path(),
        "BJ",
        Validity::days_from(now, 30),
        ExistingCa::Refuse,
    )
    .unwrap();
    let issued = ca
        .issue(&IssueRequest {
            profile: LeafProfile::Sign {
                member: "BJ/GOV/MINSANTE".parse::<MemberId>().unwrap(),
            },
            validity: Validity::days_from(now, 10),
            key: LeafKey::Generate,
        })
        .unwrap();
    Signer {
        key: issued.key.unwrap(),
        chain: issued.chain.iter().map(|c| c.der().to_vec()).collect(),
        anchor: ca.root().der().to_vec(),
        ca,
        _ca_dir: ca_dir,
    }
}

pub(crate) fn key_ring() -> KeyRing {
    KeyRing::new("k1", vec![BodyKey::generate("k1").unwrap()]).unwrap()
}

pub(crate) fn client(index: u64) -> SubsystemId {
    format!("BJ/GOV/MINEDU/schools{}", index % 3)
        .parse()
        .unwrap()
}

pub(crate) fn service() -> ServiceId {
    "BJ/GOV/MINSANTE/patients/vaccinations".parse().unwrap()
}

fn part(
    message_id: &str,
    which: &str,
    body: &[u8],
    signer: Option<&Signer>,
    metadata_only: bool,
) -> MessagePart {
    let digest = Sha256Hash::of(body);
    let signing_input = format!(
        "passerelle-signing-input-v1\n{which}\nmessage-id: {message_id}\nbody-sha256: {digest}\n"
    )
    .into_bytes();
    let signature = signer.map(|signer| SignatureEvidence {
        algorithm: "ecdsa-p256-sha256".into(),
        signature: signer.key.sign(&signing_input).unwrap(),
        certificate_chain: evidence(&signer.chain),
        batch: None,
    });
    MessagePart {
        signing_input,
        signature,
        certificate_status: None,
        body_digest: digest,
        body_size: body.len() as u64,
        body: if metadata_only {
            Body::Absent
        } else {
            Body::Plain(Digested::new(bytes::Bytes::copy_from_slice(body)))
        },
    }
}

/// An exchange; bodies in plaintext (sealed by the log) unless `metadata_only`.
pub(crate) fn record(index: u64, signer: Option<&Signer>, metadata_only: bool) -> ExchangeRecord {
    let message_id = format!("msg-{index}");
    let at = now_ms();
    ExchangeRecord {
        side: if index.is_multiple_of(2) {
            Side::Consumer
        } else {
            Side::Provider
        },
        request_id: message_id.clone(),
        client: client(index),
        service: service(),
        method: "GET".into(),
        path_and_query: format!("/v1/children/{index}?year=2024"),
        user_id: Some("EE12345".into()),
        request_received_at_ms: at,
        response_sent_at_ms: at + 7,
        status: 200,
        fault_code: None,
        request: part(&message_id, "request", b"", signer, metadata_only),
        response: part(
            &message_id,
            "response",
            format!("{{\"child\":{index},\"doses\":3}}").as_bytes(),
            signer,
            metadata_only,
        ),
        message_id,
        peer_authentication: None,
    }
}

pub(crate) fn open(dir: &Path, keys: Option<KeyRing>) -> MessageLog {
    let mut options = LogOptions::new(Durability::Fsync);
    options.keys = keys;
    MessageLog::open(dir, options).unwrap()
}

/// Exports the whole log to `archive` and verifies it with the default options: no failure.
pub(crate) fn export_all_verified(log: &MessageLog, archive: &Path) -> VerifyReport {
    log.export(
        &ExportFilter::default(),
        None,
        &[],
        archive,
        SystemTime::now(),
    )
    .unwrap();
    let report = verify_archive(archive, &VerifyOptions::default()).unwrap();
    assert_eq!(report.failure, None);
    report
}

/// A stand-in TSA: the "token" is a fixed prefix and the imprint, which [`FakeTokens`] checks.
pub(crate) struct FakeTokens;

impl Timestamper for FakeTokens {
    fn timestamp(&self, imprint: &[u8; 32]) -> Result<Vec<u8>, String> {
        Ok([b"fake-tsa:".as_slice(), imprint].concat())
    }
}

impl TokenVerifier for FakeTokens {
    fn verify(&self, token: &[u8], imprint: &[u8; 32]) -> Result<SystemTime, String> {
        if token == [b"fake-tsa:".as_slice(), imprint].concat() {
            Ok(SystemTime::now())
        } else {
            Err("token does not cover the root".into())
        }
    }
}

/// Drives a future to completion on this thread, without any runtime.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
}
