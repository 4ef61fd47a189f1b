//! One session between one MCP client and one upstream server, as
//! messages: what the client sends goes up, what the server sends comes
//! down, unchanged and byte for byte — except that every `tools/call` is
//! held until the approval loop lets it through (see [`crate::gate`]),
//! and `tools/list` results are read on the way to learn each tool's hints.
//!
//! The relay does not know the transports: [`crate::stdio`] feeds it lines,
//! [`crate::http`] feeds it HTTP bodies and routes what it emits to the
//! right SSE stream using [`ToClient::related`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::approvals::{Approvals, Report};
use crate::catalogue::Catalogue;
use crate::gate::{self, Call, Verdict};
use crate::jsonrpc::{self, From, Kind, Malformed};
use crate::refusal::{Budget, Refusal};

/// A JSON-RPC message with the exact text it arrived as, so that what the
/// proxy passes on is what it received.
#[derive(Debug, Clone)]
pub struct Message {
    pub value: Value,
    pub text: Arc<str>,
}

impl Message {
    /// Parses one message; `Err` carries the parse error.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value = serde_json::from_str(text)?;
        Ok(Self { value, text: Arc::from(text) })
    }

    /// A message the proxy makes itself.
    pub fn new(value: Value) -> Self {
        let text = Arc::from(value.to_string());
        Self { value, text }
    }
}

/// A message for the client, and the client request it belongs to (its
/// id key), if any: the HTTP transport sends it on that request's stream.
#[derive(Debug, Clone)]
pub struct ToClient {
    pub message: Message,
    pub related: Option<String>,
}

/// Options of a relay.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Leave tools that a `forbid` denies outright out of `tools/list`.
    pub hide_forbidden_tools: bool,
}

/// A client request the upstream has not answered yet.
#[derive(Debug)]
enum Open {
    /// A tool call waiting for its decision; firing `cancel` withdraws it.
    Gating { cancel: Option<oneshot::Sender<()>> },
    /// Sent upstream; `request` is the approval request to report on.
    Forwarded { request: Option<String>, progress_token: Option<String> },
}

#[derive(Debug, Default)]
struct State {
    catalogue: Catalogue,
    /// `tools/list` requests in flight, by id key.
    tool_lists: HashSet<String>,
    /// Client requests in flight, by id key (with the id itself).
    open: HashMap<String, (Value, Open)>,
    /// Progress tokens of forwarded requests → the request's id key.
    progress: HashMap<String, String>,
    /// The upstream is gone: answer everything with this.
    gone: Option<String>,
    /// Requests from the upstream the client has yet to answer, by id key.
    asked: HashSet<String>,
    /// Forwarded requests the client cancelled, most recent last: a late
    /// answer to one is dropped quietly.
    cancelled: VecDeque<String>,
    /// How many refusals are audited (see [`Budget`]).
    budget: Budget,
}

/// Client requests (and upstream requests) one session may have in flight.
pub const MAX_IN_FLIGHT: usize = 4096;
/// Cancelled requests remembered.
const CANCELLED_KEPT: usize = 256;

/// A line that could not be read as a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadLine {
    /// Not JSON (or not UTF-8); the line as read.
    NotJson(Vec<u8>),
    /// Longer than [`jsonrpc::MAX_MESSAGE_BYTES`]: discarded unread.
    TooLong(usize),
}

/// One client–upstream session.
#[derive(Debug)]
pub struct Relay {
    upstream: String,
    /// `stdio` or `http`, for the audit.
    transport: &'static str,
    approvals: Arc<dyn Approvals>,
    options: Options,
    to_upstream: mpsc::Sender<Message>,
    to_client: mpsc::Sender<ToClient>,
    state: Mutex<State>,
    /// Tool calls whose decision task is still running.
    deciding: std::sync::atomic::AtomicUsize,
}

/// How many messages may queue towards either side before the relay waits.
pub const QUEUE: usize = 256;

