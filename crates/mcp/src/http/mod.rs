//! Streamable HTTP at `/mcp/{upstream}` on the gateway, for the upstreams
//! in `[mcp.upstreams]`:
//! - `url` upstreams ([`proxied`]): each HTTP request is passed to the
//!   upstream's endpoint and its answer streamed back, so sessions, SSE
//!   streams, event ids and resumption are the upstream's own;
//! - `command` upstreams ([`spawned`]): one child process per client
//!   session, with the gateway as the Streamable HTTP server.
//!
//! Either way, agents authenticate with their key as a Bearer token, every
//! session is bound to the agent that opened it, browser `Origin`s are
//! checked (DNS rebinding), and `tools/call` goes through the approval loop.

mod proxied;
mod spawned;
pub mod sse;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::{McpConfig, McpUpstream};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use countersign_core::{Principal, PrincipalRef};
use countersign_gateway::refusals::Source;
use countersign_gateway::AppState;
use serde_json::Value;

use crate::jsonrpc;

/// The session header (case does not matter in HTTP).
pub const SESSION_HEADER: &str = "mcp-session-id";
/// Protocol versions of the session-based Streamable HTTP transport.
pub const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The MCP routes, served by the gateway next to its API: the upstreams
/// of `config`, with request bodies up to `body_limit_bytes` (the API's).
pub fn router(state: AppState, config: McpConfig, body_limit_bytes: usize) -> Router {
    let limit = body_limit_bytes;
    let service = Service(Arc::new(Inner {
        http: upstream_clients(&config),
        state,
        config,
        sessions: Mutex::new(HashMap::new()),
    }));
    tokio::spawn(evict_idle(service.clone()));
    Router::new()
        .route("/mcp/{upstream}", any(endpoint))
        .route(REFUSALS_PATH, axum::routing::post(report_refusal))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service)
}

/// Where `countersign mcp` (the stdio proxy, beside the agent) reports
/// the messages it refused or dropped, to be audited here.
pub const REFUSALS_PATH: &str = "/v1/mcp/refusals";

/// `POST /v1/mcp/refusals`: one refusal of a `countersign mcp` proxy,
/// audited under the agent that reports it, within the same bounds as
/// the gateway's own.
async fn report_refusal(
    State(service): State<Service>,
    source: Option<axum::Extension<Source>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let source = countersign_server::source::stamped(source);
    let state = &service.0.state;
    let call = countersign_server::bearer::CallHead::new(&Method::POST, &uri, &headers);
    let principal = match authenticate(state, source, &call).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    let report: Option<Value> = countersign_core::json::from_slice_allowing_repeats(&body).ok();
    let upstream = report.as_ref().and_then(|r| r.get("upstream")).and_then(Value::as_str).unwrap_or("");
    let named = !upstream.is_empty()
        && upstream.len() <= 128
        && !upstream.contains('/')
        && !upstream.chars().any(char::is_control);
    let refusal = report.as_ref().filter(|_| named).and_then(|r| crate::refusal::Refusal::from_report(upstream, r));
    let Some(refusal) = refusal else {
        let actor = principal.reference().to_string();
        let record = countersign_gateway::refusals::call_record(
            Some(&actor),
            "POST",
            REFUSALS_PATH,
            None,
            "bad_request",
            "not a refusal report",
        )
        .number("status", 400);
        state.refuse(source, Some(&actor), "bad_request", false, || record).await;
        return rpc_error(StatusCode::BAD_REQUEST, jsonrpc::INVALID_REQUEST, "not a refusal report");
    };
    let event = countersign_audit::AuditDraft::new(principal.reference().to_string(), refusal.event());
    match state.audit(vec![event]).await {
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"recorded": true})),
        Err(e) => {
            tracing::error!(error = %e, "could not audit a refusal reported by an MCP proxy");
            rpc_error(StatusCode::SERVICE_UNAVAILABLE, jsonrpc::INTERNAL_ERROR, "the refusal could not be recorded")
        }
    }
}

