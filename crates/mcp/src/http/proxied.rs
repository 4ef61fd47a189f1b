//! `url` upstreams: the gateway passes each HTTP request on to the
//! upstream's Streamable HTTP endpoint and streams the answer back, event
//! by event, so that sessions, SSE streams, event ids and resumption are
//! the upstream's own. It reads the messages on the way (tool hints,
//! session ids, tool results for the outcome report) and holds back each
//! `tools/call` until the approval loop lets it through; what each message
//! may do is the session's [`Gatekeeper`]'s to say.
//!
//! Only valid JSON-RPC passes, either way (see [`jsonrpc::check`]): the
//! client's messages are checked before anything is forwarded, and the
//! upstream's answers are read in full (bounded) before they are passed
//! on; a response for an id that was not forwarded (a call held for
//! approval, refused, or never made) is dropped and audited, since the
//! client would take it for that call's result.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::{Principal, PrincipalRef};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{json_response, rpc_error, sse, Incoming, Service, SESSION_HEADER};
use crate::approvals::{Approvals, InProcess};
use crate::gate;
use crate::gatekeeper::{self, Fate, Gatekeeper, Held, Options, Scope, Settled, Step};
use crate::jsonrpc::{self, From, Kind, Malformed};

/// Request headers passed to the upstream (besides `Mcp-Param-*`).
const REQUEST_HEADERS: [&str; 6] =
    ["accept", "mcp-session-id", "mcp-protocol-version", "last-event-id", "mcp-method", "mcp-name"];
/// Response headers passed back to the client.
const RESPONSE_HEADERS: [&str; 6] =
    ["content-type", "mcp-session-id", "mcp-protocol-version", "cache-control", "retry-after", "x-accel-buffering"];

/// What the gateway knows about one session with a `url` upstream.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) owner: PrincipalRef,
    pub(super) upstream: String,
    approvals: Arc<InProcess>,
    last_used: Mutex<Instant>,
    gatekeeper: Mutex<Gatekeeper>,
}

/// What becomes of a message from the upstream, once its outcome is
/// reported and its refusal audited.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Pass,
    /// Pass this text instead (tools hidden from `tools/list`).
    Replace(String),
    /// Dropped.
    Drop,
}

impl Session {
    fn new(service: &Service, principal: Principal, upstream: &str) -> Self {
        let approvals = Arc::new(InProcess::new(service.0.state.clone(), principal.clone()));
        let options = Options { hide_forbidden_tools: service.0.config.hide_forbidden_tools };
        Self {
            owner: principal.reference(),
            upstream: upstream.to_owned(),
            gatekeeper: Mutex::new(Gatekeeper::new(upstream, "http", approvals.clone(), options)),
            approvals,
            last_used: Mutex::new(Instant::now()),
        }
    }

    fn gatekeeper(&self) -> MutexGuard<'_, Gatekeeper> {
        self.gatekeeper.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn approvals(&self) -> Arc<dyn Approvals> {
        self.approvals.clone()
    }

    pub(super) fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn busy(&self) -> bool {
        self.gatekeeper().open_requests() > 0
    }

    pub(super) fn touch(&self, principal: Principal) {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.approvals.refresh(principal);
    }

    /// Looks at a message from the upstream (`text` as received) that came
    /// in `scope`: what to do with it.
    ///
    /// A tool call's outcome is handed to the gateway's outcome recorder
    /// (a queue, recorded in batches), so reporting it here, before the
    /// message is passed on, does not hold up the answer.
    fn observe(&self, message: &Value, text: &[u8], scope: &Scope) -> Seen {
        let seen = self.gatekeeper().from_upstream(message, text, scope);
        gatekeeper::report_in_background(&self.approvals(), seen.outcome);
        match seen.fate {
            Fate::Pass => Seen::Pass,
            Fate::Replace(value) => Seen::Replace(value.to_string()),
            Fate::Drop(refusal) => {
                gatekeeper::audit_in_background(&self.approvals(), refusal);
                Seen::Drop
            }
        }
    }

    /// A forwarded request that will get no answer from the upstream:
    /// forgotten, and if it was a tool call, reported failed.
    fn unanswered(&self, id: &Value, why: &str) {
        let outcome = self.gatekeeper().unanswered(id, why);
        gatekeeper::report_in_background(&self.approvals(), outcome);
    }

    /// A message from the upstream was dropped: audited (within budget).
    fn dropped(&self, why: &str, text: &[u8]) {
        let refusal = self.gatekeeper().refusal(From::Upstream, why, text);
        gatekeeper::audit_in_background(&self.approvals(), refusal);
    }

