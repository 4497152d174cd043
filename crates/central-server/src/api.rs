//! The request handlers of both listeners, as plain functions from a request to a reply, so that
//! the HTTP plumbing in `server.rs` stays thin.
//!
//! Admin API (HTTPS, bearer tokens): reads need any valid token, changes need the
//! `registration-officer` role. Submitting a registration request needs no token: the request's
//! signatures are its authentication. Public listener (plain HTTP): the signed configuration,
//! the catalog and request submission.

use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use passerelle_globalconf::{
    ApprovedCa, ApprovedTsa, MemberClass, RequestAction, ServiceDescriptor, Settings,
    SignedRequest, format_rfc3339,
};
use passerelle_ids::{GlobalGroupId, MemberId, SubsystemId};
use serde_json::{Map, Value, json};

use crate::config::CentralConfig;
use crate::error::CentralError;
use crate::publish::Publisher;
use crate::registry::{Refusal, Registry, RequestRecord, RequestStatus, Role};

/// The OpenAPI 3 document of the admin API; `docs/central-admin-openapi.json` is a copy that a
/// test keeps equal.
pub const OPENAPI_DOCUMENT: &str = include_str!("openapi.json");

/// Largest request body accepted, in bytes.
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A function returning the current time; tests pin it.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// State shared by every connection.
pub(crate) struct App {
    pub(crate) config: CentralConfig,
    pub(crate) registry: Registry,
    pub(crate) publisher: Publisher,
    pub(crate) clock: Clock,
    pub(crate) public_url: String,
}

/// An HTTP request as the handlers see it.
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) bearer: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

/// What to answer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
    pub(crate) www_authenticate: bool,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Self {
            status,
            content_type: "application/json",
            body,
            www_authenticate: false,
        }
    }

    pub(crate) fn too_large(reason: &str) -> Self {
        ApiError::field(
            "body",
            format!("cannot read the body (limit {MAX_BODY_BYTES} bytes): {reason}"),
        )
        .into_reply()
    }

    /// A 500 answer, for a failure the caller can do nothing about.
    pub(crate) fn internal(reason: &str) -> Self {
        ApiError::new(500, format!("internal error: {reason}")).into_reply()
    }

    fn bytes(content_type: &'static str, body: Vec<u8>) -> Self {
        Self {
            status: 200,
            content_type,
            body,
            www_authenticate: false,
        }
    }
}

/// An error answer: status, message and, for 400, the offending field.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field: None,
        }
    }
    fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
            field: Some(field.to_owned()),
        }
    }
    fn not_found(path: &str) -> Self {
        Self::new(404, format!("no such resource: {path}"))
    }
    fn into_reply(self) -> Reply {
        let mut body = json!({"error": self.message});
        if let Some(field) = self.field {
            body["field"] = Value::String(field);
        }
        let mut reply = Reply::json(self.status, &body);
        reply.www_authenticate = self.status == 401;
        reply
    }
}

impl From<CentralError> for ApiError {
    fn from(error: CentralError) -> Self {
        tracing::error!(%error, "internal error");
        ApiError::new(500, format!("internal error: {error}"))
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Conflict(message) => ApiError::new(409, message),
            Refusal::BadField { field, reason } => ApiError::field(field, reason),
            Refusal::NotFound(message) => ApiError::new(404, message),
        }
    }
}

type Outcome = Result<Reply, ApiError>;

impl App {
    fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// Handles one request on the admin (HTTPS) listener.
    pub(crate) fn admin(&self, request: &Request<'_>) -> Reply {
        self.admin_inner(request)
            .unwrap_or_else(ApiError::into_reply)
    }

    /// Handles one request on the public (plain HTTP) listener.
    pub(crate) fn public(&self, request: &Request<'_>) -> Reply {
        self.public_inner(request)
            .unwrap_or_else(ApiError::into_reply)
    }

