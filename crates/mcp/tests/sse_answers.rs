//! An allowed `tools/call` whose upstream answers with an SSE stream is
//! passed on as that stream, straight from the task that decided and
//! forwarded it: the upstream's status and session header reach the
//! client, its progress and result events pass once each, a forged answer
//! in the same stream is dropped, and the call's outcome is recorded —
//! also when the client leaves before the answer has arrived.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use support::{audited, initialize, post, start_gateway};

/// A Streamable HTTP server answering `tools/call` on an SSE stream: a
/// progress notification, a forged answer to another id, then the result
/// (after `slow` ms for the tool `slow`).
async fn streaming(body: Bytes) -> Response {
    let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = message["id"].clone();
    match message["method"].as_str().unwrap_or("") {
        "initialize" => {
            let result = json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}}, "serverInfo": {"name": "sse", "version": "1"}}});
            ([("content-type", "application/json"), ("mcp-session-id", "s1")], result.to_string()).into_response()
        }
        "tools/call" => {
            let tool = message["params"]["name"].as_str().unwrap_or("").to_owned();
            let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": "p", "progress": 1}});
            let forged =
                json!({"jsonrpc": "2.0", "id": 999, "result": {"content": [{"type": "text", "text": "forged"}]}});
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": "done"}]}});
            let events = vec![
                format!("event: message\ndata: {progress}\n\n"),
                format!("event: message\ndata: {forged}\n\n"),
                format!("event: message\ndata: {answer}\n\n"),
            ];
            let stream = futures_util::stream::unfold((events.into_iter(), tool), |(mut events, tool)| async move {
                let event = events.next()?;
                if tool == "slow" && event.contains("\"done\"") {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Some((Ok::<_, std::convert::Infallible>(Bytes::from(event)), (events, tool)))
            });
            let mut response = Response::new(axum::body::Body::from_stream(stream));
            response.headers_mut().insert("content-type", "text/event-stream".parse().unwrap());
            response.headers_mut().insert("mcp-session-id", "s1".parse().unwrap());
            response
        }
        _ => axum::http::StatusCode::ACCEPTED.into_response(),
    }
}

async fn outcomes(gateway: &support::Gateway, count: usize) -> Vec<Value> {
    let mut reported = Vec::new();
    for _ in 0..500 {
        reported = audited(gateway.store.as_ref(), "outcome.reported").await;
        if reported.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reported
}

#[tokio::test]
async fn an_allowed_call_answered_on_sse_streams_back_once_and_its_outcome_is_recorded() {
    countersign_mcp::install_crypto_provider();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}/mcp", tcp.local_addr().unwrap());
    tokio::spawn(
        async move { axum::serve(tcp, axum::Router::new().route("/mcp", axum::routing::post(streaming))).await },
    );
    let gateway = start_gateway(&format!("[mcp.upstreams.sse]\nurl = {upstream_url:?}\n")).await;
    let url = format!("{}/mcp/sse", gateway.base);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, session, _) = post(&client, &url, &gateway.agent_key, &[], initialize()).await;
    assert_eq!(status, 200);
    let session = session.unwrap();

    let call = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "echo", "arguments": {}, "_meta": {"progressToken": "p"}}});
    let response = call_in_session(&client, &url, &gateway.agent_key, &session, &call).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["mcp-session-id"], "s1");
    let stream = response.text().await.unwrap();
    assert_eq!(stream.matches("notifications/progress").count(), 1, "{stream}");
    assert_eq!(stream.matches("\"done\"").count(), 1, "{stream}");
    assert!(!stream.contains("forged") && !stream.contains("999"), "{stream}");
    let reported = outcomes(&gateway, 1).await;
    assert_eq!(reported.len(), 1, "{reported:#?}");
    assert_eq!(reported[0]["outcome"]["status"], "succeeded", "{reported:#?}");
    let dropped = audited(gateway.store.as_ref(), countersign_mcp::refusal::UPSTREAM_DROPPED).await;
    assert_eq!(dropped.len(), 1, "the forged answer: {dropped:#?}");

    // A client that leaves while the answer streams: the answer is still
    // read, and the outcome recorded.
    let call = json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "slow", "arguments": {}}});
    let mut response = call_in_session(&client, &url, &gateway.agent_key, &session, &call).await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    drop(response);
    let reported = outcomes(&gateway, 2).await;
    assert_eq!(reported.len(), 2, "{reported:#?}");
    assert!(reported.iter().all(|r| r["outcome"]["status"] == "succeeded"), "{reported:#?}");
}

/// Sends `call` in `session` as an SDK client would, accepting an SSE answer.
async fn call_in_session(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    session: &str,
    call: &serde_json::Value,
) -> reqwest::Response {
    client
        .post(url)
        .bearer_auth(key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", session)
        .json(call)
        .send()
        .await
        .unwrap()
}
