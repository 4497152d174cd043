//! Each provider-side check failing with its own code, probed by a hand-made peer.

use std::time::{Duration, SystemTime};

use crate::federation::{Crafted, Federation, Options, RawPeer, auth_profile};
use passerelle_pki::devca::{IssueRequest, LeafKey, Validity};

const TARGET: &str = "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/1";

#[tokio::test]
async fn a_correct_crafted_request_is_accepted_and_bound_to_its_hash() {
    let federation = Federation::start(Options::default()).await;
    let mut peer =
        RawPeer::connect(federation.health.server_addr, &federation.education_auth).await;
    let reply = peer
        .send(Crafted::new(TARGET).build(&federation.education_signing))
        .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.header("x-passerelle-signature").is_some());
    assert!(reply.header("x-road-request-hash").is_some());
}

#[tokio::test]
async fn unregistered_peer_certificate_is_refused() {
    let federation = Federation::start(Options::default()).await;
    // Issued by the approved CA, but registered for no security server.
    let issued = federation
        .ca
        .issue(&IssueRequest {
            profile: auth_profile("rogue"),
            validity: Validity::days_from(SystemTime::now(), 5),
            key: LeafKey::Generate,
        })
        .unwrap();
    let rogue = crate::federation::KeyPair {
        key: issued.key.unwrap(),
        chain: issued.chain,
    };
    let mut peer = RawPeer::connect(federation.health.server_addr, &rogue).await;
    let reply = peer
        .send(Crafted::new(TARGET).build(&federation.education_signing))
        .await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.SslAuthenticationFailed"),
        "{reply:?}"
    );
    assert_eq!(reply.status, 403);
    assert!(federation.seen_paths().is_empty());
}

