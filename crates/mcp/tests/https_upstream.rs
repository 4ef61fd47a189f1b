//! A `url` upstream over https: reached only through the CA configured for
//! it, with the gateway's own bearer token, and never with the agent's key.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

const UPSTREAM_TOKEN: &str = "upstream-credential-7f3a";

/// A CA and a `localhost` certificate it issued, as PEM and as rustls wants.
struct Pki {
    ca_pem: String,
    acceptor: TlsAcceptor,
}

fn pki() -> Pki {
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

/// A minimal MCP server with one `echo` tool that notes every
/// `Authorization` header it is sent.
async fn start_upstream(acceptor: TlsAcceptor) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
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
                    json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "tls", "version": "1"}})
                }
                "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
                "tools/call" => {
                    json!({"content": [{"type": "text", "text": message["params"]["arguments"]["message"]}]})
                }
                _ => json!({}),
            };
            let body = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
            ([("content-type", "application/json"), ("mcp-session-id", "tls-session")], body).into_response()
        }
    };
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/mcp", tcp.local_addr().unwrap().port());
    let router = axum::Router::new().route("/mcp", axum::routing::post(handler));
    tokio::spawn(async move { axum::serve(TlsListener { tcp, acceptor }, router).await });
    (url, seen)
}

/// A gateway with two names for the same https upstream: `trusted` pins the
/// CA that issued its certificate, `distrusted` pins an unrelated one.
async fn start_gateway(dir: &std::path::Path, upstream_url: &str, ca: &str, other_ca: &str) -> (String, String) {
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("allow.cedar"),
        "permit (principal, action == Action::\"mcp.tool_call\", resource);\n",
    )
    .unwrap();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    std::fs::write(dir.join("other-ca.pem"), other_ca).unwrap();
    std::fs::write(dir.join("token"), format!("{UPSTREAM_TOKEN}\n")).unwrap();
    let config_file = dir.join("countersign.toml");
    let (ca_file, other_file, token_file) = (dir.join("ca.pem"), dir.join("other-ca.pem"), dir.join("token"));
    std::fs::write(
        &config_file,
        format!(
            "[mcp.upstreams.trusted]\nurl = {upstream_url:?}\nca_file = {ca_file:?}\nbearer_token_file = {token_file:?}\n\
             [mcp.upstreams.distrusted]\nurl = {upstream_url:?}\nca_file = {other_file:?}\nbearer_token_file = {token_file:?}\n"
        ),
    )
    .unwrap();
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
        .create_agent(agent, vec![AuditDraft::new("test", "identity.agent_created", json!({"name": "bot"}))])
        .await
        .unwrap();
    let state = AppState::new(config, store).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mcp = countersign_mcp::router(state.clone());
    tokio::spawn(countersign_server::serve_with(state, mcp, listener, std::future::pending::<()>()));
    (base, agent_key)
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    session: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut request = client
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, session, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn https_upstream_gets_the_gateways_credential_through_its_pinned_ca_only() {
    countersign_mcp::install_crypto_provider();
    let (served, unrelated) = (pki(), pki());
    let (upstream_url, seen) = start_upstream(served.acceptor).await;
    let dir = tempfile::tempdir().unwrap();
    let (base, agent_key) = start_gateway(dir.path(), &upstream_url, &served.ca_pem, &unrelated.ca_pem).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let url = format!("{base}/mcp/trusted");
    let (status, session, answer) = post(&client, &url, &agent_key, None, initialize.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "tls");
    let session = session.expect("the gateway hands out a session");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(post(&client, &url, &agent_key, Some(&session), list).await.0, 200);
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "over tls"}}});
    let (status, _, answer) = post(&client, &url, &agent_key, Some(&session), call).await;
    assert_eq!((status, &answer["result"]["content"][0]["text"]), (200, &json!("over tls")), "{answer}");

    let seen_headers = seen.lock().unwrap().clone();
    assert!(seen_headers.len() >= 3, "{seen_headers:?}");
    for header in &seen_headers {
        assert_eq!(header, &format!("Bearer {UPSTREAM_TOKEN}"), "the upstream must get the gateway's credential");
        assert!(!header.contains(&agent_key), "the agent's key must never reach the upstream");
    }

    // Pinned to a CA that did not issue the upstream's certificate: no
    // connection, a clear error, and the upstream never hears a request.
    let before = seen.lock().unwrap().len();
    let (status, _, answer) = post(&client, &format!("{base}/mcp/distrusted"), &agent_key, None, initialize).await;
    assert_eq!(status, 502, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`distrusted`") && message.contains("certificate is not trusted"), "{message}");
    assert_eq!(seen.lock().unwrap().len(), before);
}
