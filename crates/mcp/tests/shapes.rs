//! Every message that is not one valid JSON-RPC 2.0 message — above all a
//! `tools/call` with an id a peer could read differently — is refused on
//! every transport: answered with an error, audited, and never seen by the
//! upstream. Run against a `url` upstream (a recording stub), a `command`
//! upstream (a recording stdio server) and the stdio relay itself.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use countersign_mcp::refusal::Refusal;
use countersign_mcp::relay::{Message, Options, Relay};
use serde_json::{json, Value};
use support::{
    audited, fake_server, initialize, malformed_messages, post, post_raw, start_gateway, start_upstream, Held,
};

/// These tests look for each refusal's own record: the gateway records
/// the first few refusals of a source in a window one by one and counts
/// the rest, so the window here holds them all.
const RECORD_EVERY_REFUSAL: &str = "[server]\nrefusals_recorded_per_window = 1000\n";

#[tokio::test]
async fn url_upstream_refuses_every_malformed_message_and_audits_it() {
    countersign_mcp::install_crypto_provider();
    let (upstream_url, seen) = start_upstream(None).await;
    let gateway = start_gateway(&format!("{RECORD_EVERY_REFUSAL}[mcp.upstreams.web]\nurl = {upstream_url:?}\n")).await;
    let url = format!("{}/mcp/web", gateway.base);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, session, _) = post(&client, &url, &gateway.agent_key, &[], initialize()).await;
    assert_eq!(status, 200);
    let session = session.unwrap();

    for with_session in [Some(session.as_str()), None] {
        for (what, body) in malformed_messages() {
            let forwarded = seen.lock().unwrap().len();
            let refused = audited(gateway.store.as_ref(), "request.rejected").await.len();
            let (status, answer) = post_raw(&client, &url, &gateway.agent_key, with_session, &body).await;
            assert_eq!(status, 400, "{what}: {answer}");
            let answer: Value = serde_json::from_str(&answer).unwrap();
            assert!(answer["error"]["code"].is_i64(), "{what}: {answer}");
            assert_eq!(seen.lock().unwrap().len(), forwarded, "{what} reached the upstream");
            let rejected = audited(gateway.store.as_ref(), "request.rejected").await;
            assert_eq!(rejected.len(), refused + 1, "{what} was not audited");
            let last = rejected.last().unwrap();
            assert_eq!((&last["path"], &last["status"]), (&json!("/mcp/web"), &json!(400)), "{what}");
        }
    }

    // A well-formed call still goes through, decided.
    let call = json!({"jsonrpc": "2.0", "id": 20, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "ok"}}});
    let (status, _, answer) = post(&client, &url, &gateway.agent_key, &[("mcp-session-id", &session)], call).await;
    assert_eq!((status, &answer["result"]["content"][0]["text"]), (200, &json!("ok")), "{answer}");
    assert_eq!(audited(gateway.store.as_ref(), "action.submitted").await.len(), 1);
}

#[tokio::test]
async fn command_upstream_refuses_every_malformed_message_and_audits_it() {
    countersign_mcp::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let command = fake_server(dir.path(), &log, false);
    let command = command.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
    let gateway = start_gateway(&format!("{RECORD_EVERY_REFUSAL}[mcp.upstreams.local]\ncommand = [{command}]\n")).await;
    let url = format!("{}/mcp/local", gateway.base);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, session) = {
        let response = client
            .post(&url)
            .bearer_auth(&gateway.agent_key)
            .header("accept", "application/json")
            .json(&initialize())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.headers().get("mcp-session-id").unwrap().to_str().unwrap().to_owned())
    };
    assert_eq!(status, 200);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let lines_before = read_log().lines().count();

    for (what, body) in malformed_messages() {
        let refused = audited(gateway.store.as_ref(), "request.rejected").await.len();
        let (status, answer) = post_raw(&client, &url, &gateway.agent_key, Some(&session), &body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        let rejected = audited(gateway.store.as_ref(), "request.rejected").await;
        assert_eq!(rejected.len(), refused + 1, "{what} was not audited");
    }
    // The server saw none of it (a ping after them is the next line it reads).
    let ping = json!({"jsonrpc": "2.0", "id": 30, "method": "ping"}).to_string();
    let (status, answer) = post_raw(&client, &url, &gateway.agent_key, Some(&session), &ping).await;
    assert_eq!(status, 200, "{answer}");
    let log_text = read_log();
    let after: Vec<&str> = log_text.lines().skip(lines_before).collect();
    assert_eq!(after.len(), 1, "the server was sent {after:?}");
    assert!(after[0].contains("\"ping\""), "{after:?}");
}

async fn refusals_reach(held: &Held, count: usize) -> Vec<Refusal> {
    for _ in 0..500 {
        let now = held.refused.lock().unwrap().clone();
        if now.len() >= count {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.refused.lock().unwrap().clone()
}

#[tokio::test]
async fn the_stdio_relay_refuses_every_malformed_message_and_audits_it() {
    let held = Arc::new(Held::default());
    let (relay, mut to_upstream, mut to_client) = Relay::new("u", "stdio", held.clone(), Options::default());
    let shapes = malformed_messages();
    for (n, (what, text)) in shapes.iter().enumerate() {
        let message = match Message::parse(text) {
            Ok(message) => message,
            // Not JSON: the stdio reader hands it over as a bad line.
            Err(_) => {
                relay.bad_client_line(countersign_mcp::relay::BadLine::NotJson(text.as_bytes().to_vec())).await;
                let reply = to_client.recv().await.unwrap();
                assert!(reply.message.value["error"].is_object(), "{what}");
                continue;
            }
        };
        relay.from_client(message).await;
        let reply = tokio::time::timeout(Duration::from_secs(5), to_client.recv()).await.unwrap().unwrap();
        assert!(reply.message.value["error"]["code"].is_i64(), "{what}: {:?}", reply.message.value);
        assert!(to_upstream.try_recv().is_err(), "{what} reached the upstream");
        let refused = refusals_reach(&held, n + 1).await;
        assert_eq!(refused.len(), n + 1, "{what} was not audited");
    }
    assert!(held.submitted.lock().unwrap().is_empty(), "nothing was a tool call to decide");
    let refused = held.refused.lock().unwrap().clone();
    assert!(refused.iter().all(|r| r.kind() == "request.rejected" && r.body().to_string().len() < 1024));
}
