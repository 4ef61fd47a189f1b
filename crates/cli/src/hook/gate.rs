//! The gateway side of the hook: submit, find an earlier identical
//! request, wait a bounded time, release; and report outcomes.
//!
//! The gateway does not merge identical submissions, so a call asked again
//! is matched here by the fingerprint the gateway returns (it covers kind,
//! resource, payload, principal and `on_behalf_of`): the fresh request is
//! cancelled and the earlier one is used, released if approved (single
//! use), waited on if still pending.

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
    let submitted: Submitted = decode(client.post("/v1/actions", &body, None).await?)?;
    let fresh = submitted.id.clone();
    match submitted.status.as_str() {
        "allowed" => return Ok(Decision::Allow { id: fresh, note: "allowed by countersign".to_owned() }),
        "denied" => return Ok(Decision::Deny(denied_text(&fresh, submitted.reason.as_deref(), &submitted.policies))),
        "pending" => {}
        other => return Err(CallError::Decode(format!("unexpected status `{other}` for request {fresh}"))),
    }
    let fingerprint = submitted.fingerprint.clone().unwrap_or_default();
    let mut id = fresh.clone();
    if !fingerprint.is_empty() {
        for candidate in earlier(client, action, "approved", &fingerprint, &fresh).await? {
            if let Some(released) = take(client, &candidate).await? {
                cancel(client, &fresh).await;
                return Ok(Decision::Allow {
                    id: released,
                    note: format!("approved in countersign request {candidate}"),
                });
            }
        }
        if let Some(older) = earlier(client, action, "pending", &fingerprint, &fresh).await?.into_iter().last() {
            cancel(client, &fresh).await;
            id = older;
        }
    }
    loop {
        let left = wait.saturating_sub(started.elapsed());
        let secs = left.as_secs().min(60);
        let path = format!("/v1/actions/{}?wait={secs}", path_segment(&id));
        let view: RequestView = decode(client.get(&path, Some(Duration::from_secs(secs + 15))).await?)?;
        match view.status.as_str() {
            "pending" if secs == 0 => return Ok(Decision::Deny(pending_text(&id))),
            "pending" => {}
            "approved" => {
                return Ok(match take(client, &id).await? {
                    Some(released) => Decision::Allow { id: released, note: format!("approved in countersign request {id}") },
                    None => Decision::Deny(format!(
                        "countersign request {id} was approved but could not be released (expired or revoked); the call was not made"
                    )),
                });
            }
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

/// Earlier requests of this caller with the same fingerprint, newest first.
async fn earlier(
    client: &Client,
    action: &Action,
    status: &str,
    fingerprint: &str,
    fresh: &str,
) -> Result<Vec<String>, CallError> {
    let path = format!(
        "/v1/actions?status={status}&kind={}&resource={}&limit=50",
        path_segment(&action.kind),
        path_segment(&action.resource)
    );
    let list = client.get(&path, None).await?;
    let views: Vec<RequestView> = decode(list.get("actions").cloned().unwrap_or(Value::Null))?;
    Ok(views
        .into_iter()
        .filter(|v| v.id != fresh && v.status == status && v.fingerprint.as_deref() == Some(fingerprint))
        .map(|v| v.id)
        .collect())
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

async fn cancel(client: &Client, id: &str) {
    let path = format!("/v1/actions/{}/cancel", path_segment(id));
    // A duplicate left pending expires on its own; nothing runs from it.
    let _ = client.post(&path, &json!({}), Some(Duration::from_secs(5))).await;
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
