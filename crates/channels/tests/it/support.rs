//! The test kit's gateway on a temporary SQLite store, served on loopback
//! with the channels' routes and workers, wired to the stand-ins; helpers to click,
//! sign and wait; and the vendor-SDK checks.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use countersign_channels::{Channels, OutboxOptions};
use countersign_core::{Request, Timestamp};
use countersign_gateway::AppState;
use countersign_store::Store;
use countersign_store_sqlite::SqliteStore;
use countersign_testkit::{Builder, Cast, Loopback, Served};
use serde_json::{json, Value};

use crate::standins::{BotFrameworkStandIn, SlackStandIn, WebhookReceiver, APP_ID, APP_PASSWORD, BOT_TOKEN, ISSUER};

/// The Entra ID tenant the test's Teams users belong to.
pub const TENANT: &str = "72f988bf-0000-4000-8000-000000000001";
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const WEBHOOK_SECRET: &str = "whsec-test";
pub const JWKS: &str = include_str!("../fixtures/bot-jwks.json");
pub const SIGNING_KEY: &str = include_str!("../fixtures/bot-signing-key.pem");

pub const POLICY: &str = r##"
@id("routine")
permit(principal, action, resource) when { resource.name like "staging*" };

@id("prod-shell-sre")
@approvers("sre")
@slack_channel("#prod-approvals")
permit(principal, action == Action::"shell.exec", resource) when { resource.name like "prod*" };

@id("prod-db-three-dbas")
@approvers("dba")
@quorum("3")
permit(principal, action == Action::"sql.execute", resource == Resource::"prod-db");

@id("slow-escalates")
@approvers("sre")
@escalate_after("1s")
@escalate_to("sre-leads")
permit(principal, action == Action::"shell.exec", resource == Resource::"slow-web");

@id("slow-escalates-to-teams")
@approvers("dba")
@escalate_after("1s")
@escalate_to("teams:19:db-leads@thread.tacv2")
permit(principal, action == Action::"shell.exec", resource == Resource::"slow-db-host");

@id("slow-escalates-to-dbas")
@approvers("sre")
@escalate_after("1s")
@escalate_to("dba")
permit(principal, action == Action::"shell.exec", resource == Resource::"slow-dba-review");

@id("short-fuse")
@approvers("sre")
@timeout("1s")
permit(principal, action == Action::"shell.exec", resource == Resource::"short-fuse");

@id("vault-step-up")
@approvers("sre")
@step_up("true")
permit(principal, action == Action::"shell.exec", resource == Resource::"vault");
"##;

/// Approvers (sres, dbas, and lena, an sre lead), and the agent `bot`,
/// owned by owen.
pub fn cast() -> Cast {
    Cast::new()
        .user("alice", "alice@corp.example", &["sre"])
        .user("bob", "bob@corp.example", &["sre"])
        .user("owen", "owen@corp.example", &["sre"])
        .user("carol", "carol@corp.example", &["dba"])
        .user("dave", "dave@corp.example", &["dba"])
        .user("erin", "erin@corp.example", &["dba"])
        .user("lena", "lena@corp.example", &["sre-leads"])
        .agent("bot", Some("owen"), &[])
}

/// Slack accounts: id → email. `U_STRANGER` has no countersign user.
pub const SLACK_USERS: [(&str, &str); 7] = [
    ("UALICE", "alice@corp.example"),
    ("UBOB", "bob@corp.example"),
    ("UOWEN", "Owen@Corp.example"),
    ("UCAROL", "carol@corp.example"),
    ("ULENA", "lena@corp.example"),
    ("USTRANGER", "stranger@elsewhere.example"),
    ("UNOEMAIL", ""),
];

/// A gateway with the channels, stopped when dropped.
pub struct Gateway {
    _served: Served,
    #[allow(dead_code)]
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub url: String,
    pub slack: SlackStandIn,
    pub bot: BotFrameworkStandIn,
    pub hook: WebhookReceiver,
    pub http: reqwest::Client,
    #[allow(dead_code)]
    pub channels: Channels,
    /// (body, timestamp, signature, status) of every interactivity request sent.
    pub slack_sent: std::sync::Mutex<Vec<(String, String, String, u16)>>,
    kit: countersign_testkit::Gateway,
}

