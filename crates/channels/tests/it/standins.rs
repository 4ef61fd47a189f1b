//! Local stand-ins for the Slack Web API, the Bot Framework (token
//! endpoint, OpenID metadata and JWKS, Bot Connector) and a webhook
//! receiver. They implement the documented calls the gateway makes and
//! record every call; the vendors' SDKs then check what was recorded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Serves `router` on a loopback port.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

// ---- Slack ------------------------------------------------------------------

pub const BOT_TOKEN: &str = "xoxb-test-token";

/// One recorded Web API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub args: Value,
}

#[derive(Debug, Default)]
pub struct SlackState {
    pub calls: Mutex<Vec<Call>>,
    /// Slack user id → email (`unconfirmed:<address>`: not confirmed by Slack).
    pub users: Mutex<HashMap<String, String>>,
    /// Channel name → id.
    channels: Mutex<HashMap<String, String>>,
    /// (channel id, ts) of every message.
    messages: Mutex<Vec<(String, String)>>,
    next: AtomicUsize,
    /// While true, every call fails with 503.
    pub down: AtomicBool,
    /// Answer for `apps.connections.open`.
    pub socket_url: Mutex<Option<String>>,
}

#[derive(Debug, Clone)]
pub struct SlackStandIn {
    pub state: Arc<SlackState>,
    pub base: String,
}

impl SlackStandIn {
    pub async fn start(users: &[(&str, &str)]) -> Self {
        let state = Arc::new(SlackState::default());
        for (id, email) in users {
            state.users.lock().unwrap().insert((*id).to_owned(), (*email).to_owned());
        }
        let router = Router::new().route("/api/{method}", post(slack_api)).with_state(state.clone());
        let addr = serve(router).await;
        Self { state, base: format!("http://{addr}/api") }
    }

    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.state.calls.lock().unwrap().iter().filter(|c| c.method == method).map(|c| c.args.clone()).collect()
    }

    pub fn channel_id(&self, name: &str) -> Option<String> {
        self.state.channels.lock().unwrap().get(name).cloned()
    }
}

