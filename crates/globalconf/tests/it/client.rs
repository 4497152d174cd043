//! The client: cache through an outage until expiry, recovery, durability, back-off.

use std::sync::Arc;
use std::time::Duration;

use passerelle_globalconf::{ConfClient, ConfError, PollPolicy};

use crate::support::{FakeCentral, now, pki};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn serves_the_cache_through_an_outage_then_reports_expiry_then_recovers() {
    let pki = pki("DEV");
    let central = FakeCentral::default();
    let cache = tempfile::tempdir().unwrap();
    let client = ConfClient::new(
        pki.anchor(),
        cache.path(),
        Arc::new(central.clone()),
        PollPolicy::default(),
        now(),
    );

    let error = client.current(now()).unwrap_err();
    assert!(
        matches!(error, ConfError::NeverDownloaded { last_error: None }),
        "{error}"
    );

    central.serve(pki.signed(&pki.conf("DEV", 1, now())));
    assert_eq!(client.refresh(now()).await.unwrap().serial, 1);

    central.go_down();
    let at = now() + 5 * MINUTE;
    assert!(client.refresh(at).await.is_err());
    assert_eq!(
        client.current(at).unwrap().serial,
        1,
        "the cached copy is served while unexpired"
    );
    let status = client.status(at);
    assert!(status.valid);
    assert_eq!(status.consecutive_failures, 1);
    assert!(status.last_error.unwrap().contains("connection refused"));
    assert_eq!(status.last_success, Some(now()));

    let after_expiry = now() + 10 * MINUTE;
    let error = client.current(after_expiry).unwrap_err();
    assert_eq!(
        error.to_string(),
        "global configuration serial 1 expired at 2027-01-15T08:10:00Z"
    );
    assert!(!client.status(after_expiry).valid);

    // The central server comes back with a newer configuration: no restart needed.
    let later = now() + 12 * MINUTE;
    central.serve(pki.signed(&pki.conf("DEV", 2, later)));
    assert_eq!(client.refresh(later).await.unwrap().serial, 2);
    assert_eq!(client.current(later).unwrap().serial, 2);
    assert_eq!(client.status(later).consecutive_failures, 0);
}

#[tokio::test]
async fn the_cache_survives_a_restart_and_the_serial_never_goes_back() {
    let pki = pki("DEV");
    let central = FakeCentral::default();
    let cache = tempfile::tempdir().unwrap();
    {
        let client = ConfClient::new(
            pki.anchor(),
            cache.path(),
            Arc::new(central.clone()),
            PollPolicy::default(),
            now(),
        );
        central.serve(pki.signed(&pki.conf("DEV", 5, now())));
        client.refresh(now()).await.unwrap();
    }
    central.go_down();
    let restarted = ConfClient::new(
        pki.anchor(),
        cache.path(),
        Arc::new(central.clone()),
        PollPolicy::default(),
        now(),
    );
    assert_eq!(restarted.current(now() + MINUTE).unwrap().serial, 5);

    // A replayed older configuration is refused and the current one stays.
    central.serve(pki.signed(&pki.conf("DEV", 4, now() + MINUTE)));
    let error = restarted.refresh(now() + MINUTE).await.unwrap_err();
    assert!(
        matches!(
            error,
            ConfError::SerialWentBack {
                accepted: 5,
                received: 4
            }
        ),
        "{error}"
    );
    assert_eq!(restarted.current(now() + MINUTE).unwrap().serial, 5);

    // A cache written for another anchor is ignored, and said so.
    let stranger = crate::support::pki("DEV");
    let other = ConfClient::new(
        stranger.anchor(),
        cache.path(),
        Arc::new(central.clone()),
        PollPolicy::default(),
        now(),
    );
    let error = other.current(now()).unwrap_err();
    assert!(
        error.to_string().contains("cached copy rejected"),
        "{error}"
    );
}

#[tokio::test]
async fn a_rejected_download_keeps_the_previous_configuration() {
    let pki = pki("DEV");
    let central = FakeCentral::default();
    let cache = tempfile::tempdir().unwrap();
    let client = ConfClient::new(
        pki.anchor(),
        cache.path(),
        Arc::new(central.clone()),
        PollPolicy::default(),
        now(),
    );
    central.serve(pki.signed(&pki.conf("DEV", 1, now())));
    client.refresh(now()).await.unwrap();
    let (mut bytes, signature) = pki.signed(&pki.conf("DEV", 2, now()));
    bytes.push(b' ');
    central.serve((bytes, signature));
    assert!(matches!(
        client.refresh(now()).await.unwrap_err(),
        ConfError::BadSignature { .. }
    ));
    assert_eq!(client.current(now()).unwrap().serial, 1);
}

#[tokio::test(start_paused = true)]
async fn polling_backs_off_exponentially_and_recovers() {
    let pki = pki("DEV");
    let central = FakeCentral::default();
    central.go_down();
    let cache = tempfile::tempdir().unwrap();
    let policy = PollPolicy {
        interval: None,
        initial_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(8),
    };
    let client = Arc::new(ConfClient::new(
        pki.anchor(),
        cache.path(),
        Arc::new(central.clone()),
        policy,
        now(),
    ));
    let start = tokio::time::Instant::now();
    let wall_clock = move || now() + start.elapsed();
    let poller = client.spawn_polling(wall_clock);

    // Attempts at 0, 1, 3, 7, 15, 23 s: delays 1, 2, 4, 8 and then capped at 8.
    let expected = [
        (500, 1),
        (1_500, 2),
        (3_500, 3),
        (7_500, 4),
        (15_500, 5),
        (22_900, 5),
        (23_500, 6),
    ];
    for (at_millis, fetches) in expected {
        tokio::time::sleep_until(start + Duration::from_millis(at_millis)).await;
        assert_eq!(central.fetches(), fetches, "at {at_millis} ms");
    }
    assert!(matches!(
        client.current(wall_clock()).unwrap_err(),
        ConfError::NeverDownloaded {
            last_error: Some(_)
        }
    ));

    // The server comes back: the next attempt (at 31 s) succeeds, then polls follow the
    // configuration's interval (60 s).
    central.serve(pki.signed(&pki.conf("DEV", 1, now() + Duration::from_secs(30))));
    tokio::time::sleep_until(start + Duration::from_millis(31_500)).await;
    assert_eq!(central.fetches(), 7);
    assert_eq!(client.current(wall_clock()).unwrap().serial, 1);
    assert_eq!(client.next_delay(), Duration::from_secs(60));
    tokio::time::sleep_until(start + Duration::from_millis(90_500)).await;
    assert_eq!(central.fetches(), 7);
    tokio::time::sleep_until(start + Duration::from_millis(91_500)).await;
    assert_eq!(central.fetches(), 8);
    poller.stop().await;
}

#[tokio::test]
async fn http_fetcher_reports_an_unreachable_server() {
    use passerelle_globalconf::{Fetcher, HttpFetcher};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let error = HttpFetcher::default()
        .fetch(&format!("http://{address}/globalconf.json"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("connect failed"), "{error}");
}
