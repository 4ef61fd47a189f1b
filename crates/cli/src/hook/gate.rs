//! The gateway side of the hook: submit, wait a bounded time, release; and
//! report outcomes.
//!
//! A call asked again is submitted with `?reuse=open`: the gateway answers
//! with this agent's open request for the exact same action (same
//! fingerprint: kind, resource, payload, principal and `on_behalf_of`)
//! instead of a new one — waited on if still pending, released if approved
//! (single use) — so asking again stores nothing twice.

use std::time::{Duration, Instant};

use countersign_core::Action;
use serde_json::{json, Value};

use crate::client::{CallError, Client};
use crate::review::path_segment;
use crate::view::{RequestView, Submitted};

/// What Claude Code is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it; report the outcome against this request.
    Allow { id: String, note: String },
    /// Do not run it; the reason is for the model.
    Deny(String),
}

/// Decides one action, waiting at most `wait` for a pending one.
pub async fn decide(client: &Client, action: &Action, wait: Duration) -> Result<Decision, CallError> {
    let started = Instant::now();
    let body = serde_json::to_value(action).map_err(|e| CallError::Decode(e.to_string()))?;
    let submitted: Submitted = decode(client.post("/v1/actions?reuse=open", &body, None).await?)?;
    let id = submitted.id.clone();
    match submitted.status.as_str() {
        "allowed" => return Ok(Decision::Allow { id, note: "allowed by countersign".to_owned() }),
        "denied" => return Ok(Decision::Deny(denied_text(&id, submitted.reason.as_deref(), &submitted.policies))),
        "approved" => return released_or_not(client, &id).await,
        "pending" => {}
        other => return Err(CallError::Decode(format!("unexpected status `{other}` for request {id}"))),
    }
    loop {
        let left = wait.saturating_sub(started.elapsed());
        let secs = left.as_secs().min(60);
        let path = format!("/v1/actions/{}?wait={secs}", path_segment(&id));
        let view: RequestView = decode(client.get(&path, Some(Duration::from_secs(secs + 15))).await?)?;
        match view.status.as_str() {
            "pending" if secs == 0 => return Ok(Decision::Deny(pending_text(&id))),
            "pending" => {}
            "approved" => return released_or_not(client, &id).await,
            "denied" => return Ok(Decision::Deny(denial_text(&view))),
            "expired" | "revoked" | "cancelled" => {
                let reason = view.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                return Ok(Decision::Deny(format!(
                    "countersign request {id} is {}{reason}; the call was not made",
                    view.status
                )));
            }
            other => {
                return Ok(Decision::Deny(format!(
                    "countersign request {id} is `{other}`, which cannot be used; the call was not made"
                )));
            }
        }
    }
}

/// Takes the approval of request `id`, or says why the call is not made.
async fn released_or_not(client: &Client, id: &str) -> Result<Decision, CallError> {
    Ok(match take(client, id).await? {
        Some(released) => Decision::Allow { id: released, note: format!("approved in countersign request {id}") },
        None => Decision::Deny(format!(
            "countersign request {id} was approved but could not be released (expired or revoked); the call was not made"
        )),
    })
}

/// Releases an approved request; `None` when it can no longer be
/// (expired, revoked, taken by another call in the meantime).
async fn take(client: &Client, id: &str) -> Result<Option<String>, CallError> {
    let path = format!("/v1/actions/{}/release", path_segment(id));
    match client.post(&path, &json!({}), None).await {
        Ok(value) => {
            let view: RequestView = decode(value)?;
            Ok((view.status == "released").then_some(view.id))
        }
        Err(e) if matches!(e.status(), Some(409 | 404)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reports how the tool call went.
pub async fn report(client: &Client, id: &str, succeeded: bool, summary: &str, digest: &str) -> Result<(), CallError> {
    let body = json!({
        "status": if succeeded { "succeeded" } else { "failed" },
        "summary": summary,
        "output_sha256": digest,
    });
    client.post(&format!("/v1/actions/{}/outcome", path_segment(id)), &body, None).await.map(|_| ())
}

pub fn pending_text(id: &str) -> String {
    format!(
        "pending approval {id}, ask again after it is approved (countersign request {id} is waiting for a human \
         approver; the same call, asked again unchanged, goes through once it is approved)"
    )
}

fn denied_text(id: &str, reason: Option<&str>, policies: &[String]) -> String {
    let policies = if policies.is_empty() { String::new() } else { format!(" (policy {})", policies.join(", ")) };
    format!(
        "countersign denied this call{policies}: {} (request {id}); do not retry it unchanged",
        reason.unwrap_or("denied by policy")
    )
}

fn denial_text(view: &RequestView) -> String {
    let by: Vec<String> = view
        .denials
        .iter()
        .map(|d| {
            let note = d.note().map(|n| format!(": {n}")).unwrap_or_default();
            format!("{}{note}", d.who())
        })
        .collect();
    let by = if by.is_empty() { String::new() } else { format!(" by {}", by.join("; ")) };
    format!("an approver denied countersign request {}{by}; the call was not made", view.id)
}

fn decode<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, CallError> {
    serde_json::from_value(value).map_err(|e| CallError::Decode(e.to_string()))
}
