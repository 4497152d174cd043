//! The client side (DESIGN §2.1): local systems call `/r1/...`; this server checks the caller,
//! signs the request with the client member's key, sends it to a provider security server,
//! verifies the signed response and returns it.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use passerelle_globalconf::{GlobalConf, SecurityServer};
use passerelle_ids::{FaultCode, ServicePath};
use passerelle_messagelog::Side;
use passerelle_pki::digest::{Digested, sha256};
use passerelle_protocol::envelope::SignatureEnvelope;
use passerelle_protocol::headers::{self, ClientHeaders, forwardable, headers_digest};
use passerelle_protocol::signing::{RequestSigningInput, ResponseSigningInput, SigningTime};

use crate::exchange::{ExchangeIds, SignedPart, logged_path, record};
use crate::http_util::{Body, BodyError, Fault, header_bytes, random_hex, random_uuid, read_body};
use crate::metrics::Role;
use crate::ocsp::Verifier;
use crate::peers::PeerError;
use crate::server::Shared;
use crate::signer::SignatureProblem;

#[derive(Default)]
struct Labels {
    client: String,
    service: String,
}

/// Handles one request of a local system.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let now = shared.clock.now();
    let mut labels = Labels::default();
    let (response, result) = match consume(&shared, request, now, &mut labels).await {
        Ok(response) => {
            let result = response
                .headers()
                .get(headers::ERROR)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("ok")
                .to_owned();
            (response, result)
        }
        Err(fault) => {
            let code = fault.code.code().to_owned();
            (fault.into_response(), code)
        }
    };
    shared.metrics.observe_exchange(
        Role::Consumer,
        &labels.client,
        &labels.service,
        &result,
        started.elapsed(),
    );
    response
}

