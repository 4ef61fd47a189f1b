//! The gating state of one session between a client and an upstream, for
//! every transport (the stdio relay, `command` and `url` upstreams over
//! HTTP): which requests are held for approval or forwarded, what the
//! upstream asked the client, what `tools/list` said, and what each
//! message may do.
//!
//! It does no I/O: a transport hands it each message and carries out the
//! step it gets back — from the client: forward, hold (decide with
//! [`crate::gate::decide`], then [`Gatekeeper::settle`]), reply, refuse;
//! from the upstream: pass, replace (tools hidden from `tools/list`) or
//! drop — and files the outcomes and refusals it returns
//! ([`report_in_background`], [`audit_in_background`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::approvals::{Approvals, Report};
use crate::catalogue::Catalogue;
use crate::gate::{self, Call, Verdict};
use crate::jsonrpc::{self, From, Kind, Malformed};
use crate::refusal::{Budget, Refusal};

#[cfg(test)]
mod tests;

/// Client requests (and upstream requests) one session may have in flight.
pub const MAX_IN_FLIGHT: usize = 4096;
/// Cancelled requests remembered.
const CANCELLED_KEPT: usize = 256;
/// Answered requests remembered, so that a resumed stream may replay an
/// answer the client lost.
const ANSWERED_KEPT: usize = 256;

/// Options of a session.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Leave tools that a `forbid` denies outright out of `tools/list`.
    pub hide_forbidden_tools: bool,
}

/// The outcome of a forwarded tool call, to report on its approval request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub request: String,
    pub report: Report,
}

/// What to do with a message from the client.
#[derive(Debug)]
pub enum Step {
    /// Send it upstream as received.
    Forward,
    /// A `tools/call`, held until it is decided.
    Hold(Box<Held>),
    /// Answer the client with this message; nothing goes upstream.
    Reply(Value),
    /// Refuse it (a JSON-RPC error without an id, audited); nothing goes
    /// upstream.
    Refuse(Malformed),
    /// A cancel of a held call: the call is withdrawn before it reached
    /// the upstream, so there is nothing to tell it.
    Withdrawn,
}

/// A tool call held for its decision.
#[derive(Debug)]
pub struct Held {
    /// The request's id.
    pub id: Value,
    pub call: Call,
    /// The progress token the client asked updates for.
    pub token: Option<Value>,
    /// Fires when the call is withdrawn (see [`withdrawn`]).
    pub withdrawal: oneshot::Receiver<()>,
    /// Which hold this is, to [`Gatekeeper::settle`] it.
    pub hold: Hold,
}

/// One hold: a request id may be reused once its call is withdrawn, so the
/// key alone does not say which call a decision is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    key: String,
    serial: u64,
}

impl Hold {
    /// The held request's id key.
    pub fn key(&self) -> &str {
        &self.key
    }
}

/// Completes when a held call is withdrawn (the client cancelled it, or
/// left, or the upstream went away); never if it is settled first.
pub async fn withdrawn(withdrawal: oneshot::Receiver<()>) {
    if withdrawal.await.is_err() {
        // The sender lives with the hold until the call is settled;
        // dropped means never withdrawn.
        std::future::pending::<()>().await;
    }
}

/// What becomes of a held call once decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// Send the call upstream (exactly as decided on): it is a forwarded
    /// request from now on.
    Forward,
    /// Answer the client with this message.
    Reply(Value),
    /// Send nothing: the call was withdrawn meanwhile. If it had been let
    /// through, this is the outcome to report.
    Dropped(Option<Outcome>),
}

/// Which responses a message from the upstream may be, by where it came.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// The one stream of a session (stdio): a response to any forwarded
    /// request; a late one to a request the client cancelled is dropped
    /// quietly.
    Session,
    /// The answer to one POSTed request: its response, once.
    Only(Value),
    /// The answer to a POSTed notification or response, or a DELETE.
    Nothing,
    /// A GET stream: responses to any forwarded request (a resumed stream
    /// may replay one the client lost), never to one held for approval.
    Any,
}

impl Scope {
    /// The request whose answer this is, if one.
    pub fn only(&self) -> Option<&Value> {
        match self {
            Scope::Only(id) => Some(id),
            Scope::Session | Scope::Nothing | Scope::Any => None,
        }
    }

    fn expects(&self, id: &Value) -> bool {
        match self {
            Scope::Session | Scope::Any => true,
            Scope::Only(only) => only == id,
            Scope::Nothing => false,
        }
    }
}

/// What becomes of a message from the upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub fate: Fate,
    /// The client request it belongs to (its id key), if any.
    pub related: Option<String>,
    /// It answered a forwarded tool call: the outcome to report.
    pub outcome: Option<Outcome>,
}