/// What to change from the defaults.
#[derive(Debug, Default)]
pub struct Setup {
    /// Extra lines for the `[slack]` section.
    pub slack_extra: &'static str,
    /// Webhook `events` filter.
    pub webhook_events: Option<&'static str>,
    pub webhook_max_attempts: Option<u32>,
}

pub fn fast_options() -> OutboxOptions {
    OutboxOptions {
        poll: Duration::from_millis(100),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        escalation_tick: Duration::from_millis(200),
        ..OutboxOptions::default()
    }
}

pub async fn gateway() -> Gateway {
    gateway_with(Setup::default()).await
}

pub async fn gateway_with(setup: Setup) -> Gateway {
    let slack =
        SlackStandIn::start(&SLACK_USERS.iter().filter(|(_, e)| !e.is_empty()).copied().collect::<Vec<_>>()).await;
    slack.state.users.lock().unwrap().remove("UNOEMAIL");
    let bot = BotFrameworkStandIn::start().await;
    bot.add_member("29:dave", Some("dave@corp.example"), None, "aad-dave");
    bot.add_member("29:erin", None, Some("ERIN@corp.example"), "aad-erin");
    bot.add_member("29:owen", Some("owen@corp.example"), None, "aad-owen");
    let hook = WebhookReceiver::start().await;

    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("slack-signing-secret");
    std::fs::write(&secret_file, format!("{SIGNING_SECRET}\n")).unwrap();
    let port = Loopback::bind().await;
    let events = setup.webhook_events.map(|e| format!("events = {e}\n")).unwrap_or_default();
    let attempts = setup.webhook_max_attempts.map(|n| format!("max_attempts = {n}\n")).unwrap_or_default();
    let config = format!(
        "[server]\npublic_url = \"{url}\"\n\n\
         [slack]\nsigning_secret_file = {secret:?}\napi_base_url = {slack_base:?}\nchannel = \"#approvals\"\n{slack_extra}\n\
         [teams]\napp_id = {APP_ID:?}\nconversation = \"19:approvals@thread.tacv2\"\nservice_url = {service:?}\n\
         token_url = {token:?}\nopenid_metadata_url = {metadata:?}\n\n\
         [[webhooks]]\nurl = {hook:?}\nsecret = {WEBHOOK_SECRET:?}\n{events}{attempts}\n\
         [channels]\nmax_backoff = \"1s\"\n",
        url = port.url,
        secret = secret_file.display().to_string(),
        slack_base = slack.base,
        slack_extra = setup.slack_extra,
        service = bot.service_url,
        token = bot.token_url,
        metadata = bot.metadata_url,
        hook = hook.url,
    );
    // Secrets from the environment, as an operator would set them.
    let secrets = [("COUNTERSIGN_SLACK_BOT_TOKEN", BOT_TOKEN), ("COUNTERSIGN_TEAMS_APP_PASSWORD", APP_PASSWORD)];
    let kit = Builder::new(POLICY).dir(dir).config(&config).env(&secrets).cast(cast()).start().await;
    let channels = Channels::with_options(kit.state.clone(), &kit.config.channels, fast_options()).unwrap();
    channels.spawn();
    let port_url = port.url.clone();
    let served = port.serve(kit.state.clone(), kit.config.server(), channels.router());
    let gw = Gateway {
        _served: served,
        state: kit.state.clone(),
        store: kit.store.clone(),
        url: port_url,
        slack,
        bot,
        hook,
        http: countersign_testkit::client(),
        channels,
        slack_sent: std::sync::Mutex::default(),
        kit,
    };
    // The workers start their cursors at the head of the log: wait until
    // they have, so the test's first request is delivered.
    for name in ["slack", "teams", "webhook-0"] {
        let key = format!("cursor:{name}");
        gw.eventually(&format!("{name} worker started"), || async {
            gw.store.kv_get("channels", &key).await.unwrap().is_some()
        })
        .await;
    }
    gw
}

