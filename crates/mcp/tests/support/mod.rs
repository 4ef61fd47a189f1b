//! In-process peers for the MCP proxy's tests: a minimal MCP server (plain
//! or TLS) that notes the `Authorization` headers it is sent, an approval
//! loop that holds every call, and the test kit's gateway (a real SQLite
//! store) serving `/mcp/{upstream}`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use countersign_gateway::AppState;
use countersign_store::Store;
use countersign_testkit::{Builder, Cast, Served};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

mod held;
mod shapes;
#[allow(unused_imports)]
pub use held::{pending_ticket, Held};
#[allow(unused_imports)]
pub use shapes::{fake_server, malformed_messages, FAKE_SERVER};

/// A CA and a `localhost` certificate it issued, as PEM and as rustls wants.
pub struct Pki {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

pub fn pki() -> Pki {
    let (ca_pem, config) = countersign_testkit::tls::pki();
    Pki { ca_pem, acceptor: TlsAcceptor::from(Arc::new(config)) }
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
    _served: Served,
    pub base: String,
    pub agent_key: String,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    _kit: countersign_testkit::Gateway,
}

/// Allows every tool call.
const ALLOW_ALL: &str = "permit (principal, action == Action::\"mcp.tool_call\", resource);\n";

/// Starts a gateway with `mcp_config` (TOML) and a policy that allows
/// every tool call.
pub async fn start_gateway(mcp_config: &str) -> Gateway {
    start(Builder::new(ALLOW_ALL), mcp_config).await
}

/// As [`start_gateway`], with its data in `dir`.
pub async fn start_gateway_in(dir: TempDir, mcp_config: &str) -> Gateway {
    start(Builder::new(ALLOW_ALL).dir(dir), mcp_config).await
}

/// As [`start_gateway`], under `policy` (Cedar) instead of allow-all.
pub async fn start_gateway_with_policy(mcp_config: &str, policy: &str) -> Gateway {
    start(Builder::new(policy), mcp_config).await
}

/// The gateway with one agent, `bot`, serving `/mcp/{upstream}`.
async fn start(builder: Builder, mcp_config: &str) -> Gateway {
    let kit = builder.config(mcp_config).cast(Cast::new().agent("bot", None, &[])).start().await;
    let served = kit
        .serve(countersign_mcp::router(kit.state.clone(), kit.config.mcp.clone(), kit.config.body_limit_bytes))
        .await;
    Gateway {
        base: served.url.clone(),
        _served: served,
        agent_key: kit.token("bot"),
        store: kit.store.clone(),
        state: kit.state.clone(),
        _kit: kit,
    }
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

/// Audit events of `kind`, their bodies.
#[allow(unused_imports)]
pub use countersign_testkit::audit::bodies as audited;

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
