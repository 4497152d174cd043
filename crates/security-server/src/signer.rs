//! Batch signing and batch verification.
//!
//! Signing: one task per member key. Every signing input becomes a leaf of a Merkle tree; the
//! task takes all inputs queued while it was busy (and, if a window is configured, those arriving
//! within it), builds the tree, signs the 32-byte root once and hands each caller its inclusion
//! proof. Under no load a batch has one leaf and costs one signature, as before; under load the
//! cost of a signature is shared.
//!
//! Gathering under load: signing is quick, so inputs rarely queue behind a signature even under
//! heavy load, and batches stayed at one leaf (one signature here and one verification at the peer
//! per message). When inputs arrive faster than one per `busy_window` on average, the task first
//! lets the runtime run every other task that is ready, and takes the inputs they queued; again
//! while that brings more, for at most `busy_window`. It never sleeps on a timer: under load the
//! tasks that run meanwhile are the exchanges on their way to a signature, and without load there
//! are none, so nothing waits. (Sleeping up to `busy_window` for batch-mates, as earlier versions
//! did, added one to two milliseconds to each of the two signatures of an exchange at moderate
//! load.)
//!
//! Verifying: a verified (root, signer certificate, configuration serial) is remembered, so the
//! other messages of a batch only need their inclusion proof checked.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use passerelle_globalconf::GlobalConf;
use passerelle_ids::MemberId;
use passerelle_pki::merkle::{MerkleTree, leaf_hash};
use passerelle_pki::{Certificate, Purpose, SigningKey, validate_chain};
use passerelle_protocol::envelope::{SignatureEnvelope, SignerChain};
use passerelle_protocol::signing::SigningTime;
use tokio::sync::{mpsc, oneshot};

use crate::config::BatchSettings;
use crate::metrics::Metrics;

struct Job {
    leaf: [u8; 32],
    reply: oneshot::Sender<Result<SignatureEnvelope, String>>,
    signing_time: SigningTime,
    /// When the caller asked, for the arrival rate.
    at: Instant,
}

/// The smoothed time between two inputs (an exponential moving average, weight 1/8).
struct ArrivalRate {
    last: Option<Instant>,
    mean_gap: Option<Duration>,
}

impl ArrivalRate {
    fn note(&mut self, at: Instant) {
        if let Some(last) = self.last {
            let gap = at.saturating_duration_since(last);
            self.mean_gap = Some(match self.mean_gap {
                Some(mean) => mean - mean / 8 + gap / 8,
                None => gap,
            });
        }
        self.last = Some(self.last.map_or(at, |last| last.max(at)));
    }

    /// Whether inputs come, on average, more often than once per `window`.
    fn faster_than(&self, window: Duration) -> bool {
        self.mean_gap.is_some_and(|gap| gap < window)
    }
}

/// Signs signing inputs with one member's key, in batches.
#[derive(Clone)]
pub struct BatchSigner {
    jobs: mpsc::Sender<Job>,
    chain: SignerChain,
}

impl BatchSigner {
    /// Starts the signing task on the current tokio runtime.
    pub fn spawn(
        key: SigningKey,
        chain: &[Certificate],
        settings: BatchSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (jobs, receiver) = mpsc::channel::<Job>(settings.max_size.saturating_mul(4).max(16));
        let chain = SignerChain::new(chain.iter().map(|c| c.der().to_vec()).collect());
        tokio::spawn(run(key, chain.clone(), settings, receiver, metrics));
        Self { jobs, chain }
    }

    /// Signs one signing input; resolves once its batch's root is signed.
    pub async fn sign(
        &self,
        signing_input: &[u8],
        signing_time: SigningTime,
    ) -> Result<SignatureEnvelope, String> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            leaf: leaf_hash(signing_input),
            reply,
            signing_time,
            at: Instant::now(),
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| "the signing task has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the signing task has stopped".to_owned())?
    }

    /// The signer's certificate chain, DER, leaf first.
    pub fn chain(&self) -> &SignerChain {
        &self.chain
    }
}