impl Relay {
    /// A relay for `upstream`. Messages for the upstream and the client
    /// come out of the returned receivers.
    pub fn new(
        upstream: &str,
        transport: &'static str,
        approvals: Arc<dyn Approvals>,
        options: Options,
    ) -> (Arc<Self>, mpsc::Receiver<Message>, mpsc::Receiver<ToClient>) {
        let (to_upstream, upstream_rx) = mpsc::channel(QUEUE);
        let (to_client, client_rx) = mpsc::channel(QUEUE);
        let relay = Arc::new(Self {
            upstream: upstream.to_owned(),
            transport,
            approvals,
            options,
            to_upstream,
            to_client,
            state: Mutex::new(State::default()),
            deciding: std::sync::atomic::AtomicUsize::new(0),
        });
        (relay, upstream_rx, client_rx)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps in a state
        // worse than stale entries; keep serving.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Handles a message from the client. Anything that is not one valid
    /// JSON-RPC message is refused (answered with an error, audited) and
    /// never reaches the upstream; so is a request reusing the id of one
    /// still in flight, and a response to nothing the upstream asked.
    pub async fn from_client(self: &Arc<Self>, message: Message) {
        let kind = match jsonrpc::vet_from_client(&message.text, &message.value) {
            Ok(kind) => kind,
            Err((why, id)) => return self.refuse_client(message.text.as_bytes(), why, id.as_ref()).await,
        };
        let gone = self.state().gone.clone();
        match kind {
            Kind::Request { id, method } => {
                let key = jsonrpc::id_key(id);
                if let Some(how) = gone {
                    self.reply(ToClient {
                        message: Message::new(jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, &how)),
                        related: Some(key),
                    })
                    .await;
                    return;
                }
                let refused = {
                    let state = self.state();
                    if state.open.contains_key(&key) {
                        Some(Malformed("a request with this `id` is still in flight; ids must be unique"))
                    } else if state.open.len() >= MAX_IN_FLIGHT {
                        Some(Malformed("too many requests in flight"))
                    } else {
                        None
                    }
                };
                if let Some(why) = refused {
                    // Answered with no id: the id names another request.
                    return self.refuse_client(message.text.as_bytes(), why, None).await;
                }
                if method == "tools/call" {
                    self.gate(message.clone(), id.clone(), key);
                    return;
                }
                {
                    let mut state = self.state();
                    if method == "tools/list" {
                        state.tool_lists.insert(key.clone());
                    }
                    let token = jsonrpc::progress_token(&message.value).map(jsonrpc::id_key);
                    if let Some(token) = &token {
                        state.progress.insert(token.clone(), key.clone());
                    }
                    state.open.insert(key, (id.clone(), Open::Forwarded { request: None, progress_token: token }));
                }
                self.upstream_send(message).await;
            }
            Kind::Notification { method: "notifications/cancelled" } => {
                let target = jsonrpc::params(&message.value).get("requestId").map(jsonrpc::id_key);
                if let Some(key) = target {
                    if self.cancel_gating(&key) {
                        // Withdrawn before it reached the upstream: nothing to tell it.
                        return;
                    }
                    self.forget_cancelled(&key);
                }
                self.upstream_send(message).await;
            }
            Kind::Notification { .. } => self.upstream_send(message).await,
            Kind::Response { id } => {
                let asked = self.state().asked.remove(&jsonrpc::id_key(id));
                if asked {
                    self.upstream_send(message).await;
                } else {
                    let why = Malformed("a response to no request the upstream made");
                    self.refuse_client(message.text.as_bytes(), why, None).await;
                }
            }
            Kind::Invalid => {
                let why = Malformed("not a JSON-RPC request, notification or response");
                self.refuse_client(message.text.as_bytes(), why, None).await;
            }
        }
    }

    /// Whether the relay would take `kind` from the client: a request whose
    /// id is not in flight, or a response to a request of the upstream's.
    /// (The HTTP transport asks first, to answer a refusal on its own
    /// request rather than on a stream.)
    pub fn admits(&self, kind: Kind<'_>) -> Result<(), Malformed> {
        let state = self.state();
        match kind {
            Kind::Request { id, .. } if state.open.contains_key(&jsonrpc::id_key(id)) => {
                Err(Malformed("a request with this `id` is still in flight; ids must be unique"))
            }
            Kind::Request { .. } if state.open.len() >= MAX_IN_FLIGHT => Err(Malformed("too many requests in flight")),
            Kind::Response { id } if !state.asked.contains(&jsonrpc::id_key(id)) => {
                Err(Malformed("a response to no request the upstream made"))
            }
            Kind::Request { .. } | Kind::Response { .. } | Kind::Notification { .. } => Ok(()),
            Kind::Invalid => Err(Malformed("not a JSON-RPC request, notification or response")),
        }
    }

