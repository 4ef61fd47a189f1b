//! One `tools/call` through the approval loop: describe it as an action,
//! submit it, and — while it is pending — wait for the decision, telling
//! the client who was asked and until when. The answer is either "forward
//! the call" (allowed, or approved and released) or a tool result with
//! `isError: true` saying why not, so the model can adapt.

use std::future::Future;
use std::time::Duration;

use countersign_core::{Action, Status};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::approvals::{Approvals, GateError, Report, Ticket};

/// The action kind of every tool call.
pub const KIND: &str = "mcp.tool_call";
/// How long one wait for a decision lasts before a progress update.
const WAIT_SLICE: Duration = Duration::from_secs(15);
/// How long past a request's deadline an unreachable gateway is retried.
const UNREACHABLE_GRACE: Duration = Duration::from_secs(30);

/// A tool call as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub upstream: String,
    pub tool: String,
    /// The call's `arguments`, verbatim (an empty object when absent).
    pub arguments: Value,
    /// What `tools/list` said about the tool (see [`crate::catalogue`]).
    pub tool_context: Value,
}

impl Call {
    /// Reads a `tools/call` request's params. `None` when it names no tool.
    pub fn from_params(
        upstream: &str,
        params: &Map<String, Value>,
        tool_context: impl FnOnce(&str) -> Value,
    ) -> Option<Self> {
        let tool = params.get("name")?.as_str()?.to_owned();
        let arguments = params.get("arguments").cloned().unwrap_or_else(|| Value::Object(Map::new()));
        let tool_context = tool_context(&tool);
        Some(Self { upstream: upstream.to_owned(), tool, arguments, tool_context })
    }

    /// `<upstream>/<tool>`, ASCII letters folded to lowercase (tool names
    /// may hold capitals; resource names may not). Anything else outside
    /// the resource grammar stays, so the gateway refuses the call.
    pub fn resource(&self) -> String {
        countersign_core::names::fold_resource(&format!("{}/{}", self.upstream, self.tool))
    }

    /// The action the policy decides on.
    pub fn action(&self) -> Action {
        let mut context = Map::new();
        context.insert("upstream".to_owned(), json!(self.upstream));
        context.insert("tool".to_owned(), self.tool_context.clone());
        Action {
            kind: KIND.to_owned(),
            resource: self.resource(),
            payload: self.arguments.clone(),
            on_behalf_of: None,
            justification: None,
            labels: Vec::new(),
            context,
        }
    }
}

/// What to do with the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Send it upstream; report the outcome against this request.
    Forward { request: String },
    /// Answer the client with this `CallToolResult` instead.
    Reply(Value),
    /// The client cancelled: answer nothing.
    Cancelled,
}

/// Where progress notifications go, when the client asked for them.
pub type ProgressSink<'a> = &'a (dyn Fn(Value) + Send + Sync);

/// Runs one call through the approval loop. `cancelled` completes when
/// the client cancels the call.
pub async fn decide(
    approvals: &dyn Approvals,
    call: &Call,
    progress: Option<(Value, ProgressSink<'_>)>,
    cancelled: impl Future<Output = ()> + Send,
) -> Verdict {
    let resource = call.resource();
    let ticket = match approvals.submit(call.action()).await {
        Ok(ticket) => ticket,
        Err(e) => {
            return Verdict::Reply(refusal(
                &format!("countersign could not get a decision on this call to `{resource}`, so it was not made: {e}"),
                None,
            ))
        }
    };
    match ticket.status {
        Status::Allowed => Verdict::Forward { request: ticket.id },
        Status::Denied => Verdict::Reply(refusal(&denied_text(&resource, &ticket), Some(&ticket))),
        Status::Pending => {
            let id = ticket.id.clone();
            let mut progress = progress.map(|(token, sink)| Progress { token, sink, count: 0 });
            let waited = tokio::select! {
                decided = wait_for_decision(approvals, &resource, ticket, &mut progress) => Some(decided),
                () = cancelled => None,
            };
            match waited {
                Some(Ok(decided)) => after_decision(approvals, &resource, decided).await,
                Some(Err(reply)) => Verdict::Reply(reply),
                None => {
                    if let Err(e) = approvals.cancel(&id).await {
                        tracing::warn!(request = %id, error = %e, "could not cancel the request of a cancelled tool call");
                    }
                    Verdict::Cancelled
                }
            }
        }
        Status::Approved | Status::Released | Status::Expired | Status::Cancelled | Status::Revoked => {
            Verdict::Reply(refusal(&closed_text(&resource, &ticket), Some(&ticket)))
        }
    }
}

struct Progress<'a> {
    token: Value,
    sink: ProgressSink<'a>,
    count: u64,
}

impl Progress<'_> {
    fn send(&mut self, message: String) {
        self.count += 1;
        (self.sink)(crate::jsonrpc::notification(
            "notifications/progress",
            json!({"progressToken": self.token, "progress": self.count, "message": message}),
        ));
    }
}

