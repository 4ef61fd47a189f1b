//! `url` upstreams: the gateway passes each HTTP request on to the
//! upstream's Streamable HTTP endpoint and streams the answer back, event
//! by event, so that sessions, SSE streams, event ids and resumption are
//! the upstream's own. It reads the messages on the way (tool hints,
//! session ids, tool results for the outcome report) and holds back each
//! `tools/call` until the approval loop lets it through.
//!
//! Only valid JSON-RPC passes, either way (see [`jsonrpc::check`]): the
//! client's messages are checked before anything is forwarded, and the
//! upstream's answers are read in full (bounded) before they are passed
//! on; a response for an id that was not forwarded (a call held for
//! approval, refused, or never made) is dropped and audited, since the
//! client would take it for that call's result.

use std::collections::{HashMap, HashSet, VecDeque};
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
use crate::jsonrpc::{self, From, Kind, Malformed};
use crate::refusal::{Budget, Refusal};
use crate::relay::{Message, MAX_IN_FLIGHT};

/// Request headers passed to the upstream (besides `Mcp-Param-*`).
const REQUEST_HEADERS: [&str; 6] =
    ["accept", "mcp-session-id", "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name"];
/// Answered requests remembered, so that a resumed stream may replay an
/// answer the client lost.
const ANSWERED_KEPT: usize = 256;
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
    /// Forwarded requests not answered yet (id key) → for tool calls,
    /// their approval request.
    open: HashMap<String, Option<String>>,
    /// Requests answered lately, oldest first.
    answered: VecDeque<String>,
    /// Tool calls waiting for their decision (id key) → their cancel.
    gating: HashMap<String, oneshot::Sender<()>>,
    /// Requests from the upstream the client has yet to answer, by id key.
    asked: HashSet<String>,
    budget: Budget,
}

/// Which responses an upstream answer may carry.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// The answer to a POSTed request: its response, once.
    Only(Value),
    /// The answer to a POSTed notification or response, or a DELETE.
    Nothing,
    /// A GET stream: responses to any forwarded request (a resumed stream
    /// may replay one the client lost), never to one held for approval.
    Any,
}

impl Expect {
    fn gated(&self) -> Option<&Value> {
        match self {
            Expect::Only(id) => Some(id),
            Expect::Nothing | Expect::Any => None,
        }
    }
}