/// Whether a message from the upstream reaches the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// As received.
    Pass,
    /// This instead (tools hidden from `tools/list`).
    Replace(Value),
    /// Not at all; the refusal to audit, unless it is left out (see
    /// [`Budget`]) or the message is a late answer to a cancelled request.
    Drop(Option<Refusal>),
}

impl Seen {
    fn pass(related: Option<String>) -> Self {
        Self { fate: Fate::Pass, related, outcome: None }
    }
}

/// The upstream went away: what to tell the client and the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Gone {
    /// An error for every open request, with its id key.
    pub replies: Vec<(String, Value)>,
    /// The forwarded tool calls that will never be answered.
    pub outcomes: Vec<Outcome>,
    /// A log message for the client.
    pub notice: Value,
}

/// A client request the upstream has not answered yet.
#[derive(Debug)]
struct Open {
    id: Value,
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    /// A tool call waiting for its decision; firing `cancel` withdraws it.
    Held { serial: u64, cancel: Option<oneshot::Sender<()>>, progress_token: Option<Value>, modern: bool },
    /// Sent upstream; `request` is the approval request to report on.
    Forwarded { request: Option<String>, progress_token: Option<String> },
}

/// The gating state of one session.
#[derive(Debug)]
pub struct Gatekeeper {
    upstream: String,
    /// `stdio` or `http`, for the audit.
    transport: &'static str,
    /// Only asked, synchronously, whether a tool is forbidden outright.
    approvals: Arc<dyn Approvals>,
    options: Options,
    catalogue: Catalogue,
    /// `tools/list` requests in flight, by id key.
    tool_lists: HashSet<String>,
    /// Client requests in flight, by id key.
    open: HashMap<String, Open>,
    /// Progress tokens of forwarded requests → the request's id key.
    progress: HashMap<String, String>,
    /// Requests from the upstream the client has yet to answer, by id key.
    asked: HashSet<String>,
    /// Requests answered lately, oldest first.
    answered: VecDeque<String>,
    /// Forwarded requests the client cancelled, most recent last: a late
    /// answer to one is dropped quietly.
    cancelled: VecDeque<String>,
    /// The upstream is gone: answer every request with this.
    gone: Option<String>,
    /// How many refusals are audited.
    budget: Budget,
    holds: u64,
}

impl Gatekeeper {
    pub fn new(upstream: &str, transport: &'static str, approvals: Arc<dyn Approvals>, options: Options) -> Self {
        Self {
            upstream: upstream.to_owned(),
            transport,
            approvals,
            options,
            catalogue: Catalogue::default(),
            tool_lists: HashSet::new(),
            open: HashMap::new(),
            progress: HashMap::new(),
            asked: HashSet::new(),
            answered: VecDeque::new(),
            cancelled: VecDeque::new(),
            gone: None,
            budget: Budget::default(),
            holds: 0,
        }
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// How many client requests wait for an answer (held or forwarded).
    pub fn open_requests(&self) -> usize {
        self.open.len()
    }

    /// Whether [`Gatekeeper::from_client`] would take `kind`: a request
    /// whose id is not in flight, or a response to a request of the
    /// upstream's. (A transport may ask first, to answer a refusal on its
    /// own request rather than on a stream.)
    pub fn admits(&self, kind: Kind<'_>) -> Result<(), Malformed> {
        match kind {
            Kind::Request { id, .. } => self.admits_request(&jsonrpc::id_key(id)),
            Kind::Response { id } if !self.asked.contains(&jsonrpc::id_key(id)) => {
                Err(Malformed("a response to no request the upstream made"))
            }
            Kind::Response { .. } | Kind::Notification { .. } => Ok(()),
            Kind::Invalid => Err(Malformed("not a JSON-RPC request, notification or response")),
        }
    }

    fn admits_request(&self, key: &str) -> Result<(), Malformed> {
        if self.open.contains_key(key) {
            Err(Malformed("a request with this `id` is still in flight; ids must be unique"))
        } else if self.open.len() >= MAX_IN_FLIGHT {
            Err(Malformed("too many requests in flight"))
        } else {
            Ok(())
        }
    }

    /// Takes a (vetted) message from the client: what to do with it.
    pub fn from_client(&mut self, kind: Kind<'_>, message: &Value) -> Step {
        match kind {
            Kind::Request { id, method } => {
                if let Some(how) = &self.gone {
                    return Step::Reply(jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, how));
                }
                let key = jsonrpc::id_key(id);
                if let Err(why) = self.admits_request(&key) {
                    return Step::Refuse(why);
                }
                if method == "tools/call" {
                    return self.hold(message, id, key);
                }
                if method == "tools/list" {
                    self.tool_lists.insert(key.clone());
                }
                let token = jsonrpc::progress_token(message).map(jsonrpc::id_key);
                if let Some(token) = &token {
                    self.progress.insert(token.clone(), key.clone());
                }
                let stage = Stage::Forwarded { request: None, progress_token: token };
                self.open.insert(key, Open { id: id.clone(), stage });
                Step::Forward
            }
            Kind::Notification { method: "notifications/cancelled" } => {
                let target = jsonrpc::params(message).get("requestId").map(jsonrpc::id_key);
                match target {
                    Some(key) if self.withdraw(&key) => Step::Withdrawn,
                    Some(_) | None => Step::Forward,
                }
            }
            Kind::Notification { .. } => Step::Forward,
            Kind::Response { id } => {
                if self.asked.remove(&jsonrpc::id_key(id)) {
                    Step::Forward
                } else {
                    Step::Refuse(Malformed("a response to no request the upstream made"))
                }
            }
            Kind::Invalid => Step::Refuse(Malformed("not a JSON-RPC request, notification or response")),
        }
    }

