//! The MCP approval proxy end to end, with real peers: the Python and
//! TypeScript SDK clients, and server-everything (stdio and Streamable
//! HTTP), server-filesystem, mcp-server-time and mcp-server-git as
//! upstreams — over `countersign mcp` (stdio) and the gateway's
//! `/mcp/{upstream}` (Streamable HTTP, both `url` and `command` upstreams).
//! Cases: allowed, denied, pending then approved or denied, expiry,
//! cancellation, parallel calls, and an upstream crashing mid-call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod mcp_support;

use std::time::Duration;

use mcp_support::{
    everything_http, everything_stdio, filesystem, git_server, http_request, kill9, time_server, Driver, Gateway, Sdk,
};
use serde_json::{json, Value};

fn text(result: &Value) -> String {
    result["text"].as_str().unwrap_or_default().to_owned()
}

/// Every gating case against server-everything, upstream `name`.
fn everything_cases(d: &mut Driver, g: &Gateway, name: &str) {
    let sum = format!("{name}/get-sum");

    // Allowed: forwarded at once.
    d.call("echo", "echo", json!({"message": "hi"}), false);
    let r = d.result("echo");
    assert_eq!(text(&r), "Echo: hi");
    assert_eq!(r["isError"], false);

    // Denied: a normal tool result, isError, naming the policy.
    d.call("env", "get-env", json!({}), false);
    let r = d.result("env");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("no-env-dumps"), "{r}");

    // Pending, then approved: progress says who was asked and until when;
    // the real result arrives; the outcome is reported.
    d.call("sum", "get-sum", json!({"a": 1, "b": 2}), true);
    let id = g.pending(&sum);
    assert!(d.still_waiting("sum", Duration::from_millis(300)), "the call must wait for approval");
    g.approve(&id);
    let r = d.result("sum");
    assert!(text(&r).contains("is 3"), "{r}");
    let progress = r["progress"].as_array().cloned().unwrap_or_default();
    let first = progress.first().and_then(Value::as_str).unwrap_or_default();
    assert!(first.contains("sums-need-sre") && first.contains("sre") && first.contains("until"), "{r}");
    let view = g.wait_status(&id, "released", true);
    assert_eq!(view["outcome"]["status"], "succeeded", "{view}");
    assert_eq!(view["outcome"]["output_sha256"].as_str().map(str::len), Some(64), "{view}");
    assert_eq!(view["kind"], "mcp.tool_call");
    assert_eq!(view["payload"], json!({"a": 1, "b": 2}));
    assert_eq!(view["context"]["tool"]["title"], "Get Sum Tool", "{view}");

    // Pending, then denied: isError with the approver's words.
    d.call("sum2", "get-sum", json!({"a": 2, "b": 2}), false);
    let id = g.pending_matching(&sum, |p| p["a"] == 2);
    g.deny(&id, "not today");
    let r = d.result("sum2");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("denied") && text(&r).contains("not today"), "{r}");

    // Expiry: nobody decides within the policy's 2s.
    d.call("img", "get-tiny-image", json!({}), false);
    let r = d.result("img");
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("expired"), "{r}");

    // Parallel calls: each waits for its own decision.
    d.call("p1", "get-sum", json!({"a": 10, "b": 1}), false);
    d.call("p2", "get-sum", json!({"a": 20, "b": 2}), false);
    let id1 = g.pending_matching(&sum, |p| p["a"] == 10);
    let id2 = g.pending_matching(&sum, |p| p["a"] == 20);
    d.call("e2", "echo", json!({"message": "meanwhile"}), false);
    assert_eq!(text(&d.result("e2")), "Echo: meanwhile");
    g.approve(&id2);
    assert!(text(&d.result("p2")).contains("is 22"));
    assert!(d.still_waiting("p1", Duration::from_millis(200)));
    g.approve(&id1);
    assert!(text(&d.result("p1")).contains("is 11"));

    // Cancellation: the client's notifications/cancelled withdraws the request.
    d.call("c", "get-sum", json!({"a": 5, "b": 5}), false);
    let id = g.pending_matching(&sum, |p| p["a"] == 5);
    d.cancel("c");
    g.wait_status(&id, "cancelled", false);
}

#[test]
fn stdio_typescript_client_with_server_everything() {
    let g = Gateway::start("");
    let mut d = Driver::stdio(Sdk::TypeScript, &g, "everything", &everything_stdio());
    assert!(d.list().contains(&"get-sum".to_owned()));
    everything_cases(&mut d, &g, "everything");
    d.quit();
}

