//! `command` upstreams over HTTP: one child process (a stdio server) per
//! client session, wired to a [`Relay`], with the gateway as the
//! Streamable HTTP server: it mints the session id, answers each POSTed
//! request with JSON or an SSE stream, and routes what the server sends on
//! its own (requests to the client, notifications) to the stream of the
//! request it belongs to, the client's GET stream, or a backlog until one
//! opens.
//!
//! The events of a request's stream carry ids (`<stream>-<n>`), and what
//! was sent on it is kept until the request is answered (and a while
//! after), so a client that lost the connection resumes with a GET and
//! `Last-Event-ID`; streams start with a priming event for clients of
//! 2025-11-25 and later. The GET stream is stream `0`: its last events are
//! kept too, so a client whose GET connection broke reconnects with
//! `Last-Event-ID: 0-<n>` and gets what it may have missed, then the rest.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use countersign_core::{Principal, PrincipalRef};

use tokio::sync::mpsc;

use super::{json_response, new_session_id, rpc_error, sse, Incoming, Service, SESSION_HEADER, SESSION_VERSIONS};
use crate::approvals::InProcess;
use crate::jsonrpc::{self, Kind};
use crate::relay::{Message, Options, Relay, ToClient};
use crate::stdio::{ChildEnv, ChildStderr, Upstream};

/// Messages kept for a GET stream that is not open yet.
const BACKLOG: usize = 256;
/// Finished request streams kept for resumption, per session.
const KEPT_STREAMS: usize = 16;
/// Events kept per request stream for resumption.
const KEPT_EVENTS: usize = 256;

/// One client session and its server process.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) owner: PrincipalRef,
    pub(super) upstream: String,
    approvals: InProcess,
    relay: Arc<Relay>,
    process: Upstream,
    last_used: Mutex<Instant>,
    streams: Arc<Mutex<Streams>>,
}

#[derive(Debug, Default)]
struct Streams {
    /// Open POST streams, oldest first: (request id key, sender).
    post: Vec<(String, mpsc::Sender<Message>)>,
    /// The client's GET stream.
    standalone: Option<mpsc::Sender<Message>>,
    /// Unrelated messages waiting for a GET stream.
    backlog: VecDeque<Message>,
    /// What each request stream sent, for resumption, by stream number.
    history: std::collections::HashMap<u64, History>,
    /// Finished streams, oldest first (the ones that may be forgotten).
    finished: VecDeque<u64>,
    next_stream: u64,
    /// The GET stream's last events, for resumption: (seq, event).
    standalone_sent: VecDeque<(u64, Bytes)>,
    standalone_seq: u64,
}

/// One request stream's events.
#[derive(Debug, Default)]
struct History {
    events: Vec<(u64, Bytes)>,
    done: bool,
    /// The connection the events go to now, if any.
    live: Option<mpsc::Sender<Bytes>>,
}

/// Why a GET stream cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GetRefused {
    AlreadyOpen,
    NoLongerKept,
}

impl Streams {
    /// Opens the GET stream on `tx`. When resuming after event `0-<after>`,
    /// the kept events after it go to `replay` first; then what waited in
    /// the backlog goes to `tx`.
    fn open_standalone(
        &mut self,
        after: Option<u64>,
        tx: mpsc::Sender<Message>,
        replay: &mpsc::Sender<Bytes>,
    ) -> Result<(), GetRefused> {
        if self.standalone.as_ref().is_some_and(|s| !s.is_closed()) {
            return Err(GetRefused::AlreadyOpen);
        }
        if let Some(after) = after {
            // Events between `after` and the oldest kept one are gone:
            // say so rather than resume with a silent gap.
            let oldest = self.standalone_sent.front().map_or(self.standalone_seq + 1, |(seq, _)| *seq);
            if after + 1 < oldest || after > self.standalone_seq {
                return Err(GetRefused::NoLongerKept);
            }
            for (_, event) in self.standalone_sent.iter().filter(|(seq, _)| *seq > after) {
                let _ = replay.try_send(event.clone());
            }
        }
        while let Some(message) = self.backlog.pop_front() {
            let _ = tx.try_send(message);
        }
        self.standalone = Some(tx);
        Ok(())
    }