    fn public_inner(&self, request: &Request<'_>) -> Outcome {
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        match (request.method, segments.as_slice()) {
            ("GET", ["globalconf", instance, file])
                if *instance == self.registry.instance().as_str() =>
            {
                let published = self
                    .publisher
                    .current()
                    .ok_or_else(|| ApiError::new(503, "no configuration published yet"))?;
                match *file {
                    "globalconf.json" => {
                        Ok(Reply::bytes("application/json", published.bytes.to_vec()))
                    }
                    "globalconf.json.sig" => Ok(Reply::bytes(
                        "application/octet-stream",
                        published.signature.to_vec(),
                    )),
                    _ => Err(ApiError::not_found(request.path)),
                }
            }
            ("GET", ["catalog", "v1", "services"]) => self.catalog(request.query),
            ("POST", ["registration", "v1", "requests"]) => self.submit(request.body),
            ("GET", ["health"]) => {
                let published = self.publisher.current();
                let now = self.now();
                let healthy = published.as_ref().is_some_and(|p| now < p.expires_at);
                let body = json!({
                    "status": if healthy { "ok" } else { "degraded" },
                    "serial": published.as_ref().map(|p| p.serial),
                    "expires_at": published.as_ref().map(|p| format_rfc3339(p.expires_at)),
                });
                Ok(Reply::json(if healthy { 200 } else { 503 }, &body))
            }
            _ => Err(ApiError::not_found(request.path)),
        }
    }

    fn admin_inner(&self, request: &Request<'_>) -> Outcome {
        let path = request.path;
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if request.method == "GET" && path == "/api/openapi.json" {
            return Ok(Reply::bytes(
                "application/json",
                OPENAPI_DOCUMENT.as_bytes().to_vec(),
            ));
        }
        if request.method == "POST" && path == "/api/v1/requests" {
            return self.submit(request.body);
        }
        let Some(["api", "v1", rest @ ..]) = Some(segments.as_slice()) else {
            return Err(ApiError::not_found(path));
        };
        let writes = request.method != "GET";
        let actor = self.authorize(request.bearer, writes)?;
        let now = self.now();
        let registry = &self.registry;
        match (request.method, rest) {
            ("GET", ["member-classes"]) => list(registry.member_classes()?),
            ("POST", ["member-classes"]) => {
                let body = Fields::parse(request.body, &["code", "description"])?;
                let class = MemberClass {
                    code: body.string("code")?,
                    description: body.optional_string("description")?.unwrap_or_default(),
                };
                self.change(registry.add_member_class(class, &actor, now), now)
            }
            ("GET", ["members"]) => list(registry.members()?),
            ("POST", ["members"]) => {
                let body = Fields::parse(request.body, &["id", "name"])?;
                let id: MemberId = body.id("id")?;
                let name = body.string("name")?;
                self.change(registry.add_member(id, name, &actor, now), now)
            }
            ("POST", ["subsystems"]) => {
                let body = Fields::parse(request.body, &["id"])?;
                let id: SubsystemId = body.id("id")?;
                self.change(registry.add_subsystem(id, &actor, now), now)
            }
            ("GET", ["security-servers"]) => list(registry.security_servers()?),
            ("GET", ["global-groups"]) => list(registry.global_groups()?),
            ("POST", ["global-groups"]) => {
                let body = Fields::parse(request.body, &["id", "description"])?;
                let id: GlobalGroupId = body.id("id")?;
                let description = body.optional_string("description")?.unwrap_or_default();
                self.change(registry.add_global_group(id, description, &actor, now), now)
            }
            ("POST", ["global-groups", "members"]) => {
                let body = Fields::parse(request.body, &["group", "subsystem"])?;
                let group: GlobalGroupId = body.id("group")?;
                let subsystem: SubsystemId = body.id("subsystem")?;
                self.change(
                    registry.add_global_group_member(group, subsystem, &actor, now),
                    now,
                )
            }
            ("GET", ["cas"]) => list(registry.cas()?),
            ("POST", ["cas"]) => {
                let body = Fields::parse(
                    request.body,
                    &["name", "certificates", "intermediates", "ocsp_responders"],
                )?;
                let ca = ApprovedCa {
                    name: body.string("name")?,
                    certificates: body.strings("certificates")?,
                    intermediates: body.optional_strings("intermediates")?,
                    ocsp_responders: body.optional_strings("ocsp_responders")?,
                };
                self.change(registry.add_ca(ca, &actor, now), now)
            }
            ("GET", ["tsas"]) => list(registry.tsas()?),
            ("POST", ["tsas"]) => {
                let body = Fields::parse(request.body, &["name", "url", "certificate"])?;
                let tsa = ApprovedTsa {
                    name: body.string("name")?,
                    url: body.string("url")?,
                    certificate: body.string("certificate")?,
                };
                self.change(registry.add_tsa(tsa, &actor, now), now)
            }
            ("GET", ["services"]) => list(registry.services()?),
            ("GET", ["settings"]) => Ok(Reply::json(
                200,
                &serde_json::to_value(registry.settings()?).unwrap_or_default(),
            )),
            ("PUT", ["settings"]) => {
                let settings: Settings =
                    serde_json::from_slice(request.body).map_err(|error| json_error(&error))?;
                self.change(registry.set_settings(settings, &actor, now), now)
            }
            ("GET", ["requests"]) => {
                let requests: Vec<Value> =
                    registry.requests()?.iter().map(request_summary).collect();
                Ok(Reply::json(200, &Value::Array(requests)))
            }
            ("POST", ["requests", id, decision @ ("approve" | "reject")]) => {
                let id: u64 = id.parse().map_err(|_| {
                    ApiError::field("id", format!("{id:?} is not a request number"))
                })?;
                let reason = if *decision == "reject" && !request.body.is_empty() {
                    Fields::parse(request.body, &["reason"])?.optional_string("reason")?
                } else {
                    None
                };
                self.decide(id, *decision == "approve", reason, &actor, now)
            }
            ("GET", ["audit"]) => list(registry.audit_trail()?),
            ("GET", ["globalconf"]) => {
                let published = self.publisher.current();
                Ok(Reply::json(
                    200,
                    &json!({
                        "serial": published.as_ref().map(|p| p.serial),
                        "generated_at": published.as_ref().map(|p| format_rfc3339(p.generated_at)),
                        "expires_at": published.as_ref().map(|p| format_rfc3339(p.expires_at)),
                        "configuration_url": format!("{}/globalconf/{}/globalconf.json", self.public_url, registry.instance()),
                    }),
                ))
            }
            _ => Err(ApiError::not_found(path)),
        }
    }

