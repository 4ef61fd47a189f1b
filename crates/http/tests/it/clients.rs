//! Real clients through the proxy: curl, Python's httpx and requests
//! (tests/peers/http/clients.py), and Node's built-in `fetch`
//! (tests/peers/http/client.mjs), each reading, streaming, being refused,
//! and (Python) waiting for an approval with `Prefer: respond-async`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::support::{present, python_peers, repo, Proxy};

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn installed(program: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok_and(|o| o.status.success());
    present(program, found)
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_reads_streams_and_is_refused() {
    if !python_peers() || !installed("curl") {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let auth = format!("Authorization: Bearer {}", proxy.key);
    let body = run("curl", &["-sS", "-H", &auth, &proxy.url("/items/1")]);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"id": "1", "name": "first"}));
    let events = run("curl", &["-sS", "-N", "-H", &auth, &proxy.url("/events?count=3&every=0.1")]);
    assert_eq!(events.matches("data: tick").count(), 3, "{events}");
    let denied =
        run("curl", &["-sS", "-X", "DELETE", "-H", &auth, "-w", "\n%{http_code}", &proxy.url("/items/protected")]);
    let (json_text, status) = denied.rsplit_once('\n').unwrap();
    assert_eq!(status, "403");
    let denied: Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(denied["error"]["policies"], json!(["never-delete-protected"]));
    // curl with a body and `Expect: 100-continue` (its default for larger bodies).
    let big = format!("{{\"id\": \"big\", \"name\": \"{}\"}}", "x".repeat(2_000));
    let accepted = run(
        "curl",
        &[
            "-sS",
            "-H",
            &auth,
            "-H",
            "content-type: application/json",
            "-H",
            "prefer: respond-async",
            "-H",
            "expect: 100-continue",
            "--data-binary",
            &big,
            "-w",
            "\n%{http_code}",
            &proxy.url("/items"),
        ],
    );
    assert_eq!(accepted.rsplit_once('\n').unwrap().1, "202", "{accepted}");
    let request = proxy.pending().await;
    assert_eq!(request.action.payload["body"]["id"], "big");
    assert_eq!(proxy.upstream.calls("DELETE /items/protected").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_httpx_and_requests_read_stream_and_are_refused() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let python = repo().join(".venv-http/bin/python");
    let script = repo().join("tests/peers/http/clients.py");
    let out = run(python.to_str().unwrap(), &[script.to_str().unwrap(), &proxy.base, &proxy.key, "read"]);
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out["httpx_get"]["status"], 200, "{out}");
    assert_eq!(out["httpx_get"]["body"], json!({"id": "1", "name": "first"}));
    assert_eq!(out["httpx_sse_status"], 200);
    assert_eq!(out["httpx_sse"], json!(["data: tick 0", "data: tick 1", "data: tick 2"]));
    assert_eq!(out["requests_get"]["status"], 200);
    assert_eq!(out["requests_denied"]["status"], 403);
    assert_eq!(out["requests_denied"]["body"]["error"]["policies"], json!(["never-delete-protected"]));
    let id = out["httpx_get"]["request"].as_str().unwrap();
    assert_eq!(proxy.with_outcome(id).await.outcome.unwrap().summary.unwrap().split(';').next(), Some("HTTP 200"));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_requests_waits_with_respond_async_and_collects_once() {
    if !python_peers() {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let python = repo().join(".venv-http/bin/python");
    let script = repo().join("tests/peers/http/clients.py");
    let mut child = Command::new(python)
        .args([script.to_str().unwrap(), &proxy.base, &proxy.key, "async"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let id = first["request"].as_str().unwrap();
    assert_eq!(proxy.upstream.calls("POST /items").await, 0);
    let (status, _) = proxy.kit.approve("alice", id).await;
    assert_eq!(status, 200);
    let out: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out["accepted"]["status"], 202, "{out}");
    assert_eq!(out["collected"]["status"], 201, "{out}");
    assert_eq!(out["collected"]["body"], json!({"id": "py", "name": "from python"}));
    assert_eq!(out["again"], 404);
    assert_eq!(proxy.upstream.calls("POST /items").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn node_fetch_reads_streams_and_is_refused() {
    if !python_peers() || !installed("node") {
        return;
    }
    let proxy = Proxy::start("20s").await;
    let script = repo().join("tests/peers/http/client.mjs");
    let out = run("node", &[script.to_str().unwrap(), &proxy.base, &proxy.key]);
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out["get"]["status"], 200, "{out}");
    assert_eq!(out["get"]["body"], json!({"id": "1", "name": "first"}));
    assert_eq!(out["sse_status"], 200);
    let parts = out["sse"].as_array().unwrap();
    let text: String = parts.iter().map(|p| p["text"].as_str().unwrap()).collect();
    assert_eq!(text.matches("data: tick").count(), 3, "{text}");
    // Streamed: the parts came over time, not at once at the end.
    let at = |needle: &str| parts.iter().find(|p| p["text"].as_str().unwrap().contains(needle)).unwrap()["at"].as_u64();
    assert!(at("tick 2").unwrap() >= at("tick 0").unwrap() + 400, "{parts:?}");
    assert_eq!(out["denied"]["status"], 403);
    assert_eq!(out["denied"]["body"]["error"]["code"], "denied");
    assert_eq!(out["anonymous"]["status"], 401);
    assert_eq!(out["anonymous"]["body"]["error"]["code"], "unauthenticated");
}