async fn slack_api(
    State(state): State<Arc<SlackState>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if state.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // Slack takes JSON for write methods and form fields for the rest.
    let args: Value = if content_type.starts_with("application/json") {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        Value::Object(
            form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect(),
        )
    };
    let expected =
        if method == "apps.connections.open" { "Bearer xapp-test-token" } else { &format!("Bearer {BOT_TOKEN}") };
    if auth != expected {
        return Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    state.calls.lock().unwrap().push(Call { method: method.clone(), args: args.clone() });
    let text = |key: &str| args.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let answer = match method.as_str() {
        "chat.postMessage" => {
            if !args.get("blocks").is_some_and(Value::is_array) && args.get("text").is_none() {
                return Json(json!({"ok": false, "error": "no_text"})).into_response();
            }
            let channel = resolve(&state, &text("channel"));
            let ts = format!("1700000000.{:06}", state.next.fetch_add(1, Ordering::SeqCst));
            state.messages.lock().unwrap().push((channel.clone(), ts.clone()));
            json!({"ok": true, "channel": channel, "ts": ts})
        }
        "chat.update" => {
            let known = state.messages.lock().unwrap().contains(&(text("channel"), text("ts")));
            if known {
                json!({"ok": true, "channel": text("channel"), "ts": text("ts")})
            } else {
                json!({"ok": false, "error": "message_not_found"})
            }
        }
        "chat.postEphemeral" => json!({"ok": true, "message_ts": "1700000000.999999"}),
        "views.open" => json!({"ok": true, "view": {"id": "V1"}}),
        "users.info" => match state.users.lock().unwrap().get(&text("user")) {
            // `unconfirmed:<address>`: an address Slack has not confirmed.
            Some(email) => {
                let confirmed = email.strip_prefix("unconfirmed:");
                json!({"ok": true, "user": {"id": text("user"), "team_id": "T1",
                       "is_email_confirmed": confirmed.is_none(),
                       "profile": {"email": confirmed.unwrap_or(email)}}})
            }
            None => json!({"ok": false, "error": "user_not_found"}),
        },
        "users.lookupByEmail" => {
            let users = state.users.lock().unwrap();
            match users.iter().find(|(_, e)| e.eq_ignore_ascii_case(&text("email"))) {
                Some((id, _)) => json!({"ok": true, "user": {"id": id}}),
                None => json!({"ok": false, "error": "users_not_found"}),
            }
        }
        "conversations.open" => json!({"ok": true, "channel": {"id": format!("D{}", text("users"))}}),
        "apps.connections.open" => match state.socket_url.lock().unwrap().clone() {
            Some(url) => json!({"ok": true, "url": url}),
            None => json!({"ok": false, "error": "not_allowed"}),
        },
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    Json(answer).into_response()
}

fn resolve(state: &SlackState, channel: &str) -> String {
    if !channel.starts_with('#') {
        return channel.to_owned();
    }
    let mut channels = state.channels.lock().unwrap();
    let next = channels.len();
    channels.entry(channel.to_owned()).or_insert_with(|| format!("C{:08}", next + 1)).clone()
}

// ---- Bot Framework ---------------------------------------------------------

pub const APP_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const APP_PASSWORD: &str = "test-app-password";
pub const ISSUER: &str = "https://api.botframework.com";
const BOT_ACCESS_TOKEN: &str = "bot-access-token";

/// (email, UPN, Entra object id)
pub type Member = (Option<String>, Option<String>, String);

#[derive(Debug, Default)]
pub struct BotState {
    /// (method, conversation, activity id, body) of every connector call.
    pub activities: Mutex<Vec<(String, String, String, Value)>>,
    /// Member id → its directory entry.
    pub members: Mutex<HashMap<String, Member>>,
    pub token_requests: Mutex<Vec<HashMap<String, String>>>,
    /// The body of every `POST /v3/conversations` (ConversationParameters).
    pub created: Mutex<Vec<Value>>,
    next: AtomicUsize,
    pub down: AtomicBool,
    base: Mutex<String>,
}

#[derive(Debug, Clone)]
pub struct BotFrameworkStandIn {
    pub state: Arc<BotState>,
    /// The Bot Connector service URL (also the `serviceurl` claim).
    pub service_url: String,
    pub metadata_url: String,
    pub token_url: String,
}

impl BotFrameworkStandIn {
    pub async fn start() -> Self {
        let state = Arc::new(BotState::default());
        let router = Router::new()
            .route("/openid", get(openid))
            .route("/keys", get(|| async { Json(serde_json::from_str::<Value>(crate::support::JWKS).unwrap()) }))
            .route("/token", post(token))
            .route("/v3/conversations", post(create_conversation))
            .route("/v3/conversations/{conversation}/activities", post(send_activity))
            .route("/v3/conversations/{conversation}/activities/{id}", axum::routing::put(update_activity))
            .route("/v3/conversations/{conversation}/members/{member}", get(member))
            .with_state(state.clone());
        let addr = serve(router).await;
        let base = format!("http://{addr}");
        *state.base.lock().unwrap() = base.clone();
        Self {
            state,
            service_url: format!("{base}/"),
            metadata_url: format!("{base}/openid"),
            token_url: format!("{base}/token"),
        }
    }

    pub fn add_member(&self, id: &str, email: Option<&str>, upn: Option<&str>, aad: &str) {
        self.state
            .members
            .lock()
            .unwrap()
            .insert(id.to_owned(), (email.map(str::to_owned), upn.map(str::to_owned), aad.to_owned()));
    }

    /// Every card sent or updated, in order.
    pub fn cards(&self) -> Vec<Value> {
        self.state
            .activities
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, _, _, body)| body.pointer("/attachments/0/content").cloned())
            .collect()
    }

    pub fn calls(&self, method: &str) -> Vec<(String, String, Value)> {
        self.state
            .activities
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _, _)| m == method)
            .map(|(_, c, id, body)| (c.clone(), id.clone(), body.clone()))
            .collect()
    }
}