    fn hold(&mut self, message: &Value, id: &Value, key: String) -> Step {
        let catalogue = &self.catalogue;
        let Some(call) = Call::from_params(&self.upstream, jsonrpc::params(message), |tool| catalogue.context(tool))
        else {
            return Step::Reply(jsonrpc::error(Some(id), -32602, "`tools/call` needs a tool `name`"));
        };
        self.holds += 1;
        let serial = self.holds;
        let (cancel, withdrawal) = oneshot::channel();
        let token = jsonrpc::progress_token(message).cloned();
        let stage = Stage::Held {
            serial,
            cancel: Some(cancel),
            progress_token: token.clone(),
            modern: jsonrpc::is_modern(message),
        };
        self.open.insert(key.clone(), Open { id: id.clone(), stage });
        Step::Hold(Box::new(Held { id: id.clone(), call, token, withdrawal, hold: Hold { key, serial } }))
    }

    /// Withdraws the call held under `key`, if one is.
    fn withdraw(&mut self, key: &str) -> bool {
        match self.open.get_mut(key).map(|o| &mut o.stage) {
            Some(Stage::Held { cancel, .. }) => {
                if let Some(cancel) = cancel.take() {
                    let _ = cancel.send(());
                }
                self.open.remove(key);
                true
            }
            Some(Stage::Forwarded { .. }) | None => false,
        }
    }

    /// Withdraws every held call (the client is gone).
    pub fn withdraw_all(&mut self) {
        let held: Vec<String> =
            self.open.iter().filter(|(_, o)| matches!(o.stage, Stage::Held { .. })).map(|(k, _)| k.clone()).collect();
        for key in held {
            self.withdraw(&key);
        }
    }

    fn is_this_hold(&self, hold: &Hold) -> bool {
        matches!(
            self.open.get(&hold.key).map(|o| &o.stage),
            Some(Stage::Held { serial, .. }) if *serial == hold.serial
        )
    }

    /// Takes the decision on a held call.
    pub fn settle(&mut self, hold: &Hold, verdict: Verdict) -> Settled {
        let held = self.is_this_hold(hold);
        match verdict {
            Verdict::Forward { request } => {
                if !held || self.gone.is_some() {
                    return Settled::Dropped(Some(Outcome {
                        request,
                        report: gate::report_unanswered(
                            "not made: the client cancelled the call or the upstream went away",
                        ),
                    }));
                }
                let Some(open) = self.open.get_mut(&hold.key) else {
                    return Settled::Dropped(None);
                };
                let token = match &mut open.stage {
                    Stage::Held { progress_token, .. } => progress_token.take().as_ref().map(jsonrpc::id_key),
                    Stage::Forwarded { .. } => None,
                };
                open.stage = Stage::Forwarded { request: Some(request), progress_token: token.clone() };
                if let Some(token) = token {
                    self.progress.insert(token, hold.key.clone());
                }
                Settled::Forward
            }
            Verdict::Reply(mut result) => {
                let Some(Open { id, stage: Stage::Held { modern, .. } }) =
                    held.then(|| self.open.remove(&hold.key)).flatten()
                else {
                    return Settled::Dropped(None);
                };
                if modern {
                    // 2026-07-28 results say what they are; earlier ones must not.
                    result["resultType"] = json!("complete");
                }
                Settled::Reply(jsonrpc::result(&id, result))
            }
            Verdict::Cancelled => {
                if held {
                    self.open.remove(&hold.key);
                }
                Settled::Dropped(None)
            }
        }
    }