    /// Numbers one GET-stream message and keeps it; returns its SSE event.
    fn standalone_event(&mut self, text: &str) -> Bytes {
        self.standalone_seq += 1;
        let event = sse::message_event(text, Some(&format!("0-{}", self.standalone_seq)));
        if self.standalone_sent.len() >= KEPT_EVENTS {
            self.standalone_sent.pop_front();
        }
        self.standalone_sent.push_back((self.standalone_seq, event.clone()));
        event
    }

    fn open_history(&mut self, live: mpsc::Sender<Bytes>) -> u64 {
        self.next_stream += 1;
        self.history.insert(self.next_stream, History { events: Vec::new(), done: false, live: Some(live) });
        self.next_stream
    }

    /// Records an event of stream `n`; returns where to send it.
    fn record(&mut self, n: u64, seq: u64, bytes: Bytes, last: bool) -> Option<mpsc::Sender<Bytes>> {
        let history = self.history.get_mut(&n)?;
        if history.events.len() < KEPT_EVENTS {
            history.events.push((seq, bytes));
        }
        if !last {
            return history.live.clone();
        }
        history.done = true;
        let live = history.live.take();
        self.finished.push_back(n);
        while self.finished.len() > KEPT_STREAMS {
            if let Some(old) = self.finished.pop_front() {
                self.history.remove(&old);
            }
        }
        live
    }
}

fn lock(streams: &Mutex<Streams>) -> MutexGuard<'_, Streams> {
    streams.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Session {
    pub(super) fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn busy(&self) -> bool {
        self.relay.open_requests() > 0
    }

    pub(super) fn touch(&self, principal: Principal) {
        *self.last_used.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.approvals.refresh(principal);
    }

    /// Withdraws waiting tool calls and stops the server process.
    pub(super) async fn close(&self) {
        self.relay.abandon().await;
        self.process.shutdown().await;
    }
}

pub(super) async fn handle(
    service: &Service,
    command: &[String],
    request: Incoming,
    session: Option<super::Session>,
) -> Response {
    let session = match session {
        Some(super::Session::Spawned(s)) => Some(s),
        Some(super::Session::Proxied(_)) => {
            return rpc_error(StatusCode::NOT_FOUND, jsonrpc::INVALID_REQUEST, "unknown or expired session")
        }
        None => None,
    };
    if let Some(version) = request.headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()) {
        if session.is_some() && !SESSION_VERSIONS.contains(&version) {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                &format!("unsupported `MCP-Protocol-Version` `{version}`"),
            );
        }
    }
    match (request.method.clone(), session) {
        (Method::POST, session) => post(service, command, request, session).await,
        (Method::GET, Some(session)) => match request.headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
            Some(last) => resume(&session, last),
            None => listen(&session.streams, None),
        },
        (Method::DELETE, Some(session)) => {
            if let Some(id) = &request.session_id {
                service.remove(id);
            }
            session.close().await;
            StatusCode::OK.into_response()
        }
        (Method::GET | Method::DELETE, None) => {
            rpc_error(StatusCode::BAD_REQUEST, jsonrpc::INVALID_REQUEST, "missing `Mcp-Session-Id` header")
        }
        (_, _) => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

