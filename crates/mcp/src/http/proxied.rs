//! `url` upstreams: the gateway passes each HTTP request on to the
//! upstream's Streamable HTTP endpoint and streams the answer back, event
//! by event and byte for byte, so that sessions, SSE streams, event ids and
//! resumption are the upstream's own. It reads the messages on the way
//! (tool hints, session ids, tool results for the outcome report) and
//! holds back each `tools/call` until the approval loop lets it through.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::{Principal, PrincipalRef};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::{json_response, rpc_error, sse, Incoming, Service, SESSION_HEADER};
use crate::approvals::{Approvals, InProcess};
use crate::catalogue::Catalogue;
use crate::gate::{self, Call, Verdict};
use crate::jsonrpc::{self, Kind};
use crate::relay::Message;

/// Request headers passed to the upstream (besides `Mcp-Param-*`).
const REQUEST_HEADERS: [&str; 7] =
    ["accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name"];
/// Response headers passed back to the client.
const RESPONSE_HEADERS: [&str; 6] =
    ["content-type", "mcp-session-id", "mcp-protocol-version", "cache-control", "retry-after", "x-accel-buffering"];

/// What the gateway knows about one session with a `url` upstream.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) owner: PrincipalRef,
    pub(super) upstream: String,
    approvals: InProcess,
    last_used: Mutex<Instant>,
    watch: Mutex<Watch>,
}

#[derive(Debug, Default)]
struct Watch {
    catalogue: Catalogue,
    /// `tools/list` requests in flight, by id key.
    tool_lists: HashSet<String>,
    /// Forwarded tool calls (id key) → their approval request.
    forwarded: HashMap<String, String>,
    /// Tool calls waiting for their decision (id key) → their cancel.
    gating: HashMap<String, oneshot::Sender<()>>,
}

impl Session {
    fn new(service: &Service, principal: Principal, upstream: &str) -> Self {
        Self {
            owner: principal.reference(),
            upstream: upstream.to_owned(),
            approvals: InProcess::new(service.0.state.clone(), principal),
            last_used: Mutex::new(Instant::now()),
            watch: Mutex::new(Watch::default()),
        }
    }

    fn watch(&self) -> MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn touch(&self, principal: Principal) {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.approvals.refresh(principal);
    }

    /// Looks at a message from the upstream; returns a replacement text
    /// when the message must change (tools hidden from `tools/list`).
    fn observe(self: &Arc<Self>, message: &Value, hide: bool) -> Option<String> {
        let Kind::Response { id } = jsonrpc::classify(message) else {
            return None;
        };
        let key = jsonrpc::id_key(id);
        let (listed, request) = {
            let mut watch = self.watch();
            let listed = watch.tool_lists.remove(&key);
            if listed {
                if let Some(result) = message.get("result") {
                    watch.catalogue.learn(result);
                }
            }
            (listed, watch.forwarded.remove(&key))
        };
        if let Some(request) = request {
            let report = gate::report_for(message);
            let session = self.clone();
            tokio::spawn(async move {
                if let Err(e) = session.approvals.report(&request, report).await {
                    tracing::warn!(%request, error = %e, "could not report the outcome of a tool call");
                }
            });
        }
        if listed && hide {
            return self.hide_forbidden(message);
        }
        None
    }

    fn hide_forbidden(&self, message: &Value) -> Option<String> {
        let mut value = message.clone();
        let tools = value.pointer_mut("/result/tools")?.as_array_mut()?;
        let before = tools.len();
        let catalogue = self.watch().catalogue.clone();
        tools.retain(|tool| {
            let Some(name) = tool.get("name").and_then(Value::as_str) else { return true };
            let call = Call {
                upstream: self.upstream.clone(),
                tool: name.to_owned(),
                arguments: json!({}),
                tool_context: catalogue.context(name),
            };
            !self.approvals.forbids_outright(&call.action())
        });
        (tools.len() != before).then(|| value.to_string())
    }
}

