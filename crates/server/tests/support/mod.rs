//! A gateway on a temporary SQLite store with a fixed cast of users and
//! agents, driven in-process through the router.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use countersign_audit::{AuditDraft, ChainVerifier};
use countersign_core::{PrincipalKind, Timestamp};
use countersign_server::auth::new_token;
use countersign_server::config::{Config, MapEnv, Overrides};
use countersign_server::refusals::{Clock, SystemClock};
use countersign_server::{router, AppState};
use countersign_store::{NewAgent, NewUser, Store};
use countersign_store_sqlite::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const POLICY: &str = r#"
@id("routine")
permit(principal, action, resource) when { resource.name like "staging*" };

@id("prod-shell-sre")
@approvers("sre")
permit(principal, action == Action::"shell.exec", resource) when { resource.name like "prod*" };

@id("prod-db-two-dbas")
@approvers("dba")
@quorum("2")
permit(principal, action == Action::"sql.execute", resource == Resource::"prod-db");

@id("pii-needs-security")
@approvers("security")
permit(principal, action == Action::"sql.execute", resource == Resource::"prod-db")
when { context.labels.contains("pii") };

@id("short-fuse")
@approvers("sre")
@timeout("1s")
permit(principal, action == Action::"shell.exec", resource == Resource::"short-fuse");

@id("brief-approval")
@approvers("sre")
@valid_for("1s")
permit(principal, action == Action::"shell.exec", resource == Resource::"brief");

@id("no-drop")
forbid(principal, action == Action::"sql.execute", resource)
when { context.payload has statement && context.payload.statement == "DROP TABLE users" };

@id("ci-only-deploys")
permit(principal in Group::"ci", action == Action::"deploy", resource);
"#;

/// (name, email, groups)
const USERS: [(&str, &str, &[&str]); 11] = [
    ("alice", "alice@corp", &["sre"]),
    ("bob", "bob@corp", &["sre"]),
    ("carol", "carol@corp", &["dba"]),
    ("dave", "dave@corp", &["dba"]),
    ("erin", "erin@corp", &["dba", "security"]),
    ("owen", "owen@corp", &["sre", "dba"]),
    ("owen-sso", "OWEN@corp", &["sre", "dba"]),
    ("olga", "olga@corp", &["sre", "dba"]),
    ("ann", "ann@corp", &["auditor"]),
    ("adam", "adam@corp", &["admin"]),
    ("sam", "sam@corp", &["web"]),
];

pub struct Gateway {
    pub state: AppState,
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub tokens: HashMap<String, String>,
    pub dir: tempfile::TempDir,
}

pub async fn gateway() -> Gateway {
    gateway_with(POLICY).await
}

pub async fn gateway_with(policy: &str) -> Gateway {
    gateway_configured(policy, &[("COUNTERSIGN_SERVER_BODY_LIMIT_BYTES", "4096")], Arc::new(SystemClock)).await
}

/// A gateway with these `COUNTERSIGN_*` settings, on `clock`.
pub async fn gateway_configured(policy: &str, env: &[(&str, &str)], clock: Arc<dyn Clock>) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("test.cedar"), policy).unwrap();
    let overrides =
        Overrides { data_dir: Some(dir.path().to_path_buf()), policies: Some(policies), ..Overrides::default() };
    let env = MapEnv(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    let config = Config::load(&overrides, &env).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.database_path()).unwrap());
    let mut tokens = HashMap::new();
    for (name, email, groups) in USERS {
        let (token, hash) = new_token(PrincipalKind::User);
        let user = NewUser {
            name: name.into(),
            email: email.into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            token_hash: hash,
            created_at: Timestamp::now(),
        };
        store
            .create_user(user, vec![AuditDraft::raw("test", "identity.user_created", json!({"name": name}))])
            .await
            .unwrap();
        tokens.insert(name.to_owned(), token);
    }
    for (name, owner, groups) in [("bot", Some("owen"), vec![]), ("ci-bot", None, vec!["ci".to_owned()])] {
        let (token, hash) = new_token(PrincipalKind::Agent);
        let agent = NewAgent {
            name: name.into(),
            owner: owner.map(str::to_owned),
            groups,
            token_hash: hash,
            created_at: Timestamp::now(),
        };
        store
            .create_agent(agent, vec![AuditDraft::raw("test", "identity.agent_created", json!({"name": name}))])
            .await
            .unwrap();
        tokens.insert(name.to_owned(), token);
    }
    let auth = Arc::new(countersign_server::auth::LocalTokens::new(store.clone()));
    let state = AppState::with_clock(config, store.clone(), auth, clock).await.unwrap();
    Gateway { router: router(state.clone()), state, store, tokens, dir }
}