async fn post(service: &Service, command: &[String], request: Incoming, session: Option<Arc<Session>>) -> Response {
    let Ok(text) = std::str::from_utf8(&request.body) else {
        return rpc_error(StatusCode::BAD_REQUEST, jsonrpc::PARSE_ERROR, "the body is not JSON");
    };
    let Ok(message) = Message::parse(text) else {
        return rpc_error(StatusCode::BAD_REQUEST, jsonrpc::PARSE_ERROR, "the body is not JSON");
    };
    if let Err(response) = super::check_mirrored_headers(&request.headers, &message.value) {
        return *response;
    }
    let kind = match jsonrpc::vet_from_client(text, &message.value) {
        Ok(kind) => kind,
        Err((why, _)) => return super::malformed(why),
    };
    if let Some(session) = &session {
        if let Err(why) = session.relay.admits(kind) {
            return super::malformed(why);
        }
    }
    let (session, new_id) = match (session, kind) {
        (Some(session), _) => (session, None),
        (None, Kind::Request { method: "initialize", .. }) => match start(service, command, &request) {
            Ok((session, id)) => (session, Some(id)),
            Err(response) => return *response,
        },
        (None, _) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "no session: send `initialize` first (this upstream runs one server per client session)",
            )
        }
    };
    match kind {
        Kind::Request { id, .. } => {
            let key = jsonrpc::id_key(id);
            let (tx, mut rx) = mpsc::channel::<Message>(64);
            lock(&session.streams).post.push((key.clone(), tx));
            session.relay.from_client(message.clone()).await;
            let extra: Vec<(&'static str, String)> = new_id.iter().map(|id| (SESSION_HEADER, id.clone())).collect();
            // Answers stream as SSE, the way stateful SDK servers answer
            // (and the conformance suite expects); a client that does not
            // accept SSE gets JSON and must do without messages before the
            // answer.
            let accepts_sse = request
                .headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/event-stream"));
            if !accepts_sse {
                let Some(mut answer) = rx.recv().await else {
                    return rpc_error(StatusCode::BAD_GATEWAY, jsonrpc::INTERNAL_ERROR, "the session ended");
                };
                while !matches!(jsonrpc::classify(&answer.value), Kind::Response { .. }) {
                    let Some(next) = rx.recv().await else {
                        return rpc_error(StatusCode::BAD_GATEWAY, jsonrpc::INTERNAL_ERROR, "the session ended");
                    };
                    answer = next;
                }
                let mut response = json_response(StatusCode::OK, &answer.value);
                for (name, value) in &extra {
                    if let Ok(value) = value.parse() {
                        response.headers_mut().insert(*name, value);
                    }
                }
                return response;
            }
            let (bytes_tx, bytes_rx) = mpsc::channel::<Bytes>(64);
            let n = lock(&session.streams).open_history(bytes_tx.clone());
            if primes(&request.headers, &message.value) {
                let _ = bytes_tx.try_send(sse::primer(&format!("{n}-0")));
            }
            drop(bytes_tx);
            tokio::spawn(record(n, rx, session.streams.clone()));
            super::sse_response(bytes_rx, &extra)
        }
        Kind::Notification { .. } | Kind::Response { .. } => {
            session.relay.from_client(message).await;
            StatusCode::ACCEPTED.into_response()
        }
        Kind::Invalid => super::malformed(jsonrpc::Malformed("not a JSON-RPC request, notification or response")),
    }
}

/// Starts the server process for a new session.
fn start(service: &Service, command: &[String], request: &Incoming) -> Result<(Arc<Session>, String), Box<Response>> {
    if service.full() {
        return Err(Box::new(rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            jsonrpc::INTERNAL_ERROR,
            "too many MCP sessions are open; try again later",
        )));
    }
    let approvals = InProcess::new(service.0.state.clone(), request.principal.clone());
    let options = Options { hide_forbidden_tools: service.0.config.hide_forbidden_tools };
    let (relay, to_upstream, to_client) = Relay::new(&request.upstream, "http", Arc::new(approvals.clone()), options);
    let process =
        Upstream::spawn(command, relay.clone(), to_upstream, ChildStderr::Log, ChildEnv::Minimal).map_err(|e| {
            tracing::error!(upstream = %request.upstream, error = %e, "cannot start an MCP upstream");
            Box::new(rpc_error(
                StatusCode::BAD_GATEWAY,
                jsonrpc::INTERNAL_ERROR,
                &format!("the upstream MCP server `{}` could not be started", request.upstream),
            ))
        })?;
    let id = new_session_id();
    let streams = Arc::new(Mutex::new(Streams::default()));
    tokio::spawn(route(to_client, streams.clone()));
    let mut exited = process.exited.clone();
    let session = Arc::new(Session {
        owner: request.principal.reference(),
        upstream: request.upstream.clone(),
        approvals,
        relay,
        process,
        last_used: Mutex::new(Instant::now()),
        streams,
    });
    service.insert(id.clone(), super::Session::Spawned(session.clone()));
    // A session whose server died is over: its next request gets 404, and
    // the client starts afresh.
    let cleanup = service.clone();
    let cleanup_id = id.clone();
    tokio::spawn(async move {
        if exited.wait_for(Option::is_some).await.is_ok() {
            cleanup.remove(&cleanup_id);
        }
    });
    Ok((session, id))
}