#[tokio::test]
async fn each_check_answers_its_own_code() {
    let federation = Federation::start(Options::default()).await;
    let mut peer =
        RawPeer::connect(federation.health.server_addr, &federation.education_auth).await;
    let signer = &federation.education_signing;
    let now = SystemTime::now();

    let cases: Vec<(
        &str,
        http::Request<http_body_util::Full<bytes::Bytes>>,
        &str,
    )> = vec![
        (
            "client not hosted by the calling server",
            Crafted {
                client: "DEV/GOV/EDUCATION/other",
                message_id: "m-a",
                ..Crafted::new(TARGET)
            }
            .build(signer),
            "Server.ServerProxy.InvalidSecurityServer",
        ),
        (
            "unknown service",
            Crafted {
                message_id: "m-b",
                ..Crafted::new("/r1/DEV/GOV/HEALTH/patients/nothing/x")
            }
            .build(signer),
            "Server.ServerProxy.UnknownService",
        ),
        (
            "disabled service",
            Crafted {
                message_id: "m-c",
                ..Crafted::new("/r1/DEV/GOV/HEALTH/patients/closed/x")
            }
            .build(signer),
            "Server.ServerProxy.ServiceDisabled",
        ),
        (
            "denied endpoint",
            Crafted {
                message_id: "m-d",
                ..Crafted::new("/r1/DEV/GOV/HEALTH/patients/records/private/1")
            }
            .build(signer),
            "Server.ServerProxy.AccessDenied",
        ),
        (
            "tampered body",
            {
                let mut request = Crafted {
                    method: "POST",
                    body: b"{\"a\":1}",
                    message_id: "m-e",
                    ..Crafted::new(TARGET)
                }
                .build(signer);
                *request.body_mut() =
                    http_body_util::Full::new(bytes::Bytes::from_static(b"{\"a\":2}"));
                request
            },
            "Server.ServerProxy.InvalidSignatureValue",
        ),
        (
            "tampered signature",
            {
                let mut request = Crafted {
                    message_id: "m-f",
                    ..Crafted::new(TARGET)
                }
                .build(signer);
                let signature = request.headers()["x-passerelle-signature"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let flipped = if signature.starts_with('M') {
                    signature.replacen('M', "N", 1)
                } else {
                    format!("M{}", &signature[1..])
                };
                request
                    .headers_mut()
                    .insert("x-passerelle-signature", flipped.parse().unwrap());
                request
            },
            "Server.ServerProxy.InvalidSignatureValue",
        ),
        (
            "signed by another member's key",
            Crafted {
                message_id: "m-g",
                ..Crafted::new(TARGET)
            }
            .build(&federation.health_signing),
            "Server.ServerProxy.CertValidation",
        ),
        (
            "stale signing time",
            Crafted {
                message_id: "m-h",
                signing_time: now - Duration::from_secs(3600),
                ..Crafted::new(TARGET)
            }
            .build(signer),
            "Server.ServerProxy.InvalidSigningTime",
        ),
        (
            "signing time from the future",
            Crafted {
                message_id: "m-i",
                signing_time: now + Duration::from_secs(3600),
                ..Crafted::new(TARGET)
            }
            .build(signer),
            "Server.ServerProxy.InvalidSigningTime",
        ),
    ];
    for (name, request, expected) in cases {
        let reply = peer.send(request).await;
        assert_eq!(
            reply.fault().as_deref(),
            Some(expected),
            "{name}: {reply:?}"
        );
    }
    assert!(
        federation.seen_paths().is_empty(),
        "no failing request reached the backend: {:?}",
        federation.seen_paths()
    );
}

#[tokio::test]
async fn a_replayed_request_is_refused() {
    let federation = Federation::start(Options::default()).await;
    let mut peer =
        RawPeer::connect(federation.health.server_addr, &federation.education_auth).await;
    let crafted = Crafted {
        message_id: "once",
        request_id: "r-once",
        ..Crafted::new(TARGET)
    };
    let first = peer
        .send(crafted.build(&federation.education_signing))
        .await;
    assert_eq!(first.status, 200, "{first:?}");
    let replay = peer
        .send(crafted.build(&federation.education_signing))
        .await;
    assert_eq!(
        replay.fault().as_deref(),
        Some("Server.ServerProxy.DuplicateMessage"),
        "{replay:?}"
    );
    assert_eq!(replay.status, 409);
    assert_eq!(federation.seen_paths().len(), 1);
}

#[tokio::test]
async fn a_response_is_bound_to_its_request() {
    let federation = Federation::start(Options::default()).await;
    let mut peer =
        RawPeer::connect(federation.health.server_addr, &federation.education_auth).await;
    let a = Crafted {
        message_id: "a",
        request_id: "ra",
        ..Crafted::new(TARGET)
    };
    let b = Crafted {
        message_id: "b",
        request_id: "rb",
        ..Crafted::new(TARGET)
    };
    let reply_a = peer.send(a.build(&federation.education_signing)).await;
    let reply_b = peer.send(b.build(&federation.education_signing)).await;
    assert_eq!((reply_a.status, reply_b.status), (200, 200));
    assert_ne!(
        reply_a.header("x-road-request-hash"),
        reply_b.header("x-road-request-hash")
    );

    // A provider (here an impostor holding the registered key) answers a new request with the
    // signed response of exchange A: the consumer refuses it.
    let fake = fake_provider(&federation, reply_a.headers.clone(), reply_a.body.clone()).await;
    let mut global = federation.global.clone();
    global.security_servers[0].address = fake.to_string();
    federation.conf.replace(global);
    let swapped = federation.call_as_school("GET", TARGET, b"").await;
    assert_eq!(
        swapped.fault().as_deref(),
        Some("Server.ClientProxy.InconsistentResponse"),
        "{swapped:?}"
    );

    // Even with the request hash header rewritten, the signature does not cover this request.
    let fake =
        fake_provider_rewriting_hash(&federation, reply_a.headers.clone(), reply_a.body.clone())
            .await;
    let mut global = federation.global.clone();
    global.security_servers[0].address = fake.to_string();
    federation.conf.replace(global);
    let forged = federation.call_as_school("GET", TARGET, b"").await;
    assert_eq!(
        forged.fault().as_deref(),
        Some("Server.ClientProxy.InvalidSignatureValue"),
        "{forged:?}"
    );
}

async fn fake_provider(
    federation: &Federation,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> std::net::SocketAddr {
    serve_fake(federation, move |_request_hash| {
        (headers.clone(), body.clone())
    })
    .await
}

async fn fake_provider_rewriting_hash(
    federation: &Federation,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> std::net::SocketAddr {
    serve_fake(federation, move |request_hash| {
        let mut headers = headers.clone();
        if let Some(hash) = request_hash {
            headers.insert("x-road-request-hash", hash);
        }
        (headers, body.clone())
    })
    .await
}

/// An HTTP/2 TLS server holding the provider's registered authentication key that answers
/// every request with a canned response. The function gets the hash a consumer would expect,
/// computed from the request it received, so it can forge the binding header.
async fn serve_fake<F>(federation: &Federation, answer: F) -> std::net::SocketAddr
where
    F: Fn(Option<http::HeaderValue>) -> (http::HeaderMap, bytes::Bytes) + Send + Sync + 'static,
{
    use base64::Engine;
    use std::sync::Arc;
    let chain = federation
        .health_auth
        .chain
        .iter()
        .map(|c| rustls_pki_types::CertificateDer::from(c.der().to_vec()))
        .collect();
    let key =
        rustls_pki_types::PrivateKeyDer::Pkcs8(federation.health_auth.key.to_pkcs8_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(tls) = acceptor.accept(stream).await else {
                continue;
            };
            let answer = Arc::clone(&answer);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let answer = Arc::clone(&answer);
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = http_body_util::BodyExt::collect(body)
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let envelope = passerelle_protocol::envelope::SignatureEnvelope::read(
                                &parts.headers,
                            )
                            .unwrap();
                            let headers = passerelle_protocol::headers::forwardable(&parts.headers);
                            let input = passerelle_protocol::signing::RequestSigningInput {
                                message_id: parts.headers["x-road-id"].to_str().unwrap().to_owned(),
                                request_id: parts.headers["x-road-request-id"]
                                    .to_str()
                                    .unwrap()
                                    .to_owned(),
                                client: parts.headers["x-road-client"]
                                    .to_str()
                                    .unwrap()
                                    .parse()
                                    .unwrap(),
                                service: passerelle_ids::ServicePath::parse(parts.uri.path())
                                    .unwrap()
                                    .service,
                                method: parts.method.to_string(),
                                path_and_query: parts.uri.path_and_query().unwrap().to_string(),
                                user_id: None,
                                issue: None,
                                represented_party: None,
                                headers_digest: passerelle_protocol::headers::headers_digest(
                                    &headers,
                                ),
                                body_digest: passerelle_pki::digest::sha256(&body),
                                signing_time: envelope.signing_time,
                            };
                            let hash =
                                base64::engine::general_purpose::STANDARD.encode(input.hash());
                            let (headers, body) = answer(Some(hash.parse().unwrap()));
                            let mut response = http::Response::new(http_body_util::Full::new(body));
                            *response.headers_mut() = headers;
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let mut builder =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
                builder.auto_date_header(false);
                let _ = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    address
}
