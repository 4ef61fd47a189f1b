//! The Slack Web API calls the gateway makes: `chat.postMessage`,
//! `chat.update`, `chat.postEphemeral`, `views.open`, `users.info`,
//! `users.lookupByEmail`, `conversations.open` and `apps.connections.open`.
//! The base URL is configurable (GovSlack, tests).

use countersign_gateway::config::Secret;
use serde_json::{json, Value};

use crate::outbox::DeliveryError;

/// A failed Web API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    #[error("cannot reach Slack: {0}")]
    Transport(String),
    #[error("Slack is rate-limiting us")]
    RateLimited,
    #[error("Slack answered `{0}`")]
    Api(String),
}

impl SlackError {
    /// Whether retrying later can help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) | Self::RateLimited => true,
            Self::Api(code) => matches!(
                code.as_str(),
                "ratelimited" | "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout"
            ),
        }
    }
}

impl From<SlackError> for DeliveryError {
    fn from(e: SlackError) -> Self {
        if e.is_transient() {
            Self::Transient(e.to_string())
        } else {
            Self::Permanent(e.to_string())
        }
    }
}

/// A Slack account's email as `users.info` tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackEmail {
    pub email: String,
    /// `is_email_confirmed: true`: Slack checked the address belongs to the account.
    pub confirmed: bool,
    /// The account's workspace (`team_id`), empty if Slack did not say.
    pub team: String,
}

/// A Slack Web API client for one bot token.
#[derive(Debug, Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl SlackApi {
    pub fn new(http: reqwest::Client, base: String, token: Secret) -> Self {
        Self { http, base, token }
    }

    /// A write method, with a JSON body.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, SlackError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.base))
            .bearer_auth(self.token.expose())
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SlackError::Transport(transport(&e)))?;
        answer(response).await
    }

    /// A read method, with form parameters (these methods take no JSON).
    async fn call_form(&self, method: &str, params: &[(&str, &str)], token: &Secret) -> Result<Value, SlackError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.base))
            .bearer_auth(token.expose())
            .form(params)
            .send()
            .await
            .map_err(|e| SlackError::Transport(transport(&e)))?;
        answer(response).await
    }

    /// Posts a message; returns the channel id and the message `ts`.
    pub async fn post_message(
        &self,
        channel: &str,
        text: &str,
        blocks: &[Value],
    ) -> Result<(String, String), SlackError> {
        let answer = self
            .call(
                "chat.postMessage",
                &json!({"channel": channel, "text": text, "blocks": blocks, "unfurl_links": false}),
            )
            .await?;
        let channel = answer.get("channel").and_then(Value::as_str).unwrap_or(channel).to_owned();
        let ts = answer.get("ts").and_then(Value::as_str).ok_or_else(|| SlackError::Api("no_ts".to_owned()))?;
        Ok((channel, ts.to_owned()))
    }

    pub async fn update(&self, channel: &str, ts: &str, text: &str, blocks: &[Value]) -> Result<(), SlackError> {
        self.call("chat.update", &json!({"channel": channel, "ts": ts, "text": text, "blocks": blocks})).await?;
        Ok(())
    }

    /// A message only `user` sees, in `channel`.
    pub async fn post_ephemeral(&self, channel: &str, user: &str, text: &str) -> Result<(), SlackError> {
        self.call("chat.postEphemeral", &json!({"channel": channel, "user": user, "text": text})).await?;
        Ok(())
    }

    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), SlackError> {
        self.call("views.open", &json!({"trigger_id": trigger_id, "view": view})).await?;
        Ok(())
    }

    /// The email of a Slack user, and whether Slack says it is confirmed
    /// (`is_email_confirmed`, the JSON boolean `true`), with the user's
    /// workspace (needs the `users:read.email` scope).
    pub async fn user_email(&self, user: &str) -> Result<Option<SlackEmail>, SlackError> {
        match self.call_form("users.info", &[("user", user)], &self.token).await {
            Ok(answer) => {
                Ok(answer.pointer("/user/profile/email").and_then(Value::as_str).filter(|e| !e.is_empty()).map(
                    |email| SlackEmail {
                        email: email.to_owned(),
                        confirmed: answer.pointer("/user/is_email_confirmed") == Some(&Value::Bool(true)),
                        team: answer.pointer("/user/team_id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    },
                ))
            }
            Err(SlackError::Api(code)) if code == "user_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The Slack user with this email, if any.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<String>, SlackError> {
        match self.call_form("users.lookupByEmail", &[("email", email)], &self.token).await {
            Ok(answer) => Ok(answer.pointer("/user/id").and_then(Value::as_str).map(str::to_owned)),
            Err(SlackError::Api(code)) if code == "users_not_found" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The direct-message channel with `user`.
    pub async fn open_dm(&self, user: &str) -> Result<String, SlackError> {
        let answer = self.call("conversations.open", &json!({"users": user})).await?;
        answer
            .pointer("/channel/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SlackError::Api("no_channel".to_owned()))
    }

    /// A Socket Mode WebSocket URL, with the app-level token.
    pub async fn open_socket(&self, app_token: &Secret) -> Result<String, SlackError> {
        let answer = self.call_form("apps.connections.open", &[], app_token).await?;
        answer.get("url").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| SlackError::Api("no_url".to_owned()))
    }
}

async fn answer(response: reqwest::Response) -> Result<Value, SlackError> {
    let status = response.status();
    if status.as_u16() == 429 {
        return Err(SlackError::RateLimited);
    }
    if status.is_server_error() {
        return Err(SlackError::Transport(format!("HTTP {status}")));
    }
    let body: Value = response.json().await.map_err(|e| SlackError::Transport(transport(&e)))?;
    if body.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(body);
    }
    let code = body.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
    Err(SlackError::Api(code.to_owned()))
}

/// The kind of transport failure, without URLs (they may carry tokens).
fn transport(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    what.to_owned()
}
