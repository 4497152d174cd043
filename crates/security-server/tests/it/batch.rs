//! Batch signing and the verifier's root cache, with the committed test PKI at its fixed time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use passerelle_globalconf::{ApprovedCa, GlobalConf, Settings};
use passerelle_pki::merkle::leaf_hash;
use passerelle_pki::{Certificate, SigningKey};
use passerelle_protocol::envelope::SignerChain;
use passerelle_protocol::signing::SigningTime;
use passerelle_security_server::config::BatchSettings;
use passerelle_security_server::metrics::Metrics;
use passerelle_security_server::signer::{BatchSigner, RootCache, SignatureProblem};

/// The validation time `certs/README.md` documents.
fn fixed_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_780_272_000)
}

fn certs(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../certs")
        .join(name)
}

fn conf() -> GlobalConf {
    let pem = |name: &str| std::fs::read_to_string(certs(name)).unwrap();
    GlobalConf {
        instance: "DEV".parse().unwrap(),
        serial: 7,
        generated_at: fixed_now() - Duration::from_secs(60),
        expires_at: fixed_now() + Duration::from_secs(600),
        member_classes: vec![],
        members: vec![],
        security_servers: vec![],
        global_groups: vec![],
        approved_cas: vec![ApprovedCa {
            name: "dev".to_owned(),
            certificates: vec![pem("root.cert.pem")],
            intermediates: vec![pem("intermediate.cert.pem")],
            ocsp_responders: vec![],
        }],
        approved_tsas: vec![],
        services: vec![],
        settings: Settings::default(),
    }
}