    /// A client line that is not a message at all.
    pub async fn bad_client_line(self: &Arc<Self>, line: BadLine) {
        match line {
            BadLine::NotJson(text) => {
                self.reply(ToClient {
                    message: Message::new(jsonrpc::error(None, jsonrpc::PARSE_ERROR, "the message is not JSON")),
                    related: None,
                })
                .await;
                self.audit(Refusal::new(
                    &self.upstream,
                    From::Client,
                    self.transport,
                    "the message is not JSON",
                    &text,
                ));
            }
            BadLine::TooLong(bytes) => {
                let refusal = Refusal::oversized(&self.upstream, From::Client, self.transport, bytes);
                self.reply(ToClient {
                    message: Message::new(jsonrpc::error(None, jsonrpc::INVALID_REQUEST, &refusal.reason)),
                    related: None,
                })
                .await;
                self.audit(refusal);
            }
        }
    }

    /// An upstream line that is not a message at all: dropped, audited.
    pub fn bad_upstream_line(self: &Arc<Self>, line: BadLine) {
        let refusal = match line {
            BadLine::NotJson(text) => {
                Refusal::new(&self.upstream, From::Upstream, self.transport, "the message is not JSON", &text)
            }
            BadLine::TooLong(bytes) => Refusal::oversized(&self.upstream, From::Upstream, self.transport, bytes),
        };
        tracing::warn!(upstream = %self.upstream, reason = %refusal.reason, "dropped a message from the upstream");
        self.audit(refusal);
    }

    async fn refuse_client(self: &Arc<Self>, text: &[u8], why: Malformed, id: Option<&Value>) {
        let message = Message::new(jsonrpc::error(id, jsonrpc::INVALID_REQUEST, &format!("{why}; refused")));
        self.reply(ToClient { message, related: id.map(jsonrpc::id_key) }).await;
        self.audit(Refusal::new(&self.upstream, From::Client, self.transport, why.0, text));
    }

    fn drop_upstream(self: &Arc<Self>, message: &Message, why: &str) {
        tracing::warn!(upstream = %self.upstream, %why, "dropped a message from the upstream");
        self.audit(Refusal::new(&self.upstream, From::Upstream, self.transport, why, message.text.as_bytes()));
    }

