//! Clicks coming back from Slack: `POST /v1/integrations/slack/interactions`
//! (and, with the same [`Slack::interaction`], Socket Mode).
//!
//! The request must carry a valid v0 signature, fresh and never seen
//! before; anything else gets 401 and is audited. Slack wants an answer
//! within 3 seconds, so button clicks are acknowledged at once and handled
//! after; a modal submission is answered with its result when that is
//! quick (an error shows in the modal), else acknowledged and handled after.
//!
//! Every click, accepted or refused, is audited (`channel.click`), and the
//! vote itself goes through [`countersign_gateway::AppState::vote`], which
//! applies every approval rule and audits the outcome. A refused click gets
//! an ephemeral message saying why.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use countersign_audit::{AuditDraft, RefusalKind, RefusalRecord};
use countersign_core::{json, Timestamp, VoteKind};
use countersign_gateway::refusals::Source;
use countersign_gateway::{Blame, GatewayError};
use serde_json::{json, Value};

use super::signature::{self, SignatureError};
use super::{blocks, Slack};
use crate::identity::click_event;

/// Where Slack sends interactivity payloads.
pub const PATH: &str = "/v1/integrations/slack/interactions";

/// How long a modal submission may take before it is answered and finished later.
const INLINE_BUDGET: Duration = Duration::from_millis(2500);

/// The interactivity route.
pub fn router(slack: Arc<Slack>) -> Router {
    Router::new().route(PATH, post(receive)).with_state(slack)
}

async fn receive(
    State(slack): State<Arc<Slack>>,
    headers: HeaderMap,
    source: Option<axum::Extension<Source>>,
    body: Bytes,
) -> Response {
    let Some(secret) = slack.config.signing_secret.clone() else {
        // Socket Mode only: there is no HTTP endpoint to call.
        return error(StatusCode::NOT_FOUND, "not_found", "Slack interactivity arrives over Socket Mode here");
    };
    let source = crate::inbound::source(source);
    if let Err(limited) = slack.state.admit(source) {
        let code = limited.code();
        let record = RefusalRecord::new(RefusalKind::IntegrationRejected, "anonymous").code("integration", "slack");
        slack.state.refuse(source, None, code, false, || record.code("code", code)).await;
        return crate::inbound::rate_limited(limited);
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("x-slack-request-timestamp");
    let given = header("x-slack-signature");
    let now = Timestamp::now().as_millis() / 1000;
    let checked = match signature::verify(secret.expose().as_bytes(), timestamp, &body, given, now) {
        Ok(verified) => signature::first_use_of(&slack.state.key_values(signature::SEEN), &verified).await,
        Err(e) => Err(e),
    };
    if checked == Err(SignatureError::Unchecked) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &SignatureError::Unchecked.to_string());
    }
    if let Err(reason) = checked {
        return rejected(&slack, source, reason).await;
    }
    let Some(payload) = form_payload(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_payload", "expected a form body with a JSON `payload`");
    };
    match slack.interaction(payload).await {
        Some(answer) => Json(answer).into_response(),
        None => StatusCode::OK.into_response(),
    }
}

async fn rejected(slack: &Slack, source: Source, reason: SignatureError) -> Response {
    let record = RefusalRecord::new(RefusalKind::IntegrationRejected, "anonymous")
        .code("integration", "slack")
        .text("reason", &reason.to_string());
    slack.state.refuse(source, None, "slack_signature", true, || record).await;
    error(StatusCode::UNAUTHORIZED, "unauthenticated", &reason.to_string())
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

/// The `payload` field of a form-encoded body, parsed as JSON.
fn form_payload(body: &[u8]) -> Option<Value> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| json::from_slice_allowing_repeats(v.as_bytes()).ok())
}

impl Slack {
    /// Handles one interactivity payload; returns the body to answer with,
    /// if any (Socket Mode sends it back in the envelope acknowledgement).
    pub async fn interaction(self: &Arc<Self>, payload: Value) -> Option<Value> {
        match payload.get("type").and_then(Value::as_str) {
            Some("block_actions") => {
                let slack = self.clone();
                // Acknowledge now; views.open must still happen within the
                // trigger's 3 s, which this task does first thing.
                tokio::spawn(async move { slack.block_action(&payload).await });
                None
            }
            Some("view_submission") => {
                let slack = self.clone();
                let mut task = tokio::spawn(async move { slack.view_submission(&payload).await });
                match tokio::time::timeout(INLINE_BUDGET, &mut task).await {
                    Ok(Ok(answer)) => answer,
                    // Still running: Slack closes the modal; the vote still
                    // lands (it is audited) and shows on the card.
                    Ok(Err(_)) | Err(_) => None,
                }
            }
            Some(_) | None => None,
        }
    }