#[test]
fn stdio_python_client_with_time_git_and_filesystem() {
    let g = Gateway::start("");

    // mcp-server-time: the Python SDK negotiates the stateless 2026-07-28
    // protocol with it, straight through the proxy.
    let mut d = Driver::stdio(Sdk::Python, &g, "time", &time_server());
    assert_eq!(d.list(), ["get_current_time", "convert_time"]);
    d.call("now", "get_current_time", json!({"timezone": "UTC"}), false);
    assert!(text(&d.result("now")).contains("\"timezone\": \"UTC\""));
    d.call(
        "conv",
        "convert_time",
        json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Europe/Paris"}),
        false,
    );
    let r = d.result("conv");
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("no-env-dumps"), "{r}");
    d.quit();

    // mcp-server-git on a fresh repository.
    let repo = g.dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git").args(args).current_dir(&repo).output().unwrap().status.success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    let mut d = Driver::stdio(Sdk::Python, &g, "git", &git_server(&repo));
    d.call("st", "git_status", json!({"repo_path": repo.display().to_string()}), false);
    let r = d.result("st");
    assert!(text(&r).contains("README"), "{r}");
    // git_add is not routine: default deny.
    d.call("add", "git_add", json!({"repo_path": repo.display().to_string(), "files": ["README"]}), false);
    assert_eq!(d.result("add")["isError"], true);
    d.quit();

    // server-filesystem: its own hints decide; a write waits for an SRE and
    // does not happen before the approval.
    let files = g.dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a.txt"), "alpha").unwrap();
    let mut d = Driver::stdio(Sdk::Python, &g, "fs", &filesystem(&files));
    d.list();
    let a = files.join("a.txt").display().to_string();
    d.call("read", "read_text_file", json!({"path": a}), false);
    assert_eq!(text(&d.result("read")), "alpha");
    let b = files.join("b.txt");
    d.call("write", "write_file", json!({"path": b.display().to_string(), "content": "beta"}), false);
    let id = g.pending("fs/write_file");
    let view = g.show(&id);
    assert_eq!(view["context"]["tool"]["annotations"]["destructiveHint"], true, "{view}");
    assert!(d.still_waiting("write", Duration::from_millis(300)));
    assert!(!b.exists(), "the write happened before it was approved");
    g.approve(&id);
    let r = d.result("write");
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(std::fs::read_to_string(&b).unwrap(), "beta");
    g.wait_status(&id, "released", true);
    d.quit();
}

#[test]
fn stdio_upstream_crash_mid_call_is_a_clear_error() {
    let g = Gateway::start("");
    let mut d = Driver::stdio(Sdk::TypeScript, &g, "everything", &everything_stdio());
    d.call("long", "trigger-long-running-operation", json!({"duration": 30, "steps": 30}), true);
    std::thread::sleep(Duration::from_millis(500));
    let servers = mcp_support::descendants_matching(d.pid(), "server-everything");
    assert_eq!(servers.len(), 1, "{servers:?}");
    kill9(servers[0]);
    let outcome = d.outcome("long");
    assert_eq!(outcome["op"], "error", "{outcome}");
    let message = outcome["message"].as_str().unwrap_or_default();
    assert!(message.contains("upstream MCP server `everything`") || message.contains("closed"), "{outcome}");
    assert!(g.healthy());
}

fn http_config(everything_url: &str) -> String {
    let everything = everything_stdio().iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let time = time_server().iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    format!(
        "[mcp.upstreams.everything]\nurl = {everything_url:?}\n\n\
         [mcp.upstreams.spawned]\ncommand = [{everything}]\n\n\
         [mcp.upstreams.time]\ncommand = [{time}]\n"
    )
}

#[test]
fn http_url_upstream_with_typescript_and_python_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, url) = everything_http(&tmp.path().join("everything.log"));
    let g = Gateway::start(&http_config(&url));
    let mut d = Driver::http(Sdk::TypeScript, &g, "everything");
    assert!(d.list().contains(&"get-sum".to_owned()));
    everything_cases(&mut d, &g, "everything");
    d.quit();

    let mut d = Driver::http(Sdk::Python, &g, "everything");
    d.call("echo", "echo", json!({"message": "py"}), false);
    assert_eq!(text(&d.result("echo")), "Echo: py");
    d.call("sum", "get-sum", json!({"a": 3, "b": 4}), true);
    let id = g.pending_matching("everything/get-sum", |p| p["a"] == 3);
    g.approve(&id);
    let r = d.result("sum");
    assert!(text(&r).contains("is 7"), "{r}");
    assert!(!r["progress"].as_array().unwrap().is_empty(), "{r}");
    d.quit();
}