/// What becomes of a message from the upstream.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Pass,
    /// Pass this text instead (tools hidden from `tools/list`).
    Replace(String),
    /// Dropped (and audited).
    Drop,
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

    pub(super) fn busy(&self) -> bool {
        let watch = self.watch();
        !watch.open.is_empty() || !watch.gating.is_empty()
    }

    pub(super) fn touch(&self, principal: Principal) {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.approvals.refresh(principal);
    }

    /// Looks at a message from the upstream (`text` as received): what to
    /// do with it, and what it says (tool hints, outcomes) is taken in.
    fn observe(self: &Arc<Self>, message: &Value, text: &[u8], hide: bool, expect: &Expect) -> Seen {
        let kind = match jsonrpc::check(message, From::Upstream) {
            Ok(kind) => kind,
            Err(why) => {
                self.dropped(why.0, text);
                return Seen::Drop;
            }
        };
        let id = match kind {
            // An error about a message it could not read answers nothing.
            Kind::Response { id } if id.is_null() => return Seen::Pass,
            Kind::Response { id } => id,
            Kind::Request { id, .. } => {
                let admitted = {
                    let mut watch = self.watch();
                    watch.asked.len() < MAX_IN_FLIGHT && watch.asked.insert(jsonrpc::id_key(id))
                };
                if admitted {
                    return Seen::Pass;
                }
                self.dropped("a request whose id is in flight, or one too many in flight", text);
                return Seen::Drop;
            }
            Kind::Notification { .. } => return Seen::Pass,
            Kind::Invalid => {
                self.dropped("not a JSON-RPC message", text);
                return Seen::Drop;
            }
        };
        let key = jsonrpc::id_key(id);
        enum Fate {
            Answer { request: Option<String>, listed: bool },
            Replay,
            Forged(&'static str),
        }
        let fate = {
            let mut watch = self.watch();
            let expected = match expect {
                Expect::Only(only) => *only == *id,
                Expect::Nothing => false,
                Expect::Any => true,
            };
            if watch.gating.contains_key(&key) {
                Fate::Forged("a response for a tool call that was held for approval, not forwarded")
            } else if !expected {
                Fate::Forged("a response for another request than the one this answer is for")
            } else if let Some(request) = watch.open.remove(&key) {
                if watch.answered.len() >= ANSWERED_KEPT {
                    watch.answered.pop_front();
                }
                watch.answered.push_back(key.clone());
                let listed = watch.tool_lists.remove(&key);
                if listed {
                    if let Some(result) = message.get("result") {
                        watch.catalogue.learn(result);
                    }
                }
                Fate::Answer { request, listed }
            } else if *expect == Expect::Any && watch.answered.contains(&key) {
                Fate::Replay
            } else {
                Fate::Forged("a response for a request that was not forwarded")
            }
        };
        match fate {
            Fate::Answer { request, listed } => {
                if let Some(request) = request {
                    let report = gate::report_for(message);
                    let session = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = session.approvals.report(&request, report).await {
                            tracing::warn!(%request, error = %e, "could not report the outcome of a tool call");
                        }
                    });
                }
                match (listed && hide).then(|| self.hide_forbidden(message)).flatten() {
                    Some(text) => Seen::Replace(text),
                    None => Seen::Pass,
                }
            }
            Fate::Replay => Seen::Pass,
            Fate::Forged(why) => {
                self.dropped(why, text);
                Seen::Drop
            }
        }
    }

    /// A forwarded request that will get no answer from the upstream:
    /// forgotten, and if it was a tool call, reported failed.
    fn unanswered(self: &Arc<Self>, id: &Value, why: &str) {
        if self.watch().open.contains_key(&jsonrpc::id_key(id)) {
            let error = jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, why);
            self.observe(&error, b"", false, &Expect::Only(id.clone()));
        }
    }

    /// A message from the upstream was dropped: audited (within budget).
    fn dropped(self: &Arc<Self>, why: &str, text: &[u8]) {
        tracing::warn!(upstream = %self.upstream, %why, "dropped a message from the upstream");
        self.audit(Refusal::new(&self.upstream, From::Upstream, "http", why, text));
    }

    fn audit(self: &Arc<Self>, mut refusal: Refusal) {
        if !self.watch().budget.admit(&mut refusal) {
            return;
        }
        let session = self.clone();
        tokio::spawn(async move {
            if let Err(e) = session.approvals.refused(refusal).await {
                tracing::warn!(error = %e, "could not audit a dropped MCP message");
            }
        });
    }

    /// Whether a client message may go on: a request whose id is not in
    /// flight, or a response to a request of the upstream's (taken).
    fn admit_from_client(&self, kind: Kind<'_>) -> Result<(), Malformed> {
        let mut watch = self.watch();
        match kind {
            Kind::Request { id, .. } => {
                let key = jsonrpc::id_key(id);
                if watch.open.contains_key(&key) || watch.gating.contains_key(&key) {
                    Err(Malformed("a request with this `id` is still in flight; ids must be unique"))
                } else if watch.open.len() + watch.gating.len() >= MAX_IN_FLIGHT {
                    Err(Malformed("too many requests in flight"))
                } else {
                    Ok(())
                }
            }
            Kind::Response { id } => {
                if watch.asked.remove(&jsonrpc::id_key(id)) {
                    Ok(())
                } else {
                    Err(Malformed("a response to no request the upstream made"))
                }
            }
            Kind::Notification { .. } => Ok(()),
            Kind::Invalid => Err(Malformed("not a JSON-RPC request, notification or response")),
        }
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
        let expect = if method == Method::GET { Expect::Any } else { Expect::Nothing };
        pass_back(service, response, session, expect).await
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
    let Ok(text) = std::str::from_utf8(&request.body) else {
        return rpc_error(StatusCode::BAD_REQUEST, jsonrpc::PARSE_ERROR, "the body is not JSON");
    };
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return rpc_error(StatusCode::BAD_REQUEST, jsonrpc::PARSE_ERROR, "the body is not JSON");
    };
    if let Err(response) = super::check_mirrored_headers(&request.headers, &value) {
        return *response;
    }
    // Every message is checked before anything reaches the upstream: a
    // `tools/call` is decided, anything malformed refused (batches too).
    let kind = match jsonrpc::vet_from_client(text, &value) {
        Ok(kind) => kind,
        Err((why, _)) => return super::malformed(why),
    };
    let initialize = matches!(kind, Kind::Request { method: "initialize", .. });
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
    if let Err(why) = session.admit_from_client(kind) {
        return super::malformed(why);
    }
    match kind {
        Kind::Request { id, method: "tools/call" } => {
            let id = id.clone();
            call_tool(service, url, request, session, Message { value: value.clone(), text: Arc::from("") }, id).await
        }
        Kind::Request { id, method } => {
            let key = jsonrpc::id_key(id);
            {
                let mut watch = session.watch();
                if method == "tools/list" {
                    watch.tool_lists.insert(key.clone());
                }
                watch.open.insert(key, None);
            }
            let body = request.body.clone();
            let response = match forward(service, url, &request, body).await {
                Ok(response) => response,
                Err(e) => {
                    session.unanswered(id, "the upstream could not be reached");
                    return upstream_unreachable(&request.upstream, &e);
                }
            };
            let request_id = id.clone();
            if initialize {
                let assigned = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
                if let Some(id) = assigned {
                    service.insert(id, super::Session::Proxied(session.clone()));
                }
            }
            pass_back(service, response, session, Expect::Only(request_id)).await
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
        Kind::Notification { .. } | Kind::Response { .. } => plain_forward(service, url, request, session).await,
        Kind::Invalid => super::malformed(Malformed("not a JSON-RPC request, notification or response")),
    }
}

