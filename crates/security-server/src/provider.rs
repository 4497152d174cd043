//! The server side (DESIGN §2.2): a peer security server calls us over mutual TLS. The checks run
//! in a fixed order, each failing with its own code, and only then does the backend see the
//! request; the response is signed and bound to the request hash.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use passerelle_globalconf::GlobalConf;
use passerelle_ids::{FaultCode, ServiceId, ServicePath};
use passerelle_messagelog::Side;
use passerelle_pki::digest::{Digested, sha256};
use passerelle_protocol::envelope::SignatureEnvelope;
use passerelle_protocol::headers::{self, ClientHeaders, forwardable, headers_digest};
use passerelle_protocol::path::CanonicalPath;
use passerelle_protocol::signing::{RequestSigningInput, ResponseSigningInput, SigningTime};

use crate::access::{has_any_right, is_allowed};
use crate::config::{OpenApiSource, ServerConfig, ServiceConfig, TimestampMode};
use crate::exchange::{ExchangeIds, SignedPart, logged_path, record, set_varying};
use crate::http_util::{Body, BodyError, Fault, read_body};
use crate::metrics::Role;
use crate::ocsp::Verifier;
use crate::server::Shared;
use crate::signer::SignatureProblem;

/// Service codes answered by the provider's security server itself.
const LIST_METHODS: &str = "listMethods";
const ALLOWED_METHODS: &str = "allowedMethods";
const GET_OPENAPI: &str = "getOpenAPI";

enum Target {
    Backend(ServiceConfig),
    Meta(&'static str),
}

/// Handles one request of a peer whose TLS certificate has this SHA-256.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    peer_certificate: [u8; 32],
    peer_leaf: Arc<Vec<u8>>,
    request: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    let now = shared.clock.now();
    let mut labels = (String::new(), String::new());
    let (response, result) = match provide(
        &shared,
        peer_certificate,
        &peer_leaf,
        request,
        now,
        &mut labels,
    )
    .await
    {
        Ok(response) => (response, "ok".to_owned()),
        Err(fault) => {
            let code = fault.code.code().to_owned();
            (fault.into_response(), code)
        }
    };
    shared.metrics.observe_exchange(
        Role::Provider,
        &labels.0,
        &labels.1,
        &result,
        started.elapsed(),
    );
    response
}

fn bad_request(reason: impl Into<String>) -> Fault {
    Fault::new(FaultCode::ServerProxyBadRequest, reason)
}