    /// The client cancelled a request that was forwarded: the upstream
    /// should not answer it, so the answer is no longer waited for (and a
    /// late one is dropped quietly). For transports with one stream per
    /// session; where each request has its own, its answer ends it.
    pub fn forget(&mut self, key: &str) -> Option<Outcome> {
        self.tool_lists.remove(key);
        let removed = self.open.remove(key)?;
        if self.cancelled.len() >= CANCELLED_KEPT {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(key.to_owned());
        match removed.stage {
            Stage::Forwarded { request, progress_token } => {
                if let Some(token) = progress_token {
                    self.progress.remove(&token);
                }
                request.map(|request| Outcome {
                    request,
                    report: gate::report_unanswered("cancelled by the client after it was forwarded"),
                })
            }
            Stage::Held { .. } => None,
        }
    }

    /// Takes a message from the upstream (`text` as received): whether it
    /// reaches the client, and what it says (tool hints, outcomes). A
    /// response reaches the client only for a request that was forwarded
    /// and is still open: an answer to a call held for approval (or
    /// refused, or never made) would read as that call's result.
    pub fn from_upstream(&mut self, message: &Value, text: &[u8], scope: &Scope) -> Seen {
        let kind = match jsonrpc::check(message, From::Upstream) {
            Ok(kind) => kind,
            Err(why) => return self.dropped(why.0, text),
        };
        match kind {
            // An error about a message it could not read: it answers no
            // request, so it cannot pass for one's result.
            Kind::Response { id } if id.is_null() => Seen::pass(None),
            Kind::Response { id } => self.answer(message, text, id, scope),
            Kind::Request { id, .. } => {
                if self.asked.len() < MAX_IN_FLIGHT && self.asked.insert(jsonrpc::id_key(id)) {
                    Seen::pass(None)
                } else {
                    self.dropped("a request whose id is in flight, or one too many in flight", text)
                }
            }
            Kind::Notification { method: "notifications/progress" } => {
                let token = jsonrpc::params(message).get("progressToken").map(jsonrpc::id_key);
                Seen::pass(token.and_then(|token| self.progress.get(&token).cloned()))
            }
            Kind::Notification { .. } => Seen::pass(None),
            Kind::Invalid => self.dropped("not a JSON-RPC message", text),
        }
    }

    fn answer(&mut self, message: &Value, text: &[u8], id: &Value, scope: &Scope) -> Seen {
        let key = jsonrpc::id_key(id);
        let forged = |gatekeeper: &mut Self, why| gatekeeper.dropped(why, text);
        match self.open.get(&key).map(|o| &o.stage) {
            Some(Stage::Held { .. }) => {
                forged(self, "a response for a tool call that was held for approval, not forwarded")
            }
            _ if !scope.expects(id) => forged(self, "a response for another request than the one this answer is for"),
            Some(Stage::Forwarded { .. }) => {
                let request = match self.open.remove(&key).map(|o| o.stage) {
                    Some(Stage::Forwarded { request, progress_token }) => {
                        if let Some(token) = progress_token {
                            self.progress.remove(&token);
                        }
                        request
                    }
                    Some(Stage::Held { .. }) | None => None,
                };
                if self.answered.len() >= ANSWERED_KEPT {
                    self.answered.pop_front();
                }
                self.answered.push_back(key.clone());
                let listed = self.tool_lists.remove(&key);
                if listed {
                    if let Some(result) = message.get("result") {
                        self.catalogue.learn(result);
                    }
                }
                let outcome = request.map(|request| Outcome { request, report: gate::report_for(message) });
                let fate =
                    match (listed && self.options.hide_forbidden_tools).then(|| self.hide_forbidden(message)).flatten()
                    {
                        Some(value) => Fate::Replace(value),
                        None => Fate::Pass,
                    };
                Seen { fate, related: Some(key), outcome }
            }
            None if *scope == Scope::Any && self.answered.contains(&key) => Seen::pass(Some(key)),
            None if self.cancelled.contains(&key) => {
                tracing::debug!("an answer to a cancelled request was dropped");
                Seen { fate: Fate::Drop(None), related: Some(key), outcome: None }
            }
            None => match scope {
                Scope::Session => {
                    forged(self, "a response for a request that was not forwarded or is already answered")
                }
                Scope::Only(_) | Scope::Nothing | Scope::Any => {
                    forged(self, "a response for a request that was not forwarded")
                }
            },
        }
    }

    /// Leaves out of a `tools/list` result the tools a `forbid` denies
    /// outright; `None` when none is.
    fn hide_forbidden(&self, message: &Value) -> Option<Value> {
        let mut value = message.clone();
        let tools = value.pointer_mut("/result/tools")?.as_array_mut()?;
        let before = tools.len();
        tools.retain(|tool| {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                return true;
            };
            let call = Call {
                upstream: self.upstream.clone(),
                tool: name.to_owned(),
                arguments: json!({}),
                tool_context: self.catalogue.context(name),
            };
            !self.approvals.forbids_outright(&call.action())
        });
        (tools.len() != before).then_some(value)
    }