    /// The token's name, if it may do what is asked.
    fn authorize(&self, bearer: Option<&str>, writes: bool) -> Result<String, ApiError> {
        let Some(secret) = bearer else {
            return Err(ApiError::new(
                401,
                "a bearer token is required (Authorization: Bearer ...)",
            ));
        };
        let Some(token) = self.registry.token(secret)? else {
            return Err(ApiError::new(401, "unknown bearer token"));
        };
        if writes && token.role != Role::RegistrationOfficer {
            return Err(ApiError::new(
                403,
                format!(
                    "token {:?} has role {}, changes need registration-officer",
                    token.name,
                    token.role.as_str()
                ),
            ));
        }
        Ok(token.name)
    }

    /// Turns a registry change into a reply and republishes the configuration after a change.
    fn change(
        &self,
        outcome: Result<Result<(), Refusal>, CentralError>,
        now: SystemTime,
    ) -> Outcome {
        outcome??;
        let published = self.publisher.publish(&self.registry, now)?;
        Ok(Reply::json(
            201,
            &json!({"status": "ok", "serial": published.serial}),
        ))
    }

    /// A signed registration request arrives: verify it, queue it, maybe approve it at once.
    pub(crate) fn submit(&self, body: &[u8]) -> Outcome {
        let signed = SignedRequest::from_json(body)
            .map_err(|error| ApiError::field("body", error.to_string()))?;
        let now = self.now();
        let (roots, intermediates) = self.registry.ca_certificates()?;
        let verified = signed
            .verify(&roots, &intermediates, now)
            .map_err(|error| ApiError::field("signatures", error.to_string()))?;
        let instance = self.registry.instance().as_str();
        let (kind, summary) = match &verified.request.action {
            RequestAction::AuthCertificate {
                server, address, ..
            } => {
                check(
                    server.instance().as_str() == instance,
                    "request",
                    format!("server {server} is not of instance {instance}"),
                )?;
                check(
                    self.registry.member_exists(server.owner())?,
                    "request",
                    format!("owner {} is not a registered member", server.owner()),
                )?;
                (
                    "auth-certificate",
                    format!("register auth certificate of {server} at {address}"),
                )
            }
            RequestAction::Client { server, client } => {
                check(
                    self.registry.security_server(server)?.is_some(),
                    "request",
                    format!("security server {server} is not registered"),
                )?;
                check(
                    self.registry.has_subsystem(client)?,
                    "request",
                    format!("subsystem {client} is not registered"),
                )?;
                ("client", format!("register client {client} on {server}"))
            }
            RequestAction::ServicePublication { provider, services } => {
                check(
                    self.registry.has_subsystem(provider)?,
                    "request",
                    format!("subsystem {provider} is not registered"),
                )?;
                (
                    "service-publication",
                    format!("publish {} service(s) of {provider}", services.len()),
                )
            }
        };
        let record = RequestRecord {
            id: 0,
            submitted_at: format_rfc3339(now),
            status: RequestStatus::Pending,
            kind: kind.to_owned(),
            summary,
            signed_by: verified.signed_by,
            auth_cert_hash: verified.auth_cert_hash,
            decided_by: None,
            decided_at: None,
            reason: None,
            signed,
        };
        let record = {
            let _guard = self.registry.write_lock();
            let record = self.registry.queue_request(record, now)?;
            if self.config.auto_approve {
                self.apply(&record, "auto-approve", now)??;
                self.registry.decide_request(
                    record,
                    RequestStatus::Approved,
                    Some("auto_approve is on".to_owned()),
                    "auto-approve",
                    now,
                )?
            } else {
                record
            }
        };
        if record.status == RequestStatus::Approved {
            self.publisher.publish(&self.registry, now)?;
        }
        Ok(Reply::json(202, &request_summary(&record)))
    }