#[test]
fn http_command_upstreams_with_typescript_and_python_clients() {
    let g = Gateway::start(&http_config("http://127.0.0.1:9/unused"));
    let mut d = Driver::http(Sdk::TypeScript, &g, "spawned");
    assert!(d.list().contains(&"get-sum".to_owned()));
    everything_cases(&mut d, &g, "spawned");
    d.quit();

    let mut d = Driver::http(Sdk::Python, &g, "time");
    d.call("now", "get_current_time", json!({"timezone": "UTC"}), false);
    assert!(text(&d.result("now")).contains("UTC"));
    d.call(
        "conv",
        "convert_time",
        json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
        false,
    );
    assert_eq!(d.result("conv")["isError"], true);
    d.quit();
}

#[test]
fn http_upstream_crash_mid_call_leaves_the_gateway_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, url) = everything_http(&tmp.path().join("everything.log"));
    let g = Gateway::start(&http_config(&url));

    // A spawned server dies mid-call.
    let mut d = Driver::http(Sdk::TypeScript, &g, "spawned");
    d.call("long", "trigger-long-running-operation", json!({"duration": 30, "steps": 30}), true);
    std::thread::sleep(Duration::from_millis(700));
    let servers = g.children_matching("server-everything");
    assert_eq!(servers.len(), 1, "{servers:?}");
    kill9(servers[0]);
    let outcome = d.outcome("long");
    assert_eq!(outcome["op"], "error", "{outcome}");
    assert!(outcome["message"].as_str().unwrap_or_default().contains("upstream MCP server `spawned`"), "{outcome}");
    assert!(g.healthy());
    drop(d);
    // A new session gets a new server.
    let mut d = Driver::http(Sdk::TypeScript, &g, "spawned");
    d.call("echo", "echo", json!({"message": "again"}), false);
    assert_eq!(text(&d.result("echo")), "Echo: again");
    d.quit();

    // A url upstream dies mid-call.
    let mut d = Driver::http(Sdk::TypeScript, &g, "everything");
    d.call("long", "trigger-long-running-operation", json!({"duration": 30, "steps": 30}), true);
    std::thread::sleep(Duration::from_millis(700));
    let _ = server.0.kill();
    let outcome = d.outcome("long");
    assert_eq!(outcome["op"], "error", "{outcome}");
    assert!(g.healthy());
    d.call("echo", "echo", json!({"message": "down"}), false);
    assert_eq!(d.outcome("echo")["op"], "error");
    assert!(g.healthy());
}

