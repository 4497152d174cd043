//! Path-canonicalisation attacks against an endpoint-scoped right: schools may only
//! `GET /public/**` of the records service.

use crate::federation::{Federation, Options};

const RECORDS: &str = "/r1/DEV/GOV/HEALTH/patients/records";

#[tokio::test]
async fn no_encoding_of_dot_dot_or_slash_reaches_private() {
    let federation = Federation::start(Options::default()).await;
    let allowed = federation
        .call_as_school("GET", &format!("{RECORDS}/public/a"), b"")
        .await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let allowed = federation
        .call_as_school("GET", &format!("{RECORDS}/public//b/./c"), b"")
        .await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(
        federation.seen_paths(),
        ["/api/public/a", "/api/public/b/c"],
        "the backend sees the canonical path"
    );

    let attacks = [
        "/private",
        "/public/../private",
        "/public/%2e%2e/private",
        "/public/%2E%2E/private",
        "/public/%2e%2E/private",
        "/public/.%2e/private",
        "/public%2F..%2Fprivate",
        "/public%2f%2e%2e%2fprivate",
        "/public/..%2Fprivate",
        "//public/..//private",
        "/public/./../private",
        "/public/..;/private",
        "/public/.;/../private",
        "/public/%252e%252e/private",
        "/public/%252E%252E%252Fprivate",
        "/public/..%5Cprivate",
        "/public/..%5cprivate",
        "/public/..\\private",
        "/public\\..\\private",
        "/public/%2e%2e%5cprivate",
        "/public/%00/../../private",
        "/public/%c0%ae%c0%ae/private",
        "/PUBLIC/../private",
        "/Public/a",
        "/public/a/../../private",
        "/public/../../private",
    ];
    for attack in attacks {
        let reply = federation
            .call_as_school("GET", &format!("{RECORDS}{attack}"), b"")
            .await;
        assert_ne!(reply.status, 200, "{attack} got through: {reply:?}");
        assert_eq!(
            reply.fault().as_deref(),
            Some("Server.ServerProxy.AccessDenied"),
            "{attack}: {reply:?}"
        );
    }
    let post = federation
        .call_as_school("POST", &format!("{RECORDS}/public/a"), b"x")
        .await;
    assert_eq!(
        post.fault().as_deref(),
        Some("Server.ServerProxy.AccessDenied"),
        "the right is for GET only"
    );
    assert!(
        federation
            .seen_paths()
            .iter()
            .all(|path| !path.contains("private")),
        "the backend saw {:?}",
        federation.seen_paths()
    );
    assert_eq!(federation.seen_paths().len(), 2);
}