    /// A message from the upstream too large to read was dropped.
    fn oversized(&self, bytes: usize) {
        let refusal = self.gatekeeper().oversized(From::Upstream, bytes);
        gatekeeper::audit_in_background(&self.approvals(), refusal);
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
        let scope = if method == Method::GET { Scope::Any } else { Scope::Nothing };
        pass_back(response, session, scope).await
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
    let Ok(value) = jsonrpc::parse(text) else {
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
    let step = session.gatekeeper().from_client(kind, &value);
    match step {
        Step::Forward => match kind {
            Kind::Request { id, .. } => {
                let response = match forward(service, url, &request, request.body.clone()).await {
                    Ok(response) => response,
                    Err(e) => {
                        session.unanswered(id, "the upstream could not be reached");
                        return upstream_unreachable(&request.upstream, &e);
                    }
                };
                if initialize {
                    let assigned =
                        response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    if let Some(id) = assigned {
                        service.insert(id, super::Session::Proxied(session.clone()));
                    }
                }
                pass_back(response, session, Scope::Only(id.clone())).await
            }
            Kind::Notification { .. } | Kind::Response { .. } => plain_forward(service, url, request, session).await,
            Kind::Invalid => super::malformed(Malformed("not a JSON-RPC request, notification or response")),
        },
        Step::Hold(held) => call_tool(service, url, request, session, &value, *held).await,
        Step::Reply(reply) => json_response(StatusCode::OK, &reply),
        Step::Refuse(why) => super::malformed(why),
        // Withdrawn before it reached the upstream.
        Step::Withdrawn => StatusCode::ACCEPTED.into_response(),
    }
}

async fn plain_forward(service: &Service, url: &str, request: Incoming, session: Arc<Session>) -> Response {
    let body = request.body.clone();
    match forward(service, url, &request, body).await {
        Ok(response) => pass_back(response, session, Scope::Nothing).await,
        Err(e) => upstream_unreachable(&request.upstream, &e),
    }
}

/// What became of a held call, for the HTTP answer.
enum Made {
    /// Forwarded: the upstream's answer, or why it could not be reached.
    Upstream(Result<reqwest::Response, String>),
    /// Forwarded, and the upstream answers with an SSE stream: its status
    /// and headers; the call's task copies the events into its own
    /// channel, which becomes the answer's body (one task and one channel
    /// fewer than [`pass_back`] per call).
    Streaming(StatusCode, HeaderMap),
    /// Answered by the gate with this message.
    Reply(Value),
    /// Withdrawn before it was made.
    Withdrawn,
}

/// A `tools/call` the gatekeeper holds: decided first, then forwarded or
/// answered. A call decided at once is answered as any request is; once
/// it has to wait, the answer becomes an SSE stream: progress (or
/// keep-alive comments) first, then the result.
async fn call_tool(
    service: &Service,
    url: &str,
    request: Incoming,
    session: Arc<Session>,
    message: &Value,
    held: Held,
) -> Response {
    let Held { id, call, token, withdrawal, hold } = held;
    let (events_tx, mut events_rx) = mpsc::channel::<Bytes>(64);
    let (made_tx, made_rx) = oneshot::channel::<Made>();
    let (upstream, session_id) = (request.upstream.clone(), request.session_id.clone());
    // The upstream gets exactly what was decided on.
    let body = Bytes::from(message.to_string());
    let task = (service.clone(), url.to_owned(), session.clone(), id.clone());
    tokio::spawn(async move {
        let (service, url, session, id) = task;
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
                () = gatekeeper::withdrawn(withdrawal) => {}
                // The client went away while the call waited: withdraw it,
                // since nobody would receive the result.
                () = closed_tx.closed() => {}
            }
        };
        let verdict = gate::decide(session.approvals.as_ref(), &call, progress, cancelled).await;
        let settled = session.gatekeeper().settle(&hold, verdict);
        // A call that waited is answered on the SSE stream: dropping the
        // sender lets the handler start it.
        let made_tx = (!streamed.load(std::sync::atomic::Ordering::SeqCst)).then_some(made_tx);
        let made = match settled {
            Settled::Forward => Made::Upstream(forward(&service, &url, &request, body).await),
            Settled::Reply(reply) => Made::Reply(reply),
            Settled::Dropped(outcome) => {
                gatekeeper::report_in_background(&session.approvals(), outcome);
                Made::Withdrawn
            }
        };
        let made = match (made_tx, made) {
            (None, made) => made,
            (Some(tx), Made::Upstream(Ok(response))) if is_sse(&response) => {
                let (status, headers) = head(&response);
                // A client that left does not stop the reading: the
                // outcome must still be seen and reported.
                let _ = tx.send(Made::Streaming(status, headers));
                drop(sink_tx);
                stream_into(response, session, &events_tx, Scope::Only(id)).await;
                return;
            }
            (Some(tx), made) => match tx.send(made) {
                Ok(()) => return,
                // The client left: the answer is still read, so that the
                // outcome is reported.
                Err(made) => made,
            },
        };
        stream_made(made, session, &events_tx, &id).await;
    });
    match made_rx.await {
        Ok(Made::Reply(reply)) => json_response(StatusCode::OK, &reply),
        Ok(Made::Withdrawn) => json_response(
            StatusCode::OK,
            &jsonrpc::error(Some(&id), jsonrpc::INTERNAL_ERROR, "the tool call was cancelled before it was made"),
        ),
        Ok(Made::Upstream(Ok(response))) => pass_back(response, session, Scope::Only(id)).await,
        Ok(Made::Streaming(status, headers)) => streaming(status, headers, events_rx),
        Ok(Made::Upstream(Err(e))) => {
            session.unanswered(&id, "the upstream could not be reached");
            upstream_unreachable(&upstream, &e)
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
            if let Some(sid) = &session_id {
                extra.push((SESSION_HEADER, sid.clone()));
            }
            super::sse_response(rx, &extra)
        }
    }
}