/// One client per `url` upstream: no proxies (upstreams are local or on
/// the gateway's network), a bounded connect time, no overall timeout (SSE
/// streams last as long as the session), the upstream's own CA when one is
/// configured, and the gateway's credential for it, if any.
fn upstream_clients(config: &McpConfig) -> HashMap<String, UpstreamClient> {
    crate::install_crypto_provider();
    let mut clients = HashMap::new();
    for (name, upstream) in &config.upstreams {
        let McpUpstream::Url(upstream) = upstream else { continue };
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).no_proxy();
        if let Some(pem) = &upstream.ca_pem {
            match reqwest::Certificate::from_pem_bundle(pem) {
                Ok(roots) => builder = builder.tls_certs_only(roots),
                Err(e) => {
                    // Left out, so every call to it fails: trusting the
                    // system roots instead would widen what the operator chose.
                    tracing::error!(upstream = %name, error = %e, "cannot read the upstream's `ca_file`; it is unreachable");
                    continue;
                }
            }
        }
        let authorization = match upstream
            .bearer_token
            .as_ref()
            .map(|t| HeaderValue::from_str(&format!("Bearer {}", t.expose())))
        {
            None => None,
            Some(Ok(mut value)) => {
                value.set_sensitive(true);
                Some(value)
            }
            Some(Err(_)) => {
                tracing::error!(upstream = %name, "the upstream's `bearer_token` is not a valid header value; it is unreachable");
                continue;
            }
        };
        match builder.build() {
            Ok(client) => {
                clients.insert(name.clone(), UpstreamClient { client, authorization });
            }
            Err(e) => tracing::error!(upstream = %name, error = %e, "cannot set up the HTTP client; it is unreachable"),
        }
    }
    clients
}

/// How the gateway itself talks to one `url` upstream.
#[derive(Debug)]
struct UpstreamClient {
    client: reqwest::Client,
    /// The gateway's credential, marked sensitive so it never shows in logs.
    authorization: Option<HeaderValue>,
}

#[derive(Debug, Clone)]
struct Service(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    state: AppState,
    config: McpConfig,
    sessions: Mutex<HashMap<String, Session>>,
    /// By upstream name; an upstream whose client could not be built is missing.
    http: HashMap<String, UpstreamClient>,
}

/// A client session, bound to one agent and one upstream.
#[derive(Debug, Clone)]
enum Session {
    Proxied(Arc<proxied::Session>),
    Spawned(Arc<spawned::Session>),
}

impl Session {
    fn owner(&self) -> (&PrincipalRef, &str) {
        match self {
            Self::Proxied(s) => (&s.owner, &s.upstream),
            Self::Spawned(s) => (&s.owner, &s.upstream),
        }
    }

    fn last_used(&self) -> Instant {
        match self {
            Self::Proxied(s) => s.last_used(),
            Self::Spawned(s) => s.last_used(),
        }
    }

    /// Requests in flight (a call waiting for approval, a server still
    /// starting): such a session is not idle, however long ago it was used.
    fn busy(&self) -> bool {
        match self {
            Self::Proxied(s) => s.busy(),
            Self::Spawned(s) => s.busy(),
        }
    }

    fn touch(&self, principal: Principal) {
        match self {
            Self::Proxied(s) => s.touch(principal),
            Self::Spawned(s) => s.touch(principal),
        }
    }
}

impl Service {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.0.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The caller's session named by the request, if it is theirs.
    fn session(&self, id: &str, principal: &Principal, upstream: &str) -> Option<Session> {
        let session = self.sessions().get(id).cloned()?;
        let (owner, bound_upstream) = session.owner();
        // Someone else's session id is answered exactly like an unknown
        // one, so ids leak nothing.
        if *owner != principal.reference() || bound_upstream != upstream {
            return None;
        }
        session.touch(principal.clone());
        Some(session)
    }

    fn insert(&self, id: String, session: Session) {
        self.sessions().insert(id, session);
    }

    fn remove(&self, id: &str) -> Option<Session> {
        self.sessions().remove(id)
    }

    fn full(&self) -> bool {
        self.sessions().len() >= self.0.config.max_sessions
    }
}