async fn provide(
    shared: &Shared,
    peer_certificate: [u8; 32],
    peer_leaf: &[u8],
    request: Request<Incoming>,
    now: SystemTime,
    labels: &mut (String, String),
) -> Result<Response<Body>, Fault> {
    let config = shared.config();
    let conf = shared.conf.current(now).map_err(|reason| {
        Fault::hidden(
            FaultCode::ServerProxyOutdatedGlobalConf,
            "the provider's security server has no valid global configuration",
            reason,
        )
    })?;
    shared
        .timestamping
        .check(now, config.timestamping.grace)
        .map_err(|reason| {
            Fault::hidden(
                FaultCode::ServerProxyTimestamperFailed,
                "the provider's message log cannot be time-stamped",
                reason,
            )
        })?;
    // 1. The peer is a registered security server, and hosts the client it calls for.
    let peer = conf
        .server_by_auth_cert_hash(&peer_certificate)
        .ok_or_else(|| {
            Fault::new(
                FaultCode::ServerProxySslAuthenticationFailed,
                format!(
                    "certificate {} is not registered for any security server",
                    hex::encode(peer_certificate)
                ),
            )
        })?;
    let (parts, body) = request.into_parts();
    let service_path =
        ServicePath::parse(parts.uri.path()).map_err(|error| bad_request(error.to_string()))?;
    let client_headers =
        ClientHeaders::parse(&parts.headers).map_err(|error| bad_request(error.to_string()))?;
    let client = client_headers.client.clone();
    let service = service_path.service.clone();
    *labels = (client.to_string(), service.to_string());
    let message_id = client_headers
        .message_id
        .clone()
        .ok_or_else(|| bad_request("missing X-Road-Id"))?;
    let request_id = parts
        .headers
        .get(headers::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| headers::validate_text("X-Road-Request-Id", value).is_ok())
        .ok_or_else(|| bad_request("missing or invalid X-Road-Request-Id"))?
        .to_owned();
    if !peer.clients.contains(&client) {
        return Err(Fault::new(
            FaultCode::ServerProxyInvalidSecurityServer,
            format!("{} does not host {client}", peer.id),
        ));
    }
    // 2. The service is known and enabled.
    let target = target(&config, &service)?;
    // 3. Access for the method and the canonical path.
    let canonical = CanonicalPath::parse(&service_path.rest).map_err(|error| {
        Fault::new(
            FaultCode::ServerProxyAccessDenied,
            format!("access denied: {error}"),
        )
    })?;
    // Metaservices are open to every member (`allowedMethods` and `getOpenAPI` filter by right).
    let is_metaservice = matches!(target, Target::Meta(_));
    if !is_metaservice && !is_allowed(&config, &conf, &client, &service, &parts.method, &canonical)
    {
        return Err(Fault::new(
            FaultCode::ServerProxyAccessDenied,
            format!(
                "{client} may not call {} {canonical} of {service}",
                parts.method
            ),
        ));
    }
    let body = read_body(body, config.limits.max_body_bytes)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => Fault::new(
                FaultCode::ServerProxyRequestTooLarge,
                format!("the body exceeds {} bytes", config.limits.max_body_bytes),
            ),
            BodyError::Broken(reason) => bad_request(format!("cannot read the body: {reason}")),
        })
        .map(Digested::new)?;
    // 4. The signature.
    let envelope =
        SignatureEnvelope::read_remembered(&parts.headers, &shared.chains).map_err(|error| {
            Fault::new(
                FaultCode::ServerProxyInvalidSignatureValue,
                format!("request signature: {error}"),
            )
        })?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    let forwarded = forwardable(&parts.headers);
    let input = RequestSigningInput {
        message_id: message_id.clone(),
        request_id: request_id.clone(),
        client: client.clone(),
        service: service.clone(),
        method: parts.method.as_str().to_owned(),
        path_and_query,
        user_id: client_headers.user_id.clone(),
        issue: client_headers.issue.clone(),
        represented_party: client_headers.represented_party.clone(),
        headers_digest: headers_digest(&forwarded),
        body_digest: *body.sha256(),
        signing_time: envelope.signing_time,
    };
    let request_bytes = input.encode();
    shared
        .roots
        .verify(&conf, client.member(), &request_bytes, &envelope, now)
        .map_err(|problem| match problem {
            SignatureProblem::Certificate(reason) => {
                Fault::new(FaultCode::ServerProxyCertValidation, reason)
            }
            SignatureProblem::Signature(reason) => {
                Fault::new(FaultCode::ServerProxyInvalidSignatureValue, reason)
            }
        })?;
    // 4b. The client's certificate status: its signing certificate's stapled beside the
    // signature, its server's authentication certificate's for the TLS connection.
    let staples = shared.status_verifier.check_peer_staples(
        &conf,
        &parts.headers,
        envelope.signer_chain.first(),
        peer_leaf,
        Verifier::Provider,
        now,
    )?;
    // 5. Freshness.
    if !envelope
        .signing_time
        .is_within(now, config.limits.clock_skew)
    {
        return Err(Fault::new(
            FaultCode::ServerProxyInvalidSigningTime,
            format!(
                "signing time {} ms is more than {:?} away from this server's clock",
                envelope.signing_time.0, config.limits.clock_skew
            ),
        ));
    }
    // 6. Not a replay: the signed ids of one exchange are accepted once.
    if !shared.replay.first_use(
        &client,
        message_id.as_str(),
        request_id.as_str(),
        envelope.signing_time,
        now,
    ) {
        return Err(Fault::new(
            FaultCode::ServerProxyDuplicateMessage,
            format!("message {message_id} was already accepted"),
        ));
    }

    // 7. This server can prove its own certificates are good (fail closed otherwise), before
    // the backend is called.
    let own_staples = shared.own_status.staples_for(
        service.member(),
        now,
        conf.settings.ocsp_freshness(),
        FaultCode::ServerProxyCertificateStatusUnavailable,
        "the provider's security server has no fresh status for its own certificates",
    )?;

    let ids = ExchangeIds {
        message_id,
        request_id,
        client: client.clone(),
        service: service.clone(),
        user_id: client_headers.user_id.clone(),
        issue: client_headers.issue.clone(),
        represented_party: client_headers.represented_party.clone(),
    };
    let immediate = matches!(&target, Target::Backend(service) if service.timestamp == TimestampMode::Immediate);
    let (status, response_headers, response_body, keep_body) = match &target {
        Target::Backend(service_config) => {
            let (status, headers, body) = call_backend(
                shared,
                &config,
                service_config,
                &ids,
                &parts.method,
                &canonical,
                &service_path.rest,
                parts.uri.query(),
                &forwarded,
                body.bytes().clone(),
            )
            .await?;
            (status, headers, body, service_config.log_bodies)
        }
        Target::Meta(code) => {
            let (status, headers, body) =
                metaservice(shared, &config, &conf, &ids, code, parts.uri.query()).await?;
            (status, headers, body, false)
        }
    };

    let signer = shared.signers.get(service.member()).ok_or_else(|| {
        Fault::hidden(
            FaultCode::ServerProxyInternalError,
            "no signing key for the provider",
            format!("no signing key for member {}", service.member()),
        )
    })?;
    let request_hash = sha256(&request_bytes);
    let response_forwarded: Vec<(HeaderName, HeaderValue)> = forwardable(&response_headers);
    let response_body = Digested::new(response_body);
    let response_time = SigningTime::from_system_time(shared.clock.now());
    let response_input = ResponseSigningInput {
        message_id: ids.message_id.clone(),
        request_id: ids.request_id.clone(),
        client: client.clone(),
        service: service.clone(),
        request_hash,
        status: status.as_u16(),
        headers_digest: headers_digest(&response_forwarded),
        body_digest: *response_body.sha256(),
        signing_time: response_time,
    };
    let response_bytes = response_input.encode();
    let response_envelope =
        signer
            .sign(&response_bytes, response_time)
            .await
            .map_err(|reason| {
                Fault::hidden(
                    FaultCode::ServerProxyInternalError,
                    "signing failed",
                    reason,
                )
            })?;

    let keep_body = keep_body && shared.log.seals_bodies();
    let entry = record(
        Side::Provider,
        &ids,
        parts.method.as_str(),
        logged_path(&service_path.rest, &parts.uri),
        SigningTime::from_system_time(now).0,
        response_time.0,
        status.as_u16(),
        SignedPart {
            signing_input: request_bytes,
            envelope: &envelope,
            body: &body,
            keep_body,
            certificate_status: staples.signer,
        },
        SignedPart {
            signing_input: response_bytes,
            envelope: &response_envelope,
            body: &response_body,
            keep_body,
            certificate_status: own_staples.signer.as_ref().map(|staple| staple.der.clone()),
        },
        peer_leaf,
        staples.auth,
    );
    shared.log.append(entry).await.map_err(|reason| {
        Fault::hidden(
            FaultCode::ServerProxyLoggingFailed,
            "the exchange could not be logged",
            reason,
        )
    })?;
    if immediate {
        crate::background::stamp_once(shared)
            .await
            .map_err(|reason| {
                Fault::hidden(
                    FaultCode::ServerProxyTimestamperFailed,
                    "the exchange could not be time-stamped",
                    reason,
                )
            })?;
    }

    let mut response = Response::new(Full::new(response_body.into_bytes()));
    *response.status_mut() = status;
    let out = response.headers_mut();
    for (name, value) in response_forwarded {
        out.append(name, value);
    }
    response_envelope.write(out);
    own_staples.write(out);
    set_varying(out, headers::REQUEST_HASH, &STANDARD.encode(request_hash));
    set_varying(out, headers::ID, &ids.message_id);
    set_varying(out, headers::REQUEST_ID, &ids.request_id);
    Ok(response)
}