    async fn block_action(&self, payload: &Value) {
        let text = |pointer: &str| payload.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
        let account = text("/user/id").unwrap_or_default();
        let channel = text("/channel/id").or_else(|| text("/container/channel_id"));
        let Some(action) = payload.pointer("/actions/0") else {
            return;
        };
        let action_id = action.get("action_id").and_then(Value::as_str).unwrap_or_default();
        let id = action.get("value").and_then(Value::as_str).unwrap_or_default().to_owned();
        let kind = match action_id {
            blocks::APPROVE | blocks::APPROVE_WITH_COMMENT => VoteKind::Approve,
            blocks::DENY => VoteKind::Deny,
            // The step-up button is a link; Slack reports its click too.
            _ => return,
        };
        let request = self.state.request(&id).await.ok().flatten();
        let user = match self.user_for(&account, request.as_ref()).await {
            Ok(user) => user,
            Err(why) => {
                self.audit_click(click_event("slack", &account, None, &id, action_id, Some(&why.to_string()))).await;
                self.tell(channel.as_deref(), &account, &format!("⚠️ Not applied: {why}")).await;
                return;
            }
        };
        if action_id == blocks::APPROVE {
            let result = self.state.vote(&user.principal(), &id, kind, None).await;
            // Recorded after the vote, which is audited on its own, so the
            // waiting agent is not held up by one more write.
            let refused = result.as_ref().err().map(refusal_text);
            self.audit_click(click_event("slack", &account, Some(&user), &id, action_id, refused.as_deref())).await;
            self.report(result.err(), channel.as_deref(), &account, &id).await;
            return;
        }
        // Approve with comment, Deny: ask for the reason first.
        let Some(request) = request else {
            self.tell(channel.as_deref(), &account, &format!("⚠️ Request `{}` was not found", blocks::esc(&id))).await;
            return;
        };
        let card = self.cards.build(&request).await;
        let view = blocks::reason_modal(&card, kind, channel.as_deref());
        let trigger = payload.get("trigger_id").and_then(Value::as_str).unwrap_or_default();
        if let Err(e) = self.api.open_view(trigger, &view).await {
            tracing::warn!(error = %e, "views.open failed");
            self.tell(channel.as_deref(), &account, "⚠️ Could not open the form; please try again").await;
        }
    }

    async fn view_submission(&self, payload: &Value) -> Option<Value> {
        if payload.pointer("/view/callback_id").and_then(Value::as_str) != Some(blocks::VOTE_MODAL) {
            return None;
        }
        let metadata: Value = payload
            .pointer("/view/private_metadata")
            .and_then(Value::as_str)
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or(Value::Null);
        let id = metadata.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let kind = match metadata.get("kind").and_then(Value::as_str) {
            Some("approve") => VoteKind::Approve,
            Some("deny") => VoteKind::Deny,
            Some(_) | None => return None,
        };
        let reason = payload
            .pointer(&format!("/view/state/values/{}/{}/value", blocks::REASON_BLOCK, blocks::REASON_INPUT))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned);
        let account = payload.pointer("/user/id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let action = match kind {
            VoteKind::Approve => blocks::APPROVE_WITH_COMMENT,
            VoteKind::Deny => blocks::DENY,
        };
        let Some(reason) = reason else {
            return Some(modal_error("Please give a reason"));
        };
        let request = self.state.request(&id).await.ok().flatten();
        let user = match self.user_for(&account, request.as_ref()).await {
            Ok(user) => user,
            Err(why) => {
                self.audit_click(click_event("slack", &account, None, &id, action, Some(&why.to_string()))).await;
                return Some(modal_error(&why.to_string()));
            }
        };
        let result = self.state.vote(&user.principal(), &id, kind, Some(reason)).await;
        let refused = result.as_ref().err().map(refusal_text);
        self.audit_click(click_event("slack", &account, Some(&user), &id, action, refused.as_deref())).await;
        refused.map(|message| modal_error(&message))
    }

    /// Tells the clicker why a vote was refused, if it was.
    async fn report(&self, refused: Option<GatewayError>, channel: Option<&str>, account: &str, id: &str) {
        if let Some(e) = refused {
            let text = format!(
                "⚠️ Your vote on request `{}` was not applied: {}",
                blocks::esc(id),
                blocks::esc(&refusal_text(&e))
            );
            self.tell(channel, account, &text).await;
        }
    }

    /// An ephemeral message to `account`, in `channel` (or by DM without one).
    async fn tell(&self, channel: Option<&str>, account: &str, text: &str) {
        let channel = match channel {
            Some(channel) => channel.to_owned(),
            None => match self.api.open_dm(account).await {
                Ok(dm) => dm,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reach a Slack user to explain a refusal");
                    return;
                }
            },
        };
        if let Err(e) = self.api.post_ephemeral(&channel, account, text).await {
            tracing::warn!(error = %e, "chat.postEphemeral failed");
        }
    }

    async fn audit_click(&self, event: AuditDraft) {
        if let Err(e) = self.state.audit(vec![event]).await {
            tracing::warn!(error = %e, "cannot audit a Slack click");
        }
    }
}

/// What a refusal says to a person. Store failures are not the clicker's
/// fault and say so without detail.
pub(crate) fn refusal_text(e: &GatewayError) -> String {
    match e.blame() {
        Blame::Gateway => "the gateway could not record it right now; please try again".to_owned(),
        Blame::Unauthenticated | Blame::NotFound | Blame::Caller => e.to_string(),
    }
}

fn modal_error(message: &str) -> Value {
    json!({"response_action": "errors", "errors": {blocks::REASON_BLOCK: countersign_core::text::truncate(message, 300)}})
}