    /// Handles a message from the upstream. Responses reach the client
    /// only for requests it forwarded and that are still open: an answer
    /// to a call held for approval (or refused, or never made) would
    /// otherwise read as that call's result.
    pub async fn from_upstream(self: &Arc<Self>, message: Message) {
        let kind = match jsonrpc::check(&message.value, From::Upstream) {
            Ok(kind) => kind,
            Err(why) => return self.drop_upstream(&message, why.0),
        };
        match kind {
            Kind::Response { id } if id.is_null() => {
                // An error about a message it could not read: it answers
                // no request, so it cannot pass for one's result.
                self.reply(ToClient { message, related: None }).await;
            }
            Kind::Response { id } => {
                let key = jsonrpc::id_key(id);
                enum Fate {
                    Deliver { request: Option<String>, listed: bool },
                    Forged(&'static str),
                    Late,
                }
                let fate = {
                    let mut state = self.state();
                    match state.open.get(&key) {
                        Some((_, Open::Forwarded { .. })) => {
                            let open = state.open.remove(&key);
                            let request = match open {
                                Some((_, Open::Forwarded { request, progress_token })) => {
                                    if let Some(token) = progress_token {
                                        state.progress.remove(&token);
                                    }
                                    request
                                }
                                Some((_, Open::Gating { .. })) | None => None,
                            };
                            let listed = state.tool_lists.remove(&key);
                            if listed {
                                if let Some(result) = message.value.get("result") {
                                    state.catalogue.learn(result);
                                }
                            }
                            Fate::Deliver { request, listed }
                        }
                        Some((_, Open::Gating { .. })) => {
                            Fate::Forged("a response for a tool call that was held for approval, not forwarded")
                        }
                        None if state.cancelled.contains(&key) => Fate::Late,
                        None => Fate::Forged("a response for a request that was not forwarded or is already answered"),
                    }
                };
                match fate {
                    Fate::Deliver { request, listed } => {
                        if let Some(request) = request {
                            self.report(request, gate::report_for(&message.value));
                        }
                        let message = if listed && self.options.hide_forbidden_tools {
                            self.hide_forbidden(message)
                        } else {
                            message
                        };
                        self.reply(ToClient { message, related: Some(key) }).await;
                    }
                    Fate::Forged(why) => self.drop_upstream(&message, why),
                    Fate::Late => tracing::debug!("an answer to a cancelled request was dropped"),
                }
            }
            Kind::Request { id, .. } => {
                let admitted = {
                    let mut state = self.state();
                    state.asked.len() < MAX_IN_FLIGHT && state.asked.insert(jsonrpc::id_key(id))
                };
                if admitted {
                    self.reply(ToClient { message, related: None }).await;
                } else {
                    self.drop_upstream(&message, "a request whose id is in flight, or one too many in flight");
                }
            }
            Kind::Notification { method: "notifications/progress" } => {
                let related = jsonrpc::params(&message.value)
                    .get("progressToken")
                    .map(jsonrpc::id_key)
                    .and_then(|token| self.state().progress.get(&token).cloned());
                self.reply(ToClient { message, related }).await;
            }
            Kind::Notification { .. } => {
                self.reply(ToClient { message, related: None }).await;
            }
            Kind::Invalid => self.drop_upstream(&message, "not a JSON-RPC message"),
        }
    }

    /// The upstream exited or broke: every open request gets an error
    /// naming what happened, and so does every later one.
    pub async fn upstream_gone(self: &Arc<Self>, how: &str) {
        let message = format!("the upstream MCP server `{}` {how}", self.upstream);
        let open: Vec<(String, (Value, Open))> = {
            let mut state = self.state();
            state.gone = Some(message.clone());
            state.tool_lists.clear();
            state.progress.clear();
            state.asked.clear();
            state.open.drain().collect()
        };
        for (key, (id, open)) in open {
            match open {
                Open::Gating { cancel } => {
                    if let Some(cancel) = cancel {
                        let _ = cancel.send(());
                    }
                }
                Open::Forwarded { request, .. } => {
                    if let Some(request) = request {
                        self.report(request, gate::report_unanswered(&message));
                    }
                }
            }
            self.reply(ToClient {
                message: Message::new(jsonrpc::error(Some(&id), jsonrpc::INTERNAL_ERROR, &message)),
                related: Some(key),
            })
            .await;
        }
        self.reply(ToClient {
            message: Message::new(jsonrpc::notification(
                "notifications/message",
                json!({"level": "error", "logger": "countersign", "data": message}),
            )),
            related: None,
        })
        .await;
    }

    /// The client is gone: withdraw every call still waiting for its
    /// decision, and give the withdrawals a moment to reach the gateway.
    pub async fn abandon(&self) {
        let cancels: Vec<oneshot::Sender<()>> = {
            let mut state = self.state();
            let keys: Vec<String> = state
                .open
                .iter()
                .filter(|(_, (_, o))| matches!(o, Open::Gating { .. }))
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter()
                .filter_map(|k| match state.open.remove(k) {
                    Some((_, Open::Gating { cancel })) => cancel,
                    Some((_, Open::Forwarded { .. })) | None => None,
                })
                .collect()
        };
        for cancel in cancels {
            let _ = cancel.send(());
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while self.deciding.load(std::sync::atomic::Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// How many client requests wait for an answer.
    pub fn open_requests(&self) -> usize {
        self.state().open.len()
    }

    fn gate(self: &Arc<Self>, message: Message, id: Value, key: String) {
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let call = {
            let mut state = self.state();
            state.open.insert(key.clone(), (id.clone(), Open::Gating { cancel: Some(cancel_tx) }));
            let catalogue = &state.catalogue;
            Call::from_params(&self.upstream, jsonrpc::params(&message.value), |tool| catalogue.context(tool))
        };
        let relay = self.clone();
        self.deciding.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tokio::spawn(async move {
            relay.decide(message, id, key, call, cancel_rx).await;
            relay.deciding.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        });
    }

    async fn decide(
        self: &Arc<Self>,
        message: Message,
        id: Value,
        key: String,
        call: Option<Call>,
        cancel_rx: oneshot::Receiver<()>,
    ) {
        let relay = self;
        {
            let Some(call) = call else {
                relay.state().open.remove(&key);
                let error = jsonrpc::error(Some(&id), -32602, "`tools/call` needs a tool `name`");
                relay.reply(ToClient { message: Message::new(error), related: Some(key) }).await;
                return;
            };
            let token = jsonrpc::progress_token(&message.value).cloned();
            let to_client = relay.to_client.clone();
            let related = key.clone();
            let sink = move |note: Value| {
                // Progress is advisory: a full queue drops an update rather
                // than holding up the decision.
                let _ = to_client.try_send(ToClient { message: Message::new(note), related: Some(related.clone()) });
            };
            let progress = token.clone().map(|t| (t, &sink as gate::ProgressSink<'_>));
            let cancelled = async move {
                if cancel_rx.await.is_err() {
                    // The sender lives in the open-request table until the
                    // call is decided; dropped means never cancelled.
                    std::future::pending::<()>().await;
                }
            };
            let verdict = gate::decide(relay.approvals.as_ref(), &call, progress, cancelled).await;
            relay.settle(message, id, key, token, verdict).await;
        }
    }

    async fn settle(
        self: &Arc<Self>,
        message: Message,
        id: Value,
        key: String,
        token: Option<Value>,
        verdict: Verdict,
    ) {
        match verdict {
            Verdict::Forward { request } => {
                let still_wanted = {
                    let mut state = self.state();
                    let gone = state.gone.is_some();
                    match state.open.get_mut(&key) {
                        Some((_, open @ Open::Gating { .. })) if !gone => {
                            let token = token.as_ref().map(jsonrpc::id_key);
                            *open = Open::Forwarded { request: Some(request.clone()), progress_token: token.clone() };
                            if let Some(token) = token {
                                state.progress.insert(token, key.clone());
                            }
                            true
                        }
                        Some(_) | None => false,
                    }
                };
                if still_wanted {
                    // The upstream gets exactly what was decided on.
                    self.upstream_send(Message::new(message.value)).await;
                } else {
                    self.report(
                        request,
                        gate::report_unanswered("not made: the client cancelled the call or the upstream went away"),
                    );
                }
            }
            Verdict::Reply(mut result) => {
                if jsonrpc::is_modern(&message.value) {
                    // 2026-07-28 results say what they are; earlier ones must not.
                    result["resultType"] = json!("complete");
                }
                let removed = self.state().open.remove(&key).is_some();
                if removed {
                    self.reply(ToClient { message: Message::new(jsonrpc::result(&id, result)), related: Some(key) })
                        .await;
                }
            }
            Verdict::Cancelled => {
                self.state().open.remove(&key);
            }
        }
    }

    /// Fires the cancel of a call still waiting for its decision.
    fn cancel_gating(&self, key: &str) -> bool {
        let mut state = self.state();
        match state.open.get_mut(key) {
            Some((_, Open::Gating { cancel })) => {
                if let Some(cancel) = cancel.take() {
                    let _ = cancel.send(());
                }
                state.open.remove(key);
                true
            }
            Some((_, Open::Forwarded { .. })) | None => false,
        }
    }

    /// A forwarded request the client cancelled: the upstream should not
    /// answer it, so stop waiting for the answer.
    fn forget_cancelled(self: &Arc<Self>, key: &str) {
        let removed = {
            let mut state = self.state();
            state.tool_lists.remove(key);
            let removed = state.open.remove(key);
            if let Some((_, Open::Forwarded { progress_token: Some(token), .. })) = &removed {
                state.progress.remove(token);
            }
            if removed.is_some() {
                if state.cancelled.len() >= CANCELLED_KEPT {
                    state.cancelled.pop_front();
                }
                state.cancelled.push_back(key.to_owned());
            }
            removed
        };
        if let Some((_, Open::Forwarded { request: Some(request), .. })) = removed {
            self.report(request, gate::report_unanswered("cancelled by the client after it was forwarded"));
        }
    }

    fn hide_forbidden(&self, message: Message) -> Message {
        let mut value = message.value.clone();
        let Some(tools) = value.pointer_mut("/result/tools").and_then(Value::as_array_mut) else {
            return message;
        };
        let before = tools.len();
        let catalogue = self.state().catalogue.clone();
        tools.retain(|tool| {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                return true;
            };
            let call = Call {
                upstream: self.upstream.clone(),
                tool: name.to_owned(),
                arguments: json!({}),
                tool_context: catalogue.context(name),
            };
            !self.approvals.forbids_outright(&call.action())
        });
        if tools.len() == before {
            message
        } else {
            Message::new(value)
        }
    }

    fn report(self: &Arc<Self>, request: String, report: Report) {
        let relay = self.clone();
        tokio::spawn(async move {
            if let Err(e) = relay.approvals.report(&request, report).await {
                tracing::warn!(%request, error = %e, "could not report the outcome of a tool call");
            }
        });
    }

    /// Audits a refusal, within the session's budget, without holding up
    /// the session.
    fn audit(self: &Arc<Self>, mut refusal: Refusal) {
        if !self.state().budget.admit(&mut refusal) {
            return;
        }
        let relay = self.clone();
        tokio::spawn(async move {
            if let Err(e) = relay.approvals.refused(refusal).await {
                tracing::warn!(error = %e, "could not audit a refused MCP message");
            }
        });
    }

    async fn upstream_send(&self, message: Message) {
        if self.to_upstream.send(message).await.is_err() {
            tracing::debug!("the upstream writer is gone; message dropped");
        }
    }

    async fn reply(&self, to_client: ToClient) {
        if self.to_client.send(to_client).await.is_err() {
            tracing::debug!("the client writer is gone; message dropped");
        }
    }
}
