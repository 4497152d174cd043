//! Onboarding: signed registration requests, the officer's approval, and what reaches the
//! configuration and the catalog.

use passerelle_globalconf::{
    CertHash, Endpoint, Fetcher, GlobalConf, HttpFetcher, RegistrationRequest, RequestAction,
    RequestSigner, ServiceDescriptor, SignedRequest, SignerRole,
};
use serde_json::Value;

use crate::support::{Federation, Pki, ServerCredentials, expect_status};

async fn submit(federation: &Federation, request: &SignedRequest, status: u16) -> Value {
    let body = String::from_utf8(request.to_json()).unwrap();
    expect_status(
        &federation.anonymous,
        "POST",
        "/api/v1/requests",
        &body,
        status,
    )
    .await
}

fn configuration(federation: &Federation) -> GlobalConf {
    GlobalConf::from_json(&federation.central().published().unwrap().bytes).unwrap()
}

#[tokio::test]
async fn bad_requests_are_rejected_with_a_reason() {
    let federation = Federation::start(true).await;
    federation.populate().await;
    let now = federation.clock.now();
    let server = ServerCredentials::new(&federation.pki, "DEV/GOV/HEALTH/ss1");

    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = ServerCredentials::new(&Pki::new(stranger_dir.path()), "DEV/GOV/HEALTH/ss1");
    let error = submit(&federation, &stranger.auth_request(now), 400).await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("not from an approved ca"),
        "{error}"
    );

    let mut wrong_owner = ServerCredentials::new(&federation.pki, "DEV/GOV/HEALTH/ss1");
    wrong_owner.owner = federation.pki.sign_cert("DEV/GOV/EDU");
    let error = submit(&federation, &wrong_owner.auth_request(now), 400).await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("not signed by the server owner DEV/GOV/HEALTH"),
        "{error}"
    );

    // Signed by another auth key than the certificate being registered.
    let other = ServerCredentials::new(&federation.pki, "DEV/GOV/HEALTH/ss2");
    let request = RegistrationRequest {
        created_at: now,
        action: RequestAction::AuthCertificate {
            server: server.id.clone(),
            address: "127.0.0.1:5500".to_owned(),
            certificate: server.auth.certificate.to_pem(),
        },
    };
    let mismatched = SignedRequest::sign(
        &request,
        &[
            RequestSigner {
                role: SignerRole::AuthKey,
                key: other.auth.key.as_ref().unwrap(),
                chain: &other.auth.chain,
            },
            RequestSigner {
                role: SignerRole::Member,
                key: server.owner.key.as_ref().unwrap(),
                chain: &server.owner.chain,
            },
        ],
    )
    .unwrap();
    let error = submit(&federation, &mismatched, 400).await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("auth key mismatch"),
        "{error}"
    );

    // An unregistered owner.
    let unknown = ServerCredentials::new(&federation.pki, "DEV/GOV/TAX/ss1");
    let error = submit(&federation, &unknown.auth_request(now), 400).await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("owner DEV/GOV/TAX is not a registered member"),
        "{error}"
    );

    expect_status(
        &federation.anonymous,
        "POST",
        "/api/v1/requests",
        "{\"request\": 1}",
        400,
    )
    .await;
    assert!(configuration(&federation).security_servers.is_empty());
}