pub(super) async fn handle(
    service: &Service,
    url: &str,
    request: Incoming,
    session: Option<super::Session>,
) -> Response {
    let session = match session {
        Some(super::Session::Proxied(s)) => Some(s),
        Some(super::Session::Spawned(_)) => {
            return rpc_error(StatusCode::NOT_FOUND, jsonrpc::INVALID_REQUEST, "unknown or expired session")
        }
        None => None,
    };
    let method = request.method.clone();
    if method == Method::POST {
        post(service, url, request, session).await
    } else if method == Method::GET || method == Method::DELETE {
        let session = match session {
            Some(s) => s,
            None => stateless(service, &request),
        };
        let response = match forward(service, url, &request, Bytes::new()).await {
            Ok(response) => response,
            Err(e) => return upstream_unreachable(&request.upstream, &e),
        };
        if method == Method::DELETE && response.status().is_success() {
            if let Some(id) = &request.session_id {
                service.remove(id);
            }
        }
        pass_back(service, response, session, None).await
    } else {
        (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, POST, DELETE")]).into_response()
    }
}

/// The session-less state of a caller with an upstream that does not use
/// sessions, kept so that its tool hints are remembered.
fn stateless(service: &Service, request: &Incoming) -> Arc<Session> {
    let key = format!("stateless:{}:{}", request.principal.reference(), request.upstream);
    if let Some(super::Session::Proxied(s)) = service.session(&key, &request.principal, &request.upstream) {
        return s;
    }
    let session = Arc::new(Session::new(service, request.principal.clone(), &request.upstream));
    service.insert(key, super::Session::Proxied(session.clone()));
    session
}

async fn post(service: &Service, url: &str, request: Incoming, session: Option<Arc<Session>>) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(&request.body) else {
        return rpc_error(StatusCode::BAD_REQUEST, jsonrpc::PARSE_ERROR, "the body is not JSON");
    };
    if let Err(response) = super::check_mirrored_headers(&request.headers, &value) {
        return *response;
    }
    if jsonrpc::has_duplicate_keys(&String::from_utf8_lossy(&request.body)) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_REQUEST,
            "a key is repeated in this message; refused",
        );
    }
    if let Value::Array(items) = &value {
        // Batches (2025-03-26 only) would hide a tool call from the gate.
        let gated = items.iter().any(|m| matches!(jsonrpc::classify(m), Kind::Request { method: "tools/call", .. }));
        if gated {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "a JSON-RPC batch may not contain `tools/call` here; send each tool call on its own",
            );
        }
    }
    let initialize = matches!(jsonrpc::classify(&value), Kind::Request { method: "initialize", .. });
    let session = match session {
        Some(s) => s,
        None if initialize => {
            if service.full() {
                return rpc_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    jsonrpc::INTERNAL_ERROR,
                    "too many MCP sessions are open; try again later",
                );
            }
            Arc::new(Session::new(service, request.principal.clone(), &request.upstream))
        }
        None => stateless(service, &request),
    };
    match jsonrpc::classify(&value) {
        Kind::Request { id, method: "tools/call" } => {
            let id = id.clone();
            call_tool(service, url, request, session, Message { value: value.clone(), text: Arc::from("") }, id).await
        }
        Kind::Request { id, method } => {
            if method == "tools/list" {
                session.watch().tool_lists.insert(jsonrpc::id_key(id));
            }
            let body = request.body.clone();
            let response = match forward(service, url, &request, body).await {
                Ok(response) => response,
                Err(e) => return upstream_unreachable(&request.upstream, &e),
            };
            let request_id = id.clone();
            if initialize {
                let assigned = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
                if let Some(id) = assigned {
                    service.insert(id, super::Session::Proxied(session.clone()));
                }
            }
            pass_back(service, response, session, Some(&request_id)).await
        }
        Kind::Notification { method: "notifications/cancelled" } => {
            let target = jsonrpc::params(&value).get("requestId").map(jsonrpc::id_key);
            let cancel = target.and_then(|key| session.watch().gating.remove(&key));
            if let Some(cancel) = cancel {
                // Withdrawn before it reached the upstream.
                let _ = cancel.send(());
                return StatusCode::ACCEPTED.into_response();
            }
            plain_forward(service, url, request, session).await
        }
        Kind::Notification { .. } | Kind::Response { .. } | Kind::Invalid => {
            plain_forward(service, url, request, session).await
        }
    }
}