async fn run(
    key: SigningKey,
    chain: SignerChain,
    settings: BatchSettings,
    mut receiver: mpsc::Receiver<Job>,
    metrics: Arc<Metrics>,
) {
    let mut rate = ArrivalRate {
        last: None,
        mean_gap: None,
    };
    while let Some(first) = receiver.recv().await {
        rate.note(first.at);
        let mut batch = vec![first];
        take_queued(&mut receiver, &mut batch, settings.max_size);
        if !settings.window.is_zero() {
            let deadline = tokio::time::Instant::now() + settings.window;
            while batch.len() < settings.max_size {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(job)) => batch.push(job),
                    _ => break,
                }
            }
        } else if !settings.busy_window.is_zero() && rate.faster_than(settings.busy_window) {
            let until = Instant::now() + settings.busy_window;
            gather(&mut receiver, &mut batch, settings.max_size, until).await;
        }
        for job in &batch[1..] {
            rate.note(job.at);
        }
        metrics.observe_batch(batch.len());
        let tree = MerkleTree::from_leaf_hashes(batch.iter().map(|job| job.leaf).collect());
        let root = tree.root();
        let signature = key.sign(&root).map_err(|error| error.to_string());
        for (index, job) in batch.into_iter().enumerate() {
            let envelope = match (&signature, tree.proof(index)) {
                (Ok(signature), Some(proof)) => Ok(SignatureEnvelope {
                    signing_time: job.signing_time,
                    algorithm: key.algorithm(),
                    signature: signature.clone(),
                    signer_chain: chain.clone(),
                    batch_root: root,
                    proof,
                }),
                (Err(error), _) => Err(error.clone()),
                (_, None) => Err("no inclusion proof for a leaf of the batch".to_owned()),
            };
            // The caller may have given up (timeout); nothing to do then.
            let _ = job.reply.send(envelope);
        }
    }
}

/// How many times [`gather`] yields at most, so that a steady stream of inputs cannot hold a
/// batch open.
const GATHER_ROUNDS: usize = 8;

