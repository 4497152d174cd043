//! The shipped configuration parses; unknown keys and bad values are all reported at once.

use std::path::Path;

use passerelle_security_server::ServerConfig;

fn shipped() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/security-server.toml"),
    )
    .unwrap()
}

#[test]
fn the_shipped_configuration_is_valid() {
    let config = ServerConfig::parse(&shipped(), Path::new("/etc/passerelle"))
        .unwrap_or_else(|problems| panic!("{problems:#?}"));
    assert_eq!(config.id.to_string(), "DEV/GOV/HEALTH/ss-health");
    assert_eq!(config.limits.max_body_bytes, 10 * 1024 * 1024);
    assert!(!config.services.is_empty() && !config.access.is_empty());
    assert!(
        config.auth.key.starts_with("/etc/passerelle"),
        "relative paths are resolved against the file's directory"
    );
    assert!(config.preallocate_message_log, "preallocated by default");
    let text = shipped().replacen(
        "# preallocate_message_log = true",
        "preallocate_message_log = false",
        1,
    );
    let config = ServerConfig::parse(&text, Path::new("/etc/passerelle"))
        .unwrap_or_else(|problems| panic!("{problems:#?}"));
    assert!(!config.preallocate_message_log);
}

#[test]
fn unknown_keys_are_errors_and_all_are_reported() {
    let text = shipped()
        .replacen("[server]", "[server]\ncolour = \"blue\"", 1)
        .replacen("[limits]", "[limits]\nmax_bodysize = 5", 1)
        .replacen("[listeners]", "[listeners]\nadmn = \"127.0.0.1:1\"", 1)
        + "\n[extra]\nkey = 1\n";
    let problems = ServerConfig::parse(&text, Path::new(".")).unwrap_err();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for expected in ["server", "limits", "listeners", "extra"] {
        assert!(
            keys.contains(&expected),
            "{expected} missing from {problems:#?}"
        );
    }
    let text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for word in ["colour", "max_bodysize", "admn", "unknown section"] {
        assert!(text.contains(word), "{word} not named in:\n{text}");
    }
}

#[test]
fn semantic_problems_name_their_keys() {
    let text = shipped()
        .replacen(
            "backend = \"http://127.0.0.1:9000/vaccinations\"",
            "backend = \"ftp://x\"",
            1,
        )
        .replacen(
            "subject = \"subsystem:DEV/GOV/EDUCATION/schools\"",
            "subject = \"somebody\"",
            1,
        )
        .replacen("path = \"/v1/children/*\"", "path = \"v1/**/x\"", 1);
    let problems = ServerConfig::parse(&text, Path::new(".")).unwrap_err();
    let rendered = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(rendered.contains("services[0].backend"), "{rendered}");
    assert!(rendered.contains("access[0].subject"), "{rendered}");
    assert!(rendered.contains("services[0].endpoints[0]"), "{rendered}");
}