impl Gateway {
    /// Another gateway process on the same store (a replica): its own
    /// state, store connection, channel routes and listener; no delivery
    /// workers.
    pub async fn replica(&self) -> Served {
        let config = &self.kit.config;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.database_path()).unwrap());
        let state = AppState::new(config.gateway(), store).await.unwrap();
        let router = Channels::with_options(state.clone(), &config.channels, fast_options()).unwrap().router();
        Loopback::bind().await.serve(state, config.server(), router)
    }

    pub fn token(&self, who: &str) -> &str {
        self.kit.tokens.get(who)
    }

    /// A call to the gateway's API as `who`.
    pub async fn api(&self, method: reqwest::Method, path: &str, who: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(self.token(who));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Submits as the agent and returns the new request's id.
    pub async fn submit(&self, action: Value) -> String {
        let (status, body) = self.api(reqwest::Method::POST, "/v1/actions", "bot", Some(action)).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn request(&self, id: &str) -> Request {
        self.store.request(id).await.unwrap().unwrap()
    }

    /// Waits (up to 10 s) until `check` holds.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        countersign_testkit::wait::eventually(what, check).await;
    }

    /// POSTs a Slack interactivity payload, signed now with the right secret.
    pub async fn slack_post(&self, payload: &Value) -> reqwest::Response {
        let body = slack_form(payload);
        let ts = (Timestamp::now().as_millis() / 1000).to_string();
        let signature = countersign_channels::slack::signature::sign(SIGNING_SECRET.as_bytes(), &ts, body.as_bytes());
        self.slack_raw(&body, &ts, &signature).await
    }

    pub async fn slack_raw(&self, body: &str, ts: &str, signature: &str) -> reqwest::Response {
        self.slack_raw_to(&self.url, body, ts, signature).await
    }

    /// As [`Gateway::slack_raw`], to the gateway at `url` (a replica).
    pub async fn slack_raw_to(&self, url: &str, body: &str, ts: &str, signature: &str) -> reqwest::Response {
        let response = self
            .http
            .post(format!("{url}/v1/integrations/slack/interactions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let sent = (body.to_owned(), ts.to_owned(), signature.to_owned(), response.status().as_u16());
        self.slack_sent.lock().unwrap().push(sent);
        response
    }

    /// How many refusals of `kind` were audited: recorded one by one, plus
    /// those counted into `refusals.aggregated` events.
    pub async fn refusals_accounted(&self, kind: &str) -> usize {
        let accounted = countersign_testkit::audit::refusals_accounted(&self.state, kind, None).await;
        usize::try_from(accounted).unwrap()
    }

    /// Audit event types (and bodies) in order.
    pub async fn audit_types(&self) -> Vec<(String, Value)> {
        let events = countersign_testkit::audit::events(self.store.as_ref()).await;
        events.into_iter().map(|e| (e.kind.clone(), e.body_value())).collect()
    }
}

/// A `block_actions` payload for a click on the card in `channel`.
pub fn click(user: &str, action_id: &str, id: &str, channel: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase(), "team_id": "T1"},
        "team": {"id": "T1", "domain": "corp"},
        "channel": {"id": channel, "name": "prod-approvals"},
        "container": {"type": "message", "channel_id": channel, "message_ts": "1700000000.000001"},
        "trigger_id": format!("trigger-{user}-{action_id}"),
        "response_url": "https://hooks.slack.invalid/actions/T1/1/x",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "countersign_actions", "value": id,
                     "action_ts": "1700000000.1"}],
    })
}

/// A `view_submission` payload for the reason modal.
pub fn submit_modal(user: &str, view: &Value, reason: &str) -> Value {
    json!({
        "type": "view_submission",
        "user": {"id": user, "team_id": "T1"},
        "team": {"id": "T1"},
        "view": {
            "id": "V1",
            "type": "modal",
            "team_id": "T1",
            "app_id": "A1",
            "callback_id": view["callback_id"],
            "private_metadata": view["private_metadata"],
            "state": {"values": {"reason": {"text": {"type": "plain_text_input", "value": reason}}}},
        },
    })
}

pub fn slack_form(payload: &Value) -> String {
    form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish()
}

pub fn shell(resource: &str) -> Value {
    json!({"kind": "shell.exec", "resource": resource, "payload": {"argv": ["systemctl", "restart", "web"]},
           "justification": "deploy 1.2.3 needs a restart", "labels": ["prod"], "context": {"confidence": 0.9}})
}

// ---- Bot Framework tokens ------------------------------------------------------

