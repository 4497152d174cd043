//! Client-side checks, backend failures and limits: each answers its code and the server keeps
//! serving.

use std::time::{Duration, SystemTime};

use crate::federation::{CLIENT, Federation, Options};

const VACCINATIONS: &str = "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children/1";

#[tokio::test]
async fn client_side_refusals() {
    let federation = Federation::start(Options::default()).await;
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str, u16);
    let cases: [Case<'_>; 7] = [
        (
            "spoofed client",
            VACCINATIONS,
            vec![("X-Road-Client", "DEV/GOV/HEALTH/patients")],
            "Client.InvalidClient",
            403,
        ),
        (
            "client of another server's member",
            VACCINATIONS,
            vec![("X-Road-Client", "DEV/GOV/EDUCATION/other")],
            "Client.InvalidClient",
            403,
        ),
        (
            "missing client",
            VACCINATIONS,
            vec![],
            "Client.MissingHeader",
            400,
        ),
        (
            "malformed client",
            VACCINATIONS,
            vec![("X-Road-Client", "DEV/GOV")],
            "Client.BadRequest",
            400,
        ),
        (
            "bad path",
            "/r1/DEV/GOV",
            vec![("X-Road-Client", CLIENT)],
            "Client.BadRequest",
            400,
        ),
        (
            "unknown provider",
            "/r1/DEV/GOV/NOBODY/x/y",
            vec![("X-Road-Client", CLIENT)],
            "Server.ClientProxy.UnknownMember",
            400,
        ),
        (
            "unknown service",
            "/r1/DEV/GOV/HEALTH/patients/nothing",
            vec![("X-Road-Client", CLIENT)],
            "Server.ServerProxy.UnknownService",
            404,
        ),
    ];
    for (name, target, headers, code, status) in cases {
        let reply = federation.call("GET", target, &headers, b"").await;
        assert_eq!(reply.fault().as_deref(), Some(code), "{name}: {reply:?}");
        assert_eq!(reply.status, status, "{name}");
    }
    let pinned = federation
        .call(
            "GET",
            VACCINATIONS,
            &[
                ("X-Road-Client", CLIENT),
                ("X-Road-Security-Server", "DEV/GOV/EDUCATION/ss-education"),
            ],
            b"",
        )
        .await;
    assert_eq!(
        pinned.fault().as_deref(),
        Some("Server.ClientProxy.NoProviderServer"),
        "{pinned:?}"
    );
    assert!(federation.seen_paths().is_empty());
}

/// The consumer gives up on a provider that does not answer within its `total_timeout_ms`
/// (here before the provider's own service timeout), answers the caller with
/// `Server.ClientProxy.Timeout`, and goes on serving.
#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_a_client_proxy_timeout() {
    let federation = Federation::start(Options {
        consumer_total_timeout_ms: Some(100),
        ..Options::default()
    })
    .await;
    // Not the provider's 300 ms service timeout, which answers ServiceTimeout.
    federation
        .call_as_school("GET", "/r1/DEV/GOV/HEALTH/patients/slow/x", b"")
        .await
        .assert_fault("Server.ClientProxy.Timeout", 504);
    federation.assert_still_serves().await;
}

#[tokio::test]
async fn backend_down_slow_and_disabled() {
    let federation = Federation::start(Options::default()).await;
    for (path, code, status) in [
        ("down", "Server.ServerProxy.ServiceFailed", 502),
        ("slow", "Server.ServerProxy.ServiceTimeout", 504),
        ("closed", "Server.ServerProxy.ServiceDisabled", 503),
    ] {
        federation
            .call_as_school("GET", &format!("/r1/DEV/GOV/HEALTH/patients/{path}/x"), b"")
            .await
            .assert_fault(code, status);
    }
    federation.assert_still_serves().await;
}