async fn plain_forward(service: &Service, url: &str, request: Incoming, session: Arc<Session>) -> Response {
    let body = request.body.clone();
    match forward(service, url, &request, body).await {
        Ok(response) => pass_back(service, response, session, None).await,
        Err(e) => upstream_unreachable(&request.upstream, &e),
    }
}

/// A `tools/call`: decided first, then forwarded or answered.
async fn call_tool(
    service: &Service,
    url: &str,
    request: Incoming,
    session: Arc<Session>,
    message: Message,
    id: Value,
) -> Response {
    let key = jsonrpc::id_key(&id);
    let call = {
        let watch = session.watch();
        Call::from_params(&request.upstream, jsonrpc::params(&message.value), |tool| watch.catalogue.context(tool))
    };
    let Some(call) = call else {
        return json_response(StatusCode::OK, &jsonrpc::error(Some(&id), -32602, "`tools/call` needs a tool `name`"));
    };
    let token = jsonrpc::progress_token(&message.value).cloned();
    let modern = jsonrpc::is_modern(&message.value);
    let (cancel_tx, cancel_rx) = oneshot::channel();
    session.watch().gating.insert(key.clone(), cancel_tx);
    // Once the call waits, the answer becomes an SSE stream: progress (or
    // keep-alive comments) first, then the result.
    let (events_tx, mut events_rx) = mpsc::channel::<Bytes>(64);
    let (verdict_tx, verdict_rx) = oneshot::channel::<Verdict>();
    let task_session = session.clone();
    let task_service = service.clone();
    let task_url = url.to_owned();
    let task_key = key.clone();
    let hide = service.0.config.hide_forbidden_tools;
    let headers = request.headers.clone();
    // The upstream gets exactly what was decided on.
    let body = Bytes::from(message.value.to_string());
    let upstream = request.upstream.clone();
    let task_id = id.clone();
    tokio::spawn(async move {
        let id = task_id;
        let streamed = std::sync::atomic::AtomicBool::new(false);
        let sink_tx = events_tx.clone();
        let sink = |note: Value| {
            streamed.store(true, std::sync::atomic::Ordering::SeqCst);
            let bytes = if token.is_some() {
                sse::message_event(&note.to_string(), None)
            } else {
                sse::comment("countersign: waiting for approval")
            };
            let _ = sink_tx.try_send(bytes);
        };
        let progress = Some((token.clone().unwrap_or(Value::Null), &sink as gate::ProgressSink<'_>));
        let closed_tx = events_tx.clone();
        let cancelled = async move {
            tokio::select! {
                r = cancel_rx => if r.is_err() { std::future::pending::<()>().await },
                // The client went away while the call waited: withdraw it,
                // since nobody would receive the result.
                () = closed_tx.closed() => {}
            }
        };
        let verdict = gate::decide(&task_session.approvals, &call, progress, cancelled).await;
        task_session.watch().gating.remove(&task_key);
        if let Verdict::Forward { request } = &verdict {
            task_session.watch().forwarded.insert(task_key.clone(), request.clone());
        }
        if !streamed.load(std::sync::atomic::Ordering::SeqCst) {
            let _ = verdict_tx.send(verdict);
            return;
        }
        drop(verdict_tx);
        let final_bytes = match verdict {
            Verdict::Reply(result) => Some(sse::message_event(&result_message(&id, result, modern), None)),
            Verdict::Cancelled => None,
            Verdict::Forward { .. } => {
                let incoming = Incoming {
                    upstream: upstream.clone(),
                    principal: task_session.approvals.principal(),
                    method: Method::POST,
                    headers,
                    body: body.clone(),
                    session_id: None,
                };
                match forward(&task_service, &task_url, &incoming, body).await {
                    Ok(response) => {
                        stream_into(response, task_session, hide, &events_tx, &id).await;
                        None
                    }
                    Err(e) => Some(sse::message_event(
                        &jsonrpc::error(Some(&id), jsonrpc::INTERNAL_ERROR, &unreachable_text(&upstream, &e))
                            .to_string(),
                        None,
                    )),
                }
            }
        };
        if let Some(bytes) = final_bytes {
            let _ = events_tx.send(bytes).await;
        }
    });
    match verdict_rx.await {
        Ok(Verdict::Reply(result)) => json_response(
            StatusCode::OK,
            &serde_json::from_str(&result_message(&id, result, modern)).unwrap_or(Value::Null),
        ),
        Ok(Verdict::Cancelled) => json_response(
            StatusCode::OK,
            &jsonrpc::error(Some(&id), jsonrpc::INTERNAL_ERROR, "the tool call was cancelled before it was made"),
        ),
        Ok(Verdict::Forward { .. }) => {
            let body = Bytes::from(message.value.to_string());
            match forward(service, url, &request, body).await {
                Ok(response) => pass_back(service, response, session, Some(&id)).await,
                Err(e) => upstream_unreachable(&request.upstream, &e),
            }
        }
        Err(_) => {
            // The call waited: answer as an SSE stream from its first event.
            let first = events_rx.recv().await.unwrap_or_else(|| sse::comment("countersign"));
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            let _ = tx.try_send(first);
            tokio::spawn(async move {
                while let Some(bytes) = events_rx.recv().await {
                    if tx.send(bytes).await.is_err() {
                        break;
                    }
                }
            });
            let mut extra = Vec::new();
            if let Some(sid) = &request.session_id {
                extra.push((SESSION_HEADER, sid.clone()));
            }
            super::sse_response(rx, &extra)
        }
    }
}

fn result_message(id: &Value, mut result: Value, modern: bool) -> String {
    if modern {
        result["resultType"] = json!("complete");
    }
    jsonrpc::result(id, result).to_string()
}

/// Passes the HTTP request on to the upstream.
async fn forward(service: &Service, url: &str, request: &Incoming, body: Bytes) -> Result<reqwest::Response, String> {
    let method = match request.method.as_str() {
        "GET" => reqwest::Method::GET,
        "DELETE" => reqwest::Method::DELETE,
        _ => reqwest::Method::POST,
    };
    let Some(upstream) = service.0.http.get(&request.upstream) else {
        return Err("its client is not configured (see the gateway's log)".to_owned());
    };
    let mut upstream_request = upstream.client.request(method, url);
    if let Some(authorization) = &upstream.authorization {
        upstream_request = upstream_request.header(reqwest::header::AUTHORIZATION, authorization.clone());
    }
    for (name, value) in &request.headers {
        let name_text = name.as_str();
        if REQUEST_HEADERS.contains(&name_text) || name_text.starts_with("mcp-param-") {
            if let Ok(value) = value.to_str() {
                upstream_request = upstream_request.header(name_text, value);
            }
        }
    }
    if request.method == Method::POST {
        upstream_request = upstream_request.body(body.to_vec());
    }
    upstream_request.send().await.map_err(|e| {
        if e.is_connect() && crate::tls::rejected_certificate(&e) {
            "its TLS certificate is not trusted (check the upstream's `ca_file`)".to_owned()
        } else if e.is_connect() {
            "connection refused".to_owned()
        } else if e.is_timeout() {
            "timed out".to_owned()
        } else {
            "the connection failed".to_owned()
        }
    })
}

fn unreachable_text(upstream: &str, detail: &str) -> String {
    format!("the upstream MCP server `{upstream}` cannot be reached: {detail}")
}

fn upstream_unreachable(upstream: &str, detail: &str) -> Response {
    tracing::warn!(%upstream, %detail, "MCP upstream unreachable");
    rpc_error(StatusCode::BAD_GATEWAY, jsonrpc::INTERNAL_ERROR, &unreachable_text(upstream, detail))
}

/// Streams the upstream's answer back, looking at each message on the way.
/// `gated` is the id of a forwarded tool call, answered with an error if
/// the upstream fails without answering it.
async fn pass_back(
    service: &Service,
    response: reqwest::Response,
    session: Arc<Session>,
    gated: Option<&Value>,
) -> Response {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        if let Some(value) = response.headers().get(name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let hide = service.0.config.hide_forbidden_tools;
    let is_sse = content_type(&response).starts_with("text/event-stream");
    if is_sse {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let id = gated.cloned().unwrap_or(Value::Null);
        tokio::spawn(async move { stream_into(response, session, hide, &tx, &id).await });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|bytes| (Ok::<Bytes, std::convert::Infallible>(bytes), rx))
        });
        let mut out = Response::new(Body::from_stream(stream));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        return out;
    }
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(_) => {
            if let Some(id) = gated {
                session.observe(&jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, "no answer"), false);
            }
            return rpc_error(StatusCode::BAD_GATEWAY, jsonrpc::INTERNAL_ERROR, "the upstream's answer broke off");
        }
    };
    let mut body = bytes.clone();
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        if let Some(replaced) = session.observe(&value, hide) {
            body = Bytes::from(replaced);
        }
    } else if let Some(id) = gated {
        // Not a JSON-RPC answer (an HTTP error page): the call got none.
        session.observe(&jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, "no answer"), false);
    }
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase()
}

