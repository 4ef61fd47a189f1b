//! One session between one MCP client and one upstream server, as
//! messages: what the client sends goes up, what the server sends comes
//! down, unchanged and byte for byte — except that every `tools/call` is
//! held until the approval loop lets it through (see [`crate::gate`]),
//! and `tools/list` results are read on the way to learn each tool's hints.
//! What each message may do is the [`Gatekeeper`]'s to say; the relay
//! carries it out.
//!
//! The relay does not know the transports: [`crate::stdio`] feeds it lines,
//! [`crate::http`] feeds it HTTP bodies and routes what it emits to the
//! right SSE stream using [`ToClient::related`].

use std::sync::{Arc, Mutex, MutexGuard};

use countersign_core::json::StrictError;
use serde_json::Value;
use tokio::sync::mpsc;

pub use crate::gatekeeper::{Options, MAX_IN_FLIGHT};

use crate::approvals::Approvals;
use crate::gate;
use crate::gatekeeper::{self, Fate, Gatekeeper, Held, Scope, Settled, Step};
use crate::jsonrpc::{self, From, Kind, Malformed};
use crate::refusal::oversized_reason;

/// A JSON-RPC message with the exact text it arrived as, so that what the
/// proxy passes on is what it received.
#[derive(Debug, Clone)]
pub struct Message {
    pub value: Value,
    pub text: Arc<str>,
}

