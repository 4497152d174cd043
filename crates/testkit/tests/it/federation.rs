use std::time::Duration;

use passerelle_messagelog::Durability;
use passerelle_testkit::http1::{self, Message};
use passerelle_testkit::{Federation, FederationOptions, names};

const TIMEOUT: Duration = Duration::from_secs(30);

fn request(method: &str, target: &str, client: &str, body: &[u8]) -> Message {
    let mut headers = vec![
        ("host".to_owned(), "localhost".to_owned()),
        ("x-road-client".to_owned(), client.to_owned()),
    ];
    if !body.is_empty() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    Message {
        start: [method.to_owned(), target.to_owned(), "HTTP/1.1".to_owned()],
        headers,
        body: body.to_vec(),
    }
}

async fn call(federation: &Federation, method: &str, path: &str, body: &[u8]) -> Message {
    let address = format!("127.0.0.1:{}", federation.ports.consumer_client);
    let target = format!("/r1/{}{path}", names::SERVICE);
    http1::request(
        &address,
        &request(method, &target, names::CONSUMER_SUBSYSTEM, body),
        TIMEOUT,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federation_onboarded_through_the_central_server_exchanges_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let options = FederationOptions {
        dir: dir.path().to_path_buf(),
        durability: Durability::Fsync,
    };
    let federation = Federation::start(options.clone()).await.unwrap();

    // The configuration the servers run on came from the central server's registry.
    let conf = federation
        .server(names::CONSUMER_SERVER)
        .unwrap()
        .conf
        .current(std::time::SystemTime::now())
        .unwrap();
    assert!(
        conf.server(&names::PROVIDER_SERVER.parse().unwrap())
            .is_some()
    );
    assert_eq!(
        conf.servers_hosting(&names::CONSUMER_SUBSYSTEM.parse().unwrap())
            .len(),
        1
    );
    assert!(conf.service(&names::SERVICE.parse().unwrap()).is_some());

    let first = call(&federation, "GET", names::ALLOWED_PATH, b"").await;
    assert_eq!(
        first.start[1],
        "200",
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(
        first.header("x-road-client"),
        Some(names::CONSUMER_SUBSYSTEM)
    );
    assert_eq!(first.header("x-road-service"), Some(names::SERVICE));
    let second = call(&federation, "GET", names::ALLOWED_PATH, b"").await;
    assert_ne!(
        first.header("x-road-request-id"),
        second.header("x-road-request-id")
    );
    assert_ne!(first.header("x-road-id"), second.header("x-road-id"));

    // POST is outside the consumer's right (GET /v1/children/** only).
    let posted = call(
        &federation,
        "POST",
        "/v1/children/42/vaccinations",
        br#"{"vaccine":"BCG"}"#,
    )
    .await;
    assert_eq!(
        posted.header("x-road-error"),
        Some("Server.ServerProxy.AccessDenied")
    );
    let denied = call(&federation, "GET", names::DENIED_PATH, b"").await;
    assert_eq!(
        denied.header("x-road-error"),
        Some("Server.ServerProxy.AccessDenied")
    );
    let error: serde_json::Value = serde_json::from_slice(&denied.body).unwrap();
    assert_eq!(error["type"], "Server.ServerProxy.AccessDenied");
    assert!(
        error["detail"]
            .as_str()
            .is_some_and(|detail| !detail.is_empty())
    );

    // A path that climbs out of the granted prefix is canonicalised before the check.
    let climbing = call(&federation, "GET", "/v1/children/%2e%2e/admin/records", b"").await;
    assert_eq!(
        climbing.header("x-road-error"),
        Some("Server.ServerProxy.AccessDenied")
    );

    let ports = federation.ports.clone();
    federation.shutdown().await;

    // A second start on the same directory reuses the PKI, ports and registry.
    let federation = Federation::start(options).await.unwrap();
    assert_eq!(federation.ports, ports);
    let again = call(&federation, "GET", names::ALLOWED_PATH, b"").await;
    assert_eq!(again.start[1], "200");
    federation.shutdown().await;
}