#[tokio::test]
async fn oversize_body_and_headers_are_refused() {
    let federation = Federation::start(Options {
        max_body_bytes: Some(1024),
        ..Options::default()
    })
    .await;
    let big = vec![b'x'; 4096];
    let reply = federation
        .call_as_school(
            "POST",
            "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children",
            &big,
        )
        .await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Client.RequestTooLarge"),
        "{reply:?}"
    );
    assert_eq!(reply.status, 413);
    let long = "y".repeat(70 * 1024);
    let reply = federation
        .call(
            "GET",
            VACCINATIONS,
            &[("X-Road-Client", CLIENT), ("X-Long", &long)],
            b"",
        )
        .await;
    assert!(reply.status == 431, "{reply:?}");
    // The provider enforces its own limit on what a peer forwards.
    let mut peer = crate::federation::RawPeer::connect(
        federation.health.server_addr,
        &federation.education_auth,
    )
    .await;
    let crafted = crate::federation::Crafted {
        method: "POST",
        body: &big,
        ..crate::federation::Crafted::new(VACCINATIONS)
    };
    let reply = peer
        .send(crafted.build(&federation.education_signing))
        .await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.RequestTooLarge"),
        "{reply:?}"
    );
    let ok = federation
        .call_as_school(
            "POST",
            "/r1/DEV/GOV/HEALTH/patients/vaccinations/v1/children",
            b"small",
        )
        .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(federation.seen_paths().len() == 1);
}

#[tokio::test]
async fn an_expired_global_configuration_stops_messaging() {
    let federation = Federation::start(Options::default()).await;
    let mut expired = federation.global.clone();
    expired.generated_at = SystemTime::now() - Duration::from_secs(7200);
    expired.expires_at = SystemTime::now() - Duration::from_secs(1);
    federation.conf.replace(expired);
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ClientProxy.OutdatedGlobalConf"),
        "{reply:?}"
    );
    assert_eq!(reply.status, 503);
    assert!(federation.seen_paths().is_empty());
}

#[tokio::test]
async fn a_log_failure_answers_logging_failed() {
    let federation = Federation::start(Options::default()).await;
    federation
        .health_log
        .fail_with(Some("disk full".to_owned()));
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ServerProxy.LoggingFailed"),
        "{reply:?}"
    );
    federation.health_log.fail_with(None);
    federation
        .education_log
        .fail_with(Some("disk full".to_owned()));
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ClientProxy.LoggingFailed"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_provider_with_an_unregistered_certificate_is_refused() {
    let federation = Federation::start(Options::default()).await;
    let mut global = federation.global.clone();
    // The configuration registers another certificate for the provider than the one it presents.
    global.security_servers[0].auth_cert_hashes = vec![passerelle_globalconf::CertHash::of(
        &federation.education_auth.chain[0],
    )];
    federation.conf.replace(global);
    let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(
        reply.fault().as_deref(),
        Some("Server.ClientProxy.SslAuthenticationFailed"),
        "{reply:?}"
    );
    assert_eq!(reply.status, 502);
    assert!(federation.seen_paths().is_empty());
}

#[tokio::test]
async fn connections_beyond_the_limit_are_answered_too_many_connections() {
    let federation = Federation::start(Options {
        consumer_max_connections: Some(1),
        ..Options::default()
    })
    .await;
    // One local system holds the only connection open (an unfinished request head).
    let mut holder = tokio::net::TcpStream::connect(federation.education.client_addr.unwrap())
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut holder, b"GET /listClients HTTP/1.1\r\n")
        .await
        .unwrap();
    let refused = federation.call_as_school("GET", VACCINATIONS, b"").await;
    assert_eq!(
        refused.fault().as_deref(),
        Some("Server.ClientProxy.TooManyConnections"),
        "{refused:?}"
    );
    assert_eq!(refused.status, 503);
    // Once the connection is released, calls go through again.
    drop(holder);
    let mut answered = None;
    for _ in 0..50 {
        let reply = federation.call_as_school("GET", VACCINATIONS, b"").await;
        if reply.status == 200 {
            answered = Some(reply);
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        answered.is_some(),
        "the permit of a closed connection is released"
    );
}