async fn plain_forward(service: &Service, url: &str, request: Incoming, session: Arc<Session>) -> Response {
    let body = request.body.clone();
    match forward(service, url, &request, body).await {
        Ok(response) => pass_back(service, response, session, Expect::Nothing).await,
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
        {
            let mut watch = task_session.watch();
            watch.gating.remove(&task_key);
            if let Verdict::Forward { request } = &verdict {
                watch.open.insert(task_key.clone(), Some(request.clone()));
            }
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
                        stream_into(response, task_session, hide, &events_tx, Expect::Only(id.clone())).await;
                        None
                    }
                    Err(e) => {
                        let text = unreachable_text(&upstream, &e);
                        task_session.unanswered(&id, &text);
                        Some(sse::message_event(
                            &jsonrpc::error(Some(&id), jsonrpc::INTERNAL_ERROR, &text).to_string(),
                            None,
                        ))
                    }
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
                Ok(response) => pass_back(service, response, session, Expect::Only(id.clone())).await,
                Err(e) => {
                    session.unanswered(&id, "the upstream could not be reached");
                    upstream_unreachable(&request.upstream, &e)
                }
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
        // The body was checked as JSON (UTF-8); the upstream reads it as such.
        upstream_request = upstream_request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
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
/// A forwarded request `expect`ed here gets an error if the upstream fails
/// without answering it.
async fn pass_back(service: &Service, response: reqwest::Response, session: Arc<Session>, expect: Expect) -> Response {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        if let Some(value) = response.headers().get(name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let hide = service.0.config.hide_forbidden_tools;
    if is_sse(&response) {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        tokio::spawn(async move { stream_into(response, session, hide, &tx, expect).await });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|bytes| (Ok::<Bytes, std::convert::Infallible>(bytes), rx))
        });
        let mut out = Response::new(Body::from_stream(stream));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        return out;
    }
    let answer = json_answer(response, &session, hide, &expect).await;
    if let Some(id) = expect.gated() {
        session.unanswered(id, "the upstream did not answer");
    }
    match answer {
        Answer::Body(body) => {
            let mut out = Response::new(Body::from(body));
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            out
        }
        Answer::Refused(why) => rpc_error(StatusCode::BAD_GATEWAY, jsonrpc::INTERNAL_ERROR, why),
    }
}

/// Whether a client reads this answer as an SSE stream (as the SDKs do:
/// the type named anywhere in the header).
fn is_sse(response: &reqwest::Response) -> bool {
    content_type(response).contains("text/event-stream")
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase()
}

/// A non-SSE answer of the upstream, read whole (bounded) and checked.
enum Answer {
    /// What to pass on.
    Body(Bytes),
    /// Nothing may be passed on; why.
    Refused(&'static str),
}

/// Reads a body of at most [`jsonrpc::MAX_MESSAGE_BYTES`]; `Err(true)` when
/// it is longer, `Err(false)` when it broke off.
async fn read_bounded(response: &mut reqwest::Response) -> Result<Bytes, bool> {
    if response.content_length().is_some_and(|n| n > jsonrpc::MAX_MESSAGE_BYTES as u64) {
        return Err(true);
    }
    let mut body = bytes::BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > jsonrpc::MAX_MESSAGE_BYTES {
                    return Err(true);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(_) => return Err(false),
        }
    }
}