/// Moves the inputs already queued into `batch`, up to `max` in all.
fn take_queued<T>(receiver: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    while batch.len() < max {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Lets every other ready task run, then takes the inputs they queued; again while that brought
/// more, at most [`GATHER_ROUNDS`] times and not past `until`. No timer is involved: when nothing
/// else is ready, the yield returns at once. The clock is only read, to bound the rounds when
/// the tasks that run meanwhile are slow (large bodies).
async fn gather<T>(
    receiver: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    max: usize,
    until: Instant,
) {
    for _ in 0..GATHER_ROUNDS {
        if batch.len() >= max || Instant::now() >= until {
            return;
        }
        tokio::task::yield_now().await;
        let before = batch.len();
        take_queued(receiver, batch, max);
        if batch.len() == before {
            return;
        }
    }
}

/// Why a signed message does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The signer certificate is unusable: unparsable, not chaining to an approved CA with the
    /// signing purpose, or not the expected member's.
    Certificate(String),
    /// The proof or the signature does not verify.
    Signature(String),
}

/// The remembered keys, and their insertion order for eviction.
type RootEntries = (HashSet<[u8; 32]>, VecDeque<[u8; 32]>);

/// A signer chain that validated under one configuration: its parsed leaf and the window in
/// which every certificate of the validated path is valid.
#[derive(Clone)]
struct ValidChain {
    leaf: Certificate,
    not_before: SystemTime,
    not_after: SystemTime,
}

/// The remembered chains, and their insertion order for eviction.
type ChainEntries = (HashMap<[u8; 32], ValidChain>, VecDeque<[u8; 32]>);

/// Remembers verified batch roots and validated signer chains (bounded, oldest forgotten
/// first).
pub struct RootCache {
    capacity: usize,
    entries: Mutex<RootEntries>,
    chains: Mutex<ChainEntries>,
}

impl RootCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            entries: Mutex::new((HashSet::new(), VecDeque::new())),
            chains: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn contains(&self, key: &[u8; 32]) -> bool {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .contains(key)
    }

    fn insert(&self, key: [u8; 32]) {
        let mut guard = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, order) = &mut *guard;
        if set.insert(key) {
            order.push_back(key);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }

    fn chain(&self, key: &[u8; 32]) -> Option<ValidChain> {
        self.chains
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .get(key)
            .cloned()
    }

    fn insert_chain(&self, key: [u8; 32], chain: ValidChain) {
        let mut guard = self.chains.lock().unwrap_or_else(PoisonError::into_inner);
        let (map, order) = &mut *guard;
        if map.insert(key, chain).is_none() {
            order.push_back(key);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    /// The signer chain of `envelope`, validated for signing under `conf` at `now`. A chain that
    /// validated before under the same configuration serial is not parsed or validated again:
    /// only `now` is checked against the validity window of its path (a new configuration, e.g.
    /// with a CA withdrawn, has a new serial and so validates afresh).
    fn signer_chain(
        &self,
        conf: &GlobalConf,
        envelope: &SignatureEnvelope,
        now: SystemTime,
    ) -> Result<ValidChain, SignatureProblem> {
        let Some(leaf_der) = envelope.signer_chain.first() else {
            return Err(SignatureProblem::Certificate(
                "no signer certificate".to_owned(),
            ));
        };
        let key = {
            let mut hasher = passerelle_pki::digest::Sha256::new();
            hasher.update(&conf.serial.to_be_bytes());
            for der in envelope.signer_chain.iter() {
                hasher.update(&(der.len() as u64).to_be_bytes()).update(der);
            }
            hasher.finish()
        };
        if let Some(chain) = self.chain(&key) {
            if chain.not_before <= now && now <= chain.not_after {
                return Ok(chain);
            }
            return Err(SignatureProblem::Certificate(format!(
                "the signing certificate chain of {} is not valid at this time",
                chain.leaf.subject()
            )));
        }
        let leaf = Certificate::from_der(leaf_der.to_vec())
            .map_err(|error| SignatureProblem::Certificate(error.to_string()))?;
        let mut pool: Vec<Certificate> = envelope
            .signer_chain
            .iter()
            .skip(1)
            .filter_map(|der| Certificate::from_der(der.to_vec()).ok())
            .collect();
        pool.extend(conf.ca_intermediates());
        let path = validate_chain(&leaf, &pool, &conf.ca_roots(), now, Purpose::Signing)
            .map_err(|error| SignatureProblem::Certificate(error.to_string()))?;
        let chain = ValidChain {
            not_before: path
                .iter()
                .map(Certificate::not_before)
                .max()
                .unwrap_or_else(|| leaf.not_before()),
            not_after: path
                .iter()
                .map(Certificate::not_after)
                .min()
                .unwrap_or_else(|| leaf.not_after()),
            leaf,
        };
        self.insert_chain(key, chain.clone());
        Ok(chain)
    }

    /// Verifies that `signing_input` was signed by `member` under `conf` at `now`: the signer
    /// chain, the inclusion proof, then the root signature (skipped when the same signature over
    /// the same root, by the same signer under the same configuration, was verified before).
    pub fn verify(
        &self,
        conf: &GlobalConf,
        member: &MemberId,
        signing_input: &[u8],
        envelope: &SignatureEnvelope,
        now: SystemTime,
    ) -> Result<(), SignatureProblem> {
        if envelope.signer_chain.is_empty() {
            return Err(SignatureProblem::Certificate(
                "no signer certificate".to_owned(),
            ));
        }
        envelope
            .proof
            .verify(&leaf_hash(signing_input), &envelope.batch_root)
            .map_err(|error| SignatureProblem::Signature(format!("inclusion proof: {error}")))?;
        let chain = self.signer_chain(conf, envelope, now)?;
        let leaf = &chain.leaf;
        if leaf.member_id().as_ref() != Some(member) {
            return Err(SignatureProblem::Certificate(format!(
                "the signing certificate {} is not a certificate of member {member}",
                leaf.subject()
            )));
        }
        let cache_key = {
            let mut hasher = passerelle_pki::digest::Sha256::new();
            hasher
                .update(&envelope.batch_root)
                .update(&(envelope.signature.len() as u64).to_be_bytes())
                .update(&envelope.signature)
                .update(leaf.der())
                .update(&conf.serial.to_be_bytes());
            hasher.update(envelope.algorithm.as_str().as_bytes());
            hasher.finish()
        };
        // A cached root skips the signature check, not the signer's identity or the chain's
        // validity at `now` (both checked above).
        if self.contains(&cache_key) {
            return Ok(());
        }
        leaf.verify_signature(
            envelope.algorithm,
            &envelope.batch_root,
            &envelope.signature,
        )
        .map_err(|error| SignatureProblem::Signature(error.to_string()))?;
        self.insert(cache_key);
        Ok(())
    }
}