    fn decide(
        &self,
        id: u64,
        approve: bool,
        reason: Option<String>,
        actor: &str,
        now: SystemTime,
    ) -> Outcome {
        let record = {
            let _guard = self.registry.write_lock();
            let record = self
                .registry
                .request(id)?
                .ok_or_else(|| ApiError::new(404, format!("no request {id}")))?;
            if record.status != RequestStatus::Pending {
                return Err(ApiError::new(
                    409,
                    format!("request {id} is already {:?}", record.status).to_lowercase(),
                ));
            }
            if approve {
                self.apply(&record, actor, now)??;
                self.registry
                    .decide_request(record, RequestStatus::Approved, reason, actor, now)?
            } else {
                self.registry
                    .decide_request(record, RequestStatus::Rejected, reason, actor, now)?
            }
        };
        if approve {
            self.publisher.publish(&self.registry, now)?;
        }
        Ok(Reply::json(200, &request_summary(&record)))
    }

    /// Applies an approved request to the registry (the caller holds the write lock).
    fn apply(
        &self,
        record: &RequestRecord,
        actor: &str,
        now: SystemTime,
    ) -> Result<Result<(), Refusal>, CentralError> {
        let request = record.signed.parsed()?;
        match request.action {
            RequestAction::AuthCertificate {
                server, address, ..
            } => {
                let Some(hash) = record.auth_cert_hash else {
                    return Ok(Err(Refusal::BadField {
                        field: "request",
                        reason: "the request carries no auth certificate hash".to_owned(),
                    }));
                };
                self.registry
                    .register_auth_certificate(&server, &address, hash, actor, now)?;
                Ok(Ok(()))
            }
            RequestAction::Client { server, client } => {
                self.registry.register_client(&server, &client, actor, now)
            }
            RequestAction::ServicePublication { provider, services } => {
                self.registry
                    .publish_services(&provider, &services, actor, now)?;
                Ok(Ok(()))
            }
        }
    }

