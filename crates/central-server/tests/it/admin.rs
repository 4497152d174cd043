//! The admin API: authentication, roles, validation, conflicts, audit trail, OpenAPI document.

use serde_json::json;

use crate::support::{Federation, expect_status};

#[tokio::test]
async fn tokens_and_roles() {
    let federation = Federation::start(false).await;
    let body = r#"{"code": "GOV", "description": "Government"}"#;
    let error = expect_status(&federation.anonymous, "GET", "/api/v1/members", "", 401).await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("bearer token is required")
    );
    let forged = passerelle_central_server::AdminClient::new(
        &federation.central().admin_url(),
        &[federation.pki.ca.root().clone()],
        Some("0".repeat(64)),
    )
    .unwrap();
    expect_status(&forged, "GET", "/api/v1/members", "", 401).await;
    expect_status(
        &federation.anonymous,
        "POST",
        "/api/v1/member-classes",
        body,
        401,
    )
    .await;
    let error = expect_status(
        &federation.observer,
        "POST",
        "/api/v1/member-classes",
        body,
        403,
    )
    .await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("has role observer")
    );
    expect_status(
        &federation.observer,
        "GET",
        "/api/v1/member-classes",
        "",
        200,
    )
    .await;
    expect_status(
        &federation.officer,
        "POST",
        "/api/v1/member-classes",
        body,
        201,
    )
    .await;
    // The OpenAPI document needs no token.
    expect_status(&federation.anonymous, "GET", "/api/openapi.json", "", 200).await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_duplicates_conflict() {
    let federation = Federation::start(false).await;
    federation.populate().await;
    let officer = &federation.officer;
    let cases = [
        (
            "/api/v1/members",
            r#"{"id": "DEV/GOV/HEALTH", "name": "#,
            "body",
        ),
        (
            "/api/v1/members",
            r#"{"id": "DEV/GOV/HE ALTH", "name": "x"}"#,
            "id",
        ),
        ("/api/v1/members", r#"{"id": "DEV/GOV", "name": "x"}"#, "id"),
        ("/api/v1/members", r#"{"id": "DEV/GOV/TAX"}"#, "name"),
        (
            "/api/v1/members",
            r#"{"id": "DEV/GOV/TAX", "name": "Tax", "colour": "red"}"#,
            "colour",
        ),
        (
            "/api/v1/members",
            r#"{"id": "DEV/COM/ACME", "name": "Acme"}"#,
            "id",
        ),
        (
            "/api/v1/members",
            r#"{"id": "OTHER/GOV/TAX", "name": "Tax"}"#,
            "id",
        ),
        ("/api/v1/subsystems", r#"{"id": "DEV/GOV/NOBODY/x"}"#, "id"),
        (
            "/api/v1/global-groups/members",
            r#"{"group": "DEV/none", "subsystem": "DEV/GOV/HEALTH/registry"}"#,
            "group",
        ),
        (
            "/api/v1/cas",
            r#"{"name": "bad", "certificates": ["not a pem"]}"#,
            "certificates",
        ),
        (
            "/api/v1/tsas",
            r#"{"name": "tsa", "url": 3, "certificate": ""}"#,
            "url",
        ),
        ("/api/v1/member-classes", r#"[1, 2]"#, "body"),
    ];
    for (path, body, field) in cases {
        let error = expect_status(officer, "POST", path, body, 400).await;
        assert_eq!(error["field"], field, "{path} {body}: {error}");
    }
    let error = expect_status(
        officer,
        "POST",
        "/api/v1/members",
        r#"{"id": "DEV/GOV/HEALTH", "name": "again"}"#,
        409,
    )
    .await;
    assert_eq!(error["error"], "member DEV/GOV/HEALTH already exists");
    expect_status(
        officer,
        "POST",
        "/api/v1/subsystems",
        r#"{"id": "DEV/GOV/HEALTH/registry"}"#,
        409,
    )
    .await;
    expect_status(
        officer,
        "POST",
        "/api/v1/cas",
        &federation.pki.ca_json("dev").to_string(),
        409,
    )
    .await;
    expect_status(officer, "GET", "/api/v1/nothing-here", "", 404).await;
}

#[tokio::test]
async fn every_change_is_audited_and_published() {
    let federation = Federation::start(false).await;
    let serial_before = federation.central().published().unwrap().serial;
    federation.populate().await;
    let officer = &federation.officer;
    officer
        .post(
            "/api/v1/global-groups",
            &json!({"id": "DEV/health-agencies", "description": "Health"}),
        )
        .await
        .unwrap();
    officer
        .post(
            "/api/v1/global-groups/members",
            &json!({"group": "DEV/health-agencies", "subsystem": "DEV/GOV/HEALTH/registry"}),
        )
        .await
        .unwrap();
    let tsa = federation.pki.ca.tsa().certificate.to_pem();
    officer
        .post(
            "/api/v1/tsas",
            &json!({"name": "dev-tsa", "url": "http://127.0.0.1:8889", "certificate": tsa}),
        )
        .await
        .unwrap();
    let mut settings = officer.get("/api/v1/settings").await.unwrap();
    settings["config_validity_secs"] = json!(900);
    officer.put("/api/v1/settings", &settings).await.unwrap();

    let audit = federation.observer.get("/api/v1/audit").await.unwrap();
    let actions: Vec<(String, String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["actor"] != "system")
        .map(|entry| {
            (
                entry["actor"].as_str().unwrap().to_owned(),
                entry["action"].as_str().unwrap().to_owned(),
                entry["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("member-class.add", "GOV"),
        ("member.add", "DEV/GOV/HEALTH"),
        ("member.add", "DEV/GOV/EDU"),
        ("subsystem.add", "DEV/GOV/HEALTH/registry"),
        ("subsystem.add", "DEV/GOV/EDU/schools"),
        ("ca.add", "dev"),
        ("global-group.add", "DEV/health-agencies"),
        ("global-group.add-member", "DEV/health-agencies"),
        ("tsa.add", "dev-tsa"),
        ("settings.set", "settings"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, t)| ("alice".to_owned(), (*a).to_owned(), (*t).to_owned()))
        .collect();
    assert_eq!(actions, expected);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["at"] == "2027-01-15T08:00:00Z")
    );

    // Each change republished the configuration, which now holds all of it.
    let published = federation.central().published().unwrap();
    assert_eq!(published.serial, serial_before + 10);
    let conf = passerelle_globalconf::GlobalConf::from_json(&published.bytes).unwrap();
    assert!(conf.is_in_global_group(
        &"DEV/GOV/HEALTH/registry".parse().unwrap(),
        &"DEV/health-agencies".parse().unwrap()
    ));
    assert_eq!(conf.approved_tsas.len(), 1);
    assert_eq!(conf.ca_certificates().len(), 2);
    assert_eq!(conf.settings.config_validity_secs, 900);
    assert_eq!(
        conf.expires_at,
        conf.generated_at + std::time::Duration::from_secs(900)
    );
}

#[tokio::test]
async fn the_served_openapi_document_is_the_documented_one() {
    let federation = Federation::start(false).await;
    let served = federation.anonymous.get("/api/openapi.json").await.unwrap();
    let documented: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/central-admin-openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        served, documented,
        "docs/central-admin-openapi.json differs from the served document"
    );
    assert_eq!(served["openapi"], "3.0.3");
    // Every route the server answers is documented.
    for path in [
        "/api/v1/members",
        "/api/v1/requests/{id}/approve",
        "/api/v1/audit",
        "/api/v1/cas",
        "/api/v1/tsas",
    ] {
        assert!(
            served["paths"].get(path).is_some(),
            "{path} is not documented"
        );
    }
}
