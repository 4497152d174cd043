//! GET and POST through both security servers, response headers, ids, logs and metaservices.

use base64::Engine;
use passerelle_messagelog::Side;
use passerelle_pki::merkle::leaf_hash;

use crate::federation::{CLIENT, Federation, Options};

const VACCINATIONS: &str = "/r1/DEV/GOV/HEALTH/patients/vaccinations";

#[tokio::test]
async fn get_and_post_cross_both_servers_with_every_response_header() {
    let federation = Federation::start(Options::default()).await;

    let target = format!("{VACCINATIONS}/v1/children/42?year=2024");
    let headers = [
        ("X-Road-Client", CLIENT),
        ("X-Road-UserId", "EE12345"),
        ("X-Road-Issue", "case-7"),
        ("Accept", "application/json"),
    ];
    let first = federation.call("GET", &target, &headers, b"").await;
    assert_eq!(first.status, 200, "{first:?}");
    assert_eq!(first.fault(), None);
    assert_eq!(first.header("x-road-client"), Some(CLIENT));
    assert_eq!(
        first.header("x-road-service"),
        Some("DEV/GOV/HEALTH/patients/vaccinations")
    );
    let message_id = first.header("x-road-id").unwrap();
    assert_eq!(
        message_id.len(),
        36,
        "generated ids are UUIDs: {message_id}"
    );
    let request_id = first.header("x-road-request-id").unwrap().to_owned();
    let hash = base64::engine::general_purpose::STANDARD
        .decode(first.header("x-road-request-hash").unwrap())
        .unwrap();
    assert_eq!(hash.len(), 32);
    assert_eq!(
        first.header("x-backend"),
        Some("yes"),
        "backend headers travel back"
    );
    assert_eq!(first.json()["method"], "GET");
    assert_eq!(first.json()["path"], "/api/v1/children/42?year=2024");

    let seen = federation.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.headers.get("x-road-client").unwrap(), CLIENT);
    assert_eq!(seen.headers.get("x-road-userid").unwrap(), "EE12345");
    assert_eq!(seen.headers.get("x-road-issue").unwrap(), "case-7");
    assert_eq!(seen.headers.get("x-road-id").unwrap(), message_id);
    assert_eq!(seen.headers.get("accept").unwrap(), "application/json");
    assert_ne!(
        seen.headers.get("user-agent").map(|v| v.as_bytes()),
        Some(b"test".as_slice()),
        "User-Agent is not forwarded"
    );
    assert!(
        seen.headers.get("x-passerelle-signature").is_none(),
        "the envelope stops at the provider"
    );

    let second = federation.call("GET", &target, &headers, b"").await;
    assert_eq!(second.status, 200);
    assert_ne!(
        second.header("x-road-request-id").unwrap(),
        request_id,
        "each exchange gets its own request id"
    );
    assert_ne!(second.header("x-road-id").unwrap(), message_id);

    let post = federation
        .call(
            "POST",
            &format!("{VACCINATIONS}/v1/children"),
            &[
                ("X-Road-Client", CLIENT),
                ("X-Road-Id", "my-message-1"),
                ("Content-Type", "application/json"),
            ],
            br#"{"name":"Ada"}"#,
        )
        .await;
    assert_eq!(post.status, 200, "{post:?}");
    assert_eq!(
        post.header("x-road-id"),
        Some("my-message-1"),
        "a caller's message id is kept"
    );
    assert_eq!(post.json()["body"], r#"{"name":"Ada"}"#);
    assert_eq!(post.json()["method"], "POST");

    // Both sides logged the three exchanges, with signing inputs covered by their proofs.
    for (log, side) in [
        (&federation.education_log, Side::Consumer),
        (&federation.health_log, Side::Provider),
    ] {
        let records = log.records();
        assert_eq!(records.len(), 3, "{side:?}");
        for record in records {
            assert_eq!(record.side, side);
            for part in [&record.request, &record.response] {
                let signature = part.signature.as_ref().unwrap();
                let batch = signature.batch.as_ref().unwrap();
                batch
                    .proof
                    .verify(&leaf_hash(&part.signing_input), &batch.root.0)
                    .unwrap();
            }
        }
    }
    let consumer = federation.education_log.records();
    let provider = federation.health_log.records();
    assert_eq!(
        consumer[2].request.signing_input, provider[2].request.signing_input,
        "both sides log the same signed request"
    );
    assert_eq!(
        consumer[2].response.signing_input,
        provider[2].response.signing_input
    );
}

#[tokio::test]
async fn backend_errors_pass_through_without_x_road_error() {
    let federation = Federation::start(Options::default()).await;
    let reply = federation
        .call_as_school("GET", &format!("{VACCINATIONS}/error/7"), b"")
        .await;
    // The path is under the service but the backend answers 404: a provider's answer, not a fault.
    assert_eq!(reply.status, 404, "{reply:?}");
    assert_eq!(
        reply.header("x-road-error"),
        None,
        "a forged X-Road-Error from the backend is stripped"
    );
    assert_eq!(reply.json()["error"], "no such child");
    assert!(reply.header("x-road-request-id").is_some());
}

#[tokio::test]
async fn metaservices_list_allowed_and_openapi_without_servers() {
    let federation = Federation::start(Options::default()).await;
    let clients = federation.call_as_school("GET", "/listClients", b"").await;
    assert_eq!(clients.status, 200, "{clients:?}");
    let listed: Vec<String> = clients.json()["member"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["id"]["subsystem_code"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(listed, ["patients", "schools", "other"]);

    let methods = federation
        .call_as_school("GET", "/r1/DEV/GOV/HEALTH/patients/listMethods", b"")
        .await;
    assert_eq!(methods.status, 200, "{methods:?}");
    let codes = |reply: &crate::federation::Reply| -> Vec<String> {
        reply.json()["service"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["service_code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        codes(&methods),
        ["down", "records", "slow", "vaccinations"],
        "disabled services are not listed"
    );
    let allowed = federation
        .call_as_school("GET", "/r1/DEV/GOV/HEALTH/patients/allowedMethods", b"")
        .await;
    assert_eq!(codes(&allowed), ["down", "records", "slow", "vaccinations"]);

    // One document from the service's `openapi_file`, one the provider fetches from its
    // `openapi_url`: both stripped of their server URLs.
    for service in ["vaccinations", "records"] {
        let openapi = federation
            .call_as_school(
                "GET",
                &format!("/r1/DEV/GOV/HEALTH/patients/getOpenAPI?serviceCode={service}"),
                b"",
            )
            .await;
        assert_eq!(openapi.status, 200, "{service}: {openapi:?}");
        let text = String::from_utf8_lossy(&openapi.body);
        assert!(text.contains("/v1/children/{id}"), "{service}: {text}");
        assert!(
            !text.contains("10.0.0.7") && !text.contains("servers"),
            "{service}: server URLs are stripped: {text}"
        );
    }
    assert!(
        federation
            .seen_paths()
            .iter()
            .any(|path| path == "/openapi.json"),
        "fetched from the backend"
    );
    // One that cannot be fetched is the service's failure, not the caller's.
    federation
        .call_as_school(
            "GET",
            "/r1/DEV/GOV/HEALTH/patients/getOpenAPI?serviceCode=down",
            b"",
        )
        .await
        .assert_fault("Server.ServerProxy.ServiceFailed", 502);
}
