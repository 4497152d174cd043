//! The configuration file: the shipped one parses, mistakes are all reported with their keys.

use std::path::Path;

use passerelle_central_server::{CentralConfig, CentralError};

#[test]
fn the_shipped_configuration_parses() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/central.toml"
    ));
    let config = CentralConfig::load(path).unwrap();
    assert_eq!(config.instance.as_str(), "DEV");
    assert_eq!(config.public_url.as_deref(), Some("http://127.0.0.1:4001"));
    assert!(
        config
            .signing_key
            .ends_with("demo-data/pki/config-signing.key.pem")
    );
}

#[test]
fn unknown_keys_and_bad_values_are_all_reported() {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/central.toml"
    ))
    .unwrap();
    let broken = shipped
        .replace(
            "auto_approve = true",
            "auto_approve = true\nauto_aprove = false",
        )
        .replace("[public]", "[public]\ncolour = \"blue\"")
        .replace("listen = \"127.0.0.1:4000\"", "listen = \"localhost\"")
        .replace("instance = \"DEV\"", "instance = \"D EV\"");
    let Err(CentralError::Config { path, problems }) =
        CentralConfig::parse(&broken, Path::new("config/central.toml"))
    else {
        panic!("a broken configuration was accepted");
    };
    assert_eq!(path, Path::new("config/central.toml"));
    let text = problems.join("\n");
    assert!(text.contains("auto_aprove: unknown key"), "{text}");
    assert!(text.contains("public.colour: unknown key"), "{text}");
    // Unknown keys stop typed parsing; fix them and the value errors show, all at once too.
    let typed = shipped
        .replace("listen = \"127.0.0.1:4000\"", "listen = \"localhost\"")
        .replace("instance = \"DEV\"", "instance = \"D EV\"");
    let Err(CentralError::Config { problems, .. }) =
        CentralConfig::parse(&typed, Path::new("central.toml"))
    else {
        panic!("a broken configuration was accepted");
    };
    let text = problems.join("\n");
    assert!(
        text.contains("instance: instance identifier's instance has the forbidden character ' '"),
        "{text}"
    );
    assert!(
        text.contains("admin.listen: \"localhost\" is not ip:port"),
        "{text}"
    );
    let missing = shipped.replace("[signing]", "[signing_typo]");
    assert!(CentralConfig::parse(&missing, Path::new("central.toml")).is_err());
}