/// Sends what became of a call that waited down its SSE stream.
async fn stream_made(made: Made, session: Arc<Session>, events: &mpsc::Sender<Bytes>, id: &Value) {
    let last = match made {
        Made::Reply(reply) => Some(sse::message_event(&reply.to_string(), None)),
        // Only ever sent to the handler, which answers with the stream.
        Made::Withdrawn | Made::Streaming(..) => None,
        Made::Upstream(Ok(response)) => {
            stream_into(response, session, events, Scope::Only(id.clone())).await;
            None
        }
        Made::Upstream(Err(e)) => {
            let text = unreachable_text(&session.upstream, &e);
            session.unanswered(id, &text);
            Some(sse::message_event(&jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, &text).to_string(), None))
        }
    };
    if let Some(bytes) = last {
        let _ = events.send(bytes).await;
    }
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
/// A forwarded request whose answer this is gets an error if the upstream
/// fails without answering it.
async fn pass_back(response: reqwest::Response, session: Arc<Session>, scope: Scope) -> Response {
    let (status, headers) = head(&response);
    if is_sse(&response) {
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        tokio::spawn(async move { stream_into(response, session, &tx, scope).await });
        return streaming(status, headers, rx);
    }
    let answer = json_answer(response, &session, &scope).await;
    if let Some(id) = scope.only() {
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

/// The status and the headers of an upstream answer that are passed back.
fn head(response: &reqwest::Response) -> (StatusCode, HeaderMap) {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = HeaderMap::new();
    for name in RESPONSE_HEADERS {
        if let Some(value) = response.headers().get(name).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    (status, headers)
}

/// An answer whose body is what arrives on `rx` (an upstream's SSE
/// stream, as [`stream_into`] passes it on).
fn streaming(status: StatusCode, headers: HeaderMap, rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok::<Bytes, std::convert::Infallible>(bytes), rx))
    });
    let mut out = Response::new(Body::from_stream(stream));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
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
async fn json_answer(mut response: reqwest::Response, session: &Arc<Session>, scope: &Scope) -> Answer {
    let status = response.status();
    let bytes = match read_bounded(&mut response).await {
        Ok(bytes) => bytes,
        Err(true) => {
            let length = usize::try_from(response.content_length().unwrap_or(0)).unwrap_or(usize::MAX);
            let length = length.max(jsonrpc::MAX_MESSAGE_BYTES + 1);
            session.oversized(length);
            return Answer::Refused("the upstream's answer is too large; it was not passed on");
        }
        Err(false) => return Answer::Refused("the upstream's answer broke off"),
    };
    if bytes.is_empty() {
        return Answer::Body(bytes);
    }
    match countersign_core::json::from_slice_allowing_repeats::<Value>(&bytes).ok() {
        Some(value) => match session.observe(&value, &bytes, scope) {
            Seen::Pass => Answer::Body(bytes),
            Seen::Replace(text) => Answer::Body(Bytes::from(text)),
            Seen::Drop => Answer::Refused("the upstream's answer was not a valid answer to this request"),
        },
        // An error page: no client reads it as JSON-RPC.
        None if !status.is_success() => Answer::Body(bytes),
        None => {
            session.dropped("an answer that is not JSON", &bytes);
            Answer::Refused("the upstream's answer is not JSON")
        }
    }
}

/// Copies an upstream answer (SSE or JSON) into an SSE stream to the
/// client, event by event, observing each message; what may not pass is
/// left out.
async fn stream_into(mut response: reqwest::Response, session: Arc<Session>, tx: &mpsc::Sender<Bytes>, scope: Scope) {
    static NO_ID: Value = Value::Null;
    let gated = scope.only().unwrap_or(&NO_ID);
    if !is_sse(&response) {
        let status = response.status();
        let answer = json_answer(response, &session, &scope).await;
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
                session.oversized(sse::MAX_EVENT_BYTES + 1);
                break true;
            }
        };
        for event in events {
            let bytes = if event.is_message() {
                let seen = match jsonrpc::parse(&event.data) {
                    Ok(value) => session.observe(&value, event.data.as_bytes(), &scope),
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
    let unanswered = !gated.is_null() && session.gatekeeper().awaits(gated);
    if broken && unanswered {
        // The upstream died mid-answer: say so rather than leave the
        // client waiting for a response that cannot come.
        let text = format!("the upstream MCP server `{}` broke off its answer", session.upstream);
        session.unanswered(gated, &text);
        let error = jsonrpc::error(Some(gated), jsonrpc::INTERNAL_ERROR, &text);
        let _ = tx.send(sse::message_event(&error.to_string(), None)).await;
    }
}
