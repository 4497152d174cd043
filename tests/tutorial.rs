//! Keeps `docs/tutorial.md` honest.
//!
//! - Every `passerelle …` command in the tutorial's code blocks names a real subcommand path,
//!   down to a leaf command, and every `--flag` it uses is one that command accepts.
//! - The onboarding path the tutorial walks through works with the real binary: a central server
//!   without auto-approval, `passerelle server register` (twice: the server, then its client),
//!   officer approvals with `passerelle central requests approve`, `passerelle server publish`,
//!   and `passerelle server status --fresh` seeing everything in the signed configuration.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_passerelle");
const TUTORIAL: &str = include_str!("../docs/tutorial.md");

/// The `passerelle` command lines of the tutorial's shell examples (`$ passerelle …`, with
/// backslash continuations joined), as word lists without the leading `passerelle`.
fn tutorial_commands() -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut lines = TUTORIAL.lines();
    while let Some(line) = lines.next() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let Some(command) = line.strip_prefix("$ ").filter(|_| in_block) else {
            continue;
        };
        let mut text = command.to_owned();
        while text.ends_with('\\') {
            text.pop();
            text.push(' ');
            text.push_str(lines.next().unwrap_or_default().trim());
        }
        // Commands may be wrapped, e.g. `export TOKEN=$(passerelle …)` or `… | grep`.
        let Some(start) = text.find("passerelle ") else {
            continue;
        };
        let rest = &text[start + "passerelle ".len()..];
        let rest = rest
            .split(['|', ')', '>', '&', ';'])
            .next()
            .unwrap_or_default();
        commands.push(rest.split_whitespace().map(str::to_owned).collect());
    }
    commands
}

fn help(path: &[String]) -> Option<String> {
    let output = Command::new(BINARY)
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn every_command_in_the_tutorial_exists_with_its_flags() {
    let commands = tutorial_commands();
    assert!(
        commands.len() >= 20,
        "the tutorial shows only {} passerelle commands",
        commands.len()
    );
    let mut checked = BTreeSet::new();
    for words in &commands {
        // Walk down the subcommand tree while the current command has subcommands.
        let mut path: Vec<String> = Vec::new();
        let mut text = help(&path).unwrap();
        let mut rest = words.as_slice();
        while text.contains("<COMMAND>") {
            let (next, tail) = rest.split_first().unwrap_or_else(|| {
                panic!("`passerelle {}` stops at a command group", words.join(" "))
            });
            path.push(next.clone());
            text = help(&path).unwrap_or_else(|| {
                panic!(
                    "`passerelle {}`: `{}` is not a subcommand",
                    words.join(" "),
                    path.join(" ")
                )
            });
            rest = tail;
        }
        for flag in rest.iter().filter(|word| word.starts_with("--")) {
            let name = flag.split('=').next().unwrap_or_default();
            assert!(
                text.contains(&format!("{name} ")) || text.contains(&format!("{name}\n")),
                "`passerelle {}`: `passerelle {}` has no flag {name}",
                words.join(" "),
                path.join(" ")
            );
        }
        checked.insert(path.join(" "));
    }
    for required in [
        "pki init",
        "pki issue",
        "central token create",
        "central serve",
        "central anchor",
        "central requests approve",
        "server register",
        "server publish",
        "server serve",
        "call",
        "catalog search",
        "audit export",
        "audit verify",
    ] {
        assert!(
            checked.contains(required),
            "the tutorial never runs `passerelle {required}` (it runs: {checked:?})"
        );
    }
}

// ---- the onboarding flow ---------------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn passerelle(dir: &Path, args: &[&str]) -> Output {
    Command::new(BINARY)
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Runs a command that must succeed and returns its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let output = passerelle(dir, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "passerelle {} failed: {}\n{}",
        args.join(" "),
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The request ids a `register`/`publish` output tells the officer to approve.
fn to_approve(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("passerelle central requests approve ")
        })
        .map(str::to_owned)
        .collect()
}

struct Central(Child);

impl Drop for Central {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn register_approve_publish_with_the_cli_alone() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let admin_port = free_port();
    let public_port = free_port();