async fn endpoint(
    State(service): State<Service>,
    Path(upstream): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    source: Option<axum::Extension<Source>>,
    body: Bytes,
) -> Response {
    let source = countersign_server::source::stamped(source);
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin_allowed(origin, &service.0.state.config().public_url, &service.0.config.allowed_origins) {
            let response = rpc_error(StatusCode::FORBIDDEN, jsonrpc::INVALID_REQUEST, "this `Origin` is not allowed");
            audit_refusal(&service.0.state, source, None, &method, &upstream, refusal_of(&response)).await;
            return response;
        }
    }
    let Some(target) = service.0.config.upstreams.get(&upstream) else {
        let response =
            rpc_error(StatusCode::NOT_FOUND, jsonrpc::INVALID_REQUEST, &format!("no MCP upstream `{upstream}`"));
        audit_refusal(&service.0.state, source, None, &method, &upstream, refusal_of(&response)).await;
        return response;
    };
    let call = countersign_server::bearer::CallHead::new(&method, &uri, &headers);
    let principal = match authenticate(&service.0.state, source, &call).await {
        Ok(principal) => principal,
        Err(response) => return *response,
    };
    let actor = principal.reference().to_string();
    let (method_seen, upstream_seen) = (method.clone(), upstream.clone());
    let session_id = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let session = session_id.as_deref().map(|id| service.session(id, &principal, &upstream));
    let response = match session {
        Some(None) => rpc_error(StatusCode::NOT_FOUND, jsonrpc::INVALID_REQUEST, "unknown or expired session"),
        Some(Some(session)) => {
            let request = Incoming { upstream, principal, method, headers, body, session_id };
            forward_to(&service, target, request, Some(session)).await
        }
        None => {
            let request = Incoming { upstream, principal, method, headers, body, session_id };
            forward_to(&service, target, request, None).await
        }
    };
    audit_refusal(&service.0.state, source, Some(&actor), &method_seen, &upstream_seen, refusal_of(&response)).await;
    response
}

async fn forward_to(service: &Service, target: &McpUpstream, request: Incoming, session: Option<Session>) -> Response {
    match target {
        McpUpstream::Url(target) => proxied::handle(service, &target.url, request, session).await,
        McpUpstream::Command(command) => spawned::handle(service, command, request, session).await,
    }
}

/// One HTTP request to the MCP endpoint, authenticated.
#[derive(Debug)]
struct Incoming {
    upstream: String,
    principal: Principal,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    session_id: Option<String>,
}

/// The caller, through the gateway's one gate ([`countersign_server::bearer`]),
/// on every request so that a revoked key stops working at once; a refusal
/// (already accounted for there) is answered as JSON-RPC, with the
/// challenge or the wait that HTTP clients look for.
async fn authenticate(
    state: &AppState,
    source: Source,
    call: &countersign_server::bearer::CallHead,
) -> Result<Principal, Box<Response>> {
    use countersign_gateway::identify::AuthError;
    use countersign_server::bearer::{identify, Unidentified};
    let refused = match identify(state, source, call).await {
        Ok(principal) => return Ok(principal),
        Err(refused) => refused,
    };
    let unauthorized = |message: &str| {
        let mut response = rpc_error(StatusCode::UNAUTHORIZED, jsonrpc::INVALID_REQUEST, message);
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    };
    let mut response = match &refused {
        Unidentified::Limited(limited) => {
            let mut response = rpc_error(StatusCode::TOO_MANY_REQUESTS, jsonrpc::INVALID_REQUEST, &limited.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after_secs));
            response
        }
        Unidentified::Failed(AuthError::Missing) => unauthorized("missing `Authorization: Bearer <agent key>` header"),
        Unidentified::Failed(failed @ (AuthError::Malformed | AuthError::Rejected)) => {
            unauthorized(&failed.to_string())
        }
        Unidentified::Failed(AuthError::Store(_)) => {
            let message = countersign_gateway::GatewayError::from(refused.clone()).to_string();
            rpc_error(StatusCode::SERVICE_UNAVAILABLE, jsonrpc::INTERNAL_ERROR, &message)
        }
    };
    response.extensions_mut().remove::<Refused>();
    Err(Box::new(response))
}

/// Browsers send `Origin`; a page from another site must not reach the
/// endpoint (DNS rebinding). Allowed: the gateway's own public URL,
/// loopback origins, and `mcp.allowed_origins`.
fn origin_allowed(origin: &HeaderValue, public_url: &str, allowed: &[String]) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if origin == public_url || allowed.iter().any(|a| a == origin) {
        return true;
    }
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => rest.split(':').next().unwrap_or(""),
    };
    host == "localhost" || host == "::1" || host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// An HTTP error whose body is a JSON-RPC error without an id. Client