impl Message {
    /// Parses one message ([`jsonrpc::parse`]); `Err` says why not.
    pub fn parse(text: &str) -> Result<Self, StrictError> {
        let value = jsonrpc::parse(text)?;
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
    approvals: Arc<dyn Approvals>,
    to_upstream: mpsc::Sender<Message>,
    to_client: mpsc::Sender<ToClient>,
    gatekeeper: Mutex<Gatekeeper>,
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
            gatekeeper: Mutex::new(Gatekeeper::new(upstream, transport, approvals.clone(), options)),
            approvals,
            to_upstream,
            to_client,
            deciding: std::sync::atomic::AtomicUsize::new(0),
        });
        (relay, upstream_rx, client_rx)
    }

    fn gatekeeper(&self) -> MutexGuard<'_, Gatekeeper> {
        // A panic while holding the lock cannot leave the maps in a state
        // worse than stale entries; keep serving.
        self.gatekeeper.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let related = match kind {
            Kind::Request { id, .. } => Some(jsonrpc::id_key(id)),
            Kind::Notification { .. } | Kind::Response { .. } | Kind::Invalid => None,
        };
        let step = self.gatekeeper().from_client(kind, &message.value);
        match step {
            Step::Forward => {
                if let Kind::Notification { method: "notifications/cancelled" } = kind {
                    if let Some(key) = jsonrpc::params(&message.value).get("requestId").map(jsonrpc::id_key) {
                        let outcome = self.gatekeeper().forget(&key);
                        gatekeeper::report_in_background(&self.approvals, outcome);
                    }
                }
                self.upstream_send(message).await;
            }
            Step::Hold(held) => self.decide_in_background(message, *held),
            Step::Reply(reply) => self.reply(ToClient { message: Message::new(reply), related }).await,
            // Answered with no id: the id names another request.
            Step::Refuse(why) => self.refuse_client(message.text.as_bytes(), why, None).await,
            // Withdrawn before it reached the upstream: nothing to tell it.
            Step::Withdrawn => {}
        }
    }

    /// Whether the relay would take `kind` from the client: a request whose
    /// id is not in flight, or a response to a request of the upstream's.
    /// (The HTTP transport asks first, to answer a refusal on its own
    /// request rather than on a stream.)
    pub fn admits(&self, kind: Kind<'_>) -> Result<(), Malformed> {
        self.gatekeeper().admits(kind)
    }

    /// A client line that is not a message at all.
    pub async fn bad_client_line(self: &Arc<Self>, line: BadLine) {
        let (code, reason, refusal) = match line {
            BadLine::NotJson(text) => {
                let why = "the message is not JSON";
                (jsonrpc::PARSE_ERROR, why.to_owned(), self.gatekeeper().refusal(From::Client, why, &text))
            }
            BadLine::TooLong(bytes) => {
                (jsonrpc::INVALID_REQUEST, oversized_reason(), self.gatekeeper().oversized(From::Client, bytes))
            }
        };
        self.reply(ToClient { message: Message::new(jsonrpc::error(None, code, &reason)), related: None }).await;
        gatekeeper::audit_in_background(&self.approvals, refusal);
    }

    /// An upstream line that is not a message at all: dropped, audited.
    pub fn bad_upstream_line(self: &Arc<Self>, line: BadLine) {
        let refusal = match line {
            BadLine::NotJson(text) => self.gatekeeper().refusal(From::Upstream, "the message is not JSON", &text),
            BadLine::TooLong(bytes) => self.gatekeeper().oversized(From::Upstream, bytes),
        };
        gatekeeper::audit_in_background(&self.approvals, refusal);
    }

    async fn refuse_client(self: &Arc<Self>, text: &[u8], why: Malformed, id: Option<&Value>) {
        let message = Message::new(jsonrpc::error(id, jsonrpc::INVALID_REQUEST, &format!("{why}; refused")));
        self.reply(ToClient { message, related: id.map(jsonrpc::id_key) }).await;
        let refusal = self.gatekeeper().refusal(From::Client, why.0, text);
        gatekeeper::audit_in_background(&self.approvals, refusal);
    }

    /// Handles a message from the upstream: passed on, changed (tools
    /// hidden from `tools/list`) or dropped, as the gatekeeper says.
    pub async fn from_upstream(self: &Arc<Self>, message: Message) {
        let seen = self.gatekeeper().from_upstream(&message.value, message.text.as_bytes(), &Scope::Session);
        gatekeeper::report_in_background(&self.approvals, seen.outcome);
        match seen.fate {
            Fate::Pass => self.reply(ToClient { message, related: seen.related }).await,
            Fate::Replace(value) => self.reply(ToClient { message: Message::new(value), related: seen.related }).await,
            Fate::Drop(refusal) => gatekeeper::audit_in_background(&self.approvals, refusal),
        }
    }

    /// The upstream exited or broke: every open request gets an error
    /// naming what happened, and so does every later one.
    pub async fn upstream_gone(self: &Arc<Self>, how: &str) {
        let gone = self.gatekeeper().upstream_gone(how);
        for outcome in gone.outcomes {
            gatekeeper::report_in_background(&self.approvals, Some(outcome));
        }
        for (key, error) in gone.replies {
            self.reply(ToClient { message: Message::new(error), related: Some(key) }).await;
        }
        self.reply(ToClient { message: Message::new(gone.notice), related: None }).await;
    }

    /// The client is gone: withdraw every call still waiting for its
    /// decision, and give the withdrawals a moment to reach the gateway.
    pub async fn abandon(&self) {
        self.gatekeeper().withdraw_all();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while self.deciding.load(std::sync::atomic::Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// How many client requests wait for an answer.
    pub fn open_requests(&self) -> usize {
        self.gatekeeper().open_requests()
    }

    fn decide_in_background(self: &Arc<Self>, message: Message, held: Held) {
        let relay = self.clone();
        self.deciding.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tokio::spawn(async move {
            relay.decide(message, held).await;
            relay.deciding.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        });
    }

    async fn decide(self: &Arc<Self>, message: Message, held: Held) {
        let Held { call, token, withdrawal, hold, .. } = held;
        let to_client = self.to_client.clone();
        let related = hold.key().to_owned();
        let sink = move |note: Value| {
            // Progress is advisory: a full queue drops an update rather
            // than holding up the decision.
            let _ = to_client.try_send(ToClient { message: Message::new(note), related: Some(related.clone()) });
        };
        let progress = token.map(|t| (t, &sink as gate::ProgressSink<'_>));
        let verdict = gate::decide(self.approvals.as_ref(), &call, progress, gatekeeper::withdrawn(withdrawal)).await;
        let settled = self.gatekeeper().settle(&hold, verdict);
        match settled {
            // The upstream gets exactly what was decided on.
            Settled::Forward => self.upstream_send(Message::new(message.value)).await,
            Settled::Reply(reply) => {
                self.reply(ToClient { message: Message::new(reply), related: Some(hold.key().to_owned()) }).await;
            }
            Settled::Dropped(outcome) => gatekeeper::report_in_background(&self.approvals, outcome),
        }
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