    ok(dir, &["pki", "init", "--dir", "pki", "--instance", "DEV"]);
    for args in [
        &[
            "--kind",
            "auth",
            "--name",
            "central",
            "--ip",
            "127.0.0.1",
            "--out",
            "pki/central-admin",
        ][..],
        &[
            "--kind",
            "auth",
            "--name",
            "ss1.health",
            "--ip",
            "127.0.0.1",
            "--out",
            "health/auth",
        ],
        &[
            "--kind",
            "sign",
            "--member",
            "DEV/GOV/HEALTH",
            "--out",
            "health/sign",
        ],
    ] {
        std::fs::create_dir_all(dir.join("health")).unwrap();
        let mut full = vec!["pki", "issue", "--dir", "pki"];
        full.extend_from_slice(args);
        ok(dir, &full);
    }
    std::fs::create_dir_all(dir.join("central")).unwrap();
    std::fs::write(
        dir.join("central/central.toml"),
        format!(
            r#"instance = "DEV"
data_dir = "data"
auto_approve = false

[admin]
listen = "127.0.0.1:{admin_port}"
tls_certificate = "../pki/central-admin.chain.pem"
tls_key = "../pki/central-admin.key.pem"

[public]
listen = "127.0.0.1:{public_port}"
url = "http://127.0.0.1:{public_port}"

[signing]
key = "../pki/config-signing.key.pem"
certificate = "../pki/config-signing.cert.pem"
"#
        ),
    )
    .unwrap();
    let token = ok(
        dir,
        &[
            "central",
            "token",
            "create",
            "--config",
            "central/central.toml",
            "--role",
            "registration-officer",
            "--name",
            "alice",
        ],
    );
    let token = token.trim().to_owned();
    let central = Central(
        Command::new(BINARY)
            .current_dir(dir)
            .args(["central", "serve", "--config", "central/central.toml"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let admin_url = format!("https://127.0.0.1:{admin_port}");
    let officer = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend_from_slice(&[
            "--url",
            &admin_url,
            "--token",
            &token,
            "--ca-cert",
            "pki/root.cert.pem",
        ]);
        ok(dir, &full)
    };
    // The server is up once the admin API answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut full = vec!["central", "list", "settings"];
        full.extend_from_slice(&[
            "--url",
            &admin_url,
            "--token",
            &token,
            "--ca-cert",
            "pki/root.cert.pem",
        ]);
        if passerelle(dir, &full).status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the central server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    officer(&[
        "central",
        "member-class",
        "add",
        "GOV",
        "--description",
        "Government",
    ]);
    officer(&[
        "central",
        "member",
        "add",
        "DEV/GOV/HEALTH",
        "--name",
        "Ministry of Health",
    ]);
    officer(&["central", "subsystem", "add", "DEV/GOV/HEALTH/registry"]);
    officer(&[
        "central",
        "ca",
        "add",
        "--name",
        "dev",
        "--cert",
        "pki/root.cert.pem",
        "--intermediate",
        "pki/intermediate.cert.pem",
    ]);
    ok(
        dir,
        &[
            "central",
            "anchor",
            "--config",
            "central/central.toml",
            "-o",
            "anchor.json",
        ],
    );

    std::fs::write(
        dir.join("health/vaccinations.openapi.json"),
        br#"{"openapi":"3.0.3"}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("health/security-server.toml"),
        r#"hosted = ["DEV/GOV/HEALTH/registry"]

[server]
id = "DEV/GOV/HEALTH/ss1"
anchor = "../anchor.json"
conf_cache_dir = "globalconf"
message_log_dir = "messagelog"

[auth]
key = "auth.key.pem"
certificate = "auth.chain.pem"

[[signing]]
member = "DEV/GOV/HEALTH"
key = "sign.key.pem"
certificate = "sign.chain.pem"

[listeners]
client_http = "127.0.0.1:8080"
server = "127.0.0.1:5500"
admin = "127.0.0.1:9090"

[[services]]
id = "DEV/GOV/HEALTH/registry/vaccinations"
backend = "http://127.0.0.1:9000"
openapi_file = "vaccinations.openapi.json"
endpoints = [{ method = "GET", path = "/v1/children/**" }]
"#,
    )
    .unwrap();
    let config = "health/security-server.toml";
    let status = passerelle(dir, &["server", "status", "--config", config, "--fresh"]);
    assert!(!status.status.success(), "nothing is registered yet");
    assert!(String::from_utf8_lossy(&status.stdout).contains("is not registered"));

    // First round: the server's auth certificate; its client must wait for the approval.
    let first = ok(dir, &["server", "register", "--config", config]);
    assert!(first.contains("auth-certificate: pending"), "{first}");
    assert!(
        first.contains("client DEV/GOV/HEALTH/registry: not sent yet"),
        "{first}"
    );
    let ids = to_approve(&first);
    assert_eq!(ids.len(), 1, "{first}");
    officer(&["central", "requests", "approve", &ids[0]]);

    // Second round: the client.
    let second = ok(dir, &["server", "register", "--config", config]);
    assert!(second.contains("already registered"), "{second}");
    assert!(second.contains("client: pending"), "{second}");
    let ids = to_approve(&second);
    assert_eq!(ids.len(), 1, "{second}");
    officer(&["central", "requests", "approve", &ids[0]]);

    let third = ok(dir, &["server", "register", "--config", config]);
    assert!(third.contains("Nothing left to register"), "{third}");

    let published = ok(dir, &["server", "publish", "--config", config]);
    assert!(
        published.contains("service-publication: pending"),
        "{published}"
    );
    for id in to_approve(&published) {
        officer(&["central", "requests", "approve", &id]);
    }

    let status = ok(dir, &["server", "status", "--config", config, "--fresh"]);
    assert!(
        status.contains("security server DEV/GOV/HEALTH/ss1 at 127.0.0.1:5500"),
        "{status}"
    );
    assert!(
        status.contains("ok      client DEV/GOV/HEALTH/registry"),
        "{status}"
    );
    assert!(
        status.contains("service DEV/GOV/HEALTH/registry/vaccinations in the catalog"),
        "{status}"
    );
    let catalog = ok(
        dir,
        &[
            "catalog",
            "search",
            "vaccinations",
            "--url",
            &format!("http://127.0.0.1:{public_port}"),
        ],
    );
    assert!(
        catalog.contains("DEV/GOV/HEALTH/registry/vaccinations"),
        "{catalog}"
    );
    drop(central);
}