/// A JSON (or empty, or error page) answer: a JSON-RPC message in it
/// passes only if valid and expected; a successful answer that is not
/// JSON-RPC does not pass at all (a client would try to read it).
async fn json_answer(mut response: reqwest::Response, session: &Arc<Session>, hide: bool, expect: &Expect) -> Answer {
    let status = response.status();
    let bytes = match read_bounded(&mut response).await {
        Ok(bytes) => bytes,
        Err(true) => {
            let length = usize::try_from(response.content_length().unwrap_or(0)).unwrap_or(usize::MAX);
            let length = length.max(jsonrpc::MAX_MESSAGE_BYTES + 1);
            session.audit(Refusal::oversized(&session.upstream, From::Upstream, "http", length));
            return Answer::Refused("the upstream's answer is too large; it was not passed on");
        }
        Err(false) => return Answer::Refused("the upstream's answer broke off"),
    };
    if bytes.is_empty() {
        return Answer::Body(bytes);
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => match session.observe(&value, &bytes, hide, expect) {
            Seen::Pass => Answer::Body(bytes),
            Seen::Replace(text) => Answer::Body(Bytes::from(text)),
            Seen::Drop => Answer::Refused("the upstream's answer was not a valid answer to this request"),
        },
        // An error page: no client reads it as JSON-RPC.
        Err(_) if !status.is_success() => Answer::Body(bytes),
        Err(_) => {
            session.dropped("an answer that is not JSON", &bytes);
            Answer::Refused("the upstream's answer is not JSON")
        }
    }
}

/// Copies an upstream answer (SSE or JSON) into an SSE stream to the
/// client, event by event, observing each message; what may not pass is
/// left out.
async fn stream_into(
    mut response: reqwest::Response,
    session: Arc<Session>,
    hide: bool,
    tx: &mpsc::Sender<Bytes>,
    expect: Expect,
) {
    static NO_ID: Value = Value::Null;
    let gated = expect.gated().unwrap_or(&NO_ID);
    if !is_sse(&response) {
        let status = response.status();
        let answer = json_answer(response, &session, hide, &expect).await;
        let bytes = match answer {
            Answer::Body(bytes) if !bytes.is_empty() && status.is_success() => {
                Some(sse::message_event(&String::from_utf8_lossy(&bytes), None))
            }
            Answer::Body(_) | Answer::Refused(_) if !gated.is_null() => {
                let why = match answer {
                    Answer::Refused(why) => why.to_owned(),
                    Answer::Body(_) => format!("the upstream answered HTTP {status}"),
                };
                let error = jsonrpc::error(Some(gated), jsonrpc::INTERNAL_ERROR, &why);
                Some(sse::message_event(&error.to_string(), None))
            }
            Answer::Body(_) | Answer::Refused(_) => None,
        };
        if !gated.is_null() {
            session.unanswered(gated, "the upstream did not answer");
        }
        if let Some(bytes) = bytes {
            let _ = tx.send(bytes).await;
        }
        return;
    }
    let mut parser = sse::Parser::default();
    let broken = loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            // A clean end: the upstream may resume the stream on a GET.
            Ok(None) => break false,
            Err(_) => break true,
        };
        let events = match parser.push(&chunk) {
            Ok(events) => events,
            Err(sse::TooLarge) => {
                session.audit(Refusal::oversized(&session.upstream, From::Upstream, "http", sse::MAX_EVENT_BYTES + 1));
                break true;
            }
        };
        for event in events {
            let bytes = if event.is_message() {
                let seen = match serde_json::from_str::<Value>(&event.data) {
                    Ok(value) => session.observe(&value, event.data.as_bytes(), hide, &expect),
                    Err(_) => {
                        session.dropped("an event whose data is not JSON", event.data.as_bytes());
                        Seen::Drop
                    }
                };
                match seen {
                    Seen::Pass => event.to_bytes(),
                    Seen::Replace(text) => event.with_data(&text).to_bytes(),
                    Seen::Drop => continue,
                }
            } else if event.data.is_empty() {
                // A priming event, a keep-alive: no message in it.
                event.to_bytes()
            } else {
                // Data a client would not read as a message: not passed on.
                session.dropped("an event of another type than `message`", event.data.as_bytes());
                continue;
            };
            // A client that left does not stop the reading: the outcome
            // must still be seen and reported.
            let _ = tx.send(bytes).await;
        }
    };
    let unanswered = !gated.is_null() && session.watch().open.contains_key(&jsonrpc::id_key(gated));
    if broken && unanswered {
        // The upstream died mid-answer: say so rather than leave the
        // client waiting for a response that cannot come.
        let text = format!("the upstream MCP server `{}` broke off its answer", session.upstream);
        session.unanswered(gated, &text);
        let error = jsonrpc::error(Some(gated), jsonrpc::INTERNAL_ERROR, &text);
        let _ = tx.send(sse::message_event(&error.to_string(), None)).await;
    }
}