async fn consume(
    shared: &Shared,
    request: Request<Incoming>,
    now: SystemTime,
    labels: &mut Labels,
) -> Result<Response<Body>, Fault> {
    let config = shared.config();
    let (parts, body) = request.into_parts();
    if header_bytes(&parts) > config.limits.max_header_bytes {
        return Err(Fault::new(
            FaultCode::ClientHeadersTooLarge,
            format!(
                "request headers exceed {} bytes",
                config.limits.max_header_bytes
            ),
        ));
    }
    if matches!(parts.method, Method::CONNECT | Method::TRACE) {
        return Err(Fault::new(
            FaultCode::ClientInvalidHttpMethod,
            format!("{} is not forwarded", parts.method),
        ));
    }
    if parts.uri.path() == "/listClients" {
        let conf = current_conf(shared, now)?;
        return Ok(json_response(list_clients(&conf)));
    }
    let service_path = ServicePath::parse(parts.uri.path())
        .map_err(|error| Fault::new(FaultCode::ClientBadRequest, error.to_string()))?;
    let service = service_path.service;
    labels.service = service.to_string();
    let client_headers = ClientHeaders::parse(&parts.headers)
        .map_err(|error| Fault::new(error.client_fault(), error.to_string()))?;
    let client = client_headers.client.clone();
    labels.client = client.to_string();
    let conf = current_conf(shared, now)?;
    shared
        .timestamping
        .check(now, config.timestamping.grace)
        .map_err(|reason| {
            Fault::hidden(
                FaultCode::ClientProxyTimestamperFailed,
                "the message log cannot be time-stamped",
                reason,
            )
        })?;
    if !config.hosted.contains(&client) {
        return Err(Fault::new(
            FaultCode::ClientInvalidClient,
            format!("{client} is not a subsystem hosted on this security server"),
        ));
    }
    if !conf.has_subsystem(service.subsystem()) {
        return Err(Fault::new(
            FaultCode::ClientProxyUnknownMember,
            format!("{} is not in the global configuration", service.subsystem()),
        ));
    }
    let providers: Vec<&SecurityServer> = conf
        .servers_hosting(service.subsystem())
        .into_iter()
        .filter(|server| {
            client_headers
                .security_server
                .as_ref()
                .is_none_or(|pinned| &server.id == pinned)
        })
        .collect();
    if providers.is_empty() {
        return Err(Fault::new(
            FaultCode::ClientProxyNoProviderServer,
            format!("no security server hosts {}", service.subsystem()),
        ));
    }
    let signer = shared.signers.get(client.member()).ok_or_else(|| {
        Fault::hidden(
            FaultCode::ClientProxyInternalError,
            "no signing key for the client",
            format!("no signing key for member {}", client.member()),
        )
    })?;
    let body = read_body(body, config.limits.max_body_bytes)
        .await
        .map_err(|error| match error {
            BodyError::TooLarge => Fault::new(
                FaultCode::ClientRequestTooLarge,
                format!("the body exceeds {} bytes", config.limits.max_body_bytes),
            ),
            BodyError::Broken(reason) => Fault::new(
                FaultCode::ClientBadRequest,
                format!("cannot read the body: {reason}"),
            ),
        })
        .map(Digested::new)?;

    let ids = ExchangeIds {
        message_id: client_headers
            .message_id
            .clone()
            .unwrap_or_else(random_uuid),
        request_id: random_hex(16),
        client: client.clone(),
        service: service.clone(),
        user_id: client_headers.user_id.clone(),
        issue: client_headers.issue.clone(),
        represented_party: client_headers.represented_party.clone(),
    };
    let forwarded = forwardable(&parts.headers);
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| parts.uri.path().to_owned());
    let input = RequestSigningInput {
        message_id: ids.message_id.clone(),
        request_id: ids.request_id.clone(),
        client: client.clone(),
        service: service.clone(),
        method: parts.method.as_str().to_owned(),
        path_and_query: path_and_query.clone(),
        user_id: ids.user_id.clone(),
        issue: ids.issue.clone(),
        represented_party: ids.represented_party.clone(),
        headers_digest: headers_digest(&forwarded),
        body_digest: *body.sha256(),
        signing_time: SigningTime::from_system_time(now),
    };
    let request_bytes = input.encode();
    let request_hash = sha256(&request_bytes);
    // Fail closed before signing when this server cannot prove its certificates are good.
    let own_staples = shared.own_status.staples_for(
        client.member(),
        now,
        conf.settings.ocsp_freshness(),
        FaultCode::ClientProxyCertificateStatusUnavailable,
        "this security server has no fresh status for its own certificates",
    )?;
    let envelope = signer
        .sign(&request_bytes, input.signing_time)
        .await
        .map_err(|reason| {
            Fault::hidden(
                FaultCode::ClientProxyInternalError,
                "signing failed",
                reason,
            )
        })?;

    let mut last_fault = None;
    let mut answered = None;
    for provider in providers {
        let mut outbound = Request::new(Full::new(body.bytes().clone()));
        *outbound.method_mut() = parts.method.clone();
        *outbound.uri_mut() = path_and_query
            .parse()
            .map_err(|_| Fault::new(FaultCode::ClientBadRequest, "invalid request target"))?;
        let out_headers = outbound.headers_mut();
        for (name, value) in &forwarded {
            out_headers.append(name.clone(), value.clone());
        }
        ids.write_request_headers(out_headers);
        envelope.write(out_headers);
        own_staples.write(out_headers);
        let call = async {
            let (response, provider_certificate) = shared.peers.send(provider, outbound).await?;
            let (response_parts, response_body) = response.into_parts();
            let body = read_body(response_body, config.limits.max_body_bytes).await;
            Ok::<_, PeerError>((response_parts, body, provider_certificate))
        };
        match tokio::time::timeout(config.limits.total_timeout, call).await {
            Err(_) => {
                last_fault = Some(Fault::new(
                    FaultCode::ClientProxyTimeout,
                    format!("{} did not answer in time", provider.id),
                ));
                break;
            }
            Ok(Err(PeerError::Network(reason))) => {
                last_fault = Some(Fault::hidden(
                    FaultCode::ClientProxyNetworkError,
                    format!("cannot reach {}", provider.id),
                    reason,
                ));
            }
            Ok(Err(PeerError::Authentication(reason))) => {
                last_fault = Some(Fault::hidden(
                    FaultCode::ClientProxySslAuthenticationFailed,
                    format!(
                        "{} did not present its registered authentication certificate",
                        provider.id
                    ),
                    reason,
                ));
            }
            Ok(Ok(result)) => {
                answered = Some(result);
                break;
            }
        }
    }
    let Some((response_parts, response_body, provider_certificate)) = answered else {
        return Err(last_fault.unwrap_or_else(|| {
            Fault::new(FaultCode::ClientProxyNetworkError, "no provider answered")
        }));
    };
    let response_body = response_body.map_err(|error| match error {
        BodyError::TooLarge => Fault::new(
            FaultCode::ClientProxyResponseTooLarge,
            format!(
                "the response exceeds {} bytes",
                config.limits.max_body_bytes
            ),
        ),
        BodyError::Broken(reason) => Fault::hidden(
            FaultCode::ClientProxyNetworkError,
            "the provider broke the connection",
            reason,
        ),
    })?;
    let request_hash_text = STANDARD.encode(request_hash);

    if response_parts.headers.contains_key(headers::ERROR) {
        // A fault raised by the provider's security server: passed on as it is (it is
        // authenticated by the mutual TLS connection, not signed).
        let mut response = Response::new(Full::new(response_body));
        *response.status_mut() = response_parts.status;
        for name in [headers::ERROR, "content-type"] {
            if let Some(value) = response_parts.headers.get(name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        ids.write_response_headers(response.headers_mut(), Some(&request_hash_text));
        return Ok(response);
    }

    let bound_hash = response_parts
        .headers
        .get(headers::REQUEST_HASH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if bound_hash != request_hash_text {
        return Err(Fault::hidden(
            FaultCode::ClientProxyInconsistentResponse,
            "the provider's response is not bound to this request",
            format!("request hash {bound_hash:?}, expected {request_hash_text:?}"),
        ));
    }
    let response_envelope =
        SignatureEnvelope::read_remembered(&response_parts.headers, &shared.chains).map_err(
            |error| {
                Fault::new(
                    FaultCode::ClientProxyInvalidSignatureValue,
                    format!("response signature: {error}"),
                )
            },
        )?;
    let response_forwarded = forwardable(&response_parts.headers);
    let response_body = Digested::new(response_body);
    let response_input = ResponseSigningInput {
        message_id: ids.message_id.clone(),
        request_id: ids.request_id.clone(),
        client: client.clone(),
        service: service.clone(),
        request_hash,
        status: response_parts.status.as_u16(),
        headers_digest: headers_digest(&response_forwarded),
        body_digest: *response_body.sha256(),
        signing_time: response_envelope.signing_time,
    };
    let response_bytes = response_input.encode();
    shared
        .roots
        .verify(
            &conf,
            service.member(),
            &response_bytes,
            &response_envelope,
            now,
        )
        .map_err(|problem| match problem {
            SignatureProblem::Certificate(reason) => {
                Fault::new(FaultCode::ClientProxyCertValidation, reason)
            }
            SignatureProblem::Signature(reason) => {
                Fault::new(FaultCode::ClientProxyInvalidSignatureValue, reason)
            }
        })?;
    // The provider's certificate status, before anything is answered.
    let staples = shared.status_verifier.check_peer_staples(
        &conf,
        &response_parts.headers,
        response_envelope.signer_chain.first(),
        &provider_certificate,
        Verifier::Consumer,
        now,
    )?;

    let keep_body = shared.log.seals_bodies();
    let sent = shared.clock.now();
    let entry = record(
        Side::Consumer,
        &ids,
        parts.method.as_str(),
        logged_path(&service_path.rest, &parts.uri),
        SigningTime::from_system_time(now).0,
        SigningTime::from_system_time(sent).0,
        response_parts.status.as_u16(),
        SignedPart {
            signing_input: request_bytes,
            envelope: &envelope,
            body: &body,
            keep_body,
            certificate_status: own_staples.signer.map(|staple| staple.der.clone()),
        },
        SignedPart {
            signing_input: response_bytes,
            envelope: &response_envelope,
            body: &response_body,
            keep_body,
            certificate_status: staples.signer,
        },
        &provider_certificate,
        staples.auth,
    );
    shared.log.append(entry).await.map_err(|reason| {
        Fault::hidden(
            FaultCode::ClientProxyLoggingFailed,
            "the exchange could not be logged",
            reason,
        )
    })?;

    let mut response = Response::new(Full::new(response_body.into_bytes()));
    *response.status_mut() = response_parts.status;
    for (name, value) in response_forwarded {
        response.headers_mut().append(name, value);
    }
    ids.write_response_headers(response.headers_mut(), Some(&request_hash_text));
    Ok(response)
}

fn current_conf(shared: &Shared, now: SystemTime) -> Result<Arc<GlobalConf>, Fault> {
    shared.conf.current(now).map_err(|reason| {
        Fault::hidden(
            FaultCode::ClientProxyOutdatedGlobalConf,
            "this security server has no valid global configuration",
            reason,
        )
    })
}

/// `listClients`: every subsystem of the federation, in X-Road's JSON shape.
fn list_clients(conf: &GlobalConf) -> serde_json::Value {
    let members: Vec<serde_json::Value> = conf
        .members
        .iter()
        .flat_map(|member| {
            let mut entries = vec![serde_json::json!({
                "id": {"object_type": "MEMBER", "xroad_instance": member.id.instance().as_str(), "member_class": member.id.member_class().as_str(), "member_code": member.id.member_code().as_str()},
                "name": member.name,
            })];
            entries.extend(member.subsystems.iter().map(|subsystem| {
                serde_json::json!({
                    "id": {"object_type": "SUBSYSTEM", "xroad_instance": subsystem.instance().as_str(), "member_class": subsystem.member().member_class().as_str(), "member_code": subsystem.member().member_code().as_str(), "subsystem_code": subsystem.subsystem_code().as_str()},
                    "name": member.name,
                })
            }));
            entries
        })
        .collect();
    serde_json::json!({ "member": members })
}

pub(crate) fn json_response(value: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(
        serde_json::to_vec(&value).unwrap_or_default(),
    )));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
