//! The demo's sample backend: the health ministry's vaccination registry, a small JSON REST
//! service with an OpenAPI document. It stands for an agency's existing information system;
//! Passerelle sits in front of it and it knows nothing of Passerelle.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http1::{Message, read_message, write_message};

/// The OpenAPI document the backend serves at `/openapi.json`; the provider's security server
/// publishes it (with server URLs stripped) through `getOpenAPI`.
pub const OPENAPI: &str = include_str!("vaccinations.openapi.json");

const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` turns true. Returns once the listener is closed.
pub async fn serve(listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Headers and body are written separately: without this, Nagle's algorithm
                    // holds the body until the client's delayed ACK now and then.
                    let _ = stream.set_nodelay(true);
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        let (read_half, mut write_half) = stream.into_split();
                        let mut reader = BufReader::new(read_half);
                        let mut shutdown = shutdown;
                        loop {
                            let message = tokio::select! {
                                message = read_message(&mut reader, READ_TIMEOUT) => message,
                                _ = shutdown.changed() => break,
                            };
                            let Ok(Some(request)) = message else { break };
                            let response = answer(&request);
                            if write_message(&mut write_half, &response).await.is_err() {
                                break;
                            }
                        }
                    });
                }
                Err(error) => tracing::warn!(%error, "backend accept failed"),
            },
            _ = shutdown.changed() => return,
        }
    }
}

/// Binds the backend on an ephemeral loopback port.
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

fn answer(request: &Message) -> Message {
    let method = request.start[0].as_str();
    let target = request.start[1].as_str();
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["openapi.json"]) => json(200, OPENAPI.to_owned()),
        ("GET", ["v1", "children", id]) => json(
            200,
            serde_json::json!({"child_id": id, "name": format!("child {id}"), "birth_year": 2021}).to_string(),
        ),
        ("GET", ["v1", "children", id, "vaccinations"]) => json(
            200,
            serde_json::json!({
                "child_id": id,
                "vaccinations": [
                    {"vaccine": "BCG", "date": "2021-03-02"},
                    {"vaccine": "DTP-HepB-Hib 1", "date": "2021-04-13"},
                    {"vaccine": "Measles-Rubella 1", "date": "2021-12-01"}
                ]
            })
            .to_string(),
        ),
        ("POST", ["v1", "children", id, "vaccinations"]) => {
            let record: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
            if record.get("vaccine").and_then(|value| value.as_str()).is_none() {
                return json(400, serde_json::json!({"error": "body must be JSON with a \"vaccine\" string"}).to_string());
            }
            json(201, serde_json::json!({"child_id": id, "recorded": record}).to_string())
        }
        // The benchmark's route: the body comes back as sent, so request and response sizes match.
        ("POST", ["v1", "echo"]) => Message {
            start: ["HTTP/1.1".to_owned(), "200".to_owned(), "OK".to_owned()],
            headers: vec![("content-type".to_owned(), "application/octet-stream".to_owned())],
            body: request.body.clone(),
        },
        ("GET", ["v1", "admin", "records"]) => json(
            200,
            serde_json::json!({"records": 3, "note": "administrative export, for the ministry's own staff"}).to_string(),
        ),
        _ => json(404, serde_json::json!({"error": format!("no route for {method} {path}")}).to_string()),
    }
}

fn json(status: u16, body: String) -> Message {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        _ => "Not Found",
    };
    Message {
        start: ["HTTP/1.1".to_owned(), status.to_string(), reason.to_owned()],
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.into_bytes(),
    }
}
