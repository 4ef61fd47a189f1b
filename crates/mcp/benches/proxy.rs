//! The MCP proxy's cost, measured side by side in one run:
//! `cargo bench -p countersign-mcp --bench proxy`.
//!
//! - latency: an allowed `tools/call` made direct to an upstream and the
//!   same call through the gateway's `/mcp/{upstream}`, alternating, one
//!   connection each (p50, p99, and the difference);
//! - throughput: allowed calls per second through one gateway with many
//!   concurrent clients (each call is decided, audited durably, forwarded,
//!   and its outcome reported and audited);
//! - memory: resident memory per idle session.
//!
//! The upstream is a minimal Streamable HTTP MCP server in the same process,
//! so that what is measured is the proxy, not a server's own work. The
//! gateway runs with its real SQLite store (durable audit, fsync).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

// The same allocator as the `countersign` binary, so the figures are the
// shipped gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A minimal MCP server: sessions, `tools/list`, and an `echo` tool.
async fn upstream(headers: HeaderMap, body: Bytes) -> Response {
    static SESSIONS: AtomicU64 = AtomicU64::new(0);
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let method = message["method"].as_str().unwrap_or("");
    let result = match method {
        "initialize" => {
            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "bench", "version": "1"}})
        }
        "tools/list" => {
            json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}]})
        }
        "tools/call" => json!({"content": [{"type": "text", "text": message["params"]["arguments"]["message"]}]}),
        _ => json!({}),
    };
    let mut response =
        ([("content-type", "application/json")], json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string())
            .into_response();
    if method == "initialize" {
        let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
        response.headers_mut().insert("mcp-session-id", format!("s{n}").parse().unwrap());
    } else if let Some(session) = headers.get("mcp-session-id") {
        response.headers_mut().insert("mcp-session-id", session.clone());
    }
    response
}

struct Endpoint {
    url: String,
    session: String,
    bearer: Option<String>,
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    session: Option<&str>,
    body: &Value,
) -> (Option<String>, Value) {
    let mut request = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let session = response.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    (session, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn open(client: &reqwest::Client, url: &str, bearer: Option<&str>) -> Endpoint {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    let (session, _) = post(client, url, bearer, None, &init).await;
    let endpoint = Endpoint { url: url.to_owned(), session: session.unwrap(), bearer: bearer.map(str::to_owned) };
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    post(client, url, bearer, Some(&endpoint.session), &list).await;
    endpoint
}

async fn call(client: &reqwest::Client, endpoint: &Endpoint, n: u64) -> Duration {
    let body = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": format!("m{n}")}}});
    let started = Instant::now();
    let (_, answer) = post(client, &endpoint.url, endpoint.bearer.as_deref(), Some(&endpoint.session), &body).await;
    let elapsed = started.elapsed();
    assert_eq!(answer["result"]["content"][0]["text"], format!("m{n}"), "{answer}");
    elapsed
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at].as_secs_f64() * 1000.0
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    countersign_mcp::install_crypto_provider();
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}/mcp", upstream_listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(upstream_listener, axum::Router::new().route("/mcp", axum::routing::post(upstream))).await
    });

    let dir = tempfile::tempdir().unwrap();
    let config = format!("[mcp]\nmax_sessions = 100000\n[mcp.upstreams.bench]\nurl = {upstream_url:?}\n");
    let gateway = support::start_gateway(dir.path(), &config).await;
    let agent_key = gateway.agent_key.clone();
    let proxied_url = format!("{}/mcp/bench", gateway.base);

    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build().unwrap();
    let direct = open(&client, &upstream_url, None).await;
    let proxied = open(&client, &proxied_url, Some(&agent_key)).await;

    // Latency, side by side.
    let rounds: u64 = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    for n in 0..200 {
        call(&client, &direct, n).await;
        call(&client, &proxied, n).await;
    }
    // The floor: the same decision made over the gateway's own API.
    let api_url = proxied_url.replace("/mcp/bench", "/v1/actions");
    let decide = |n: u64| {
        let client = client.clone();
        let api_url = api_url.clone();
        let key = agent_key.clone();
        async move {
            let action =
                json!({"kind": "mcp.tool_call", "resource": "bench/echo", "payload": {"message": format!("m{n}")}});
            let started = Instant::now();
            let response = client.post(&api_url).bearer_auth(&key).json(&action).send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
            started.elapsed()
        }
    };
    let (mut d, mut p, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..rounds {
        d.push(call(&client, &direct, n).await);
        p.push(call(&client, &proxied, n).await);
        a.push(decide(n).await);
    }
    d.sort();
    p.sort();
    a.sort();
    let (d50, d99, p50, p99) = (percentile(&d, 0.5), percentile(&d, 0.99), percentile(&p, 0.5), percentile(&p, 0.99));
    println!("latency, allowed tools/call, 1 connection, n={rounds} each:");
    println!("  direct      p50 {d50:.3} ms  p99 {d99:.3} ms");
    println!("  proxied     p50 {p50:.3} ms  p99 {p99:.3} ms");
    println!("  added       p50 {:.3} ms  p99 {:.3} ms", p50 - d50, p99 - d99);
    println!(
        "  for comparison, the decision alone (POST /v1/actions, allowed, durable audit): p50 {:.3} ms  p99 {:.3} ms",
        percentile(&a, 0.5),
        percentile(&a, 0.99)
    );

    // Throughput through one gateway.
    for (label, target) in [("direct", &direct), ("proxied", &proxied)] {
        let concurrency = 64;
        let seconds = 5;
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let client = client.clone();
            let endpoint =
                Endpoint { url: target.url.clone(), session: target.session.clone(), bearer: target.bearer.clone() };
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = worker * 1_000_000;
                while Instant::now() < deadline {
                    call(&client, &endpoint, n).await;
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let total = done.load(Ordering::Relaxed);
        println!(
            "throughput, {label}: {:.0} allowed calls/s ({concurrency} concurrent clients, {seconds}s)",
            total as f64 / seconds as f64
        );
    }

    // Memory per idle session (the gateway and the upstream share this
    // process; the upstream keeps nothing per session).
    let sessions = 2000;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib();
    let mut open_sessions = HashMap::new();
    for i in 0..sessions {
        let endpoint = open(&client, &proxied_url, Some(&agent_key)).await;
        open_sessions.insert(i, endpoint.session);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib();
    println!(
        "memory: {sessions} idle sessions (initialized, tools listed) add {} KiB resident, {:.1} KiB per session",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / sessions as f64
    );
}