#[tokio::test]
async fn an_approved_server_appears_in_the_next_configuration() {
    let federation = Federation::start(false).await;
    federation.populate().await;
    let now = federation.clock.now();
    let server = ServerCredentials::new(&federation.pki, "DEV/GOV/HEALTH/ss1");

    let queued = submit(&federation, &server.auth_request(now), 202).await;
    assert_eq!(queued["status"], "pending");
    let id = queued["id"].as_u64().unwrap();
    assert!(
        configuration(&federation).server(&server.id).is_none(),
        "not before approval"
    );
    let listed = federation.observer.get("/api/v1/requests").await.unwrap();
    assert_eq!(
        listed[0]["summary"],
        "register auth certificate of DEV/GOV/HEALTH/ss1 at 127.0.0.1:5500"
    );

    let approve = format!("/api/v1/requests/{id}/approve");
    expect_status(&federation.observer, "POST", &approve, "", 403).await;
    let serial = configuration(&federation).serial;
    let decided = federation
        .officer
        .post(&approve, &Value::Null)
        .await
        .unwrap();
    assert_eq!(decided["status"], "approved");
    assert_eq!(decided["decided_by"], "alice");
    expect_status(&federation.officer, "POST", &approve, "", 409).await;

    let conf = configuration(&federation);
    assert!(conf.serial > serial);
    let hash = server.auth.certificate.sha256_fingerprint();
    let registered = conf.server_by_auth_cert_hash(&hash).unwrap();
    assert_eq!(registered.id, server.id);
    assert_eq!(registered.address, "127.0.0.1:5500");
    assert_eq!(registered.auth_cert_hashes, vec![CertHash(hash)]);

    // Register a client hosted on it, signed by the server owner and the client's member.
    let education = federation.pki.sign_cert("DEV/GOV/EDU");
    let client_request = RegistrationRequest {
        created_at: now,
        action: RequestAction::Client {
            server: server.id.clone(),
            client: "DEV/GOV/EDU/schools".parse().unwrap(),
        },
    };
    let signed = SignedRequest::sign(
        &client_request,
        &[
            RequestSigner {
                role: SignerRole::Member,
                key: server.owner.key.as_ref().unwrap(),
                chain: &server.owner.chain,
            },
            RequestSigner {
                role: SignerRole::Member,
                key: education.key.as_ref().unwrap(),
                chain: &education.chain,
            },
        ],
    )
    .unwrap();
    let queued = submit(&federation, &signed, 202).await;
    federation
        .officer
        .post(
            &format!("/api/v1/requests/{}/approve", queued["id"]),
            &Value::Null,
        )
        .await
        .unwrap();
    let conf = configuration(&federation);
    let hosting = conf.servers_hosting(&"DEV/GOV/EDU/schools".parse().unwrap());
    assert_eq!(hosting.len(), 1);
    assert_eq!(hosting[0].id, server.id);

    // Rejection keeps the registry as it was and records the reason.
    let rejected = submit(
        &federation,
        &ServerCredentials::new(&federation.pki, "DEV/GOV/HEALTH/ss9").auth_request(now),
        202,
    )
    .await;
    let path = format!("/api/v1/requests/{}/reject", rejected["id"]);
    let decided = federation
        .officer
        .post(&path, &serde_json::json!({"reason": "unknown machine"}))
        .await
        .unwrap();
    assert_eq!(decided["reason"], "unknown machine");
    assert_eq!(configuration(&federation).security_servers.len(), 1);
    let audit = federation.observer.get("/api/v1/audit").await.unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    for action in [
        "request.submit",
        "request.approve",
        "security-server.register-auth-certificate",
        "security-server.register-client",
        "request.reject",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn published_services_are_found_in_the_catalog() {
    let federation = Federation::start(true).await;
    federation.populate().await;
    let provider = federation.pki.sign_cert("DEV/GOV/HEALTH");
    let service = ServiceDescriptor {
        id: "DEV/GOV/HEALTH/registry/vaccinations".parse().unwrap(),
        title: "Vaccination records".to_owned(),
        description: "Vaccinations of a child by national id".to_owned(),
        endpoints: vec![Endpoint {
            method: "GET".to_owned(),
            path: "/v1/children/{id}".to_owned(),
        }],
        openapi_url: Some("http://127.0.0.1:9000/openapi.json".to_owned()),
        openapi_sha256: Some("ab".repeat(32)),
    };
    let request = RegistrationRequest {
        created_at: federation.clock.now(),
        action: RequestAction::ServicePublication {
            provider: "DEV/GOV/HEALTH/registry".parse().unwrap(),
            services: vec![service.clone()],
        },
    };
    let signed = SignedRequest::sign(
        &request,
        &[RequestSigner {
            role: SignerRole::Member,
            key: provider.key.as_ref().unwrap(),
            chain: &provider.chain,
        }],
    )
    .unwrap();
    let accepted = submit(&federation, &signed, 202).await;
    assert_eq!(accepted["status"], "approved", "auto_approve is on");
    assert_eq!(
        configuration(&federation).service(&service.id),
        Some(&service)
    );

    let base = federation.central().public_url().to_owned();
    let search = |query: &'static str| {
        let url = format!("{base}/catalog/v1/services?q={query}");
        async move {
            serde_json::from_slice::<Value>(&HttpFetcher::default().fetch(&url).await.unwrap())
                .unwrap()
        }
    };
    for query in ["vaccin", "CHILDREN", "national%20id", "DEV/GOV/HEALTH"] {
        let found = search(query).await;
        assert_eq!(
            found["services"].as_array().unwrap().len(),
            1,
            "{query}: {found}"
        );
        assert_eq!(
            found["services"][0]["openapi_url"],
            "http://127.0.0.1:9000/openapi.json"
        );
        assert_eq!(found["services"][0]["provider"], "DEV/GOV/HEALTH/registry");
    }
    assert!(
        search("tax").await["services"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn requests_can_be_submitted_on_the_public_listener() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let federation = Federation::start(true).await;
    federation.populate().await;
    let server = ServerCredentials::new(&federation.pki, "DEV/GOV/HEALTH/ss1");
    let body = server.auth_request(federation.clock.now()).to_json();
    let mut stream = tokio::net::TcpStream::connect(federation.central().public_addr)
        .await
        .unwrap();
    let head = format!(
        "POST /registration/v1/requests HTTP/1.1\r\nHost: central\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    assert!(configuration(&federation).server(&server.id).is_some());
}
