//! In-process peers for the MCP proxy's tests: a minimal MCP server (plain
//! or TLS) that notes the `Authorization` headers it is sent, and a
//! gateway with a real SQLite store serving `/mcp/{upstream}`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use countersign_audit::AuditDraft;
use countersign_core::{PrincipalKind, Timestamp};
use countersign_server::auth::new_token;
use countersign_server::config::{Config, MapEnv, Overrides};
use countersign_server::AppState;
use countersign_store::{NewAgent, Store};
use countersign_store_sqlite::SqliteStore;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

mod shapes;
#[allow(unused_imports)]
pub use shapes::{malformed_messages, FAKE_SERVER};

/// A CA and a `localhost` certificate it issued, as PEM and as rustls wants.
pub struct Pki {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

pub fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    Pki { ca_pem: ca.pem(), acceptor: TlsAcceptor::from(Arc::new(config)) }
}

/// axum over TLS: handshakes that fail (the gateway distrusting us) are
/// dropped and the next connection is taken.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// What the stub upstream was sent: each request's `Authorization` header.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// A minimal MCP server with one `echo` tool, over TLS when given an
/// acceptor. Returns its URL and what it was sent.
pub async fn start_upstream(tls: Option<TlsAcceptor>) -> (String, Seen) {
    let seen = Seen::default();
    let seen_by_handler = seen.clone();
    let handler = move |headers: HeaderMap, body: Bytes| {
        let seen = seen_by_handler.clone();
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("(none)").to_owned();
            seen.lock().unwrap().push(auth);
            let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let Some(id) = message.get("id").cloned() else {
                return axum::http::StatusCode::ACCEPTED.into_response();
            };
            let result = match message["method"].as_str().unwrap_or("") {
                "initialize" => {
                    json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "stub", "version": "1"}})
                }
                "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
                "tools/call" => {
                    json!({"content": [{"type": "text", "text": message["params"]["arguments"]["message"]}]})
                }
                _ => json!({}),
            };
            let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
            ([("content-type", "application/json"), ("mcp-session-id", "stub-session")], body).into_response()
        }
    };
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let router = axum::Router::new().route("/mcp", axum::routing::post(handler));
    let url = match tls {
        Some(acceptor) => {
            tokio::spawn(async move { axum::serve(TlsListener { tcp, acceptor }, router).await });
            format!("https://localhost:{port}/mcp")
        }
        None => {
            tokio::spawn(async move { axum::serve(tcp, router).await });
            format!("http://127.0.0.1:{port}/mcp")
        }
    };
    (url, seen)
}

/// A running gateway: its base URL, an agent key, and its store.
pub struct Gateway {
    pub base: String,
    pub agent_key: String,
    pub store: Arc<dyn Store>,
    pub state: AppState,
}

/// Starts a gateway on `dir` with `mcp_config` (TOML) and a policy that
/// allows every tool call.
pub async fn start_gateway(dir: &Path, mcp_config: &str) -> Gateway {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("allow.cedar"),
        "permit (principal, action == Action::\"mcp.tool_call\", resource);\n",
    )
    .unwrap();
    start_gateway_inner(dir, mcp_config).await
}

async fn start_gateway_inner(dir: &Path, mcp_config: &str) -> Gateway {
    let policies = dir.join("policies");
    let config_file = dir.join("countersign.toml");
    std::fs::write(&config_file, mcp_config).unwrap();
    let overrides = Overrides {
        data_dir: Some(dir.join("data")),
        policies: Some(policies),
        config_file: Some(config_file),
        ..Overrides::default()
    };
    let config = Config::load(&overrides, &MapEnv(Default::default())).unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.database_path()).unwrap());
    let (agent_key, hash) = new_token(PrincipalKind::Agent);
    let agent =
        NewAgent { name: "bot".into(), owner: None, groups: vec![], token_hash: hash, created_at: Timestamp::now() };
    store
        .create_agent(agent, vec![AuditDraft::raw("test", "identity.agent_created", json!({"name": "bot"}))])
        .await
        .unwrap();
    let state = AppState::new(config, store.clone()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mcp = countersign_mcp::router(state.clone());
    tokio::spawn(countersign_server::serve_with(state.clone(), mcp, listener, std::future::pending::<()>()));
    Gateway { base, agent_key, store, state }
}

pub fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

/// POSTs one message with the agent's key; returns status, session id and body.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut request = client
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, session, response.json().await.unwrap_or(Value::Null))
}

/// The Python interpreter's absolute path (servers spawned by the gateway
/// get a minimal environment, in which a shim may not work).
pub fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is needed for the fake MCP server");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Writes the fake server to `dir`; returns the command that runs it,
/// logging to `log`.
pub fn fake_server(dir: &Path, log: &Path, hostile: bool) -> Vec<String> {
    let script = dir.join("fake_server.py");
    std::fs::write(&script, FAKE_SERVER).unwrap();
    let mut command = vec![python(), script.display().to_string(), log.display().to_string()];
    if hostile {
        command.push("hostile".to_owned());
    }
    command
}

/// As [`start_gateway`], under `policy` (Cedar) instead of allow-all.
pub async fn start_gateway_with_policy(dir: &Path, mcp_config: &str, policy: &str) -> Gateway {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("allow.cedar"), policy).unwrap();
    start_gateway_inner(dir, mcp_config).await
}

/// Audit events of `kind`, their bodies.
pub async fn audited(store: &dyn Store, kind: &str) -> Vec<Value> {
    let events = store.audit_events(0, 100_000).await.unwrap();
    events.into_iter().filter(|e| e.kind == kind).map(|e| serde_json::from_str(&e.body).unwrap()).collect()
}

/// POSTs a raw body with the agent's key; returns status and body text.
pub async fn post_raw(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    session: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut request = client
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_owned());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}