/// Sends a request stream's messages to whoever listens now, keeping each
/// for resumption, until the answer.
async fn record(n: u64, mut messages: mpsc::Receiver<Message>, streams: Arc<Mutex<Streams>>) {
    let mut seq = 0;
    while let Some(message) = messages.recv().await {
        seq += 1;
        let last = matches!(jsonrpc::classify(&message.value), Kind::Response { .. });
        let bytes = sse::message_event(&message.text, Some(&format!("{n}-{seq}")));
        let live = lock(&streams).record(n, seq, bytes.clone(), last);
        if let Some(live) = live {
            // A client that went away may resume: the event is kept.
            let _ = live.send(bytes).await;
        }
        if last {
            break;
        }
    }
}

/// Clients of 2025-11-25 and later get a priming event (an id, no data)
/// first, so that they can resume even before the first message.
fn primes(headers: &axum::http::HeaderMap, message: &serde_json::Value) -> bool {
    let version = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .or_else(|| jsonrpc::params(message).get("protocolVersion").and_then(serde_json::Value::as_str));
    version.is_some_and(|v| SESSION_VERSIONS.contains(&v) && v >= "2025-11-25")
}

/// `GET` with `Last-Event-ID`: what the request stream sent after that
/// event, then the rest of it as it comes.
fn resume(session: &Arc<Session>, last_event_id: &str) -> Response {
    let parsed =
        last_event_id.split_once('-').and_then(|(n, seq)| Some((n.parse::<u64>().ok()?, seq.parse::<u64>().ok()?)));
    let Some((n, after)) = parsed else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            jsonrpc::INVALID_REQUEST,
            "`Last-Event-ID` is not an event id of this session",
        );
    };
    if n == 0 {
        return listen(&session.streams, Some(after));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(KEPT_EVENTS + 64);
    {
        let mut streams = lock(&session.streams);
        let Some(history) = streams.history.get_mut(&n) else {
            return rpc_error(
                StatusCode::NOT_FOUND,
                jsonrpc::INVALID_REQUEST,
                "that stream is no longer kept; it cannot be resumed",
            );
        };
        for (seq, bytes) in &history.events {
            if *seq > after {
                let _ = tx.try_send(bytes.clone());
            }
        }
        if !history.done {
            history.live = Some(tx);
        }
    }
    super::sse_response(rx, &[])
}

/// The client's GET stream for messages unrelated to its requests; with
/// `after`, resumed after event `0-<after>`.
fn listen(streams: &Arc<Mutex<Streams>>, after: Option<u64>) -> Response {
    let (tx, mut rx) = mpsc::channel::<Message>(BACKLOG + 16);
    let (bytes_tx, bytes_rx) = mpsc::channel::<Bytes>(KEPT_EVENTS + 64);
    match lock(streams).open_standalone(after, tx, &bytes_tx) {
        Ok(()) => {}
        Err(GetRefused::AlreadyOpen) => {
            return rpc_error(
                StatusCode::CONFLICT,
                jsonrpc::INVALID_REQUEST,
                "a GET stream is already open for this session",
            )
        }
        Err(GetRefused::NoLongerKept) => {
            return rpc_error(
                StatusCode::NOT_FOUND,
                jsonrpc::INVALID_REQUEST,
                "the GET stream's events after that id are no longer kept; it cannot be resumed",
            )
        }
    }
    let streams = streams.clone();
    tokio::spawn(async move {
        loop {
            // A dropped connection ends this at once, not at the next
            // message, so that the client may open a new GET stream.
            let message = tokio::select! {
                message = rx.recv() => message,
                () = bytes_tx.closed() => None,
            };
            let Some(message) = message else { break };
            // Kept before it is sent: if the connection breaks with it in
            // flight, a resumption still has it.
            let event = lock(&streams).standalone_event(&message.text);
            if bytes_tx.send(event).await.is_err() {
                break;
            }
        }
    });
    super::sse_response(bytes_rx, &[])
}