/// A Bot Framework-style channel token, signed with the test key, with
/// `overrides` applied to the standard claims.
pub fn bot_token(service_url: &str, overrides: Value) -> String {
    let now = Timestamp::now().as_millis() / 1000;
    let mut claims = json!({
        "serviceurl": service_url, "nbf": now - 10, "exp": now + 3600, "iss": ISSUER, "aud": APP_ID,
    });
    let mut kid = "test-key-1".to_owned();
    if let Value::Object(extra) = overrides {
        for (k, v) in extra {
            if k == "kid" {
                kid = v.as_str().unwrap().to_owned();
            } else if v.is_null() {
                claims.as_object_mut().unwrap().remove(&k);
            } else {
                claims[k] = v;
            }
        }
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid);
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(SIGNING_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// An `adaptiveCard/action` invoke from Teams member `member`.
pub fn invoke(gw: &Gateway, member: &str, aad: &str, verb: &str, id: &str, comment: Option<&str>) -> Value {
    let mut data = json!({"id": id});
    if let Some(comment) = comment {
        data["comment"] = json!(comment);
    }
    json!({
        "type": "invoke", "name": "adaptiveCard/action", "id": "f:1", "channelId": "msteams",
        "serviceUrl": gw.bot.service_url,
        "from": {"id": member, "aadObjectId": aad, "name": member},
        "recipient": {"id": format!("28:{APP_ID}")},
        "conversation": {"id": "19:approvals@thread.tacv2", "conversationType": "channel", "tenantId": TENANT},
        "channelData": {"tenant": {"id": TENANT}, "channel": {"id": "19:approvals@thread.tacv2"}},
        "replyToId": "activity-0",
        "value": {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"},
    })
}

pub async fn teams_post(gw: &Gateway, token: Option<&str>, activity: &Value) -> (u16, Value) {
    let mut request = gw.http.post(format!("{}/v1/integrations/teams/messages", gw.url)).json(activity);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

// ---- vendor SDKs ---------------------------------------------------------------

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/channels-peers")
}

fn missing(what: &str) -> ! {
    panic!("{what} is not installed: run scripts/setup-test-deps (it runs scripts/setup.d/channels.sh)")
}

/// Runs a peer script with `input` on stdin and returns its JSON output.
fn run_peer(program: &str, script: &str, input: &Value) -> Value {
    let dir = peers_dir();
    let program_path = if program == "python" { dir.join(".venv/bin/python") } else { PathBuf::from("node") };
    if program == "python" && !program_path.exists() {
        missing("the slack-sdk venv (tests/channels-peers/.venv)");
    }
    if program == "node" && !dir.join("node_modules/botbuilder").exists() {
        missing("the npm peers (tests/channels-peers/node_modules)");
    }
    let mut child = Command::new(&program_path)
        .arg(dir.join(script))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|_| missing(program));
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Bolt for Python's verdict on each signed request and what it parsed
/// (see tests/channels-peers/bolt_check.py).
pub fn bolt(requests: &[(String, String, String)]) -> Vec<Value> {
    let requests: Vec<Value> =
        requests.iter().map(|(b, t, s)| json!({"body": b, "timestamp": t, "signature": s})).collect();
    let out = run_peer("python", "bolt_check.py", &json!({"secret": SIGNING_SECRET, "requests": requests}));
    out.as_array().unwrap().clone()
}

/// Every interactivity request countersign accepted (not counting
/// replays) must be one a Bolt app accepts too, and Bolt must route and
/// read it as the payload says: the stand-in's payloads are what Slack
/// apps really get.
pub fn assert_bolt_accepts_what_we_accepted(gw: &Gateway) {
    let mut seen = std::collections::HashSet::new();
    let accepted: Vec<(String, String, String)> = gw
        .slack_sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(body, ts, signature, status)| {
            *status == 200 && seen.insert((body.clone(), ts.clone(), signature.clone()))
        })
        .map(|(b, t, s, _)| (b.clone(), t.clone(), s.clone()))
        .collect();
    assert!(!accepted.is_empty(), "no interactivity request was accepted");
    for ((body, _, _), parsed) in accepted.iter().zip(bolt(&accepted)) {
        let payload: Value = form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| serde_json::from_str(&v).unwrap())
            .unwrap();
        assert_eq!(parsed["status"], 200, "Bolt refuses what countersign accepted: {parsed}\n{payload}");
        assert_eq!(parsed["user"], payload["user"]["id"], "{parsed}");
        match payload["type"].as_str().unwrap() {
            "block_actions" => {
                assert_eq!(parsed["kind"], "action", "{parsed}");
                assert_eq!(parsed["action_id"], payload["actions"][0]["action_id"]);
                assert_eq!(parsed["value"], payload["actions"][0]["value"]);
            }
            "view_submission" => {
                assert_eq!(parsed["kind"], "view", "{parsed}");
                assert_eq!(parsed["callback_id"], payload["view"]["callback_id"]);
                assert_eq!(parsed["private_metadata"], payload["view"]["private_metadata"]);
                assert_eq!(
                    parsed["values"]["reason"]["text"],
                    payload["view"]["state"]["values"]["reason"]["text"]["value"]
                );
            }
            other => panic!("unexpected payload type {other}"),
        }
    }
}

/// botbuilder's reading of Teams activities and countersign's answers,
/// and a proactive DM through botframework-connector (see
/// tests/channels-peers/teams_check.js).
pub async fn teams_sdk(input: Value) -> Value {
    tokio::task::spawn_blocking(move || run_peer("node", "teams_check.js", &input)).await.unwrap()
}

/// Everything the gateway sent to the Bot Connector (activities posted and
/// replaced, conversation parameters) must pass through the Bot Framework
/// SDK's own request models unchanged.
pub async fn assert_bot_framework_sdk_accepts_everything(bot: &BotFrameworkStandIn) {
    let mut outgoing: Vec<Value> = bot
        .state
        .activities
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, _, body)| json!({"model": "Activity", "body": body}))
        .collect();
    let created = bot.state.created.lock().unwrap().clone();
    outgoing.extend(created.into_iter().map(|body| json!({"model": "ConversationParameters", "body": body})));
    assert!(!outgoing.is_empty(), "nothing was sent to the Bot Connector");
    let out = teams_sdk(json!({"outgoing": outgoing})).await;
    for (i, errors) in out["outgoing"].as_array().unwrap().iter().enumerate() {
        assert!(errors.as_array().unwrap().is_empty(), "the Bot Framework SDK rejects {}: {errors}", outgoing[i]);
    }
}