/// Copies an upstream answer (SSE or JSON) into an SSE stream to the
/// client, event by event, observing each message.
async fn stream_into(
    mut response: reqwest::Response,
    session: Arc<Session>,
    hide: bool,
    tx: &mpsc::Sender<Bytes>,
    gated: &Value,
) {
    if !content_type(&response).starts_with("text/event-stream") {
        let status = response.status();
        if let Ok(bytes) = response.bytes().await {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(value) => {
                    let text =
                        session.observe(&value, hide).unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
                    let _ = tx.send(sse::message_event(&text, None)).await;
                }
                Err(_) if !gated.is_null() => {
                    let error = jsonrpc::error(
                        Some(gated),
                        jsonrpc::INTERNAL_ERROR,
                        &format!("the upstream answered HTTP {status}"),
                    );
                    session.observe(&error, false);
                    let _ = tx.send(sse::message_event(&error.to_string(), None)).await;
                }
                Err(_) => {}
            }
        }
        return;
    }
    let mut parser = sse::Parser::default();
    let mut answered = false;
    let broken = loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            // A clean end: the upstream may resume the stream on a GET.
            Ok(None) => break false,
            Err(_) => break true,
        };
        let Ok(events) = parser.push(&chunk) else { break true };
        for event in events {
            let bytes = match serde_json::from_str::<Value>(&event.data) {
                Ok(value) => {
                    if let Kind::Response { id } = jsonrpc::classify(&value) {
                        answered |= id == gated;
                    }
                    match session.observe(&value, hide) {
                        Some(replaced) => event.with_data(&replaced).to_bytes(),
                        None => event.to_bytes(),
                    }
                }
                Err(_) => event.to_bytes(),
            };
            // A client that left does not stop the reading: the outcome
            // must still be seen and reported.
            let _ = tx.send(bytes).await;
        }
    };
    if broken && !answered && !gated.is_null() {
        // The upstream died mid-answer: say so rather than leave the
        // client waiting for a response that cannot come.
        let error = jsonrpc::error(
            Some(gated),
            jsonrpc::INTERNAL_ERROR,
            &format!("the upstream MCP server `{}` broke off its answer", session.upstream),
        );
        session.observe(&error, false);
        let _ = tx.send(sse::message_event(&error.to_string(), None)).await;
    }
}