/// Sends each message for the client to the stream it belongs on.
async fn route(mut messages: mpsc::Receiver<ToClient>, streams: Arc<Mutex<Streams>>) {
    while let Some(ToClient { message, related }) = messages.recv().await {
        let is_response = matches!(jsonrpc::classify(&message.value), Kind::Response { .. });
        let own = related.as_ref().and_then(|key| {
            let mut s = lock(&streams);
            let at = s.post.iter().position(|(k, _)| k == key)?;
            // The answer ends its request's stream.
            Some(if is_response { s.post.remove(at).1 } else { s.post[at].1.clone() })
        });
        if let Some(stream) = own {
            if stream.send(message.clone()).await.is_ok() || is_response {
                continue;
            }
        }
        if is_response {
            tracing::debug!("an answer for a request whose stream is gone was dropped");
            continue;
        }
        // Unrelated: the GET stream, else the newest open request stream
        // (a question asked while a tool runs belongs there), else wait.
        let target = {
            let mut s = lock(&streams);
            s.post.retain(|(_, tx)| !tx.is_closed());
            match s.standalone.as_ref().filter(|tx| !tx.is_closed()).cloned() {
                Some(tx) => Some(tx),
                None => s.post.last().map(|(_, tx)| tx.clone()),
            }
        };
        let delivered = match target {
            Some(tx) => tx.send(message.clone()).await.is_ok(),
            None => false,
        };
        if !delivered {
            let mut s = lock(&streams);
            if s.backlog.len() >= BACKLOG {
                s.backlog.pop_front();
            }
            s.backlog.push_back(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    fn unrelated(n: u64) -> ToClient {
        let text = format!(r#"{{"jsonrpc":"2.0","method":"notifications/message","params":{{"data":"m{n}"}}}}"#);
        ToClient { message: Message::parse(&text).unwrap(), related: None }
    }

    /// The next SSE event on a response body: (id, data).
    async fn next_event(body: &mut axum::body::BodyDataStream) -> (String, String) {
        let chunk =
            tokio::time::timeout(std::time::Duration::from_secs(5), body.next()).await.unwrap().unwrap().unwrap();
        let text = String::from_utf8(chunk.to_vec()).unwrap();
        let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)).unwrap_or_default().to_owned();
        (field("id: "), field("data: "))
    }

    #[tokio::test]
    async fn a_broken_get_stream_resumes_after_its_last_event_id() {
        let streams = Arc::new(Mutex::new(Streams::default()));
        let (to_client, messages) = mpsc::channel(16);
        tokio::spawn(route(messages, streams.clone()));

        let mut first = listen(&streams, None).into_body().into_data_stream();
        for n in 1..=3 {
            to_client.send(unrelated(n)).await.unwrap();
        }
        let mut seen = Vec::new();
        for _ in 1..=3 {
            seen.push(next_event(&mut first).await);
        }
        assert_eq!(seen.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["0-1", "0-2", "0-3"]);
        assert_eq!(listen(&streams, None).status(), StatusCode::CONFLICT, "one GET stream at a time");

        // The connection breaks; the client had only read up to `0-1`.
        // Message 4 arrives while nobody listens.
        drop(first);
        to_client.send(unrelated(4)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        let mut resumed = listen(&streams, Some(1)).into_body().into_data_stream();
        let mut data = Vec::new();
        for _ in 0..3 {
            data.push(next_event(&mut resumed).await.1);
        }
        assert!(data[0].contains("m2") && data[1].contains("m3") && data[2].contains("m4"), "{data:?}");

        // Ids this session never sent, or no longer keeps, are refused.
        drop(resumed);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(listen(&streams, Some(99)).status(), StatusCode::NOT_FOUND);
        for n in 5..(5 + KEPT_EVENTS as u64 + 10) {
            lock(&streams).standalone_event(&format!("{{\"n\":{n}}}"));
        }
        assert_eq!(listen(&streams, Some(1)).status(), StatusCode::NOT_FOUND);
    }
}