#[tokio::test]
async fn concurrent_inputs_share_one_signature_and_each_gets_its_proof() {
    let key = SigningKey::load(&certs("sign-education.key.pem")).unwrap();
    let chain = Certificate::load(&certs("sign-education.chain.pem")).unwrap();
    let metrics = Arc::new(Metrics::default());
    // A long window closed by the size limit: the batch is exactly the five inputs.
    let settings = BatchSettings {
        window: Duration::from_secs(3600),
        busy_window: Duration::ZERO,
        max_size: 5,
    };
    let signer = BatchSigner::spawn(key, &chain, settings, Arc::clone(&metrics));
    let inputs: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("signing input {i}").into_bytes())
        .collect();
    let tasks: Vec<_> = inputs
        .iter()
        .cloned()
        .map(|input| {
            let signer = signer.clone();
            tokio::spawn(async move {
                signer
                    .sign(&input, SigningTime::from_system_time(fixed_now()))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut envelopes = Vec::new();
    for task in tasks {
        envelopes.push(task.await.unwrap());
    }
    let root = envelopes[0].batch_root;
    let mut indexes: Vec<u64> = envelopes.iter().map(|e| e.proof.leaf_index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    assert!(envelopes.iter().all(|e| e.batch_root == root
        && e.proof.tree_size == 5
        && e.signature == envelopes[0].signature));
    assert!(
        metrics
            .render()
            .contains("passerelle_signature_batch_size_bucket{le=\"4\"} 0")
    );
    assert!(
        metrics
            .render()
            .contains("passerelle_signature_batch_size_bucket{le=\"8\"} 1")
    );

    let cache = RootCache::new(16);
    let conf = conf();
    let member = "DEV/GOV/EDUCATION".parse().unwrap();
    // Which input got which leaf is up to the scheduler; each verifies with exactly one envelope.
    for input in &inputs {
        let matching = envelopes
            .iter()
            .filter(|e| e.proof.verify(&leaf_hash(input), &root).is_ok())
            .count();
        assert_eq!(matching, 1);
        let envelope = envelopes
            .iter()
            .find(|e| e.proof.verify(&leaf_hash(input), &root).is_ok())
            .unwrap();
        cache
            .verify(&conf, &member, input, envelope, fixed_now())
            .unwrap();
    }
    // A cached root does not let another input through: the proof still binds each leaf.
    assert!(matches!(
        cache.verify(
            &conf,
            &member,
            b"not in the batch",
            &envelopes[0],
            fixed_now()
        ),
        Err(SignatureProblem::Signature(_))
    ));
    // The signer must be the expected member.
    let other = "DEV/GOV/HEALTH".parse().unwrap();
    assert!(matches!(
        cache.verify(&conf, &other, &inputs[0], &envelopes[0], fixed_now()),
        Err(SignatureProblem::Certificate(_)) | Err(SignatureProblem::Signature(_))
    ));
}

/// Signs `input {i}`: the root of the batch that covered it.
async fn root_of(signer: BatchSigner, i: usize) -> [u8; 32] {
    signer
        .sign(
            format!("input {i}").as_bytes(),
            SigningTime::from_system_time(fixed_now()),
        )
        .await
        .unwrap()
        .batch_root
}

/// Signs `count` inputs one after the other, `gap` apart, each without waiting for the
/// previous answer; returns the batch roots in input order.
async fn roots_of_a_stream(signer: &BatchSigner, count: usize, gap: Duration) -> Vec<[u8; 32]> {
    let mut tasks = Vec::new();
    for i in 0..count {
        tasks.push(tokio::spawn(root_of(signer.clone(), i)));
        tokio::time::sleep(gap).await;
    }
    let mut roots = Vec::new();
    for task in tasks {
        roots.push(task.await.unwrap());
    }
    roots
}

fn education_signer(busy_window: Duration) -> BatchSigner {
    let key = SigningKey::load(&certs("sign-education.key.pem")).unwrap();
    let chain = Certificate::load(&certs("sign-education.chain.pem")).unwrap();
    let settings = BatchSettings {
        window: Duration::ZERO,
        busy_window,
        max_size: 256,
    };
    BatchSigner::spawn(key, &chain, settings, Arc::new(Metrics::default()))
}

/// Signs one input from each of `count` tasks started together, task `i` after `i % 4` turns of
/// the scheduler (exchanges at different stages on their way to a signature: each turn waits for
/// another task, as an exchange waits for its I/O); returns the batch roots.
async fn roots_of_exchanges_in_flight(signer: &BatchSigner, count: usize) -> Vec<[u8; 32]> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let signer = signer.clone();
            tokio::spawn(async move {
                for _ in 0..i % 4 {
                    tokio::spawn(async {}).await.unwrap();
                }
                root_of(signer, i).await
            })
        })
        .collect();
    let mut roots = Vec::new();
    for task in tasks {
        roots.push(task.await.unwrap());
    }
    roots
}

#[tokio::test]
async fn under_load_the_signer_gathers_inputs_of_exchanges_still_on_their_way() {
    // Once inputs come faster than one per busy window, the signer lets the other ready tasks
    // run before it signs: the exchanges a few steps behind join the batch. Without it, each
    // group that arrives in its own turn of the scheduler gets its own signature.
    let distinct =
        |roots: Vec<[u8; 32]>| roots.iter().collect::<std::collections::HashSet<_>>().len();
    let warm = |signer: BatchSigner| async move {
        // Two inputs make the arrival rate known.
        roots_of_a_stream(&signer, 2, Duration::ZERO).await;
        signer
    };
    let gathering = warm(education_signer(Duration::from_millis(200))).await;
    let gathered = distinct(roots_of_exchanges_in_flight(&gathering, 40).await);
    let plain = warm(education_signer(Duration::ZERO)).await;
    let not_gathered = distinct(roots_of_exchanges_in_flight(&plain, 40).await);
    assert!(
        gathered < not_gathered,
        "{gathered} signatures with gathering, {not_gathered} without, for 40 inputs"
    );
}

#[tokio::test]
async fn without_a_busy_window_or_below_its_rate_each_input_is_signed_at_once() {
    // Without the busy window, inputs 20 ms apart are each signed alone (signing takes far
    // less), even though a 200 ms window would have batched them.
    let signer = education_signer(Duration::ZERO);
    let roots = roots_of_a_stream(&signer, 5, Duration::from_millis(20)).await;
    let distinct: std::collections::HashSet<_> = roots.iter().collect();
    assert_eq!(distinct.len(), roots.len());
    // With a 1 ms busy window, inputs 20 ms apart come slower than one per window: no waiting.
    let signer = education_signer(Duration::from_millis(1));
    let roots = roots_of_a_stream(&signer, 5, Duration::from_millis(20)).await;
    let distinct: std::collections::HashSet<_> = roots.iter().collect();
    assert_eq!(distinct.len(), roots.len());
}

#[test]
fn a_bad_root_signature_is_refused_before_it_is_cached() {
    let key = SigningKey::load(&certs("sign-health.key.pem")).unwrap();
    let chain: Vec<Vec<u8>> = Certificate::load(&certs("sign-health.chain.pem"))
        .unwrap()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    let input = b"one message";
    let root = leaf_hash(input);
    let mut envelope = passerelle_protocol::envelope::SignatureEnvelope {
        signing_time: SigningTime::from_system_time(fixed_now()),
        algorithm: key.algorithm(),
        signature: key.sign(b"something else").unwrap(),
        signer_chain: SignerChain::new(chain),
        batch_root: root,
        proof: passerelle_pki::merkle::InclusionProof {
            leaf_index: 0,
            tree_size: 1,
            path: vec![],
        },
    };
    let cache = RootCache::new(4);
    let member = "DEV/GOV/HEALTH".parse().unwrap();
    assert!(matches!(
        cache.verify(&conf(), &member, input, &envelope, fixed_now()),
        Err(SignatureProblem::Signature(_))
    ));
    envelope.signature = key.sign(&root).unwrap();
    cache
        .verify(&conf(), &member, input, &envelope, fixed_now())
        .unwrap();
    // A verified root does not vouch for other signature bytes over it: the envelope is logged
    // as evidence, and evidence with a bad signature must not be accepted from the cache.
    let good = std::mem::replace(
        &mut envelope.signature,
        key.sign(b"something else").unwrap(),
    );
    assert!(matches!(
        cache.verify(&conf(), &member, input, &envelope, fixed_now()),
        Err(SignatureProblem::Signature(_))
    ));
    envelope.signature = good;
    // After the validity of the chain, the same signature is refused for its certificate.
    let late = UNIX_EPOCH + Duration::from_secs(2_400_000_000);
    let mut late_conf = conf();
    late_conf.expires_at = late + Duration::from_secs(1);
    assert!(matches!(
        cache.verify(&late_conf, &member, input, &envelope, late),
        Err(SignatureProblem::Certificate(_))
    ));
}