/// errors carry a [`Refused`] mark so that [`endpoint`] audits them.
fn rpc_error(status: StatusCode, code: i64, message: &str) -> Response {
    let mut response = json_response(status, &jsonrpc::error(None, code, message));
    if status.is_client_error() {
        response.extensions_mut().insert(Refused(message.to_owned()));
    }
    response
}

/// A message that is not one valid JSON-RPC message (see
/// [`jsonrpc::check`]): 400, audited, and never forwarded.
fn malformed(why: jsonrpc::Malformed) -> Response {
    rpc_error(StatusCode::BAD_REQUEST, jsonrpc::INVALID_REQUEST, &format!("{why}; refused"))
}

/// A request the endpoint refused, and why: to be audited once.
#[derive(Debug, Clone)]
struct Refused(String);

/// Refuses a body whose 2026-07-28 mirror headers disagree with it.
fn check_mirrored_headers(headers: &HeaderMap, message: &Value) -> Result<(), Box<Response>> {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("(not text)"));
    match jsonrpc::mirrored_header_mismatch(header("mcp-method"), header("mcp-name"), message) {
        None => Ok(()),
        Some(why) => Err(Box::new(rpc_error(StatusCode::BAD_REQUEST, jsonrpc::HEADER_MISMATCH, &why))),
    }
}

/// What to audit about a response: the refusal it carries, unless it is a
/// failed authentication (audited where it happens).
fn refusal_of(response: &Response) -> Option<(u16, String)> {
    let Refused(message) = response.extensions().get::<Refused>()?;
    (response.status() != StatusCode::UNAUTHORIZED).then(|| (response.status().as_u16(), message.clone()))
}

async fn audit_refusal(
    state: &AppState,
    source: Source,
    actor: Option<&str>,
    method: &Method,
    upstream: &str,
    refusal: Option<(u16, String)>,
) {
    let Some((status, message)) = refusal else {
        return;
    };
    let code = status_code_name(status);
    let path = format!("/mcp/{upstream}");
    let record = || {
        countersign_gateway::refusals::call_record(actor, method.as_str(), &path, None, code, &message)
            .number("status", u64::from(status))
    };
    state.refuse(source, actor, code, false, record).await;
}

/// A stable name for a client-error status, the refusal's reason in counts.
fn status_code_name(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        409 => "conflict",
        413 => "body_too_large",
        415 => "unsupported_media_type",
        429 => "rate_limited",
        _ => "refused",
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A streaming `text/event-stream` response fed by `rx`.
fn sse_response(rx: tokio::sync::mpsc::Receiver<Bytes>, extra: &[(&'static str, String)]) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<Bytes, std::convert::Infallible>(bytes), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    for (name, value) in extra {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(*name, value);
        }
    }
    response
}

/// A fresh session id: 128 random bits, hex.
fn new_session_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

/// Drops sessions nobody used for `session_idle_timeout`.
async fn evict_idle(service: Service) {
    let timeout = service.0.config.session_idle_timeout;
    let mut tick = tokio::time::interval(Duration::from_secs(10).min(timeout));
    loop {
        tick.tick().await;
        if Arc::strong_count(&service.0) <= 1 {
            // The router is gone; so is every client.
            return;
        }
        let idle: Vec<(String, Session)> = {
            let mut sessions = service.sessions();
            let ids: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| s.last_used().elapsed() > timeout && !s.busy())
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter().filter_map(|id| sessions.remove(&id).map(|s| (id, s))).collect()
        };
        for (id, session) in idle {
            tracing::info!(session = %id, "MCP session idle too long; closed");
            if let Session::Spawned(s) = session {
                tokio::spawn(async move { s.close().await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_own_and_listed_origins_pass() {
        let ok = |o: &str| {
            origin_allowed(
                &HeaderValue::from_str(o).unwrap(),
                "https://gw.example.com",
                &["https://app.example.com".to_owned()],
            )
        };
        assert!(ok("http://localhost:3000"));
        assert!(ok("http://127.0.0.1"));
        assert!(ok("http://[::1]:8080"));
        assert!(ok("https://gw.example.com"));
        assert!(ok("https://app.example.com"));
        assert!(!ok("http://evil.example.com"));
        assert!(!ok("http://localhost.evil.example.com"));
        assert!(!ok("null"));
    }
}