async fn openid(State(state): State<Arc<BotState>>) -> Json<Value> {
    let base = state.base.lock().unwrap().clone();
    Json(json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://invalid.example/authorize",
        "jwks_uri": format!("{base}/keys"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }))
}

async fn token(State(state): State<Arc<BotState>>, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    state.token_requests.lock().unwrap().push(form.clone());
    let good_secret = form.get("client_secret").map(String::as_str) == Some(APP_PASSWORD);
    let assertion = form.contains_key("client_assertion");
    if form.get("client_id").map(String::as_str) != Some(APP_ID) || !(good_secret || assertion) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": BOT_ACCESS_TOKEN})).into_response()
}

fn connector_auth(state: &BotState, headers: &HeaderMap) -> Option<Response> {
    if state.down.load(Ordering::SeqCst) {
        return Some(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    (auth != format!("Bearer {BOT_ACCESS_TOKEN}")).then(|| StatusCode::UNAUTHORIZED.into_response())
}

async fn send_activity(
    State(state): State<Arc<BotState>>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = connector_auth(&state, &headers) {
        return refused;
    }
    let id = format!("activity-{}", state.next.fetch_add(1, Ordering::SeqCst));
    state.activities.lock().unwrap().push(("send".into(), conversation, id.clone(), body));
    Json(json!({"id": id})).into_response()
}

/// `POST /v3/conversations`: a 1:1 conversation with one known member, as
/// Teams allows bots (never a group, and the tenant must be given). Teams
/// answers a repeated request with the same conversation.
async fn create_conversation(
    State(state): State<Arc<BotState>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = connector_auth(&state, &headers) {
        return refused;
    }
    state.created.lock().unwrap().push(body.clone());
    let members = body["members"].as_array().cloned().unwrap_or_default();
    let tenant = body["tenantId"].as_str().or(body.pointer("/channelData/tenant/id").and_then(Value::as_str));
    let known =
        members.len() == 1 && members[0]["id"].as_str().is_some_and(|m| state.members.lock().unwrap().contains_key(m));
    if body["isGroup"] == true || !known || tenant.is_none() || body.pointer("/bot/id").is_none() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"code": "BadArgument"}}))).into_response();
    }
    let member = members[0]["id"].as_str().unwrap_or_default();
    Json(
        json!({"id": format!("a:1on1-{member}"), "activityId": null, "serviceUrl": state.base.lock().unwrap().clone()}),
    )
    .into_response()
}

async fn update_activity(
    State(state): State<Arc<BotState>>,
    Path((conversation, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = connector_auth(&state, &headers) {
        return refused;
    }
    state.activities.lock().unwrap().push(("update".into(), conversation, id.clone(), body));
    Json(json!({"id": id})).into_response()
}

async fn member(
    State(state): State<Arc<BotState>>,
    Path((_conversation, member)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = connector_auth(&state, &headers) {
        return refused;
    }
    match state.members.lock().unwrap().get(&member) {
        Some((email, upn, aad)) => Json(json!({
            "id": member, "name": upn.clone().or(email.clone()).unwrap_or_default(),
            "email": email, "userPrincipalName": upn, "aadObjectId": aad,
        }))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

// ---- Webhook receiver --------------------------------------------------------

#[derive(Debug, Default)]
pub struct ReceiverState {
    /// (signature header, content type, body) of every POST, failed or not.
    pub received: Mutex<Vec<(String, String, String)>>,
    /// Answer 500 to this many more POSTs.
    pub fail_next: AtomicUsize,
}

#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    pub state: Arc<ReceiverState>,
    pub url: String,
}

impl WebhookReceiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let router = Router::new().route("/hook", post(receive_hook)).with_state(state.clone());
        let addr = serve(router).await;
        Self { state, url: format!("http://{addr}/hook") }
    }
}

async fn receive_hook(State(state): State<Arc<ReceiverState>>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    state.received.lock().unwrap().push((header("x-countersign-signature"), header("content-type"), body));
    let failing = state.fail_next.load(Ordering::SeqCst);
    if failing > 0 {
        state.fail_next.store(failing - 1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::NO_CONTENT
}