    /// Whether the request `id` was forwarded and awaits its answer.
    pub fn awaits(&self, id: &Value) -> bool {
        matches!(self.open.get(&jsonrpc::id_key(id)).map(|o| &o.stage), Some(Stage::Forwarded { .. }))
    }

    /// A forwarded request that will get no answer from the upstream (it
    /// could not be reached, or failed): closed as if it had answered with
    /// an error saying `why`, so a tool call is reported failed.
    pub fn unanswered(&mut self, id: &Value, why: &str) -> Option<Outcome> {
        if !self.awaits(id) {
            return None;
        }
        let error = jsonrpc::error(Some(id), jsonrpc::INTERNAL_ERROR, why);
        self.from_upstream(&error, b"", &Scope::Only(id.clone())).outcome
    }

    /// The upstream exited or broke (`how`): every open request gets an
    /// error saying so, held calls are withdrawn, and every later request
    /// gets the same error.
    pub fn upstream_gone(&mut self, how: &str) -> Gone {
        let message = format!("the upstream MCP server `{}` {how}", self.upstream);
        self.gone = Some(message.clone());
        self.tool_lists.clear();
        self.progress.clear();
        self.asked.clear();
        let mut gone = Gone {
            replies: Vec::new(),
            outcomes: Vec::new(),
            notice: jsonrpc::notification(
                "notifications/message",
                json!({"level": "error", "logger": "countersign", "data": message}),
            ),
        };
        for (key, open) in self.open.drain() {
            match open.stage {
                Stage::Held { cancel, .. } => {
                    if let Some(cancel) = cancel {
                        let _ = cancel.send(());
                    }
                }
                Stage::Forwarded { request, .. } => {
                    if let Some(request) = request {
                        gone.outcomes.push(Outcome { request, report: gate::report_unanswered(&message) });
                    }
                }
            }
            gone.replies.push((key, jsonrpc::error(Some(&open.id), jsonrpc::INTERNAL_ERROR, &message)));
        }
        gone
    }

    fn dropped(&mut self, why: &str, text: &[u8]) -> Seen {
        Seen { fate: Fate::Drop(self.refusal(From::Upstream, why, text)), related: None, outcome: None }
    }

    /// A message refused (from the client) or dropped (from the upstream)
    /// for `why`: the refusal to audit, if the session's budget allows.
    pub fn refusal(&mut self, from: From, why: &str, text: &[u8]) -> Option<Refusal> {
        self.budgeted(Refusal::new(&self.upstream, from, self.transport, why, text))
    }

    /// A message too large to read (`bytes` long), as [`Gatekeeper::refusal`].
    pub fn oversized(&mut self, from: From, bytes: usize) -> Option<Refusal> {
        self.budgeted(Refusal::oversized(&self.upstream, from, self.transport, bytes))
    }

    fn budgeted(&mut self, mut refusal: Refusal) -> Option<Refusal> {
        if refusal.from == From::Upstream {
            tracing::warn!(upstream = %self.upstream, reason = %refusal.reason, "dropped a message from the upstream");
        }
        self.budget.admit(&mut refusal).then_some(refusal)
    }
}

/// Reports a tool call's outcome without holding up the session.
pub fn report_in_background(approvals: &Arc<dyn Approvals>, outcome: Option<Outcome>) {
    let Some(Outcome { request, report }) = outcome else {
        return;
    };
    let approvals = approvals.clone();
    tokio::spawn(async move {
        if let Err(e) = approvals.report(&request, report).await {
            tracing::warn!(%request, error = %e, "could not report the outcome of a tool call");
        }
    });
}

/// Audits a refused or dropped message without holding up the session.
pub fn audit_in_background(approvals: &Arc<dyn Approvals>, refusal: Option<Refusal>) {
    let Some(refusal) = refusal else {
        return;
    };
    let approvals = approvals.clone();
    tokio::spawn(async move {
        if let Err(e) = approvals.refused(refusal).await {
            tracing::warn!(error = %e, "could not audit a refused MCP message");
        }
    });
}
