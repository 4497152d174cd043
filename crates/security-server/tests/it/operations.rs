//! Health, metrics and reloading the configuration.

use crate::federation::{Federation, Options, raw_http};

const VACCINATIONS: &str = "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/1";

#[tokio::test]
async fn health_and_metrics() {
    let federation = Federation::start(Options::default()).await;
    assert_eq!(
        federation
            .call_as_school("GET", VACCINATIONS, b"")
            .await
            .status,
        200
    );
    let admin = federation.health.admin_addr.unwrap();
    let health = raw_http(admin, "GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200, "{health:?}");
    let report = health.json();
    assert_eq!(report["status"], "ok");
    assert_eq!(report["global_configuration"]["valid"], true);
    assert!(
        report["global_configuration"]["valid_until"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        report["certificates"].as_array().unwrap().len(),
        2,
        "auth and one signing certificate"
    );
    assert!(report["certificates"][0]["not_after"].is_string());
    assert_eq!(report["message_log"]["writable"], true);
    let log = report["message_log"].as_object().unwrap();
    assert_eq!(log.get("index_problem"), Some(&serde_json::Value::Null));

    federation
        .health_log
        .fail_with(Some("disk full".to_owned()));
    let failing = raw_http(admin, "GET", "/health", &[], b"").await;
    assert_eq!(failing.status, 503);
    assert_eq!(failing.json()["message_log"]["problem"], "disk full");

    let metrics = raw_http(admin, "GET", "/metrics", &[], b"").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"passerelle_exchanges_total{side="provider",client="DEV/GOV/EDUCATION/schools",service="DEV/GOV/HEALTH/patients/vaccinations",result="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("passerelle_exchange_duration_seconds_count{side=\"provider\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("passerelle_signature_batch_size_count"),
        "{text}"
    );
    // This federation logs in memory: the sync histogram is there, and empty.
    assert!(
        text.contains("passerelle_message_log_sync_seconds_count 0"),
        "{text}"
    );
    let consumer = federation.education.metrics();
    assert!(consumer.contains(r#"side="consumer""#), "{consumer}");
}

#[tokio::test]
async fn reload_applies_a_valid_file_and_keeps_the_old_one_otherwise() {
    let federation = Federation::start(Options::default()).await;
    let path = &federation.health_config_path;
    let original = std::fs::read_to_string(path).unwrap();

    std::fs::write(path, format!("{original}\n[unknown_section]\nx = 1\n")).unwrap();
    let error = federation.health.reload_from(path).unwrap_err().to_string();
    assert!(error.contains("unknown_section"), "{error}");
    assert_eq!(
        federation
            .call_as_school("GET", VACCINATIONS, b"")
            .await
            .status,
        200,
        "the old configuration still runs"
    );

    let disabled = original.replacen(
        "id = \"DEV/GOV/HEALTH/patients/vaccinations\"",
        "id = \"DEV/GOV/HEALTH/patients/vaccinations\"\nenabled = false",
        1,
    );
    std::fs::write(path, disabled).unwrap();
    federation.health.reload_from(path).unwrap();
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.ServiceDisabled"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn the_https_client_listener_serves_local_systems() {
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use passerelle_security_server::deps::{MemoryLog, SystemClock};

    let federation = Federation::start(Options::default()).await;
    let education = std::fs::read_to_string(
        federation
            .health_config_path
            .with_file_name("education.toml"),
    )
    .unwrap();
    let key = federation
        .health_config_path
        .with_file_name("ss-education-auth.key.pem");
    let chain = federation
        .health_config_path
        .with_file_name("ss-education-auth.chain.pem");
    let https = education.replacen(
        "client_http = \"127.0.0.1:0\"",
        &format!(
            "client_https = {{ address = \"127.0.0.1:0\", key = \"{}\", certificate = \"{}\" }}",
            key.display(),
            chain.display()
        ),
        1,
    );
    let config =
        passerelle_security_server::ServerConfig::parse(&https, std::path::Path::new("/")).unwrap();
    let deps = passerelle_security_server::Deps {
        conf: federation.conf.clone(),
        log: Arc::new(MemoryLog::default()),
        clock: Arc::new(SystemClock),
    };
    let server = passerelle_security_server::start(config, deps)
        .await
        .unwrap();
    assert!(server.client_addr.is_none());
    let address = server.client_https_addr.unwrap();

    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(crate::federation::accept_anything_client())
        .connect(
            rustls_pki_types::ServerName::try_from("gateway").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::builder()
        .uri(VACCINATIONS)
        .header("host", "gateway")
        .header("x-road-client", crate::federation::CLIENT)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-road-request-hash"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("/api/v1/children/1"));
    server.shutdown().await;
}