fn target(config: &ServerConfig, service: &ServiceId) -> Result<Target, Fault> {
    if let Some(service_config) = config.services.get(service) {
        if !service_config.enabled {
            return Err(Fault::new(
                FaultCode::ServerProxyServiceDisabled,
                format!("{service} is disabled"),
            ));
        }
        return Ok(Target::Backend(service_config.clone()));
    }
    if config.hosted.contains(service.subsystem()) {
        for code in [LIST_METHODS, ALLOWED_METHODS, GET_OPENAPI] {
            if service.service_code().as_str() == code {
                return Ok(Target::Meta(code));
            }
        }
    }
    Err(Fault::new(
        FaultCode::ServerProxyUnknownService,
        format!("{service} is not a service of this security server"),
    ))
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the values come from different stages of the pipeline"
)]
async fn call_backend(
    shared: &Shared,
    config: &ServerConfig,
    service: &ServiceConfig,
    ids: &ExchangeIds,
    method: &http::Method,
    canonical: &CanonicalPath,
    raw_rest: &str,
    query: Option<&str>,
    forwarded: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), Fault> {
    // The backend receives the canonical path that the access check saw, never the raw one.
    let path = if raw_rest.is_empty() {
        String::new()
    } else {
        canonical.to_encoded()
    };
    let uri = format!(
        "{}{}{}",
        service.backend,
        path,
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri.parse().map_err(|_| {
        Fault::hidden(
            FaultCode::ServerProxyInternalError,
            "invalid backend address",
            format!("cannot build backend uri {uri:?}"),
        )
    })?;
    let headers = request.headers_mut();
    for (name, value) in forwarded {
        headers.append(name.clone(), value.clone());
    }
    ids.write_request_headers(headers);
    let call = async {
        let response = shared.backend.request(request).await.map_err(|error| {
            Fault::hidden(
                FaultCode::ServerProxyServiceFailed,
                "the service's backend could not be reached",
                format!("{uri}: {error}"),
            )
        })?;
        let (parts, body) = response.into_parts();
        let body = read_body(body, config.limits.max_body_bytes)
            .await
            .map_err(|error| match error {
                BodyError::TooLarge => Fault::new(
                    FaultCode::ServerProxyServiceFailed,
                    "the service's response exceeds the maximum body size",
                ),
                BodyError::Broken(reason) => Fault::hidden(
                    FaultCode::ServerProxyServiceFailed,
                    "the service's backend broke the connection",
                    reason,
                ),
            })?;
        Ok((parts.status, parts.headers, body))
    };
    tokio::time::timeout(service.timeout, call)
        .await
        .map_err(|_| {
            Fault::new(
                FaultCode::ServerProxyServiceTimeout,
                format!("the service did not answer within {:?}", service.timeout),
            )
        })?
}

async fn metaservice(
    shared: &Shared,
    config: &ServerConfig,
    conf: &GlobalConf,
    ids: &ExchangeIds,
    code: &str,
    query: Option<&str>,
) -> Result<(StatusCode, HeaderMap, Bytes), Fault> {
    let subsystem = ids.service.subsystem();
    let services: Vec<(&ServiceId, &ServiceConfig)> = config
        .services
        .iter()
        .filter(|(id, service)| id.subsystem() == subsystem && service.enabled)
        .collect();
    let describe = |id: &ServiceId| {
        serde_json::json!({
            "object_type": "SERVICE",
            "xroad_instance": id.instance().as_str(),
            "member_class": id.member().member_class().as_str(),
            "member_code": id.member().member_code().as_str(),
            "subsystem_code": id.subsystem().subsystem_code().as_str(),
            "service_code": id.service_code().as_str(),
            "service_type": "REST",
        })
    };
    let body = match code {
        LIST_METHODS => {
            serde_json::json!({"service": services.iter().map(|(id, _)| describe(id)).collect::<Vec<_>>()})
        }
        ALLOWED_METHODS => serde_json::json!({"service": services
            .iter()
            .filter(|(id, _)| has_any_right(config, conf, &ids.client, id))
            .map(|(id, _)| describe(id))
            .collect::<Vec<_>>()}),
        _ => {
            let service_code = query
                .into_iter()
                .flat_map(|q| q.split('&'))
                .find_map(|pair| pair.strip_prefix("serviceCode="))
                .ok_or_else(|| bad_request("getOpenAPI needs ?serviceCode="))?;
            let (id, service) = services
                .iter()
                .find(|(id, _)| id.service_code().as_str() == service_code)
                .ok_or_else(|| {
                    Fault::new(
                        FaultCode::ServerProxyUnknownService,
                        format!("no service {service_code:?} in {subsystem}"),
                    )
                })?;
            if !has_any_right(config, conf, &ids.client, id) {
                return Err(Fault::new(
                    FaultCode::ServerProxyAccessDenied,
                    format!("{} may not call {id}", ids.client),
                ));
            }
            let document = openapi_document(shared, service).await?;
            let mut headers = HeaderMap::new();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(document.1),
            );
            return Ok((StatusCode::OK, headers, Bytes::from(document.0)));
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok((
        StatusCode::OK,
        headers,
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    ))
}

/// The service's OpenAPI document with every `servers` list removed, so internal hosts stay hidden.
async fn openapi_document(
    shared: &Shared,
    service: &ServiceConfig,
) -> Result<(Vec<u8>, &'static str), Fault> {
    let unavailable = |reason: String| {
        Fault::hidden(
            FaultCode::ServerProxyServiceFailed,
            "the service's OpenAPI document is unavailable",
            reason,
        )
    };
    let bytes = match &service.openapi {
        None => {
            return Err(Fault::new(
                FaultCode::ServerProxyUnknownService,
                "the service has no OpenAPI document",
            ));
        }
        Some(OpenApiSource::File(path)) => tokio::fs::read(path)
            .await
            .map_err(|error| unavailable(format!("{}: {error}", path.display())))?,
        Some(OpenApiSource::Url(url)) => {
            let uri = url
                .parse::<http::Uri>()
                .map_err(|error| unavailable(format!("{url}: {error}")))?;
            let response = tokio::time::timeout(service.timeout, shared.backend.get(uri))
                .await
                .map_err(|_| unavailable(format!("{url}: timed out")))?
                .map_err(|error| unavailable(format!("{url}: {error}")))?;
            read_body(response.into_body(), crate::config::DEFAULT_MAX_BODY_BYTES)
                .await
                .map_err(|_| unavailable(format!("{url}: unreadable or too large")))?
                .to_vec()
        }
    };
    Ok(strip_servers(&bytes))
}

/// Removes `servers` from a JSON document (top level, path items and operations), or the
/// top-level `servers:` block from a YAML one.
pub(crate) fn strip_servers(document: &[u8]) -> (Vec<u8>, &'static str) {
    if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(document) {
        if let Some(object) = json.as_object_mut() {
            object.remove("servers");
            if let Some(paths) = object.get_mut("paths").and_then(|p| p.as_object_mut()) {
                for item in paths.values_mut().filter_map(|item| item.as_object_mut()) {
                    item.remove("servers");
                    for operation in item.values_mut().filter_map(|op| op.as_object_mut()) {
                        operation.remove("servers");
                    }
                }
            }
        }
        return (
            serde_json::to_vec_pretty(&json).unwrap_or_default(),
            "application/json",
        );
    }
    let text = String::from_utf8_lossy(document);
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let top_level =
            !line.starts_with(' ') && !line.starts_with('\t') && !line.trim().is_empty();
        if top_level {
            skipping = line.trim_end().starts_with("servers:");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    (out.into_bytes(), "application/yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_servers_from_json_and_yaml() {
        let json = br#"{"openapi":"3.0.0","servers":[{"url":"http://internal:9000"}],"paths":{"/a":{"servers":[],"get":{"servers":[{"url":"http://x"}]}}}}"#;
        let (out, kind) = strip_servers(json);
        assert_eq!(kind, "application/json");
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("servers") && !text.contains("internal"),
            "{text}"
        );
        let yaml = b"openapi: 3.0.0\nservers:\n  - url: http://internal:9000\npaths:\n  /a: {}\n";
        let (out, kind) = strip_servers(yaml);
        assert_eq!(kind, "application/yaml");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "openapi: 3.0.0\npaths:\n  /a: {}\n"
        );
    }
}
