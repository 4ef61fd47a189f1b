//! WebSockets through the proxy, with the real upstream (FastAPI's
//! WebSocket under uvicorn) and a real client (PyPI `websockets`,
//! tests/peers/http/ws_client.py): decided once at the upgrade — allowed,
//! denied, held then switched, held past the hold — the gateway's
//! credential alone reaching the API, bounded messages, a revoked key
//! closing an open WebSocket, and upgrade smuggling refused.

use std::io::{BufRead as _, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use countersign_core::{OutcomeStatus, Timestamp};
use countersign_store::RequestFilter;
use countersign_testkit::audit::bodies;
use serde_json::{json, Value};

use crate::support::{python, python_peers, raw, repo, Proxy, UPSTREAM_TOKEN};

/// The Python client, started: its output lines (one JSON object each).
struct Client {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Client {
    fn start(proxy: &Proxy, path: &str, step: &str, arg: Option<&str>) -> Self {
        let url = format!("{}/http/items{path}", proxy.base.replacen("http://", "ws://", 1));
        let script = repo().join("tests/peers/http/ws_client.py");
        let mut command = Command::new(python());
        command.arg(script).args([&url, &proxy.key, step]);
        if let Some(arg) = arg {
            command.arg(arg);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// The next line it prints (blocking: call from `spawn_blocking`).
    fn next(&mut self) -> Value {
        let line = self.lines.next().expect("the client printed nothing more").unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"))
    }

    async fn next_async(mut self) -> (Self, Value) {
        tokio::task::spawn_blocking(move || {
            let value = self.next();
            (self, value)
        })
        .await
        .unwrap()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one step to its single line of output.
async fn step(proxy: &Proxy, path: &str, step: &str, arg: Option<&str>) -> Value {
    Client::start(proxy, path, step, arg).next_async().await.1
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_websocket_echoes_with_the_gateways_credential_alone() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let out = step(&proxy, "/ws/echo", "echo", None).await;
    assert_eq!(out["text"], "hello", "{out}");
    assert_eq!(out["binary"], hex::encode(b"\x00\x01binary"), "{out}");
    assert_eq!(out["subprotocol"], "echo.v1", "{out}");
    assert_eq!(out["close_code"], 1000, "{out}");
    // The client never sees the API's credential.
    assert!(!out.to_string().contains(UPSTREAM_TOKEN), "{out}");
    let id = out["headers"]["countersign-request"].as_str().unwrap().to_owned();

    // The API saw the gateway's credential, never the agent's, and was
    // offered no extension (messages are never compressed on the way).
    let seen = proxy.upstream.seen().await;
    assert_eq!(seen["method"], "WS", "{seen}");
    assert_eq!(seen["credential_ok"], true, "{seen}");
    assert_eq!(seen["agent_key_seen"], false, "{seen}");
    assert_eq!(seen["cookie_seen"], false, "{seen}");
    assert!(!seen["headers"].as_array().unwrap().iter().any(|h| h == "sec-websocket-extensions"), "{seen}");
    assert_eq!(seen["subprotocols"], json!(["echo.v1"]), "{seen}");
    assert_eq!(proxy.upstream.calls("WS /ws/echo").await, 1);

    let request = proxy.with_outcome(&id).await;
    assert_eq!(request.status.as_str(), "allowed");
    assert_eq!(request.policies, ["items-websocket-echo"]);
    assert_eq!(request.action.payload["upgrade"], "websocket");
    assert_eq!(request.action.payload["method"], "GET");
    let outcome = request.outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Succeeded);
    let summary = outcome.summary.unwrap();
    assert_eq!(
        summary,
        "WebSocket (HTTP 101): 2 messages (13 bytes) to the API, 2 messages (13 bytes) back; closed by the client (1000)"
    );
    let reported = bodies(proxy.kit.store.as_ref(), "outcome.reported").await;
    assert!(reported.iter().any(|b| b["id"] == id.as_str()), "{reported:?}");
    assert!(!proxy.audit_text().await.contains(UPSTREAM_TOKEN));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_websocket_gets_403_naming_the_policy_and_never_reaches_the_api() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let out = step(&proxy, "/ws/admin", "refused", None).await;
    assert_eq!(out["status"], 403, "{out}");
    assert_eq!(out["body"]["error"]["code"], "denied", "{out}");
    assert_eq!(out["body"]["error"]["policies"], json!(["never-websocket-admin"]), "{out}");
    assert!(out["body"]["error"]["message"].as_str().unwrap().contains("never-websocket-admin"), "{out}");
    // A WebSocket is never read-only: the routine-reads rule does not let
    // an undeclared one through.
    let out = step(&proxy, "/ws/other", "refused", None).await;
    assert_eq!(out["status"], 403, "{out}");
    assert_eq!(out["body"]["error"]["code"], "denied", "{out}");
    assert_eq!(proxy.upstream.calls("WS /ws/admin").await, 0);
    assert_eq!(proxy.upstream.calls("WS /ws/other").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_websocket_is_switched_once_approved() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("30s").await;
    let (client, first) = Client::start(&proxy, "/ws/held", "hold", None).next_async().await;
    assert_eq!(first, json!({"connecting": true}));
    let request = proxy.pending().await;
    assert_eq!(request.action.payload["upgrade"], "websocket");
    assert_eq!(request.policies, ["items-websocket-held"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.upstream.calls("WS /ws/held").await, 0, "switched before approval");
    let (status, body) = proxy.kit.approve("alice", &request.id).await;
    assert_eq!(status, 200, "{body}");
    let (_client, out) = client.next_async().await;
    assert_eq!(out["text"], "hello", "{out}");
    assert_eq!(out["headers"]["countersign-request"], request.id.as_str(), "{out}");
    assert_eq!(proxy.upstream.calls("WS /ws/held").await, 1);
    let stored = proxy.with_outcome(&request.id).await;
    assert_eq!(stored.status.as_str(), "released");
    assert!(stored.outcome.unwrap().summary.unwrap().ends_with("closed by the client (1000)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_websocket_denied_or_held_past_the_hold_never_switches() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("3s").await;
    // Past the hold: withdrawn, 504 (it cannot be collected later).
    let out = step(&proxy, "/ws/held", "refused", None).await;
    assert_eq!(out["status"], 504, "{out}");
    assert_eq!(out["body"]["error"]["code"], "withdrawn", "{out}");
    let id = out["body"]["error"]["request"].as_str().unwrap().to_owned();
    assert_eq!(proxy.kit.status_of(&id).await, "cancelled");
    // Denied while held: 403.
    let client = Client::start(&proxy, "/ws/held", "refused", None);
    let request = proxy.pending().await;
    let (status, body) = proxy.kit.deny("alice", &request.id).await;
    assert_eq!(status, 200, "{body}");
    let (_client, out) = client.next_async().await;
    assert_eq!(out["status"], 403, "{out}");
    assert_eq!(out["body"]["error"]["code"], "denied", "{out}");
    assert_eq!(proxy.upstream.calls("WS /ws/held").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_leaves_while_its_websocket_is_held_withdraws_it() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("30s").await;
    let (client, _) = Client::start(&proxy, "/ws/held", "hold", None).next_async().await;
    let request = proxy.pending().await;
    drop(client);
    let mut status = String::new();
    for _ in 0..100 {
        status = proxy.kit.status_of(&request.id).await;
        if status != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "cancelled");
    let _ = proxy.kit.approve("alice", &request.id).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.upstream.calls("WS /ws/held").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_revoked_while_a_websocket_is_open_closes_it() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let (client, first) = Client::start(&proxy, "/ws/echo", "cut", None).next_async().await;
    assert_eq!(first["open"], true, "{first}");
    let id = first["headers"]["countersign-request"].as_str().unwrap().to_owned();
    proxy.kit.store.revoke_agent("bot", Timestamp::now(), Vec::new()).await.unwrap();
    let (_client, out) = client.next_async().await;
    assert_eq!(out["close_code"], 1008, "{out}");
    assert_eq!(out["close_reason"], "countersign: credential no longer accepted", "{out}");
    assert!(out["after"].as_f64().unwrap() < 4.0, "{out}");
    // 100 ticks were asked, 0.25 s apart: cut long before the end.
    assert!(out["ticks"].as_u64().unwrap() < 20, "{out}");
    let outcome = proxy.with_outcome(&id).await.outcome.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Failed);
    let summary = outcome.summary.unwrap();
    assert!(summary.ends_with("cut: the caller's credential is no longer accepted"), "{summary}");
    // The cut is in the audit log.
    let reported = bodies(proxy.kit.store.as_ref(), "outcome.reported").await;
    assert!(reported.iter().any(|b| b["id"] == id.as_str() && b.to_string().contains("cut:")), "{reported:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_over_the_limit_closes_the_websocket_with_1009() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    // The proxy's `max_body_bytes` is 256 KiB.
    let out = step(&proxy, "/ws/echo", "big", Some("300000")).await;
    assert_eq!(out["close_code"], 1009, "{out}");
    let filter = RequestFilter::default();
    let id = proxy.kit.store.list_requests(&filter).await.unwrap().into_iter().next().unwrap().id;
    let summary = proxy.with_outcome(&id).await.outcome.unwrap().summary.unwrap();
    assert!(summary.contains("a message from the client was over 262144 bytes"), "{summary}");
    // Under the limit it passes (and the API's own large answer too).
    let out = step(&proxy, "/ws/echo", "big", Some("200000")).await;
    assert_eq!(out["answered"], true, "{out}");
}

/// A handshake as sent, byte for byte, on a new connection.
fn handshake(proxy: &Proxy, head: &str, body: &str) -> String {
    let request = format!(
        "GET /http/items/ws/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n{head}\r\n{body}",
        proxy.key
    );
    raw(&proxy.addr(), request.as_bytes()).unwrap()
}

const KEY: &str = "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_smuggling_and_other_upgrades_are_refused_before_any_decision() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let smuggled = "DELETE /items/1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let cases: Vec<(String, String, &str)> = vec![
        // h2c (and any protocol but websocket): 501.
        (
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                .into(),
            String::new(),
            "501",
        ),
        ("Connection: Upgrade\r\nUpgrade: websocket, h2c\r\n".to_owned() + KEY, String::new(), "501"),
        ("Connection: Upgrade\r\nUpgrade: WebSocket/13\r\n".to_owned() + KEY, String::new(), "501"),
        ("Connection: Upgrade\r\nUpgrade: tls/1.2\r\n".into(), String::new(), "501"),
        // A websocket handshake with a request riding in its body: 400, connection closed.
        (
            format!("Connection: Upgrade\r\nUpgrade: websocket\r\n{KEY}Content-Length: {}\r\n", smuggled.len()),
            smuggled.to_owned(),
            "400",
        ),
        (
            format!("Connection: Upgrade\r\nUpgrade: websocket\r\n{KEY}Transfer-Encoding: chunked\r\n"),
            format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len()),
            "400",
        ),
        // A malformed handshake: no `Connection: Upgrade`, no key, a short key, a second version.
        ("Connection: keep-alive\r\nUpgrade: websocket\r\n".to_owned() + KEY, String::new(), "400"),
        ("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n".into(), String::new(), "400"),
        (
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n"
                .into(),
            String::new(),
            "400",
        ),
        (
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\n".to_owned() + KEY,
            String::new(),
            "400",
        ),
        // `Connection: Upgrade` alone.
        ("Connection: Upgrade\r\n".into(), String::new(), "501"),
    ];
    for (head, body, status) in &cases {
        let answer = handshake(&proxy, head, body);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{head}: {answer}");
        assert!(answer.contains("\"code\""), "{head}: {answer}");
        // One answer only: the body was never read as a request.
        assert_eq!(answer.lines().filter(|l| l.starts_with("HTTP/1.1 ")).count(), 1, "{head}: {answer}");
    }
    // A POST asking for a WebSocket.
    let post = format!(
        "POST /http/items/ws/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{KEY}Content-Length: 0\r\n\r\n",
        proxy.key
    );
    let answer = raw(&proxy.addr(), post.as_bytes()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // Nothing was decided, and nothing reached the API.
    let requests = proxy.kit.store.list_requests(&RequestFilter::default()).await.unwrap();
    assert!(requests.is_empty(), "{requests:?}");
    assert_eq!(proxy.upstream.calls("WS /ws/echo").await, 0);
    assert_eq!(proxy.upstream.calls("DELETE /items/1").await, 0);
    // A well-formed handshake on the same terms switches.
    let answer = handshake(&proxy, &("Connection: Upgrade\r\nUpgrade: websocket\r\n".to_owned() + KEY), "");
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{answer}");
}

/// A busy WebSocket (a message every millisecond) is cut as promptly:
/// its traffic never starves the check.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_websocket_is_cut_as_promptly() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let (client, first) = Client::start(&proxy, "/ws/echo", "cut", Some("flood 100000")).next_async().await;
    assert_eq!(first["open"], true, "{first}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.kit.store.revoke_agent("bot", Timestamp::now(), Vec::new()).await.unwrap();
    let (_client, out) = client.next_async().await;
    assert_eq!(out["close_code"], 1008, "{out}");
    assert!(out["after"].as_f64().unwrap() < 6.0, "{out}");
    assert!(out["ticks"].as_u64().unwrap() < 50_000, "{out}");
}

/// A client that stops reading stalls the gateway's writes to it; the cut
/// must not wait for them: the revoked key's stream ends (and its outcome
/// is recorded) while the client is still not reading.
#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_whose_client_stops_reading_is_still_cut() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let (_client, first) = Client::start(&proxy, "/ws/echo", "stall", Some("bulk 200")).next_async().await;
    assert_eq!(first["open"], true, "{first}");
    let id = first["headers"]["countersign-request"].as_str().unwrap().to_owned();
    // The upstream sends megabyte messages to a client that reads none.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let revoked = std::time::Instant::now();
    proxy.kit.store.revoke_agent("bot", Timestamp::now(), Vec::new()).await.unwrap();
    let outcome = proxy.with_outcome(&id).await.outcome.unwrap();
    assert!(revoked.elapsed() < Duration::from_secs(8), "cut after {:?}", revoked.elapsed());
    let summary = outcome.summary.unwrap();
    assert!(summary.ends_with("cut: the caller's credential is no longer accepted"), "{summary}");
}

/// The policy changes while a WebSocket and a streamed response are open,
/// so that they would now be denied: both are cut (the same check as a
/// revoked key), and their outcomes say why.
#[tokio::test(flavor = "multi_thread")]
async fn a_policy_that_now_denies_an_open_stream_cuts_it() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let client = countersign_testkit::client();
    let mut events = client.get(proxy.url("/events?count=40&every=0.25")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let events_id = events.headers()["countersign-request"].to_str().unwrap().to_owned();
    let (socket, first) = Client::start(&proxy, "/ws/echo", "cut", None).next_async().await;
    assert_eq!(first["open"], true, "{first}");
    let socket_id = first["headers"]["countersign-request"].as_str().unwrap().to_owned();
    // A reload that leaves other requests alone changes nothing.
    let file = proxy.kit.dir.path().join("policies").join(countersign_testkit::gateway::POLICY_FILE);
    let unrelated = format!(
        "{}\n@id(\"unrelated\")\nforbid (principal, action, resource) when {{ false }};\n",
        crate::support::POLICY
    );
    std::fs::write(&file, unrelated).unwrap();
    proxy.kit.state.reload_policies("test").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(events.chunk().await.unwrap().is_some(), "cut by a reload that does not deny it");
    // Now streams and WebSockets on this API are forbidden.
    let stricter = format!(
        "{}\n@id(\"no-streams-now\")\nforbid (principal, action == Action::\"http.request\", resource == Resource::\"items\")\nwhen {{ context.facts has http && (context.facts.http.path == \"/events\" || context.facts.http.websocket) }};\n",
        crate::support::POLICY
    );
    std::fs::write(&file, stricter).unwrap();
    proxy.kit.state.reload_policies("test").await.unwrap();
    let reloaded = std::time::Instant::now();
    let cut = loop {
        match events.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(cut, "the stream ended cleanly");
    assert!(reloaded.elapsed() < Duration::from_secs(4), "cut after {:?}", reloaded.elapsed());
    let (_socket, out) = socket.next_async().await;
    assert_eq!(out["close_code"], 1008, "{out}");
    assert_eq!(out["close_reason"], "countersign: no longer allowed", "{out}");
    for id in [&events_id, &socket_id] {
        let outcome = proxy.with_outcome(id).await.outcome.unwrap();
        assert_eq!(outcome.status, OutcomeStatus::Failed);
        let summary = outcome.summary.unwrap();
        assert!(
            summary.contains("cut: the policy in force now denies it") && summary.contains("no-streams-now"),
            "{summary}"
        );
    }
    // The key itself still works: only what the policy now denies was cut.
    let response = client.get(proxy.url("/items/1")).bearer_auth(&proxy.key).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_that_says_the_credential_in_a_message_has_it_masked() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    // The API answers `whoami` with the handshake's `Authorization`.
    let out = step(&proxy, "/ws/echo", "say", Some("whoami")).await;
    assert_eq!(out["answer"], format!("Bearer {}", "*".repeat(UPSTREAM_TOKEN.len())), "{out}");
    assert!(!out.to_string().contains(UPSTREAM_TOKEN), "{out}");
    let out = step(&proxy, "/ws/echo", "say", Some("hello")).await;
    assert_eq!(out["answer"], "hello", "{out}");
}
