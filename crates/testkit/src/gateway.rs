//! A gateway on a temporary data directory: one policy file, an optional
//! config file and `COUNTERSIGN_*` settings, a SQLite store there (or a
//! given one) with a cast enrolled, and its state; called in-process
//! through its router, or served (see [`crate::serve`]).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use countersign::config::{Config, MapEnv, Overrides};
use countersign_audit::AuditEvent;
use countersign_core::{Clock, SystemClock};
use countersign_gateway::identify::{Authenticator, LocalTokens};
use countersign_gateway::AppState;
use countersign_server::router;
use countersign_store::Store;
use countersign_store_sqlite::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;

use crate::fixtures::{standard_cast, POLICY};
use crate::serve::{Loopback, Served};
use crate::{audit, Cast, Tokens};

/// The policy file every test gateway reads, in `<dir>/policies`.
pub const POLICY_FILE: &str = "test.cedar";

/// What a test gateway is made of; [`Builder::start`] makes it.
#[derive(Debug)]
pub struct Builder {
    policy: String,
    config: Option<String>,
    env: Vec<(String, String)>,
    clock: Arc<dyn Clock>,
    cast: Cast,
    store: Option<Arc<dyn Store>>,
    dir: Option<TempDir>,
}

impl Builder {
    /// A gateway under `policy` (Cedar text), with no config file, no
    /// settings, no one enrolled, the wall clock and its own SQLite store.
    pub fn new(policy: &str) -> Self {
        Self {
            policy: policy.to_owned(),
            config: None,
            env: Vec::new(),
            clock: Arc::new(SystemClock),
            cast: Cast::new(),
            store: None,
            dir: None,
        }
    }

    /// The config file's text (TOML); the data and policy directories are
    /// the temporary ones whatever it says.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_owned());
        self
    }

    /// `COUNTERSIGN_*` settings, as the environment would give them.
    pub fn env(mut self, pairs: &[(&str, &str)]) -> Self {
        self.env.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// The clock the gateway reads every time from (deadlines, stamps,
    /// refusal windows, rate limits).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Who to enrol.
    pub fn cast(mut self, cast: Cast) -> Self {
        self.cast = cast;
        self
    }

    /// Runs on `store` instead of a new SQLite store in the directory.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses `dir` (already holding what the config file refers to, say)
    /// as the data directory instead of a new one.
    pub fn dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Writes the files, loads the config, opens the store and enrols the
    /// cast: all but the gateway's state, for a test that builds its own
    /// authenticator from them.
    pub async fn prepare(self) -> Prepared {
        let dir = self.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies).unwrap();
        std::fs::write(policies.join(POLICY_FILE), &self.policy).unwrap();
        let config_file = self.config.map(|text| {
            let path = dir.path().join("countersign.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let overrides = Overrides {
            data_dir: Some(dir.path().to_path_buf()),
            policies: Some(policies),
            config_file,
            ..Overrides::default()
        };
        let config = Config::load(&overrides, &MapEnv(self.env.into_iter().collect())).unwrap();
        let store = match self.store {
            Some(store) => store,
            None => Arc::new(SqliteStore::open(&config.database_path()).unwrap()),
        };
        let tokens = self.cast.enrol(store.as_ref()).await;
        Prepared { dir, config, store, tokens, clock: self.clock }
    }

    /// The gateway, identifying callers by their local tokens.
    pub async fn start(self) -> Gateway {
        self.prepare().await.start().await
    }
}

/// A prepared gateway without its state yet (see [`Builder::prepare`]).
#[derive(Debug)]
pub struct Prepared {
    pub dir: TempDir,
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub tokens: Tokens,
    clock: Arc<dyn Clock>,
}

impl Prepared {
    /// Starts it, identifying callers by their local tokens.
    pub async fn start(self) -> Gateway {
        let auth = Arc::new(LocalTokens::new(self.store.clone()));
        self.start_with(auth).await
    }

    /// Starts it, identifying callers with `auth`.
    pub async fn start_with(self, auth: Arc<dyn Authenticator>) -> Gateway {
        let state = AppState::with_clock(self.config.gateway(), self.store.clone(), auth, self.clock).await.unwrap();
        Gateway {
            router: router(state.clone(), &self.config.server()),
            state,
            config: self.config,
            store: self.store,
            tokens: self.tokens,
            dir: self.dir,
        }
    }
}

/// A started gateway on its temporary directory.
#[derive(Debug)]
pub struct Gateway {
    pub state: AppState,
    /// The whole configuration it was started from (each crate's section).
    pub config: Config,
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub tokens: Tokens,
    pub dir: TempDir,
}

/// The standard gateway: [`POLICY`], the standard cast (see
/// [`standard_cast`]), and a 4 KiB body limit.
pub async fn gateway() -> Gateway {
    gateway_with(POLICY).await
}

/// The standard gateway under another policy.
pub async fn gateway_with(policy: &str) -> Gateway {
    gateway_configured(policy, &[("COUNTERSIGN_SERVER_BODY_LIMIT_BYTES", "4096")], Arc::new(SystemClock)).await
}

/// The standard cast under `policy`, with these `COUNTERSIGN_*` settings,
/// on `clock`.
pub async fn gateway_configured(policy: &str, env: &[(&str, &str)], clock: Arc<dyn Clock>) -> Gateway {
    Builder::new(policy).env(env).clock(clock).cast(standard_cast()).start().await
}

impl Gateway {
    /// `who`'s token.
    pub fn token(&self, who: &str) -> String {
        self.tokens.get(who).to_owned()
    }

    /// Serves the gateway, with `extra` routes merged in, on a new
    /// loopback port.
    pub async fn serve(&self, extra: Router) -> Served {
        Loopback::bind().await.serve(self.state.clone(), self.config.server(), extra)
    }

    /// Sends a request as `who` (None: anonymous) and returns status and JSON body.
    pub async fn call(&self, method: &str, path: &str, who: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let raw = body.map(|b| b.to_string());
        self.call_raw(method, path, who.map(|w| self.token(w)), raw).await
    }

    /// Sends a request with a bearer `token` and a raw body; returns the
    /// status and the body (as a JSON string if it is not JSON).
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

    /// The stored status of request `id`.
    pub async fn status_of(&self, id: &str) -> String {
        let request = self.store.request(id).await.unwrap().unwrap();
        request.status.as_str().to_owned()
    }

    /// Every audit event, after checking the chain verifies.
    pub async fn audit(&self) -> Vec<AuditEvent> {
        audit::verified(self.store.as_ref()).await
    }

    /// Refusals of `kind` by `actor` accounted for after flushing every
    /// count (see [`audit::refusals_accounted`]).
    pub async fn refusals_accounted(&self, kind: &str, actor: &str) -> u64 {
        audit::refusals_accounted(&self.state, kind, Some(actor)).await
    }

    /// The kinds of the audit events about request `id`, in order.
    pub async fn audit_types_for(&self, id: &str) -> Vec<String> {
        self.audit()
            .await
            .into_iter()
            .filter(|e| e.body_value().get("id").and_then(Value::as_str) == Some(id))
            .map(|e| e.kind)
            .collect()
    }
}