    fn catalog(&self, query: Option<&str>) -> Outcome {
        let text = query
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| pair.strip_prefix("q="))
            .map(decode_query)
            .unwrap_or_default()
            .to_lowercase();
        let services: Vec<Value> = self
            .registry
            .services()?
            .into_iter()
            .filter(|service| text.is_empty() || matches(service, &text))
            .map(|service| catalog_entry(&service))
            .collect();
        Ok(Reply::json(
            200,
            &json!({"query": text, "services": services}),
        ))
    }
}

fn matches(service: &ServiceDescriptor, text: &str) -> bool {
    let endpoints = service
        .endpoints
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect::<Vec<_>>()
        .join(" ");
    [
        service.id.to_string(),
        service.title.clone(),
        service.description.clone(),
        endpoints,
    ]
    .iter()
    .any(|field| field.to_lowercase().contains(text))
}

fn catalog_entry(service: &ServiceDescriptor) -> Value {
    json!({
        "id": service.id,
        "provider": service.id.subsystem(),
        "title": service.title,
        "description": service.description,
        "endpoints": service.endpoints,
        "openapi_url": service.openapi_url,
        "openapi_sha256": service.openapi_sha256,
    })
}

fn decode_query(value: &str) -> String {
    percent_encoding::percent_decode_str(&value.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn request_summary(record: &RequestRecord) -> Value {
    json!({
        "id": record.id,
        "kind": record.kind,
        "status": record.status,
        "summary": record.summary,
        "submitted_at": record.submitted_at,
        "signed_by": record.signed_by,
        "auth_cert_hash": record.auth_cert_hash,
        "decided_by": record.decided_by,
        "decided_at": record.decided_at,
        "reason": record.reason,
    })
}

fn check(condition: bool, field: &str, message: String) -> Result<(), ApiError> {
    if condition {
        Ok(())
    } else {
        Err(ApiError::field(field, message))
    }
}

fn list<T: serde::Serialize>(items: Vec<T>) -> Outcome {
    Ok(Reply::json(
        200,
        &serde_json::to_value(items).unwrap_or_default(),
    ))
}

fn json_error(error: &serde_json::Error) -> ApiError {
    // serde names the unknown or mistyped field in its message; keep it as is.
    ApiError::field("body", format!("malformed JSON: {error}"))
}

/// A JSON object body, read field by field so that every error names its field.
struct Fields(Map<String, Value>);

impl Fields {
    fn parse(body: &[u8], allowed: &[&str]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|error| json_error(&error))?;
        let Value::Object(map) = value else {
            return Err(ApiError::field("body", "expected a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(ApiError::field(
                unknown,
                format!(
                    "unknown field {unknown:?} (expected: {})",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Self(map))
    }

    fn optional_string(&self, field: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(ApiError::field(field, format!("{field} must be a string"))),
        }
    }

    fn string(&self, field: &str) -> Result<String, ApiError> {
        self.optional_string(field)?
            .ok_or_else(|| ApiError::field(field, format!("{field} is required")))
    }

    fn id<T: FromStr>(&self, field: &str) -> Result<T, ApiError>
    where
        T::Err: std::fmt::Display,
    {
        let text = self.string(field)?;
        text.parse()
            .map_err(|error| ApiError::field(field, format!("invalid {field} {text:?}: {error}")))
    }

    fn optional_strings(&self, field: &str) -> Result<Vec<String>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        ApiError::field(field, format!("{field} must be a list of strings"))
                    })
                })
                .collect(),
            Some(_) => Err(ApiError::field(
                field,
                format!("{field} must be a list of strings"),
            )),
        }
    }

    fn strings(&self, field: &str) -> Result<Vec<String>, ApiError> {
        let items = self.optional_strings(field)?;
        if items.is_empty() {
            return Err(ApiError::field(
                field,
                format!("{field} needs at least one entry"),
            ));
        }
        Ok(items)
    }
}