impl Gateway {
    pub fn token(&self, who: &str) -> String {
        self.tokens.get(who).cloned().unwrap_or_else(|| panic!("no token for {who}"))
    }

    /// Sends a request as `who` (None: anonymous) and returns status and JSON body.
    pub async fn call(&self, method: &str, path: &str, who: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let raw = body.map(|b| b.to_string());
        self.call_raw(method, path, who.map(|w| self.token(w)), raw).await
    }

    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<String>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder.header("content-type", "application/json").body(Body::from(body)).unwrap(),
            None => builder.body(Body::empty()).unwrap(),
        };
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, value)
    }

    /// Submits as `who` and returns the 201 body.
    pub async fn submit(&self, who: &str, action: Value) -> Value {
        let (status, body) = self.call("POST", "/v1/actions", Some(who), Some(action)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    pub async fn approve(&self, who: &str, id: &str) -> (StatusCode, Value) {
        self.call("POST", &format!("/v1/actions/{id}/approve"), Some(who), Some(json!({"comment": "ok"}))).await
    }

    pub async fn deny(&self, who: &str, id: &str) -> (StatusCode, Value) {
        self.call("POST", &format!("/v1/actions/{id}/deny"), Some(who), Some(json!({"comment": "no"}))).await
    }

    pub async fn status_of(&self, id: &str) -> String {
        let request = self.store.request(id).await.unwrap().unwrap();
        request.status.as_str().to_owned()
    }

    /// Every audit event, after checking the chain verifies.
    pub async fn audit(&self) -> Vec<countersign_audit::AuditEvent> {
        let events = self.store.audit_events(0, 100_000).await.unwrap();
        let mut verifier = ChainVerifier::new();
        for e in &events {
            verifier.push(e).unwrap();
        }
        events
    }

    /// Refusals of `kind` by `actor` accounted for after flushing every
    /// count: those recorded one by one plus those counted.
    pub async fn refusals_accounted(&self, kind: &str, actor: &str) -> u64 {
        self.state.flush_refusals(true).await;
        let events = self.audit().await;
        let recorded = events.iter().filter(|e| e.kind == kind && e.actor == actor).count() as u64;
        let counted: u64 = events
            .iter()
            .filter(|e| e.kind == "refusals.aggregated" && e.actor == actor)
            .map(|e| e.body_value()["count"].as_u64().unwrap())
            .sum();
        recorded + counted
    }

    pub async fn audit_types_for(&self, id: &str) -> Vec<String> {
        self.audit()
            .await
            .into_iter()
            .filter(|e| e.body_value().get("id").and_then(Value::as_str) == Some(id))
            .map(|e| e.kind)
            .collect()
    }
}

pub fn shell(resource: &str) -> Value {
    json!({"kind": "shell.exec", "resource": resource, "payload": {"argv": ["systemctl", "restart", "web"]}})
}

pub fn sql(statement: &str) -> Value {
    json!({"kind": "sql.execute", "resource": "prod-db", "payload": {"statement": statement},
           "on_behalf_of": "alice", "justification": "ticket 42", "labels": [], "context": {"confidence": 0.92}})
}