#[test]
fn http_endpoint_checks_key_origin_and_session_owner() {
    let g = Gateway::start(&http_config("http://127.0.0.1:9/unused"));
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string();
    let accept = ("Accept", "application/json, text/event-stream");
    let json_ct = ("Content-Type", "application/json");

    let answer = http_request(&g.addr, "POST", "/mcp/time", &[accept, json_ct], &init);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.to_lowercase().contains("www-authenticate: bearer"), "{answer}");

    let bearer = format!("Bearer {}", g.agent);
    let auth = ("Authorization", bearer.as_str());
    let answer = http_request(
        &g.addr,
        "POST",
        "/mcp/time",
        &[accept, json_ct, auth, ("Origin", "http://evil.example.com")],
        &init,
    );
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");

    let answer = http_request(&g.addr, "POST", "/mcp/nope", &[accept, json_ct, auth], &init);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    let answer = http_request(
        &g.addr,
        "POST",
        "/mcp/time",
        &[accept, json_ct, auth, ("Origin", "http://localhost:3000")],
        &init,
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let session = answer
        .lines()
        .find_map(|l| {
            l.to_lowercase().starts_with("mcp-session-id:").then(|| l.split_once(':').unwrap().1.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session id: {answer}"));

    // Another agent cannot use this session.
    let data = g.dir.path().join("data");
    let out = countersign_testkit::process::Countersign::new(env!("CARGO_BIN_EXE_countersign"))
        .command()
        .args(["agents", "add", "other-bot", "--output", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let other: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`agents add` printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let other_bearer = format!("Bearer {}", other["token"].as_str().unwrap());
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let answer = http_request(
        &g.addr,
        "POST",
        "/mcp/time",
        &[
            accept,
            json_ct,
            ("Authorization", other_bearer.as_str()),
            ("Mcp-Session-Id", session.as_str()),
            ("MCP-Protocol-Version", "2025-06-18"),
        ],
        &list,
    );
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    // Its owner can.
    let answer = http_request(
        &g.addr,
        "POST",
        "/mcp/time",
        &[accept, json_ct, auth, ("Mcp-Session-Id", session.as_str()), ("MCP-Protocol-Version", "2025-06-18")],
        &list,
    );
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("get_current_time"), "{answer}");
    let answer = http_request(&g.addr, "DELETE", "/mcp/time", &[auth, ("Mcp-Session-Id", session.as_str())], "");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn http_hides_forbidden_tools_and_closes_idle_sessions() {
    let time = time_server().iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let g = Gateway::start(&format!(
        "[mcp]\nhide_forbidden_tools = true\nsession_idle_timeout = \"5s\"\n\n[mcp.upstreams.time]\ncommand = [{time}]\n"
    ));
    // convert_time is forbidden outright: left out of tools/list, and still
    // denied when called anyway.
    let mut d = Driver::http(Sdk::Python, &g, "time");
    assert_eq!(d.list(), ["get_current_time"]);
    d.call(
        "conv",
        "convert_time",
        json!({"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
        false,
    );
    assert_eq!(d.result("conv")["isError"], true);
    d.quit();

    // An idle session is closed, its server stopped, and its id refused.
    let bearer = format!("Bearer {}", g.agent);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string();
    let headers = [
        ("Accept", "application/json, text/event-stream"),
        ("Content-Type", "application/json"),
        ("Authorization", bearer.as_str()),
    ];
    let answer = http_request(&g.addr, "POST", "/mcp/time", &headers, &init);
    let session = answer
        .lines()
        .find_map(|l| {
            l.to_lowercase().starts_with("mcp-session-id:").then(|| l.split_once(':').unwrap().1.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session id: {answer}"));
    assert_eq!(g.children_matching("mcp-server-time").len(), 1);
    // Long enough past the timeout for the sweep to have run; the timeout
    // itself is long enough that a loaded machine's client, between its
    // own initialize and tools/list above, never looks idle.
    std::thread::sleep(Duration::from_millis(11_000));
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let mut with_session = headers.to_vec();
    with_session.push(("Mcp-Session-Id", session.as_str()));
    let answer = http_request(&g.addr, "POST", "/mcp/time", &with_session, &list);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let started = std::time::Instant::now();
    while !g.children_matching("mcp-server-time").is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "the idle session's server still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn http_command_upstream_streams_resume_after_a_lost_connection() {
    use std::io::{BufRead, BufReader, Write};

    let g = Gateway::start(&http_config("http://127.0.0.1:9/unused"));
    let bearer = format!("Bearer {}", g.agent);
    let accept = ("Accept", "application/json, text/event-stream");
    let json_ct = ("Content-Type", "application/json");
    let auth = ("Authorization", bearer.as_str());
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string();
    let answer = http_request(&g.addr, "POST", "/mcp/spawned", &[accept, json_ct, auth], &init);
    let session = answer
        .lines()
        .find_map(|l| {
            l.to_lowercase().starts_with("mcp-session-id:").then(|| l.split_once(':').unwrap().1.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no session id: {answer}"));
    let with_session =
        [accept, json_ct, auth, ("Mcp-Session-Id", session.as_str()), ("MCP-Protocol-Version", "2025-11-25")];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    assert!(http_request(&g.addr, "POST", "/mcp/spawned", &with_session, &initialized).starts_with("HTTP/1.1 202"));

    // A long call; the connection drops after its first progress event.
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 4},
        "_meta": {"progressToken": "p"}}})
    .to_string();
    let mut stream = std::net::TcpStream::connect(&g.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut request = format!("POST /mcp/spawned HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n", g.addr, call.len());
    for (name, value) in with_session {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&call);
    stream.write_all(request.as_bytes()).unwrap();
    let mut last_id = None;
    let mut saw_primer = false;
    for line in BufReader::new(&stream).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("id: ") {
            saw_primer |= id.ends_with("-0");
            last_id = Some(id.to_owned());
        }
        if line.starts_with("data: {") && line.contains("notifications/progress") {
            break;
        }
    }
    drop(stream);
    assert!(saw_primer, "no priming event");
    let last_id = last_id.unwrap();

    // Resumed: the rest of the stream, ending with the answer.
    let mut resume = vec![auth, ("Accept", "text/event-stream"), ("Mcp-Session-Id", session.as_str())];
    resume.push(("MCP-Protocol-Version", "2025-11-25"));
    resume.push(("Last-Event-ID", last_id.as_str()));
    let answer = mcp_support::http_get(&g.addr, "/mcp/spawned", &resume);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"id\":7") && answer.contains("Long running operation completed"), "{answer}");
    assert!(answer.contains("notifications/progress"), "{answer}");
}

#[test]
fn stdio_refuses_every_malformed_message_and_audits_it_at_the_gateway() {
    let g = Gateway::start("");
    let log = g.dir.path().join("fake.log");
    let server = mcp_support::fake_server(g.dir.path(), &log, false);
    let mut p = mcp_support::RawStdio::start(&g, "fake", &server);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    p.send_line(&init.to_string());
    assert_eq!(p.next(Duration::from_secs(30)).unwrap()["id"], 1);
    let shapes = mcp_support::shapes::malformed_messages();
    for (what, line) in &shapes {
        p.send_line(line);
        let answer = p.next(Duration::from_secs(30)).unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(answer["error"]["code"].is_i64(), "{what}: {answer}");
    }
    // A ping after them is the next thing the server reads.
    p.send_line(&json!({"jsonrpc": "2.0", "id": 40, "method": "ping"}).to_string());
    assert_eq!(p.next(Duration::from_secs(30)).unwrap()["id"], 40);
    let read = std::fs::read_to_string(&log).unwrap();
    let methods: Vec<Value> =
        read.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["method"].clone()).collect();
    assert_eq!(methods, [json!("initialize"), json!("ping")], "the server was sent {read}");

    // Each refusal is audited at the gateway, bounded.
    let started = std::time::Instant::now();
    loop {
        let rejected: Vec<Value> =
            g.audited("request.rejected").into_iter().filter(|r| r["transport"] == "stdio").collect();
        if rejected.len() >= shapes.len() {
            assert_eq!(rejected.len(), shapes.len());
            assert!(rejected.iter().all(|r| r["path"] == "/mcp/fake" && r.to_string().len() < 1024), "{rejected:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} of {} audited", rejected.len(), shapes.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stdio_drops_answers_the_upstream_was_never_asked_for() {
    let g = Gateway::start("");
    let log = g.dir.path().join("fake.log");
    let server = mcp_support::fake_server(g.dir.path(), &log, true);
    let mut p = mcp_support::RawStdio::start(&g, "fake", &server);
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    p.send_line(&init.to_string());
    assert_eq!(p.next(Duration::from_secs(30)).unwrap()["id"], 1);
    // Call 5 waits for an SRE; the hostile server answers it anyway when
    // it is pinged (and floods the pipe with what must not pass).
    let sum = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "get-sum", "arguments": {"a": 1, "b": 2}}});
    p.send_line(&sum.to_string());
    let id = g.pending("fake/get-sum");
    p.send_line(&json!({"jsonrpc": "2.0", "id": 6, "method": "ping"}).to_string());
    assert_eq!(p.next(Duration::from_secs(60)).unwrap(), json!({"jsonrpc": "2.0", "id": 6, "result": {}}));
    assert!(p.next(Duration::from_millis(700)).is_none(), "nothing else may reach the client");
    assert_eq!(g.show(&id)["status"], "pending", "call 5 still waits");

    let started = std::time::Instant::now();
    loop {
        let dropped = g.audited("mcp.upstream_message_dropped");
        if dropped.len() >= 8 {
            assert_eq!(dropped.len(), 8, "{dropped:#?}");
            assert!(dropped.iter().any(|d| d["message"].as_str().unwrap_or("").contains("held for approval")));
            assert!(dropped.iter().all(|d| d.to_string().len() < 1024));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "only {} audited: {dropped:#?}", dropped.len());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The approval still works, and the real answer reaches the client.
    g.approve(&id);
    let answer = p.next(Duration::from_secs(30)).unwrap();
    assert_eq!(answer["id"], 5, "{answer}");
    assert!(answer["result"]["content"][0]["text"].as_str().unwrap().starts_with("ran "), "{answer}");
}