/// slack_sdk's verdicts and signatures (see tests/channels-peers/slack_check.py).
pub fn slack_sdk(input: &Value) -> Value {
    run_peer("python", "slack_check.py", input)
}

/// Every Block Kit message and modal the gateway sent must be read by
/// slack_sdk's models exactly as sent.
pub fn assert_slack_sdk_accepts_everything(slack: &SlackStandIn) {
    let messages: Vec<Value> = slack
        .calls("chat.postMessage")
        .into_iter()
        .chain(slack.calls("chat.update"))
        .map(|c| c["blocks"].clone())
        .collect();
    let views: Vec<Value> = slack.calls("views.open").into_iter().map(|c| c["view"].clone()).collect();
    assert!(!messages.is_empty(), "nothing was sent to Slack");
    let out = slack_sdk(&json!({"messages": messages, "views": views}));
    for (i, errors) in out["message_errors"].as_array().unwrap().iter().enumerate() {
        assert!(errors.as_array().unwrap().is_empty(), "slack_sdk rejects message {i}: {errors}\n{}", messages[i]);
    }
    for (i, errors) in out["view_errors"].as_array().unwrap().iter().enumerate() {
        assert!(errors.as_array().unwrap().is_empty(), "slack_sdk rejects view {i}: {errors}");
    }
}

/// Every Adaptive Card must parse cleanly in Microsoft's `adaptivecards`.
pub fn assert_adaptivecards_accepts(cards: &[Value]) {
    assert!(!cards.is_empty(), "no card to check");
    let out = run_peer("node", "cards_check.js", &json!(cards));
    for (i, errors) in out.as_array().unwrap().iter().enumerate() {
        assert!(errors.as_array().unwrap().is_empty(), "adaptivecards rejects card {i}: {errors}\n{}", cards[i]);
    }
}

/// The Bot Framework SDK's verdict on each (token, serviceUrl, channelId).
/// The SDK fetches the stand-in's metadata and keys, so it runs off the
/// test's runtime thread.
pub async fn botframework_verdicts(metadata: &str, cases: &[(String, String, String)]) -> Vec<bool> {
    let cases: Vec<Value> =
        cases.iter().map(|(t, s, c)| json!({"token": t, "serviceUrl": s, "channelId": c})).collect();
    let input = json!({"metadata": metadata, "app_id": APP_ID, "cases": cases});
    let out = tokio::task::spawn_blocking(move || run_peer("node", "botframework_check.js", &input)).await.unwrap();
    out.as_array().unwrap().iter().map(|v| v["ok"].as_bool().unwrap()).collect()
}
