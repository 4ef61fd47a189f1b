//! Activities from Teams: `POST /v1/integrations/teams/messages`.
//!
//! Every request must carry a valid Bot Framework JWT (see [`super::jwt`]);
//! anything else gets 401 and is audited. `adaptiveCard/action` invokes
//! (Universal Actions) are answered with the refreshed card, or, when the
//! vote is refused, with a message only the clicker sees. `Action.Submit`
//! from hosts without Universal Actions arrives as a message activity; a
//! refusal is then answered in the conversation. Either way the vote goes
//! through [`countersign_gateway::AppState::vote`] and the click is audited.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use countersign_audit::{AuditDraft, RefusalKind, RefusalRecord};
use countersign_core::{json, VoteKind};
use countersign_gateway::refusals::Source;
use serde_json::{json, Value};

use super::{card, Teams};
use crate::identity::click_event;
use crate::slack::interactions::refusal_text;

/// Where the Bot Framework delivers activities (the bot's messaging endpoint).
pub const PATH: &str = "/v1/integrations/teams/messages";

/// The messaging endpoint route.
pub fn router(teams: Arc<Teams>) -> Router {
    Router::new().route(PATH, post(receive)).with_state(teams)
}

async fn receive(
    State(teams): State<Arc<Teams>>,
    headers: HeaderMap,
    source: Option<axum::Extension<Source>>,
    body: Bytes,
) -> Response {
    let source = crate::inbound::source(source);
    if let Err(limited) = teams.state.admit(source) {
        let code = limited.code();
        let record = RefusalRecord::new(RefusalKind::IntegrationRejected, "anonymous").code("integration", "teams");
        teams.state.refuse(source, None, code, false, || record.code("code", code)).await;
        return crate::inbound::rate_limited(limited);
    }
    let activity: Value = json::from_slice_allowing_repeats(&body).unwrap_or(Value::Null);
    let text = |key: &str| activity.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let service_url = text("serviceUrl");
    let channel_id = text("channelId");
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    if let Err(e) = teams.auth.validate(authorization, &service_url, &channel_id).await {
        let record = RefusalRecord::new(RefusalKind::IntegrationRejected, "anonymous")
            .code("integration", "teams")
            .text("reason", &e.to_string());
        teams.state.refuse(source, None, "teams_token", true, || record).await;
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": "unauthenticated", "message": e.to_string()}})),
        )
            .into_response();
    }
    match (text("type").as_str(), text("name").as_str()) {
        ("invoke", "adaptiveCard/action") => {
            let action = activity.pointer("/value/action").cloned().unwrap_or(Value::Null);
            let verb = action.get("verb").and_then(Value::as_str).unwrap_or_default().to_owned();
            let data = action.get("data").cloned().unwrap_or(Value::Null);
            Json(teams.universal_action(&activity, &verb, &data).await).into_response()
        }
        ("message", _) if activity.get("value").is_some_and(Value::is_object) => {
            let data = activity.get("value").cloned().unwrap_or(Value::Null);
            let verb = data.get("verb").and_then(Value::as_str).unwrap_or_default().to_owned();
            if let Err(refusal) = teams.click(&activity, &verb, &data).await {
                teams.reply(&activity, &refusal).await;
            }
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

impl Teams {
    /// Answers an `adaptiveCard/action` invoke (Universal Actions response).
    async fn universal_action(&self, activity: &Value, verb: &str, data: &Value) -> Value {
        let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
        let outcome = match verb {
            card::REFRESH => Ok(()),
            _ => self.click(activity, verb, data).await,
        };
        if let Err(message) = outcome {
            return json!({"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": message});
        }
        match self.state.request(id).await {
            Ok(Some(request)) => {
                let review = self.cards.build(&request).await;
                json!({"statusCode": 200, "type": card::CONTENT_TYPE, "value": card::adaptive_card(&review, None)})
            }
            Ok(None) | Err(_) => {
                json!({"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": "This request cannot be shown right now."})
            }
        }
    }

    /// Applies an approve or deny click; `Err` holds what to tell the clicker.
    async fn click(&self, activity: &Value, verb: &str, data: &Value) -> Result<(), String> {
        let kind = match verb {
            card::APPROVE => VoteKind::Approve,
            card::DENY => VoteKind::Deny,
            _ => return Err("This button is not known here.".to_owned()),
        };
        let id = data.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
        let comment = data
            .get(card::COMMENT_INPUT)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let text = |pointer: &str| activity.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned();
        let member = text("/from/id");
        let aad = activity.pointer("/from/aadObjectId").and_then(Value::as_str);
        let account = aad.map_or_else(|| member.clone(), str::to_owned);
        let request = self.state.request(&id).await.ok().flatten();
        let tenant = activity
            .pointer("/conversation/tenantId")
            .or_else(|| activity.pointer("/channelData/tenant/id"))
            .and_then(Value::as_str);
        let conversation = text("/conversation/id");
        let user = self.user_for(&text("/serviceUrl"), &conversation, &member, aad, tenant, request.as_ref()).await;
        let user = match user {
            Ok(user) => user,
            Err(why) => {
                self.audit(click_event("teams", &account, None, &id, verb, Some(&why.to_string()))).await;
                return Err(format!("Not applied: {why}"));
            }
        };
        // Where this person is in Teams, for the owner DM and escalations.
        if let Some(account) = super::accounts::Account::from_activity(activity) {
            self.learn(&user.name, &account).await;
        }
        let result = self.state.vote(&user.principal(), &id, kind, comment).await;
        let refused = result.as_ref().err().map(refusal_text);
        self.audit(click_event("teams", &account, Some(&user), &id, verb, refused.as_deref())).await;
        match refused {
            None => Ok(()),
            Some(why) => Err(format!("Not applied: {why}")),
        }
    }

    /// A reply in the conversation (for `Action.Submit` refusals).
    async fn reply(&self, activity: &Value, text: &str) {
        let service_url = activity.get("serviceUrl").and_then(Value::as_str).unwrap_or_default();
        let conversation = activity.pointer("/conversation/id").and_then(Value::as_str).unwrap_or_default();
        let mut message = json!({"type": "message", "text": text});
        if let Some(reply_to) = activity.get("id").and_then(Value::as_str) {
            message["replyToId"] = json!(reply_to);
        }
        if let Err(e) = self.connector.send(service_url, conversation, &message).await {
            tracing::warn!(error = %e, "cannot tell a Teams user why their click was refused");
        }
    }

    async fn audit(&self, event: AuditDraft) {
        if let Err(e) = self.state.audit(vec![event]).await {
            tracing::warn!(error = %e, "cannot audit a Teams click");
        }
    }
}