/// Waits while the request is pending. `Err` carries the reply when the
/// gateway could not be asked any more.
async fn wait_for_decision(
    approvals: &dyn Approvals,
    resource: &str,
    ticket: Ticket,
    progress: &mut Option<Progress<'_>>,
) -> Result<Ticket, Value> {
    let id = ticket.id.clone();
    if let Some(p) = progress.as_mut() {
        p.send(waiting_text(&ticket));
    }
    let mut current = ticket;
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    loop {
        match approvals.wait(&id, WAIT_SLICE).await {
            Ok(next) if next.status == Status::Pending => {
                unreachable_since = None;
                if let Some(p) = progress.as_mut() {
                    p.send(waiting_text(&next));
                }
                current = next;
            }
            Ok(next) => return Ok(next),
            Err(GateError::Unavailable(detail)) => {
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                let past_deadline = deadline_passed(&current);
                if past_deadline && since.elapsed() >= UNREACHABLE_GRACE {
                    return Err(refusal(
                        &format!(
                            "countersign lost contact with the approval gateway while request {id} for `{resource}` waited, and its deadline has passed; the call was not made: {detail}"
                        ),
                        Some(&current),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(refusal(
                    &format!(
                        "countersign stopped waiting for request {id} for `{resource}`; the call was not made: {e}"
                    ),
                    Some(&current),
                ))
            }
        }
    }
}

fn deadline_passed(ticket: &Ticket) -> bool {
    ticket
        .expires_at
        .as_deref()
        .and_then(|t| countersign_core::Timestamp::parse_rfc3339(t).ok())
        .is_none_or(|t| t.as_millis() <= countersign_core::Timestamp::now().as_millis())
}

async fn after_decision(approvals: &dyn Approvals, resource: &str, decided: Ticket) -> Verdict {
    match decided.status {
        Status::Approved => match approvals.release(&decided.id).await {
            Ok(released) if released.status == Status::Released => Verdict::Forward { request: released.id },
            Ok(other) => Verdict::Reply(refusal(&closed_text(resource, &other), Some(&other))),
            Err(e) => Verdict::Reply(refusal(
                &format!(
                    "countersign: request {} for `{resource}` was approved, but its approval could not be used, so the call was not made: {e}",
                    decided.id
                ),
                Some(&decided),
            )),
        },
        Status::Denied => Verdict::Reply(refusal(&denied_text(resource, &decided), Some(&decided))),
        Status::Allowed | Status::Released => Verdict::Forward { request: decided.id },
        Status::Pending | Status::Expired | Status::Cancelled | Status::Revoked => {
            Verdict::Reply(refusal(&closed_text(resource, &decided), Some(&decided)))
        }
    }
}

fn waiting_text(ticket: &Ticket) -> String {
    let asked: Vec<String> = ticket
        .asked
        .iter()
        .map(|a| {
            let people = if a.quorum == 1 {
                "1 approval".to_owned()
            } else {
                format!("{} approvals from distinct people", a.quorum)
            };
            format!(
                "policy `{}` asks for {people} from group {} ({} so far)",
                a.policy,
                a.groups.join(" or "),
                a.approvals
            )
        })
        .collect();
    let until = ticket.expires_at.as_deref().map(|t| format!(" until {t}")).unwrap_or_default();
    format!("waiting for approval{until} (countersign request {}): {}", ticket.id, asked.join("; "))
}

fn denied_text(resource: &str, ticket: &Ticket) -> String {
    if ticket.denials.is_empty() {
        // The reason names the determining policies (or says none permits it).
        format!("countersign denied this call to `{resource}`: {} (request {})", ticket.reason, ticket.id)
    } else {
        let by: Vec<String> = ticket
            .denials
            .iter()
            .map(|d| match &d.comment {
                Some(c) => format!("{} (\"{c}\")", d.by),
                None => d.by.clone(),
            })
            .collect();
        format!("an approver denied this call to `{resource}`: {} (countersign request {})", by.join(", "), ticket.id)
    }
}

fn closed_text(resource: &str, ticket: &Ticket) -> String {
    let id = &ticket.id;
    match ticket.status {
        Status::Expired => {
            let deadline = ticket.expires_at.as_deref().map(|t| format!(" by {t}")).unwrap_or_default();
            format!("nobody approved this call to `{resource}`{deadline}; countersign request {id} expired and the call was not made")
        }
        Status::Revoked => {
            format!(
                "countersign request {id} for `{resource}` was revoked, so the call was not made: {}",
                ticket.reason
            )
        }
        Status::Cancelled => format!("countersign request {id} for `{resource}` was cancelled; the call was not made"),
        Status::Denied => denied_text(resource, ticket),
        Status::Allowed | Status::Pending | Status::Approved | Status::Released => {
            format!("countersign request {id} for `{resource}` is `{}`; the call was not made", ticket.status.as_str())
        }
    }
}

/// A `CallToolResult` that tells the model the call was not made.
pub fn refusal(text: &str, ticket: Option<&Ticket>) -> Value {
    let mut result = json!({"content": [{"type": "text", "text": text}], "isError": true});
    if let Some(ticket) = ticket {
        result["_meta"] = json!({"dev.countersign/request": {"id": ticket.id, "status": ticket.status.as_str()}});
    }
    result
}

/// The outcome of a forwarded call, from the upstream's response: failed
/// on a JSON-RPC error or `isError: true`; the digest covers the result's
/// `content` as received (or the error object).
pub fn report_for(response: &Value) -> Report {
    let digest = |v: &Value| hex::encode(Sha256::digest(serde_json::to_vec(v).unwrap_or_default()));
    if let Some(error) = response.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let message: String = error.get("message").and_then(Value::as_str).unwrap_or("").chars().take(512).collect();
        return Report {
            succeeded: false,
            summary: format!("JSON-RPC error {code}: {message}"),
            output_sha256: digest(error),
        };
    }
    let result = response.get("result").cloned().unwrap_or(Value::Null);
    let is_error = result.get("isError").and_then(Value::as_bool).unwrap_or(false);
    let content = result.get("content").cloned().unwrap_or(Value::Null);
    Report { succeeded: !is_error, summary: format!("isError: {is_error}"), output_sha256: digest(&content) }
}

/// The outcome of a forwarded call that never got an answer.
pub fn report_unanswered(why: &str) -> Report {
    Report {
        succeeded: false,
        summary: why.chars().take(512).collect(),
        output_sha256: hex::encode(Sha256::digest(b"")),
    }
}
